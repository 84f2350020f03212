r"""Who owns what: input slabs, output rows and halos along the split axis (no MPI here).

The signal is split along its outermost spatial axis (1-D: the length) into contiguous
slabs ``[a_r, b_r)``, one per rank, all channels. The output rows ``[o_r, o_{r+1})`` of
rank ``r`` follow from the slabs by one of two rules:

* when the split axis keeps its length (``L_out == L``: stride 1 and ``p_l + p_r =
  d(K-1)``, e.g. ``padding="same"``), **output row i belongs to the owner of input
  sample i**: ``o_r = a_r``, so a square operator's output vector is laid out exactly
  as its input vector (``op @ x - x`` and pylops-mpi's ``cg`` need that);
* otherwise output row ``i`` belongs to the rank whose slab holds its first tap
  ``clamp(i s - p_l, 0, L - 1)``: ``o_0 = 0``, ``o_R = L_out`` and
  ``o_r = min(ceil((a_r + p_l) / s), L_out)`` in between.

A rank's rows read the padded signal on ``[o_r s - p_l, (o_{r+1} - 1) s - p_l + d(K-1)]``.
The samples of it that are not the rank's own (the halo) come from the ranks that own
them, one contiguous piece per owner: with the first-tap rule at most ``d(K-1)`` samples
of the right neighbour's slab, with the same-length rule ``p_l`` samples of the left
neighbour's and ``d(K-1) - p_l`` of the right neighbour's, plus, at the global ends,
what the padding mode reads (reflect and replicate from the end ranks' samples, circular
from the rank at the other end)::

    padded axis   [pad | a_0 ........ b_0 | a_1 ........ b_1 | a_2 ........ b_2 | pad]
    rank 1 reads              [halo from 0 | own ............ | halo from 2]

Slabs smaller than the halo simply take their pieces from further ranks. Everything
here is computed from the global geometry and the list of slab sizes, so every rank
computes every rank's plan.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._geometry import ConvGeometry

__all__ = ["RankSlab", "plan_slabs", "split_sizes"]


@dataclass(frozen=True)
class RankSlab:
    """One rank's share along the split axis.

    Attributes
    ----------
    rank : int
    start, stop : int
        The input slab ``[a, b)``.
    out_start, out_stop : int
        The output rows ``[o_r, o_{r+1})`` (possibly empty).
    ext_start, ext_stop : int
        The padded positions ``j`` its rows read (``ext_stop - ext_start`` samples,
        0 when it owns no rows).
    pieces : tuple of (int, int, int)
        ``(owner, lo, hi)``: the samples ``[lo, hi)`` of rank ``owner``'s slab it
        receives before a product, in its exchange buffer after its own slab, in order.
    """

    rank: int
    start: int
    stop: int
    out_start: int
    out_stop: int
    ext_start: int
    ext_stop: int
    pieces: tuple[tuple[int, int, int], ...] = ()

    @property
    def size(self) -> int:
        """``b - a``, the samples it owns."""
        return self.stop - self.start

    @property
    def out_size(self) -> int:
        """Output rows it owns."""
        return self.out_stop - self.out_start

    @property
    def halo(self) -> int:
        """Samples it receives from other ranks per product (all its pieces)."""
        return sum(hi - lo for _, lo, hi in self.pieces)

    @property
    def buffer_size(self) -> int:
        """Rows of its exchange buffer: own slab, then the pieces."""
        return self.size + self.halo

    def buffer_rows(self, src: np.ndarray, input_length: int) -> np.ndarray:
        """Buffer row of each source sample in `src` (``-1`` stays ``-1``).

        `input_length` is unused (kept for callers); every sample in `src` must be
        its own or in a piece.
        """
        rows = np.full(src.shape, -1, dtype=np.int64)
        own = (src >= self.start) & (src < self.stop)
        rows[own] = src[own] - self.start
        at = self.size
        for _, lo, hi in self.pieces:
            w = (src >= lo) & (src < hi) & ~own
            rows[w] = at + src[w] - lo
            at += hi - lo
        return rows


def split_sizes(length: int, ranks: int) -> list[int]:
    """Slab sizes of `length` samples over `ranks` ranks, the first ``length % ranks`` one longer.

    The same rule as ``pylops_mpi``'s default ``local_split``.

    Examples
    --------
    >>> split_sizes(10, 3)
    [4, 3, 3]
    """
    base, extra = divmod(length, ranks)
    return [base + (1 if r < extra else 0) for r in range(ranks)]


def output_bounds(geom: ConvGeometry, bounds: np.ndarray) -> np.ndarray:
    """``[o_0, ..., o_R]``, the output rows of every rank (the module docstring's rules)."""
    L, L_out = geom.input_length, geom.output_length
    if L_out == L:
        return np.asarray(bounds, dtype=np.int64)
    s, p_l = geom.stride, geom.pad_left
    outs = [0] + [min(-(-(int(a) + p_l) // s), L_out) for a in bounds[1:-1]] + [L_out]
    return np.maximum.accumulate(np.asarray(outs, dtype=np.int64))


def plan_slabs(geom: ConvGeometry, sizes: list[int]) -> tuple[RankSlab, ...]:
    """The slabs, output rows and halo pieces of every rank (see the module docstring).

    Parameters
    ----------
    geom : ConvGeometry
        The geometry of the split (outermost spatial) axis.
    sizes : list of int
        Samples of each rank's slab, in rank order; they must add up to ``L`` and be >= 1.

    Returns
    -------
    tuple of RankSlab, one per rank

    Raises
    ------
    ValueError
        When the sizes do not add up or a slab is empty.
    """
    L, R = geom.input_length, len(sizes)
    if any(int(n) < 1 for n in sizes) or sum(sizes) != L:
        raise ValueError(
            f"the slab sizes {list(sizes)} must be >= 1 each and add up to the length "
            f"{L} of the split axis (one slab per rank, {R} ranks)"
        )
    bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    outs = output_bounds(geom, bounds)
    s, p_l = geom.stride, geom.pad_left
    span = geom.dilation * (geom.kernel_size - 1)
    plans = []
    for r in range(R):
        a, b = int(bounds[r]), int(bounds[r + 1])
        o0, o1 = int(outs[r]), int(outs[r + 1])
        e0, e1 = (o0 * s - p_l, (o1 - 1) * s - p_l + span + 1) if o1 > o0 else (0, 0)
        src = geom.src(np.arange(e0, e1))
        need = np.unique(src[(src >= 0) & ((src < a) | (src >= b))])
        owners = np.searchsorted(bounds, need, side="right") - 1
        pieces = tuple(
            (int(q), int(need[owners == q].min()), int(need[owners == q].max()) + 1)
            for q in np.unique(owners)
        )
        plans.append(RankSlab(r, a, b, o0, o1, e0, e1, pieces))
    return tuple(plans)
