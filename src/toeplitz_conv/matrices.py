"""The matrices of ``conv1d`` and ``conv_transpose1d``, built straight into CSR."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ._arrays import as_array, as_weight, check_groups, check_memory, matrix_dtype
from ._geometry import (
    ConvGeometry,
    Padding,
    check_choice,
    check_int,
    conv_geometry,
    transpose_geometry,
)
from ._pattern import row_pattern

__all__ = [
    "FORMATS",
    "bias_vector",
    "conv1d_matrix",
    "conv_transpose1d_matrix",
    "output_length",
]

FORMATS: tuple[str, ...] = ("csr", "csc", "coo", "bsr", "dia", "dense")
_INT32_MAX = np.iinfo(np.int32).max
# DIA stores every diagonal at full width; beyond this many stored values per
# nonzero (plus one row of slack) it is not a sensible format for the matrix.
_DIA_MAX_FILL = 3


def output_length(
    input_length: int,
    kernel_size: int,
    *,
    stride: int = 1,
    padding: Padding = 0,
    dilation: int = 1,
) -> int:
    """Length of ``conv1d``'s output, as torch computes it.

    Parameters
    ----------
    input_length : int
        ``L``, samples per input channel.
    kernel_size : int
        ``K``, taps per kernel.
    stride, dilation : int, optional
        ``s`` and ``d``, both >= 1.
    padding : int, (int, int), 'same' or 'valid', optional
        Padding ``(p_l, p_r)``; see :func:`conv1d_matrix`.

    Returns
    -------
    int
        ``floor((L + p_l + p_r - d*(K-1) - 1) / s) + 1``.

    Raises
    ------
    ValueError
        If the output would be empty, or a parameter is out of range.

    Examples
    --------
    >>> output_length(5, 2)
    4
    >>> output_length(10, 3, stride=2, padding=1)
    5
    >>> output_length(10, 4, padding="same")
    10
    """
    return conv_geometry(
        input_length, kernel_size, stride=stride, padding=padding, dilation=dilation
    ).output_length


def bias_vector(bias: object, output_length: int) -> np.ndarray:
    """The bias as a vector over the flattened output.

    Parameters
    ----------
    bias : array_like, shape (C_out,)
        One bias per output channel.
    output_length : int
        ``L_out``.

    Returns
    -------
    ndarray, shape (C_out * L_out,)
        ``c[o*L_out + i] = bias[o]``, so that
        ``M @ vec(x) + c == vec(conv1d(x, W, bias))``.

    Examples
    --------
    >>> bias_vector([1.0, -2.0], 3)
    array([ 1.,  1.,  1., -2., -2., -2.])
    """
    b = as_array(bias, "bias")
    if b.ndim != 1:
        raise ValueError(f"`bias` must have shape (C_out,); got shape {b.shape}")
    n = check_int(output_length, "output_length", minimum=1)
    if b.dtype.kind in "biu":
        b = b.astype(np.float64)
    return np.repeat(b, n)


def _csr_arrays(
    weight: np.ndarray, geom: ConvGeometry, groups: int, c_in: int, dtype: np.dtype
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int]]:
    """``(indptr, indices, data, shape)`` of the conv matrix in canonical CSR.

    Row ``o*L_out + i`` holds, for each input channel ``c`` of output channel
    ``o``'s group in turn, the entries of the single-channel row pattern
    shifted to column block ``g(o)*G + c``. Rows ``i`` are laid out
    ``(i, c, e)``: entry ``e`` of row ``i`` for channel ``c`` sits at
    ``G*indptr[i] + c*counts[i] + (e - indptr[i])`` of each output channel's run.
    """
    c_out, G, K = weight.shape
    L, L_out, s, d = geom.input_length, geom.output_length, geom.stride, geom.dilation
    pat = row_pattern(geom)
    counts = pat.counts
    nnz1 = pat.cols.size
    shape = (c_out * L_out, c_in * L)
    index_dtype = np.int32 if max(c_out * G * nnz1, *shape) <= _INT32_MAX else np.int64
    w2 = weight.reshape(c_out, G * K).astype(dtype, copy=False)

    t_cols = np.empty(G * nnz1, dtype=index_dtype)  # one output channel's columns
    data = np.empty((c_out, G * nnz1), dtype=dtype)

    # interior rows: K taps per channel, a regular (rows, G, K) block
    lo, hi = geom.interior
    a, b = G * pat.indptr[lo], G * pat.indptr[hi]
    first_col = np.arange(lo, hi) * s - geom.pad_left
    channel_tap = (np.arange(G) * L)[:, None] + np.arange(K) * d
    np.add(
        first_col[:, None, None],
        channel_tap[None],
        out=t_cols[a:b].reshape(-1, G, K),
        casting="same_kind",
    )
    data[:, a:b].reshape(c_out, -1, G * K)[...] = w2[:, None, :]

    # boundary rows: place each entry of the pattern for every channel c
    entries = np.r_[0 : pat.indptr[lo], pat.indptr[hi] : nnz1]
    row_of = np.searchsorted(pat.indptr, entries, side="right") - 1
    channel = np.arange(G)[:, None]
    dest = (pat.indptr[row_of] * (G - 1) + entries) + channel * counts[row_of]
    t_cols[dest] = channel * L + pat.cols[entries]
    data[:, dest] = w2[:, channel * K + pat.taps[entries]]
    if pat.extra_entries.size:  # further taps on an occupied entry add up
        rows = np.searchsorted(pat.indptr, pat.extra_entries, side="right") - 1
        extra = (pat.indptr[rows] * (G - 1) + pat.extra_entries) + channel * counts[rows]
        np.add.at(data, (slice(None), extra.ravel()), w2[:, (channel * K + pat.extra_taps).ravel()])

    group_of_out = np.arange(c_out) // (c_out // groups)
    if groups == 1:
        indices = np.tile(t_cols, c_out)
    else:
        offsets = (group_of_out * G * L).astype(index_dtype)
        indices = (t_cols[None, :] + offsets[:, None]).ravel()
    indptr = np.zeros(shape[0] + 1, dtype=index_dtype)
    np.cumsum(np.tile(G * counts, c_out), out=indptr[1:])
    return indptr, indices, data.ravel(), shape


def _check_size(shape: tuple[int, int], nnz_bound: int, dtype: np.dtype, fmt: str) -> None:
    if fmt == "dense":
        check_memory(shape[0] * shape[1] * dtype.itemsize, f"the dense {shape} matrix")
    else:
        check_memory(
            nnz_bound * (dtype.itemsize + 24), f"the {shape} matrix's {nnz_bound:,} nonzeros"
        )


def _dia(coo: sp.coo_array) -> sp.dia_array:
    offsets_per_entry = coo.col.astype(np.int64) - coo.row
    offsets, which = np.unique(offsets_per_entry, return_inverse=True)
    n_cols = coo.shape[1]
    stored = offsets.size * n_cols
    if stored > _DIA_MAX_FILL * coo.nnz + n_cols:
        raise ValueError(
            f"`format`='dia' would store {offsets.size:,} diagonals x {n_cols:,} columns = "
            f"{stored:,} values for {coo.nnz:,} nonzeros; DIA is compact only for "
            "stride-1 layers whose output is about as long as the input. "
            "Use 'csr', 'csc', 'coo' or 'bsr'"
        )
    data = np.zeros((offsets.size, n_cols), dtype=coo.dtype)
    data[which, coo.col] = coo.data
    return sp.dia_array((data, offsets), shape=coo.shape)


def _finish(compressed: sp.csr_array | sp.csc_array, fmt: str) -> sp.sparray | np.ndarray:
    """Return `compressed` (canonical) in the requested format."""
    if fmt == "dense":
        return compressed.toarray()
    if fmt == compressed.format:
        return compressed
    if fmt == "dia":
        return _dia(compressed.tocoo())
    out = getattr(compressed, f"to{fmt}")()
    if fmt in ("csr", "csc", "bsr"):
        out.has_sorted_indices = True
    out.has_canonical_format = True
    return out


def _matrix(
    weight: object,
    geom_factory,
    *,
    groups: int,
    fmt: str,
    dtype: object,
    transpose: bool,
) -> sp.sparray | np.ndarray:
    w = as_weight(weight)
    groups, c_in = check_groups(w.shape, groups)
    check_choice(fmt, "format", FORMATS)
    out_dtype = matrix_dtype(w.dtype, dtype)
    geom = geom_factory(w.shape[2])
    shape = (w.shape[0] * geom.output_length, c_in * geom.input_length)
    _check_size(shape, w.shape[0] * geom.output_length * w.shape[1] * w.shape[2], out_dtype, fmt)

    indptr, indices, data, shape = _csr_arrays(w, geom, groups, c_in, out_dtype)
    if transpose:
        compressed = sp.csc_array((data, indices, indptr), shape=shape[::-1], copy=False)
    else:
        compressed = sp.csr_array((data, indices, indptr), shape=shape, copy=False)
    compressed.has_sorted_indices = True
    compressed.has_canonical_format = True
    return _finish(compressed, fmt)


def conv1d_matrix(
    weight: object,
    input_length: int,
    *,
    stride: int = 1,
    padding: Padding = 0,
    dilation: int = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    format: str = "csr",
    dtype: object = None,
) -> sp.sparray | np.ndarray:
    r"""The matrix ``M`` of ``torch.nn.functional.conv1d``: ``vec(y) = M @ vec(x)``.

    Parameters
    ----------
    weight : array_like, shape (C_out, C_in/groups, K) or (K,)
        The kernel, in torch's layout; a 1-D kernel means one channel in and out.
        Torch tensors are accepted.
    input_length : int
        ``L``, samples per input channel.
    stride, dilation, groups : int, optional
        As in torch; ``groups`` must divide ``C_out`` (``C_in = groups * weight.shape[1]``).
    padding : int, (int, int), 'same' or 'valid', optional
        ``p`` pads ``(p, p)``; a pair pads ``(p_l, p_r)``; ``'same'`` (stride 1)
        pads ``d*(K-1)`` in total, the odd one on the right, as torch does.
    padding_mode : {'zeros', 'reflect', 'replicate', 'circular'}, optional
        How the signal is extended. Reflect needs ``p < L``, circular ``p <= L``.
    format : {'csr', 'csc', 'coo', 'bsr', 'dia', 'dense'}, optional
        A canonical scipy sparse array, or an ``ndarray`` for ``'dense'``.
        ``'dia'`` is refused where it would store far more than the nonzeros.
    dtype : dtype, optional
        Defaults to the weight's (integers become float64).

    Returns
    -------
    M : sparse array or ndarray, shape (C_out * L_out, C_in * L)
        With int32 indices whenever they fit.

    Notes
    -----
    Inputs flatten row-major over (channel, position): ``vec(x)[c*L + l] = x[c, l]``.
    With ``G = C_in/groups`` and ``g(o) = o // (C_out/groups)``,

    .. math::

        M[o L_{out} + i,\; (g(o) G + c) L + \mathrm{src}(i s + k d - p_l)]
        \mathrel{+}= W[o, c, k],

    where ``src`` maps the padded position into the signal (or nowhere, for
    zero padding); taps landing on one column add up. This is cross-correlation,
    as in deep learning: the kernel is not flipped. For one channel, stride 1
    and zero padding the matrix is banded Toeplitz::

        [[w0 w1  0  0  0]
         [ 0 w0 w1  0  0]
         [ 0  0 w0 w1  0]
         [ 0  0  0 w0 w1]]

    A batch ``X`` of shape ``(N, C_in, L)`` maps to ``X.reshape(N, -1) @ M.T``;
    add :func:`bias_vector` for the bias.

    Examples
    --------
    >>> import numpy as np
    >>> M = conv1d_matrix([4.0, 3.0], 5)
    >>> M.toarray()
    array([[4., 3., 0., 0., 0.],
           [0., 4., 3., 0., 0.],
           [0., 0., 4., 3., 0.],
           [0., 0., 0., 4., 3.]])
    >>> M @ np.array([1.0, 2, 3, 4, 5])
    array([10., 17., 24., 31.])
    >>> conv1d_matrix([1.0, 2.0, 3.0], 4, padding=1, padding_mode="circular", format="dense")
    array([[2., 3., 0., 1.],
           [1., 2., 3., 0.],
           [0., 1., 2., 3.],
           [3., 0., 1., 2.]])
    """
    return _matrix(
        weight,
        lambda K: conv_geometry(
            input_length,
            K,
            stride=stride,
            padding=padding,
            dilation=dilation,
            padding_mode=padding_mode,
        ),
        groups=groups,
        fmt=format,
        dtype=dtype,
        transpose=False,
    )


def conv_transpose1d_matrix(
    weight: object,
    input_length: int,
    *,
    stride: int = 1,
    padding: int | tuple[int, int] = 0,
    output_padding: int = 0,
    groups: int = 1,
    dilation: int = 1,
    format: str = "csr",
    dtype: object = None,
) -> sp.sparray | np.ndarray:
    r"""The matrix of ``torch.nn.functional.conv_transpose1d``.

    Parameters
    ----------
    weight : array_like, shape (C_in, C_out/groups, K) or (K,)
        torch's ``conv_transpose1d`` layout: the weight of the ``conv1d`` it
        transposes.
    input_length : int
        ``L_in``, samples per channel of the transposed convolution's input.
    stride, padding, dilation, groups : optional
        As in torch; ``padding`` may also be a ``(left, right)`` pair.
    output_padding : int, optional
        Extra samples on the right, ``0 <= output_padding < max(stride, dilation)``.
    format, dtype : optional
        As in :func:`conv1d_matrix`.

    Returns
    -------
    M : sparse array or ndarray, shape (C_out * L', C_in * L_in)
        With ``L' = (L_in - 1)s - p_l - p_r + d(K-1) + output_padding + 1``.

    Notes
    -----
    ``conv_transpose1d_matrix(W, L_in, ...) == conv1d_matrix(W, L', ...).T``
    (its first ``L_in`` output positions): the transposed convolution is the
    adjoint of the convolution, and ``M.T @ g`` is ``conv1d``'s input gradient.

    Examples
    --------
    >>> conv_transpose1d_matrix([4.0, 3.0], 4).toarray()
    array([[4., 0., 0., 0.],
           [3., 4., 0., 0.],
           [0., 3., 4., 0.],
           [0., 0., 3., 4.],
           [0., 0., 0., 3.]])
    """
    return _matrix(
        weight,
        lambda K: transpose_geometry(
            input_length,
            K,
            stride=stride,
            padding=padding,
            output_padding=output_padding,
            dilation=dilation,
        ),
        groups=groups,
        fmt=format,
        dtype=dtype,
        transpose=True,
    )
