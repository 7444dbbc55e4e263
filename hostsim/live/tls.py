"""TLS for the live node, as TheNodes speaks it: both directions, mTLS, the trust policy.

What TheNodes does (rustls): TLS 1.3 and 1.2, no ALPN, no SNI; inside the tunnel the same JSON
lines, the accepting side still sending HELLO first. hostsim speaks it with OpenSSL through
pyOpenSSL (the ``tls`` extra):

- TLS 1.2 or 1.3, no renegotiation, no compression, no ALPN, no SNI;
- the listener presents its certificate; with ``mtls = true`` it requires one from the
  dialler, and the dialler presents its own (without, it presents none, as TheNodes);
- no certificate is judged at the TLS layer (a peer proves it holds its certificate's key, and
  that is all OpenSSL checks); the trust policy (:mod:`hostsim.live.trust`) then judges the
  peer's certificate, on every dial and, with ``mtls = true``, on every accepted connection,
  as TheNodes 0.4.0 does.

Why pyOpenSSL, and this shape: Python's ``ssl`` module verifies a peer's certificate only
against certificate authorities, and has no verification callback, so a listener with mTLS
cannot accept an unknown client certificate and leave the decision to the trust policy (the
``open``, ``tofu`` and ``observe`` modes, and pins, need exactly that). pyOpenSSL's
``set_verify`` callback can. pyOpenSSL has no asyncio transport, so :class:`_TlsBridge` runs
an OpenSSL connection on memory buffers between the TCP transport asyncio made and a fresh
``StreamReader``/``StreamWriter`` pair: the node reads and writes lines exactly as on a
plaintext connection. One engine serves both directions and every mode, so one set of tests
covers them; the cryptography is OpenSSL's, the certificates are ``cryptography``'s.

A handshake that fails, times out or meets a refused certificate ends that connection only;
the node counts it as an incident and serves everyone else.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import attrs
from cryptography import x509
from OpenSSL import SSL

from hostsim.config import HostConfig
from hostsim.live.certs import (
    CERT_MODE,
    OwnCertificate,
    ensure_certificate,
    pem,
    spki_fingerprint,
    subject_text,
    write_new,
)
from hostsim.live.tlsconfig import Refused, TlsFailed, TlsSettings
from hostsim.live.trust import UNREADABLE, Decision, PeerFacts, TrustPolicy, Unreadable, decide

__all__ = ["MAX_TRUSTED_FILES", "TlsEndpoint", "TlsLink", "peer_facts", "trusted_fingerprints"]

logger = logging.getLogger(__name__)

READ_CHUNK: Final = 64 << 10
MAX_TRUSTED_FILES: Final = 10_000
"""Files read from ``trusted_cert_dir`` at most (a folder of an operator's peers)."""
MAX_TRUSTED_FILE_BYTES: Final = 1 << 20


def _reason(exc: BaseException) -> str:
    """A short reason for an OpenSSL error: its last reason string, else the exception's."""
    if isinstance(exc, SSL.Error) and exc.args and isinstance(exc.args[0], list):
        reasons = [str(item[-1]) for item in exc.args[0] if isinstance(item, tuple) and item]
        if reasons:
            return reasons[-1]
    if isinstance(exc, SSL.SysCallError):
        return "connection closed during the handshake"
    return str(exc) or type(exc).__name__


def _accept_any(
    conn: SSL.Connection, cert: Any, errnum: int, depth: int, ok: int
) -> bool:  # pragma: no cover - called by OpenSSL
    """Keep any certificate at the TLS layer: the trust policy judges it after the handshake."""
    return True


def _context(own: OwnCertificate, *, server: bool, mtls: bool) -> SSL.Context:
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_2_VERSION)
    ctx.set_options(SSL.OP_NO_RENEGOTIATION | SSL.OP_NO_COMPRESSION)
    if server or mtls:
        ctx.use_certificate(own.cert)
        ctx.use_privatekey(own.key)
        ctx.check_privatekey()
    if server and mtls:
        ctx.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, _accept_any)
    else:
        # A dialler judges the server's certificate after the handshake; a listener without
        # mTLS asks for none.
        ctx.set_verify(SSL.VERIFY_NONE, _accept_any)
    return ctx


class _TlsTransport(asyncio.Transport):
    """What the stream above sees: plaintext in, plaintext out, through the bridge."""

    def __init__(self, bridge: _TlsBridge) -> None:
        super().__init__()
        self._bridge = bridge

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._bridge.send(bytes(data))

    def writelines(self, list_of_data: Any) -> None:
        self._bridge.send(b"".join(list_of_data))

    def can_write_eof(self) -> bool:
        return False

    def write_eof(self) -> None:
        raise NotImplementedError("TLS connections close whole")

    def close(self) -> None:
        self._bridge.close()

    def abort(self) -> None:
        self._bridge.abort()

    def is_closing(self) -> bool:
        return self._bridge.closing or self._bridge.raw.is_closing()

    def get_write_buffer_size(self) -> int:
        return self._bridge.raw.get_write_buffer_size()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._bridge.raw.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._bridge.raw.set_write_buffer_limits(high, low)

    def pause_reading(self) -> None:
        self._bridge.raw.pause_reading()

    def resume_reading(self) -> None:
        self._bridge.raw.resume_reading()

    def is_reading(self) -> bool:
        return self._bridge.raw.is_reading()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "ssl_object":
            return self._bridge.conn
        return self._bridge.raw.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._bridge.app = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._bridge.app or asyncio.Protocol()


class _TlsBridge(asyncio.Protocol):
    """The TCP transport's protocol: an OpenSSL connection on memory buffers.

    Ciphertext from the socket goes into OpenSSL, plaintext out of it to :attr:`app` (a
    ``StreamReaderProtocol``); plaintext written by the stream goes into OpenSSL and the
    ciphertext it makes to the socket.
    """

    def __init__(self, conn: SSL.Connection, raw: asyncio.Transport) -> None:
        self.conn = conn
        self.raw = raw
        self.app: asyncio.BaseProtocol | None = None
        """The stream's protocol, once the handshake is done and the peer kept."""
        self.closing = False
        self.handshake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport = _TlsTransport(self)
        self._eof = False
        self._lost: tuple[Exception | None] | None = None
        self.plain_writer: asyncio.StreamWriter | None = None

    def attach(self, app: asyncio.Protocol) -> None:
        """Hand the plaintext to ``app`` from now on, with what came before (an end too)."""
        self.app = app
        app.connection_made(self.transport)
        self._read_plaintext()
        if self._eof:
            app.eof_received()
        if self._lost is not None:
            app.connection_lost(self._lost[0])

    def _fail_handshake(self, reason: str) -> None:
        if not self.handshake.done():
            self.handshake.set_exception(TlsFailed(reason))

    # -- from the socket ----------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        try:
            self.conn.bio_write(data)
            if not self.handshake.done():
                try:
                    self.conn.do_handshake()
                except SSL.WantReadError:
                    self._flush()
                    return
                self._flush()
                self.handshake.set_result(None)
            self._read_plaintext()
        except SSL.Error as exc:
            self._fatal(exc)

    def _read_plaintext(self) -> None:
        app = self.app
        if not isinstance(app, asyncio.Protocol):
            return  # kept in OpenSSL until the stream is attached
        while not self.closing:
            try:
                chunk = self.conn.recv(READ_CHUNK)
            except SSL.WantReadError:
                break
            except SSL.ZeroReturnError:  # the peer's close_notify
                app.eof_received()
                self.close()
                break
            app.data_received(chunk)
        self._flush()

    def eof_received(self) -> bool | None:
        self._fail_handshake("connection closed during the handshake")
        if isinstance(self.app, asyncio.Protocol):
            self.app.eof_received()
        else:
            self._eof = True
        return False  # the socket closes

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail_handshake(f"connection lost during the handshake: {exc or 'closed'}")
        if self.app is not None:
            self.app.connection_lost(exc)
        else:
            self._lost = (exc,)

    def pause_writing(self) -> None:
        if self.app is not None:
            self.app.pause_writing()

    def resume_writing(self) -> None:
        if self.app is not None:
            self.app.resume_writing()

    # -- to the socket ------------------------------------------------------------------------

    def start(self, *, server: bool) -> None:
        if server:
            self.conn.set_accept_state()
            return
        self.conn.set_connect_state()
        try:
            self.conn.do_handshake()
        except SSL.WantReadError:
            pass
        except SSL.Error as exc:
            self._fatal(exc)
        self._flush()

    def send(self, data: bytes) -> None:
        if self.closing or not self.handshake.done():
            return
        view = memoryview(data)
        try:
            while view:
                sent = self.conn.send(view[:READ_CHUNK].tobytes())
                view = view[sent:]
                self._flush()
        except SSL.Error as exc:
            self._fatal(exc)

    def _flush(self) -> None:
        while True:
            try:
                chunk = self.conn.bio_read(READ_CHUNK)
            except SSL.WantReadError:
                return
            if not chunk or self.raw.is_closing():
                return
            self.raw.write(chunk)

    def close(self) -> None:
        if self.closing:
            return
        self.closing = True
        if self.handshake.done():
            with contextlib.suppress(SSL.Error):
                self.conn.shutdown()  # close_notify
            self._flush()
        self.raw.close()

    def abort(self) -> None:
        self.closing = True
        self.raw.abort()

    def _fatal(self, exc: Exception) -> None:
        if self.handshake.done():
            logger.debug("TLS error after the handshake: %s", _reason(exc))
        self._fail_handshake(_reason(exc))
        self._flush()  # an alert, if OpenSSL made one
        self.abort()


@attrs.frozen
class TlsLink:
    """A connection after the TLS handshake and the trust policy."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    fingerprint: str | None
    """The SPKI SHA-256 of the peer's certificate; None when it showed none (a dialler to a
    listener without mTLS)."""


def peer_facts(cert: x509.Certificate) -> PeerFacts:
    """What the trust policy reads of a certificate."""
    return PeerFacts(
        fingerprint=spki_fingerprint(cert),
        subject=subject_text(cert),
        not_before=cert.not_valid_before_utc.timestamp(),
        not_after=cert.not_valid_after_utc.timestamp(),
    )


def trusted_fingerprints(folder: Path) -> frozenset[str] | Unreadable:
    """The fingerprints of the certificates in the ``*.pem`` files of ``folder`` (any case),
    as TheNodes reads them; a missing folder holds none; a file that is not PEM is skipped."""
    found: set[str] = set()
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)[:MAX_TRUSTED_FILES]
    except FileNotFoundError:
        return frozenset()
    except OSError:
        return UNREADABLE
    for entry in entries:
        if not entry.name.lower().endswith(".pem"):
            continue
        try:
            with open(entry.path, "rb") as file:
                data = file.read(MAX_TRUSTED_FILE_BYTES)
            certs = x509.load_pem_x509_certificates(data)
        except (OSError, ValueError):
            continue
        found.update(spki_fingerprint(cert) for cert in certs)
    return frozenset(found)


def _binding_path(observed: Path, subject: str) -> Path:
    """Where TheNodes 0.4.0 remembers a subject's fingerprint (TOFU)."""
    return observed / "bindings" / f"{hashlib.sha256(subject.encode()).hexdigest()}.txt"


def _binding_text(fingerprint: str, subject: str) -> bytes:
    return f"fingerprint={fingerprint}\nidentity={subject}\n".encode()


def remembered_fingerprint(observed: Path, subject: str) -> str | Unreadable | None:
    """The fingerprint remembered for ``subject`` in ``observed``, as TheNodes 0.4.0 writes it."""
    try:
        text = _binding_path(observed, subject).read_text(errors="replace")[:4096]
    except FileNotFoundError:
        return None
    except OSError:
        return UNREADABLE
    for line in text.splitlines():
        if line.startswith("fingerprint="):
            value = line.removeprefix("fingerprint=").strip()
            if value:
                return value.lower()
    value = text.strip()
    return value.lower() if value else None


class TlsEndpoint:
    """A node's TLS: its certificate, its two contexts, and its trust policy.

    :param settings: ``[encryption]``, read.
    :param own: The node's certificate and key.
    :param realm: The realm's name (``realm_subject_binding``).
    """

    def __init__(self, settings: TlsSettings, own: OwnCertificate, *, realm: str) -> None:
        self.settings = settings
        self.own = own
        self.realm = realm
        self.policy: TrustPolicy = settings.policy
        self._server = _context(own, server=True, mtls=settings.mtls)
        self._client = _context(own, server=False, mtls=settings.mtls)

    @classmethod
    def open(
        cls, settings: TlsSettings, *, node_id: str, realm: str, ips: Sequence[str]
    ) -> TlsEndpoint:
        """The node's TLS, its certificate made first if there is none (:attr:`own` ``.made``).

        :raises CertificateError: the certificate cannot be read, made or used.
        """
        own = ensure_certificate(
            settings.cert_path, settings.key_path, node_id=node_id, realm=realm, ips=ips
        )
        return cls(settings, own, realm=realm)

    @classmethod
    def for_node(
        cls, settings: TlsSettings, config: HostConfig, node_id: str, bind: str
    ) -> TlsEndpoint:
        """A live node's TLS: its certificate names its node id and realm, and has its
        advertised and bound IPs (see :func:`~hostsim.live.certs.make_certificate`)."""
        ips = [addr.rpartition(":")[0].strip("[]") for addr in config.listen_addrs]
        return cls.open(settings, node_id=node_id, realm=config.realm.name, ips=[*ips, bind])

    def status_lines(self) -> list[str]:
        """What a starting node says of its TLS, for people."""
        own, settings = self.own, self.settings
        lines = []
        if own.made:
            lines.append(f"made a TLS certificate: {own.cert_path} (key {own.key_path}, mode 0600)")
        lines.append(
            f"TLS on: certificate {own.cert_path}, SPKI SHA-256 {own.fingerprint};"
            f" mtls {'on' if settings.mtls else 'off'}; trust policy {self.policy.mode}"
        )
        return lines

    def event(self) -> dict[str, Any]:
        """The same as data: the ``tls`` status event's keys."""
        return {
            "certificate": str(self.own.cert_path),
            "fingerprint": self.own.fingerprint,
            "made": self.own.made,
            "mtls": self.settings.mtls,
            "mode": self.policy.mode,
        }

    async def accept(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float | None
    ) -> TlsLink:
        """Run the listener's side of the handshake on a connection just accepted.

        Call it before awaiting anything else on the connection: bytes the peer sent already
        are taken from ``reader``.

        :raises TlsFailed: the handshake failed or timed out.
        :raises Refused: with ``mtls``, the trust policy refused the peer's certificate.
        """
        return await self._upgrade(reader, writer, timeout, server=True)

    async def dial(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float | None
    ) -> TlsLink:
        """Run the dialler's side of the handshake on a connection just opened.

        :raises TlsFailed: the handshake failed or timed out.
        :raises Refused: the trust policy refused the listener's certificate.
        """
        return await self._upgrade(reader, writer, timeout, server=False)

    async def _upgrade(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        timeout: float | None,
        *,
        server: bool,
    ) -> TlsLink:
        loop = asyncio.get_running_loop()
        raw = writer.transport
        assert isinstance(raw, asyncio.Transport)
        conn = SSL.Connection(self._server if server else self._client, None)
        bridge = _TlsBridge(conn, raw)
        # The plaintext stream's writer would close the socket when collected: it lives as
        # long as the TLS connection does.
        bridge.plain_writer = writer
        early: bytes = bytes(getattr(reader, "_buffer", b""))  # sent before the swap
        raw.set_protocol(bridge)
        bridge.start(server=server)
        if early:
            bridge.data_received(early)
        try:
            await asyncio.wait_for(bridge.handshake, timeout)
        except TimeoutError:
            bridge.abort()
            raise TlsFailed("handshake timeout") from None
        except TlsFailed:
            bridge.abort()
            raise
        cert = conn.get_peer_certificate(as_cryptography=True)
        fingerprint = None if cert is None else spki_fingerprint(cert)
        if cert is not None and (not server or self.settings.mtls):
            decision = self.judge(cert)
            if not decision.accept:
                bridge.abort()
                raise Refused(decision, fingerprint)
        tls_reader = asyncio.StreamReader(limit=getattr(reader, "_limit", 2**16), loop=loop)
        protocol = asyncio.StreamReaderProtocol(tls_reader, loop=loop)
        tls_writer = asyncio.StreamWriter(bridge.transport, protocol, tls_reader, loop)
        bridge.attach(protocol)
        return TlsLink(tls_reader, tls_writer, fingerprint)

    # -- the trust policy, with its folders --------------------------------------------------

    def judge(self, cert: x509.Certificate) -> Decision:
        """Apply the trust policy to ``cert``, writing what the decision asks for."""
        facts = peer_facts(cert)
        policy = self.policy
        trusted = None
        if policy.trusted_dir is not None and policy.mode in ("allowlist", "tofu"):
            trusted = trusted_fingerprints(policy.trusted_dir)
        observed = policy.observed_dir
        remembered = None
        if observed is not None and policy.mode == "tofu":
            remembered = remembered_fingerprint(observed, facts.subject)
        decision = self._decide(facts, trusted, remembered)
        if observed is None:
            return decision
        if decision.store_certificate:
            with contextlib.suppress(OSError):
                write_new(observed / f"{facts.fingerprint}.pem", pem(cert), CERT_MODE)
        if decision.bind == "overwrite":
            with contextlib.suppress(OSError):
                _replace(
                    _binding_path(observed, facts.subject),
                    _binding_text(facts.fingerprint, facts.subject),
                )
        elif decision.bind == "create":
            try:
                write_new(
                    _binding_path(observed, facts.subject),
                    _binding_text(facts.fingerprint, facts.subject),
                    CERT_MODE,
                )
            except FileExistsError:  # another connection remembered this subject first
                remembered = remembered_fingerprint(observed, facts.subject)
                decision = self._decide(facts, trusted, remembered)
            except OSError:
                decision = Decision(False, "tofu-storage-unwritable")
        return decision

    def _decide(
        self,
        facts: PeerFacts,
        trusted: frozenset[str] | Unreadable | None,
        remembered: str | Unreadable | None,
    ) -> Decision:
        return decide(
            self.policy,
            facts,
            realm=self.realm,
            now=time.time(),
            trusted=trusted,
            remembered=remembered,
        )


def _replace(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` whole: a temporary file renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, CERT_MODE)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
