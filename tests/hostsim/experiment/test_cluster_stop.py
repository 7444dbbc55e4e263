"""`hostsim cluster` checks what the machine can hold, hands each node its port, and leaves no
process behind however it ends: Ctrl-C or SIGTERM at any phase, a start that fails.

Real processes on loopback; every wait is bounded; a process is found by its command line,
which names the run's own temporary directory, and killed by its pid if a test fails.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hostsim import cli
from hostsim.experiment import cluster
from hostsim.experiment.cluster import ClusterError, check_capacity, run_cluster
from hostsim.live.processes import NodeProcess, listening_socket, write_node_config
from tests.support.processes import ready_child, running_under

WAIT = 30.0
BIN = Path(sys.executable).parent


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


# -- what the machine can hold --------------------------------------------------------------


def test_a_cluster_the_machine_cannot_hold_is_refused_naming_each_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cluster.resource, "getrlimit", lambda _: (1024, 1024))
    monkeypatch.setattr(cluster, "_available_mb", lambda: 8000)
    monkeypatch.setattr(cluster, "_tasks_left", lambda: 3000)
    monkeypatch.setattr(cluster, "_local_ports", lambda: 1000)
    with pytest.raises(ClusterError) as refused:
        check_capacity(1002)
    message = str(refused.value)
    assert "open files: 1,002 processes need about 2,068 open files" in message
    assert "its limit is 1,024 (raise it with `ulimit -n 2068`)" in message
    assert "memory: 1,002 processes need about 40,080 MB (40 MB each)" in message
    assert "8,000 MB are available" in message
    assert "processes: 1,002 processes need about 4,008 processes and threads" in message
    assert "ports: 1,002 processes each hold a port of the local port range" in message
    assert check_capacity(20) == []
    [warning] = check_capacity(150)  # 6,000 MB of 8,000: it runs, and says so
    assert warning == "memory: 150 processes take about 6,000 MB of the 8,000 MB available"


def test_hostsim_cluster_refuses_before_starting_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cluster, "_available_mb", lambda: 100)
    status = cli.main(["cluster", "--nodes", "20", "--state-dir", str(tmp_path)])
    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith("hostsim: files of the failed run in")
    assert "hostsim: error: this machine cannot hold the cluster: memory: 22 processes" in err
    assert not list(tmp_path.iterdir()), "nothing was started or written"


# -- the port, held by the parent -----------------------------------------------------------


def test_a_node_listens_on_the_socket_its_parent_holds_and_finds_it_again_after_a_kill(
    tmp_path: Path,
) -> None:
    with listening_socket() as sock:
        port = sock.getsockname()[1]
        config = write_node_config(tmp_path / "a.toml", node_id="node-a", port=port)
        for attempt in range(2):
            process = NodeProcess(config, tmp_path / "a.log", listen_socket=sock)
            try:
                process.wait_for(f"listening on 127.0.0.1:{port} as node-a", WAIT)
                # While it runs, the port is its own: nobody else can bind it.
                with socket.socket() as other, pytest.raises(OSError, match="in use") as taken:
                    other.bind(("127.0.0.1", port))
                assert taken.value.errno == errno.EADDRINUSE
            finally:
                process.kill()  # a crash: the port stays with the parent for the next start
                process.stop()
            assert process.proc.returncode == -signal.SIGKILL, attempt


def test_a_node_handed_a_socket_on_another_port_refuses_in_one_line(tmp_path: Path) -> None:
    with listening_socket() as sock:
        fd, port = sock.fileno(), sock.getsockname()[1]
        config = write_node_config(tmp_path / "a.toml", node_id="node-a", port=1)
        done = subprocess.run(
            [sys.executable, "-m", "hostsim", "node", str(config), "--listen-fd", str(fd)],
            pass_fds=(fd,),
            capture_output=True,
            text=True,
            timeout=WAIT,
            check=False,
        )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"hostsim: error: --listen-fd {fd}: not a TCP socket listening on the"
        f" config's port 1 (bound to ('127.0.0.1', {port}))"
    ]


PARENT = """
import os, sys
from pathlib import Path
from hostsim.live.processes import NodeProcess, listening_socket, write_node_config
root = Path(sys.argv[1])
sock = listening_socket()
config = write_node_config(root / "a.toml", node_id="node-a", port=sock.getsockname()[1])
node = NodeProcess(config, root / "a.log", listen_socket=sock)
node.wait_for("listening on", 30)
print("ready", flush=True)
sys.stdin.read()
"""


def test_a_node_dies_with_its_parent_even_when_the_parent_is_killed_outright(
    tmp_path: Path,
) -> None:
    with ready_child(PARENT, str(tmp_path)) as parent:
        try:
            [node] = [pid for pid in running_under(tmp_path) if pid != parent.pid]
            parent.kill()  # SIGKILL: the parent cleans nothing up
            parent.wait(WAIT)
            deadline = time.monotonic() + WAIT
            while running_under(tmp_path) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert node not in running_under(tmp_path)
        finally:
            kill_all(running_under(tmp_path))


# -- however it ends ------------------------------------------------------------------------


def test_a_start_that_fails_leaves_no_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cluster, "START_TIMEOUT_SECS", 0.0)  # no process starts in time
    try:
        with pytest.raises(ClusterError, match="did not start: no dial order within 0 s"):
            run_cluster(tmp_path, nodes=2, seeds=1)
        assert running_under(tmp_path) == []
    finally:
        kill_all(running_under(tmp_path))


def stop_the_cluster_at(
    tmp_path: Path, phase: str, signum: int, nodes: int = 3, wait: float = 120.0
) -> tuple[list[str], int, int]:
    """Run ``hostsim cluster`` as a real process, send ``signum`` once its progress says
    ``phase`` has begun; return its stderr lines but the progress lines, its exit status, and
    how many of its processes ran at that moment."""
    run = tmp_path / "run"
    proc = subprocess.Popen(
        [
            *(str(BIN / "hostsim"), "cluster", "--nodes", str(nodes), "--seeds", "1"),
            *("--phase-secs", "5", "--state-dir", str(run)),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    with proc:
        return _stop(proc, run, phase, signum, wait)


def _stop(
    proc: subprocess.Popen[str], run: Path, phase: str, signum: int, wait: float
) -> tuple[list[str], int, int]:
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + wait
        while True:
            line = proc.stderr.readline()
            assert line, f"the cluster ended before {phase!r} (exit {proc.wait(WAIT)})"
            if line.startswith("cluster ") and f", {phase}:" in line:
                break
            assert time.monotonic() < deadline, f"no {phase!r} within {wait} s"
        running = len(running_under(run))
        proc.send_signal(signum)
        rest = proc.stderr.read()
        status = proc.wait(WAIT)
        said = [line for line in rest.splitlines() if not line.startswith("cluster ")]
        assert running_under(run) == [], "a process outlived the cluster"
        return said, status, running
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(WAIT)
        kill_all(running_under(run))


def test_ctrl_c_while_the_cluster_starts_stops_every_process_with_one_line(
    tmp_path: Path,
) -> None:
    said, status, running = stop_the_cluster_at(tmp_path, "starting", signal.SIGINT)
    assert status == 130
    assert said == [f"hostsim: interrupted; every process stopped; files in {tmp_path / 'run'}"]
    assert running >= 1, "the cluster's own process, at least"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("phase", "signum"),
    [
        ("forming", signal.SIGINT),
        ("seeds-up", signal.SIGINT),
        ("forming again", signal.SIGINT),
        ("seeds-down", signal.SIGINT),
        ("seeds-up", signal.SIGTERM),
    ],
    ids=["forming", "seeds-up", "forming-again", "seeds-down", "sigterm-seeds-up"],
)
def test_a_signal_at_any_phase_stops_every_process_with_one_line(
    tmp_path: Path, phase: str, signum: int
) -> None:
    """A phase of a tiny cluster may end (and its processes be stopping) by the time its first
    progress line is read: the signal then comes while they are stopped, which must stop the
    experiment just the same."""
    said, status, running = stop_the_cluster_at(tmp_path, phase, signum)
    word = "interrupted" if signum == signal.SIGINT else "terminated"
    assert status == 128 + signum
    assert said == [f"hostsim: {word}; every process stopped; files in {tmp_path / 'run'}"]
    assert running >= 1, "the cluster itself was running"


@pytest.mark.slow
def test_a_cluster_of_two_hundred_nodes_interrupted_while_forming_leaves_no_process(
    tmp_path: Path,
) -> None:
    said, status, running = stop_the_cluster_at(
        tmp_path, "forming", signal.SIGINT, nodes=200, wait=600.0
    )
    assert status == 130
    assert said == [f"hostsim: interrupted; every process stopped; files in {tmp_path / 'run'}"]
    assert running == 1 + 200 + 1  # the seed, the nodes, the cluster itself


def test_a_signal_while_the_processes_are_being_stopped_is_not_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Ctrl-C (or SIGTERM) that comes while an arm's processes are stopped, between two
    arms, still stops the experiment: it is noted, and raised once they are all gone."""

    def stop_all_with_a_signal(processes: object) -> list[int]:
        os.kill(os.getpid(), signal.SIGTERM)
        return []

    monkeypatch.setattr(cluster, "stop_all", stop_all_with_a_signal)

    def two_arms() -> None:
        with cluster._StopSignal.installed() as stop:
            with cluster._stopping([], [], stop):
                pass  # an arm that ends normally
            pytest.fail("the next arm began")

    with pytest.raises(cluster.ClusterInterrupted) as stopped:
        two_arms()
    assert stopped.value.signum == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
