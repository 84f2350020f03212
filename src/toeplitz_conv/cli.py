"""The ``toeplitz-conv`` command: show, export and analyse the matrix of a conv layer.

A thin layer over the public API::

    toeplitz-conv show    --weight 4,3 --length 5 [--stride S --padding P --dilation D
                          --groups G --padding-mode MODE --transpose --output-padding Q]
    toeplitz-conv export  --weight W.npy --length 128 [...] --out conv.mtx
    toeplitz-conv analyze --weight W.npy --length 128 [...] [--plot spectrum.png]

Bad input prints one line, ``toeplitz-conv: error: ...``, on stderr and exits with
status 2 (1 for a file that cannot be written); work that takes more than a couple of
seconds shows its progress on stderr when stderr is a terminal.
"""

from __future__ import annotations

import argparse
import contextlib
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

from ._formula import formula
from ._geometry import PADDING_MODES, ConvGeometry
from ._layer import Layer, conv_layer, transpose_layer
from .io import _check_writable, save_matrix
from .matrices import conv1d_matrix, conv_transpose1d_matrix

__all__ = ["main"]

PROG = "toeplitz-conv"
#: Print the matrix itself when it has at most this many rows and columns (``--max-size``).
MAX_SHOW = 32
#: Seconds of work before progress appears on a terminal, and between its updates.
PROGRESS_DELAY = 2.0
PROGRESS_INTERVAL = 0.5
_SPY_ROWS, _SPY_COLS = 16, 64  # the character grid of the sparsity summary

# library argument names -> the command's options, for error messages
_OPTION_NAMES = {
    "input_length": "--length",
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


def _parse_padding(text: str) -> int | tuple[int, int] | str:
    """``2``, ``1,2`` (left, right), ``same`` or ``valid``; the library validates the values."""
    t = text.strip().lower()
    if t in ("same", "valid"):
        return t
    try:
        parts = [int(p) for p in t.split(",")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        return (parts[0], parts[1])
    raise UsageError(
        f"--padding: expected an integer, a pair 'left,right', 'same' or 'valid'; got {text!r}"
    )


def _conv_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("the convolution")
    g.add_argument(
        "--weight",
        required=True,
        metavar="W",
        help="kernel: comma-separated numbers (one channel in and out, e.g. 4,3; write "
        "--weight=-1,2 when it starts with a minus) or a .npy file of shape "
        "(C_out, C_in/groups, K) ((C_in, C_out/groups, K) with --transpose)",
    )
    g.add_argument(
        "--length",
        required=True,
        type=int,
        metavar="N",
        help="input length L per channel (L_in of the transposed convolution)",
    )
    g.add_argument("--stride", type=int, default=1, metavar="S", help="default: 1")
    g.add_argument(
        "--padding",
        default="0",
        metavar="P",
        help="an integer, 'left,right', 'same' or 'valid' (default: 0)",
    )
    g.add_argument("--dilation", type=int, default=1, metavar="D", help="default: 1")
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
        help="the transposed convolution (conv_transpose1d) instead",
    )
    g.add_argument(
        "--output-padding",
        type=int,
        default=0,
        metavar="Q",
        help="extra output samples of the transposed convolution (default: 0)",
    )


def _parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = _Parser(
        prog=PROG,
        description="The exact (sparse) matrix of torch's conv1d / conv_transpose1d: "
        "see it, export it, analyse it.",
        epilog=f"Example: {PROG} show --weight 4,3 --length 5",
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
    return parser


# --------------------------------------------------------------------------- the layer
@dataclass(frozen=True)
class _Layer:
    """The parsed convolution: the library's validated layer and the arguments it came from."""

    conv: Layer  # for --transpose, the conv1d that the transposed convolution transposes
    transpose: bool
    kwargs: dict[str, Any]  # for conv1d_matrix / conv_transpose1d_matrix / formula
    source: str

    @property
    def weight(self) -> np.ndarray:
        return self.conv.weight

    @property
    def geom(self) -> ConvGeometry:
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
    def in_length(self) -> int:
        return self.geom.output_length if self.transpose else self.geom.input_length

    @property
    def out_length(self) -> int:
        return self.geom.input_length if self.transpose else self.geom.output_length

    @property
    def shape(self) -> tuple[int, int]:
        return (self.c_out * self.out_length, self.c_in * self.in_length)

    def matrix(self, fmt: str = "csr") -> sp.sparray | np.ndarray:
        build = conv_transpose1d_matrix if self.transpose else conv1d_matrix
        return build(self.weight, self.in_length, format=fmt, **self.kwargs)

    def formula(self, style: str) -> str:
        return formula(
            self.weight, self.in_length, transpose=self.transpose, style=style, **self.kwargs
        )

    def params(self) -> dict[str, Any]:
        """The parameters recorded in exported files."""
        record: dict[str, Any] = {
            "op": "conv_transpose1d" if self.transpose else "conv1d",
            "weight_shape": list(self.weight.shape),
            "input_length": self.in_length,
            "stride": self.geom.stride,
            "padding": [self.geom.pad_left, self.geom.pad_right],
            "dilation": self.geom.dilation,
            "groups": self.groups,
        }
        if self.transpose:
            record["output_padding"] = self.kwargs["output_padding"]
        else:
            record["padding_mode"] = self.geom.padding_mode
        if self.weight.size <= 32 and self.weight.dtype.kind != "c":
            record["weight"] = self.weight.ravel().tolist()
        else:
            record["weight_source"] = self.source
        return record


def _layer(args: argparse.Namespace) -> _Layer:
    """Validate the convolution options through the library's own checks."""
    weight = _parse_weight(args.weight)
    padding = _parse_padding(args.padding)
    if args.transpose:
        if args.padding_mode != "zeros":
            raise UsageError(
                "--padding-mode: a transposed convolution supports only 'zeros' (as in torch); "
                f"got {args.padding_mode!r}"
            )
        kwargs = {
            "stride": args.stride,
            "padding": padding,
            "output_padding": args.output_padding,
            "dilation": args.dilation,
            "groups": args.groups,
        }
        layer = transpose_layer(weight, args.length, **kwargs)
    else:
        if args.output_padding:
            raise UsageError("--output-padding is for --transpose only")
        kwargs = {
            "stride": args.stride,
            "padding": padding,
            "dilation": args.dilation,
            "groups": args.groups,
            "padding_mode": args.padding_mode,
        }
        layer = conv_layer(weight, args.length, **kwargs)
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


def _labels(name: str, channels: int, length: int) -> list[str]:
    if channels == 1:
        return [f"{name}[{n}]" for n in range(length)]
    return [f"{name}[{c},{n}]" for c in range(channels) for n in range(length)]


def _matrix_lines(M: sp.csr_array, row_labels: list[str], col_labels: list[str]) -> list[str]:
    """The matrix with labelled rows and columns; ``.`` where no entry is stored."""
    cells = np.full(M.shape, ".", dtype=object)
    coo = M.tocoo()
    for r, c, v in zip(coo.row.tolist(), coo.col.tolist(), coo.data.tolist(), strict=True):
        cells[r, c] = _number(v)
    widths = [max(len(col_labels[j]), *(len(s) for s in cells[:, j])) for j in range(M.shape[1])]
    left = max(len(s) for s in row_labels)
    lines = [
        " " * left
        + "  "
        + "  ".join(lab.rjust(w) for lab, w in zip(col_labels, widths, strict=True))
    ]
    for i, lab in enumerate(row_labels):
        row = "  ".join(cells[i, j].rjust(widths[j]) for j in range(M.shape[1]))
        lines.append(lab.ljust(left) + "  " + row)
    return lines


def _structure(layer: _Layer) -> str:
    g = layer.geom
    if layer.transpose:
        kind = "the transpose of a banded block-Toeplitz matrix"
    elif (
        g.padding_mode == "circular"
        and g.stride == 1
        and g.pad_left + g.pad_right == g.dilation * (g.kernel_size - 1)
    ):
        kind = "block-circulant"
    elif g.padding_mode in ("zeros", "circular") or (g.pad_left == g.pad_right == 0):
        kind = "banded block-Toeplitz"
    else:
        kind = f"banded block-Toeplitz, with the first/last rows folded by {g.padding_mode} padding"
    if layer.c_in == layer.c_out == 1:
        return kind.replace("block-", "")
    blocks = f"{layer.c_out} x {layer.c_in} blocks of {layer.out_length} x {layer.in_length}"
    if layer.groups > 1:
        blocks += f", block-diagonal over groups={layer.groups}"
    return f"{kind}; {blocks}"


def _spy_lines(M: sp.csr_array) -> list[str]:
    """A coarse character picture of where the nonzeros are."""
    m, n = M.shape
    rb, cb = -(-m // _SPY_ROWS), -(-n // _SPY_COLS)
    grid = np.zeros((-(-m // rb), -(-n // cb)), dtype=bool)
    coo = M.tocoo()
    grid[coo.row // rb, coo.col // cb] = True
    head = f"pattern ('#' = nonzeros in a {rb} x {cb} block):"
    return [head] + ["  " + "".join("#" if b else "." for b in row) for row in grid]


def _summary_lines(M: sp.csr_array, layer: _Layer) -> list[str]:
    m, n = M.shape
    per_row = np.diff(M.indptr)
    dense_bytes = m * n * M.dtype.itemsize
    stored = M.data.nbytes + M.indices.nbytes + M.indptr.nbytes
    return [
        f"nonzeros: {M.nnz:,} of {m * n:,} ({100 * M.nnz / (m * n):.3g}% dense); "
        f"per row: min {per_row.min()}, max {per_row.max()}",
        f"structure: {_structure(layer)}",
        f"storage: CSR {_bytes(stored)} ({M.dtype} values, {M.indices.dtype} indices); "
        f"dense would be {_bytes(dense_bytes)}",
        *_spy_lines(M),
    ]


def _bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError  # pragma: no cover


def _header_lines(layer: _Layer) -> list[str]:
    g, w = layer.geom, layer.weight
    cin, cout, lin, lout = layer.c_in, layer.c_out, layer.in_length, layer.out_length
    if layer.transpose:
        lines = [
            f"conv_transpose1d: z (C_in={cin}, L_in={lin}) -> y (C_out={cout}, L'={lout})",
            f"weight (C_in, C_out/groups, K) = {w.shape}",
        ]
        settings = (
            f"stride={g.stride}, padding=({g.pad_left}, {g.pad_right}), "
            f"output_padding={layer.kwargs['output_padding']}, dilation={g.dilation}, "
            f"groups={layer.groups}"
        )
        flat = "vec(y) = M @ vec(z)"
    else:
        lines = [
            f"conv1d: x (C_in={cin}, L={lin}) -> y (C_out={cout}, L_out={lout})",
            f"weight (C_out, C_in/groups, K) = {w.shape}",
        ]
        settings = (
            f"stride={g.stride}, padding=({g.pad_left}, {g.pad_right}), dilation={g.dilation}, "
            f"groups={layer.groups}, padding_mode='{g.padding_mode}'"
        )
        flat = "vec(y) = M @ vec(x)"
    if w.shape[:2] == (1, 1) and w.size <= 16:  # one channel: the kernel's values
        lines[-1] += " = [" + ", ".join(_number(v) for v in w.ravel()) + "]"
    m, n = layer.shape
    rows, cols = ("L'", "L_in") if layer.transpose else ("L_out", "L")
    lines.append(settings)
    lines.append(f"M: {m} x {n} = (C_out*{rows}) x (C_in*{cols}), {flat}")
    return lines


def _cmd_show(args: argparse.Namespace, out: IO[str], progress: _Progress) -> int:
    if args.max_size < 0:
        raise UsageError(f"--max-size must be >= 0; got {args.max_size}")
    layer = _layer(args)
    lines = _header_lines(layer)
    lines += ["", layer.formula("latex" if args.latex else "text"), ""]
    with progress.step("building the matrix"):
        M = layer.matrix("csr")
    if max(M.shape) <= args.max_size:
        zin = "z" if layer.transpose else "x"
        lines.append(f"M ({M.nnz} nonzeros, '.' = 0):")
        lines += _matrix_lines(
            M,
            _labels("y", layer.c_out, layer.out_length),
            _labels(zin, layer.c_in, layer.in_length),
        )
    else:
        lines += _summary_lines(M, layer)
    out.write("\n".join(lines) + "\n")
    return 0


# --------------------------------------------------------------------------- export
def _cmd_export(args: argparse.Namespace, out: IO[str], progress: _Progress) -> int:
    layer = _layer(args)
    from .io import _extension

    _extension(args.out)  # an unknown extension fails before any work
    with progress.step("building the matrix"):
        M = layer.matrix("csr")
    with progress.step(f"writing {args.out}"):
        save_matrix(M, args.out, params=layer.params())
    kind = {".npz": "scipy .npz", ".mtx": "Matrix Market", ".mat": "MATLAB"}[
        os.path.splitext(args.out)[1].lower()
    ]
    out.write(f"wrote {args.out}: {M.shape[0]} x {M.shape[1]}, {M.nnz:,} nonzeros ({kind})\n")
    return 0


# --------------------------------------------------------------------------- analyze
def _spectral_kwargs(layer: _Layer) -> tuple[int, dict[str, Any]]:
    """``(input_length, kwargs)`` for the spectral functions, which take conv1d parameters.

    A transposed convolution's matrix is ``conv1d_matrix(W, L').T``, whose singular values
    are the conv1d's: exact whenever the conv1d on ``L'`` has exactly ``L_in`` outputs
    (``output_padding < stride``).
    """
    g = layer.geom
    if layer.transpose:
        natural = g.input_length + g.pad_left + g.pad_right - g.dilation * (g.kernel_size - 1) - 1
        if natural // g.stride + 1 != g.output_length:
            raise UsageError(
                "analyze --transpose needs --output-padding < --stride: otherwise the matrix is "
                "not the transpose of a whole conv1d matrix, which the spectral functions take"
            )
        kwargs = {
            "stride": g.stride,
            "padding": (g.pad_left, g.pad_right),
            "dilation": g.dilation,
            "groups": layer.groups,
            "padding_mode": "zeros",
        }
        return g.input_length, kwargs
    kwargs = dict(layer.kwargs)
    return g.input_length, kwargs


def _cmd_analyze(args: argparse.Namespace, out: IO[str], progress: _Progress) -> int:
    if args.k < 1:
        raise UsageError(f"-k must be >= 1; got {args.k}")
    layer = _layer(args)
    if args.plot is not None:
        if not args.plot.lower().endswith(".png"):
            raise UsageError(
                f"--plot: the picture is a PNG, the name must end in .png; got {args.plot!r}"
            )
        _import_pyplot()  # fail before the work when matplotlib is missing
        _check_writable(args.plot)  # ... or when the picture could not be written
    from . import _krylov, spectral

    L, kwargs = _spectral_kwargs(layer)
    w = layer.weight
    m, n = layer.shape
    full = layer.geom.is_circulant or m * n <= spectral.DENSE_LIMIT
    by_lu = m * w.shape[1] * w.shape[2] <= _krylov._SHIFT_INVERT_MAX_NNZ  # sigma_min by sparse LU
    # each iterative step answers within _TIME_LIMIT (plus one step); values are printed to
    # 6 digits, and Ritz values converge twice as fast as the residual bound tol works on
    budget = {"time_limit": _TIME_LIMIT, "tol": _TOL}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        limit = {} if full else {"time_limit": _TIME_LIMIT}
        with progress.step("spectral norm"):
            norm = spectral.spectral_norm(w, L, **kwargs, **limit)
        with progress.step("spectral norm bounds"):
            lo, hi = _bounds_pair(spectral.spectral_norm_bounds(w, L, **kwargs, **limit))
        with progress.step("condition number"):
            cond = spectral.condition_number(w, L, **kwargs, **({} if full else budget))
        with progress.step("singular values"):
            if full:
                sv = spectral.singular_values(w, L, **kwargs)
            else:  # the top of the spectrum only: enough to list and to draw
                top = min(max(args.k, 20 if args.plot else args.k), min(m, n) - 1)
                sv = spectral.singular_values(w, L, k=top, **kwargs, **budget)
    sv = np.asarray(sv, dtype=float)
    k = min(args.k, sv.size)
    lines = _header_lines(layer)
    lines += [
        "",
        f"spectral norm  ||M||_2 = {norm:.10g}",
        f"bounds         {lo:.10g} <= ||M||_2 <= {hi:.10g}",
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
            M = layer.matrix("csr")
            _plot(M, sv, layer, args.plot, complete=full)
        out.write(f"wrote {args.plot}\n")
    return 0


#: Seconds each iterative analysis step (the norm's bracket, sigma_min, the top singular values)
#: may take before it answers with what it reached (plus the step under way).
_TIME_LIMIT = 20.0
#: Relative accuracy asked of the iterative steps (their residual bounds).
_TOL = 1e-5


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


def _plot(M: sp.csr_array, sv: np.ndarray, layer: _Layer, path: str, *, complete: bool) -> None:
    """Sparsity pattern and singular values side by side, written atomically to `path`."""
    from .io import _atomic_write

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

        ax_sv.plot(np.arange(1, sv.size + 1), sv, ".-", color="#b5412b", ms=3, lw=0.8)
        ax_sv.set_title(
            "singular values (descending)" if complete else f"the {sv.size} largest singular values"
        )
        ax_sv.set_xlabel("index")
        ax_sv.set_ylabel("sigma")
        if sv.size and sv[-1] > 0 and sv[0] / sv[-1] > 100:
            ax_sv.set_yscale("log")
        ax_sv.grid(True, alpha=0.3)
        g = layer.geom
        op = "conv_transpose1d" if layer.transpose else "conv1d"
        fig.suptitle(
            f"{op}: weight {tuple(layer.weight.shape)}, L={layer.in_length}, stride={g.stride}, "
            f"padding=({g.pad_left}, {g.pad_right}), dilation={g.dilation}, "
            f"groups={layer.groups}, padding_mode='{g.padding_mode}'",
            fontsize=10,
        )
        _atomic_write(path, ".png", lambda f: fig.savefig(f, format="png", dpi=110))
    finally:
        plt.close(fig)


# --------------------------------------------------------------------------- main
def _one_line(exc: BaseException) -> str:
    """The exception as one line, with library argument names spelled as options."""
    text = " ".join(str(exc).split()) or type(exc).__name__

    def option(m: re.Match[str]) -> str:
        return _OPTION_NAMES.get(m.group(1), m.group(0))

    return re.sub(r"`([a-z_]+)`", option, text)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status (0 ok, 2 bad input, 1 other errors)."""
    out, err = sys.stdout, sys.stderr
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors (already printed)
        return exc.code if isinstance(exc.code, int) else 1
    commands = {"show": _cmd_show, "export": _cmd_export, "analyze": _cmd_analyze}
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
