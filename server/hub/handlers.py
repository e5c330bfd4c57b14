"""Handlers as the hub keeps them: whether one is ``async`` is decided once, when it is
registered, not each time an event arrives."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def is_async(fn: Callable[..., Any]) -> bool:
    """A coroutine function, or an object whose ``__call__`` is one."""
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - objects with an async __call__
    )


@dataclass(frozen=True, slots=True)
class Handler:
    """A registered function: plain ones run at once, in order; ``async`` ones are started
    in order and run concurrently, within the connection's bound."""

    fn: Callable[..., Any]
    is_async: bool

    @classmethod
    def of(cls, fn: Callable[..., Any]) -> Handler:
        return cls(fn, is_async(fn))


def without(handlers: list[Handler], fn: Callable[..., Any] | None) -> None:
    """Remove the handlers of ``fn`` from ``handlers`` in place (every one: ``fn`` None)."""
    handlers[:] = [h for h in handlers if fn is not None and h.fn != fn]


async def call(fn: Callable[..., Any], *args: Any) -> Any:
    """Call a function that may be plain or a coroutine function (middlewares)."""
    result = fn(*args)
    if inspect.isawaitable(result):
        result = await result
    return result
