"""Authentication at the handshake, with python-socketio's client.

A refusal is a CONNECT_ERROR whose message is exactly one of two strings, so a client's
``connect_error`` handler can tell "log in" from "refresh the token"."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import pytest
import trio

from tests.realtime.harness import SECRET, Service, metric, token

MISSING = {"message": "Authentication token missing"}
INVALID = {"message": "Authentication failed: invalid token"}


def unsigned(claims: dict[str, object]) -> str:
    """A token with ``alg: none`` and no signature, as an attacker would send."""

    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


async def test_a_valid_token_connects_and_lands_in_socket_data(svc: Service) -> None:
    tab = svc.tab(token(42, "Ada", "member"))
    await tab.connect()
    try:
        hub = svc.running.hub
        sockets: list[Any] = []

        async def in_user_room() -> bool:  # the connect handler runs after CONNECT's answer
            sockets[:] = await hub.to("user:42").fetch_sockets()
            return len(sockets) == 1

        with trio.fail_after(5):
            while not await in_user_room():
                await trio.sleep(0.02)
        assert {k: sockets[0].data[k] for k in ("userId", "userName", "role")} == {
            "userId": "42",
            "userName": "Ada",
            "role": "member",
        }
    finally:
        await tab.disconnect()


@pytest.mark.parametrize("transports", [("polling",), ("websocket",)], ids=["polling", "ws"])
async def test_no_token_is_refused_as_missing(svc: Service, transports: tuple[str, ...]) -> None:
    assert await svc.tab(None, transports).refused() == MISSING
    assert await svc.tab("", transports).refused() == MISSING


async def test_a_token_that_is_not_a_string_is_missing(svc: Service) -> None:
    tab = svc.tab(None)
    tab.bearer = 12345  # type: ignore[assignment]
    assert await tab.refused() == MISSING


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(
            lambda: token("u1", secret="another-secret-long-enough-for-hs256"), id="wrong-key"
        ),
        pytest.param(lambda: token("u1", expires_in=-60), id="expired"),
        pytest.param(
            lambda: unsigned({"userId": "u1", "role": "admin", "exp": time.time() + 600}),
            id="alg-none",
        ),
        pytest.param(
            lambda: jwt.encode({"userId": "u1", "exp": time.time() + 600}, SECRET, "HS512"),
            id="other-alg",
            marks=pytest.mark.filterwarnings("ignore:The HMAC key"),
        ),
        pytest.param(lambda: jwt.encode({"userId": "u1"}, SECRET, "HS256"), id="no-exp"),
        pytest.param(lambda: token("", "Nobody"), id="empty-user"),
        pytest.param(
            lambda: jwt.encode({"userName": "x", "exp": time.time() + 60}, SECRET, "HS256"),
            id="no-user",
        ),
        pytest.param(lambda: "not.a.jwt", id="garbage"),
        pytest.param(lambda: token("u1")[:-4] + "AAAA", id="tampered"),
    ],
)
async def test_bad_tokens_are_refused_as_invalid(svc: Service, bad: object) -> None:
    tab = svc.tab(bad())  # type: ignore[operator]
    assert await tab.refused() == INVALID
    assert not tab.connected


async def test_refusals_are_counted_and_a_refused_client_can_retry(svc: Service) -> None:
    tab = svc.tab(token("u1", expires_in=-1))
    assert await tab.refused() == INVALID
    fresh = svc.tab(token("u1"))  # what a connect_error handler does: new token, reconnect
    await fresh.connect()
    await fresh.disconnect()
    async with svc.http() as http:
        metrics = (await http.get("/metrics")).text
    assert metric(metrics, "realtime_auth_refused_total") == 1
