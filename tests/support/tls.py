"""TLS for the live node's tests: an ``[encryption]`` table with its files in a folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography import x509


def encryption(
    home: Path,
    *,
    mtls: bool = False,
    trust: dict[str, Any] | None = None,
    trusted: Path | None = None,
) -> dict[str, Any]:
    """``[encryption]`` with TLS on, the node's certificate and key in ``home`` (absolute
    paths, so no test depends on its working directory), and ``trust`` as
    ``[encryption.trust_policy]``."""
    paths: dict[str, Any] = {
        "own_certificate": str(home / "cert.pem"),
        "own_private_key": str(home / "key.pem"),
    }
    if trusted is not None:
        paths["trusted_cert_dir"] = str(trusted)
    table: dict[str, Any] = {"enabled": True, "mtls": mtls, "paths": paths}
    if trust is not None:
        table["trust_policy"] = trust
    return {"encryption": table}


def certificate(path: Path) -> x509.Certificate:
    """The first certificate in a PEM file."""
    return x509.load_pem_x509_certificates(path.read_bytes())[0]
