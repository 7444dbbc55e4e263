"""The console scripts ``hostsim`` and ``peerstore``: Ctrl-C answered from the first instant.

Importing a command takes a few tenths of a second (attrs, cattrs, pluggy, the command's own
modules). The function a console script calls installs its SIGINT handler first and imports
the command after, so that Ctrl-C at any moment ends the command with one line on stderr and
exit status 130, never a traceback:

- while the command is imported, nothing has been done: the process says so and exits at once;
- while it runs, Ctrl-C is Python's ``KeyboardInterrupt``, so that files being written are
  cleaned up on the way out; whatever the command does not catch itself is caught here;
- once it has returned, Ctrl-C exits at once again, with 130.

``python -m hostsim`` and ``python -m thenodes_peerstore`` call the same functions, after their
package's own import.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType

from thenodes_console import EXIT_INTERRUPTED, interrupted_line

__all__ = ["hostsim", "peerstore"]


def hostsim() -> int:
    """The ``hostsim`` command."""
    return run("hostsim", "hostsim.cli")


def peerstore() -> int:
    """The ``peerstore`` command."""
    return run("peerstore", "thenodes_peerstore.cli")


def run(prog: str, module: str) -> int:
    """Import ``module`` and return what its ``main()`` returns, with Ctrl-C answered by one
    line and exit status 130 whenever it comes."""
    at_once = _exit_at_once(prog)
    signal.signal(signal.SIGINT, at_once)
    try:
        main: Callable[[], int] = importlib.import_module(module).main
        signal.signal(signal.SIGINT, signal.default_int_handler)
        status = main()
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _say(interrupted_line(prog))
        return EXIT_INTERRUPTED
    signal.signal(signal.SIGINT, at_once)
    return status


def _exit_at_once(prog: str) -> Callable[[int, FrameType | None], None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        _say(interrupted_line(prog))
        os._exit(EXIT_INTERRUPTED)

    return handler


def _say(line: str) -> None:
    with contextlib.suppress(Exception):  # a stderr half-written by the command, or closed
        sys.stderr.flush()
    with contextlib.suppress(OSError):  # no stderr left to say it on
        os.write(2, line.encode())
