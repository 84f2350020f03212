"""The summary of a matrix too large to print: nonzeros, structure, storage, a picture.

Nothing of the size of ``M`` is built: every channel block of ``M`` has the
sparsity pattern of the one-channel layer with the same geometries (:class:`Pattern`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .._arrays import matrix_dtype
from .._build import layer_matrix
from .._layer import Layer
from ._render import sides

__all__ = ["SPY_COLS", "SPY_ROWS", "Pattern", "byte_size", "structure", "summary_lines"]

SPY_ROWS, SPY_COLS = 16, 64  # the character grid of the sparsity picture


@dataclass(frozen=True)
class Pattern:
    """Where the nonzeros of the layer's matrix sit, without assembling it.

    Every channel block of ``M`` has the same sparsity pattern: the matrix of the
    one-channel layer with the same geometries (its transpose for a transposed layer).
    Row channel ``a`` holds the blocks of column channels ``base[a] + t``, ``t < nb``.
    """

    block: sp.coo_array  # one channel block's pattern, shape (out_length, in_length)
    base: np.ndarray  # first column channel of every row channel
    nb: int  # column channels per row channel
    shape: tuple[int, int]

    @classmethod
    def of(cls, layer: Layer, transpose: bool) -> Pattern:
        """The pattern of `layer`'s matrix (of its transpose with `transpose`)."""
        unit = Layer(np.ones((1, 1, *layer.kernel_size)), layer.geoms, 1)
        block = layer_matrix(unit, fmt="coo", transpose=transpose)
        c_out, G, groups = layer.out_channels, layer.group_channels, layer.groups
        if transpose:  # row channel c' of M.T: the output channels of its group
            per_group = c_out // groups
            base = (np.arange(G * groups, dtype=np.int64) // G) * per_group
            nb = per_group
        else:
            base = (np.arange(c_out, dtype=np.int64) // (c_out // groups)) * G
            nb = G
        return cls(block, base, nb, layer.shape[::-1] if transpose else layer.shape)

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


def structure(layer: Layer, transpose: bool) -> str:
    """Toeplitz / circulant (BTTB / BCCB in 2-D), by the library's own definition.

    Block-circulant is :attr:`Layer.is_circulant` (circular padding with one period
    of output per axis, ``L_out * s == L``, strided layers included), the same
    test that ``method='fft'`` of the spectral functions accepts.
    """
    n, geoms = layer.ndim, layer.geoms
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
    if layer.is_circulant:
        kind = circulant
        if strided:
            kind += f", strided (its rows at stride {'x'.join(str(g.stride) for g in geoms)})"
    else:
        kind = toeplitz
        if padded and mode in ("reflect", "replicate"):
            kind += f", with the {edge} folded by {mode} padding"
        elif padded and mode == "circular":
            kind += f", with the {edge} wrapped around by circular padding"
        if strided:
            kind += ", strided"
    if transpose:
        kind = f"the transpose of a {kind}" + (" matrix" if n == 1 else "")
    (c_in, in_size), (c_out, out_size) = sides(layer, transpose)
    if c_in == c_out == 1:
        return kind.replace("block-", "") if n == 1 else kind
    blocks = f"{c_out} x {c_in} blocks of {math.prod(out_size)} x {math.prod(in_size)}"
    if layer.groups > 1:
        blocks += f", block-diagonal over groups={layer.groups}"
    return f"{kind}; {blocks}"


def _spy_lines(pattern: Pattern) -> list[str]:
    """A coarse character picture of where the nonzeros are."""
    grid, rb, cb = pattern.grid(SPY_ROWS, SPY_COLS)
    head = f"pattern ('#' = nonzeros in a {rb} x {cb} block):"
    return [head] + ["  " + "".join("#" if b else "." for b in row) for row in grid]


def summary_lines(layer: Layer, transpose: bool) -> list[str]:
    """Nonzeros, rows, structure, storage and a picture, from the pattern of one block.

    Nothing of the size of ``M`` is built (a 64 -> 64, 3x3 layer on 56x56 has 115
    million entries; its summary needs the 28,000 of one channel block).
    """
    pattern = Pattern.of(layer, transpose)
    m, n = pattern.shape
    nnz = pattern.nnz
    least, most = pattern.row_counts()
    dtype = matrix_dtype(layer.weight.dtype)
    index = np.dtype(np.int32 if max(nnz, m, n) <= np.iinfo(np.int32).max else np.int64)
    stored = nnz * (dtype.itemsize + index.itemsize) + (m + 1) * index.itemsize
    return [
        f"nonzeros: {nnz:,} of {m * n:,} ({100 * nnz / (m * n):.3g}% dense); "
        f"per row: min {least}, max {most}",
        f"structure: {structure(layer, transpose)}",
        f"storage: CSR {byte_size(stored)} ({dtype} values, {index} indices); "
        f"dense would be {byte_size(m * n * dtype.itemsize)}",
        *_spy_lines(pattern),
    ]


def byte_size(n: float) -> str:
    """``512 B``, ``1.5 kB``, ``2.3 MB``, ...: decimal units, as file sizes are written."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError  # pragma: no cover
