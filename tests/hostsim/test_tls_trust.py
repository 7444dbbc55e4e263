"""The trust policy's decisions, mode by mode, as TheNodes 0.4.0 makes them; and what a node
writes to ``observed_dir`` and reads from ``trusted_cert_dir``, in TheNodes' own layout."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from hostsim.live.certs import make_certificate, pem, spki_fingerprint
from hostsim.live.tls import TlsEndpoint, trusted_fingerprints
from hostsim.live.tlsconfig import TlsSettings
from hostsim.live.trust import UNREADABLE, Decision, PeerFacts, TrustPolicy, decide

NOW = 1_800_000_000.0
FP = "a" * 64
OTHER = "b" * 64
PEER = PeerFacts(FP, "CN=peer-1, O=Example", NOW - 10, NOW + 10)
OBSERVED = Path("/observed")


def judge(policy: TrustPolicy, peer: PeerFacts = PEER, **known: object) -> Decision:
    return decide(policy, peer, realm="Example", now=NOW, **known)  # type: ignore[arg-type]


def test_open_keeps_every_peer_and_stores_nothing_unless_asked() -> None:
    assert judge(TrustPolicy()) == Decision(True, "open-policy")
    stored = judge(TrustPolicy(store_new=True, observed_dir=OBSERVED))
    assert stored == Decision(True, "open-policy", store_certificate=True, bind="overwrite")


def test_allowlist_keeps_only_certificates_in_the_trusted_folder() -> None:
    policy = TrustPolicy(mode="allowlist", trusted_dir=Path("/trusted"))
    assert judge(policy, trusted=frozenset({FP})) == Decision(True, "present-in-allowlist")
    assert judge(policy, trusted=frozenset({OTHER})) == Decision(False, "not-in-allowlist")
    assert judge(policy, trusted=UNREADABLE).reason == "trusted-dir-unreadable"
    assert judge(TrustPolicy(mode="allowlist")).reason == "no-trusted-dir"
    watched = TrustPolicy(mode="allowlist", store_new=True, observed_dir=OBSERVED)
    refused = judge(watched, trusted=frozenset())
    assert (refused.accept, refused.store_certificate) == (False, True)  # kept for review


def test_tofu_keeps_the_first_certificate_of_a_subject_and_then_only_that_one() -> None:
    policy = TrustPolicy(mode="tofu", observed_dir=OBSERVED)
    assert judge(policy) == Decision(True, "new-tofu", bind="create")
    assert judge(policy, remembered=FP) == Decision(True, "seen-before")
    assert judge(policy, remembered=OTHER) == Decision(False, "tofu-mismatch")
    assert judge(policy, remembered=UNREADABLE).reason == "tofu-storage-unreadable"
    # A certificate already in the trusted folder is known, and binds nothing.
    assert judge(policy, trusted=frozenset({FP})) == Decision(True, "seen-before")
    # Without a folder to remember in, TOFU cannot work: refused, as in TheNodes 0.4.0.
    assert judge(TrustPolicy(mode="tofu")) == Decision(False, "tofu-storage-unavailable")


def test_observe_records_and_keeps_no_peer() -> None:
    decision = judge(TrustPolicy(mode="observe", observed_dir=OBSERVED))
    assert decision == Decision(False, "observe-only", store_certificate=True, bind="overwrite")


@pytest.mark.parametrize("mode", ["open", "allowlist", "tofu", "observe", "hybrid"])
def test_pins_and_the_realm_binding_come_before_every_mode(mode: str) -> None:
    base = {"mode": mode, "observed_dir": OBSERVED, "trusted_dir": Path("/t")}
    known = {"trusted": frozenset({FP})}
    pinned = TrustPolicy(**base, pin_fingerprints=(OTHER,))  # type: ignore[arg-type]
    assert judge(pinned, **known) == Decision(False, "fp-pin-mismatch")
    subject = TrustPolicy(**base, pin_subjects=("CN=peer-2, O=Example",))  # type: ignore[arg-type]
    assert judge(subject, **known) == Decision(False, "subject-pin-mismatch")
    realm = TrustPolicy(**base, realm_subject_binding=True)  # type: ignore[arg-type]
    other_realm = PeerFacts(FP, "CN=peer-1, O=Elsewhere", NOW - 10, NOW + 10)
    assert judge(realm, other_realm, **known) == Decision(False, "realm-subject-mismatch")


def test_a_matching_pin_lets_the_mode_decide() -> None:
    pins = TrustPolicy(pin_fingerprints=(OTHER, FP))
    assert judge(pins).accept
    assert judge(TrustPolicy(pin_subjects=("~peer-1",))).accept  # "~": a part of the subject
    assert judge(TrustPolicy(pin_subjects=("CN=peer-1, O=Example",))).accept  # or all of it
    assert not judge(TrustPolicy(pin_subjects=("CN=peer-1",))).accept  # not a prefix
    assert judge(TrustPolicy(realm_subject_binding=True)).accept  # "O=Example"


def test_the_validity_period_is_checked_only_when_asked() -> None:
    old = PeerFacts(FP, PEER.subject, NOW - 20, NOW - 10)
    young = PeerFacts(FP, PEER.subject, NOW + 10, NOW + 20)
    assert judge(TrustPolicy(), old).accept
    assert judge(TrustPolicy(reject_expired=True), old).reason == "time-invalid: expired"
    assert judge(TrustPolicy(reject_before_valid=True), young).reason.startswith("time-invalid")
    assert judge(TrustPolicy(reject_expired=True, reject_before_valid=True)).accept


def endpoint(tmp_path: Path, policy: TrustPolicy) -> TlsEndpoint:
    settings = TlsSettings(tmp_path / "own.pem", tmp_path / "own.key", policy=policy)
    return TlsEndpoint.open(settings, node_id="me", realm="Example", ips=["127.0.0.1"])


def test_tofu_remembers_a_subject_in_thenodes_layout_and_refuses_a_new_key_for_it(
    tmp_path: Path,
) -> None:
    observed = tmp_path / "observed"
    node = endpoint(tmp_path, TrustPolicy(mode="tofu", store_new=True, observed_dir=observed))
    first, _ = make_certificate("peer-1", realm="Example")
    same_name, _ = make_certificate("peer-1", realm="Example")  # another key, same subject
    other, _ = make_certificate("peer-2", realm="Example")

    assert node.judge(first) == Decision(True, "new-tofu", store_certificate=True, bind="create")
    assert node.judge(first).reason == "seen-before"
    assert node.judge(same_name).reason == "tofu-mismatch"
    assert node.judge(other).reason == "new-tofu"

    subject = "CN=peer-1, O=Example"
    binding = observed / "bindings" / f"{hashlib.sha256(subject.encode()).hexdigest()}.txt"
    fingerprint = spki_fingerprint(first)
    assert binding.read_text() == f"fingerprint={fingerprint}\nidentity={subject}\n"
    assert (observed / f"{fingerprint}.pem").read_bytes() == pem(first)
    assert not (observed / f"{spki_fingerprint(same_name)}.pem").exists()


def test_allowlist_reads_the_pem_files_of_the_trusted_folder_as_thenodes_does(
    tmp_path: Path,
) -> None:
    trusted = tmp_path / "trusted"
    trusted.mkdir()
    known, _ = make_certificate("peer-1")
    also, _ = make_certificate("peer-2")
    unknown, _ = make_certificate("peer-3")
    (trusted / "peer-1.PEM").write_bytes(pem(known))  # any case of the extension
    (trusted / "bundle.pem").write_bytes(b"junk\n" + pem(also))
    (trusted / "peer-3.crt").write_bytes(pem(unknown))  # not a .pem file: not read
    (trusted / "broken.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\nnope\n")

    assert trusted_fingerprints(trusted) == {spki_fingerprint(known), spki_fingerprint(also)}
    assert trusted_fingerprints(tmp_path / "missing") == frozenset()  # none, not an error
    node = endpoint(tmp_path, TrustPolicy(mode="allowlist", trusted_dir=trusted))
    assert node.judge(known).accept
    assert node.judge(also).accept
    assert node.judge(unknown) == Decision(False, "not-in-allowlist")
