"""PyTorch interop: the matrix of ``nn.Conv1d``/``nn.ConvTranspose1d``; torch sparse tensors.

Torch is optional: it is imported only inside the functions here, and a missing torch
gives an :class:`ImportError` that says how to install it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from ._geometry import check_choice
from .io import _as_matrix
from .matrices import bias_vector, conv1d_matrix, conv_transpose1d_matrix

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["from_torch", "to_torch_sparse"]

_LAYOUTS: tuple[str, ...] = ("coo", "csr", "csc")


def _import_torch(what: str) -> Any:
    try:
        import torch
    except ImportError as exc:
        raise ModuleNotFoundError(
            f"{what} needs PyTorch, which is not installed ({exc}); "
            "install it with `pip install toeplitz_conv[torch]` (or see pytorch.org for "
            "a CPU-only build)",
            name="torch",
        ) from None
    return torch


def to_torch_sparse(matrix: object, *, layout: object = "coo") -> torch.Tensor:
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
    torch = _import_torch("to_torch_sparse")
    if not isinstance(layout, str) and type(layout).__module__.startswith("torch"):
        layout = str(layout).removeprefix("torch.sparse_")
    check_choice(layout, "layout", _LAYOUTS)
    m = _as_matrix(matrix)
    size = m.shape
    if layout == "coo":
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
    compressed = sp.csr_array(m) if layout == "csr" else sp.csc_array(m)
    compressed.sum_duplicates()
    indptr = torch.tensor(compressed.indptr)
    indices = torch.tensor(compressed.indices.astype(compressed.indptr.dtype, copy=False))
    values = torch.tensor(compressed.data)
    make = torch.sparse_csr_tensor if layout == "csr" else torch.sparse_csc_tensor
    return make(indptr, indices, values, size, check_invariants=False)


def from_torch(
    module: object,
    input_length: int,
    *,
    format: str = "csr",
    dtype: object = None,
) -> tuple[sp.sparray | np.ndarray, np.ndarray]:
    r"""The matrix and bias vector of a ``torch.nn.Conv1d`` or ``torch.nn.ConvTranspose1d``.

    Parameters
    ----------
    module : torch.nn.Conv1d or torch.nn.ConvTranspose1d
        Any padding (int, ``'same'``, ``'valid'``), ``padding_mode``, stride, dilation and
        groups; for ``ConvTranspose1d`` also ``output_padding``.
    input_length : int
        ``L``, samples per input channel of the module.
    format : {'csr', 'csc', 'coo', 'bsr', 'dia', 'dense'}, optional
        As in :func:`conv1d_matrix`.
    dtype : dtype, optional
        Defaults to the module weight's (``float32`` for a default module).

    Returns
    -------
    M : sparse array or ndarray, shape (C_out * L_out, C_in * L)
        ``conv1d_matrix`` (or ``conv_transpose1d_matrix``) of the module's weight and settings.
    c : ndarray, shape (C_out * L_out,)
        The bias repeated over the output positions (zeros when the module has no bias), so
        that ``M @ x.reshape(-1) + c == module(x).reshape(-1)`` for ``x`` of shape ``(C_in, L)``
        and ``X.reshape(N, -1) @ M.T + c`` for a batch.

    Raises
    ------
    TypeError
        If `module` is not a ``Conv1d``/``ConvTranspose1d`` (or is an uninitialised lazy one).
    ValueError
        If `input_length` does not fit the module (e.g. an empty output).
    ModuleNotFoundError
        When torch is not installed.

    Notes
    -----
    ``ConvTranspose1d.forward`` may be given ``output_size``, which changes the output
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
    """
    torch = _import_torch("from_torch")
    nn = torch.nn
    if not isinstance(module, (nn.Conv1d, nn.ConvTranspose1d)):
        raise TypeError(
            "`module` must be a torch.nn.Conv1d or torch.nn.ConvTranspose1d; "
            f"got {type(module).__name__}"
        )
    if nn.parameter.is_lazy(module.weight):
        raise TypeError(
            f"`module` is a {type(module).__name__} whose weight is not initialised yet; "
            "run one forward pass first"
        )
    (stride,), (dilation,) = module.stride, module.dilation
    groups = module.groups
    with torch.no_grad():
        weight = module.weight.detach()
        bias = None if module.bias is None else module.bias.detach()
    if isinstance(module, nn.ConvTranspose1d):
        if module.padding_mode != "zeros":  # pragma: no cover - torch refuses it already
            raise ValueError(
                f"ConvTranspose1d supports only padding_mode='zeros'; got {module.padding_mode!r}"
            )
        matrix = conv_transpose1d_matrix(
            weight,
            input_length,
            stride=stride,
            padding=tuple(module.padding),
            output_padding=module.output_padding[0],
            groups=groups,
            dilation=dilation,
            format=format,
            dtype=dtype,
        )
    else:
        padding = module.padding if isinstance(module.padding, str) else tuple(module.padding)
        matrix = conv1d_matrix(
            weight,
            input_length,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            padding_mode=module.padding_mode,
            format=format,
            dtype=dtype,
        )
    c_out = module.out_channels
    l_out = matrix.shape[0] // c_out
    if bias is None:
        c = np.zeros(matrix.shape[0], dtype=matrix.dtype)
    else:
        c = bias_vector(bias, l_out).astype(matrix.dtype, copy=False)
    return matrix, c
