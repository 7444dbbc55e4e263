"""The TheNodes-style host config file: ``port``, ``bootstrap_nodes``, ``[realm]``, ``[node]``...

hostsim owns those keys and checks them strictly. Every other top-level key or table
(``[network]``, ``[logging]``...) belongs to another subsystem or to a plugin and is passed
through untouched in :attr:`HostConfig.data`, which is what plugins receive as ``host.config``.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from hostsim._frozen import checked_table, freeze, show
from hostsim.errors import HostConfigError

__all__ = [
    "DEFAULT_PORT",
    "HostConfig",
    "HostConfigError",
    "RealmInfo",
    "canonical_ip_port",
    "derive_realm_code",
]

DEFAULT_PORT = 7447
"""The port used when the config does not set ``port``."""

REALM_CODE_RE = re.compile(r"[a-z0-9][a-z0-9._-]*")
REALM_CODE_MAX = 64
NODE_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,128}")

_REALM_KEYS = ("name", "code", "version")
_NODE_KEYS = ("id", "state_dir", "listen_addrs")
_PLUGINS_KEYS = ("enabled",)


@attrs.frozen
class RealmInfo:
    """The realm a node belongs to: display name, canonical code, protocol version."""

    name: str
    code: str
    version: str = "1"


@attrs.frozen
class HostConfig:
    """A checked host config. Build it with :meth:`from_file` or :meth:`from_mapping`."""

    port: int
    bootstrap_nodes: tuple[str, ...]
    realm: RealmInfo
    node_id: str
    state_dir: Path
    listen_addrs: tuple[str, ...]
    enabled_plugins: tuple[str, ...]
    data: Mapping[str, Any] = attrs.field(repr=False, hash=False)
    """The whole parsed document, deeply read-only (tables as mappings, arrays as tuples)."""

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> HostConfig:
        """Read and check a host config file; relative paths in it are relative to its directory.

        :raises HostConfigError: the file is not valid TOML or a key or value is wrong.
        :raises OSError: the file cannot be read.
        """
        path = Path(path)
        data = _read_toml(path)
        return cls.from_mapping(data, base_dir=path.parent, source=str(path))

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], *, base_dir: Path, source: str = "<host config>"
    ) -> HostConfig:
        """Check parsed TOML data; ``source`` names the data in error messages.

        :raises HostConfigError: a key or value is wrong.
        """
        return _Parser(source).parse(data, base_dir)


def _read_toml(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise HostConfigError(f"{path}: invalid TOML: {exc}") from None


def derive_realm_code(name: str) -> str:
    """The code of a realm name: kebab-case lowercase ASCII (``"My Realm!"`` -> ``"my-realm"``).

    The result may be empty or too long; :func:`check_realm_code` says whether it is usable.
    """
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")


def check_realm_code(code: str) -> str | None:
    """Why ``code`` is not a valid realm code, or None when it is."""
    if not REALM_CODE_RE.fullmatch(code):
        return (
            'must be lowercase ASCII letters, digits, ".", "_" or "-",'
            " starting with a letter or digit"
        )
    if len(code) > REALM_CODE_MAX:
        return f"must be at most {REALM_CODE_MAX} characters"
    return None


def canonical_ip_port(text: str) -> str:
    """The canonical ``"ip:port"`` form of an IP literal address (IPv6 as ``"[ip]:port"``).

    An IPv4-mapped IPv6 address becomes the IPv4 address it maps.

    :raises ValueError: with the reason the address is not an IP literal with a port.
    """
    if text.startswith("["):
        host, sep, port_text = text[1:].partition("]:")
        if not sep:
            raise ValueError('an IPv6 address must be written "[ip]:port"')
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep:
            raise ValueError('missing port, expected "ip:port"')
        if ":" in host:
            raise ValueError('an IPv6 address must be written "[ip]:port"')
    if "%" in host:
        raise ValueError("zone ids are not allowed")
    if not (port_text.isascii() and port_text.isdigit() and 1 <= int(port_text) <= 65535):
        raise ValueError(f"port {port_text!r} is not a number in 1..65535")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            f'{host!r} is not an IP literal (hostnames are not allowed; use "ip:port")'
        ) from None
    if ip.version == 4 and text.startswith("["):
        raise ValueError("an IPv4 address must not be bracketed")
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    port = int(port_text)
    return f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"


@attrs.frozen
class _Parser:
    """Checks one host config document; ``source`` prefixes every error message."""

    source: str

    def parse(self, data: Mapping[str, Any], base_dir: Path) -> HostConfig:
        if not isinstance(data, Mapping):
            raise HostConfigError(f"{self.source}: expected a table, got {show(data)}")
        port = self._port(data)
        realm_table = self._table(data, "realm", required=True)
        node_table = self._table(data, "node", required=True)
        plugins_table = self._table(data, "plugins", required=False)
        listen_default = [f"127.0.0.1:{port}"]
        state_dir = self._string(node_table, "[node] state_dir", "state_dir", default="data")
        return HostConfig(
            port=port,
            bootstrap_nodes=self._addresses(data, "bootstrap_nodes", "bootstrap_nodes", []),
            realm=self._realm(realm_table),
            node_id=self._node_id(node_table),
            state_dir=Path(os.path.abspath(base_dir / state_dir)),
            listen_addrs=self._addresses(
                node_table, "[node] listen_addrs", "listen_addrs", listen_default
            ),
            enabled_plugins=self._plugin_names(plugins_table),
            data=freeze(data),
        )

    def error(self, label: str, message: str) -> HostConfigError:
        return HostConfigError(f"{self.source}: {label}: {message}")

    def bad_value(self, label: str, value: object, reason: str) -> HostConfigError:
        return HostConfigError(f"{self.source}: {label} = {show(value)}: {reason}")

    def _table(self, data: Mapping[str, Any], key: str, *, required: bool) -> Mapping[str, Any]:
        known = {"realm": _REALM_KEYS, "node": _NODE_KEYS, "plugins": _PLUGINS_KEYS}[key]
        return checked_table(data, key, known, required=required, fail=self.error)

    def _string(
        self, table: Mapping[str, Any], label: str, key: str, *, default: str | None = None
    ) -> str:
        if key not in table:
            if default is None:
                raise self.error(label, "missing (required)")
            return default
        value = table[key]
        if not isinstance(value, str):
            raise self.error(label, f"expected a string, got {show(value)}")
        if not value.strip():
            raise self.bad_value(label, value, "must not be empty")
        return value

    def _string_list(self, table: Mapping[str, Any], label: str, key: str) -> list[str]:
        value = table[key]
        if not isinstance(value, list | tuple):
            raise self.error(label, f"expected an array of strings, got {show(value)}")
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise self.error(f"{label}[{index}]", f"expected a string, got {show(item)}")
        return list(value)

    def _port(self, data: Mapping[str, Any]) -> int:
        value = data.get("port", DEFAULT_PORT)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error("port", f"expected an integer, got {show(value)}")
        if not 1 <= value <= 65535:
            raise self.bad_value("port", value, "must be 1..65535")
        return value

    def _addresses(
        self, table: Mapping[str, Any], label: str, key: str, default: list[str]
    ) -> tuple[str, ...]:
        items = self._string_list(table, label, key) if key in table else default
        seen: dict[str, int] = {}
        for index, item in enumerate(items):
            try:
                addr = canonical_ip_port(item)
            except ValueError as exc:
                raise self.bad_value(f"{label}[{index}]", item, str(exc)) from None
            if addr in seen:
                raise self.bad_value(
                    f"{label}[{index}]", item, f"same address as {label}[{seen[addr]}]"
                )
            seen[addr] = index
        return tuple(seen)

    def _realm(self, table: Mapping[str, Any]) -> RealmInfo:
        name = self._string(table, "[realm] name", "name")
        version = self._string(table, "[realm] version", "version", default="1")
        if "code" in table:
            code = self._string(table, "[realm] code", "code")
            if (reason := check_realm_code(code)) is not None:
                raise self.bad_value("[realm] code", code, reason)
        else:
            code = derive_realm_code(name)
            if (reason := check_realm_code(code)) is not None:
                raise self.bad_value(
                    "[realm] name",
                    name,
                    f"cannot derive a realm code from it (got {show(code)}, which {reason});"
                    " set [realm] code",
                )
        return RealmInfo(name=name, code=code, version=version)

    def _node_id(self, table: Mapping[str, Any]) -> str:
        node_id = self._string(table, "[node] id", "id")
        if not NODE_ID_RE.fullmatch(node_id):
            raise self.bad_value(
                "[node] id", node_id, 'must be 1 to 128 ASCII letters, digits, ".", "_" or "-"'
            )
        return node_id

    def _plugin_names(self, table: Mapping[str, Any]) -> tuple[str, ...]:
        if "enabled" not in table:
            return ()
        names = self._string_list(table, "[plugins] enabled", "enabled")
        for index, name in enumerate(names):
            if not name.strip():
                raise self.bad_value(f"[plugins] enabled[{index}]", name, "must not be empty")
            if names.index(name) != index:
                raise self.bad_value(f"[plugins] enabled[{index}]", name, "listed twice")
        return tuple(names)
