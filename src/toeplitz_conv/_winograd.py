r"""Winograd's minimal filtering F(4, 3): 3-tap (1-D) and 3x3 (2-D) correlations, stride 1.

Opt-in only (``method="winograd"``): about 2.25x (2-D) fewer multiplications
than the direct sum, at the price of a larger rounding error (the transforms
have entries up to 8 and 1/24). Each axis is cut into tiles of 6 padded
samples, 4 apart; on one tile ``d`` the 4 outputs are

.. math::

    y = A^T \left[ (G g) \odot (B^T d) \right]

(2-D: ``Y = A^T [(G g G^T) \odot (B^T d B)] A``), with the interpolation
points ``0, 1, -1, 2, -2, \infty`` of Lavin & Gray [1]_. The products of all
tiles are one batched GEMM per transform point (``6`` in 1-D, ``36`` in
2-D): ``(C_out/groups x G) @ (G x tiles)`` per group.

Measured error (float32, vs a float64 reference, relative to the largest
output; see ``benchmarks/operators.py``): ~1e-6 to 1e-5 where the direct sum
gives ~1e-7.

References
----------
.. [1] A. Lavin, S. Gray, "Fast Algorithms for Convolutional Neural Networks",
   CVPR 2016, arXiv:1509.09308, §4.2 (F(4x4, 3x3)).
"""

from __future__ import annotations

import numpy as np

__all__ = ["winograd_correlate", "winograd_weight"]

# G: 6 x 3, the kernel transform (the points 0, 1, -1, 2, -2 and infinity)
_G = np.array(
    [
        [1 / 4, 0, 0],
        [-1 / 6, -1 / 6, -1 / 6],
        [-1 / 6, 1 / 6, -1 / 6],
        [1 / 24, 1 / 12, 1 / 6],
        [1 / 24, -1 / 12, 1 / 6],
        [0, 0, 1],
    ]
)
TILE = 4  # outputs per tile and axis
SPAN = TILE + 2  # padded samples per tile and axis


def winograd_weight(weight: np.ndarray, groups: int, dtype: np.dtype) -> np.ndarray:
    """``(C_out, G, 3[, 3])`` -> ``(6^n, groups, C_out/groups, G)``: ``G g G^T`` per pair.

    The transform points are ordered as :func:`winograd_correlate` lays them
    out: the last spatial axis' point first.
    """
    n = weight.ndim - 2
    c_out, G = weight.shape[:2]
    w = weight.astype(np.complex128 if weight.dtype.kind == "c" else np.float64)
    if n == 1:
        m = np.einsum("ai,oci->aoc", _G, w)
    else:
        m = np.einsum("ai,bj,ocij->baoc", _G, _G, w)
    return np.ascontiguousarray(m.reshape(SPAN**n, groups, c_out // groups, G).astype(dtype))


def _bt(d, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """``B^T`` of the 6 samples ``d(0), ..., d(5)`` (arrays of `shape`): ``(6, *shape)``."""
    out = np.empty((SPAN, *shape), dtype=dtype)
    d1, d2, d3, d4 = d(1), d(2), d(3), d(4)
    np.multiply(d(0), 4, out=out[0])  # 4 d0 - 5 d2 + d4
    t = np.multiply(d2, 5)
    out[0] -= t
    out[0] += d4
    np.add(d1, d2, out=t)  # rows 1, 2: (d4 -+ d3) -+ 4 (d1 +- d2)
    t *= 4
    np.add(d3, d4, out=out[1])
    out[1] -= t
    np.subtract(d1, d2, out=t)
    t *= 4
    np.subtract(d4, d3, out=out[2])
    out[2] += t
    np.subtract(d3, d1, out=t)  # rows 3, 4: (d4 - d2) +- 2 (d3 - d1)
    t *= 2
    np.subtract(d4, d2, out=out[3])
    np.subtract(out[3], t, out=out[4])
    out[3] += t
    np.multiply(d3, 5, out=t)  # 4 d1 - 5 d3 + d5
    np.multiply(d1, 4, out=out[5])
    out[5] -= t
    out[5] += d(5)
    return out


def _at(m, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """``A^T`` of the 6 products ``m(0), ..., m(5)`` (arrays of `shape`): ``(4, *shape)``."""
    out = np.empty((TILE, *shape), dtype=dtype)
    m1, m2, m3, m4 = m(1), m(2), m(3), m(4)
    p = np.add(m1, m2)
    q = np.subtract(m1, m2)
    r = np.add(m3, m4)
    s = np.subtract(m3, m4)
    np.add(m(0), p, out=out[0])
    out[0] += r
    np.multiply(s, 2, out=out[1])
    out[1] += q
    np.multiply(r, 4, out=out[2])
    out[2] += p
    np.multiply(s, 8, out=out[3])
    out[3] += q
    out[3] += m(5)
    return out


def _strided_tiles(x: np.ndarray, axis: int, tiles: int) -> np.ndarray:
    """``B^T`` along `axis` on tiles 4 apart, read in place: ``(6, ...)`` with `axis` -> ``T``.

    For any axis but the last spatial one: the samples of one tile are whole
    rows of what follows, so every operand is a run of contiguous blocks.
    """
    idx = [slice(None)] * x.ndim
    shape = list(x.shape)
    shape[axis] = tiles

    def d(i: int) -> np.ndarray:
        idx[axis] = slice(i, i + TILE * (tiles - 1) + 1, TILE)
        return x[tuple(idx)]

    return _bt(d, tuple(shape), x.dtype)


def _gathered_tiles(x: np.ndarray, axis: int, tiles: int) -> np.ndarray:
    """``B^T`` along `axis` (followed only by the batch): tiles copied out first.

    ``(..., 4T+2, B)`` -> ``(6, ..., T, B)``: the windows ``x[..., 4t + j, :]`` are
    gathered into ``(6_j, ..., T, B)`` so that each ``d(j)`` is contiguous
    (measured: reading them strided, 4 apart, was the slowest step).
    """
    lead, B = x.shape[:axis], x.shape[-1]
    st = x.strides
    windows = np.lib.stride_tricks.as_strided(
        x,
        shape=(SPAN, *lead, tiles, B),
        strides=(st[axis], *st[:axis], TILE * st[axis], st[-1]),
        writeable=False,
    )
    g = np.ascontiguousarray(windows)
    return _bt(lambda j: g[j], g.shape[1:], x.dtype)


def winograd_correlate(
    xp: np.ndarray, m: np.ndarray, output_size: tuple[int, ...], c_out: int
) -> np.ndarray:
    """The 3-tap / 3x3 correlation of the padded signal `xp` with the transformed weight `m`.

    Parameters
    ----------
    xp : ndarray, shape (C_in, E_1[, E_2], B)
        The padded signal, ``E_a >= S_out,a + 2``.
    m : ndarray, shape (6^n, groups, C_out/groups, G)
        From :func:`winograd_weight`, in the dtype of `xp`.
    output_size : tuple of n ints
    c_out : int

    Returns
    -------
    y : ndarray, shape (C_out, *output_size, B)
        ``y[o, i] = sum_{c, k} w[o, c, k] xp[g(o) G + c, i + k]``.
    """
    n = len(output_size)
    C, B = xp.shape[0], xp.shape[-1]
    tiles = tuple(-(-s // TILE) for s in output_size)
    need = tuple(TILE * t + 2 for t in tiles)
    if any(e < q for e, q in zip(xp.shape[1:-1], need, strict=True)):  # zeros past the end
        grown = np.zeros((C, *need, B), dtype=xp.dtype)
        cut = tuple(slice(0, min(e, q)) for e, q in zip(xp.shape[1:-1], need, strict=True))
        grown[(slice(None), *cut)] = xp[(slice(None), *cut)]
        xp = grown
    # a new leading axis of 6 per spatial axis: (6_n, .., 6_1, C, T_1, .., T_n, B)
    v = xp
    for a in range(n - 1):
        v = _strided_tiles(v, 2 * a + 1, tiles[a])
    v = _gathered_tiles(v, 2 * n - 1, tiles[-1])
    points, groups, _, G = m.shape
    u = np.matmul(m, v.reshape(points, groups, G, -1))  # (6^n, groups, cog, T*B)
    u = u.reshape(*(SPAN,) * n, c_out, *tiles, B)
    # A^T on the 6-axes in turn (6_n first), each result's 4-axis in front:
    # (4_1, .., 4_n, C_out, T_1, .., T_n, B)
    for a in range(n):
        rest = u.shape[:a] + u.shape[a + 1 :]
        u = _at(lambda i, u=u, a=a: u[(slice(None),) * a + (i,)], rest, u.dtype)
    # -> (C_out, T_1, 4_1, .., T_n, 4_n, B)
    order = [n]
    for a in range(n):
        order += [n + 1 + a, a]
    order.append(2 * n + 1)
    y = u.transpose(order).reshape(c_out, *(TILE * t for t in tiles), B)
    if all(TILE * t == s for t, s in zip(tiles, output_size, strict=True)):
        return np.ascontiguousarray(y)
    return np.ascontiguousarray(y[(slice(None), *(slice(0, s) for s in output_size))])
