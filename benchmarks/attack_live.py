"""What a hostile peer can make a live node hold, log and dial: prints figures, asserts nothing.

    python -m benchmarks.attack_live [--lists 500]

Starts one `hostsim node` process on 127.0.0.1 (with the peer store), attacks it from this
process over loopback, one attack after the other, and prints after each the node's RSS, its
log volume (stderr, warnings and up), its open file descriptors, and what the attack was
after (an answer's size, dials, a good peer served or not). Every loop is bounded, every
socket is on 127.0.0.1, and the node is stopped by its pid at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from hostsim.live.processes import NodeProcess, free_port, write_node_config

REALM = '{"name":"Example","code":"example","version":"1.0"}'
TIMEOUT = 10.0


def hello(node_id: str) -> bytes:
    return (
        f'{{"from":"TheNodes","to":"TheNodes","msg_type":{{"HELLO":{{"node_id":"{node_id}",'
        '"listen_addr":null,"protocol":"TheNodes","version":"1","node_type":null,'
        f'"capabilities":null}}}},"payload":null,"realm":{REALM}}}\n'
    ).encode()


def peer_list(peers: list[str]) -> bytes:
    body = {"PEER_LIST": {"peers": peers}}
    line = {"from": "x", "to": "y", "msg_type": body, "payload": None, "realm": None}
    return json.dumps(line).encode() + b"\n"


def peer_request(want: int) -> bytes:
    line = {"from": "x", "to": "y", "msg_type": {"PEER_REQUEST": {"want": want}}}
    return json.dumps({**line, "payload": None, "realm": None}).encode() + b"\n"


class Peer:
    """One connection to the node, handshake done."""

    def __init__(self, port: int, node_id: str, source: str = "127.0.0.1") -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), TIMEOUT, (source, 0))
        self.buffer = bytearray()
        self.line()
        self.sock.sendall(hello(node_id))

    def line(self) -> bytes:
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("closed by the node")
            self.buffer += chunk
        line, _, rest = bytes(self.buffer).partition(b"\n")
        self.buffer[:] = rest
        return line

    def answer(self, want: int) -> bytes:
        self.sock.sendall(peer_request(want))
        while b'"PEER_LIST"' not in (line := self.line())[:200]:
            pass
        return line

    def close(self) -> None:
        self.sock.close()


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class Victim:
    """Listeners on 127.0.0.1 that count the connections they accept and close them."""

    def __init__(self, count: int) -> None:
        self.socks = []
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sock.listen(128)
            sock.settimeout(0.05)
            self.socks.append(sock)
        self.ports = [s.getsockname()[1] for s in self.socks]
        self.accepted = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.done.is_set():
            for sock in self.socks:
                with contextlib.suppress(OSError):
                    conn, _ = sock.accept()
                    self.accepted += 1
                    conn.close()

    def close(self) -> None:
        self.done.set()
        self.thread.join(2)
        for sock in self.socks:
            sock.close()


def spellings(port: int) -> list[str]:
    return [f"127.0.0.1:{'0' * k}{port}" for k in range(8)] + [
        f"[::ffff:127.0.0.1]:{'0' * k}{port}" for k in range(8)
    ]


@contextlib.contextmanager
def node_process(workdir: Path) -> Iterator[tuple[NodeProcess, int]]:
    port = free_port()
    extra = {
        "realm": {"name": "Example"},
        "network": {"max_inbound": 16, "connection_policy": {"heartbeat_timeout_ms": 3000}},
    }
    path = write_node_config(workdir / "node.toml", node_id="victim", port=port, extra=extra)
    node = NodeProcess(path, workdir / "node.log", verbose=False)
    try:
        node.wait_for("listening on", 20)
        yield node, port
    finally:
        node.stop()


class Attacks:
    """The attacks on one node, each printing the node's figures after it."""

    def __init__(self, node: NodeProcess, port: int, log: Path) -> None:
        self.node = node
        self.port = port
        self.log = log

    def report(self, attack: str, result: str = "") -> None:
        self.node.poll_lines()
        size = self.log.stat().st_size if self.log.exists() else 0
        rss = self.node.rss_mb()
        print(
            f"{attack:<48} RSS {float('nan') if rss is None else rss:6.1f} MB  log {size:7,d} B"
            f"  fds {fds(self.node.pid):3d}  {result}",
            flush=True,
        )

    def junk_lists(self, lists: int) -> None:
        """Peer lists of 16 strings of 60 KB, one forging a log line; then want=1000."""
        peer = Peer(self.port, "flooder")
        began = time.monotonic()
        for i in range(lists):
            junk = [f"{i}-{k}-" + "A" * 60_000 for k in range(15)]
            junk.append("x\nWARNING hostsim: FORGED " + "B" * 60_000)
            peer.sock.sendall(peer_list(junk))
            if i + 1 in (120, lists):
                answer = peer.answer(1000)
                took = time.monotonic() - began
                self.report(
                    f"{i + 1} junk peer lists of 16 x 60 KB",
                    f"{took:.1f} s; answer to want=1000: {len(answer):,d} B",
                )
        peer.close()

    def amplification(self, addresses: int, secs: float = 5.0) -> None:
        """16 spellings of each of ``addresses`` victim addresses, a list every 5 ms."""
        victim = Victim(addresses)
        peer = Peer(self.port, "amplifier")
        began = time.monotonic()
        i = 0
        while time.monotonic() - began < secs:
            peer.sock.sendall(peer_list(spellings(victim.ports[i % addresses])))
            i += 1
            time.sleep(0.005)
        time.sleep(0.5)
        self.report(
            f"{addresses} address(es) x 16 spellings, {secs:.0f} s",
            f"{i:,d} lists; victim accepted {victim.accepted}",
        )
        victim.close()
        peer.close()

    def bad_lines(self, peers: int = 2000) -> None:
        """``peers`` connections from as many IPs, each sending a line that is not JSON."""
        began = time.monotonic()
        for i in range(peers):
            source = f"127.{10 + i // 250}.{i % 250}.1"
            with contextlib.suppress(OSError):
                sock = socket.create_connection(("127.0.0.1", self.port), TIMEOUT, (source, 0))
                sock.recv(4096)
                sock.sendall(b"{not json\n\x1b[31mFORGED\n")
                sock.close()
        self.report(f"{peers:,d} peers sending bad JSON", f"{time.monotonic() - began:.1f} s")

    def never_read(self, sinks: int = 12) -> None:
        """With a full book (1,000 addresses the loopback node keeps and never dials), peers
        ask for 1,000 peers 300 times and never read."""
        feeder = Peer(self.port, "feeder")
        for i in range(63):
            feeder.sock.sendall(peer_list([f"10.{i}.0.{k}:7447" for k in range(16)]))
        answer = feeder.answer(1000)
        feeder.close()
        self.report("a full book", f"answer to want=1000: {len(answer):,d} B")
        socks = []
        for i in range(sinks):
            sink = socket.create_connection(("127.0.0.1", self.port), TIMEOUT)
            sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sink.sendall(hello(f"sink-{i}") + peer_request(1000) * 300)
            socks.append(sink)
        time.sleep(1.0)
        self.report(f"{sinks} peers that never read, 1 s")
        time.sleep(3.5)
        self.report("... past the 3 s timeout")
        for sink in socks:
            sink.close()

    def idle_table(self, cap: int = 16) -> None:
        """``cap`` idle inbound peers fill the table; then a good peer asks for peers."""
        idle = [Peer(self.port, f"idle-{i}", f"127.1.{i}.1") for i in range(cap)]
        time.sleep(0.2)
        try:
            good = Peer(self.port, "good-peer")
            served = bool(good.answer(16))
            good.close()
        except (OSError, ConnectionError):
            served = False
        self.report(f"{cap} idle inbound peers (the cap), then a good", f"served: {served}")
        for peer in idle:
            peer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lists", type=int, default=500, help="junk peer lists (default 500)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="attack-live-") as tmp:
        workdir = Path(tmp)
        log = workdir / "node.log"
        with node_process(workdir) as (node, port):
            attacks = Attacks(node, port, log)
            attacks.report("started")
            attacks.junk_lists(args.lists)
            attacks.amplification(1)
            attacks.amplification(64)
            attacks.bad_lines()
            attacks.never_read()
            attacks.idle_table()
            forged = [line for line in log.read_bytes().splitlines() if b"FORGED" in line[:40]]
            print(f"log lines starting with peer text: {len(forged)}")
            node.terminate()


if __name__ == "__main__":
    main()
