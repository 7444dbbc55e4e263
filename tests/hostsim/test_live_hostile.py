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
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from hostsim.cli import _LogLines
from hostsim.live.processes import free_port, write_node_config
from tests.support.line_peer import LinePeer
from tests.support.processes import start_node, stop_node, wait_listening

WAIT = 20.0


def _config(tmp_path: Path, port: int, **network: Any) -> Path:
    extra: dict[str, Any] = {"realm": {"name": "Example"}}
    if network:
        extra["network"] = network
    return write_node_config(tmp_path / "node.toml", node_id="victim", port=port, extra=extra)


def _served(port: int, node_id: str, source: str, timeout: float = 5.0) -> bool:
    """Whether a good peer from ``source`` gets the node's HELLO and an answer to its request."""
    try:
        with LinePeer(port, source=source, timeout=timeout) as peer:
            peer.handshake(node_id)
            return b'"PEER_LIST"' in peer.answer()
    except (OSError, ConnectionError):
        return False


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
