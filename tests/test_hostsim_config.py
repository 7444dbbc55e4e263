"""The host config file: defaults, pass-through data, realm codes, and error messages."""

from __future__ import annotations

import textwrap
from pathlib import Path
from types import MappingProxyType

import pytest

from hostsim.clock import VirtualClock
from hostsim.config import HostConfig, HostConfigError, RealmInfo, derive_realm_code

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
level = "debug"

[plugins]
enabled = ["peerstore", "metrics"]
"""


def write(tmp_path: Path, text: str, name: str = "host.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_minimal_config_gets_defaults(tmp_path: Path) -> None:
    config = HostConfig.from_file(write(tmp_path, MINIMAL))

    assert config.port == 7447
    assert config.bootstrap_nodes == ()
    assert config.realm == RealmInfo(name="Example", code="example", version="1")
    assert config.node_id == "node-a"
    assert config.state_dir == tmp_path / "data"
    assert config.listen_addrs == ("127.0.0.1:7447",)
    assert config.enabled_plugins == ()


def test_full_config(tmp_path: Path) -> None:
    config = HostConfig.from_file(write(tmp_path, FULL))

    assert config.port == 7450
    assert config.bootstrap_nodes == ("203.0.113.1:7447", "[2001:db8::1]:7447")
    assert config.realm == RealmInfo(name="My Realm!", code="my-realm", version="2")
    assert config.state_dir == tmp_path / "state" / "a"
    assert config.state_dir.is_absolute()
    assert config.listen_addrs == ("198.51.100.5:7450",)
    assert config.enabled_plugins == ("peerstore", "metrics")


def test_default_listen_addr_follows_port(tmp_path: Path) -> None:
    config = HostConfig.from_file(write(tmp_path, "port = 9000\n" + MINIMAL))
    assert config.listen_addrs == ("127.0.0.1:9000",)


def test_state_dir_relative_to_the_config_file_not_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "conf").mkdir()
    path = write(tmp_path / "conf", MINIMAL)
    monkeypatch.chdir(tmp_path)

    config = HostConfig.from_file(Path("conf") / path.name)

    assert config.state_dir == tmp_path / "conf" / "data"


def test_absolute_state_dir_is_kept(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    text = MINIMAL + f'state_dir = "{target.as_posix()}"\n'
    assert HostConfig.from_file(write(tmp_path, text)).state_dir == target


def test_data_passes_other_tables_through_read_only(tmp_path: Path) -> None:
    config = HostConfig.from_file(write(tmp_path, FULL))

    assert config.data["network"]["persistence"]["enabled"] is True
    assert config.data["network"]["persistence"]["path"] == "peers/{realm}.toml"
    assert config.data["logging"] == {"level": "debug"}
    assert config.data["plugins"]["enabled"] == ("peerstore", "metrics")
    assert isinstance(config.data, MappingProxyType)
    assert isinstance(config.data["network"], MappingProxyType)
    with pytest.raises(TypeError):
        config.data["network"]["persistence"]["enabled"] = False  # type: ignore[index]


def test_from_mapping_names_its_source(tmp_path: Path) -> None:
    with pytest.raises(HostConfigError, match=r"^inline: \[node\] id: missing"):
        HostConfig.from_mapping(
            {"realm": {"name": "x"}, "node": {}}, base_dir=tmp_path, source="inline"
        )


def test_from_mapping_does_not_keep_the_callers_data(tmp_path: Path) -> None:
    data = {"realm": {"name": "Example"}, "node": {"id": "n"}, "extra": {"list": [1, 2]}}
    config = HostConfig.from_mapping(data, base_dir=tmp_path)
    data["extra"]["list"].append(3)
    assert config.data["extra"]["list"] == (1, 2)


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("Example", "example"),
        ("My Realm!", "my-realm"),
        ("  Main__Net v2.0 ", "main-net-v2-0"),
        ("Café del Mar", "cafe-del-mar"),
        ("ALLCAPS", "allcaps"),
        ("日本", ""),
    ],
)
def test_derive_realm_code(name: str, code: str) -> None:
    assert derive_realm_code(name) == code


def test_explicit_realm_code_is_kept(tmp_path: Path) -> None:
    text = '[realm]\nname = "Example"\ncode = "ex.main_1"\n[node]\nid = "a"\n'
    assert HostConfig.from_file(write(tmp_path, text)).realm.code == "ex.main_1"


def test_ipv6_and_ipv4_addresses_are_canonical(tmp_path: Path) -> None:
    text = 'bootstrap_nodes = ["[2001:0DB8:0::7]:7447", "[::ffff:192.0.2.1]:1"]\n' + MINIMAL
    config = HostConfig.from_file(write(tmp_path, text))
    assert config.bootstrap_nodes == ("[2001:db8::7]:7447", "192.0.2.1:1")


def test_toml_syntax_error_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "port = = 1\n")
    with pytest.raises(HostConfigError, match=rf"^{path}: invalid TOML: "):
        HostConfig.from_file(path)


def test_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        HostConfig.from_file(tmp_path / "absent.toml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("port = 0\n" + MINIMAL, "host.toml: port = 0: must be 1..65535"),
        ("port = 65536\n" + MINIMAL, "host.toml: port = 65536: must be 1..65535"),
        ('port = "7447"\n' + MINIMAL, 'host.toml: port: expected an integer, got "7447"'),
        ("port = true\n" + MINIMAL, "host.toml: port: expected an integer, got true"),
        (
            'bootstrap_nodes = "203.0.113.1:7447"\n' + MINIMAL,
            "host.toml: bootstrap_nodes: expected an array of strings",
        ),
        (
            "bootstrap_nodes = [5]\n" + MINIMAL,
            "host.toml: bootstrap_nodes[0]: expected a string, got 5",
        ),
        (
            'bootstrap_nodes = ["seed.example.org:7447"]\n' + MINIMAL,
            'host.toml: bootstrap_nodes[0] = "seed.example.org:7447":'
            " 'seed.example.org' is not an IP literal (hostnames are not allowed",
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
            'bootstrap_nodes = ["203.0.113.1:7447", "203.0.113.1:7447"]\n' + MINIMAL,
            'bootstrap_nodes[1] = "203.0.113.1:7447": same address as bootstrap_nodes[0]',
        ),
        ('[node]\nid = "a"\n', r"host.toml: [realm]: missing table (required)"),
        (
            'realm = "Example"\n[node]\nid = "a"\n',
            'host.toml: [realm]: expected a table, got "Example"',
        ),
        ('[realm]\nname = "Example"\n', "host.toml: [node]: missing table (required)"),
        ("[realm]\nname = 'x'\n[node]\nid = 5\n", "host.toml: [node] id: expected a string, got 5"),
        ("[realm]\nname = 'x'\n[node]\n", "host.toml: [node] id: missing (required)"),
        (
            "[realm]\nname = 'x'\n[node]\nid = 'a b'\n",
            '[node] id = "a b": must be 1 to 128 ASCII letters',
        ),
        ("[realm]\nname = 'x'\n[node]\nid = ''\n", '[node] id = "": must not be empty'),
        (
            "[realm]\nname = 'x'\n[node]\nid = 'a'\nids = 'b'\n",
            'host.toml: [node]: unknown key "ids" (known keys: id, state_dir, listen_addrs)',
        ),
        (
            "[realm]\nname = 'x'\ncolor = 1\n[node]\nid = 'a'\n",
            'host.toml: [realm]: unknown key "color"',
        ),
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
            "[realm]\nname = 'x'\ncode = '" + "a" * 65 + "'\n[node]\nid = 'a'\n",
            "must be at most 64 characters",
        ),
        (
            "[realm]\nname = '日本'\n[node]\nid = 'a'\n",
            '[realm] name = "日本": cannot derive a realm code from it'
            ' (got "", which must be lowercase ASCII',
        ),
        ("[realm]\nname = '" + "a" * 65 + "'\n[node]\nid = 'a'\n", "set [realm] code"),
        (MINIMAL + "state_dir = 5\n", "host.toml: [node] state_dir: expected a string, got 5"),
        (
            MINIMAL + "listen_addrs = ['localhost:7447']\n",
            "[node] listen_addrs[0] = \"localhost:7447\": 'localhost' is not an IP literal",
        ),
        (
            MINIMAL + "[plugins]\nenabled = 'peerstore'\n",
            '[plugins] enabled: expected an array of strings, got "peerstore"',
        ),
        (MINIMAL + "[plugins]\nenabled = ['a', 'a']\n", '[plugins] enabled[1] = "a": listed twice'),
        (MINIMAL + "[plugins]\nenable = ['a']\n", 'host.toml: [plugins]: unknown key "enable"'),
    ],
)
def test_errors_name_the_key_and_value(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(HostConfigError) as info:
        HostConfig.from_file(path)
    assert message in str(info.value)
    assert str(info.value).startswith(f"{path}: ")
    assert "\n" not in str(info.value)


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
