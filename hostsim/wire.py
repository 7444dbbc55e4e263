"""TheNodes' line protocol, stated once: the envelope, the messages, the encoder and the decoder.

One JSON object per line (``\\n``), as TheNodes' ``src/network/message.rs`` serialises it with
serde: the envelope's fields in the order ``from``, ``to``, ``msg_type``, ``payload``,
``realm``; an absent ``payload`` or ``realm`` is ``null``; TheNodes' ``delivery`` field is left
out. ``msg_type`` is externally tagged: a message with fields is a one-key object
(``{"PEER_REQUEST": {"want": 16}}``), a message without is a bare string (``"HEARTBEAT"``).
A realm is ``{"name", "code", "version"}``, ``code`` left out when unknown.

Every message type of TheNodes 0.2.0 and 0.4.0 is known here (both define the same set). A
well-formed envelope whose ``msg_type`` neither defines (a later version's message) decodes as
:class:`Unknown`: TheNodes' receive loop skips a line it cannot read as a message and keeps the
connection, so a node ignores such an envelope rather than closing on it. Only malformed input
(not UTF-8, not JSON, a known type with wrong fields, a bad envelope) is an error.

Liveness is TheNodes 0.4's: a ``HEARTBEAT`` whose payload is the text :data:`LIVENESS_PROBE`
asks the receiver to answer with a ``HEARTBEAT`` whose payload is :data:`LIVENESS_RESPONSE`
and whose ``from`` is the receiver's node id. TheNodes writes ``from`` as its app name in a
HELLO only; every other message it originates carries its node id.

The decoder reads untrusted bytes. Whatever they are, it returns an :class:`Envelope` or
raises :class:`WireError`, whose :attr:`~WireError.kind` says what was wrong.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal, TypeAlias

import attrs

__all__ = [
    "APP_NAME",
    "BARE_TAGS",
    "LIVENESS_PROBE",
    "LIVENESS_RESPONSE",
    "MAX_LINE_BYTES",
    "MESSAGE_TAGS",
    "PROTOCOL_NAME",
    "PROTOCOL_VERSION",
    "Bare",
    "Envelope",
    "Hello",
    "Message",
    "Other",
    "PeerList",
    "PeerRequest",
    "Realm",
    "Text",
    "Unknown",
    "WireError",
    "WireErrorKind",
    "decode",
    "encode",
    "liveness",
    "liveness_payload",
    "tag_of",
]

PROTOCOL_NAME: Final = "TheNodes"
"""The protocol branding a HELLO carries (TheNodes' ``PROTOCOL_NAME``)."""
PROTOCOL_VERSION: Final = "1"
"""The wire format version a HELLO carries (TheNodes' ``PROTOCOL_VERSION``)."""
APP_NAME: Final = "TheNodes"
"""What TheNodes writes in ``from`` of its HELLO (``DEFAULT_APP_NAME``)."""
MAX_LINE_BYTES: Final = 1 << 20
"""The longest line a node reads, newline excluded: 1 MiB."""
MAX_WANT: Final = 65535
"""PEER_REQUEST ``want`` is a ``u16``."""

BARE_TAGS: Final = frozenset({"DATA_REQUEST", "DATA_RESPONSE", "HEARTBEAT", "DISCONNECT"})
"""The messages without fields: serialised as bare strings."""
_OTHER_TAGS: Final = frozenset(
    {
        "RELAY_BIND",
        "RELAY_BIND_ACK",
        "RELAY_FWD",
        "RELAY_UNBIND",
        "RELAY_NOTIFY",
        "ACK",
        "DELIVERY_ACK",
        "PUNCH_COORDINATE",
        "PUNCH_INVITE",
        "PUNCH_READY",
        "PUNCH_GO",
        "PUNCH_ABORT",
        "EXTENSION",
    }
)
"""TheNodes' struct messages that this host reads as well-formed and does not act on."""
LIVENESS_PROBE: Final = "liveness_probe_v1"
"""The text payload of TheNodes 0.4's liveness probe (a ``HEARTBEAT``)."""
LIVENESS_RESPONSE: Final = "liveness_response_v1"
"""The text payload of the answer to a liveness probe (a ``HEARTBEAT`` from the prober's peer)."""
_PAYLOAD_TYPES: Final = frozenset({"Text", "Json", "Binary"})

WireErrorKind: TypeAlias = Literal["bad_utf8", "bad_json", "bad_message"]


class WireError(ValueError):
    """A line that is not a message of the protocol; :attr:`kind` says how."""

    def __init__(self, kind: WireErrorKind, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind: WireErrorKind = kind
        self.detail = detail


@attrs.frozen
class Realm:
    """A realm as the wire carries it; ``code`` None means derive it from ``name``."""

    name: str
    code: str | None
    version: str


@attrs.frozen
class Hello:
    """The handshake message, in TheNodes' field order."""

    node_id: str
    listen_addr: str | None = None
    protocol: str | None = PROTOCOL_NAME
    version: str | None = PROTOCOL_VERSION
    node_type: str | None = None
    capabilities: tuple[str, ...] | None = None


@attrs.frozen
class PeerRequest:
    """Ask a peer for up to ``want`` addresses."""

    want: int


@attrs.frozen
class PeerList:
    """Addresses a peer hands out (untrusted)."""

    peers: tuple[str, ...]


@attrs.frozen
class Text:
    """A text message."""

    text: str


@attrs.frozen
class Bare:
    """A message without fields (``HEARTBEAT``, ``DISCONNECT``...)."""

    tag: str


@attrs.frozen
class Other:
    """A well-formed TheNodes message this host does not act on (relay, ACK, extension)."""

    tag: str
    body: Mapping[str, Any] = attrs.field(eq=False, repr=False)


@attrs.frozen
class Unknown:
    """A well-formed envelope whose ``msg_type`` TheNodes 0.2.0 and 0.4.0 do not define."""

    tag: str
    body: Any = attrs.field(eq=False, repr=False)
    """The message's fields as read, or None for a bare string."""


Message: TypeAlias = Hello | PeerRequest | PeerList | Text | Bare | Other | Unknown

HEARTBEAT: Final = Bare("HEARTBEAT")


@attrs.frozen
class Envelope:
    """One line: who from, who to, the message, an optional payload and realm."""

    from_: str
    to: str
    msg: Message
    payload: Mapping[str, Any] | None = attrs.field(default=None, eq=False)
    realm: Realm | None = None


# -- encoding -----------------------------------------------------------------------------------


def _realm_json(realm: Realm) -> dict[str, Any]:
    data: dict[str, Any] = {"name": realm.name}
    if realm.code is not None:
        data["code"] = realm.code
    data["version"] = realm.version
    return data


def _msg_json(msg: Message) -> Any:
    match msg:
        case Hello():
            caps = None if msg.capabilities is None else list(msg.capabilities)
            return {
                "HELLO": {
                    "node_id": msg.node_id,
                    "listen_addr": msg.listen_addr,
                    "protocol": msg.protocol,
                    "version": msg.version,
                    "node_type": msg.node_type,
                    "capabilities": caps,
                }
            }
        case PeerRequest():
            return {"PEER_REQUEST": {"want": msg.want}}
        case PeerList():
            return {"PEER_LIST": {"peers": list(msg.peers)}}
        case Text():
            return {"TEXT": msg.text}
        case Bare():
            return msg.tag
        case Other():
            return {msg.tag: dict(msg.body)}
        case Unknown():
            return msg.tag if msg.body is None else {msg.tag: msg.body}


def tag_of(msg: Message) -> str:
    """The ``msg_type`` tag ``msg`` is written with (an :class:`Unknown` keeps the one read)."""
    match msg:
        case Hello():
            return "HELLO"
        case PeerRequest():
            return "PEER_REQUEST"
        case PeerList():
            return "PEER_LIST"
        case Text():
            return "TEXT"
        case Bare() | Other() | Unknown():
            return msg.tag


def encode(envelope: Envelope) -> bytes:
    """The line for ``envelope``, newline included, as serde_json writes it (compact, UTF-8)."""
    data = {
        "from": envelope.from_,
        "to": envelope.to,
        "msg_type": _msg_json(envelope.msg),
        "payload": None if envelope.payload is None else dict(envelope.payload),
        "realm": None if envelope.realm is None else _realm_json(envelope.realm),
    }
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.encode("utf-8") + b"\n"


# -- decoding -----------------------------------------------------------------------------------


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise ValueError(f"duplicate key {key!r}")
        data[key] = value
    return data


def _bad(detail: str) -> WireError:
    return WireError("bad_message", detail)


def _string(table: Mapping[str, Any], key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str):
        raise _bad(f"{where}.{key} must be a string")
    return value


def _optional_string(table: Mapping[str, Any], key: str, where: str) -> str | None:
    value = table.get(key)
    if value is not None and not isinstance(value, str):
        raise _bad(f"{where}.{key} must be a string or null")
    return value


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _bad(f"{where} must be an array of strings")
    return tuple(value)


def _table(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _bad(f"{where} must be an object")
    return value


def _decode_msg(value: Any) -> Message:
    if isinstance(value, str):
        if value in BARE_TAGS:
            return Bare(value)
        if value in _STRUCT_DECODERS or value in _OTHER_TAGS or value == "TEXT":
            raise _bad(f"msg_type {value!r} needs fields")
        return Unknown(value, None)
    if not isinstance(value, dict) or len(value) != 1:
        raise _bad("msg_type must be a string or an object with one key")
    ((tag, body),) = value.items()
    if tag == "TEXT":
        if not isinstance(body, str):
            raise _bad("TEXT must hold a string")
        return Text(body)
    decoder = _STRUCT_DECODERS.get(tag)
    if decoder is not None:
        return decoder(_table(body, tag))
    if tag in _OTHER_TAGS:
        return Other(tag, _table(body, tag))
    if tag in BARE_TAGS:
        raise _bad(f"msg_type {tag!r} has no fields")
    return Unknown(tag, body)


def _decode_hello(body: Mapping[str, Any]) -> Hello:
    caps = body.get("capabilities")
    return Hello(
        node_id=_string(body, "node_id", "HELLO"),
        listen_addr=_optional_string(body, "listen_addr", "HELLO"),
        protocol=_optional_string(body, "protocol", "HELLO"),
        version=_optional_string(body, "version", "HELLO"),
        node_type=_optional_string(body, "node_type", "HELLO"),
        capabilities=None if caps is None else _strings(caps, "HELLO.capabilities"),
    )


def _decode_peer_request(body: Mapping[str, Any]) -> PeerRequest:
    want = body.get("want")
    if isinstance(want, bool) or not isinstance(want, int) or not 0 <= want <= MAX_WANT:
        raise _bad(f"PEER_REQUEST.want must be an integer in 0..{MAX_WANT}")
    return PeerRequest(want)


def _decode_peer_list(body: Mapping[str, Any]) -> PeerList:
    return PeerList(_strings(body.get("peers"), "PEER_LIST.peers"))


_STRUCT_DECODERS: Final[Mapping[str, Callable[[Mapping[str, Any]], Message]]] = {
    "HELLO": _decode_hello,
    "PEER_REQUEST": _decode_peer_request,
    "PEER_LIST": _decode_peer_list,
}
MESSAGE_TAGS: Final = frozenset({"TEXT", *_STRUCT_DECODERS, *_OTHER_TAGS, *BARE_TAGS})
"""Every ``msg_type`` TheNodes 0.2.0 and 0.4.0 define (the same set in both)."""


def _decode_realm(value: Any) -> Realm | None:
    if value is None:
        return None
    table = _table(value, "realm")
    return Realm(
        name=_string(table, "name", "realm"),
        code=_optional_string(table, "code", "realm"),
        version=_string(table, "version", "realm"),
    )


def _decode_payload(value: Any) -> Mapping[str, Any] | None:
    if value is None:
        return None
    table = _table(value, "payload")
    if table.get("type") not in _PAYLOAD_TYPES or "value" not in table:
        raise _bad('payload must be {"type": "Text" | "Json" | "Binary", "value": ...}')
    return table


def decode(line: bytes) -> Envelope:
    """Read one line (with or without its newline) as an envelope.

    :raises WireError: the line is not UTF-8, not JSON, or malformed.
    """
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WireError("bad_utf8", f"byte {exc.start} is not UTF-8") from None
    try:
        data = json.loads(text, parse_constant=_no_constant, object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError) as exc:
        raise WireError("bad_json", str(exc)[:100]) from None
    top = _table(data, "a message")
    return Envelope(
        from_=_string(top, "from", "envelope"),
        to=_string(top, "to", "envelope"),
        msg=_decode_msg(top.get("msg_type")),
        payload=_decode_payload(top.get("payload")),
        realm=_decode_realm(top.get("realm")),
    )


def liveness_payload(text: str) -> Mapping[str, Any]:
    """A liveness ``HEARTBEAT``'s payload: :data:`LIVENESS_PROBE` or :data:`LIVENESS_RESPONSE`."""
    return {"type": "Text", "value": text}


def liveness(envelope: Envelope) -> str | None:
    """:data:`LIVENESS_PROBE` or :data:`LIVENESS_RESPONSE` if ``envelope`` is one, else None."""
    if envelope.msg != HEARTBEAT or envelope.payload is None:
        return None
    if envelope.payload.get("type") != "Text":
        return None
    value = envelope.payload.get("value")
    return value if value in (LIVENESS_PROBE, LIVENESS_RESPONSE) else None
