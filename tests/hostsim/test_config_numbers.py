"""Hostile numbers in a host config. Every integer key has bounds, read here from the config
model itself (no list of keys is written down): a value past them is the usual startup error
naming the key and the value, cut when it is long, never a traceback; a value within them is one
a node can run with. What a config can make a node do to one dead address is bounded too.

Real sockets and processes bind 127.0.0.1; every wait is bounded; every process started is
stopped by its pid.
"""

from __future__ import annotations

import math
import re
import socket
import time
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import attrs
import pytest
import tomli_w
from hypothesis import given
from hypothesis import strategies as st

from hostsim import cli as hostsim_cli
from hostsim.backoff import MAX_RETRY_ATTEMPTS, MIN_REDIAL_SECS
from hostsim.config import MAX_DURATION_MS, HostConfig, HostConfigError, HostFile
from hostsim.convert import KEY, OPAQUE, int_range, overlaid
from hostsim.live.node import _keep_alive
from hostsim.live.processes import free_port, write_node_config
from hostsim.live.settings import live_settings
from tests.support.command import Run
from tests.support.paths import ROOT
from tests.support.processes import node_processes
from tests.support.thenodes_wire_peer import config, run, running, until

Path_ = tuple[str | int, ...]

BASE = {"realm": {"name": "Example"}, "node": {"id": "node-a"}}
HUGE = 10**400
"""A 401-digit integer, as the reports had."""


def _integer_keys(cls: type[Any], path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    """Every integer key of the table ``cls`` models, nested tables and arrays included, with
    its type as the model spells it."""
    hints = typing.get_type_hints(cls, include_extras=True)
    for field in attrs.fields(cls):
        if not field.metadata.get(OPAQUE):  # a table passed on whole, to the plugin that reads it
            yield from _integers(hints[field.name], (*path, field.metadata.get(KEY, field.name)))


def _integers(type_: Any, path: Path_) -> Iterator[tuple[Path_, Any]]:
    bare = typing.get_args(type_)[0] if typing.get_origin(type_) is Annotated else type_
    origin = typing.get_origin(bare)
    if bare is int:
        yield path, type_
    elif isinstance(bare, type) and attrs.has(bare):
        yield from _integer_keys(bare, path)
    elif origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(bare):
            yield from _integers(arg, path)
    elif origin is tuple:
        yield from _integers(typing.get_args(bare)[0], (*path, 0))


INTEGER_KEYS = list(_integer_keys(HostFile))


def _label(path: Path_) -> str:
    """How an error names the key: ``port``, ``[network.connection_policy] punch_timeout_ms``."""
    keys = [str(step) for step in path if isinstance(step, str)]
    *tables, leaf = keys
    index = "".join(f"[{step}]" for step in path if isinstance(step, int))
    return f"[{'.'.join(tables)}] {leaf}{index}" if tables else f"{leaf}{index}"


def _document(path: Path_, value: object) -> dict[str, Any]:
    """The minimal host config with ``value`` at ``path``."""
    inner: object = value
    for step in reversed(path):
        inner = [inner] if isinstance(step, int) else {step: inner}
    assert isinstance(inner, dict)
    return overlaid(BASE, inner)


def _bounds(type_: Any) -> tuple[int, int]:
    rule = int_range(type_)
    assert rule is not None
    return rule.low, rule.high


class _Writer:
    """What ``_keep_alive`` reads of a stream writer: its socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def get_extra_info(self, name: str) -> object:
        return self.sock if name == "socket" else None


def _runs_with(host: HostConfig) -> None:
    """Everything a node makes of its numbers: its settings, its retries, its sockets."""
    settings = live_settings(host)
    retry = settings.policy.retry
    for failures in (1, 2, 64, MAX_RETRY_ATTEMPTS - 1):
        wait = retry.delay(failures, 0.5)
        assert wait is None or MIN_REDIAL_SECS <= wait < math.inf
    with socket.socket() as sock:
        _keep_alive(_Writer(sock), settings.idle_timeout_secs)  # type: ignore[arg-type]


def test_the_model_is_read_whole() -> None:
    tables = {path[:-1] for path, _ in INTEGER_KEYS}
    assert {(), ("discovery",), ("network",), ("network", "connection_policy")} <= tables
    assert len(INTEGER_KEYS) == len({path for path, _ in INTEGER_KEYS})


@pytest.mark.parametrize(("path", "type_"), INTEGER_KEYS, ids=[_label(p) for p, _ in INTEGER_KEYS])
def test_every_integer_key_has_bounds_and_its_top_is_accepted_and_runs(
    tmp_path: Path, path: Path_, type_: Any
) -> None:
    low, high = _bounds(type_)
    assert low <= high <= 2**32 - 1
    for value in (low, high):
        _runs_with(HostConfig.from_mapping(_document(path, value), base_dir=tmp_path))


def test_the_configuration_page_states_every_bound() -> None:
    page = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    rows = page.split("## Bounds of the numbers", 1)[1].splitlines()
    for path, type_ in INTEGER_KEYS:
        low, high = _bounds(type_)
        [row] = [r for r in rows if re.match(rf"\| `(\[[a-z._]+\] )?{path[-1]}` \|", r)]
        assert f"| {low}..{high} |" in row
    assert f"at least {MIN_REDIAL_SECS} s apart" in page
    assert f"after {MAX_RETRY_ATTEMPTS:,} dials" in page
    assert f"most {MAX_DURATION_MS:,} ms" in page


@pytest.mark.parametrize("past", ["top", "huge", "hugely negative"])
@pytest.mark.parametrize(("path", "type_"), INTEGER_KEYS, ids=[_label(p) for p, _ in INTEGER_KEYS])
def test_a_value_past_the_bounds_is_one_line_naming_the_key_and_the_value(
    tmp_path: Path, path: Path_, type_: Any, past: str
) -> None:
    """Before: a 401-digit delay was an OverflowError traceback."""
    low, high = _bounds(type_)
    value = {"top": high + 1, "huge": HUGE, "hugely negative": -HUGE}[past]
    file = tmp_path / "host.toml"
    file.write_text(tomli_w.dumps(_document(path, value)), encoding="utf-8")

    with pytest.raises(HostConfigError) as info:
        HostConfig.from_file(file, base_dir=tmp_path)

    message = str(info.value)
    assert message.startswith(f"{file}: {_label(path)} = ")
    assert "\n" not in message
    if past == "top":
        assert message.endswith(f"{_label(path)} = {high + 1}: must be {low}..{high}")
    else:
        shown = message.split(" = ", 1)[1].split(":", 1)[0]
        assert shown.endswith("...")
        assert len(shown) == 60
        assert str(value).startswith(shown.removesuffix("..."))


@pytest.mark.parametrize(("path", "type_"), INTEGER_KEYS, ids=[_label(p) for p, _ in INTEGER_KEYS])
@given(value=st.integers() | st.integers(min_value=-HUGE, max_value=HUGE))
def test_any_integer_is_either_refused_by_name_or_runs(path: Path_, type_: Any, value: int) -> None:
    low, high = _bounds(type_)
    data = _document(path, value)
    where = Path("/nonexistent")  # nothing is written: the state directory is only named
    if low <= value <= high:
        _runs_with(HostConfig.from_mapping(data, base_dir=where, source="host.toml"))
    else:
        with pytest.raises(HostConfigError) as info:
            HostConfig.from_mapping(data, base_dir=where, source="host.toml")
        assert str(info.value).startswith(f"host.toml: {_label(path)} = {str(value)[:20]}")


def test_a_node_started_with_a_401_digit_delay_says_which_key_and_stops(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: ``hostsim node`` ended in an OverflowError traceback."""
    file = tmp_path / "node.toml"
    file.write_text(
        "[network.connection_policy]\nreconnect_base_delay_ms = " + str(HUGE) + "\n",
        encoding="utf-8",
    )
    assert hostsim_cli.main(["node", str(file)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "Traceback" not in err
    assert f"{file}: [network.connection_policy] reconnect_base_delay_ms = 1000000000" in err
    assert err.rstrip().endswith("...: must be 0..2147483647")


def test_an_integer_too_long_to_read_names_its_line_table_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Python reads at most 4,300 digits of an integer: before, a longer one in the file was a
    ValueError traceback."""
    file = tmp_path / "node.toml"
    file.write_text(
        '[realm]\nname = "x"\n\n[discovery]\nrequest_want = ' + "9" * 5000 + "\n",
        encoding="utf-8",
    )
    with pytest.raises(HostConfigError) as info:
        HostConfig.from_file(file)
    message = str(info.value)
    assert message.startswith(f"{file}: line 5: [discovery] request_want = 99999")
    assert message.endswith("...: an integer of 5000 digits, too long to read")
    assert len(message) < len(str(file)) + 150

    assert hostsim_cli.main(["node", str(file)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.count("\n") == 1
    assert "an integer of 5000 digits" in err


def test_an_integer_past_python_s_digits_from_a_mapping_is_shown_cut(tmp_path: Path) -> None:
    value = 7 * 10**6000  # more digits than Python writes out
    with pytest.raises(HostConfigError) as info:
        HostConfig.from_mapping(_document(("port",), value), base_dir=tmp_path, source="x")
    assert str(info.value) == "x: port = 7" + "0" * 56 + "...: must be 1..65535"


@pytest.mark.parametrize("value", [HUGE, -HUGE], ids=["huge", "hugely negative"])
def test_a_huge_integer_where_a_number_goes_is_not_a_finite_number(
    tmp_path: Path, value: int
) -> None:
    data = _document(("network", "connection_policy", "reconnect_multiplier"), value)
    with pytest.raises(HostConfigError, match=r"reconnect_multiplier = -?1000.*\.\.\.: must be a"):
        HostConfig.from_mapping(data, base_dir=tmp_path)


def test_a_heartbeat_timeout_longer_than_linux_takes_is_refused(tmp_path: Path) -> None:
    """Before: 30 days was accepted, and every accept and dial raised TypeError in setsockopt
    (TCP_USER_TIMEOUT is a C int of milliseconds), so the node handshook with nobody."""
    data = _document(("network", "connection_policy", "heartbeat_timeout_ms"), 2_592_000_000)
    with pytest.raises(HostConfigError) as info:
        HostConfig.from_mapping(data, base_dir=tmp_path, source="node.toml")
    assert str(info.value) == (
        "node.toml: [network.connection_policy] heartbeat_timeout_ms = 2592000000:"
        " must be 0..2147483647"
    )


@given(timeout=st.floats(allow_nan=True, allow_infinity=True) | st.floats(0.001, 2147483.647))
def test_keep_alive_never_raises_and_sets_what_linux_takes(timeout: float) -> None:
    with socket.socket() as sock:
        _keep_alive(_Writer(sock), timeout)  # type: ignore[arg-type]
        if hasattr(socket, "TCP_USER_TIMEOUT"):
            user_timeout = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT)
            assert 1 <= user_timeout <= MAX_DURATION_MS
            if 0.001 <= timeout <= MAX_DURATION_MS / 1000:
                assert user_timeout == round(timeout * 1000)
        if hasattr(socket, "TCP_KEEPIDLE"):
            assert 1 <= sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) <= 32_767


def test_a_node_with_the_longest_heartbeat_timeout_handshakes_both_ways(tmp_path: Path) -> None:
    """Node b dials node a: b's socket is set up as a dial, a's as an accept."""
    longest = {"network": {"connection_policy": {"heartbeat_timeout_ms": MAX_DURATION_MS}}}
    first = config(tmp_path, "node-a", extra=longest)
    second = config(tmp_path, "node-b", seeds=(f"127.0.0.1:{first.port}",), extra=longest)

    async def scenario() -> None:
        async with running(first) as a, running(second) as b:
            await until(lambda: "node-a" in b.core.by_node and "node-b" in a.core.by_node)

    run(scenario())


def test_a_node_process_dials_a_dead_planned_peer_at_most_four_times_a_second(
    tmp_path: Path, peerstore: Run
) -> None:
    """Before: with these keys a node dialled a dead planned peer 659 times a second, each a
    status line, a hook call and a store record."""
    dead = f"127.0.0.1:{free_port()}"  # nobody listens there: each dial is refused at once
    policy = {
        "reconnect_base_delay_ms": 0,
        "reconnect_multiplier": 1,
        "reconnect_max_attempts": 1_000_000,
    }
    node_config = write_node_config(
        tmp_path / "node.toml",
        node_id="node-a",
        port=free_port(),
        extra={"network": {"connection_policy": policy}},
    )
    added = peerstore("add", "-c", node_config, "--source", "Connected", "--node-id", "d", dead)
    assert added.status == 0, added.err
    with node_processes(tmp_path, 20.0) as start:
        node = start(node_config, "node-a")
        first, _ = node.wait_for(rf"dial {dead} failed", 20.0)
        while time.monotonic() < first + 3.0:
            node.poll_lines()
            time.sleep(0.05)
        node.poll_lines()
        end = time.monotonic()  # every line counted was written before this
    failed = [at for at, line in node.lines if f"dial {dead} failed" in line]
    # Every one of them was written between the process's start and the end: one at once,
    # then one every MIN_REDIAL_SECS at most. It is retried at all: three seconds hold 12.
    assert len(failed) <= (end - node.started) / MIN_REDIAL_SECS + 1
    assert len([at for at in failed if at <= first + 3.0]) >= 3
