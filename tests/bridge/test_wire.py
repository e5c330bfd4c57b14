"""The adapter's wire format, byte for byte.

The hex literals were written by notepack.io 3 (what ``@socket.io/redis-adapter`` 8 uses)
for the same values, so these tests pin us to what Node nodes publish and read.
"""

from __future__ import annotations

import json

import pytest

from server.hub.bridge import wire
from server.hub.bridge.wire import (
    BroadcastMessage,
    Channels,
    Request,
    RequestType,
    Selection,
    WireError,
)
from server.hub.protocol import socketio as sio

NODE_BROADCAST = bytes.fromhex(
    "93a661626331323383a47479706502a46461746197a568656c6c6f01fbcb400c000000000000c3c0c403"
    "0001ffa36e7370a12f83a5726f6f6d7391a5726f6f6d31a665786365707491a57369642d78a5666c6167"
    "7381a8766f6c6174696c65c3"
)
NODE_BROADCAST_REQUEST = bytes.fromhex(
    "85a3756964a6616263313233a9726571756573744964a6726571303031a47479706507a67061636b6574"
    "84a47479706502a46461746192a2657681a161a162a36e7370a52f63686174a269640ca46f70747383a5"
    "726f6f6d7390a665786365707490a5666c61677381a774696d656f7574cd1388"
)
NODE_BROADCAST_ACK = bytes.fromhex(
    "83a47479706509a9726571756573744964a6726571303031a67061636b6574d928" + "78" * 40
)


def test_channel_names() -> None:
    main = Channels("/")
    assert main.broadcast == "socket.io#/#"
    assert main.pattern == "socket.io#/#*"
    assert main.room("project:7") == "socket.io#/#project:7#"
    assert main.request == "socket.io-request#/#"
    assert main.response == "socket.io-response#/#"
    assert main.response_for("Ab12Cd") == "socket.io-response#/#Ab12Cd#"
    admin = Channels("/admin", key="app")
    assert admin.broadcast == "app#/admin#"
    assert admin.request == "app-request#/admin#"


def test_one_room_goes_on_its_channel_others_on_the_namespace_channel() -> None:
    ch = Channels("/")
    assert ch.broadcast_channel(frozenset({"r"})) == "socket.io#/#r#"
    assert ch.broadcast_channel(frozenset()) == "socket.io#/#"
    assert ch.broadcast_channel(frozenset({"a", "b"})) == "socket.io#/#"


def test_room_of_channel() -> None:
    ch = Channels("/")
    assert ch.room_of("socket.io#/#") == ""
    assert ch.room_of("socket.io#/#project:1#") == "project:1"
    assert ch.room_of("socket.io#/admin#") is None
    assert ch.room_of("socket.io#/#broken") is None


def test_broadcast_encodes_as_notepack_does() -> None:
    packet = sio.Packet(
        sio.PacketType.EVENT, "/", ["hello", 1, -5, 3.5, True, None, b"\x00\x01\xff"]
    )
    selection = Selection(frozenset({"room1"}), frozenset({"sid-x"}), {"volatile": True})
    assert BroadcastMessage("abc123", packet, selection).encode() == NODE_BROADCAST


def test_broadcast_from_node_decodes_with_binary_in_place() -> None:
    message = BroadcastMessage.decode(NODE_BROADCAST, "/")
    assert message.uid == "abc123"
    assert message.packet == sio.Packet(
        sio.PacketType.EVENT, "/", ["hello", 1, -5, 3.5, True, None, b"\x00\x01\xff"]
    )
    assert message.selection.rooms == {"room1"}
    assert message.selection.except_rooms == {"sid-x"}
    assert message.selection.volatile
    # and our encoder turns it into a BINARY_EVENT with one attachment for the clients
    encoded = sio.encode(message.packet)
    assert encoded[0].startswith("51-[")
    assert encoded[1] == b"\x00\x01\xff"


def test_peek_uid_skips_own_messages_without_decoding() -> None:
    assert wire.peek_uid(NODE_BROADCAST) == "abc123"
    long_uid = BroadcastMessage(
        "u" * 40, sio.Packet(sio.PacketType.EVENT, "/", ["e"]), Selection()
    ).encode()
    assert wire.peek_uid(long_uid) == "u" * 40
    assert wire.peek_uid(b"") is None
    assert wire.peek_uid(b"\x81\xa1a\x01") is None


def test_emitter_packet_without_nsp_is_namespace_root() -> None:
    body = wire.pack(["emitter", {"type": 2, "data": ["x"]}, {"rooms": [], "except": []}])
    message = BroadcastMessage.decode(body, "/")
    assert message.uid == wire.EMITTER_UID
    assert message.packet.nsp == "/"
    assert message.selection == Selection()


def test_numeric_rooms_match_their_string_form() -> None:
    body = wire.pack(["n", {"type": 2, "data": ["x"], "nsp": "/"}, {"rooms": [42], "except": []}])
    assert BroadcastMessage.decode(body, "/").selection.rooms == {"42"}


@pytest.mark.parametrize(
    "body",
    [
        b"\xc1",  # never used in MessagePack
        wire.pack({"not": "an array"}),
        wire.pack([1, {"type": 2, "data": ["x"]}, {}]),  # uid not a string
        wire.pack(["u", {"type": 0, "data": {}}, {}]),  # CONNECT does not travel
        wire.pack(["u", {"type": 2, "data": []}, {}]),  # no event name
        wire.pack(["u", {"type": 2, "data": ["x"], "nsp": "/other"}, {}]),
        wire.pack(["u", {"type": 2, "data": ["x"]}, {"rooms": "r"}]),
        wire.pack(["u", {"type": 2, "data": ["x"]}, {"rooms": [{"a": 1}]}]),
        bytes.fromhex("93a175d50001ff80"),  # an unknown extension type
    ],
)
def test_malformed_broadcasts_are_refused(body: bytes) -> None:
    with pytest.raises(WireError):
        BroadcastMessage.decode(body, "/")


def test_undefined_from_old_notepack_is_none() -> None:
    assert wire.unpack(bytes.fromhex("93d40000" + "01" + "c0")) == [None, 1, None]


def test_integers_take_their_smallest_form_as_in_notepack() -> None:
    assert wire.pack([None, 10_000_000_000, 70_000, -200]) == bytes.fromhex(
        "94c0cf00000002540be400ce00011170d1ff38"
    )


def test_broadcast_request_with_acks_is_messagepack() -> None:
    request = Request.decode(NODE_BROADCAST_REQUEST, "/chat")
    assert request.type is RequestType.BROADCAST
    assert request.uid == "abc123"
    assert request.request_id == "req001"
    assert request.packet == sio.Packet(sio.PacketType.EVENT, "/chat", ["ev", {"a": "b"}], 12)
    assert request.selection == Selection(flags={"timeout": 5000})
    assert request.encode() == NODE_BROADCAST_REQUEST


def test_json_requests_as_node_writes_them() -> None:
    fetch = Request(RequestType.REMOTE_FETCH, "abc123", "req9", Selection(frozenset({"project:1"})))
    assert fetch.encode() == (
        b'{"uid":"abc123","requestId":"req9","type":5,"opts":{"rooms":["project:1"],"except":[]}}'
    )
    join = Request(
        RequestType.REMOTE_JOIN, "abc123", selection=Selection(frozenset({"a"})), rooms=["b"]
    )
    assert join.encode() == (
        b'{"uid":"abc123","type":2,"opts":{"rooms":["a"],"except":[]},"rooms":["b"]}'
    )
    disconnect = Request(RequestType.REMOTE_DISCONNECT, "abc123", selection=Selection(), close=True)
    assert disconnect.encode() == (
        b'{"uid":"abc123","type":4,"opts":{"rooms":[],"except":[]},"close":true}'
    )
    emit = Request(RequestType.SERVER_SIDE_EMIT, "abc123", "r1", data=["hello", "w\u00e9", 1])
    assert emit.encode() == (
        '{"uid":"abc123","requestId":"r1","type":6,"data":["hello","w\u00e9",1]}'.encode()
    )


def test_json_request_round_trip() -> None:
    text = b'{"uid":"x","requestId":"q","type":0,"rooms":["a","b"]}'
    request = Request.decode(text, "/")
    assert (request.type, request.uid, request.request_id, request.rooms) == (
        RequestType.SOCKETS,
        "x",
        "q",
        ["a", "b"],
    )
    legacy = Request.decode(b'{"uid":"x","requestId":"q","type":2,"sid":"s1","room":"r"}', "/")
    assert (legacy.sid, legacy.room, legacy.selection) == ("s1", "r", None)


@pytest.mark.parametrize(
    "body",
    [b'{"uid":"x","type":99}', b"{not json", wire.pack([1, 2]), b'{"uid":"x","type":"0"}'],
)
def test_malformed_requests_are_refused(body: bytes) -> None:
    with pytest.raises(WireError):
        Request.decode(body, "/")


def test_responses_json_except_broadcast_ack() -> None:
    count = wire.encode_response(
        {"type": RequestType.BROADCAST_CLIENT_COUNT, "requestId": "req001", "clientCount": 3}
    )
    assert json.loads(count) == {"type": 8, "requestId": "req001", "clientCount": 3}
    ack = wire.encode_response(
        {"type": RequestType.BROADCAST_ACK, "requestId": "req001", "packet": "x" * 40}
    )
    assert ack == NODE_BROADCAST_ACK
    assert wire.decode_response(NODE_BROADCAST_ACK)["packet"] == "x" * 40
    assert wire.decode_response(b'{"requestId":"a","sockets":[]}') == {
        "requestId": "a",
        "sockets": [],
    }


def test_binary_in_json_bodies_looks_like_a_node_buffer() -> None:
    body = Request(RequestType.SERVER_SIDE_EMIT, "u", data=["ev", b"\x01\x02"]).encode()
    assert json.loads(body)["data"] == ["ev", {"type": "Buffer", "data": [1, 2]}]


#: notepack.io's bytes for ``["node01", {type: 2, data: ["when", {at: new Date(...), old:
#: new Date(-1), far: new Date(253402300800000), u: undefined, big: 2 ** 53, neg: -(2 ** 40),
#: bin: {deep: [Buffer.from([255])]}}], nsp: "/"}, {rooms: ["project:1"], ...}]``: the seed's
#: code emits objects with ``timestamp: new Date()``, which travel as MessagePack timestamps
NODE_DATES = bytes.fromhex(
    "93a66e6f6465303183a47479706502a46461746192a47768656e86a26174d7ff315a47006b075718a36f6c"
    "64c70cff3b8b87c0ffffffffffffffffa3666172c70cff000000000000003afff44180a3626967cf0020000"
    "000000000a36e6567d3ffffff0000000000a362696e81a46465657091c401ffa36e7370a12f83a5726f6f6d"
    "7391a970726f6a6563743a31a665786365707490a5666c61677380"
)


def test_values_from_node_arrive_as_a_node_client_would_see_them() -> None:
    """Dates as their ISO 8601 string (``JSON.stringify``, six-digit years included), an
    ``undefined`` member gone, integers past 2**32 and nested binary kept; and the packet
    encodes for our clients."""
    message = BroadcastMessage.decode(NODE_DATES, "/")
    assert message.packet.data == [
        "when",
        {
            "at": "2026-11-25T21:46:00.207Z",
            "old": "1969-12-31T23:59:59.999Z",
            "far": "+010000-01-01T00:00:00.000Z",
            "big": 2**53,
            "neg": -(2**40),
            "bin": {"deep": [b"\xff"]},
        },
    ]
    text, attachment = sio.encode(message.packet)
    assert '"at":"2026-11-25T21:46:00.207Z"' in text and attachment == b"\xff"


def test_iso_dates_are_javascripts() -> None:
    # new Date(ms).toISOString() in Node, for these ms
    expected = {
        0: "1970-01-01T00:00:00.000Z",
        -62198755200000: "-000001-01-01T00:00:00.000Z",
        951782400000: "2000-02-29T00:00:00.000Z",
        8640000000000000: "+275760-09-13T00:00:00.000Z",
        -8640000000000000: "-271821-04-20T00:00:00.000Z",
    }
    assert {ms: wire.iso_of_millis(ms) for ms in expected} == expected
