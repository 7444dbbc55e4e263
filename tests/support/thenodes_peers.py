"""TheNodes' ``peers.json``, written and read exactly as its record definition says.

The definition, from TheNodes' ``src/network/peer_store.rs``::

    #[derive(Serialize, Deserialize)]
    pub enum PeerSource { Bootstrap, Handshake, Gossip, Manual }

    #[derive(Serialize, Deserialize)]
    pub struct PeerRecord {
        pub addr: SocketAddr,
        pub source: PeerSource,
        pub failures: u32,
        pub last_success_epoch: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub node_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub capabilities: Option<Vec<String>>,
    }

saved with ``serde_json::to_vec_pretty(&Vec<PeerRecord>)`` and loaded with
``serde_json::from_slice``. So: a unit variant is its name as a string; a ``SocketAddr`` is
its display form (``"1.2.3.4:5"``, ``"[2001:db8::1]:5"``, a numeric scope id allowed); an
``Option`` without ``skip_serializing_if`` is written as ``null`` when None and read as None
when absent; unknown keys are ignored; one bad record fails the whole file.

:func:`dumps` writes what TheNodes writes; :func:`loads` accepts exactly what TheNodes
accepts, and raises :class:`ValueError` for anything else.
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any

import attrs

SOURCES = ("Bootstrap", "Handshake", "Gossip", "Manual")
U32_MAX = 2**32 - 1
U64_MAX = 2**64 - 1


@attrs.frozen
class PeerRecord:
    addr: str
    source: str
    failures: int
    last_success_epoch: int | None
    node_id: str | None = None
    capabilities: tuple[str, ...] | None = None


def dumps(records: list[PeerRecord]) -> str:
    """The file TheNodes writes for these records (``to_vec_pretty``: two-space indent)."""
    out: list[dict[str, Any]] = []
    for r in records:
        item: dict[str, Any] = {
            "addr": r.addr,
            "source": r.source,
            "failures": r.failures,
            "last_success_epoch": r.last_success_epoch,
        }
        if r.node_id is not None:
            item["node_id"] = r.node_id
        if r.capabilities is not None:
            item["capabilities"] = list(r.capabilities)
        out.append(item)
    return json.dumps(out, indent=2)


def loads(text: str) -> list[PeerRecord]:
    """Read a ``peers.json`` as ``serde_json::from_slice::<Vec<PeerRecord>>`` does."""
    data = json.loads(text)
    if not isinstance(data, list):
        raise ValueError("expected a sequence")
    return [_record(item, i) for i, item in enumerate(data)]


def _record(item: object, i: int) -> PeerRecord:
    if not isinstance(item, dict):
        raise ValueError(f"[{i}]: expected struct PeerRecord")
    for key in ("addr", "source", "failures"):
        if key not in item:
            raise ValueError(f"[{i}]: missing field `{key}`")
    addr = item["addr"]
    if not isinstance(addr, str) or not _is_socket_addr(addr):
        raise ValueError(f"[{i}]: invalid socket address syntax: {addr!r}")
    source = item["source"]
    if source not in SOURCES:
        raise ValueError(f"[{i}]: unknown variant {source!r}")
    failures = _integer(item["failures"], U32_MAX, f"[{i}].failures")
    epoch = item.get("last_success_epoch")
    epoch = None if epoch is None else _integer(epoch, U64_MAX, f"[{i}].last_success_epoch")
    node_id = item.get("node_id")
    if node_id is not None and not isinstance(node_id, str):
        raise ValueError(f"[{i}].node_id: expected a string")
    capabilities = item.get("capabilities")
    if capabilities is not None:
        if not isinstance(capabilities, list) or not all(isinstance(c, str) for c in capabilities):
            raise ValueError(f"[{i}].capabilities: expected a sequence of strings")
        capabilities = tuple(capabilities)
    return PeerRecord(addr, source, failures, epoch, node_id, capabilities)


def _integer(value: object, high: int, where: str) -> int:
    if type(value) is not int or not 0 <= value <= high:
        raise ValueError(f"{where}: expected an integer 0 to {high}, got {value!r}")
    return value


_V4 = re.compile(r"(?:0|[1-9][0-9]{0,2})(?:\.(?:0|[1-9][0-9]{0,2})){3}")
_PORT = re.compile(r"[0-9]{1,5}")


def _is_socket_addr(text: str) -> bool:
    """Whether Rust's ``SocketAddr::from_str`` accepts ``text``."""
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep:
            return False
        host, _, scope = host.partition("%")
        if _ and not scope.isdigit():
            return False
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return False
    else:
        host, sep, port = text.rpartition(":")
        if not sep or not _V4.fullmatch(host) or any(int(p) > 255 for p in host.split(".")):
            return False
    return bool(_PORT.fullmatch(port)) and int(port) <= 65535
