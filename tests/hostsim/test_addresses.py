"""Seed addresses: IP literals and host names, and resolving names when the node dials."""

from __future__ import annotations

import logging

import pytest

from hostsim.addresses import NameTable, canonical_seed, resolve_seeds, system_resolver


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("203.0.113.1:50000", "203.0.113.1:50000"),
        ("[2001:DB8::1]:7", "[2001:db8::1]:7"),
        ("[::ffff:192.0.2.1]:7", "192.0.2.1:7"),
        ("Seed-1.Example.ORG:50000", "seed-1.example.org:50000"),
        ("seed.example.org.:1", "seed.example.org:1"),
        ("localhost:50000", "localhost:50000"),
    ],
)
def test_a_seed_is_an_ip_literal_or_a_host_name(text: str, canonical: str) -> None:
    assert canonical_seed(text) == canonical


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("seed.example.org", "missing port"),
        ("seed.example.org:0", "port '0' is not a number in 1..65535"),
        ("-seed.example.org:1", "neither an IP address nor a host name"),
        ("seed..example.org:1", "neither an IP address nor a host name"),
        ("se ed:1", "neither an IP address nor a host name"),
        (("a" * 64) + ".org:1", "neither an IP address nor a host name"),
        ("[seed.example.org]:1", "is not an IPv6 address"),
        ("[192.0.2.1]:1", "must not be bracketed"),
    ],
)
def test_a_seed_that_is_neither_is_refused_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        canonical_seed(text)


def test_names_resolve_through_the_table_and_literals_pass_as_they_are() -> None:
    table = NameTable({"seed.example.org": ("203.0.113.7", "2001:db8::7", "203.0.113.7")})
    seeds = ["seed.example.org:50000", "192.0.2.1:50000", "[2001:db8::7]:50000"]

    assert resolve_seeds(seeds, table) == [
        "203.0.113.7:50000",
        "[2001:db8::7]:50000",
        "192.0.2.1:50000",
    ]


def test_a_name_that_does_not_resolve_or_resolves_to_garbage_is_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    table = NameTable({"odd.example.org": ("not-an-ip",)})
    with caplog.at_level(logging.WARNING, logger="hostsim.addresses"):
        seeds = resolve_seeds(["gone.example.org:1", "odd.example.org:1", "192.0.2.1:1"], table)

    assert seeds == ["192.0.2.1:1"]
    assert "gone.example.org:1 does not resolve" in caplog.text
    assert "odd.example.org:1 resolved to 'not-an-ip'" in caplog.text


def test_the_system_resolver_answers_for_an_ip_literal_without_the_network() -> None:
    assert system_resolver("127.0.0.1", 50000) == ["127.0.0.1"]
