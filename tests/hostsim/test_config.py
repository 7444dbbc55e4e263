"""The host config file: defaults, pass-through data, realm codes, and error messages."""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path
from types import MappingProxyType

import attrs
import pytest

from hostsim.clock import VirtualClock
from hostsim.config import ConnectionPolicy, Discovery, HostConfig, HostConfigError, RealmInfo
from hostsim.live.settings import live_settings

MINIMAL = """
[realm]
name = "Example"
[node]
id = "node-a"
"""

FULL = """
port = 7450
bootstrap_nodes = ["203.0.113.1:7447", "[2001:DB8::1]:7447"]

[realm]
name = "My Realm!"
version = "2"

[node]
id = "node-a"
state_dir = "state/a"
listen_addrs = ["198.51.100.5:7450"]

[network.persistence]
enabled = true
path = "peers/{realm}.toml"

[logging]
json_rotate = 5

[plugins]
enabled = ["peerstore", "metrics"]
"""


def write(tmp_path: Path, text: str, name: str = "host.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load(path: Path) -> HostConfig:
    """The config at ``path``, with a relative state_dir under its directory."""
    return HostConfig.from_file(path, base_dir=path.parent)


def test_minimal_config_gets_defaults(tmp_path: Path) -> None:
    config = load(write(tmp_path, MINIMAL))

    assert config.port == 50000
    assert config.bootstrap_nodes == ()
    assert config.realm == RealmInfo(name="Example", code="example", version="1.0")
    assert config.node_id == "node-a"
    assert config.state_dir == tmp_path / "data"
    assert config.listen_addrs == ("127.0.0.1:50000",)
    assert config.enabled_plugins == ()
    assert (config.id_file, config.allow_ephemeral, config.node_type) == (
        "node_id",
        True,
        "daemon",
    )
    assert config.discovery == Discovery(enabled=True, request_interval_secs=90, request_want=16)
    assert config.connection_policy == ConnectionPolicy()


def test_an_empty_config_is_the_default_realm_and_a_node_without_an_id(tmp_path: Path) -> None:
    config = load(write(tmp_path, ""))

    assert config.realm == RealmInfo(name="default", code="default", version="1.0")
    assert config.node_id is None
    assert config.port == 50000


def test_full_config(tmp_path: Path) -> None:
    config = load(write(tmp_path, FULL))

    assert config.port == 7450
    assert config.bootstrap_nodes == ("203.0.113.1:7447", "[2001:db8::1]:7447")
    assert config.realm == RealmInfo(name="My Realm!", code="my-realm", version="2")
    assert config.state_dir == tmp_path / "state" / "a"
    assert config.state_dir.is_absolute()
    assert config.listen_addrs == ("198.51.100.5:7450",)
    assert config.enabled_plugins == ("peerstore", "metrics")


def test_default_listen_addr_follows_port(tmp_path: Path) -> None:
    config = load(write(tmp_path, "port = 9000\n" + MINIMAL))
    assert config.listen_addrs == ("127.0.0.1:9000",)


def test_state_dir_is_relative_to_the_working_directory_as_in_thenodes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "conf").mkdir()
    path = write(tmp_path / "conf", MINIMAL)
    monkeypatch.chdir(tmp_path)

    config = HostConfig.from_file(Path("conf") / path.name)

    assert config.state_dir == tmp_path / "data"


def test_absolute_state_dir_is_kept(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    text = MINIMAL + f'state_dir = "{target.as_posix()}"\n'
    assert load(write(tmp_path, text)).state_dir == target


def test_data_passes_other_tables_through_read_only(tmp_path: Path) -> None:
    config = load(write(tmp_path, FULL))

    assert config.data["network"]["persistence"]["enabled"] is True
    assert config.data["network"]["persistence"]["path"] == "peers/{realm}.toml"
    assert config.data["logging"] == {"json_rotate": 5}
    assert config.data["plugins"]["enabled"] == ("peerstore", "metrics")
    assert isinstance(config.data, MappingProxyType)
    assert isinstance(config.data["network"], MappingProxyType)
    with pytest.raises(TypeError):
        config.data["network"]["persistence"]["enabled"] = False  # type: ignore[index]


def test_from_mapping_names_its_source(tmp_path: Path) -> None:
    with pytest.raises(HostConfigError, match=r"^inline: \[node\] id: expected a string, got 5$"):
        HostConfig.from_mapping({"node": {"id": 5}}, base_dir=tmp_path, source="inline")


def test_from_mapping_does_not_keep_the_callers_data(tmp_path: Path) -> None:
    data = {"realm": {"name": "Example"}, "node": {"id": "n"}, "extra": {"list": [1, 2]}}
    config = HostConfig.from_mapping(data, base_dir=tmp_path)
    data["extra"]["list"].append(3)
    assert config.data["extra"]["list"] == (1, 2)


def test_explicit_realm_code_is_kept(tmp_path: Path) -> None:
    text = '[realm]\nname = "Example"\ncode = "ex.main_1"\n[node]\nid = "a"\n'
    assert load(write(tmp_path, text)).realm.code == "ex.main_1"


def test_ipv6_and_ipv4_addresses_are_canonical(tmp_path: Path) -> None:
    text = 'bootstrap_nodes = ["[2001:0DB8:0::7]:7447", "[::ffff:192.0.2.1]:1"]\n' + MINIMAL
    config = load(write(tmp_path, text))
    assert config.bootstrap_nodes == ("[2001:db8::7]:7447", "192.0.2.1:1")


def test_seeds_may_be_host_names_and_a_seed_listed_twice_is_kept_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = (
        'bootstrap_nodes = ["Seed.Example.org.:50000", "203.0.113.1:50000",'
        ' "seed.example.org:50000", "203.0.113.1:50000"]\n'
    )
    with caplog.at_level(logging.DEBUG, logger="hostsim.config"):
        config = load(write(tmp_path, text))

    assert config.bootstrap_nodes == ("seed.example.org:50000", "203.0.113.1:50000")
    [line] = [r for r in caplog.records if "more than once" in r.getMessage()]
    assert line.levelno == logging.DEBUG
    assert "203.0.113.1:50000" in line.getMessage()


def test_toml_syntax_error_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "port = = 1\n")
    with pytest.raises(HostConfigError, match=rf"^{path}: invalid TOML: "):
        HostConfig.from_file(path)


def test_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        HostConfig.from_file(tmp_path / "absent.toml")


def test_a_key_nobody_defines_is_a_warning_naming_the_closest_known_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = MINIMAL + 'id_flie = "x"\n[discovery]\nrequest_wnat = 8\n[colour]\nhue = 1\n'
    with caplog.at_level(logging.WARNING, logger="hostsim.config"):
        config = load(write(tmp_path, text))

    prefix = f"{tmp_path / 'host.toml'}: unknown key "
    warnings = {r.getMessage() for r in caplog.records if r.levelno == logging.WARNING}
    assert warnings == {
        prefix + "[node] id_flie, ignored (did you mean id_file?)",
        prefix + "[discovery] request_wnat, ignored (did you mean request_want?)",
        prefix + "colour, ignored",
    }
    assert config.discovery.request_want == 16  # the typo changed nothing


def test_keys_thenodes_defines_and_hostsim_does_not_use_are_logged_once_at_debug(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = (
        MINIMAL
        + 'node_type = "admin"\n[encryption.paths]\ntrusted_crl_dir = "anything"\n'
        + "[network.relay]\nstore_forward = 3\n"
    )
    with caplog.at_level(logging.DEBUG, logger="hostsim.config"):
        load(write(tmp_path, text))

    lines = [r for r in caplog.records if r.name == "hostsim.config"]
    [line] = lines
    assert line.levelno == logging.DEBUG
    assert "[encryption.paths] trusted_crl_dir" in line.getMessage()
    assert "[network.relay] store_forward" in line.getMessage()
    assert "node_type" not in line.getMessage()  # hostsim uses it


def test_the_plugins_table_is_not_checked_by_the_host(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = MINIMAL + "[network.persistence]\nreconnect_limit = 3\nnot_a_key = 1\n"
    with caplog.at_level(logging.DEBUG, logger="hostsim.config"):
        config = load(write(tmp_path, text))

    assert not caplog.records
    assert config.data["network"]["persistence"]["not_a_key"] == 1


def test_connection_policy_is_read_with_thenodes_defaults(tmp_path: Path) -> None:
    text = MINIMAL + "[network.connection_policy]\nreconnect_base_delay_ms = 250\n"
    policy = load(write(tmp_path, text)).connection_policy

    assert policy.reconnect_base_delay_ms == 250
    assert attrs.asdict(attrs.evolve(policy, reconnect_base_delay_ms=1000)) == {
        "strategy": "direct_then_relay",
        "direct_tcp_timeout_ms": 3000,
        "direct_udp_timeout_ms": 1000,
        "punch_timeout_ms": 5000,
        "heartbeat_interval_ms": 30000,
        "heartbeat_timeout_ms": 90000,
        "reconnect_base_delay_ms": 1000,
        "reconnect_multiplier": 2.0,
        "reconnect_max_delay_ms": 60000,
        "reconnect_max_attempts": 8,
        "reconnect_jitter_ratio": 0.2,
    }


def test_hostsims_own_network_keys_are_known_and_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = MINIMAL + '[network]\nbind_addr = "::1"\nmax_inbound = 5\n'
    with caplog.at_level(logging.DEBUG, logger="hostsim.config"):
        config = load(write(tmp_path, text))

    assert not caplog.records  # no "unknown key", and not one of TheNodes' unused keys
    assert (config.bind_addr, config.max_inbound) == ("::1", 5)
    defaults = load(write(tmp_path, MINIMAL))
    assert (defaults.bind_addr, defaults.max_inbound) == ("127.0.0.1", 64)


def test_a_live_node_reads_its_numbers_from_the_config_models(tmp_path: Path) -> None:
    text = (
        MINIMAL
        + "[discovery]\nenabled = false\nrequest_interval_secs = 30\nrequest_want = 4\n"
        + '[network]\nbind_addr = "0.0.0.0"\nmax_inbound = 7\n'
        + "[network.connection_policy]\nreconnect_base_delay_ms = 250\n"
        + "reconnect_max_attempts = 3\ndirect_tcp_timeout_ms = 1500\n"
        + "heartbeat_timeout_ms = 0\n"
    )
    settings = live_settings(load(write(tmp_path, text)))

    assert (settings.bind, settings.max_inbound) == ("0.0.0.0", 7)
    policy = settings.policy
    assert (policy.peer_requests, policy.peer_list_interval_secs, policy.peer_list_want) == (
        False,
        30.0,
        4,
    )
    assert (policy.retry.base_secs, policy.retry.max_attempts) == (0.25, 3)
    assert settings.connect_timeout_secs == settings.handshake_timeout_secs == 1.5
    assert settings.idle_timeout_secs is None  # 0 is "no limit": a quiet peer is never closed
    assert settings.heartbeat_interval_secs == 30.0
    assert live_settings(load(write(tmp_path, text)), bind="127.0.0.2").bind == "127.0.0.2"
    with pytest.raises(HostConfigError, match="--bind 'localhost': must be an IP address"):
        live_settings(load(write(tmp_path, text)), bind="localhost")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("port = 0\n" + MINIMAL, "host.toml: port = 0: must be 1..65535"),
        (
            MINIMAL + '[network]\nbind_addr = "localhost"\n',
            'host.toml: [network] bind_addr = "localhost": must be an IP address',
        ),
        (
            MINIMAL + "[network]\nmax_inbound = 0\n",
            "host.toml: [network] max_inbound = 0:",
        ),
        ("port = 65536\n" + MINIMAL, "host.toml: port = 65536: must be 1..65535"),
        ('port = "7447"\n' + MINIMAL, 'host.toml: port: expected an integer, got "7447"'),
        ("port = true\n" + MINIMAL, "host.toml: port: expected an integer, got true"),
        (
            'bootstrap_nodes = "203.0.113.1:7447"\n' + MINIMAL,
            'host.toml: bootstrap_nodes: expected an array, got "203.0.113.1:7447"',
        ),
        (
            "bootstrap_nodes = [5]\n" + MINIMAL,
            "host.toml: bootstrap_nodes[0]: expected a string, got 5",
        ),
        (
            'bootstrap_nodes = ["seed_1.example.org:7447"]\n' + MINIMAL,
            'host.toml: bootstrap_nodes[0] = "seed_1.example.org:7447":'
            " 'seed_1.example.org' is neither an IP address nor a host name",
        ),
        (
            'bootstrap_nodes = ["203.0.113.1"]\n' + MINIMAL,
            'bootstrap_nodes[0] = "203.0.113.1": missing port',
        ),
        ('bootstrap_nodes = ["203.0.113.1:0"]\n' + MINIMAL, "port '0' is not a number in 1..65535"),
        (
            'bootstrap_nodes = ["2001:db8::1:7447"]\n' + MINIMAL,
            'an IPv6 address must be written "[ip]:port"',
        ),
        ('bootstrap_nodes = ["[fe80::1%eth0]:7447"]\n' + MINIMAL, "zone ids are not allowed"),
        (
            'bootstrap_nodes = ["[192.0.2.1]:7447"]\n' + MINIMAL,
            "an IPv4 address must not be bracketed",
        ),
        (
            'realm = "Example"\n[node]\nid = "a"\n',
            'host.toml: realm: expected a table, got "Example"',
        ),
        ("[realm]\nname = 'x'\n[node]\nid = 5\n", "host.toml: [node] id: expected a string, got 5"),
        (
            "[realm]\nname = 'x'\n[node]\nid = 'a b'\n",
            '[node] id = "a b": must be 1 to 128 ASCII letters',
        ),
        ("[realm]\nname = 'x'\n[node]\nid = ''\n", '[node] id = "": must be 1 to 128'),
        ("[node]\nid = '" + "a" * 129 + "'\n", "must be 1 to 128 ASCII letters"),
        ("[realm]\n[node]\nid = 'a'\n", "host.toml: [realm] name: missing (required)"),
        (
            "[realm]\nname = 'x'\nversion = 1\n[node]\nid = 'a'\n",
            "host.toml: [realm] version: expected a string, got 1",
        ),
        (
            "[realm]\nname = 'x'\ncode = 'Bad Code'\n[node]\nid = 'a'\n",
            '[realm] code = "Bad Code": must be lowercase ASCII',
        ),
        (
            "[realm]\nname = 'x'\ncode = '..'\n[node]\nid = 'a'\n",
            '[realm] code = "..": must be lowercase ASCII',
        ),
        (
            "[realm]\nname = 'x'\ncode = 'nul.x'\n",
            '[realm] code = "nul.x": must not be a name Windows keeps for a device',
        ),
        (
            "[realm]\nname = 'x'\ncode = '" + "a" * 65 + "'\n[node]\nid = 'a'\n",
            "must be at most 64 characters",
        ),
        (
            "[realm]\nname = 'Aux'\n",
            '[realm] name = "Aux": its code "aux" must not be a name Windows keeps for a device',
        ),
        ("[realm]\nname = '" + "a" * 65 + "'\n[node]\nid = 'a'\n", "; set [realm] code"),
        (MINIMAL + "state_dir = 5\n", "host.toml: [node] state_dir: expected a string, got 5"),
        (MINIMAL + "id_file = ''\n", '[node] id_file = "": must not be empty'),
        (MINIMAL + "allow_ephemeral = 'yes'\n", "[node] allow_ephemeral: expected true or false"),
        (
            MINIMAL + "listen_addrs = ['localhost:7447']\n",
            "[node] listen_addrs[0] = \"localhost:7447\": 'localhost' is not an IP literal",
        ),
        (
            MINIMAL + "listen_addrs = ['192.0.2.1:7', '192.0.2.1:7']\n",
            '[node] listen_addrs[1] = "192.0.2.1:7": same address as [node] listen_addrs[0]',
        ),
        (
            MINIMAL + "[discovery]\nrequest_interval_secs = 0\n",
            "host.toml: [discovery] request_interval_secs = 0: must be a positive integer",
        ),
        (
            MINIMAL + "[discovery]\nrequest_want = 70000\n",
            "host.toml: [discovery] request_want = 70000: must be 1..65535",
        ),
        (
            MINIMAL + "[discovery]\nenabled = 1\n",
            "host.toml: [discovery] enabled: expected true or false, got 1",
        ),
        (
            MINIMAL + "[network.connection_policy]\nreconnect_jitter_ratio = 1.5\n",
            "[network.connection_policy] reconnect_jitter_ratio = 1.5: must be between 0 and 1",
        ),
        (
            MINIMAL + "[plugins]\nenabled = 'peerstore'\n",
            '[plugins] enabled: expected an array, got "peerstore"',
        ),
        (MINIMAL + "[plugins]\nenabled = ['a', 'a']\n", '[plugins] enabled[1] = "a": listed twice'),
        (MINIMAL + "[plugins]\nenabled = [' ']\n", '[plugins] enabled[0] = " ": must not be empty'),
    ],
)
def test_errors_name_the_key_and_value(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(HostConfigError) as info:
        load(path)
    assert message in str(info.value)
    assert str(info.value).startswith(f"{path}: ")
    assert "\n" not in str(info.value)


def test_every_wrong_value_is_named_in_one_message(tmp_path: Path) -> None:
    path = write(tmp_path, "port = 0\n[node]\nid = 'a b'\n[discovery]\nrequest_want = 0\n")
    with pytest.raises(HostConfigError) as info:
        load(path)
    assert str(info.value) == (
        f"{path}: port = 0: must be 1..65535;"
        ' [node] id = "a b": must be 1 to 128 ASCII letters, digits, ".", "_" or "-";'
        " [discovery] request_want = 0: must be 1..65535"
    )


def test_config_error_is_a_value_error() -> None:
    assert issubclass(HostConfigError, ValueError)


def test_virtual_clock() -> None:
    clock = VirtualClock()
    assert clock.now() == 1_763_700_000.0
    clock.advance(2.5)
    assert clock.now() == 1_763_700_002.5
    with pytest.raises(ValueError, match="must not be negative"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="finite"):
        VirtualClock(float("nan"))
    assert VirtualClock(10).now() == 10.0
