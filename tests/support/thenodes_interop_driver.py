"""Run real TheNodes binaries and ``hostsim node`` processes together, for
``test_thenodes_interop.py``. It is started inside a private network namespace that has only
loopback (TheNodes binds ``0.0.0.0``), so nothing here reaches another interface.

    python thenodes_interop_driver.py SCENARIO OUTDIR --bin VERSION=PATH... [--hold SECS]

It orchestrates and waits; it asserts nothing. Every process it starts writes its output to
``OUTDIR/<version>/<name>.log`` and is stopped by its pid (SIGINT, then SIGKILL) at the end; every
wait is bounded. ``OUTDIR/<version>/ports.json`` names the ports. The test reads what happened.

Scenarios:

``links``: per version, TheNodes ``tn`` and four hostsim nodes: ``a`` dials ``tn``; ``tn`` dials
``b``; ``c`` (another realm) and ``d`` (another realm version) and ``tn`` dial each other. Over
TLS, with ``hostsim cert`` making TheNodes' certificate and each side's certificate in the
other's trusted folder: TheNodes ``ts`` (``mtls = true``) dials hostsim ``f`` (mTLS,
``allowlist``) and is dialled by hostsim ``e`` (mTLS, ``tofu``), which also dials the plaintext
``tn``; the plaintext hostsim ``g`` dials ``ts``. TheNodes' example config: hostsim ``x`` runs
it and dials TheNodes ``y``, TheNodes ``w`` dials it; ``y`` and ``w`` run it with other ports
(0.2.0: as shipped, TLS; 0.4.0, which reads it as plaintext: all with ``enabled = true``).
Once every first contact happened, it holds ``--hold`` seconds with default timers, then stops all.

``peers``: per version, TheNodes ``tn`` (persistence on) dials hostsim seed ``s`` and saves its
``peers.json``; ``peerstore import --thenodes`` reads it into a hostsim store and ``peerstore
export --format thenodes`` writes it back as a fresh TheNodes node ``tq``'s ``peers.json``;
``tq`` starts with no bootstrap node. TheNodes dials no stored peer at startup, but answers a
peer request from its store: hostsim node ``p`` dials ``tq``, asks, and dials what it is told.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script: find tests.
from tests.support.thenodes_example import THENODES_EXAMPLE

WAIT = 30.0
"""The longest any one condition is waited for."""
BUDGET = 150.0
"""The longest all the conditions of one run are waited for, together."""
_deadline = time.monotonic() + BUDGET


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Procs:
    """Processes started here, each stopped by its own pid."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, argv: list[str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            proc = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    @staticmethod
    def stop(proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            self.stop(proc)


@contextmanager
def processes() -> Iterator[Procs]:
    procs = Procs()
    try:
        yield procs
    finally:
        procs.stop_all()


def until(condition: Callable[[], bool], timeout: float = WAIT) -> bool:
    deadline = min(time.monotonic() + timeout, _deadline)
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def has(log: Path, pattern: str) -> Callable[[], bool]:
    regex = re.compile(pattern)
    return lambda: log.exists() and regex.search(log.read_text(errors="replace")) is not None


def node_config(
    port: int, node_id: str, seeds: list[int], *, realm: str = "Example", version: str = "1.0"
) -> str:
    """What a TheNodes node and a hostsim node read alike: port, seeds, realm and node."""
    seeds_toml = ", ".join(f'"127.0.0.1:{p}"' for p in seeds)
    return (
        f"port = {port}\nbootstrap_nodes = [{seeds_toml}]\n"
        f'[realm]\nname = "{realm}"\nversion = "{version}"\n'
        f'[node]\nid = "{node_id}"\nstate_dir = "state"\n'
    )


def thenodes_config(port: int, node_id: str, seeds: list[int], *, persistence: bool = False) -> str:
    text = node_config(port, node_id, seeds)
    if persistence:
        text += "[network.persistence]\nenabled = true\nsave_interval_secs = 1\n"
    return text


def hostsim_config(
    port: int,
    node_id: str,
    seeds: list[int],
    *,
    realm: str = "Example",
    version: str = "1.0",
    persistence: bool = False,
) -> str:
    text = node_config(port, node_id, seeds, realm=realm, version=version)
    if persistence:
        text += '[network.persistence]\nenabled = true\n[plugins]\nenabled = ["peerstore"]\n'
    return text


def start_thenodes(
    procs: Procs, binary: str, where: Path, name: str, text: str
) -> subprocess.Popen[bytes]:
    home = where / name
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(text)
    return procs.start([binary, "--config", "config.toml"], home, where / f"{name}.log")


def start_hostsim(procs: Procs, where: Path, name: str, text: str) -> None:
    home = where / name
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(text)
    procs.start(
        [sys.executable, "-m", "hostsim", "node", "config.toml"], home, where / f"{name}.log"
    )


def tls_table(*, mtls: bool, trust: str = "") -> str:
    """``[encryption]`` with TLS on, the files in TheNodes' ``pki/`` layout."""
    return (
        f"[encryption]\nenabled = true\nmtls = {str(mtls).lower()}\n[encryption.paths]\n"
        'own_certificate = "pki/own/cert.pem"\nown_private_key = "pki/own/key.pem"\n'
        f'trusted_cert_dir = "pki/trusted/certs"\n{trust}'
    )


def make_certificate(home: Path, *trusting: Path) -> None:
    """``hostsim cert`` in ``home`` for its config.toml; a copy in each ``trusting`` node's
    trusted folder."""
    copies = [arg for other in trusting for arg in ("--copy-to", str(other / "pki/trusted/certs"))]
    argv = [sys.executable, "-m", "hostsim", "cert", "config.toml", *copies]
    ran = subprocess.run(argv, cwd=home, capture_output=True, text=True, timeout=60, check=False)
    (home / "cert.out").write_text(f"status {ran.returncode}\n{ran.stdout}{ran.stderr}")


def write_config(where: Path, name: str, text: str) -> Path:
    home = where / name
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(text)
    return home


def example_configs(version: str, ports: dict[str, int]) -> dict[str, str]:
    """TheNodes' example config for hostsim ``x``, and for TheNodes ``y`` (which ``x`` dials)
    and ``w`` (which dials ``x``).

    0.2.0 reads it as TLS as shipped: ``x`` runs it unmodified (port 50001, seeds 50002 and
    50003); ``y`` runs it on 50002 without seeds, ``w`` on 50004 with ``x`` as its seed. 0.4.0
    reads ``enabled = false`` as plaintext, so all three get ``enabled = true`` (TLS for all)
    and ports of their own."""
    text, x_port = THENODES_EXAMPLE, 50001
    y_port, w_port = 50002, 50004
    if not version.startswith("0.2"):
        text = text.replace("\nenabled = false ", "\nenabled = true ")
        x_port, y_port, w_port = ports["x"], ports["y"], ports["w"]
    port, seeds = "port = 50001", 'bootstrap_nodes = ["127.0.0.1:50002", "127.0.0.1:50003"]'
    x = text.replace(port, f"port = {x_port}")
    if not version.startswith("0.2"):
        x = x.replace(seeds, f'bootstrap_nodes = ["127.0.0.1:{y_port}"]')
    y = text.replace(port, f"port = {y_port}").replace(seeds, "bootstrap_nodes = []")
    w = text.replace(port, f"port = {w_port}")
    w = w.replace(seeds, f'bootstrap_nodes = ["127.0.0.1:{x_port}"]')
    return {"x": x, "y": y, "w": w}


def tls_links(
    procs: Procs, version: str, binary: str, where: Path, ports: dict[str, int]
) -> list[Callable[[], bool]]:
    """Start the TLS nodes and the example pair of one version; return what to wait for."""
    tag = version.replace(".", "")
    ts = write_config(
        where,
        "ts",
        thenodes_config(ports["ts"], f"ts-{tag}", [ports["f"], ports["z"]]) + tls_table(mtls=True),
    )
    tofu = '[encryption.trust_policy]\nmode = "tofu"\n'
    tofu += '[encryption.trust_policy.paths]\nobserved_dir = "pki/observed"\n'
    seeds = [ports["ts"], ports["tn"]]
    e = write_config(
        where, "e", hostsim_config(ports["e"], f"e-{tag}", seeds) + tls_table(mtls=True, trust=tofu)
    )
    allowlist = '[encryption.trust_policy]\nmode = "allowlist"\n'
    f = write_config(
        where,
        "f",
        hostsim_config(ports["f"], f"f-{tag}", []) + tls_table(mtls=True, trust=allowlist),
    )
    write_config(where, "g", hostsim_config(ports["g"], f"g-{tag}", [ports["ts"]]))
    make_certificate(ts, f)  # TheNodes makes none: hostsim cert does; e trusts on first use
    make_certificate(e, ts)
    make_certificate(f, ts)
    examples = {
        name: write_config(where, name, text)
        for name, text in example_configs(version, ports).items()
    }
    make_certificate(examples["x"], examples["w"])  # the example's paths: pki/own/example-app.*
    make_certificate(examples["y"])
    make_certificate(examples["w"])
    procs.start([binary, "--config", "config.toml"], where / "y", where / "y.log")
    procs.start(
        [sys.executable, "-m", "hostsim", "node", "config.toml"], where / "f", where / "f.log"
    )
    until(has(where / "f.log", "listening on"))
    procs.start([binary, "--config", "config.toml"], where / "ts", where / "ts.log")
    until(has(where / "y.log", "listener_bind"))
    procs.start(
        [sys.executable, "-m", "hostsim", "node", "config.toml"], where / "x", where / "x.log"
    )
    until(has(where / "x.log", "listening on"))
    procs.start([binary, "--config", "config.toml"], where / "w", where / "w.log")
    until(has(where / "ts.log", "listener_bind"))
    for name in ("e", "g"):
        procs.start(
            [sys.executable, "-m", "hostsim", "node", "config.toml"],
            where / name,
            where / f"{name}.log",
        )
    ts_port, tn_port, y_port = ports["ts"], ports["tn"], 50002 if tag == "020" else ports["y"]
    w_id = r"[0-9a-f-]{36}"  # w's node id: a UUID it keeps in its id file
    return [
        has(where / "e.log", rf"connected to 127\.0\.0\.1:{ts_port} \(ts-{tag}, outbound\)"),
        has(where / "e.log", rf"peer list from 127\.0\.0\.1:{ts_port}:"),
        has(where / "e.log", rf"dial 127\.0\.0\.1:{tn_port} failed: handshake failed: TLS"),
        has(where / "f.log", rf"\(ts-{tag}, inbound\)"),
        has(where / "g.log", rf"dial 127\.0\.0\.1:{ts_port} failed"),
        has(where / "x.log", rf"connected to 127\.0\.0\.1:{y_port} \(\S+, outbound\)"),
        has(where / "x.log", rf"\({w_id}, inbound\)"),
    ]


def links(out: Path, bins: dict[str, str], hold: float) -> None:
    waits: list[Callable[[], bool]] = []
    with processes() as procs:
        for version, binary in bins.items():
            where = out / version
            where.mkdir(parents=True)
            tag = version.replace(".", "")
            names = ("tn", "a", "b", "c", "d", "ts", "e", "f", "g", "z", "x", "y", "w")
            ports = {name: free_port() for name in names}
            (where / "ports.json").write_text(json.dumps(ports))
            start_hostsim(procs, where, "b", hostsim_config(ports["b"], f"b-{tag}", []))
            start_hostsim(
                procs,
                where,
                "c",
                hostsim_config(ports["c"], f"c-{tag}", [ports["tn"]], realm="Other"),
            )
            start_hostsim(
                procs,
                where,
                "d",
                hostsim_config(ports["d"], f"d-{tag}", [ports["tn"]], version="2.0"),
            )
            until(has(where / "b.log", "listening on"))
            seeds = [ports["b"], ports["c"], ports["d"]]
            start_thenodes(
                procs, binary, where, "tn", thenodes_config(ports["tn"], f"tn-{tag}", seeds)
            )
            until(has(where / "tn.log", "listener_bind"))
            start_hostsim(procs, where, "a", hostsim_config(ports["a"], f"a-{tag}", [ports["tn"]]))
            tn = ports["tn"]
            waits += [
                has(where / "a.log", rf"connected to 127\.0\.0\.1:{tn} \(tn-{tag}, outbound\)"),
                has(where / "a.log", rf"peer list from 127\.0\.0\.1:{tn}:"),
                has(where / "b.log", rf"\(tn-{tag}, inbound\)"),
                has(where / "tn.log", rf"dial_start addr=Some\(\"127\.0\.0\.1:{ports['c']}\"\)"),
                has(where / "tn.log", rf"dial_start addr=Some\(\"127\.0\.0\.1:{ports['d']}\"\)"),
                has(where / "c.log", rf"dialling 127\.0\.0\.1:{tn}"),
                has(where / "d.log", rf"dialling 127\.0\.0\.1:{tn}"),
            ]
            waits += tls_links(procs, version, binary, where, ports)
        for wait in waits:
            until(wait)
        time.sleep(2.0 + hold)  # refusals settle; then the long hold on default timers
        for log in out.glob("*/*.log"):  # what happened up to now, before anything stops
            shutil.copy(log, log.with_suffix(".held"))


def peerstore(cwd: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "thenodes_peerstore", *map(str, args)]
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def peers(out: Path, bins: dict[str, str]) -> None:
    with processes() as procs:
        jobs = []
        for version, binary in bins.items():
            where = out / version
            where.mkdir(parents=True)
            tag = version.replace(".", "")
            ports = {name: free_port() for name in ("s", "tn", "tq", "h", "p")}
            (where / "ports.json").write_text(json.dumps(ports))
            start_hostsim(procs, where, "s", hostsim_config(ports["s"], f"s-{tag}", []))
            until(has(where / "s.log", "listening on"))
            text = thenodes_config(ports["tn"], f"tn-{tag}", [ports["s"]], persistence=True)
            thenodes = start_thenodes(procs, binary, where, "tn", text)
            jobs.append((binary, where, tag, ports, thenodes))
        for binary, where, tag, ports, thenodes in jobs:
            until(has(where / "s.log", rf"\(tn-{tag}, inbound\)"))
            saved = where / "tn" / "state" / "peers.json"
            until(has(saved, r'"node_id": "s-'))
            Procs.stop(thenodes)  # a graceful stop saves it too
            if saved.exists():
                shutil.copy(saved, where / "thenodes-peers.json")
            # The file as a hostsim node's store reads it, and written back for TheNodes.
            host = where / "h"
            host.mkdir()
            config = hostsim_config(ports["h"], f"h-{tag}", [], persistence=True)
            (host / "config.toml").write_text(config)
            given = where / "thenodes-peers.json"
            ran = peerstore(host, "import", "--thenodes", given, "-c", "config.toml")
            (where / "import.out").write_text(f"status {ran.returncode}\n{ran.stdout}{ran.stderr}")
            ran = peerstore(host, "export", "--format", "json", "-c", "config.toml")
            (where / "store.json").write_text(ran.stdout)
            ran = peerstore(host, "export", "--format", "thenodes", "-c", "config.toml")
            (where / "exported-peers.json").write_text(ran.stdout)
            tq = where / "tq" / "state"
            tq.mkdir(parents=True)
            (tq / "peers.json").write_text(ran.stdout)
            text = thenodes_config(ports["tq"], f"tq-{tag}", [], persistence=True)
            start_thenodes(procs, binary, where, "tq", text)
            until(has(where / "tq.log", "listener_bind"))
            config = hostsim_config(ports["p"], f"p-{tag}", [ports["tq"]])
            start_hostsim(procs, where, "p", config)
        for _binary, where, tag, ports, _thenodes in jobs:
            until(has(where / "p.log", rf"dialling 127\.0\.0\.1:{ports['s']} "))
            until(has(where / "s.log", rf"\(p-{tag}, inbound\)"))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=["links", "peers"])
    parser.add_argument("out", type=Path)
    parser.add_argument("--bin", action="append", default=[], metavar="VERSION=PATH")
    parser.add_argument("--hold", type=float, default=0.0)
    args = parser.parse_args()
    bins = dict(item.split("=", 1) for item in args.bin)
    # SIGTERM (the test's timeout) unwinds like an error: every process started is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped by SIGTERM"))
    os.environ.pop("RUST_LOG", None)
    if args.scenario == "links":
        links(args.out, bins, args.hold)
    else:
        peers(args.out, bins)
    return 0


if __name__ == "__main__":
    sys.exit(main())
