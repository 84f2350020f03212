"""PyTorch interop: the matrix of ``nn.Conv1d/2d/3d``/``nn.ConvTranspose1d/2d/3d``; sparse tensors.

Torch is optional: it is imported only inside the functions here, and a missing torch
gives an :class:`ImportError` that says how to install it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, cast, overload

import numpy as np
import scipy.sparse as sp

from ._files import as_matrix
from ._geometry import check_choice
from ._public import renamed_keyword
from ._torch import conv_classes, import_torch
from ._typing import (
    AnySparse,
    ArrayLike,
    DTypeLike,
    MatrixFormat,
    NDArray,
    SparseArray,
    SparseFormat,
)
from .matrices import bias_vector, conv_matrix, conv_transpose_matrix

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ._typing import TorchConv

__all__ = ["from_torch", "to_torch_sparse"]

_LAYOUTS: tuple[str, ...] = ("coo", "csr", "csc")


def to_torch_sparse(
    matrix: AnySparse | sp.spmatrix | ArrayLike,
    *,
    layout: Literal["coo", "csr", "csc"] | torch.layout = "coo",
) -> torch.Tensor:
    """Convert a matrix to a torch sparse tensor.

    Parameters
    ----------
    matrix : sparse array or matrix, or array_like, shape (m, n)
        Typically the result of :func:`conv1d_matrix`.
    layout : {'coo', 'csr', 'csc'} or torch.layout, optional
        ``'coo'`` gives a coalesced ``torch.sparse_coo`` tensor with int64 indices;
        ``'csr'``/``'csc'`` give ``torch.sparse_csr``/``torch.sparse_csc`` tensors with
        the matrix's own (int32 or int64) index dtype. ``torch.sparse_coo`` etc. work too.

    Returns
    -------
    torch.Tensor, shape (m, n)
        A sparse CPU tensor with the matrix's dtype, owning its memory (a copy).

    Raises
    ------
    ModuleNotFoundError
        When torch is not installed.

    Examples
    --------
    >>> import pytest; torch = pytest.importorskip("torch")  # (skips this example without torch)
    >>> from toeplitz_conv import conv1d_matrix
    >>> T = to_torch_sparse(conv1d_matrix([4.0, 3.0], 5))
    >>> T.layout
    torch.sparse_coo
    >>> T.to_dense()
    tensor([[4., 3., 0., 0., 0.],
            [0., 4., 3., 0., 0.],
            [0., 0., 4., 3., 0.],
            [0., 0., 0., 4., 3.]], dtype=torch.float64)
    """
    torch = import_torch("to_torch_sparse")
    kind: object = layout  # a torch.layout is read by its name
    if not isinstance(layout, str) and type(layout).__module__.startswith("torch"):
        kind = str(layout).removeprefix("torch.sparse_")
    check_choice(kind, "layout", _LAYOUTS)
    m = as_matrix(matrix)
    size = m.shape
    if kind == "coo":
        coo = sp.coo_array(m)
        coo.sum_duplicates()  # row-major, no duplicates: coalesced
        indices = torch.tensor(np.stack(coo.coords).astype(np.int64))
        values = torch.tensor(coo.data)
        try:  # our entries are sorted and unique: tell torch, don't re-check
            return torch.sparse_coo_tensor(
                indices, values, size, check_invariants=False, is_coalesced=True
            )
        except TypeError:  # pragma: no cover - torch < 2.1 has no `is_coalesced`
            return torch.sparse_coo_tensor(indices, values, size).coalesce()
    compressed = sp.csr_array(m) if kind == "csr" else sp.csc_array(m)
    compressed.sum_duplicates()
    indptr = torch.tensor(compressed.indptr)
    indices = torch.tensor(compressed.indices.astype(compressed.indptr.dtype, copy=False))
    values = torch.tensor(compressed.data)
    make = torch.sparse_csr_tensor if kind == "csr" else torch.sparse_csc_tensor
    return make(indptr, indices, values, size, check_invariants=False)


@overload
def from_torch(
    module: TorchConv,
    input_size: int | tuple[int, ...],
    *,
    format: SparseFormat = ...,
    dtype: DTypeLike | None = ...,
) -> tuple[SparseArray, NDArray[Any]]: ...
@overload
def from_torch(
    module: TorchConv,
    input_size: int | tuple[int, ...],
    *,
    format: Literal["dense"],
    dtype: DTypeLike | None = ...,
) -> tuple[NDArray[Any], NDArray[Any]]: ...
@renamed_keyword("input_length", "input_size")
def from_torch(
    module: TorchConv,
    input_size: int | tuple[int, ...],
    *,
    format: MatrixFormat = "csr",
    dtype: DTypeLike | None = None,
) -> tuple[SparseArray | NDArray[Any], NDArray[Any]]:
    r"""The matrix and bias vector of a torch conv module (1, 2 or 3 spatial axes).

    Parameters
    ----------
    module : torch.nn.Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d or ConvTranspose3d
        Any padding (int, tuple, ``'same'``, ``'valid'``), ``padding_mode``, stride,
        dilation and groups; for the transposed modules also ``output_padding``.
    input_size : int or tuple of n ints
        The module input's spatial size ``(S_1, ..., S_n)``; an int applies to every axis
        (for a 1-D module it is ``L``, as before).
    format : {'csr', 'csc', 'coo', 'bsr', 'dia', 'dense'}, optional
        As in :func:`conv_matrix`.
    dtype : dtype, optional
        Defaults to the module weight's (``float32`` for a default module).

    Returns
    -------
    M : sparse array or ndarray, shape (C_out * prod(S_out), C_in * prod(S))
        ``conv_matrix`` (or ``conv_transpose_matrix``) of the module's weight and settings.
    c : ndarray, shape (C_out * prod(S_out),)
        The bias repeated over the output positions (zeros when the module has no bias), so
        that ``M @ x.reshape(-1) + c == module(x).reshape(-1)`` for ``x`` of shape
        ``(C_in, *S)`` and ``X.reshape(N, -1) @ M.T + c`` for a batch.

    Raises
    ------
    TypeError
        If `module` is not one of these modules (or is an uninitialised lazy one).
    ValueError
        If `input_size` does not fit the module (e.g. an empty output, or a tuple whose
        length is not the module's number of spatial axes).
    ModuleNotFoundError
        When torch is not installed.

    Notes
    -----
    ``ConvTranspose*d.forward`` may be given ``output_size``, which changes the output
    padding for that call; the matrix here uses the module's ``output_padding``.

    Examples
    --------
    >>> import pytest; torch = pytest.importorskip("torch")  # (skips this example without torch)
    >>> layer = torch.nn.Conv1d(2, 4, 3, stride=2, padding=1, padding_mode="reflect")
    >>> M, c = from_torch(layer, 10)
    >>> M.shape, c.shape, M.dtype
    ((20, 20), (20,), dtype('float32'))
    >>> x = torch.randn(2, 10)
    >>> y = M @ x.numpy().ravel() + c
    >>> torch.allclose(torch.from_numpy(y), layer(x).detach().ravel(), atol=1e-6)
    True
    >>> conv = torch.nn.Conv2d(3, 8, (3, 5), padding=(1, 2), padding_mode="circular")
    >>> M, c = from_torch(conv, (6, 7))
    >>> M.shape
    (336, 126)
    >>> x = torch.randn(3, 6, 7)
    >>> y = M @ x.numpy().ravel() + c
    >>> torch.allclose(torch.from_numpy(y), conv(x).detach().ravel(), atol=1e-5)
    True
    """
    torch = import_torch("from_torch")
    nn = torch.nn
    convs, transposes = conv_classes(torch)
    if not isinstance(module, convs + transposes):
        raise TypeError(
            "`module` must be a torch.nn.Conv1d, Conv2d, Conv3d, ConvTranspose1d, "
            f"ConvTranspose2d or ConvTranspose3d; got {type(module).__name__}"
        )
    if nn.parameter.is_lazy(module.weight):
        raise TypeError(
            f"`module` is a {type(module).__name__} whose weight is not initialised yet; "
            "run one forward pass first"
        )
    n = module.weight.ndim - 2
    if isinstance(input_size, (tuple, list)) and len(input_size) != n:
        raise ValueError(
            f"`input_size` must be an int or a tuple of {n} ints for a "
            f"{type(module).__name__} ({n} spatial axes); got {tuple(input_size)!r}"
        )
    common: dict[str, Any] = dict(
        stride=tuple(module.stride),
        dilation=tuple(module.dilation),
        groups=module.groups,
        format=format,
        dtype=dtype,
    )
    matrix: SparseArray | NDArray[Any]
    with torch.no_grad():
        weight = module.weight.detach()
        bias = None if module.bias is None else module.bias.detach()
    if isinstance(module, transposes):
        if module.padding_mode != "zeros":  # pragma: no cover - torch refuses it already
            raise ValueError(
                f"{type(module).__name__} supports only padding_mode='zeros'; "
                f"got {module.padding_mode!r}"
            )
        matrix = conv_transpose_matrix(
            weight,
            input_size,
            padding=tuple(cast("tuple[int, ...]", module.padding)),
            output_padding=tuple(module.output_padding),
            **common,
        )
    else:
        padding = module.padding if isinstance(module.padding, str) else tuple(module.padding)
        matrix = conv_matrix(
            weight, input_size, padding=padding, padding_mode=module.padding_mode, **common
        )
    rows = matrix.shape[0] // module.out_channels
    if bias is None:
        c = np.zeros(matrix.shape[0], dtype=matrix.dtype)
    else:
        c = bias_vector(bias, rows).astype(matrix.dtype, copy=False)
    return matrix, c
