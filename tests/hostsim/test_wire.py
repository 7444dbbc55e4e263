"""TheNodes' line protocol: golden lines written from TheNodes' ``src/network/message.rs``.

Each golden line below is what serde_json prints for TheNodes' ``Message`` struct (field
order ``from, to, msg_type, payload, realm``; ``Option`` fields as ``null``; ``msg_type``
externally tagged with the ``#[serde(rename)]`` tokens; unit variants as bare strings;
``RealmInfo.code`` skipped when ``None``). They are written by hand, not by our encoder.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hostsim import wire
from hostsim.wire import Bare, Envelope, Hello, Other, PeerList, PeerRequest, Realm, Text, Unknown

REALM = Realm(name="Example", code="example", version="1.0")

LISTENER_HELLO = (
    b'{"from":"TheNodes","to":"127.0.0.1:50123","msg_type":{"HELLO":{"node_id":"rust-node",'
    b'"listen_addr":"127.0.0.1:7447","protocol":"TheNodes","version":"1","node_type":"daemon",'
    b'"capabilities":null}},"payload":null,"realm":{"name":"Example","code":"example",'
    b'"version":"1.0"}}\n'
)
DIALER_HELLO = (
    b'{"from":"TheNodes","to":"TheNodes","msg_type":{"HELLO":{"node_id":"py-node",'
    b'"listen_addr":"127.0.0.1:7448","protocol":"TheNodes","version":"1","node_type":null,'
    b'"capabilities":["relay","relay_store_forward"]}},"payload":null,"realm":{"name":"Example",'
    b'"code":"example","version":"1.0"}}\n'
)
PEER_REQUEST = (
    b'{"from":"TheNodes","to":"127.0.0.1:7447","msg_type":{"PEER_REQUEST":{"want":16}},'
    b'"payload":null,"realm":null}\n'
)
PEER_LIST = (
    b'{"from":"127.0.0.1:50123","to":"127.0.0.1:50123","msg_type":{"PEER_LIST":{"peers":'
    b'["127.0.0.1:7449","[::1]:7450"]}},"payload":null,"realm":{"name":"Example",'
    b'"code":"example","version":"1.0"}}\n'
)
HEARTBEAT = b'{"from":"a","to":"b","msg_type":"HEARTBEAT","payload":null,"realm":null}\n'
TEXT = (
    b'{"from":"a","to":"b","msg_type":{"TEXT":"hello"},"payload":{"type":"Text","value":"x"},'
    b'"realm":{"name":"Example","version":"1.0"}}\n'
)


def test_a_listeners_hello_decodes_field_by_field_and_encodes_back_to_the_same_bytes() -> None:
    envelope = wire.decode(LISTENER_HELLO)
    assert envelope == Envelope(
        from_="TheNodes",
        to="127.0.0.1:50123",
        msg=Hello(
            node_id="rust-node",
            listen_addr="127.0.0.1:7447",
            protocol="TheNodes",
            version="1",
            node_type="daemon",
            capabilities=None,
        ),
        realm=REALM,
    )
    assert wire.encode(envelope) == LISTENER_HELLO


def test_a_dialers_hello_with_capabilities_encodes_exactly_as_thenodes_does() -> None:
    hello = Hello(
        node_id="py-node",
        listen_addr="127.0.0.1:7448",
        capabilities=("relay", "relay_store_forward"),
    )
    line = wire.encode(Envelope("TheNodes", "TheNodes", hello, realm=REALM))
    assert line == DIALER_HELLO
    assert wire.decode(line).msg == hello


def test_peer_request_and_peer_list_match_the_golden_lines() -> None:
    request = Envelope("TheNodes", "127.0.0.1:7447", PeerRequest(16))
    assert wire.encode(request) == PEER_REQUEST
    listing = Envelope(
        "127.0.0.1:50123",
        "127.0.0.1:50123",
        PeerList(("127.0.0.1:7449", "[::1]:7450")),
        realm=REALM,
    )
    assert wire.encode(listing) == PEER_LIST
    assert wire.decode(PEER_LIST) == listing
    assert wire.decode(PEER_REQUEST) == request


def test_a_message_without_fields_is_a_bare_string_and_a_realm_without_code_omits_it() -> None:
    assert wire.decode(HEARTBEAT).msg == Bare("HEARTBEAT")
    assert wire.encode(wire.decode(HEARTBEAT)) == HEARTBEAT
    text = wire.decode(TEXT)
    assert text.msg == Text("hello")
    assert text.realm == Realm(name="Example", code=None, version="1.0")
    assert wire.encode(text) == TEXT


def test_absent_option_fields_read_as_null_and_unknown_fields_are_ignored_as_serde_does() -> None:
    line = b'{"from":"a","to":"b","msg_type":{"HELLO":{"node_id":"n","extra":1}},"delivery":{}}'
    envelope = wire.decode(line)
    assert envelope.msg == Hello(node_id="n", protocol=None, version=None)
    assert envelope.payload is None
    assert envelope.realm is None


def test_relay_and_extension_messages_are_read_as_well_formed_and_kept_aside() -> None:
    line = (
        b'{"from":"a","to":"b","msg_type":{"EXTENSION":{"kind":"x"}},"payload":null,"realm":null}'
    )
    envelope = wire.decode(line)
    assert envelope.msg == Other("EXTENSION", {"kind": "x"})
    assert json.loads(wire.encode(envelope)) == json.loads(line)


_EVERY_KIND = [
    b'{"from":"a","to":"b","msg_type":{"HELLO":{"node_id":"n"}}}',
    b'{"from":"a","to":"b","msg_type":{"TEXT":"hi"}}',
    b'{"from":"a","to":"b","msg_type":{"PUNCH_GO":{"attempt_id":"x"}}}',
]


def test_every_message_type_of_thenodes_0_2_and_0_4_is_known() -> None:
    """The tags both binaries' serde definitions hold, in their declaration order."""
    assert {
        *("HELLO", "TEXT", "PEER_REQUEST", "PEER_LIST"),
        *("RELAY_BIND", "RELAY_BIND_ACK", "RELAY_FWD", "RELAY_UNBIND", "RELAY_NOTIFY", "ACK"),
        *("DELIVERY_ACK", "PUNCH_COORDINATE", "PUNCH_INVITE", "PUNCH_READY", "PUNCH_GO"),
        *("PUNCH_ABORT", "DATA_REQUEST", "DATA_RESPONSE", "HEARTBEAT", "DISCONNECT", "EXTENSION"),
    } == wire.MESSAGE_TAGS
    line = b'{"from":"a","to":"b","msg_type":{"DELIVERY_ACK":{"message_id":"m"}},"payload":null}'
    assert {wire.tag_of(wire.decode(b).msg) for b in _EVERY_KIND} == {"HELLO", "TEXT", "PUNCH_GO"}
    assert wire.decode(line).msg == Other("DELIVERY_ACK", {"message_id": "m"})


@pytest.mark.parametrize(
    "msg_type", [b'"GOSSIP"', b'{"GOSSIP":{}}', b'{"GOSSIP":[1]}', b'{"GOSSIP":"x"}']
)
def test_a_well_formed_envelope_of_a_later_versions_type_decodes_as_unknown(
    msg_type: bytes,
) -> None:
    envelope = wire.decode(b'{"from":"a","to":"b","msg_type":' + msg_type + b',"realm":null}')
    assert envelope.msg == Unknown("GOSSIP", None)
    assert json.loads(wire.encode(envelope))["msg_type"] == json.loads(msg_type)


def test_liveness_probe_and_response_are_heartbeats_with_thenodes_text_payloads() -> None:
    probe = (
        b'{"from":"tn","to":"py","msg_type":"HEARTBEAT",'
        b'"payload":{"type":"Text","value":"liveness_probe_v1"},"realm":null}'
    )
    assert wire.liveness(wire.decode(probe)) == wire.LIVENESS_PROBE
    answer = Envelope(
        "py", "tn", wire.HEARTBEAT, wire.liveness_payload(wire.LIVENESS_RESPONSE), None
    )
    assert json.loads(wire.encode(answer))["payload"] == {
        "type": "Text",
        "value": "liveness_response_v1",
    }
    assert wire.liveness(wire.decode(wire.encode(answer))) == wire.LIVENESS_RESPONSE
    assert wire.liveness(wire.decode(b'{"from":"a","to":"b","msg_type":"HEARTBEAT"}')) is None


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        (b"\xff\xfe", "bad_utf8"),
        (b"{not json", "bad_json"),
        (b'{"from":"a","to":"b","msg_type":"HEARTBEAT","x":NaN}', "bad_json"),
        (b'{"from":"a","from":"b","to":"b","msg_type":"HEARTBEAT"}', "bad_json"),
        (b"[" * 100_000, "bad_json"),
        (b'{"from":"a","to":"b","msg_type":{"PUNCH_GO":[]}}', "bad_message"),
        (b'{"from":"a","to":"b","msg_type":"DELIVERY_ACK"}', "bad_message"),
        (b'{"from":"a","to":"b","msg_type":"HELLO"}', "bad_message"),
        (b'{"from":"a","to":"b","msg_type":{"HELLO":{}}}', "bad_message"),
        (b'{"from":"a","to":"b","msg_type":{"HELLO":{"node_id":7}}}', "bad_message"),
        (b'{"from":"a","to":"b","msg_type":{"PEER_REQUEST":{"want":70000}}}', "bad_message"),
        (b'{"from":"a","to":"b","msg_type":{"PEER_LIST":{"peers":[1]}}}', "bad_message"),
        (b'{"from":"a","to":"b","msg_type":{"A":1,"B":2}}', "bad_message"),
        (b'{"to":"b","msg_type":"HEARTBEAT"}', "bad_message"),
        (b'{"from":"a","to":"b","msg_type":"HEARTBEAT","realm":{"name":"x"}}', "bad_message"),
        (b'{"from":"a","to":"b","msg_type":"HEARTBEAT","payload":{"type":"Zip"}}', "bad_message"),
        (b"[1, 2]", "bad_message"),
    ],
)
def test_every_bad_line_is_a_wire_error_of_its_kind(line: bytes, kind: str) -> None:
    with pytest.raises(wire.WireError) as caught:
        wire.decode(line)
    assert caught.value.kind == kind


_text = st.text(max_size=20)
_opt = st.none() | _text
_messages = st.one_of(
    st.builds(
        Hello,
        node_id=_text,
        listen_addr=_opt,
        protocol=_opt,
        version=_opt,
        node_type=_opt,
        capabilities=st.none() | st.lists(_text, max_size=3).map(tuple),
    ),
    st.builds(PeerRequest, st.integers(0, 65535)),
    st.builds(PeerList, st.lists(_text, max_size=5).map(tuple)),
    st.builds(Text, _text),
    st.sampled_from(sorted(wire.BARE_TAGS)).map(Bare),
)
_realms = st.none() | st.builds(Realm, name=_text, code=_opt, version=_text)


@given(_text, _text, _messages, _realms)
def test_every_message_the_encoder_writes_is_one_line_the_decoder_reads_back(
    sender: str, to: str, msg: wire.Message, realm: Realm | None
) -> None:
    envelope = Envelope(sender, to, msg, realm=realm)
    line = wire.encode(envelope)
    assert line.endswith(b"\n")
    assert b"\n" not in line[:-1]
    assert wire.decode(line) == envelope


@given(st.binary(max_size=200))
def test_arbitrary_bytes_either_decode_or_raise_a_wire_error(data: bytes) -> None:
    kind = None
    try:
        wire.decode(data)
    except wire.WireError as exc:
        kind = exc.kind
    assert kind in (None, "bad_utf8", "bad_json", "bad_message")
