"""The hostsim command: the printed timeline, the state directory, and one-line errors."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import pytest

import hostsim.plugins
from hostsim.cli import main
from hostsim.testing import fake_entry_point, hookimpl

NODE = """
bootstrap_nodes = ["203.0.113.1:7447", "203.0.113.2:7447"]
[realm]
name = "Example"
[node]
id = "node-a"
[plugins]
enabled = {enabled}
"""

SCENARIO = """
config = "node.toml"
show_files = {show_files}

[world]
"203.0.113.1:7447" = "seed-1"

[[events]]
at = 0
do = "start"

[[events]]
at = 5
do = "peer_list"
from = "203.0.113.1:7447"
peers = ["198.51.100.7:7447", "192.0.2.10:7447"]

[[events]]
at = 65
do = "shutdown"

[[events]]
at = 3665
do = "restart"
"""


class Filer:
    """A plugin that keeps a note and a lock file under the state directory."""

    @hookimpl
    def on_startup(self, host: Any) -> list[str]:
        notes = Path(host.state_dir) / "notes"
        notes.mkdir(parents=True, exist_ok=True)
        (notes / "node.lock").write_text("do not show", encoding="utf-8")
        host.log.info("filer: started at %d", host.now())
        note = notes / "node.txt"
        return note.read_text(encoding="utf-8").split() if note.exists() else []

    @hookimpl
    def on_shutdown(self, host: Any) -> None:
        (Path(host.state_dir) / "notes" / "node.txt").write_text(
            "198.51.100.7:7447\n", encoding="utf-8"
        )


def write(tmp_path: Path, *, enabled: str = "[]", show_files: str = "false") -> Path:
    (tmp_path / "node.toml").write_text(
        textwrap.dedent(NODE.format(enabled=enabled)), encoding="utf-8"
    )
    path = tmp_path / "scenario.toml"
    path.write_text(textwrap.dedent(SCENARIO.format(show_files=show_files)), encoding="utf-8")
    return path


@pytest.fixture
def filer_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        hostsim.plugins, "installed_entry_points", lambda: (fake_entry_point("filer", Filer),)
    )


def test_run_prints_the_timeline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state"
    assert main(["run", str(write(tmp_path)), "--state-dir", str(state)]) == 0

    out, err = capsys.readouterr()
    assert err == ""
    assert out.splitlines() == [
        "t=+0s       start        node-a (realm example) dials 2 addresses:",
        "                           1. 203.0.113.1:7447  seed  connected (seed-1)",
        "                           2. 203.0.113.2:7447  seed  failed: connection refused",
        "t=+5s       peer_list    from 203.0.113.1:7447: 2 addresses",
        "t=+65s      shutdown     node-a stops gracefully",
        "t=+3665s    restart      node-a dials 2 addresses:",
        "                           1. 203.0.113.1:7447  seed  connected (seed-1)",
        "                           2. 203.0.113.2:7447  seed  failed: connection refused",
        "t=+3665s    end          the run ends with node-a running;"
        " it stops without a shutdown (no hook called)",
        "",
        f"state directory: {state}",
    ]


@pytest.mark.usefixtures("filer_installed")
def test_plugin_dials_and_files_are_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    path = write(tmp_path, enabled='["filer"]', show_files="true")
    assert main(["run", str(path), "--state-dir", str(state)]) == 0

    out = capsys.readouterr().out
    assert (
        "                           1. 198.51.100.7:7447  filer  failed: connection refused\n"
        in out
    )
    assert "                           2. 203.0.113.1:7447   seed   connected (seed-1)\n" in out
    assert out.endswith(
        f"state directory: {state}\n"
        "\n"
        "--- notes/node.lock (11 bytes): lock file, contents not shown\n"
        "\n"
        "--- notes/node.txt (18 bytes)\n"
        "198.51.100.7:7447\n"
    )
    assert "do not show" not in out


@pytest.mark.usefixtures("filer_installed")
def test_verbose_shows_plugin_log_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, enabled='["filer"]')
    assert main(["run", str(path), "--state-dir", str(tmp_path / "s"), "-v"]) == 0
    err = capsys.readouterr().err
    assert "INFO hostsim.node.node-a: filer: started at 1763700000\n" in err
    assert "INFO hostsim.node.node-a: filer: started at 1763703665\n" in err

    assert main(["run", str(path), "--state-dir", str(tmp_path / "t")]) == 0
    assert capsys.readouterr().err == ""


def test_each_run_gets_a_new_temporary_state_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    path = write(tmp_path, show_files="true")

    assert main(["run", str(path)]) == 0
    assert main(["run", str(path)]) == 0

    dirs = sorted(temp.iterdir())
    assert len(dirs) == 2
    assert all(d.name.startswith("hostsim-") for d in dirs)
    out = capsys.readouterr().out
    for d in dirs:
        assert f"state directory: {d}\n  (no files)\n" in out


def error_of(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("hostsim: error: ")
    assert err.count("\n") == 1
    assert "Traceback" not in err
    return err.removeprefix("hostsim: error: ").rstrip("\n")


def test_missing_scenario_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "absent.toml"
    assert error_of(capsys, ["run", str(missing)]) == f"{missing}: No such file or directory"


def test_missing_host_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path)
    (tmp_path / "node.toml").unlink()
    assert (
        error_of(capsys, ["run", str(path)])
        == f"{tmp_path / 'node.toml'}: No such file or directory"
    )


def test_bad_scenario(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path)
    path.write_text(
        path.read_text(encoding="utf-8").replace('do = "shutdown"', 'do = "stop"'), encoding="utf-8"
    )
    assert error_of(capsys, ["run", str(path)]).startswith(
        f'{path}: event 3: do = "stop": unknown event'
    )


def test_bad_host_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path)
    node = tmp_path / "node.toml"
    node.write_text(
        node.read_text(encoding="utf-8").replace('id = "node-a"', "id = 5"), encoding="utf-8"
    )
    assert error_of(capsys, ["run", str(path)]) == f"{node}: [node] id: expected a string, got 5"


def test_plugin_not_installed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hostsim.plugins, "installed_entry_points", tuple)
    path = write(tmp_path, enabled='["peerstore"]')
    message = error_of(capsys, ["run", str(path), "--state-dir", str(tmp_path / "s")])
    assert message == (
        f"{path}: event 1 (start at t=+0s): plugin 'peerstore' is enabled in [plugins] enabled"
        " but not installed (installed 'thenodes' plugins: none)"
    )


def test_startup_error_prints_the_timeline_so_far(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    class FailsOnRestart:
        starts = 0

        @hookimpl
        def on_startup(self, host: Any) -> list[str]:
            FailsOnRestart.starts += 1
            if FailsOnRestart.starts > 1:
                raise RuntimeError("the store file is locked by another process")
            return []

    monkeypatch.setattr(
        hostsim.plugins,
        "installed_entry_points",
        lambda: (fake_entry_point("store", FailsOnRestart),),
    )
    path = write(tmp_path, enabled='["store"]')
    state = tmp_path / "s"
    assert main(["run", str(path), "--state-dir", str(state)]) == 2

    out, err = capsys.readouterr()
    assert out.splitlines()[0].startswith("t=+0s       start")
    assert out.splitlines()[-2].startswith("t=+65s      shutdown")
    assert out.splitlines()[-1] == f"state directory: {state}"
    assert err == (
        f"hostsim: error: {path}: event 4 (restart at t=+3665s): plugin 'store' failed to start"
        " node 'node-a': the store file is locked by another process\n"
    )


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    assert "usage: hostsim" in capsys.readouterr().err


def test_python_dash_m(tmp_path: Path) -> None:
    path = write(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "hostsim", "run", str(path), "--state-dir", str(tmp_path / "s")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(
        "t=+0s       start        node-a (realm example) dials 2 addresses:\n"
    )


def test_the_help_says_which_commands_simulate_and_which_run_in_real_time(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    described = " ".join(capsys.readouterr().out.split())
    assert "simulated on a virtual clock (run, sim, demo, eclipse)" in described
    assert "live nodes on real TCP and the real clock (node, cluster)" in described
