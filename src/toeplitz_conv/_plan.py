"""The integer plan of a layer's passes: block sizes, scratch buffers and the padded, polyphase
layout that :mod:`toeplitz_conv._kernel`'s passes read (see its notes for the method).

A :class:`Plan` depends on the geometry only (never on the weight values or the
batch): the padded extent and phases per axis, each tap's phase and flat offset,
the output positions computed on the phase grid, and the gathers that pad, split,
merge and fold a signal. For strided, zero-padded layers of one sample it also plans
the exact output grid: each tap's strided window per block of output rows, in the
padded signal (:meth:`Plan.windows`) or clipped to the signal (:meth:`Plan.clipped`,
:meth:`Plan.strips`), and the cells the adjoint must zero (:attr:`Plan.unassigned`).
:class:`Pool` keeps the scratch buffers between calls (zeroed ones too).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from ._cache import L2_BYTES as _L2_BYTES
from ._geometry import ConvGeometry, polyphase_taps
from ._padding import fold_signal, pad_signal, padded_extent

__all__ = ["BLOCKING", "Blocking", "Plan", "Pool"]


@dataclass(frozen=True)
class Blocking:
    """How many output positions one patch block holds: its bytes stay near the core.

    Attributes
    ----------
    block_bytes : int
        The budget of a block's tap products in the adjoint: twice a core's L2
        (2 MB on 1 MB of L2), so that a block's products and output stay near the
        core while BLAS works on them. Measured on the benchmark layers: 16 MB
        blocks (a whole small image) ran the 1-D pass 1.05-1.3x slower. The
        forward pass's patches take a quarter of it: on 2 MB of L2, 1-D 64 -> 64,
        K=3 ran 1.21-1.26x torch's time with 1 MB of patches against 1.33-1.39x
        with 4 MB (the 2-D layers within the noise of each other from 0.5 to 4 MB).
    thin_bytes : int
        The budget of a thin product (a few output channels), which streams and
        is fastest in cache.
    min_cols : int
        Columns (positions times batch) a block has at least.
    """

    block_bytes: int
    thin_bytes: int
    min_cols: int

    def positions(
        self, rows: int, batch: int, itemsize: int, n_out: int, thin: bool, forward: bool = False
    ) -> int:
        """Output positions per block, so that a ``rows x (block * batch)`` patch fits the budget.

        At most `n_out`, at least one, and at least ``min_cols / batch``.
        """
        per_position = max(1, rows * batch * itemsize)
        budget = self.thin_bytes if thin else self.block_bytes // (4 if forward else 1)
        block = max(self.min_cols // max(1, batch), budget // per_position, 1)
        return min(n_out, block)


#: The blocking every :class:`Plan` takes when it is made (tests shrink it).
BLOCKING = Blocking(min(1 << 24, max(1 << 20, 2 * _L2_BYTES)), 1 << 20, 512)


# --------------------------------------------------------------------------- scratch
class Pool:
    """Scratch buffers kept between calls: fresh large arrays cost page faults each time.

    Parameters
    ----------
    zeros : bool
        Whether a fresh buffer starts at zero. Users of such a pool write only
        the cells they write every time (a padded signal's inside, say), so the
        cells they never write are still zero when the buffer comes back.
    """

    def __init__(self, zeros: bool = False) -> None:
        self._spare: dict[tuple, list[np.ndarray]] = {}
        self._new = np.zeros if zeros else np.empty

    def take(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        try:  # list.pop is atomic: concurrent calls just allocate their own
            return self._spare.get((shape, np.dtype(dtype)), []).pop()
        except IndexError:
            return self._new(shape, dtype=dtype)

    def give(self, a: np.ndarray) -> None:
        if len(self._spare) > 16:  # many batch sizes: start over rather than hoard
            self._spare = {}
        spare = self._spare.setdefault((a.shape, a.dtype), [])
        if len(spare) < 2:
            spare.append(a)


def _clip(g: ConvGeometry, shift: int, start: int, stop: int) -> tuple[int, int, slice]:
    """Positions ``j`` in ``[start, stop)`` reading sample ``j s + shift`` (``s`` the
    stride of `g`): those inside the signal, ``[lo, hi)``, and the strided slice of the
    signal they read (``hi == lo`` when none does)."""
    s = g.stride
    lo = max(start, -(shift // s))
    hi = max(lo, min(stop, (g.input_length - 1 - shift) // s + 1))
    return lo, hi, slice(lo * s + shift, (hi - 1) * s + shift + 1, s)


# --------------------------------------------------------------------------- the plan
@dataclass(frozen=True)
class Plan:
    """The integer plan of a layer's passes, independent of the weight values and the batch.

    Parameters
    ----------
    geoms : tuple of ConvGeometry
        One per spatial axis.
    patch_rows : int
        Rows of a patch matrix, ``G prod(K)`` (``G`` input channels per group).
    thin : bool
        Whether the product is thin (few output channels per group).
    blocking : Blocking
        The block budgets (:data:`BLOCKING` when the plan is made).

    Attributes
    ----------
    extent : tuple of int
        ``E_a``, padded positions kept per axis (:func:`~toeplitz_conv._padding.padded_extent`).
    grid : tuple of int
        ``Q_a = ceil(E_a / s_a)``, the length of every phase per axis.
    n_phases : int
        ``R = prod(s_a)``; the phases are stored one after another per channel.
    flat : tuple of int
        The row-major strides of the phase grid, in positions.
    tap_phase, tap_offset : ndarray, shape (prod(K),)
        The phase each tap reads and the flat offset of its window in that
        phase (:func:`~toeplitz_conv._geometry.polyphase_taps`).
    tap_start : list of int
        Where tap ``k``'s window starts in a channel's row of phases.
    first_tap : dict of int to int
        The first tap of each phase that any tap reads.
    n_flat : int
        Flat positions of the phase grid that cover every output.
    dense_grid : bool
        Whether the output grid is exactly the output (no dropped columns).
    zero_padded : bool
        Unit strides, and every padding cell is zero (zero padding, or none): the
        padded signal is the signal's rows placed among zeros (:meth:`input_rows`).
    """

    geoms: tuple[ConvGeometry, ...]
    patch_rows: int
    thin: bool
    blocking: Blocking = field(default_factory=lambda: BLOCKING)
    if TYPE_CHECKING:  # derived, set once by __post_init__ (see Attributes)
        input_size: tuple[int, ...] = field(init=False)
        output_size: tuple[int, ...] = field(init=False)
        taps: int = field(init=False)
        extent: tuple[int, ...] = field(init=False)
        strides: tuple[int, ...] = field(init=False)
        no_pad: bool = field(init=False)
        grid: tuple[int, ...] = field(init=False)
        phase_size: int = field(init=False)
        n_phases: int = field(init=False)
        flat: tuple[int, ...] = field(init=False)
        tap_phase: np.ndarray = field(init=False)
        tap_offset: np.ndarray = field(init=False)
        tap_start: list[int] = field(init=False)
        first_tap: dict[int, int] = field(init=False)
        n_flat: int = field(init=False)
        dense_grid: bool = field(init=False)
        zero_padded: bool = field(init=False)

    def __post_init__(self) -> None:
        geoms = self.geoms
        extent = tuple(padded_extent(g) for g in geoms)
        strides = tuple(g.stride for g in geoms)
        grid = tuple(-(-e // s) for e, s in zip(extent, strides, strict=True))
        flat = tuple(int(f) for f in np.cumprod((1, *grid[:0:-1]))[::-1])
        q, tap_phase = polyphase_taps(geoms, padded=True)
        tap_offset = q @ np.array(flat)  # flat position of each tap's window start in its phase
        output_size = tuple(g.output_length for g in geoms)
        first: dict[int, int] = {}
        for k, ph in enumerate(tap_phase):
            first.setdefault(int(ph), k)
        values = dict(
            input_size=tuple(g.input_length for g in geoms),
            output_size=output_size,
            taps=math.prod(g.kernel_size for g in geoms),
            extent=extent,
            strides=strides,
            no_pad=all(
                g.pad_left == 0 and e == g.input_length for g, e in zip(geoms, extent, strict=True)
            ),
            grid=grid,
            phase_size=math.prod(grid),
            n_phases=math.prod(strides),
            flat=flat,
            tap_phase=tap_phase,
            tap_offset=tap_offset,
            tap_start=[int(v) for v in tap_phase * math.prod(grid) + tap_offset],
            first_tap=first,
            # outputs are computed on the phase grid: n_flat flat positions cover them all
            n_flat=int(np.dot(np.array(output_size) - 1, flat)) + 1,
            dense_grid=all(lo == q_ for lo, q_ in zip(output_size[1:], grid[1:], strict=True)),
            zero_padded=math.prod(strides) == 1 and all(g.pads_zeros for g in geoms),
        )
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def tap_starts(self, batch: int) -> np.ndarray:
        """:attr:`tap_start` in values of rows holding `batch` columns per position (int64)."""
        return np.asarray(self.tap_start, dtype=np.int64) * batch

    def output_rows(self, batch: int) -> tuple[np.ndarray, int]:
        """Where each row of the output (its last axis) starts in a phase, and its length.

        In values of rows holding `batch` columns per position: the flat offsets
        ``sum_a o_a Q'_a`` over the outer axes' outputs, row-major, and ``L_out,n B``.
        """
        offsets = np.zeros(1, dtype=np.int64)
        for length, step in zip(self.output_size[:-1], self.flat[:-1], strict=True):
            offsets = (offsets[:, None] + step * np.arange(length, dtype=np.int64)).ravel()
        return offsets * batch, self.output_size[-1] * batch

    def input_rows(self, batch: int) -> tuple[np.ndarray, int, int]:
        """Where each row of the signal (its last axis) goes in the padded signal, with unit
        strides: the flat offsets, the row's length and the padded signal's size, in values
        of rows holding `batch` columns per position."""
        offsets = np.zeros(1, dtype=np.int64)
        for g, length, step in zip(self.geoms, self.input_size, self.flat, strict=True):
            rows = step * (g.pad_left + np.arange(length, dtype=np.int64))
            offsets = (offsets[:, None] + rows).ravel()
        offsets = offsets[:: self.input_size[-1]]
        return offsets * batch, self.input_size[-1] * batch, self.phase_size * batch

    def block(self, batch: int, itemsize: int, forward: bool = False) -> int:
        """Output positions per patch block for `batch` columns of `itemsize` bytes."""
        return self.blocking.positions(
            self.patch_rows, batch, itemsize, self.n_flat, self.thin, forward
        )

    def pad(self, x: np.ndarray, pool: Pool) -> np.ndarray:
        """``x`` ``(C, *S, B)`` -> the padded signal ``(C, *E, B)`` (``x`` if unpadded).

        Scratch comes from `pool`.
        """
        if self.no_pad:
            return x
        return pad_signal(x, self.geoms, pool.take)

    def fold(self, gp: np.ndarray) -> np.ndarray:
        """The adjoint of :meth:`pad`: ``(C, *X, B)`` padded gradient -> ``(C, *S, B)``."""
        return fold_signal(gp, self.geoms)

    @cached_property
    def cells(self) -> tuple[np.ndarray, ...]:
        """For strides > 1: where every phase cell comes from, as flat sample indices.

        The phases of the padded signal are stored one after the other per
        channel, ``(R, Q_1, ..., Q_n)`` row-major. Returns ``(source, zero,
        sample_cell, edge_cells, edge_samples)``: the sample each cell copies
        (0 where it reads nothing), the cells that read nothing (zero padding, or
        past the padded signal), the cell inside the padding that holds each
        sample (a permutation), and the cells in the padding that copy a sample
        (the other modes).
        """
        n = len(self.geoms)
        sample_stride = np.cumprod((1, *self.input_size[:0:-1]))[::-1]
        source = np.zeros((1,) * (2 * n), dtype=np.int64)
        valid = np.ones((1,) * (2 * n), dtype=bool)
        inside = np.ones((1,) * (2 * n), dtype=bool)
        for a, (g, Q, s, E) in enumerate(
            zip(self.geoms, self.grid, self.strides, self.extent, strict=True)
        ):
            j = np.arange(s)[:, None] + s * np.arange(Q)[None, :]  # padded position
            lj = j - g.pad_left
            src = np.where(j < E, g.src(lj), -1)
            shape = [1] * (2 * n)
            shape[a], shape[n + a] = s, Q
            source = source + (np.maximum(src, 0) * int(sample_stride[a])).reshape(shape)
            valid = valid & (src >= 0).reshape(shape)
            inside = inside & ((lj >= 0) & (lj < g.input_length)).reshape(shape)
        source, valid, inside = (a.reshape(-1) for a in np.broadcast_arrays(source, valid, inside))
        index = np.intp
        inner = np.flatnonzero(inside)
        sample_cell = np.empty(math.prod(self.input_size), dtype=index)
        sample_cell[source[inner]] = inner
        edge = np.flatnonzero(valid & ~inside)
        return (
            source.astype(index),
            np.flatnonzero(~valid),
            sample_cell,
            edge,
            source[edge].astype(index),
        )

    def split(self, x: np.ndarray, pool: Pool) -> tuple[np.ndarray, np.ndarray | None]:
        """The padded signal as rows ``(C, R * prod(Q) * B)``: its ``R`` phases one after another.

        One phase (unit strides) is the padded signal itself; with strides, one
        gather from the signal pads and splits at once (cells past a phase's own
        length are zero; they are read only for dropped output columns). Also
        returns the scratch buffer to hand back afterwards (None for `x` itself).
        """
        B, C = x.shape[-1], x.shape[0]
        if self.n_phases == 1:
            xp = self.pad(x, pool)
            return xp.reshape(C, -1), (None if xp is x else xp)
        source, zero, *_ = self.cells
        buf = pool.take((C, source.size, B), x.dtype)
        if self.phase_copies is None:
            np.take(x.reshape(C, -1, B), source, axis=1, out=buf, mode="clip")
        else:
            phases = buf.reshape(C, self.n_phases, *self.grid, B)
            for r, into, samples in self.phase_copies:
                cells: tuple[Any, ...] = (slice(None), r, *into)
                phases[cells] = x[(slice(None), *samples)]
        if zero.size:
            buf[:, zero] = 0
        return buf.reshape(C, -1), buf

    @cached_property
    def phase_copies(self) -> list[tuple[int, tuple[slice, ...], tuple[slice, ...]]] | None:
        """Zero padding with strides: per phase ``r`` that holds samples, ``(r, into,
        samples)``: the phase's cells inside the signal and the strided slices of the
        signal they hold (:meth:`split` copies these instead of gathering every cell:
        0.21 ms against 0.25 on the 1-D benchmark layer). None for the other padding modes.

        On axis ``a``, cell ``j`` of phase ``r_a`` holds sample ``r_a + s_a j - p_a``.
        """
        if not all(g.pads_zeros for g in self.geoms):
            return None
        per_axis = []
        for g, s, E in zip(self.geoms, self.strides, self.extent, strict=True):
            # the cells inside the padded extent: j < ceil((E - r) / s)
            per_axis.append([_clip(g, r - g.pad_left, 0, -(-(E - r) // s)) for r in range(s)])
        return [
            (r, tuple(slice(lo, hi) for lo, hi, _ in axes), tuple(src for *_, src in axes))
            for r, axes in enumerate(itertools.product(*per_axis))
            if all(hi > lo for lo, hi, _ in axes)
        ]

    def merge(self, buf: np.ndarray, B: int) -> np.ndarray:
        """The adjoint of :meth:`split`: rows ``(C, R * prod(Q) * B)`` -> ``(C, *S, B)``."""
        C = buf.shape[0]
        if self.n_phases == 1:
            return self.fold(buf.reshape(C, *self.grid, B))
        _, _, sample_cell, edge, edge_samples = self.cells
        b3 = buf.reshape(C, -1, B)
        g = np.take(b3, sample_cell, axis=1, mode="clip")
        if edge.size:
            np.add.at(g, (slice(None), edge_samples), b3[:, edge])  # type: ignore[arg-type]  # tuple index
        return g.reshape(C, *self.input_size, B)

    def uncovered(self, batch: int) -> tuple[tuple[int, int], ...]:
        """The ranges of the phases' rows (values of `batch` columns per position) that the
        first tap of each phase does not cover: the whole phase when no tap reads it.

        The scattered adds assign their first tap's products (:meth:`_Direct._scatter`);
        these ranges are zeroed first. Planned once per batch size.
        """
        if batch in self._uncovered:
            return self._uncovered[batch]
        total = self.phase_size * batch
        ranges = []
        for ph in range(self.n_phases):
            base = ph * total
            if ph in self.first_tap:
                off = base + int(self.tap_offset[self.first_tap[ph]]) * batch
                ranges += [(base, off), (off + self.n_flat * batch, base + total)]
            else:
                ranges.append((base, base + total))
        self._uncovered[batch] = tuple((a, b) for a, b in ranges if b > a)
        return self._uncovered[batch]

    @cached_property
    def _uncovered(self) -> dict[int, tuple[tuple[int, int], ...]]:
        return {}

    @cached_property
    def tap_groups(self) -> tuple[tuple[tuple[int, ...], int, int], ...]:
        """The taps whose windows form one matrix in the phases: ``(taps, start, step)``.

        Taps at the same offset in phases ``p_0 + j t`` with ``n t = R`` (``n``
        taps; ``n = 1`` always) read, over a channel's rows of phases ``(C, R F)``,
        the rows ``(c, j)`` at ``c R F + (p_0 + j t) F + offset``: one matrix
        ``(C n, positions)`` whose rows are ``step = t F`` apart, starting at
        ``start`` (the first tap's :attr:`tap_start`). Its weight columns are
        ``(c, j)``, the taps in the order given. One stride of 2 in 1-D groups
        ``K = 5`` into three: taps (0, 1), (2, 3) and (4,).
        """
        R, F = self.n_phases, self.phase_size
        by_offset: dict[int, list[int]] = {}
        for k in range(self.taps):
            by_offset.setdefault(int(self.tap_offset[k]), []).append(k)
        groups: list[tuple[tuple[int, ...], int, int]] = []
        for taps in by_offset.values():
            taps.sort(key=lambda k: int(self.tap_phase[k]))
            n, phases = len(taps), [int(self.tap_phase[k]) for k in taps]
            t = R // n
            if n * t == R and phases == list(range(phases[0], phases[0] + n * t, t)):
                groups.append((tuple(taps), self.tap_start[taps[0]], t * F))
            else:
                groups += [((k,), self.tap_start[k], R * F) for k in taps]
        return tuple(groups)

    # ----------------------------------------------------------------- the exact grid
    @cached_property
    def corners(self) -> np.ndarray:
        """``(prod(K), n)``: the padded position ``k_a d_a`` where tap ``k``'s window starts
        on every axis (taps row-major)."""
        K = tuple(g.kernel_size for g in self.geoms)
        d = np.array([g.dilation for g in self.geoms], dtype=np.int64)
        return np.indices(K, dtype=np.int64).reshape(len(K), -1).T * d

    def rows_per_block(self, batch: int, itemsize: int, forward: bool = False) -> int:
        """Output rows (along the first axis) per block of the exact grid: whole rows of
        :meth:`block`'s positions, at least one."""
        inner = math.prod(self.output_size[1:])
        positions = self.blocking.positions(
            self.patch_rows, batch, itemsize, math.prod(self.output_size), self.thin, forward
        )
        return max(1, min(self.output_size[0], positions // inner))

    def windows(self, r0: int, r1: int) -> list[tuple[slice, ...]]:
        """Each tap's window in the padded signal ``(C, *E, B)`` for the outputs in rows
        ``[r0, r1)`` of the first axis and every position of the others: strided slices
        ``k_a d_a + s_a o_a``, one index tuple per tap (kept per block)."""
        key = (r0, r1)
        cache = self._windows
        if key not in cache:
            size, s = (r1 - r0, *self.output_size[1:]), self.strides
            first = (r0,) + (0,) * (len(s) - 1)
            cache[key] = [
                (
                    slice(None),
                    *(
                        slice(int(c) + s_a * o0, int(c) + s_a * (o0 + n - 1) + 1, s_a)
                        for c, s_a, o0, n in zip(corner, s, first, size, strict=True)
                    ),
                    slice(None),
                )
                for corner in self.corners
            ]
        return cache[key]

    def clipped(self, r0: int, r1: int) -> list[tuple[tuple[Any, ...], tuple[slice, ...]]]:
        """Each tap's window clipped to the signal, for the outputs in rows ``[r0, r1)``.

        Per tap that reads a sample ``(into, source)``: `source` indexes the signal
        ``(C, *S, B)`` (strided slices of the samples the tap reads inside it), `into` a
        block of patches ``(C, prod(K), r1 - r0, *S_out[1:], B)`` (the tap's outputs that
        read them). The tap's other cells read zero padding (:meth:`strips`). Kept per
        block.
        """
        key = (r0, r1)
        if key not in self._clipped:
            taps: list[tuple[tuple[Any, ...], tuple[slice, ...]]] = []
            for k, corner in enumerate(self.corners):
                into: list[Any] = [slice(None), k]
                source = [slice(None)]
                for a, (c, g) in enumerate(zip(corner, self.geoms, strict=True)):
                    # output o reads sample o s + c - p
                    start, stop = (r0, r1) if a == 0 else (0, g.output_length)
                    lo, hi, samples = _clip(g, int(c) - g.pad_left, start, stop)
                    into.append(slice(lo - start, hi - start))
                    source.append(samples)
                if all(i.stop > i.start for i in into[2:]):
                    taps.append(((*into, slice(None)), (*source, slice(None))))
            self._clipped[key] = taps
        return self._clipped[key]

    def strips(self, r0: int, r1: int) -> list[tuple[Any, ...]]:
        """The cells of a block of patches ``(C, prod(K), r1 - r0, *S_out[1:], B)`` that
        read zero padding along the first axis: per tap, the rows outside its
        :meth:`clipped` rows (whole rows; in the first and last blocks of a padded axis).
        The cells that read padding along the other axes are the same in every block."""
        inside = {int(into[1]): into[2] for into, _ in self.clipped(r0, r1)}
        out: list[tuple[Any, ...]] = []
        for k in range(self.taps):
            rows = inside.get(k, slice(r1 - r0, r1 - r0))
            for part in (slice(0, rows.start), slice(rows.stop, r1 - r0)):
                if part.stop > part.start:
                    out.append((slice(None), k, part))
        return out

    @cached_property
    def _clipped(self) -> dict[tuple[int, int], list[tuple[tuple[Any, ...], tuple[slice, ...]]]]:
        return {}

    @cached_property
    def _windows(self) -> dict[tuple[int, int], list[tuple[slice, ...]]]:
        return {}

    @cached_property
    def inside(self) -> tuple[slice, ...]:
        """Where the signal sits in the padded signal, per axis: ``[p_l, p_l + L)``."""
        return self.reached(self.extent)[1]

    def reached(self, extent: tuple[int, ...]) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
        """The signal's cells within the first `extent` padded positions of each axis
        (a zero-padded buffer that ends short of the signal or past it): where they are
        in the signal, and where in the padded buffer."""
        signal, padded = [], []
        for g, e in zip(self.geoms, extent, strict=True):
            cut = max(0, min(g.input_length, e - g.pad_left))
            signal.append(slice(0, cut))
            padded.append(slice(g.pad_left, g.pad_left + cut))
        return tuple(signal), tuple(padded)

    @cached_property
    def first_taps(self) -> np.ndarray:
        """Whether each tap is the first (row-major) of those whose windows start on the
        same residues ``k_a d_a mod s_a``: its window shares no cell with earlier taps'."""
        phase = self.corners % np.array(self.strides)
        _, first = np.unique(phase, axis=0, return_index=True)
        out = np.zeros(self.taps, dtype=bool)
        out[first] = True
        return out

    @cached_property
    def unassigned(self) -> tuple[tuple[slice, ...], ...]:
        """The cells of the padded signal ``(C, *E, B)`` outside every :attr:`first_taps`
        window over the whole output, as index tuples of strided slices.

        The exact adjoint (:meth:`_Direct._exact_adjoint`) assigns the first tap of each
        residue class and adds the others; these cells are zeroed first. Per residue class
        ``r`` the cells ``r_a + s_a j_a`` outside the first tap's box are ``n`` slabs (axis
        ``a`` outside the box, the axes before it inside, the axes after it whole); a class
        no tap starts on is zeroed whole.
        """
        E, s, O = self.extent, self.strides, self.output_size
        first = {tuple(int(v) for v in c % s): c for c in self.corners[self.first_taps]}
        out: list[tuple[slice, ...]] = []
        for phase in np.ndindex(*s):
            whole = [slice(r, e, s_a) for r, e, s_a in zip(phase, E, s, strict=True)]
            corner = first.get(phase)
            if corner is None:
                out.append((slice(None), *whole, slice(None)))
                continue
            box = [
                slice(int(c), int(c) + s_a * (o - 1) + 1, s_a)
                for c, s_a, o in zip(corner, s, O, strict=True)
            ]
            for a, (r, c, s_a, o, e) in enumerate(zip(phase, corner, s, O, E, strict=True)):
                for part in (slice(r, int(c), s_a), slice(int(c) + s_a * o, e, s_a)):
                    if len(range(*part.indices(e))):
                        out.append((slice(None), *box[:a], part, *whole[a + 1 :], slice(None)))
        return tuple(out)
