"""The distributed matrix: contiguous row blocks balanced by nonzeros, gathered or written.

Rank ``r`` builds rows ``[r0, r1)`` of the global matrix ``M`` (the layout PETSc, Trilinos
and file writers expect) as a scipy CSR block of shape ``(r1 - r0, n)``, through the core's
row-block builder (``conv_matrix(..., rows=(r0, r1))``): time and memory proportional to
its block, and no rank ever holds the whole matrix.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, cast

import numpy as np
import scipy.sparse as sp
from mpi4py import MPI

from .. import io as _io
from .._files import atomic_write, header_line
from .._geometry import PaddingND, check_int
from .._layer import conv_layer
from .._pattern import band, row_counts
from .._typing import AnySparse, ArrayLike, DTypeLike, PaddingMode
from ._comm import collective, same_on_every_rank
from ._spec import ConvSpec, conv_spec, same_layer_everywhere

__all__ = [
    "gather_matrix",
    "local_matrix",
    "row_ranges",
    "save_matrix_market",
    "save_matrix_parts",
]

_MANIFEST = "toeplitz_conv matrix parts"


def _ranges(spec: ConvSpec, parts: int) -> list[tuple[int, int]]:
    """``parts`` contiguous row ranges with (nearly) equal structural nonzeros."""
    counts = [row_counts(band(g)) for g in spec.geoms]
    sums = [int(c.sum()) for c in counts]
    G = spec.weight.shape[1]
    per_channel = G * math.prod(sums)
    rows_per_channel = math.prod(spec.output_size)
    total_rows = spec.out_channels * rows_per_channel
    total = spec.out_channels * per_channel
    cums = [np.concatenate([[0], np.cumsum(c)]) for c in counts]

    def row_at(target: int) -> int:
        """The first row whose preceding rows hold at least `target` nonzeros (about)."""
        o, rem = divmod(target, per_channel) if per_channel else (0, 0)
        if o >= spec.out_channels:
            return total_rows
        row = o * rows_per_channel
        outer = G  # nonzeros factor of the axes already fixed
        for a in range(len(counts)):
            inner = outer * math.prod(sums[a + 1 :])
            stride = math.prod(spec.output_size[a + 1 :])
            i = int(np.searchsorted(cums[a] * inner, rem, side="right")) - 1
            i = min(i, len(counts[a]) - 1)
            rem -= int(cums[a][i]) * inner
            row += i * stride
            outer *= int(counts[a][i])
        return row

    cuts = [0] + [row_at((total * p) // parts) for p in range(1, parts)] + [total_rows]
    rising = np.maximum.accumulate(np.asarray(cuts, dtype=np.int64))
    return [(int(rising[p]), int(rising[p + 1])) for p in range(parts)]


def row_ranges(
    weight: ArrayLike,
    input_size: int | tuple[int, ...],
    *,
    stride: int | tuple[int, ...] = 1,
    padding: PaddingND = 0,
    dilation: int | tuple[int, ...] = 1,
    groups: int = 1,
    padding_mode: PaddingMode = "zeros",
    parts: int,
) -> list[tuple[int, int]]:
    """Split the rows of a layer's matrix into `parts` contiguous ranges of equal nonzeros.

    No MPI needed: every rank computes the same ranges from the layer alone.

    Parameters
    ----------
    weight, input_size, stride, padding, dilation, groups, padding_mode
        The layer, as in :func:`toeplitz_conv.conv1d_matrix`.
    parts : int
        How many ranges (ranks).

    Returns
    -------
    list of (r0, r1)
        Contiguous, covering ``[0, m)``; the structural nonzeros of the ranges (taps that
        read a sample, counted once when reflect/circular fold two onto one) differ by
        at most one row's.

    Notes
    -----
    Row ``(o, i_1, ..., i_n)`` has ``G * prod_a c_a(i_a)`` nonzeros, ``c_a(i)`` the
    distinct samples row ``i`` reads along axis ``a`` (``K_a`` inside, fewer at the
    zero-padded edges), so the cut for a target count is found axis by axis with a
    binary search on each axis' cumulative counts: ``O(sum_a L_out,a)`` work.

    Examples
    --------
    >>> row_ranges([1.0, 2.0, 3.0], 10, padding=2, parts=2)
    [(0, 6), (6, 12)]
    """
    geometry: dict[str, Any] = dict(
        stride=stride, padding=padding, dilation=dilation, padding_mode=padding_mode
    )
    layer = conv_layer(weight, input_size, groups=groups, ndim=None, **geometry)
    spec = conv_spec(layer, None)
    return _ranges(spec, check_int(parts, "parts", minimum=1))


def local_matrix(
    weight: ArrayLike,
    input_size: int | tuple[int, ...],
    *,
    stride: int | tuple[int, ...] = 1,
    padding: PaddingND = 0,
    dilation: int | tuple[int, ...] = 1,
    groups: int = 1,
    padding_mode: PaddingMode = "zeros",
    dtype: DTypeLike | None = None,
    comm: MPI.Comm | None = None,
) -> tuple[sp.csr_array, tuple[int, int]]:
    """This rank's contiguous block of rows of a layer's matrix (collective).

    Parameters
    ----------
    weight, input_size, stride, padding, dilation, groups, padding_mode, dtype
        The layer, as in :func:`toeplitz_conv.conv1d_matrix`; the same on every rank.
    comm : mpi4py.MPI.Comm, optional
        Defaults to ``MPI.COMM_WORLD``.

    Returns
    -------
    block : scipy.sparse.csr_array, shape (r1 - r0, n)
        Rows ``[r0, r1)`` of ``conv_matrix(weight, input_size, ...)``, canonical.
    rows : (int, int)
        ``(r0, r1)``; the ranks' ranges are contiguous in rank order, cover every row
        and hold (nearly) equal nonzeros (:func:`row_ranges`).

    Examples
    --------
    >>> from toeplitz_conv.mpi import local_matrix
    >>> block, rows = local_matrix([4.0, 3.0], 5)   # one rank here
    >>> rows, block.shape, block.nnz
    ((0, 4), (4, 5), 8)
    """
    comm = MPI.COMM_WORLD if comm is None else comm
    geometry: dict[str, Any] = dict(
        stride=stride, padding=padding, dilation=dilation, padding_mode=padding_mode
    )

    def validate() -> ConvSpec:
        layer = conv_layer(weight, input_size, groups=groups, ndim=None, **geometry)
        return conv_spec(layer, dtype)

    spec = collective(comm, validate)
    same_layer_everywhere(comm, spec)
    r0, r1 = _ranges(spec, comm.Get_size())[comm.Get_rank()]
    return collective(comm, lambda: spec.rows(r0, r1)), (r0, r1)


def _check_block(block: object, rows: object, comm: MPI.Comm) -> tuple[sp.csr_array, int, int]:
    """Validate this rank's block and the ranks' ranges together (collective)."""

    def check() -> tuple[sp.csr_array, int, int]:
        matrix = cast("AnySparse", block)  # once sp.issparse says so
        if not sp.issparse(block) or matrix.ndim != 2:
            raise TypeError(f"`block` must be a 2-D scipy sparse array; got {type(block).__name__}")
        if not (isinstance(rows, (tuple, list)) and len(rows) == 2):
            raise TypeError(f"`rows` must be a pair (r0, r1); got {rows!r}")
        r0, r1 = int(rows[0]), int(rows[1])
        if r1 - r0 != matrix.shape[0]:
            raise ValueError(
                f"`rows`={(r0, r1)} spans {r1 - r0} rows but the block has {matrix.shape[0]}"
            )
        return sp.csr_array(matrix), r0, r1

    csr, r0, r1 = collective(comm, check)
    every = comm.allgather((r0, r1, csr.shape[1], str(csr.dtype)))

    def contiguous() -> None:
        starts = [e[0] for e in every]
        stops = [e[1] for e in every]
        if starts[0] != 0 or any(stops[r] != starts[r + 1] for r in range(len(every) - 1)):
            raise ValueError(f"the ranks' row ranges must be contiguous from 0; got {every}")
        if len({e[2] for e in every}) != 1:
            raise ValueError(f"the ranks' blocks have different column counts: {every}")
        if len({e[3] for e in every}) != 1:
            raise ValueError(f"the ranks' blocks have different dtypes: {[e[3] for e in every]}")

    collective(comm, contiguous)
    return csr, r0, every[-1][1]


def gather_matrix(
    block: AnySparse | sp.spmatrix,
    rows: tuple[int, int],
    *,
    root: int | None = None,
    comm: MPI.Comm | None = None,
) -> sp.csr_array | None:
    """The whole matrix from the ranks' row blocks (collective).

    Parameters
    ----------
    block, rows
        This rank's block and row range, as returned by :func:`local_matrix`.
    root : int, optional
        The rank that gets the matrix (the others get ``None``); by default every rank.
    comm : mpi4py.MPI.Comm, optional

    Returns
    -------
    scipy.sparse.csr_array or None
        The blocks stacked in rank order, canonical.
    """
    comm = MPI.COMM_WORLD if comm is None else comm
    same_on_every_rank(comm, root=root)
    csr, _, _ = _check_block(block, rows, comm)
    pieces = comm.allgather(csr) if root is None else comm.gather(csr, root=root)
    if pieces is None:
        return None
    out = sp.csr_array(sp.vstack(pieces, format="csr"))
    out.sum_duplicates()
    return out


def _part_name(manifest: str, rank: int, size: int) -> str:
    stem = os.path.basename(manifest)[: -len(".json")]
    return f"{stem}.part{rank:05d}-of-{size:05d}.npz"


def save_matrix_parts(
    block: AnySparse | sp.spmatrix,
    rows: tuple[int, int],
    path: str | os.PathLike[str],
    *,
    params: dict | None = None,
    comm: MPI.Comm | None = None,
) -> None:
    """Write the ranks' row blocks in parallel: one ``.npz`` per rank plus a JSON manifest.

    Collective. Rank ``r`` writes ``<stem>.part<r>-of-<n>.npz`` beside `path` (scipy's
    ``save_npz``, atomically); rank 0 then writes the manifest `path` (which must end in
    ``.json``): the shape, dtype, nonzeros, `params`, and each part's file and row range.
    :func:`toeplitz_conv.load_matrix` reads the manifest back as the whole matrix.

    Examples
    --------
    >>> import os, tempfile
    >>> import toeplitz_conv as tc
    >>> from toeplitz_conv.mpi import local_matrix, save_matrix_parts
    >>> block, rows = local_matrix([4.0, 3.0], 5)
    >>> path = os.path.join(tempfile.mkdtemp(), "conv.json")
    >>> save_matrix_parts(block, rows, path)
    >>> (tc.load_matrix(path) != tc.conv1d_matrix([4.0, 3.0], 5)).nnz
    0
    """
    comm = MPI.COMM_WORLD if comm is None else comm
    rank, size = comm.Get_rank(), comm.Get_size()

    def where() -> tuple[str, str]:
        name = os.fspath(path)
        if not name.lower().endswith(".json"):
            raise ValueError(f"`path` (the manifest) must end in '.json'; got {name!r}")
        return name, json.dumps(_jsonable(params or {}), sort_keys=True)

    target, record_params = collective(comm, where)
    same_on_every_rank(comm, path=os.path.abspath(target), params=record_params)
    csr, _, m = _check_block(block, rows, comm)
    part = _part_name(target, rank, size)
    collective(
        comm,
        lambda: _io.save_matrix(csr, os.path.join(os.path.dirname(os.path.abspath(target)), part)),
    )
    info = comm.gather((part, int(rows[0]), int(rows[1]), int(csr.nnz)), root=0)

    def manifest() -> None:
        if rank != 0:
            return
        gathered = cast("list[tuple[str, int, int, int]]", info)  # gathered on rank 0
        record = {
            "format": _MANIFEST,
            "version": 1,
            "shape": [m, csr.shape[1]],
            "dtype": str(csr.dtype),
            "nnz": sum(i[3] for i in gathered),
            "params": _jsonable(params or {}),
            "parts": [{"file": f, "rows": [a, b], "nnz": n} for f, a, b, n in gathered],
        }
        text = json.dumps(record, indent=1).encode()
        atomic_write(target, ".json", lambda file: file.write(text))

    collective(comm, manifest)


def _jsonable(params: dict) -> dict:
    return json.loads(json.dumps(params, default=lambda v: v.tolist()))


def save_matrix_market(
    block: AnySparse | sp.spmatrix,
    rows: tuple[int, int],
    path: str | os.PathLike[str],
    *,
    params: dict | None = None,
    comm: MPI.Comm | None = None,
) -> None:
    """Write the ranks' row blocks into one Matrix Market file, rank by rank (collective).

    Rank 0 writes the header (with the total nonzeros, from an ``allreduce``) and its
    entries to a temporary file beside `path`; each rank then appends its entries in
    turn (1-based global rows, so the file is row-sorted); rank 0 finally renames it
    over `path`. The comment line ``%toeplitz_conv {...}`` records the dtype and
    `params`, so :func:`toeplitz_conv.load_matrix` restores the dtype.

    Examples
    --------
    >>> import os, tempfile
    >>> import toeplitz_conv as tc
    >>> from toeplitz_conv.mpi import local_matrix, save_matrix_market
    >>> block, rows = local_matrix([4.0, 3.0], 5)
    >>> path = os.path.join(tempfile.mkdtemp(), "conv.mtx")
    >>> save_matrix_market(block, rows, path)
    >>> tc.load_matrix(path).toarray()[0]
    array([4., 3., 0., 0., 0.])
    """
    comm = MPI.COMM_WORLD if comm is None else comm
    rank, size = comm.Get_rank(), comm.Get_size()

    def where() -> tuple[str, str]:
        name = os.fspath(path)
        if not name.lower().endswith(".mtx"):
            raise ValueError(f"`path` must end in '.mtx'; got {name!r}")
        if not os.path.isdir(os.path.dirname(os.path.abspath(name))):
            raise FileNotFoundError(f"cannot write {name!r}: its directory does not exist")
        return name, json.dumps(_jsonable(params or {}), sort_keys=True)

    target, record_params = collective(comm, where)
    same_on_every_rank(comm, path=os.path.abspath(target), params=record_params)
    csr, r0, m = _check_block(block, rows, comm)
    nnz = comm.allreduce(int(csr.nnz))
    tmp = comm.bcast(
        os.path.join(
            os.path.dirname(os.path.abspath(target)),
            f".{os.path.basename(target)}.{os.getpid()}.tmp",
        )
        if rank == 0
        else None,
        root=0,
    )
    kind = "complex" if csr.dtype.kind == "c" else "real"
    digits = 9 if csr.dtype in (np.float32, np.complex64) else 17
    for turn in range(size):

        def write(turn: int = turn) -> None:
            if turn != rank:
                return
            with open(tmp, "w" if rank == 0 else "a", encoding="ascii") as file:
                if rank == 0:
                    header = header_line(csr.dtype, params)
                    file.write(f"%%MatrixMarket matrix coordinate {kind} general\n")
                    file.write(f"%toeplitz_conv {header}\n{m} {csr.shape[1]} {nnz}\n")
                coo = csr.tocoo()
                i = coo.row.astype(np.int64) + r0 + 1
                j = coo.col.astype(np.int64) + 1
                if kind == "complex":
                    cols = [i, j, coo.data.real, coo.data.imag]
                    fmt = f"%d %d %.{digits}g %.{digits}g"
                else:
                    cols, fmt = [i, j, coo.data], f"%d %d %.{digits}g"
                table = np.empty(len(i), dtype=[(f"f{k}", c.dtype) for k, c in enumerate(cols)])
                for k, c in enumerate(cols):
                    table[f"f{k}"] = c
                np.savetxt(file, table, fmt=fmt)

        collective(comm, write)

    def finish() -> None:
        if rank == 0:
            os.replace(tmp, target)

    collective(comm, finish)
