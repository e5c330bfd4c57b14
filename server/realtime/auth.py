"""JSON Web Tokens: who a connection or a REST request is.

Tokens are HS256 only, signed with ``JWT_SECRET``. The algorithm list is pinned, so a token
saying ``alg: none`` (or any other algorithm) is refused, and ``exp`` is required and checked.
The claims the server reads are ``userId`` (a string or a number, used as a string),
``userName`` (defaults to the id) and ``role`` (defaults to ``member``; ``admin`` may do
everything).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import jwt

from server.hub.protocol.jsontext import has_lone_surrogate

ALGORITHM = "HS256"
#: What a client is told; a ``connect_error`` handler can match these and refresh its token.
TOKEN_MISSING = "Authentication token missing"
TOKEN_INVALID = "Authentication failed: invalid token"


class InvalidToken(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Identity:
    user_id: str
    user_name: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def as_json(self) -> dict[str, Any]:
        return {"userId": self.user_id, "userName": self.user_name, "role": self.role}


class TokenVerifier:
    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("a JWT secret must not be empty")
        self._secret = secret

    def verify(self, token: str) -> Identity:
        """The identity a valid token names; raises :class:`InvalidToken` otherwise."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                options={"require": ["exp"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from None
        user_id = claims.get("userId")
        if isinstance(user_id, bool) or not isinstance(user_id, str | int) or user_id == "":
            raise InvalidToken("the token has no userId")
        user_name = claims.get("userName", str(user_id))
        role = claims.get("role", "member")
        if not isinstance(user_name, str) or not isinstance(role, str):
            raise InvalidToken("userName and role must be strings")
        if any(has_lone_surrogate(v) for v in (str(user_id), user_name, role)):
            # a claim that is not text cannot be stored or shown: the token is malformed
            raise InvalidToken("userId, userName and role must be valid Unicode text")
        return Identity(str(user_id), user_name or str(user_id), role)

    def issue(
        self, user_id: str, user_name: str, role: str = "member", ttl: float = 12 * 3600
    ) -> str:
        """A signed token (the dev endpoint and tests use this; production issues elsewhere)."""
        now = int(time.time())
        claims = {
            "userId": user_id,
            "userName": user_name,
            "role": role,
            "iat": now,
            "exp": now + int(ttl),
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
