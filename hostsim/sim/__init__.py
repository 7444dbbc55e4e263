"""hostsim's network simulator: many nodes, churn, outages, attackers, and a rejoin report."""

from hostsim.metrics import RunMetrics, StartRecord
from hostsim.sim.engine import Engine, rare_cycle_collection, stream
from hostsim.sim.network import SimNetwork, SimNode
from hostsim.sim.scenario import (
    Churn,
    Distribution,
    SimEvent,
    SimScenario,
    load_sim_scenario,
    parse_sim_scenario,
)

__all__ = [
    "Churn",
    "Distribution",
    "Engine",
    "RunMetrics",
    "SimEvent",
    "SimNetwork",
    "SimNode",
    "SimScenario",
    "StartRecord",
    "load_sim_scenario",
    "parse_sim_scenario",
    "rare_cycle_collection",
    "stream",
]
