"""The options' text -> the library's validated :class:`~toeplitz_conv._layer.Layer`.

``--weight`` (numbers, rows of numbers or a ``.npy`` file), ``--size`` / ``--length``
and the per-axis options are read here; the values are checked by the library's own
:func:`~toeplitz_conv._layer.conv_layer` / :func:`~toeplitz_conv._layer.transpose_layer`,
so a bad value gets the library's message (with the options' names).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import numpy as np

from .._layer import Layer, conv_layer, transpose_layer
from ._errors import UsageError

__all__ = ["layer_of"]

_PER_AXIS = "an integer or one per axis separated by 'x' (like 2x1)"
_SIZE = "the input size, one integer per spatial axis separated by 'x' (like 28x28, or 28 for 1-D)"


def _parse_row(text: str) -> np.ndarray:
    """``4,3`` (comma-separated real or complex numbers) or a ``.npy`` file."""
    if text.lower().endswith(".npy") or os.path.isfile(text):
        return _load_npy_weight(text)
    values: list[complex | float] = []
    for item in text.split(","):
        item = item.strip()
        try:
            values.append(float(item))
        except ValueError:
            try:
                values.append(complex(item.replace(" ", "")))
            except ValueError:
                raise UsageError(
                    f"--weight: expected comma-separated numbers like 4,3 or a .npy file; "
                    f"got {text!r}"
                ) from None
    return np.array(values)


def _load_npy_weight(path: str) -> np.ndarray:
    """The array of a ``.npy`` file; anything else is a one-line error naming the file."""
    if not os.path.isfile(path):
        raise UsageError(f"--weight: no such file {path!r}")
    try:
        with open(path, "rb") as file:
            magic = file.read(6)
        if magic != b"\x93NUMPY":
            kind = "a .npz archive" if magic.startswith(b"PK") else "another format"
            raise UsageError(
                f"--weight: {path!r} is not a .npy file (it is {kind}, without numpy's .npy "
                "header); save the weight with numpy.save or pass comma-separated numbers"
            )
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        reason = " ".join(str(exc).split())
        if "pickle" in reason:  # numpy's advice to unpickle does not apply to a weight
            reason = "it holds Python objects, not numbers"
        raise UsageError(f"--weight: cannot read {path!r} as a .npy array: {reason}") from None


def _parse_weight(text: str) -> np.ndarray:
    """``--weight``: as :func:`_parse_row`, plus ``1,2;3,4``: a one-channel 2-D kernel."""
    if ";" not in text or os.path.isfile(text):
        return _parse_row(text)
    rows = [_parse_row(row) for row in text.strip().strip(";").split(";")]
    if len({row.size for row in rows}) != 1:
        raise UsageError(
            "--weight: the rows of a 2-D kernel (separated by ';') must have the same length; "
            f"got lengths {[row.size for row in rows]} in {text!r}"
        )
    return np.stack(rows)


def _parse_ints(text: str, option: str, expected: str = _PER_AXIS) -> int | tuple[int, ...]:
    """``2`` (every axis) or ``2x1`` (one per axis); the library validates the values."""
    try:
        parts = tuple(int(p) for p in text.strip().lower().split("x"))
    except ValueError:
        raise UsageError(f"{option}: expected {expected}; got {text!r}") from None
    return parts[0] if len(parts) == 1 else parts


def _parse_padding(text: str, n: int = 1) -> Any:
    """``2``, ``1,2`` (left, right), ``same``, ``valid``, or per axis ``1x2``, ``1x0,2``.

    One item (no ``x``) applies to every one of the `n` axes, else one per axis; the
    library validates the values.
    """
    t = text.strip().lower()
    if t in ("same", "valid"):
        return t
    items: list[int | tuple[int, int]] = []
    for item in t.split("x"):
        try:
            parts = [int(p) for p in item.split(",")]
        except ValueError:
            parts = []
        if len(parts) not in (1, 2):
            raise UsageError(
                "--padding: expected an integer, a pair 'left,right', 'same' or 'valid', or "
                f"one of those numbers per axis separated by 'x' (like 1x2 or 1x0,2); got {text!r}"
            )
        items.append(parts[0] if len(parts) == 1 else (parts[0], parts[1]))
    if len(items) == 1:  # every axis: an int, or the same (left, right) pair on each
        return items[0] if n == 1 or isinstance(items[0], int) else (items[0],) * n
    if len(items) != n:
        raise UsageError(
            f"--padding: {len(items)} items separated by 'x' for a {n}-D layer; give one "
            f"item for every axis or exactly {n} (one per axis); got {text!r}"
        )
    return tuple(items)


#: The spatial axes a weight of each ndim can have: a kernel (K_1, ..., K_n) or a full
#: weight (C_out, C_in/groups, K_1, ..., K_n).
_WEIGHT_AXES = {1: (1,), 2: (2,), 3: (1, 3), 4: (2,), 5: (3,)}
_READINGS = {
    1: "a 1-D kernel (K,)",
    2: "a 2-D kernel (K_1, K_2)",
    3: "the weight of a 1-D layer (C_out, C_in/groups, K) or a 3-D kernel",
    4: "the weight of a 2-D layer",
    5: "the weight of a 3-D layer",
}


def _check_axes(weight: np.ndarray, n: int, args: argparse.Namespace) -> None:
    """Refuse a size whose number of axes no reading of the weight's shape has.

    The library, told the size's ``n``, would say the weight has the wrong shape;
    but ``--size 6`` with a 3x3 kernel most likely lacks an axis.
    """
    axes = _WEIGHT_AXES.get(weight.ndim)
    if axes is None or n in axes:
        return  # a weight no layer takes: the library's message says what it must be
    given = f"--size {args.size}" if args.size is not None else f"--length {args.length}"
    first = str(args.size or args.length).split("x")[0]
    sizes = " or ".join("--size " + "x".join([first] * m) for m in axes)
    kernel = "K" if n == 1 else ", ".join(f"K_{a + 1}" for a in range(n))
    single = "(K,)" if n == 1 else f"({kernel})"
    raise UsageError(
        f"{given} gives {n} spatial {'axis' if n == 1 else 'axes'}, but --weight has shape "
        f"{weight.shape}: {_READINGS[weight.ndim]}; give one size per spatial axis, like "
        f"{sizes}; or, for a {n}-D layer, --weight must have shape (C_out, C_in/groups, "
        f"{kernel}) or {single}"
    )


def _size_of(args: argparse.Namespace) -> tuple[int | tuple[int, ...], int]:
    """``(input size, number of spatial axes)`` from ``--size`` or ``--length``."""
    if args.size is None:
        return args.length, 1
    size = _parse_ints(args.size, "--size", _SIZE)
    n = 1 if isinstance(size, int) else len(size)
    if n > 3:
        raise UsageError(f"--size: 1, 2 or 3 spatial axes; got {n} in {args.size!r}")
    return size, n


def layer_of(args: argparse.Namespace) -> Layer:
    """The layer of the options, validated by the library's own checks.

    With ``--transpose`` it is the convolution that the transposed convolution
    transposes (as :func:`~toeplitz_conv._layer.transpose_layer` returns it).
    """
    weight = _parse_weight(args.weight)
    size, n = _size_of(args)
    _check_axes(weight, n, args)
    padding = _parse_padding(args.padding, n)
    stride = _parse_ints(args.stride, "--stride")
    dilation = _parse_ints(args.dilation, "--dilation")
    output_padding = _parse_ints(args.output_padding, "--output-padding")
    common = {"stride": stride, "padding": padding, "dilation": dilation, "groups": args.groups}
    if args.transpose and args.padding_mode != "zeros":
        raise UsageError(
            "--padding-mode: a transposed convolution supports only 'zeros' (as in "
            f"torch); got {args.padding_mode!r}"
        )
    if not args.transpose and any(np.atleast_1d(output_padding)):
        raise UsageError("--output-padding is for --transpose only")
    try:
        if args.transpose:
            return transpose_layer(weight, size, ndim=n, output_padding=output_padding, **common)
        return conv_layer(weight, size, ndim=n, padding_mode=args.padding_mode, **common)
    except (ValueError, TypeError) as exc:
        if args.size is None or "`input_length`" not in str(exc):
            raise
        # --size L of a 1-D layer: the library calls it input_length
        raise type(exc)(str(exc).replace("`input_length`", "`input_size`")) from None
