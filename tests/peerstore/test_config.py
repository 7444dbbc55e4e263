"""PersistenceConfig: reading ``[network.persistence]`` from the host config."""

from __future__ import annotations

import logging
import tomllib
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.paths import ROOT
from thenodes_peerstore import codec
from thenodes_peerstore.config import MAX_ENTRIES_LIMIT, PersistenceConfig
from thenodes_peerstore.errors import ConfigError
from thenodes_peerstore.persistent import extras_budget

MANIFEST = ROOT / "plugin.toml"

FULL_TABLE = {
    "enabled": True,
    "path": "state/peers-{realm}.toml",
    "max_entries": 50,
    "ttl_secs": 3600,
    "save_interval_secs": 5,
    "reconnect_limit": 8,
    "gossip_per_sender_per_hour": 20,
    "encryption": "aes-256-gcm",
    "key_file": "/etc/peerstore/realm.key",
    "key_env": "PEERSTORE_KEY",
}


def test_the_store_is_disabled_by_default() -> None:
    assert PersistenceConfig().enabled is False
    assert PersistenceConfig.from_host_config({}).enabled is False


def test_the_defaults_are_the_ones_the_manifest_advertises() -> None:
    defaults = tomllib.loads(MANIFEST.read_text())["config"]["defaults"]
    assert attrs.asdict(PersistenceConfig()) == defaults
    assert PersistenceConfig.from_mapping(defaults) == PersistenceConfig()


@pytest.mark.parametrize(
    "host_config",
    [
        {},
        {"network": {}},
        {"network": {"persistence": {}}},
        {"port": 7447, "realm": {"name": "Example"}, "network": {"other": {"x": 1}}},
    ],
)
def test_a_missing_or_empty_table_means_the_defaults(host_config: dict[str, Any]) -> None:
    assert PersistenceConfig.from_host_config(host_config) == PersistenceConfig()


def test_every_key_of_the_table_is_read() -> None:
    config = PersistenceConfig.from_host_config({"network": {"persistence": FULL_TABLE}})
    assert attrs.asdict(config) == FULL_TABLE


@pytest.mark.parametrize(("key", "value"), FULL_TABLE.items())
def test_each_key_alone_changes_only_its_own_setting(key: str, value: object) -> None:
    config = PersistenceConfig.from_mapping({key: value})
    assert getattr(config, key) == value
    assert attrs.evolve(config, **{key: getattr(PersistenceConfig(), key)}) == PersistenceConfig()


@settings(max_examples=50)
@given(
    enabled=st.booleans(),
    max_entries=st.integers(min_value=1, max_value=MAX_ENTRIES_LIMIT),
    ttl_secs=st.integers(min_value=1, max_value=2**40),
    save_interval_secs=st.integers(min_value=0, max_value=2**31),
    reconnect_limit=st.integers(min_value=0, max_value=1000),
    gossip_per_sender_per_hour=st.integers(min_value=1, max_value=10**6),
    path=st.sampled_from(["peers/{realm}.toml", "peers.toml", "/var/lib/node/{realm}.toml"]),
    encryption=st.sampled_from(["none", "aes-256-gcm"]),
    key_file=st.sampled_from(["", "/etc/peerstore/realm.key"]),
    key_env=st.sampled_from(["", "PEERSTORE_KEY"]),
)
def test_any_valid_table_is_read_as_written(**table: Any) -> None:
    assert attrs.asdict(PersistenceConfig.from_mapping(table)) == table


def test_a_table_read_from_toml_text_works() -> None:
    text = """
    [network.persistence]
    enabled = true
    path = "peers/{realm}.toml"
    max_entries = 10
    """
    config = PersistenceConfig.from_host_config(tomllib.loads(text))
    assert (config.enabled, config.max_entries) == (True, 10)


@pytest.mark.parametrize(
    ("key", "closest"),
    [("max_entrys", "max_entries"), ("ttl_sec", "ttl_secs"), ("enable", "enabled")],
)
def test_an_unknown_key_warns_naming_the_closest_known_one_and_the_node_starts(
    key: str, closest: str, caplog: pytest.LogCaptureFixture
) -> None:
    """TheNodes ignores keys it does not know: a key a newer TheNodes adds stops no node."""
    with caplog.at_level(logging.WARNING):
        config = PersistenceConfig.from_mapping({"enabled": True, "max_entries": 10, key: 1})
    assert (config.enabled, config.max_entries) == (True, 10)
    assert f"[network.persistence]: ignoring unknown key {key!r}" in caplog.text
    assert repr(closest) in caplog.text


def test_a_bad_value_of_a_known_key_still_stops_the_node_beside_an_unknown_key() -> None:
    with pytest.raises(ConfigError, match=r"max_entries = -1"):
        PersistenceConfig.from_mapping({"max_entries": -1, "future_key": 1})


def test_a_cap_above_what_the_loader_reads_whole_is_refused_naming_the_limit() -> None:
    with pytest.raises(ConfigError, match=rf"max_entries = 200000: at most {MAX_ENTRIES_LIMIT}"):
        PersistenceConfig.from_mapping({"max_entries": 200_000})
    assert PersistenceConfig.from_mapping({"max_entries": MAX_ENTRIES_LIMIT})
    # Every entry of the largest store, at its most, fits what the loader reads.
    assert MAX_ENTRIES_LIMIT <= codec.MAX_TABLES
    assert extras_budget(MAX_ENTRIES_LIMIT) > MAX_ENTRIES_LIMIT * 64


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("enabled", 1),
        ("enabled", "yes"),
        ("enabled", "true"),
        ("max_entries", True),
        ("max_entries", "1024"),
        ("max_entries", 10.0),
        ("max_entries", 0),
        ("max_entries", -5),
        ("ttl_secs", False),
        ("ttl_secs", "604800"),
        ("ttl_secs", 0),
        ("ttl_secs", -1),
        ("save_interval_secs", True),
        ("save_interval_secs", "60"),
        ("save_interval_secs", -1),
        ("reconnect_limit", True),
        ("reconnect_limit", "5"),
        ("reconnect_limit", -1),
        ("reconnect_limit", [5]),
        ("path", 5),
        ("path", ""),
        ("path", "   "),
        ("path", "peers/{node}.toml"),
        ("path", "{state_dir}/{realm}.toml"),
        ("path", "peers/{realm.toml"),
        ("path", "peers/{}.toml"),
        ("path", "peers/\x00.toml"),
    ],
)
def test_a_bad_value_is_an_error_naming_the_key_and_the_value(key: str, value: object) -> None:
    with pytest.raises(ConfigError) as caught:
        PersistenceConfig.from_host_config({"network": {"persistence": {key: value}}})
    message = str(caught.value)
    assert key in message
    assert repr(value) in message


def test_a_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        PersistenceConfig.from_mapping({"max_entries": 0})


@pytest.mark.parametrize(
    "host_config",
    [{"network": 5}, {"network": "persistence"}, {"network": {"persistence": [1, 2]}}],
)
def test_sections_that_are_not_tables_are_errors(host_config: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="expected a table"):
        PersistenceConfig.from_host_config(host_config)
