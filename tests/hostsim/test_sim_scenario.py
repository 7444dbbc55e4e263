"""Network scenario files and the Python API: defaults, the example files, readable errors."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from hostsim.config import Discovery
from hostsim.errors import ScenarioError
from hostsim.sim.scenario import (
    Churn,
    Distribution,
    SimEvent,
    SimScenario,
    load_sim_scenario,
    parse_sim_scenario,
)
from tests.support.paths import EXAMPLES, ROOT


def test_a_minimal_file_gets_the_thenodes_defaults() -> None:
    scenario = parse_sim_scenario({"nodes": 10})
    assert scenario.nodes == 10
    assert scenario.discovery == Discovery(enabled=True, request_interval_secs=90, request_want=16)
    assert scenario.persistence_enabled
    assert scenario.churn is None
    assert scenario.events == ()


@pytest.mark.parametrize("name", ["mass-restart", "seed-outage", "uplink-outage", "flood", "churn"])
def test_every_example_scenario_loads(name: str) -> None:
    scenario = load_sim_scenario(EXAMPLES / f"sim-{name}.toml")
    assert scenario.name == name
    assert scenario.persistence_enabled


def test_the_benchmark_network_is_a_scenario_file_hostsim_sim_reads() -> None:
    scenario = load_sim_scenario(ROOT / "benchmarks" / "bench_sim.toml")
    assert (scenario.nodes, scenario.seeds, scenario.duration_secs) == (1000, 8, 3600.0)
    assert scenario.churn is not None
    assert scenario.size == 1008


def test_a_file_describes_churn_events_and_persistence_settings(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        """
name = "x"
nodes = 5
duration_secs = 600
[network.persistence]
enabled = false
save_interval_secs = 30
[churn]
session = { dist = "weibull", shape = 0.7, scale_secs = 900 }
crash_fraction = 0.25
[[events]]
at = 400
do = "seed_outage"
until = 500
[[events]]
at = 100
do = "crash"
node = "node-0001"
downtime_secs = 20
""",
        encoding="utf-8",
    )
    scenario = load_sim_scenario(path)
    assert not scenario.persistence_enabled
    assert scenario.persistence["save_interval_secs"] == 30
    assert scenario.churn == Churn(
        session=Distribution("weibull", shape=0.7, scale_secs=900.0), crash_fraction=0.25
    )
    assert [(e.do, e.at) for e in scenario.events] == [("crash", 100), ("seed_outage", 400)]
    assert scenario.with_persistence(True).persistence == {
        "enabled": True,
        "save_interval_secs": 30,
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('nodes = "many"', 'nodes: expected an integer, got "many"'),
        ("nodez = 3", "unknown key nodez (did you mean nodes?)"),
        ("[discovery]\nrequest_want = 0", "[discovery] request_want = 0: must be 1..65535"),
        (
            "[discovery]\nwant = 8",
            "unknown key [discovery] want (known: enabled, request_interval_secs, request_want)",
        ),
        (
            "[network]\nrelay = 1",
            "unknown key [network] relay (known: persistence, connection_policy)",
        ),
        ("nodes = -1", "nodes = -1: must be zero or more"),
        ("duration_secs = 0", "duration_secs = 0.0: must be a positive number"),
        ("latency_min_ms = 50\nlatency_max_ms = 10", "latency_max_ms = 10.0: must not be less"),
        ('[network.persistence]\nenabled = "yes"', 'enabled: expected true or false, got "yes"'),
        ('[churn]\nsession = { dist = "pareto" }', 'dist = "pareto": must be "exponential" or'),
        (
            "[churn]\nsession = { mean = 3 }",
            "unknown key [churn.session] mean (did you mean mean_secs?)",
        ),
        ("[churn]\ncrash_fraction = 1.5", "crash_fraction = 1.5: must be between 0 and 1"),
        ('[[events]]\nat = 1\ndo = "explode"', 'event 1: do = "explode": unknown event'),
        ('[[events]]\nat = 1\ndo = "restart"', 'event 1 (restart): missing key "node"'),
        ('[[events]]\nat = 1\ndo = "flood"\nuntil = 0', "until = 0.0: must not be before"),
        (
            '[[events]]\nat = 1\ndo = "mass_restart"\nfraction = 2',
            "event 1 (mass_restart): fraction = 2.0: must be between 0 and 1",
        ),
        (
            '[[events]]\nat = 1\ndo = "crash"\nnode = "n"\nuntil = 3',
            "event 1 (crash): unknown key until (known: at, do, node, downtime_secs)",
        ),
        ("events = 3", "events: expected an array of tables"),
    ],
)
def test_a_bad_value_is_named_with_its_key_in_one_line(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text + "\n", encoding="utf-8")
    with pytest.raises(ScenarioError) as caught:
        load_sim_scenario(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_file_describes_an_inbound_attack_by_attackers_that_start_late(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        'attackers = 3\nattackers_start_secs = 250\n[[events]]\nat = 270\ndo = "inbound_attack"\n',
        encoding="utf-8",
    )
    scenario = load_sim_scenario(path)
    assert (scenario.attackers, scenario.attackers_start_secs) == (3, 250.0)
    assert [(e.do, e.at) for e in scenario.events] == [("inbound_attack", 270.0)]
    path.write_text("attackers_start_secs = -1\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"attackers_start_secs = -1\.0: must be zero or more"):
        load_sim_scenario(path)


def test_invalid_toml_is_reported_with_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("nodes = [", encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"bad\.toml: invalid TOML"):
        load_sim_scenario(path)


def test_the_python_api_checks_values_too() -> None:
    with pytest.raises(ValueError, match="nodes = -3: must be zero or more"):
        SimScenario(nodes=-3)
    with pytest.raises(ValueError, match="restart needs 'node'"):
        SimEvent(at=1, do="restart")
    with pytest.raises(ValueError, match="downtime_max_secs = 1: must not be less"):
        SimEvent(at=1, do="mass_restart", downtime_min_secs=5, downtime_max_secs=1)


def test_durations_follow_their_distribution() -> None:
    at_one_over_e = 1 - 1 / math.e
    assert Distribution("exponential", mean_secs=300).draw(0.0) == 0.0
    assert Distribution("exponential", mean_secs=300).draw(at_one_over_e) == pytest.approx(300)
    weibull = Distribution("weibull", shape=0.5, scale_secs=120)
    assert weibull.draw(at_one_over_e) == pytest.approx(120)
    # Heavy-tailed: the 99th percentile is far beyond the exponential of the same scale.
    assert weibull.draw(0.99) > 20 * 120
