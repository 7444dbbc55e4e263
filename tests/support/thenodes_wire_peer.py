"""A test peer that speaks exactly TheNodes' JSON, written by hand from TheNodes'
``src/network/message.rs`` (never through hostsim's encoder), and helpers to run a live node
in the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from hostsim.config import HostConfig
from hostsim.live.node import LiveNode
from hostsim.live.processes import free_port
from hostsim.live.settings import live_settings
from hostsim.testing import RecordingPlugin

REALM_JSON = '{"name":"Example","code":"example","version":"1.0"}'
TIMEOUT = 10.0


def hello_line(
    node_id: str,
    listen_addr: str | None,
    *,
    sender: str = "TheNodes",
    to: str = "TheNodes",
    realm: str | None = REALM_JSON,
    node_type: str | None = "daemon",
) -> bytes:
    """A HELLO as TheNodes serialises it: Option fields as null, capabilities null."""
    listen = "null" if listen_addr is None else f'"{listen_addr}"'
    kind = "null" if node_type is None else f'"{node_type}"'
    return (
        f'{{"from":"{sender}","to":"{to}","msg_type":{{"HELLO":{{"node_id":"{node_id}",'
        f'"listen_addr":{listen},"protocol":"TheNodes","version":"1","node_type":{kind},'
        f'"capabilities":null}}}},"payload":null,"realm":{realm or "null"}}}\n'
    ).encode()


def peer_list_line(peers: list[str]) -> bytes:
    """A PEER_LIST as TheNodes' receive loop builds it (from/to the peer's address)."""
    body = ",".join(f'"{p}"' for p in peers)
    return (
        f'{{"from":"127.0.0.1:1","to":"127.0.0.1:1","msg_type":{{"PEER_LIST":{{"peers":'
        f'[{body}]}}}},"payload":null,"realm":{REALM_JSON}}}\n'
    ).encode()


def peer_request_line(want: int = 16) -> bytes:
    """A PEER_REQUEST."""
    return (
        f'{{"from":"TheNodes","to":"x","msg_type":{{"PEER_REQUEST":{{"want":{want}}}}},'
        f'"payload":null,"realm":null}}\n'
    ).encode()


def probe_line(sender: str = "rust-node", to: str = "py-node") -> bytes:
    """TheNodes 0.4's liveness probe: a HEARTBEAT with the text ``liveness_probe_v1``."""
    return (
        f'{{"from":"{sender}","to":"{to}","msg_type":"HEARTBEAT",'
        '"payload":{"type":"Text","value":"liveness_probe_v1"},"realm":null}\n'
    ).encode()


def parse(line: bytes) -> list[tuple[str, Any]]:
    """A line's top-level keys in the order they were written, with their values."""
    data: dict[str, Any] = json.loads(line)  # dicts keep the order keys were read in
    return list(data.items())


def message(line: bytes) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(line)
    return data


def config(
    tmp_path: Path,
    node_id: str = "py-node",
    *,
    seeds: tuple[str, ...] = (),
    extra: Mapping[str, Any] | None = None,
    persistence: bool = False,
) -> HostConfig:
    port = free_port()
    data: dict[str, Any] = {
        "port": port,
        "bootstrap_nodes": list(seeds),
        "realm": {"name": "Example"},
        "node": {"id": node_id, "state_dir": node_id},
        "network": {"persistence": {"enabled": persistence}},
        "plugins": {"enabled": ["peerstore"] if persistence else []},
    }
    for key, value in (extra or {}).items():
        data[key] = {**data.get(key, {}), **value}
    return HostConfig.from_mapping(data, base_dir=tmp_path)


@contextlib.asynccontextmanager
async def running(
    host_config: HostConfig, recorder: RecordingPlugin | None = None
) -> AsyncIterator[LiveNode]:
    """A started live node in this event loop, stopped gracefully at the end."""
    factory: Callable[[], Mapping[str, object]] | None = None
    if recorder is not None:
        factory = lambda: {"recorder": recorder}  # noqa: E731
    node = LiveNode(host_config, live_settings(host_config), extra_plugins_factory=factory)
    await node.start()
    try:
        yield node
    finally:
        await node.stop()


async def close(writer: asyncio.StreamWriter) -> None:
    """Close a connection and wait (bounded) until it is closed."""
    writer.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(writer.wait_closed(), TIMEOUT)


async def read_line(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.readline(), TIMEOUT)


async def dial_in(
    node: LiveNode,
    node_id: str = "rust-node",
    listen_port: int = 7999,
    *,
    source: str = "127.0.0.1",
    listen_ip: str = "127.0.0.1",
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    """Connect to ``node`` from ``source`` (any of 127.0.0.0/8) as a TheNodes dialer that
    listens on ``listen_ip:listen_port``: read its HELLO, reply with ours."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", node.config.port, local_addr=(source, 0)), TIMEOUT
    )
    their_hello = await read_line(reader)
    writer.write(hello_line(node_id, f"{listen_ip}:{listen_port}", node_type=None))
    await writer.drain()
    return reader, writer, their_hello


async def until(condition: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    """Wait (bounded) until ``condition()`` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.01)


async def served(node: LiveNode, node_id: str = "good-peer") -> list[str]:
    """A well-behaved peer dials in, asks for peers and gets an answer; return the answer."""
    reader, writer, _ = await dial_in(node, node_id)
    try:
        writer.write(peer_request_line())
        await writer.drain()
        while True:
            answer = message(await read_line(reader))
            if isinstance(answer["msg_type"], dict) and "PEER_LIST" in answer["msg_type"]:
                peers: list[str] = answer["msg_type"]["PEER_LIST"]["peers"]
                return peers
    finally:
        await close(writer)


def run(coro: Awaitable[None]) -> None:
    """Run a test's scenario in a fresh event loop, failing it after 30 seconds."""
    asyncio.run(asyncio.wait_for(coro, 30))  # type: ignore[arg-type]


def record_dials(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every ``host:port`` the process dials from now on, in order (the dials still happen)."""
    dialled: list[str] = []
    real_open = asyncio.open_connection

    async def recording_open(host: str, port: int, **kwargs: Any) -> Any:
        dialled.append(f"{host}:{port}")
        return await real_open(host, port, **kwargs)

    monkeypatch.setattr(asyncio, "open_connection", recording_open)
    return dialled
