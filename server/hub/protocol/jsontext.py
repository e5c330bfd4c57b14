"""JSON written the way JavaScript's ``JSON.stringify`` writes it.

A JSON string may carry a lone UTF-16 surrogate as an escape (``"\\ud800"``): ``JSON.parse``
and :func:`json.loads` both accept one, and a Python ``str`` then holds a code point that has
no UTF-8 form. Written back with :func:`json.dumps` (``ensure_ascii=False``) it makes text that
cannot be encoded, so a string any client sent could fail the write of a packet to every
other client. ``JSON.stringify`` (ES2019, "well-formed JSON.stringify") writes such a
surrogate as its ``\\udXXX`` escape; :func:`dumps` does the same, so whatever was decoded
from JSON can always be encoded again, and a JavaScript peer reads back the very string
that was sent.

Everything else is written as ``JSON.stringify`` would: no spaces, non-ASCII characters as
they are (UTF-8 on the wire).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def escape_lone_surrogates(text: str) -> str:
    """``text`` (JSON) with every surrogate code point written as its escape.

    Only JSON strings can hold non-ASCII characters, so the escapes land inside strings.
    A surrogate pair held as two code points becomes two escapes, which every JSON parser
    joins into the one character they stand for.
    """
    return _SURROGATE.sub(_escape, text)


def has_lone_surrogate(text: str) -> bool:
    """True if ``text`` holds a code point that UTF-8 cannot encode."""
    return not text.isascii() and _SURROGATE.search(text) is not None


def dumps(
    value: Any,
    *,
    default: Callable[[Any], Any] | None = None,
    allow_nan: bool = False,
) -> str:
    """Compact JSON of ``value`` that always encodes to UTF-8.

    ASCII text (most packets) costs one ``isascii`` check on top of :func:`json.dumps`;
    other text one UTF-8 encoding more, and the escaping only when it fails.
    """
    text = json.dumps(
        value, separators=(",", ":"), ensure_ascii=False, allow_nan=allow_nan, default=default
    )
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = escape_lone_surrogates(text)
    return text


def replace_lone_surrogates(value: Any) -> Any:
    """``value`` with every lone surrogate in its strings (keys too) replaced by U+FFFD.

    For encodings with no escape for one (MessagePack strings are UTF-8): the character
    Node's ``Buffer`` writes in its place.
    """
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value) if not value.isascii() else value
    if isinstance(value, list | tuple):
        return [replace_lone_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {replace_lone_surrogates(k): replace_lone_surrogates(v) for k, v in value.items()}
    return value
