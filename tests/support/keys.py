"""Keys for encrypted peer files: a key file written as an operator writes one, and the
``[network.persistence]`` settings that name it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from thenodes_peerstore.config import PersistenceConfig

SECRET_KEY = bytes(range(200, 232))
"""32 bytes that are not text: a raw key."""


def write_key(path: Path, secret: bytes = SECRET_KEY, mode: int = 0o600) -> Path:
    """A key file holding ``secret``, of ``mode``."""
    path.write_bytes(secret)
    path.chmod(mode)
    return path


def encrypted(key_file: Path, **settings: Any) -> PersistenceConfig:
    """Persistence on, encrypted with the key in ``key_file``."""
    return PersistenceConfig(
        enabled=True, encryption="aes-256-gcm", key_file=str(key_file), **settings
    )
