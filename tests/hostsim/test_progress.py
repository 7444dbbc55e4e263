"""The progress line of long commands: on a terminal's stderr only, never in a pipe or a file."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from hostsim.cli import main
from hostsim.progress import ProgressLine


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_line_is_rewritten_in_place_and_cleared(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "20")
    stream = FakeTerminal()
    with ProgressLine(stream, min_interval=0) as line:
        line("seeds-up, peer store: 10 of 900 s simulated")
        line("second")
    assert stream.getvalue() == "\rseeds-up, peer stor\x1b[K\rsecond\x1b[K\r\x1b[K"


def test_nothing_is_written_to_a_stream_that_is_not_a_terminal() -> None:
    stream = io.StringIO()
    with ProgressLine(stream, min_interval=0) as line:
        line("anything")
    assert stream.getvalue() == ""


def test_demo_and_sim_write_nothing_to_a_stderr_that_is_not_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--nodes", "2", "--json", str(tmp_path / "d.json")]) in (
        0,
        1,
    )
    assert capsys.readouterr().err == ""
    scenario = tmp_path / "small.toml"
    scenario.write_text(
        'nodes = 4\nseeds = 1\nduration_secs = 200\n[[events]]\nat = 100\ndo = "mass_restart"\n',
        encoding="utf-8",
    )
    assert main(["sim", str(scenario), "--seed", "1", "--json", str(tmp_path / "s.json")]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "\r" not in captured.out
    assert "\x1b" not in captured.out


def test_on_a_terminal_the_demo_shows_progress_on_stderr_and_keeps_stdout_clean(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    terminal = FakeTerminal()
    monkeypatch.setattr("sys.stderr", terminal)
    main(["demo", "--nodes", "2"])
    shown = terminal.getvalue()
    assert "\rseeds-up, peer store: " in shown
    assert "\rlong-downtime, " in shown  # every scenario, to the last
    assert " s simulated; " in shown
    assert shown.endswith("\r\x1b[K")  # cleared at the end
    out = capsys.readouterr().out
    assert "targets:" in out
    assert "\r" not in out
    assert "\x1b" not in out
