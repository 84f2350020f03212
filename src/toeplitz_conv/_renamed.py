"""Keyword names from before N-d, still accepted where a 1-D function's parameter was renamed."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["renamed_keyword"]

F = TypeVar("F", bound=Callable[..., Any])


def renamed_keyword(old: str, new: str) -> Callable[[F], F]:
    """Let callers keep passing ``old=`` for the parameter now called `new`.

    The N-d functions call the signal's size ``input_size`` (an int or a tuple); their
    1-D forms called it ``input_length``, and code written against them keeps working.
    """

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if old in kwargs:
                if new in kwargs:
                    raise TypeError(f"{func.__name__}() got both `{old}` and `{new}`; pass one")
                kwargs[new] = kwargs.pop(old)
            return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
