"""Whether to keep a TLS connection, from the peer's certificate: TheNodes 0.4.0's trust policy.

The policy (``[encryption.trust_policy]``, read by :mod:`hostsim.live.tlsconfig`) is applied
after the handshake, to the certificate the peer proved it holds the key of. It is applied to
every connection this node dials, and to the connections it accepts when ``mtls = true`` (a
listener without mTLS asks for no certificate), as TheNodes applies it. The checks run in
TheNodes 0.4.0's order, and the first that fails decides:

1. ``reject_before_valid`` / ``reject_expired``: the certificate's validity period;
2. ``pin_subjects``: the subject (:func:`~hostsim.live.certs.subject_text`) equals one of them,
   or contains one written ``"~part"``;
3. ``realm_subject_binding``: the subject contains the realm's name;
4. ``pin_fingerprints``: the certificate's SPKI SHA-256 is one of them;
5. the mode: ``open`` (and ``hybrid``) keeps every peer; ``allowlist`` keeps a peer whose
   certificate is in ``trusted_cert_dir``; ``tofu`` keeps the first certificate seen for each
   subject and then only that one (remembered in ``observed_dir``, as TheNodes 0.4.0
   remembers it, so both can share the folder); ``observe`` records and keeps none.

``store_new_certs = "observed"`` writes each new certificate to ``observed_dir`` as
``<fingerprint>.pem`` (``observe`` always does). TheNodes 0.2.0's TOFU keeps every peer
(nothing is remembered); hostsim follows 0.4.0, the stricter.

This module decides only (:func:`decide`); :mod:`hostsim.live.tls` reads the folders and
writes what the decision asks for.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Final, Literal, TypeAlias

import attrs

__all__ = [
    "MODES",
    "STORE_NEW",
    "Decision",
    "PeerFacts",
    "TrustPolicy",
    "Unreadable",
    "decide",
]

Mode: TypeAlias = Literal["open", "allowlist", "tofu", "observe", "hybrid"]
MODES: Final[dict[str, Mode]] = {
    "open": "open",
    "allowlist": "allowlist",
    "tofu": "tofu",
    "observe": "observe",
    "record": "observe",
    "quarantine": "observe",
    "hybrid": "hybrid",
}
"""``mode`` values TheNodes knows (in any case), and the mode each means."""
STORE_NEW: Final = ("none", "observed")


@attrs.frozen
class TrustPolicy:
    """``[encryption.trust_policy]`` and the folders it uses, checked."""

    mode: Mode = "open"
    store_new: bool = False
    """``store_new_certs = "observed"``."""
    observed_dir: Path | None = None
    trusted_dir: Path | None = None
    """``[encryption.paths] trusted_cert_dir``."""
    pin_fingerprints: tuple[str, ...] = ()
    """Hex lowercase SPKI SHA-256 fingerprints."""
    pin_subjects: tuple[str, ...] = ()
    realm_subject_binding: bool = False
    reject_expired: bool = False
    reject_before_valid: bool = False


@attrs.frozen
class PeerFacts:
    """What the policy reads of a peer's certificate."""

    fingerprint: str
    subject: str
    not_before: float
    """Unix time."""
    not_after: float


class Unreadable:
    """A folder or file the policy needed could not be read."""

    def __repr__(self) -> str:
        return "UNREADABLE"


UNREADABLE: Final = Unreadable()


@attrs.frozen
class Decision:
    """Keep the connection or not, why (TheNodes' reason words), and what to write."""

    accept: bool
    reason: str
    store_certificate: bool = False
    """Write the certificate to ``observed_dir`` as ``<fingerprint>.pem`` (kept if there)."""
    bind: Literal["create", "overwrite"] | None = None
    """Remember this subject's fingerprint in ``observed_dir``: ``create`` only if none is
    remembered (TOFU's first sight), ``overwrite`` whatever is."""


def decide(
    policy: TrustPolicy,
    peer: PeerFacts,
    *,
    realm: str,
    now: float,
    trusted: AbstractSet[str] | Unreadable | None = None,
    remembered: str | Unreadable | None = None,
) -> Decision:
    """Apply ``policy`` to ``peer``'s certificate.

    :param realm: The node's realm name (``realm_subject_binding``).
    :param now: Unix time (the validity checks).
    :param trusted: The fingerprints of the certificates in ``trusted_cert_dir`` (None: no
        such folder is configured).
    :param remembered: The fingerprint remembered for the peer's subject in ``observed_dir``
        (TOFU), or None.
    """
    if policy.reject_before_valid and now < peer.not_before:
        return Decision(False, "time-invalid: not yet valid")
    if policy.reject_expired and now > peer.not_after:
        return Decision(False, "time-invalid: expired")
    if policy.pin_subjects and not any(
        peer.subject.find(pin[1:]) >= 0 if pin.startswith("~") else peer.subject == pin
        for pin in policy.pin_subjects
    ):
        return Decision(False, "subject-pin-mismatch")
    if policy.realm_subject_binding and realm not in peer.subject:
        return Decision(False, "realm-subject-mismatch")
    if policy.pin_fingerprints and peer.fingerprint not in policy.pin_fingerprints:
        return Decision(False, "fp-pin-mismatch")
    known = isinstance(trusted, AbstractSet) and peer.fingerprint in trusted
    recorded = policy.observed_dir is not None
    if policy.mode in ("open", "hybrid"):
        reason = "open-policy" if policy.mode == "open" else "hybrid-placeholder-open"
        return Decision(
            True,
            reason,
            store_certificate=policy.store_new and recorded,
            bind="overwrite" if policy.store_new and recorded else None,
        )
    if policy.mode == "allowlist":
        if known:
            return Decision(True, "present-in-allowlist")
        reason = "not-in-allowlist"
        if trusted is None:
            reason = "no-trusted-dir"
        elif isinstance(trusted, Unreadable):
            reason = "trusted-dir-unreadable"
        return Decision(
            False,
            reason,
            store_certificate=policy.store_new and recorded,
            bind="overwrite" if policy.store_new and recorded else None,
        )
    if policy.mode == "observe":
        bind: Literal["overwrite"] | None = "overwrite" if recorded else None
        return Decision(False, "observe-only", store_certificate=recorded, bind=bind)
    # TOFU: the first certificate seen for a subject, and then only that one.
    if not recorded:
        return Decision(False, "tofu-storage-unavailable")
    if isinstance(remembered, Unreadable):
        return Decision(False, "tofu-storage-unreadable")
    if remembered is not None:
        if remembered == peer.fingerprint:
            return Decision(True, "seen-before")
        return Decision(False, "tofu-mismatch")
    if known:
        return Decision(True, "seen-before")
    return Decision(True, "new-tofu", store_certificate=policy.store_new, bind="create")
