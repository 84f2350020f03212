r"""Between ``vec`` order and the operator's slab layout: one ``alltoall`` (no MPI types).

A distributed vector is described by the pieces of the global vector ``vec(x)`` (``x`` of
shape ``(C, L_1, L_2, ...)``, row-major) each rank holds, in its local order:

* pylops-mpi's default (or any 1-D ``Partition.SCATTER``) layout: rank ``q`` holds one
  piece ``[k_q, k_{q+1})``;
* the operator's slab layout: rank ``q`` holds samples ``[a_q, b_q)`` of the split axis,
  all channels, flattened over ``(channel, position, ...)``, i.e. the ``C`` pieces
  ``[(c L_1 + a_q) n, (c L_1 + b_q) n)``, ``n = L_2 \cdots L_n``, in channel order.

:func:`redistribute` moves the entries from one description to the other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from mpi4py import MPI

__all__ = ["contiguous_pieces", "redistribute", "slab_pieces"]

Pieces = list[tuple[int, int]]


def slab_pieces(channels: int, length: int, inner: int, start: int, stop: int) -> Pieces:
    """The ranges of ``vec(x)`` a slab ``[start, stop)`` of all `channels` holds, in order."""
    return [((c * length + start) * inner, (c * length + stop) * inner) for c in range(channels)]


def contiguous_pieces(sizes: list[int]) -> list[Pieces]:
    """Every rank's one piece of a contiguous split with local `sizes`."""
    bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    return [[(int(bounds[q]), int(bounds[q + 1]))] for q in range(len(sizes))]


def redistribute(
    comm: MPI.Comm, local: np.ndarray, source: list[Pieces], target: list[Pieces]
) -> np.ndarray:
    """This rank's entries in the `target` layout, from its `local` entries in `source`.

    Parameters
    ----------
    comm : mpi4py.MPI.Comm
    local : ndarray, 1-D
        This rank's entries, in the order of ``source[rank]``.
    source, target : list of list of (int, int)
        Per rank, the ranges of the global vector it holds, in its local order; both
        cover the same global vector.

    Returns
    -------
    ndarray, 1-D, of ``sum(hi - lo for lo, hi in target[rank])`` entries

    Notes
    -----
    Collective: one ``alltoall`` of (offset, array) lists; each entry travels once.
    """
    rank = comm.Get_rank()
    mine = source[rank]
    sends = []
    for pieces in target:
        items, at = [], 0
        for lo, hi in pieces:
            off = 0
            for m_lo, m_hi in mine:
                a, b = max(lo, m_lo), min(hi, m_hi)
                if a < b:
                    items.append((at + a - lo, local[off + a - m_lo : off + b - m_lo]))
                off += m_hi - m_lo
            at += hi - lo
        sends.append(items)
    out = np.empty(sum(hi - lo for lo, hi in target[rank]), dtype=local.dtype)
    for items in comm.alltoall(sends):
        for at, piece in items:
            out[at : at + piece.size] = piece
    return out
