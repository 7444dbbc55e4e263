"""What a hostile peer can make a live node hold, log and dial: prints figures, asserts nothing.

    python -m benchmarks.attack_live [--lists 500] [--only NAME,...]

Starts one `hostsim node` process on 127.0.0.1 (with the peer store), attacks it from this
process over loopback, one attack after the other, and prints after each the node's RSS, its
log volume (stderr, warnings and up), its open file descriptors, and what the attack was
after (an answer's size, dials, a good peer served or not), with the same figure without the
attack (the baseline) where there is one. The blocked log gets a node of its own, whose
stderr is a pipe nobody reads. Every loop is bounded, every socket is on 127.0.0.1, and every
node is stopped by its pid at the end, whatever happens. The attacks use nothing but the
wire and the process, so the same file runs against an earlier version of the node.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
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

    def __init__(
        self, port: int, node_id: str, source: str = "127.0.0.1", timeout: float = TIMEOUT
    ) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout, (source, 0))
        self.sock.settimeout(timeout)
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


def probe(sender: str) -> bytes:
    line = {"from": sender, "to": "victim", "msg_type": "HEARTBEAT"}
    text = {"type": "Text", "value": "liveness_probe_v1"}
    return json.dumps({**line, "payload": text, "realm": None}).encode() + b"\n"


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def served(port: int, node_id: str, source: str, timeout: float = 2.0) -> bool:
    """Whether a good peer gets the node's HELLO and an answer to a request for peers."""
    try:
        peer = Peer(port, node_id, source, timeout)
        try:
            return bool(peer.answer(16))
        finally:
            peer.close()
    except (OSError, ConnectionError):
        return False


class HalfOpen:
    """``count`` connections from 127.0.0.1 that never send a HELLO, each reopened as soon
    as the node closes it, by a thread of its own."""

    def __init__(self, port: int, count: int) -> None:
        self.port, self.count, self.opened = port, count, 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        socks: list[socket.socket] = []
        while not self.done.is_set():
            while len(socks) < self.count:
                with contextlib.suppress(OSError):
                    sock = socket.create_connection(("127.0.0.1", self.port), 1.0)
                    sock.setblocking(False)
                    socks.append(sock)
                    self.opened += 1
            for sock in list(socks):
                try:
                    gone = not sock.recv(1 << 16)
                except BlockingIOError:
                    gone = False
                except OSError:
                    gone = True
                if gone:
                    sock.close()
                    socks.remove(sock)
            time.sleep(0.001)
        for sock in socks:
            sock.close()

    def close(self) -> None:
        self.done.set()
        self.thread.join(TIMEOUT)


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

    def amplifications(self) -> None:
        self.amplification(1)
        self.amplification(64)

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

    def fill_book(self) -> None:
        """1,024 addresses (the loopback node keeps 1,000 and never dials them), from eight
        feeders of eight lists each."""
        for f in range(8):
            feeder = Peer(self.port, f"feeder-{f}", f"127.7.{f}.1")
            for i in range(8 * f, 8 * f + 8):
                feeder.sock.sendall(peer_list([f"10.{i}.0.{k}:7447" for k in range(16)]))
            answer = feeder.answer(1000)
            feeder.close()
        self.report("a full book", f"answer to want=1000: {len(answer):,d} B")

    def never_read(self, sinks: int = 12) -> None:
        """With a full book, peers ask for 1,000 peers 300 times, send 5,000 liveness
        probes, and never read."""
        self.fill_book()
        socks = []
        for i in range(sinks):
            sink = socket.create_connection(("127.0.0.1", self.port), TIMEOUT)
            sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sink.sendall(hello(f"sink-{i}") + peer_request(1000) * 300 + probe(f"sink-{i}") * 5000)
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

    def half_open(self, cap: int = 16, secs: float = 5.0) -> None:
        """``cap`` connections from one IP that never send a HELLO, reopened as the node closes
        them; meanwhile a good peer of another network group tries every 0.1 s."""

        def tries() -> tuple[int, int]:
            began, ok, n = time.monotonic(), 0, 0
            while time.monotonic() - began < secs:
                ok += served(self.port, f"good-{n}", f"127.9.{n >> 8 & 255}.{n & 255 or 1}")
                n += 1
                time.sleep(0.1)
            return ok, n

        baseline = tries()
        flood = HalfOpen(self.port, cap)
        try:
            ok, n = tries()
        finally:
            flood.close()
        self.report(
            f"{cap} half-open connections, reopened, {secs:.0f} s",
            f"good peer served {ok} of {n} tries (without: {baseline[0]} of {baseline[1]});"
            f" {flood.opened:,d} half-open opened",
        )

    def request_flood(self, secs: float = 5.0, want: int = 1000) -> None:
        """With a full book, one connection sends PEER_REQUESTs (want ``want``) as fast as it
        can."""
        self.fill_book()
        peer = Peer(self.port, "asker")
        request = peer_request(want)
        sent = [0]
        done = threading.Event()

        def send() -> None:
            with contextlib.suppress(OSError):
                while not done.is_set():
                    peer.sock.sendall(request * 64)
                    sent[0] += len(request) * 64

        sender = threading.Thread(target=send, daemon=True)
        began = time.monotonic()
        sender.start()
        answers = received = 0
        peer.sock.settimeout(0.5)
        while time.monotonic() - began < secs:
            with contextlib.suppress(TimeoutError):
                line = peer.line()
                received += len(line) + 1
                answers += b'"PEER_LIST"' in line[:200]
        done.set()
        elapsed = time.monotonic() - began
        peer.close()
        sender.join(TIMEOUT)
        each = received / answers / len(request) if answers else 0.0
        self.report(
            f"PEER_REQUEST flood (want={want}), {secs:.0f} s",
            f"{answers / elapsed:,.1f} answers/s, {received / elapsed / 1024:,.0f} KiB/s out"
            f" ({each:,.0f} bytes out per byte of a request answered)",
        )

    def list_flood(self, secs: float = 5.0) -> None:
        """One connection sends peer lists of one new address each, as fast as it can, for
        ``secs`` seconds: the status lines they make meanwhile."""
        peer = Peer(self.port, "lister", "127.8.0.1")
        self.node.poll_lines()
        at = len(self.node.lines)
        began = time.monotonic()
        i = 0
        while time.monotonic() - began < secs:
            batch = b"".join(
                peer_list([f"10.{(i + k) >> 16 & 255}.{(i + k) >> 8 & 255}.{(i + k) & 255}:7447"])
                for k in range(100)
            )
            peer.sock.sendall(batch)
            i += 100
        elapsed = time.monotonic() - began
        peer.close()
        time.sleep(1.0)
        self.node.poll_lines()
        lines = [
            line
            for t, line in self.node.lines[at:]
            if t <= began + elapsed and line.startswith("peer list from")
        ]
        size = sum(len(line) + len("hostsim node: \n") for line in lines)
        self.report(
            f"{i:,d} small peer lists, {elapsed:.0f} s",
            f"{len(lines) * 60 / elapsed:,.0f} status lines a minute"
            f" ({size * 60 / elapsed / 1024:,.1f} KiB a minute)",
        )


def blocked_log(workdir: Path, incidents: int = 40) -> None:
    """A node whose stderr is a pipe (4 KiB) nobody reads; ``incidents`` peers from as many
    IPs send a line that is not JSON (a warning each, as the rate allows); then a good peer,
    then SIGTERM."""
    port = free_port()
    path = write_node_config(
        workdir / "blocked.toml",
        node_id="blocked",
        port=port,
        extra={"realm": {"name": "Example"}},
    )
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)
    process = subprocess.Popen(
        [sys.executable, "-m", "hostsim", "node", str(path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=write_end,
    )
    os.close(write_end)
    try:
        deadline = time.monotonic() + 20
        while not served(port, "before", "127.9.0.1", 0.5):
            if time.monotonic() > deadline:
                raise TimeoutError("the node never served")
        began = time.monotonic()
        baseline = served(port, "baseline", "127.9.0.3", 5.0)
        baseline_took = time.monotonic() - began
        for i in range(incidents):
            with contextlib.suppress(OSError, ConnectionError):
                sock = socket.create_connection(("127.0.0.1", port), 1.0, (f"127.10.{i}.1", 0))
                sock.settimeout(1.0)
                with contextlib.suppress(OSError):
                    sock.recv(4096)
                    sock.sendall(b"{not json\n")
                    sock.recv(4096)
                sock.close()
        began = time.monotonic()
        ok = served(port, "after", "127.9.0.2", 5.0)
        took = time.monotonic() - began
        os.kill(process.pid, signal.SIGTERM)
        began = time.monotonic()
        try:
            process.wait(10)
            stopped = f"SIGTERM stopped it in {time.monotonic() - began:.1f} s"
        except subprocess.TimeoutExpired:
            stopped = "SIGTERM ignored for 10 s"
        print(
            f"{'blocked stderr, ' + str(incidents) + ' incidents':<48} good peer served: {ok}"
            f" ({took:.1f} s; before the incidents: {baseline}, {baseline_took:.1f} s); {stopped}",
            flush=True,
        )
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(5)
        os.close(read_end)


ATTACKS = (
    "junk",
    "amplification",
    "bad-lines",
    "never-read",
    "idle-table",
    "half-open",
    "request-flood",
    "list-flood",
    "blocked-log",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lists", type=int, default=500, help="junk peer lists (default 500)")
    parser.add_argument(
        "--only",
        default=",".join(ATTACKS),
        help=f"the attacks to run, comma-separated (default: all of {', '.join(ATTACKS)})",
    )
    args = parser.parse_args()
    only = set(args.only.split(","))
    if unknown := only - set(ATTACKS):
        parser.error(f"--only: unknown attack(s) {', '.join(sorted(unknown))}")
    with tempfile.TemporaryDirectory(prefix="attack-live-") as tmp:
        workdir = Path(tmp)
        log = workdir / "node.log"
        with node_process(workdir) as (node, port):
            attacks = Attacks(node, port, log)
            attacks.report("started")
            steps: dict[str, Callable[[], None]] = {
                "junk": lambda: attacks.junk_lists(args.lists),
                "amplification": attacks.amplifications,
                "bad-lines": attacks.bad_lines,
                "never-read": attacks.never_read,
                "idle-table": attacks.idle_table,
                "half-open": attacks.half_open,
                "request-flood": attacks.request_flood,
                "list-flood": attacks.list_flood,
            }
            for name, step in steps.items():
                if name in only:
                    step()
            forged = [line for line in log.read_bytes().splitlines() if b"FORGED" in line[:40]]
            print(f"log lines starting with peer text: {len(forged)}")
            node.terminate()
        if "blocked-log" in only:
            blocked_log(workdir)


if __name__ == "__main__":
    main()
