"""``hostsim demo`` on a reduced network: the table, and the three targets it must show."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
from pathlib import Path

import pytest

from hostsim.cli import main
from hostsim.sim.demo import compare, plot_comparisons
from hostsim.sim.scenario import SimScenario

HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, dict[str, object]]:
    out = tmp_path_factory.mktemp("demo") / "demo.json"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = main(["demo", "--nodes", "12", "--json", str(out)])
    return status, printed.getvalue(), json.loads(out.read_text(encoding="utf-8"))


def test_the_demo_shows_all_four_targets_holding_on_a_small_network(
    demo: tuple[int, str, dict[str, object]],
) -> None:
    status, printed, _ = demo
    assert status == 0
    verdicts = [line.strip() for line in printed.splitlines() if line.startswith("  [")]
    assert len(verdicts) == 4
    assert all(line.startswith("[holds]") for line in verdicts)


def test_the_demo_prints_a_side_by_side_table_per_scenario(
    demo: tuple[int, str, dict[str, object]],
) -> None:
    _, printed, _ = demo
    for name in ("seeds-up", "seeds-down", "flood"):
        assert f"== {name}: 12 nodes + 4 seeds" in printed
    assert printed.count("peer store    seeds only") == 3
    assert "rejoined within 60 s" in printed


def test_the_demo_targets_are_measured_not_assumed(
    demo: tuple[int, str, dict[str, object]],
) -> None:
    _, _, data = demo
    up, down, flood = data["comparisons"]  # type: ignore[misc]
    store = up["store"]["summary"]["by_cause"]["mass_restart"]
    seeds = up["seeds_only"]["summary"]["by_cause"]["mass_restart"]
    assert store["median_target_secs"] <= seeds["median_target_secs"]
    assert down["store"]["summary"]["by_cause"]["mass_restart"]["rejoined_within_60s"] >= 0.95
    assert down["store"]["summary"]["by_cause"]["mass_restart"]["median_target_secs"] <= 15
    assert down["seeds_only"]["summary"]["by_cause"]["mass_restart"]["rejoined_within_60s"] == 0
    plans = [s["plan"] for s in flood["store"]["starts"] if s["cause"] == "mass_restart"]
    assert all(plans)
    assert flood["store"]["summary"]["plan_fake_entries"] == 0
    # The attackers were connected: the flood reached honest nodes and their stores.
    assert flood["store"]["summary"]["attacker_connection_share"] > 0
    assert [t["holds"] for t in data["targets"]] == [True] * 4  # type: ignore[index]


@pytest.mark.skipif(HAS_MATPLOTLIB, reason="matplotlib is installed")
def test_plot_without_matplotlib_fails_at_once_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--nodes", "1", "--plot", str(tmp_path / "p.png")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "hostsim: error: --plot needs matplotlib, which is not installed"
        " (pip install 'thenodes-peerstore[plot]')\n"
    )


def test_the_demo_refuses_a_network_of_no_nodes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["demo", "--nodes", "0"])
    assert caught.value.code == 2
    assert "0 is not a positive number" in capsys.readouterr().err


@pytest.mark.skipif(not HAS_MATPLOTLIB, reason="matplotlib is not installed")
def test_plot_draws_both_arms_of_every_scenario_to_a_png(tmp_path: Path) -> None:
    scenario = SimScenario(nodes=3, seeds=1, duration_secs=120.0)
    comparison = compare(scenario, seed=1)
    path = tmp_path / "plot.png"
    plot_comparisons([comparison, comparison], path)
    assert path.read_bytes().startswith(b"\x89PNG")
