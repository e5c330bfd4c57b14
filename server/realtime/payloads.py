"""Checking what clients send. A bad payload raises :class:`Invalid` with a message fit
for the client (it goes back in the ack as ``{ok: false, error}`` or in a 400 body)."""

from __future__ import annotations

import math
from typing import Any

from server.hub.protocol.jsontext import has_lone_surrogate

#: The longest chat message, in characters.
MAX_MESSAGE = 4000
MAX_TITLE = 200
MAX_DESCRIPTION = 10_000
MAX_NAME = 100
MAX_USER_ID = 100
#: A cursor position is a small object of numbers, e.g. ``{"x": 10, "y": 20}``.
MAX_POSITION_KEYS = 8
_MAX_ID = 2**53  # what a JavaScript number holds exactly


class Invalid(ValueError):
    """The client sent something malformed; ``str(exc)`` says what, for the client."""


def obj(value: Any, what: str = "payload") -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid(f"{what} must be an object")
    return value


def ident(value: Any, name: str) -> int:
    """A positive integer id; a string of digits is accepted too (ids from URLs)."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 16:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < _MAX_ID:
        raise Invalid(f"{name} must be a positive integer")
    return value


def number(value: Any, name: str) -> float:
    """A finite number (a task's place in its column, say); not a boolean."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise Invalid(f"{name} must be a finite number")
    if abs(value) > _MAX_ID:
        raise Invalid(f"{name} must be between -{_MAX_ID} and {_MAX_ID}")
    return float(value)


def optional_ident(value: Any, name: str) -> int | None:
    return None if value is None else ident(value, name)


def _unicode(value: str, name: str) -> str:
    # JSON can carry a lone UTF-16 surrogate ("\ud800"): it is no character, cannot be
    # stored as UTF-8 text, and is refused like any other malformed input
    if has_lone_surrogate(value):
        raise Invalid(f"{name} is not valid Unicode text (it holds a lone surrogate)")
    return value


def text(value: Any, name: str, max_len: int) -> str:
    """A non-blank string of at most ``max_len`` characters (kept as sent)."""
    if not isinstance(value, str):
        raise Invalid(f"{name} must be a string")
    if not value.strip():
        raise Invalid(f"{name} must not be empty")
    if len(value) > max_len:
        raise Invalid(f"{name} is longer than {max_len} characters")
    return _unicode(value, name)


def optional_text(value: Any, name: str, max_len: int) -> str:
    """A string of at most ``max_len`` characters, possibly empty; None counts as empty."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Invalid(f"{name} must be a string")
    if len(value) > max_len:
        raise Invalid(f"{name} is longer than {max_len} characters")
    return _unicode(value, name)


def user_id(value: Any, name: str) -> str:
    """A user id as the server keeps it: a string (numbers from JavaScript are accepted)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return text(value, name, MAX_USER_ID)


def flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"{name} must be true or false")
    return value


def position(value: Any) -> dict[str, float]:
    if not isinstance(value, dict) or not 0 < len(value) <= MAX_POSITION_KEYS:
        raise Invalid(f"position must be an object of at most {MAX_POSITION_KEYS} numbers")
    for key, number in value.items():
        if (
            len(key) > 32
            or isinstance(number, bool)
            or not isinstance(number, int | float)
            or not math.isfinite(number)
        ):
            raise Invalid("position must be an object of numbers, e.g. {x: 10, y: 20}")
    return value


def task_ref(value: Any) -> int | str | None:
    """Which task a cursor is over: an id, a short string, or nothing."""
    if value is None:
        return None
    if isinstance(value, str) and len(value) <= 64:
        return value
    return ident(value, "taskId")
