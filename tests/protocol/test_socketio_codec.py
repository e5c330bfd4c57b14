"""Socket.IO v5 codec, byte for byte: ``encode``, ``decode_text`` and the stateful ``Decoder``.

Expected values come from the Socket.IO v5 specification (socketio/socket.io-protocol,
"Packet encoding" and "Sample session") and from its compliance test suite. The wire strings
in the test suite carry the Engine.IO ``4`` (message) prefix; the Socket.IO text is what
follows it, e.g. ``42["foo"]`` on the wire is ``2["foo"]`` here.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from server.hub.protocol import engineio as eio
from server.hub.protocol import socketio as sio
from server.hub.protocol.errors import ProtocolError
from server.hub.protocol.socketio import Decoder, Packet, PacketType

CONNECT = PacketType.CONNECT
DISCONNECT = PacketType.DISCONNECT
EVENT = PacketType.EVENT
ACK = PacketType.ACK
CONNECT_ERROR = PacketType.CONNECT_ERROR
BINARY_EVENT = PacketType.BINARY_EVENT
BINARY_ACK = PacketType.BINARY_ACK

B1234 = b"\x01\x02\x03\x04"


def ph(num: int) -> dict[str, Any]:
    """A binary placeholder as it appears in the JSON."""
    return {"_placeholder": True, "num": num}


PH0 = '{"_placeholder":true,"num":0}'
PH1 = '{"_placeholder":true,"num":1}'
PH2 = '{"_placeholder":true,"num":2}'
PH3 = '{"_placeholder":true,"num":3}'


def decode_all(messages: list[str | bytes], decoder: Decoder | None = None) -> Packet:
    """Feed one encoded packet (text + attachments) and return the packet it completes."""
    decoder = decoder or Decoder()
    for message in messages[:-1]:
        assert decoder.feed(message) is None
        assert decoder.waiting_for_attachments
    packet = decoder.feed(messages[-1])
    assert packet is not None
    assert not decoder.waiting_for_attachments
    return packet


def decode_one(text: str) -> Packet:
    packet, attachments = sio.decode_text(text)
    assert attachments == 0
    return packet


# --------------------------------------------------------------------------------------------
# constants


def test_packet_type_numbers() -> None:
    assert {t.name: t.value for t in PacketType} == {
        "CONNECT": 0,
        "DISCONNECT": 1,
        "EVENT": 2,
        "ACK": 3,
        "CONNECT_ERROR": 4,
        "BINARY_EVENT": 5,
        "BINARY_ACK": 6,
    }


def test_reserved_events() -> None:
    assert (
        frozenset(
            {
                "connect",
                "connect_error",
                "disconnect",
                "disconnecting",
                "newListener",
                "removeListener",
            }
        )
        == sio.RESERVED_EVENTS
    )


def test_packet_defaults() -> None:
    packet = Packet(EVENT)
    assert (packet.type, packet.nsp, packet.data, packet.id, packet.binary) == (
        EVENT,
        "/",
        None,
        None,
        False,
    )


def test_binary_flag_is_not_part_of_equality() -> None:
    assert Packet(EVENT, data=["a"], binary=True) == Packet(EVENT, data=["a"])


# --------------------------------------------------------------------------------------------
# the specification's own examples ("Packet encoding" and "Sample session")
# (packet as the decoder returns it, encoded messages, binary flag on the way in)

SPEC_VECTORS = [
    # connection to a namespace
    pytest.param(Packet(CONNECT), ["0"], id="connect"),
    pytest.param(
        Packet(CONNECT, data={"sid": "wZX3oN0bSVIhsaknAAAI"}),
        ['0{"sid":"wZX3oN0bSVIhsaknAAAI"}'],
        id="connect-answer",
    ),
    pytest.param(Packet(CONNECT, "/admin"), ["0/admin,"], id="connect-admin"),
    pytest.param(
        Packet(CONNECT, "/admin", {"sid": "oSO0OpakMV_3jnilAAAA"}),
        ['0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}'],
        id="connect-admin-answer",
    ),
    pytest.param(
        Packet(CONNECT, "/admin", {"token": "123"}),
        ['0/admin,{"token":"123"}'],
        id="connect-admin-auth",
    ),
    pytest.param(
        Packet(CONNECT, "/admin", {"sid": "-G5j-67EZFp-q59rADQM"}),
        ['0/admin,{"sid":"-G5j-67EZFp-q59rADQM"}'],
        id="session-connect-admin-answer",
    ),
    pytest.param(
        Packet(CONNECT_ERROR, data={"message": "Not authorized"}),
        ['4{"message":"Not authorized"}'],
        id="connect-error",
    ),
    # sending and receiving data
    pytest.param(Packet(EVENT, data=["foo"]), ['2["foo"]'], id="event"),
    pytest.param(Packet(EVENT, "/admin", ["bar"]), ['2/admin,["bar"]'], id="event-admin"),
    pytest.param(Packet(EVENT, data=["hey", "Jude"]), ['2["hey","Jude"]'], id="session-event"),
    pytest.param(
        Packet(EVENT, data=["baz", B1234]),
        [f'51-["baz",{PH0}]', B1234],
        id="binary-event",
    ),
    pytest.param(
        Packet(EVENT, "/admin", ["baz", b"\x01\x02", b"\x03\x04"]),
        [f'52-/admin,["baz",{PH0},{PH1}]', b"\x01\x02", b"\x03\x04"],
        id="binary-event-admin-two-attachments",
    ),
    # acknowledgement
    pytest.param(Packet(EVENT, data=["foo"], id=12), ['212["foo"]'], id="event-ack-12"),
    pytest.param(Packet(ACK, data=[], id=12), ["312[]"], id="ack-12-empty"),
    pytest.param(
        Packet(EVENT, "/admin", ["foo"], 13), ['2/admin,13["foo"]'], id="event-admin-ack-13"
    ),
    pytest.param(Packet(ACK, "/admin", ["bar"], 13), ['3/admin,13["bar"]'], id="ack-admin-13"),
    pytest.param(
        Packet(EVENT, data=["foo", B1234], id=14),
        [f'51-14["foo",{PH0}]', B1234],
        id="binary-event-ack-14",
    ),
    pytest.param(Packet(ACK, data=["bar"], id=14), ['314["bar"]'], id="ack-14"),
    pytest.param(Packet(EVENT, data=["foo"], id=15), ['215["foo"]'], id="event-ack-15"),
    pytest.param(
        Packet(ACK, data=["bar", B1234], id=15),
        [f'61-15["bar",{PH0}]', B1234],
        id="binary-ack-15",
    ),
    pytest.param(
        Packet(EVENT, "/admin", ["tellme"], 1), ['2/admin,1["tellme"]'], id="session-tellme"
    ),
    pytest.param(
        Packet(ACK, "/admin", [b"\xca\xfe"], 1),
        [f"61-/admin,1[{PH0}]", b"\xca\xfe"],
        id="session-binary-ack",
    ),
    # disconnection from a namespace
    pytest.param(Packet(DISCONNECT), ["1"], id="disconnect"),
    pytest.param(Packet(DISCONNECT, "/admin"), ["1/admin,"], id="disconnect-admin"),
]


@pytest.mark.parametrize(("packet", "messages"), SPEC_VECTORS)
def test_encode_spec_vector(packet: Packet, messages: list[str | bytes]) -> None:
    assert sio.encode(packet) == messages


@pytest.mark.parametrize(("packet", "messages"), SPEC_VECTORS)
def test_decode_spec_vector(packet: Packet, messages: list[str | bytes]) -> None:
    decoded = decode_all(messages)
    assert decoded == packet
    assert type(decoded.type) is PacketType
    assert decoded.binary is (len(messages) > 1)


@pytest.mark.parametrize(("packet", "messages"), SPEC_VECTORS)
def test_round_trip_spec_vector(packet: Packet, messages: list[str | bytes]) -> None:
    assert sio.encode(decode_all(messages)) == messages
    assert decode_all(sio.encode(packet)) == packet


# --------------------------------------------------------------------------------------------
# the specification's compliance test suite (Engine.IO "4" prefix removed)


def test_suite_plain_text_event() -> None:
    packet = decode_all(['2["message",1,"2",{"3":[true]}]'])
    assert packet == Packet(EVENT, "/", ["message", 1, "2", {"3": [True]}])
    answer = Packet(EVENT, data=["message-back", *packet.data[1:]])
    assert sio.encode(answer) == ['2["message-back",1,"2",{"3":[true]}]']


def test_suite_plain_text_event_with_ack() -> None:
    packet = decode_all(['2456["message-with-ack",1,"2",{"3":[false]}]'])
    assert packet == Packet(EVENT, "/", ["message-with-ack", 1, "2", {"3": [False]}], 456)
    answer = Packet(ACK, packet.nsp, packet.data[1:], packet.id)
    assert sio.encode(answer) == ['3456[1,"2",{"3":[false]}]']


def test_suite_binary_event() -> None:
    packet = decode_all([f'52-["message",{PH0},{PH1}]', b"\x01\x02\x03", b"\x04\x05\x06"])
    assert packet == Packet(EVENT, "/", ["message", b"\x01\x02\x03", b"\x04\x05\x06"])
    assert packet.binary is True
    answer = Packet(EVENT, data=["message-back", *packet.data[1:]])
    assert sio.encode(answer) == [
        f'52-["message-back",{PH0},{PH1}]',
        b"\x01\x02\x03",
        b"\x04\x05\x06",
    ]


def test_suite_binary_event_with_ack() -> None:
    packet = decode_all(
        [f'52-789["message-with-ack",{PH0},{PH1}]', b"\x01\x02\x03", b"\x04\x05\x06"]
    )
    assert packet == Packet(EVENT, "/", ["message-with-ack", b"\x01\x02\x03", b"\x04\x05\x06"], 789)
    answer = Packet(ACK, packet.nsp, packet.data[1:], packet.id)
    assert sio.encode(answer) == [f"62-789[{PH0},{PH1}]", b"\x01\x02\x03", b"\x04\x05\x06"]


def test_suite_connect_variants() -> None:
    assert decode_one("0") == Packet(CONNECT)
    assert decode_one('0{"token":"123"}') == Packet(CONNECT, data={"token": "123"})
    assert decode_one("0/custom,") == Packet(CONNECT, "/custom")
    assert decode_one("0/custom") == Packet(CONNECT, "/custom")
    assert decode_one('0/custom,{"token":"abc"}') == Packet(CONNECT, "/custom", {"token": "abc"})
    assert decode_one("0/random") == Packet(CONNECT, "/random")


def test_suite_server_answers() -> None:
    assert sio.encode(Packet(EVENT, data=["auth", {}])) == ['2["auth",{}]']
    assert sio.encode(Packet(EVENT, data=["auth", {"token": "123"}])) == [
        '2["auth",{"token":"123"}]'
    ]
    assert sio.encode(Packet(EVENT, "/custom", ["auth", {"token": "abc"}])) == [
        '2/custom,["auth",{"token":"abc"}]'
    ]
    assert sio.encode(Packet(CONNECT_ERROR, "/random", {"message": "Invalid namespace"})) == [
        '4/random,{"message":"Invalid namespace"}'
    ]


def test_suite_disconnect_variants() -> None:
    assert decode_one("1") == Packet(DISCONNECT)
    assert decode_one("1/custom") == Packet(DISCONNECT, "/custom")
    assert decode_one("1/custom,") == Packet(DISCONNECT, "/custom")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        # "4abc" on the wire: Engine.IO message "abc", an unknown Socket.IO type
        ("abc", "unknown packet type"),
        # "42{}": an EVENT whose payload is not an array
        ("2{}", "invalid payload for a EVENT packet"),
        # "42abc[...]": the ack id is not a number, so the rest is not JSON
        ('2abc["message-with-ack",1,"2",{"3":[false]}]', "not valid JSON"),
    ],
    ids=["unknown-type", "invalid-payload-format", "invalid-ack-id"],
)
def test_suite_invalid_format(text: str, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        sio.decode_text(text)
    with pytest.raises(ProtocolError, match=match):
        Decoder().feed(text)


def test_suite_invalid_handshake_through_engineio() -> None:
    # The same "4abc" frame, through both layers as the server sees it.
    message = eio.decode_frame("4abc")
    assert message == eio.message("abc")
    assert isinstance(message.data, str)
    with pytest.raises(ProtocolError, match="unknown packet type 'a'"):
        Decoder().feed(message.data)


# --------------------------------------------------------------------------------------------
# every packet type, with and without namespace and ack id


@pytest.mark.parametrize(
    ("packet", "text"),
    [
        (Packet(CONNECT), "0"),
        (Packet(CONNECT, "/custom"), "0/custom,"),
        (Packet(CONNECT, data={"token": "abc"}), '0{"token":"abc"}'),
        (Packet(CONNECT, "/custom", {"token": "abc"}), '0/custom,{"token":"abc"}'),
        (Packet(CONNECT, data={}), "0{}"),
        (Packet(CONNECT, data={"sid": "s1", "pid": "p1"}), '0{"sid":"s1","pid":"p1"}'),
        (Packet(DISCONNECT), "1"),
        (Packet(DISCONNECT, "/custom"), "1/custom,"),
        (Packet(EVENT, data=["a"]), '2["a"]'),
        (Packet(EVENT, data=["a"], id=0), '20["a"]'),
        (Packet(EVENT, data=["a"], id=7), '27["a"]'),
        (Packet(EVENT, "/custom", ["a"]), '2/custom,["a"]'),
        (Packet(EVENT, "/custom", ["a"], 7), '2/custom,7["a"]'),
        (
            Packet(EVENT, "/custom", ["a", 1, None, True], 2**31),
            '2/custom,2147483648["a",1,null,true]',
        ),
        (Packet(ACK, data=[], id=0), "30[]"),
        (Packet(ACK, data=["x"], id=7), '37["x"]'),
        (Packet(ACK, "/custom", [], 7), "3/custom,7[]"),
        (Packet(ACK, "/custom", [None, {"ok": True}], 7), '3/custom,7[null,{"ok":true}]'),
        (Packet(CONNECT_ERROR, data={"message": "m"}), '4{"message":"m"}'),
        (
            Packet(CONNECT_ERROR, data={"message": "Not authorized", "data": {"code": 401}}),
            '4{"message":"Not authorized","data":{"code":401}}',
        ),
        (
            Packet(CONNECT_ERROR, "/custom", {"message": "m", "data": ["x", 1]}),
            '4/custom,{"message":"m","data":["x",1]}',
        ),
        (Packet(CONNECT_ERROR, data="legacy string"), '4"legacy string"'),
    ],
)
def test_packet_text_form(packet: Packet, text: str) -> None:
    assert sio.encode(packet) == [text]
    assert decode_one(text) == packet
    assert decode_all([text]) == packet


@pytest.mark.parametrize(
    ("text", "nsp"),
    [
        ("0/,", "/"),
        ("0/", "/"),
        ("0/a/b,", "/a/b"),
        ("0/v2,", "/v2"),
        ("0/ünï,", "/ünï"),
        ("0/with space,", "/with space"),
        ("0/custom?x=1,", "/custom?x=1"),
    ],
)
def test_namespace_text_is_taken_verbatim(text: str, nsp: str) -> None:
    assert decode_one(text) == Packet(CONNECT, nsp)


def test_namespace_ends_at_first_comma() -> None:
    assert decode_one('2/a,["b,c"]') == Packet(EVENT, "/a", ["b,c"])
    assert decode_one('2/a,1["b,c"]') == Packet(EVENT, "/a", ["b,c"], 1)


def test_default_namespace_is_omitted() -> None:
    assert sio.encode(Packet(EVENT, "/", ["a"], 3)) == ['23["a"]']


def test_large_ack_id() -> None:
    assert decode_one('29007199254740991["a"]').id == 9007199254740991
    assert sio.encode(Packet(ACK, data=[], id=9007199254740991)) == ["39007199254740991[]"]


def test_json_whitespace_in_payload_is_accepted() -> None:
    assert decode_one('2 [ "a" , 1 ]') == Packet(EVENT, data=["a", 1])


# --------------------------------------------------------------------------------------------
# JSON: unescaped unicode, compact separators, escapes


def test_unicode_stays_unescaped() -> None:
    data = ["message", "héllo wörld", "日本語", "😀", {"clé": "€"}]
    text = '2["message","héllo wörld","日本語","😀",{"clé":"€"}]'
    assert sio.encode(Packet(EVENT, data=data)) == [text]
    assert decode_one(text) == Packet(EVENT, data=data)


def test_unicode_in_namespace_and_binary_packet() -> None:
    messages = sio.encode(Packet(EVENT, "/ünï", ["ß", b"\x00"], 1))
    assert messages == [f'51-/ünï,1["ß",{PH0}]', b"\x00"]


def test_compact_separators() -> None:
    data = ["e", {"a": 1, "b": [1, 2, {"c": None}]}, [], {}]
    assert sio.encode(Packet(EVENT, data=data)) == ['2["e",{"a":1,"b":[1,2,{"c":null}]},[],{}]']


def test_control_characters_are_escaped() -> None:
    # Escaping keeps the Engine.IO record separator out of the text form.
    messages = sio.encode(Packet(EVENT, data=["e", "a\x1eb", 'q"b\\s', "\n\t\x00"]))
    assert messages == ['2["e","a\\u001eb","q\\"b\\\\s","\\n\\t\\u0000"]']
    assert "\x1e" not in messages[0]
    assert decode_one(str(messages[0])).data == ["e", "a\x1eb", 'q"b\\s', "\n\t\x00"]


def test_json_numbers() -> None:
    assert sio.encode(Packet(EVENT, data=["n", 0, -1, 1.5, 10**20, 1e-7])) == [
        '2["n",0,-1,1.5,100000000000000000000,1e-07]'
    ]
    assert decode_one('2["n",0,-1,1.5,1e3]').data == ["n", 0, -1, 1.5, 1000.0]


def test_tuples_are_sent_as_arrays() -> None:
    assert sio.encode(Packet(EVENT, data=("e", (1, 2)))) == ['2["e",[1,2]]']


@pytest.mark.parametrize(
    "value",
    [math.nan, math.inf, -math.inf],
    ids=["nan", "inf", "-inf"],
)
@pytest.mark.parametrize(
    "wrap",
    [
        lambda v: Packet(EVENT, data=["e", v]),
        lambda v: Packet(EVENT, data=["e", {"deep": [v]}]),
        lambda v: Packet(ACK, data=[v], id=1),
        lambda v: Packet(EVENT, data=["e", v, b"\x00"]),
        lambda v: Packet(CONNECT, data={"x": v}),
        lambda v: Packet(CONNECT_ERROR, data={"message": "m", "data": v}),
    ],
    ids=["event", "nested", "ack", "binary", "connect", "connect-error"],
)
def test_non_finite_numbers_raise_type_error(value: float, wrap: Any) -> None:
    with pytest.raises(TypeError, match="cannot send"):
        sio.encode(wrap(value))


def test_unserializable_data_raises_type_error() -> None:
    with pytest.raises(TypeError):
        sio.encode(Packet(EVENT, data=["e", object()]))
    with pytest.raises(TypeError):
        sio.encode(Packet(EVENT, data=["e", {1, 2}]))


# --------------------------------------------------------------------------------------------
# numeric event names


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("2[1]", "1"),
        ('2[1,"a"]', "1"),
        ("2[0]", "0"),
        ("2[-3]", "-3"),
        ("2[1.0]", "1"),
        ("2[1.5]", "1.5"),
        ("2[1e2]", "100"),
        ("27[42]", "42"),
    ],
)
def test_numeric_event_name_becomes_its_string_form(text: str, name: str) -> None:
    packet = decode_one(text)
    assert packet.type is EVENT
    assert packet.data[0] == name
    assert type(packet.data[0]) is str


def test_numeric_event_name_keeps_arguments() -> None:
    assert decode_one('213[1,"a",2]') == Packet(EVENT, data=["1", "a", 2], id=13)


def test_numeric_event_name_in_binary_event() -> None:
    packet = decode_all([f"51-[7,{PH0}]", b"\x07"])
    assert packet == Packet(EVENT, data=["7", b"\x07"])


def test_numeric_event_name_is_sent_as_is() -> None:
    assert sio.encode(Packet(EVENT, data=[1, "a"])) == ['2[1,"a"]']


# --------------------------------------------------------------------------------------------
# encode: BINARY_* is chosen from the data


@pytest.mark.parametrize(
    ("packet", "messages"),
    [
        (Packet(EVENT, data=["a", "b"]), ['2["a","b"]']),
        (Packet(EVENT, data=["a", b""]), [f'51-["a",{PH0}]', b""]),
        (Packet(EVENT, data=["a", bytearray(b"\x01")]), [f'51-["a",{PH0}]', b"\x01"]),
        (Packet(EVENT, data=["a", memoryview(b"\x02")]), [f'51-["a",{PH0}]', b"\x02"]),
        (Packet(EVENT, data=["a", (b"\x01", "x")]), [f'51-["a",[{PH0},"x"]]', b"\x01"]),
        (Packet(ACK, data=["a"], id=3), ['33["a"]']),
        (Packet(ACK, data=[b"\x01"], id=3), [f"61-3[{PH0}]", b"\x01"]),
        (Packet(ACK, data=[{"k": b"\x01"}], id=3), [f'61-3[{{"k":{PH0}}}]', b"\x01"]),
        (
            Packet(EVENT, data=["a", b"\x01", b"\x01"]),
            [f'52-["a",{PH0},{PH1}]', b"\x01", b"\x01"],
        ),
        # text that merely looks like bytes stays text
        (Packet(EVENT, data=["a", "\x01\x02"]), ['2["a","\\u0001\\u0002"]']),
    ],
)
def test_encode_picks_binary_type_when_bytes_are_present(
    packet: Packet, messages: list[str | bytes]
) -> None:
    encoded = sio.encode(packet)
    assert encoded == messages
    assert all(type(m) is bytes for m in encoded[1:])


def test_encode_does_not_mutate_the_packet() -> None:
    data = ["a", b"\x01", {"k": [b"\x02"]}]
    packet = Packet(EVENT, "/n", data, 1)
    sio.encode(packet)
    assert packet == Packet(EVENT, "/n", ["a", b"\x01", {"k": [b"\x02"]}], 1)
    assert packet.type is EVENT


def test_has_binary() -> None:
    assert sio.has_binary(b"")
    assert sio.has_binary(bytearray())
    assert sio.has_binary(memoryview(b""))
    assert sio.has_binary(["a", [{"b": (1, b"x")}]])
    assert sio.has_binary({"a": {"b": [b"x"]}})
    assert not sio.has_binary(["a", {"b": [1, None, "x"]}])
    assert not sio.has_binary("bytes")
    assert not sio.has_binary({b"key": 1})  # keys are not data
    assert not sio.has_binary(None)


# --------------------------------------------------------------------------------------------
# BINARY_EVENT / BINARY_ACK with several attachments, nested in dicts and lists


NESTED_DATA = [
    {"name": "a.bin", "chunks": [b"\x00", b"\xff\xfe"]},
    [b"", {"deep": [[b"x"]]}],
    "text",
    7,
]
NESTED_JSON = f'[{{"name":"a.bin","chunks":[{PH0},{PH1}]}},[{PH2},{{"deep":[[{PH3}]]}}],"text",7]'


def test_binary_ack_nested_in_custom_namespace_with_ack_id() -> None:
    packet = Packet(ACK, "/files", NESTED_DATA, 42)
    messages = sio.encode(packet)
    assert messages == ["64-/files,42" + NESTED_JSON, b"\x00", b"\xff\xfe", b"", b"x"]
    decoded = decode_all(messages)
    assert decoded == packet
    assert decoded.binary is True
    assert decoded.type is ACK


def test_binary_event_nested_in_custom_namespace_with_ack_id() -> None:
    packet = Packet(EVENT, "/files", ["upload", *NESTED_DATA], 9)
    messages = sio.encode(packet)
    inner = NESTED_JSON[1:]
    assert messages == ['54-/files,9["upload",' + inner, b"\x00", b"\xff\xfe", b"", b"x"]
    assert decode_all(messages) == packet


def test_placeholders_may_be_out_of_order_and_repeated() -> None:
    # The receiver follows the numbers, not the order of appearance.
    packet = decode_all([f'52-["e",{PH1},{PH0},{PH1}]', b"zero", b"one"])
    assert packet.data == ["e", b"one", b"zero", b"one"]


def test_unused_attachment_is_accepted() -> None:
    packet = decode_all([f'52-["e",{PH0}]', b"zero", b"one"])
    assert packet.data == ["e", b"zero"]


def test_placeholder_with_extra_keys_is_still_a_placeholder() -> None:
    packet = decode_all(['51-["e",{"_placeholder":true,"num":0,"x":1}]', b"a"])
    assert packet.data == ["e", b"a"]


def test_placeholder_false_is_plain_data() -> None:
    packet = decode_all(['51-["e",{"_placeholder":false,"num":0}]', b"a"])
    assert packet.data == ["e", {"_placeholder": False, "num": 0}]


def test_placeholder_in_a_plain_event_is_plain_data() -> None:
    packet = decode_all([f'2["e",{PH0}]'])
    assert packet == Packet(EVENT, data=["e", ph(0)])
    assert packet.binary is False


def test_binary_packet_with_zero_attachments_completes_at_once() -> None:
    decoder = Decoder()
    packet = decoder.feed('50-["e",1]')
    assert packet == Packet(EVENT, data=["e", 1])
    assert packet is not None and packet.binary is True
    assert not decoder.waiting_for_attachments
    packet = decoder.feed('60-5["a"]')
    assert packet == Packet(ACK, data=["a"], id=5)


def test_decode_text_reports_attachments_and_leaves_placeholders() -> None:
    packet, attachments = sio.decode_text(f'52-/x,3["e",{PH0},{PH1}]')
    assert attachments == 2
    assert packet == Packet(EVENT, "/x", ["e", ph(0), ph(1)], 3)
    assert packet.binary is True


# --------------------------------------------------------------------------------------------
# Decoder state machine


def test_decoder_reassembles_step_by_step() -> None:
    decoder = Decoder()
    assert not decoder.waiting_for_attachments
    assert decoder.feed(f'53-/a,1["e",{PH0},[{PH1}],{{"k":{PH2}}}]') is None
    assert decoder.waiting_for_attachments
    assert decoder.feed(b"\x00") is None
    assert decoder.waiting_for_attachments
    assert decoder.feed(bytearray(b"\x01")) is None
    packet = decoder.feed(memoryview(b"\x02"))
    assert packet == Packet(EVENT, "/a", ["e", b"\x00", [b"\x01"], {"k": b"\x02"}], 1)
    assert packet is not None
    assert all(type(b) is bytes for b in (packet.data[1], packet.data[2][0], packet.data[3]["k"]))
    assert not decoder.waiting_for_attachments


def test_decoder_handles_a_sequence_of_packets() -> None:
    decoder = Decoder()
    stream: list[str | bytes] = [
        "0",
        '2["a"]',
        f'51-["b",{PH0}]',
        b"\x01",
        "31[]",
        f"61-2[{PH0}]",
        b"\x02",
        "1",
    ]
    packets = [p for p in (decoder.feed(m) for m in stream) if p is not None]
    assert packets == [
        Packet(CONNECT),
        Packet(EVENT, data=["a"]),
        Packet(EVENT, data=["b", b"\x01"]),
        Packet(ACK, data=[], id=1),
        Packet(ACK, data=[b"\x02"], id=2),
        Packet(DISCONNECT),
    ]
    assert [p.binary for p in packets] == [False, False, True, False, True, False]


def test_text_while_attachments_are_pending_is_an_error() -> None:
    decoder = Decoder()
    assert decoder.feed(f'52-["e",{PH0},{PH1}]') is None
    assert decoder.feed(b"\x00") is None
    with pytest.raises(ProtocolError, match="waiting for binary attachments"):
        decoder.feed('2["other"]')
    assert not decoder.waiting_for_attachments
    # the pending packet was dropped: its last attachment is now unexpected
    with pytest.raises(ProtocolError, match="unexpected binary message"):
        decoder.feed(b"\x01")
    assert decoder.feed('2["next"]') == Packet(EVENT, data=["next"])


def test_binary_message_with_nothing_pending_is_an_error() -> None:
    with pytest.raises(ProtocolError, match="unexpected binary message"):
        Decoder().feed(b"\x00")


def test_extra_attachment_is_an_error() -> None:
    decoder = Decoder()
    assert decode_all([f'51-["e",{PH0}]', b"\x00"], decoder) == Packet(EVENT, data=["e", b"\x00"])
    with pytest.raises(ProtocolError, match="unexpected binary message"):
        decoder.feed(b"\x01")


def test_binary_after_plain_packet_is_an_error() -> None:
    decoder = Decoder()
    assert decoder.feed('2["e"]') == Packet(EVENT, data=["e"])
    with pytest.raises(ProtocolError, match="unexpected binary message"):
        decoder.feed(b"\x00")


def test_default_max_attachments() -> None:
    assert sio.DEFAULT_MAX_ATTACHMENTS == 64
    assert Decoder().max_attachments == 64
    placeholders = ",".join(json.dumps(ph(i), separators=(",", ":")) for i in range(64))
    decoder = Decoder()
    assert decoder.feed(f'564-["e",{placeholders}]') is None
    for i in range(63):
        assert decoder.feed(bytes([i])) is None
    packet = decoder.feed(bytes([63]))
    assert packet is not None
    assert packet.data == ["e", *(bytes([i]) for i in range(64))]


@pytest.mark.parametrize("text", ['565-["e"]', '51000000-["e"]', "6999999999-1[]"])
def test_too_many_attachments_is_an_error(text: str) -> None:
    decoder = Decoder()
    with pytest.raises(ProtocolError, match="too many attachments"):
        decoder.feed(text)
    assert not decoder.waiting_for_attachments
    with pytest.raises(ProtocolError, match="too many attachments"):
        sio.decode_text(text)


def test_max_attachments_is_configurable() -> None:
    decoder = Decoder(max_attachments=2)
    with pytest.raises(ProtocolError, match=r"too many attachments: 3 > 2"):
        decoder.feed(f'53-["e",{PH0},{PH1},{PH2}]')
    assert decode_all([f'52-["e",{PH0},{PH1}]', b"a", b"b"], decoder).data == ["e", b"a", b"b"]
    with pytest.raises(ProtocolError, match="too many attachments"):
        Decoder(max_attachments=0).feed(f'51-["e",{PH0}]')
    assert Decoder(max_attachments=0).feed('50-["e"]') == Packet(EVENT, data=["e"])


@pytest.mark.parametrize(
    "placeholder",
    [
        '{"_placeholder":true,"num":2}',  # out of range
        '{"_placeholder":true,"num":-1}',
        '{"_placeholder":true,"num":"0"}',
        '{"_placeholder":true,"num":true}',
        '{"_placeholder":true,"num":null}',
        '{"_placeholder":true,"num":0.5}',
        '{"_placeholder":true,"num":[0]}',
        '{"_placeholder":true}',
    ],
)
def test_placeholder_with_bad_num_is_an_error(placeholder: str) -> None:
    decoder = Decoder()
    assert decoder.feed(f'52-["e",{PH0},{{"k":[{placeholder}]}}]') is None
    assert decoder.feed(b"a") is None
    with pytest.raises(ProtocolError, match="placeholder refers to a missing attachment"):
        decoder.feed(b"b")
    assert not decoder.waiting_for_attachments
    assert decoder.feed('2["ok"]') == Packet(EVENT, data=["ok"])


def test_placeholder_with_zero_attachments_is_an_error() -> None:
    with pytest.raises(ProtocolError, match="placeholder refers to a missing attachment: 0"):
        Decoder().feed(f'50-["e",{PH0}]')


# --------------------------------------------------------------------------------------------
# reserved event names


@pytest.mark.parametrize("name", sorted(sio.RESERVED_EVENTS))
@pytest.mark.parametrize(
    "template",
    [
        '2["{name}"]',
        '2["{name}","x"]',
        '2/custom,5["{name}"]',
        '50-["{name}"]',
        '51-3["{name}",' + PH0 + "]",
    ],
    ids=["event", "event-args", "event-nsp-ack", "binary-event", "binary-event-ack"],
)
def test_reserved_event_names_are_refused(name: str, template: str) -> None:
    text = template.replace("{name}", name)
    with pytest.raises(ProtocolError, match="invalid payload"):
        sio.decode_text(text)
    with pytest.raises(ProtocolError, match="invalid payload"):
        Decoder().feed(text)


@pytest.mark.parametrize(
    "name",
    ["connection", "Connect", "CONNECT", "message", "error", "ping", "connect ", "", "newlistener"],
)
def test_other_event_names_are_accepted(name: str) -> None:
    text = "2" + json.dumps([name])
    assert decode_one(text) == Packet(EVENT, data=[name])


def test_reserved_names_are_only_checked_in_first_position() -> None:
    assert decode_one('2["e","connect"]') == Packet(EVENT, data=["e", "connect"])
    assert decode_one('31["connect"]') == Packet(ACK, data=["connect"], id=1)


# --------------------------------------------------------------------------------------------
# invalid payload shapes


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        # CONNECT: an object if present
        ("0[]", "CONNECT"),
        ('0["a"]', "CONNECT"),
        ('0"token"', "CONNECT"),
        ("0-1.5", "CONNECT"),
        ("0true", "CONNECT"),
        ("0/admin,[]", "CONNECT"),
        ('0/admin,"x"', "CONNECT"),
        # DISCONNECT: no payload
        ("1{}", "DISCONNECT"),
        ("1[]", "DISCONNECT"),
        ('1"bye"', "DISCONNECT"),
        ("1/admin,{}", "DISCONNECT"),
        # EVENT: a non-empty array with a string or number name
        ("2", "EVENT"),
        ("2[]", "EVENT"),
        ("2{}", "EVENT"),
        ('2"foo"', "EVENT"),
        ("2true", "EVENT"),
        ("2null", "EVENT"),
        ("212", "EVENT"),
        ("2/admin,", "EVENT"),
        ("2/admin", "EVENT"),
        ("2/admin,13", "EVENT"),
        ('2/admin["foo"]', "EVENT"),  # no comma: the whole rest is the namespace
        ("2[true]", "EVENT"),
        ("2[false]", "EVENT"),
        ("2[null]", "EVENT"),
        ("2[[]]", "EVENT"),
        ('2[["a"]]', "EVENT"),
        ("2[{}]", "EVENT"),
        ('2[{"name":"a"}]', "EVENT"),
        # ACK: an id and an array
        ("3", "ACK"),
        ("3[]", "ACK"),
        ('3["a"]', "ACK"),
        ("312", "ACK"),
        ("312{}", "ACK"),
        ('312"a"', "ACK"),
        ("312null", "ACK"),
        ("3/admin,[]", "ACK"),
        ("3/admin,13", "ACK"),
        # CONNECT_ERROR: an object (or the legacy string)
        ("4", "CONNECT_ERROR"),
        ("4[]", "CONNECT_ERROR"),
        ("41", "CONNECT_ERROR"),
        ("4null", "CONNECT_ERROR"),
        ("4/admin,", "CONNECT_ERROR"),
        # BINARY_EVENT / BINARY_ACK: as EVENT / ACK
        ("50-", "BINARY_EVENT"),
        ("50-[]", "BINARY_EVENT"),
        ("50-{}", "BINARY_EVENT"),
        ("51-[true]", "BINARY_EVENT"),
        ("60-[]", "BINARY_ACK"),
        (f"61-[{PH0}]", "BINARY_ACK"),
        ("60-1", "BINARY_ACK"),
        ("60-1{}", "BINARY_ACK"),
    ],
)
def test_invalid_payload_shape_is_an_error(text: str, kind: str) -> None:
    with pytest.raises(ProtocolError, match=f"^invalid payload for a {kind} packet$"):
        sio.decode_text(text)
    with pytest.raises(ProtocolError, match=f"^invalid payload for a {kind} packet$"):
        Decoder().feed(text)


@pytest.mark.parametrize(
    "text",
    [
        '2["a"',
        '2["a"]x',
        '2["a",]',
        "2['a']",
        "2[a]",
        '2["a"]]',
        '2["a"]["b"]',
        '2abc["message-with-ack",1,"2",{"3":[false]}]',
        '2/admin,abc["a"]',
        '212a["a"]',
        '2-1["a"]',
        '0{"token":}',
        "0{token:1}",
        "0/admin,{",
        "1/admin,x",
        '3/admin,1x["a"]',
        f'51-["a",{PH0}',
        "4{'message':'x'}",
        '2["\\x"]',
        '2["\\ud800x"',
    ],
)
def test_invalid_json_is_an_error(text: str) -> None:
    with pytest.raises(ProtocolError, match=r"^packet data is not valid JSON$"):
        sio.decode_text(text)
    with pytest.raises(ProtocolError, match=r"^packet data is not valid JSON$"):
        Decoder().feed(text)


@pytest.mark.parametrize(
    "text",
    ["", "7", "8[]", "9", "a", "abc", "-1", ' 2["a"]', "x0", "²", "\x1e", "{}", '["a"]'],
)
def test_unknown_or_missing_packet_type_is_an_error(text: str) -> None:
    match = "empty packet" if not text else "unknown packet type"
    with pytest.raises(ProtocolError, match=match):
        sio.decode_text(text)
    with pytest.raises(ProtocolError, match=match):
        Decoder().feed(text)


@pytest.mark.parametrize(
    "text",
    [
        '5["a"]',  # no count at all
        '5-["a"]',  # empty count
        '5x-["a"]',
        "5",
        "51",
        '5+1-["a"]',
        '5 1-["a"]',
        '6-1["a"]',
        '61["a"]',
        "6/admin,1-[]",
    ],
)
def test_binary_packet_without_valid_attachment_count_is_an_error(text: str) -> None:
    with pytest.raises(ProtocolError, match="without a valid attachment count"):
        sio.decode_text(text)
    with pytest.raises(ProtocolError, match="without a valid attachment count"):
        Decoder().feed(text)


# --------------------------------------------------------------------------------------------
# the decoder is usable again after an error

BAD_INPUTS: list[list[str | bytes]] = [
    [""],
    ["abc"],
    ["2{}"],
    ['2["connect"]'],
    ['2["a"'],
    ['565-["e"]'],
    [b"\x00"],
    [f'51-["e",{PH0}]', '2["e"]'],
    [f'51-["e",{PH2}]', b"\x00"],
]


@pytest.mark.parametrize("bad", BAD_INPUTS)
def test_decoder_is_usable_after_an_error(bad: list[str | bytes]) -> None:
    decoder = Decoder()
    with pytest.raises(ProtocolError):
        for message in bad:
            decoder.feed(message)
    assert not decoder.waiting_for_attachments
    assert decoder.feed('2["ok"]') == Packet(EVENT, data=["ok"])
    assert decode_all([f"61-4[{PH0}]", b"\x09"], decoder) == Packet(ACK, data=[b"\x09"], id=4)


# --------------------------------------------------------------------------------------------
# through Engine.IO: the "4" prefix, WebSocket frames and polling payloads


def test_binary_event_over_websocket_frames() -> None:
    messages = sio.encode(Packet(EVENT, data=["baz", B1234]))
    frames = [eio.encode_frame(eio.message(m)) for m in messages]
    assert frames == [f'451-["baz",{PH0}]', B1234]
    decoder = Decoder()
    packets = []
    for frame in frames:
        data = eio.decode_frame(frame).data
        packet = decoder.feed(data)
        if packet is not None:
            packets.append(packet)
    assert packets == [Packet(EVENT, data=["baz", B1234])]


def test_binary_ack_over_polling_payload() -> None:
    body = eio.encode_payload(eio.message(m) for m in sio.encode(Packet(ACK, "/admin", [B1234], 1)))
    assert body == f"461-/admin,1[{PH0}]\x1ebAQIDBA=="
    decoder = Decoder()
    packets = [decoder.feed(p.data) for p in eio.decode_payload(body)]
    assert packets == [None, Packet(ACK, "/admin", [B1234], 1)]


def test_sample_session_polling_body() -> None:
    decoder = Decoder()
    body = '42["hello"]\x1e42["world"]'
    packets = [decoder.feed(p.data) for p in eio.decode_payload(body)]
    assert packets == [Packet(EVENT, data=["hello"]), Packet(EVENT, data=["world"])]


# --------------------------------------------------------------------------------------------
# bugs found while writing these tests, fixed since: kept as regressions
# that ask for the marker to be removed


@pytest.mark.parametrize(
    "text",
    ['2["a",NaN]', "2[NaN]", "2[Infinity]", '2["a",-Infinity]', '31[{"x":NaN}]', '0{"x":NaN}'],
)
def test_non_json_constants_are_refused(text: str) -> None:
    with pytest.raises(ProtocolError, match="not valid JSON"):
        sio.decode_text(text)


@pytest.mark.parametrize("text", ["0null", "0/admin,null", "1null", "1/admin,null"])
def test_explicit_null_payload_is_refused(text: str) -> None:
    with pytest.raises(ProtocolError, match="invalid payload"):
        sio.decode_text(text)


@pytest.mark.parametrize(
    "text",
    [
        '\u0662["a"]',  # ARABIC-INDIC DIGIT TWO
        '\uff12["a"]',  # FULLWIDTH DIGIT TWO
        '5\u0663-["a"]',  # ARABIC-INDIC DIGIT THREE
        '5\uff11-["a",' + PH0 + "]",  # FULLWIDTH DIGIT ONE
    ],
)
def test_non_ascii_digits_are_refused(text: str) -> None:
    with pytest.raises(ProtocolError):
        sio.decode_text(text)


def test_superscript_attachment_count_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="attachment count"):
        sio.decode_text('5\u00b2-["a"]')  # SUPERSCRIPT TWO


@pytest.mark.parametrize("text", ["2" + "9" * 5000 + '["a"]', "5" + "9" * 5000 + '-["a"]'])
def test_huge_numbers_are_a_protocol_error(text: str) -> None:
    with pytest.raises(ProtocolError):
        sio.decode_text(text)


def test_deeply_nested_json_is_a_protocol_error() -> None:
    depth = 100_000
    with pytest.raises(ProtocolError):
        Decoder().feed('2["a",' + "[" * depth + "]" * depth + "]")


def test_deeply_nested_placeholder_is_decoded_or_refused() -> None:
    depth = 600
    decoder = Decoder()
    assert decoder.feed('51-["a",' + "[" * depth + PH0 + "]" * depth + "]") is None
    try:
        packet = decoder.feed(b"x")
    except ProtocolError:
        return
    assert packet is not None
    inner = packet.data[1]
    for _ in range(depth - 1):
        inner = inner[0]
    assert inner == [b"x"]


def test_namespace_with_comma_cannot_be_encoded() -> None:
    with pytest.raises(ValueError):
        sio.encode(Packet(EVENT, "/a,b", ["x"]))
