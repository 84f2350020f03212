"""to_torch_sparse and from_torch, checked against torch's own modules and sparse algebra.

Skipped without torch, unless ``TOEPLITZ_CONV_REQUIRE_TORCH=1`` (then a missing torch fails).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import scipy.sparse as sp

import toeplitz_conv as tc
from conftest import assert_canonical_sparse
from toeplitz_conv.interop import from_torch, to_torch_sparse

pytestmark = [
    pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta:UserWarning"),
    pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning"),
]


def _module(torch, cls, *args, seed=0, **kwargs):
    torch.manual_seed(seed)
    return cls(*args, **kwargs).double()


# --------------------------------------------------------------------------- from_torch
CONV_CASES = [
    # in, out, K, settings
    (1, 1, 2, {}),
    (3, 4, 3, {"stride": 2, "padding": 1}),
    (2, 6, 3, {"padding": "same", "dilation": 2, "groups": 2}),
    (4, 4, 5, {"padding": "valid", "stride": 3, "groups": 4}),
    (2, 2, 4, {"padding": "same"}),  # even kernel: the odd pad on the right
    (2, 3, 3, {"padding": 2, "padding_mode": "reflect", "stride": 2}),
    (2, 3, 3, {"padding": 3, "padding_mode": "replicate", "dilation": 2}),
    (2, 3, 3, {"padding": 9, "padding_mode": "circular"}),  # padding == L
    (4, 2, 3, {"padding": "same", "padding_mode": "circular", "groups": 2, "dilation": 3}),
    (2, 4, 4, {"padding": "same", "padding_mode": "reflect", "groups": 2}),
    (3, 3, 2, {"padding": 1, "padding_mode": "replicate", "groups": 3, "bias": False}),
]


@pytest.mark.parametrize(("c_in", "c_out", "K", "settings"), CONV_CASES)
def test_from_torch_conv1d(torch, c_in, c_out, K, settings):
    L = 9
    layer = _module(torch, torch.nn.Conv1d, c_in, c_out, K, **settings)
    M, c = from_torch(layer, L)
    assert_canonical_sparse(M, "csr")
    assert c.shape == (M.shape[0],)
    x = torch.randn(5, c_in, L, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = layer(x).numpy()
    assert M.shape == (c_out * expected.shape[-1], c_in * L)
    got = x.numpy().reshape(5, -1) @ M.T + c
    np.testing.assert_allclose(got, expected.reshape(5, -1), rtol=1e-12, atol=1e-12)
    if not settings.get("bias", True):
        assert not c.any()


TRANSPOSE_CASES = [
    (1, 1, 2, {}),
    (3, 2, 3, {"stride": 2, "padding": 1, "output_padding": 1}),
    (4, 6, 3, {"stride": 3, "groups": 2, "output_padding": 2}),
    (2, 2, 3, {"dilation": 3, "stride": 2, "output_padding": 2, "padding": 2}),  # q >= s
    (4, 4, 2, {"groups": 4, "padding": 1, "bias": False}),
]


@pytest.mark.parametrize(("c_in", "c_out", "K", "settings"), TRANSPOSE_CASES)
def test_from_torch_conv_transpose1d(torch, c_in, c_out, K, settings):
    L = 6
    layer = _module(torch, torch.nn.ConvTranspose1d, c_in, c_out, K, **settings)
    M, c = from_torch(layer, L, format="csc")
    assert_canonical_sparse(M, "csc")
    x = torch.randn(3, c_in, L, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = layer(x).numpy()
    assert M.shape == (c_out * expected.shape[-1], c_in * L)
    got = x.numpy().reshape(3, -1) @ M.T + c
    np.testing.assert_allclose(got, expected.reshape(3, -1), rtol=1e-12, atol=1e-12)


def test_from_torch_dtype_and_format(torch):
    torch.manual_seed(0)
    layer = torch.nn.Conv1d(2, 3, 3, padding=1)  # float32 by default
    M, c = from_torch(layer, 7)
    assert M.dtype == np.float32 and c.dtype == np.float32
    x = torch.randn(2, 7)
    with torch.no_grad():
        np.testing.assert_allclose(M @ x.numpy().ravel() + c, layer(x).numpy().ravel(), rtol=1e-5)
    D, c64 = from_torch(layer, 7, format="dense", dtype=np.float64)
    assert isinstance(D, np.ndarray) and D.dtype == np.float64 and c64.dtype == np.float64
    np.testing.assert_array_equal(D, M.toarray().astype(np.float64))
    np.testing.assert_array_equal(
        D, tc.conv1d_matrix(layer.weight, 7, padding=1, dtype=np.float64, format="dense")
    )


def test_from_torch_errors(torch):
    with pytest.raises(
        TypeError,
        match=r"`module` must be a torch.nn.Conv1d, Conv2d, Conv3d, ConvTranspose1d, "
        r"ConvTranspose2d or ConvTranspose3d; got Linear",
    ):
        from_torch(torch.nn.Linear(1, 1), 5)
    with pytest.raises(
        ValueError, match=r"`input_size` must be an int or a tuple of 2 ints for a Conv2d"
    ):
        from_torch(torch.nn.Conv2d(1, 1, 2), (5, 5, 5))
    with pytest.raises(TypeError, match=r"`module` must be .*; got ndarray"):
        from_torch(np.ones(3), 5)
    lazy = torch.nn.LazyConv1d(2, 3)
    with pytest.raises(TypeError, match=r"LazyConv1d whose weight is not initialised yet"):
        from_torch(lazy, 5)
    reflect = torch.nn.Conv1d(1, 1, 3, padding=4, padding_mode="reflect")
    with pytest.raises(ValueError, match=r"`padding_mode`='reflect' needs padding < input_length"):
        from_torch(reflect, 4)
    with pytest.raises(ValueError, match=r"the output would be empty"):
        from_torch(torch.nn.Conv1d(1, 1, 5), 3)


# --------------------------------------------------------------------------- to_torch_sparse
@pytest.mark.parametrize("layout", ["coo", "csr", "csc"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex128])
def test_to_torch_sparse(torch, layout, dtype):
    W = np.random.default_rng(3).standard_normal((3, 2, 3)).astype(dtype)
    M = tc.conv1d_matrix(W, 8, stride=2, padding=1, padding_mode="reflect")
    T = to_torch_sparse(M, layout=layout)
    assert T.layout == getattr(torch, f"sparse_{layout}")
    assert T.shape == M.shape
    assert T.dtype == {np.float32: torch.float32, np.float64: torch.float64}.get(
        dtype, torch.complex128
    )
    np.testing.assert_array_equal(T.to_dense().numpy(), M.toarray())
    v = np.arange(M.shape[1], dtype=dtype)
    np.testing.assert_allclose((T @ torch.from_numpy(v)).numpy(), M @ v, rtol=1e-6)
    if layout == "coo":
        assert T.is_coalesced() and T._indices().dtype == torch.int64
        np.testing.assert_array_equal(T.coalesce().values().numpy(), M.tocoo().data)


def test_to_torch_sparse_inputs(torch):
    dense = np.array([[0.0, 2.0], [3.0, 0.0]])
    for matrix in (dense, sp.csr_matrix(dense), sp.coo_array(dense), sp.dia_array(dense)):
        T = to_torch_sparse(matrix, layout=torch.sparse_csr)
        assert T.layout == torch.sparse_csr
        np.testing.assert_array_equal(T.to_dense().numpy(), dense)
    # the tensor owns its memory: changing the matrix afterwards does not change it
    M = tc.conv1d_matrix([4.0, 3.0], 5)
    T = to_torch_sparse(M, layout="csr")
    M.data[:] = 0
    assert T.values().abs().sum() > 0


def test_to_torch_sparse_errors(torch):
    M = tc.conv1d_matrix([4.0, 3.0], 5)
    with pytest.raises(ValueError, match=r"`layout` must be one of 'coo', 'csr', 'csc'; got 'bsr'"):
        to_torch_sparse(M, layout="bsr")
    with pytest.raises(ValueError, match=r"`layout` must be one of .*; got 'torch.strided'"):
        to_torch_sparse(M, layout=torch.strided)
    with pytest.raises(TypeError, match=r"`matrix` must be a scipy sparse array or matrix"):
        to_torch_sparse("M")


def test_missing_torch_message(monkeypatch):
    """Without torch: a ModuleNotFoundError that says how to install it (no torch needed here)."""
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    M = tc.conv1d_matrix([4.0, 3.0], 5)
    msg = r"to_torch_sparse needs PyTorch, which is not .*`pip install toeplitz_conv\[torch\]`"
    with pytest.raises(ModuleNotFoundError, match=msg):
        to_torch_sparse(M)
    with pytest.raises(ModuleNotFoundError, match=r"from_torch needs PyTorch"):
        from_torch(object(), 5)
