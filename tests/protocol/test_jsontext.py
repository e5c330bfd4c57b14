"""Strings that came from JSON go back out as JSON.stringify writes them.

A lone UTF-16 surrogate arrives as a JSON escape (``"\\ud800"``) and has no UTF-8 form; every
codec that writes it again (the Socket.IO packets, the bridge's JSON and MessagePack) must
produce bytes, never raise. The judge of "as JSON.stringify writes them" is Node itself.
"""

from __future__ import annotations

import json
import subprocess

import msgpack  # type: ignore[import-untyped]
import pytest

from server.hub.bridge import wire
from server.hub.engine.wire import Wire
from server.hub.protocol import jsontext
from server.hub.protocol import socketio as sio
from tests.node_harness import node_executable

#: JSON texts a client could send, each holding lone surrogates somewhere.
HOSTILE = [
    r'"\ud800"',
    r'"\udfff"',
    r'["cursorMove",{"projectId":1,"taskId":"\ud800","position":{"\udfff":1}}]',
    r'{"a\ud83d":"b\ude00c","pair":"\ud83d\ude00","mixed":"é\ud800€"}',
    r'["x\ud800\ud800y", "\udbff\udfff", "\ud800\u0041"]',
]


@pytest.mark.parametrize("text", HOSTILE)
def test_lone_surrogates_are_written_as_escapes_and_encode(text: str) -> None:
    value = json.loads(text)
    out = jsontext.dumps(value)
    out.encode("utf-8")  # the whole point: never UnicodeEncodeError
    assert json.loads(out) == value  # and nothing is lost


def test_the_output_is_byte_for_byte_what_node_writes() -> None:
    node = node_executable()
    if node is None:
        pytest.skip("node is not installed")
    script = (
        "const texts = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "process.stdout.write(JSON.stringify(texts.map((t) => JSON.stringify(JSON.parse(t)))));"
    )
    done = subprocess.run(
        [node, "-e", script], input=json.dumps(HOSTILE), capture_output=True, text=True, check=True
    )
    theirs = json.loads(done.stdout)
    ours = [jsontext.dumps(json.loads(text)) for text in HOSTILE]
    assert ours == theirs


def test_ordinary_text_is_untouched() -> None:
    value = {"message": "héllo wörld 😀", "n": [1, 2.5, None, True]}
    assert jsontext.dumps(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    assert not jsontext.has_lone_surrogate("héllo 😀")
    assert jsontext.has_lone_surrogate("a\ud800")


def test_a_socketio_packet_with_a_lone_surrogate_becomes_frames() -> None:
    packet = sio.Packet(sio.PacketType.EVENT, "/", ["cursorUpdate", {"taskId": "\ud800"}])
    (text,) = sio.encode(packet)
    assert text == '2["cursorUpdate",{"taskId":"\\ud800"}]'
    records = list(Wire.messages([text]).records())
    assert records == [b'42["cursorUpdate",{"taskId":"\\ud800"}]']  # 4: MESSAGE


def test_the_bridge_writes_them_too() -> None:
    # JSON bodies (requests, responses): the escape, which JSON.parse turns back into the
    # same lone surrogate in Node
    assert wire.dump_json({"userName": "\ud800"}) == b'{"userName":"\\ud800"}'
    # MessagePack strings are UTF-8: U+FFFD, the character Node's Buffer writes instead
    packet = sio.Packet(sio.PacketType.EVENT, "/", ["e", {"k\udfff": "v\ud800"}])
    body = wire.BroadcastMessage("uid", packet, wire.Selection()).encode()
    assert msgpack.unpackb(body)[1]["data"] == ["e", {"k\ufffd": "v\ufffd"}]


def test_the_bridge_reads_invalid_utf8_as_node_does() -> None:
    # a string holding the three bytes of an encoded surrogate: Node reads three U+FFFD
    odd = msgpack.packb(["uid", {"type": 2, "data": ["e", "X"], "nsp": "/"}, {}])
    odd = odd.replace(b"\xa1X", b"\xa3\xed\xa0\x80")
    message = wire.BroadcastMessage.decode(odd, "/")
    assert message.packet.data == ["e", "\ufffd\ufffd\ufffd"]
