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
    REGAIN_TARGET_SECS,
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
from hostsim.sim.network import SimNode, node_addr
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
    after_secs=7200.0,
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
        {"after_secs": 7199.0},
        {"attack_secs": 0.0},
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
    for summary in (store, seeds_only):
        # Nothing cut off: every running honest peer it knows is reachable, and it keeps one.
        assert summary["honest_bound"] == summary["honest_kept_60s"] == 1
        assert summary["honest_kept_1h"] == 1
        assert summary["isolated_60s"] == summary["isolated_1h"] == 0
        assert summary["regained_honest_secs"] == 0.0  # it held one when the cut-off ended
    assert len(format_eclipse(result)) == 1 + 2 * len(SMALL.cuts)


def test_the_summary_has_every_measure_of_every_arm_and_cut_off(result: EclipseResult) -> None:
    summary = result.to_json()["summary"]
    assert set(summary) == {"store", "seeds_only"}
    for arm in summary.values():
        assert set(arm) == {"0", "1"}
        for figures in arm.values():
            assert {
                "honest_kept_60s",
                "honest_kept_1h",
                "honest_bound",
                "isolated_60s",
                "isolated_1h",
                "regained_honest_secs",
                "eclipsed_60s",
                "eclipsed_1h",
                "attacker_outbound_share_60s",
                "attacker_outbound_share_1h",
                "plan_attacker_entries",
            } <= set(figures)


def test_a_partition_is_reported_as_one_and_the_store_regains_an_honest_peer_once_it_heals(
    result: EclipseResult,
) -> None:
    # Every honest peer cut off and the attacker answering every dial: every outbound
    # connection the victim makes goes to the attacker, in both arms; it knows no reachable
    # honest address (the bound is 0) and keeps none.
    for arm in ("store", "seeds_only"):
        whole = result.summary(arm, 1.0)
        assert whole["eclipsed_60s"] == whole["eclipsed_1h"] == 1
        assert whole["honest_bound"] == whole["honest_kept_1h"] == 0
        assert whole["attacker_outbound_share_60s"] == 1.0
    # When the partition ends, the store's anchors reach an honest peer within a minute; with
    # seeds only, the victim's slots stay with the attacker (the seeds are for bootstrapping).
    store, seeds_only = (result.summary(arm, 1.0) for arm in ("store", "seeds_only"))
    assert store["regained_honest"] == 1
    assert store["regained_honest_secs"] <= REGAIN_TARGET_SECS
    assert seeds_only["regained_honest"] == 0
    assert seeds_only["regained_honest_secs"] is None
    verdicts = {t.name.split(":")[0]: t for t in check_eclipse_targets([result])}
    partition = next(t for name, t in verdicts.items() if name.startswith("100% cut off"))
    assert partition.gate is False  # reported, it decides nothing
    healed = next(t for name, t in verdicts.items() if name.startswith("partition"))
    assert healed.holds
    assert healed.gate


def test_a_victim_cut_off_from_every_honest_peer_reaches_none(tmp_path: Path) -> None:
    network = EclipseNetwork(SMALL, store=True, seed=5, state_dir=tmp_path)
    network.run_until(SMALL.restart_at + SMALL.downtime_secs + 600)
    free_victim, cut_victim = network.victims
    assert network.cut_off[cut_victim.addr] == frozenset(
        n.addr for n in network.nodes if n is not cut_victim
    )
    assert network.watches[cut_victim.name].knows_honest == 0
    free = network.watches[free_victim.name]
    assert 0 < free.knows_honest <= len({*free.plan, *free_victim.core.seeds})
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
    """A victim that knows an honest peer, keeps it and holds it when its cut-off ends."""
    victim: dict[str, Any] = {
        "victim": "v",
        "cut": cut,
        "plan": ["11.0.1.2:7447"] * 5,
        "plan_attacker": 0,
        "knows_honest": 1,
        "outbound_60s": [0, 8],
        "outbound_1h": [0, 8],
        "eclipsed_after_secs": None,
        "regained_honest_secs": 0.0,
    }
    victim.update(values)
    return victim


# A partition's victim: it knows nothing reachable, the attacker holds its slots, and it
# reaches an honest peer 20 s after the partition ends.
_PARTITIONED = {
    "knows_honest": 0,
    "outbound_60s": [8, 8],
    "outbound_1h": [8, 8],
    "eclipsed_after_secs": 10.0,
    "regained_honest_secs": 20.0,
}


def _made_up(
    victims: list[dict[str, Any]],
    spec: EclipseSpec,
    seeds_only: list[dict[str, Any]] | None = None,
) -> EclipseResult:
    runs = tuple(
        {"seed": 1, "arm": arm, "events_run": 0, "attacker_personas": 0, "victims": of_arm}
        for arm, of_arm in (("store", victims), ("seeds_only", seeds_only or []))
    )
    return EclipseResult(spec, (1,), runs)


def _verdicts(result: EclipseResult) -> list[bool]:
    return [t.holds for t in check_eclipse_targets([result]) if t.gate]


SPEC = EclipseSpec(cuts=(0.0, 0.9, 1.0))
_GOOD = [
    _victim(0.0),
    _victim(0.9, outbound_60s=[7, 8], outbound_1h=[7, 8]),  # one honest peer of eight
    _victim(0.9, knows_honest=0, outbound_60s=[8, 8], outbound_1h=[8, 8], eclipsed_after_secs=10.0),
    _victim(1.0, **_PARTITIONED),
]


def test_the_targets_hold_when_every_victim_keeps_what_it_can_reach() -> None:
    assert _verdicts(_made_up(_GOOD, SPEC, seeds_only=_GOOD)) == [True] * 5


@pytest.mark.parametrize(
    ("victim", "fails"),
    [
        (_victim(0.0, plan_attacker=1), {0}),
        (_victim(0.0, outbound_1h=[8, 8]), {0, 1}),  # eclipsed: half the outbound at +1 h
        (_victim(0.0, outbound_60s=[0, 0]), {0}),  # isolated: a failure, never a success
        (_victim(0.0, outbound_60s=[1, 8]), {1}),  # 1 of 16 outbound connections: 6.2%
        (_victim(0.9, outbound_1h=[8, 8]), {2}),  # it lost the honest peer it could reach
        # It knew nothing reachable and kept nothing, as it must; but isolated, unlike seeds only.
        (_victim(0.9, knows_honest=0, outbound_60s=[0, 0], outbound_1h=[0, 0]), {3}),
    ],
)
def test_each_target_fails_on_its_measure(victim: dict[str, Any], fails: set[int]) -> None:
    verdicts = _verdicts(_made_up([*_GOOD, victim], SPEC, seeds_only=_GOOD))
    assert verdicts == [i not in fails for i in range(5)]


def test_the_partition_target_asks_the_median_victim_to_regain_an_honest_peer() -> None:
    late = _victim(1.0, **{**_PARTITIONED, "regained_honest_secs": 61.0})
    never = _victim(1.0, **{**_PARTITIONED, "regained_honest_secs": None})
    for victims, holds in (([late, late], False), ([never, never], False), ([never], True)):
        result = _made_up([*_GOOD, *victims], SPEC, seeds_only=_GOOD)
        assert _verdicts(result)[4] is holds
    # A victim that never regains counts as slower than every one that did.
    result = _made_up([*_GOOD, never, never], SPEC, seeds_only=_GOOD)
    assert result.summary("store", 1.0)["regained_honest"] == 1
    assert result.summary("store", 1.0)["regained_honest_secs"] is None


# A host that dials nothing but its plan after a restart: nobody it has not proven, so the
# attacker never gets an outbound connection; a victim whose plan it cannot reach is left with
# no outbound connection at all.
ISOLATING = EclipseSpec(
    addresses=32,
    groups=4,
    honest=24,
    seeds=2,
    victims=2,
    cuts=(0.0, 0.9, 1.0),
    warmup_secs=120.0,
    attack_secs=300.0,
    after_secs=7200.0,
)


class _ProvenOnly(EclipseNetwork):
    def start(self, node: SimNode, cause: str) -> None:
        if cause == RESTART_CAUSE:
            core = node.core
            core.may_dial = lambda addr: addr in core.planned
        super().start(node, cause)


def _old_verdicts(result: EclipseResult) -> list[bool]:
    """The targets as they stood before they counted isolated victims: nothing cut off, no
    attacker plan entry and no victim eclipsed; 90% cut off, the attacker's share of the
    outbound connections there are at most 15%; everything cut off, never eclipsed within 3 h."""
    intact, partial, whole = (result.summary("store", cut) for cut in (0.0, 0.9, 1.0))
    share = partial["attacker_outbound_share_60s"]
    first = whole["first_eclipse_secs"]
    return [
        intact["plan_attacker_entries"] == 0
        and max(intact["eclipsed_60s"], intact["eclipsed_1h"]) == 0
        and intact["plan_entries"] > 0,
        share is not None and share <= 0.15,
        first is None or first >= 3 * 3600,
    ]


def test_a_host_that_isolates_its_victims_passed_the_old_verdicts_and_fails_the_new() -> None:
    seeds_only = run_once(ISOLATING, store=False, seed=3)
    crippled = EclipseResult(
        ISOLATING,
        (3,),
        (run_once(ISOLATING, store=True, seed=3, network_class=_ProvenOnly), seeds_only),
    )
    assert _old_verdicts(crippled) == [True, True, True]
    partial = crippled.summary("store", 0.9)
    assert partial["isolated_60s"] > crippled.summary("seeds_only", 0.9)["isolated_60s"]
    (isolated,) = (t for t in check_eclipse_targets([crippled]) if "isolated victims at" in t.name)
    assert not isolated.holds
    # The host as it is, on the same network: no victim left without an outbound peer.
    host = EclipseResult(ISOLATING, (3,), (run_once(ISOLATING, store=True, seed=3), seeds_only))
    (isolated,) = (t for t in check_eclipse_targets([host]) if "isolated victims at" in t.name)
    assert isolated.holds
    assert host.summary("store", 0.9)["isolated_60s"] == 0


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
    "2h",
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
    assert "partition (100% cut off) healed after 1.0 h: median time until a victim" in out
    assert "reported, not targets:" in out


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
