"""``analyze --plot``: the sparsity pattern and the singular values in one PNG.

matplotlib is imported only here, and only when a picture is asked for.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._files import atomic_write
from .._layer import Layer
from ._render import header_lines, sides

__all__ = ["import_pyplot", "plot"]


def import_pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend; a one-line error when it is missing."""
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


def _title(layer: Layer, transpose: bool) -> str:
    """The layer in one line (two in N-d), for the picture."""
    if layer.ndim > 1:
        head = header_lines(layer, transpose)
        return head[0] + "\n" + head[2]
    (_, (length,)), _ = sides(layer, transpose)
    op = "conv_transpose1d" if transpose else "conv1d"
    params = ", ".join(f"{k}={v!r}" for k, v in layer.arguments()[1].items())
    return f"{op}: weight {tuple(layer.weight.shape)}, L={length}, {params}"


def _spy(ax: Any, M: sp.csr_array, layer: Layer, transpose: bool) -> None:
    """The sparsity pattern, with a line between channels."""
    if max(M.shape) <= 400:
        ax.spy(M, markersize=max(1.0, 200 / max(M.shape)), color="#1f4e79")
    else:
        coo = M.tocoo()
        ax.plot(coo.col, coo.row, ",", color="#1f4e79")
        ax.set_xlim(-0.5, M.shape[1] - 0.5)
        ax.set_ylim(M.shape[0] - 0.5, -0.5)
        ax.set_aspect("equal")
    ax.set_title(f"sparsity pattern: {M.shape[0]} x {M.shape[1]}, {M.nnz:,} nonzeros")
    ax.set_xlabel("column (input channel, position)")
    ax.set_ylabel("row (output channel, position)")
    (c_in, in_size), (c_out, out_size) = sides(layer, transpose)
    for c in range(1, c_in):
        ax.axvline(c * math.prod(in_size) - 0.5, color="0.8", lw=0.6)
    for o in range(1, c_out):
        ax.axhline(o * math.prod(out_size) - 0.5, color="0.8", lw=0.6)


def _spectrum(ax: Any, sv: np.ndarray | None, complete: bool) -> None:
    """The singular values, descending (log scale when they span more than 100x)."""
    if sv is None:  # the library has no spectrum for this layer
        ax.text(0.5, 0.5, "singular values: not available", ha="center", va="center")
        ax.set_axis_off()
        return
    ax.plot(np.arange(1, sv.size + 1), sv, ".-", color="#b5412b", ms=3, lw=0.8)
    ax.set_title(
        "singular values (descending)" if complete else f"the {sv.size} largest singular values"
    )
    ax.set_xlabel("index")
    ax.set_ylabel("sigma")
    if sv.size and sv[-1] > 0 and sv[0] / sv[-1] > 100:
        ax.set_yscale("log")
    ax.grid(True, alpha=0.3)


def plot(
    M: sp.csr_array,
    sv: np.ndarray | None,
    layer: Layer,
    transpose: bool,
    path: str,
    *,
    complete: bool,
) -> None:
    """Sparsity pattern and singular values side by side, written atomically to `path`.

    `complete`: `sv` is the whole spectrum (else its largest values only).
    """
    plt = import_pyplot()
    fig, (ax_spy, ax_sv) = plt.subplots(1, 2, figsize=(11, 4.6), layout="constrained")
    try:
        _spy(ax_spy, M, layer, transpose)
        _spectrum(ax_sv, sv, complete)
        fig.suptitle(_title(layer, transpose), fontsize=10)
        atomic_write(path, ".png", lambda f: fig.savefig(f, format="png", dpi=110))
    finally:
        plt.close(fig)
