"""The matrices of ``conv1d/2d/3d`` and ``conv_transpose1d/2d/3d``, built in the format asked for.

Every builder is the same code path: a validated :class:`~._layer.Layer` (one
geometry per spatial axis), turned into a :class:`~._assemble.Grid` (the
innermost axis a band, the outer axes expanded like channels) and written into
the requested format. 1-D is the case of one axis.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from ._arrays import as_array, check_memory, matrix_dtype
from ._assemble import (
    Grid,
    box_grids,
    compressed_arrays,
    coordinate_arrays,
    dia_arrays,
    dia_offsets,
)
from ._geometry import (
    Padding,
    PaddingND,
    check_choice,
    check_int,
    conv_geometries,
    conv_geometry,
    per_axis,
)
from ._layer import Layer, conv_layer, input_size_tuple, transpose_layer
from ._pattern import band, transposed_band
from ._public import renamed_keyword

__all__ = [
    "FORMATS",
    "bias_vector",
    "conv1d_matrix",
    "conv2d_matrix",
    "conv3d_matrix",
    "conv_matrix",
    "conv_transpose1d_matrix",
    "conv_transpose2d_matrix",
    "conv_transpose3d_matrix",
    "conv_transpose_matrix",
    "output_length",
    "output_size",
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


def output_size(
    input_size: int | tuple[int, ...],
    kernel_size: int | tuple[int, ...],
    *,
    stride: int | tuple[int, ...] = 1,
    padding: PaddingND = 0,
    dilation: int | tuple[int, ...] = 1,
) -> tuple[int, ...]:
    """Output size of a convolution with ``n`` spatial axes, as torch computes it.

    Parameters
    ----------
    input_size, kernel_size : int or tuple of n ints
        ``n`` is the length of whichever is a tuple (1 if neither); an int
        applies to every axis.
    stride, padding, dilation : optional
        As in :func:`conv_matrix`.

    Returns
    -------
    tuple of n ints
        ``floor((L_a + p_{a,l} + p_{a,r} - d_a (K_a - 1) - 1) / s_a) + 1`` per axis.

    Examples
    --------
    >>> output_size((56, 56), 3, padding=1)
    (56, 56)
    >>> output_size((10, 9, 8), (3, 3, 2), stride=(2, 1, 1), padding="valid")
    (4, 7, 7)
    >>> output_size(5, 2)
    (4,)
    """
    for value, name in ((input_size, "input_size"), (kernel_size, "kernel_size")):
        if isinstance(value, (tuple, list)):
            _check_axes(value, name)
    n = next((len(v) for v in (input_size, kernel_size) if isinstance(v, (tuple, list))), 1)
    geoms = conv_geometries(
        input_size_tuple(input_size, n),
        per_axis(kernel_size, "kernel_size", n, minimum=1),
        stride=stride,
        padding=padding,
        dilation=dilation,
    )
    return tuple(g.output_length for g in geoms)


@renamed_keyword("output_length", "output_size")
def bias_vector(bias: object, output_size: int | tuple[int, ...]) -> np.ndarray:
    """The bias as a vector over the flattened output.

    Parameters
    ----------
    bias : array_like, shape (C_out,)
        One bias per output channel.
    output_size : int or tuple of ints
        ``L_out``, or ``(L_out,1, ..., L_out,n)``.

    Returns
    -------
    ndarray, shape (C_out * prod(output_size),)
        ``c[o*P + i] = bias[o]`` with ``P = prod(output_size)``, so that
        ``M @ vec(x) + c == vec(conv(x, W, bias))``.

    Examples
    --------
    >>> bias_vector([1.0, -2.0], 3)
    array([ 1.,  1.,  1., -2., -2., -2.])
    >>> bias_vector([1.0, -2.0], (2, 2))
    array([ 1.,  1.,  1.,  1., -2., -2., -2., -2.])
    """
    b = as_array(bias, "bias")
    if b.ndim != 1:
        raise ValueError(f"`bias` must have shape (C_out,); got shape {b.shape}")
    if isinstance(output_size, (tuple, list)):
        _check_axes(output_size, "output_size")
        n = math.prod(per_axis(output_size, "output_size", len(output_size), minimum=1))
    else:
        n = check_int(output_size, "output_length", minimum=1)
    if b.dtype.kind in "biu":
        b = b.astype(np.float64)
    check_memory(b.size * n * b.dtype.itemsize, f"the bias vector of {b.size * n:,} values")
    return np.repeat(b, n)


def _check_axes(size: tuple | list, name: str) -> None:
    """A tuple size has one entry per spatial axis: 1, 2 or 3 of them."""
    if not 1 <= len(size) <= 3:
        raise ValueError(
            f"`{name}` must be an int or a tuple of 1, 2 or 3 ints (one per spatial axis); "
            f"got {tuple(size)!r}"
        )


def _grid(layer: Layer, dtype: np.dtype, *, by_columns: bool) -> Grid:
    """`layer`'s matrix ``M`` as a :class:`~._assemble.Grid` (or ``M.T`` with `by_columns`).

    ``M``: row channel ``o`` has the input channels of its group, ``g(o)*G + c``,
    with the forward band of each axis. ``M.T``: row channel ``c'`` has the output
    channels of its group, ``o``, valued ``W[o, c' - g*G, k]``, with each axis'
    transposed band.
    """
    w, groups, geoms = layer.weight, layer.groups, layer.geoms
    c_out, G = w.shape[:2]
    if not by_columns:
        bands = [band(g) for g in geoms]
        base = (np.arange(c_out, dtype=np.int64) // (c_out // groups)) * G
        return Grid(bands[-1], tuple(bands[:-1]), w.astype(dtype, copy=False), base, G * groups)
    per_group = c_out // groups
    kernel = w.shape[2:]
    w_t = w.reshape(groups, per_group, G, *kernel).swapaxes(1, 2)
    w_t = w_t.reshape(G * groups, per_group, *kernel).astype(dtype)
    bands = [transposed_band(g) for g in geoms]
    base = (np.arange(G * groups, dtype=np.int64) // G) * per_group
    return Grid(bands[-1], tuple(bands[:-1]), w_t, base, c_out)


def _check_size(shape: tuple[int, int], nnz_bound: int, dtype: np.dtype, fmt: str) -> None:
    """Refuse a matrix that cannot fit: the values and indices of `nnz_bound` entries, plus
    the pointer over the rows it is assembled by (over the columns for CSC)."""
    if fmt == "dense":
        check_memory(shape[0] * shape[1] * dtype.itemsize, f"the dense {shape} matrix")
    else:
        lines = shape[1] if fmt == "csc" else shape[0]
        check_memory(  # already sparse: the way out is a smaller problem or no matrix at all
            nnz_bound * (dtype.itemsize + 24) + (lines + 1) * 8,
            f"the {shape} matrix's index pointer and {nnz_bound:,} nonzeros",
            f"format={fmt!r} is already sparse: use a shorter input, or the matrix-free "
            "operator (conv_operator) instead of a matrix",
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


def _index_dtype(nnz: int, shape: tuple[int, int]) -> type:
    return np.int32 if max(nnz, *shape) <= _INT32_MAX else np.int64


def _build(grid: Grid, fmt: str) -> sp.sparray | np.ndarray:
    """The matrix whose rows `grid` describes; for ``'csc'``, whose columns it describes.

    CSR and COO are written directly from the rows, CSC directly as the CSR of
    the transpose, DIA directly in 1-D (through COO in N-d); BSR and dense are
    converted from CSR.
    """
    shape = grid.shape
    index_dtype = _index_dtype(grid.nnz, shape)
    if fmt == "csc":
        indptr, indices, data = compressed_arrays(grid, index_dtype, shape)
        return _canonical(sp.csc_array((data, indices, indptr), shape=shape[::-1], copy=False))
    if fmt == "coo":
        return _coo_array(*coordinate_arrays(grid, index_dtype, shape), shape)
    if fmt == "dia":
        offsets = None if grid.outer else dia_offsets(grid)
        if offsets is None:
            return _dia_from_coo(_coo_array(*coordinate_arrays(grid, index_dtype, shape), shape))
        _check_dia_fill(offsets.size, shape, grid.nnz)
        return sp.dia_array((dia_arrays(grid, offsets), offsets), shape=shape, copy=False)
    return _from_csr(compressed_arrays(grid, index_dtype, shape), shape, fmt)


def _from_csr(arrays: tuple[np.ndarray, ...], shape: tuple[int, int], fmt: str):
    indptr, indices, data = arrays
    csr = _canonical(sp.csr_array((data, indices, indptr), shape=shape, copy=False))
    if fmt == "dense":
        return csr.toarray()
    if fmt == "bsr":
        bsr = csr.tobsr()  # scipy leaves block columns in order of appearance
        bsr.has_sorted_indices = False
        bsr.sort_indices()
        return _canonical(bsr)
    return csr


_ROW_FORMATS = ("csr", "coo", "dense")


def _check_rows(rows: object, n_rows: int, fmt: str) -> tuple[int, int]:
    """Validate ``rows=(r0, r1)`` against a matrix of `n_rows` rows."""
    if not isinstance(rows, (tuple, list)) or len(rows) != 2:
        raise TypeError(f"`rows` must be a pair (r0, r1) of ints, or None; got {rows!r}")
    r0 = check_int(rows[0], "rows[0]", minimum=0)
    r1 = check_int(rows[1], "rows[1]", minimum=0)
    if not r0 <= r1 <= n_rows:
        raise ValueError(
            f"`rows`=({r0}, {r1}) must satisfy 0 <= r0 <= r1 <= {n_rows:,} (the matrix's rows)"
        )
    if fmt not in _ROW_FORMATS:
        allowed = ", ".join(repr(f) for f in _ROW_FORMATS)
        raise ValueError(f"`format`={fmt!r} is not available with `rows`; use one of {allowed}")
    return r0, r1


def layer_matrix(
    layer: Layer,
    *,
    fmt: str = "csr",
    dtype: object = None,
    transpose: bool = False,
    rows: object = None,
) -> sp.sparray | np.ndarray:
    """``M`` of a validated `layer` (or ``M.T`` with `transpose`) in format `fmt`.

    With ``rows=(r0, r1)`` (not with `transpose`): rows ``[r0, r1)`` of ``M`` only,
    built in time and memory proportional to them.
    """
    check_choice(fmt, "format", FORMATS)
    w = layer.weight
    out_dtype = matrix_dtype(w.dtype, dtype)
    per_row = math.prod(w.shape[1:])  # at most G * prod(K) entries in a row of M
    if rows is not None:
        r0, r1 = _check_rows(rows, layer.shape[0], fmt)
        shape = (r1 - r0, layer.shape[1])
        _check_size(shape, shape[0] * per_row, out_dtype, fmt)
        grids = box_grids(_grid(layer, out_dtype, by_columns=False), r0, r1)
        nnz = sum(g.nnz for g in grids)
        index_dtype = _index_dtype(nnz, shape)
        if fmt == "coo":
            return _coo_array(*coordinate_arrays(grids, index_dtype, shape, out_dtype), shape)
        return _from_csr(compressed_arrays(grids, index_dtype, shape, out_dtype), shape, fmt)
    rows_of_m = layer.shape[0]
    nnz_bound = rows_of_m * per_row
    _check_size(layer.shape[::-1] if transpose else layer.shape, nnz_bound, out_dtype, fmt)
    # CSC of M is the CSR of M.T; conv_transpose's matrix is M.T of its geometry.
    by_columns = (fmt == "csc") != transpose
    return _build(_grid(layer, out_dtype, by_columns=by_columns), fmt)


def _conv_matrix(
    ndim, weight, input_size, stride, padding, dilation, groups, padding_mode, format, dtype, rows
):
    layer = conv_layer(
        weight,
        input_size,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        padding_mode=padding_mode,
        ndim=ndim,
    )
    return layer_matrix(layer, fmt=format, dtype=dtype, rows=rows)


def _transpose_matrix(
    ndim, weight, input_size, stride, padding, output_padding, groups, dilation, format, dtype
):
    layer = transpose_layer(
        weight,
        input_size,
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        groups=groups,
        dilation=dilation,
        ndim=ndim,
    )
    return layer_matrix(layer, fmt=format, dtype=dtype, transpose=True)


_PARAMETERS_DOC = """
    stride, dilation : int or tuple of n ints, optional
        Per axis; an int applies to every axis.
    padding : int, tuple, 'same' or 'valid', optional
        An int pads every axis on both sides; a tuple has one item per axis, an
        int (both sides) or a ``(left, right)`` pair. ``'same'`` (stride 1) pads
        ``d_a (K_a - 1)`` in total on axis ``a``, the odd one on the right, as torch.
    groups : int, optional
        Must divide ``C_out``; ``C_in = groups * weight.shape[1]``.
    padding_mode : {'zeros', 'reflect', 'replicate', 'circular'}, optional
        Separable per axis, as ``nn.Conv2d(padding_mode=...)``.
    format : {'csr', 'csc', 'coo', 'bsr', 'dia', 'dense'}, optional
        A canonical scipy sparse array, or an ``ndarray`` for ``'dense'``.
        ``'dia'`` is refused where it would store far more than the nonzeros.
    dtype : dtype, optional
        Defaults to the weight's (integers become float64).
    rows : (int, int), optional
        ``(r0, r1)``: only rows ``[r0, r1)`` of ``M``, shape ``(r1 - r0, n_cols)``,
        built in time and memory proportional to them (formats 'csr', 'coo',
        'dense'); for assembling a matrix by row blocks, e.g. one per MPI rank."""


def conv_matrix(
    weight: object,
    input_size: int | tuple[int, ...],
    *,
    stride: int | tuple[int, ...] = 1,
    padding: PaddingND = 0,
    dilation: int | tuple[int, ...] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    format: str = "csr",
    dtype: object = None,
    rows: tuple[int, int] | None = None,
) -> sp.sparray | np.ndarray:
    r"""The matrix ``M`` of a convolution on ``n = 1, 2, 3`` axes: ``vec(y) = M @ vec(x)``.

    Parameters
    ----------
    weight : array_like, shape (C_out, C_in/groups, K_1, ..., K_n) or (K_1, ..., K_n)
        The kernel in torch's layout; the kernel axes alone mean one channel in
        and out (``n`` is then ``len(input_size)``). Torch tensors are accepted.
    input_size : int or tuple of n ints
        ``(L_1, ..., L_n)``. An int applies to every axis of the weight: with a
        ``(C_out, C_in/groups, K)`` or ``(K,)`` weight it is 1-D (``conv1d_matrix``),
        with a ``(C_out, C_in/groups, K_1, K_2)`` weight ``(L, L)``, and so on.
    %(parameters)s

    Returns
    -------
    M : sparse array or ndarray, shape (C_out * prod(L_out), C_in * prod(L))
        With int32 indices whenever they fit.

    See Also
    --------
    conv1d_matrix, conv2d_matrix, conv3d_matrix, conv_transpose_matrix

    Notes
    -----
    Rows and columns flatten row-major over ``(channel, L_1, ..., L_n)``, i.e.
    ``x.reshape(-1)`` of one sample; a batch is ``X.reshape(N, -1) @ M.T``. With
    ``G = C_in/groups`` and ``g(o) = o // (C_out/groups)``,

    .. math::

        M[(o, i_1, ..., i_n),\; (g(o) G + c, \mathrm{src}_1(i_1 s_1 + k_1 d_1 - p_1), ...,
        \mathrm{src}_n(i_n s_n + k_n d_n - p_n))] \mathrel{+}= W[o, c, k_1, ..., k_n],

    each ``src_a`` mapping a padded position on axis ``a`` into the input (or
    nowhere, for zero padding). Each channel block is
    ``sum_k W[o, c, k] S_1^{k_1} (x) ... (x) S_n^{k_n}`` with ``S_a^k`` the 1-D
    selection matrix of tap ``k`` on axis ``a``: block Toeplitz with Toeplitz
    blocks for zero padding, block circulant with circulant blocks for circular.

    Examples
    --------
    >>> import numpy as np
    >>> M = conv_matrix(np.ones((1, 1, 2, 2)), (3, 3))
    >>> M.shape, M.nnz
    ((4, 9), 16)
    >>> conv_matrix([4.0, 3.0], 5).toarray()[0]
    array([4., 3., 0., 0., 0.])
    """
    return _conv_matrix(
        None,
        weight,
        input_size,
        stride,
        padding,
        dilation,
        groups,
        padding_mode,
        format,
        dtype,
        rows,
    )


def conv2d_matrix(
    weight: object,
    input_size: int | tuple[int, int],
    *,
    stride: int | tuple[int, int] = 1,
    padding: PaddingND = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    format: str = "csr",
    dtype: object = None,
    rows: tuple[int, int] | None = None,
) -> sp.sparray | np.ndarray:
    r"""The matrix ``M`` of ``torch.nn.functional.conv2d``: ``vec(y) = M @ vec(x)``.

    Parameters
    ----------
    weight : array_like, shape (C_out, C_in/groups, K_1, K_2) or (K_1, K_2)
        The kernel in torch's layout; ``(K_1, K_2)`` is one channel in and out.
    input_size : int or (int, int)
        ``(H, W)``; an int means a square image.
    %(parameters)s

    Returns
    -------
    M : sparse array or ndarray, shape (C_out * H_out * W_out, C_in * H * W)
        With int32 indices whenever they fit.

    See Also
    --------
    conv_matrix, conv_transpose2d_matrix

    Notes
    -----
    ``vec(x)[(c H + h) W + w] = x[c, h, w]`` (``x.reshape(-1)``), and

    .. math::

        M[(o H_{out} + i) W_{out} + j,\; ((g(o) G + c) H + \mathrm{src}_1(i s_1 + k_1 d_1 - p_1))
        W + \mathrm{src}_2(j s_2 + k_2 d_2 - p_2)] \mathrel{+}= W[o, c, k_1, k_2].

    Each ``(o, c)`` block is ``sum_{k_1, k_2} W[o, c, k_1, k_2] S_1^{k_1} (x) S_2^{k_2}``:
    block Toeplitz with Toeplitz blocks (BTTB) for zero padding, block circulant
    with circulant blocks (BCCB) for circular padding.

    Examples
    --------
    A 3x3 kernel on a 4x4 image: 16 columns, a 2x2 output. The block row of
    output row ``i`` holds the Toeplitz blocks of kernel rows 0, 1, 2 at block
    columns ``i, i+1, i+2`` (BTTB):

    >>> import numpy as np
    >>> w = np.arange(1.0, 10.0).reshape(3, 3)
    >>> M = conv2d_matrix(w, (4, 4))
    >>> M.toarray().astype(int)
    array([[1, 2, 3, 0, 4, 5, 6, 0, 7, 8, 9, 0, 0, 0, 0, 0],
           [0, 1, 2, 3, 0, 4, 5, 6, 0, 7, 8, 9, 0, 0, 0, 0],
           [0, 0, 0, 0, 1, 2, 3, 0, 4, 5, 6, 0, 7, 8, 9, 0],
           [0, 0, 0, 0, 0, 1, 2, 3, 0, 4, 5, 6, 0, 7, 8, 9]])
    >>> x = np.arange(16.0).reshape(4, 4)
    >>> (M @ x.reshape(-1)).reshape(2, 2)
    array([[303., 348.],
           [483., 528.]])
    """
    return _conv_matrix(
        2, weight, input_size, stride, padding, dilation, groups, padding_mode, format, dtype, rows
    )


def conv3d_matrix(
    weight: object,
    input_size: int | tuple[int, int, int],
    *,
    stride: int | tuple[int, int, int] = 1,
    padding: PaddingND = 0,
    dilation: int | tuple[int, int, int] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    format: str = "csr",
    dtype: object = None,
    rows: tuple[int, int] | None = None,
) -> sp.sparray | np.ndarray:
    r"""The matrix ``M`` of ``torch.nn.functional.conv3d``: ``vec(y) = M @ vec(x)``.

    Parameters
    ----------
    weight : array_like, shape (C_out, C_in/groups, K_1, K_2, K_3) or (K_1, K_2, K_3)
        The kernel in torch's layout; the kernel alone is one channel in and out.
    input_size : int or (int, int, int)
        ``(D, H, W)``; an int means a cube.
    %(parameters)s

    Returns
    -------
    M : sparse array or ndarray, shape (C_out * D_out * H_out * W_out, C_in * D * H * W)
        With int32 indices whenever they fit.

    See Also
    --------
    conv_matrix, conv_transpose3d_matrix

    Notes
    -----
    As :func:`conv_matrix` with ``n = 3``: rows and columns flatten row-major
    over ``(channel, D, H, W)``; each channel block is a three-level
    ``sum_k W[o, c, k] S_1^{k_1} (x) S_2^{k_2} (x) S_3^{k_3}``.

    Examples
    --------
    >>> import numpy as np
    >>> M = conv3d_matrix(np.ones((2, 2, 2)), 3, padding=1, padding_mode="circular")
    >>> M.shape, M.nnz
    ((64, 27), 512)
    """
    return _conv_matrix(
        3, weight, input_size, stride, padding, dilation, groups, padding_mode, format, dtype, rows
    )


_TRANSPOSE_PARAMETERS_DOC = """
    stride, dilation : int or tuple of n ints, optional
        As in torch, per axis.
    padding : int or tuple, optional
        An int (every axis, both sides) or one item per axis, an int or a
        ``(left, right)`` pair.
    output_padding : int or tuple of n ints, optional
        Extra samples on the right of each axis, ``0 <= q_a < max(s_a, d_a)``.
    groups : int, optional
        As in torch.
    format, dtype : optional
        As in :func:`conv_matrix`."""


def conv_transpose_matrix(
    weight: object,
    input_size: int | tuple[int, ...],
    *,
    stride: int | tuple[int, ...] = 1,
    padding: object = 0,
    output_padding: int | tuple[int, ...] = 0,
    groups: int = 1,
    dilation: int | tuple[int, ...] = 1,
    format: str = "csr",
    dtype: object = None,
) -> sp.sparray | np.ndarray:
    r"""The matrix of a transposed convolution with ``n = 1, 2, 3`` spatial axes.

    Parameters
    ----------
    weight : array_like, shape (C_in, C_out/groups, K_1, ..., K_n) or (K_1, ..., K_n)
        torch's ``conv_transpose`` layout: the weight of the convolution it transposes.
    input_size : int or tuple of n ints
        ``(L_1, ..., L_n)`` of the transposed convolution's input; an int means 1-D.
    %(parameters)s

    Returns
    -------
    M : sparse array or ndarray, shape (C_out * prod(L'), C_in * prod(L))
        With ``L'_a = (L_a - 1) s_a - p_{a,l} - p_{a,r} + d_a (K_a - 1) + q_a + 1``.

    See Also
    --------
    conv_matrix, conv_transpose1d_matrix, conv_transpose2d_matrix, conv_transpose3d_matrix

    Notes
    -----
    ``conv_transpose_matrix(W, L, ...) == conv_matrix(W, L', ...).T`` (its first
    ``L`` output positions on each axis): the transposed convolution is the
    transpose of the convolution, and ``M.T @ g`` is its input gradient.

    Examples
    --------
    >>> import numpy as np
    >>> conv_transpose_matrix(np.ones((2, 2)), (2, 2)).toarray().astype(int)
    array([[1, 0, 0, 0],
           [1, 1, 0, 0],
           [0, 1, 0, 0],
           [1, 0, 1, 0],
           [1, 1, 1, 1],
           [0, 1, 0, 1],
           [0, 0, 1, 0],
           [0, 0, 1, 1],
           [0, 0, 0, 1]])
    """
    return _transpose_matrix(
        None, weight, input_size, stride, padding, output_padding, groups, dilation, format, dtype
    )


def conv_transpose2d_matrix(
    weight: object,
    input_size: int | tuple[int, int],
    *,
    stride: int | tuple[int, int] = 1,
    padding: object = 0,
    output_padding: int | tuple[int, int] = 0,
    groups: int = 1,
    dilation: int | tuple[int, int] = 1,
    format: str = "csr",
    dtype: object = None,
) -> sp.sparray | np.ndarray:
    r"""The matrix of ``torch.nn.functional.conv_transpose2d``.

    Parameters
    ----------
    weight : array_like, shape (C_in, C_out/groups, K_1, K_2) or (K_1, K_2)
        torch's ``conv_transpose2d`` layout.
    input_size : int or (int, int)
        ``(H, W)`` of the transposed convolution's input.
    %(parameters)s

    Returns
    -------
    M : sparse array or ndarray, shape (C_out * H' * W', C_in * H * W)
        ``conv2d_matrix(W, (H', W'), ...).T``; see :func:`conv_transpose_matrix`.

    Examples
    --------
    >>> import numpy as np
    >>> M = conv_transpose2d_matrix(np.ones((1, 1, 3, 3)), (2, 2), stride=2, output_padding=1)
    >>> M.shape
    (36, 4)
    """
    return _transpose_matrix(
        2, weight, input_size, stride, padding, output_padding, groups, dilation, format, dtype
    )


def conv_transpose3d_matrix(
    weight: object,
    input_size: int | tuple[int, int, int],
    *,
    stride: int | tuple[int, int, int] = 1,
    padding: object = 0,
    output_padding: int | tuple[int, int, int] = 0,
    groups: int = 1,
    dilation: int | tuple[int, int, int] = 1,
    format: str = "csr",
    dtype: object = None,
) -> sp.sparray | np.ndarray:
    r"""The matrix of ``torch.nn.functional.conv_transpose3d``.

    Parameters
    ----------
    weight : array_like, shape (C_in, C_out/groups, K_1, K_2, K_3) or (K_1, K_2, K_3)
        torch's ``conv_transpose3d`` layout.
    input_size : int or (int, int, int)
        ``(D, H, W)`` of the transposed convolution's input.
    %(parameters)s

    Returns
    -------
    M : sparse array or ndarray, shape (C_out * D' * H' * W', C_in * D * H * W)
        ``conv3d_matrix(W, (D', H', W'), ...).T``; see :func:`conv_transpose_matrix`.

    Examples
    --------
    >>> import numpy as np
    >>> conv_transpose3d_matrix(np.ones((2, 2, 2)), 2).shape
    (27, 8)
    """
    return _transpose_matrix(
        3, weight, input_size, stride, padding, output_padding, groups, dilation, format, dtype
    )


for _f in (conv_matrix, conv2d_matrix, conv3d_matrix):
    _f.__doc__ = _f.__doc__.replace("    %(parameters)s", _PARAMETERS_DOC.strip("\n"))
for _f in (conv_transpose_matrix, conv_transpose2d_matrix, conv_transpose3d_matrix):
    _f.__doc__ = _f.__doc__.replace("    %(parameters)s", _TRANSPOSE_PARAMETERS_DOC.strip("\n"))
del _f


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
    rows: tuple[int, int] | None = None,
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
    rows : (int, int), optional
        ``(r0, r1)``: only rows ``[r0, r1)``, as in :func:`conv_matrix`.

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
    return _conv_matrix(
        1,
        weight,
        input_length,
        stride,
        padding,
        dilation,
        groups,
        padding_mode,
        format,
        dtype,
        rows,
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
    return _transpose_matrix(
        1, weight, input_length, stride, padding, output_padding, groups, dilation, format, dtype
    )
