"""The peer file on disk, as bytes: where it lives, its lock, atomic saves, reads, setting aside.

Nothing here knows the file's format (that is :mod:`thenodes_peerstore.codec`) or decides which
peers to keep (that is :mod:`thenodes_peerstore.store`); :mod:`thenodes_peerstore.persistent`
composes the three.

Every operating-system call of a load, a save and a quarantine goes through this module's ``os``
name, so that each can be made to fail in a test exactly as a full disk, a read-only mount or a
failing device would make it fail.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import logging
import os
import re
import secrets
import stat
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

import filelock

from thenodes_naming import REALM_CODE_MAX, REALM_CODE_PATTERN, is_windows_device_name
from thenodes_peerstore.errors import StoreFileError, StoreLockedError, StorePathError

logger = logging.getLogger(__name__)

REALM_CODE_RE = re.compile(REALM_CODE_PATTERN)
MAX_FILE_BYTES = 32 * 1024 * 1024
"""A larger file is not read. A store at the highest cap (65,536 entries) writes at most half
of it in addresses, times and counts; node ids and capabilities share the rest."""
FILE_MODE = 0o600
DIR_MODE = 0o700
WRITE_CHUNK = 64 * 1024
"""A save writes the file in chunks of this many bytes."""

_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_BINARY = getattr(os, "O_BINARY", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_GROUP_OR_OTHER_WRITE = stat.S_IWGRP | stat.S_IWOTH
_HOLDER_RE = re.compile(rb"pid (\d{1,10})\s*")
_REALM_CODE_RULE = (
    "realm codes are 1 to 64 characters of [a-z0-9._-], starting with a letter or digit, "
    "and not a device name on Windows (con, prn, aux, nul, com1-9, lpt1-9)"
)


def validate_realm_code(code: object) -> str:
    """Return ``code`` if it is safe as a file name on every OS, else raise :class:`StorePathError`.

    Refused: anything but a string; empty or over 64 characters; ``.`` and ``..``; a path
    separator, NUL, an uppercase letter or any character outside ``[a-z0-9._-]``; a first
    character that is not a letter or digit; and the names Windows keeps for devices (``con``,
    ``prn``, ``aux``, ``nul``, ``com1``-``com9``, ``lpt1``-``lpt9``), also with an extension
    (``nul.txt``), so that a peer file can be moved from one OS to another.
    """
    if not isinstance(code, str):
        raise StorePathError(f"realm code {code!r} cannot name a file: it is not a string")
    problem = _realm_code_problem(code)
    if problem is not None:
        raise StorePathError(
            f"realm code {code!r} cannot name a file: {problem}; {_REALM_CODE_RULE}"
        )
    return code


def _realm_code_problem(code: str) -> str | None:
    if not code:
        return "it is empty"
    if len(code) > REALM_CODE_MAX:
        return f"it is {len(code)} characters long"
    if code in {".", ".."}:
        return "it names a directory"
    if "/" in code or "\\" in code:
        return "it contains a path separator"
    if "\x00" in code:
        return "it contains a NUL character"
    if any(c.isupper() for c in code):
        return "it contains an uppercase letter"
    odd = sorted({c for c in code if not re.fullmatch(r"[a-z0-9._-]", c)})
    if odd:
        return f"it contains {', '.join(map(repr, odd))}"
    if not REALM_CODE_RE.fullmatch(code):
        return f"it starts with {code[0]!r}"
    if is_windows_device_name(code):
        return "it is a device name on Windows"
    return None


def resolve_store_path(state_dir: Path, template: str, realm_code: str) -> Path:
    """The realm's peer file for a configured ``path``.

    ``{realm}`` in the template is replaced by the realm code; a template without it gets the
    code inserted before the suffix (``peers.toml`` -> ``peers.example.toml``).

    A relative path is resolved against ``state_dir`` and must stay inside it, both by name and
    on disk: a directory between the state directory and the file that is a symbolic link
    leading outside the state directory is refused with :class:`StorePathError` naming the
    link and where it points. A link that stays inside is allowed, and so is a state directory
    that is itself a link (everything is compared after resolving it). An absolute path is the
    operator's explicit choice and is used as given. In every case :meth:`PeerFile.open`
    refuses a peer file that is itself a symbolic link.
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
    for part in path.parts:
        if is_windows_device_name(part):
            raise StorePathError(
                f"[network.persistence] path = {template!r}: {part!r} is a device name on "
                "Windows and cannot name a file or directory"
            )
    root = Path(os.path.normpath(state_dir))
    resolved = Path(os.path.normpath(root / path))
    if not resolved.is_relative_to(root):
        raise StorePathError(
            f"[network.persistence] path = {template!r} leads outside "
            f"the state directory {state_dir}"
        )
    _refuse_links_out_of(root, resolved.parent, template)
    return resolved


def _refuse_links_out_of(root: Path, directory: Path, template: str) -> None:
    """Raise if a directory from ``root`` (exclusive) down to ``directory`` leads outside it."""
    real_root = Path(os.path.realpath(root))
    step = root
    for part in directory.relative_to(root).parts:
        step = step / part
        real = Path(os.path.realpath(step))
        if not real.is_relative_to(real_root):
            raise StorePathError(
                f"[network.persistence] path = {template!r}: {step} is a symbolic link to "
                f"{real}, outside the state directory {real_root}; configure that place as an "
                "absolute path if the peers belong there"
            )


class PeerFile:
    """One realm's peer file, locked for as long as it is open.

    The lock is a sidecar ``<name>.lock`` that is never deleted: deleting it would let a
    second process lock a new inode while the first still holds the old one. While the lock is
    held, the lock file holds ``pid <holder's pid>``, so a refused store can say who holds it.
    """

    def __init__(
        self,
        path: Path,
        realm: str | None,
        lock: filelock.BaseFileLock,
        warnings: tuple[str, ...] = (),
    ) -> None:
        self.path = path
        self.realm = realm
        """The realm the file is of; None when its holder learns it from the file itself (the
        ``peerstore`` command on ``--file`` without ``--realm``)."""
        self._lock = lock
        self.warnings = warnings
        """What was found wrong but not refused at open (group- or world-writable file or
        directory); each is also logged as a warning."""

    @property
    def lock_path(self) -> Path:
        """The sidecar lock file."""
        return Path(self._lock.lock_file)

    @classmethod
    def open(cls, path: Path, realm: str | None) -> PeerFile:
        """Create the directory if needed (0700), take the lock, and clear stale temporary files.

        ``realm`` is the realm's code, checked here, or None for a holder that reads the realm
        from the file and checks it then (:func:`validate_realm_code`).

        Raise :class:`StoreLockedError` when another store holds the file (naming its pid when
        known), :class:`StorePathError` for a realm code that cannot be written in it or for a
        peer file or lock file that is a symbolic link (whatever it points to), and
        :class:`StoreFileError` when the directory or the lock file cannot be made or opened.

        A file or directory that group or others can write is not refused: it is logged as a
        warning naming it and its mode, and listed in :attr:`warnings`. The next save writes a
        new file of mode 0600 in any case.
        """
        if realm is not None:
            validate_realm_code(realm)
        try:
            _make_dirs(path.parent)
        except OSError as exc:
            raise StoreFileError(
                f"cannot create the directory {path.parent} of peer file {path}: "
                f"{exc.strerror or exc}"
            ) from exc
        _refuse_symlink(path, "peer file")
        lock = _take_lock(path)
        try:
            peer_file = cls(path, realm, lock, _loose_permissions(path))
            peer_file._remove_stale_temporaries()
        except BaseException:
            lock.release(force=True)
            raise
        return peer_file

    def close(self) -> None:
        """Release the lock; the lock file stays, emptied of our pid."""
        _clear_holder(self.lock_path)
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

    # -- reading ---------------------------------------------------------------------------

    def read(self) -> bytes | None:
        """:func:`read_peer_file` of this file."""
        return read_peer_file(self.path)

    def quarantine(self, now: int, copy: Iterable[bytes] | None = None) -> Path:
        """Set the file aside as ``<name>.corrupt-<now>`` (never over another); return where.

        By default the file itself is renamed there. With ``copy`` (the pieces of what is to be
        kept instead: the file sealed under its key, so that nothing set aside is in the clear),
        the copy is written there (created exclusively, mode 0600, flushed), then the file is
        removed: a crash in between leaves both, never neither.

        Raise ``OSError`` when it cannot be done; the file is then where it was, and no copy is
        left beside it.
        """
        if copy is not None:
            return self._set_aside_copy(now, copy)
        aside = self._aside_name(now)
        os.rename(self.path, aside)
        try:
            _fsync_dir(self.path.parent)
        except OSError as exc:
            logger.warning(
                "moved damaged peer file %s to %s but could not flush the directory: %s",
                self.path,
                aside,
                exc.strerror or exc,
            )
        return aside

    def _aside_name(self, now: int, n: int = 0) -> Path:
        """The first free ``<name>.corrupt-<now>[-<n>]`` from ``n`` on."""
        while True:
            suffix = f".corrupt-{now}" if n == 0 else f".corrupt-{now}-{n}"
            aside = self.path.with_name(f"{self.path.name}{suffix}")
            if not os.path.lexists(aside):
                return aside
            n += 1

    def _set_aside_copy(self, now: int, copy: Iterable[bytes]) -> Path:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_BINARY
        n = 0
        while True:
            aside = self._aside_name(now, n)
            try:
                fd = os.open(aside, flags, FILE_MODE)
                break
            except FileExistsError:  # taken since it was looked at
                n += 1
        try:
            try:
                _write_all(fd, copy)
                os.fsync(fd)
            finally:
                os.close(fd)
            _fsync_dir(self.path.parent)
            os.unlink(self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(aside)
            raise
        try:
            _fsync_dir(self.path.parent)
        except OSError as exc:
            logger.warning(
                "set damaged peer file %s aside as %s but could not flush the directory: %s",
                self.path,
                aside,
                exc.strerror or exc,
            )
        return aside

    # -- saving ------------------------------------------------------------------------------

    def save(self, data: bytes | bytearray | Iterable[bytes]) -> None:
        """Replace the file atomically: temp file (0600) -> write -> fsync -> rename -> fsync dir.

        ``data`` is the file's bytes, or its pieces in order (written as they come, so a caller
        that makes them one at a time never holds the whole file twice).

        The temporary file ``.<name>.<random>.tmp`` sits beside the file and is created
        exclusively, never through a symbolic link. On failure the ``OSError`` propagates; up
        to the rename the old file is intact and the temporary file is removed. If only the
        final flush of the directory fails, the new file is already in place: the save is
        still reported as failed, so that the caller keeps its changes and saves again.
        """
        directory, name = os.path.split(self.path)
        tmp = os.path.join(directory, f".{name}.{secrets.token_hex(8)}.tmp")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_BINARY
        try:
            fd = os.open(tmp, flags, FILE_MODE)
        except (FileNotFoundError, NotADirectoryError):
            # Asked only when the temporary file cannot be made: a save of a simulated network
            # of 10,000 nodes spent 1% of its time asking every time.
            if os.path.isdir(directory):
                raise
            self._make_directory_again()
            fd = os.open(tmp, flags, FILE_MODE)
        try:
            try:
                _write_all(fd, (data,) if isinstance(data, bytes | bytearray) else data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_dir(directory)

    def _make_directory_again(self) -> None:
        """The directory went away while the store was open (deleted, or replaced by a file):
        make it again, 0700, moving whatever is in the way aside, and lock the new lock file.

        Raise ``OSError`` when that cannot be done, :class:`StoreLockedError` when another store
        took the new lock file meanwhile; the caller keeps its peers in memory and tries again.
        """
        logger.warning(
            "the directory of peer file %s is gone; making it again (mode %#o)",
            self.path,
            DIR_MODE,
        )
        _make_dirs(self.path.parent, displace=True)
        lock = _take_lock(self.path)
        with contextlib.suppress(Exception):  # the old lock file is gone with its directory
            self._lock.release(force=True)
        self._lock = lock

    def _remove_stale_temporaries(self) -> None:
        for stale in self.path.parent.glob(f".{glob_escape(self.path.name)}.*.tmp"):
            with contextlib.suppress(OSError):
                stale.unlink()
                logger.info("removed %s, left by a save that did not finish", stale)


class Move(enum.Enum):
    """What :func:`move_peer_file` did."""

    NOTHING = "no file at the old place"
    MOVED = "moved"
    BOTH = "a file at both places; neither touched"


def move_peer_file(old: Path, new: Path) -> Move:
    """Move the peer file ``old`` to ``new`` unless ``new`` exists; never copy, never overwrite.

    The directory of ``new`` is created 0700 and flushed first; then, holding the lock of
    ``new`` and the lock of ``old`` (so that no store writes either meanwhile), ``old`` is
    renamed to ``new`` in one ``os.replace`` and both directories are flushed. A crash at any
    point leaves the file whole at one place or the other. Both locks are released on return;
    once the file has moved, the lock file of ``old`` is removed, while held (the lock of
    ``new``, never removed, keeps any other move out).

    Raise :class:`StoreLockedError` when another store holds either file,
    :class:`StorePathError` when either is a symbolic link, :class:`StoreFileError` when the
    directory or a lock file cannot be made, and ``OSError`` when the rename fails (``old`` is
    then where it was; a different file system, for one). A failure to flush a directory after
    the rename is logged as a warning: the file has moved.
    """
    if not os.path.lexists(old):
        return Move.NOTHING
    _refuse_symlink(old, "peer file")
    try:
        _make_dirs(new.parent)
        _fsync_dir(new.parent)
    except OSError as exc:
        raise StoreFileError(
            f"cannot create the directory {new.parent} of peer file {new}: {exc.strerror or exc}"
        ) from exc
    _refuse_symlink(new, "peer file")
    new_lock = _take_lock(new)
    try:
        old_lock = _take_lock(old)
        try:
            if not os.path.lexists(old):
                return Move.NOTHING  # another start moved it meanwhile
            if os.path.lexists(new):
                return Move.BOTH
            os.replace(old, new)
            with contextlib.suppress(OSError):
                Path(old_lock.lock_file).unlink()
            for stale in old.parent.glob(f".{glob_escape(old.name)}.*.tmp"):
                with contextlib.suppress(OSError):
                    stale.unlink()  # left by a save that did not finish; we hold its lock
            for directory in dict.fromkeys((new.parent, old.parent)):
                try:
                    _fsync_dir(directory)
                except OSError as exc:
                    logger.warning(
                        "moved peer file %s to %s but could not flush the directory %s: %s",
                        old,
                        new,
                        directory,
                        exc.strerror or exc,
                    )
            return Move.MOVED
        finally:
            _clear_holder(Path(old_lock.lock_file))
            old_lock.release(force=True)
    finally:
        _clear_holder(Path(new_lock.lock_file))
        new_lock.release(force=True)


class NotRegularFileError(OSError):
    """A path to read names a FIFO, a device, a socket or a directory, not a regular file."""

    def __init__(self) -> None:
        super().__init__(errno.EINVAL, "not a regular file")


def read_capped(path: Path, *, follow: bool = True) -> bytes:
    """A regular file's first ``MAX_FILE_BYTES + 1`` bytes (one more than a file may hold, so
    that a caller can tell one too large).

    The file is opened without blocking, so a FIFO with no writer or a device is refused with
    :class:`NotRegularFileError`, never waited on; with ``follow`` false, a symbolic link is
    refused too (``ELOOP``). Raise :class:`OSError` (``FileNotFoundError`` when there is no
    file), never hang.
    """
    flags = os.O_RDONLY | _O_NONBLOCK | _O_BINARY | (0 if follow else _O_NOFOLLOW)
    fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotRegularFileError
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_FILE_BYTES:
            chunk = os.read(fd, min(WRITE_CHUNK, MAX_FILE_BYTES + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
    return b"".join(chunks)


def read_peer_file(path: Path) -> bytes | None:
    """A peer file's first ``MAX_FILE_BYTES + 1`` bytes, or None when there is no file.

    Needs no lock: a save replaces the file by a rename, so a reader always sees a whole file,
    the old one or the new one. Raise :class:`StoreFileError` naming the file when it cannot be
    read: a symbolic link, not a regular file, or an I/O error.
    """
    try:
        return read_capped(path, follow=False)
    except FileNotFoundError:
        return None
    except NotRegularFileError:
        raise StoreFileError(f"peer file {path} is not a regular file") from None
    except OSError as exc:
        raise _read_error(path, exc) from exc


def _write_all(fd: int, pieces: Iterable[bytes | bytearray]) -> None:
    """Write every piece, in order, :data:`WRITE_CHUNK` bytes at a time."""
    for piece in pieces:
        view = memoryview(piece)
        while view:
            written = os.write(fd, view[:WRITE_CHUNK])
            view = view[written:]


def _read_error(path: Path, exc: OSError) -> StoreFileError:
    if _is_symlink_refusal(exc, path):
        return StorePathError(f"peer file {path} is a symbolic link; refusing to follow it")
    return StoreFileError(f"peer file {path} cannot be read: {exc.strerror or exc}")


def glob_escape(name: str) -> str:
    """``name`` with glob metacharacters taken literally."""
    return re.sub(r"([*?\[])", r"[\1]", name)


def _make_dirs(directory: Path, *, displace: bool = False) -> None:
    """Create ``directory`` and any missing parents with mode 0700, each flushed into its
    parent before the first save is acknowledged.

    With ``displace``, a file (or a link to no directory) in the way of one of them is renamed
    to ``<name>.displaced-<pid>-<random>`` first, with a warning naming both; without, it is an
    error (``FileExistsError``).
    """
    missing = []
    for d in (directory, *directory.parents):
        if d.is_dir():
            break
        missing.append(d)
    for d in reversed(missing):
        if displace and os.path.lexists(d):
            aside = d.with_name(f"{d.name}.displaced-{os.getpid()}-{secrets.token_hex(4)}")
            os.rename(d, aside)
            logger.warning("moved %s, which was in the way of a directory, to %s", d, aside)
        try:
            d.mkdir(mode=DIR_MODE)
        except FileExistsError:
            if not d.is_dir():  # made by someone else since, fine; a file in the way is not
                raise
            continue
        _fsync_dir(d.parent)


def _refuse_symlink(path: Path, what: str) -> None:
    try:
        is_link = stat.S_ISLNK(os.lstat(path).st_mode)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StoreFileError(f"{what} {path} cannot be examined: {exc.strerror or exc}") from exc
    if is_link:
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        raise StorePathError(
            f"{what} {path} is a symbolic link to {target}; refusing to follow it. "
            "Configure [network.persistence] path to name the real file instead"
        )


def _is_symlink_refusal(exc: OSError, path: Path) -> bool:
    """Whether an ``O_NOFOLLOW`` open failed because ``path`` is a symbolic link."""
    if not _O_NOFOLLOW or exc.errno not in {errno.ELOOP, errno.EMLINK}:  # EMLINK: FreeBSD
        return False
    return os.path.islink(path)


def _loose_permissions(path: Path) -> tuple[str, ...]:
    """Warn about the peer file or its directory being writable by group or others."""
    found = []
    for what, target in (("directory", path.parent), ("peer file", path)):
        try:
            mode = stat.S_IMODE(os.lstat(target).st_mode)
        except OSError:
            continue
        if mode & _GROUP_OR_OTHER_WRITE:
            consequence = (
                "other users could replace the peer file; make it 0o700"
                if what == "directory"
                else f"the next save writes it {FILE_MODE:#o}"
            )
            found.append(
                f"{what} {target} is writable by group or others (mode {mode:#o}); {consequence}"
            )
    for message in found:
        logger.warning("%s", message)
    return tuple(found)


def _take_lock(path: Path) -> filelock.BaseFileLock:
    """Take the sidecar lock of peer file ``path`` and write our pid in it.

    Raise :class:`StoreLockedError` naming the live holder's pid (or saying plainly that the
    holder is unknown), :class:`StorePathError` for a lock file that is a symbolic link, and
    :class:`StoreFileError` saying why when the lock file cannot be made or locked at all.
    """
    lock_path = path.with_name(f"{path.name}.lock")
    _refuse_symlink(lock_path, "lock file")
    try:
        # A place that cannot hold a lock file (a read-only or virtual file system) would look
        # to filelock like a lock held by someone else: find out here, and say what it is.
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | _O_NOFOLLOW | _O_BINARY, FILE_MODE)
        try:
            links = os.fstat(fd).st_nlink
        finally:
            os.close(fd)
    except OSError as exc:
        if _is_symlink_refusal(exc, lock_path):
            raise StorePathError(f"lock file {lock_path} is a symbolic link") from exc
        raise StoreFileError(
            f"cannot create lock file {lock_path} for peer file {path}: {exc.strerror or exc}"
        ) from exc
    if links > 1:
        # A hard link to another file: taking the lock would truncate that file.
        raise StorePathError(
            f"lock file {lock_path} has {links} links (a hard link to another file); remove it"
            " and start again, it is never truncated while it is not the peer file's own"
        )
    lock = filelock.FileLock(
        lock_path, timeout=0, mode=FILE_MODE, thread_local=False, is_singleton=False
    )
    try:
        lock.acquire()
    except filelock.Timeout:
        pid = _live_holder(lock_path)
        holder = (
            f"pid {pid}"
            if pid is not None
            else f"its lock file {lock_path} is held by a process whose pid is not known"
        )
        raise StoreLockedError(
            f"peer file {path} is in use by another store ({holder})", pid=pid
        ) from None
    except OSError as exc:
        raise StoreFileError(
            f"cannot lock peer file {path} through {lock_path}: {exc.strerror or exc}"
        ) from exc
    try:
        _write_holder(lock_path)
    except BaseException:
        lock.release(force=True)
        raise
    return lock


HOLDER_WAIT_SECS = 0.5
"""How long a refused store waits for the holder that just took the lock to write its pid."""


def _live_holder(lock_path: Path) -> int | None:
    """The pid of the live process holding ``lock_path``, or None when it is not known.

    The lock file may still name an earlier holder that died (the kernel freed its lock): a
    holder that has just taken the lock writes its own pid a moment later, so a pid that is not
    alive is read again for up to :data:`HOLDER_WAIT_SECS`, and never reported.
    """
    deadline = time.monotonic() + HOLDER_WAIT_SECS
    while True:
        pid = _read_holder(lock_path)
        if pid is not None and _alive(pid):
            return pid
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.01)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # it exists, under another user
    return True


def _clear_holder(lock_path: Path) -> None:
    """Empty the lock file we are about to release, so that no one reads our pid after."""
    try:
        fd = os.open(lock_path, os.O_WRONLY | _O_NOFOLLOW | _O_NONBLOCK | _O_BINARY)
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)
    except OSError as exc:
        logger.debug("could not clear the holder's pid from %s: %s", lock_path, exc)


def _write_holder(lock_path: Path) -> None:
    """Write ``pid <our pid>`` into the lock file we hold; best-effort."""
    try:
        fd = os.open(lock_path, os.O_WRONLY | _O_NOFOLLOW | _O_NONBLOCK | _O_BINARY)
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"pid {os.getpid()}\n".encode())
        finally:
            os.close(fd)
    except OSError as exc:
        logger.debug("could not write the holder's pid into %s: %s", lock_path, exc)


def _read_holder(lock_path: Path) -> int | None:
    """The pid a lock file names, if it names one."""
    try:
        fd = os.open(lock_path, os.O_RDONLY | _O_NOFOLLOW | _O_NONBLOCK | _O_BINARY)
        try:
            content = os.read(fd, 64)
        finally:
            os.close(fd)
    except OSError:
        return None
    match = _HOLDER_RE.fullmatch(content)
    return int(match.group(1)) if match else None


def _fsync_dir(directory: Path | str) -> None:
    fd = os.open(directory, os.O_RDONLY | _O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
