"""A progress line on a terminal: one line on stderr, rewritten in place while a command runs.

Long commands (``hostsim demo``, ``hostsim sim``, ``hostsim cluster``) hand a
:class:`ProgressLine` to the library as a plain ``Callable[[str], None]``; the library only
calls it with what it is doing. The line is shown only when the stream is a terminal, so
output to a pipe, a file or a ``--json`` run stays clean, and it is cleared when the command
ends. It is also off while log lines go to the same stream (``-v``), which it would garble.

A carriage return and "erase to end of line" are all it takes; a progress library (rich,
tqdm) would bring its own terminal handling and a dependency for one line of text.

A command that runs for minutes (``hostsim cluster``) may also ask for plain lines when the
stream is not a terminal (``plain_interval``): then a whole line is written when the phase
changes (the text before its first colon) and at most every ``plain_interval`` seconds
otherwise, so a log file shows what the command was doing.
"""

from __future__ import annotations

import shutil
import sys
import time
from types import TracebackType
from typing import TextIO

__all__ = ["ProgressLine"]

_ERASE = "\x1b[K"


class ProgressLine:
    """Rewrite one status line on ``stream`` (default: stderr) when it is a terminal.

    :param enabled: Force the line off (False); by default it is on when ``stream`` is a
        terminal.
    :param min_interval: Seconds between two rewrites; updates in between are dropped, except
        that the latest is shown at the next update after the interval.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        enabled: bool | None = None,
        min_interval: float = 0.1,
        plain_interval: float | None = None,
    ) -> None:
        self.stream = sys.stderr if stream is None else stream
        terminal = _is_terminal(self.stream)
        if enabled is None:
            enabled = terminal
        self.enabled = enabled and terminal if plain_interval is not None else enabled
        self.plain_interval = None if terminal else plain_interval
        self._plain_last = -float("inf")
        self._plain_phase: str | None = None
        self.min_interval = min_interval
        self._shown = False
        self._last = -float("inf")

    def __call__(self, text: str) -> None:
        """Show ``text`` as the progress line (cut to the terminal's width)."""
        if self.plain_interval is not None:
            self._plain(text)
            return
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < self.min_interval:
            return
        self._last = now
        width = shutil.get_terminal_size().columns
        line = text.replace("\n", " ")[: max(width - 1, 1)]
        self.stream.write(f"\r{line}{_ERASE}")
        self.stream.flush()
        self._shown = True

    def _plain(self, text: str) -> None:
        now = time.monotonic()
        phase = text.partition(":")[0]
        if phase == self._plain_phase and now - self._plain_last < (self.plain_interval or 0.0):
            return
        self._plain_phase, self._plain_last = phase, now
        try:
            self.stream.write(text.replace("\n", " ") + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # a closed stderr ends the lines, not the command
            self.plain_interval = None

    def clear(self) -> None:
        """Erase the line, so that what is printed next starts on a clean line."""
        if self._shown:
            self.stream.write(f"\r{_ERASE}")
            self.stream.flush()
            self._shown = False
        self._last = -float("inf")

    def __enter__(self) -> ProgressLine:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.clear()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
