"""Engine.IO v4 codec, byte for byte: packets, WebSocket frames and long-polling payloads.

Expected values come from the Engine.IO v4 specification (socketio/engine.io-protocol,
"Packet encoding") and the v4 changelog of the reference parser (engine.io-parser 4.0.0):

* a packet is ``<packet type>[<data>]``, type ``0``..``6`` = open close ping pong message
  upgrade noop;
* over WebSocket each packet is one frame and "binary payloads are sent as is" (no type byte,
  unlike v3 which prefixed ``0x04``);
* over long-polling packets are joined by the record separator ``\\x1e`` and binary payloads
  are "base64-encoded and prefixed with a ``b`` character".
"""

from __future__ import annotations

import pytest

from server.hub.protocol import engineio as eio
from server.hub.protocol.engineio import Packet, PacketType
from server.hub.protocol.errors import ProtocolError

HANDSHAKE = (
    '{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],'
    '"pingInterval":25000,"pingTimeout":5000,"maxPayload":1000000}'
)

# --------------------------------------------------------------------------------------------
# constants


def test_separator_is_the_ascii_record_separator() -> None:
    assert eio.SEPARATOR == "\x1e"
    assert len(eio.SEPARATOR) == 1
    assert ord(eio.SEPARATOR) == 30


def test_protocol_version_is_4() -> None:
    assert eio.PROTOCOL_VERSION == 4


def test_packet_type_numbers() -> None:
    assert {t.name: t.value for t in PacketType} == {
        "OPEN": 0,
        "CLOSE": 1,
        "PING": 2,
        "PONG": 3,
        "MESSAGE": 4,
        "UPGRADE": 5,
        "NOOP": 6,
    }


def test_premade_packets() -> None:
    assert Packet(PacketType.PING, "") == eio.PING
    assert Packet(PacketType.PONG, "") == eio.PONG
    assert Packet(PacketType.NOOP, "") == eio.NOOP
    assert Packet(PacketType.CLOSE, "") == eio.CLOSE
    assert Packet(PacketType.UPGRADE, "") == eio.UPGRADE
    assert [eio.encode_text(p) for p in (eio.PING, eio.PONG, eio.NOOP, eio.CLOSE, eio.UPGRADE)] == [
        "2",
        "3",
        "6",
        "1",
        "5",
    ]


def test_message_helper() -> None:
    assert eio.message("hello") == Packet(PacketType.MESSAGE, "hello")
    assert eio.message(b"\x01") == Packet(PacketType.MESSAGE, b"\x01")


def test_packet_defaults_and_is_binary() -> None:
    assert Packet(PacketType.PING).data == ""
    assert Packet(PacketType.MESSAGE, "x").is_binary is False
    assert Packet(PacketType.MESSAGE, "").is_binary is False
    assert Packet(PacketType.MESSAGE, b"").is_binary is True
    assert Packet(PacketType.MESSAGE, b"x").is_binary is True


def test_packets_are_immutable_and_hashable() -> None:
    packet = eio.message("x")
    with pytest.raises(AttributeError):
        packet.data = "y"  # type: ignore[misc]
    assert len({eio.message("x"), eio.message("x"), eio.message(b"x")}) == 2


# --------------------------------------------------------------------------------------------
# text packets: the same form in a WebSocket text frame and in one polling record

TEXT_VECTORS = [
    pytest.param(Packet(PacketType.OPEN, HANDSHAKE), "0" + HANDSHAKE, id="open-handshake"),
    pytest.param(Packet(PacketType.OPEN), "0", id="open-empty"),
    pytest.param(Packet(PacketType.CLOSE), "1", id="close"),
    pytest.param(Packet(PacketType.PING), "2", id="ping"),
    pytest.param(Packet(PacketType.PING, "probe"), "2probe", id="ping-probe"),
    pytest.param(Packet(PacketType.PONG), "3", id="pong"),
    pytest.param(Packet(PacketType.PONG, "probe"), "3probe", id="pong-probe"),
    pytest.param(Packet(PacketType.MESSAGE, "hello"), "4hello", id="message"),
    pytest.param(Packet(PacketType.MESSAGE, "HelloWorld"), "4HelloWorld", id="message-2"),
    pytest.param(Packet(PacketType.MESSAGE, "hey"), "4hey", id="message-hey"),
    pytest.param(Packet(PacketType.MESSAGE), "4", id="message-empty"),
    pytest.param(Packet(PacketType.MESSAGE, "€€€"), "4€€€", id="message-unicode"),
    pytest.param(Packet(PacketType.MESSAGE, "日本語 😀"), "4日本語 😀", id="message-astral"),
    pytest.param(Packet(PacketType.MESSAGE, "b"), "4b", id="message-text-b"),
    pytest.param(Packet(PacketType.MESSAGE, "4"), "44", id="message-text-4"),
    pytest.param(Packet(PacketType.MESSAGE, "line\nbreak"), "4line\nbreak", id="message-newline"),
    pytest.param(Packet(PacketType.MESSAGE, "0"), "40", id="socketio-connect"),
    pytest.param(
        Packet(PacketType.MESSAGE, '2["hey","Jude"]'), '42["hey","Jude"]', id="socketio-event"
    ),
    pytest.param(Packet(PacketType.UPGRADE), "5", id="upgrade"),
    pytest.param(Packet(PacketType.NOOP), "6", id="noop"),
]


@pytest.mark.parametrize(("packet", "text"), TEXT_VECTORS)
def test_encode_text(packet: Packet, text: str) -> None:
    assert eio.encode_text(packet) == text


@pytest.mark.parametrize(("packet", "text"), TEXT_VECTORS)
def test_encode_frame_text(packet: Packet, text: str) -> None:
    frame = eio.encode_frame(packet)
    assert isinstance(frame, str)
    assert frame == text


@pytest.mark.parametrize(("packet", "text"), TEXT_VECTORS)
def test_decode_text(packet: Packet, text: str) -> None:
    decoded = eio.decode_text(text)
    assert decoded == packet
    assert type(decoded.type) is PacketType
    assert isinstance(decoded.data, str)
    assert decoded.is_binary is False


@pytest.mark.parametrize(("packet", "text"), TEXT_VECTORS)
def test_decode_frame_text(packet: Packet, text: str) -> None:
    assert eio.decode_frame(text) == packet


@pytest.mark.parametrize(("packet", "text"), TEXT_VECTORS)
def test_text_packet_is_a_one_record_payload(packet: Packet, text: str) -> None:
    assert eio.encode_payload([packet]) == text
    assert eio.decode_payload(text) == [packet]


def test_decode_keeps_data_verbatim() -> None:
    # Engine.IO does not interpret the data: whitespace and JSON-looking text pass through.
    assert eio.decode_text("4  padded  ") == eio.message("  padded  ")
    assert eio.decode_text('0{"sid":1}') == Packet(PacketType.OPEN, '{"sid":1}')
    assert eio.decode_text("2probe\x00") == Packet(PacketType.PING, "probe\x00")


# --------------------------------------------------------------------------------------------
# binary messages

BASE64_VECTORS = [
    pytest.param(b"\x01\x02\x03\x04", "bAQIDBA==", id="spec-01020304"),
    pytest.param(b"\x01\x02\x03", "bAQID", id="changelog-010203"),
    pytest.param(b"\x01\x02", "bAQI=", id="one-pad"),
    pytest.param(b"\x00", "bAA==", id="zero-byte"),
    pytest.param(b"", "b", id="empty"),
    pytest.param(b"\xff\xfe\xfd", "b//79", id="plus-slash-alphabet"),
    pytest.param(b"\xfb\xef\xbe", "b++++", id="plus-alphabet"),
    pytest.param(b"hello", "baGVsbG8=", id="ascii-bytes"),
    pytest.param(b"\x1e\x1e\x1e", "bHh4e", id="separator-bytes"),
]


@pytest.mark.parametrize(("data", "text"), BASE64_VECTORS)
def test_encode_binary_message_as_base64(data: bytes, text: str) -> None:
    assert eio.encode_text(eio.message(data)) == text


@pytest.mark.parametrize(("data", "text"), BASE64_VECTORS)
def test_decode_base64_binary_message(data: bytes, text: str) -> None:
    packet = eio.decode_text(text)
    assert packet == Packet(PacketType.MESSAGE, data)
    assert type(packet.data) is bytes
    assert packet.is_binary is True


@pytest.mark.parametrize(("data", "text"), BASE64_VECTORS)
def test_base64_record_in_payload(data: bytes, text: str) -> None:
    assert eio.encode_payload([eio.message(data)]) == text
    assert eio.decode_payload(text) == [eio.message(data)]


def test_base64_text_frame_is_a_binary_message() -> None:
    # A "b" text frame is accepted over WebSocket too (the reference parser does the same).
    assert eio.decode_frame("bAQIDBA==") == eio.message(b"\x01\x02\x03\x04")


@pytest.mark.parametrize(
    "data",
    [b"\x01\x02\x03\x04", b"", b"\x00", b"4hello", b"bAQID", bytes(range(256))],
    ids=["spec", "empty", "nul", "looks-like-text-packet", "looks-like-base64", "all-bytes"],
)
def test_binary_frame_is_sent_as_is(data: bytes) -> None:
    frame = eio.encode_frame(eio.message(data))
    assert type(frame) is bytes
    assert frame == data  # no type byte in v4 (v3 sent b"\x04" + data)


@pytest.mark.parametrize(
    "frame",
    [b"\x01\x02\x03\x04", b"", b"4hello", b"2probe", b"\x1e", bytes(range(256))],
    ids=["spec", "empty", "text-lookalike", "ping-lookalike", "separator", "all-bytes"],
)
def test_binary_frame_decodes_to_binary_message(frame: bytes) -> None:
    packet = eio.decode_frame(frame)
    assert packet == Packet(PacketType.MESSAGE, frame)
    assert type(packet.data) is bytes


def test_binary_frame_accepts_bytearray_and_memoryview() -> None:
    for frame in (bytearray(b"\x01\x02"), memoryview(b"\x01\x02")):
        packet = eio.decode_frame(frame)  # type: ignore[arg-type]
        assert packet == eio.message(b"\x01\x02")
        assert type(packet.data) is bytes


def test_text_and_binary_messages_with_equal_content_differ() -> None:
    assert eio.decode_frame("4abc") != eio.decode_frame(b"abc")
    assert eio.decode_frame(b"abc") == eio.message(b"abc")
    assert eio.decode_frame("4abc") == eio.message("abc")


# --------------------------------------------------------------------------------------------
# long-polling payloads

PAYLOAD_VECTORS = [
    pytest.param(
        [eio.message("hello"), eio.PING, eio.message("world")],
        "4hello\x1e2\x1e4world",
        id="spec-text",
    ),
    pytest.param(
        [eio.message("hello"), eio.message(b"\x01\x02\x03\x04")],
        "4hello\x1ebAQIDBA==",
        id="spec-mixed",
    ),
    pytest.param(
        [eio.message("hello"), eio.message("€€€")],
        "4hello\x1e4€€€",
        id="changelog-unicode",
    ),
    pytest.param(
        [eio.message("hello"), eio.message(b"\x01\x02\x03")],
        "4hello\x1ebAQID",
        id="changelog-mixed",
    ),
    pytest.param(
        [eio.message('2["hello"]'), eio.message('2["world"]')],
        '42["hello"]\x1e42["world"]',
        id="spec-socketio-session",
    ),
    pytest.param(
        [Packet(PacketType.PING, "probe"), eio.message("test"), eio.CLOSE],
        "2probe\x1e4test\x1e1",
        id="ping-message-close",
    ),
    pytest.param(
        [Packet(PacketType.OPEN, HANDSHAKE), eio.message("0")],
        "0" + HANDSHAKE + "\x1e40",
        id="open-then-connect",
    ),
    pytest.param(
        [eio.message(b"\x01"), eio.message(b"\x02\x03"), eio.message(b"")],
        "bAQ==\x1ebAgM=\x1eb",
        id="only-binary",
    ),
    pytest.param(
        [
            eio.message('51-["baz",{"_placeholder":true,"num":0}]'),
            eio.message(b"\x01\x02\x03\x04"),
        ],
        '451-["baz",{"_placeholder":true,"num":0}]\x1ebAQIDBA==',
        id="socketio-binary-event",
    ),
    pytest.param(
        [eio.message(""), eio.message(""), eio.NOOP],
        "4\x1e4\x1e6",
        id="empty-messages",
    ),
    pytest.param(
        [eio.PONG, eio.PONG, eio.PONG, eio.UPGRADE, eio.NOOP],
        "3\x1e3\x1e3\x1e5\x1e6",
        id="control-packets",
    ),
]


@pytest.mark.parametrize(("packets", "body"), PAYLOAD_VECTORS)
def test_encode_payload(packets: list[Packet], body: str) -> None:
    assert eio.encode_payload(packets) == body


@pytest.mark.parametrize(("packets", "body"), PAYLOAD_VECTORS)
def test_decode_payload(packets: list[Packet], body: str) -> None:
    decoded = eio.decode_payload(body)
    assert decoded == packets
    assert [p.is_binary for p in decoded] == [p.is_binary for p in packets]


def test_encode_payload_takes_any_iterable() -> None:
    packets = (eio.message(str(i)) for i in range(3))
    assert eio.encode_payload(packets) == "40\x1e41\x1e42"


def test_encode_payload_of_nothing_is_empty() -> None:
    assert eio.encode_payload([]) == ""


def test_payload_keeps_order_and_count() -> None:
    packets = [eio.message(f"m{i}") if i % 3 else eio.message(bytes([i])) for i in range(50)]
    body = eio.encode_payload(packets)
    assert body.count("\x1e") == 49
    assert eio.decode_payload(body) == packets


def test_binary_containing_separator_bytes_is_safe_in_payload() -> None:
    data = b"\x1e" * 10 + b"a\x1eb"
    body = eio.encode_payload([eio.message("x"), eio.message(data), eio.message("y")])
    assert body.count("\x1e") == 2
    assert eio.decode_payload(body) == [eio.message("x"), eio.message(data), eio.message("y")]


# --------------------------------------------------------------------------------------------
# malformed input


@pytest.mark.parametrize("decode", [eio.decode_text, eio.decode_frame], ids=["text", "frame"])
def test_empty_packet_is_an_error(decode: object) -> None:
    with pytest.raises(ProtocolError, match="empty packet"):
        decode("")  # type: ignore[operator]


@pytest.mark.parametrize(
    "text",
    [
        "7",
        "8hello",
        "9",
        "x",
        "a",
        "B",  # the binary prefix is lower-case only
        "Bhello",
        " 4hello",
        "\x1e",
        "-1",
        "+4",
        "\n4",
        "\u0664hello",  # ARABIC-INDIC DIGIT FOUR
        "\uff14hello",  # FULLWIDTH DIGIT FOUR
        "\u2074",  # SUPERSCRIPT FOUR
        "{}",
        "[]",
    ],
)
def test_unknown_packet_type_is_an_error(text: str) -> None:
    with pytest.raises(ProtocolError, match="unknown packet type"):
        eio.decode_text(text)
    with pytest.raises(ProtocolError, match="unknown packet type"):
        eio.decode_frame(text)


@pytest.mark.parametrize(
    "text",
    [
        "b!!!!",
        "bAQI",  # missing padding
        "bAQ=",  # short padding
        "bAQ===",  # excess padding
        "b=AQ=",  # leading padding
        "bAQ==AQ==",  # data after padding
        "bAQ ID",  # whitespace
        "bAQID\n",
        "b-_-_",  # URL-safe alphabet is not the one the spec uses
        "bAQID\x1e",
        "bA",
        "bAQ\x00D",
    ],
)
def test_bad_base64_is_an_error(text: str) -> None:
    with pytest.raises(ProtocolError, match="invalid base64"):
        eio.decode_text(text)


@pytest.mark.parametrize("text", ["bé", "bAQI€", "b\u00a0AQID", "bAQID😀"])
def test_non_ascii_base64_is_a_protocol_error(text: str) -> None:
    with pytest.raises(ProtocolError, match="invalid base64"):
        eio.decode_text(text)


def test_non_ascii_base64_record_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="invalid base64"):
        eio.decode_payload("4hello\x1ebAQIDBA==é\x1e4world")


def test_empty_payload_is_an_error() -> None:
    with pytest.raises(ProtocolError, match="empty payload"):
        eio.decode_payload("")


@pytest.mark.parametrize(
    "body",
    [
        "\x1e",
        "\x1e\x1e",
        "4a\x1e",  # trailing separator
        "\x1e4a",  # leading separator
        "4a\x1e\x1e4b",  # empty record between separators
        "4a\x1e\x1e\x1e4b",
    ],
)
def test_empty_record_in_payload_is_an_error(body: str) -> None:
    with pytest.raises(ProtocolError, match="empty packet"):
        eio.decode_payload(body)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("4a\x1e7\x1e4b", "unknown packet type"),
        ("4a\x1ex", "unknown packet type"),
        ("4a\x1ebAQI\x1e4b", "invalid base64"),
        ("bAQIDBA==\x1eb!", "invalid base64"),
        ("4a\x1e\x1e", "empty packet"),
    ],
)
def test_one_bad_record_fails_the_whole_payload(body: str, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        eio.decode_payload(body)


def test_protocol_error_is_a_value_error() -> None:
    assert issubclass(ProtocolError, ValueError)
    with pytest.raises(ValueError):
        eio.decode_text("z")


# --------------------------------------------------------------------------------------------
# round-trips

ROUND_TRIP_PACKETS = [
    Packet(PacketType.OPEN, HANDSHAKE),
    eio.CLOSE,
    eio.PING,
    Packet(PacketType.PING, "probe"),
    eio.PONG,
    Packet(PacketType.PONG, "probe"),
    eio.message(""),
    eio.message("hello"),
    eio.message("héllo \u2028 wörld 😀"),
    eio.message("\x00\x1f"),
    eio.message(b""),
    eio.message(b"\x00"),
    eio.message(bytes(range(256)) * 3),
    eio.UPGRADE,
    eio.NOOP,
]


@pytest.mark.parametrize("packet", ROUND_TRIP_PACKETS)
def test_round_trip_text_form(packet: Packet) -> None:
    assert eio.decode_text(eio.encode_text(packet)) == packet


@pytest.mark.parametrize("packet", ROUND_TRIP_PACKETS)
def test_round_trip_frame_form(packet: Packet) -> None:
    assert eio.decode_frame(eio.encode_frame(packet)) == packet


def test_round_trip_payload() -> None:
    body = eio.encode_payload(ROUND_TRIP_PACKETS)
    assert eio.decode_payload(body) == ROUND_TRIP_PACKETS
    assert eio.encode_payload(eio.decode_payload(body)) == body


@pytest.mark.parametrize(
    "body",
    [
        "4hello\x1e2\x1e4world",
        "4hello\x1ebAQIDBA==",
        '42["hello"]\x1e42["world"]',
        "b\x1e4\x1e6",
        "0" + HANDSHAKE,
    ],
)
def test_round_trip_from_the_wire(body: str) -> None:
    assert eio.encode_payload(eio.decode_payload(body)) == body
