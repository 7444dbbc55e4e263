"""Where a simulated network keeps its nodes' files when its caller names no directory.

Every node's peer store saves its file as in production: a temporary file, an fsync, a rename
and an fsync of the directory. On a disk those fsyncs cost more than the simulation: 1,000
nodes for an hour (``hostsim sim benchmarks/bench_sim.toml --seed 1``) took 111.5 s (61 s of
CPU, 11 of them in the kernel) with the files under /tmp on a 2-core machine, and 45.7 s
(44.7 s of CPU) with them on /dev/shm, for the same JSON. So a run that is not told where to
keep its files keeps them on a memory-backed file system, /dev/shm, when there is one with
room for them; in the system's temporary directory when there is none, or when ``TMPDIR``
says where temporary files go. Only a caller that plays a network uses this: a node's own
files are wherever its config says.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import FrameType

__all__ = ["MEMORY_DIR", "ROOM_PER_NODE", "scratch_directory"]

logger = logging.getLogger(__name__)

MEMORY_DIR = Path("/dev/shm")  # noqa: S108 - only ever a parent of mkdtemp's 0700 directories
"""A memory-backed file system, where Linux has one."""
ROOM_PER_NODE = 512 * 1024
"""The free space a node's files need there: a full default store (1,024 peers) is a file of
about 140 KB, written to a temporary file beside it at each save."""


@contextlib.contextmanager
def scratch_directory(
    prefix: str, nodes: int, *, environ: Mapping[str, str] = os.environ
) -> Iterator[str]:
    """A temporary directory for the files of ``nodes`` simulated nodes, removed on exit: on
    :data:`MEMORY_DIR` when it has :data:`ROOM_PER_NODE` a node free and ``TMPDIR`` is not set
    in ``environ``, else in the system's temporary directory.

    Files on a memory-backed file system hold memory until they are removed, and a process
    ended by SIGTERM (``timeout``, a supervisor) runs no cleanup: 10,000 nodes' files would stay
    in memory until the machine restarts. So while the directory exists, a SIGTERM that nothing
    else handles ends the process as :class:`SystemExit` with status 143, after the directory
    is removed.
    """
    with (
        tempfile.TemporaryDirectory(prefix=prefix, dir=_memory_dir(nodes, environ)) as tmp,
        _terminated_as_exit(),
    ):
        yield tmp


@contextlib.contextmanager
def _terminated_as_exit() -> Iterator[None]:
    """SIGTERM raises :class:`SystemExit` within, when nothing else handles it (its handler is
    the default) and this is the main thread, the only one a handler can be set in."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    def terminated(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _memory_dir(nodes: int, environ: Mapping[str, str]) -> str | None:
    if environ.get("TMPDIR") or not MEMORY_DIR.is_dir() or not os.access(MEMORY_DIR, os.W_OK):
        return None
    try:
        stat = os.statvfs(MEMORY_DIR)
    except OSError:
        return None
    free = stat.f_bavail * stat.f_frsize
    if free < nodes * ROOM_PER_NODE:
        logger.debug(
            "%s has %d bytes free, fewer than %d nodes need: the nodes' files go to %s",
            MEMORY_DIR,
            free,
            nodes,
            tempfile.gettempdir(),
        )
        return None
    return str(MEMORY_DIR)
