"""``[encryption]`` read for TLS: each key, each bad value named, the extra it needs."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from hostsim.config import HostConfig
from hostsim.errors import HostConfigError
from hostsim.live.settings import live_settings
from hostsim.live.tlsconfig import require_tls_extra, tls_settings

PATHS = {"own_certificate": "own/c.pem", "own_private_key": "own/k.pem"}


def read(table: dict[str, Any], base: Path) -> Any:
    return tls_settings({"encryption": {"enabled": True, "paths": PATHS, **table}}, base_dir=base)


def test_every_key_tls_reads_is_read_with_thenodes_meaning(tmp_path: Path) -> None:
    tls = read(
        {
            "mtls": True,
            "paths": {**PATHS, "trusted_cert_dir": "trusted"},
            "trust_policy": {
                "mode": "Quarantine",  # TheNodes' alias of observe, in any case
                "store_new_certs": "observed",
                "pin_fingerprints": [" " + "AB" * 32 + " "],  # trimmed and lowered, as 0.4.0
                "pin_subjects": ["~node"],
                "realm_subject_binding": True,
                "reject_expired": True,
                "paths": {"observed_dir": "/abs/observed"},
            },
        },
        tmp_path,
    )
    assert (tls.cert_path, tls.key_path) == (tmp_path / "own/c.pem", tmp_path / "own/k.pem")
    assert tls.mtls
    policy = tls.policy
    assert (policy.mode, policy.store_new) == ("observe", True)
    assert policy.pin_fingerprints == ("ab" * 32,)
    assert policy.pin_subjects == ("~node",)
    assert (policy.realm_subject_binding, policy.reject_expired) == (True, True)
    assert not policy.reject_before_valid
    assert policy.trusted_dir == tmp_path / "trusted"
    assert policy.observed_dir == Path("/abs/observed")
    assert tls.versions_differ is None


@pytest.mark.parametrize(
    ("table", "named"),
    [
        ({"mtls": "yes"}, '[encryption] mtls = "yes": must be true or false'),
        ({"trust_policy": {"mode": "allowlsit"}}, 'mode = "allowlsit": must be one of'),
        ({"trust_policy": {"store_new_certs": "trusted"}}, "store_new_certs"),
        ({"trust_policy": {"pin_fingerprints": ["abc"]}}, '"abc" is not a SHA-256'),
        ({"trust_policy": {"pin_fingerprints": "ab"}}, "must be a list of strings"),
        ({"trust_policy": {"pin_fp_algo": "sha1"}}, "only sha256"),
        ({"trust_policy": {"enforce_ca_chain": True}}, "checks no CA chain"),
        ({"trust_policy": {"reject_expired": 1}}, "reject_expired = 1"),
        ({"paths": {"own_certificate": "c.pem"}}, "own_private_key: needed for TLS"),
        ({"paths": {}}, "own_certificate and own_private_key: needed for TLS"),
        ({"paths": {**PATHS, "trusted_cert_dir": 7}}, "trusted_cert_dir = 7"),
    ],
)
def test_a_bad_or_missing_tls_key_is_an_error_naming_it(
    table: dict[str, Any], named: str, tmp_path: Path
) -> None:
    with pytest.raises(HostConfigError) as caught:
        read(table, tmp_path)
    assert named in str(caught.value)


def test_a_tls_config_without_the_tls_extra_is_a_startup_error_naming_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "OpenSSL" else real(name)
    )
    data = {"port": 50011, "encryption": {"enabled": True, "paths": PATHS}}
    config = HostConfig.from_mapping(data, base_dir=tmp_path)

    with pytest.raises(HostConfigError, match=r"pyOpenSSL missing\): pip install .*\[tls\]"):
        live_settings(config)
    with pytest.raises(HostConfigError, match="'tls' extra"):
        require_tls_extra()
    with pytest.raises(HostConfigError, match="hostsim cert needs the 'tls' extra"):
        require_tls_extra("hostsim cert")
    plain = HostConfig.from_mapping({"port": 50011}, base_dir=tmp_path)
    assert live_settings(plain).tls is None  # plaintext needs no extra
