"""A peer file writer that is killed with SIGKILL, and the checks made on what it leaves behind.

Run as a script, this is the writer::

    python crash_writer.py PATH --entries N --start G [--pause-at G:STEP]

It opens PATH with :class:`PersistentPeerStore` (at most N entries). A fresh file is first filled
with N - 1 Gossip entries. Then for each generation g = G, G + 1, ... the clock reads
``BASE + g``, peer :func:`addr_for` ``(g)`` is recorded as Connected with node id ``g<g>``, the
store saves, and once ``save()`` has returned True the writer prints ``ack g``. So every save is
told apart by its ``saved_at`` and by its newest peer, and an ack means the save was complete.

With ``--pause-at G:STEP`` the writer stops in save G just before its STEP-th file operation
(``os.open``, ``os.write``, ``os.fsync``, ``os.replace``, ``os.close``...), or just after the save
returned if it made fewer, prints ``paused G STEP <operation> done=<operations so far>`` and
blocks until it is killed. That puts a kill exactly between any two steps of a save.

Imported, this module is the killing side, used by ``tests/peerstore/test_crash.py`` and
``benchmarks/crash_campaign.py``: :func:`kill_once` starts a writer, kills it, and reports what
the file looked like; :func:`check` lists every promise the file broke. Synchronisation is by
reading the writer's pipe; every wait has a timeout and the writer is killed in ``finally``.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from thenodes_peerstore import PersistenceConfig, PersistentPeerStore
from thenodes_peerstore.codec import decode
from thenodes_peerstore.errors import StoreLockedError
from thenodes_peerstore.files import PeerFile, glob_escape
from thenodes_peerstore.model import canonical_addr
from thenodes_peerstore.persistent import LoadStatus, load_file

REALM = "crash"
BASE = 1_763_700_000
"""The writer's clock reads BASE + g while it makes save g."""
WRITER = Path(__file__).resolve()
FILE_OPERATIONS = ("open", "write", "fsync", "fdatasync", "replace", "rename", "close", "unlink")


def addr_for(g: int) -> str:
    """The canonical address of the peer first connected in generation ``g``."""
    return canonical_addr(f"[2001:db8:c::{g >> 16:x}:{g & 0xFFFF:x}]:7447")


def gossip_addr(i: int) -> str:
    """The ``i``-th address of a fresh file's filling."""
    return f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}:7447"


# -- the writer -------------------------------------------------------------------------------


class _Clock:
    def __init__(self, t: int) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class _Stepper:
    """Counts the file operations of one save and stops before the chosen one."""

    def __init__(self, pause_at: tuple[int, int] | None, out: Callable[[bytes], None]) -> None:
        self.pause_at = pause_at
        self.generation = 0
        self.active = False
        self.done: list[str] = []
        self._out = out

    def wrap(self, name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if self.active:
                self.before(name)
                self.done.append(name)
            return real(*args, **kwargs)

        return wrapped

    def before(self, name: str) -> None:
        if self.pause_at == (self.generation, len(self.done)) or (
            name == "returned" and self.pause_at is not None and self.pause_at[0] == self.generation
        ):
            g, step = self.generation, len(self.done)
            self._out(f"paused {g} {step} {name} done={','.join(self.done)}\n".encode())
            sys.stdin.buffer.read()  # until killed
            os._exit(3)  # the parent closed the pipe without killing: it is gone


def writer_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="save a peer file in a loop until killed")
    parser.add_argument("path", type=Path)
    parser.add_argument("--entries", type=int, required=True)
    parser.add_argument("--start", type=int, required=True)
    parser.add_argument("--pause-at", default=None, help="G:STEP")
    parser.add_argument("--generations", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    pause_at = None
    if args.pause_at:
        g, step = args.pause_at.split(":")
        pause_at = (int(g), int(step))

    write = os.write  # the real one: stdout must not count as a step of a save

    def out(line: bytes) -> None:
        write(1, line)

    stepper = _Stepper(pause_at, out)
    for name in FILE_OPERATIONS:
        if hasattr(os, name):
            setattr(os, name, stepper.wrap(name, getattr(os, name)))

    clock = _Clock(BASE + args.start - 1)
    config = PersistenceConfig(enabled=True, max_entries=args.entries, save_interval_secs=0)
    book = PersistentPeerStore.open(path=args.path, realm=REALM, clock=clock, config=config)
    if len(book.store) == 0:
        for first in range(1, args.entries, 500):  # within the per-message cap of peer lists
            last = min(first + 500, args.entries)
            book.store.record_gossip([gossip_addr(i) for i in range(first, last)])
    for g in range(args.start, args.start + args.generations):
        clock.t = BASE + g
        book.store.record_connected(addr_for(g), node_id=f"g{g}", capabilities=["relay"])
        stepper.generation, stepper.done, stepper.active = g, [], True
        saved = book.save()
        stepper.active = False
        stepper.before("returned")
        if not saved:
            sys.stderr.write(f"save {g} failed\n")
            return 2
        out(f"ack {g}\n".encode())
    return 0


# -- the killing side -----------------------------------------------------------------------------


class WriterError(RuntimeError):
    """The writer did not do what it was started for; the message holds what it said."""


@attrs.frozen
class KillResult:
    """What one kill left behind."""

    start: int
    """The first generation the writer was to save."""
    last_ack: int | None
    """The newest generation acknowledged before the writer died, read from its pipe."""
    paused: str | None
    """The writer's ``paused`` line when it was killed at a chosen step, else None."""
    temporaries_left: int
    """Temporary files in the directory right after the kill."""
    status: LoadStatus | None
    """How the file loaded on the next open; None if the lock could not be taken."""
    generation: int | None
    """The generation the file held (saved_at - BASE), None if there was no file."""
    newest_peer_ok: bool
    """Whether the file held that generation's peer, connected at that time."""
    temporaries_after_open: int
    """Temporary files left once the file was opened again."""
    entries: int
    size: int
    seconds: float
    """From starting the writer to the kill."""

    @property
    def done_before_pause(self) -> list[str]:
        """The file operations the paused save had made."""
        if self.paused is None:
            return []
        done = self.paused.rpartition("done=")[2]
        return done.split(",") if done else []


def temporaries(path: Path) -> list[Path]:
    """Temporary files a save of ``path`` may leave behind."""
    return sorted(path.parent.glob(f".{glob_escape(path.name)}.*.tmp"))


class _Lines:
    """Lines from a pipe, with a deadline on every wait."""

    def __init__(self, stream: Any) -> None:
        self._fd = stream.fileno()
        self._buffer = b""
        self.eof = False

    def read(self, timeout: float) -> list[str]:
        """The lines that arrive within ``timeout`` seconds (at least one, unless EOF or time)."""
        ready, _, _ = select.select([self._fd], [], [], max(timeout, 0))
        if not ready:
            return []
        chunk = os.read(self._fd, 65536)
        if not chunk:
            self.eof = True
            return []
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        return [line.decode() for line in lines]

    def rest(self, tail: bytes) -> list[str]:
        """The complete lines left in the buffer once ``tail``, the pipe's last bytes, is added."""
        *lines, _ = (self._buffer + tail).split(b"\n")
        return [line.decode() for line in lines]


def kill_once(
    path: Path,
    *,
    entries: int,
    start: int,
    pause_at: int | None = None,
    acks: int = 1,
    delay: float = 0.0,
    timeout: float = 60.0,
) -> KillResult:
    """Start a writer on ``path`` at generation ``start`` and kill it with SIGKILL.

    With ``pause_at`` (a step of save ``start``), kill it where it pauses. Otherwise kill it as
    soon as ``acks`` saves were acknowledged, or ``delay`` seconds after that (``delay`` is for the
    campaign script; the tests use 0 and synchronise on the pipe alone).
    """
    command = [sys.executable, str(WRITER), str(path), "--entries", str(entries)]
    command += ["--start", str(start)]
    if pause_at is not None:
        command += ["--pause-at", f"{start}:{pause_at}"]
    began = time.monotonic()
    deadline = began + timeout
    proc = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None
    reader = _Lines(proc.stdout)
    seen: list[str] = []
    try:
        kill_at: float | None = None
        while True:
            now = time.monotonic()
            if kill_at is not None and now >= kill_at:
                break
            if now >= deadline:
                raise WriterError(f"no kill point within {timeout}s; writer said {seen[-3:]}")
            seen += reader.read(min(deadline, kill_at or deadline) - now)
            if reader.eof:
                break
            if pause_at is not None and any(line.startswith("paused") for line in seen):
                break
            if kill_at is None and pause_at is None and _acks(seen) >= acks:
                kill_at = time.monotonic() + delay
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        # Drain the pipes: an ack written just before the kill is an acknowledged save too.
        out, err = proc.communicate(timeout=timeout)
    seconds = time.monotonic() - began
    if proc.returncode != -signal.SIGKILL:
        raise WriterError(
            f"writer exited with {proc.returncode} before it was killed: {err.decode()[-2000:]}"
        )
    seen += reader.rest(out)
    return _inspect(path, start=start, seen=seen, seconds=seconds)


def _acks(lines: list[str]) -> int:
    return sum(line.startswith("ack ") for line in lines)


def _inspect(path: Path, *, start: int, seen: list[str], seconds: float) -> KillResult:
    acked = [int(line.split()[1]) for line in seen if line.startswith("ack ")]
    paused = next((line for line in seen if line.startswith("paused")), None)
    left = len(temporaries(path))
    generation = None
    newest_peer_ok = False
    size = entries = 0
    if path.exists():
        data = path.read_bytes()
        size = len(data)
        decoded = decode(data, realm=REALM)
        if decoded.saved_at is not None:
            generation = decoded.saved_at - BASE
            newest = {e.addr: e for e in decoded.entries}.get(addr_for(generation))
            newest_peer_ok = (
                newest is not None
                and newest.node_id == f"g{generation}"
                and newest.last_connected == decoded.saved_at
            )
    try:
        peer_file = PeerFile.open(path, REALM)
    except StoreLockedError:
        status = None
        after = len(temporaries(path))
    else:
        with peer_file:
            after = len(temporaries(path))
            outcome = load_file(peer_file, BASE + (generation or 0))
            status = outcome.status
            entries = len(outcome.entries)
    return KillResult(
        start=start,
        last_ack=max(acked, default=None),
        paused=paused,
        temporaries_left=left,
        status=status,
        generation=generation,
        newest_peer_ok=newest_peer_ok,
        temporaries_after_open=after,
        entries=entries,
        size=size,
        seconds=seconds,
    )


def check(result: KillResult, *, acknowledged: int | None) -> list[str]:
    """Every promise the file broke after a kill; empty when it kept them all.

    ``acknowledged`` is the newest generation acknowledged by any earlier writer of the file.
    """
    broken = []
    last_ack = max((g for g in (acknowledged, result.last_ack) if g is not None), default=None)
    if result.status is None:
        broken.append("the lock was still held after the writer died")
    elif result.status is LoadStatus.MISSING:
        if last_ack is not None:
            broken.append(f"the file is missing although save {last_ack} was acknowledged")
    elif result.status is not LoadStatus.INTACT:
        broken.append(f"the file loaded {result.status.value}, not intact")
    if result.status is not LoadStatus.MISSING:
        if result.generation is None:
            broken.append("the file holds no saved_at")
        elif not result.newest_peer_ok:
            broken.append(f"the file does not hold save {result.generation} as it was made")
        if last_ack is not None and (result.generation or 0) < last_ack:
            broken.append(f"save {last_ack} was acknowledged, the file holds {result.generation}")
        # At most the save after the last acknowledged one may have reached the file.
        started = (result.start - 1 if result.last_ack is None else result.last_ack) + 1
        if result.generation is not None and result.generation > started:
            broken.append(f"the file holds save {result.generation}, never started")
    if result.temporaries_after_open:
        broken.append(f"{result.temporaries_after_open} temporary files left after a new open")
    return broken


if __name__ == "__main__":
    sys.exit(writer_main(sys.argv[1:]))
