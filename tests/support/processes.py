"""Child processes a test starts: a Python child that says "ready" before a test goes on, and
``hostsim node`` processes; every one stopped when the test ends; and the processes of a run,
found by the directory their command lines name."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from hostsim.live.processes import NodeProcess

TIMEOUT = 30
"""Seconds a child has to say its next line, or to end once killed."""


def read_line(proc: subprocess.Popen[bytes]) -> str:
    """The child's next line of output, waiting at most TIMEOUT seconds for it."""
    assert proc.stdout is not None
    readable, _, _ = select.select([proc.stdout], [], [], TIMEOUT)
    assert readable, "the child process said nothing in time"
    return proc.stdout.readline().decode().strip()


@contextmanager
def ready_child(script: str, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """``python -c script args...``, once it has said "ready"; killed at the end if it still runs.

    The test writes to its stdin and reads its stdout with :func:`read_line`.
    """
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    with proc:  # closes the pipes at the end
        try:
            line = read_line(proc)
            if line != "ready":
                proc.kill()
                proc.wait(timeout=TIMEOUT)
                assert proc.stderr is not None
                pytest.fail(f"the child did not start: {line!r}\n{proc.stderr.read().decode()}")
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=TIMEOUT)


@contextmanager
def node_processes(log_dir: Path, wait: float) -> Iterator[Callable[[Path, str], NodeProcess]]:
    """A starter of ``hostsim node`` processes: ``start(config, name)`` returns once the node
    listens, logging to ``log_dir/name.log``; each one started is stopped at the end."""
    processes: list[NodeProcess] = []

    def start(config: Path, name: str) -> NodeProcess:
        process = NodeProcess(config, log_dir / f"{name}.log")
        processes.append(process)
        process.wait_for("listening on", wait)
        return process

    try:
        yield start
    finally:
        for process in processes:
            process.stop()


def start_node(config: Path, *, stdout: int, stderr: int) -> subprocess.Popen[bytes]:
    """``hostsim node CONFIG`` with its stdout and stderr on the file descriptors given (a pipe
    nobody reads, say); stop it with :func:`stop_node`."""
    return subprocess.Popen(
        [sys.executable, "-m", "hostsim", "node", str(config)],
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
    )


def wait_listening(port: int, timeout: float = TIMEOUT) -> None:
    """Wait until something accepts connections on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listened on 127.0.0.1:{port} within {timeout} s")


def stop_node(process: subprocess.Popen[bytes]) -> None:
    """Make sure the process is gone (for ``finally``): SIGKILL, by its pid, if it still runs."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(TIMEOUT)


def running_under(root: Path) -> list[int]:
    """Pids of live processes (zombies aside) whose command line names ``root``: a run's own
    temporary directory finds every process it started, whoever its parent is now."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes()
            state = Path(f"/proc/{name}/stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue  # ended meanwhile
        if str(root).encode() in cmdline and state != "Z":
            found.append(int(name))
    return found
