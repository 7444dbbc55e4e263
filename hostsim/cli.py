"""The ``hostsim`` command.

- ``hostsim run SCENARIO.toml [--state-dir DIR] [-v]``: play a single-node scenario file and
  print its timeline. Without ``--state-dir`` each run gets a new temporary directory, kept
  and named at the end, so every run starts fresh and its files can be looked at afterwards.
- ``hostsim sim SCENARIO.toml --seed S [--json OUT] [--ab] [--state-dir DIR]``: simulate a
  network scenario; ``--ab`` runs it with the peer store enabled and disabled, side by side.
- ``hostsim demo [--nodes N] [--seed S] [--json OUT] [--plot FILE.png]``: the built-in
  comparison, and whether each of its targets holds.
- ``hostsim cluster [--nodes N] [--seeds S] [--json OUT] [--state-dir DIR]``: the rejoin
  experiment with real node processes on loopback, killed and restarted, with and without the
  peer store;
- ``hostsim node CONFIG [--state-dir DIR] [--bind ADDR] [--status text|json] [-v]``: run one
  live node on real TCP until SIGTERM or Ctrl-C (a graceful stop); status lines on stdout,
  for people, or with ``--status json`` one JSON object a line for programs (its keys:
  :data:`hostsim.live.node.STATUS_EVENTS`). A stdout or stderr nobody reads
  never blocks the node (lines beyond a bound are dropped, and counted in a later line); a
  closed one (``| head``) only ends those lines.
- ``hostsim eclipse [--addresses N[,N...]] [--groups G] [--attack DURATION] [--cut SHARES]
  [--honest H] [--victims V] [--seed S] [--runs R] [--json OUT] [--plot FILE.png]``: an attacker
  with N addresses in G /16s against restarting victims, with the peer store and seeds only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import logging
import os
import queue
import shutil
import signal
import sys
import tempfile
import threading
import time
import tomllib
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import attrs

from hostsim.config import HostConfig
from hostsim.errors import HostConfigError, HostsimError
from hostsim.experiment.arms import arm_of
from hostsim.experiment.cluster import (
    CLUSTER_NODES,
    CLUSTER_SEEDS,
    ClusterInterrupted,
    check_cluster_targets,
    format_cluster,
    run_cluster,
)
from hostsim.experiment.demo import (
    DEMO_NODES,
    check_own_failure_targets,
    check_targets,
    compare,
    compare_stale_file,
    demo_scenarios,
    format_comparison,
    plot_comparisons,
    require_matplotlib,
    stale_file_scenario,
    uplink_outage_scenario,
)
from hostsim.experiment.eclipse import (
    EclipseSpec,
    check_eclipse_targets,
    format_eclipse,
    plot_eclipse,
    run_eclipse,
)
from hostsim.experiment.report import report
from hostsim.identity import resolve_node_id
from hostsim.live.node import LiveNode
from hostsim.live.processes import exit_with_parent, inherited_listener
from hostsim.live.settings import live_settings
from hostsim.live.tlsconfig import require_tls_extra, tls_settings
from hostsim.metrics import REJOIN_SECS, dumps
from hostsim.progress import ProgressLine
from hostsim.script import (
    RunResult,
    ScenarioRunError,
    TimelineRecord,
    load_scenario,
    run_scenario,
)
from hostsim.sim.engine import rare_cycle_collection
from hostsim.sim.network import simulate
from hostsim.sim.scenario import SimScenario, load_sim_scenario
from thenodes_console import EXIT_INTERRUPTED, completion, counted, interrupted_line

__all__ = ["format_record", "main"]

_T = TypeVar("_T")

EXIT_OK = 0
EXIT_TARGET_MISSED = 1
EXIT_ERROR = 2
_TIME_WIDTH = 12
_KIND_WIDTH = 13
_INDENT = " " * (_TIME_WIDTH + _KIND_WIDTH + 2)
_PLAIN_PROGRESS_SECS = 10.0
_LONG_COMMANDS = ("cluster", "eclipse")
"""Commands that say how far they are on a stderr that is no terminal (plain lines)."""


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "completion":
        print(completion.script(parser, args.shell), end="")
        return EXIT_OK
    # A progress line on a terminal's stderr, off under -v: log lines would garble it. The
    # cluster and the eclipse run for minutes: to a file or a pipe they say their phase in
    # plain lines instead; and each table is written out as soon as it is printed.
    progress = ProgressLine(
        enabled=False if args.verbose else None,
        plain_interval=_PLAIN_PROGRESS_SECS if args.command in _LONG_COMMANDS else None,
    )
    with contextlib.suppress(AttributeError, ValueError):  # a stdout that is no text file
        sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    # The live node's log is written by a thread of its own: a stderr nobody reads must not
    # block its event loop (nor its SIGTERM handler).
    background = args.command == "node"
    with (
        progress,
        _logging_to_stderr(verbose=args.verbose, progress=progress, background=background),
    ):
        try:
            _check_outputs(args)
            if args.command == "sim":
                return _sim(args, progress)
            if args.command == "demo":
                return _demo(args, progress)
            if args.command == "node":
                return _node(args)
            if args.command == "cert":
                return _cert(args)
            if args.command == "cluster":
                return _cluster(args, progress)
            if args.command == "eclipse":
                return _eclipse(args, progress)
            return _run(Path(args.scenario), args.state_dir)
        except HostsimError as exc:
            progress.clear()
            return _fail(str(exc))
        except OSError as exc:
            progress.clear()
            return _fail(_describe_os_error(exc))
        except KeyboardInterrupt:
            progress.clear()
            sys.stderr.write(interrupted_line("hostsim"))
            return EXIT_INTERRUPTED


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hostsim",
        description="A TheNodes-style node host: scenarios and networks simulated on a virtual"
        " clock (run, sim, demo, eclipse), and live nodes on real TCP and the real clock (node,"
        " cluster).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
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
    sim = commands.add_parser(
        "sim",
        help="simulate a network scenario",
        description="Simulate a network scenario file; print its restart figures.",
    )
    sim.add_argument("scenario", metavar="SCENARIO.toml", help="the network scenario file")
    sim.add_argument("--seed", type=int, required=True, help="the run's seed (same seed, same run)")
    sim.add_argument("--json", type=Path, metavar="OUT", help="write the full results as JSON")
    sim.add_argument(
        "--ab",
        action="store_true",
        help="run twice, with the peer store enabled and disabled, and compare",
    )
    sim.add_argument(
        "--state-dir",
        type=Path,
        metavar="DIR",
        help="where the nodes keep their files (default: a temporary directory, removed after,"
        " on /dev/shm when it has room)",
    )
    demo = commands.add_parser(
        "demo",
        help="compare restarts with and without the peer store",
        description="Run the built-in comparison: a mass restart with seeds up, with every seed"
        " down, after a gossip flood, after attackers connected in to every node, and after a"
        " downtime of twice the TTL with every seed down; each with the peer store and with"
        " seeds only.",
    )
    demo.add_argument(
        "--nodes",
        type=_positive_int,
        default=DEMO_NODES,
        help=f"ordinary nodes in the network (default: {DEMO_NODES})",
    )
    demo.add_argument("--seed", type=int, default=1, help="the seed (default: 1)")
    demo.add_argument(
        "--tick",
        type=_positive_secs,
        default=1.0,
        metavar="SECS",
        help="seconds between two on_tick calls of a node (default: 1)",
    )
    demo.add_argument(
        "--own-failures",
        action="store_true",
        help="instead, restarts after 4 h without uplink (seeds down) and from a file whose"
        " every peer is gone (seeds up)",
    )
    demo.add_argument("--json", type=Path, metavar="OUT", help="write the full results as JSON")
    demo.add_argument(
        "--plot",
        type=Path,
        metavar="FILE.png",
        help="draw the fraction of nodes connected over time (needs matplotlib)",
    )
    node = commands.add_parser(
        "node",
        help="run one live node on real TCP",
        description="Run one node on real TCP sockets and the real clock, speaking TheNodes'"
        " line protocol, until SIGTERM or Ctrl-C (a graceful stop).",
    )
    node.add_argument("config", metavar="CONFIG", help="the host config file")
    node.add_argument(
        "--state-dir",
        type=Path,
        metavar="DIR",
        help="where the node keeps its state (default: the config's [node] state_dir)",
    )
    node.add_argument(
        "--bind",
        metavar="ADDR",
        help="the address to listen on (default: [network] bind_addr, else 127.0.0.1)",
    )
    node.add_argument(
        "--status",
        choices=("text", "json"),
        default="text",
        help="status lines on stdout: text for people (default), or one JSON object a line",
    )
    node.add_argument(
        "--listen-fd",
        type=int,
        metavar="FD",
        help="listen on the socket inherited as FD (bound to the config's port) instead of"
        " binding one: a parent that holds the port across restarts hands it over",
    )
    node.add_argument(
        "--parent-pid",
        type=int,
        metavar="PID",
        help="stop at once (SIGKILL) when process PID, the parent, ends (Linux)",
    )
    cert = commands.add_parser(
        "cert",
        help="make a node's TLS certificate and key, as TheNodes reads them",
        description="Make a P-256 key and a self-signed certificate for one node (a subject of"
        " its own, its IP addresses), where its config's [encryption.paths] name them, never"
        " replacing a file; print the SPKI SHA-256 fingerprint TheNodes pins. A `hostsim node`"
        " with TLS on makes its own at its first start; this is for a TheNodes node, or to"
        " copy a certificate into trusted folders.",
    )
    cert.add_argument(
        "config",
        nargs="?",
        metavar="CONFIG",
        help="the node's config (TheNodes' or hostsim's): paths, node id, realm, addresses",
    )
    cert.add_argument("--cert", type=Path, metavar="FILE", help="default: own_certificate")
    cert.add_argument("--key", type=Path, metavar="FILE", help="default: own_private_key")
    cert.add_argument("--name", metavar="NODE_ID", help="the subject's CN (default: node id)")
    cert.add_argument("--realm", metavar="NAME", help="the subject's O (default: [realm] name)")
    cert.add_argument(
        "--ip",
        action="append",
        metavar="IP",
        help="an IP address for the certificate (repeatable; default: the node's listen"
        " addresses, else 127.0.0.1)",
    )
    cert.add_argument(
        "--days", type=int, default=None, metavar="N", help="validity (default: 3650)"
    )
    cert.add_argument(
        "--copy-to",
        action="append",
        type=Path,
        default=[],
        metavar="DIR",
        help="also put the certificate in DIR as <fingerprint>.pem (a trusted_cert_dir)",
    )
    cluster = commands.add_parser(
        "cluster",
        help="the rejoin experiment with real node processes on loopback",
        description="Start seeds and nodes as `hostsim node` processes on 127.0.0.1, let the"
        " network form, then kill every node with SIGKILL and restart it, with the seeds up and"
        " with the seeds stopped; each with the peer store and with seeds only.",
    )
    cluster.add_argument(
        "--nodes",
        type=_positive_int,
        default=CLUSTER_NODES,
        help=f"node processes (default: {CLUSTER_NODES})",
    )
    cluster.add_argument(
        "--seeds",
        type=_positive_int,
        default=CLUSTER_SEEDS,
        help=f"seed processes (default: {CLUSTER_SEEDS})",
    )
    cluster.add_argument(
        "--phase-secs",
        type=_positive_secs,
        default=REJOIN_SECS,
        metavar="SECS",
        help=f"how long a phase watches the restarted nodes at most (default: {REJOIN_SECS:.0f});"
        " it ends earlier when every node has its target connections or none can connect; the"
        " figures within 60 s count what happened within SECS",
    )
    cluster.add_argument("--json", type=Path, metavar="OUT", help="write the full results as JSON")
    cluster.add_argument(
        "--state-dir",
        type=Path,
        metavar="DIR",
        help="where the processes keep their configs, logs and state (default: a temporary"
        " directory, removed after a run that completes)",
    )
    for command in (sim, demo, node, cert, cluster):
        command.add_argument(
            "-v", "--verbose", action="store_true", help="show log lines (INFO) on stderr"
        )
    _add_eclipse(commands)
    shell = commands.add_parser(
        "completion",
        help="print a shell completion script",
        description="Print a completion script for bash or zsh: `hostsim completion bash >"
        " ~/.local/share/bash-completion/completions/hostsim`, or source it from your shell's"
        " startup file.",
    )
    shell.add_argument("shell", choices=completion.SHELLS, help="the shell")
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number")
    return value


def _positive_secs(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive, finite number of seconds")
    return value


def _version() -> str:
    """The version of the distribution that installed the ``hostsim`` command."""
    for ep in importlib.metadata.entry_points(group="console_scripts", name="hostsim"):
        if ep.dist is not None:
            return ep.dist.version
    return "unknown (not installed)"


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuse, before a run of minutes, a ``--json`` or ``--plot`` path that cannot be written.

    :raises HostsimError: the path names a directory, its directory is missing, or either
        cannot be written.
    """
    for option in ("json", "plot"):
        path: Path | None = getattr(args, option, None)
        if path is None:
            continue
        problem = _unwritable(path)
        if problem is not None:
            raise HostsimError(f"--{option} {path}: {problem}")


def _unwritable(path: Path) -> str | None:
    """Why ``path`` cannot be written, or None when it can (as far as can be told)."""
    if path.is_dir():
        return "is a directory"
    if path.exists():
        return None if os.access(path, os.W_OK) else "the file is not writable"
    parent = path.parent
    if not parent.exists():
        return f"the directory {parent} does not exist"
    if not parent.is_dir():
        return f"{parent} is not a directory"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"the directory {parent} is not writable"
    return None


def _load_kind(path: str | os.PathLike[str], loader: Callable[[Path], _T], command: str) -> _T:
    """Load ``path`` with ``loader``; a file of another kind is refused, saying what it looks
    like and which command takes it (a host config ignores unknown keys, so a scenario would
    otherwise pass for one)."""
    kind = _file_kind(Path(path))
    if kind is not None and kind[1] != command:
        looks, takes = kind
        raise HostsimError(
            f"{path} looks like {looks}, which `hostsim {takes}` takes, not `hostsim {command}`"
        )
    return loader(Path(path))


def _file_kind(path: Path) -> tuple[str, str] | None:
    """What the TOML file at ``path`` looks like and the command that takes it, or None."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # not TOML, or an integer too long to read: the loader says
        return None
    keys = set(data)
    if "config" in keys or "world" in keys:
        return "a single-node scenario", "run"
    if keys & {"nodes", "seeds", "attackers", "duration_secs"}:
        return "a network scenario", "sim"
    if keys & {"port", "bootstrap_nodes", "realm", "node", "plugins", "network"}:
        return "a host config", "node"
    return None


def _sim(args: argparse.Namespace, progress: ProgressLine) -> int:
    with rare_cycle_collection():
        return _play(args, progress)


def _play(args: argparse.Namespace, progress: ProgressLine) -> int:
    scenario = _load_kind(args.scenario, load_sim_scenario, "sim")
    if args.ab:
        comparison = compare(scenario, seed=args.seed, state_dir=args.state_dir, progress=progress)
        progress.clear()
        print(
            f"{scenario.name}: {counted(scenario.nodes, 'node')}, seed {args.seed}, every restart"
        )
        print("\n".join(format_comparison(comparison)))
        data = comparison.to_json()
    else:
        metrics = simulate(
            scenario,
            seed=args.seed,
            state_dir=args.state_dir,
            progress=progress,
            label=arm_of(scenario).label,
        )
        progress.clear()
        data = report(scenario, args.seed, metrics)
        _print_summary(data)
    if args.json is not None:
        args.json.write_text(dumps(data), encoding="utf-8")
        print(f"results: {args.json}")
    return EXIT_OK


def _print_summary(data: dict[str, Any]) -> None:
    store = "enabled" if data["persistence"] else "disabled"
    print(
        f"{data['scenario']}: {counted(data['nodes'], 'node')}, {counted(data['seeds'], 'seed')},"
        f" {counted(data['attackers'], 'attacker')}, seed {data['seed']}, peer store {store}"
    )
    summary = data["summary"]
    rows = [("every restart", summary["restarts"])]
    rows += [(f"  {cause}", figures) for cause, figures in summary["by_cause"].items()]
    for label, figures in rows:
        first, target = figures["median_first_connection_secs"], figures["median_target_secs"]
        rejoined = figures["rejoined_within_60s"]
        print(
            f"{label}: {counted(figures['count'], 'restart')}, median first connection"
            f" {_secs(first)}, median time to target {_secs(target)},"
            f" rejoined within 60 s {'-' if rejoined is None else f'{100 * rejoined:.1f}%'}"
        )
    print(
        f"reconnect plans: {counted(summary['plan_entries'], 'entry')},"
        f" {counted(summary['plan_attacker_entries'], 'attacker node')},"
        f" {counted(summary['plan_fake_entries'], 'fake address')}"
    )


def _secs(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f} s"


def _demo(args: argparse.Namespace, progress: ProgressLine) -> int:
    if args.plot is not None:
        require_matplotlib()
    comparisons = []
    scenarios: tuple[SimScenario, ...]
    if args.own_failures:
        scenarios = (
            uplink_outage_scenario(args.nodes, tick_interval_secs=args.tick),
            stale_file_scenario(args.nodes, tick_interval_secs=args.tick),
        )
    else:
        scenarios = demo_scenarios(args.nodes, tick_interval_secs=args.tick)
    first = scenarios[0]
    print(
        f"demo: the peer store vs seeds only; {counted(first.nodes, 'node')},"
        f" {counted(first.seeds, 'seed')}, seed {args.seed};"
        f" {counted(len(scenarios), 'scenario')}: {', '.join(s.name for s in scenarios)}"
    )
    print()
    for scenario in scenarios:
        with rare_cycle_collection():
            if scenario.name == "stale-file":
                comparison = compare_stale_file(scenario, seed=args.seed, progress=progress)
            else:
                comparison = compare(
                    scenario, seed=args.seed, cause="mass_restart", progress=progress
                )
        progress.clear()
        comparisons.append(comparison)
        print(
            f"== {scenario.name}: {counted(scenario.nodes, 'node')}"
            f" + {counted(scenario.seeds, 'seed')} + {counted(scenario.attackers, 'attacker')},"
            f" seed {args.seed}; restarts of the mass restart"
        )
        print("\n".join(format_comparison(comparison)))
        print()
    targets = (
        check_own_failure_targets(*comparisons) if args.own_failures else check_targets(comparisons)
    )
    held = _print_targets(targets)
    if args.json is not None:
        _write_results(args.json, {"comparisons": [c.to_json() for c in comparisons]}, targets)
    if args.plot is not None:
        plot_comparisons(comparisons, args.plot)
        print(f"plot: {args.plot}")
    return EXIT_OK if held else EXIT_TARGET_MISSED


def _print_targets(targets: Sequence[Any], heading: str = "targets:") -> bool:
    """Print what is only reported (a target with ``gate`` false: information, it decides
    nothing), then each target with its verdict; return whether every target holds."""
    gating = [t for t in targets if getattr(t, "gate", True)]
    reported = [t for t in targets if not getattr(t, "gate", True)]
    if reported:
        print("reported, not targets:")
        for target in reported:
            print(f"  {target.name}: {target.detail}")
    print(heading)
    for target in gating:
        print(f"  [{'holds' if target.holds else 'FAILS'}] {target.name}: {target.detail}")
    failed = sum(1 for t in gating if not t.holds)
    if failed:
        print(
            f"verdict: {failed} of {counted(len(gating), 'target')}"
            f" {'fail' if failed > 1 else 'fails'}"
        )
    else:
        print("verdict: every target holds")
    return not failed


def _write_results(path: Path, data: dict[str, Any], targets: Sequence[Any]) -> None:
    """Write a run's results and its targets as JSON to ``path``, and say where."""
    path.write_text(dumps({**data, "targets": [attrs.asdict(t) for t in targets]}), "utf-8")
    print(f"results: {path}")


def _add_eclipse(commands: Any) -> None:
    eclipse = commands.add_parser(
        "eclipse",
        help="an attacker with many addresses against restarting nodes",
        description="A network of honest nodes and an attacker that controls N addresses in G"
        " network groups (/16): it connects in, gossips its addresses and answers dials to them"
        " for a while; then victims are cut off from a share of the honest nodes and restart."
        " Measured for the victims with the peer store and with seeds only, per cut-off share:"
        " attacker entries in the restart plans; 60 s and 1 h after the start, the attacker's"
        " share of outbound connections, victims that keep an honest outbound peer beside those"
        " that know a reachable one, isolated victims (no outbound connection) and eclipsed"
        " ones; and, once the cut-off ends an hour after the start, the time until each victim"
        " holds an honest outbound peer again.",
    )
    spec = EclipseSpec()
    eclipse.add_argument(
        "--addresses",
        type=_counts,
        default=(spec.addresses,),
        metavar="N[,N...]",
        help="attacker addresses, at most 65,536; several draw the plot"
        f" (default: {spec.addresses})",
    )
    eclipse.add_argument(
        "--groups",
        type=_positive_int,
        default=spec.groups,
        metavar="G",
        help=f"/16 groups the addresses are spread over, at most 256 (default: {spec.groups})",
    )
    eclipse.add_argument(
        "--attack",
        type=_duration,
        default=spec.attack_secs,
        metavar="DURATION",
        help="how long the attacker works before the victims restart: seconds, or with a unit"
        " (90m, 6h, 1d; default: 1h)",
    )
    eclipse.add_argument(
        "--cut",
        type=_shares,
        default=spec.cuts,
        metavar="SHARES",
        help="shares of honest peers cut off from a victim before its restart, one set of victims"
        " each (default: 0,0.9,1)",
    )
    eclipse.add_argument(
        "--honest",
        type=_positive_int,
        default=spec.honest,
        help=f"honest nodes, victims included (default: {spec.honest})",
    )
    eclipse.add_argument(
        "--victims",
        type=_positive_int,
        default=spec.victims,
        help=f"victims per cut-off share (default: {spec.victims})",
    )
    eclipse.add_argument(
        "--after",
        type=_duration,
        default=spec.after_secs,
        metavar="DURATION",
        help="how long the victims are watched after their restart, at least 2h: their cut-off"
        " ends after 1h (default: 4h)",
    )
    eclipse.add_argument(
        "--churn",
        type=_duration,
        default=spec.session_mean_secs,
        metavar="DURATION",
        help="mean session of the other honest nodes, 0 for none (default: 2h)",
    )
    eclipse.add_argument("--seed", type=int, default=1, help="the first seed (default: 1)")
    eclipse.add_argument(
        "--runs", type=_positive_int, default=1, help="seeded runs, seed, seed+1, ... (default: 1)"
    )
    eclipse.add_argument("--json", type=Path, metavar="OUT", help="write every run as JSON")
    eclipse.add_argument(
        "--plot",
        type=Path,
        metavar="FILE.png",
        help="draw the attacker's share against N, both arms (needs matplotlib)",
    )
    eclipse.add_argument(
        "-v", "--verbose", action="store_true", help="show log lines (INFO) on stderr"
    )


def _counts(text: str) -> tuple[int, ...]:
    return tuple(_positive_int(part) for part in text.split(","))


def _shares(text: str) -> tuple[float, ...]:
    shares = []
    for part in text.split(","):
        try:
            value = float(part)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part!r} is not a number") from None
        if not 0 <= value <= 1:
            raise argparse.ArgumentTypeError(f"{part} is not a share between 0 and 1")
        shares.append(value)
    return tuple(shares)


_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def _duration(text: str) -> float:
    unit = _UNITS.get(text[-1:])
    number = text[:-1] if unit is not None else text
    try:
        value = float(number) * (unit or 1.0)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration (seconds, or a number with s, m, h or d)"
        ) from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration")
    return value


def _eclipse(args: argparse.Namespace, progress: ProgressLine) -> int:
    if args.plot is not None:
        require_matplotlib()
    seeds = list(range(args.seed, args.seed + args.runs))
    try:
        specs = [
            EclipseSpec(
                addresses=n,
                groups=args.groups,
                attack_secs=args.attack,
                cuts=args.cut,
                honest=args.honest,
                victims=args.victims,
                after_secs=args.after,
                session_mean_secs=args.churn,
            )
            for n in args.addresses
        ]
    except ValueError as exc:
        raise HostsimError(str(exc)) from None
    results = []
    for spec in specs:
        with rare_cycle_collection():
            result = run_eclipse(spec, seeds=seeds, progress=progress)
        progress.clear()
        results.append(result)
        print(
            f"== eclipse: {spec.addresses:,} attacker addresses in {spec.groups} /16s, attack"
            f" {_span(spec.attack_secs)}; {counted(spec.honest, 'honest node')}"
            f" + {counted(spec.seeds, 'seed')}, {counted(spec.victims, 'victim')} per cut-off"
            f" share; seeds {seeds[0]}..{seeds[-1]}"
        )
        print("\n".join(format_eclipse(result)))
        print()
    targets = check_eclipse_targets(results)
    held = _print_targets(targets, "targets (the peer-store arm):")
    if args.json is not None:
        _write_results(args.json, {"results": [r.to_json() for r in results]}, targets)
    if args.plot is not None:
        plot_eclipse(results, args.plot)
        print(f"plot: {args.plot}")
    return EXIT_OK if held else EXIT_TARGET_MISSED


def _span(secs: float) -> str:
    for unit in ("d", "h", "m"):
        if secs >= _UNITS[unit] and secs % _UNITS[unit] == 0:
            return f"{secs / _UNITS[unit]:g}{unit}"
    return f"{secs:g}s"


def _cluster(args: argparse.Namespace, progress: ProgressLine) -> int:
    workdir = args.state_dir
    keep = workdir is not None
    if workdir is None:
        workdir = Path(tempfile.mkdtemp(prefix="hostsim-cluster-"))
    try:
        result = run_cluster(
            workdir,
            nodes=args.nodes,
            seeds=args.seeds,
            progress=progress,
            phase_secs=args.phase_secs,
        )
    except ClusterInterrupted as exc:
        progress.clear()
        pids = ", ".join(map(str, exc.left))
        stopped = (
            f"{counted(len(exc.left), 'process')} not stopped: pid {pids}"
            if exc.left
            else "every process stopped"
        )
        word = "terminated" if exc.signum == signal.SIGTERM else "interrupted"
        sys.stderr.write(f"hostsim: {word}; {stopped}; files in {workdir}\n")
        return 128 + exc.signum
    except HostsimError:
        progress.clear()
        print(f"hostsim: files of the failed run in {workdir}", file=sys.stderr)
        raise
    progress.clear()
    print(
        f"cluster: {counted(result.nodes, 'node')} + {counted(result.seeds, 'seed')},"
        f" `hostsim node` processes on"
        f" 127.0.0.1; {result.wall_secs:.0f} s of wall time"
    )
    for phase, what in (
        ("seeds-up", "every node killed (SIGKILL) and restarted, seeds up"),
        ("seeds-down", "seeds stopped, every node killed (SIGKILL) and restarted"),
    ):
        print()
        print(f"== {phase}: {what}")
        print("\n".join(format_cluster(result, phase)))
    targets = check_cluster_targets(result)
    print()
    held = _print_targets(targets)
    if args.json is not None:
        _write_results(args.json, result.to_json(), targets)
    if not keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return EXIT_OK if held else EXIT_TARGET_MISSED


def _node(args: argparse.Namespace) -> int:
    config = _load_kind(args.config, HostConfig.from_file, "node")
    try:
        tls_settings(config.data)  # a bad [encryption] key, named with the file
    except HostConfigError as exc:
        raise HostConfigError(f"{args.config}: {exc}") from None
    if args.state_dir is not None:
        config = attrs.evolve(config, state_dir=Path(os.path.abspath(args.state_dir)))
    settings = live_settings(config, bind=args.bind)
    if args.parent_pid is not None:
        exit_with_parent(args.parent_pid)
    sock = None if args.listen_fd is None else inherited_listener(args.listen_fd, config.port)
    status = _StatusLines(sys.stdout.fileno(), as_json=args.status == "json")
    if status.as_json:
        node = LiveNode(config, settings, events=status.event, listen_socket=sock)
    else:
        node = LiveNode(config, settings, status=status, listen_socket=sock)
    try:
        return asyncio.run(_serve_until_signal(node))
    finally:
        status.close(timeout=1.0)


def _cert(args: argparse.Namespace) -> int:
    require_tls_extra("hostsim cert")
    from hostsim.live import certs  # noqa: PLC0415 (the tls extra)

    cert_path, key_path = args.cert, args.key
    name, realm, ips = args.name, args.realm, args.ip
    if args.config is not None:
        config = _load_kind(args.config, HostConfig.from_file, "node")
        tls_settings(config.data)  # a bad [encryption] key is named before anything is made
        paths = config.data.get("encryption", {}).get("paths", {})
        if cert_path is None and isinstance(paths.get("own_certificate"), str):
            cert_path = Path(paths["own_certificate"])
        if key_path is None and isinstance(paths.get("own_private_key"), str):
            key_path = Path(paths["own_private_key"])
        if name is None:
            name = resolve_node_id(
                config.node_id,
                config.state_dir,
                config.id_file,
                allow_ephemeral=config.allow_ephemeral,
            )
        realm = realm if realm is not None else config.realm.name
        if ips is None:
            ips = [addr.rpartition(":")[0].strip("[]") for addr in config.listen_addrs]
    if args.days is not None and args.days < 1:
        raise HostsimError(f"--days {args.days}: must be at least 1")
    own = certs.ensure_certificate(
        Path(os.path.abspath(cert_path or certs.DEFAULT_CERT)),
        Path(os.path.abspath(key_path or certs.DEFAULT_KEY)),
        node_id=name or f"node-{uuid.uuid4()}",
        realm=realm,
        ips=ips or ["127.0.0.1"],
        days=args.days or certs.DEFAULT_DAYS,
    )
    for line in certs.describe(own):
        print(line)
    for folder in args.copy_to:
        target, written = certs.copy_certificate(own, Path(os.path.abspath(folder)))
        print(f"  {'copied to' if written else 'already in'} {target}")
    return EXIT_OK


class _Lines:
    """Lines written to ``fd`` by a thread of their own, so a reader that does not read never
    blocks whoever writes them (the node's event loop, its SIGTERM handler).

    At most ``pending`` lines wait; beyond, lines are dropped and counted, and
    ``dropped(count)`` is written once the reader catches up. A closed ``fd`` (``EPIPE``)
    ends the lines, not the writer.
    """

    def __init__(
        self, fd: int, dropped: Callable[[int], bytes], *, pending: int = 1000, name: str
    ) -> None:
        self.fd = fd
        self.dropped = 0
        """Lines dropped because ``fd`` was not read."""
        self.closed = False
        """Whether lines are no longer taken: :meth:`close` was called, or ``fd`` was closed
        by its reader."""
        self._said = dropped
        self._queue: queue.Queue[bytes | None] = queue.Queue(pending)
        self._reported = 0
        self._thread = threading.Thread(target=self._write_all, name=name, daemon=True)
        self._thread.start()

    def put(self, data: bytes) -> None:
        """Queue ``data`` (whole lines), or drop and count it: never waits."""
        if self.closed:
            return
        try:
            self._queue.put_nowait(data)
        except queue.Full:
            self.dropped += 1

    def close(self, timeout: float) -> None:
        """Write what waits, for at most ``timeout`` seconds; then take no more lines."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        self._thread.join(timeout)

    def _write_all(self) -> None:
        while (data := self._queue.get()) is not None:
            dropped = self.dropped
            if dropped > self._reported:
                data = self._said(dropped - self._reported) + data
                self._reported = dropped
            try:
                while data:
                    data = data[os.write(self.fd, data) :]
            except OSError:
                self.closed = True
                return


class _StatusLines(_Lines):
    """``hostsim node``'s status lines on ``fd`` (stdout), never blocking the node. With
    ``as_json`` every line is one JSON object (:meth:`event`); the lines dropped are said in a
    ``dropped`` event."""

    def __init__(self, fd: int, pending: int = 1000, *, as_json: bool = False) -> None:
        self.as_json = as_json
        super().__init__(fd, self._dropped, pending=pending, name="status")

    def __call__(self, line: str) -> None:
        self.put(f"hostsim node: {line}\n".encode())

    def event(self, data: dict[str, Any]) -> None:
        """Write ``data`` as one line of JSON."""
        self.put(_json_line(data))

    def _dropped(self, lines: int) -> bytes:
        if self.as_json:
            return _json_line({"event": "dropped", "t": time.time(), "lines": lines})
        return f"hostsim node: {counted(lines, 'status line')} dropped (stdout not read)\n".encode()


class _LogLines(logging.Handler):
    """Log records to ``fd`` (stderr) through :class:`_Lines`: a stderr nobody reads never
    blocks the logger, and the records dropped are said in a warning once it is read."""

    def __init__(self, fd: int, pending: int = 1000) -> None:
        super().__init__()
        self.lines = _Lines(fd, self._dropped, pending=pending, name="log")

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # as logging.StreamHandler does: never raise to the logger
            self.handleError(record)
            return
        self.lines.put((text + "\n").encode(errors="backslashreplace"))

    def close(self) -> None:
        self.lines.close(timeout=1.0)
        super().close()

    @staticmethod
    def _dropped(records: int) -> bytes:
        said = f"WARNING {__name__}: {counted(records, 'log line')} dropped (stderr not read)"
        return f"{said}\n".encode()


def _json_line(data: dict[str, Any]) -> bytes:
    return (json.dumps(data, allow_nan=False) + "\n").encode()


async def _serve_until_signal(node: LiveNode) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await node.run(stop)
    return EXIT_OK


def _run(scenario_path: Path, state_dir: Path | None) -> int:
    scenario = _load_kind(scenario_path, load_scenario, "run")
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
    header = f"--- {name} ({counted(size, 'byte')})"
    if path.suffix == ".lock":
        return [f"{header}: lock file, contents not shown"]
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return [f"{header}: not UTF-8 text, contents not shown"]
    return [header, text.rstrip("\n")]


@contextlib.contextmanager
def _logging_to_stderr(
    *, verbose: bool, progress: ProgressLine | None = None, background: bool = False
) -> Iterator[None]:
    """Show log records on stderr: warnings and worse, or from INFO up when ``verbose``; a
    record first clears the progress line. With ``background``, a thread writes them
    (:class:`_LogLines`) wherever stderr is a file descriptor."""
    level = logging.INFO if verbose else logging.WARNING
    handler: logging.Handler = _StderrHandler(progress)
    if background and (fd := _fileno(sys.stderr)) is not None:
        sys.stderr.flush()
        handler = _LogLines(fd)
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
        handler.close()


def _fileno(stream: Any) -> int | None:
    """The file descriptor under ``stream``, or None (a test's capture has none)."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    return fd if isinstance(fd, int) else None


def _describe_os_error(exc: OSError) -> str:
    if exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Log records to stderr, on a line of their own below any progress line."""

    def __init__(self, progress: ProgressLine | None) -> None:
        super().__init__(sys.stderr)
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        if self.progress is not None:
            self.progress.clear()
        super().emit(record)


def _fail(message: str) -> int:
    print(f"hostsim: error: {message}", file=sys.stderr)
    return EXIT_ERROR
