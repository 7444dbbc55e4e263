"""A node's certificate: made as TheNodes reads it, never overwritten, key 0600; by a node at
its first start and by ``hostsim cert``."""

from __future__ import annotations

import asyncio
import importlib.util
import ipaddress
import re
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from hostsim.cli import EXIT_ERROR, EXIT_OK
from hostsim.cli import main as cli_main
from hostsim.live.certs import (
    CertificateError,
    ensure_certificate,
    make_certificate,
    pem,
    spki_fingerprint,
    subject_text,
)
from tests.support.thenodes_wire_peer import config
from tests.support.tls import certificate, encryption


def test_a_certificate_names_its_node_and_realm_has_its_ips_and_serves_both_ends(
    tmp_path: Path,
) -> None:
    own = ensure_certificate(
        tmp_path / "pki/own/cert.pem",
        tmp_path / "pki/own/key.pem",
        node_id="node-7",
        realm="Example",
        ips=["127.0.0.1", "::1", "127.0.0.1", "0.0.0.0", "not-an-ip"],
    )

    cert = certificate(own.cert_path)
    assert own.made
    assert subject_text(cert) == "CN=node-7, O=Example"  # unique per node, with the realm
    assert cert.issuer == cert.subject
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(usages) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert cert.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
    key = own.key_path.read_text()
    assert key.startswith("-----BEGIN PRIVATE KEY-----")  # PKCS#8, which TheNodes reads
    assert stat.S_IMODE(own.key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(own.cert_path.stat().st_mode) == 0o644
    assert own.fingerprint == spki_fingerprint(cert)
    assert len(own.fingerprint) == 64
    assert own.fingerprint == own.fingerprint.lower()


def test_an_existing_certificate_is_kept_byte_for_byte_and_half_a_pair_is_an_error(
    tmp_path: Path,
) -> None:
    cert_path, key_path = tmp_path / "c.pem", tmp_path / "k.pem"
    first = ensure_certificate(cert_path, key_path, node_id="n1")
    before = cert_path.read_bytes(), key_path.read_bytes()

    again = ensure_certificate(cert_path, key_path, node_id="another-name")

    assert not again.made
    assert again.fingerprint == first.fingerprint
    assert (cert_path.read_bytes(), key_path.read_bytes()) == before
    key_path.unlink()
    with pytest.raises(CertificateError, match=re.escape(f"{key_path} does not")):
        ensure_certificate(cert_path, key_path, node_id="n1")
    assert cert_path.read_bytes() == before[0]
    assert not key_path.exists()


def test_a_key_that_is_not_the_certificates_is_named(tmp_path: Path) -> None:
    ensure_certificate(tmp_path / "a.pem", tmp_path / "a.key", node_id="a")
    ensure_certificate(tmp_path / "b.pem", tmp_path / "b.key", node_id="b")
    with pytest.raises(CertificateError, match="is not the key of"):
        ensure_certificate(tmp_path / "a.pem", tmp_path / "b.key", node_id="a")
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(CertificateError, match=r"junk\.pem: not a PEM certificate"):
        ensure_certificate(tmp_path / "junk.pem", tmp_path / "a.key", node_id="a")


def test_a_tls_node_makes_its_certificate_at_its_first_start_says_so_once_and_keeps_it(
    tmp_path: Path,
) -> None:
    home = tmp_path / "pki"
    host_config = config(tmp_path, "first-start", extra=encryption(home))
    said: list[list[str]] = []

    async def start_and_stop() -> None:
        from hostsim.live.node import LiveNode
        from hostsim.live.settings import live_settings

        lines: list[str] = []
        node = LiveNode(host_config, live_settings(host_config), status=lines.append)
        await node.start()
        await node.stop()
        said.append(lines)

    asyncio.run(start_and_stop())
    fingerprint = spki_fingerprint(certificate(home / "cert.pem"))
    asyncio.run(start_and_stop())

    first, second = said
    assert [line for line in first if line.startswith("made a TLS certificate")] == [
        f"made a TLS certificate: {home / 'cert.pem'} (key {home / 'key.pem'}, mode 0600)"
    ]
    assert not any(line.startswith("made") for line in second)
    assert f"SPKI SHA-256 {fingerprint}" in "\n".join(second)
    assert spki_fingerprint(certificate(home / "cert.pem")) == fingerprint
    assert subject_text(certificate(home / "cert.pem")) == "CN=first-start, O=Example"


def test_hostsim_cert_makes_a_nodes_pair_where_its_config_says_and_copies_it_to_trust(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # relative paths: the working directory's, as in TheNodes
    (tmp_path / "node.toml").write_text(
        'port = 50001\n[realm]\nname = "Example"\n[node]\nid = "tn-1"\n'
        "[encryption]\nenabled = true\n[encryption.paths]\n"
        'own_certificate = "pki/own/tn.crt"\nown_private_key = "pki/own/tn.key"\n'
    )

    status = cli_main(["cert", "node.toml", "--copy-to", "elsewhere/trusted"])

    out = capsys.readouterr().out
    cert = certificate(tmp_path / "pki/own/tn.crt")
    fingerprint = spki_fingerprint(cert)
    assert status == EXIT_OK
    assert f"spki_sha256: {fingerprint}" in out
    assert "subject: CN=tn-1, O=Example" in out
    assert "ip addresses: 127.0.0.1" in out  # the node's listen address
    copy = tmp_path / "elsewhere/trusted" / f"{fingerprint}.pem"
    assert copy.read_bytes() == pem(cert)
    assert stat.S_IMODE((tmp_path / "pki/own/tn.key").stat().st_mode) == 0o600

    assert cli_main(["cert", "node.toml", "--copy-to", "elsewhere/trusted"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "kept (it exists; never replaced)" in out
    assert f"already in {copy}" in out
    assert spki_fingerprint(certificate(tmp_path / "pki/own/tn.crt")) == fingerprint


def test_hostsim_cert_without_a_config_uses_thenodes_cert_layout_and_refuses_half_a_pair(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli_main(["cert", "--name", "solo", "--ip", "10.1.2.3"]) == EXIT_OK
    cert = certificate(tmp_path / "pki/own/cert.pem")
    assert subject_text(cert) == "CN=solo"
    assert "ip addresses: 10.1.2.3" in capsys.readouterr().out
    (tmp_path / "pki/own/key.pem").unlink()

    assert cli_main(["cert", "--name", "solo"]) == EXIT_ERROR
    assert "key.pem does not" in capsys.readouterr().err
    assert not (tmp_path / "pki/own/key.pem").exists()


def test_two_certificates_made_for_two_nodes_have_distinct_subjects_and_keys() -> None:
    a, _ = make_certificate("node-a", realm="R")
    b, _ = make_certificate("node-b", realm="R")
    assert a.subject != b.subject
    assert spki_fingerprint(a) != spki_fingerprint(b)


def test_hostsim_cert_without_the_tls_extra_says_which_extra_and_makes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "OpenSSL" else real(name)
    )
    monkeypatch.chdir(tmp_path)

    assert cli_main(["cert", "--name", "n"]) == EXIT_ERROR
    assert "hostsim cert needs the 'tls' extra" in capsys.readouterr().err
    assert not (tmp_path / "pki").exists()
