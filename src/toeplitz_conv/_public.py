"""The public boundary's small helpers: renamed keywords, and warnings that point at the caller."""

from __future__ import annotations

import functools
import os
import sys
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from types import FrameType

__all__ = ["renamed_keyword", "warn_caller"]

_PACKAGE = os.path.dirname(os.path.abspath(__file__))

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


def warn_caller(message: str, category: type[Warning] = RuntimeWarning) -> None:
    """Warn with the location of the first caller outside this package.

    However deep inside the package the warning is raised (and through however many
    wrappers), the user sees the line of their own code that called us.
    """
    frame: FrameType | None
    level, frame = 2, sys._getframe(1)  # stacklevel 2 is the frame that called us
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE):
        level, frame = level + 1, frame.f_back
    warnings.warn(message, category, stacklevel=level)
