"""The numpy forward and adjoint passes of a conv layer, on signals laid out ``(C, L, B)``.

One implementation serves :func:`~toeplitz_conv.conv1d`,
:func:`~toeplitz_conv.conv_transpose1d` and the matrix-free operators. Signals
are ``(channel, position, batch)``: a trailing batch of ``B`` columns, which is
exactly how a ``LinearOperator``'s ``matmat`` receives ``X`` of shape
``(C*L, B)``. The forward pass copies the (padded) signal's windows for a block
of output positions into a patch matrix of ``G*K x (block*B)`` columns and
multiplies it by the weight in one BLAS call per block (blocks are sized to stay
in cache); the adjoint multiplies first and scatters the ``K`` tap rows back
with adds (for a stride ``s > 1`` into ``s`` phase buffers, where they are
contiguous, then interleaved), then folds the padding onto the signal (``src``
of :class:`~toeplitz_conv._geometry.ConvGeometry`).
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from ._geometry import ConvGeometry

__all__ = ["Kernel"]

# Patch blocks of at most this many bytes. A real GEMM (many output channels per group) runs
# fastest on large blocks; a thin one (a few channels) streams, and is fastest in cache.
_BLOCK_BYTES = 1 << 24
_THIN_BLOCK_BYTES = 1 << 20
_THIN_GEMM = 16  # output channels per group below which the product is thin
_MIN_BLOCK_COLS = 512


def _block_positions(
    rows: int, cols_per_position: int, itemsize: int, L_out: int, thin: bool
) -> int:
    """Output positions per block so that a ``rows x (block*B)`` patch fits the budget."""
    per_position = max(1, rows * cols_per_position * itemsize)
    budget = _THIN_BLOCK_BYTES if thin else _BLOCK_BYTES
    block = max(_MIN_BLOCK_COLS // max(1, cols_per_position), budget // per_position, 1)
    return min(L_out, block)


def _needed_end(geom: ConvGeometry) -> int:
    """One past the last padded position any tap reads: ``(L_out-1)s + d(K-1) - p_l + 1``."""
    return (geom.output_length - 1) * geom.stride + geom.dilation * (geom.kernel_size - 1) + 1


def _pad(x: np.ndarray, geom: ConvGeometry, scratch=None) -> np.ndarray:
    """The padded signal ``x~[:, j + p_l, :]`` for ``j`` in ``[-p_l, needed_end - p_l)``.

    ``x`` has shape ``(C, L, B)``; returns shape ``(C, needed_end, B)`` (a view
    when no padding is read).
    """
    L, p_l = geom.input_length, geom.pad_left
    end = _needed_end(geom)  # in padded coordinates, i.e. j + p_l
    if p_l == 0 and end <= L:
        return x[:, :end]
    shape = (x.shape[0], end, x.shape[2])
    out = scratch(shape, x.dtype) if scratch is not None else np.empty(shape, dtype=x.dtype)
    lo = min(p_l, end)
    hi = max(lo, min(end, p_l + L))  # buffer [lo, hi) is inside the signal
    out[:, lo:hi] = x[:, : hi - lo]
    edge = np.r_[0:lo, hi:end]
    if edge.size:
        src = geom.src(edge - p_l)
        if geom.padding_mode == "zeros":
            out[:, edge] = 0
        else:
            out[:, edge] = x[:, src]
    return out


def _fold(gp: np.ndarray, geom: ConvGeometry) -> np.ndarray:
    """The adjoint of :func:`_pad`: add the padded gradient back onto the signal.

    ``gp`` has shape ``(C, needed_end, B)``; returns ``(C, L, B)``, contiguous.
    """
    L, p_l = geom.input_length, geom.pad_left
    end = gp.shape[1]
    lo = min(p_l, end)
    hi = max(lo, min(end, p_l + L))
    if lo == 0 and hi - lo == L and end == L:
        return gp
    g = np.empty((gp.shape[0], L, gp.shape[2]), dtype=gp.dtype)
    g[:, : hi - lo] = gp[:, lo:hi]
    g[:, hi - lo :] = 0
    if geom.padding_mode != "zeros":
        edge = np.r_[0:lo, hi:end]
        if edge.size:
            src = geom.src(edge - p_l)
            np.add.at(g, (slice(None), src), gp[:, edge])
    return g


def _small_matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """``out = a @ b`` for stacks; a contraction of a few terms is done by broadcasting.

    BLAS is slow for outer products (an inner dimension of 1 or 2, as for a
    one-channel layer's adjoint), where multiply-adds stream at memory speed.
    """
    inner = a.shape[-1]
    if inner > 4:
        np.matmul(a, b, out=out)
        return
    np.multiply(a[..., :, :1], b[..., :1, :], out=out)
    for j in range(1, inner):
        out += a[..., :, j : j + 1] * b[..., j : j + 1, :]


class Kernel:
    """The weight and geometry of one conv, and its forward and adjoint passes.

    ``weight`` has shape ``(C_out, G, K)`` in the compute dtype.
    """

    def __init__(self, weight: np.ndarray, geom: ConvGeometry, groups: int) -> None:
        self.weight = weight
        self.geom = geom
        self.groups = groups
        c_out, G, K = weight.shape
        self.c_out, self.G, self.K = c_out, G, K
        self.c_in = G * groups
        self.thin = c_out // groups < _THIN_GEMM
        # (groups, C_out/groups, G*K): the weight of each group's patch product
        self.w_g = np.ascontiguousarray(weight.reshape(groups, c_out // groups, G * K))
        self.w_gh = np.ascontiguousarray(self.w_g.conj().transpose(0, 2, 1))
        self._cast: dict[np.dtype, tuple[np.ndarray, np.ndarray]] = {}
        # scratch buffers kept between calls: fresh large arrays cost page faults each time
        self._spare: dict[tuple, list[np.ndarray]] = {}

    def _take(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        try:  # list.pop is atomic: concurrent calls just allocate their own
            return self._spare.get((shape, np.dtype(dtype)), []).pop()
        except IndexError:
            return np.empty(shape, dtype=dtype)

    def _give(self, a: np.ndarray) -> None:
        if len(self._spare) > 8:  # many batch sizes: start over rather than hoard
            self._spare = {}
        spare = self._spare.setdefault((a.shape, a.dtype), [])
        if len(spare) < 2:
            spare.append(a)

    def weights_as(self, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
        if dtype == self.w_g.dtype:
            return self.w_g, self.w_gh
        if dtype not in self._cast:
            self._cast[dtype] = (self.w_g.astype(dtype), self.w_gh.astype(dtype))
        return self._cast[dtype]

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``(C_in, L, B) -> (C_out, L_out, B)``."""
        geom = self.geom
        s, d, K, G, groups = geom.stride, geom.dilation, self.K, self.G, self.groups
        L_out, B = geom.output_length, x.shape[2]
        w_g, _ = self.weights_as(x.dtype)
        xp = _pad(x, geom, self._take)
        y = np.empty((self.c_out, L_out, B), dtype=x.dtype)
        y_g = y.reshape(groups, self.c_out // groups, L_out * B)
        block = _block_positions(G * K, B, x.dtype.itemsize, L_out, self.thin)
        cols = self._take((self.c_in, K, block, B), x.dtype)
        phases = None
        if s > 1:  # polyphase split: then every tap's window is a contiguous slice
            end = xp.shape[1]
            phases = self._take((s, self.c_in, -(-end // s), B), x.dtype)
            for r in range(s):
                phases[r, :, : -(-(end - r) // s)] = xp[:, r::s]
        for i0 in range(0, L_out, block):
            n = min(block, L_out - i0)
            c = cols[:, :, :n] if n < block else cols
            c2, xp2 = (c[..., 0], xp[..., 0]) if B == 1 else (c, xp)  # 2-D copies are faster
            for k in range(K):
                start = i0 * s + k * d
                if phases is None:
                    c2[:, k] = xp2[:, start : start + n]
                else:
                    q, r = divmod(start, s)
                    c[:, k] = phases[r, :, q : q + n]
            np.matmul(
                w_g,
                c.reshape(groups, G * K, n * B),
                out=y_g[:, :, i0 * B : (i0 + n) * B],
            )
        self._give(cols)
        if phases is not None:
            self._give(phases)
        if xp.base is None:
            self._give(xp)
        return y

    @cached_property
    def flipped(self) -> Kernel:
        r"""For stride 1, the adjoint as a forward pass: the correlation of the zero-padded
        output with the conjugated, transposed and flipped kernel,

        .. math::

            \tilde g[c, j] = \sum_{o, k} \overline{W[o, c, K-1-k]}\, \tilde y[o, j + k d],

        with ``y`` padded by ``d(K-1)`` zeros on both sides: one patch copy and one
        GEMM, instead of a GEMM and ``K`` scattered adds.
        """
        geom, K, G, groups = self.geom, self.K, self.G, self.groups
        cog = self.c_out // groups
        w = self.weight.conj().reshape(groups, cog, G, K)[..., ::-1]
        w = np.ascontiguousarray(w.transpose(0, 2, 1, 3).reshape(self.c_in, cog, K))
        span = geom.dilation * (K - 1)
        g = ConvGeometry(
            geom.output_length, K, 1, geom.dilation, span, span, "zeros", _needed_end(geom)
        )
        return Kernel(w, g, groups)

    def adjoint(self, y: np.ndarray) -> np.ndarray:
        """``(C_out, L_out, B) -> (C_in, L, B)``: the transposed convolution."""
        geom = self.geom
        s, d, K, G, groups = geom.stride, geom.dilation, self.K, self.G, self.groups
        if s == 1 and self.thin:  # measured: faster for thin layers, slower for thick ones
            return _fold(self.flipped.forward(y), geom)
        L_out, B = geom.output_length, y.shape[2]
        _, w_gh = self.weights_as(y.dtype)
        end = _needed_end(geom)
        y_g = y.reshape(groups, self.c_out // groups, L_out * B)
        block = _block_positions(G * K, B, y.dtype.itemsize, L_out, self.thin)
        z = self._take((self.c_in, K, block, B), y.dtype)
        if s > 1:
            gp = self._adjoint_polyphase(y_g, w_gh, z, block, end)
            self._give(z)
            return _fold(gp, geom)
        # stride 1: tap 0 of each block covers [i0, i0 + n): assign it, add the others
        gp = np.empty((self.c_in, end, B), dtype=y.dtype)
        gp[:, L_out:] = 0
        # last block first: a block's later taps add onto the next block's assigned tap 0
        for i0 in reversed(range(0, L_out, block)):
            n = min(block, L_out - i0)
            zz = z[:, :, :n] if n < block else z
            _small_matmul(w_gh, y_g[:, :, i0 * B : (i0 + n) * B], zz.reshape(groups, G * K, n * B))
            gp2, zz2 = (gp[..., 0], zz[..., 0]) if B == 1 else (gp, zz)  # 2-D adds are faster
            for k in range(K):
                start = i0 + k * d
                if k == 0:
                    gp2[:, start : start + n] = zz2[:, 0]
                else:
                    gp2[:, start : start + n] += zz2[:, k]
        self._give(z)
        return _fold(gp, geom)

    def _adjoint_polyphase(
        self, y_g: np.ndarray, w_gh: np.ndarray, z: np.ndarray, block: int, end: int
    ) -> np.ndarray:
        """Stride ``s > 1``: scatter the taps into ``s`` phase buffers, then interleave.

        Tap ``k`` of output ``i`` lands on padded position ``i s + k d``: phase
        ``(k d) mod s``, index ``i + (k d) // s`` in it. So every tap's rows add
        onto a contiguous slice of its phase buffer (instead of a stride-``s``
        slice of the signal), and when one block covers the output, the first
        tap of each phase is assigned rather than added onto zeros (measured on
        64->128 K=5 stride 2: the scatter takes 0.24 ms instead of 0.39).
        Returns the padded gradient ``(C_in, end, B)``.
        """
        geom, K, G, groups = self.geom, self.K, self.G, self.groups
        s, d, L_out, B = geom.stride, geom.dilation, geom.output_length, z.shape[3]
        dtype = z.dtype
        P = -(-end // s)
        phases = self._take((s, self.c_in, P, B), dtype)
        q, r = np.divmod(np.arange(K) * d, s)
        single = block >= L_out
        assigned = np.zeros(s, dtype=bool)
        if single:  # assign each phase's first tap; zero what it does not cover
            for ph in range(s):
                taps = np.nonzero(r == ph)[0]
                if taps.size:
                    q0 = int(q[taps[0]])
                    phases[ph, :, :q0] = 0
                    phases[ph, :, q0 + L_out :] = 0
                else:
                    phases[ph] = 0
        else:
            phases[...] = 0
        for i0 in range(0, L_out, block):
            n = min(block, L_out - i0)
            zz = z[:, :, :n] if n < block else z
            _small_matmul(w_gh, y_g[:, :, i0 * B : (i0 + n) * B], zz.reshape(groups, G * K, n * B))
            ph2, zz2 = (phases[..., 0], zz[..., 0]) if B == 1 else (phases, zz)
            for k in range(K):
                ph, start = int(r[k]), i0 + int(q[k])
                if single and not assigned[ph]:
                    ph2[ph, :, start : start + n] = zz2[:, k]
                    assigned[ph] = True
                else:
                    ph2[ph, :, start : start + n] += zz2[:, k]
        gp = np.empty((self.c_in, end, B), dtype=dtype)
        for ph in range(s):
            gp[:, ph::s] = phases[ph, :, : -(-(end - ph) // s)]
        self._give(phases)
        return gp
