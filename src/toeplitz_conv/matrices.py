"""The matrices of ``conv1d`` and ``conv_transpose1d``, built straight into the format asked for."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ._arrays import as_array, check_memory, matrix_dtype
from ._assemble import (
    Blocks,
    compressed_arrays,
    coordinate_arrays,
    dia_arrays,
    dia_offsets,
)
from ._geometry import (
    ConvGeometry,
    Padding,
    check_choice,
    check_int,
    conv_geometry,
)
from ._layer import Layer, conv_layer, transpose_layer
from ._pattern import band, transposed_band

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


def _forward_blocks(
    weight: np.ndarray, geom: ConvGeometry, groups: int, c_in: int, dtype: np.dtype
) -> Blocks:
    """The conv matrix ``M`` as blocks: output channel ``o`` by input channels of its group.

    Row ``o*L_out + i`` holds, for each input channel ``c`` of ``o``'s group in
    turn, row ``i`` of the single-channel band shifted to column block
    ``g(o)*G + c``, valued ``W[o, c, tap]``.
    """
    c_out, G, _ = weight.shape
    base = (np.arange(c_out, dtype=np.int64) // (c_out // groups)) * G
    return Blocks(band(geom), weight.astype(dtype, copy=False), base, c_in)


def _transposed_blocks(
    weight: np.ndarray, geom: ConvGeometry, groups: int, c_in: int, dtype: np.dtype
) -> Blocks:
    """``M.T`` as blocks: input channel ``c'`` by the output channels of its group.

    Row ``c'*L + l`` holds, for each output channel ``o`` of group ``g = c' // G``
    in turn, row ``l`` of the transposed band shifted to column block ``o``,
    valued ``W[o, c' - g*G, tap]``.
    """
    c_out, G, K = weight.shape
    per_group = c_out // groups
    w_t = weight.reshape(groups, per_group, G, K).transpose(0, 2, 1, 3).reshape(c_in, per_group, K)
    base = (np.arange(c_in, dtype=np.int64) // G) * per_group
    return Blocks(transposed_band(geom), w_t.astype(dtype), base, c_out)


def _check_size(shape: tuple[int, int], nnz_bound: int, dtype: np.dtype, fmt: str) -> None:
    if fmt == "dense":
        check_memory(shape[0] * shape[1] * dtype.itemsize, f"the dense {shape} matrix")
    else:
        check_memory(
            nnz_bound * (dtype.itemsize + 24), f"the {shape} matrix's {nnz_bound:,} nonzeros"
        )


def _check_dia_fill(n_offsets: int, shape: tuple[int, int], nnz: int) -> None:
    stored = n_offsets * shape[1]
    if stored > _DIA_MAX_FILL * nnz + shape[1]:
        raise ValueError(
            f"`format`='dia' would store {n_offsets:,} diagonals x {shape[1]:,} columns = "
            f"{stored:,} values for {nnz:,} nonzeros; DIA is compact only for "
            "stride-1 layers whose output is about as long as the input. "
            "Use 'csr', 'csc', 'coo' or 'bsr'"
        )


def _dia_from_coo(coo: sp.coo_array) -> sp.dia_array:
    """DIA from canonical COO: for strided layers, whose diagonals change row by row."""
    offsets, which = np.unique(coo.col.astype(np.int64) - coo.row, return_inverse=True)
    _check_dia_fill(offsets.size, coo.shape, coo.nnz)
    data = np.zeros((offsets.size, coo.shape[1]), dtype=coo.dtype)
    data[which, coo.col] = coo.data
    return sp.dia_array((data, offsets), shape=coo.shape)


def _canonical(matrix: sp.sparray) -> sp.sparray:
    if matrix.format in ("csr", "csc", "bsr"):
        matrix.has_sorted_indices = True
    matrix.has_canonical_format = True
    return matrix


def _coo_array(row: np.ndarray, col: np.ndarray, data: np.ndarray, shape) -> sp.coo_array:
    """COO from arrays built canonical and in range, without scipy's O(nnz) range checks."""
    out = sp.coo_array(shape, dtype=data.dtype)
    out.coords, out.data = (row, col), data
    return _canonical(out)


def _build(blocks: Blocks, fmt: str) -> sp.sparray | np.ndarray:
    """The matrix whose rows `blocks` describes; for ``'csc'``, whose columns it describes.

    CSR, COO and DIA are written directly from the rows, CSC directly as the
    CSR of the transpose; BSR and dense are converted from CSR.
    """
    shape = blocks.shape
    index_dtype = np.int32 if max(blocks.nnz, *shape) <= _INT32_MAX else np.int64
    if fmt == "csc":
        indptr, indices, data = compressed_arrays(blocks, index_dtype)
        return _canonical(sp.csc_array((data, indices, indptr), shape=shape[::-1], copy=False))
    if fmt == "coo":
        return _coo_array(*coordinate_arrays(blocks, index_dtype), shape)
    if fmt == "dia":
        offsets = dia_offsets(blocks)
        if offsets is None:
            return _dia_from_coo(_coo_array(*coordinate_arrays(blocks, index_dtype), shape))
        _check_dia_fill(offsets.size, shape, blocks.nnz)
        return sp.dia_array((dia_arrays(blocks, offsets), offsets), shape=shape, copy=False)
    indptr, indices, data = compressed_arrays(blocks, index_dtype)
    csr = _canonical(sp.csr_array((data, indices, indptr), shape=shape, copy=False))
    if fmt == "dense":
        return csr.toarray()
    if fmt == "bsr":
        bsr = csr.tobsr()  # scipy leaves block columns in order of appearance
        bsr.has_sorted_indices = False
        bsr.sort_indices()
        return _canonical(bsr)
    return csr


def layer_matrix(
    layer: Layer, *, fmt: str = "csr", dtype: object = None, transpose: bool = False
) -> sp.sparray | np.ndarray:
    """``M`` of a validated `layer` (or ``M.T`` with `transpose`) in format `fmt`."""
    check_choice(fmt, "format", FORMATS)
    w, geom = layer.weight, layer.geom
    out_dtype = matrix_dtype(w.dtype, dtype)
    _check_size(layer.shape, layer.shape[0] * w.shape[1] * w.shape[2], out_dtype, fmt)

    # CSC of M is the CSR of M.T; conv_transpose1d's matrix is M.T of its geometry.
    by_columns = (fmt == "csc") != transpose
    blocks = (_transposed_blocks if by_columns else _forward_blocks)(
        w, geom, layer.groups, layer.in_channels, out_dtype
    )
    return _build(blocks, fmt)


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
    layer = conv_layer(
        weight,
        input_length,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        padding_mode=padding_mode,
    )
    return layer_matrix(layer, fmt=format, dtype=dtype)


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
    layer = transpose_layer(
        weight,
        input_length,
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        groups=groups,
        dilation=dilation,
    )
    return layer_matrix(layer, fmt=format, dtype=dtype, transpose=True)
