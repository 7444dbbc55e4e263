"""The restart-eclipse experiment: the attacker's addresses, each measure on a small network,
the targets' verdicts, repeatability, and the command."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs
import pytest

from hostsim.cli import main
from hostsim.experiment.eclipse import (
    RESTART_CAUSE,
    EclipseNetwork,
    EclipseResult,
    EclipseSpec,
    _attacker_index,
    attacker_addr,
    check_eclipse_targets,
    format_eclipse,
    plot_eclipse,
    run_once,
)
from hostsim.sim.network import node_addr
from thenodes_peerstore.model import canonical_addr, network_group

# A network that plays both arms in well under a second each.
SMALL = EclipseSpec(
    addresses=32,
    groups=4,
    honest=12,
    seeds=2,
    victims=1,
    cuts=(0.0, 1.0),
    warmup_secs=120.0,
    attack_secs=300.0,
    after_secs=3600.0,
)


def test_attacker_addresses_are_valid_distinct_and_spread_over_the_groups() -> None:
    spec = EclipseSpec(addresses=65_536, groups=256)
    sample = [attacker_addr(i, 256) for i in (*range(600), 65_535)]
    assert len(set(sample)) == len(sample)
    assert all(canonical_addr(a) == a for a in sample)
    assert len({network_group(attacker_addr(i, 256)) for i in range(256)}) == 256
    assert {network_group(a) for a in sample} == {network_group(a) for a in sample[:256]}
    assert all(_attacker_index(a, spec) is not None for a in sample)
    honest = {network_group(node_addr(i)) for i in range(2000)}
    assert honest.isdisjoint(network_group(a) for a in sample)
    one_group = EclipseSpec(addresses=65_536, groups=1)
    last = attacker_addr(65_535, 1)
    assert _attacker_index(last, one_group) == 65_535
    assert network_group(last) == network_group(attacker_addr(0, 1))


def test_an_address_outside_the_attackers_range_is_not_his() -> None:
    spec = EclipseSpec(addresses=100, groups=10)
    assert _attacker_index(attacker_addr(99, 10), spec) == 99
    assert _attacker_index(attacker_addr(100, 10), spec) is None
    assert _attacker_index(attacker_addr(5, 10).replace(":7447", ":7448"), spec) is None
    assert _attacker_index(node_addr(3), spec) is None


@pytest.mark.parametrize(
    "changes",
    [
        {"addresses": 65_537},
        {"groups": 257, "addresses": 65_536},
        {"groups": 8, "addresses": 4},
        {"victims": 5, "honest": 14},
        {"cuts": (1.5,)},
        {"after_secs": 600.0},
    ],
)
def test_a_spec_out_of_range_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"must|share|at most"):
        EclipseSpec(**changes)


@pytest.fixture(scope="module")
def result() -> EclipseResult:
    """Both arms of the small network, seed 3."""
    runs = tuple(run_once(SMALL, store=store, seed=3) for store in (True, False))
    return EclipseResult(SMALL, (3,), runs)


def test_every_measure_is_taken_for_every_victim(result: EclipseResult) -> None:
    for run in result.runs:
        assert [v["cut"] for v in run["victims"]] == [0.0, 1.0]
        assert 0 < run["attacker_personas"] <= SMALL.addresses
        for victim in run["victims"]:
            assert victim["outbound_60s"] is not None
            assert victim["outbound_1h"] is not None
            attacker = sum(_attacker_index(a, SMALL) is not None for a in victim["plan"])
            assert victim["plan_attacker"] == attacker
    store, seeds_only = (result.summary(arm, 0.0) for arm in ("store", "seeds_only"))
    assert 0 < store["plan_entries"] <= 5
    assert seeds_only["plan_entries"] == 0  # seeds only: no plan at all
    assert len(format_eclipse(result)) == 1 + 2 * len(SMALL.cuts)


def test_an_attacker_that_wins_by_construction_is_reported_as_winning(
    result: EclipseResult,
) -> None:
    # Every honest peer cut off and the attacker answering every dial: every outbound
    # connection the victim makes goes to the attacker, in both arms.
    for arm in ("store", "seeds_only"):
        whole = result.summary(arm, 1.0)
        assert whole["eclipsed_60s"] == whole["eclipsed_1h"] == 1
        assert whole["attacker_outbound_share_60s"] == 1.0
        assert whole["first_eclipse_secs"] is not None
        assert whole["first_eclipse_secs"] < 3600
    verdicts = {t.name.split(":")[0]: t.holds for t in check_eclipse_targets([result])}
    assert verdicts["100% cut off"] is False


def test_a_victim_cut_off_from_every_honest_peer_reaches_none(tmp_path: Path) -> None:
    network = EclipseNetwork(SMALL, store=True, seed=5, state_dir=tmp_path)
    network.run_until(SMALL.restart_at + SMALL.downtime_secs + 600)
    free_victim, cut_victim = network.victims
    assert network.cut_off[cut_victim.addr] == frozenset(
        n.addr for n in network.nodes if n is not cut_victim
    )
    assert network.cut_off[free_victim.addr] == frozenset()
    assert cut_victim.conns
    assert all(c.handle.role == "attacker" for c in cut_victim.conns.values())  # type: ignore[attr-defined]
    assert any(c.handle.role != "attacker" for c in free_victim.conns.values())  # type: ignore[attr-defined]
    restarts = [r for r in network.metrics.starts if r.cause == RESTART_CAUSE]
    assert [r.node for r in restarts] == [v.name for v in network.victims]
    network.close()


def test_no_dial_reaches_the_attacker_before_the_attack(tmp_path: Path) -> None:
    network = EclipseNetwork(SMALL, store=False, seed=5, state_dir=tmp_path)
    assert network.by_addr.get(attacker_addr(0, SMALL.groups)) is None
    network.run_until(SMALL.warmup_secs + 1)
    persona = network.by_addr.get(attacker_addr(0, SMALL.groups))
    assert persona is not None
    assert persona.role == "attacker"
    assert network.by_addr.get(attacker_addr(SMALL.addresses, SMALL.groups)) is None
    network.close()


def _victim(cut: float, **values: Any) -> dict[str, Any]:
    victim: dict[str, Any] = {
        "victim": "v",
        "cut": cut,
        "plan": [],
        "plan_attacker": 0,
        "outbound_60s": [0, 8],
        "outbound_1h": [0, 8],
        "eclipsed_after_secs": None,
    }
    victim.update(values)
    return victim


def _made_up(victims: list[dict[str, Any]], spec: EclipseSpec) -> EclipseResult:
    run = {"seed": 1, "arm": "store", "events_run": 0, "attacker_personas": 0, "victims": victims}
    return EclipseResult(spec, (1,), (run,))


def test_the_targets_hold_when_the_attacker_gets_nowhere() -> None:
    spec = EclipseSpec(cuts=(0.0, 0.9, 1.0))
    victims = [
        _victim(0.0, plan=["11.0.1.2:7447"] * 5),
        _victim(0.9, outbound_60s=[1, 8]),
        _victim(1.0, outbound_60s=[0, 0], eclipsed_after_secs=4 * 3600.0 - 10),
    ]
    targets = check_eclipse_targets([_made_up(victims, spec)])
    assert [t.holds for t in targets] == [True, True, True]


def test_the_targets_fail_on_each_measure() -> None:
    spec = EclipseSpec(cuts=(0.0, 0.9, 1.0))
    victims = [
        _victim(0.0, plan=["11.0.1.2:7447"] * 5, plan_attacker=1),
        _victim(0.9, outbound_60s=[2, 8]),
        _victim(0.9, outbound_60s=[1, 8]),
        _victim(1.0, eclipsed_after_secs=3 * 3600.0 - 10),
        _victim(1.0, eclipsed_after_secs=None),
    ]
    result = _made_up(victims, spec)
    assert [t.holds for t in check_eclipse_targets([result])] == [False, False, False]
    partial = result.summary("store", 0.9)
    assert partial["attacker_outbound_share_60s"] == 3 / 16
    whole = result.summary("store", 1.0)
    assert whole["first_eclipse_secs"] == 3 * 3600.0 - 10
    assert whole["median_eclipse_secs"] is None  # not half of them eclipsed
    eclipsed = _made_up([_victim(0.0, outbound_1h=[8, 8])], spec)
    assert check_eclipse_targets([eclipsed])[0].holds is False
    assert eclipsed.summary("store", 0.0)["eclipsed_1h"] == 1


ARGS = [
    "eclipse",
    "--addresses",
    "24",
    "--groups",
    "4",
    "--honest",
    "10",
    "--victims",
    "1",
    "--cut",
    "0,1",
    "--attack",
    "5m",
    "--after",
    "1h",
    "--seed",
    "7",
]


def test_the_same_seed_gives_the_same_json_bytes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    assert main([*ARGS, "--json", str(first)]) in (0, 1)
    out = capsys.readouterr().out
    assert main([*ARGS, "--json", str(second)]) in (0, 1)
    assert first.read_bytes() == second.read_bytes()
    assert "== eclipse: 24 attacker addresses in 4 /16s, attack 5m" in out
    assert "targets (the peer-store arm):" in out
    assert "100% cut off: time to eclipse >= 3.0 h of running time" in out


def test_piped_it_says_how_far_it_is_on_stderr_and_writes_each_table_at_once(
    tmp_path: Path,
) -> None:
    """To a pipe, stdout and stderr alike: plain progress lines while it runs, and the table
    of each N written as soon as it is made, not when the command ends."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "hostsim", *ARGS, "--addresses", "24,32"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    with proc:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("== eclipse: 24 attacker addresses"), first
        assert proc.poll() is None, "the first table came while the second N still ran"
        out, err = proc.communicate(timeout=120)
    assert proc.returncode in (0, 1), err
    assert "== eclipse: 32 attacker addresses" in out
    progress = err.splitlines()
    assert progress, "nothing on stderr while it ran"
    assert all(" s simulated; " in line for line in progress), err


def test_the_command_refuses_a_spec_out_of_range(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eclipse", "--addresses", "8", "--groups", "16"]) == 2
    assert "groups = 16" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["eclipse", "--cut", "2"])
    with pytest.raises(SystemExit):
        main(["eclipse", "--attack", "soon"])


@pytest.mark.skipif(
    importlib.util.find_spec("matplotlib") is not None, reason="matplotlib is installed"
)
def test_the_plot_without_matplotlib_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*ARGS, "--plot", str(tmp_path / "p.png")]) == 2
    assert "--plot needs matplotlib" in capsys.readouterr().err


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="needs matplotlib")
def test_the_plot_draws_both_arms_against_n(tmp_path: Path) -> None:
    spec = EclipseSpec(cuts=(0.0, 0.9, 1.0))
    victims = [_victim(0.0), _victim(0.9, outbound_60s=[3, 8]), _victim(1.0)]
    results = [_made_up(victims, attrs.evolve(spec, addresses=n)) for n in (64, 4096)]
    plot = tmp_path / "p.png"
    plot_eclipse(results, plot)
    assert plot.read_bytes().startswith(b"\x89PNG")
