r"""3-tap 1-D correlations by Winograd F(4, 3), fused per block of tiles (compiled, ``[fast]``).

The signal is cut into tiles of 6 padded samples, 4 apart; the 4 outputs of a
tile ``d`` are

.. math::

    y = A^T \left[ (G g) \odot (B^T d) \right],

6 products per 4 outputs instead of 12, so the per-point GEMMs
``(C_out/groups x G) @ (G x tiles)`` cost half the direct sum's patch GEMM. The
interpolation points are ``0, 1, -1, 2, -1/2, \infty`` (Lavin & Gray's
``0, 1, -1, 2, -2, \infty`` with ``-2`` replaced by ``-1/2``: smaller entries in
``A^T`` and ``B^T``). Measured on 64 -> 64 channels, n = 8192, against a float64
reference (relative to the largest output): float32 8.6e-7 (the direct patch
GEMM's 7.1e-7, the points of Lavin & Gray 1.4e-6), float64 1.8e-15 (direct
1.0e-15); over five kinds of signal and three of weights, 0.6-2.6x the direct
path's (``docs/operators.md``).

numpy makes one pass over memory per operation, so the transforms done as
whole-array passes cost more than the GEMMs they save
(:mod:`toeplitz_conv._winograd`). Here, with numba (the ``[fast]`` extra), the
signal is taken a block of tiles at a time (:data:`BLOCK_COLS` columns, so that
the block stays in L2): one compiled loop transforms the block's
tiles of every channel, reading the signal itself with zero padding and the
zeros past its end filled in as it goes (no padded copy); one batched GEMM per
block computes the 6 points' products; a second compiled loop transforms them
back and writes the outputs in place. Without numba (or for a dtype it does not
compile) the same layer runs :func:`~toeplitz_conv._winograd.winograd_correlate`
(numpy, the points of Lavin & Gray).

References
----------
.. [1] A. Lavin, S. Gray, "Fast Algorithms for Convolutional Neural Networks",
   CVPR 2016, arXiv:1509.09308.
.. [2] B. Barabasz, A. Anderson, K. M. Soodhalter, D. Gregg, "Error analysis and
   improving the accuracy of Winograd convolution for deep neural networks",
   ACM TOMS 2020, arXiv:1803.10986 (the choice of points).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np

from ._compiled import compiled
from ._plan import Plan, Pool
from ._threads import contiguous_runs, max_threads, run
from ._winograd import point_products, winograd_correlate, winograd_weight

__all__ = ["BLOCK_COLS", "MIN_CHANNELS", "Winograd1D", "compiled_kernels", "weight6"]

TILE, SPAN = 4, 6  # outputs per tile, padded samples per tile
#: Columns (tiles times batch) per block: the GEMMs are ``(C_out/groups x G) @ (G x cols)``.
#: Measured (float32, one thread, 2 MB of L2), ours / torch by tiles a block: 64 -> 64
#: channels: 96-192 tiles 0.72-0.79x, 48 tiles 1.0x, 512-2048 tiles 0.85-0.97x; 128, 256 and
#: 512 channels best at 170-340 tiles (0.88-0.96x; 42 tiles 1.2-1.8x). The block's
#: transformed tiles (``6 C_in cols`` values) then mostly stay in L2.
BLOCK_COLS = 192
#: Input and output channels per group from which ``method="auto"`` takes this path (with
#: numba): below, the transforms outweigh the GEMM they save (measured, float32, n = 65536:
#: 2, 4 and 8 channels 1.2-2x the direct path's time; 16 -> 16 on 16384 samples 0.67x).
MIN_CHANNELS = 16
#: Blocks of tiles a thread takes at the least (fewer: the caller's thread does them all).
_BLOCKS_A_THREAD = 2

# the points 0, 1, -1, 2, -1/2 and infinity: A^T (4 x 6), G (6 x 3), B^T (6 x 6)
_AT = np.array(
    [
        [1, 1, 1, 1, 1, 0],
        [0, 1, -1, 2, -1 / 2, 0],
        [0, 1, 1, 4, 1 / 4, 0],
        [0, 1, -1, 8, -1 / 8, 1],
    ]
)
_G = np.array(
    [
        [1, 0, 0],
        [-1 / 3, -1 / 3, -1 / 3],
        [1 / 3, -1 / 3, 1 / 3],
        [1 / 15, 2 / 15, 4 / 15],
        [-16 / 15, 8 / 15, -4 / 15],
        [0, 0, 1],
    ]
)
_BT = np.array(
    [
        [1, 3 / 2, -2, -3 / 2, 1, 0],
        [0, -1, -5 / 2, -1 / 2, 1, 0],
        [0, 1, 1 / 2, -5 / 2, 1, 0],
        [0, -1 / 2, -1, 1 / 2, 1, 0],
        [0, 2, -1, -2, 1, 0],
        [0, 1, 3 / 2, -2, -3 / 2, 1],
    ]
)


def weight6(weight: np.ndarray, groups: int, dtype: np.dtype) -> np.ndarray:
    """``(C_out, G, 3)`` -> ``(6, groups, C_out/groups, G)``: ``G g`` per channel pair (in
    float64 or complex128, then rounded once to `dtype`)."""
    c_out, G = weight.shape[:2]
    w = weight.astype(np.complex128 if weight.dtype.kind == "c" else np.float64)
    m = np.einsum("pk,ock->poc", _G, w)
    return np.ascontiguousarray(m.reshape(SPAN, groups, c_out // groups, G).astype(dtype))


# --------------------------------------------------------------------------- numba, lazily
def _build(numba: Any) -> SimpleNamespace:
    """Compile the two transform loops (:func:`_tiles_in`, :func:`_tiles_out`)."""
    jit = numba.njit(cache=True, nogil=True)
    return SimpleNamespace(tiles_in=jit(_tiles_in), tiles_out=jit(_tiles_out))


def compiled_kernels(dtype: np.dtype) -> Any:
    """The compiled transforms for arrays of `dtype`, or None (no numba, a dtype it does not
    compile, or switched off: :func:`toeplitz_conv._compiled.compiled`)."""
    return compiled(dtype, _build)


# --------------------------------------------------------------------------- the kernels
# Plain Python over arrays (correct, and very slow, if called without numba). Every value
# of the small matrices is read into a local first: stores into the outputs could alias
# an array, which would keep the loops from vectorising.


def _tiles_in(x, length, pad_left, batch, bt, t0, v, ph):
    """``v[p, c, t B + b] = sum_j bt[p, j] xp[c, 4 (t0 + t) + j, b]`` for ``t < nt``.

    `x` is ``(C, length * B)``; ``xp`` is `x` with `pad_left` zeros in front and zeros past
    its end. `ph` (``4 x (nt + 1) B``) is scratch: per channel, the block's samples split
    into the 4 phases ``4 t + r``, so that every read of the transform is contiguous.
    """
    C, B = x.shape[0], batch
    nq = v.shape[2]
    nt = nq // B
    b00, b01, b02, b03, b04, b05 = bt[0, 0], bt[0, 1], bt[0, 2], bt[0, 3], bt[0, 4], bt[0, 5]
    b10, b11, b12, b13, b14, b15 = bt[1, 0], bt[1, 1], bt[1, 2], bt[1, 3], bt[1, 4], bt[1, 5]
    b20, b21, b22, b23, b24, b25 = bt[2, 0], bt[2, 1], bt[2, 2], bt[2, 3], bt[2, 4], bt[2, 5]
    b30, b31, b32, b33, b34, b35 = bt[3, 0], bt[3, 1], bt[3, 2], bt[3, 3], bt[3, 4], bt[3, 5]
    b40, b41, b42, b43, b44, b45 = bt[4, 0], bt[4, 1], bt[4, 2], bt[4, 3], bt[4, 4], bt[4, 5]
    b50, b51, b52, b53, b54, b55 = bt[5, 0], bt[5, 1], bt[5, 2], bt[5, 3], bt[5, 4], bt[5, 5]
    lo = TILE * t0 - pad_left  # the signal position of the block's first padded sample
    inside = lo >= 0 and lo + TILE * (nt + 1) <= length
    p0, p1, p2, p3 = ph[0], ph[1], ph[2], ph[3]
    for c in range(C):
        xc = x[c]
        if inside and B == 1:
            xs = xc[lo:]
            for t in range(nt + 1):
                p0[t] = xs[4 * t]
                p1[t] = xs[4 * t + 1]
                p2[t] = xs[4 * t + 2]
                p3[t] = xs[4 * t + 3]
        elif inside:  # batches: B values at a time
            for t in range(nt + 1):
                s, q = (lo + TILE * t) * B, t * B
                for b in range(B):
                    p0[q + b] = xc[s + b]
                    p1[q + b] = xc[s + B + b]
                    p2[q + b] = xc[s + 2 * B + b]
                    p3[q + b] = xc[s + 3 * B + b]
        else:  # the signal's ends: zeros outside
            for r in range(TILE):
                pr = ph[r]
                for t in range(nt + 1):
                    s = lo + TILE * t + r
                    if 0 <= s < length:
                        for b in range(B):
                            pr[t * B + b] = xc[s * B + b]
                    else:
                        for b in range(B):
                            pr[t * B + b] = 0
        v0, v1, v2, v3, v4, v5 = v[0, c], v[1, c], v[2, c], v[3, c], v[4, c], v[5, c]
        n0, n1 = p0[B:], p1[B:]  # the next tile's first two samples
        for q in range(nq):
            d0, d1, d2, d3, d4, d5 = p0[q], p1[q], p2[q], p3[q], n0[q], n1[q]
            v0[q] = b00 * d0 + b01 * d1 + b02 * d2 + b03 * d3 + b04 * d4 + b05 * d5
            v1[q] = b10 * d0 + b11 * d1 + b12 * d2 + b13 * d3 + b14 * d4 + b15 * d5
            v2[q] = b20 * d0 + b21 * d1 + b22 * d2 + b23 * d3 + b24 * d4 + b25 * d5
            v3[q] = b30 * d0 + b31 * d1 + b32 * d2 + b33 * d3 + b34 * d4 + b35 * d5
            v4[q] = b40 * d0 + b41 * d1 + b42 * d2 + b43 * d3 + b44 * d4 + b45 * d5
            v5[q] = b50 * d0 + b51 * d1 + b52 * d2 + b53 * d3 + b54 * d4 + b55 * d5


def _tiles_out(u, at, batch, t0, y, rows):
    """``y[o, 4 (t0 + t) + i, b] = sum_p at[i, p] u[p, o, t B + b]``, positions past the end of
    `y` (``(C_out, L_out * B)``) left out; `rows` (``4 x nt B``) is scratch."""
    C_out, B = u.shape[1], batch
    nt = u.shape[2] // B
    length = y.shape[1] // B
    full = min(nt, (length - TILE * t0) // TILE)  # tiles whose 4 outputs are all in y
    a00, a01, a02, a03, a04, a05 = at[0, 0], at[0, 1], at[0, 2], at[0, 3], at[0, 4], at[0, 5]
    a10, a11, a12, a13, a14, a15 = at[1, 0], at[1, 1], at[1, 2], at[1, 3], at[1, 4], at[1, 5]
    a20, a21, a22, a23, a24, a25 = at[2, 0], at[2, 1], at[2, 2], at[2, 3], at[2, 4], at[2, 5]
    a30, a31, a32, a33, a34, a35 = at[3, 0], at[3, 1], at[3, 2], at[3, 3], at[3, 4], at[3, 5]
    for o in range(C_out):
        ys = y[o, TILE * t0 * B :]
        u0, u1, u2, u3, u4, u5 = u[0, o], u[1, o], u[2, o], u[3, o], u[4, o], u[5, o]
        if B == 1:  # (its own loop: the innermost loop is the one vectorised)
            for t in range(full):
                e0, e1, e2, e3, e4, e5 = u0[t], u1[t], u2[t], u3[t], u4[t], u5[t]
                ys[4 * t] = a00 * e0 + a01 * e1 + a02 * e2 + a03 * e3 + a04 * e4 + a05 * e5
                ys[4 * t + 1] = a10 * e0 + a11 * e1 + a12 * e2 + a13 * e3 + a14 * e4 + a15 * e5
                ys[4 * t + 2] = a20 * e0 + a21 * e1 + a22 * e2 + a23 * e3 + a24 * e4 + a25 * e5
                ys[4 * t + 3] = a30 * e0 + a31 * e1 + a32 * e2 + a33 * e3 + a34 * e4 + a35 * e5
        else:  # batches: the 4 rows over the whole block, then put in place B at a time
            r0, r1, r2, r3 = rows[0], rows[1], rows[2], rows[3]
            for q in range(full * B):
                e0, e1, e2, e3, e4, e5 = u0[q], u1[q], u2[q], u3[q], u4[q], u5[q]
                r0[q] = a00 * e0 + a01 * e1 + a02 * e2 + a03 * e3 + a04 * e4 + a05 * e5
                r1[q] = a10 * e0 + a11 * e1 + a12 * e2 + a13 * e3 + a14 * e4 + a15 * e5
                r2[q] = a20 * e0 + a21 * e1 + a22 * e2 + a23 * e3 + a24 * e4 + a25 * e5
                r3[q] = a30 * e0 + a31 * e1 + a32 * e2 + a33 * e3 + a34 * e4 + a35 * e5
            for t in range(full):
                for i in range(TILE):
                    ri, s, q = rows[i], (TILE * t + i) * B, t * B
                    for b in range(B):
                        ys[s + b] = ri[q + b]
        for t in range(full, nt):  # the last tile, cut by the end of the output
            for i in range(TILE):
                if TILE * (t0 + t) + i < length:
                    for b in range(B):
                        q = t * B + b
                        acc = at[i, 0] * u0[q]
                        for p in range(1, SPAN):
                            acc += at[i, p] * u[p, o, q]
                        ys[(TILE * t + i) * B + b] = acc


# --------------------------------------------------------------------------- the pass
def correlate3(
    x: np.ndarray,
    m: np.ndarray,
    pad_left: int,
    output_length: int,
    c_out: int,
    fast: Any,
    pool: Pool,
) -> np.ndarray:
    """``y[o, i, b] = sum_{c, k} w[o, c, k] xp[g(o) G + c, i + k, b]`` block by block.

    Parameters
    ----------
    x : ndarray, shape (C_in, L, B), contiguous
        ``xp`` is `x` with `pad_left` zeros in front and zeros past its end.
    m : ndarray, shape (6, groups, C_out/groups, G)
        :func:`weight6`, in the dtype of `x`.
    pad_left, output_length, c_out : int
    fast : namespace
        :func:`compiled_kernels`.
    pool : Pool
        Scratch.

    Returns
    -------
    y : ndarray, shape (C_out, output_length, B)
    """
    C, L, B = x.shape
    dtype = x.dtype
    y = np.empty((c_out, output_length, B), dtype=dtype)
    tiles = -(-output_length // TILE)
    step = max(1, min(tiles, BLOCK_COLS // B))  # tiles per block
    real = np.empty(0, dtype=dtype).real.dtype  # (real coefficients for complex data too)
    bt, at = _BT.astype(real), _AT.astype(real)
    rows, y2 = x.reshape(C, L * B), y.reshape(c_out, output_length * B)
    starts = range(0, tiles, step)
    # the blocks write disjoint outputs: with enough of them, a run of blocks per thread
    # (the compiled loops release the GIL; BLAS on one thread each)
    runs = contiguous_runs(starts, min(max_threads(), len(starts) // _BLOCKS_A_THREAD))
    scratch = [
        tuple(
            pool.take(shape, dtype)
            for shape in (
                (SPAN * C * step * B,),
                (SPAN * c_out * step * B,),
                (TILE, (step + 1) * B),
            )
        )
        for _ in runs
    ]

    def blocks(
        run_starts: Sequence[int], v_buf: np.ndarray, u_buf: np.ndarray, ph: np.ndarray
    ) -> None:
        for t0 in run_starts:
            nq = min(step, tiles - t0) * B
            v = v_buf[: SPAN * C * nq].reshape(SPAN, C, nq)
            u = u_buf[: SPAN * c_out * nq].reshape(SPAN, c_out, nq)
            fast.tiles_in(rows, L, pad_left, B, bt, t0, v, ph)
            point_products(m, v, u)
            fast.tiles_out(u, at, B, t0, y2, ph)

    run(
        [functools.partial(blocks, r, *bufs) for r, bufs in zip(runs, scratch, strict=True)], blas=1
    )
    for bufs in scratch:
        for buf in bufs:
            pool.give(buf)
    return y


class Winograd1D:
    """3-tap 1-D kernels, stride and dilation 1: F(4, 3) per block of tiles, compiled.

    Without numba for the dtype, :func:`~toeplitz_conv._winograd.winograd_correlate`
    (numpy). The adjoint is the flipped kernel's forward pass, by this path too.
    """

    method = "winograd"
    flipped_adjoint = True

    def __init__(self, plan: Plan, pool: Pool, weight: np.ndarray, groups: int) -> None:
        self.plan, self.pool, self.weight, self.groups = plan, pool, weight, groups
        self.c_out = weight.shape[0]
        self._weights: dict[tuple[np.dtype, bool], np.ndarray] = {}  # transformed

    def _weight(self, dtype: np.dtype, compiled: bool) -> np.ndarray:
        if (dtype, compiled) not in self._weights:
            make = weight6 if compiled else winograd_weight
            self._weights[dtype, compiled] = make(self.weight, self.groups, dtype)
        return self._weights[dtype, compiled]

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``(C_in, L, B) -> (C_out, L_out, B)``, ``x`` contiguous."""
        if x.dtype.kind == "c" and self.weight.dtype.kind != "c":
            # real weights on complex data: the real and imaginary parts are a batch of 2B
            # real columns (a view; measured 4-5x faster than the complex GEMM)
            return self.forward(x.view(x.real.dtype)).view(x.dtype)
        plan, pool = self.plan, self.pool
        fast = compiled_kernels(x.dtype)
        out = plan.output_size
        if fast is None:  # numpy
            xp = plan.pad(x, pool)
            m = self._weight(x.dtype, False)
            # (the numpy path's own block budget: an eighth of the patch budget, measured)
            y = winograd_correlate(xp, m, out, self.c_out, pool, plan.blocking.block_bytes // 8)
        else:
            g = plan.geoms[0]
            xp, pad_left = (x, g.pad_left) if g.pads_zeros else (plan.pad(x, pool), 0)
            y = correlate3(
                xp, self._weight(x.dtype, True), pad_left, out[0], self.c_out, fast, pool
            )
        if xp is not x:
            pool.give(xp)
        return y
