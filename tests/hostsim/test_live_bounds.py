"""What a peer can make a live node hold, say or do is bounded: memory, answers, log volume,
dials, connections and file descriptors, whatever the peer sends or fails to read. Everything
binds 127.0.0.1 (or ::1); every wait is bounded; every process is stopped by its pid."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import re
import signal
import socket
import time
from pathlib import Path

import pytest

from hostsim.live.incidents import LOG_BURST, LOG_PER_SEC, Incidents
from hostsim.live.node import ANSWER_BURST, LIST_BURST, LiveNode
from hostsim.live.processes import NodeProcess, free_port, write_node_config
from hostsim.live.settings import BOOK_DIALS_PER_SEC, live_settings
from hostsim.testing import RecordingPlugin
from tests.support.line_peer import LinePeer
from tests.support.processes import start_node, stop_node, wait_listening
from tests.support.thenodes_wire_peer import (
    TIMEOUT,
    close,
    config,
    dial_in,
    hello_line,
    message,
    peer_list_line,
    peer_request_line,
    probe_line,
    read_line,
    record_dials,
    run,
    running,
    served,
    until,
)

WAIT = 20.0
JUNK = 60_000
"""Characters in one junk peer-list string."""


def _node_config(tmp_path: Path, port: int) -> Path:
    return write_node_config(
        tmp_path / "node.toml", node_id="victim", port=port, extra={"realm": {"name": "Example"}}
    )


def _rss_mb(node: NodeProcess) -> float:
    rss = node.rss_mb()
    assert rss is not None, "no VmRSS"
    return rss


def _junk_list(i: int) -> bytes:
    """16 strings of 60 KB; one carries a newline and a forged log line."""
    peers = [f"{i}-{k}-" + "A" * JUNK for k in range(15)]
    peers.append("x\\nWARNING hostsim.live.incidents: FORGED " + "B" * JUNK)
    return peer_list_line(peers)


def test_a_flood_of_junk_peer_lists_keeps_rss_log_volume_and_the_answer_small(
    tmp_path: Path,
) -> None:
    """Before: 120 such lists took RSS from 32 to 137 MB, wrote 57 MB of warnings, and a
    PEER_REQUEST for 1,000 got a line of 60 MB."""
    port = free_port()
    path = _node_config(tmp_path, port)
    node = NodeProcess(path, tmp_path / "node.log", verbose=False)
    try:
        node.wait_for("listening on", WAIT)
        peer = LinePeer(port)
        peer.handshake("flooder", "127.0.0.1:7999")
        peer.answer(16)  # connected and served: the baseline
        before = _rss_mb(node)
        for i in range(120):
            peer.sock.sendall(_junk_list(i))
        answer = peer.answer(1000)  # answered after every list was read
        after = _rss_mb(node)
        peer.close()
        assert after - before < 16, f"RSS {before:.0f} -> {after:.0f} MB"
        assert len(answer) < 4096  # nothing of the junk is kept or handed out
        assert message(answer)["msg_type"]["PEER_LIST"]["peers"] == []
        log = (tmp_path / "node.log").read_bytes()
        assert len(log) < 4096, f"{len(log)} bytes of log"
        assert b"bad_address" in log
        assert not any(
            line.startswith(b"WARNING hostsim.live.incidents: FORGED") for line in log.splitlines()
        )
        assert node.terminate() == 0
    finally:
        node.stop()


def test_incident_warnings_are_rate_bounded_summed_up_escaped_and_go_on_for_new_peers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Before: one warning per refused string (57 MB in 3 s); after 10,000 (peer, kind) pairs
    no new peer was ever logged; a newline in a peer's text forged a log line."""
    now = [0.0]
    incidents = Incidents("py-node", clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="hostsim.live.incidents"):
        for i in range(20_000):  # 20,000 peers in 3 s
            now[0] = i * 3 / 20_000
            incidents("bad_address", f"10.0.{i >> 8}.{i & 255}", "x\nWARNING forged" + "y" * JUNK)
        flood = list(caplog.records)
        now[0] += 60
        incidents.flush()
        incidents("bad_json", "192.0.2.7")  # a new peer, after the flood
    assert incidents.counts["bad_address"] == 20_000
    assert len(flood) <= LOG_BURST + 3 * LOG_PER_SEC + 1
    texts = [r.getMessage() for r in caplog.records]
    assert sum(len(t) for t in texts) < 400 * len(texts) < 20_000
    assert not any("\n" in t for t in texts)
    summed = [re.search(r"(\d+) more incidents not logged", t) for t in texts]
    logged = [t for t in texts if "bad_address" in t and "not logged" not in t]
    assert len(logged) + sum(int(m[1]) for m in summed if m) == 20_000  # each said once
    assert "192.0.2.7" in texts[-1]


def test_sixteen_spellings_of_one_address_are_one_address_with_one_backoff(
    tmp_path: Path,
) -> None:
    """Before: 3,000 TCP connects to the victim in 5 s."""
    accepted: list[int] = []

    async def scenario() -> None:
        async def victim(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.append(1)
            writer.close()

        server = await asyncio.start_server(victim, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        spellings = [f"127.0.0.1:{'0' * k}{port}" for k in range(8)] + [
            f"[::ffff:127.0.0.1]:{'0' * k}{port}" for k in range(8)
        ]
        async with server, running(config(tmp_path)) as node:
            _reader, writer, _ = await dial_in(node, "amplifier")
            for _ in range(300):
                writer.write(peer_list_line(spellings))
            await writer.drain()
            await until(lambda: f"127.0.0.1:{port}" in node.core.failures)
            await asyncio.sleep(1.0)
            assert node.core.book.keys() & set(spellings) == {spellings[0]}
            await close(writer)

    run(scenario())
    assert len(accepted) == 1


def test_book_dials_are_bounded_overall_whatever_the_peer_lists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ports = [free_port() for _ in range(2)]
    seconds = 2.0

    async def scenario() -> None:
        dialled = record_dials(monkeypatch)
        async with running(config(tmp_path)) as node:
            _reader, writer, _ = await dial_in(node, "amplifier")
            start = time.monotonic()
            for i in range(200):  # 3,200 distinct loopback addresses, nobody listening
                writer.write(peer_list_line([f"127.0.{i}.{k + 1}:{ports[0]}" for k in range(16)]))
                await writer.drain()
                await asyncio.sleep(seconds / 200)
            elapsed = time.monotonic() - start
            book = [d for d in dialled if d != f"127.0.0.1:{node.config.port}"]
            burst = node.settings.policy.target_outbound
            assert 0 < len(book) <= burst + BOOK_DIALS_PER_SEC * elapsed + 1
            await close(writer)

    run(scenario())


@pytest.mark.parametrize("bind", ["127.0.0.1", "::1"])
def test_a_node_bound_to_loopback_dials_loopback_ip_literals_only(
    bind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: bound to ::1 the guard was off, and a peer list's localhost:port was dialled."""
    listed = ["localhost:7447", "203.0.113.5:7447", "[2001:db8::1]:7447", "127.0.0.1:1"]

    async def scenario() -> None:
        dialled = record_dials(monkeypatch)
        host_config = config(tmp_path)
        said: list[str] = []
        node = LiveNode(host_config, live_settings(host_config, bind=bind), status=said.append)
        await node.start()
        try:
            assert node.loopback_only
            family = socket.AF_INET6 if ":" in bind else socket.AF_INET
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(bind, host_config.port, family=family), TIMEOUT
            )
            await read_line(reader)
            writer.write(hello_line("gossip", None, node_type=None))
            writer.write(peer_list_line(listed))
            await writer.drain()
            await until(lambda: "127.0.0.1:1" in node.core.failures)
            node.core.fill()
            await asyncio.sleep(0.2)
            assert node.incidents.counts["bad_address"] == 1  # localhost: not an IP literal
            assert node.incidents.counts["off_loopback"] == 2
            await close(writer)
        finally:
            await node.stop()
        # Counted by kind, in words, not printed as a Python dict.
        assert said[-1] == "stopped; incidents: bad_address 1, off_loopback 2"
        assert [d for d in dialled if d.endswith(f":{host_config.port}")] == [
            f"{bind}:{host_config.port}"
        ]
        assert [d for d in dialled if not d.endswith(f":{host_config.port}")] == ["127.0.0.1:1"]

    run(scenario())


def test_a_planned_address_that_is_not_one_fails_its_dial_instead_of_blocking_dialling(
    tmp_path: Path,
) -> None:
    """Before: a dial of "junk" killed the dial task and left it in flight forever."""
    recorder = RecordingPlugin(dial_first=["junk", "127.0.0.1:0x1"])

    async def scenario() -> None:
        host_config = config(tmp_path)
        node = LiveNode(
            host_config, live_settings(host_config), extra_plugins_factory=lambda: {"r": recorder}
        )
        node.core.may_dial = None  # as on a public bind: no loopback guard in the way
        await node.start()
        try:
            await until(lambda: len(recorder.hooks("on_dial_failed")) == 2)
            assert not node.core.dialing
        finally:
            await node.stop()

    run(scenario())
    errors = [call.kwargs["error"] for call in recorder.hooks("on_dial_failed")]
    assert all(error.startswith("not an address") for error in errors)


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_peer_that_never_reads_loses_its_socket_and_buffer_at_the_bound(
    tmp_path: Path,
) -> None:
    """Before: a closed connection waited to flush to a peer that never reads, keeping its fd
    and buffer past the timeout."""
    extra = {"network": {"connection_policy": {"heartbeat_timeout_ms": 800}}}

    async def scenario() -> None:
        async with running(config(tmp_path, extra=extra)) as node:
            baseline = _fds()
            feeder, feed, _ = await dial_in(node, "feeder")
            feed.write(peer_list_line([f"10.0.0.{k}:7447" for k in range(16)]))
            await feed.drain()
            await until(lambda: len(node.core.book) >= 16)
            # A full book of what outbound peers told: every answer is 1,000 addresses.
            node.core.learn(f"10.{i}.1.{k}:7447" for i in range(63) for k in range(16))
            await close(feed)
            del feeder
            await until(lambda: _fds() == baseline)  # both ends of the feeder's connection
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.setblocking(False)
            await asyncio.wait_for(
                asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", node.config.port)),
                TIMEOUT,
            )
            reader, writer = await asyncio.open_connection(sock=sock)
            await read_line(reader)
            assert _fds() == baseline + 2  # our socket and the node's
            writer.write(hello_line("sink", None, node_type=None))
            for _ in range(ANSWER_BURST):  # the answers of about 20 KB a connection gets
                writer.write(peer_request_line(1000))
            for _ in range(40):  # and 40,000 answers to liveness probes, never read
                writer.write(probe_line("sink") * 1000)
                await writer.drain()
            await until(lambda: _fds() == baseline + 1)  # only ours is left
            assert "sink" not in node.core.by_node
            assert not node._links
            assert node.incidents.counts["slow_reader"] + node.incidents.counts["silent_peer"]
            writer.transport.abort()
            await asyncio.sleep(0.05)  # the abort closes the socket on the next loop turn

    run(scenario())


def test_a_quiet_peer_whose_tcp_connection_dies_is_closed_once_not_spun_on(
    tmp_path: Path,
) -> None:
    """A peer that never answers a probe is judged by its TCP connection: when the kernel
    gives up on it (here a receive window left shut past ``heartbeat_timeout_ms``, the
    ``TCP_USER_TIMEOUT``; Linux 5.1 and later), it is closed as a silent peer. Before: the
    kernel's ETIMEDOUT was taken for a quiet wait, and the node spun on the dead socket,
    its memory growing by tens of MB a second."""
    extra = {"network": {"connection_policy": {"heartbeat_timeout_ms": 800}}}

    async def scenario() -> None:
        async with running(config(tmp_path, extra=extra)) as node:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.setblocking(False)
            await asyncio.wait_for(
                asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", node.config.port)),
                TIMEOUT,
            )
            reader, writer = await asyncio.open_connection(sock=sock)
            await read_line(reader)
            writer.write(hello_line("sink", None, node_type=None))
            await writer.drain()
            await until(lambda: "sink" in node.core.by_node)
            writer.write(probe_line("sink") * 1000)  # 150 KB of answers: under the queue bound
            await writer.drain()
            await until(lambda: "sink" not in node.core.by_node)
            assert node.incidents.counts["silent_peer"] == 1
            assert node.incidents.counts["slow_reader"] == 0
            writer.transport.abort()
            await asyncio.sleep(0.05)

    run(scenario())


async def _dial_in_from(
    node: LiveNode, node_id: str, source_ip: str = "127.0.0.1"
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect from ``source_ip`` (any of 127.0.0.0/8) as a TheNodes dialer."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", node.config.port, local_addr=(source_ip, 0)), TIMEOUT
    )
    await read_line(reader)
    writer.write(hello_line(node_id, None, node_type=None))
    await writer.drain()
    await until(lambda: node_id in node.core.by_node)
    return reader, writer


def test_a_full_inbound_table_of_idle_peers_evicts_one_and_keeps_the_useful_and_diverse(
    tmp_path: Path,
) -> None:
    """Before: a full table of idle peers locked every good peer out for good."""
    extra = {"network": {"max_inbound": 6}}

    async def scenario() -> None:
        async with running(config(tmp_path, extra=extra)) as node:
            _, useful = await _dial_in_from(node, "useful")
            useful.write(peer_list_line(["127.0.0.1:7001"]))
            await useful.drain()
            await until(lambda: "127.0.0.1:7001" in node.core.book)
            _, other_group = await _dial_in_from(node, "elsewhere", "127.2.0.1")
            idle = [(await _dial_in_from(node, f"idle-{i}"))[1] for i in range(4)]
            for round_ in range(12):  # each newcomer takes an idle peer's slot
                idle.append((await _dial_in_from(node, f"new-{round_}"))[1])
                assert len(node.core.conns) <= 6
            assert isinstance(await served(node, "good-peer"), list)  # a good peer is served
            assert "127.0.0.1:7001" in node.core.book  # what the useful peer said is kept
            assert {"useful", "elsewhere"} <= node.core.by_node.keys()
            assert node.incidents.counts["inbound_cap"] == 0
            for writer in [useful, other_group, *idle]:
                await close(writer)

    run(scenario())


def test_when_every_inbound_peer_is_protected_a_newcomer_is_refused(tmp_path: Path) -> None:
    extra = {"network": {"max_inbound": 2}}

    async def scenario() -> None:
        async with running(config(tmp_path, extra=extra)) as node:
            kept = []
            for i in range(2):
                _, writer = await _dial_in_from(node, f"useful-{i}", f"127.{i + 3}.0.1")
                writer.write(peer_list_line([f"127.0.0.1:{7001 + i}"]))
                kept.append(writer)
            await until(
                lambda: node.incidents.counts["inbound_cap"] == 0 and len(node.core.book) >= 2
            )
            reader, writer = await asyncio.open_connection("127.0.0.1", node.config.port)
            assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
            assert node.incidents.counts["inbound_cap"] == 1
            writer.close()
            for kept_writer in kept:
                await close(kept_writer)

    run(scenario())


def test_an_inbound_impostor_of_a_dialled_node_id_never_cuts_the_outbound_connection(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async def real(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(hello_line("real-x", None, to="127.0.0.1:1"))
            await writer.drain()
            with contextlib.suppress(Exception):
                while await reader.readline():
                    pass
            writer.close()

        server = await asyncio.start_server(real, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server, running(config(tmp_path, seeds=(f"127.0.0.1:{port}",))) as node:
            await until(lambda: "real-x" in node.core.by_node)
            outbound = node.core.by_node["real-x"]
            for _ in range(3):
                reader, writer, _ = await dial_in(node, "real-x")
                assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""  # refused
                await close(writer)
            assert node.core.by_node["real-x"] == outbound == f"127.0.0.1:{port}"
            assert node.core.conns[outbound].outbound

    run(scenario())


def test_a_dial_that_proves_a_node_id_replaces_an_inbound_claim_of_it(tmp_path: Path) -> None:
    async def scenario() -> None:
        async def real(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(hello_line("real-x", None, to="127.0.0.1:1"))
            await writer.drain()
            with contextlib.suppress(Exception):
                while await reader.readline():
                    pass
            writer.close()

        server = await asyncio.start_server(real, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server, running(config(tmp_path)) as node:
            impostor_reader, impostor, _ = await dial_in(node, "real-x", 7999)
            await until(lambda: "real-x" in node.core.by_node)
            impostor.write(peer_list_line([f"127.0.0.1:{port}"]))  # it names the real one
            await impostor.drain()
            assert await asyncio.wait_for(impostor_reader.read(), TIMEOUT) == b""
            await until(lambda: node.core.by_node.get("real-x") == f"127.0.0.1:{port}")
            assert node.core.conns[f"127.0.0.1:{port}"].outbound
            await close(impostor)

    run(scenario())


@pytest.mark.parametrize("reader", ["nobody reads", "closed"])
def test_a_stdout_nobody_reads_or_a_closed_one_neither_hangs_nor_stops_the_node(
    reader: str, tmp_path: Path
) -> None:
    """Before: a full status pipe blocked the node (SIGTERM then ignored); a closed one
    stopped it."""
    port = free_port()
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)
    if reader == "closed":
        os.close(read_end)
    with (tmp_path / "node.log").open("ab") as log:
        process = start_node(_node_config(tmp_path, port), stdout=write_end, stderr=log.fileno())
    os.close(write_end)
    try:
        wait_listening(port, WAIT)
        for i in range(300):  # ten status lines each: far more than the pipe and queue hold
            with LinePeer(port) as chatty:
                chatty.handshake(f"chatty-{i}", "127.0.0.1:7999")
                for k in range(LIST_BURST):
                    chatty.sock.sendall(peer_list_line([f"10.{i >> 8}.{i & 255}.{k}:7447"]))
        with LinePeer(port) as good:
            good.handshake("good", "127.0.0.1:7999")
            assert b'"PEER_LIST"' in good.answer()  # still serving
        assert process.poll() is None
        os.kill(process.pid, signal.SIGTERM)
        assert process.wait(10) == 0
    finally:
        stop_node(process)
        if reader != "closed":
            os.close(read_end)


def test_a_hello_with_long_capabilities_and_listen_address_leaves_nothing_long_held(
    tmp_path: Path,
) -> None:
    caps = ",".join(f'"{i}' + "c" * 30_000 + '"' for i in range(32))
    hello = (
        '{"from":"a","to":"b","msg_type":{"HELLO":{"node_id":"bulky","listen_addr":"'
        + "1" * 60_000
        + f'","protocol":"TheNodes","version":"1","node_type":null,"capabilities":[{caps},"ok"]'
        + '}},"payload":null,"realm":{"name":"Example","code":"example","version":"1.0"}}\n'
    ).encode()

    async def scenario() -> None:
        async with running(config(tmp_path)) as node:
            reader, writer = await asyncio.open_connection("127.0.0.1", node.config.port)
            await read_line(reader)
            writer.write(hello)
            await writer.drain()
            await until(lambda: "bulky" in node.core.by_node)
            peer = node.core.conns[node.core.by_node["bulky"]].peer
            assert (peer.capabilities, peer.listen_addr) == ((), None)
            await close(writer)

    run(scenario())
