"""The peer file on disk: where it lives, how it is locked, saved atomically, loaded and set aside.

Nothing here decides which peers to keep; that is :mod:`thenodes_peerstore.store`.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import re
import tempfile
from pathlib import Path
from types import TracebackType

import attrs
import filelock

from thenodes_peerstore.codec import Decoded, NewerSchemaError, RealmMismatchError, decode
from thenodes_peerstore.model import PeerEntry

logger = logging.getLogger(__name__)

REALM_CODE_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
MAX_FILE_BYTES = 16 * 1024 * 1024
"""A larger file is not read: far beyond any cap a store may be configured with."""
FILE_MODE = 0o600
DIR_MODE = 0o700


class StoreFileError(Exception):
    """A peer file that cannot be used; the message names the file."""


class StorePathError(StoreFileError, ValueError):
    """A realm code or a configured path that cannot name a peer file."""


class StoreLockedError(StoreFileError):
    """Another store holds the file."""


class RealmFileError(StoreFileError):
    """The file belongs to another realm; it is never written."""


def validate_realm_code(code: object) -> str:
    """Return ``code`` if it is safe as a file name, else raise :class:`StorePathError`."""
    if not isinstance(code, str) or not REALM_CODE_RE.fullmatch(code) or code in {".", ".."}:
        raise StorePathError(
            f"realm code {code!r} cannot name a file: it must be 1 to 64 characters of "
            "[a-z0-9._-], starting with a letter or digit"
        )
    return code


def resolve_store_path(state_dir: Path, template: str, realm_code: str) -> Path:
    """The realm's peer file for a configured ``path``.

    ``{realm}`` in the template is replaced by the realm code; a template without it gets the
    code inserted before the suffix (``peers.toml`` -> ``peers.example.toml``). A relative path
    is resolved against ``state_dir`` and must stay inside it.
    """
    code = validate_realm_code(realm_code)
    if "{realm}" in template:
        name = template.replace("{realm}", code)
    elif Path(template).name in {"", ".."}:
        name = template  # refused just below: it names no file to insert the code into
    else:
        pure = Path(template)
        name = str(pure.with_name(f"{pure.stem}.{code}{pure.suffix}"))
    path = Path(name)
    if path.name in {"", ".", ".."}:
        raise StorePathError(f"[network.persistence] path = {template!r} does not name a file")
    if path.is_absolute():
        return Path(os.path.normpath(path))
    resolved = Path(os.path.normpath(state_dir / path))
    if not resolved.is_relative_to(Path(os.path.normpath(state_dir))):
        raise StorePathError(
            f"[network.persistence] path = {template!r} leads outside "
            f"the state directory {state_dir}"
        )
    return resolved


class LoadStatus(enum.Enum):
    """What was found on disk."""

    MISSING = "missing"
    INTACT = "intact"
    SALVAGED = "salvaged"
    NEWER_SCHEMA = "newer schema"


@attrs.frozen
class LoadOutcome:
    """The entries read from the file, and what happened to the file."""

    status: LoadStatus
    entries: tuple[PeerEntry, ...] = ()
    problems: tuple[str, ...] = ()
    quarantined: Path | None = None


class PeerFile:
    """One realm's peer file, locked for as long as it is open.

    The lock is a sidecar ``<name>.lock`` that is never deleted: deleting it would let a
    second process lock a new inode while the first still holds the old one.
    """

    def __init__(self, path: Path, realm: str, lock: filelock.BaseFileLock) -> None:
        self.path = path
        self.realm = realm
        self._lock = lock

    @property
    def lock_path(self) -> Path:
        """The sidecar lock file."""
        return Path(self._lock.lock_file)

    @classmethod
    def open(cls, path: Path, realm: str) -> PeerFile:
        """Create the directory if needed (0700), take the lock, and clear stale temporary files.

        Raise :class:`StoreLockedError` when another store holds the file, and
        :class:`StorePathError` for a realm code that cannot be written in it.
        """
        validate_realm_code(realm)
        _make_dirs(path.parent)
        lock = filelock.FileLock(
            f"{path}.lock", timeout=0, mode=FILE_MODE, thread_local=False, is_singleton=False
        )
        try:
            lock.acquire()
        except filelock.Timeout:
            raise StoreLockedError(
                f"peer file {path} is in use by another store (lock {path}.lock is held)"
            ) from None
        peer_file = cls(path, realm, lock)
        peer_file._remove_stale_temporaries()
        return peer_file

    def close(self) -> None:
        """Release the lock; the lock file stays."""
        self._lock.release(force=True)

    def __enter__(self) -> PeerFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- loading -----------------------------------------------------------------------------

    def load(self, now: int) -> LoadOutcome:
        """Read the file.

        A damaged file is renamed aside to ``<name>.corrupt-<now>`` and the entries that still
        validate are returned. A file of a newer schema is left untouched. Raise
        :class:`RealmFileError` for another realm's file, which is left untouched too.
        """
        try:
            with self.path.open("rb") as f:
                data = f.read(MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            return LoadOutcome(LoadStatus.MISSING)
        except OSError as exc:
            raise StoreFileError(f"peer file {self.path} cannot be read: {exc.strerror}") from exc
        if len(data) > MAX_FILE_BYTES:
            decoded = Decoded(entries=(), problems=(f"larger than {MAX_FILE_BYTES} bytes",))
        else:
            try:
                decoded = decode(data, realm=self.realm)
            except NewerSchemaError as exc:
                return LoadOutcome(LoadStatus.NEWER_SCHEMA, problems=(str(exc),))
            except RealmMismatchError as exc:
                raise RealmFileError(
                    f"peer file {self.path}: {exc}. Check [network.persistence] path and [realm]; "
                    "the file is left unchanged"
                ) from exc
        if decoded.intact:
            return LoadOutcome(LoadStatus.INTACT, entries=decoded.entries)
        aside = self._quarantine(now)
        return LoadOutcome(
            LoadStatus.SALVAGED,
            entries=decoded.entries,
            problems=decoded.problems,
            quarantined=aside,
        )

    def _quarantine(self, now: int) -> Path:
        aside = self.path.with_name(f"{self.path.name}.corrupt-{now}")
        n = 0
        while aside.exists():
            n += 1
            aside = self.path.with_name(f"{self.path.name}.corrupt-{now}-{n}")
        os.rename(self.path, aside)
        _fsync_dir(self.path.parent)
        return aside

    # -- saving ------------------------------------------------------------------------------

    def save(self, data: bytes) -> None:
        """Replace the file atomically: temp file (0600) -> write -> fsync -> rename -> fsync dir.

        On failure the old file is intact, the temporary file is removed and the ``OSError``
        propagates.
        """
        fd, tmp = tempfile.mkstemp(
            prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent
        )
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_dir(self.path.parent)

    def _remove_stale_temporaries(self) -> None:
        for stale in self.path.parent.glob(f".{glob_escape(self.path.name)}.*.tmp"):
            with contextlib.suppress(OSError):
                stale.unlink()
                logger.info("removed %s, left by a save that did not finish", stale)


def glob_escape(name: str) -> str:
    """``name`` with glob metacharacters taken literally."""
    return re.sub(r"([*?\[])", r"[\1]", name)


def _make_dirs(directory: Path) -> None:
    """Create ``directory`` and any missing parents with mode 0700."""
    missing = []
    for d in (directory, *directory.parents):
        if d.is_dir():
            break
        missing.append(d)
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):
            d.mkdir(mode=DIR_MODE)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
