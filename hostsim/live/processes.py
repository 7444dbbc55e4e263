"""Live nodes as processes on loopback: ports, host configs, start, wait, stop by pid.

Used by ``hostsim cluster`` and by the tests. Every wait is bounded; every process started
is stopped by its pid (:meth:`NodeProcess.kill`, :meth:`NodeProcess.terminate`,
:func:`stop_all`).

A process that runs many nodes holds their ports itself: :func:`listening_socket` binds
``127.0.0.1:0`` and listens, and each :class:`NodeProcess` started with it inherits the socket
(``hostsim node --listen-fd``), so no port is probed and released for a child to bind later (a
race another node or an outbound connection can win), and a node killed and started again
finds its port waiting. Each node runs in a process group of its own, so a Ctrl-C at the
terminal reaches the parent only, which stops every node itself; and each is told to end with
its parent (``--parent-pid``: ``PR_SET_PDEATHSIG`` on Linux), so none outlives a parent that is
killed outright.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import tomli_w

from hostsim.convert import overlaid
from hostsim.errors import HostsimError
from hostsim.plugins import plugins_turned_on

__all__ = [
    "NodeProcess",
    "exit_with_parent",
    "free_port",
    "inherited_listener",
    "listening_socket",
    "stop_all",
    "write_node_config",
]

STATUS_PREFIX = "hostsim node: "


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def listening_socket(backlog: int = 128) -> socket.socket:
    """A TCP socket bound to a port of 127.0.0.1 the kernel chose, listening: its port is ours
    for as long as the socket is open, and a :class:`NodeProcess` may be handed it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


def inherited_listener(fd: int, port: int) -> socket.socket:
    """The listening socket a parent handed over as ``fd``, checked to be bound to ``port``.

    :raises HostsimError: ``fd`` is not an open TCP socket listening on ``port``.
    """
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise HostsimError(f"--listen-fd {fd}: not an open socket ({exc.strerror})") from None
    try:
        bound = sock.getsockname()
        listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    except OSError as exc:
        sock.detach()
        raise HostsimError(f"--listen-fd {fd}: {exc.strerror}") from None
    if sock.type != socket.SOCK_STREAM or not listening or bound[1] != port:
        sock.detach()
        raise HostsimError(
            f"--listen-fd {fd}: not a TCP socket listening on the config's port {port}"
            f" (bound to {bound!r})"
        )
    return sock


_PR_SET_PDEATHSIG = 1


def exit_with_parent(parent: int) -> None:
    """Have the kernel SIGKILL this process when its parent ``parent`` ends (Linux); exit at
    once when it has already ended. Elsewhere, nothing.

    :raises HostsimError: ``parent`` is not this process's parent.
    """
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            errno = ctypes.get_errno()
            raise HostsimError(f"--parent-pid: prctl failed: {os.strerror(errno)}")
    if os.getppid() != parent:
        # The parent ended before the kernel was asked to watch it (or was never the parent).
        raise HostsimError(f"--parent-pid {parent}: not this process's parent (any more)")


def write_node_config(
    path: Path,
    *,
    node_id: str,
    port: int,
    seeds: Iterable[str] = (),
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write a host config for a loopback node; its state directory is beside the file, named
    in the file by its absolute path (a relative one is relative to the working directory).

    ``extra`` is a host-config overlay, merged in table by table. ``[network.persistence]`` is
    on and saves every second unless ``extra`` says otherwise; without ``[plugins]`` in
    ``extra``, the node loads the installed plugins whose config table the result turns on.
    """
    state_dir = Path(os.path.abspath(path.parent / f"{node_id}-state"))
    data: dict[str, Any] = {
        "port": port,
        "bootstrap_nodes": list(seeds),
        "realm": {"name": "Cluster"},
        "node": {"id": node_id, "state_dir": str(state_dir)},
        "network": {"persistence": {"enabled": True, "save_interval_secs": 1}},
    }
    data = overlaid(data, extra or {})
    if "plugins" not in data:
        data["plugins"] = {"enabled": list(plugins_turned_on(data))}
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return path


class NodeProcess:
    """One ``hostsim node`` process; its status lines are read as they come, with the time
    (without their ``hostsim node:`` prefix).

    :param config: The host config file.
    :param log: Where the process's stderr (its log, with ``-v``) goes.
    :param status: ``"text"``, or ``"json"`` for one JSON object a line
        (``hostsim node --status json``).
    :param listen_socket: A listening socket bound to the config's port, which the node
        inherits (:func:`listening_socket`); None: the node binds the port itself.

    The process runs in a process group of its own and is killed by the kernel when the
    thread that started it ends (``PR_SET_PDEATHSIG`` watches the thread, not the process):
    start it from a thread that outlives it, such as the main thread.
    """

    def __init__(
        self,
        config: Path,
        log: Path,
        *,
        verbose: bool = True,
        status: str = "text",
        listen_socket: socket.socket | None = None,
    ) -> None:
        self.config = config
        self.log = log
        self.lines: list[tuple[float, str]] = []
        self._queue: queue.Queue[tuple[float, str] | None] = queue.Queue()
        # -P: the package installed with this interpreter, whatever the working directory holds.
        command = [sys.executable, "-P", "-m", "hostsim", "node", str(config)]
        command += ["--parent-pid", str(os.getpid())]
        if verbose:
            command.append("-v")
        if status != "text":
            command += ["--status", status]
        fds: tuple[int, ...] = ()
        if listen_socket is not None:
            fds = (listen_socket.fileno(),)
            command += ["--listen-fd", str(fds[0])]
        with log.open("ab") as err:
            self.proc = subprocess.Popen(  # noqa: S603 (our own interpreter, our arguments)
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                pass_fds=fds,
                process_group=0,  # a Ctrl-C at the terminal is the parent's to handle
            )
        self.started = time.monotonic()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        """The process id."""
        return self.proc.pid

    def rss_mb(self) -> float | None:
        """The process's resident memory in MB, from ``/proc``; None where ``/proc`` has no
        answer (another system, or the process is gone)."""
        try:
            status = Path(f"/proc/{self.pid}/status").read_text(encoding="ascii")
        except OSError:
            return None
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return None

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            text = line.rstrip("\n")
            self._queue.put((time.monotonic(), text.removeprefix(STATUS_PREFIX)))
        self._queue.put(None)

    def _drain(self, timeout: float) -> bool:
        """Move one line (waiting at most ``timeout``) from the reader; False at the end."""
        try:
            item = self._queue.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            return True
        if item is None:
            self._queue.put(None)
            return False
        self.lines.append(item)
        return True

    def wait_for(self, pattern: str, timeout: float, *, after: int = 0) -> tuple[float, str]:
        """The first status line from index ``after`` on that matches ``pattern`` (a regular
        expression), with the time it was read.

        :raises TimeoutError: none came within ``timeout`` seconds, or the process ended.
        """
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        index = after
        while True:
            while index < len(self.lines):
                at, line = self.lines[index]
                index += 1
                if regex.search(line):
                    return at, line
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if not self._drain(min(remaining, 0.2)) and index >= len(self.lines):
                break
        raise TimeoutError(
            f"{self.config.name}: no status line matching {pattern!r} within {timeout} s"
            f" (exit status {self.proc.poll()})"
        )

    def poll_lines(self) -> None:
        """Take in every status line read so far, without waiting."""
        while not self._queue.empty() and self._drain(0):
            pass

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the process's group (its own) while it has not been reaped."""
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signum)

    def kill(self) -> None:
        """SIGKILL: a crash."""
        self.signal(signal.SIGKILL)
        self._reap(5.0)

    def terminate(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, a graceful stop; SIGKILL if it has not ended within ``timeout``."""
        self.signal(signal.SIGTERM)
        if self._reap(timeout) is None:
            self.kill()
        return self.proc.returncode

    def _reap(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        """Make sure the process is gone (for ``finally``): SIGKILL if still running."""
        if self.proc.poll() is None:
            self.kill()
        self._close()

    def _close(self, wait: float = 2.0) -> None:
        self._reader.join(wait)
        if self.proc.stdout is not None:
            with contextlib.suppress(OSError):
                self.proc.stdout.close()


def stop_all(processes: Iterable[NodeProcess], timeout: float = 10.0) -> list[int]:
    """SIGKILL every process still running, all at once, then reap each; return the pids of
    those still not reaped after ``timeout`` seconds (none, unless the system is stuck)."""
    processes = list(processes)
    for process in processes:
        if process.proc.poll() is None:
            process.signal(signal.SIGKILL)
    deadline = time.monotonic() + timeout
    left = []
    for process in processes:
        if process._reap(max(deadline - time.monotonic(), 0.01)) is None:
            left.append(process.pid)
    for process in processes:
        process._close(wait=max(deadline - time.monotonic(), 0.01))
    return left
