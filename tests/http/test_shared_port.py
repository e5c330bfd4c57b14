"""One port for the hub and the app: the hub's listener serves ``/socket.io/`` and hands every
other request's connection to the app (Hypercorn), with the bytes it has read.

Raw sockets, so that what crosses the hand-over is exact: a request whose head arrives a
byte at a time, a body that follows later, a connection that was the hub's for a polling
request and then asks for the API, a pipelined pair.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from tests.realtime.harness import Service, make_project, serving, token


@pytest.fixture
async def one_port(tmp_path: Path) -> AsyncIterator[Service]:
    async with serving(tmp_path) as service:
        assert service.running.app_port == service.running.hub_port
        yield service


class Raw:
    """An HTTP/1.1 connection read by hand."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = b""

    async def response(self) -> tuple[int, dict[str, str], bytes]:
        """The next response: status, headers (lower-case names), body (by Content-Length,
        or to the end of a chunked body)."""
        with trio.fail_after(10):
            while b"\r\n\r\n" not in self.buffer:
                await self._more()
            head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if "content-length" in headers:
                size = int(headers["content-length"])
                while len(self.buffer) < size:
                    await self._more()
                body, self.buffer = self.buffer[:size], self.buffer[size:]
            elif headers.get("transfer-encoding") == "chunked":
                body = b""
                while True:
                    while b"\r\n" not in self.buffer:
                        await self._more()
                    line, self.buffer = self.buffer.split(b"\r\n", 1)
                    size = int(line, 16)
                    while len(self.buffer) < size + 2:
                        await self._more()
                    body += self.buffer[:size]
                    self.buffer = self.buffer[size + 2 :]
                    if size == 0:
                        break
            else:
                body = b""
            return status, headers, body

    async def closed(self) -> bool:
        """Whether the server closes the connection (reads to its end)."""
        with trio.fail_after(10):
            while True:
                data = await self.stream.receive_some(65536)
                if not data:
                    return True
                self.buffer += data

    async def _more(self) -> None:
        data = await self.stream.receive_some(65536)
        if not data:
            raise EOFError("the server closed the connection")
        self.buffer += data


async def connect(svc: Service) -> Raw:
    return Raw(await trio.open_tcp_stream("127.0.0.1", svc.running.app_port))


async def test_api_and_socket_io_on_one_port(one_port: Service) -> None:
    raw = await connect(one_port)
    await raw.stream.send_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, body = await raw.response()
    assert status == 200
    assert json.loads(body)["status"] == "ok"
    # a connection the app served closes after its answer: another request on it for
    # /socket.io/ would reach the app, not the hub
    assert headers["connection"] == "close"
    assert await raw.closed()

    raw = await connect(one_port)
    await raw.stream.send_all(
        b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    status, headers, body = await raw.response()
    assert status == 200
    assert body.startswith(b'0{"sid":')
    assert headers.get("connection") != "close"


async def test_a_hub_connection_then_asks_for_the_api(one_port: Service) -> None:
    """What a browser does: a connection kept alive after a polling request is reused for
    a REST call, then closed by the app after it."""
    raw = await connect(one_port)
    await raw.stream.send_all(
        b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    status, _, body = await raw.response()
    assert status == 200 and body.startswith(b"0")
    sid = json.loads(body[1:])["sid"]
    bearer = token("ada", "Ada", role="admin")
    payload = json.dumps({"name": "On one port"}).encode()
    await raw.stream.send_all(
        b"POST /api/projects HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {bearer}\r\nContent-Length: {len(payload)}\r\n\r\n".encode()
        + payload
    )
    status, headers, body = await raw.response()
    assert status == 201, body
    assert json.loads(body)["name"] == "On one port"
    assert headers["connection"] == "close"
    assert await raw.closed()
    # the session that connection opened lives on: it is the hub's, not the connection's
    raw = await connect(one_port)
    await raw.stream.send_all(
        f"POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: text/plain\r\nContent-Length: 2\r\n\r\n40".encode()
    )
    status, _, body = await raw.response()
    assert (status, body) == (200, b"ok")


async def test_a_head_in_pieces_and_a_body_that_comes_later(one_port: Service) -> None:
    """The hub reads what it needs to choose, whatever the pieces; the app gets every byte,
    those the hub read and those that come after."""
    raw = await connect(one_port)
    bearer = token("ada", "Ada", role="admin")
    payload = json.dumps({"name": "In pieces"}).encode()
    head = (
        b"POST /api/projects HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {bearer}\r\nContent-Length: {len(payload)}\r\n\r\n".encode()
    )
    for i in range(0, 40, 3):  # the request line a few bytes at a time
        await raw.stream.send_all(head[i : i + 3])
        await trio.sleep(0.01)
    await raw.stream.send_all(head[40:] + payload[:5])
    await trio.sleep(0.05)
    await raw.stream.send_all(payload[5:])
    status, _, body = await raw.response()
    assert status == 201, body
    assert json.loads(body)["name"] == "In pieces"


async def test_pipelined_requests_after_the_hand_over_are_the_apps(one_port: Service) -> None:
    raw = await connect(one_port)
    await raw.stream.send_all(
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /api/nothing HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    status, _, body = await raw.response()
    assert status == 200 and json.loads(body)["status"] == "ok"
    assert await raw.closed()


async def test_the_page_and_its_unknown_paths_are_the_apps(one_port: Service) -> None:
    raw = await connect(one_port)
    await raw.stream.send_all(b"GET /api/nothing-here HTTP/1.1\r\nHost: x\r\n\r\n")
    status, _, body = await raw.response()
    assert status == 404
    assert json.loads(body) == {"error": "Not Found"}
    # a path that only starts like the hub's is not the hub's
    raw = await connect(one_port)
    await raw.stream.send_all(b"GET /socket.iox/?EIO=4 HTTP/1.1\r\nHost: x\r\n\r\n")
    status, _, _ = await raw.response()
    assert status in (200, 404)  # the board's page fallback, or 404 without a build
    # /socket.io without its last slash is the hub's, as on a port of its own
    raw = await connect(one_port)
    await raw.stream.send_all(b"GET /socket.io?EIO=3&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n")
    status, _, body = await raw.response()
    assert status == 400
    assert json.loads(body) == {"code": 5, "message": "Unsupported protocol version"}


async def test_a_malformed_request_is_refused_by_the_hub(one_port: Service) -> None:
    raw = await connect(one_port)
    await raw.stream.send_all(b"NOT HTTP AT ALL\r\n\r\n")
    status, _, _ = await raw.response()
    assert status == 400
    assert await raw.closed()
    # and the port serves the next connection as before
    raw = await connect(one_port)
    await raw.stream.send_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    status, _, _ = await raw.response()
    assert status == 200


async def test_clients_not_ours_on_one_port(one_port: Service) -> None:
    """python-socketio over WebSocket and over long-polling, on the app's own port, and the
    REST API beside them (socket.io-client's run is tests/realtime/test_node_client.py, on
    the same one-port service)."""
    project = await make_project(one_port, "P", {"ada": "Ada", "bob": "Bob"})
    ada = one_port.tab(token("ada", "Ada"), ("websocket",))
    bob = one_port.tab(token("bob", "Bob"), ("polling",))
    assert ada.url == bob.url == one_port.app_url
    await ada.connect()
    await bob.connect()
    try:
        assert (await ada.call("joinProject", project))["ok"]
        assert (await bob.call("joinProject", project))["ok"]
        await ada.call("chatMessage", {"projectId": project, "message": "one port"})
        [message] = await bob.next("newMessage")
        assert message["message"] == "one port"
        async with one_port.http(token("ada", "Ada")) as http:
            history = await http.get(f"/api/projects/{project}/messages")
        assert history.status_code == 200, history.text
        assert "one port" in history.text
    finally:
        await ada.disconnect()
        await bob.disconnect()
