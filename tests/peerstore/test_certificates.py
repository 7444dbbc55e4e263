"""A proof names the certificate it was made with: the store remembers each proven peer's
certificate fingerprint, and a dial that meets another certificate (or none) at that address
has not reached the peer the node proved.

The store's rules first (a store on a clock the test moves), then the file (schema 3, written
only when an entry holds a certificate field; schema 2 still read and written), then the plugin
in a host on the virtual clock, restarting, with the operator's ``peerstore accept-cert``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

import pytest
import tomli_w
from hypothesis import given
from hypothesis import strategies as st

from hostsim.clock import VirtualClock
from hostsim.host import PluginHost
from tests.support.clocks import START, FakeClock
from tests.support.command import Node, Run, write_node
from tests.support.keys import write_key
from thenodes_peerstore import PersistentPeerStore, codec, sealing
from thenodes_peerstore.codec import _decode_any as decode_any
from thenodes_peerstore.convert import converter
from thenodes_peerstore.errors import CertificateError, NewerSchemaError
from thenodes_peerstore.model import NO_CERTIFICATE, PeerEntry, PlanHead, Source
from thenodes_peerstore.store import (
    CertVerdict,
    PeerStore,
    accept_certificate,
    check_certificate,
    plan_from_head,
)
from thenodes_peerstore.thenodes import thenodes_record

PEER = "45.76.12.34:7447"
OTHER = "91.121.5.6:7447"
OLD = "66fd9a7975c6a1eb2ea3c0c529f5b8e0781add952a7abea1ba29fe4a77f0b076"
NEW = "0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c"
THIRD = "f" * 64


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> PeerStore:
    return PeerStore(clock=clock, reconnect_limit=5)


def proven(store: PeerStore, clock: FakeClock, addr: str, fingerprint: str | None) -> None:
    """A dial of ``addr`` that completes its handshake, the peer presenting ``fingerprint``,
    then the connection ends a minute later."""
    store.record_connected(addr, node_id="node-b", cert_fingerprint=fingerprint)
    clock.advance(60)
    store.record_disconnected(addr)
    clock.advance(1)


def entry(store: PeerStore, addr: str = PEER) -> PeerEntry:
    found = store.get(addr)
    assert found is not None
    return found


# -- the store's rules ---------------------------------------------------------------------------


def test_a_proof_remembers_the_certificate_the_peer_presented(
    store: PeerStore, clock: FakeClock
) -> None:
    proven(store, clock, PEER, OLD)
    assert (entry(store).cert_fingerprint, entry(store).cert_changed_to) == (OLD, None)
    assert entry(store).proven
    assert store.reconnect_plan() == [PEER]


def test_a_dial_that_meets_another_certificate_proves_nothing_and_leaves_the_plan(
    store: PeerStore, clock: FakeClock
) -> None:
    proven(store, clock, PEER, OLD)
    before = entry(store)

    store.record_connected(PEER, node_id="impostor", capabilities=["relay"], cert_fingerprint=NEW)

    after = entry(store)
    assert not after.proven
    assert after.source is Source.CONNECTED  # its tier: only a proven newcomer can evict it
    assert (after.cert_fingerprint, after.cert_changed_to) == (OLD, NEW)
    # Nothing of the entry is taken from whoever answered, but that someone did.
    assert after.node_id == before.node_id == "node-b"
    assert after.capabilities == ()
    assert (after.first_seen, after.last_connected, after.last_attempt) == (
        before.first_seen,
        before.last_connected,
        before.last_attempt,
    )
    assert after.last_seen == int(clock())
    store.record_disconnected(PEER)
    assert store.reconnect_plan() == []
    assert PEER not in store.anchors(store)


def test_a_later_dial_meeting_the_new_certificate_again_still_proves_nothing(
    store: PeerStore, clock: FakeClock
) -> None:
    """Trust on first use, by address: the certificate the peer was proven with stands until
    the operator accepts another, else whoever answers there would inherit the proof."""
    proven(store, clock, PEER, OLD)
    for _ in range(3):
        proven(store, clock, PEER, NEW)
    assert not entry(store).proven
    assert entry(store).cert_fingerprint == OLD
    assert store.reconnect_plan() == []


def test_the_certificate_it_was_proven_with_answering_again_restores_its_proof_and_standing(
    store: PeerStore, clock: FakeClock
) -> None:
    proven(store, clock, PEER, OLD)
    first_seen = entry(store).first_seen
    proven(store, clock, OTHER, None)  # proven after it: ranks after it while both answer
    proven(store, clock, PEER, NEW)
    assert store.reconnect_plan() == [OTHER]

    proven(store, clock, PEER, OLD)

    again = entry(store)
    assert again.proven
    assert (again.cert_fingerprint, again.cert_changed_to) == (OLD, None)
    assert again.first_seen == first_seen
    assert store.reconnect_plan() == [PEER, OTHER]


def test_a_peer_proven_with_a_certificate_that_answers_in_plaintext_is_not_the_peer_proven(
    store: PeerStore, clock: FakeClock
) -> None:
    proven(store, clock, PEER, OLD)
    proven(store, clock, PEER, None)
    assert (entry(store).cert_fingerprint, entry(store).cert_changed_to) == (OLD, NO_CERTIFICATE)
    assert not entry(store).proven


def test_a_peer_proven_on_plaintext_remembers_the_first_certificate_it_presents(
    store: PeerStore, clock: FakeClock
) -> None:
    proven(store, clock, PEER, None)
    first_seen = entry(store).first_seen
    assert entry(store).cert_fingerprint is None

    proven(store, clock, PEER, OLD)

    assert entry(store).proven
    assert entry(store).cert_fingerprint == OLD
    assert entry(store).first_seen == first_seen  # the same proof, now with its certificate
    proven(store, clock, PEER, NEW)
    assert not entry(store).proven


def test_plaintext_proofs_hold_no_certificate_field(store: PeerStore, clock: FakeClock) -> None:
    for _ in range(2):
        proven(store, clock, PEER, None)
    assert entry(store) == PeerEntry(
        addr=PEER,
        source=Source.CONNECTED,
        first_seen=START,
        last_seen=START + 121,
        last_connected=START + 61,
        last_attempt=START + 61,
        node_id="node-b",
    )


def test_an_inbound_connection_judges_no_certificate(store: PeerStore, clock: FakeClock) -> None:
    """Anyone can connect in, as often as it likes: it can neither take a proof away nor make
    one."""
    proven(store, clock, PEER, OLD)
    store.record_connected(
        "45.76.12.34:50123", listen_addr=PEER, direction="inbound", cert_fingerprint=NEW
    )
    assert entry(store).proven
    assert (entry(store).cert_fingerprint, entry(store).cert_changed_to) == (OLD, None)


def test_a_fingerprint_is_taken_in_either_case_and_anything_else_records_nothing(
    store: PeerStore,
) -> None:
    store.record_connected(PEER, cert_fingerprint=OLD.upper())
    assert entry(store).cert_fingerprint == OLD
    for bad in ("", "zz" * 32, OLD[:-1], NO_CERTIFICATE, f"{OLD} "):
        with pytest.raises(CertificateError, match=f"{OTHER}: certificate fingerprint"):
            store.record_connected(OTHER, cert_fingerprint=bad)
    assert OTHER not in store


def test_each_verdict_and_when_it_is_news() -> None:
    fresh = PeerEntry.new(PEER, Source.CONNECTED, START)
    held = fresh.replace(cert_fingerprint=OLD)
    changed = held.replace(cert_changed_to=NEW)
    cases = [
        (None, None, CertVerdict.NONE, False),
        (None, OLD, CertVerdict.FIRST, False),
        (fresh, OLD, CertVerdict.FIRST, False),
        (held, OLD, CertVerdict.SAME, False),
        (held, NEW, CertVerdict.CHANGED, True),
        (held, None, CertVerdict.CHANGED, True),
        (changed, NEW, CertVerdict.CHANGED, False),  # said once already
        (changed, THIRD, CertVerdict.CHANGED, True),  # another one again
        (changed, OLD, CertVerdict.RESTORED, False),
    ]
    for known, fingerprint, verdict, news in cases:
        check = check_certificate(PEER, known, fingerprint)
        assert (check.verdict, check.news) == (verdict, news), (known, fingerprint)


def test_a_suspended_peer_stays_in_its_tier_where_gossip_cannot_evict_it(clock: FakeClock) -> None:
    store = PeerStore(clock=clock, max_entries=2)
    proven(store, clock, PEER, OLD)
    proven(store, clock, OTHER, OLD)
    proven(store, clock, PEER, NEW)
    report = store.record_gossip(["5.9.20.30:7447"])
    assert report.added == 0
    assert entry(store).cert_changed_to == NEW


def test_accepting_the_certificate_met_restores_the_proof_as_it_stood(
    store: PeerStore, clock: FakeClock
) -> None:
    proven(store, clock, PEER, OLD)
    proven(store, clock, PEER, NEW)
    suspended = entry(store)

    accepted = accept_certificate(suspended, NEW.upper())

    assert accepted == suspended.replace(cert_fingerprint=NEW, cert_changed_to=None)
    assert accepted.proven
    store.load([accepted])
    assert store.reconnect_plan() == [PEER]
    proven(store, clock, PEER, NEW)
    assert entry(store).proven
    proven(store, clock, PEER, OLD)  # the old certificate is another one now
    assert not entry(store).proven


def test_accepting_a_plaintext_answer_forgets_the_fingerprint(
    store: PeerStore, clock: FakeClock
) -> None:
    proven(store, clock, PEER, OLD)
    proven(store, clock, PEER, None)
    accepted = accept_certificate(entry(store), NO_CERTIFICATE)
    assert (accepted.cert_fingerprint, accepted.cert_changed_to, accepted.proven) == (
        None,
        None,
        True,
    )


def test_accepting_refuses_with_nothing_met_or_another_certificate_named(
    store: PeerStore, clock: FakeClock
) -> None:
    proven(store, clock, PEER, OLD)
    with pytest.raises(CertificateError, match=f"{PEER}: no dial of it met another .* {OLD}"):
        accept_certificate(entry(store))
    proven(store, clock, PEER, NEW)
    with pytest.raises(CertificateError, match=f"met last is {NEW}, not {THIRD}; nothing"):
        accept_certificate(entry(store), THIRD)
    plain = PeerEntry.new(OTHER, Source.CONNECTED, START)
    with pytest.raises(CertificateError, match="it has no certificate remembered"):
        accept_certificate(plain)


def test_thenodes_records_carry_no_certificate_and_a_suspended_peer_is_not_a_handshake(
    store: PeerStore, clock: FakeClock
) -> None:
    """TheNodes' record (0.2.0 and 0.4.0: six fields) has no place for a fingerprint, and
    TheNodes drops what its record does not name at its next save: export adds nothing."""
    proven(store, clock, PEER, OLD)
    assert set(thenodes_record(entry(store))) == {
        "addr",
        "source",
        "failures",
        "last_success_epoch",
        "node_id",
    }
    assert thenodes_record(entry(store))["source"] == "Handshake"
    proven(store, clock, PEER, NEW)
    assert thenodes_record(entry(store))["source"] == "Gossip"


# -- the file ------------------------------------------------------------------------------------


def held(addr: str, changed: str | None = None) -> PeerEntry:
    return PeerEntry(
        addr=addr,
        source=Source.CONNECTED,
        first_seen=START - 100,
        last_seen=START,
        last_connected=START,
        last_attempt=START,
        node_id="node-b",
        cert_fingerprint=OLD,
        cert_changed_to=changed,
    )


def test_a_file_is_schema_3_only_when_an_entry_holds_a_certificate_field() -> None:
    plain = [held(OTHER).replace(cert_fingerprint=None)]
    assert codec.encode("example", START, plain).startswith(b"schema = 2\n")
    for entries in ([held(PEER)], [*plain, held(PEER, NEW)]):
        data = codec.encode("example", START, entries)
        assert data.startswith(b"schema = 3\n")
        decoded = codec.decode(data, realm="example")
        assert decoded.intact
        assert decoded.schema == 3
        assert decoded.entries == tuple(entries)
    assert b'\ncert_fingerprint = "' + OLD.encode() + b'"\ncert_changed_to = "' in data


def test_a_schema_2_file_reads_as_entries_without_certificates_and_migrates_at_a_proof(
    tmp_path: Path, clock: FakeClock
) -> None:
    path = tmp_path / "example.toml"
    path.write_bytes(codec.encode("example", START, [held(PEER).replace(cert_fingerprint=None)]))
    with PersistentPeerStore.open(path=path, realm="example", clock=clock) as book:
        assert book.store.reconnect_plan() == [PEER]
        clock.advance(10)
        book.store.record_connected(PEER, cert_fingerprint=OLD)
    decoded = codec.decode(path.read_bytes(), realm="example")
    assert decoded.schema == 3
    assert decoded.entries[0].cert_fingerprint == OLD


def test_a_file_of_the_next_schema_is_still_a_newer_one() -> None:
    data = codec.encode("example", START, [held(PEER)]).replace(b"schema = 3", b"schema = 4", 1)
    with pytest.raises(NewerSchemaError):
        codec.decode(data, realm="example")


fingerprints = st.sampled_from([None, OLD, NEW])
with_certificates = st.builds(
    PeerEntry,
    addr=st.sampled_from([PEER, OTHER, "[2001:db8::10]:7447", "5.9.20.30:7447"]),
    source=st.sampled_from(Source),
    first_seen=st.integers(0, START),
    last_seen=st.integers(0, START),
    node_id=st.sampled_from([None, "node-b"]),
    cert_fingerprint=fingerprints,
    cert_changed_to=fingerprints | st.just(NO_CERTIFICATE),
)


@given(entries=st.lists(with_certificates, max_size=8), cut=st.integers(0, 8))
def test_the_one_pass_reader_reads_certificate_fields_as_the_reader_of_any_file(
    entries: list[PeerEntry], cut: int
) -> None:
    connected = [e for e in entries if e.source is Source.CONNECTED]
    proven = [e for e in connected if e.proven]
    head = PlanHead.of(proven[:cut], proven[cut:], len(connected) - len(proven))
    data = codec.encode("example", START, entries, head=head)
    decoded = codec.decode(data, realm="example")
    assert decoded == decode_any(data, realm="example")
    assert decoded.intact
    first = set(map(id, head.entries))
    assert decoded.entries == (*head.entries, *(e for e in entries if id(e) not in first))
    opening = codec.read_head(data, realm="example")
    assert opening is not None
    assert opening.head == head
    assert head.describes(decoded.entries)


@given(entries=st.lists(with_certificates, max_size=8))
def test_each_entry_with_certificates_is_written_exactly_as_tomli_w_writes_its_table(
    entries: list[PeerEntry],
) -> None:
    schema = 3 if any(e.cert_fingerprint or e.cert_changed_to for e in entries) else 2
    header = tomli_w.dumps({"schema": schema, "realm": "example", "saved_at": START})
    tables = "".join(f"\n[[peers]]\n{tomli_w.dumps(converter.unstructure(e))}" for e in entries)
    body = (header + tables).encode() + b"\n"
    digest = hashlib.sha256(body).hexdigest()
    trailer = tomli_w.dumps({"integrity": {"entries": len(entries), "sha256": digest}})
    assert codec.encode("example", START, entries) == body + trailer.encode()


def test_a_head_counts_the_suspended_peers_against_the_cap(clock: FakeClock) -> None:
    """A suspended entry shares the proven peers' tier: a start whose cap the proven and the
    suspended exceed together could lose a proven peer to it, so only the whole file tells."""
    store = PeerStore(clock=clock, reconnect_limit=1)
    proven(store, clock, PEER, OLD)
    proven(store, clock, OTHER, OLD)
    proven(store, clock, OTHER, NEW)
    head = store.plan_head()
    assert (head.proven, head.suspended) == (1, 1)
    assert b"\n# suspended = 1\n" in codec.encode("example", START, store.by_tier(), head=head)
    roomy = PeerStore(clock=clock, reconnect_limit=1, max_entries=2)
    assert plan_from_head(roomy, head) == [PEER]
    tight = PeerStore(clock=clock, reconnect_limit=1, max_entries=1)
    assert plan_from_head(tight, head) is None


def test_an_encrypted_file_names_its_own_schema_in_its_envelope(tmp_path: Path) -> None:
    key = sealing.read_key_file(write_key(tmp_path / "k.key"))
    for entries, schema in (([held(PEER).replace(cert_fingerprint=None)], 2), ([held(PEER)], 3)):
        plain = codec.encode("example", START, entries)
        envelope, _, _ = sealing.parse(sealing.seal(plain, key, realm="example", version="1.0"))
        assert envelope.schema == schema


def test_an_entry_at_its_longest_fits_what_the_size_budget_reserves() -> None:
    longest = PeerEntry(
        addr="[2001:db8:ffff:ffff:ffff:ffff:ffff:ffff]:65535",
        source=Source.CONNECTED,
        first_seen=2**63 - 1,
        last_seen=2**63 - 1,
        last_connected=2**63 - 1,
        last_attempt=2**63 - 1,
        failures=2**63 - 1,
        cert_fingerprint=OLD,
        cert_changed_to=NEW,
    )
    assert len(codec.ENTRY.write(longest).encode()) <= codec.MAX_BARE_ENTRY_BYTES


# -- the plugin in a host, restarting ------------------------------------------------------------


@pytest.fixture
def now_clock(monkeypatch: pytest.MonkeyPatch) -> VirtualClock:
    """The host's clock, which the ``peerstore`` command reads too."""
    clock = VirtualClock(START)
    monkeypatch.setattr(time, "time", clock.now)
    return clock


def start(node: Node, clock: VirtualClock) -> tuple[PluginHost, list[str]]:
    host = PluginHost.from_file(node.config, clock=clock)
    planned = [d.addr for d in host.start() if d.origin == "peerstore"]
    return host, planned


def session(node: Node, clock: VirtualClock, fingerprint: str | None) -> list[str]:
    """A run of the node: it starts, dials the peer (planned or as a seed), which presents
    ``fingerprint``, stays a minute, and stops; return what the start planned."""
    host, planned = start(node, clock)
    host.connect(PEER, node_id="node-b", cert_fingerprint=fingerprint)
    host.advance(60)
    host.shutdown()
    host.advance(60)
    return planned


def test_on_connect_a_restart_meeting_another_certificate_is_said_and_not_planned_until_accepted(
    tmp_path: Path, now_clock: VirtualClock, peerstore: Run, caplog: pytest.LogCaptureFixture
) -> None:
    node = write_node(tmp_path)
    assert session(node, now_clock, OLD) == []  # proven, and its certificate remembered
    with caplog.at_level(logging.INFO, logger="thenodes_peerstore"):
        assert session(node, now_clock, NEW) == [PEER]  # planned as proven: another answers
    [said] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert said.getMessage().startswith(
        f"peerstore: {PEER} presented certificate {NEW}, not the certificate it was proven "
        f"with, {OLD}: it is not the peer this node proved"
    )
    assert f"`peerstore accept-cert {PEER}`" in said.getMessage()

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="thenodes_peerstore"):
        host, planned = start(node, now_clock)
    assert planned == []  # not planned as proven, and the start says why
    [said] = [r.getMessage() for r in caplog.records]
    assert said.startswith(
        "peerstore: 1 stored peer not planned: a dial met another certificate than the one it "
        "was proven with (`peerstore list` shows which;"
    )
    host.shutdown()
    listed = peerstore("list", *node.args)
    assert f"{OLD[:16]} changed to {NEW[:16]}" in listed.out

    ran = peerstore("accept-cert", PEER, *node.args)
    assert ran.status == 0, ran.err
    assert ran.out.startswith(
        f"accepted for {PEER} certificate {NEW} in place of certificate {OLD}; proven again "
        "(proven: the next start dials it before the seeds)"
    )
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="thenodes_peerstore"):
        assert session(node, now_clock, NEW) == [PEER]
    assert not caplog.records


def test_on_connect_the_proven_certificate_answering_again_restores_the_plan(
    tmp_path: Path, now_clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    node = write_node(tmp_path)
    session(node, now_clock, OLD)
    session(node, now_clock, None)  # a plaintext answer: a downgrade
    with caplog.at_level(logging.INFO, logger="thenodes_peerstore"):
        assert session(node, now_clock, OLD) == []
    assert any(
        r.getMessage()
        == f"peerstore: {PEER} presented the certificate it was proven with again, {OLD} "
        "(after no certificate (plaintext)): proven again"
        for r in caplog.records
    )
    assert session(node, now_clock, OLD) == [PEER]


def test_on_connect_a_downgrade_to_plaintext_is_said_with_the_fingerprint_it_was_proven_with(
    tmp_path: Path, now_clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    node = write_node(tmp_path)
    session(node, now_clock, OLD)
    with caplog.at_level(logging.WARNING, logger="thenodes_peerstore"):
        session(node, now_clock, None)
        session(node, now_clock, None)  # said once: nothing new the second time
    [said] = [r for r in caplog.records if "presented" in r.getMessage()]
    assert f"{PEER} presented no certificate (plaintext), not the certificate it was proven " in (
        said.getMessage()
    )
    assert OLD in said.getMessage()


def test_on_connect_a_host_that_passes_no_fingerprint_attribute_still_proves_on_plaintext(
    tmp_path: Path, now_clock: VirtualClock
) -> None:
    node = write_node(tmp_path)
    host, _ = start(node, now_clock)
    plugin = host.plugin_manager.get_plugin("peerstore") if host.plugin_manager else None
    assert plugin is not None

    class OlderPeer:  # a peer as a host that predates cert_fingerprint passes it
        node_id, addr, listen_addr, direction, capabilities = "node-b", PEER, PEER, "outbound", ()

    plugin.on_connect(host=host.view, peer=OlderPeer())
    assert plugin.book.store.get(PEER).proven
    host.shutdown()


def test_on_connect_a_fingerprint_that_is_not_one_is_said_and_records_nothing(
    tmp_path: Path, now_clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    node = write_node(tmp_path)
    host, _ = start(node, now_clock)
    with caplog.at_level(logging.WARNING, logger="thenodes_peerstore"):
        host.connect(PEER, node_id="node-b", cert_fingerprint="sha256:not-hex")
    host.shutdown()
    assert any("certificate fingerprint 'sha256:not-hex'" in r.getMessage() for r in caplog.records)
    host, planned = start(node, now_clock)
    assert planned == []
    host.shutdown()


def test_on_connect_an_encrypted_file_keeps_the_certificates_too(
    tmp_path: Path, now_clock: VirtualClock
) -> None:
    key = write_key(tmp_path / "peers.key")
    node = write_node(tmp_path, f'encryption = "aes-256-gcm"\nkey_file = "{key}"\n')
    session(node, now_clock, OLD)
    session(node, now_clock, NEW)
    host, planned = start(node, now_clock)
    host.shutdown()
    assert planned == []
    assert node.peers.read_bytes().startswith(b"# thenodes-peerstore encrypted peer file\n")


# -- the command ---------------------------------------------------------------------------------


def changed_file(node: Node, met: str | None = NEW) -> None:
    """The node's file: PEER proven with OLD then answering with ``met``, OTHER on plaintext."""
    now = int(time.time())
    clock = FakeClock(now - 600)
    with PersistentPeerStore.open(path=node.peers, realm="example", clock=clock) as book:
        store = book.store
        proven(store, clock, PEER, OLD)
        proven(store, clock, OTHER, None)
        proven(store, clock, PEER, met)


def test_accept_cert_names_both_certificates_and_restores_the_proof(
    node: Node, peerstore: Run
) -> None:
    changed_file(node)
    ran = peerstore("accept-cert", PEER, "--fingerprint", NEW, *node.args)
    assert ran.status == 0, ran.err
    assert ran.out == (
        f"accepted for {PEER} certificate {NEW} in place of certificate {OLD}; proven again "
        "(proven: the next start dials it before the seeds)\n"
    )
    entries = {e.addr: e for e in codec.decode(node.peers.read_bytes(), realm="example").entries}
    assert (entries[PEER].cert_fingerprint, entries[PEER].cert_changed_to) == (NEW, None)
    assert entries[PEER].proven
    assert peerstore("accept-cert", PEER, *node.args).status == 1  # nothing left to accept


def test_accept_cert_of_a_plaintext_answer_forgets_the_fingerprint(
    node: Node, peerstore: Run
) -> None:
    changed_file(node, met=None)
    ran = peerstore("accept-cert", PEER, *node.args)
    assert ran.status == 0, ran.err
    assert ran.out.startswith(
        f"accepted for {PEER} no certificate (plaintext) in place of certificate {OLD}, which "
        "is forgotten; proven again"
    )
    entries = {e.addr: e for e in codec.decode(node.peers.read_bytes(), realm="example").entries}
    assert entries[PEER].cert_fingerprint is None


def test_accept_cert_refuses_what_it_cannot_accept_and_changes_nothing(
    node: Node, peerstore: Run
) -> None:
    changed_file(node)
    before = node.peers.read_bytes()

    other = peerstore("accept-cert", PEER, "--fingerprint", THIRD, *node.args)
    assert other.status == 2
    assert f"the certificate a dial of it met last is {NEW}, not {THIRD}" in other.err
    assert f"{node.peers} is unchanged" in other.err
    nothing = peerstore("accept-cert", OTHER, *node.args)
    assert nothing.status == 1
    assert "it has no certificate remembered; nothing to accept" in nothing.err
    absent = peerstore("accept-cert", "192.0.2.99:7447", *node.args)
    assert absent.status == 1
    assert f"192.0.2.99:7447 is not in peer file {node.peers}" in absent.err
    bad = peerstore("accept-cert", PEER, "--fingerprint", "abc", *node.args)
    assert bad.status == 2
    assert "bad fingerprint 'abc': a SPKI SHA-256 is 64 hex digits" in bad.err
    assert node.peers.read_bytes() == before


def test_list_show_and_stats_show_certificates_where_an_entry_holds_one(
    node: Node, peerstore: Run
) -> None:
    changed_file(node)
    header, *rows = peerstore("list", *node.args).out.splitlines()
    assert header.split()[-1] == "CERTIFICATE"
    cells = {row.split()[0]: row.split("node-b", 1)[1].strip() for row in rows}
    assert cells == {PEER: f"{OLD[:16]} changed to {NEW[:16]}", OTHER: "-"}
    listed = {p["addr"]: p for p in json.loads(peerstore("list", "--json", *node.args).out)}
    assert (listed[PEER]["cert_fingerprint"], listed[PEER]["cert_changed_to"]) == (OLD, NEW)
    assert listed[PEER]["proven"] is False
    assert "cert_fingerprint" not in listed[OTHER]  # a field of schema 3, where held

    shown = peerstore("show", PEER, *node.args).out
    assert f"cert_fingerprint:  {OLD}\n" in shown
    assert f"cert_changed_to:   {NEW}\n" in shown
    assert "proven:            no (a dial met another certificate: `peerstore accept-cert`" in shown
    assert "cert_" not in peerstore("show", OTHER, *node.args).out

    stats = peerstore("stats", *node.args).out
    assert "  proven           1\n  cert changed     1\n" in stats
    assert json.loads(peerstore("stats", "--json", *node.args).out)["cert_changed"] == 1


def test_importing_a_thenodes_record_keeps_the_certificate_the_file_remembers(
    node: Node, peerstore: Run, tmp_path: Path
) -> None:
    """TheNodes' record carries no fingerprint: what it cannot say, the file keeps."""
    changed_file(node)
    exported = tmp_path / "peers.json"
    exported.write_text(peerstore("export", "--format", "thenodes", *node.args).out)
    records = json.loads(exported.read_text())
    assert all("cert" not in key for record in records for key in record)
    for record in records:  # as TheNodes writes a peer it has just met again
        record.update(source="Handshake", last_success_epoch=int(time.time()))
    exported.write_text(json.dumps(records))

    assert peerstore("import", "--thenodes", exported, *node.args).status == 0

    entries = {e.addr: e for e in codec.decode(node.peers.read_bytes(), realm="example").entries}
    assert (entries[PEER].cert_fingerprint, entries[PEER].cert_changed_to) == (OLD, NEW)
    assert not entries[PEER].proven
