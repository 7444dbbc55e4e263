"""What TLS costs a live node against plaintext, measured in one run: prints figures, asserts
nothing.

    python -m benchmarks.bench_tls [--dials 100] [--connections 64] [--rounds 5]

For each transport (plaintext, the baseline; TLS; TLS with mTLS) it starts one `hostsim node`
process on 127.0.0.1 and, from this process, over loopback:

- dials it ``--dials`` times one after the other, each time timing from the dial to the first
  PEER_LIST: TCP connect, the TLS handshake (the dialler's side is hostsim's own,
  :class:`~hostsim.live.tls.TlsEndpoint`), TheNodes' HELLO both ways, a PEER_REQUEST and its
  answer; median and 90th percentile;
- then opens ``--connections`` connections at once, each through to its PEER_LIST, holds them,
  and closes them, ``--rounds`` times: the node's CPU time (user + system, from ``/proc``, in
  clock ticks: hence the rounds) and the growth of its resident memory the first time it
  holds them; per connection.

Every socket is on 127.0.0.1, every wait is bounded, and each node is stopped by its pid.
Linux only (``/proc``); needs the ``tls`` extra.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from hostsim.live.processes import NodeProcess, free_port, write_node_config
from hostsim.live.tls import TlsEndpoint
from hostsim.live.tlsconfig import TlsSettings

REALM = '{"name":"Cluster","code":"cluster","version":"1.0"}'
TIMEOUT = 20.0
MODES = ("plaintext", "tls", "mtls")


def hello(node_id: str) -> bytes:
    return (
        f'{{"from":"TheNodes","to":"TheNodes","msg_type":{{"HELLO":{{"node_id":"{node_id}",'
        '"listen_addr":null,"protocol":"TheNodes","version":"1","node_type":null,'
        f'"capabilities":null}}}},"payload":null,"realm":{REALM}}}\n'
    ).encode()


PEER_REQUEST = (
    b'{"from":"TheNodes","to":"x","msg_type":{"PEER_REQUEST":{"want":16}},'
    b'"payload":null,"realm":null}\n'
)


def cpu_secs(pid: int) -> float:
    """User + system CPU time of a process, from ``/proc/<pid>/stat``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Dialler:
    """Connections to the node, through TLS when ``tls`` is given, to the first PEER_LIST."""

    def __init__(self, port: int, tls: TlsEndpoint | None) -> None:
        self.port = port
        self.tls = tls
        self.count = 0

    async def connect(self) -> asyncio.StreamWriter:
        """Dial, do TheNodes' handshake, ask for peers, read until the PEER_LIST; the writer."""
        self.count += 1
        node_id = f"bench-{self.count}"
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port, limit=1 << 20)
        if self.tls is not None:
            secured = await self.tls.dial(reader, writer, TIMEOUT)
            reader, writer = secured.reader, secured.writer
        await asyncio.wait_for(reader.readline(), TIMEOUT)  # the node's HELLO
        writer.write(hello(node_id) + PEER_REQUEST)
        while True:
            line = await asyncio.wait_for(reader.readline(), TIMEOUT)
            if not line:
                raise ConnectionError("closed before a PEER_LIST")
            if b'"PEER_LIST"' in line:
                return writer


async def close_all(writers: list[asyncio.StreamWriter], *, settle: float = 0.5) -> None:
    for writer in writers:
        writer.close()
    for writer in writers:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), TIMEOUT)
    await asyncio.sleep(settle)  # the node has let every closed connection go


async def measure(
    dialler: Dialler, node: NodeProcess, dials: int, held: int, rounds: int
) -> dict[str, Any]:
    times = []
    for _ in range(dials):
        start = time.perf_counter()
        writer = await dialler.connect()
        times.append(time.perf_counter() - start)
        await close_all([writer], settle=0.0)
    await asyncio.sleep(0.5)
    cpu, rss = 0.0, 0.0
    for round_ in range(rounds):
        rss_before, cpu_before = node.rss_mb() or 0.0, cpu_secs(node.pid)
        writers = await asyncio.gather(*(dialler.connect() for _ in range(held)))
        await asyncio.sleep(0.5)
        cpu += cpu_secs(node.pid) - cpu_before
        if round_ == 0:  # the first time the node holds this many: what it takes
            rss = (node.rss_mb() or 0.0) - rss_before
        await close_all(writers)
    times.sort()
    return {
        "median_ms": statistics.median(times) * 1000,
        "p90_ms": times[int(len(times) * 0.9) - 1] * 1000,
        "cpu_ms_per_conn": cpu * 1000 / (held * rounds),
        "rss_kb_per_conn": rss * 1024 / held,
        "rss_mb": node.rss_mb(),
    }


def node_config(home: Path, mode: str, port: int) -> Path:
    extra: dict[str, Any] = {
        "network": {"persistence": {"enabled": False}, "max_inbound": 256},
        "plugins": {"enabled": []},
    }
    if mode != "plaintext":
        extra["encryption"] = {
            "enabled": True,
            "mtls": mode == "mtls",
            "paths": {
                "own_certificate": str(home / "node-cert.pem"),
                "own_private_key": str(home / "node-key.pem"),
            },
        }
    return write_node_config(home / f"{mode}.toml", node_id=f"bench-{mode}", port=port, extra=extra)


def client_tls(home: Path, mode: str) -> TlsEndpoint | None:
    if mode == "plaintext":
        return None
    settings = TlsSettings(home / "client-cert.pem", home / "client-key.pem", mtls=mode == "mtls")
    return TlsEndpoint.open(settings, node_id="bench-client", realm="Cluster", ips=["127.0.0.1"])


def run_mode(home: Path, mode: str, dials: int, held: int, rounds: int) -> dict[str, Any]:
    port = free_port()
    node = NodeProcess(node_config(home, mode, port), home / f"{mode}.log", verbose=False)
    try:
        node.wait_for("listening on", TIMEOUT)
        dialler = Dialler(port, client_tls(home, mode))
        return asyncio.run(measure(dialler, node, dials, held, rounds))
    finally:
        node.terminate()
        node.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dials", type=int, default=100, help="timed dials, one at a time")
    parser.add_argument("--connections", type=int, default=64, help="connections held at once")
    parser.add_argument(
        "--rounds", type=int, default=5, help="times the connections are opened (CPU time)"
    )
    parser.add_argument("--json", type=Path, help="write the figures as JSON too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-tls-") as tmp:
        figures = {
            mode: run_mode(Path(tmp), mode, args.dials, args.connections, args.rounds)
            for mode in MODES
        }
    base = figures["plaintext"]
    print(
        f"hostsim node over loopback: {args.dials} dials to the first PEER_LIST, then"
        f" {args.connections} connections opened at once ({args.rounds} times; CPU: the node's,"
        " over all; RSS: the first time); baseline: plaintext, same run"
    )
    print(
        f"{'transport':<10} {'median ms':>10} {'p90 ms':>8} {'x base':>7}"
        f" {'CPU ms/conn':>12} {'x base':>7} {'RSS KB/conn':>12} {'node RSS MB':>12}"
    )
    for mode, got in figures.items():
        ratio = got["median_ms"] / base["median_ms"]
        cpu_ratio = (
            got["cpu_ms_per_conn"] / base["cpu_ms_per_conn"] if base["cpu_ms_per_conn"] else 0
        )
        print(
            f"{mode:<10} {got['median_ms']:>10.2f} {got['p90_ms']:>8.2f} {ratio:>7.1f}"
            f" {got['cpu_ms_per_conn']:>12.2f} {cpu_ratio:>7.1f} {got['rss_kb_per_conn']:>12.1f}"
            f" {got['rss_mb'] or 0:>12.1f}"
        )
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
