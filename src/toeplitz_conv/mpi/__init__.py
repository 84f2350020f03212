"""Distributed conv operators and matrices over MPI ranks (the optional ``mpi`` extra).

Install with ``pip install "toeplitz_conv[mpi]"`` (mpi4py, pylops-mpi and the ``mpich``
wheel that provides ``mpiexec``), then run a script on several ranks, e.g.
``mpiexec -n 2 python -m mpi4py examples/deconvolve_mpi.py`` (``-m mpi4py``:
an uncaught exception on one rank then aborts every rank instead of leaving them waiting).

Each rank owns a contiguous slab of the signal along its outermost spatial axis (1-D: the
length), all channels; the operator exchanges halos of at most ``d(K-1)`` samples with the
neighbouring ranks (:class:`MPIConvOperator`, a ``pylops_mpi.MPILinearOperator``, so
pylops-mpi's solvers run on it unchanged). Its vectors are laid out by slabs, which with
several channels is not ``vec(x)`` in pylops-mpi's default partition: ``op.from_vec`` and
``op.to_vec`` convert (see ``docs/mpi.md``). The matrix is distributed by contiguous ranges of
global rows balanced by nonzeros (:func:`local_matrix`), gathered (:func:`gather_matrix`) or
written in parallel (:func:`save_matrix_parts`, :func:`save_matrix_market`). Spectral
analysis runs with ``allreduce`` d inner products (:func:`spectral_norm_bounds`,
:func:`singular_values`).

Importing :mod:`toeplitz_conv` never imports this module or mpi4py.
"""

from __future__ import annotations

_HINT = 'toeplitz_conv.mpi needs mpi4py and pylops-mpi: pip install "toeplitz_conv[mpi]"'

try:
    import mpi4py  # noqa: F401
    import pylops_mpi  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(f"{_HINT} ({exc})") from exc

from ._analysis import singular_values, spectral_norm_bounds  # noqa: E402
from ._comm import collective  # noqa: E402
from ._matrix import (  # noqa: E402
    gather_matrix,
    local_matrix,
    row_ranges,
    save_matrix_market,
    save_matrix_parts,
)
from ._operator import (  # noqa: E402
    MPIConvOperator,
    MPIConvTransposeOperator,
    mpi_conv_operator,
    mpi_conv_transpose_operator,
)
from ._plan import RankSlab, plan_slabs, split_sizes  # noqa: E402

__all__ = [
    "MPIConvOperator",
    "MPIConvTransposeOperator",
    "RankSlab",
    "collective",
    "gather_matrix",
    "local_matrix",
    "mpi_conv_operator",
    "mpi_conv_transpose_operator",
    "plan_slabs",
    "row_ranges",
    "save_matrix_market",
    "save_matrix_parts",
    "singular_values",
    "spectral_norm_bounds",
    "split_sizes",
]
