"""TheNodes' own config files run in hostsim; realms are shared or kept apart as TheNodes does."""

from __future__ import annotations

import logging
import re
import uuid
from pathlib import Path

import pytest

from hostsim.addresses import NameTable
from hostsim.cli import EXIT_ERROR
from hostsim.cli import main as cli_main
from hostsim.clock import VirtualClock
from hostsim.config import ConnectionPolicy, Discovery, HostConfig, RealmInfo
from hostsim.errors import HostConfigError, HostStartupError
from hostsim.host import Dial, PluginHost
from hostsim.live.settings import live_settings, plaintext_refusal
from tests.support.paths import ROOT

# TheNodes' config/example.toml (TheNodesDev/TheNodes), every key and value as it has them.
THENODES_EXAMPLE = """\
# Example configuration for TheNodes

# Network settings
port = 50001  # Listening port for incoming connections
bootstrap_nodes = ["127.0.0.1:50002", "127.0.0.1:50003"]  # Initial peers to dial

# Application settings
app_name = "example-app"  # Optional application name used in HELLO

# Realm information (network segmentation)
[realm]
name = "example-realm"     # Realm name
version = "1.0"           # Realm protocol version

# Node identity and state
[node]
state_dir = "data/example-app"  # Directory for node state (node_id, peer store etc.)
id_file = "node_id"              # Filename within state_dir to persist node id
allow_ephemeral = true            # Allow ephemeral UUID when persistence fails
node_type = "daemon"             # Optional node type label advertised in HELLO

# Encryption settings (TLS) — optional
[encryption]
enabled = false                   # Set to true to enable encryption on network transport
mtls = false                      # TLS-only: enable mutual TLS (client auth)
backend = "tls"

[encryption.paths]
own_certificate = "pki/own/example-app.crt"   # Client cert for mTLS (optional)
own_private_key = "pki/own/example-app.key"   # Client key for mTLS (optional)
trusted_cert_dir = "pki/trusted/certs"        # Directory of trusted peer certs (PEM)
trusted_crl_dir = "pki/trusted/crl"           # Directory of CRLs for trusted peers (optional)
rejected_dir = "pki/rejected"                 # Directory to store rejected certs (optional)
issuer_cert_dir = "pki/issuers/certs"         # Directory of issuer/CA certs (optional)
issuer_crl_dir = "pki/issuers/crl"            # Directory of issuer CRLs (optional)

[encryption.noise]
pattern = "XX"
curve = "25519"
cipher = "ChaChaPoly"
hash = "BLAKE2s"
# static_key_path = "pki/own/noise_static.key"

[encryption.noise.trust_policy]
mode = "open"                       # open | allowlist | tofu | observe
store_new = "none"                  # none | observed
allowlist_fingerprints = []
pin_fingerprints = []

[encryption.noise.trust_policy.paths]
allowlist_dir = "pki/noise/trusted"
observed_dir = "pki/noise/observed"

[encryption.trust_policy]
mode = "open"
accept_self_signed = false
store_new_certs = "none"
reject_expired = false
reject_before_valid = false
enforce_ca_chain = false
pin_subjects = []
pin_fingerprints = []
pin_fp_algo = "sha256"
realm_subject_binding = false

[encryption.trust_policy.paths]
observed_dir = "pki/observed/certs"  # Directory to write newly observed leaf certs

# Logging / events configuration
[logging]
json_path = "logs/example_app_audit.jsonl"  # Path for structured audit logs (JSONL)
json_max_bytes = 5242880                     # Rotate after 5MB
json_rotate = 5                              # Keep up to 5 rotated files
disable_console = false                      # Suppress console output when true

# Peer discovery (gossip) configuration
[discovery]
enabled = true               # Enable PeerRequest/PeerList gossip
request_interval_secs = 90   # Interval between automatic PeerRequest messages
request_want = 16            # Peers requested per interval

# Optional realm access policy to constrain allowed remote node types
[realm_access]
allowed_node_types = ["daemon", "admin"]  # Only allow peers that advertise one of these types

# Persistent known peer store (ADR-0002)
[network.persistence]
enabled = true                    # Enable persistence across runs
# path = "data/example-app/peers.json"
max_entries = 1024                # Hard cap on stored peers
ttl_secs = 604800                 # Expire entries older than 7 days (in seconds)
save_interval_secs = 60           # Periodic flush interval in seconds

[network.relay]
enabled = false                   # Enable this node to act as a relay
store_forward = false             # Allow bounded buffering for temporarily absent peers
# queue_max_per_target = 1024     # Optional override per-target cap
# queue_max_global = 8192         # Optional override global cap across targets

[network.nat]
enabled = false
lease_duration_secs = 3600
"""

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


def test_hostsim_node_refuses_thenodes_example_config_which_makes_0_2_speak_tls(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(in_tmp / "example.toml", THENODES_EXAMPLE)

    status = cli_main(["node", str(path)])

    err = capsys.readouterr().err
    assert status == EXIT_ERROR
    assert f"{path}: [encryption] backend = 'tls'" in err
    assert "TheNodes 0.2.0" in err
    assert 'backend = "none"' in err  # what to set
    assert not (in_tmp / "data").exists()  # stopped before anything started


@pytest.mark.parametrize(
    ("table", "speaks"),
    [
        ('enabled = false\nbackend = "tls"', "TLS"),  # 0.2.0: the explicit backend wins
        ('enabled = false\nbackend = "Noise"', "NOISE"),
        ("enabled = true", "TLS"),  # both: TLS is the default backend when enabled
        ('enabled = true\nbackend = "tls"', "TLS"),
        ('enabled = true\nbackend = "quic"', "is not one TheNodes knows"),
        ('enabled = false\nbackend = "none"', None),
        ('enabled = true\nbackend = "plaintext"', None),
        ("enabled = false", None),
        ("", None),
    ],
)
def test_encryption_is_read_as_the_stricter_of_thenodes_0_2_and_0_4(
    table: str, speaks: str | None, in_tmp: Path
) -> None:
    text = "port = 50010\n" + (f"[encryption]\n{table}\n" if table else "")
    config = HostConfig.from_file(write(in_tmp / "c.toml", text))

    if speaks is None:
        assert plaintext_refusal(config.data) is None
        live_settings(config)
    else:
        assert speaks in (plaintext_refusal(config.data) or "")
        with pytest.raises(HostConfigError, match="hostsim speaks plaintext only"):
            live_settings(config)
