"""One function per subcommand: ``show``, ``export`` and ``analyze``.

Each takes the parsed options, the stream to print to and a
:class:`~._progress.Progress`, and returns the exit status; errors are raised and
reported by :func:`toeplitz_conv.cli.main`.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import IO, Any

import numpy as np
import scipy.sparse as sp

from .._build import layer_matrix
from .._files import check_writable, extension
from .._formula import layer_formula
from .._layer import Layer
from ..io import save_matrix
from ._errors import PROG, UsageError, one_line
from ._parse import layer_of
from ._plot import import_pyplot, plot
from ._progress import Progress
from ._render import MAX_DIGITS, certified, directed, header_lines, labels, matrix_lines, sides
from ._summary import summary_lines

__all__ = ["MAX_PRINT_CELLS", "TIME_LIMIT", "TOL", "analyze", "export", "show"]

#: The most entries (rows x columns) a printed matrix may have, whatever ``--max-size`` says.
MAX_PRINT_CELLS = 250_000
#: Seconds the iterative analysis (the norm's bracket, the top singular values, sigma_min)
#: may take before it answers with what it reached (plus the step under way).
TIME_LIMIT = 20.0
#: Relative accuracy asked of the iterative steps (their residual bounds).
TOL = 1e-5
#: Weights up to this many real entries are recorded in an exported file (else their source).
_RECORDED_WEIGHT = 32


def _matrix(layer: Layer, transpose: bool) -> sp.csr_array:
    """``M`` in CSR: the layer's matrix, or its transpose for a transposed convolution."""
    return layer_matrix(layer, fmt="csr", transpose=transpose)


def show(args: argparse.Namespace, out: IO[str], progress: Progress) -> int:
    """``show``: the header, the formula and the matrix (its summary when it is large)."""
    if args.max_size < 0:
        raise UsageError(f"--max-size must be >= 0; got {args.max_size}")
    layer, transpose = layer_of(args), args.transpose
    lines = header_lines(layer, transpose)
    style = "latex" if args.latex else "text"
    lines += ["", layer_formula(layer, transpose=transpose, style=style), ""]
    m, n = layer.shape[::-1] if transpose else layer.shape
    if max(m, n) <= args.max_size:
        if m * n > MAX_PRINT_CELLS:
            raise UsageError(
                f"--max-size {args.max_size}: the matrix is {m:,} x {n:,}, too large to print "
                f"(at most {MAX_PRINT_CELLS:,} entries); lower --max-size for its summary, or "
                "use export to write it to a file"
            )
        with progress.step("building the matrix"):
            M = _matrix(layer, transpose)
        (c_in, in_size), (c_out, out_size) = sides(layer, transpose)
        lines.append(f"M ({M.nnz} nonzeros, '.' = 0):")
        lines += matrix_lines(
            M,
            labels("y", c_out, out_size),
            labels("z" if transpose else "x", c_in, in_size),
            None if layer.ndim == 1 else (out_size[-1], in_size[-1]),
        )
    else:
        with progress.step("summarising the matrix"):
            lines += summary_lines(layer, transpose)
    out.write("\n".join(lines) + "\n")
    return 0


def _record(layer: Layer, transpose: bool, source: str) -> dict[str, Any]:
    """The parameters recorded in an exported file (scalars in 1-D, one per axis in N-d)."""
    n, w = layer.ndim, layer.weight
    size, params = layer.arguments(transpose=transpose)
    last = "output_padding" if transpose else "padding_mode"
    record: dict[str, Any] = {
        "op": f"conv_transpose{n}d" if transpose else f"conv{n}d",
        "weight_shape": list(w.shape),
        ("input_length" if n == 1 else "input_size"): size,
        **{key: params[key] for key in ("stride", "padding", "dilation", "groups", last)},
    }
    if w.size <= _RECORDED_WEIGHT and w.dtype.kind != "c":
        record["weight"] = w.ravel().tolist()
    else:
        record["weight_source"] = source
    return record


def export(args: argparse.Namespace, out: IO[str], progress: Progress) -> int:
    """``export``: the matrix to ``.npz``, ``.mtx`` or ``.mat``, with its parameters."""
    layer = layer_of(args)
    ext = extension(args.out)  # an unknown extension fails before any work
    with progress.step("building the matrix"):
        M = _matrix(layer, args.transpose)
    with progress.step(f"writing {args.out}"):
        record = _record(layer, args.transpose, args.weight)
        save_matrix(M, args.out, params=record, compress=not args.no_compress)
    kind = {".npz": "scipy .npz", ".mtx": "Matrix Market", ".mat": "MATLAB"}[ext]
    out.write(f"wrote {args.out}: {M.shape[0]} x {M.shape[1]}, {M.nnz:,} nonzeros ({kind})\n")
    return 0


def _check_plot(path: str) -> None:
    """Refuse a ``--plot`` that cannot be drawn or written, before any work."""
    if not path.lower().endswith(".png"):
        raise UsageError(f"--plot: the picture is a PNG, the name must end in .png; got {path!r}")
    import_pyplot()  # fail before the work when matplotlib is missing
    check_writable(path)  # ... or when the picture could not be written


def _check_transposable(layer: Layer) -> None:
    """A transposed layer is analysed as the conv it transposes: that needs ``q < s``.

    Its matrix is ``conv_matrix(W, L').T``, whose singular values are the conv's, when
    the conv on ``L'`` has exactly ``L_in`` outputs on every axis (``output_padding <
    stride``).
    """
    if any(q >= g.stride for q, g in zip(layer.output_padding, layer.geoms, strict=True)):
        every = "" if layer.ndim == 1 else " on every axis"
        raise UsageError(
            f"analyze --transpose needs --output-padding < --stride{every}: otherwise the matrix "
            "is not the transpose of a whole conv matrix, which the spectral functions take"
        )


def _spectrum(layer: Layer, k: int, plotted: bool, progress: Progress) -> tuple[Any, bool]:
    """The library's :func:`~toeplitz_conv.analyze` of the layer, and whether its singular
    values are the whole spectrum.

    Block-circulant layers and matrices within ``DENSE_LIMIT`` get the whole spectrum
    (the library's ``choose_method``), larger ones the top of it (enough to list and to
    draw) within :data:`TIME_LIMIT`. Values are printed to 6 digits, and Ritz values
    converge twice as fast as the residual bound :data:`TOL` works on.
    """
    from .. import spectral
    from ..spectral._method import choose_method

    size, kwargs = layer.arguments()
    m, n = layer.shape
    full = choose_method(layer) != "krylov"  # the whole spectrum: by FFT or dense SVD
    limit: dict[str, Any]
    if full:
        top, limit = min(m, n), {}
    else:
        top, limit = min(max(k, 20 if plotted else k), min(m, n) - 1), {"time_limit": TIME_LIMIT}
    with progress.step("spectral analysis"):
        found = spectral.analyze(layer.weight, size, **kwargs, k=top, tol=TOL, **limit)
    return found, full


def _analysis_lines(layer: Layer, transpose: bool, k: int, found: Any, full: bool) -> list[str]:
    """The header and the :class:`~toeplitz_conv.spectral.Analysis` `found`, a value a line."""
    from ..spectral._method import shift_invert_affordable

    lo, hi = (float(b) for b in found.bounds)
    cond, sv = found.condition_number, np.asarray(found.singular_values, dtype=float)
    m, n = layer.shape[::-1] if transpose else layer.shape
    value, digits = certified(found.norm, lo, hi)
    if digits < MAX_DIGITS:
        value += f" (to the {digits} significant digit{'s' * (digits > 1)} its bounds certify)"
    over = "" if m == n else f", over the min({m}, {n}) = {min(m, n)} singular values"
    how = (
        ""
        if full
        else " (sigma_min by shift-invert block Krylov on a sparse LU)"
        if shift_invert_affordable(layer)
        else " (sigma_min by block Krylov on the Gram matrix)"
    )
    k = min(k, sv.size)
    lines = [
        *header_lines(layer, transpose),
        "",
        f"spectral norm  ||M||_2 = {value}",
        f"bounds         {directed(lo, 'down')} <= ||M||_2 <= {directed(hi, 'up')}",
        f"condition      sigma_max / sigma_min = {cond:.6g}{how}{over}",
        f"largest  {k} singular values: " + ", ".join(f"{v:.6g}" for v in sv[:k]),
    ]
    if full:
        lines.append(
            f"smallest {k} singular values: " + ", ".join(f"{v:.6g}" for v in sv[::-1][:k])
        )
    else:
        lines.append(
            f"smallest singular value ~ sigma_max / condition = {found.norm / cond:.6g} "
            f"(the whole spectrum of a {m} x {n} matrix is not computed)"
        )
    return lines


def analyze(args: argparse.Namespace, out: IO[str], progress: Progress) -> int:
    """``analyze``: the norm, its bracket, the condition number and singular values (any n)."""
    if args.k < 1:
        raise UsageError(f"-k must be >= 1; got {args.k}")
    layer, transpose = layer_of(args), args.transpose
    if args.plot is not None:
        _check_plot(args.plot)
    if transpose:
        _check_transposable(layer)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found, full = _spectrum(layer, args.k, args.plot is not None, progress)
    out.write("\n".join(_analysis_lines(layer, transpose, args.k, found, full)) + "\n")
    out.flush()
    for warning in caught:
        sys.stderr.write(f"{PROG}: warning: {one_line(warning.message)}\n")
    if args.plot is not None:
        with progress.step(f"drawing {args.plot}"):
            M = _matrix(layer, transpose)
            plot(M, found.singular_values, layer, transpose, args.plot, complete=full)
        out.write(f"wrote {args.plot}\n")
    return 0
