"""The live world: one node on real TCP sockets and the real clock, speaking TheNodes' protocol.

The node listens on its config's port, on ``127.0.0.1`` unless told another bind address. The
host core (:class:`~hostsim.core.NodeCore`) decides what to dial and when; this module moves
the lines. The handshake is TheNodes': the listener sends its HELLO first, the dialer replies
with its HELLO and its realm, and the listener closes a connection whose realm (code and
version) differs. A HELLO with the node's own id, or of a node already connected, ends the
connection.

Liveness follows the peer's version. Every ``heartbeat_interval_ms`` the node sends each peer
TheNodes 0.4's liveness probe, and it answers every probe it receives, with its own node id in
``from`` (as it writes it in every message but HELLO). A peer that has answered a probe is
judged as TheNodes 0.4 judges it: silent for ``heartbeat_timeout_ms``, it is closed. A peer
that never answers (TheNodes 0.2 sends no heartbeat and answers none) is judged by its TCP
connection: keepalive probes, and a write the peer does not acknowledge within the timeout
(``TCP_USER_TIMEOUT``), end a dead one; a quiet live one stays. A timeout of 0 means never.

A well-formed message the node does not act on (relay, punch, delivery acknowledgements, a
later version's type) is ignored and counted at debug level, as TheNodes ignores it.

Every byte from the network is hostile. A line over 1 MiB, a line not ended within
:data:`MAX_LINE_SECS` (or the heartbeat timeout) of its first byte, a line that is not UTF-8 or
JSON, a malformed message, a bad HELLO, a realm mismatch, a handshake that does not finish in
time, a probed peer silent past the heartbeat timeout, a peer that does not read: each closes
that connection and is counted (:class:`~hostsim.live.incidents.Incidents`); a closed
connection is aborted, never left flushing to a peer that does not read. A peer list longer
than :data:`MAX_PEER_LIST` is cut; what remains is validated and canonicalised here, at the
edge (:func:`canonical_peers`): the core, the plugins and the answers to peer requests only
ever see canonical ``"ip:port"`` addresses, one per address however it was spelt. An answer
always fits in one line a peer reads. Each connection is answered at most
:data:`ANSWER_BURST` peer requests at once and one every :data:`ANSWER_EVERY_SECS` after
that; the peer lists it sends unasked are read at most :data:`LIST_BURST` at once and one
every :data:`LIST_EVERY_SECS` (an answer to this node's own request is always read); the rest
is counted, not acted on. A new inbound connection beyond ``max_inbound`` evicts a
connection still in its handshake if there is one (the oldest of the network group with the
most of them), else an inbound peer as Bitcoin Core does
(:meth:`LiveNode._eviction_candidate`), or is refused when every inbound peer is protected.
An inbound peer's listen address is a claim that never stops the node dialling that address
from its plan (:mod:`hostsim.core`); a dialled peer whose node id an inbound connection
already holds replaces that connection (only a dial proves who is at an address), unless that
connection claimed the very address dialled, which the dial has just proven. Nothing one
connection does stops the node serving the others.

A node bound to a loopback address (IPv4 or IPv6) dials loopback IP literals only: whatever
else it learns is handed to the plugins as usual and kept in its book, but never dialled.

With TLS on (``[encryption]``, :mod:`hostsim.live.tls`) every connection runs the TLS
handshake and the trust policy before TheNodes' handshake, in both directions; the peer's
certificate fingerprint reaches the plugins as ``peer.cert_fingerprint``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import os
import random
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import attrs

from hostsim import wire
from hostsim.addresses import canonical_ip_port
from hostsim.config import MAX_DURATION_MS, HostConfig
from hostsim.core import Connection, NodeCore, World
from hostsim.host import Dial, Direction, PluginHost
from hostsim.limits import TokenBucket, printable
from hostsim.live.incidents import Incidents, Kind
from hostsim.live.settings import LiveSettings
from hostsim.live.tlsconfig import Refused, TlsFailed, TlsSettings
from hostsim.plugins import EntryPointLike
from thenodes_console import counted
from thenodes_naming import NODE_ID_RE, realm_code

if TYPE_CHECKING:
    from hostsim.live.tls import TlsEndpoint

__all__ = [
    "ANSWER_BURST",
    "ANSWER_EVERY_SECS",
    "LIST_BURST",
    "LIST_EVERY_SECS",
    "MAX_LINE_SECS",
    "MAX_PEER_LIST",
    "STATUS_EVENTS",
    "ListenError",
    "LiveNode",
    "RealClock",
    "canonical_peers",
    "is_loopback",
]

logger = logging.getLogger(__name__)

STATUS_EVENTS: Final[Mapping[str, tuple[str, ...]]] = {
    "listening": ("addrs", "node_id", "realm_code", "realm_version"),
    "dial_order": ("dials", "origins"),
    "dialling": ("addr", "origin"),
    "dial_failed": ("addr", "origin", "error"),
    "connected": ("addr", "node_id", "direction", "connections", "outbound", "dial_addr"),
    "disconnected": ("addr", "node_id", "reason", "connections"),
    "evicted": ("addr", "make_room_for"),
    "peer_list": ("addr", "addresses"),
    "tls": ("certificate", "fingerprint", "made", "mtls", "mode"),
    "stopped": ("incidents",),
    "dropped": ("lines",),
}
"""What a node's status says as data: each event (the ``event`` key) and its keys, besides
``event`` and ``t`` (Unix time). ``dial_order``: ``dials`` is the dial order, a list of
``{"addr", "origin"}`` (an origin is the name of the plugin that planned the dial, or
``"seed"``), ``origins`` the dials per origin. ``connected``: ``addr`` is the connection's key
(the dialled address, or the remote's address for an inbound one), ``direction``
``"inbound"`` or ``"outbound"``, ``connections`` and ``outbound`` the counts after it,
``dial_addr`` the address the peer can be dialled at (or null). ``disconnected``:
``connections`` is the count after it. ``peer_list``: ``addresses`` is how many usable
addresses the list from ``addr`` held. ``tls`` (TLS on, before ``listening``): the node's
``certificate`` file, its SPKI SHA-256 ``fingerprint``, whether it was ``made`` now, ``mtls``
and the trust policy's ``mode``. ``stopped``: ``incidents`` counts the incidents by kind.
``dropped`` (``hostsim node`` only): ``lines`` status lines were dropped because stdout was
not read."""
MAX_PEER_LIST: Final = 1000
"""Addresses read from one PEER_LIST (and the most a PEER_REQUEST is answered with)."""
MAX_WRITE_BUFFER: Final = 256 << 10
"""Bytes queued for a peer that does not read before its connection is closed: five of the
longest answers (1,000 addresses, about 50 KB) a peer that reads never leaves queued."""
MAX_ADDR_CHARS: Final = len("[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535")
"""The longest IP literal address with a port; anything longer is not parsed at all."""
MAX_CAPABILITY_CHARS: Final = 64
EVICTION_PROTECT: Final = 4
"""Inbound peers protected from eviction for each of: a distinct network group, the most
recent useful peer list (at most one a network group)."""
MAX_LINE_SECS: Final = 30.0
"""The longest a line may take from its first byte to its newline (never longer than the
heartbeat timeout): a peer that trickles a line without ending it holds no slot for long.
A 50 KB peer list needs 2 KB/s."""
ANSWER_BURST: Final = 4
ANSWER_EVERY_SECS: Final = 10.0
"""Peer requests answered on one connection: :data:`ANSWER_BURST` at once, then one every
this many seconds (TheNodes asks one every 90 s; Bitcoin Core answers GETADDR once a
connection). The rest get no answer."""
LIST_BURST: Final = 8
LIST_EVERY_SECS: Final = 10.0
"""Peer lists read from one connection without this node asking: :data:`LIST_BURST` at once,
then one every this many seconds (TheNodes sends peer lists only as answers). The rest are
counted and dropped unread."""
READ_CHUNK: Final = 1 << 16


class ListenError(OSError):
    """The node's address cannot be bound; the message names the address and port."""

    def __init__(self, host: str, port: int, cause: OSError) -> None:
        reason = (cause.strerror or str(cause)).lower()
        if cause.errno == errno.EADDRINUSE:
            reason = "the port is already in use (another node or program listens on it)"
        shown = f"[{host}]" if ":" in host else host
        super().__init__(cause.errno, f"cannot listen on {shown}:{port}: {reason}")
        self.host, self.port = host, port

    def __str__(self) -> str:
        return str(self.strerror)


def _os_reason(exc: OSError) -> str:
    """``connection refused``: the errno's own words (asyncio's message names only the call)."""
    if exc.errno is not None:
        return os.strerror(exc.errno).lower()
    return (exc.strerror or str(exc)).lower()


class RealClock:
    """The real clock."""

    def now(self) -> float:
        """Seconds since the epoch."""
        return time.time()


def is_loopback(addr: str) -> bool:
    """Whether ``addr`` (``"ip:port"``) is a loopback address."""
    try:
        host = canonical_ip_port(addr).rpartition(":")[0].strip("[]")
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_loopback_ip(text: str) -> bool:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def canonical_peers(peers: Sequence[str]) -> tuple[list[str], list[str]]:
    """The canonical addresses among ``peers``, in order, each once; and the strings that are
    not an IP literal with a port (a string too long to be one is not parsed)."""
    good: dict[str, None] = {}
    bad: list[str] = []
    for text in peers:
        if len(text) > MAX_ADDR_CHARS:
            bad.append(text)
            continue
        try:
            good[canonical_ip_port(text)] = None
        except ValueError:
            bad.append(text)
    return list(good), bad


def network_group(ip: str) -> str:
    """The network group of an IP: IPv4 /16, IPv6 /32 (as a plugin that keeps peers groups them)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    prefix = 16 if address.version == 4 else 32
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


class _Closed(Exception):
    """A connection ends; ``kind`` is the incident to count, if any."""

    def __init__(self, reason: str, kind: Kind | None = None, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind
        self.detail = detail


class _Quiet(_Closed):
    """No line came within the time allowed: the end of a connection that must speak (a
    handshake, a peer that answers probes), not of one that may stay quiet."""


def _answers() -> TokenBucket:
    return TokenBucket(1 / ANSWER_EVERY_SECS, ANSWER_BURST)


def _lists() -> TokenBucket:
    return TokenBucket(1 / LIST_EVERY_SECS, LIST_BURST)


@attrs.define(eq=False)
class _Link:
    """One TCP connection: its streams and who is at the other end."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    remote: str
    """The observed remote socket address, canonical ``"ip:port"``."""
    ip: str
    inbound: bool = False
    established: bool = False
    """The handshake completed (until then an inbound connection is evicted first)."""
    last_heard: float = attrs.field(factory=time.monotonic)
    opened: float = attrs.field(factory=time.monotonic)
    last_useful: float = 0.0
    """When the peer last sent a peer list with an address new to the node and worth dialling
    (0: never)."""
    evicted: bool = False
    answers_probes: bool = False
    """The peer has answered a liveness probe: it is judged by silence, as TheNodes 0.4 does."""
    fingerprint: str | None = None
    """The SPKI SHA-256 of the peer's TLS certificate; None without TLS or without one."""
    asked: int = 0
    """Peer requests this node sent on the connection and not yet answered."""
    answers: TokenBucket = attrs.field(factory=_answers)
    lists: TokenBucket = attrs.field(factory=_lists)
    buffer: bytearray = attrs.field(factory=bytearray)
    """Bytes read and not yet cut into lines."""
    scanned: int = 0
    """Bytes at the start of :attr:`buffer` known to hold no newline."""
    fed: float = 0.0
    line_started: float | None = None
    """When the first byte of the line in :attr:`buffer` arrived (None: no line begun)."""

    def feed(self, chunk: bytes, now: float) -> None:
        """Take bytes read from the peer."""
        if not self.buffer:
            self.line_started = now
        self.buffer += chunk
        self.fed = now

    def take_line(self) -> bytes | None:
        """The next whole line in :attr:`buffer` (newline cut), or None."""
        at = self.buffer.find(b"\n", self.scanned)
        if at < 0:
            self.scanned = len(self.buffer)
            return None
        if at > wire.MAX_LINE_BYTES:
            raise _Closed("line too long", "line_too_long")
        line = bytes(self.buffer[:at])
        del self.buffer[: at + 1]
        self.scanned = 0
        self.line_started = self.fed if self.buffer else None
        return line

    def send(self, envelope: wire.Envelope) -> None:
        if self.writer.is_closing():
            return
        transport = self.writer.transport
        if transport.get_write_buffer_size() > MAX_WRITE_BUFFER:
            self.abort()
            raise _Closed("peer does not read", "slow_reader")
        self.writer.write(wire.encode(envelope))

    def abort(self) -> None:
        """Close now, dropping whatever the peer has not read."""
        with contextlib.suppress(Exception):
            self.writer.transport.abort()

    def close(self) -> None:
        """Close; a peer that has not read everything is aborted rather than waited for (a
        transport that is closing holds its socket until its buffer is flushed)."""
        with contextlib.suppress(Exception):
            self.writer.close()
        with contextlib.suppress(Exception):
            if self.writer.transport.get_write_buffer_size():
                self.writer.transport.abort()

    async def aclose(self) -> None:
        self.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), 1.0)


def _keep_alive(writer: asyncio.StreamWriter, timeout: float | None) -> None:
    """Let the kernel judge a quiet connection: keepalive probes, and unacknowledged writes
    failing after ``timeout`` seconds (Linux ``TCP_USER_TIMEOUT``; elsewhere what exists).

    Every value is kept to what Linux takes, so no timeout makes this raise: the user timeout
    is at most :data:`~hostsim.config.MAX_DURATION_MS` (a C ``int`` of milliseconds), the
    keepalive idle time and interval at most 32,767 s (``MAX_TCP_KEEPIDLE``)."""
    sock = writer.get_extra_info("socket")
    if sock is None or timeout is None:
        return
    longest_keepalive_secs = 32_767
    secs = min(max(0.001, timeout), MAX_DURATION_MS / 1000)
    idle = min(max(1, int(secs / 3)), longest_keepalive_secs)
    options = [
        (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),
        (socket.IPPROTO_TCP, getattr(socket, "TCP_KEEPIDLE", None), idle),
        (socket.IPPROTO_TCP, getattr(socket, "TCP_KEEPINTVL", None), idle),
        (socket.IPPROTO_TCP, getattr(socket, "TCP_KEEPCNT", None), 3),
        (
            socket.IPPROTO_TCP,
            getattr(socket, "TCP_USER_TIMEOUT", None),
            min(round(secs * 1000), MAX_DURATION_MS),
        ),
    ]
    for level, option, value in options:
        if option is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(level, option, value)


def _socket_addr(info: Any) -> tuple[str, str]:
    """The canonical ``"ip:port"`` and the IP of a socket name."""
    host, port = str(info[0]), int(info[1])
    text = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    addr = canonical_ip_port(text)
    return addr, addr.rpartition(":")[0].strip("[]")


class LiveNode:
    """One live node: its listener, its connections, its core and its plugins.

    :param config: The host config (its ``port`` is the port to listen on).
    :param settings: Bind address, timeouts, caps and the core's policy.
    :param status: Called with a one-line status for people and scripts (listening, the dial
        order, each dial, each connection and disconnection, each peer list, stopping).
    :param events: Called with the same news as data, one mapping per status line, for
        programs (``hostsim node --status json``); its keys are in :data:`STATUS_EVENTS`.
    """

    def __init__(
        self,
        config: HostConfig,
        settings: LiveSettings,
        *,
        status: Callable[[str], None] | None = None,
        events: Callable[[dict[str, Any]], None] | None = None,
        extra_plugins_factory: Callable[[], Mapping[str, object]] | None = None,
        entry_points: Iterable[EntryPointLike] | None = None,
        listen_socket: socket.socket | None = None,
    ) -> None:
        self.config = config
        self.settings = settings
        self.listen_socket = listen_socket
        """A socket bound to the config's port and listening, handed over by the process that
        holds the port (``hostsim node --listen-fd``); None: the node binds its own."""
        self.status = status or (lambda line: None)
        self.events = events
        self.host = PluginHost(
            config,
            clock=RealClock(),
            extra_plugins_factory=extra_plugins_factory,
            entry_points=entry_points,
        )
        self.node_id = self.host.node_id
        """The node's id: ``[node] id``, else the one in its id file."""
        self.incidents = Incidents(self.node_id)
        self.loopback_only = _is_loopback_ip(settings.bind)
        idle = settings.idle_timeout_secs
        self.line_secs = MAX_LINE_SECS if idle is None else min(MAX_LINE_SECS, idle)
        """The longest a line may take from its first byte to its newline."""
        self.core = NodeCore(
            self.host,
            policy=settings.policy,
            world=_LiveWorld(self),
            # Dial choices and jitter, not secrets.
            rng=random.Random(),  # noqa: S311
            now=time.time,
            may_dial=self._may_dial if self.loopback_only else None,
        )
        self.realm = wire.Realm(config.realm.name, config.realm.code, config.realm.version)
        self.listen_addr = config.listen_addrs[0] if config.listen_addrs else None
        self.inbound_open = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._handlers: set[asyncio.Task[Any]] = set()
        """The listener's tasks, one per inbound connection (they end when it is closed)."""
        self._links: set[_Link] = set()
        self._server: asyncio.Server | None = None
        self.tls: TlsEndpoint | None = None
        """The node's TLS once started with TLS on (``settings.tls``)."""
        self.dials: list[Dial] = []
        # Network groups are ranked by a salted hash, so a peer cannot pick a protected one.
        self._group_salt = random.getrandbits(64)
        self.ignored: Counter[str] = Counter()
        """Well-formed messages received and not acted on, by ``msg_type``."""

    # -- running -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen, then start the core: ``on_startup``, ``on_bootstrap``, the first dials.

        :raises ListenError: the address cannot be bound (an ``OSError``).
        :raises HostsimError: a plugin could not be loaded or refused to start, or the TLS
            certificate cannot be read or made.
        """
        if self.settings.tls is not None:
            self._start_tls(self.settings.tls)
        try:
            if self.listen_socket is not None:
                self._server = await asyncio.start_server(
                    self._accept, sock=self.listen_socket, limit=wire.MAX_LINE_BYTES + 1
                )
            else:
                self._server = await asyncio.start_server(
                    self._accept,
                    host=self.settings.bind,
                    port=self.config.port,
                    limit=wire.MAX_LINE_BYTES + 1,
                )
        except OSError as exc:
            raise ListenError(self.settings.bind, self.config.port, exc) from exc
        bound = ", ".join(
            _socket_addr(sock.getsockname())[0] for sock in self._server.sockets or ()
        )

        def listening(dials: list[Dial]) -> None:
            # Said once the plugins started (their files locked, their state loaded), so a
            # node that cannot start never claims to listen.
            self.status(
                f"listening on {bound} as {self.node_id}"
                f" (realm {self.config.realm.code} {self.config.realm.version})"
            )
            self._event(
                "listening",
                addrs=bound.split(", ") if bound else [],
                node_id=self.node_id,
                realm_code=self.config.realm.code,
                realm_version=self.config.realm.version,
            )
            origins: dict[str, int] = {}
            for dial in dials:
                origins[dial.origin] = origins.get(dial.origin, 0) + 1
            summary = ", ".join(f"{n} from {origin}" for origin, n in origins.items())
            self.status(f"dial order: {summary or 'nothing'}")
            for number, dial in enumerate(dials, start=1):
                self.status(f"  {number}. {dial.addr} ({dial.origin})")
            self._event(
                "dial_order",
                dials=[{"addr": d.addr, "origin": d.origin} for d in dials],
                origins=origins,
            )

        try:
            self.dials = self.core.start(before_dials=listening)
        except BaseException:
            self._server.close()
            raise
        self._spawn(self._ticks())
        self._spawn(self._heartbeats())

    def _start_tls(self, settings: TlsSettings) -> None:
        """Load the node's certificate, or make it (said in one line), and say what TLS is."""
        from hostsim.live.tls import TlsEndpoint  # noqa: PLC0415 (the tls extra, when TLS is on)

        self.tls = TlsEndpoint.for_node(settings, self.config, self.node_id, self.settings.bind)
        for line in self.tls.status_lines():
            self.status(line)
        self._event("tls", **self.tls.event())
        if settings.versions_differ is not None:
            logger.warning("node %s: %s", self.node_id, settings.versions_differ)

    async def _secure(self, link: _Link, *, server: bool) -> None:
        """The TLS handshake and the trust policy on a new connection; from then on ``link``
        reads and writes through TLS.

        :raises _Closed: the handshake failed or timed out, or the certificate was refused.
        """
        assert self.tls is not None
        upgrade = self.tls.accept if server else self.tls.dial
        try:
            secured = await upgrade(link.reader, link.writer, self.settings.handshake_timeout_secs)
        except TlsFailed as exc:
            raise _Closed(f"TLS: {exc}", "tls_handshake", str(exc)) from None
        except Refused as exc:
            detail = f"{exc} (trust policy {self.tls.policy.mode}, fingerprint {exc.fingerprint})"
            raise _Closed(f"TLS: certificate refused: {exc}", "tls_untrusted", detail) from None
        link.reader, link.writer = secured.reader, secured.writer
        link.fingerprint = secured.fingerprint

    async def run(self, stop: asyncio.Event) -> None:
        """Start, serve until ``stop`` is set, then stop gracefully."""
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()

    async def stop(self) -> None:
        """Stop gracefully: stop listening, close every connection, ``on_shutdown``."""
        if self._server is not None:
            self._server.close()
        if self.core.up:
            self.core.stop(graceful=True)
        for link in list(self._links):
            link.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._handlers:
            await asyncio.wait(list(self._handlers), timeout=2.0)
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
        counts = ", ".join(f"{kind} {n}" for kind, n in sorted(self.incidents.counts.items()))
        self.status(f"stopped; incidents: {counts or 'none'}")
        self._event("stopped", incidents=dict(self.incidents.counts))

    def _event(self, event: str, **fields: Any) -> None:
        """Tell :attr:`events` (if any) of ``event``: one JSON-ready mapping."""
        if self.events is not None:
            self.events({"event": event, "t": time.time(), **fields})

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _ticks(self) -> None:
        while self.core.up:
            await asyncio.sleep(self.settings.tick_interval_secs)
            if self.core.up:
                self.core.tick()
                self.incidents.flush()

    async def _heartbeats(self) -> None:
        interval = self.settings.heartbeat_interval_secs
        if interval is None:
            return
        probe = wire.liveness_payload(wire.LIVENESS_PROBE)
        while self.core.up:
            await asyncio.sleep(interval)
            for conn in list(self.core.conns.values()):
                if isinstance(conn.handle, _Link):
                    self._send(conn.handle, wire.HEARTBEAT, to=conn.peer.node_id, payload=probe)

    def _may_dial(self, addr: str) -> bool:
        if is_loopback(addr):
            return True
        self.incidents("off_loopback", addr)
        return False

    # -- connections -------------------------------------------------------------------------

    def _hello(self) -> wire.Hello:
        return wire.Hello(
            node_id=self.node_id, listen_addr=self.listen_addr, node_type=self.config.node_type
        )

    def _send(
        self,
        link: _Link,
        msg: wire.Message,
        to: str | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> None:
        sender = wire.APP_NAME if isinstance(msg, wire.Hello) else self.node_id
        envelope = wire.Envelope(sender, to or link.remote, msg, payload, realm=self.realm)
        try:
            link.send(envelope)
        except _Closed as closed:
            if closed.kind is not None:
                self.incidents(closed.kind, link.ip)

    async def _line(self, link: _Link, timeout: float | None, kind: Kind) -> bytes | None:
        """The next line (newline cut), or None at the end of the stream (a line left
        unfinished there is dropped).

        :raises _Closed: ``kind`` when no line came within ``timeout``; ``slow_line`` when a
            line begun is not ended within :attr:`line_secs` of its first byte, however long
            the wait for it may be.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while (line := link.take_line()) is None:
            if len(link.buffer) > wire.MAX_LINE_BYTES:
                raise _Closed("line too long", "line_too_long")
            now = time.monotonic()
            wait = None if deadline is None else deadline - now
            ends = None if link.line_started is None else link.line_started + self.line_secs
            if ends is not None:
                wait = ends - now if wait is None else min(wait, ends - now)
            try:
                chunk = await asyncio.wait_for(link.reader.read(READ_CHUNK), wait)
            except OSError as exc:  # TimeoutError included, whoever raised it
                if exc.errno == errno.ETIMEDOUT:  # keepalive or an unacknowledged write gave up
                    raise _Closed(
                        "connection dead", "silent_peer", "no TCP acknowledgement"
                    ) from None
                if not isinstance(exc, TimeoutError):
                    raise _Closed(f"connection error: {exc.strerror or exc}") from None
                if ends is not None and time.monotonic() >= ends:  # the wait ran out
                    raise _Closed(
                        "line not ended in time",
                        "slow_line",
                        f"{len(link.buffer)} bytes in {self.line_secs:g} s without a newline",
                    ) from None
                raise _Quiet("timeout", kind) from None
            if not chunk:
                return None
            link.feed(chunk, time.monotonic())
        link.last_heard = time.monotonic()
        return line

    def _decode(self, line: bytes, *, handshake: bool = False) -> wire.Envelope:
        try:
            return wire.decode(line)
        except wire.WireError as exc:
            kind: Kind = "bad_hello" if handshake and exc.kind == "bad_message" else exc.kind
            raise _Closed(str(exc), kind, exc.detail) from None

    def _check_realm(self, realm: wire.Realm | None, *, required: bool) -> None:
        if realm is None:
            if required:
                raise _Closed("no realm in HELLO", "realm_mismatch", "no realm")
            return
        code = realm.code if realm.code is not None else realm_code(realm.name)
        if code != self.realm.code or realm.version != self.realm.version:
            raise _Closed(
                "realm mismatch", "realm_mismatch", f"realm {code!r} version {realm.version!r}"
            )

    def _check_hello(self, envelope: wire.Envelope) -> wire.Hello:
        hello = envelope.msg
        if not isinstance(hello, wire.Hello):
            raise _Closed("expected a HELLO", "bad_hello", f"got {type(hello).__name__}")
        if not NODE_ID_RE.fullmatch(hello.node_id):
            raise _Closed("bad node id", "bad_hello", f"node_id {hello.node_id[:40]!r}")
        if hello.protocol not in (None, wire.PROTOCOL_NAME):
            raise _Closed("another protocol", "bad_hello", f"protocol {hello.protocol[:40]!r}")
        if hello.node_id == self.node_id:
            raise _Closed("peer has our own node id", "own_node_id")
        return hello

    @staticmethod
    def _listen_addr(hello: wire.Hello) -> str | None:
        if hello.listen_addr is None or len(hello.listen_addr) > MAX_ADDR_CHARS:
            return None
        try:
            return canonical_ip_port(hello.listen_addr)
        except ValueError:
            return None

    def _capabilities(self, hello: wire.Hello) -> tuple[str, ...]:
        """At most 32 capabilities of at most 64 characters: held as long as the connection."""
        return tuple(c for c in (hello.capabilities or ())[:32] if len(c) <= MAX_CAPABILITY_CHARS)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        remote, ip = _socket_addr(writer.get_extra_info("peername"))
        link = _Link(reader, writer, remote, ip, inbound=True)
        _keep_alive(writer, self.settings.idle_timeout_secs)
        if self.inbound_open >= self.settings.max_inbound and self.core.up:
            victim = self._eviction_candidate()
            if victim is not None:
                victim.evicted = True
                victim.abort()
                if victim.established:
                    self.status(f"evicted {victim.remote} to make room for {remote}")
                    self._event("evicted", addr=victim.remote, make_room_for=remote)
                else:
                    self.incidents("handshake_evicted", victim.ip)
        if self.inbound_open >= self.settings.max_inbound + self._evicting() or not self.core.up:
            if self.core.up:
                self.incidents("inbound_cap", ip)
            await link.aclose()
            return
        self.inbound_open += 1
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        self._links.add(link)
        try:
            if self.tls is not None:
                await self._secure(link, server=True)
            self._send(link, self._hello())
            line = await self._line(link, self.settings.handshake_timeout_secs, "handshake_timeout")
            if line is None:
                return
            reply = self._decode(line, handshake=True)
            self._check_realm(reply.realm, required=True)
            hello = self._check_hello(reply)
            if (refusal := self.core.refusal(hello.node_id)) is not None or not self.core.up:
                logger.debug("node %s: closing %s: %s", self.node_id, remote, refusal)
                return
            self._connected(link, hello, "inbound")
            await self._serve(link, remote)
        except _Closed as closed:
            if closed.kind is not None:
                self.incidents(closed.kind, ip, closed.detail)
        except Exception:
            logger.exception("node %s: connection from %s failed", self.node_id, remote)
        finally:
            self.inbound_open -= 1
            if task is not None:
                self._handlers.discard(task)
            self._links.discard(link)
            await link.aclose()

    def _evicting(self) -> int:
        """Inbound connections evicted whose handlers have not ended yet."""
        return sum(1 for link in self._links if link.evicted)

    def _eviction_candidate(self) -> _Link | None:
        """The inbound connection to evict for a new one, or None: every one is protected.

        A connection still in its handshake goes first: the oldest of the network group with
        the most of them (a flood of half-open connections from one place churns its own).
        Else Bitcoin Core's rule (``SelectNodeToEvict``), with this protocol's signs of use:
        protect one peer in each of :data:`EVICTION_PROTECT` distinct network groups (ranked
        by a salted hash, so an attacker cannot choose them), the :data:`EVICTION_PROTECT`
        that most recently sent an address new to the node and worth dialling (at most one a
        network group, :meth:`_news`), and the longest connected half of the rest; then evict
        the youngest peer of the network group with the most peers.
        """
        pending = [
            link
            for link in self._links
            if link.inbound and not link.established and not link.evicted
        ]
        if pending:
            by_group = Counter(network_group(link.ip) for link in pending)
            return min(pending, key=lambda link: (-by_group[network_group(link.ip)], link.opened))
        links = [
            conn.handle
            for conn in self.core.conns.values()
            if not conn.outbound and isinstance(conn.handle, _Link) and not conn.handle.evicted
        ]
        oldest_first = sorted(links, key=lambda link: link.opened)
        groups: dict[str, list[_Link]] = {}
        for link in oldest_first:
            groups.setdefault(network_group(link.ip), []).append(link)
        ranked = sorted(groups, key=lambda group: hash((self._group_salt, group)))
        protected = {id(groups[group][0]) for group in ranked[:EVICTION_PROTECT]}
        useful = sorted(
            (link for link in links if link.last_useful and id(link) not in protected),
            key=lambda link: link.last_useful,
            reverse=True,
        )
        useful_groups: set[str] = set()
        for link in useful:
            if len(useful_groups) == EVICTION_PROTECT:
                break
            if (group := network_group(link.ip)) not in useful_groups:
                useful_groups.add(group)
                protected.add(id(link))
        rest = [link for link in oldest_first if id(link) not in protected]
        rest = rest[len(rest) // 2 :]
        if not rest:
            return None
        sizes = Counter(network_group(link.ip) for link in rest)
        largest = max(sizes.values())
        youngest = [link for link in rest if sizes[network_group(link.ip)] == largest]
        return youngest[-1]

    def dial(self, addr: str, origin: str) -> None:
        """Start a dial (the core calls this)."""
        self.status(f"dialling {addr} ({origin})")
        self._event("dialling", addr=addr, origin=origin)
        self._spawn(self._dial(addr, origin))

    async def _dial(self, addr: str, origin: str) -> None:
        try:
            host, _, port = canonical_ip_port(addr).rpartition(":")
        except ValueError as exc:
            self._dial_failed(addr, origin, f"not an address: {printable(str(exc), 80)}")
            return
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host.strip("[]"), int(port), limit=wire.MAX_LINE_BYTES + 1),
                self.settings.connect_timeout_secs,
            )
        except TimeoutError:
            self._dial_failed(addr, origin, "timeout")
            return
        except OSError as exc:
            self._dial_failed(addr, origin, _os_reason(exc))
            return
        _, ip = _socket_addr(writer.get_extra_info("peername"))
        link = _Link(reader, writer, addr, ip)
        _keep_alive(writer, self.settings.idle_timeout_secs)
        self._links.add(link)
        connected = False
        try:
            if self.tls is not None:
                await self._secure(link, server=False)
            line = await self._line(link, self.settings.handshake_timeout_secs, "handshake_timeout")
            if line is None:
                raise _Closed("closed before its HELLO")
            envelope = self._decode(line, handshake=True)
            self._check_realm(envelope.realm, required=False)
            hello = self._check_hello(envelope)
            if self._claim_proven(hello.node_id, addr):
                # The node that connected in is the one at this address: its connection stays
                # (cutting it would cut the peer's own outbound connection, for nothing).
                logger.debug("node %s: %s is %s, connected in", self.node_id, addr, hello.node_id)
                self.core.dial_abandoned(addr)
                return
            self._replace_inbound(hello.node_id)
            if self.core.refusal(hello.node_id) is not None or not self.core.up:
                self.core.dial_abandoned(addr)
                return
            self._send(link, self._hello(), to=envelope.from_)
            self._connected(link, hello, "outbound")
            connected = True
            await self._serve(link, addr)
        except _Closed as closed:
            if closed.kind is not None:
                self.incidents(closed.kind, ip, closed.detail)
            if not connected:
                self._dial_failed(addr, origin, f"handshake failed: {closed.reason}")
        except Exception:
            logger.exception("node %s: connection to %s failed", self.node_id, addr)
            if not connected:
                self._dial_failed(addr, origin, "handshake failed")
        finally:
            self._links.discard(link)
            await link.aclose()

    def _claim_proven(self, node_id: str, addr: str) -> bool:
        """Whether an inbound connection of ``node_id`` claimed ``addr``, a dial of which has
        just reached ``node_id``."""
        key = self.core.by_node.get(node_id)
        conn = None if key is None else self.core.conns.get(key)
        return conn is not None and not conn.outbound and conn.dialable == addr

    def _replace_inbound(self, node_id: str) -> None:
        """A dialled peer proved ``node_id``: end an inbound connection that claims it."""
        key = self.core.by_node.get(node_id)
        conn = None if key is None else self.core.conns.get(key)
        if key is None or conn is None or conn.outbound or not self.core.up:
            return
        self.core.disconnected(key, "the node id was proven by a dial")
        if isinstance(conn.handle, _Link):
            conn.handle.abort()
        self.status(f"disconnected from {key}: {node_id} was proven by a dial")
        self._event(
            "disconnected",
            addr=key,
            node_id=node_id,
            reason="the node id was proven by a dial",
            connections=len(self.core.conns),
        )

    def _dial_failed(self, addr: str, origin: str, error: str) -> None:
        self.status(f"dial {addr} failed: {error}")
        self._event("dial_failed", addr=addr, origin=origin, error=error)
        if self.core.up:
            self.core.dial_failed(addr, origin, error)

    def _connected(self, link: _Link, hello: wire.Hello, direction: Direction) -> None:
        link.established = True
        conn = self.core.connected(
            link.remote,
            node_id=hello.node_id,
            direction=direction,
            listen_addr=self._listen_addr(hello),
            capabilities=self._capabilities(hello),
            handle=link,
            cert_fingerprint=link.fingerprint,
        )
        self.status(
            f"connected to {link.remote} ({hello.node_id}, {direction});"
            f" {counted(len(self.core.conns), 'connection')}, {self.core.outbound} outbound"
            + ("" if conn.dialable is None else f"; dial address {conn.dialable}")
        )
        self._event(
            "connected",
            addr=link.remote,
            node_id=hello.node_id,
            direction=direction,
            connections=len(self.core.conns),
            outbound=self.core.outbound,
            dial_addr=conn.dialable,
        )

    async def _serve(self, link: _Link, key: str) -> None:
        reason = "closed by peer"
        try:
            while True:
                try:
                    line = await self._line(link, self.settings.idle_timeout_secs, "silent_peer")
                except _Quiet:
                    if not link.answers_probes:
                        continue  # a quiet peer that does not probe: TCP judges it
                    raise
                if line is None:
                    break
                self._handle(link, key, self._decode(line))
                if link.writer.transport.is_closing():
                    # This node closed it (a peer that does not read, an eviction): what the
                    # peer sent before is not worth an answer.
                    reason = "closed by this node"
                    break
        except _Closed as closed:
            reason = closed.reason
            if closed.kind is not None:
                self.incidents(closed.kind, link.ip, closed.detail)
        except asyncio.CancelledError:
            reason = "node stopping"
            raise
        finally:
            if self.core.up and (gone := self.core.conns.get(key)) is not None:
                self.core.disconnected(key, reason)
                self.status(
                    f"disconnected from {key}: {reason};"
                    f" {counted(len(self.core.conns), 'connection')}"
                )
                self._event(
                    "disconnected",
                    addr=key,
                    node_id=gone.peer.node_id,
                    reason=reason,
                    connections=len(self.core.conns),
                )

    def _handle(self, link: _Link, key: str, envelope: wire.Envelope) -> None:
        msg = envelope.msg
        conn = self.core.conns.get(key)
        if conn is None:
            raise _Closed("connection no longer known")
        probe = wire.liveness(envelope)
        if probe == wire.LIVENESS_PROBE:
            answer = wire.liveness_payload(wire.LIVENESS_RESPONSE)
            self._send(link, wire.HEARTBEAT, to=conn.peer.node_id, payload=answer)
        elif probe == wire.LIVENESS_RESPONSE:
            link.answers_probes = True
        elif isinstance(msg, wire.PeerRequest):
            if not link.answers.take(time.monotonic()):
                self.incidents("request_flood", link.ip)
                return
            want = min(msg.want, MAX_PEER_LIST)
            self._send(link, _fitting(self.core.answer(want, conn.dialable)))
        elif isinstance(msg, wire.PeerList):
            if link.asked > 0:
                link.asked -= 1  # the answer to this node's own request
            elif not link.lists.take(time.monotonic()):
                self.incidents("list_flood", link.ip)
                return
            listed = msg.peers
            if len(listed) > MAX_PEER_LIST:
                self.incidents("huge_peer_list", link.ip, counted(len(listed), "address"))
                listed = listed[:MAX_PEER_LIST]
            peers, bad = canonical_peers(listed)
            if bad:
                self.incidents(
                    "bad_address", link.ip, f"{len(bad)} of {len(listed)}, such as {bad[0][:40]!r}"
                )
            if self._news(peers):
                link.last_useful = time.monotonic()
            self.status(f"peer list from {key}: {counted(len(peers), 'address')}")
            self._event("peer_list", addr=key, addresses=len(peers))
            self.core.peer_list(key, peers)
        else:
            # HELLO again, HEARTBEAT, TEXT, relay, punch, acks, a later version's type: nothing
            # to do, as in TheNodes.
            tag = wire.tag_of(msg)
            self.ignored[tag if tag in wire.MESSAGE_TAGS else "unknown"] += 1
            logger.debug("node %s: ignored %s from %s", self.node_id, printable(tag, 40), key)

    def _news(self, peers: list[str]) -> bool:
        """Whether ``peers`` name an address the node has not heard of (among those its book
        takes from a list) and would dial: a loopback address on a node bound to loopback, a
        global unicast one elsewhere (never a documentation, private or reserved one). The
        same address sent again is no news."""
        book = self.core.book
        for addr in peers[: self.core.policy.peer_list_want]:
            if addr in book:
                continue
            try:
                ip = ipaddress.ip_address(addr.rpartition(":")[0].strip("[]"))
            except ValueError:
                continue
            if ip.is_loopback if self.loopback_only else ip.is_global and not ip.is_multicast:
                return True
        return False


def _fitting(addrs: list[str]) -> wire.PeerList:
    """A PEER_LIST of ``addrs`` cut to fit in a line a peer reads (:data:`wire.MAX_LINE_BYTES`).

    TheNodes (0.2, 0.4) reads a line without a bound; this host's own bound is the one to keep.
    Canonical addresses are at most :data:`MAX_ADDR_CHARS` long, so :data:`MAX_PEER_LIST` of
    them take about 50 KB and the cut is only a guard.
    """
    msg = wire.PeerList(tuple(addrs))
    room = wire.MAX_LINE_BYTES - 1024  # the envelope around the list
    while len(addrs) > 0 and sum(len(a.encode()) + 3 for a in msg.peers) > room:
        msg = wire.PeerList(msg.peers[: len(msg.peers) // 2])
    return msg


@attrs.frozen
class _LiveWorld(World):
    """What the core asks of the live world."""

    node: LiveNode

    def dial(self, addr: str, origin: str) -> None:
        self.node.dial(addr, origin)

    def request_peers(self, key: str, want: int) -> None:
        conn: Connection | None = self.node.core.conns.get(key)
        if conn is not None and isinstance(conn.handle, _Link):
            # A peer that never answers earns at most a burst of lists read unasked.
            conn.handle.asked = min(conn.handle.asked + 1, LIST_BURST)
            self.node._send(conn.handle, wire.PeerRequest(want))

    def call_later(self, delay: float, action: Callable[..., None], *args: Any) -> None:
        asyncio.get_running_loop().call_later(delay, action, *args)
