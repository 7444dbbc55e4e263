"""The ``hostsim`` command: play a scenario file and print its timeline.

``hostsim run SCENARIO.toml [--state-dir DIR] [-v]``. Without ``--state-dir`` each run gets a
new temporary directory, kept and named at the end, so every run starts fresh and its files
can be looked at afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from hostsim.errors import HostsimError
from hostsim.scenario import (
    RunResult,
    ScenarioRunError,
    TimelineRecord,
    load_scenario,
    run_scenario,
)

__all__ = ["format_record", "main"]

EXIT_OK = 0
EXIT_ERROR = 2
_TIME_WIDTH = 12
_KIND_WIDTH = 13
_INDENT = " " * (_TIME_WIDTH + _KIND_WIDTH + 2)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    with _logging_to_stderr(verbose=args.verbose):
        try:
            return _run(Path(args.scenario), args.state_dir)
        except HostsimError as exc:
            return _fail(str(exc))
        except OSError as exc:
            return _fail(_describe_os_error(exc))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hostsim", description="Simulate a TheNodes-style node host on a virtual clock."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser(
        "run", help="play a scenario file", description="Play a scenario file, print its timeline."
    )
    run.add_argument("scenario", metavar="SCENARIO.toml", help="the scenario file")
    run.add_argument(
        "--state-dir",
        type=Path,
        metavar="DIR",
        help="where the node keeps its state (default: a new temporary directory)",
    )
    run.add_argument(
        "-v", "--verbose", action="store_true", help="show the plugins' log lines (INFO) on stderr"
    )
    return parser


def _run(scenario_path: Path, state_dir: Path | None) -> int:
    scenario = load_scenario(scenario_path)
    if state_dir is None:
        state_dir = Path(tempfile.mkdtemp(prefix="hostsim-"))
    try:
        result = run_scenario(scenario, state_dir=state_dir)
    except ScenarioRunError as exc:
        _print_records(exc.records)
        print(f"state directory: {state_dir}")
        return _fail(str(exc))
    _print_records(result.records)
    _print_state(result)
    return EXIT_OK


def format_record(record: TimelineRecord) -> list[str]:
    """The lines that show one timeline record: a headline, then one line per dial."""
    lines = [
        f"{f't=+{record.t}s':<{_TIME_WIDTH - 1}} {record.kind:<{_KIND_WIDTH - 1}} {record.text}"
    ]
    if record.dials:
        addr_width = max(len(dial.addr) for dial in record.dials)
        origin_width = max(len(dial.origin) for dial in record.dials)
        number_width = len(str(len(record.dials)))
        for number, dial in enumerate(record.dials, start=1):
            lines.append(
                f"{_INDENT}{number:>{number_width}}. {dial.addr:<{addr_width}}  "
                f"{dial.origin:<{origin_width}}  {dial.describe()}"
            )
    return lines


def _print_records(records: Sequence[TimelineRecord]) -> None:
    for record in records:
        print("\n".join(format_record(record)))


def _print_state(result: RunResult) -> None:
    print()
    print(f"state directory: {result.state_dir}")
    if not result.scenario.show_files:
        return
    files = sorted(_files(result.state_dir))
    if not files:
        print("  (no files)")
    for path in files:
        print()
        print("\n".join(_show_file(path, result.state_dir)))


def _files(root: Path) -> Iterator[Path]:
    return (path for path in root.rglob("*") if path.is_file())


def _show_file(path: Path, root: Path) -> list[str]:
    name = path.relative_to(root).as_posix()
    size = path.stat().st_size
    header = f"--- {name} ({size} bytes)"
    if path.suffix == ".lock":
        return [f"{header}: lock file, contents not shown"]
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return [f"{header}: not UTF-8 text, contents not shown"]
    return [header, text.rstrip("\n")]


@contextlib.contextmanager
def _logging_to_stderr(*, verbose: bool) -> Iterator[None]:
    """Show log records on stderr: warnings and worse, or from INFO up when ``verbose``."""
    level = logging.INFO if verbose else logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.setLevel(level)
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    if previous > level:
        root.setLevel(level)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def _describe_os_error(exc: OSError) -> str:
    if exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc)


def _fail(message: str) -> int:
    print(f"hostsim: error: {message}", file=sys.stderr)
    return EXIT_ERROR
