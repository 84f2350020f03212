"""What the command says when something goes wrong: one line, options named as typed."""

from __future__ import annotations

import re

__all__ = ["PROG", "UsageError", "one_line"]

PROG = "toeplitz-conv"

# library argument names -> the command's options, for error messages
_OPTION_NAMES = {
    "input_length": "--length",
    "input_size": "--size",
    "padding_mode": "--padding-mode",
    "output_padding": "--output-padding",
    "weight": "--weight",
    "stride": "--stride",
    "padding": "--padding",
    "dilation": "--dilation",
    "groups": "--groups",
    "path": "--out",
}


class UsageError(Exception):
    """Bad command-line input: reported as one line, exit status 2."""


def one_line(exc: BaseException | Warning | str) -> str:
    """The exception (or warning) as one line, with library argument names spelled as options.

    ``"`stride[1]` must be ..."`` becomes ``"--stride (axis 1) must be ..."``; names that
    are not options stay as they are.
    """
    text = " ".join(str(exc).split()) or type(exc).__name__

    def option(m: re.Match[str]) -> str:
        name = _OPTION_NAMES.get(m.group(1))
        if name is None:
            return m.group(0)
        return name if m.group(2) is None else f"{name} (axis {m.group(2)})"

    return re.sub(r"`([a-z_]+)(?:\[(\d+)\])?`", option, text)
