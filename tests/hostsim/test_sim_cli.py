"""``hostsim sim``: determinism (same seed, same JSON, also across processes), A/B, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hostsim.cli import main
from hostsim.experiment.report import report
from hostsim.metrics import dumps
from hostsim.sim.network import simulate
from hostsim.sim.scenario import load_sim_scenario

# Every source of randomness at once: start spread, latencies, churn, crashes, a flood.
BUSY = """
name = "busy"
nodes = 10
seeds = 2
attackers = 2
duration_secs = 400
tick_interval_secs = 5

[churn]
session = { dist = "exponential", mean_secs = 120 }
downtime = { dist = "weibull", shape = 0.5, scale_secs = 20 }
crash_fraction = 0.5

[[events]]
at = 30
do = "flood"
until = 150
addrs_per_message = 200

[[events]]
at = 200
do = "mass_restart"
fraction = 0.5
"""


@pytest.fixture
def busy(tmp_path: Path) -> Path:
    path = tmp_path / "busy.toml"
    path.write_text(BUSY, encoding="utf-8")
    return path


def run_json(path: Path, seed: int, tmp_path: Path) -> str:
    metrics = simulate(load_sim_scenario(path), seed=seed, state_dir=tmp_path)
    return dumps(report(load_sim_scenario(path), seed, metrics))


def test_the_same_seed_gives_byte_identical_json_and_another_seed_does_not(
    busy: Path, tmp_path: Path
) -> None:
    first = run_json(busy, 11, tmp_path / "a")
    assert run_json(busy, 11, tmp_path / "b") == first
    assert run_json(busy, 12, tmp_path / "c") != first
    data = json.loads(first)
    causes = {start["cause"] for start in data["starts"]}
    assert {"initial", "churn", "mass_restart"} <= causes
    assert data["summary"]["restarts"]["count"] > 0


def test_two_processes_with_the_same_seed_write_the_same_json(busy: Path, tmp_path: Path) -> None:
    outputs = []
    for name in ("one.json", "two.json"):
        out = tmp_path / name
        subprocess.run(
            [sys.executable, "-m", "hostsim", "sim", str(busy), "--seed", "4", "--json", str(out)],
            check=True,
            capture_output=True,
            env={"PYTHONHASHSEED": "random", "PATH": ""},
        )
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    assert outputs[0] == run_json(busy, 4, tmp_path / "here").encode()


def test_sim_prints_the_restart_figures_and_writes_the_json(
    busy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.json"
    assert main(["sim", str(busy), "--seed", "1", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "busy: 10 nodes, 2 seeds, 2 attackers, seed 1, peer store enabled" in printed
    assert "mass_restart:" in printed
    assert "rejoined within 60 s" in printed
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["persistence"] is True
    assert len(data["series"]["t"]) == len(data["series"]["connected_fraction"]) == 41


def test_sim_ab_runs_both_arms_side_by_side(
    busy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ab.json"
    state = tmp_path / "state"
    assert (
        main(
            ["sim", str(busy), "--seed", "1", "--ab", "--json", str(out), "--state-dir", str(state)]
        )
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == ["peer", "store", "seeds", "only"]
    plans = next(line for line in lines if line.startswith("reconnect plan entries"))
    assert plans.split()[-2:] == ["0", "(0/0)"]  # seeds only: no plan at all
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["store"]["persistence"] is True
    assert data["seeds_only"]["persistence"] is False
    assert list((state / "store" / "node-0000" / "plugins" / "peerstore").glob("*.toml"))
    assert not (state / "seeds-only" / "node-0000" / "plugins" / "peerstore").exists()


def test_a_bad_scenario_is_one_line_on_stderr_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[[events]]\nat = 1\ndo = "mass_restart"\nfraction = 3\n', encoding="utf-8")
    assert main(["sim", str(path), "--seed", "1"]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"hostsim: error: {path}: event 1 (mass_restart): fraction = 3.0: must be between 0 and 1\n"
    )


def test_a_missing_scenario_file_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sim", str(tmp_path / "nope.toml"), "--seed", "1"]) == 2
    assert "nope.toml: No such file or directory" in capsys.readouterr().err


def test_a_setting_the_plugin_refuses_stops_the_run_with_its_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("nodes = 2\n[network.persistence]\nreconnect_limit = -1\n", encoding="utf-8")
    assert main(["sim", str(path), "--seed", "1"]) == 2
    err = capsys.readouterr().err
    assert "could not start" in err
    assert "reconnect_limit = -1" in err
