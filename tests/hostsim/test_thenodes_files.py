"""TheNodes' own config files run in hostsim; realms are shared or kept apart as TheNodes does."""

from __future__ import annotations

import logging
import re
import uuid
from pathlib import Path

import pytest

from hostsim.addresses import NameTable
from hostsim.clock import VirtualClock
from hostsim.config import ConnectionPolicy, Discovery, HostConfig, RealmInfo
from hostsim.errors import HostConfigError, HostStartupError
from hostsim.host import Dial, PluginHost
from hostsim.live.settings import live_settings
from hostsim.live.tlsconfig import encryption_refusal, tls_settings, transport
from tests.support.paths import ROOT
from tests.support.thenodes_example import THENODES_EXAMPLE

ENABLE_PEERSTORE = '\n[plugins]\nenabled = ["peerstore"]\n'
START = 1_763_700_000.0


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from a temporary working directory, as TheNodes resolves state_dir against it."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_thenodes_example_config_loads_with_thenodes_meaning_and_no_warning(
    in_tmp: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="hostsim"):
        config = HostConfig.from_file(write(in_tmp / "example.toml", THENODES_EXAMPLE))

    assert config.port == 50001
    assert config.bootstrap_nodes == ("127.0.0.1:50002", "127.0.0.1:50003")
    assert config.realm == RealmInfo(name="example-realm", code="example-realm", version="1.0")
    assert config.node_id is None
    assert config.state_dir == in_tmp / "data" / "example-app"
    assert (config.id_file, config.allow_ephemeral, config.node_type) == (
        "node_id",
        True,
        "daemon",
    )
    assert config.discovery == Discovery(enabled=True, request_interval_secs=90, request_want=16)
    assert config.connection_policy == ConnectionPolicy()
    assert config.data["network"]["persistence"]["ttl_secs"] == 604800
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    [unused] = [r.getMessage() for r in caplog.records if "does not use" in r.getMessage()]
    for key in ("app_name", "[encryption.noise.trust_policy.paths] allowlist_dir", "[network.nat]"):
        assert key in unused


def test_a_node_starts_from_thenodes_example_config_and_keeps_its_generated_id(
    in_tmp: Path,
) -> None:
    path = write(in_tmp / "example.toml", THENODES_EXAMPLE + ENABLE_PEERSTORE)
    clock = VirtualClock(START)

    host = PluginHost(HostConfig.from_file(path), clock=clock)
    dials = host.start()
    host.connect("127.0.0.1:50002", node_id="seed-b")
    host.advance(61)
    host.shutdown()

    id_file = in_tmp / "data" / "example-app" / "node_id"
    assert str(uuid.UUID(host.node_id)) == host.node_id
    assert id_file.read_text(encoding="utf-8").strip() == host.node_id
    assert [d.addr for d in dials] == ["127.0.0.1:50002", "127.0.0.1:50003"]
    assert (
        in_tmp / "data" / "example-app" / "plugins" / "peerstore" / "example-realm.toml"
    ).is_file()

    again = PluginHost(HostConfig.from_file(path), clock=clock)
    assert again.node_id == host.node_id
    assert again.start()[0] == Dial("127.0.0.1:50002", "peerstore")  # the proven peer first
    again.shutdown()


def test_a_config_that_sets_only_the_port_runs_with_thenodes_defaults(in_tmp: Path) -> None:
    path = write(in_tmp / "config.toml", "port = 50010\n" + ENABLE_PEERSTORE)

    host = PluginHost(HostConfig.from_file(path), clock=VirtualClock(START))
    assert host.start() == []
    host.advance(120)
    host.shutdown()

    assert host.view.realm == RealmInfo(name="default", code="default", version="1.0")
    assert host.view.listen_addrs == ("127.0.0.1:50010",)
    assert host.view.state_dir == in_tmp / "data"
    assert (in_tmp / "data" / "node_id").read_text(encoding="utf-8").strip() == host.node_id
    assert not (in_tmp / "data" / "plugins").exists()  # persistence is off by default


def test_a_seed_named_by_host_is_dialled_and_stored_by_its_resolved_address(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path / "node.toml",
        'bootstrap_nodes = ["seed.example.org:50000", "192.0.2.9:50000"]\n'
        '[node]\nid = "node-a"\nlisten_addrs = ["198.51.100.5:50000"]\n'
        "[network.persistence]\nenabled = true\n" + ENABLE_PEERSTORE,
    )
    names = NameTable({"seed.example.org": ("203.0.113.7", "192.0.2.9")})
    host = PluginHost.from_file(path, clock=VirtualClock(START), resolver=names)

    dials = host.start()
    host.shutdown()

    assert [d.addr for d in dials] == ["203.0.113.7:50000", "192.0.2.9:50000"]
    text = (host.config.state_dir / "plugins" / "peerstore" / "default.toml").read_text(
        encoding="utf-8"
    )
    assert 'addr = "203.0.113.7:50000"' in text
    assert "seed.example.org" not in text


def test_a_seed_that_does_not_resolve_is_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(
        tmp_path / "node.toml",
        'bootstrap_nodes = ["gone.example.org:50000", "192.0.2.9:50000"]\n[node]\nid = "a"\n',
    )
    host = PluginHost.from_file(path, clock=VirtualClock(START), resolver=NameTable())

    with caplog.at_level(logging.WARNING, logger="hostsim"):
        dials = host.start()

    assert [d.addr for d in dials] == ["192.0.2.9:50000"]
    assert any("gone.example.org:50000 does not resolve" in r.getMessage() for r in caplog.records)


def test_readme_enable_it_and_the_example_node_follow_the_layout_without_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Enable it", 1)[1]
    [block] = re.findall(r"```toml\n(.*?)```", section.split("\n## ", 1)[0], flags=re.DOTALL)
    with caplog.at_level(logging.WARNING, logger="hostsim"):
        enable_it = HostConfig.from_file(write(tmp_path / "readme.toml", block), base_dir=tmp_path)
        example = HostConfig.from_file(ROOT / "examples" / "node.toml", base_dir=tmp_path)

    assert not caplog.records
    assert enable_it.port == example.port == 7447
    assert enable_it.bootstrap_nodes == ("203.0.113.1:7447", "203.0.113.2:7447")
    assert enable_it.node_id == "node-a"
    assert example.realm == RealmInfo(name="Example", code="example", version="1.0")
    for config in (enable_it, example):
        assert config.enabled_plugins == ("peerstore",)
        assert config.data["network"]["persistence"]["enabled"] is True


# -- realms ---------------------------------------------------------------------------------


def node_config(tmp_path: Path, name: str, realm: str, version: str | None = None) -> Path:
    version_line = f'version = "{version}"\n' if version is not None else ""
    return write(
        tmp_path / f"{name}.toml",
        f'[realm]\nname = "{realm}"\n{version_line}'
        f'[node]\nid = "{name}"\nstate_dir = "shared"\nlisten_addrs = ["198.51.100.5:50000"]\n'
        "[network.persistence]\nenabled = true\n" + ENABLE_PEERSTORE,
    )


PEER = "203.0.113.10:50000"


def run_first_node(tmp_path: Path, realm: str) -> PluginHost:
    """A node that proves PEER, saves and stops, leaving its realm's file in ``shared``."""
    host = PluginHost.from_file(node_config(tmp_path, "node-a", realm), clock=VirtualClock(START))
    host.start()
    host.connect(PEER, node_id="node-p")
    host.shutdown()
    return host


def files(state_dir: Path) -> dict[str, bytes]:
    peers = state_dir / "plugins" / "peerstore"
    return {p.name: p.read_bytes() for p in sorted(peers.iterdir()) if p.suffix == ".toml"}


@pytest.mark.parametrize(
    ("first", "second"),
    [("für", "Fuer"), ("Déjà Vu", "deja-vu"), ("こんにちは", ""), ("My Realm", "my_realm")],
)
def test_two_nodes_thenodes_puts_in_one_realm_share_its_file_and_plan(
    tmp_path: Path, first: str, second: str
) -> None:
    a = run_first_node(tmp_path, first)
    b = PluginHost.from_file(node_config(tmp_path, "node-b", second), clock=VirtualClock(START))

    assert a.view.realm.matches(b.view.realm)
    assert [d.addr for d in b.start()] == [PEER]
    b.shutdown()
    assert list(files(b.config.state_dir)) == [f"{a.view.realm.code}.toml"]


def test_two_nodes_of_different_realm_codes_never_share_a_file_or_a_plan(tmp_path: Path) -> None:
    a = run_first_node(tmp_path, "für")
    before = files(a.config.state_dir)
    b = PluginHost.from_file(node_config(tmp_path, "node-b", "fur"), clock=VirtualClock(START))

    assert not a.view.realm.matches(b.view.realm)
    assert b.start() == []
    b.connect("192.0.2.20:50000", node_id="node-q")
    b.shutdown()
    after = files(a.config.state_dir)
    assert after["fuer.toml"] == before["fuer.toml"]
    assert set(after) == {"fuer.toml", "fur.toml"}
    assert PEER.encode() not in after["fur.toml"]


def test_two_nodes_of_one_realm_code_and_different_versions_never_share_a_file_or_a_plan(
    tmp_path: Path,
) -> None:
    a = run_first_node(tmp_path, "example")
    before = files(a.config.state_dir)
    b = PluginHost.from_file(
        node_config(tmp_path, "node-b", "example", version="2.0"), clock=VirtualClock(START)
    )

    assert a.view.realm.version == "1.0"
    assert b.view.realm.version == "2.0"
    assert not a.view.realm.matches(b.view.realm)
    try:
        plan = [d.addr for d in b.start()]
    except HostStartupError:
        plan = []  # refusing the other version's file keeps it apart too
    else:
        b.shutdown()
    assert PEER not in plan
    assert files(a.config.state_dir).get("example.toml") == before["example.toml"]


def test_thenodes_example_config_is_read_as_0_2_reads_it_tls_and_0_4s_reading_is_named(
    in_tmp: Path,
) -> None:
    config = HostConfig.from_file(write(in_tmp / "example.toml", THENODES_EXAMPLE))

    tls = tls_settings(config.data)

    assert tls is not None  # backend = "tls" wins over enabled = false, as in TheNodes 0.2.0
    assert tls.cert_path == in_tmp / "pki/own/example-app.crt"  # the working directory's
    assert tls.key_path == in_tmp / "pki/own/example-app.key"
    assert (tls.mtls, tls.policy.mode, tls.policy.trusted_dir) == (
        False,
        "open",
        in_tmp / "pki/trusted/certs",
    )
    assert tls.policy.observed_dir == in_tmp / "pki/observed/certs"
    assert tls.versions_differ is not None
    assert "TheNodes 0.4.0 plaintext" in tls.versions_differ
    assert "enabled = true" in tls.versions_differ  # what makes both speak TLS


@pytest.mark.parametrize(
    ("table", "speaks"),
    [
        ('enabled = false\nbackend = "tls"', "tls"),  # 0.2.0: the explicit backend wins
        ('enabled = false\nbackend = "Noise"', "Noise"),
        ('enabled = true\nbackend = "noise"', "Noise"),
        ("enabled = true", "tls"),  # both: TLS is the default backend when enabled
        ('enabled = true\nbackend = "TLS"', "tls"),
        ('enabled = true\nbackend = "quic"', "is not one TheNodes knows"),
        ('enabled = false\nbackend = "none"', "plaintext"),
        ('enabled = true\nbackend = "plaintext"', "plaintext"),
        ("enabled = false", "plaintext"),
        ("", "plaintext"),
    ],
)
def test_encryption_is_tls_when_either_thenodes_0_2_or_0_4_would_speak_it_noise_is_refused(
    table: str, speaks: str, in_tmp: Path
) -> None:
    text = "port = 50010\n" + (f"[encryption]\n{table}\n" if table else "")
    config = HostConfig.from_file(write(in_tmp / "c.toml", text))

    if speaks in ("tls", "plaintext"):
        assert encryption_refusal(config.data) is None
        assert transport(config.data) == speaks
    else:
        assert speaks in (encryption_refusal(config.data) or "")
        with pytest.raises(HostConfigError, match=speaks):
            live_settings(config)
    if speaks == "plaintext":
        assert live_settings(config).tls is None
