"""hostsim and the peer file against the real TheNodes 0.2.0 and 0.4.0 binaries.

The binaries are ``../shared/thenodes/{0.2.0,0.4.0}/thenodes`` next to the repository, or the
paths in ``THENODES_BIN_0_2`` / ``THENODES_BIN_0_4``; a version without one is skipped. TheNodes
binds ``0.0.0.0``, so every process runs inside a private network namespace that has only
loopback (``unshare -n``, which needs root); without it the tests are skipped.
``thenodes_interop_driver.py`` starts and stops the processes; these tests read what they logged.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hostsim.live.certs import spki_fingerprint
from tests.support.paths import ROOT
from tests.support.tls import certificate

DRIVER = Path(__file__).parent / "support" / "thenodes_interop_driver.py"
VERSIONS = {"0.2.0": "THENODES_BIN_0_2", "0.4.0": "THENODES_BIN_0_4"}
HOLD_SECS = 185.0
"""Longer than two of TheNodes 0.4's 90 s liveness timeouts."""


def _binary(version: str) -> str | None:
    path = os.environ.get(VERSIONS[version]) or str(
        ROOT.parent / "shared" / "thenodes" / version / "thenodes"
    )
    return path if os.access(path, os.X_OK) else None


BINARIES = {v: b for v in VERSIONS if (b := _binary(v)) is not None}


def _namespace_refusal() -> str | None:
    if shutil.which("unshare") is None:
        return "unshare is not installed"
    try:
        ran = subprocess.run(
            ["unshare", "-n", "sh", "-c", "ip link set lo up"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unshare -n failed: {exc}"
    return None if ran.returncode == 0 else f"unshare -n is not permitted: {ran.stderr.strip()}"


def _version(version: str) -> object:
    reason = f"no TheNodes {version} binary (set {VERSIONS[version]})"
    return pytest.param(version, marks=pytest.mark.skipif(version not in BINARIES, reason=reason))


ALL_VERSIONS = [_version(v) for v in VERSIONS]


def _drive(out: Path, scenario: str, *extra: str, timeout: float) -> Path:
    if not BINARIES:
        pytest.skip("no TheNodes binary: set THENODES_BIN_0_2 or THENODES_BIN_0_4")
    if (refusal := _namespace_refusal()) is not None:
        pytest.skip(refusal)
    bins = [arg for v, b in BINARIES.items() for arg in ("--bin", f"{v}={b}")]
    command = " ".join(
        map(_quote, [sys.executable, str(DRIVER), scenario, str(out), *bins, *extra])
    )
    # The shell and unshare exec into the driver: its pid is this process's.
    driver = subprocess.Popen(
        ["unshare", "-n", "sh", "-c", f"ip link set lo up && exec {command}"], cwd=ROOT
    )
    try:
        status = driver.wait(timeout)
    except subprocess.TimeoutExpired:
        driver.terminate()  # the driver stops what it started, then exits
        driver.wait(120)
        raise
    assert status == 0, f"the driver failed with status {status}"
    return out


def _quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\\''") + "'"


@pytest.fixture(scope="module")
def links(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _drive(tmp_path_factory.mktemp("links"), "links", timeout=300)


@pytest.fixture(scope="module")
def held(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("held")
    return _drive(out, "links", "--hold", str(HOLD_SECS), timeout=HOLD_SECS + 300)


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _drive(tmp_path_factory.mktemp("peers"), "peers", timeout=300)


def _log(where: Path, name: str, suffix: str = ".log") -> str:
    path = where / f"{name}{suffix}"
    return path.read_text(errors="replace") if path.exists() else ""


def _ports(where: Path) -> dict[str, int]:
    ports: dict[str, int] = json.loads((where / "ports.json").read_text())
    return ports


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_hostsim_dials_thenodes_completes_the_handshake_and_gets_its_peer_list(
    links: Path, version: str
) -> None:
    where = links / version
    tn, tag = _ports(where)["tn"], version.replace(".", "")
    a = _log(where, "a")
    assert f"connected to 127.0.0.1:{tn} (tn-{tag}, outbound)" in a, a
    # TheNodes answers a peer request on a connection it accepted: the seeds it was given.
    assert re.search(rf"peer list from 127\.0\.0\.1:{tn}: [1-9]\d* address(es)?", a), a


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_thenodes_dials_hostsim_and_the_handshake_completes(links: Path, version: str) -> None:
    where = links / version
    b = _log(where, "b")
    assert f"(tn-{version.replace('.', '')}, inbound)" in b, b
    assert "incidents: none" in b


@pytest.mark.parametrize("version", ALL_VERSIONS)
@pytest.mark.parametrize("node", ["c", "d"])  # c: another realm; d: another realm version
def test_a_realm_or_version_mismatch_is_refused_whoever_dials(
    links: Path, version: str, node: str
) -> None:
    where = links / version
    ports = _ports(where)
    log = _log(where, node)
    assert f"dialling 127.0.0.1:{ports['tn']} (seed)" in log  # it dialled TheNodes
    assert f'dial_start addr=Some("127.0.0.1:{ports[node]}")' in _log(where, "tn")  # and back
    assert "connected to" not in log, log
    assert "'realm_mismatch'" in log


@pytest.mark.slow
@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_links_both_ways_stay_up_past_three_minutes_on_default_timers(
    held: Path, version: str
) -> None:
    where = held / version
    tn, tag = _ports(where)["tn"], version.replace(".", "")
    a, b = _log(where, "a", ".held"), _log(where, "b", ".held")
    assert f"connected to 127.0.0.1:{tn} (tn-{tag}, outbound)" in a, a
    assert f"disconnected from 127.0.0.1:{tn}" not in a, a
    assert f"(tn-{tag}, inbound)" in b, b
    assert "disconnected" not in b, b
    thenodes = _log(where, "tn", ".held")
    assert "peer_unresponsive" not in thenodes
    assert "silent_peer" not in a + b


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_thenodes_peers_json_of_a_seed_it_connected_to_imports_as_a_proven_peer(
    peers: Path, version: str
) -> None:
    where = peers / version
    s, tag = _ports(where)["s"], version.replace(".", "")
    (record,) = json.loads((where / "thenodes-peers.json").read_text())
    assert (record["addr"], record["source"], record["node_id"]) == (
        f"127.0.0.1:{s}",
        "Bootstrap",
        f"s-{tag}",
    )
    assert "(1 Connected)" in _log(where, "import", ".out")
    (entry,) = json.loads((where / "store.json").read_text())["peers"]
    assert (entry["source"], entry["last_connected"]) == ("Connected", record["last_success_epoch"])


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_an_exported_peers_json_is_loaded_by_thenodes_which_hands_its_peer_out(
    peers: Path, version: str
) -> None:
    where = peers / version
    ports = _ports(where)
    (record,) = json.loads((where / "exported-peers.json").read_text())
    assert (record["addr"], record["source"]) == (f"127.0.0.1:{ports['s']}", "Handshake")
    # tq has no bootstrap node: the only peer it can name is the one in the exported file.
    p = _log(where, "p")
    assert f"peer list from 127.0.0.1:{ports['tq']}: 1 address" in p, p
    assert f"connected to 127.0.0.1:{ports['s']} (s-{version.replace('.', '')}, outbound)" in p, p


def _fingerprint(home: Path) -> str:
    return spki_fingerprint(certificate(home / "pki/own/cert.pem"))


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_hostsim_and_thenodes_connect_over_tls_both_ways_with_mtls_and_trusted_certificates(
    links: Path, version: str
) -> None:
    where = links / version
    ts, tag = _ports(where)["ts"], version.replace(".", "")
    e, f, thenodes = _log(where, "e"), _log(where, "f"), _log(where, "ts")
    # hostsim dials TheNodes (mTLS), asks for peers and is answered inside TLS.
    assert f"connected to 127.0.0.1:{ts} (ts-{tag}, outbound)" in e, e
    assert re.search(rf"peer list from 127\.0\.0\.1:{ts}: [1-9]\d* address(es)?", e), e
    # TheNodes dials hostsim with its certificate, which hostsim's allowlist trusts.
    assert f"(ts-{tag}, inbound)" in f, f
    assert "incidents: none" in f
    # TheNodes judged each hostsim certificate, with mTLS, by the fingerprint hostsim has.
    assert f'decision=Accept mode=Open fp=Some("{_fingerprint(where / "e")}")' in thenodes
    assert f'decision=Accept mode=Open fp=Some("{_fingerprint(where / "f")}")' in thenodes
    # hostsim's TOFU remembered TheNodes' certificate as TheNodes 0.4.0 remembers one.
    (binding,) = (where / "e" / "pki/observed/bindings").glob("*.txt")
    assert binding.read_text() == (
        f"fingerprint={_fingerprint(where / 'ts')}\nidentity=CN=ts-{tag}, O=Example\n"
    )


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_plaintext_against_tls_fails_cleanly_on_both_sides(links: Path, version: str) -> None:
    where = links / version
    ports, tag = _ports(where), version.replace(".", "")
    e, g = _log(where, "e"), _log(where, "g")
    # hostsim over TLS dials plaintext TheNodes: refused at the first record, counted.
    assert f"dial 127.0.0.1:{ports['tn']} failed: handshake failed: TLS: " in e, e
    assert "'tls_handshake'" in e
    assert f"connected to 127.0.0.1:{ports['tn']}" not in e
    # Plaintext hostsim dials TheNodes over TLS: each waits for the other, until hostsim's
    # handshake timeout, or TheNodes giving up first on a loaded machine: a failed dial either way.
    failed = rf"dial 127\.0\.0\.1:{ports['ts']} failed: handshake failed: (timeout|closed before)"
    assert re.search(failed, g), g
    assert "connected to" not in g
    # Both TheNodes nodes go on serving their other peers.
    assert f"connected to 127.0.0.1:{ports['tn']} (tn-{tag}, outbound)" in _log(where, "a")
    assert f"connected to 127.0.0.1:{ports['ts']} (ts-{tag}, outbound)" in e
    assert "panicked" not in _log(where, "tn") + _log(where, "ts")


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_thenodes_example_config_runs_as_it_is_where_thenodes_itself_reads_it_as_tls(
    links: Path, version: str
) -> None:
    where = links / version
    x = _log(where, "x")
    # 0.2.0 speaks TLS with the example as shipped; hostsim runs that very file (port 50001).
    # 0.4.0 reads enabled = false as plaintext: there every node has enabled = true.
    y_port = 50002 if version == "0.2.0" else _ports(where)["y"]
    assert re.search(rf"connected to 127\.0\.0\.1:{y_port} \(\S+, outbound\)", x), x
    assert re.search(r"\([0-9a-f-]{36}, inbound\)", x), x  # w dialled in: its id is a UUID
    assert "made a TLS certificate" not in x  # hostsim cert made it, where the file says
    assert (where / "x" / "pki/own/example-app.crt").exists()
    if version == "0.2.0":
        assert "TheNodes 0.4.0 plaintext" in x  # the one reading that differs is named


@pytest.mark.slow
@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_a_tls_link_with_mtls_stays_up_past_three_minutes_on_default_timers(
    held: Path, version: str
) -> None:
    where = held / version
    ts, tag = _ports(where)["ts"], version.replace(".", "")
    e, f = _log(where, "e", ".held"), _log(where, "f", ".held")
    assert f"connected to 127.0.0.1:{ts} (ts-{tag}, outbound)" in e, e
    assert f"disconnected from 127.0.0.1:{ts}" not in e, e
    assert f"(ts-{tag}, inbound)" in f, f
    assert "disconnected" not in f, f
    assert "peer_unresponsive" not in _log(where, "ts", ".held")
    assert "silent_peer" not in e + f


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_thenodes_saves_a_record_it_reloaded_without_its_proof(peers: Path, version: str) -> None:
    """TheNodes loads a record's address and source only: the exported Handshake record, proof
    and node id included, comes back from ``tq``'s next save with neither (the file import
    then reads as unproven; tests/peerstore/fixtures keep one such file of each version)."""
    where = peers / version
    (exported,) = json.loads((where / "exported-peers.json").read_text())
    (saved,) = json.loads((where / "tq" / "state" / "peers.json").read_text())
    assert exported["last_success_epoch"] is not None
    assert "node_id" in exported
    assert saved == {
        "addr": exported["addr"],
        "source": "Handshake",
        "failures": 0,
        "last_success_epoch": None,
    }
