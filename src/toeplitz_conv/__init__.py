"""toeplitz_conv: the exact matrix of a 1-D, 2-D or 3-D convolution layer.

``torch.nn.functional.conv1d``, ``conv2d`` and ``conv3d`` with stride, padding,
dilation, channels and groups are linear maps ``vec(y) = M @ vec(x) + c``. This
package builds ``M`` (banded block-Toeplitz, with Toeplitz blocks in N-d;
circulant for circular padding) as a scipy sparse array in one call, with
torch's semantics exactly, and the forward passes, transposes and patch
matrices that go with it; matrix-free operators and exact or certified spectra
(singular values, norms, condition numbers); export to Matrix Market, ``.npz``,
MATLAB and torch; the ``toeplitz-conv`` command; and, in
:mod:`toeplitz_conv.mpi` (optional), the distributed operator and matrix.
"""

from ._formula import formula
from ._version import __version__ as __version__
from .functional import (
    conv,
    conv1d,
    conv2d,
    conv3d,
    conv_transpose,
    conv_transpose1d,
    conv_transpose2d,
    conv_transpose3d,
    unfold,
)
from .interop import from_torch, to_torch_sparse
from .io import load_matrix, save_matrix
from .matrices import (
    FORMATS,
    bias_vector,
    conv1d_matrix,
    conv2d_matrix,
    conv3d_matrix,
    conv_matrix,
    conv_transpose1d_matrix,
    conv_transpose2d_matrix,
    conv_transpose3d_matrix,
    conv_transpose_matrix,
    output_length,
    output_size,
)
from .operators import (
    Conv1dOperator,
    ConvOperator,
    ConvTranspose1dOperator,
    ConvTransposeOperator,
    conv1d_operator,
    conv2d_operator,
    conv3d_operator,
    conv_operator,
    conv_transpose1d_operator,
    conv_transpose2d_operator,
    conv_transpose3d_operator,
    conv_transpose_operator,
)
from .spectral import (
    DENSE_LIMIT,
    Analysis,
    NormBounds,
    analyze,
    condition_number,
    singular_values,
    spectral_norm,
    spectral_norm_bounds,
)

__all__ = [
    "DENSE_LIMIT",
    "FORMATS",
    "Analysis",
    "Conv1dOperator",
    "ConvOperator",
    "ConvTranspose1dOperator",
    "ConvTransposeOperator",
    "NormBounds",
    "analyze",
    "bias_vector",
    "condition_number",
    "conv",
    "conv1d",
    "conv1d_matrix",
    "conv1d_operator",
    "conv2d",
    "conv2d_matrix",
    "conv2d_operator",
    "conv3d",
    "conv3d_matrix",
    "conv3d_operator",
    "conv_matrix",
    "conv_operator",
    "conv_transpose",
    "conv_transpose1d",
    "conv_transpose1d_matrix",
    "conv_transpose1d_operator",
    "conv_transpose2d",
    "conv_transpose2d_matrix",
    "conv_transpose2d_operator",
    "conv_transpose3d",
    "conv_transpose3d_matrix",
    "conv_transpose3d_operator",
    "conv_transpose_matrix",
    "conv_transpose_operator",
    "formula",
    "from_torch",
    "load_matrix",
    "output_length",
    "output_size",
    "save_matrix",
    "singular_values",
    "spectral_norm",
    "spectral_norm_bounds",
    "to_torch_sparse",
    "unfold",
]
