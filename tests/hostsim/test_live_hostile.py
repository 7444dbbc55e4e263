"""A `hostsim node` process against peers that hold its slots, block its output, trickle
lines, claim other nodes' addresses or ask too often: each is bounded, and a good peer is
served all along. Everything binds 127.0.0.1 (any of 127.0.0.0/8 as a source); every wait is
bounded; every process is stopped by its pid."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hostsim.cli import _LogLines
from hostsim.live.node import (
    ANSWER_BURST,
    ANSWER_EVERY_SECS,
    LIST_BURST,
    LIST_EVERY_SECS,
    _answers,
)
from hostsim.live.processes import NodeProcess, free_port, write_node_config
from tests.support.line_peer import HalfOpenFlood, LinePeer
from tests.support.processes import start_node, stop_node, wait_listening
from tests.support.thenodes_wire_peer import (
    hello_line,
    message,
    peer_list_line,
    peer_request_line,
)
from thenodes_peerstore.cli import main as peerstore

WAIT = 20.0


def _config(tmp_path: Path, port: int, **network: Any) -> Path:
    extra: dict[str, Any] = {"realm": {"name": "Example"}}
    if network:
        extra["network"] = network
    return write_node_config(tmp_path / "node.toml", node_id="victim", port=port, extra=extra)


@contextlib.contextmanager
def _node(tmp_path: Path, port: int, **network: Any) -> Iterator[NodeProcess]:
    """A listening `hostsim node` on 127.0.0.1:``port``; its warnings in ``node.log``."""
    node = NodeProcess(_config(tmp_path, port, **network), tmp_path / "node.log", verbose=False)
    try:
        node.wait_for("listening on", WAIT)
        yield node
    finally:
        node.stop()


def _served(port: int, node_id: str, source: str, timeout: float = 5.0) -> bool:
    """Whether a good peer from ``source`` gets the node's HELLO and an answer to its request."""
    try:
        with LinePeer(port, source=source, timeout=timeout) as peer:
            peer.handshake(node_id)
            return b'"PEER_LIST"' in peer.answer()
    except (OSError, ConnectionError):
        return False


def test_half_open_connections_from_one_ip_never_keep_a_good_peer_of_another_group_out(
    tmp_path: Path,
) -> None:
    """Before: 16 connections that never send a HELLO, reopened as the node closed them,
    kept every good peer out of a node with max_inbound = 16 (0 of 50 tries served)."""
    port = free_port()
    with _node(tmp_path, port, max_inbound=16) as node:
        with HalfOpenFlood(port, 16) as flood:
            flood.wait_greeted(16)  # the node took in all 16: every slot is held
            served = [_served(port, f"good-{i}", f"127.9.0.{i + 1}") for i in range(10)]
            greeted = flood.greeted
        assert served == [True] * 10
        assert greeted > 16  # the flood's connections were closed and taken in again
        assert node.terminate() == 0
        node.wait_for(r"stopped; incidents: .*\bhandshake_evicted \d", WAIT)


def _fill(fd: int) -> None:
    """Fill the pipe whose write end is ``fd``, as a reader that stopped reading leaves it."""
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)
    with contextlib.suppress(BlockingIOError):
        while True:
            os.write(fd, b"x" * 4096)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags)  # the node gets a blocking stderr, as usual


def _bad_json(port: int, source: str) -> None:
    """A peer that sends a line that is not JSON: one logged incident."""
    with contextlib.suppress(OSError, ConnectionError), LinePeer(port, source=source) as peer:
        peer.sock.settimeout(2.0)
        peer.line()
        peer.sock.sendall(b"{not json\n")
        peer.closed_by_node(2.0)


def test_a_stderr_nobody_reads_neither_stops_the_node_serving_nor_its_sigterm(
    tmp_path: Path,
) -> None:
    """Before: with stderr a full pipe, the first logged incident blocked the node: a good
    peer got no HELLO and SIGTERM was ignored."""
    port = free_port()
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)
    _fill(write_end)
    process = start_node(_config(tmp_path, port), stdout=subprocess.DEVNULL, stderr=write_end)
    os.close(write_end)
    try:
        wait_listening(port, WAIT)
        for i in range(5):  # a warning each, none of which fits
            _bad_json(port, f"127.10.{i}.1")
        assert _served(port, "good-peer", "127.9.0.1")
        os.kill(process.pid, signal.SIGTERM)
        assert process.wait(10) == 0
    finally:
        stop_node(process)
        os.close(read_end)


def test_log_lines_that_do_not_fit_are_dropped_counted_and_the_count_said_once_read() -> None:
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)
    _fill(write_end)
    handler = _LogLines(write_end, pending=10)
    records = [logging.makeLogRecord({"msg": f"record {i}"}) for i in range(50)]

    def emit_all() -> None:
        for record in records:
            handler.emit(record)

    emitting = threading.Thread(target=emit_all, daemon=True)
    emitting.start()
    emitting.join(WAIT)
    try:
        assert not emitting.is_alive()  # nothing could be written, and nothing waited
        assert handler.lines.dropped >= 50 - 10 - 1  # the queue, and the one being written
        said = bytearray()
        deadline = time.monotonic() + WAIT
        while b"dropped" not in said:  # a reader comes: the count comes with the next line
            said += os.read(read_end, 1 << 16)
            assert time.monotonic() < deadline
    finally:
        handler.close()
        os.close(write_end)
    with os.fdopen(read_end, "rb") as rest:
        said += rest.read()
    text = said.replace(b"x", b"").decode()
    match = re.search(
        r"^WARNING hostsim.cli: (\d+) log lines dropped \(stderr not read\)$", text, re.M
    )
    assert match is not None, text
    written = re.findall(r"^record \d+$", text, re.M)
    assert len(written) + int(match[1]) == 50  # each record is written or counted


def test_a_line_that_never_ends_after_the_handshake_is_closed_as_an_incident(
    tmp_path: Path,
) -> None:
    """Before: a byte every 0.25 s without a newline held the connection for ever."""
    port = free_port()
    with _node(tmp_path, port, connection_policy={"heartbeat_timeout_ms": 2000}) as node:
        with LinePeer(port) as peer:
            peer.handshake("trickler")
            request = peer_request_line()
            peer.sock.sendall(request[:20])  # a line in two pieces, within the bound: served
            time.sleep(0.5)
            peer.sock.sendall(request[20:])
            assert b'"PEER_LIST"' in peer.line()
            peer.sock.sendall(b'{"from":')
            began = time.monotonic()
            closed = False
            while not closed and time.monotonic() - began < 10:
                with contextlib.suppress(OSError):
                    peer.sock.sendall(b" ")
                closed = peer.closed_by_node(0.25)
            took = time.monotonic() - began
        assert closed, "the node kept a line that never ends"
        assert took < 8  # the 2 s bound, not the end of the 10 s this loop waits
        assert _served(port, "good-peer", "127.9.0.1")
        assert node.terminate() == 0
        node.wait_for(r"stopped; incidents: .*\bslow_line 1\b", WAIT)
    assert b"slow_line" in (tmp_path / "node.log").read_bytes()


class _Listener:
    """A TheNodes listener on 127.0.0.1:``port``: it sends its HELLO as ``node_id`` to each
    node that dials it, and keeps the connection."""

    def __init__(self, port: int, node_id: str) -> None:
        self.sock = socket.create_server(("127.0.0.1", port))
        self.sock.settimeout(0.1)
        self.node_id, self.accepted = node_id, 0
        self._conns: list[socket.socket] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.is_set():
            with contextlib.suppress(TimeoutError):
                conn, _ = self.sock.accept()
                self.accepted += 1
                conn.sendall(hello_line(self.node_id, None, to="127.0.0.1:1"))
                self._conns.append(conn)

    def close(self) -> None:
        self._done.set()
        self._thread.join(5)
        for conn in self._conns:
            conn.close()
        self.sock.close()


def test_an_inbound_claim_of_a_planned_address_never_stops_the_node_retrying_it(
    tmp_path: Path,
) -> None:
    """Before: one inbound connection claiming a planned peer's address stopped every retry
    of it, and the honest peer, once up, was never dialled."""
    port, honest_port = free_port(), free_port()
    honest = f"127.0.0.1:{honest_port}"
    policy = {"reconnect_base_delay_ms": 300, "reconnect_max_delay_ms": 600}
    path = _config(tmp_path, port, connection_policy=policy | {"reconnect_max_attempts": 60})
    peerstore(["add", "-c", str(path), "--source", "Connected", "--node-id", "honest", honest])
    node = NodeProcess(path, tmp_path / "node.log", verbose=False)
    listener = None
    try:
        node.wait_for(rf"  1\. {honest} \(peerstore\)", WAIT)
        node.wait_for(rf"dial {honest} failed", WAIT)
        with LinePeer(port) as impostor:
            impostor.handshake("impostor", honest)
            node.wait_for(rf"\(impostor, inbound\).*dial address {honest}", WAIT)
            listener = _Listener(honest_port, "honest")  # the honest peer comes up
            node.wait_for(rf"connected to {honest} \(honest, outbound\)", WAIT)
            assert not impostor.closed_by_node(0.2)  # a claim is no offence: it stays
        assert node.terminate() == 0
    finally:
        node.stop()
        if listener is not None:
            listener.close()


def test_a_claim_of_an_address_on_another_ip_is_not_advertised_as_that_peers(
    tmp_path: Path,
) -> None:
    """Before: an inbound peer from one IP claiming an address on another was handed out to
    every peer that asked as that peer's address."""
    port = free_port()
    with (
        _node(tmp_path, port) as node,
        LinePeer(port, source="127.0.0.2") as claimer,
        LinePeer(port, source="127.0.0.3") as honest,
    ):
        claimer.handshake("claimer", "127.0.0.1:7999")
        honest.handshake("honest", "127.0.0.3:7999")
        node.wait_for(r"\(claimer, inbound\); 1 connection, 0 outbound$", WAIT)
        node.wait_for(r"\(honest, inbound\).*dial address 127\.0\.0\.3:7999$", WAIT)
        with LinePeer(port, source="127.9.0.1") as asker:
            asker.handshake("asker")
            peers = message(asker.answer(16))["msg_type"]["PEER_LIST"]["peers"]
        assert "127.0.0.3:7999" in peers  # a claim on the peer's own IP is handed out
        assert "127.0.0.1:7999" not in peers


def _answers_to(peer: LinePeer, requests: int, quiet: float) -> int:
    """Send ``requests`` PEER_REQUESTs at once; the answers read until ``quiet`` seconds
    pass without one."""
    peer.sock.sendall(peer_request_line() * requests)
    peer.sock.settimeout(quiet)
    answers = 0
    with contextlib.suppress(TimeoutError):
        while True:
            if b'"PEER_LIST"' in peer.line()[:200]:
                answers += 1
    return answers


def test_a_flood_of_peer_requests_on_one_connection_gets_a_bounded_number_of_answers(
    tmp_path: Path,
) -> None:
    """Before: every request was answered, 3,942 answers a second (114 bytes out per byte
    in)."""
    port = free_port()
    with _node(tmp_path, port) as node:
        with LinePeer(port) as flooder:
            flooder.handshake("flooder")
            began = time.monotonic()
            answers = _answers_to(flooder, 2000, quiet=1.0)
            elapsed = time.monotonic() - began
        assert 1 <= answers <= ANSWER_BURST + elapsed / ANSWER_EVERY_SECS + 1
        assert _served(port, "good-peer", "127.9.0.1")  # a connection of its own is served
        assert node.terminate() == 0
        node.wait_for(r"stopped; incidents: .*\brequest_flood \d", WAIT)
    log = (tmp_path / "node.log").read_text()
    assert log.count("request_flood") == 1  # counted every time, logged once


def test_a_peer_asking_at_thenodes_interval_is_always_answered() -> None:
    """TheNodes asks for peers every 90 s (``request_interval_secs``): a connection's answers
    (the node's own bucket of each connection) keep up, for a day."""
    answers = _answers()
    assert all(answers.take(90.0 * n) for n in range(24 * 40))


def test_a_stream_of_small_peer_lists_makes_a_bounded_number_of_status_lines(
    tmp_path: Path,
) -> None:
    """Before: one peer's stream of small peer lists made 25,580 status lines a minute."""
    port = free_port()
    with _node(tmp_path, port) as node:
        with LinePeer(port) as chatty:
            chatty.handshake("chatty")
            node.wait_for(r"\(chatty, inbound\)", WAIT)
            began = time.monotonic()
            for i in range(3000):
                chatty.sock.sendall(peer_list_line([f"10.{i >> 8}.{i & 255}.1:7447"]))
            chatty.answer()  # every list before it was read
            elapsed = time.monotonic() - began
        _, gone = node.wait_for(r"disconnected from .*: closed by peer", WAIT)
        key = gone.split()[2].rstrip(":")
        lists = [line for _, line in node.lines if line.startswith(f"peer list from {key}:")]
        assert 1 <= len(lists) <= LIST_BURST + elapsed / LIST_EVERY_SECS + 1
        assert node.terminate() == 0
        node.wait_for(r"stopped; incidents: .*\blist_flood \d", WAIT)
    assert (tmp_path / "node.log").read_text().count("list_flood") == 1


def test_peers_resending_an_address_or_a_documentation_one_are_not_kept_as_useful(
    tmp_path: Path,
) -> None:
    """Before: four connections from one IP resending one address were protected from
    eviction as useful, and peers of other network groups were evicted in their place."""
    port = free_port()
    with _node(tmp_path, port, max_inbound=10) as node, contextlib.ExitStack() as stack:
        diverse = []
        for i in range(6):
            peer = stack.enter_context(LinePeer(port, source=f"127.{20 + i}.0.1"))
            peer.handshake(f"diverse-{i}")
            diverse.append(peer)
            node.wait_for(rf"\(diverse-{i}, inbound\)", WAIT)
        for i in range(4):
            spammer = stack.enter_context(LinePeer(port))
            spammer.handshake(f"spammer-{i}")
            for _ in range(3):
                spammer.sock.sendall(peer_list_line(["127.0.0.1:9", "192.0.2.1:7447"]))
            spammer.answer()  # its lists were read
        at = len(node.lines)
        for k in range(2):
            newcomer = stack.enter_context(LinePeer(port, source=f"127.{40 + k}.0.1"))
            newcomer.handshake(f"newcomer-{k}")
            node.wait_for(rf"\(newcomer-{k}, inbound\)", WAIT)
        evicted = [line.split()[1] for _, line in node.lines[at:] if line.startswith("evicted ")]
        assert len(evicted) == 2
        assert all(addr.startswith("127.0.0.1:") for addr in evicted), evicted
        assert not any(peer.closed_by_node(0.05) for peer in diverse)


def test_an_inbound_connection_in_its_handshake_is_evicted_before_any_connected_peer(
    tmp_path: Path,
) -> None:
    """A slot held by a connection that has not said HELLO is the first to go."""
    port = free_port()
    with (
        _node(tmp_path, port, max_inbound=2) as node,
        LinePeer(port, source="127.30.0.1") as steady,
        LinePeer(port) as silent,
    ):
        steady.handshake("steady")
        node.wait_for(r"\(steady, inbound\)", WAIT)
        silent.line()  # its HELLO; it never answers
        assert _served(port, "good-peer", "127.9.0.1")
        assert silent.closed_by_node(WAIT)
        assert not steady.closed_by_node(0.05)
