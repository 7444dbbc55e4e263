"""TheNodes' ``[encryption]`` table, read as TheNodes 0.2.0 and 0.4.0 read it, for a live node.

Whether a file encrypts (:func:`transport`): the two versions read the table differently.
0.2.0 lets an explicit ``backend`` win (``tls``/``noise`` encrypt even with ``enabled =
false``, as its own example config does) and uses TLS when ``enabled = true`` names none;
0.4.0 encrypts only with ``enabled = true`` (TLS unless the backend says otherwise). Backend
names are read in any case. hostsim speaks TLS when either version would, and says so when
0.4.0 would not (:attr:`TlsSettings.versions_differ`): a node of each version reading one file
cannot talk, and setting ``enabled = true`` makes both speak TLS.

Noise is refused (:func:`encryption_refusal`), with the reason: no maintained Python Noise
implementation interoperates with TheNodes' Noise. ``noiseprotocol`` (last release 2020) and
``dissononce`` (2019) are unmaintained, and TheNodes frames its Noise messages its own way (a
2-byte big-endian length before each handshake message, little-endian before each transport
message, a new static key per connection in 0.2.0); the builds tested have no Noise compiled
in (0.2.0 then falls back to plaintext, 0.4.0 closes the connection), so nothing could be
checked against them either.

With TLS on (:func:`tls_settings`), these keys count; every path is relative to the working
directory, as TheNodes reads it (its code opens the configured strings as they are; a node's
``state_dir`` has no part in them):

- ``mtls`` (default false): present this node's certificate when dialling, and require and
  judge one from every peer that dials in;
- ``[encryption.paths] own_certificate``, ``own_private_key`` (both needed; the node makes
  them at its first start when neither exists), ``trusted_cert_dir`` (the ``allowlist`` and
  ``tofu`` modes' known certificates: ``*.pem`` files);
- ``[encryption.trust_policy]``: ``mode``, ``store_new_certs``, ``pin_fingerprints``,
  ``pin_subjects``, ``pin_fp_algo`` (``sha256`` only), ``realm_subject_binding``,
  ``reject_expired``, ``reject_before_valid``, and ``[encryption.trust_policy.paths]
  observed_dir`` (see :mod:`hostsim.live.trust`).

Stricter than TheNodes, where its leniency would hide a mistake that weakens trust: an unknown
``mode`` or ``store_new_certs`` (TheNodes reads any unknown mode as ``open``), a pin that is
not 64 hex digits (it could never match), and ``enforce_ca_chain = true`` (hostsim checks no
CA chain; it would silently accept what TheNodes refuses) are errors naming the key.
``accept_self_signed`` has nothing to relax: hostsim, like TheNodes 0.4.0, accepts any
certificate whose key the peer proves it holds at the TLS layer and then applies the policy.
The CRL, rejected and issuer folders are not read (TheNodes reads no CRL or rejected folder
either).

This module imports nothing from the ``tls`` extra; :func:`require_tls_extra` says whether it
is installed.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal

import attrs

from hostsim.convert import show
from hostsim.errors import HostConfigError
from hostsim.live.trust import MODES, STORE_NEW, Decision, TrustPolicy

__all__ = [
    "ENCRYPTED_BACKENDS",
    "PLAINTEXT_BACKENDS",
    "TLS_EXTRA",
    "Refused",
    "TlsFailed",
    "TlsSettings",
    "encryption_refusal",
    "require_tls_extra",
    "tls_settings",
    "transport",
]

PLAINTEXT_BACKENDS: Final = frozenset({"none", "plaintext"})
"""The ``[encryption] backend`` values with which TheNodes speaks plaintext."""
ENCRYPTED_BACKENDS: Final = frozenset({"tls", "noise"})
TLS_EXTRA: Final = "tls"
"""The optional dependencies TLS needs: ``pip install 'thenodes-peerstore[tls]'``."""
_FINGERPRINT: Final = re.compile(r"[0-9a-f]{64}")
_NOISE_WHY: Final = (
    "hostsim speaks plaintext and TLS, not Noise: no maintained Python Noise implementation"
    " interoperates with TheNodes' Noise (see docs/tls.md)"
)
_FIX: Final = (
    'set backend = "tls" (with enabled = true) or backend = "none" in this file and in the'
    " TheNodes nodes it talks to"
)

Transport = Literal["plaintext", "tls", "noise"]


class TlsFailed(Exception):
    """A TLS handshake failed or timed out; the message says why, briefly."""


class Refused(Exception):
    """The trust policy refused a peer's certificate; the message is TheNodes' reason word."""

    def __init__(self, decision: Decision, fingerprint: str | None) -> None:
        super().__init__(decision.reason)
        self.decision = decision
        self.fingerprint = fingerprint


@attrs.frozen
class TlsSettings:
    """A TLS node's settings, from ``[encryption]``."""

    cert_path: Path
    """``[encryption.paths] own_certificate``, absolute."""
    key_path: Path
    """``[encryption.paths] own_private_key``, absolute."""
    mtls: bool = False
    policy: TrustPolicy = attrs.field(factory=TrustPolicy)
    versions_differ: str | None = None
    """Why TheNodes 0.4.0 would read this file as plaintext, when it would; else None."""


def _table(data: Mapping[str, Any], *keys: str) -> Mapping[str, Any]:
    table: Any = data
    for key in keys:
        table = table.get(key) if isinstance(table, Mapping) else None
    return table if isinstance(table, Mapping) else {}


def _readings(data: Mapping[str, Any]) -> tuple[Transport, Transport, str | None]:
    """What TheNodes 0.2.0 and 0.4.0 speak with this file, and the backend as written."""
    table = _table(data, "encryption")
    enabled = table.get("enabled") is True
    backend = table.get("backend")
    name = backend.strip().lower() if isinstance(backend, str) else None
    if name in ENCRYPTED_BACKENDS:
        chosen: Transport = "tls" if name == "tls" else "noise"
        return chosen, chosen if enabled else "plaintext", backend
    if name is None and enabled:
        return "tls", "tls", None
    return "plaintext", "plaintext", backend


def encryption_refusal(data: Mapping[str, Any]) -> str | None:
    """Why a host config's ``[encryption]`` asks for a transport hostsim does not speak
    (Noise, or a backend TheNodes does not know), or None. ``data`` is the whole parsed file."""
    old, new, backend = _readings(data)
    name = backend.strip().lower() if isinstance(backend, str) else None
    if backend is not None and name not in PLAINTEXT_BACKENDS | ENCRYPTED_BACKENDS:
        return (
            f"[encryption] backend = {backend!r} is not one TheNodes knows"
            f' ("tls", "noise", "none", "plaintext"): {_FIX}'
        )
    if "noise" in (old, new):
        versions = "TheNodes 0.2.0 (an explicit backend wins)" if new != "noise" else "TheNodes"
        return (
            f"[encryption] backend = {backend!r} makes {versions} speak Noise, and {_NOISE_WHY}:"
            f" {_FIX}"
        )
    return None


def transport(data: Mapping[str, Any]) -> Literal["plaintext", "tls"]:
    """``"tls"`` when TheNodes 0.2.0 or 0.4.0 would speak TLS with this file, else
    ``"plaintext"``.

    :raises HostConfigError: the file asks for Noise or an unknown backend
        (:func:`encryption_refusal`).
    """
    if (refusal := encryption_refusal(data)) is not None:
        raise HostConfigError(refusal)
    old, new, _ = _readings(data)
    return "tls" if "tls" in (old, new) else "plaintext"


def require_tls_extra(what: str = "[encryption] asks for TLS, which") -> None:
    """:raises HostConfigError: the ``tls`` extra (cryptography, pyOpenSSL) is not installed;
    the message starts with ``what`` (what needs it)."""
    missing = [
        name for name in ("cryptography", "OpenSSL") if importlib.util.find_spec(name) is None
    ]
    if missing:
        names = ", ".join({"OpenSSL": "pyOpenSSL"}.get(m, m) for m in missing)
        raise HostConfigError(
            f"{what} needs the '{TLS_EXTRA}' extra ({names} missing):"
            f" pip install 'thenodes-peerstore[{TLS_EXTRA}]'"
        )


def _bool(table: Mapping[str, Any], key: str, where: str) -> bool:
    value = table.get(key, False)
    if not isinstance(value, bool):
        raise HostConfigError(f"{where} {key} = {show(value)}: must be true or false")
    return value


def _str(table: Mapping[str, Any], key: str, where: str) -> str | None:
    value = table.get(key)
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise HostConfigError(f"{where} {key} = {show(value)}: must be a non-empty string")
    return value


def _strings(table: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = table.get(key, ())
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise HostConfigError(f"{where} {key} = {show(value)}: must be a list of strings")
    return tuple(value)


def _path(table: Mapping[str, Any], key: str, where: str, base_dir: Path) -> Path | None:
    value = _str(table, key, where)
    return None if value is None else base_dir / value


def tls_settings(data: Mapping[str, Any], *, base_dir: Path | None = None) -> TlsSettings | None:
    """The TLS settings of a host config (``data``, the whole parsed file), or None when it
    speaks plaintext. Relative paths are relative to ``base_dir`` (default: the working
    directory, as TheNodes reads them).

    :raises HostConfigError: a key has a bad value, or a key TLS needs is missing, or the file
        asks for Noise (each message names the key and the value).
    """
    if transport(data) != "tls":
        return None
    base = (base_dir or Path.cwd()).absolute()
    encryption = _table(data, "encryption")
    paths = _table(data, "encryption", "paths")
    trust = _table(data, "encryption", "trust_policy")
    where_paths, where_trust = "[encryption.paths]", "[encryption.trust_policy]"
    cert_path = _path(paths, "own_certificate", where_paths, base)
    key_path = _path(paths, "own_private_key", where_paths, base)
    if cert_path is None or key_path is None:
        missing = " and ".join(
            k for k, p in (("own_certificate", cert_path), ("own_private_key", key_path)) if not p
        )
        raise HostConfigError(
            f"{where_paths} {missing}: needed for TLS (this node makes the files at its first"
            ' start if neither exists), for example own_certificate = "pki/own/cert.pem" and'
            ' own_private_key = "pki/own/key.pem"'
        )
    mode_text = _str(trust, "mode", where_trust) or "open"
    mode = MODES.get(mode_text.lower())
    if mode is None:
        raise HostConfigError(
            f"{where_trust} mode = {show(mode_text)}: must be one of {', '.join(MODES)}"
            " (TheNodes would read it as open, trusting every peer)"
        )
    store = (_str(trust, "store_new_certs", where_trust) or "none").lower()
    if store not in STORE_NEW:
        raise HostConfigError(
            f"{where_trust} store_new_certs = {show(store)}: must be {' or '.join(STORE_NEW)}"
        )
    algo = (_str(trust, "pin_fp_algo", where_trust) or "sha256").lower()
    if algo != "sha256":
        raise HostConfigError(f"{where_trust} pin_fp_algo = {show(algo)}: only sha256 is known")
    pins = tuple(p.strip().lower() for p in _strings(trust, "pin_fingerprints", where_trust))
    for pin in pins:
        if not _FINGERPRINT.fullmatch(pin):
            raise HostConfigError(
                f"{where_trust} pin_fingerprints: {show(pin)} is not a SHA-256 fingerprint"
                " (64 hex digits, as `hostsim cert` prints it)"
            )
    if _bool(trust, "enforce_ca_chain", where_trust):
        raise HostConfigError(
            f"{where_trust} enforce_ca_chain = true: hostsim checks no CA chain, so it would"
            " keep peers TheNodes refuses; pin the peers' certificates instead (allowlist with"
            " trusted_cert_dir, or pin_fingerprints)"
        )
    _bool(encryption, "accept_self_signed", "[encryption]")
    _bool(trust, "accept_self_signed", where_trust)
    observed = _path(
        _table(data, "encryption", "trust_policy", "paths"),
        "observed_dir",
        "[encryption.trust_policy.paths]",
        base,
    )
    policy = TrustPolicy(
        mode=mode,
        store_new=store == "observed",
        observed_dir=observed,
        trusted_dir=_path(paths, "trusted_cert_dir", where_paths, base),
        pin_fingerprints=pins,
        pin_subjects=_strings(trust, "pin_subjects", where_trust),
        realm_subject_binding=_bool(trust, "realm_subject_binding", where_trust),
        reject_expired=_bool(trust, "reject_expired", where_trust),
        reject_before_valid=_bool(trust, "reject_before_valid", where_trust),
    )
    old, new, backend = _readings(data)
    differ = None
    if old != new:
        differ = (
            f"[encryption] enabled = false with backend = {backend!r}: TheNodes 0.2.0 speaks TLS"
            " with this file (as hostsim does), TheNodes 0.4.0 plaintext; set enabled = true"
            " so both speak TLS"
        )
    return TlsSettings(
        cert_path=cert_path,
        key_path=key_path,
        mtls=_bool(encryption, "mtls", "[encryption]"),
        policy=policy,
        versions_differ=differ,
    )
