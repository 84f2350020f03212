r"""A Cholesky certificate for the norm of an N-d conv layer, block row by block row.

Also the same for the columns of a strip of samples on one axis (a principal
submatrix of the Gram matrix), which :mod:`._localize` uses for reflect and
replicate padding past the whole certificate's budget.

``||M|| < mu`` iff ``mu^2 I - M^H M`` is positive definite. Ordered pixel-major
(first axis, then the other axes, then the channel) the Gram matrix
``G = M^H M`` is block banded: with blocks of ``n = L_2 ... L_n C_in`` unknowns
(one slice of the first axis) block ``(h, h')`` is zero once
``|h - h'| > d_1 (K_1 - 1)``, for zero, reflect and replicate padding alike
(their source maps are 1-Lipschitz, so folding only brings samples closer).
Its blocks come from the weights directly (no products with ``M``):

.. math::

    G_{pp'} = \sum_{q} \sum_{k \in S(q, p)} \sum_{k' \in S(q, p')} W_k^H W_{k'}
            = \sum_{k, k'} \Big(\prod_a T_a[p_a, p'_a, k_a, k'_a]\Big) P_{k k'},
    \qquad P_{k k'} = W_k^H W_{k'} \in \mathbb{C}^{C_{in} \times C_{in}},

where ``S(q, p)`` are the taps by which output ``q`` reads sample ``p`` and
``T_a[p, p', k, k']`` counts the outputs ``q_a`` whose tap ``k`` reads ``p`` and
tap ``k'`` reads ``p'`` on axis ``a`` (the sum over ``q`` is a product of sums
over the axes). A block Cholesky factorisation of a block-banded matrix with
``H`` block rows and block bandwidth ``b`` costs about ``H (b^2 + b + 1/3) n^3``
flops (nominal; less here, see below) and keeps ``b + 1`` block rows
(``(b + 1)^2`` blocks; one row more when made ahead) in memory. ``M M^H`` (output
pixels, ``C_out`` channels, ``P_{kk'} = W_k W_{k'}^H`` and counts of the samples
two outputs share) has the same norm and is used when it is cheaper: a
stride-``s`` axis has ``L/s`` output slices coupled ``d(K-1)/s`` apart.

The factorisation is ``U^H U`` by block rows: row ``j`` (its diagonal block and
the ``b`` blocks right of it) is one Fortran array, solved and used in place by
column ranges (scipy's Cython BLAS/LAPACK called on sub-blocks, :class:`_SubBlas`);
only its pixel pairs that meet are written when a row is formed, into memory
recycled from finished rows. A full row's last block ``A_j,j+b`` is still ``G``'s
own block when its row is solved, zero above a staircase (pixels that do not
meet): its leading zero rows are skipped by ranges of columns, exactly (the
argument is in :func:`_row_tasks`), about ``4.3 n^3`` flops a row instead of
``6.3 n^3`` for ``b = 2`` (the flop counts quoted here and used for the budget
stay the nominal ones). For large blocks on more than one core a row's ranges
are tasks on the package's threads (one BLAS thread each), and the next pivot's
``potrf`` and the making of the row after next run beside the other updates
(lookahead); otherwise whole blocks on the caller's BLAS threads (``potrf`` on
one: OpenBLAS's threaded ``potrf`` stalls when the other core is busy). It stops
as soon as its rate shows it cannot finish before a deadline.
A nested-dissection order with dense fronts (multifrontal; George 1973, Duff &
Reid 1983) cuts the flops of 2-D layers only modestly here, the separators being
``d (K - 1)`` pixels wide and the fronts' borders twice that: 1.35x for 256
channels on 14x14, 1.9x for 128 on 28x28 (3x3). A prototype (commit 1aa95ea of
branch ``resnet``, reverted) proved the same bounds but ran at 15-27 GFLOP/s
against the band's ~100 (hundreds of fresh fronts: page faults, copies, extend-add),
so it took longer; it is not used.

Rounding (Demmel 1989; Rump, BIT 46 (2006) 433): if the floating-point Cholesky
factorisation of a symmetric ``A`` whose inner products have at most ``m``
terms runs to completion, ``A + dA = L L^H`` with
``|dA| <= gamma_m |L| |L^H|``, so ``||dA||_2 <= gamma_m ||L||_F^2 <=
gamma_m tr(A) / (1 - gamma_m)``; then ``A >= -||dA|| I``. With the rounding
``E`` of forming ``A = mu^2 I - G`` (``|E| <= gamma_t (|M|^H |M| + mu^2 I)``
entrywise, ``t`` roundings an entry), ``||M||^2 <= mu^2 + ||dA|| + ||E||``.

References
----------
.. [1] J. W. Demmel, "On floating point errors in Cholesky", LAPACK Working
   Note 14, 1989.
.. [2] S. M. Rump, "Verification of positive definiteness", BIT 46 (2006) 433-452.
.. [3] N. J. Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed.,
   SIAM 2002, Thm 10.3.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import itertools
import math
import time
from collections.abc import Callable
from typing import ClassVar, cast

import numpy as np

from .._geometry import ConvGeometry
from .._layer import Layer
from .._linop import LayerOperator
from .._threads import blas_threads, max_threads, run

_EPS = np.finfo(np.float64).eps
#: Blocks of at least this many unknowns are factorised on every core (:func:`_factorise`).
_THREADED_BLOCK = 256
#: Column ranges of a dense block, for the package's threads (:func:`_row_tasks`).
_DENSE_CHUNKS = 4
#: One more block row is made ahead (beside the updates) while a row takes at most this.
_AHEAD_BYTES = 512 * 2**20
#: Column ranges of a block row's last block whose leading zeros are skipped (:func:`_row_step`).
_PROFILE_CHUNKS = 8
_RATE: dict[str, float] = {}  # flop/s: "gemm" (measured once), "seen" (the last certificate)
_Task = Callable[[], None]

__all__ = ["block_gram_certificate", "block_gram_cost", "predicted_seconds"]


def _reach(g: ConvGeometry, side: str) -> int:
    """Block bandwidth along this axis: the largest ``|i - i'|`` of two coupled slices.

    ``'in'``: two samples read by one output; ``'out'``: two outputs that read one sample.
    """
    pos = g.positions(np.arange(g.output_length))
    valid = pos >= 0
    if not valid.any():
        return 0
    if side == "in":
        hi = np.where(valid, pos, -1).max(axis=1)
        lo = np.where(valid, pos, g.input_length).min(axis=1)
        return int(np.max(hi - lo, where=valid.any(axis=1), initial=0))
    rows = np.broadcast_to(np.arange(g.output_length)[:, None], pos.shape)[valid]
    lo = np.full(g.input_length, g.output_length)
    hi = np.full(g.input_length, -1)
    np.minimum.at(lo, pos[valid], rows)
    np.maximum.at(hi, pos[valid], rows)
    read = hi >= 0
    return int((hi[read] - lo[read]).max(initial=0))


def _axis_counts(g: ConvGeometry, side: str) -> tuple[np.ndarray, int]:
    """Per-axis pair counts of the Gram matrix on `side`, banded: ``(T, r)``.

    ``T[i, i' - i + r, k, k']`` (exact small integers, float64), ``r`` = :func:`_reach`:
    ``'in'`` (``M^H M``): the outputs whose tap ``k`` reads sample ``i`` and tap
    ``k'`` reads sample ``i'``, ``i`` in ``[0, L)``; ``'out'`` (``M M^H``): the
    samples read by tap ``k`` of output ``i`` and tap ``k'`` of output ``i'``,
    ``i`` in ``[0, L_out)``.
    """
    K, L_out = g.kernel_size, g.output_length
    pos = g.positions(np.arange(L_out))  # (L_out, K), -1 where zero padding
    valid = pos >= 0
    r = _reach(g, side)
    if side == "in":
        T = np.zeros((g.input_length, 2 * r + 1, K, K))
        for k in range(K):
            for k2 in range(K):
                ok = valid[:, k] & valid[:, k2]
                p, p2 = pos[ok, k], pos[ok, k2]
                np.add.at(T, (p, p2 - p + r, k, k2), 1.0)
        return T, r
    T = np.zeros((L_out, 2 * r + 1, K, K))
    for d in range(-r, r + 1):
        q = np.arange(max(0, -d), min(L_out, L_out - d))
        for k in range(K):
            for k2 in range(K):
                hit = valid[q, k] & (pos[q, k] == pos[q + d, k2])
                np.add.at(T, (q[hit], d + r, k, k2), 1.0)
    return T, r


def _full_counts(T: np.ndarray, r: int) -> np.ndarray:
    """The banded counts of :func:`_axis_counts` as a full ``(L, L, K, K)`` array."""
    L = T.shape[0]
    full = np.zeros((L, L, *T.shape[2:]))
    for d in range(-r, r + 1):
        i = np.arange(max(0, -d), min(L, L - d))
        full[i, i + d] = T[i, d + r]
    return full


def _plan(
    layer: Layer, window: tuple[int, int, int] | None = None
) -> tuple[str, int, float, float]:
    """``(side, axis, flops, bytes)`` of the cheapest Gram matrix and block axis.

    ``side`` is ``'in'`` (``M^H M``, ``C_in/groups`` channels on the input grid) or
    ``'out'`` (``M M^H``, ``C_out/groups`` on the output grid: fewer unknowns and
    a narrower band for strided layers). Blocking along axis ``a`` of ``H``
    slices with block bandwidth ``b`` and ``n`` unknowns a block costs about
    ``H (b^2 + b + 1/3) n^3`` flops (:func:`_band_flops`; times 4 for complex
    weights), per group.
    A `window` ``(axis, start, stop)`` keeps only those samples of that axis
    (the Gram matrix of ``M``'s columns there: side ``'in'`` only).
    """
    c_out, c_in = layer.out_channels // layer.groups, layer.in_channels // layer.groups
    kind = 4 if layer.weight.dtype.kind == "c" else 1
    itemsize = 16 if layer.weight.dtype.kind == "c" else 8
    k_total = math.prod(layer.kernel_size)
    inputs = list(layer.input_size)
    if window is not None:
        inputs[window[0]] = window[2] - window[1]
    sides = [("in", inputs, c_in)]
    if window is None:
        sides.append(("out", list(layer.output_size), c_out))
    best = None
    for side, sizes, chans in sides:
        total = math.prod(sizes)
        for a, g in enumerate(layer.geoms):
            H = sizes[a]
            b = min(_reach(g, side), H - 1)
            n = total // H * chans
            flops = layer.groups * kind * _band_flops(H, b, n)
            # b + 1 block rows of b + 1 blocks (one more row made ahead while it takes at
            # most _AHEAD_BYTES) and a block's pixel pairs; the products W_k^H W_k' and up
            # to 9 cached sums of them; the counts (float64)
            kr2 = (k_total // layer.kernel_size[a]) ** 2
            ahead = itemsize * (b + 1) * n * n <= _AHEAD_BYTES
            blocks = (b + 1) * (b + 1 + ahead) + 1
            rest = (total // H) ** 2 * kr2
            matrices = blocks * n * n + (k_total * chans) ** 2 + 9 * kr2 * chans * chans
            nbytes = float(itemsize * matrices + 8 * rest)
            if best is None or flops < best[2]:
                best = (side, a, flops, nbytes)
    return cast("tuple[str, int, float, float]", best)  # every layer has an axis


def block_gram_cost(
    layer: Layer, window: tuple[int, int, int] | None = None
) -> tuple[float, float]:
    """``(flops, bytes)`` of :func:`block_gram_certificate` on `layer` (estimates)."""
    return _plan(layer, window)[2:]


class _GramBlocks:
    """The blocks ``G[(h, .), (h', .)]`` of one group's Gram matrix, blocked along axis 0.

    `weight` is that group's ``(C_out/groups, C_in/groups, K_1, ..., K_n)``;
    ``side='in'``: ``G = M^H M`` (pixels of the input, channels ``c_in``);
    ``side='out'``: ``G = M M^H`` (pixels of the output, channels ``c_out``).
    A `window` ``(axis, start, stop)`` (``side='in'``) keeps the samples
    ``[start, stop)`` of that axis: the principal submatrix ``G[S, S]``, whose
    counts are ``T_axis[start:stop, start:stop]``.
    """

    def __init__(
        self,
        weight: np.ndarray,
        geoms: tuple[ConvGeometry, ...],
        side: str = "in",
        window: tuple[int, int, int] | None = None,
    ) -> None:
        axis, start, stop = (-1, 0, 0) if window is None else window
        ks = weight.shape[2:]
        k1, kr = ks[0], math.prod(ks[1:])
        if side == "in":  # P[k, k'] = W_k^H W_k'
            w2 = np.moveaxis(weight, 1, -1).reshape(weight.shape[0], -1)  # columns (k, c)
            P = w2.conj().T @ w2
        else:  # P[k, k'] = W_k W_k'^H
            w2 = np.moveaxis(weight, 0, -1).reshape(weight.shape[1], -1)  # columns (k, o)
            P = (w2.conj().T @ w2).conj()
        chans = w2.shape[1] // (k1 * kr)
        self.P = P.reshape(k1, kr, chans, k1, kr, chans)
        self.T1, self.r = _axis_counts(geoms[0], side)
        if axis == 0:  # banded (L, 2r + 1, K, K): only pairs inside the window are asked
            self.T1 = self.T1[start:stop]
        rest = np.ones((1, 1, 1, 1))
        for ax, g in enumerate(geoms[1:], start=1):
            T = _full_counts(*_axis_counts(g, side))
            if ax == axis:
                T = T[start:stop, start:stop]
            a, _, ka, _ = rest.shape
            L, _, K, _ = T.shape
            rest = np.einsum("abxy,cdzt->acbdxzyt", rest, T).reshape(a * L, a * L, ka * K, ka * K)
        self.pixels = rest.shape[0]
        Tm = rest.reshape(self.pixels**2, kr * kr)
        hit = np.nonzero(Tm.any(axis=1))[0]  # the pixel pairs that meet (a band)
        self.pair_rows, self.pair_cols = np.divmod(hit, self.pixels)
        self.Tm = Tm[hit]
        self.c_in, self.kr = chans, kr
        self.n = self.pixels * chans
        self._Q: dict[bytes, np.ndarray] = {}

    def _channel_blocks(self, t: np.ndarray) -> np.ndarray:
        """``Q[(j, j'), (c, c')] = sum_{a, b} t[a, b] P[(a, j, c), (b, j', c')]``, cached."""
        key = t.tobytes()
        if key not in self._Q:
            c, kr = self.c_in, self.kr
            Q = np.zeros((kr, c, kr, c), dtype=self.P.dtype)
            for a, b in zip(*np.nonzero(t), strict=True):
                Q += t[a, b] * self.P[a, :, :, b, :, :]
            if len(self._Q) > 8:  # the interior's counts repeat; the edges' are a few
                self._Q.clear()
            self._Q[key] = Q.transpose(0, 2, 1, 3).reshape(kr * kr, c * c)
        return self._Q[key]

    def fill(self, h: int, h2: int, out: np.ndarray, scale: float = 1.0) -> None:
        """Write ``scale G[(h, w, c), (h2, w', c')]`` into the zeros of the C-contiguous `out`.

        Only the ``(c, c)`` blocks of the pixel pairs that meet are written (from
        one GEMM of their counts with the channel blocks), one slice at a time
        (a fancy-indexed assignment makes large temporaries).
        """
        if abs(h2 - h) > self.r:
            return
        t = self.T1[h, h2 - h + self.r]  # (K_1, K_1)
        if not t.any():
            return
        c, pr = self.c_in, self.pixels
        with blas_threads(1):  # k = K^2: one thread streams it as fast, and never stalls
            vals = (self.Tm @ self._channel_blocks(t)).reshape(-1, c, c)
        if scale != 1.0:
            vals *= scale
        grid = out.reshape(pr, c, pr, c)
        for i, (p, p2) in enumerate(zip(self.pair_rows, self.pair_cols, strict=True)):
            grid[p, :, p2, :] = vals[i]

    def first_rows(self) -> np.ndarray:
        """``first[q]``: the rows of column ``q`` of ``out.T`` that :meth:`fill` may write.

        ``fill(h2, h, view)`` with ``view = out.T`` writes ``out[p, q]`` only for the
        pixel pairs that meet, ``(pixel(q), pixel(p))`` in ``(pair_rows, pair_cols)``
        (the same pairs for every ``(h, h2)``: only the scalar counts ``T_1`` depend
        on them); so ``out[p, q]`` stays zero for ``p < first[q]``, whatever the
        weights. Length ``n``; ``n`` for a column nothing reaches.
        """
        first = np.full(self.pixels, self.pixels)
        np.minimum.at(first, self.pair_rows, self.pair_cols)
        return np.repeat(first * self.c_in, self.c_in)

    def __call__(self, h: int, h2: int) -> np.ndarray:
        """``G[(h, w, c), (h2, w', c')]`` as an ``(n, n)`` array (rows ``(w, c)``)."""
        out = np.zeros((self.n, self.n), dtype=self.P.dtype)
        self.fill(h, h2, out)
        return out


def _abs_gram_rowsum(layer: Layer, side: str) -> float:
    """``max_j (|M|^H |M| 1)_j`` (``side='in'``) or ``max_i (|M| |M|^H 1)_i`` (``'out'``).

    Bounds the rounding of every Gram entry (per rounding).
    """
    op = LayerOperator(Layer(np.abs(layer.weight).astype(np.float64), layer.geoms, layer.groups))
    if side == "in":
        total = op.rmatvec(op.matvec(np.ones(op.shape[1])))
    else:
        total = op.matvec(op.rmatvec(np.ones(op.shape[0])))
    return float(total.max(initial=0.0)) * (1 + 1e-6)


def _band_flops(H: int, b: int, n: int) -> float:
    """Flops of the block Cholesky of ``H`` block rows of ``n`` unknowns, block bandwidth `b`.

    Row ``j`` with ``b_j = min(b, H - 1 - j)`` blocks right of the diagonal:
    ``potrf`` (``n^3/3``), one ``trsm`` (``b_j n^3``), ``b_j`` ``syrk``
    (``n^3`` each) and the ``gemm`` of the rest (``b_j (b_j - 1) n^3``).
    """
    return sum(_row_flops(min(b, H - 1 - j), n) for j in range(H))


def _row_flops(width: int, n: int) -> float:
    """Flops of a block row with `width` blocks right of its diagonal (:func:`_band_flops`)."""
    return (1 / 3 + width + width * width) * float(n) ** 3


def _blas_thread_limit() -> int:
    """Threads the BLAS may use now (the least over the loaded BLAS libraries).

    ``0`` without threadpoolctl, which the rows' tasks need to keep BLAS on one
    thread each; ``1`` when the caller limited BLAS to one thread (then the
    factorisation stays on one core, as the caller asked).
    """
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # pragma: no cover - threadpoolctl is optional
        return 0
    counts = [lib["num_threads"] for lib in threadpool_info() if lib.get("user_api") == "blas"]
    return min(counts, default=0)


class _Clock:
    """Progress of a factorisation against a `deadline` (``time.monotonic()``).

    :meth:`on_time` is false once the deadline has passed, or (after a tenth of the
    work) when the rate so far cannot finish the `total` flops before it.
    """

    def __init__(self, total: float, deadline: float | None) -> None:
        self.total, self.deadline = total, deadline
        self.done, self.start = 0.0, time.monotonic()

    def on_time(self, flops: float = 0.0) -> bool:
        self.done += flops
        if self.deadline is None:
            return True
        now = time.monotonic()
        if now >= self.deadline:
            return False
        if self.done < 0.1 * self.total:
            return True
        return self.start + (now - self.start) * self.total / self.done <= self.deadline


class _WholeBlas:
    """``potrf``, ``trsm``, ``herk``/``syrk`` and ``gemm`` in place, by scipy's f2py wrappers.

    In place on Fortran-contiguous arrays (the whole blocks and column slices of a
    block row); a view that is not (a trailing block ``A[f:, c0:c1]``) is copied by
    the wrapper, and the result is copied back. The fallback of :class:`_SubBlas`.
    """

    def __init__(self, dtype: np.dtype) -> None:
        from scipy.linalg.blas import get_blas_funcs
        from scipy.linalg.lapack import get_lapack_funcs

        probe = np.zeros(1, dtype=dtype)
        cplx = dtype.kind == "c"
        (self._potrf,) = get_lapack_funcs(("potrf",), (probe,))  # type: ignore[misc]
        self._trsm, self._gemm = get_blas_funcs(("trsm", "gemm"), (probe,))
        self._herk = get_blas_funcs("herk" if cplx else "syrk", (probe,))
        self._tr = 2 if cplx else 1  # conjugate transpose

    @staticmethod
    def _back(out: np.ndarray, target: np.ndarray) -> None:
        if out is not target:
            target[...] = out

    def potrf(self, A: np.ndarray) -> int:
        """``A = U^H U`` in place (upper triangle); LAPACK's ``info``."""
        U, info = self._potrf(A, lower=0, overwrite_a=1, clean=0)
        self._back(U, A)
        return int(info)

    def trsm(self, U: np.ndarray, B: np.ndarray) -> None:
        """``B <- U^{-H} B`` (`U` upper triangular)."""
        if not B.size:
            return
        X = self._trsm(1.0, U, B, side=0, lower=0, trans_a=self._tr, overwrite_b=1)
        self._back(X, B)

    def herk(self, X: np.ndarray, C: np.ndarray) -> None:
        """``C <- C - X^H X`` (upper triangle)."""
        if not (C.size and X.size):
            return
        out = self._herk(-1.0, X, beta=1.0, c=C, trans=self._tr, lower=0, overwrite_c=1)
        self._back(out, C)

    def gemm(self, X: np.ndarray, Y: np.ndarray, C: np.ndarray) -> None:
        """``C <- C - X^H Y``."""
        if not (C.size and X.size):
            return
        out = self._gemm(-1.0, X, Y, beta=1.0, c=C, trans_a=self._tr, overwrite_c=1)
        self._back(out, C)


def _capsule_function(module: object, name: str, nargs: int) -> Callable[..., None]:
    """The function `name` of scipy's Cython BLAS/LAPACK `module`; every argument a pointer.

    A ``CFUNCTYPE``: ctypes releases the GIL for the call.
    """
    capsule = module.__pyx_capi__[name]  # type: ignore[attr-defined]
    get_name = ctypes.PYFUNCTYPE(ctypes.c_char_p, ctypes.py_object)(
        ("PyCapsule_GetName", ctypes.pythonapi)
    )
    get_pointer = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.py_object, ctypes.c_char_p)(
        ("PyCapsule_GetPointer", ctypes.pythonapi)
    )
    address = get_pointer(capsule, get_name(capsule))
    return ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * nargs)(address)


class _SubBlas:
    """The operations of :class:`_WholeBlas` in place on any column-major view.

    Calls scipy's Cython BLAS/LAPACK (``scipy.linalg.cython_blas`` and
    ``cython_lapack``, through their ``__pyx_capi__`` capsules and ctypes) with
    the view's own leading dimension, so a trailing block ``A[f:, c0:c1]`` of a
    block row is updated where it lies (no copies), and the GIL is released
    while BLAS runs. :meth:`load` returns ``None`` where the capsules are not
    there (then :class:`_WholeBlas` is used on whole blocks).
    """

    _loaded: ClassVar[dict[str, _SubBlas | None]] = {}

    def __init__(self, dtype: np.dtype) -> None:
        from scipy.linalg import cython_blas, cython_lapack

        self.dtype = np.dtype(dtype)
        cplx = self.dtype.kind == "c"
        z = "z" if cplx else "d"
        self._potrf = _capsule_function(cython_lapack, z + "potrf", 5)
        self._trsm = _capsule_function(cython_blas, z + "trsm", 11)
        self._herk = _capsule_function(cython_blas, "zherk" if cplx else "dsyrk", 10)
        self._gemm = _capsule_function(cython_blas, z + "gemm", 13)
        self._chars = {c: ctypes.c_char(c.encode()) for c in "LRUNTCDN"}
        self._tr = "C" if cplx else "T"
        self._one = np.ones(1, dtype=self.dtype)
        self._minus = -self._one
        self._real_one, self._real_minus = np.ones(1), -np.ones(1)  # herk's alpha, beta

    @classmethod
    def load(cls, dtype: np.dtype) -> _SubBlas | None:
        """The routines for `dtype` (float64 or complex128), or ``None`` if unavailable."""
        key = np.dtype(dtype).str
        if key not in cls._loaded:
            try:
                cls._loaded[key] = cls(dtype)
            except (ImportError, AttributeError, KeyError, TypeError, ValueError, OSError):
                cls._loaded[key] = None
        return cls._loaded[key]

    def _char(self, c: str) -> int:
        return ctypes.addressof(self._chars[c])

    def _matrix(self, A: np.ndarray) -> tuple[int, ctypes.c_int]:
        """``(pointer, leading dimension)`` of the column-major view `A` (checked)."""
        if A.dtype != self.dtype or A.ndim != 2:
            raise TypeError(f"A: a 2-d {self.dtype} view expected, got {A.dtype} {A.shape}")
        rows, cols = A.shape
        size = self.dtype.itemsize
        if rows > 1 and A.strides[0] != size:
            raise ValueError("A: its columns must be contiguous (a column-major view)")
        ld = A.strides[1] // size if cols > 1 else rows
        if ld < max(rows, 1) or (cols > 1 and A.strides[1] % size):
            raise ValueError(f"A: leading dimension {ld} below its {rows} rows")
        return A.ctypes.data, ctypes.c_int(max(ld, 1))

    def potrf(self, A: np.ndarray) -> int:
        if A.shape[0] != A.shape[1]:
            raise ValueError(f"A: a square block expected, got {A.shape}")
        a, lda = self._matrix(A)
        n, info = ctypes.c_int(A.shape[0]), ctypes.c_int(0)
        self._potrf(
            self._char("U"), ctypes.addressof(n), a, ctypes.addressof(lda), ctypes.addressof(info)
        )
        return info.value

    def trsm(self, U: np.ndarray, B: np.ndarray) -> None:
        if not B.size:
            return
        if U.shape != (B.shape[0], B.shape[0]):
            raise ValueError(f"U: shape {U.shape} does not match B's {B.shape}")
        u, ldu = self._matrix(U)
        x, ldb = self._matrix(B)
        m, n = ctypes.c_int(B.shape[0]), ctypes.c_int(B.shape[1])
        ref = ctypes.addressof
        self._trsm(
            self._char("L"), self._char("U"), self._char(self._tr), self._char("N"),
            ref(m), ref(n), self._one.ctypes.data, u, ref(ldu), x, ref(ldb),
        )  # fmt: skip

    def herk(self, X: np.ndarray, C: np.ndarray) -> None:
        k, n = X.shape
        if C.shape != (n, n):
            raise ValueError(f"C: shape {C.shape} does not match X's {X.shape}")
        if not (n and k):
            return
        x, ldx = self._matrix(X)
        c, ldc = self._matrix(C)
        cn, ck = ctypes.c_int(n), ctypes.c_int(k)
        ref = ctypes.addressof
        cplx = self.dtype.kind == "c"
        alpha, beta = (self._real_minus, self._real_one) if cplx else (self._minus, self._one)
        self._herk(
            self._char("U"), self._char(self._tr), ref(cn), ref(ck),
            alpha.ctypes.data, x, ref(ldx), beta.ctypes.data, c, ref(ldc),
        )  # fmt: skip

    def gemm(self, X: np.ndarray, Y: np.ndarray, C: np.ndarray) -> None:
        k, m = X.shape
        if Y.shape[0] != k or C.shape != (m, Y.shape[1]):
            raise ValueError(f"shapes X {X.shape}, Y {Y.shape}, C {C.shape} do not match")
        if not (C.size and k):
            return
        x, ldx = self._matrix(X)
        y, ldy = self._matrix(Y)
        c, ldc = self._matrix(C)
        cm, cn, ck = ctypes.c_int(m), ctypes.c_int(Y.shape[1]), ctypes.c_int(k)
        ref = ctypes.addressof
        self._gemm(
            self._char(self._tr), self._char("N"), ref(cm), ref(cn), ref(ck),
            self._minus.ctypes.data, x, ref(ldx), y, ref(ldy), self._one.ctypes.data, c, ref(ldc),
        )  # fmt: skip


def _chunks(first: np.ndarray, count: int, unit: int) -> list[tuple[int, int, int]]:
    """``(c0, c1, f)``: `count` column ranges of a block (multiples of `unit`) and the
    first row ``f = min(first[c0:c1])`` any of their columns may hold."""
    n = first.size
    cuts = sorted({unit * round(k * (n // unit) / count) for k in range(count)} | {n})
    return [(a, c, int(first[a:c].min())) for a, c in itertools.pairwise(cuts) if c > a]


def _factorise(
    blocks: _GramBlocks,
    H: int,
    b: int,
    mu2: float,
    clock: _Clock,
    ops: _SubBlas | _WholeBlas | None = None,
    chunks: int | None = None,
) -> float | None:
    """Block Cholesky ``U^H U`` of ``mu^2 I - G`` (``H`` block rows, block bandwidth `b`).

    Returns the trace of ``mu^2 I - G`` when every pivot block is positive
    definite, ``None`` when one is not or the `clock` runs out. Block row ``i``
    (its diagonal block and the ``b_i`` blocks right of it) is one Fortran
    array, made when first touched and updated in place by LAPACK/BLAS
    (``potrf``, ``trsm``, ``syrk``/``herk``, ``gemm``); ``b + 1`` rows are alive.
    `ops`: :class:`_SubBlas` by default (:class:`_WholeBlas` where it is
    unavailable). The last block of a full row is solved and used in `chunks`
    column ranges (default :data:`_PROFILE_CHUNKS` with :class:`_SubBlas`, 1
    with :class:`_WholeBlas`): see :func:`_row_tasks`.

    Blocks of at least :data:`_THREADED_BLOCK` unknowns with :class:`_SubBlas`,
    more than one CPU and BLAS allowed more than one thread (threadpoolctl) run
    a row's tasks on the package's threads, and with them (lookahead) the
    ``potrf`` of the next pivot, once its block is updated, and the making of
    the row ``j + b + 1``, one more row alive while it takes at most
    :data:`_AHEAD_BYTES`. Otherwise the tasks run in order in this thread on
    whole blocks (BLAS threads as the caller set them; ``potrf`` on one).
    """
    n, dtype = blocks.n, blocks.P.dtype
    cplx = dtype.kind == "c"
    if ops is None:
        ops = _SubBlas.load(dtype) or _WholeBlas(dtype)
    if chunks is None:
        chunks = _PROFILE_CHUNKS if isinstance(ops, _SubBlas) else 1
    profile = _chunks(blocks.first_rows(), max(1, chunks), blocks.c_in) if b else []
    diag = np.arange(n) * (n + 1)
    rows: dict[int, np.ndarray] = {}
    spare: list[np.ndarray] = []  # a finished row's memory, for the next (no page faults)
    trace = 0.0

    def row(i: int) -> np.ndarray:
        """Block row ``i`` of ``mu^2 I - G``: ``[A_ii, A_i,i+1, ..., A_i,i+b_i]``, Fortran.

        Made by one thread at a time (the caller's, or one task beside the updates).
        """
        nonlocal trace
        if i not in rows:
            width = min(b, H - 1 - i)
            if spare and spare[-1].shape[1] >= (width + 1) * n:
                R = spare.pop()[:, : (width + 1) * n]
            else:
                R = np.empty((n, (width + 1) * n), dtype=dtype, order="F")
            R.fill(0)  # fresh pages in order: writing them scattered costs ~5x more
            for d in range(width + 1):
                # A_i,i+d in Fortran order is (A_i,i+d)^T = -conj(G_i+d,i) in C order
                view = R[:, d * n : (d + 1) * n].T
                blocks.fill(i + d, i, view, -1.0)
                if cplx:
                    np.conjugate(view, out=view)
            first = R.reshape(-1, order="F")[: n * n]  # A_ii, flat (a view)
            first[diag] += mu2
            trace += float(np.abs(first[diag]).sum())
            rows[i] = R
        return rows[i]

    # every core: the package's threads run the tasks of a row (one BLAS thread each),
    # the next pivot's potrf and the making of the row after next beside the updates
    parallel = (
        isinstance(ops, _SubBlas)
        and n >= _THREADED_BLOCK
        and max_threads() > 1
        and _blas_thread_limit() > 1
    )
    dense = _chunks(np.zeros(n, dtype=int), _DENSE_CHUNKS, blocks.c_in) if parallel else [(0, n, 0)]
    ahead = parallel and (b + 1) * n * n * dtype.itemsize <= _AHEAD_BYTES
    pivots: dict[int, int] = {}  # LAPACK's info of the potrf done ahead

    def pivot(i: int, R: np.ndarray) -> None:
        pivots[i] = ops.potrf(R[:, :n])

    def make(i: int) -> None:
        row(i)

    with blas_threads(1) if parallel else contextlib.nullcontext():
        for j in range(H):
            width = min(b, H - 1 - j)
            if not clock.on_time():
                return None
            R = row(j)
            if j not in pivots:
                with blas_threads(1):  # OpenBLAS's threaded potrf stalls when a core is busy
                    pivot(j, R)
            if pivots.pop(j) != 0:
                return None
            if width:
                # the last block is G's own (untouched) only in a full row: see _row_tasks
                last = profile if width == b else dense
                below = [row(j + d) for d in range(1, width + 1)]
                if parallel:
                    solve, first, rest = _row_tasks(ops, R, below, n, last, dense)
                    run(solve)
                    run(first)
                    extra: list[_Task] = [functools.partial(pivot, j + 1, below[0])]
                    if ahead and j + b + 1 < H:
                        extra.append(functools.partial(make, j + b + 1))
                    run(extra + rest)  # the pool takes them in order: the pivot first
                else:
                    _row_step(ops, R, below, n, last)
            spare.append(rows.pop(j))
            clock.on_time(_row_flops(width, n) * (4 if cplx else 1))
    return trace


def _row_tasks(
    ops: _SubBlas | _WholeBlas,
    R: np.ndarray,
    below: list[np.ndarray],
    n: int,
    last: list[tuple[int, int, int]],
    dense: list[tuple[int, int, int]],
) -> tuple[list[_Task], list[_Task], list[_Task]]:
    """Solve block row ``R = [U_jj, A_j,j+1 .. A_j,j+w]`` and update the `w` rows `below`.

    ``X = U_jj^{-H} [A_j,j+1 .. A_j,j+w]`` in place, then
    ``A_j+d,j+e -= X_d^H X_e`` for ``1 <= d <= e <= w`` (rows ``below[d - 1]``;
    upper triangles of the diagonal blocks), as three lists of tasks, each
    list's tasks independent (disjoint targets): the solve, the update of the
    next pivot block ``A_j+1,j+1``, and the other updates. Every block is
    worked on by column ranges ``(c0, c1, f)``: `dense` for the blocks
    ``X_1 .. X_w-1``, `last` for ``X_w``; a diagonal block's range is the
    ``gemm`` of the rows above it and the ``herk`` of its square.

    Rows above ``f`` are skipped: zero in `dense`; in `last` (a full row's last
    block) the structural zeros of ``A_j,j+w``. Why that is exact: in a full
    row (``w = b``) ``A_j,j+b`` is still ``-G_j,j+b`` as formed (row ``j' < j``
    updates blocks ``(i, i')`` with ``i' <= j' + b < j + b`` only), and a formed
    block is exactly zero at every pixel pair that does not meet
    (:meth:`_GramBlocks.first_rows`). ``U_jj^H`` being lower triangular, forward
    substitution leaves those leading zero rows of ``X_w`` exactly zero (every
    term is ``0 * u``), so the solve on ``U[f:, f:]`` is the same computation
    without those terms; so are the products ``X_d^H X_w``, ``X_w^H X_w`` summed
    over rows ``f:`` only. Each entry's inner product has the same terms less
    exact zeros, so the rounding bound of the module docstring (``m`` terms) holds
    unchanged; about ``4.3 n^3`` flops instead of ``6.3 n^3`` for ``b = 2``.
    """
    w = len(below)
    U, X = R[:, :n], R[:, n:]

    def cols(e: int) -> list[tuple[int, int, int]]:
        return last if e == w else dense

    solve: list[_Task] = [
        functools.partial(ops.trsm, U[f:, f:], X[f:, (e - 1) * n + c0 : (e - 1) * n + c1])
        for e in range(1, w + 1)
        for c0, c1, f in cols(e)
    ]
    pivot: list[_Task] = []
    rest: list[_Task] = []
    for d in range(1, w + 1):
        target, Xd = below[d - 1], X[:, (d - 1) * n : d * n]
        out = pivot if d == 1 else rest
        for c0, c1, f in cols(d):
            if c0:
                out.append(
                    functools.partial(ops.gemm, Xd[f:, :c0], Xd[f:, c0:c1], target[:c0, c0:c1])
                )
            out.append(functools.partial(ops.herk, Xd[f:, c0:c1], target[c0:c1, c0:c1]))
        for e in range(d + 1, w + 1):
            at, Xe = (e - d) * n, X[:, (e - 1) * n : e * n]
            for c0, c1, f in cols(e):
                C = target[:, at + c0 : at + c1]
                rest.append(functools.partial(ops.gemm, Xd[f:], Xe[f:, c0:c1], C))
    return solve, pivot, rest


def _row_step(
    ops: _SubBlas | _WholeBlas,
    R: np.ndarray,
    below: list[np.ndarray],
    n: int,
    last: list[tuple[int, int, int]],
    dense: list[tuple[int, int, int]] | None = None,
) -> None:
    """:func:`_row_tasks` run in order in this thread (`dense`: whole blocks by default)."""
    for tasks in _row_tasks(ops, R, below, n, last, dense or [(0, n, 0)]):
        for task in tasks:
            task()


def block_gram_certificate(
    layer: Layer,
    mu: float,
    deadline: float | None = None,
    window: tuple[int, int, int] | None = None,
) -> float | None:
    r"""Prove ``||M|| <= ~mu`` by a block Cholesky factorisation of ``mu^2 I - M^H M``.

    Any number of spatial axes; padding ``'zeros'``, ``'reflect'`` or
    ``'replicate'`` (circular padding that does not cover one period wraps the
    band: ``None``). The groups are independent diagonal blocks of the Gram
    matrix and are factorised one by one. Returns ``mu`` lifted by the rounding
    margins of the module docstring, or ``None`` when a pivot is not positive
    (``mu`` may be too small) or the `deadline` (``time.monotonic()``) passes
    or, at the rate reached so far, would pass before the end.
    With a `window` ``(axis, start, stop)`` the same for ``M[:, S]``, the
    columns of the input samples ``[start, stop)`` on that axis (every sample
    of the other axes): its Gram matrix is the principal submatrix ``G[S, S]``.
    Blocks of at least :data:`_THREADED_BLOCK` unknowns are factorised on every
    core (:func:`_factorise`), smaller ones on one.
    """
    if any(g.padding_mode == "circular" for g in layer.geoms) or not mu > 0:
        return None
    side, axis, flops, _ = _plan(layer, window)
    order = [axis, *(a for a in range(layer.ndim) if a != axis)]
    weight = np.moveaxis(layer.weight, [2 + a for a in order], list(range(2, 2 + layer.ndim)))
    geoms = tuple(layer.geoms[a] for a in order)
    H = (layer.input_size if side == "in" else layer.output_size)[axis]
    local = None
    if window is not None:
        local = (order.index(window[0]), window[1], window[2])
        if window[0] == axis:
            H = window[2] - window[1]
    b = min(_reach(geoms[0], side), H - 1)
    c_out = weight.shape[0] // layer.groups
    mu2 = mu * mu
    trace, n = 0.0, 1
    clock = _Clock(flops, deadline)
    for grp in range(layer.groups):
        blocks = _GramBlocks(weight[grp * c_out : (grp + 1) * c_out], geoms, side, local)
        with blas_threads(max_threads() if blocks.n >= _THREADED_BLOCK else 1):
            part = _factorise(blocks, H, b, mu2, clock)
        if part is None:
            return None
        trace, n = trace + part, blocks.n
    elapsed = time.monotonic() - clock.start
    if flops >= 1e10 and elapsed > 0:
        _RATE["seen"] = flops / elapsed
    m = (b + 1) * n + 2  # terms of each inner product of the factorisation
    gamma = m * _EPS / (1 - m * _EPS)
    chol = 2 * gamma / (1 - gamma) * trace
    k_total = math.prod(layer.kernel_size)
    inner = c_out if side == "in" else weight.shape[1]  # terms of one W_k^H W_k' entry
    t = inner + 2 * k_total * k_total + 4  # roundings of one Gram entry, and of mu^2 - g
    form = 2 * t * _EPS * (_abs_gram_rowsum(layer, side) + mu2)
    return math.sqrt(mu2 + chol + form) * (1 + 8 * _EPS)


def predicted_seconds(flops: float) -> float:
    """Seconds :func:`block_gram_certificate` is expected to take for `flops` (an estimate).

    At the rate the last large certificate reached in this process, else at a
    measured one-thread GEMM's rate (``768 x 768``, timed once per process; a
    two-thread GEMM's is erratic on a shared machine) times 0.7 on one core (the
    factorisation reaches 65-90% of a GEMM's rate, and the blocks are formed at
    memory speed) or 1.0 on more (a second BLAS thread adds 40-100%).
    """
    rate = _RATE.get("seen")
    if rate is None:
        if "gemm" not in _RATE:
            A = np.random.default_rng(0).standard_normal((768, 768))
            best = math.inf
            with blas_threads(1):
                for _ in range(3):
                    t = time.perf_counter()
                    A @ A
                    best = min(best, time.perf_counter() - t)
            _RATE["gemm"] = 2 * 768**3 / max(best, 1e-9)
        rate = (1.0 if max_threads() > 1 else 0.7) * _RATE["gemm"]
    return flops / rate
