"""The ``toeplitz-conv`` command: show, export and analyse the matrix of a conv layer.

A thin layer over the public API::

    toeplitz-conv show    --weight 4,3 --length 5 [--stride S --padding P --dilation D
                          --groups G --padding-mode MODE --transpose --output-padding Q]
    toeplitz-conv show    --weight "1,2,3;4,5,6;7,8,9" --size 4x4 --padding 1
    toeplitz-conv export  --weight W.npy --length 128 [...] --out conv.mtx
    toeplitz-conv analyze --weight W.npy --size 28x28 --stride 2 [...] [--plot spectrum.png]

A 1-D layer takes ``--length L`` (or ``--size L``); an N-d layer ``--size`` with one
size per spatial axis separated by ``x`` (``--size 28x28``, ``--size 8x16x16``). Every
per-axis option takes one integer for all axes or one per axis, ``x``-separated:
``--stride 2x1``, ``--dilation 1x2``, ``--output-padding 1x0``. ``--padding`` is an
integer, ``left,right``, ``same`` or ``valid`` for every axis, or one item per axis,
``x``-separated, each an integer or a ``left,right`` pair: ``1x2`` (1 on axis 0, 2 on
axis 1), ``1x0,2`` (1 on both sides of axis 0; 0 left and 2 right on axis 1). ``,`` always
separates left from right and ``x`` always separates axes. ``--weight`` is a ``.npy`` file
of shape ``(C_out, C_in/groups, K_1, ..., K_n)``, comma-separated numbers (one channel,
1-D) or rows of them separated by ``;`` (one channel, a 2-D kernel: ``"1,2;3,4"``).

Bad input prints one line, ``toeplitz-conv: error: ...``, on stderr and exits with
status 2 (1 for a file that cannot be written; an internal error is one line too, status
1, with its traceback under ``TOEPLITZ_CONV_TRACEBACK=1``); work that takes more than a couple of
seconds shows its progress on stderr when stderr is a terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import decimal
import math
import os
import re
import sys
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any, NoReturn

import numpy as np
import scipy.sparse as sp

from ._arrays import matrix_dtype
from ._build import layer_matrix
from ._files import check_writable
from ._formula import formula
from ._geometry import PADDING_MODES, ConvGeometry
from ._layer import Layer, conv_layer, transpose_layer
from .io import save_matrix
from .matrices import conv1d_matrix, conv_matrix, conv_transpose1d_matrix, conv_transpose_matrix
from .nn._cli import add_lipschitz, run_lipschitz

__all__ = ["main"]

PROG = "toeplitz-conv"
#: Print the matrix itself when it has at most this many rows and columns (``--max-size``).
MAX_SHOW = 32
#: The most entries (rows x columns) a printed matrix may have, whatever ``--max-size`` says.
MAX_PRINT_CELLS = 250_000
#: Set to 1 to see the traceback of an internal error instead of its one-line report.
TRACEBACK_VARIABLE = "TOEPLITZ_CONV_TRACEBACK"
#: Seconds of work before progress appears on a terminal, and between its updates.
PROGRESS_DELAY = 2.0
PROGRESS_INTERVAL = 0.5
_SPY_ROWS, _SPY_COLS = 16, 64  # the character grid of the sparsity summary

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


# --------------------------------------------------------------------------- parsing
class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is exactly one line on stderr (no usage block)."""

    def error(self, message: str) -> NoReturn:
        sub = self.prog.removeprefix(PROG).strip()
        hint = f" (see `{PROG} {sub + ' ' if sub else ''}--help`)"
        self.exit(2, f"{PROG}: error: {message}{hint}\n")


def _parse_weight(text: str) -> np.ndarray:
    """``4,3`` (one channel, comma-separated) or a ``.npy`` file (C_out, C_in/groups, K)."""
    if text.lower().endswith(".npy") or os.path.isfile(text):
        if not os.path.isfile(text):
            raise UsageError(f"--weight: no such file {text!r}")
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


def _parse_ints(text: str, option: str) -> int | tuple[int, ...]:
    """``2`` (every axis) or ``2x1`` (one per axis); the library validates the values."""
    try:
        parts = tuple(int(p) for p in text.strip().lower().split("x"))
    except ValueError:
        raise UsageError(
            f"{option}: expected an integer or one per axis separated by 'x' (like 2x1); "
            f"got {text!r}"
        ) from None
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


def _parse_size(text: str) -> int | tuple[int, ...]:
    """``--size``: ``28`` (1-D) or ``28x28`` (one size per spatial axis)."""
    try:
        parts = tuple(int(p) for p in text.strip().lower().split("x"))
    except ValueError:
        raise UsageError(
            f"--size: expected the input size, one integer per spatial axis separated by 'x' "
            f"(like 28x28, or 28 for 1-D); got {text!r}"
        ) from None
    return parts[0] if len(parts) == 1 else parts


def _parse_kernel(text: str) -> np.ndarray:
    """``--weight``: as :func:`_parse_weight`, plus ``1,2;3,4``: a one-channel 2-D kernel."""
    if ";" not in text or os.path.isfile(text):
        return _parse_weight(text)
    rows = [_parse_weight(row) for row in text.strip().strip(";").split(";")]
    if len({row.size for row in rows}) != 1:
        raise UsageError(
            "--weight: the rows of a 2-D kernel (separated by ';') must have the same length; "
            f"got lengths {[row.size for row in rows]} in {text!r}"
        )
    return np.stack(rows)


def _conv_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("the convolution")
    g.add_argument(
        "--weight",
        required=True,
        metavar="W",
        help="kernel: comma-separated numbers (one channel in and out, e.g. 4,3; write "
        "--weight=-1,2 when it starts with a minus), rows of them separated by ';' for a "
        'one-channel 2-D kernel ("1,2;3,4"), or a .npy file of shape '
        "(C_out, C_in/groups, K_1, ..., K_n) ((C_in, C_out/groups, K_1, ..., K_n) with "
        "--transpose)",
    )
    size = g.add_mutually_exclusive_group(required=True)
    size.add_argument(
        "--length",
        type=int,
        metavar="N",
        help="1-D: input length L per channel (L_in of the transposed convolution)",
    )
    size.add_argument(
        "--size",
        metavar="HxW",
        help="input size per channel, one integer per spatial axis separated by 'x': "
        "28x28 (2-D), 8x16x16 (3-D), 28 (1-D, as --length)",
    )
    per_axis = "an integer for every axis or one per axis, like 2x1 (default: 1)"
    g.add_argument("--stride", default="1", metavar="S", help=per_axis)
    g.add_argument(
        "--padding",
        default="0",
        metavar="P",
        help="an integer, 'left,right', 'same' or 'valid' for every axis, or one item per "
        "axis separated by 'x', each an integer or 'left,right': 1x2, 1x0,2 (default: 0)",
    )
    g.add_argument("--dilation", default="1", metavar="D", help=per_axis)
    g.add_argument("--groups", type=int, default=1, metavar="G", help="default: 1")
    g.add_argument(
        "--padding-mode",
        default="zeros",
        choices=PADDING_MODES,
        help="default: zeros",
    )
    g.add_argument(
        "--transpose",
        action="store_true",
        help="the transposed convolution (conv_transpose1d/2d/3d) instead",
    )
    g.add_argument(
        "--output-padding",
        default="0",
        metavar="Q",
        help="extra output samples of the transposed convolution, an integer or one per "
        "axis like 1x0 (default: 0)",
    )


def _parser() -> argparse.ArgumentParser:
    from ._version import __version__

    parser = _Parser(
        prog=PROG,
        description="The exact (sparse) matrix of torch's conv1d/2d/3d and "
        "conv_transpose1d/2d/3d: see it, export it, analyse it.",
        epilog=f"Examples: {PROG} show --weight 4,3 --length 5;   "
        f'{PROG} show --weight "1,2,3;4,5,6;7,8,9" --size 4x4 --padding 1',
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    show = sub.add_parser(
        "show",
        help="shapes, output length, formula and the matrix",
        description="Print the shapes, the output-length arithmetic, the formula with your "
        "numbers and the matrix with labelled rows and columns (a sparsity summary when it "
        "is large).",
    )
    _conv_options(show)
    out = show.add_argument_group("output")
    out.add_argument("--latex", action="store_true", help="the formula in LaTeX")
    out.add_argument(
        "--max-size",
        type=int,
        default=MAX_SHOW,
        metavar="N",
        help=f"print the matrix when it has at most N rows and columns (default: {MAX_SHOW})",
    )

    export = sub.add_parser(
        "export",
        help="write the matrix to .npz, .mtx or .mat",
        description="Write the matrix to a file: the format follows the extension (.npz "
        "scipy, .mtx Matrix Market with the parameters in a comment, .mat MATLAB).",
    )
    _conv_options(export)
    export.add_argument("--out", required=True, metavar="FILE", help="FILE.npz, .mtx or .mat")
    export.add_argument(
        "--no-compress",
        action="store_true",
        help="write .npz and .mat without compression (faster, larger files)",
    )

    analyze = sub.add_parser(
        "analyze",
        help="spectral norm, bounds, condition number, singular values",
        description="Spectral norm (with certified bounds), condition number and the largest "
        "and smallest singular values; --plot draws the sparsity pattern and the spectrum.",
    )
    _conv_options(analyze)
    analyze.add_argument(
        "-k",
        type=int,
        default=5,
        metavar="K",
        help="how many of the largest and smallest singular values to list (default: 5)",
    )
    analyze.add_argument(
        "--plot",
        metavar="FILE.png",
        help="draw the sparsity pattern and the singular values (needs matplotlib)",
    )
    add_lipschitz(sub)  # toeplitz_conv.nn: a torch model's certified Lipschitz bracket
    return parser


# --------------------------------------------------------------------------- the layer
#: Axis names in headers and labels: 2-D (H, W), 3-D (D, H, W).
_AXES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


@dataclass(frozen=True)
class _Layer:
    """The parsed convolution: the library's validated layer and the arguments it came from."""

    conv: Layer  # for --transpose, the convolution that the transposed convolution transposes
    transpose: bool
    kwargs: dict[str, Any]  # for the matrix builders and formula
    source: str

    @property
    def weight(self) -> np.ndarray:
        return self.conv.weight

    @property
    def ndim(self) -> int:
        return self.conv.ndim

    @property
    def geom(self) -> ConvGeometry:
        """The geometry of a 1-D layer (raises for N-d)."""
        return self.conv.geom

    @property
    def groups(self) -> int:
        return self.conv.groups

    @property
    def c_in(self) -> int:
        """Input channels of the layer (of z for the transposed convolution)."""
        return self.conv.out_channels if self.transpose else self.conv.in_channels

    @property
    def c_out(self) -> int:
        return self.conv.in_channels if self.transpose else self.conv.out_channels

    @property
    def in_size(self) -> tuple[int, ...]:
        return self.conv.output_size if self.transpose else self.conv.input_size

    @property
    def out_size(self) -> tuple[int, ...]:
        return self.conv.input_size if self.transpose else self.conv.output_size

    @property
    def in_length(self) -> int:
        """Positions per input channel (``L`` in 1-D, ``H*W`` in 2-D)."""
        return math.prod(self.in_size)

    @property
    def out_length(self) -> int:
        return math.prod(self.out_size)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.c_out * self.out_length, self.c_in * self.in_length)

    def _size_arg(self) -> int | tuple[int, ...]:
        return self.in_size[0] if self.ndim == 1 else self.in_size

    def matrix(self, fmt: str = "csr") -> sp.sparray | np.ndarray:
        if self.ndim == 1:
            build = conv_transpose1d_matrix if self.transpose else conv1d_matrix
        else:
            build = conv_transpose_matrix if self.transpose else conv_matrix
        return build(self.weight, self._size_arg(), format=fmt, **self.kwargs)

    def formula(self, style: str) -> str:
        return formula(
            self.weight, self._size_arg(), transpose=self.transpose, style=style, **self.kwargs
        )

    def params(self) -> dict[str, Any]:
        """The parameters recorded in exported files (scalars in 1-D, lists per axis in N-d)."""
        geoms, n = self.conv.geoms, self.ndim

        def per_axis(values: list[Any]) -> Any:
            return values[0] if n == 1 else values

        record: dict[str, Any] = {
            "op": f"conv_transpose{n}d" if self.transpose else f"conv{n}d",
            "weight_shape": list(self.weight.shape),
            ("input_length" if n == 1 else "input_size"): per_axis(list(self.in_size)),
            "stride": per_axis([g.stride for g in geoms]),
            "padding": per_axis([[g.pad_left, g.pad_right] for g in geoms]),
            "dilation": per_axis([g.dilation for g in geoms]),
            "groups": self.groups,
        }
        if self.transpose:
            record["output_padding"] = per_axis(list(_output_paddings(self.conv)))
        else:
            record["padding_mode"] = geoms[0].padding_mode
        return self._weight_record(record)

    def _weight_record(self, record: dict[str, Any]) -> dict[str, Any]:
        if self.weight.size <= 32 and self.weight.dtype.kind != "c":
            record["weight"] = self.weight.ravel().tolist()
        else:
            record["weight_source"] = self.source
        return record


def _output_paddings(conv: Layer) -> tuple[int, ...]:
    """``output_padding`` per axis of a transposed layer: what ``L'`` has beyond the minimum."""
    return tuple(
        g.input_length
        - ((g.output_length - 1) * g.stride - g.pad_left - g.pad_right
           + g.dilation * (g.kernel_size - 1) + 1)
        for g in conv.geoms
    )  # fmt: skip


#: The spatial axes a weight of each ndim can have: a kernel (K_1, ..., K_n) or a full
#: weight (C_out, C_in/groups, K_1, ..., K_n).
_WEIGHT_AXES = {1: (1,), 2: (2,), 3: (1, 3), 4: (2,), 5: (3,)}


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
    readings = {
        1: "a 1-D kernel (K,)",
        2: "a 2-D kernel (K_1, K_2)",
        3: "the weight of a 1-D layer (C_out, C_in/groups, K) or a 3-D kernel",
        4: "the weight of a 2-D layer",
        5: "the weight of a 3-D layer",
    }
    sizes = " or ".join("--size " + "x".join([first] * m) for m in axes)
    kernel = "K" if n == 1 else ", ".join(f"K_{a + 1}" for a in range(n))
    single = "(K,)" if n == 1 else f"({kernel})"
    raise UsageError(
        f"{given} gives {n} spatial {'axis' if n == 1 else 'axes'}, but --weight has shape "
        f"{weight.shape}: {readings[weight.ndim]}; give one size per spatial axis, like {sizes}; "
        f"or, for a {n}-D layer, --weight must have shape (C_out, C_in/groups, {kernel}) or "
        f"{single}"
    )


def _layer(args: argparse.Namespace) -> _Layer:
    """Validate the convolution options through the library's own checks."""
    weight = _parse_kernel(args.weight)
    if args.size is not None:
        size = _parse_size(args.size)
        n = 1 if isinstance(size, int) else len(size)
        if n > 3:
            raise UsageError(f"--size: 1, 2 or 3 spatial axes; got {n} in {args.size!r}")
    else:
        size, n = args.length, 1
    _check_axes(weight, n, args)
    padding = _parse_padding(args.padding, n)
    stride = _parse_ints(args.stride, "--stride")
    dilation = _parse_ints(args.dilation, "--dilation")
    output_padding = _parse_ints(args.output_padding, "--output-padding")
    try:
        if args.transpose:
            if args.padding_mode != "zeros":
                raise UsageError(
                    "--padding-mode: a transposed convolution supports only 'zeros' (as in "
                    f"torch); got {args.padding_mode!r}"
                )
            kwargs = {
                "stride": stride,
                "padding": padding,
                "output_padding": output_padding,
                "dilation": dilation,
                "groups": args.groups,
            }
            layer = transpose_layer(weight, size, ndim=n, **kwargs)
        else:
            if any(np.atleast_1d(output_padding)):
                raise UsageError("--output-padding is for --transpose only")
            kwargs = {
                "stride": stride,
                "padding": padding,
                "dilation": dilation,
                "groups": args.groups,
                "padding_mode": args.padding_mode,
            }
            layer = conv_layer(weight, size, ndim=n, **kwargs)
    except (ValueError, TypeError) as exc:
        if args.size is None or "`input_length`" not in str(exc):
            raise
        # --size L of a 1-D layer: the library calls it input_length
        raise type(exc)(str(exc).replace("`input_length`", "`input_size`")) from None
    kwargs["groups"] = layer.groups
    return _Layer(layer, args.transpose, kwargs, args.weight)


# --------------------------------------------------------------------------- progress
class _Progress:
    """Elapsed-time progress on stderr for steps that take a while, on terminals only."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        try:
            self.enabled = stream.isatty()
        except (AttributeError, ValueError):  # pragma: no cover - odd streams
            self.enabled = False

    @contextlib.contextmanager
    def step(self, label: str) -> Iterator[None]:
        if not self.enabled:
            yield
            return
        start = time.monotonic()
        done = threading.Event()
        shown = threading.Event()

        def tick() -> None:
            if done.wait(PROGRESS_DELAY):
                return
            while not done.is_set():
                shown.set()
                elapsed = time.monotonic() - start
                self.stream.write(f"\r{PROG}: {label} ... {elapsed:.0f} s ")
                self.stream.flush()
                done.wait(PROGRESS_INTERVAL)

        thread = threading.Thread(target=tick, daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()
            if shown.is_set():
                elapsed = time.monotonic() - start
                self.stream.write(f"\r{PROG}: {label} ... done in {elapsed:.1f} s\n")
                self.stream.flush()


# --------------------------------------------------------------------------- show
def _number(value: Any) -> str:
    if isinstance(value, complex | np.complexfloating):
        if value.imag == 0:
            return _number(value.real)
        return f"{complex(value):.4g}".strip("()")
    value = float(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


def _labels(name: str, channels: int, size: int | tuple[int, ...]) -> list[str]:
    """``y[0], y[1], ...``; ``y[o,i]`` with channels; ``y[o,i,j]`` in 2-D (row-major)."""
    sizes = (size,) if isinstance(size, int) else size
    positions = [",".join(map(str, idx)) for idx in np.ndindex(*sizes)]
    if channels == 1:
        return [f"{name}[{p}]" for p in positions]
    return [f"{name}[{c},{p}]" for c in range(channels) for p in positions]


def _matrix_lines(
    M: sp.csr_array,
    row_labels: list[str],
    col_labels: list[str],
    blocks: tuple[int, int] | None = None,
) -> list[str]:
    """The matrix with labelled rows and columns; ``.`` where no entry is stored.

    `blocks` ``(rows, cols)`` draws ``|`` and ``-`` between blocks of that size (the
    Toeplitz blocks of an N-d layer).
    """
    cells = np.full(M.shape, ".", dtype=object)
    coo = M.tocoo()
    for r, c, v in zip(coo.row.tolist(), coo.col.tolist(), coo.data.tolist(), strict=True):
        cells[r, c] = _number(v)
    widths = [max(len(col_labels[j]), *(len(s) for s in cells[:, j])) for j in range(M.shape[1])]
    left = max(len(s) for s in row_labels)
    rb, cb = blocks if blocks is not None else (0, 0)

    def join(items: list[str], gap: str = "  ", fence: str = " | ") -> str:
        parts = [items[0]]
        for j in range(1, len(items)):
            parts += [fence if cb and j % cb == 0 else gap, items[j]]
        return "".join(parts)

    header = join([lab.rjust(w) for lab, w in zip(col_labels, widths, strict=True)])
    lines = [" " * left + "  " + header]
    rule = " " * left + "  " + join(["-" * w for w in widths], "--", "-+-")
    for i, lab in enumerate(row_labels):
        if rb and i and i % rb == 0:
            lines.append(rule)
        row = join([cells[i, j].rjust(widths[j]) for j in range(M.shape[1])])
        lines.append(lab.ljust(left) + "  " + row)
    return lines


def _structure(layer: _Layer) -> str:
    """Toeplitz / circulant (BTTB / BCCB in 2-D), by the library's own definition.

    Block-circulant is :attr:`Layer.is_circulant` (circular padding with one period
    of output per axis, ``L_out * s == L``, strided layers included), the same
    test that ``method='fft'`` of the spectral functions accepts.
    """
    conv, n = layer.conv, layer.ndim
    geoms = conv.geoms
    stride = _per_axis(tuple(g.stride for g in geoms))
    strided = any(g.stride > 1 for g in geoms)
    if n == 1:
        circulant, toeplitz, edge = "block-circulant", "banded block-Toeplitz", "first/last rows"
    else:
        levels = "" if n == 2 else f"{n}-level "
        circulant = f"{levels}block-circulant with circulant blocks (BCCB)"
        toeplitz = f"{levels}block-Toeplitz with Toeplitz blocks (BTTB)"
        edge = "boundary rows"
    mode = geoms[0].padding_mode
    padded = any(g.pad_left or g.pad_right for g in geoms)
    if conv.is_circulant:
        kind = circulant
        if strided:
            stride_text = "x".join(map(str, stride)) if n > 1 else str(stride)
            kind += f", strided (its rows at stride {stride_text})"
    else:
        kind = toeplitz
        if padded and mode in ("reflect", "replicate"):
            kind += f", with the {edge} folded by {mode} padding"
        elif padded and mode == "circular":
            kind += f", with the {edge} wrapped around by circular padding"
        if strided:
            kind += ", strided"
    if layer.transpose:
        kind = f"the transpose of a {kind}" + (" matrix" if n == 1 else "")
    if layer.c_in == layer.c_out == 1:
        return kind.replace("block-", "") if n == 1 else kind
    blocks = f"{layer.c_out} x {layer.c_in} blocks of {layer.out_length} x {layer.in_length}"
    if layer.groups > 1:
        blocks += f", block-diagonal over groups={layer.groups}"
    return f"{kind}; {blocks}"


@dataclass(frozen=True)
class _Pattern:
    """Where the nonzeros of the layer's matrix sit, without assembling it.

    Every channel block of ``M`` has the same sparsity pattern: the matrix of the
    one-channel layer with the same geometries (its transpose for ``--transpose``).
    Row channel ``a`` holds the blocks of column channels ``base[a] + t``, ``t < nb``.
    """

    block: sp.coo_array  # one channel block's pattern, shape (out_length, in_length)
    base: np.ndarray  # first column channel of every row channel
    nb: int  # column channels per row channel
    shape: tuple[int, int]

    @classmethod
    def of(cls, layer: _Layer) -> _Pattern:
        conv = layer.conv
        unit = Layer(np.ones((1, 1, *conv.kernel_size)), conv.geoms, 1)
        block = layer_matrix(unit, fmt="coo", transpose=layer.transpose)
        c_out, G, groups = conv.out_channels, conv.group_channels, conv.groups
        if layer.transpose:  # row channel c' of M.T: the output channels of its group
            per_group = c_out // groups
            base = (np.arange(G * groups, dtype=np.int64) // G) * per_group
            nb = per_group
        else:
            base = (np.arange(c_out, dtype=np.int64) // (c_out // groups)) * G
            nb = G
        return cls(block, base, nb, layer.shape)

    @property
    def nnz(self) -> int:
        return self.base.size * self.nb * self.block.nnz

    def row_counts(self) -> tuple[int, int]:
        """The fewest and most entries in a row of ``M``."""
        counts = np.bincount(self.block.row, minlength=self.block.shape[0])
        return self.nb * int(counts.min()), self.nb * int(counts.max())

    def grid(self, n_rows: int, n_cols: int) -> tuple[np.ndarray, int, int]:
        """Which ``rb x cb`` blocks of ``M`` hold entries, shape about ``(n_rows, n_cols)``.

        One row channel at a time (its ``nb`` column channels together), in chunks
        of about a million entries: memory stays small whatever the matrix.
        """
        m, n = self.shape
        rb, cb = -(-m // n_rows), -(-n // n_cols)
        grid = np.zeros((-(-m // rb), -(-n // cb)), dtype=bool)
        R, C = self.block.shape
        rows = self.block.row.astype(np.int64)
        cols = self.block.col.astype(np.int64)
        for a, first in enumerate(self.base.tolist()):
            # the block's distinct (row of the picture, column) pairs: rows share cells
            key = np.unique((a * R + rows) // rb * C + cols)
            r, local = key // C, key % C
            per = max(1, (1 << 20) // max(key.size, 1))  # column channels per chunk
            for t0 in range(0, self.nb, per):
                channels = np.arange(first + t0, first + min(t0 + per, self.nb), dtype=np.int64)
                c = (channels[:, None] * C + local[None, :]) // cb
                grid[np.broadcast_to(r, c.shape), c] = True
        return grid, rb, cb


def _spy_lines(pattern: _Pattern) -> list[str]:
    """A coarse character picture of where the nonzeros are."""
    grid, rb, cb = pattern.grid(_SPY_ROWS, _SPY_COLS)
    head = f"pattern ('#' = nonzeros in a {rb} x {cb} block):"
    return [head] + ["  " + "".join("#" if b else "." for b in row) for row in grid]


def _summary_lines(layer: _Layer) -> list[str]:
    """Nonzeros, rows, structure, storage and a picture, from the pattern of one block.

    Nothing of the size of ``M`` is built (a 64 -> 64, 3x3 layer on 56x56 has 115
    million entries; its summary needs the 28,000 of one channel block).
    """
    m, n = layer.shape
    pattern = _Pattern.of(layer)
    nnz = pattern.nnz
    least, most = pattern.row_counts()
    dtype = matrix_dtype(layer.weight.dtype)
    index = np.dtype(np.int32 if max(nnz, m, n) <= np.iinfo(np.int32).max else np.int64)
    stored = nnz * (dtype.itemsize + index.itemsize) + (m + 1) * index.itemsize
    return [
        f"nonzeros: {nnz:,} of {m * n:,} ({100 * nnz / (m * n):.3g}% dense); "
        f"per row: min {least}, max {most}",
        f"structure: {_structure(layer)}",
        f"storage: CSR {_bytes(stored)} ({dtype} values, {index} indices); "
        f"dense would be {_bytes(m * n * dtype.itemsize)}",
        *_spy_lines(pattern),
    ]


def _bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError  # pragma: no cover


def _per_axis(values: tuple[Any, ...]) -> Any:
    """One value per axis as the user writes it: a scalar in 1-D, a tuple in N-d."""
    return values[0] if len(values) == 1 else values


def _header_lines(layer: _Layer) -> list[str]:
    """Shapes, weight, (per-axis) parameters and the matrix's shape of the layer."""
    n, w, geoms = layer.ndim, layer.weight, layer.conv.geoms
    axes = _AXES[n]
    kernel = "K" if n == 1 else ", ".join(f"K_{a + 1}" for a in range(n))

    def sizes(names: tuple[str, ...], values: tuple[int, ...]) -> str:
        return ", ".join(f"{a}={v}" for a, v in zip(names, values, strict=True))

    pads = [f"({g.pad_left}, {g.pad_right})" for g in geoms]
    pads_text = pads[0] if n == 1 else "(" + ", ".join(pads) + ")"
    stride = _per_axis(tuple(g.stride for g in geoms))
    dilation = _per_axis(tuple(g.dilation for g in geoms))
    if layer.transpose:
        ins, outs = tuple(f"{a}_in" for a in axes), tuple(f"{a}'" for a in axes)
        lines = [
            f"conv_transpose{n}d: z (C_in={layer.c_in}, {sizes(ins, layer.in_size)}) -> "
            f"y (C_out={layer.c_out}, {sizes(outs, layer.out_size)})",
            f"weight (C_in, C_out/groups, {kernel}) = {w.shape}",
            f"stride={stride}, padding={pads_text}, "
            f"output_padding={_per_axis(_output_paddings(layer.conv))}, "
            f"dilation={dilation}, groups={layer.groups}",
        ]
        flat = "vec(y) = M @ vec(z)"
    else:
        ins, outs = axes, tuple(f"{a}_out" for a in axes)
        lines = [
            f"conv{n}d: x (C_in={layer.c_in}, {sizes(ins, layer.in_size)}) -> "
            f"y (C_out={layer.c_out}, {sizes(outs, layer.out_size)})",
            f"weight (C_out, C_in/groups, {kernel}) = {w.shape}",
            f"stride={stride}, padding={pads_text}, dilation={dilation}, groups={layer.groups}, "
            f"padding_mode='{geoms[0].padding_mode}'",
        ]
        flat = "vec(y) = M @ vec(x)"
    if w.shape[:2] == (1, 1) and w.size <= 16 and n <= 2:  # one channel: the kernel's values
        rows = [w[0, 0]] if n == 1 else w[0, 0]
        values = [", ".join(map(_number, row)) for row in rows]
        lines[1] += " = [" + (values[0] if n == 1 else ", ".join(f"[{v}]" for v in values)) + "]"
    m, k = layer.shape
    order = "" if n == 1 else " (row-major over channel, " + ", ".join(axes) + ")"
    lines.append(f"M: {m} x {k} = (C_out*{'*'.join(outs)}) x (C_in*{'*'.join(ins)}), {flat}{order}")
    return lines


def _cmd_show(args: argparse.Namespace, out: IO[str], progress: _Progress) -> int:
    if args.max_size < 0:
        raise UsageError(f"--max-size must be >= 0; got {args.max_size}")
    layer = _layer(args)
    lines = _header_lines(layer)
    lines += ["", layer.formula("latex" if args.latex else "text"), ""]
    m, n = layer.shape
    if max(m, n) <= args.max_size:
        if m * n > MAX_PRINT_CELLS:
            raise UsageError(
                f"--max-size {args.max_size}: the matrix is {m:,} x {n:,}, too large to print "
                f"(at most {MAX_PRINT_CELLS:,} entries); lower --max-size for its summary, or "
                "use export to write it to a file"
            )
        with progress.step("building the matrix"):
            M = layer.matrix("csr")
        zin = "z" if layer.transpose else "x"
        lines.append(f"M ({M.nnz} nonzeros, '.' = 0):")
        lines += _matrix_lines(
            M,
            _labels("y", layer.c_out, layer.out_size),
            _labels(zin, layer.c_in, layer.in_size),
            None if layer.ndim == 1 else (layer.out_size[-1], layer.in_size[-1]),
        )
    else:
        with progress.step("summarising the matrix"):
            lines += _summary_lines(layer)
    out.write("\n".join(lines) + "\n")
    return 0


# --------------------------------------------------------------------------- export
def _cmd_export(args: argparse.Namespace, out: IO[str], progress: _Progress) -> int:
    layer = _layer(args)
    from ._files import extension

    extension(args.out)  # an unknown extension fails before any work
    with progress.step("building the matrix"):
        M = layer.matrix("csr")
    with progress.step(f"writing {args.out}"):
        save_matrix(M, args.out, params=layer.params(), compress=not args.no_compress)
    kind = {".npz": "scipy .npz", ".mtx": "Matrix Market", ".mat": "MATLAB"}[
        os.path.splitext(args.out)[1].lower()
    ]
    out.write(f"wrote {args.out}: {M.shape[0]} x {M.shape[1]}, {M.nnz:,} nonzeros ({kind})\n")
    return 0


# --------------------------------------------------------------------------- analyze
def _spectral_args(layer: _Layer) -> tuple[int | tuple[int, ...], dict[str, Any]]:
    """``(input_size, kwargs)`` for the spectral functions, which take conv parameters.

    A transposed convolution's matrix is ``conv_matrix(W, L').T``, whose singular values
    are the conv's: exact whenever the conv on ``L'`` has exactly ``L_in`` outputs on
    every axis (``output_padding < stride``). A 1-D size is an int, as the user gave it.
    """
    conv = layer.conv
    size = conv.input_size[0] if conv.ndim == 1 else conv.input_size
    if not layer.transpose:
        return size, dict(layer.kwargs)
    if any(q >= g.stride for q, g in zip(_output_paddings(conv), conv.geoms, strict=True)):
        every = "" if conv.ndim == 1 else " on every axis"
        raise UsageError(
            f"analyze --transpose needs --output-padding < --stride{every}: otherwise the matrix "
            "is not the transpose of a whole conv matrix, which the spectral functions take"
        )

    def per_axis(values: list[Any]) -> Any:
        return values[0] if conv.ndim == 1 else tuple(values)

    kwargs = {
        "stride": per_axis([g.stride for g in conv.geoms]),
        "padding": per_axis([(g.pad_left, g.pad_right) for g in conv.geoms]),
        "dilation": per_axis([g.dilation for g in conv.geoms]),
        "groups": layer.groups,
        "padding_mode": "zeros",
    }
    return size, kwargs


def _check_plot(path: str) -> None:
    """Refuse a ``--plot`` that cannot be drawn or written, before any work."""
    if not path.lower().endswith(".png"):
        raise UsageError(f"--plot: the picture is a PNG, the name must end in .png; got {path!r}")
    _import_pyplot()  # fail before the work when matplotlib is missing
    check_writable(path)  # ... or when the picture could not be written


def _cmd_analyze(args: argparse.Namespace, out: IO[str], progress: _Progress) -> int:
    """``analyze``: the norm, its bracket, the condition number and singular values (any n)."""
    if args.k < 1:
        raise UsageError(f"-k must be >= 1; got {args.k}")
    layer = _layer(args)
    if args.plot is not None:
        _check_plot(args.plot)
    from . import spectral
    from .spectral._method import choose_method, shift_invert_affordable

    size, kwargs = _spectral_args(layer)
    w = layer.weight
    m, n = layer.shape
    full = choose_method(layer.conv) != "krylov"  # the whole spectrum: by FFT or dense SVD
    by_lu = shift_invert_affordable(layer.conv)  # sigma_min by a sparse LU
    # each iterative step answers within _TIME_LIMIT (plus one step); values are printed to
    # 6 digits, and Ritz values converge twice as fast as the residual bound tol works on
    budget = {"time_limit": _TIME_LIMIT, "tol": _TOL}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        limit = {} if full else {"time_limit": _TIME_LIMIT}
        with progress.step("spectral norm"):
            norm = spectral.spectral_norm(w, size, **kwargs, **limit)
        with progress.step("spectral norm bounds"):
            lo, hi = _bounds_pair(spectral.spectral_norm_bounds(w, size, **kwargs, **limit))
        with progress.step("condition number"):
            cond = spectral.condition_number(w, size, **kwargs, **({} if full else budget))
        with progress.step("singular values"):
            if full:
                sv = spectral.singular_values(w, size, **kwargs)
            else:  # the top of the spectrum only: enough to list and to draw
                top = min(max(args.k, 20 if args.plot else args.k), min(m, n) - 1)
                sv = spectral.singular_values(w, size, k=top, **kwargs, **budget)
    sv = np.asarray(sv, dtype=float)
    k = min(args.k, sv.size)
    digits = certified_digits(lo, hi)
    lines = _header_lines(layer)
    lines += [
        "",
        f"spectral norm  ||M||_2 = {_certified(norm, lo, hi)}"
        + (
            f" (to the {digits} significant digit{'s' * (digits > 1)} its bounds certify)"
            if digits < _DIGITS
            else ""
        ),
        f"bounds         {_directed(lo, 'down')} <= ||M||_2 <= {_directed(hi, 'up')}",
        f"condition      sigma_max / sigma_min = {cond:.6g}"
        + (
            ""
            if full
            else " (sigma_min by shift-invert block Krylov on a sparse LU)"
            if by_lu
            else " (sigma_min by block Krylov on the Gram matrix)"
        )
        + ("" if m == n else f", over the min({m}, {n}) = {min(m, n)} singular values"),
        f"largest  {k} singular values: " + ", ".join(f"{v:.6g}" for v in sv[:k]),
    ]
    if full:
        lines.append(
            f"smallest {k} singular values: " + ", ".join(f"{v:.6g}" for v in sv[::-1][:k])
        )
    else:
        lines.append(
            f"smallest singular value ~ sigma_max / condition = {norm / cond:.6g} "
            f"(the whole spectrum of a {m} x {n} matrix is not computed)"
        )
    out.write("\n".join(lines) + "\n")
    out.flush()
    for warning in caught:
        sys.stderr.write(f"{PROG}: warning: {_one_line(warning.message)}\n")
    if args.plot is not None:
        with progress.step(f"drawing {args.plot}"):
            _plot(layer.matrix("csr"), sv, layer, args.plot, complete=full)
        out.write(f"wrote {args.plot}\n")
    return 0


#: Seconds each iterative analysis step (the norm's bracket, sigma_min, the top singular values)
#: may take before it answers with what it reached (plus the step under way).
_TIME_LIMIT = 20.0
#: Relative accuracy asked of the iterative steps (their residual bounds).
_TOL = 1e-5


#: The most significant digits printed for a certified value or bound.
_DIGITS = 10


def certified_digits(lo: float, hi: float) -> int:
    """Significant digits of a value in ``[lo, hi]`` that the bracket certifies (1 to 10).

    ``d = floor(log10(max(|lo|, |hi|) / (hi - lo)))``: the bracket is narrower than
    one unit in the ``d``-th significant digit, so a value of the bracket printed to
    ``d`` digits is within one unit in its last digit of everything the bracket holds.
    """
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi < lo:
        return 1
    scale = max(abs(lo), abs(hi))
    if hi == lo or scale == 0:
        return _DIGITS
    return int(min(_DIGITS, max(1, math.floor(math.log10(scale / (hi - lo))))))


def _certified(value: float, lo: float, hi: float) -> str:
    """`value` (clipped to ``[lo, hi]``) printed to the digits ``[lo, hi]`` certifies."""
    value = min(max(value, lo), hi) if lo <= hi else value
    return f"{value:.{certified_digits(lo, hi)}g}"


def _directed(bound: float, direction: str, digits: int = _DIGITS) -> str:
    """`bound` to `digits` significant digits, rounded ``'down'`` or ``'up'``: still a bound.

    Rounding a lower bound to nearest can print a number above it; the text returned,
    read back as a float, is never above (``'down'``) or below (``'up'``) `bound`.
    """
    nearest = f"{bound:.{digits}g}"
    if not math.isfinite(bound) or (
        float(nearest) <= bound if direction == "down" else float(nearest) >= bound
    ):
        return nearest  # read back as a float, it is still the bound
    exact = decimal.Decimal(bound)
    step = decimal.Decimal(1).scaleb(exact.adjusted() - digits + 1)
    mode = decimal.ROUND_FLOOR if direction == "down" else decimal.ROUND_CEILING
    return f"{float(exact.quantize(step, rounding=mode)):.{digits}g}"


def _bounds_pair(bounds: Any) -> tuple[float, float]:
    """(lower, upper) from whatever `spectral_norm_bounds` returns (a pair or an object)."""
    if hasattr(bounds, "lower") and hasattr(bounds, "upper"):
        return float(bounds.lower), float(bounds.upper)
    lo, hi = bounds
    return float(lo), float(hi)


def _import_pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise ModuleNotFoundError(
            "--plot needs matplotlib, which is not installed; "
            "install it with `pip install toeplitz_conv[plot]`",
            name="matplotlib",
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plot_title(layer: _Layer) -> str:
    """The layer in one line, for the picture."""
    if layer.ndim > 1:
        head = _header_lines(layer)
        return head[0] + "\n" + head[2]
    g = layer.geom
    op = "conv_transpose1d" if layer.transpose else "conv1d"
    return (
        f"{op}: weight {tuple(layer.weight.shape)}, L={layer.in_length}, stride={g.stride}, "
        f"padding=({g.pad_left}, {g.pad_right}), dilation={g.dilation}, "
        f"groups={layer.groups}, padding_mode='{g.padding_mode}'"
    )


def _plot(
    M: sp.csr_array, sv: np.ndarray | None, layer: _Layer, path: str, *, complete: bool
) -> None:
    """Sparsity pattern and singular values side by side, written atomically to `path`."""
    from ._files import atomic_write

    plt = _import_pyplot()
    fig, (ax_spy, ax_sv) = plt.subplots(1, 2, figsize=(11, 4.6), layout="constrained")
    try:
        if max(M.shape) <= 400:
            ax_spy.spy(M, markersize=max(1.0, 200 / max(M.shape)), color="#1f4e79")
        else:
            coo = M.tocoo()
            ax_spy.plot(coo.col, coo.row, ",", color="#1f4e79")
            ax_spy.set_xlim(-0.5, M.shape[1] - 0.5)
            ax_spy.set_ylim(M.shape[0] - 0.5, -0.5)
            ax_spy.set_aspect("equal")
        ax_spy.set_title(f"sparsity pattern: {M.shape[0]} x {M.shape[1]}, {M.nnz:,} nonzeros")
        ax_spy.set_xlabel("column (input channel, position)")
        ax_spy.set_ylabel("row (output channel, position)")
        for c in range(1, layer.c_in):
            ax_spy.axvline(c * layer.in_length - 0.5, color="0.8", lw=0.6)
        for o in range(1, layer.c_out):
            ax_spy.axhline(o * layer.out_length - 0.5, color="0.8", lw=0.6)

        if sv is None:  # the library has no spectrum for this layer
            ax_sv.text(0.5, 0.5, "singular values: not available", ha="center", va="center")
            ax_sv.set_axis_off()
        else:
            ax_sv.plot(np.arange(1, sv.size + 1), sv, ".-", color="#b5412b", ms=3, lw=0.8)
            ax_sv.set_title(
                "singular values (descending)"
                if complete
                else f"the {sv.size} largest singular values"
            )
            ax_sv.set_xlabel("index")
            ax_sv.set_ylabel("sigma")
            if sv.size and sv[-1] > 0 and sv[0] / sv[-1] > 100:
                ax_sv.set_yscale("log")
            ax_sv.grid(True, alpha=0.3)
        fig.suptitle(_plot_title(layer), fontsize=10)
        atomic_write(path, ".png", lambda f: fig.savefig(f, format="png", dpi=110))
    finally:
        plt.close(fig)


# --------------------------------------------------------------------------- main
def _one_line(exc: BaseException) -> str:
    """The exception as one line, with library argument names spelled as options."""
    text = " ".join(str(exc).split()) or type(exc).__name__

    def option(m: re.Match[str]) -> str:
        name = _OPTION_NAMES.get(m.group(1))
        if name is None:
            return m.group(0)
        return name if m.group(2) is None else f"{name} (axis {m.group(2)})"

    return re.sub(r"`([a-z_]+)(?:\[(\d+)\])?`", option, text)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status (0 ok, 2 bad input, 1 other errors)."""
    out, err = sys.stdout, sys.stderr
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors (already printed)
        return exc.code if isinstance(exc.code, int) else 1
    commands = {
        "show": _cmd_show,
        "export": _cmd_export,
        "analyze": _cmd_analyze,
        "lipschitz": run_lipschitz,
    }
    try:
        return commands[args.command](args, out, _Progress(err))
    except (UsageError, ValueError, TypeError) as exc:
        err.write(f"{PROG}: error: {_one_line(exc)}\n")
        return 2
    except (OSError, ImportError, MemoryError) as exc:
        if isinstance(exc, BrokenPipeError):  # `toeplitz-conv show ... | head`: quietly stop
            with contextlib.suppress(OSError, ValueError):
                # point stdout at devnull so that the interpreter's final flush is silent
                os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
            return 1
        err.write(f"{PROG}: error: {_one_line(exc)}\n")
        return 1
    except KeyboardInterrupt:
        err.write(f"{PROG}: interrupted\n")
        return 130
    except Exception as exc:  # a bug, not bad input: still one line, unless asked for more
        if os.environ.get(TRACEBACK_VARIABLE) == "1":
            raise
        err.write(
            f"{PROG}: internal error: {type(exc).__name__}: {_one_line(exc)} (a bug in "
            f"toeplitz_conv; please report it with the command; {TRACEBACK_VARIABLE}=1 shows "
            "the traceback)\n"
        )
        return 1
