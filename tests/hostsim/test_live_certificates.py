"""`hostsim node` processes over TLS on loopback, restarting: a proven peer that presents
another certificate at the same address is not the peer the node proved.

Node b proves node a over TLS and remembers a's certificate. a gets a new certificate and
listens again on the same port; b's next start still dials it from its plan, meets the new
certificate, and says so in one line naming the address and both fingerprints. The start
after that does not plan it; once the operator accepts the new certificate with ``peerstore
accept-cert``, the next start plans and dials it again. Every process is stopped by its pid in
a ``finally``; every wait is bounded.
"""

from __future__ import annotations

import re
import time
import tomllib
from pathlib import Path

from hostsim.live.certs import spki_fingerprint
from hostsim.live.processes import free_port, write_node_config
from tests.support.command import Run
from tests.support.processes import node_processes
from tests.support.tls import certificate, encryption

WAIT = 20.0


def _said(log: Path, pattern: str, timeout: float = WAIT) -> str:
    """The first line of a node's log (its stderr) matching ``pattern``, waiting for it."""
    deadline = time.monotonic() + timeout
    while True:
        text = log.read_text(encoding="utf-8") if log.exists() else ""
        found = re.search(pattern, text)
        if found is not None:
            return found.group(0)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{log.name}: nothing matching {pattern!r} within {timeout} s")
        time.sleep(0.1)


def _entry(state: Path, addr: str) -> dict[str, object]:
    document = tomllib.loads((state / "plugins" / "peerstore" / "cluster.toml").read_text())
    [found] = [p for p in document["peers"] if p["addr"] == addr]
    return found


def test_a_proven_peer_with_another_certificate_at_its_address_is_not_planned_until_accepted(
    tmp_path: Path, peerstore: Run
) -> None:
    ports = {"a": free_port(), "b": free_port()}
    a_addr = f"127.0.0.1:{ports['a']}"
    pki = tmp_path / "a-pki"
    a_config = write_node_config(
        tmp_path / "a.toml", node_id="a", port=ports["a"], extra=encryption(pki)
    )
    b_tls = encryption(tmp_path / "b-pki")
    # One node b, with a in its seeds the first time only: later it dials a only if it plans it.
    b_seeded = write_node_config(
        tmp_path / "b-seeded.toml", node_id="b", port=ports["b"], seeds=[a_addr], extra=b_tls
    )
    b_config = write_node_config(tmp_path / "b.toml", node_id="b", port=ports["b"], extra=b_tls)
    connected = rf"connected to {re.escape(a_addr)} \(a, outbound\)"
    planned = rf"\d\. {re.escape(a_addr)} \(peerstore\)"
    with node_processes(tmp_path, WAIT) as start:
        a = start(a_config, "a1")
        b = start(b_seeded, "b1")
        b.wait_for(connected, WAIT)
        assert b.terminate() == 0  # a graceful stop: the file is saved
        assert a.terminate() == 0
        old = spki_fingerprint(certificate(pki / "cert.pem"))
        assert _entry(tmp_path / "b-state", a_addr)["cert_fingerprint"] == old

        # a's certificate changes: a new key pair at the same address.
        (pki / "cert.pem").unlink()
        (pki / "key.pem").unlink()
        a = start(a_config, "a2")
        new = spki_fingerprint(certificate(pki / "cert.pem"))
        assert new != old

        b = start(b_config, "b2")
        b.wait_for(planned, WAIT)  # still planned as proven: nothing told it otherwise yet
        b.wait_for(connected, WAIT)  # TLS trust policy "open": the connection stays
        line = _said(tmp_path / "b2.log", r"WARNING [\w.]+: peerstore: .*")
        assert f"peerstore: {a_addr} presented certificate {new}, not the certificate it was " in (
            line
        )
        assert f"proven with, {old}: it is not the peer this node proved" in line
        assert b.terminate() == 0
        assert _entry(tmp_path / "b-state", a_addr)["cert_changed_to"] == new

        b = start(b_config, "b3")
        b.wait_for("dial order: nothing", WAIT)  # not planned as proven, and it says why
        assert b.terminate() == 0
        assert "peerstore: 1 stored peer not planned: a dial met another certificate" in (
            (tmp_path / "b3.log").read_text("utf-8")
        )

        ran = peerstore("accept-cert", a_addr, "-c", b_config)
        assert ran.status == 0, ran.err
        assert f"accepted for {a_addr} certificate {new} in place of certificate {old}" in ran.out

        b = start(b_config, "b4")
        b.wait_for(planned, WAIT)  # proven again
        b.wait_for(connected, WAIT)
        assert b.terminate() == 0
        assert "WARNING thenodes_peerstore" not in (tmp_path / "b4.log").read_text("utf-8")
        assert a.terminate() == 0
