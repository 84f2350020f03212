r"""The numpy forward and adjoint passes of a conv layer on ``n`` spatial axes.

One implementation serves the forward passes of :mod:`toeplitz_conv.functional`
and the matrix-free operators, for every ``n`` (1-D is the case ``n = 1``, not
a sibling copy). Signals are laid out ``(C, S_1, ..., S_n, B)``: a trailing
batch of ``B`` columns, which is exactly how a ``LinearOperator``'s ``matmat``
receives ``X`` of shape ``(C * prod(S), B)``.

The plan, the same for every ``n``:

- **Pad** once into a buffer of extent ``E_a`` per axis, axis by axis for the
  edges (each axis' :meth:`~toeplitz_conv._geometry.ConvGeometry.src`; zero
  padding reads nothing). With no padding the signal itself is used.
- **Polyphase split**: for strides ``s_a > 1`` the padded signal is split into
  ``prod(s_a)`` phases ``x~[:, r_1::s_1, ..., r_n::s_n]``, stored one after the
  other per channel; tap ``k`` then reads phase ``(k_a d_a mod s_a)_a`` at the
  offset ``(k_a d_a // s_a)_a``. Padding and split are one gather from the
  signal, with the source of every cell computed once per layer.
- **Flat shifts**: in a phase flattened row-major, the window of tap ``k`` for
  all output positions is *one contiguous slice* at the flat offset of that
  tap, if the output is computed on the phase's grid (the columns of the outer
  axes beyond ``L_out`` are computed and dropped: a few percent of waste, no
  gather). So the patch matrix of a block of outputs is ``prod(K)`` plain
  slice copies, multiplied by the weight in one BLAS call per block (blocks
  are sized to stay in cache).
- The **adjoint** multiplies first and adds the ``prod(K)`` tap rows back onto
  contiguous slices of the phases, then merges the phases and folds the
  padding back onto the signal (one gather, plus the adds of the padding cells
  for the reflect/replicate/circular modes). For thin layers with unit
  strides it is instead the forward pass of the flipped, conjugated kernel
  (one patch copy and one GEMM instead of a GEMM and ``prod(K)`` scattered adds).

- **Long 1-D kernels** (``K >= 64`` taps, strides up to 4; see ``_FFT_MIN_TAPS``) skip
  all of the above: the padded signal is correlated at every shift by
  overlap-save FFT (:mod:`toeplitz_conv._fft`) and one shift in ``s`` is kept;
  the adjoint correlates the output spread ``s`` apart with the flipped,
  conjugated kernel and folds the padding back. ``O(log K)`` per output and
  channel pair instead of ``O(K)``.
- **Winograd** (``method="winograd"``, opt-in: 3-tap and 3x3, stride 1,
  dilation 1): F(4, 3) / F(4x4, 3x3) tiles (:mod:`toeplitz_conv._winograd`);
  its adjoint is the flipped kernel's forward pass, also by Winograd.

Which of these runs is :attr:`Kernel.method` (:func:`choose_method`):
``"direct"`` (patches and GEMMs), ``"fft"``
or ``"winograd"``; ``"auto"`` never picks Winograd, whose error is 10-100x
the direct sum's.

Measured (``benchmarks/operators.py``): the GEMM is ~85% of a thick forward
pass, the slice copies ~10%. Blocks sized to the L2 cache (2 MB of patches
on 1 MB of L2) instead of a whole small image. One GEMM per kernel offset
accumulated into the output (BLAS ``beta = 1`` through
``scipy.linalg.cython_blas``' function pointers) would save the copies, but
its GEMMs have an inner dimension of only ``C_in``: measured 1.0-1.4x
slower than the patch GEMM on 64 channels (and three shifted copies with
three accumulating GEMMs of ``3 C_in`` no faster), so the patches stay.
Depthwise layers as ``prod(K)`` multiply-adds over contiguous slices of the
phases (2-D views whose rows are whole channels, blocks of channels and
positions in L2, shared among threads) measured 0.52-0.69 ms against
0.43-0.50 ms for the patch copies and batched product (64 channels, 3x3,
56x56, float32, one thread): numpy's 17 passes over memory cost more than
the copies, so depthwise layers keep the patch path.
"""

from __future__ import annotations

import math
from functools import cached_property

import numpy as np

from ._cache import L2_BYTES as _L2_BYTES
from ._fft import Correlator, dilate
from ._geometry import ConvGeometry, check_choice
from ._winograd import winograd_correlate, winograd_weight

__all__ = ["METHODS", "Kernel", "choose_method"]


# Patch blocks of at most this many bytes: twice a core's L2 (2 MB on 1 MB of L2), so that a
# block's patches and output stay near the core while BLAS works on them. Measured on the
# benchmark layers: 16 MB blocks (a whole small image) ran the 1-D pass 1.05-1.3x slower.
_BLOCK_BYTES = min(1 << 24, max(1 << 20, 2 * _L2_BYTES))
_THIN_BLOCK_BYTES = 1 << 20  # a thin product (a few channels) streams, fastest in cache
_THIN_GEMM = 16  # output channels per group below which the product is thin
_MIN_BLOCK_COLS = 512
# 1-D kernels of at least this many taps run by FFT (:mod:`toeplitz_conv._fft`). Measured
# (float32, n = 2^18): FFT 2-5x faster at K = 64 for 1 and 4 channels, strides 1 to 4; the
# crossover is K ~ 32 for one channel (lower with more). The FFT computes every shift and
# keeps one in s, so strides above 4 raise the bar by s/4. Tests set it to force either path.
_FFT_MIN_TAPS = 64

METHODS = ("auto", "direct", "fft", "winograd")


def choose_method(method: object, geoms: tuple[ConvGeometry, ...]) -> str:
    """The path a layer runs: `method` checked against the layer, ``"auto"`` resolved.

    ``"auto"`` is ``"fft"`` for long 1-D kernels (at least ``_FFT_MIN_TAPS`` taps,
    more for strides above 4), else ``"direct"``; never ``"winograd"``, whose
    error is ~10-100x the direct sum's.
    """
    method = check_choice(method, "method", METHODS)
    n = len(geoms)
    K = tuple(g.kernel_size for g in geoms)
    if method == "auto":
        g0 = geoms[0]
        long = n == 1 and g0.kernel_size >= _FFT_MIN_TAPS * max(1, g0.stride / 4)
        return "fft" if long else "direct"
    if method == "fft" and n != 1:
        raise ValueError(
            f"method='fft' is for 1-D layers (overlap-save along the one spatial axis); this "
            f"layer has {n} spatial axes: use method='direct' or 'auto'"
        )
    if method == "winograd":
        strides = tuple(g.stride for g in geoms)
        dilations = tuple(g.dilation for g in geoms)
        if n > 2 or any(k != 3 for k in K) or any(v != 1 for v in strides + dilations):
            raise ValueError(
                "method='winograd' computes 3-tap 1-D and 3x3 2-D kernels with stride 1 and "
                f"dilation 1 (F(4, 3) and F(4x4, 3x3)); this layer has kernel_size={K}, "
                f"stride={strides}, dilation={dilations}: use method='direct' or 'auto'"
            )
    return method


def _block_positions(
    rows: int, cols_per_position: int, itemsize: int, L_out: int, thin: bool
) -> int:
    """Output positions per block so that a ``rows x (block*B)`` patch fits the budget."""
    per_position = max(1, rows * cols_per_position * itemsize)
    budget = _THIN_BLOCK_BYTES if thin else _BLOCK_BYTES
    block = max(_MIN_BLOCK_COLS // max(1, cols_per_position), budget // per_position, 1)
    return min(L_out, block)


def _needed_end(geom: ConvGeometry) -> int:
    """One past the last padded position any tap reads: ``(L_out-1)s + d(K-1) + 1``."""
    return (geom.output_length - 1) * geom.stride + geom.dilation * (geom.kernel_size - 1) + 1


def _extent(geom: ConvGeometry) -> int:
    """Padded positions kept on one axis: every position read, and the whole signal."""
    return max(_needed_end(geom), geom.pad_left + geom.input_length)


def _axis3(a: np.ndarray, axis: int) -> np.ndarray:
    """A contiguous ``a`` viewed as ``(before, a.shape[axis], after)``."""
    return a.reshape(math.prod(a.shape[:axis]), a.shape[axis], -1)


def _edges(geom: ConvGeometry, extent: int) -> np.ndarray:
    """Padded positions of ``[0, extent)`` outside the signal ``[p_l, p_l + L)``."""
    p_l, L = geom.pad_left, geom.input_length
    lo = min(p_l, extent)
    return np.r_[0:lo, max(lo, min(extent, p_l + L)) : extent]


def _fill_edges(out: np.ndarray, geoms: tuple[ConvGeometry, ...]) -> None:
    """Fill the padding of ``out`` (``(C, E_1..E_n, B)``, signal inside) axis by axis.

    Axis ``a`` is filled over the full extent of the other axes from its own
    signal positions, so after the last axis every corner holds
    ``x[src_1(j_1), ..., src_n(j_n)]``: the separable padding of ``F.pad``.
    """
    for axis, geom in enumerate(geoms, start=1):
        edge = _edges(geom, out.shape[axis])
        if not edge.size:
            continue
        o3 = _axis3(out, axis)
        if geom.padding_mode == "zeros":
            p_l, L = geom.pad_left, geom.input_length
            o3[:, :p_l] = 0
            o3[:, p_l + L :] = 0
        else:
            o3[:, edge] = o3[:, geom.pad_left + geom.src(edge - geom.pad_left)]


def pad_signal(x: np.ndarray, geoms: tuple[ConvGeometry, ...], take=None) -> np.ndarray:
    """The padded signal: ``x`` ``(C, *S, B)`` -> ``(C, *E, B)``, ``E_a`` from :func:`_extent`.

    ``out[c, j_1, ..., j_n, b] = x[c, src_1(j_1 - p_1), ..., src_n(j_n - p_n), b]``
    (zero where an axis reads nothing); `take` allocates the result.
    """
    shape = (x.shape[0], *(_extent(g) for g in geoms), x.shape[-1])
    out = take(shape, x.dtype) if take is not None else np.empty(shape, dtype=x.dtype)
    inside = tuple(slice(g.pad_left, g.pad_left + g.input_length) for g in geoms)
    out[(slice(None), *inside)] = x
    _fill_edges(out, geoms)
    return out


def _fold_axis(gp: np.ndarray, axis: int, geom: ConvGeometry) -> np.ndarray:
    """The adjoint of padding one axis: add the padded gradient back onto the signal.

    ``gp`` is contiguous with ``X`` padded positions on `axis`; returns the same
    with ``L`` positions (``gp`` itself when there is nothing to fold).
    """
    L, p_l, X = geom.input_length, geom.pad_left, gp.shape[axis]
    lo = min(p_l, X)
    hi = max(lo, min(X, p_l + L))
    if lo == 0 and hi == L and X == L:
        return gp
    g = np.empty((*gp.shape[:axis], L, *gp.shape[axis + 1 :]), dtype=gp.dtype)
    g3, gp3 = _axis3(g, axis), _axis3(gp, axis)
    g3[:, : hi - lo] = gp3[:, lo:hi]
    g3[:, hi - lo :] = 0
    if geom.padding_mode != "zeros":
        edge = _edges(geom, X)
        if edge.size:
            np.add.at(g3, (slice(None), geom.src(edge - p_l)), gp3[:, edge])
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

    Parameters
    ----------
    weight : ndarray, shape (C_out, G, K_1, ..., K_n)
        In the compute dtype.
    geoms : tuple of ConvGeometry, one per spatial axis (or one ConvGeometry for 1-D)
    groups : int
    method : {"auto", "direct", "fft", "winograd"}
        The algorithm (see :func:`choose_method`); the one chosen is the
        attribute ``method``.
    """

    def __init__(
        self,
        weight: np.ndarray,
        geoms: tuple[ConvGeometry, ...] | ConvGeometry,
        groups: int,
        method: str = "auto",
    ) -> None:
        if isinstance(geoms, ConvGeometry):
            geoms = (geoms,)
        self.geoms = tuple(geoms)
        self.weight = weight
        self.groups = groups
        c_out, G = weight.shape[:2]
        self.kernel_size = tuple(weight.shape[2:])
        self.taps = math.prod(self.kernel_size)
        self.c_out, self.G, self.c_in = c_out, G, G * groups
        self.thin = c_out // groups < _THIN_GEMM
        self.input_size = tuple(g.input_length for g in self.geoms)
        self.output_size = tuple(g.output_length for g in self.geoms)
        # (groups, C_out/groups, G*prod(K)): the weight of each group's patch product
        self.w_g = np.ascontiguousarray(weight.reshape(groups, c_out // groups, G * self.taps))
        self.w_gh = np.ascontiguousarray(self.w_g.conj().transpose(0, 2, 1))
        self._plan()
        self.method = choose_method(method, self.geoms)
        self._cast: dict[np.dtype, tuple[np.ndarray, np.ndarray]] = {}
        self._winograd: dict[np.dtype, np.ndarray] = {}  # transformed weights, per dtype
        # scratch buffers kept between calls: fresh large arrays cost page faults each time
        self._spare: dict[tuple, list[np.ndarray]] = {}

    def _plan(self) -> None:
        """The integer plan: extents, phases, flat tap offsets (independent of the batch)."""
        geoms = self.geoms
        self.extent = tuple(_extent(g) for g in geoms)  # E_a
        self.strides = tuple(g.stride for g in geoms)
        self.no_pad = all(
            g.pad_left == 0 and e == g.input_length for g, e in zip(geoms, self.extent, strict=True)
        )
        self.grid = tuple(-(-e // s) for e, s in zip(self.extent, self.strides, strict=True))  # Q_a
        self.n_phases = math.prod(self.strides)
        # flat strides of the phase grid, in positions
        flat = np.cumprod((1, *self.grid[:0:-1]))[::-1]
        self.flat = tuple(int(f) for f in flat)
        taps = np.indices(self.kernel_size).reshape(len(geoms), -1).T  # (prod K, n), row-major
        dil = np.array([g.dilation for g in geoms])
        s = np.array(self.strides)
        q, r = np.divmod(taps * dil, s)
        self.tap_phase = np.ravel_multi_index(r.T, self.strides)
        self.tap_offset = q @ flat  # flat position of each tap's window start in its phase
        # phases are stored one after the other: where each tap's window starts in that row
        self.tap_start = [int(v) for v in self.tap_phase * math.prod(self.grid) + self.tap_offset]
        # outputs are computed on the phase grid: N flat positions cover them all
        self.n_flat = int(np.dot(np.array(self.output_size) - 1, flat)) + 1
        # the output grid is exactly the output (no dropped columns) on one axis or full rows
        self.dense_grid = all(
            lo == q_ for lo, q_ in zip(self.output_size[1:], self.grid[1:], strict=True)
        )

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

    # ------------------------------------------------------------------ padding
    def _pad(self, x: np.ndarray) -> np.ndarray:
        """``x`` ``(C, *S, B)`` contiguous -> the padded signal ``(C, *E, B)``.

        ``x`` itself when no axis is padded.
        """
        if self.no_pad:
            return x
        return pad_signal(x, self.geoms, self._take)

    def _fold(self, gp: np.ndarray) -> np.ndarray:
        """The adjoint of :meth:`_pad`: ``(C, *X, B)`` padded gradient -> ``(C, *S, B)``.

        When ``gp`` holds the whole signal on every axis (``X_a >= p_l + L_a``),
        the padding cells are added onto the cells they copied, in place and
        in the reverse axis order of :func:`_fill_edges`, and the signal is then
        cut out in one copy; otherwise axis by axis.
        """
        geoms = self.geoms
        if any(x < g.pad_left + g.input_length for x, g in zip(gp.shape[1:-1], geoms, strict=True)):
            for axis in range(len(geoms), 0, -1):
                gp = _fold_axis(gp, axis, geoms[axis - 1])
            return gp
        if all(
            g.pad_left == 0 and x == g.input_length
            for x, g in zip(gp.shape[1:-1], geoms, strict=True)
        ):
            return gp
        for axis in range(len(geoms), 0, -1):
            g = geoms[axis - 1]
            edge = _edges(g, gp.shape[axis])
            if g.padding_mode != "zeros" and edge.size:
                g3 = _axis3(gp, axis)
                np.add.at(g3, (slice(None), g.pad_left + g.src(edge - g.pad_left)), g3[:, edge])
        inside = tuple(slice(g.pad_left, g.pad_left + g.input_length) for g in geoms)
        return np.ascontiguousarray(gp[(slice(None), *inside)])

    @cached_property
    def _cells(self) -> tuple[np.ndarray, ...]:
        """For strides > 1: where every phase cell comes from, as flat sample indices.

        The phases of the padded signal are stored one after the other per
        channel, ``(R, Q_1, ..., Q_n)`` row-major. Returns ``(source, zero,
        sample_cell, edge_cells, edge_samples)``: the sample each cell copies
        (0 where it reads nothing), the cells that read nothing (zero padding, or
        past the padded signal), the cell inside the padding that holds each
        sample (a permutation), and the cells in the padding that copy a sample
        (the other modes).
        """
        n = len(self.geoms)
        sample_stride = np.cumprod((1, *self.input_size[:0:-1]))[::-1]
        source = np.zeros((1,) * (2 * n), dtype=np.int64)
        valid = np.ones((1,) * (2 * n), dtype=bool)
        inside = np.ones((1,) * (2 * n), dtype=bool)
        for a, (g, Q, s, E) in enumerate(
            zip(self.geoms, self.grid, self.strides, self.extent, strict=True)
        ):
            j = np.arange(s)[:, None] + s * np.arange(Q)[None, :]  # padded position
            lj = j - g.pad_left
            src = np.where(j < E, g.src(lj), -1)
            shape = [1] * (2 * n)
            shape[a], shape[n + a] = s, Q
            source = source + (np.maximum(src, 0) * int(sample_stride[a])).reshape(shape)
            valid = valid & (src >= 0).reshape(shape)
            inside = inside & ((lj >= 0) & (lj < g.input_length)).reshape(shape)
        source, valid, inside = (a.reshape(-1) for a in np.broadcast_arrays(source, valid, inside))
        index = np.intp
        inner = np.flatnonzero(inside)
        sample_cell = np.empty(math.prod(self.input_size), dtype=index)
        sample_cell[source[inner]] = inner
        edge = np.flatnonzero(valid & ~inside)
        return (
            source.astype(index),
            np.flatnonzero(~valid),
            sample_cell,
            edge,
            source[edge].astype(index),
        )

    def _split(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """The padded signal as rows ``(C, R * prod(Q) * B)``: its ``R`` phases one after another.

        One phase (unit strides) is the padded signal itself; with strides, one
        gather from the signal pads and splits at once (cells past a phase's own
        length are zero; they are read only for dropped output columns). Also
        returns the scratch buffer to hand back afterwards (None for `x` itself).
        """
        B, C = x.shape[-1], x.shape[0]
        if self.n_phases == 1:
            xp = self._pad(x)
            return xp.reshape(C, -1), (None if xp is x else xp)
        source, zero, *_ = self._cells
        buf = self._take((C, source.size, B), x.dtype)
        np.take(x.reshape(C, -1, B), source, axis=1, out=buf, mode="clip")
        if zero.size:
            buf[:, zero] = 0
        return buf.reshape(C, -1), buf

    def _merge(self, buf: np.ndarray, B: int) -> np.ndarray:
        """The adjoint of :meth:`_split`: rows ``(C, R * prod(Q) * B)`` -> ``(C, *S, B)``."""
        C = buf.shape[0]
        if self.n_phases == 1:
            return self._fold(buf.reshape(C, *self.grid, B))
        _, _, sample_cell, edge, edge_samples = self._cells
        b3 = buf.reshape(C, -1, B)
        g = np.take(b3, sample_cell, axis=1, mode="clip")
        if edge.size:
            np.add.at(g, (slice(None), edge_samples), b3[:, edge])
        return g.reshape(C, *self.input_size, B)

    # ------------------------------------------------------------------ passes
    def forward(self, x: np.ndarray) -> np.ndarray:
        """``(C_in, *S, B) -> (C_out, *S_out, B)``."""
        B, dtype = x.shape[-1], x.dtype
        if B == 0:
            return np.zeros((self.c_out, *self.output_size, 0), dtype=dtype)
        x = np.ascontiguousarray(x)
        if self.method == "fft":
            return self._fft_forward(x)
        if self.method == "winograd":
            return self._winograd_forward(x)
        w_g, _ = self.weights_as(dtype)
        rows, scratch = self._split(x)
        if self.dense_grid:
            y = np.empty((self.c_out, *self.output_size, B), dtype=dtype)
        else:
            y = self._take((self.c_out, self.output_size[0], *self.grid[1:], B), dtype)
        y_g = y.reshape(self.groups, self.c_out // self.groups, -1)
        self._product_im2col(rows, y_g, w_g, B)
        if scratch is not None:
            self._give(scratch)
        if self.dense_grid:
            return y
        out = y[(slice(None), slice(None), *(slice(0, lo) for lo in self.output_size[1:]))]
        if out.flags.c_contiguous:  # a view of y (one output row): y must not be reused
            return out
        out = np.ascontiguousarray(out)
        self._give(y)
        return out

    # ------------------------------------------------------------------ FFT (1-D, long kernels)
    @cached_property
    def _correlators(self) -> tuple[Correlator, Correlator]:
        """The forward taps ``W`` and the adjoint's ``conj(W)`` flipped, in+out swapped."""
        groups, cog, G, d = self.groups, self.c_out // self.groups, self.G, self.geoms[0].dilation
        h = dilate(self.weight, d).reshape(groups, cog, G, -1)
        h_adj = np.ascontiguousarray(h.conj()[..., ::-1].transpose(0, 2, 1, 3))
        return Correlator(h), Correlator(h_adj)

    def _fft_forward(self, x: np.ndarray) -> np.ndarray:
        """The forward pass by FFT: pad, correlate at every shift, keep one in ``s``."""
        g = self.geoms[0]
        xp = self._pad(x)
        z = self._correlators[0](xp, (g.output_length - 1) * g.stride + 1)
        if xp is not x:
            self._give(xp)
        return z if g.stride == 1 else np.ascontiguousarray(z[:, :: g.stride])

    def _fft_adjoint(self, y: np.ndarray) -> np.ndarray:
        r"""The adjoint by FFT: correlate ``y`` spread ``s`` apart (``D - 1`` zeros in front)
        with the flipped conjugate taps, then fold the padding back.

        .. math:: \tilde g[c, j] = \sum_{o, m} \overline{h[o, c, D-1-m]}\, u[o, j + m - (D-1)],

        ``u[o, i s] = y[o, i]``, zero elsewhere, ``j < (L_out - 1) s + D``.
        """
        g = self.geoms[0]
        D = g.dilation * (g.kernel_size - 1) + 1
        gp = self._correlators[1](y, _needed_end(g), lead=D - 1, spread=g.stride)
        return self._fold(gp)

    # ------------------------------------------------------------------ Winograd (3 / 3x3)
    def _winograd_forward(self, x: np.ndarray) -> np.ndarray:
        """Pad, then F(4, 3) / F(4x4, 3x3) tiles (:mod:`toeplitz_conv._winograd`)."""
        dtype = x.dtype
        if dtype not in self._winograd:
            self._winograd[dtype] = winograd_weight(self.weight, self.groups, dtype)
        xp = self._pad(x)
        y = winograd_correlate(xp, self._winograd[dtype], self.output_size, self.c_out)
        if xp is not x:
            self._give(xp)
        return y

    def _product_im2col(self, rows: np.ndarray, y_g: np.ndarray, w_g: np.ndarray, B: int) -> None:
        """``y_g = w_g @ patches``, block by block: ``prod(K)`` slice copies and one GEMM each."""
        G, groups, taps, N, dtype = self.G, self.groups, self.taps, self.n_flat, y_g.dtype
        block = _block_positions(G * taps, B, dtype.itemsize, N, self.thin)
        cols = self._take((self.c_in, taps, block * B), dtype)
        for i0 in range(0, N, block):
            n = min(block, N - i0)
            c = cols[:, :, : n * B] if n < block else cols
            for k in range(taps):
                start = (i0 + self.tap_start[k]) * B
                c[:, k] = rows[:, start : start + n * B]
            np.matmul(w_g, c.reshape(groups, G * taps, n * B), out=y_g[:, :, i0 * B : (i0 + n) * B])
        self._give(cols)

    @cached_property
    def flipped(self) -> Kernel:
        r"""For unit strides, the adjoint as a forward pass: the correlation of the
        zero-padded output with the conjugated, transposed and flipped kernel,

        .. math::

            \tilde g[c, j] = \sum_{o, k} \overline{W[o, c, K-1-k]}\, \tilde y[o, j + k d],

        (``k``, ``K``, ``d``, ``j`` per axis) with ``y`` padded by ``d_a(K_a-1)``
        zeros on both sides of every axis: one patch copy and one GEMM per
        block, instead of a GEMM and ``prod(K)`` scattered adds.
        """
        n, groups, G = len(self.geoms), self.groups, self.G
        cog = self.c_out // groups
        w = self.weight.conj().reshape(groups, cog, G, *self.kernel_size)
        w = w[(Ellipsis, *([slice(None, None, -1)] * n))]
        w = np.ascontiguousarray(
            w.transpose(0, 2, 1, *range(3, 3 + n)).reshape(self.c_in, cog, *self.kernel_size)
        )
        geoms = []
        for g in self.geoms:
            span = g.dilation * (g.kernel_size - 1)
            geoms.append(
                ConvGeometry(
                    g.output_length,
                    g.kernel_size,
                    1,
                    g.dilation,
                    span,
                    span,
                    "zeros",
                    _needed_end(g),
                )
            )
        # the same path both ways (also when the FFT threshold has changed since)
        return Kernel(w, tuple(geoms), groups, method=self.method)

    def adjoint(self, y: np.ndarray) -> np.ndarray:
        """``(C_out, *S_out, B) -> (C_in, *S, B)``: the transposed convolution."""
        if y.shape[-1] == 0:
            return np.zeros((self.c_in, *self.input_size, 0), dtype=y.dtype)
        if self.method == "fft":
            return self._fft_adjoint(y)
        if self.method == "winograd" or (self.n_phases == 1 and self.thin):
            # measured: faster thin, slower thick; Winograd's adjoint is its flipped forward
            return self._fold(self.flipped.forward(y))
        B, dtype = y.shape[-1], y.dtype
        G, groups, taps, N = self.G, self.groups, self.taps, self.n_flat
        _, w_gh = self.weights_as(dtype)
        if self.dense_grid:
            y = np.ascontiguousarray(y)
        else:  # on the phase grid, zeros in the dropped columns
            grid = np.zeros((self.c_out, self.output_size[0], *self.grid[1:], B), dtype=dtype)
            grid[(slice(None), slice(None), *(slice(0, lo) for lo in self.output_size[1:]))] = y
            y = grid
        y_g = y.reshape(groups, self.c_out // groups, -1)
        block = _block_positions(G * taps, B, dtype.itemsize, N, self.thin)
        z = self._take((self.c_in, taps, block * B), dtype)
        R, total = self.n_phases, math.prod(self.grid) * B
        # one phase is the result itself: a fresh array, not a kept scratch buffer
        rows = (
            self._take((self.c_in, R * total), dtype)
            if R > 1
            else np.empty((self.c_in, total), dtype=dtype)
        )
        single = block >= N
        # A phase's first tap covers [off, off + N): when one block covers the output it is
        # assigned (what it does not cover is zeroed), otherwise everything is added onto zeros.
        # With one phase, blocks run last-first and every block assigns its tap 0, which
        # starts at offset 0: later blocks only add at or after the next block's start.
        assigned = np.zeros(R, dtype=bool)
        first = {}
        for k in range(taps):
            first.setdefault(int(self.tap_phase[k]), k)
        if single or R == 1:
            for ph in range(R):
                base = ph * total
                if ph in first:
                    off = base + int(self.tap_offset[first[ph]]) * B
                    rows[:, base:off] = 0
                    rows[:, off + N * B : base + total] = 0
                else:
                    rows[:, base : base + total] = 0
        else:
            rows[...] = 0
        starts = range(0, N, block)
        for i0 in reversed(starts) if R == 1 else starts:
            n = min(block, N - i0)
            zz = z[:, :, : n * B] if n < block else z
            _small_matmul(
                w_gh, y_g[:, :, i0 * B : (i0 + n) * B], zz.reshape(groups, G * taps, n * B)
            )
            for k in range(taps):
                ph = int(self.tap_phase[k])
                start = (i0 + self.tap_start[k]) * B
                if (R == 1 and k == 0) or (single and not assigned[ph] and first[ph] == k):
                    rows[:, start : start + n * B] = zz[:, k]
                    assigned[ph] = True
                else:
                    rows[:, start : start + n * B] += zz[:, k]
        self._give(z)
        g = self._merge(rows, B)
        if R > 1:
            self._give(rows)
        return g
