r"""Who owns what: input slabs, output slabs and halos along the split axis (no MPI here).

The signal is split along its outermost spatial axis (1-D: the length) into contiguous
slabs ``[a_r, b_r)``, one per rank, all channels. The output rows follow from the input
slabs by one rule:

    output row ``i`` belongs to the rank whose slab holds its first tap
    ``clamp(i s - p_l, 0, L - 1)``

so rank ``r`` owns rows ``[o_r, o_{r+1})`` with ``o_0 = 0``, ``o_R = L_out`` and
``o_r = min(ceil((a_r + p_l) / s), L_out)`` in between (rows that start in the left
padding go to the first rank, rows that start past the end to the last). A rank's rows
then read the padded signal on ``[o_r s - p_l, (o_{r+1} - 1) s - p_l + d(K-1)]``, which
starts inside its own slab: the only halo is the first ``<= d(K-1)`` samples of the
right neighbour's slab, plus, at the global ends, what the padding mode reads (reflect
and replicate from the end rank's own samples, circular from the rank at the other end)::

    padded axis   [pad | a_0 ........ b_0 | a_1 ........ b_1 | a_2 ........ b_2 | pad]
    rank 0 reads  [pad | own ............ | halo]
    rank 1 reads                          [ own ............ | halo]
    rank 2 reads                                             [ own ............ | pad]

Everything here is computed from the global geometry and the list of slab sizes, so
every rank computes every rank's plan and the checks fail identically everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
    halo : int
        Samples it receives from the right neighbour (``[b, b + halo)``).
    wrap_left : int
        Circular padding, first rank: samples ``[L - wrap_left, L)`` from the last rank.
    wrap_right : int
        Circular padding, last rank: samples ``[0, wrap_right)`` from the first rank.
    """

    rank: int
    start: int
    stop: int
    out_start: int
    out_stop: int
    ext_start: int
    ext_stop: int
    halo: int
    wrap_left: int
    wrap_right: int

    @property
    def size(self) -> int:
        """``b - a``, the samples it owns."""
        return self.stop - self.start

    @property
    def out_size(self) -> int:
        """Output rows it owns."""
        return self.out_stop - self.out_start

    @property
    def buffer_size(self) -> int:
        """Rows of its exchange buffer: own, halo, then the wrap-around pieces."""
        return self.size + self.halo + self.wrap_left + self.wrap_right

    def buffer_rows(self, src: np.ndarray, input_length: int) -> np.ndarray:
        """Buffer row of each source sample in `src` (``-1`` stays ``-1``)."""
        own = self.size + self.halo
        rows = np.full(src.shape, -1, dtype=np.int64)
        inside = (src >= self.start) & (src < self.stop + self.halo)
        rows[inside] = src[inside] - self.start
        if self.wrap_left:
            first = input_length - self.wrap_left
            w = (src >= first) & ~inside
            rows[w] = own + src[w] - first
        if self.wrap_right:
            w = (src >= 0) & (src < self.wrap_right) & ~inside
            rows[w] = own + self.wrap_left + src[w]
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


def _too_small(owner: int, size: int, needer: int, need: int, geom: object) -> ValueError:
    span = geom.dilation * (geom.kernel_size - 1)
    return ValueError(
        f"the slab of rank {owner} has {size} samples along the split axis, fewer than the "
        f"{need} that rank {needer} needs from it (halo d*(K-1) = {span}, padding "
        f"({geom.pad_left}, {geom.pad_right}), padding_mode={geom.padding_mode!r}); "
        "use fewer ranks or larger slabs"
    )


def plan_slabs(geom: object, sizes: list[int]) -> tuple[RankSlab, ...]:
    """The slabs, output rows and halos of every rank (see the module docstring).

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
        When the sizes do not add up, a slab is empty, or a slab is smaller than what a
        neighbour needs from it (the halo, or the wrap-around of circular padding).
    """
    L, R = geom.input_length, len(sizes)
    if any(int(n) < 1 for n in sizes) or sum(sizes) != L:
        raise ValueError(
            f"the slab sizes {list(sizes)} must be >= 1 each and add up to the length "
            f"{L} of the split axis (one slab per rank, {R} ranks)"
        )
    bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    s, p_l, L_out = geom.stride, geom.pad_left, geom.output_length
    span = geom.dilation * (geom.kernel_size - 1)
    outs = [0] + [min(-(-(int(a) + p_l) // s), L_out) for a in bounds[1:-1]] + [L_out]
    outs = np.maximum.accumulate(np.asarray(outs, dtype=np.int64))
    plans = []
    for r in range(R):
        a, b = int(bounds[r]), int(bounds[r + 1])
        o0, o1 = int(outs[r]), int(outs[r + 1])
        if o1 > o0:
            e0, e1 = o0 * s - p_l, (o1 - 1) * s - p_l + span + 1
        else:
            e0 = e1 = 0
        j = np.arange(e0, e1)
        src = geom.src(j)
        halo = max(0, min(e1, L) - b) if r < R - 1 else 0
        if halo > sizes[min(r + 1, R - 1)]:
            raise _too_small(r + 1, sizes[r + 1], r, halo, geom)
        pad = src[((j < 0) | (j >= L)) & (src >= 0)]  # what the padding mode reads
        missing = pad[(pad < a) | (pad >= b + halo)]
        wrap_left = wrap_right = 0
        if missing.size and geom.padding_mode == "circular" and R > 1:
            if r == 0 and (missing >= b + halo).any():
                wrap_left = L - int(missing[missing >= b + halo].min())
                if wrap_left > sizes[-1]:
                    raise _too_small(R - 1, sizes[-1], 0, wrap_left, geom)
            if r == R - 1 and (missing < a).any():
                wrap_right = int(missing[missing < a].max()) + 1
                if wrap_right > sizes[0]:
                    raise _too_small(0, sizes[0], R - 1, wrap_right, geom)
            missing = missing[(missing < L - wrap_left) & (missing >= wrap_right)]
        if missing.size:
            raise ValueError(
                f"the slabs {list(sizes)} are too small for the {geom.padding_mode!r} "
                f"padding ({geom.pad_left}, {geom.pad_right}): rank {r} (samples [{a}, {b})) "
                f"would need samples {int(missing.min())}..{int(missing.max())} that are "
                "neither its own nor its halo; use fewer ranks or larger end slabs"
            )
        plans.append(RankSlab(r, a, b, o0, o1, e0, e1, halo, wrap_left, wrap_right))
    return tuple(plans)
