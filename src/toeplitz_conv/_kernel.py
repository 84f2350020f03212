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
  for the reflect/replicate/circular modes). With unit strides it is instead
  the forward pass of the flipped, conjugated kernel (one patch copy and one
  GEMM instead of a GEMM and ``prod(K)`` scattered adds) for thin layers, and
  for N-d layers whose padding needs no folding (:func:`flip_cuts`: it then
  computes just the signal's positions).

- **Long 1-D kernels** (``K >= 64`` taps, strides up to 4; see :data:`FFT_MIN_TAPS`) skip
  all of the above: the padded signal is correlated at every shift by
  overlap-save FFT (:mod:`toeplitz_conv._fft`) and one shift in ``s`` is kept;
  the adjoint correlates the output spread ``s`` apart with the flipped,
  conjugated kernel and folds the padding back. ``O(log K)`` per output and
  channel pair instead of ``O(K)``.
- **Winograd** (3-tap and 3x3, stride 1, dilation 1; :mod:`toeplitz_conv._winograd`):
  F(2, 3) / F(2x2, 3x3) tiles (``method="winograd2"``, which rounds like the direct
  sum) or F(4, 3) / F(4x4, 3x3) tiles (``method="winograd"``: in 2-D 3-25x the
  direct sum's error, opt-in; in 1-D with numba fused per block of tiles,
  :mod:`toeplitz_conv._winograd1d`, 0.6-2.6x); the adjoint is the flipped kernel's
  forward pass, by the same tiles. ``"winograd2"`` also takes stride 2 on every axis
  (polyphase F(2, 3) tiles, :data:`toeplitz_conv._winograd.S2`; the adjoint runs them
  transposed in 2-D with numba, :func:`toeplitz_conv._winograd.compiled_adjoint`, else
  the direct one).

Which of these runs is :attr:`Kernel.method` (:func:`choose_method`):
``"direct"`` (patches and GEMMs), ``"fft"``, ``"winograd2"`` or ``"winograd"``;
``"auto"`` picks ``"winograd2"`` for thick dense 2-D 3x3 layers
(:data:`WINOGRAD2_FROM`, stride 2: :data:`WINOGRAD2_STRIDE2`), ``"winograd"`` for
thick 3-tap 1-D layers with numba
(:data:`toeplitz_conv._winograd1d.MIN_CHANNELS`), and never 2-D ``"winograd"``.

**Thick layers** (:data:`TAP_GEMM_FROM`: 32 input channels per group, 512 output
columns) skip the patch copies: one GEMM per group of taps (:attr:`Plan.tap_groups`,
the taps at one offset across the phases) reads its window where it lies, rows a
channel's row of phases apart, and adds its product into the block of outputs (the
adjoint adds ``W_t^H y`` onto the window): BLAS ``beta = 1`` with a leading dimension,
through numpy's own OpenBLAS (:mod:`toeplitz_conv._blas`; 64 -> 64, 3x3 on 56x56:
1.35-1.43x torch against 1.49-1.57x with patches; 1-D 64 -> 128, K=5, stride 2:
1.07-1.12x against 1.15-1.18x). Blocks fill :attr:`Blocking.block_bytes` of outputs.
Elsewhere the patches: blocks sized to the L2 cache (2 MB of patches on 1 MB of L2)
instead of a whole small image (0.5 to 16 MB measured within the noise of each other
on the 2-D layers, 2 MB best for 1-D).

**Depthwise layers** (one input channel per group) skip the patches: with
numba installed (the ``[fast]`` extra, :mod:`toeplitz_conv._compiled`) one
compiled loop adds the taps over the same slices with each channel padded and
its outputs computed in cache (64 channels, 3x3, 56x56, float32, one thread:
0.14-0.15 ms against torch's 0.19-0.25 ms); without it, ``prod(K)`` in-place
multiply-adds per block of channels and positions whose outputs fit
:data:`DEPTHWISE_BYTES` (0.60-0.68 ms against 0.88-0.92 ms for the patch copies
and batched product they replace; numpy makes one pass over a block per
operation, torch's direct kernel one in all).

The GEMM floor: numpy's OpenBLAS (SkylakeX kernels on this machine's AVX-512
cores) runs the tap GEMMs of a 64 -> 64, 3x3 layer, ``(64 x 64) @ (64 x 3248)``, at
~140 GFLOP/s (the patch GEMM ``(64 x 576) @ (576 x n)`` at 130-150 for every block
size), where torch's oneDNN convolution reaches ~170. In 1-D (64 -> 128, K=5,
stride 2) the three tap GEMMs alone are 0.94x torch's whole pass.
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import Any

import numpy as np

from . import _blas as blas
from ._compiled import kernels
from ._fft import Correlator, dilate
from ._geometry import ConvGeometry, check_choice
from ._padding import read_end
from ._plan import Plan, Pool
from ._winograd import (
    F2,
    F4,
    S2,
    Tiles,
    compiled_adjoint,
    winograd_correlate,
    winograd_weight,
)
from ._winograd1d import MIN_CHANNELS, Winograd1D, compiled_kernels

__all__ = [
    "FFT_MIN_TAPS",
    "METHODS",
    "WINOGRAD2_FROM",
    "WINOGRAD2_MOST",
    "WINOGRAD2_STRIDE2",
    "Kernel",
    "choose_method",
]

_NO_ROWS = np.zeros(0, dtype=np.int64)  # the compiled kernel reads rows already padded
_THIN_GEMM = 16  # output channels per group below which the product is thin
#: ``(channels, columns)``: the direct pass multiplies each group of taps where its window
#: lies (:meth:`_Direct._tap_products`) instead of copying patches from ``channels`` input
#: channels per group and ``columns`` output columns (positions of the phase grid times the
#: batch). Measured (one thread, float32 / float64, 3x3, padding 1; time against the
#: patches'): C -> C, 32 on 56x56 0.87 / 0.83, 64 on 56x56 0.88 / 0.80, 128 on 28x28 0.83 /
#: 0.84, 256 on 14x14 (222 columns) 0.99 / 1.02, 512 on 7x7 (61) 1.04 / 1.02, but 16 on
#: 28x28 1.81 / 1.27 and 8 on 56x56 1.48 / 1.04; thin outputs, 64 -> 3 on 56x56 0.60 / 0.41,
#: 128 -> 4 on 28x28 0.36 / 0.32, 64 -> 1 on 224x224 0.68 / 0.51; 1-D 64 -> 64, K=3
#: 0.92-0.99, 64 -> 128, K=5, stride 2 0.91-0.95.
TAP_GEMM_FROM = (32, 512)
#: Output bytes of a block of the numpy depthwise pass (see :meth:`_Direct._depthwise_product`)
DEPTHWISE_BYTES = 1 << 18
# 1-D kernels of at least this many taps run by FFT (:mod:`toeplitz_conv._fft`). Measured
# (float32, n = 2^18): FFT 2-5x faster at K = 64 for 1 and 4 channels, strides 1 to 4; the
# crossover is K ~ 32 for one channel (lower with more). The FFT computes every shift and
# keeps one in s, so strides above 4 raise the bar by s/4.
FFT_MIN_TAPS = 64

METHODS = ("auto", "direct", "fft", "winograd", "winograd2")
#: ``"auto"`` takes F(2x2, 3x3) (``"winograd2"``) for dense 2-D 3x3 layers, stride and
#: dilation 1, from ``(channels, volume)``: at least ``channels`` input and output channels
#: per group and ``C_out * prod(S_out) >= volume``; the first pair when the compiled
#: transforms run (numba, the ``[fast]`` extra), the second in numpy. Measured (float32, one
#: thread, C -> C channels, padding 1; time / torch's, direct against winograd2): compiled,
#: 32 on 10x10 1.84 / 1.44, 32 on 7x7 1.74 / 2.03, 64 on 7x7 1.44 / 1.22, 16 on 56x56 2.07 /
#: 1.79 (thin: left to direct's thin path); numpy, 64 on 14x14 1.34 / 1.23, 64 on 10x10 1.35
#: / 1.40, 32 on 14x14 1.62 / 2.14, 32 on 56x56 2.06 / 2.08, 128 on 14x14 1.61 / 1.14.
WINOGRAD2_FROM = {"compiled": (32, 64 * 7 * 7), "numpy": (64, 64 * 14 * 14)}
#: ... and at most this many input and output channels per group: above it the 16 points'
#: transformed weights (16 C^2 values, 16 MB at 512 channels in float32) are streamed from
#: memory by GEMMs of few tiles. Measured (float32, one thread, C -> C, padding 1; time /
#: torch's, direct against winograd2, three runs): compiled, 256 on 14x14 1.37-1.41 /
#: 1.21-1.25, 256 on 7x7 1.05-1.41 / 1.02-1.36, 384 on 14x14 1.28 / 1.85, 512 on 14x14
#: 1.23-1.33 / 1.97-2.18, 512 on 7x7 0.95-1.14 / 1.17-1.41, 512 on 28x28 1.07 / 1.72;
#: numpy, 256 on 28x28 1.20-1.21 / 1.23-1.26, 384 on 14x14 1.26-1.30 / 1.62-1.73, 512 on
#: 14x14 1.21-1.26 / 2.09-2.19.
WINOGRAD2_MOST = 256
#: ``"auto"`` takes the stride-2 tiles (:data:`~toeplitz_conv._winograd.S2`) for dense 2-D
#: 3x3 layers with stride 2 and the compiled transforms, from ``(least, most, volume)``:
#: ``least <= C_out/groups <= G <= most`` channels per group and ``C_out * prod(S_out) >=
#: volume``. Their products save 1.44x of the GEMM and all of its strided patch copies, which
#: cost most when a layer does not widen; at 256 channels the 25 point products (256 x 256
#: on 7x7 tiles) run below the patch GEMM's speed. Measured (float32, one thread, padding 1;
#: time / torch's, direct against winograd2): 128 -> 128 on 28x28 1.22 / 1.05, 64 -> 64 on
#: 56x56 1.55 / 1.27, 128 -> 128 on 56x56 1.33 / 1.18, 128 -> 64 on 28x28 1.39 / 1.18,
#: 48 -> 48 on 40x40 1.37 / 1.27, 64 -> 64 on 28x28 1.15 / 1.11; not taken: 64 -> 64 on
#: 14x14 0.98 / 1.05, 32 -> 32 on 56x56 1.53 / 1.49, 128 -> 256 on 28x28 1.06 / 1.17, 256 ->
#: 256 on 14x14 1.05 / 1.43, 256 -> 512 on 14x14 1.00 / 1.38; in numpy 1.18 / 1.35 at best.
WINOGRAD2_STRIDE2 = (48, 128, 64 * 14 * 14)


def choose_method(
    method: object,
    geoms: tuple[ConvGeometry, ...],
    shape: tuple[int, ...] | None = None,
    groups: int = 1,
    dtype: np.dtype | None = None,
) -> str:
    """The path a layer runs: `method` checked against the layer, ``"auto"`` resolved.

    ``"auto"`` is ``"fft"`` for long 1-D kernels (at least :data:`FFT_MIN_TAPS`
    taps, more for strides above 4); ``"winograd2"`` for thick dense 2-D 3x3
    layers with stride and dilation 1 (:data:`WINOGRAD2_FROM` and
    :data:`WINOGRAD2_MOST`, given the weight's `shape`, `groups` and the compute
    `dtype`), which round like the direct sum
    (float32, 64 -> 64 on 56x56: 3.3e-7 against 5.8e-7) in 0.55-0.65x its time,
    and for dense 2-D 3x3 layers with stride 2 that do not widen, with numba
    (:data:`WINOGRAD2_STRIDE2`: 128 -> 128 on 28x28 in 0.9x the direct time);
    ``"winograd"`` for 3-tap 1-D layers with stride and dilation 1, at least
    :data:`~toeplitz_conv._winograd1d.MIN_CHANNELS` channels per group and numba
    for `dtype` (F(4, 3) fused per block, :mod:`toeplitz_conv._winograd1d`: 0.6-2.6x
    the direct sum's rounding); else ``"direct"``. Never the 2-D ``"winograd"``
    (F(4x4, 3x3)), whose error is ~3-25x the direct sum's.
    """
    method = check_choice(method, "method", METHODS)
    n = len(geoms)
    K = tuple(g.kernel_size for g in geoms)
    strides = tuple(g.stride for g in geoms)
    dilations = tuple(g.dilation for g in geoms)
    tiled = K == (3,) * n and set(strides + dilations) == {1}
    # F(2, 3) also at stride 2 on every axis (:data:`toeplitz_conv._winograd.S2`)
    halving = K == (3,) * n and set(dilations) == {1} and set(strides) == {2}
    if method == "auto":
        g0 = geoms[0]
        if n == 1 and g0.kernel_size >= FFT_MIN_TAPS * max(1, g0.stride / 4):
            return "fft"
        fast = dtype is not None and kernels(dtype) is not None
        if halving and n == 2 and fast and shape is not None:
            cog, G = shape[0] // groups, shape[1]
            least, most, volume = WINOGRAD2_STRIDE2
            output = shape[0] * math.prod(g.output_length for g in geoms)
            if least <= cog <= G <= most and output >= volume:
                return "winograd2"
        if tiled and n <= 2 and shape is not None:
            c_out, G = shape[:2]
            if n == 1:  # F(4, 3) fused by numba (0.6-2.6x the direct sum's rounding)
                thick = min(G, c_out // groups) >= MIN_CHANNELS
                fused = dtype is not None and compiled_kernels(dtype) is not None
                return "winograd" if thick and fused else "direct"
            channels, volume = WINOGRAD2_FROM["compiled" if fast else "numpy"]
            output = c_out * math.prod(g.output_length for g in geoms)
            least, most = min(G, c_out // groups), max(G, c_out // groups)
            if channels <= least and most <= WINOGRAD2_MOST and output >= volume:
                return "winograd2"
        return "direct"
    if method == "fft" and n != 1:
        raise ValueError(
            f"method='fft' is for 1-D layers (overlap-save along the one spatial axis); this "
            f"layer has {n} spatial axes: use method='direct' or 'auto'"
        )
    applies = tiled or (method == "winograd2" and halving)
    if method in ("winograd", "winograd2") and (n > 2 or not applies):
        m, strides_allowed = (4, "stride 1") if method == "winograd" else (2, "stride 1 or 2")
        raise ValueError(
            f"method={method!r} computes 3-tap 1-D and 3x3 2-D kernels with dilation 1 and "
            f"{strides_allowed} on every axis (F({m}, 3) and F({m}x{m}, 3x3)); this layer has "
            f"kernel_size={K}, stride={strides}, dilation={dilations}: use method='direct' "
            f"or 'auto'"
        )
    return method


def flip_cuts(geoms: tuple[ConvGeometry, ...]) -> bool:
    """Whether the flipped kernel's forward pass can compute the adjoint itself.

    So when no axis adds padding cells back onto the signal (zero padding, or
    none) and every axis' left padding is at most ``d(K-1)``: then it computes
    the ``L_a`` positions of the signal only, not the padded gradient
    (:attr:`Kernel.flipped`).
    """
    return all(g.pads_zeros and g.pad_left <= g.dilation * (g.kernel_size - 1) for g in geoms)


# --------------------------------------------------------------------------- the passes
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


class _Direct:
    """Patches and GEMMs: ``prod(K)`` slice copies of the phases and one GEMM per block.

    The adjoint multiplies first and adds the tap rows back onto the phases;
    for thin layers with one phase it is the flipped kernel's forward pass
    (:attr:`flipped_adjoint`). Thick layers (:attr:`in_place`) copy no patches:
    one GEMM per group of taps on its window where it lies, both ways
    (:meth:`_tap_products`).

    Strided, zero-padded 1-D and 2-D layers of one sample (:attr:`exact`) skip the
    phases: the forward pass copies each tap's strided window of the signal straight
    onto the outputs (:meth:`_exact_forward`), the 1-D adjoint adds the products
    back onto strided windows (:meth:`_exact_adjoint`). Nothing is computed for
    positions that are dropped afterwards (128 -> 128, 3x3, stride 2 on 28x28:
    1.15-1.26x torch against 1.44-1.47x; 1-D 64 -> 128, K=5, stride 2: 1.20-1.25x
    against 1.25-1.31x, adjoint 0.74-0.77x against 0.80-0.82x; side by side).
    """

    method = "direct"

    def __init__(self, plan: Plan, pool: Pool, weight: np.ndarray, groups: int) -> None:
        c_out, G = weight.shape[:2]
        self.plan, self.pool, self.groups = plan, pool, groups
        self.c_out, self.G, self.c_in = c_out, G, G * groups
        # measured: the flipped forward pass is faster for thin layers, and for thick N-d
        # ones when it computes just the signal (64 -> 64, 3x3 on 56x56: 1.30-1.36x torch
        # against 1.52-1.58x for the products and scattered adds); not in 1-D (64 -> 64,
        # K=3: 1.04-1.10x against 0.94-1.05x)
        self.flipped_adjoint = plan.n_phases == 1 and (
            plan.thin or (len(plan.geoms) > 1 and flip_cuts(plan.geoms))
        )
        # strided, zero-padded 1-D and 2-D layers: one sample on the exact output grid
        # (:meth:`_exact_forward`; :meth:`_exact_adjoint` in 1-D)
        self.exact = (
            plan.n_phases > 1
            and G > 1
            and len(plan.geoms) <= 2
            and all(g.pads_zeros for g in plan.geoms)
        )
        # the adjoint's strided adds run along output rows: in 2-D (rows of 14-28 values
        # on the benchmark layers) 1.02-1.07x slower than the phases' contiguous adds,
        # in 1-D (blocks of ~800) 0.93x faster
        self.exact_adjoint = self.exact and len(plan.geoms) == 1
        # the taps multiplied where they lie (:meth:`_tap_products`, :data:`TAP_GEMM_FROM`)
        self.in_place = G >= TAP_GEMM_FROM[0]
        self._by_group: dict[np.dtype, list[tuple[np.ndarray, np.ndarray]]] = {}
        # the exact grid's patches (:meth:`_exact_forward`), the adjoint's phase grid
        self.zeros = Pool(zeros=True)
        # (groups, C_out/groups, G*prod(K)): the weight of each group's patch product
        w_g = np.ascontiguousarray(weight.reshape(groups, c_out // groups, G * plan.taps))
        self.w_g, self.w_gh = w_g, np.ascontiguousarray(w_g.conj().transpose(0, 2, 1))
        self._cast: dict[np.dtype, tuple[np.ndarray, np.ndarray]] = {}
        # per batch size (and padding in the kernel or not): offsets for _compiled_forward
        self._offsets: dict[tuple[int, bool], tuple[Any, ...]] = {}

    def weights_as(self, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
        """The patch weight and its conjugate transpose in `dtype`."""
        if dtype == self.w_g.dtype:
            return self.w_g, self.w_gh
        if dtype not in self._cast:
            self._cast[dtype] = (self.w_g.astype(dtype), self.w_gh.astype(dtype))
        return self._cast[dtype]

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``(C_in, *S, B) -> (C_out, *S_out, B)``, ``x`` contiguous, ``B > 0``."""
        plan, pool = self.plan, self.pool
        B, dtype = x.shape[-1], x.dtype
        w_g, _ = self.weights_as(dtype)
        fast = kernels(dtype) if self.G == 1 else None
        if fast is not None:  # depthwise, compiled: the taps added straight into the output
            return self._compiled_forward(fast, x, w_g)
        in_place = self._in_place(dtype, B)
        # one sample of a strided 2-D layer: the exact grid's patches beat the tap products
        # on the phases, whose grid computes dropped columns too (128 -> 128, 3x3, stride 2
        # on 28x28: 1.20x torch against 1.38x); in 1-D the tap products win
        if self.exact and B == 1 and not (in_place and len(plan.geoms) == 1):
            return self._exact_forward(x, w_g)
        rows, scratch = plan.split(x, pool)
        if plan.dense_grid:
            y = np.empty((self.c_out, *plan.output_size, B), dtype=dtype)
        else:
            y = pool.take((self.c_out, plan.output_size[0], *plan.grid[1:], B), dtype)
        y_g = y.reshape(self.groups, self.c_out // self.groups, -1)
        if in_place:
            self._tap_products(rows, y_g, B)
        else:
            self._patch_product(rows, y_g, w_g, B)
        if scratch is not None:
            pool.give(scratch)
        if plan.dense_grid:
            return y
        out = y[(slice(None), slice(None), *(slice(0, lo) for lo in plan.output_size[1:]))]
        if out.flags.c_contiguous:  # a view of y (one output row): y must not be reused
            return out
        out = np.ascontiguousarray(out)
        pool.give(y)
        return out

    def _exact_blocks(
        self, batch: int, itemsize: int, forward: bool
    ) -> tuple[int, list[tuple[int, int]]]:
        """Output rows (along the first axis) per block of the exact grid, and the blocks
        ``(r0, r1)`` ascending (:meth:`Plan.rows_per_block`)."""
        plan = self.plan
        rows = plan.rows_per_block(batch, itemsize, forward)
        n0 = plan.output_size[0]
        return rows, [(r0, min(n0, r0 + rows)) for r0 in range(0, n0, rows)]

    def _exact_forward(self, x: np.ndarray, w_g: np.ndarray) -> np.ndarray:
        """The forward pass on the exact output grid (strided, zero-padded layers).

        Each tap's window is strided slices of the signal itself, clipped to it
        (:meth:`Plan.clipped`), copied straight onto the output positions of a block of
        output rows (an im2col of exactly the outputs), then one GEMM per block: no
        padded copy, no phases, no dropped columns, no copy of the output. The blocks come
        from a zeroed pool: the cells that read padding along the inner axes are never
        written, and those along the first axis (:meth:`Plan.strips`) are zeroed when
        other blocks share the buffer.
        """
        plan, zeros = self.plan, self.zeros
        B, dtype, taps, O = x.shape[-1], x.dtype, plan.taps, plan.output_size
        _, blocks = self._exact_blocks(B, dtype.itemsize, forward=True)
        row = math.prod(O[1:]) * B
        y = np.empty((self.c_out, *O, B), dtype=dtype)
        y_g = y.reshape(self.groups, self.c_out // self.groups, -1)
        for r0, r1 in blocks:
            n = (r1 - r0) * row
            c = zeros.take((self.c_in, taps, r1 - r0, *O[1:], B), dtype)
            if len(blocks) > 1:
                for cells in plan.strips(r0, r1):
                    c[cells] = 0
            for into, source in plan.clipped(r0, r1):
                c[into] = x[source]
            np.matmul(
                w_g, c.reshape(self.groups, self.G * taps, n), out=y_g[:, :, r0 * row : r1 * row]
            )
            zeros.give(c)
        return y

    def _exact_adjoint(self, y: np.ndarray, w_gh: np.ndarray) -> np.ndarray:
        """The adjoint on the exact output grid (strided, zero-padded layers).

        Blocks of output rows run last-first: one product per block, then each tap's rows
        added onto its strided window of the padded gradient (:meth:`Plan.windows`). The
        first tap of each residue class is assigned instead (no later block reaches its
        cells, :attr:`Plan.first_taps`), so only :attr:`Plan.unassigned` is zeroed first.
        The signal's cells are then cut out (the buffer is the result when nothing is
        padded).
        """
        plan, pool = self.plan, self.pool
        B, dtype, taps, O = y.shape[-1], y.dtype, plan.taps, plan.output_size
        y_g = np.ascontiguousarray(y).reshape(self.groups, self.c_out // self.groups, -1)
        shape = (self.c_in, *plan.extent, B)
        gp = np.empty(shape, dtype=dtype) if plan.no_pad else pool.take(shape, dtype)
        for cells in plan.unassigned:
            gp[cells] = 0
        rows, blocks = self._exact_blocks(B, dtype.itemsize, forward=False)
        row = math.prod(O[1:]) * B
        z = pool.take((self.c_in * taps * rows * row,), dtype)
        first = plan.first_taps
        for r0, r1 in reversed(blocks):
            n = (r1 - r0) * row
            zz = z[: self.c_in * taps * n]
            _small_matmul(w_gh, y_g[:, :, r0 * row : r1 * row], zz.reshape(self.groups, -1, n))
            zz = zz.reshape(self.c_in, taps, r1 - r0, *O[1:], B)
            for k, window in enumerate(plan.windows(r0, r1)):
                if first[k]:
                    gp[window] = zz[:, k]
                else:
                    into = gp[window]
                    np.add(into, zz[:, k], out=into)
        pool.give(z)
        if plan.no_pad:
            return gp
        g = np.ascontiguousarray(gp[(slice(None), *plan.inside)])
        pool.give(gp)
        return g

    def _compiled_forward(self, fast: Any, x: np.ndarray, w_g: np.ndarray) -> np.ndarray:
        """A depthwise forward pass by :mod:`toeplitz_conv._compiled`: no patches, no GEMM.

        With unit strides and zero padding the kernel pads each channel in cache
        itself (:meth:`Plan.input_rows`) when a channel fits in :data:`DEPTHWISE_BYTES`;
        otherwise it reads the phases of :meth:`Plan.split` (or the signal itself).
        """
        plan, B = self.plan, x.shape[-1]
        y = np.empty((self.c_out, *plan.output_size, B), dtype=x.dtype)
        y_g = y.reshape(self.groups, self.c_out // self.groups, -1)
        channel_bytes = plan.phase_size * B * x.dtype.itemsize
        pads = plan.zero_padded and not plan.no_pad and channel_bytes <= DEPTHWISE_BYTES
        if (B, pads) not in self._offsets:  # (a few numpy calls: ~5% of a small layer's pass)
            into = plan.input_rows(B) if pads else (_NO_ROWS, 0, 0)
            self._offsets[B, pads] = (plan.tap_starts(B), *plan.output_rows(B), *into)
        starts, row_src, row_len, *padding = self._offsets[B, pads]
        rows, scratch = (x.reshape(x.shape[0], -1), None) if pads else plan.split(x, self.pool)
        fast.correlate(rows, w_g, starts, row_src, row_len, y_g, *padding)
        if scratch is not None:
            self.pool.give(scratch)
        return y

    def _in_place(self, dtype: np.dtype, B: int) -> bool:
        """Whether a pass of `B` columns runs :meth:`_tap_products`: a thick layer
        (:attr:`in_place`) with enough columns (:data:`TAP_GEMM_FROM`), on numpy's BLAS."""
        plan = self.plan
        return (
            self.in_place
            and plan.n_flat * B >= TAP_GEMM_FROM[1]
            and blas.available(dtype, plan.n_phases * plan.phase_size * B)
        )

    def _tap_weights(self, dtype: np.dtype) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per :attr:`Plan.tap_groups` group, its weight ``(groups, C_out/groups, G n)`` in
        `dtype`, columns ``(c, j)``, and its conjugate transpose (kept per dtype)."""
        if dtype not in self._by_group:  # (made whole, then stored: threads may share it)
            w = self.w_g.reshape(self.groups, -1, self.G, self.plan.taps).astype(dtype)
            weights = []
            for taps, _, _ in self.plan.tap_groups:
                w_t = np.ascontiguousarray(w[..., list(taps)].reshape(self.groups, w.shape[1], -1))
                weights.append((w_t, np.ascontiguousarray(w_t.conj().transpose(0, 2, 1))))
            self._by_group[dtype] = weights
        return self._by_group[dtype]

    def _tap_products(
        self, rows: np.ndarray, y_g: np.ndarray, B: int, adjoint: bool = False
    ) -> None:
        """One GEMM per :attr:`Plan.tap_groups` group and block of outputs, on each group's
        window of the phases where it lies (:func:`toeplitz_conv._blas.gemm`): no patches.

        Forward, ``y_g = sum_t w_t window_t``, the products added into the block of
        outputs; adjoint, ``window_t += w_t^H y_g`` onto `rows` (zeroed by the caller).
        Blocks of outputs fill :attr:`Blocking.block_bytes` (the whole output of the
        benchmark layers).
        """
        plan, G = self.plan, self.G
        N, row, item = plan.n_flat, rows.shape[1], rows.dtype.itemsize
        values = rows.reshape(-1)
        groups = list(zip(plan.tap_groups, self._tap_weights(rows.dtype), strict=True))
        # a block's outputs and each window's rows stay near the core (thin: in L2)
        budget = plan.blocking.thin_bytes if plan.thin else plan.blocking.block_bytes
        block = max(1, budget // (max(y_g.shape[1], G) * B * item))
        for i0 in range(0, N, block):
            cols = min(block, N - i0) * B
            for g in range(self.groups):
                out = y_g[g, :, i0 * B : i0 * B + cols]
                for t, ((taps, start, step), (w_t, w_th)) in enumerate(groups):
                    window = np.lib.stride_tricks.as_strided(
                        values[g * G * row + (start + i0) * B :],
                        shape=(G * len(taps), cols),
                        strides=(step * B * item, item),
                    )
                    if adjoint:
                        blas.gemm(w_th[g], out, window, add=True)
                    else:
                        blas.gemm(w_t[g], window, out, add=t > 0)

    def _patch_product(self, rows: np.ndarray, y_g: np.ndarray, w_g: np.ndarray, B: int) -> None:
        """``y_g = w_g @ patches``, block by block: ``prod(K)`` slice copies and one GEMM each."""
        plan, G, groups = self.plan, self.G, self.groups
        taps, N, dtype = plan.taps, plan.n_flat, y_g.dtype
        if G == 1:
            self._depthwise_product(rows, y_g, w_g, B)
            return
        block = plan.block(B, dtype.itemsize, forward=True)
        cols = self.pool.take((self.c_in, taps, block * B), dtype)
        for i0 in range(0, N, block):
            n = min(block, N - i0)
            c = cols[:, :, : n * B] if n < block else cols
            for k in range(taps):
                start = (i0 + plan.tap_start[k]) * B
                c[:, k] = rows[:, start : start + n * B]
            np.matmul(w_g, c.reshape(groups, G * taps, n * B), out=y_g[:, :, i0 * B : (i0 + n) * B])
        self.pool.give(cols)

    def _depthwise_product(
        self, rows: np.ndarray, y_g: np.ndarray, w_g: np.ndarray, B: int
    ) -> None:
        """``y_g[g, o] = sum_k w_g[g, o, k] (window of tap k in rows[g])``: depthwise layers
        in numpy, ``prod(K)`` in-place multiply-adds per block of channels and positions
        whose outputs fit :data:`DEPTHWISE_BYTES` (no patches: one pass over a block in
        cache per operation)."""
        plan, groups, m = self.plan, self.groups, self.c_out // self.groups
        n, itemsize = plan.n_flat * B, y_g.dtype.itemsize
        cols = max(1, min(n, DEPTHWISE_BYTES // (m * itemsize)))
        chans = max(1, min(groups, DEPTHWISE_BYTES // (m * cols * itemsize)))
        tmp = self.pool.take((chans, m, cols), y_g.dtype)
        # (one output channel per group: 2-D operands)
        one = 0 if m == 1 else slice(None)
        for g0 in range(0, groups, chans):
            g1 = min(groups, g0 + chans)
            for i0 in range(0, n, cols):
                i1 = min(n, i0 + cols)
                out, t = y_g[g0:g1, one, i0:i1], tmp[: g1 - g0, one, : i1 - i0]
                for k in range(plan.taps):
                    start = plan.tap_start[k] * B
                    window = rows[g0:g1, start + i0 : start + i1]
                    w_k = w_g[g0:g1, one, k : k + 1]
                    if m > 1:
                        window = window[:, None]
                    if k == 0:
                        np.multiply(w_k, window, out=out)
                    else:
                        np.multiply(w_k, window, out=t)
                        out += t
        self.pool.give(tmp)

    def adjoint(self, y: np.ndarray) -> np.ndarray:
        """``(C_out, *S_out, B) -> (C_in, *S, B)``, ``B > 0``: products, then scattered adds."""
        plan, pool = self.plan, self.pool
        B, dtype = y.shape[-1], y.dtype
        _, w_gh = self.weights_as(dtype)
        if self.exact_adjoint and B == 1:
            return self._exact_adjoint(y, w_gh)
        grid = None
        if plan.dense_grid:
            y = np.ascontiguousarray(y)
        else:  # on the phase grid, zeros in the dropped columns (never written: a zeroed pool)
            grid = self.zeros.take((self.c_out, plan.output_size[0], *plan.grid[1:], B), dtype)
            grid[(slice(None), slice(None), *(slice(0, lo) for lo in plan.output_size[1:]))] = y
            y = grid
        y_g = y.reshape(self.groups, self.c_out // self.groups, -1)
        block = plan.block(B, dtype.itemsize)
        R, total = plan.n_phases, plan.phase_size * B
        # one phase is the result itself: a fresh array, not a kept scratch buffer
        if R > 1:
            rows = pool.take((self.c_in, R * total), dtype)
        else:
            rows = np.empty((self.c_in, total), dtype=dtype)
        fast = kernels(dtype) if self.G == 1 else None
        if fast is not None:  # depthwise, compiled: every tap added onto zeros
            rows[...] = 0
            fast.scatter(rows, w_gh, plan.tap_starts(B), plan.n_flat * B, y_g)
        elif self._in_place(dtype, B):
            rows[...] = 0
            self._tap_products(rows, y_g, B, adjoint=True)
        else:
            single = block >= plan.n_flat
            if single or R == 1:
                for a, b in plan.uncovered(B):
                    rows[:, a:b] = 0
            else:
                rows[...] = 0
            self._scatter(rows, y_g, w_gh, block, B, single)
        if grid is not None:
            self.zeros.give(grid)
        g = plan.merge(rows, B)
        if R > 1:
            pool.give(rows)
        return g

    def _scatter(
        self,
        rows: np.ndarray,
        y_g: np.ndarray,
        w_gh: np.ndarray,
        block: int,
        B: int,
        single: bool,
    ) -> None:
        """``rows += scatter(w_gh @ y_g)``: per block one product, then one add per tap.

        A phase's first tap covers ``[off, off + N)``: when one block covers the
        output it is assigned (:meth:`Plan.uncovered` was zeroed),
        otherwise everything is added onto zeros. With one phase, blocks run
        last-first and every block assigns its tap 0, which starts at offset 0:
        later blocks only add at or after the next block's start.
        """
        plan, G, groups = self.plan, self.G, self.groups
        taps, N, R = plan.taps, plan.n_flat, plan.n_phases
        z = self.pool.take((self.c_in, taps, block * B), y_g.dtype)
        assigned = np.zeros(R, dtype=bool)
        starts = range(0, N, block)
        for i0 in reversed(starts) if R == 1 else starts:
            n = min(block, N - i0)
            zz = z[:, :, : n * B] if n < block else z
            _small_matmul(
                w_gh, y_g[:, :, i0 * B : (i0 + n) * B], zz.reshape(groups, G * taps, n * B)
            )
            for k in range(taps):
                ph = int(plan.tap_phase[k])
                start = (i0 + plan.tap_start[k]) * B
                if (R == 1 and k == 0) or (single and not assigned[ph] and plan.first_tap[ph] == k):
                    rows[:, start : start + n * B] = zz[:, k]
                    assigned[ph] = True
                else:
                    rows[:, start : start + n * B] += zz[:, k]
        self.pool.give(z)


class _FFT:
    """Long 1-D kernels by overlap-save (:mod:`toeplitz_conv._fft`).

    The forward pass pads, correlates at every shift and keeps one in ``s``;
    the adjoint correlates ``y`` spread ``s`` apart with the flipped, conjugated
    taps and folds the padding back.
    """

    method = "fft"
    flipped_adjoint = False

    def __init__(self, plan: Plan, pool: Pool, weight: np.ndarray, groups: int) -> None:
        self.plan, self.pool = plan, pool
        c_out, G = weight.shape[:2]
        g = plan.geoms[0]
        h = dilate(weight, g.dilation).reshape(groups, c_out // groups, G, -1)
        h_adj = np.ascontiguousarray(h.conj()[..., ::-1].transpose(0, 2, 1, 3))
        # the forward taps W and the adjoint's conj(W) flipped, in and out swapped
        self.correlate, self.correlate_adjoint = Correlator(h), Correlator(h_adj)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """The forward pass by FFT: pad, correlate at every shift, keep one in ``s``."""
        g = self.plan.geoms[0]
        xp = self.plan.pad(x, self.pool)
        z = self.correlate(xp, (g.output_length - 1) * g.stride + 1)
        if xp is not x:
            self.pool.give(xp)
        return z if g.stride == 1 else np.ascontiguousarray(z[:, :: g.stride])

    def adjoint(self, y: np.ndarray) -> np.ndarray:
        r"""The adjoint by FFT: correlate ``y`` spread ``s`` apart (``D - 1`` zeros in front)
        with the flipped conjugate taps, then fold the padding back.

        .. math:: \tilde g[c, j] = \sum_{o, m} \overline{h[o, c, D-1-m]}\, u[o, j + m - (D-1)],

        ``u[o, i s] = y[o, i]``, zero elsewhere, ``j < (L_out - 1) s + D``.
        """
        g = self.plan.geoms[0]
        D = g.dilation * (g.kernel_size - 1) + 1
        gp = self.correlate_adjoint(y, read_end(g), lead=D - 1, spread=g.stride)
        return self.plan.fold(gp)


class _Winograd:
    """3-tap and 3x3 kernels, stride and dilation 1, by F(4, 3) / F(4x4, 3x3) tiles.

    :mod:`toeplitz_conv._winograd`; the adjoint is the flipped kernel's forward
    pass, by Winograd too.
    """

    tiles: Tiles = F4
    method = F4.name  # "winograd"
    flipped_adjoint = True
    share = 4  # the part of the patch budget a 2-D block of transformed tiles takes

    def __init__(self, plan: Plan, pool: Pool, weight: np.ndarray, groups: int) -> None:
        self.plan, self.pool, self.weight, self.groups = plan, pool, weight, groups
        self.c_out = weight.shape[0]
        self.zeros = Pool(zeros=True)  # the zero-padded signal (:meth:`_padded`)
        self._weights: dict[np.dtype, np.ndarray] = {}  # transformed, per dtype
        # transformed tiles per block: measured best at a quarter of the patch budget in
        # 2-D (0.77-0.84x torch against 0.86-0.97x with the whole budget) and an eighth
        # in 1-D (1.09-1.17x against 1.5-1.6x); F(2x2, 3x3) in numpy an eighth too (64 ->
        # 64 on 56x56: 1.69 ms against 2.08 with a quarter)
        share = self.share if len(plan.geoms) == 2 else 8
        self.block_bytes = plan.blocking.block_bytes // share

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Pad, then Winograd tiles."""
        xp, pool = self._padded(x)
        y = winograd_correlate(
            xp,
            self._weight(x.dtype),
            self.plan.output_size,
            self.c_out,
            self.pool,
            self.block_bytes,
            self.tiles,
        )
        if xp is not x:
            pool.give(xp)
        return y

    def _weight(self, dtype: np.dtype) -> np.ndarray:
        """The transformed weight in `dtype` (:func:`winograd_weight`, made once)."""
        if dtype not in self._weights:
            self._weights[dtype] = winograd_weight(self.weight, self.groups, dtype, self.tiles)
        return self._weights[dtype]

    def _padded(self, x: np.ndarray) -> tuple[np.ndarray, Pool]:
        """The padded signal the tiles read, and the pool it came from.

        Zero padding: the signal copied into a buffer of whole tiles from a zeroed pool,
        whose padding cells are never written (one copy, where :meth:`Plan.pad` and
        zeros past the end made two on 128 channels of 28x28: 0.04 ms of torch's 0.48).
        """
        plan = self.plan
        if plan.no_pad or not all(g.pads_zeros for g in plan.geoms):
            return plan.pad(x, self.pool), self.pool
        need, signal, padded = self._reached
        xp = self.zeros.take((x.shape[0], *need, x.shape[-1]), x.dtype)
        xp[padded] = x[signal]
        return xp, self.zeros

    @cached_property
    def _reached(self) -> tuple[tuple[int, ...], tuple[slice, ...], tuple[slice, ...]]:
        """The padded extent the tiles read, and where the signal's cells are in the
        signal and in the padded buffer (index tuples over ``(C, *S, B)``)."""
        need = self.tiles.extent(self.plan.output_size)
        signal, padded = self.plan.reached(need)
        return need, (slice(None), *signal), (slice(None), *padded)


class _Winograd2(_Winograd):
    """3-tap and 3x3 kernels, dilation 1, by F(2, 3) / F(2x2, 3x3) tiles: the direct sum's
    rounding (``"auto"`` takes it for thick 2-D layers).

    At stride 2 (every axis) the forward pass runs the polyphase tiles of
    :data:`~toeplitz_conv._winograd.S2`; the adjoint, a transposed convolution that the
    flipped kernel's forward pass does not give, runs the same tiles transposed (2-D,
    with numba) or :class:`_Direct`'s.
    """

    tiles = F2
    method = F2.name  # "winograd2"
    share = 8

    def __init__(self, plan: Plan, pool: Pool, weight: np.ndarray, groups: int) -> None:
        super().__init__(plan, pool, weight, groups)
        self.direct = None
        self._adjoint_weights: dict[np.dtype, np.ndarray] = {}
        if plan.geoms[0].stride == 2:  # (every axis: choose_method)
            self.tiles, self.flipped_adjoint = S2, False
            self.direct = _Direct(plan, pool, weight, groups)
            # fewer, larger tiles: blocks of half the patch budget (128 -> 128 on 28x28:
            # 1.05-1.07x torch against 1.25-1.29x with an eighth, products on 2 tile rows)
            self.block_bytes = plan.blocking.block_bytes // 2

    def adjoint(self, y: np.ndarray) -> np.ndarray:
        """The adjoint of a stride-2 layer (:meth:`Kernel.adjoint` asks only when
        :attr:`flipped_adjoint` is false): in 2-D with numba the transposed tiles
        (:func:`~toeplitz_conv._winograd.compiled_adjoint`), then the padding folded back;
        otherwise :class:`_Direct`'s."""
        if self.direct is None:
            raise RuntimeError("a stride-1 layer's adjoint is the flipped kernel's forward pass")
        plan, dtype = self.plan, y.dtype
        fast = kernels(dtype) if len(plan.geoms) == 2 else None
        if fast is None:
            return self.direct.adjoint(y)
        if dtype not in self._adjoint_weights:
            mh = self._weight(dtype).conj().transpose(0, 1, 3, 2)
            self._adjoint_weights[dtype] = np.ascontiguousarray(mh)
        gp = compiled_adjoint(
            fast,
            y,
            self._adjoint_weights[dtype],
            plan.output_size,
            self.direct.c_in,
            self.pool,
            self.block_bytes,
            self.tiles,
        )
        # the padding folded back (every mode); the tiles may overhang the padded extent
        kept = tuple(slice(0, e) for e in plan.extent)
        gp = gp[(slice(None), slice(None), *kept)].transpose(1, 2, 3, 0)
        return plan.fold(np.ascontiguousarray(gp))


_PASSES = {
    "direct": _Direct,
    "fft": _FFT,
    "winograd": _Winograd,
    "winograd2": _Winograd2,
}
#: 1-D layers: ``"winograd"`` is F(4, 3) fused per block of tiles
_PASSES_1D = {**_PASSES, "winograd": Winograd1D}


# --------------------------------------------------------------------------- the kernel
class Kernel:
    """The weight and geometry of one conv, and its planned forward and adjoint passes.

    Frozen: the integer :class:`Plan`, a pool of scratch buffers and the pass
    of one method are made once, here; attributes cannot be set afterwards.

    Parameters
    ----------
    weight : ndarray, shape (C_out, G, K_1, ..., K_n)
        In the compute dtype.
    geoms : tuple of ConvGeometry, one per spatial axis (or one ConvGeometry for 1-D)
    groups : int
    method : {"auto", "direct", "fft", "winograd", "winograd2"}
        The algorithm (see :func:`choose_method`); the one chosen is :attr:`method`.

    Attributes
    ----------
    weight, geoms, groups
        As given (`geoms` a tuple).
    c_out, c_in : int
        Output and input channels.
    input_size, output_size : tuple of int
        ``S`` and ``S_out``.
    plan : Plan
    """

    # set once by __init__ (through object.__setattr__: the instance is frozen)
    weight: np.ndarray
    geoms: tuple[ConvGeometry, ...]
    groups: int
    c_out: int
    c_in: int
    input_size: tuple[int, ...]
    output_size: tuple[int, ...]
    plan: Plan
    _pass: _Direct | _FFT | _Winograd | Winograd1D

    def __init__(
        self,
        weight: np.ndarray,
        geoms: tuple[ConvGeometry, ...] | ConvGeometry,
        groups: int,
        method: str = "auto",
    ) -> None:
        geoms = (geoms,) if isinstance(geoms, ConvGeometry) else tuple(geoms)
        # its own read-only copy: the passes cache what they derive from it (transformed,
        # flipped, per group), which a caller's later in-place change would leave stale
        weight = np.array(weight, order="C", copy=True)
        weight.flags.writeable = False
        chosen = choose_method(method, geoms, weight.shape, groups, weight.dtype)
        c_out, G = weight.shape[:2]
        plan = Plan(geoms, G * math.prod(weight.shape[2:]), c_out // groups < _THIN_GEMM)
        pool = Pool()
        values = dict(
            weight=weight,
            geoms=geoms,
            groups=groups,
            c_out=c_out,
            c_in=G * groups,
            input_size=plan.input_size,
            output_size=plan.output_size,
            plan=plan,
            _pass=(_PASSES_1D if len(geoms) == 1 else _PASSES)[chosen](plan, pool, weight, groups),
        )
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"a Kernel is frozen: {name!r} cannot be set")

    @property
    def method(self) -> str:
        """The algorithm both passes run: ``"direct"``, ``"fft"``, ``"winograd"`` or
        ``"winograd2"`` (whose adjoint at stride 2 is the transposed tiles with numba, the
        direct pass's without)."""
        return self._pass.method

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``(C_in, *S, B) -> (C_out, *S_out, B)``."""
        if x.shape[-1] == 0:
            return np.zeros((self.c_out, *self.output_size, 0), dtype=x.dtype)
        return self._pass.forward(np.ascontiguousarray(x))

    def adjoint(self, y: np.ndarray) -> np.ndarray:
        """``(C_out, *S_out, B) -> (C_in, *S, B)``: the transposed convolution."""
        if y.shape[-1] == 0:
            return np.zeros((self.c_in, *self.input_size, 0), dtype=y.dtype)
        if self._pass.flipped_adjoint:
            g = self.flipped.forward(y)
            return g if self.flipped_cuts else self.plan.fold(g)
        return self._pass.adjoint(y)  # type: ignore[union-attr]  # Winograd's is always flipped

    @cached_property
    def flipped_cuts(self) -> bool:
        """Whether :attr:`flipped` gives the adjoint itself (:func:`flip_cuts`)."""
        return flip_cuts(self.geoms)

    @cached_property
    def flipped(self) -> Kernel:
        r"""For unit strides, the adjoint as a forward pass: the correlation of the
        zero-padded output with the conjugated, transposed and flipped kernel,

        .. math::

            \tilde g[c, j] = \sum_{o, k} \overline{W[o, c, K-1-k]}\, \tilde y[o, j + k d],

        (``k``, ``K``, ``d``, ``j`` per axis) with ``y`` padded by ``d_a(K_a-1)``
        zeros on both sides of every axis: one patch copy and one GEMM per
        block, instead of a GEMM and ``prod(K)`` scattered adds. When
        :attr:`flipped_cuts`, only the ``L_a`` positions of the signal are
        computed (``y`` padded by ``d_a(K_a-1) - p_a`` zeros in front), so that
        the result is the adjoint itself.
        """
        n, groups, (c_out, G) = len(self.geoms), self.groups, self.weight.shape[:2]
        kernel_size = self.weight.shape[2:]
        cog = c_out // groups
        w = self.weight.conj().reshape(groups, cog, G, *kernel_size)
        flip: tuple[Any, ...] = (Ellipsis, *([slice(None, None, -1)] * n))
        w = w[flip]
        w = np.ascontiguousarray(
            w.transpose(0, 2, 1, *range(3, 3 + n)).reshape(self.c_in, cog, *kernel_size)
        )
        if self.flipped_cuts:  # g~ on [p_l, p_l + L) only
            geoms = tuple(
                ConvGeometry(
                    g.output_length,
                    g.kernel_size,
                    1,
                    g.dilation,
                    g.dilation * (g.kernel_size - 1) - g.pad_left,
                    max(0, g.input_length + g.pad_left - g.output_length),
                    "zeros",
                    g.input_length,
                )
                for g in self.geoms
            )
        else:
            geoms = tuple(
                ConvGeometry(
                    g.output_length,
                    g.kernel_size,
                    1,
                    g.dilation,
                    g.dilation * (g.kernel_size - 1),
                    g.dilation * (g.kernel_size - 1),
                    "zeros",
                    read_end(g),
                )
                for g in self.geoms
            )
        # the same path both ways (also when the FFT threshold has changed since)
        return Kernel(w, geoms, groups, method=self.method)
