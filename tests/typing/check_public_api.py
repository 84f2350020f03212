"""The public API's return types, checked by mypy (`python -m mypy` in .ci/run), not pytest.

Each ``assert_type`` fails the type check if an annotation drifts: the sparse formats return a
sparse array and ``format="dense"`` an ndarray, ``return_errors=True`` a pair, and so on.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

import toeplitz_conv as tc
from toeplitz_conv._typing import SparseArray

if TYPE_CHECKING and sys.version_info >= (3, 11):
    from typing import assert_type

    w = np.ones((2, 3, 3))
    w1 = [1.0, 2.0, 3.0]

    assert_type(tc.conv1d_matrix(w1, 8), SparseArray)
    assert_type(tc.conv1d_matrix(w1, 8, format="coo"), SparseArray)
    assert_type(tc.conv1d_matrix(w1, 8, format="dense"), NDArray[Any])
    assert_type(tc.conv2d_matrix(w, (5, 5), padding="same"), SparseArray)
    assert_type(tc.conv2d_matrix(w, 5, padding_mode="circular", format="dense"), NDArray[Any])
    assert_type(tc.conv_matrix(w, (6, 6), stride=2, format="csc"), SparseArray)
    assert_type(tc.conv3d_matrix(np.ones((2, 2, 2)), 4, format="dense"), NDArray[Any])
    assert_type(tc.conv_transpose1d_matrix(w1, 8), SparseArray)
    assert_type(tc.conv_transpose2d_matrix(w, 4, format="dense"), NDArray[Any])
    assert_type(tc.bias_vector([1.0, 2.0], 4), NDArray[Any])

    assert_type(tc.singular_values(w1, 8), NDArray[np.float64])
    values, errors = assert_type(
        tc.singular_values(w1, 8, k=2, method="krylov", return_errors=True),
        tuple[NDArray[np.float64], NDArray[np.float64]],
    )
    assert_type(tc.spectral_norm_bounds(w1, 8), tc.NormBounds)
    assert_type(tc.spectral_norm(w1, 8), float)
    assert_type(tc.condition_number(w1, 8), float)
    assert_type(tc.analyze(w1, 8), tc.Analysis)
    assert_type(tc.output_size(5, 3, padding=1), tuple[int, ...])

    assert_type(tc.conv1d(np.ones((2, 8)), np.ones((3, 2, 3))), np.ndarray)
    assert_type(tc.conv2d(np.ones((1, 6, 6)), w[:, :1], padding_mode="reflect"), np.ndarray)
    assert_type(tc.conv1d_operator(w1, 8, method="fft"), tc.ConvOperator)
    assert_type(tc.conv_transpose_operator(w, (4, 4)), tc.ConvTransposeOperator)
    assert_type(tc.conv1d_operator(w1, 8).matvec(np.ones(8)), NDArray[Any])
    assert_type(tc.formula(w1, 8, style="latex"), str)

    assert_type(tc.load_matrix("m.npz"), sp.csr_array)
    assert_type(tc.load_matrix("m.mtx", format="coo"), sp.coo_array)
    assert_type(tc.save_matrix(tc.conv1d_matrix(w1, 8), "m.mat"), None)

    import torch

    from toeplitz_conv import mpi, nn

    conv = torch.nn.Conv2d(2, 3, 3)
    assert_type(tc.from_torch(conv, 8), tuple[SparseArray, NDArray[Any]])
    assert_type(tc.from_torch(conv, 8, format="dense"), tuple[NDArray[Any], NDArray[Any]])
    assert_type(tc.to_torch_sparse(tc.conv1d_matrix(w1, 8), layout="csr"), torch.Tensor)
    assert_type(nn.spectral_norm(conv, (8, 8)), torch.nn.Conv2d)
    assert_type(nn.lipschitz_bound(torch.nn.Sequential(conv), (2, 8, 8)), nn.LipschitzBound)
    assert_type(mpi.mpi_conv_operator(w1, 8), mpi.MPIConvOperator)
