"""The live node on loopback sockets: TheNodes' handshake both ways, peer lists, and every kind
of bad input, each while a well-behaved peer is served. Everything binds 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from hostsim.live.node import LiveNode
from hostsim.testing import RecordingPlugin
from tests.support.thenodes_wire_peer import (
    REALM_JSON,
    close,
    config,
    dial_in,
    hello_line,
    message,
    parse,
    peer_list_line,
    read_line,
    record_dials,
    run,
    running,
    served,
    until,
)

ENVELOPE_KEYS = ["from", "to", "msg_type", "payload", "realm"]
HELLO_KEYS = ["node_id", "listen_addr", "protocol", "version", "node_type", "capabilities"]


def test_a_thenodes_dialer_completes_the_handshake_and_its_peer_list_reaches_on_peer_list(
    tmp_path: Path,
) -> None:
    recorder = RecordingPlugin()

    async def scenario() -> None:
        async with running(config(tmp_path), recorder) as node:
            _reader, writer, hello = await dial_in(node, "rust-node", 7999)
            pairs = parse(hello)
            assert [k for k, _ in pairs] == ENVELOPE_KEYS
            data = dict(pairs)
            assert data["from"] == "TheNodes"
            assert data["payload"] is None
            assert data["realm"] == {"name": "Example", "code": "example", "version": "1.0"}
            body = data["msg_type"]["HELLO"]
            assert list(body) == HELLO_KEYS
            assert body["node_id"] == "py-node"
            assert body["listen_addr"] == f"127.0.0.1:{node.config.port}"
            assert (body["protocol"], body["version"]) == ("TheNodes", "1")
            assert body["capabilities"] is None
            await until(lambda: bool(recorder.hooks("on_connect")))
            writer.write(peer_list_line(["127.0.0.1:7001", "127.0.0.1:7002"]))
            await writer.drain()
            await until(lambda: bool(recorder.hooks("on_peer_list")))
            await close(writer)

    run(scenario())
    (connect,) = recorder.hooks("on_connect")
    peer = connect.kwargs["peer"]
    assert (peer.node_id, peer.direction, peer.listen_addr) == (
        "rust-node",
        "inbound",
        "127.0.0.1:7999",
    )
    (listing,) = recorder.hooks("on_peer_list")
    assert listing.kwargs["peers"] == ["127.0.0.1:7001", "127.0.0.1:7002"]
    assert listing.kwargs["sender"].node_id == "rust-node"


def test_the_node_dials_a_thenodes_listener_replies_with_its_realm_and_asks_for_peers_at_once(
    tmp_path: Path,
) -> None:
    recorder = RecordingPlugin()
    seen: list[bytes] = []

    async def scenario() -> None:
        async def listener(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(hello_line("rust-seed", "127.0.0.1:7447", to="127.0.0.1:1"))
            seen.append(await read_line(reader))
            seen.append(await read_line(reader))
            writer.write(peer_list_line(["127.0.0.1:7003"]))
            await writer.drain()
            await reader.read()
            await close(writer)

        server = await asyncio.start_server(listener, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server, running(config(tmp_path, seeds=(f"127.0.0.1:{port}",)), recorder):
            await until(lambda: bool(recorder.hooks("on_peer_list")))

    run(scenario())
    reply, request = seen
    pairs = parse(reply)
    assert [k for k, _ in pairs] == ENVELOPE_KEYS
    data = dict(pairs)
    assert data["to"] == "TheNodes"  # TheNodes replies to its listener's "from"
    assert list(data["msg_type"]["HELLO"]) == HELLO_KEYS
    assert data["realm"] == {"name": "Example", "code": "example", "version": "1.0"}
    assert message(request)["msg_type"] == {"PEER_REQUEST": {"want": 16}}
    (connect,) = recorder.hooks("on_connect")
    assert connect.kwargs["peer"].direction == "outbound"
    assert recorder.hooks("on_peer_list")[0].kwargs["peers"] == ["127.0.0.1:7003"]


def test_a_peer_request_is_answered_with_known_addresses_never_the_askers_own(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with running(config(tmp_path)) as node:
            _reader, writer, _ = await dial_in(node, "first", 7101)
            writer.write(peer_list_line(["127.0.0.1:7201", "127.0.0.1:7202"]))
            await writer.drain()
            await until(lambda: "127.0.0.1:7202" in node.core.book)
            node.core.learn(["127.0.0.1:7301"])  # as if an outbound peer had answered it
            answer = await served(node, "second")
            # Its connections and what outbound peers told it; what a peer pushed unasked is
            # known, and never handed on.
            assert set(answer) == {"127.0.0.1:7101", "127.0.0.1:7301"}
            await close(writer)

    run(scenario())


Hostile = Callable[[LiveNode], Awaitable[None]]
HEARTBEAT = b'{"from":"a","to":"b","msg_type":"HEARTBEAT","payload":null,"realm":null}\n'


async def _heartbeats(writer: asyncio.StreamWriter) -> None:
    """A well-behaved peer: a HEARTBEAT every 100 ms."""
    while True:
        writer.write(HEARTBEAT)
        await writer.drain()
        await asyncio.sleep(0.1)


async def _connect(node: LiveNode) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", node.config.port)


async def _send_after_hello(node: LiveNode, line: bytes) -> None:
    reader, writer = await _connect(node)
    await read_line(reader)
    writer.write(line)
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 10) == b""  # the node closed it
    await close(writer)


async def _send_when_connected(node: LiveNode, line: bytes) -> None:
    reader, writer, _ = await dial_in(node, "rude-peer")
    writer.write(line)
    await writer.drain()
    while await asyncio.wait_for(reader.readline(), 10):
        pass  # whatever the node sent before it closed
    await close(writer)


async def _silent(node: LiveNode) -> None:
    reader, writer = await _connect(node)
    assert await asyncio.wait_for(reader.read(), 10)  # its HELLO, then the close
    await close(writer)


def probe_answer(sender: str, to: str) -> bytes:
    """TheNodes 0.4's answer to a liveness probe, from the prober's peer."""
    return (
        f'{{"from":"{sender}","to":"{to}","msg_type":"HEARTBEAT",'
        f'"payload":{{"type":"Text","value":"liveness_response_v1"}},"realm":null}}\n'
    ).encode()


async def _silent_after_handshake(node: LiveNode) -> None:
    """A 0.4-style peer: it answers the first probe, then falls silent."""
    reader, writer, _ = await dial_in(node, "quiet-peer")
    answered = False
    while line := await asyncio.wait_for(reader.readline(), 10):
        if not answered and b"liveness_probe_v1" in line:
            writer.write(probe_answer("quiet-peer", "py-node"))
            await writer.drain()
            answered = True
    await close(writer)


async def _inbound_flood(node: LiveNode) -> None:
    # Peers of other network groups than the steady peer's: every one is protected.
    keep = [await dial_in(node, f"peer-{i}", source=f"127.{i + 3}.0.1") for i in range(2)]
    for i, (_, writer, _) in enumerate(keep):  # useful peers: protected from eviction
        writer.write(peer_list_line([f"127.0.0.1:{7010 + i}"]))
        await writer.drain()
    await until(lambda: {"127.0.0.1:7010", "127.0.0.1:7011"} <= node.core.book.keys())
    refused = 0
    for _ in range(20):
        reader, writer = await _connect(node)
        if await asyncio.wait_for(reader.read(), 10) == b"":
            refused += 1
        await close(writer)
    assert refused == 20
    for _, kept, _ in keep:
        await close(kept)


async def _huge_peer_list(node: LiveNode) -> None:
    _reader, writer, _ = await dial_in(node, "chatty-peer")
    writer.write(_huge_list())
    await writer.drain()
    await until(lambda: node.incidents.counts["huge_peer_list"] > 0)
    assert "chatty-peer" in node.core.by_node  # bounded, not closed
    await close(writer)


def _huge_list() -> bytes:
    peers = ",".join(f'"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}:1"' for i in range(60_000))
    return (
        b'{"from":"x","to":"y","msg_type":{"PEER_LIST":{"peers":['
        + peers.encode()
        + b']}},"payload":null,"realm":null}\n'
    )


CASES: dict[str, tuple[Hostile, dict[str, Any]]] = {
    "line_too_long": (lambda n: _send_after_hello(n, b"x" * (1 << 20) + b"yy\n"), {}),
    "bad_utf8": (lambda n: _send_after_hello(n, b"\xff\xfe{}\n"), {}),
    "bad_json": (lambda n: _send_when_connected(n, b"{not json\n"), {}),
    "bad_message": (
        lambda n: _send_when_connected(
            n, b'{"from":"a","to":"b","msg_type":{"DELIVERY_ACK":7},"payload":null,"realm":null}\n'
        ),
        {},
    ),
    "bad_hello": (
        lambda n: _send_after_hello(
            n,
            b'{"from":"a","to":"b","msg_type":{"HELLO":{"listen_addr":null}},"payload":null,'
            b'"realm":' + REALM_JSON.encode() + b"}\n",
        ),
        {},
    ),
    "realm_mismatch": (
        lambda n: _send_after_hello(
            n, hello_line("stranger", None, realm='{"name":"Other","version":"1.0"}')
        ),
        {},
    ),
    "own_node_id": (lambda n: _send_after_hello(n, hello_line("py-node", None)), {}),
    "handshake_timeout": (
        _silent,
        {"network": {"connection_policy": {"direct_tcp_timeout_ms": 300}}},
    ),
    "silent_peer": (
        _silent_after_handshake,
        {
            "network": {
                "connection_policy": {"heartbeat_interval_ms": 100, "heartbeat_timeout_ms": 500}
            }
        },
    ),
    "huge_peer_list": (_huge_peer_list, {}),
    "inbound_cap": (_inbound_flood, {"network": {"max_inbound": 3}}),
}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_bad_input_ends_or_bounds_that_connection_is_counted_and_a_good_peer_is_served(
    kind: str, tmp_path: Path
) -> None:
    hostile, extra = CASES[kind]

    async def scenario() -> None:
        async with running(config(tmp_path, extra=extra)) as node:
            _reader, writer, _ = await dial_in(node, "steady-peer", 7301)
            beat = asyncio.get_running_loop().create_task(_heartbeats(writer))
            await until(lambda: "steady-peer" in node.core.by_node)
            await hostile(node)
            await until(lambda: node.incidents.counts[kind] > 0)  # type: ignore[index]
            assert node.core.up
            assert "steady-peer" in node.core.by_node  # the earlier connection is untouched
            answer = await served(node, "good-peer")
            assert "127.0.0.1:7301" in answer
            beat.cancel()
            await close(writer)

    run(scenario())


def test_each_kind_of_incident_is_logged_once_per_peer_and_counted_every_time(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        async with running(config(tmp_path)) as node:
            for _ in range(3):
                await _send_when_connected(node, b"{not json\n")
            await until(lambda: node.incidents.counts["bad_json"] == 3)

    with caplog.at_level(logging.WARNING, logger="hostsim.live.incidents"):
        run(scenario())
    assert len([r for r in caplog.records if "not JSON" in r.getMessage()]) == 1


def test_a_loopback_node_given_public_addresses_in_its_plan_and_a_peer_list_dials_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    public = ["203.0.113.5:7447", "198.51.100.7:7447", "[2001:db8::1]:7447", "8.8.8.8:53"]
    dialled = record_dials(monkeypatch)
    ports: list[int] = []
    recorder = RecordingPlugin(dial_first=public[:2])

    async def scenario() -> None:
        host_config = config(tmp_path, seeds=(public[2],))
        ports.append(host_config.port)
        async with running(host_config, recorder) as node:
            _reader, writer, _ = await dial_in(node, "gossip", 7401)
            writer.write(peer_list_line(public))
            await writer.drain()
            await until(lambda: bool(recorder.hooks("on_peer_list")))
            node.core.fill()
            await asyncio.sleep(0.2)
            assert node.incidents.counts["off_loopback"] == len(set(public))
            assert set(public) <= node.core.refused.keys()
            assert recorder.hooks("on_peer_list")[0].kwargs["peers"] == public
            await close(writer)

    run(scenario())
    assert dialled == [f"127.0.0.1:{port}" for port in ports]  # the test's own dial in only
    assert recorder.hooks("on_dial_failed") == []


def _line(msg_type: str, sender: str = "rust-node") -> bytes:
    return (
        f'{{"from":"{sender}","to":"py-node","msg_type":{msg_type},"payload":null,'
        f'"realm":null,"delivery":null}}\n'
    ).encode()


WELL_FORMED_NOT_ACTED_ON = {
    "DELIVERY_ACK": '{"DELIVERY_ACK":{"message_id":"0190","status":"ok"}}',
    "PUNCH_COORDINATE": '{"PUNCH_COORDINATE":{"attempt_id":"a1","target":"x","timeout_ms":null}}',
    "PUNCH_INVITE": '{"PUNCH_INVITE":{"attempt_id":"a1","from_node_id":"x","timeout_ms":5}}',
    "PUNCH_READY": '{"PUNCH_READY":{"attempt_id":"a1","target":"x","ok":true}}',
    "PUNCH_GO": '{"PUNCH_GO":{"attempt_id":"a1","initiator":"x","responder":"y",'
    '"initiator_observed_addr":"127.0.0.1:1","responder_observed_addr":"127.0.0.1:2",'
    '"start_at_ms":1,"timeout_ms":5}}',
    "PUNCH_ABORT": '{"PUNCH_ABORT":{"attempt_id":"a1","target":"x","reason":"timeout"}}',
    "RELAY_UNBIND": '{"RELAY_UNBIND":{"binding_id":"b"}}',
    "DATA_REQUEST": '"DATA_REQUEST"',
    "unknown": '{"GOSSIP_V9":{"anything":[1,2]}}',
}


def test_every_message_thenodes_defines_and_a_later_versions_type_are_ignored_not_fatal(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with running(config(tmp_path)) as node:
            _reader, writer, _ = await dial_in(node, "rust-node")
            await until(lambda: "rust-node" in node.core.by_node)
            for msg_type in WELL_FORMED_NOT_ACTED_ON.values():
                writer.write(_line(msg_type))
            writer.write(_line('"FUTURE_BARE"'))
            await writer.drain()
            await until(lambda: sum(node.ignored.values()) == len(WELL_FORMED_NOT_ACTED_ON) + 1)
            assert "rust-node" in node.core.by_node
            assert node.incidents.counts.total() == 0
            assert node.ignored["unknown"] == 2
            assert node.ignored["PUNCH_GO"] == 1
            await close(writer)

    run(scenario())


def test_a_liveness_probe_is_answered_from_the_nodes_own_id_and_the_node_probes_its_peers(
    tmp_path: Path,
) -> None:
    timers = {"network": {"connection_policy": {"heartbeat_interval_ms": 100}}}

    async def scenario() -> None:
        async with running(config(tmp_path, extra=timers)) as node:
            reader, writer, _ = await dial_in(node, "rust-node")
            await until(lambda: "rust-node" in node.core.by_node)
            probe = (
                '{"from":"rust-node","to":"py-node","msg_type":"HEARTBEAT",'
                '"payload":{"type":"Text","value":"liveness_probe_v1"},"realm":null}\n'
            )
            writer.write(probe.encode())
            await writer.drain()
            heard: list[dict[str, Any]] = []
            while not {"liveness_probe_v1", "liveness_response_v1"} <= {
                (m.get("payload") or {}).get("value") for m in heard
            }:
                heard.append(message(await read_line(reader)))
            await close(writer)
            for sent in heard:
                assert sent["from"] == "py-node"
                assert sent["to"] == "rust-node"
                assert sent["msg_type"] == "HEARTBEAT"

    run(scenario())


def test_a_quiet_peer_that_never_probes_stays_connected_past_the_heartbeat_timeout(
    tmp_path: Path,
) -> None:
    """TheNodes 0.2 sends no HEARTBEAT and answers none: its live TCP connection keeps it."""
    timers = {
        "network": {
            "connection_policy": {"heartbeat_interval_ms": 100, "heartbeat_timeout_ms": 300}
        }
    }

    async def scenario() -> None:
        async with running(config(tmp_path, extra=timers)) as node:
            _reader, writer, _ = await dial_in(node, "old-node")
            await until(lambda: "old-node" in node.core.by_node)
            await asyncio.sleep(1.2)  # four timeouts
            assert "old-node" in node.core.by_node
            assert node.incidents.counts["silent_peer"] == 0
            await close(writer)

    run(scenario())
