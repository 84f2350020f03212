r"""Matrix-free conv operators: ``scipy.sparse.linalg.LinearOperator`` s that never build ``M``.

A 256-channel layer on 4096 samples has ~800 million nonzeros; its operator
holds only the weight. :func:`conv1d_operator` applies ``M`` (``conv1d``) and
``M^H`` (``conv_transpose1d``, the input gradient) with the same geometry as
:func:`~toeplitz_conv.conv1d_matrix`, so the operator and the matrix agree by
construction of one index plan (:mod:`toeplitz_conv._geometry`).

The kernels work on signals laid out ``(C, L, B)``: channel, position, and a
trailing batch of ``B`` columns, which is exactly how ``matmat`` receives
``X`` of shape ``(C*L, B)``. The forward pass copies the (padded) signal's
windows for a block of output positions into a patch matrix of
``G*K x (block*B)`` columns and multiplies it by the weight in one BLAS call per
block (blocks are sized to stay in cache); the adjoint multiplies first and
scatters the ``K`` tap rows back with strided adds, then folds the padding onto
the signal (``src`` of :class:`~toeplitz_conv._geometry.ConvGeometry`).
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
from scipy.sparse.linalg import LinearOperator

from ._arrays import as_weight, check_groups, matrix_dtype
from ._geometry import ConvGeometry, Padding, conv_geometry, transpose_geometry

__all__ = [
    "Conv1dOperator",
    "ConvTranspose1dOperator",
    "conv1d_operator",
    "conv_transpose1d_operator",
]

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
    block = max(_MIN_BLOCK_COLS // cols_per_position, budget // per_position, 1)
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


class _Kernel:
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
    def flipped(self) -> _Kernel:
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
        return _Kernel(w, g, groups)

    def adjoint(self, y: np.ndarray) -> np.ndarray:
        """``(C_out, L_out, B) -> (C_in, L, B)``: the transposed convolution."""
        geom = self.geom
        s, d, K, G, groups = geom.stride, geom.dilation, self.K, self.G, self.groups
        if s == 1 and self.thin:  # measured: faster for thin layers, slower for thick ones
            return _fold(self.flipped.forward(y), geom)
        L_out, B = geom.output_length, y.shape[2]
        _, w_gh = self.weights_as(y.dtype)
        end = _needed_end(geom)
        if s == 1:  # tap 0 of each block covers [i0, i0 + n): assign it, add the others
            gp = np.empty((self.c_in, end, B), dtype=y.dtype)
            gp[:, L_out:] = 0
        else:
            gp = np.zeros((self.c_in, end, B), dtype=y.dtype)
        y_g = y.reshape(groups, self.c_out // groups, L_out * B)
        block = _block_positions(G * K, B, y.dtype.itemsize, L_out, self.thin)
        z = self._take((self.c_in, K, block, B), y.dtype)
        # last block first: a block's later taps add onto the next block's assigned tap 0
        for i0 in reversed(range(0, L_out, block)):
            n = min(block, L_out - i0)
            zz = z[:, :, :n] if n < block else z
            _small_matmul(w_gh, y_g[:, :, i0 * B : (i0 + n) * B], zz.reshape(groups, G * K, n * B))
            gp2, zz2 = (gp[..., 0], zz[..., 0]) if B == 1 else (gp, zz)  # 2-D adds are faster
            for k in range(K):
                start = i0 * s + k * d
                if s == 1 and k == 0:
                    gp2[:, start : start + n] = zz2[:, 0]
                else:
                    gp2[:, start : start + (n - 1) * s + 1 : s] += zz2[:, k]
        self._give(z)
        return _fold(gp, geom)


class _ConvOperatorBase(LinearOperator):
    """Shared plumbing: reshaping vectors and column batches to ``(C, L, B)``."""

    _kernel: _Kernel

    def _compute_dtype(self, x: np.ndarray) -> np.dtype:
        dtype = np.result_type(self.dtype, x.dtype)
        return np.dtype(np.float64) if dtype.kind in "biu" else dtype

    def _apply(self, X: np.ndarray, channels_in: int, fn, channels_out: int) -> np.ndarray:
        X = np.asarray(X)
        B = X.shape[1] if X.ndim == 2 else 1
        x3 = np.ascontiguousarray(X, dtype=self._compute_dtype(X)).reshape(channels_in, -1, B)
        y = fn(x3)
        return y.reshape(-1, B) if X.ndim == 2 else y.reshape(-1)


class Conv1dOperator(_ConvOperatorBase):
    r"""The matrix of ``conv1d`` as a matrix-free ``LinearOperator``.

    Made by :func:`conv1d_operator`; see there for the parameters.

    Attributes
    ----------
    weight : ndarray, shape (C_out, C_in/groups, K)
        The kernel, in the operator's dtype.
    geometry : ConvGeometry
        The validated stride, padding, dilation, lengths and padding mode.
    groups, in_channels, out_channels : int
    input_length, output_length : int
        ``L`` and ``L_out``.
    shape : (int, int)
        ``(C_out * L_out, C_in * L)``.
    dtype : numpy.dtype
        The weight's (integers become float64) unless ``dtype=`` said otherwise.
    """

    def __init__(self, weight: np.ndarray, geometry: ConvGeometry, groups: int) -> None:
        self._kernel = _Kernel(weight, geometry, groups)
        self.weight = weight
        self.geometry = geometry
        self.groups = groups
        self.out_channels, _, _ = weight.shape
        self.in_channels = self._kernel.c_in
        self.input_length = geometry.input_length
        self.output_length = geometry.output_length
        shape = (
            self.out_channels * geometry.output_length,
            self.in_channels * geometry.input_length,
        )
        super().__init__(dtype=weight.dtype, shape=shape)

    def __repr__(self) -> str:
        g = self.geometry
        return (
            f"<{self.shape[0]}x{self.shape[1]} Conv1dOperator with dtype={self.dtype}: "
            f"weight {self.weight.shape}, input_length={g.input_length}, stride={g.stride}, "
            f"padding=({g.pad_left}, {g.pad_right}), dilation={g.dilation}, "
            f"groups={self.groups}, padding_mode={g.padding_mode!r}>"
        )

    def _matmat(self, X: np.ndarray) -> np.ndarray:
        return self._apply(X, self.in_channels, self._kernel.forward, self.out_channels)

    def _rmatmat(self, X: np.ndarray) -> np.ndarray:
        return self._apply(X, self.out_channels, self._kernel.adjoint, self.in_channels)

    _matvec = _matmat
    _rmatvec = _rmatmat

    def _adjoint(self) -> ConvTranspose1dOperator:
        return ConvTranspose1dOperator(self)

    def _transpose(self) -> ConvTranspose1dOperator:
        if self.dtype.kind != "c":
            return ConvTranspose1dOperator(self)
        return ConvTranspose1dOperator(
            Conv1dOperator(self.weight.conj(), self.geometry, self.groups)
        )


class ConvTranspose1dOperator(_ConvOperatorBase):
    r"""The adjoint of a :class:`Conv1dOperator`: the transposed convolution.

    ``matvec`` is ``conv1d``'s ``rmatvec`` and back. For zero padding this is
    ``conv_transpose1d``; for the other modes the gradient that reaches the
    padding is folded back onto the samples it copied.

    Attributes
    ----------
    forward : Conv1dOperator
        The convolution this is the adjoint of; ``op.H`` returns it.
    shape : (int, int)
        ``(C_in * L, C_out * L_out)`` of the forward convolution.
    """

    def __init__(self, forward: Conv1dOperator) -> None:
        self.forward = forward
        self._kernel = forward._kernel
        super().__init__(dtype=forward.dtype, shape=forward.shape[::-1])

    def __repr__(self) -> str:
        return f"<adjoint of {self.forward!r}>"

    def _matmat(self, X: np.ndarray) -> np.ndarray:
        f = self.forward
        return self._apply(X, f.out_channels, self._kernel.adjoint, f.in_channels)

    def _rmatmat(self, X: np.ndarray) -> np.ndarray:
        f = self.forward
        return self._apply(X, f.in_channels, self._kernel.forward, f.out_channels)

    _matvec = _matmat
    _rmatvec = _rmatmat

    def _adjoint(self) -> Conv1dOperator:
        return self.forward

    def _transpose(self) -> Conv1dOperator:
        if self.dtype.kind != "c":
            return self.forward
        f = self.forward
        return Conv1dOperator(f.weight.conj(), f.geometry, f.groups)


def conv1d_operator(
    weight: object,
    input_length: int,
    *,
    stride: int = 1,
    padding: Padding = 0,
    dilation: int = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    dtype: object = None,
) -> Conv1dOperator:
    r"""The matrix of ``conv1d`` as a matrix-free ``scipy.sparse.linalg.LinearOperator``.

    Parameters
    ----------
    weight : array_like, shape (C_out, C_in/groups, K) or (K,)
        The kernel in torch's layout; torch tensors are accepted.
    input_length : int
        ``L``, samples per input channel.
    stride, padding, dilation, groups, padding_mode : optional
        As in :func:`~toeplitz_conv.conv1d_matrix`.
    dtype : dtype, optional
        The operator's dtype; defaults to the weight's (integers become float64).

    Returns
    -------
    op : Conv1dOperator, shape (C_out * L_out, C_in * L)
        ``op @ vec(x) == vec(conv1d(x, weight, ...))``; ``op.matmat(X)`` maps the
        columns of ``X`` (shape ``(C_in*L, B)``) at once; ``op.H``, ``op.T`` and
        ``op.adjoint()`` are the transposed convolution
        (:class:`ConvTranspose1dOperator`).

    Notes
    -----
    The operator stores the weight only (``O(C_out G K)`` memory) and applies,
    without forming the matrix ``M`` of :func:`~toeplitz_conv.conv1d_matrix`,

    .. math::

        (M x)[o L_{out} + i] = \sum_{c < G} \sum_{k < K} W[o, c, k]\,
            \tilde x[g(o) G + c,\; i s + k d - p_l],

    .. math::

        (M^H y)[c' L + l] = \sum_{o, i, k \,:\, \mathrm{src}(i s + k d - p_l) = l}
            \overline{W[o, c' - g(o) G, k]}\; y[o L_{out} + i],

    the second being ``conv_transpose1d`` for zero padding (taps that read the
    padding of the other modes add onto the sample they copied). Vectors are
    flattened row-major over (channel, position). Inputs of another dtype are
    computed in the common dtype (a float64 vector on a float32 operator gives
    float64).

    Examples
    --------
    >>> import numpy as np
    >>> op = conv1d_operator([4.0, 3.0], 5)
    >>> op
    <4x5 Conv1dOperator with dtype=float64: weight (1, 1, 2), input_length=5, stride=1,
    padding=(0, 0), dilation=1, groups=1, padding_mode='zeros'>
    >>> op @ np.array([1.0, 2, 3, 4, 5])
    array([10., 17., 24., 31.])
    >>> op.H @ np.array([1.0, 0, 0, 1])
    array([4., 3., 0., 4., 3.])
    >>> from scipy.sparse.linalg import lsqr
    >>> x = lsqr(op, np.array([10.0, 17, 24, 31]), atol=1e-12, btol=1e-12)[0]
    >>> np.allclose(op @ x, [10, 17, 24, 31])
    True
    """
    w = as_weight(weight)
    groups, _ = check_groups(w.shape, groups)
    geom = conv_geometry(
        input_length,
        w.shape[2],
        stride=stride,
        padding=padding,
        dilation=dilation,
        padding_mode=padding_mode,
    )
    w = np.ascontiguousarray(w, dtype=matrix_dtype(w.dtype, dtype))
    return Conv1dOperator(w, geom, groups)


def conv_transpose1d_operator(
    weight: object,
    input_length: int,
    *,
    stride: int = 1,
    padding: int | tuple[int, int] = 0,
    output_padding: int = 0,
    groups: int = 1,
    dilation: int = 1,
    dtype: object = None,
) -> ConvTranspose1dOperator:
    r"""The matrix of ``conv_transpose1d`` as a matrix-free ``LinearOperator``.

    Parameters
    ----------
    weight : array_like, shape (C_in, C_out/groups, K) or (K,)
        torch's ``conv_transpose1d`` layout: the weight of the ``conv1d`` it
        transposes.
    input_length : int
        ``L_in``, samples per channel of the transposed convolution's input.
    stride, padding, output_padding, groups, dilation : optional
        As in :func:`~toeplitz_conv.conv_transpose1d_matrix`.
    dtype : dtype, optional
        Defaults to the weight's (integers become float64).

    Returns
    -------
    op : ConvTranspose1dOperator, shape (C_out * L', C_in * L_in)
        ``L' = (L_in - 1)s - p_l - p_r + d(K-1) + output_padding + 1``;
        ``op.H`` is the :class:`Conv1dOperator` on ``L'`` samples.

    Notes
    -----
    .. math::

        z[g G + c,\; i s + k d - p_l] \mathrel{+}= W[o, c, k]\, x[o, i]
        \quad (o \text{ in group } g),

    the adjoint of ``conv1d`` on ``L'`` samples restricted to its first ``L_in``
    output positions.

    Examples
    --------
    >>> import numpy as np
    >>> op = conv_transpose1d_operator([4.0, 3.0], 2, stride=2)
    >>> op @ np.array([1.0, 2.0])
    array([4., 3., 8., 6.])
    """
    w = as_weight(weight)
    groups, _ = check_groups(w.shape, groups)
    geom = transpose_geometry(
        input_length,
        w.shape[2],
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
    )
    w = np.ascontiguousarray(w, dtype=matrix_dtype(w.dtype, dtype))
    return ConvTranspose1dOperator(Conv1dOperator(w, geom, groups))
