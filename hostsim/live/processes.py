"""Live nodes as processes on loopback: free ports, host configs, start, wait, stop by pid.

Used by ``hostsim cluster`` and by the tests. Every wait is bounded; every process started
is stopped by its pid (:meth:`NodeProcess.kill`, :meth:`NodeProcess.terminate`).
"""

from __future__ import annotations

import contextlib
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
from hostsim.plugins import plugins_turned_on

__all__ = ["NodeProcess", "free_port", "write_node_config"]

STATUS_PREFIX = "hostsim node: "


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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
    """

    def __init__(
        self, config: Path, log: Path, *, verbose: bool = True, status: str = "text"
    ) -> None:
        self.config = config
        self.log = log
        self.lines: list[tuple[float, str]] = []
        self._queue: queue.Queue[tuple[float, str] | None] = queue.Queue()
        command = [sys.executable, "-m", "hostsim", "node", str(config)]
        if verbose:
            command.append("-v")
        if status != "text":
            command += ["--status", status]
        with log.open("ab") as err:
            self.proc = subprocess.Popen(  # noqa: S603 (our own interpreter, our arguments)
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
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

    def kill(self) -> None:
        """SIGKILL: a crash."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        self._reap(5.0)

    def terminate(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, a graceful stop; SIGKILL if it has not ended within ``timeout``."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
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
        self._reader.join(2.0)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
