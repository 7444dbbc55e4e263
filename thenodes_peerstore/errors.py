"""Everything the package raises: one root, one class per fact."""

from __future__ import annotations

import enum


class PeerStoreError(Exception):
    """The root of every error this package raises on purpose."""


class Reason(enum.StrEnum):
    """Why an address was not recorded: the kinds a store counts."""

    MALFORMED = "malformed"
    """Not ``ip:port`` or ``[ipv6]:port``: a non-string, a bad port, brackets, a zone id."""
    HOSTNAME = "hostname"
    """A name, not an IP literal: names are resolved by the host, never stored."""
    BAD_PORT = "bad port"
    """Port 0 or above 65535."""
    UNSPECIFIED = "unspecified"
    """``0.0.0.0`` or ``::``."""
    MULTICAST = "multicast"
    RESERVED = "reserved"
    """Ranges no peer can listen on: 0/8, 240/4, 198.18/15, and IPv6 outside the assigned blocks."""
    OWN = "own address"
    """One of the node's own addresses."""
    SCOPE = "narrower scope than the sender"
    """A public sender's private, link-local or loopback address; a private sender's loopback."""
    MESSAGE_CAP = "over the per-message cap"
    """Beyond the addresses taken from one peer list."""
    SENDER_CAP = "over the sender's hourly cap"
    """Beyond the new entries one sender may add per hour."""
    FULL = "store full of more trusted peers"
    """The store is at its cap and every entry outranks a new one."""
    NO_LISTEN_ADDR = "no dialable address"
    """An inbound connection with no (or an unproven) listen address."""


class AddressError(PeerStoreError, ValueError):
    """An address that cannot be stored; the message says why, ``kind`` says which rule."""

    def __init__(self, addr: object, reason: str, kind: Reason = Reason.MALFORMED) -> None:
        super().__init__(f"{addr!r}: {reason}")
        self.addr = addr
        self.reason = reason
        self.kind = kind


class CertificateError(PeerStoreError, ValueError):
    """A certificate fingerprint that is not one (a host passing anything but a SPKI SHA-256 in
    hex), or an acceptance with nothing to accept; the message names the address and says
    why."""


class ConfigError(PeerStoreError, ValueError):
    """A bad ``[network.persistence]`` setting; the message names the key and the value."""


class ClockError(PeerStoreError, ValueError):
    """The host's clock returned something that is not a time: NaN, infinity, a negative time
    or one past 2**63 seconds (where a peer file's integers end)."""


class StoreFileError(PeerStoreError):
    """A peer file that cannot be used; the message names the file."""


class StorePathError(StoreFileError, ValueError):
    """A realm code or a configured path that cannot name a peer file."""


class StoreLockedError(StoreFileError):
    """Another store holds the file.

    :attr:`pid` is the holder's process id when its lock file names one, else None.
    """

    def __init__(self, message: str, pid: int | None = None) -> None:
        super().__init__(message)
        self.pid = pid


class RealmMismatchError(StoreFileError):
    """The file belongs to another realm; it is never written.

    :attr:`found` is the realm the file names, :attr:`expected` the one the store was opened for.
    """

    def __init__(self, message: str, *, found: str, expected: str) -> None:
        super().__init__(message)
        self.found = found
        self.expected = expected


class NewerSchemaError(StoreFileError):
    """The file was written by a newer version; it is left untouched."""

    def __init__(self, message: str, *, schema: int) -> None:
        super().__init__(message)
        self.schema = schema


class EncryptionUnavailableError(ConfigError):
    """Encryption is asked for and ``cryptography`` is not installed (the ``encryption`` extra)."""


class KeyUnusableError(PeerStoreError):
    """The configured key cannot be used: not set, missing, unreadable, readable by group or
    others, or empty. The message names the key (``key_file PATH`` or ``key_env NAME``)."""


class KeyRefusedError(StoreFileError):
    """An encrypted peer file that no key at hand opens: encryption is off, the key cannot be
    used, or the file was sealed with another key. The file is left untouched."""


class SealDamagedError(StoreFileError):
    """An encrypted peer file that is not whole: unparsable envelope or failed authentication
    under the right key. Nothing of it can be salvaged."""


class TheNodesFileError(PeerStoreError):
    """A file that is not TheNodes' ``peers.json``: unreadable, too large, not UTF-8, not JSON,
    or not an array of records. The message names the file."""


class TheNodesRecordError(PeerStoreError, ValueError):
    """A record of TheNodes' ``peers.json`` that is not one TheNodes writes; the message names
    the record (``records[N]``) and what is wrong with it."""


class PeerFileMissingError(StoreFileError):
    """No peer file where one was named; the message names the path and how it was named."""


class NotAPeerFileError(StoreFileError):
    """A file that is not a peer file at all (no schema, realm or ``[[peers]]`` line); it is
    left untouched."""


class PeerFileDamagedError(StoreFileError):
    """A damaged peer file, refused by a write that would rewrite it; it is left unchanged."""
