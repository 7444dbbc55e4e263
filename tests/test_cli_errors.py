"""Mistakes and interruptions at the command line end in one clear line, never a traceback.

Processes are stopped by their pid in a ``finally``; every wait is bounded.
"""

from __future__ import annotations

import io
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from hostsim import cli as hostsim_cli
from hostsim.live.processes import NodeProcess, free_port, write_node_config
from hostsim.progress import ProgressLine
from tests.support.command import Node
from tests.support.paths import EXAMPLES
from tests.support.processes import ready_child
from thenodes_console import counted
from thenodes_peerstore import cli as peerstore_cli

WAIT = 10.0


def _one_error_line(err: str, *needles: str) -> None:
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], err


@pytest.mark.parametrize(
    "argv",
    [["run", "{f}"], ["sim", "{f}", "--seed", "1"], ["node", "{f}"]],
    ids=["run", "sim", "node"],
)
def test_a_file_that_is_not_utf8_is_a_one_line_error_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    bad = tmp_path / "latin1.toml"
    bad.write_bytes('name = "caf\xe9"\n'.encode("latin-1"))
    status = hostsim_cli.main([a.format(f=bad) for a in argv])
    assert status == 2
    _one_error_line(capsys.readouterr().err, str(bad), "not UTF-8")


@pytest.mark.parametrize(
    ("command", "path", "looks", "takes"),
    [
        (["run"], "sim-flood.toml", "network scenario", "hostsim sim"),
        (["sim", "--seed", "1"], "node.toml", "host config", "hostsim node"),
        (["node"], "restart.toml", "single-node scenario", "hostsim run"),
        (["run"], "node.toml", "host config", "hostsim node"),
    ],
)
def test_a_file_given_to_the_wrong_command_says_which_command_takes_it(
    capsys: pytest.CaptureFixture[str], command: list[str], path: str, looks: str, takes: str
) -> None:
    status = hostsim_cli.main([command[0], str(EXAMPLES / path), *command[1:]])
    assert status == 2
    _one_error_line(capsys.readouterr().err, path, looks, takes)


@pytest.mark.parametrize("tick", ["0", "-1", "nan", "inf", "soon"])
def test_demo_refuses_a_tick_that_is_not_a_positive_finite_number(
    capsys: pytest.CaptureFixture[str], tick: str
) -> None:
    with pytest.raises(SystemExit) as exit_:
        hostsim_cli.main(["demo", f"--tick={tick}"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--tick" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "argv",
    [
        ["demo", "--json", "{missing}/out.json"],
        ["demo", "--plot", "{missing}/out.png"],
        ["sim", str(EXAMPLES / "sim-flood.toml"), "--seed", "1", "--json", "{missing}/o.json"],
        ["cluster", "--json", "{missing}/out.json"],
        ["eclipse", "--json", "{missing}/out.json"],
        ["eclipse", "--plot", "{missing}/out.png"],
    ],
    ids=["demo-json", "demo-plot", "sim-json", "cluster-json", "eclipse-json", "eclipse-plot"],
)
def test_an_output_path_in_a_missing_directory_fails_before_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    missing = tmp_path / "no-such-dir"
    started = time.monotonic()
    status = hostsim_cli.main([a.format(missing=missing) for a in argv])
    assert time.monotonic() - started < 2.0  # nothing was run
    assert status == 2
    captured = capsys.readouterr()
    _one_error_line(captured.err, str(missing), "does not exist")
    assert captured.out == ""


def test_an_output_path_that_is_a_directory_fails_before_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert hostsim_cli.main(["demo", "--json", str(tmp_path)]) == 2
    _one_error_line(capsys.readouterr().err, str(tmp_path), "is a directory")


@pytest.mark.parametrize("main", [hostsim_cli.main, peerstore_cli.main], ids=["hostsim", "peer"])
def test_version_prints_the_distribution_version(
    capsys: pytest.CaptureFixture[str], main: object
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])  # type: ignore[operator]
    assert exit_.value.code == 0
    assert re.fullmatch(r"(hostsim|peerstore) \d+\.\d+\S*\n", capsys.readouterr().out)


def test_ctrl_c_during_the_demo_exits_130_without_a_traceback() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "hostsim", "demo", "--nodes", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        header = proc.stdout.readline()  # the demo prints its header, then runs for a while
        assert header.startswith("demo: the peer store vs seeds only"), header
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=WAIT)
        assert proc.returncode == 130, err
        assert "Traceback" not in err
        assert "interrupted" in err
        assert len(err.splitlines()) <= 2
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(WAIT)


def test_a_node_on_a_port_in_use_names_the_address_and_port(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_node_config(tmp_path / "node.toml", node_id="node-a", port=port)
        proc = subprocess.Popen(
            [sys.executable, "-m", "hostsim", "node", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            out, err = proc.communicate(timeout=WAIT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(WAIT)
    assert proc.returncode == 2
    _one_error_line(err, f"127.0.0.1:{port}", "already in use")
    assert "Errno" not in err
    assert "listening" not in out


def test_a_node_whose_peer_file_is_held_fails_without_saying_it_listens(tmp_path: Path) -> None:
    first = write_node_config(tmp_path / "a.toml", node_id="node-a", port=free_port())
    # The same state directory, so the same peer file, held by the first node.
    second = write_node_config(tmp_path / "b.toml", node_id="node-a", port=free_port())
    runner = NodeProcess(first, tmp_path / "a.log")
    try:
        runner.wait_for("listening on", WAIT)
        proc = subprocess.run(
            [sys.executable, "-m", "hostsim", "node", str(second)],
            capture_output=True,
            text=True,
            timeout=WAIT,
            check=False,
        )
    finally:
        runner.stop()
    assert proc.returncode == 2, proc.stderr
    assert "listening" not in proc.stdout
    _one_error_line(proc.stderr, "peer file", "in use by another store")


def test_a_failed_dial_is_reported_with_its_reason(tmp_path: Path) -> None:
    closed = free_port()  # nobody listens there: the dial is refused
    config = write_node_config(
        tmp_path / "node.toml", node_id="node-a", port=free_port(), seeds=[f"127.0.0.1:{closed}"]
    )
    runner = NodeProcess(config, tmp_path / "node.log")
    try:
        _, line = runner.wait_for(rf"dial 127\.0\.0\.1:{closed} failed: ", WAIT)
    finally:
        runner.stop()
    assert "refused" in line


def test_plain_progress_lines_off_a_terminal_say_each_phase_and_at_most_every_interval() -> None:
    stream = io.StringIO()  # not a terminal
    progress = ProgressLine(stream, plain_interval=3600.0)
    progress("cluster store, forming: 1 s, 0/3 nodes connected")
    progress("cluster store, forming: 2 s, 1/3 nodes connected")  # same phase, too soon
    progress("cluster store, seeds-up: 0 s, 0/3 nodes connected")  # a new phase
    progress.clear()
    assert stream.getvalue().splitlines() == [
        "cluster store, forming: 1 s, 0/3 nodes connected",
        "cluster store, seeds-up: 0 s, 0/3 nodes connected",
    ]
    silent = io.StringIO()
    ProgressLine(silent)("demo: running")  # without plain_interval nothing goes to a file
    assert silent.getvalue() == ""


def test_the_targets_end_with_one_verdict_line(capsys: pytest.CaptureFixture[str]) -> None:
    held = SimpleNamespace(name="a", holds=True, detail="fine", gate=True)
    failed = SimpleNamespace(name="b", holds=False, detail="not fine", gate=True)
    reported = SimpleNamespace(name="c", holds=False, detail="info", gate=False)
    assert hostsim_cli._print_targets([held, reported])
    assert capsys.readouterr().out.splitlines() == [
        "reported, not targets:",  # information: no verdict beside it, none counted
        "  c: info",
        "targets:",
        "  [holds] a: fine",
        "verdict: every target holds",
    ]
    assert not hostsim_cli._print_targets([held, failed, reported])
    assert capsys.readouterr().out.splitlines()[-1] == "verdict: 1 of 2 targets fails"


def test_counts_are_singular_or_plural() -> None:
    assert counted(1, "node") == "1 node"
    assert counted(2, "node") == "2 nodes"
    assert counted(0, "entry") == "0 entries"
    assert peerstore_cli._entries(1) == "1 entry"


# -- Ctrl-C at any moment, in a real process ---------------------------------------------------

BIN = Path(sys.executable).parent


def _interrupted(proc: subprocess.Popen[str], prog: str) -> None:
    """Send SIGINT; the command must end with 130 and one line, the import-time lines aside."""
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=WAIT)
    said = [line for line in err.splitlines() if not line.startswith("import time:")]
    assert proc.returncode == 130, err
    assert said == [f"{prog}: interrupted"], err


def _importing(argv: list[str], cwd: Path) -> subprocess.Popen[str]:
    """A console script, reporting each module it imports (``-X importtime``) on stderr."""
    return subprocess.Popen(
        [str(BIN / argv[0]), *argv[1:]],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"},
    )


def _wait_for_import(proc: subprocess.Popen[str], module: str) -> None:
    """Read the child's import lines until ``module`` has been imported."""
    assert proc.stderr is not None
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        readable, _, _ = select.select([proc.stderr], [], [], WAIT)
        line = proc.stderr.readline() if readable else ""
        assert line, f"the child ended before importing {module} (exit {proc.poll()})"
        if re.search(rf"\|\s+{re.escape(module)}$", line.rstrip()):
            return
    pytest.fail(f"the child did not import {module} in time")


@pytest.mark.parametrize(
    ("argv", "midway"),
    [
        (["hostsim", "demo"], "pluggy"),
        (["hostsim", "demo"], "hostsim.config"),
        (["peerstore", "list", "--file", "peers.toml"], "attrs"),
        (["peerstore", "list", "--file", "peers.toml"], "thenodes_peerstore.store"),
    ],
    ids=["hostsim-pluggy", "hostsim-config", "peerstore-attrs", "peerstore-store"],
)
def test_ctrl_c_while_the_command_is_imported_exits_130_with_one_line(
    tmp_path: Path, argv: list[str], midway: str
) -> None:
    """The console script's handler is in place before the command's modules are imported:
    a SIGINT just after ``midway`` was imported, long before the command runs, is one line."""
    proc = _importing(argv, tmp_path)
    try:
        _wait_for_import(proc, midway)
        _interrupted(proc, argv[0])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(WAIT)


def test_ctrl_c_while_peerstore_waits_for_a_lock_a_node_holds_exits_130_with_one_line(
    node: Node,
) -> None:
    with ready_child(HOLD_LOCK, str(node.peers)):
        argv = ["peerstore", "add", "192.0.2.50:7447", "-c", str(node.config)]
        proc = _importing(argv, node.config.parent)
        try:
            _wait_for_import(proc, "thenodes_peerstore.peerfile")
            time.sleep(0.5)  # well inside the command's wait for the lock (2 s)
            assert proc.poll() is None, "the command gave up waiting before the signal"
            _interrupted(proc, "peerstore")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(WAIT)
    assert not node.peers.exists(), "nothing was written"
    assert not list(node.peers.parent.glob("*.tmp"))


HOLD_LOCK = """
import sys, time
from pathlib import Path
from thenodes_peerstore.files import PeerFile
with PeerFile.open(Path(sys.argv[1]), "example"):  # as a running node holds it
    print("ready", flush=True)
    sys.stdin.read()
"""
