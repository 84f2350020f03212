r"""The distributed conv operator: a ``pylops_mpi.MPILinearOperator`` on slabs of the signal.

Each rank owns a contiguous slab of the input along the outermost spatial axis (all
channels) and a contiguous range of output rows (:mod:`._plan`: the same positions when
the split axis keeps its length, else the rows whose first tap lies in its slab). A
product

1. copies the rank's slab into an exchange buffer (position-major, channels inside),
2. receives the halo: one contiguous piece from each rank that owns samples its rows
   read (the neighbours' edges, and for circular padding the other end's),
3. gathers the padded window its rows read (the padding mode's samples come from the
   buffer; zero padding reads nothing), and
4. applies the library's single-process operator to the window, unpadded on the split
   axis and with the layer's padding on the other axes.

The adjoint runs the same steps backwards: the single-process adjoint on the window,
scatter-add into the buffer, and the halo contributions sent back to their owners and
added there.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, cast

import numpy as np
import scipy.sparse as sp
from mpi4py import MPI
from pylops_mpi import DistributedArray, MPILinearOperator, Partition

from .._geometry import PaddingND
from .._layer import Layer, conv_layer, transpose_layer
from .._typing import ArrayLike, DTypeLike, PaddingMode, TransposePadding
from ._comm import collective, same_on_every_rank
from ._layout import contiguous_pieces, redistribute, slab_pieces
from ._plan import RankSlab, plan_slabs, split_sizes
from ._spec import ConvSpec, conv_spec, same_layer_everywhere

__all__ = [
    "MPIConvOperator",
    "MPIConvTransposeOperator",
    "mpi_conv_operator",
    "mpi_conv_transpose_operator",
]

_HALO = 11  # message tag (the adjoint's reverse exchange adds 10)


class _SlabVectors:
    """Vectors in the layout of a distributed conv operator (a mixin).

    The class provides ``comm`` and ``_side(side)``: this rank's local shape, every
    rank's local size, this rank's range ``[start, stop)`` along the split axis and the
    global shape ``(C, L_1, ...)`` of the `side` ("input" or "output") vector.
    """

    comm: MPI.Comm
    _side: Callable[[str], tuple[tuple[int, ...], list[int], int, int, tuple[int, ...]]]

    def _check_vector(self, x: object, expected: list[int], name: str) -> None:
        """Refuse, on every rank, a vector whose partition is not this operator's layout.

        The whole partition is compared (every rank's local shape, the global shape, the
        partition type, the mask), not only this rank's size. A vector of ``vec(x)`` in
        pylops-mpi's default partition whose local sizes happen to equal the slabs'
        cannot be told apart by its shapes: that is why :meth:`from_vec` exists.
        """
        every = self.comm.allgather(_partition(x))  # one message per product
        kinds = [e[0] for e in every if not isinstance(e, tuple)]
        if kinds:
            raise TypeError(f"`{name}` must be a pylops_mpi.DistributedArray; got {kinds[0]}")
        want = [("SCATTER", (sum(expected),), (n,), True) for n in expected]
        if [e[:4] for e in every] != want:
            shapes = [e[2] for e in every]
            raise ValueError(
                f"`{name}` is not laid out as this operator's vectors: its local shapes are "
                f"{shapes} (global shape {every[0][1]}, partition {every[0][0]}"
                f"{'' if all(e[3] for e in every) else ', with a mask'}), the operator's are "
                f"{[(n,) for n in expected]} (each rank's slab along the split axis, all "
                "channels). Convert a vector of vec(x) in pylops-mpi's default partition with "
                "op.from_vec(x) (back with op.to_vec(y)); make new ones with op.scatter(x) or "
                "op.make_array(local)"
            )
        dtypes = [e[4] for e in every]
        if len(set(dtypes)) > 1:
            raise ValueError(
                f"`{name}` must have the same dtype on every rank (its local arrays are "
                f"exchanged between ranks); got {dtypes} on ranks 0..{len(dtypes) - 1}"
            )

    def _agreed_side(
        self, side: str
    ) -> tuple[tuple[int, ...], list[int], int, int, tuple[int, ...]]:
        """``_side(side)``, once every rank has passed the same valid `side` (collective)."""
        result = collective(self.comm, lambda: self._side(side))
        same_on_every_rank(self.comm, side=side)
        return result

    def _vector(self, local: np.ndarray, sizes: list[int]) -> DistributedArray:
        return DistributedArray(
            global_shape=sum(sizes),
            base_comm=self.comm,
            partition=Partition.SCATTER,
            local_shapes=[(n,) for n in sizes],
            local_array=np.ascontiguousarray(local).reshape(-1),
        )

    # ------------------------------------------------------------------ vectors
    def make_array(self, local: ArrayLike, *, side: str = "input") -> DistributedArray:
        """A ``DistributedArray`` from this rank's slab (collective).

        The global vector is the ranks' slabs one after the other, each flattened
        row-major over ``(channel, position, ...)``; with one channel that is exactly
        ``vec(x)``, with more it is a permutation of it (:meth:`gather` gives ``x`` back
        whole, :meth:`to_vec` as ``vec(x)`` in pylops-mpi's default partition).
        """
        shape, sizes, _, _, _ = self._agreed_side(side)

        def check() -> np.ndarray:
            a = np.asarray(local)
            if a.shape != shape:
                raise ValueError(
                    f"`local` on rank {self.comm.Get_rank()} must have shape {shape} for the "
                    f"{side} side; got {a.shape}"
                )
            return a

        return self._vector(collective(self.comm, check), sizes)

    def scatter(self, x: ArrayLike, *, side: str = "input") -> DistributedArray:
        """Each rank takes its slab of a global signal `x`, shape ``(C, L_1, ...)`` (collective)."""
        _, _, start, stop, want = self._agreed_side(side)

        def check() -> np.ndarray:
            a = np.asarray(x)
            if a.shape != want:
                raise ValueError(f"`x` must have the global {side} shape {want}; got {a.shape}")
            return a[:, start:stop]

        return self.make_array(collective(self.comm, check), side=side)

    def gather(self, d: DistributedArray, *, side: str = "input") -> np.ndarray:
        """The global signal ``(C, L_1, ...)`` of a distributed one, on every rank (collective)."""
        shape, sizes, _, _, _ = self._agreed_side(side)
        self._check_vector(d, sizes, "d")
        pieces = self.comm.allgather(d.local_array.reshape(shape))
        return np.concatenate(pieces, axis=1)

    def _pieces(self, side: str) -> list[list[tuple[int, int]]]:
        """Every rank's ranges of ``vec(x)`` in the `side` layout (:mod:`._layout`)."""
        _, sizes, _, _, full = self._side(side)
        per = full[0] * math.prod(full[2:])  # entries per sample of the split axis
        starts = np.concatenate([[0], np.cumsum([n // per for n in sizes])]).astype(int)
        inner = math.prod(full[2:])
        return [
            slab_pieces(full[0], full[1], inner, int(starts[q]), int(starts[q + 1]))
            for q in range(len(sizes))
        ]

    def from_vec(self, v: DistributedArray | ArrayLike, *, side: str = "input") -> DistributedArray:
        """A vector in ``vec`` order, in this operator's layout (collective).

        Parameters
        ----------
        v : DistributedArray or array_like
            Either a ``DistributedArray`` of ``vec(x)`` in any contiguous 1-D partition
            (pylops-mpi's default ``DistributedArray(global_shape=N)`` among them), or
            the whole ``x`` on every rank, shape ``(N,)`` (``vec(x)``) or ``(C, L_1,
            ...)``. ``N = C L_1 ... L_n`` of the `side` ("input" or "output").
        side : str, optional

        Returns
        -------
        DistributedArray
            ``x`` laid out as ``op.scatter(x)``: each rank's slab, all channels. From a
            ``DistributedArray`` the entries move by one ``alltoall``; no rank ever
            holds the whole vector.

        Examples
        --------
        >>> import numpy as np
        >>> from pylops_mpi import DistributedArray
        >>> from toeplitz_conv.mpi import mpi_conv_operator
        >>> op = mpi_conv_operator(np.ones((2, 2, 1)), 3)   # 2 channels, one rank here
        >>> x = DistributedArray(global_shape=6)            # pylops-mpi's default layout
        >>> x[:] = np.arange(6.0)                           # vec(x): channel 0, channel 1
        >>> op.to_vec(op @ op.from_vec(x)).local_array
        array([3., 5., 7., 3., 5., 7.])
        """
        _, sizes, start, stop, full = self._agreed_side(side)
        n = math.prod(full)
        every = self.comm.allgather(_partition(v))
        distributed = [isinstance(e, tuple) for e in every]
        if any(distributed) and not all(distributed):
            raise ValueError(
                "`v` must be a DistributedArray on every rank or on none; it is one on ranks "
                f"{[r for r, d in enumerate(distributed) if d]}"
            )
        if all(distributed):
            if any(e[0] != "SCATTER" or e[1] != (n,) or not e[3] for e in every):
                raise ValueError(
                    f"`v` must be a 1-D DistributedArray of the {n} entries of vec(x) "
                    f"({side} shape {full}) in a SCATTER partition without mask; got global "
                    f"shape {every[0][1]}, partition {every[0][0]}"
                )
            if len({e[4] for e in every}) > 1:
                raise ValueError(
                    f"`v` must have the same dtype on every rank; got {[e[4] for e in every]}"
                )
            source = contiguous_pieces([e[2][0] for e in every])
            flat = np.ascontiguousarray(cast(DistributedArray, v).local_array).reshape(-1)
            return self._vector(redistribute(self.comm, flat, source, self._pieces(side)), sizes)

        def check() -> np.ndarray:
            a = np.asarray(v)
            if a.shape not in ((n,), full):
                raise ValueError(
                    f"`v` must be a DistributedArray or the whole {side} vector on every rank, "
                    f"shape ({n},) or {full}; got {a.shape}"
                )
            return a.reshape(full)[:, start:stop]

        return self.make_array(collective(self.comm, check), side=side)

    def to_vec(self, d: DistributedArray, *, side: str = "output") -> DistributedArray:
        """A vector of this operator's layout in ``vec`` order, pylops-mpi's default
        partition (collective): the inverse of :meth:`from_vec`.

        Parameters
        ----------
        d : DistributedArray
            In this operator's `side` layout (``op @ x``, ``op.scatter(y, side=...)``).
        side : str, optional
            "output" (default) or "input".

        Returns
        -------
        DistributedArray
            ``DistributedArray(global_shape=N)`` holding ``vec(y)``: rank ``q`` its
            ``q``-th contiguous share (the first ``N % R`` ranks one entry more), so
            ``.asarray()`` is ``vec(y)``. One ``alltoall``.
        """
        _, sizes, _, _, _ = self._agreed_side(side)
        self._check_vector(d, sizes, "d")
        n = sum(sizes)
        target = contiguous_pieces(split_sizes(n, self.comm.Get_size()))
        flat = np.ascontiguousarray(d.local_array).reshape(-1)
        local = redistribute(self.comm, flat, self._pieces(side), target)
        return DistributedArray(global_shape=n, base_comm=self.comm, local_array=local)


def _partition(x: object) -> tuple[str, tuple, tuple, bool, str] | list[str]:
    """A vector's partition on this rank: (type, global shape, local shape, no mask, dtype),
    or ``[its type's name]`` when it is not a ``DistributedArray``."""
    if not isinstance(x, DistributedArray):
        return [type(x).__name__]
    return (
        x.partition.name,
        tuple(int(n) for n in x.global_shape),
        tuple(int(n) for n in x.local_shape),
        x.mask is None,
        str(x.local_array.dtype),
    )


class MPIConvOperator(_SlabVectors, MPILinearOperator):
    r"""A conv layer's matrix ``M`` applied to a signal split over MPI ranks.

    Made by :func:`mpi_conv_operator`; see there for the parameters.

    Attributes
    ----------
    spec : ConvSpec
        The validated layer (weight, one geometry per spatial axis, groups).
    comm : mpi4py.MPI.Comm
    slabs : tuple of RankSlab
        Every rank's input slab, output rows and halo along the split axis.
    slab : RankSlab
        This rank's.
    input_shape, output_shape : tuple of int
        This rank's local signal ``(C_in, b - a, L_2, ..., L_n)`` and local output
        ``(C_out, o_{r+1} - o_r, L_out,2, ...)``.
    shape : (int, int)
        ``(C_out * prod(S_out), C_in * prod(S))``, as the single-process operator.
    dtype : numpy.dtype
    """

    def __init__(self, spec: ConvSpec, sizes: list[int], comm: MPI.Comm) -> None:
        self.spec = spec
        self.comm = comm
        self.slabs: tuple[RankSlab, ...] = plan_slabs(spec.geoms[0], sizes)
        rank = comm.Get_rank()
        self.slab = self.slabs[rank]
        self.input_shape = (spec.in_channels, self.slab.size, *spec.input_size[1:])
        self.output_shape = (spec.out_channels, self.slab.out_size, *spec.output_size[1:])
        self._in_local = [spec.in_channels * p.size * spec.inner_in for p in self.slabs]
        self._out_local = [spec.out_channels * p.out_size * spec.inner_out for p in self.slabs]
        n_e = self.slab.ext_stop - self.slab.ext_start
        self._local = spec.local_operator(n_e) if n_e else None
        rows = self.slab.buffer_rows(
            spec.geoms[0].src(np.arange(self.slab.ext_start, self.slab.ext_stop)),
            spec.geoms[0].input_length,
        )
        # window row j reads buffer row rows[j] (-1: zero padding). A copy by index; the
        # adjoint adds back by index when no buffer row is read twice, else by a sparse
        # selection matrix (reflect, replicate and circular padding read samples twice).
        self._window = n_e
        self._rows = np.maximum(rows, 0)
        self._zeros = np.flatnonzero(rows < 0)
        hit = np.flatnonzero(rows >= 0)
        self._scatter = None
        if np.unique(rows[hit]).size < hit.size:
            self._scatter = sp.csr_array(
                (np.ones(hit.size), (rows[hit], hit)), shape=(self.slab.buffer_size, n_e)
            )
        self._hit = hit
        super().__init__(shape=spec.shape, dtype=spec.weight.dtype, base_comm=comm)

    def __repr__(self) -> str:
        m, n = self.shape
        return (
            f"<{m}x{n} MPIConvOperator with dtype={self.dtype}: rank {self.comm.Get_rank()} "
            f"of {self.comm.Get_size()}, input slab [{self.slab.start}, {self.slab.stop}), "
            f"output rows [{self.slab.out_start}, {self.slab.out_stop}), halo {self.slab.halo}>"
        )

    # ------------------------------------------------------------------ halo exchange
    def _requests(self, buf: np.ndarray, reverse: bool) -> tuple[list, list]:
        """Nonblocking sends and receives of every piece, forwards or backwards.

        Forwards, each rank sends the pieces of its slab other ranks read and receives
        its own pieces after its slab in `buf`. Backwards, it sends the contributions
        in its pieces' rows to their owners and receives, into temporaries returned
        with where they add, the contributions of the ranks that read its samples.
        """
        me, comm, tag = self.slab, self.comm, _HALO + (10 if reverse else 0)
        reqs, adds = [], []
        at = me.size
        for owner, lo, hi in me.pieces:  # what I read from others
            rows = buf[at : at + hi - lo]
            if reverse:
                reqs.append(comm.Isend(rows, dest=owner, tag=tag))
            else:
                reqs.append(comm.Irecv(rows, source=owner, tag=tag))
            at += hi - lo
        for other in self.slabs:  # what others read from me
            for owner, lo, hi in other.pieces:
                if owner != me.rank:
                    continue
                mine = slice(lo - me.start, hi - me.start)
                if reverse:
                    tmp = np.empty_like(buf[mine])
                    reqs.append(comm.Irecv(tmp, source=other.rank, tag=tag))
                    adds.append((mine, tmp))
                else:
                    reqs.append(comm.Isend(buf[mine], dest=other.rank, tag=tag))
        return reqs, adds

    def _exchange(self, buf: np.ndarray) -> None:
        """Fill the pieces' rows of `buf` (shape ``(buffer_size, F)``) from their owners."""
        reqs, _ = self._requests(buf, reverse=False)
        MPI.Request.Waitall(reqs)

    def _reverse_exchange(self, buf: np.ndarray) -> None:
        """Send the pieces' contributions back to their owners and add them there."""
        reqs, adds = self._requests(buf, reverse=True)
        MPI.Request.Waitall(reqs)
        for where, tmp in adds:
            buf[where] += tmp

    # ------------------------------------------------------------------ local products
    def _as_batch(self, a: ArrayLike, shape: tuple[int, ...], name: str) -> tuple[np.ndarray, bool]:
        a = np.asarray(a)
        if a.shape == shape:
            return a[None], False
        if a.ndim == len(shape) + 1 and a.shape[1:] == shape:
            return a, True
        raise ValueError(
            f"`{name}` on rank {self.comm.Get_rank()} must have the local shape {shape} "
            f"(or (N, *{shape}) for a batch); got {a.shape}"
        )

    def _agreed_batch(
        self, a: ArrayLike, shape: tuple[int, ...], name: str
    ) -> tuple[np.ndarray, bool]:
        """`a` as a batch, once every rank has the same batch size and dtype (collective).

        The halo messages are sized by both: a rank that differs would exchange garbage
        or wait forever.
        """
        return collective(
            self.comm,
            lambda: self._as_batch(a, shape, name),
            same=lambda r: {
                f"{name}.dtype": str(r[0].dtype),
                f"the batch of {name}": r[0].shape[0] if r[1] else None,
            },
        )

    def forward_local(self, x: ArrayLike) -> np.ndarray:
        """``M`` on local slabs: this rank's slab of ``x`` in, its output rows out.

        Collective: every rank of the communicator must call it.

        Parameters
        ----------
        x : array_like, shape (C_in, b - a, L_2, ...) or (N, C_in, b - a, L_2, ...)
            This rank's slab (a batch keeps its ``N`` samples whole on every rank).

        Returns
        -------
        ndarray, shape (C_out, o_{r+1} - o_r, ...) or (N, C_out, ...)
            This rank's rows of ``conv(x, weight, ...)``.
        """
        xb, batched = self._agreed_batch(x, self.input_shape, "x")
        y = self._apply(xb)
        return y if batched else y[0]

    def adjoint_local(self, y: ArrayLike) -> np.ndarray:
        """``M^H`` on local slabs: this rank's output rows in, its input slab out (collective)."""
        yb, batched = self._agreed_batch(y, self.output_shape, "y")
        x = self._apply_adjoint(yb)
        return x if batched else x[0]

    def _apply(self, x: np.ndarray) -> np.ndarray:
        B = x.shape[0]
        C, inner = self.spec.in_channels, self.spec.inner_in
        dtype = np.result_type(self.dtype, x.dtype)
        me = self.slab
        buf = np.empty((me.buffer_size, C * inner * B), dtype=dtype)
        buf[: me.size] = x.reshape(B, C, me.size, inner).transpose(2, 1, 3, 0).reshape(me.size, -1)
        self._exchange(buf)
        out = np.zeros((B, *self.output_shape), dtype=dtype)
        if self._local is None:
            return out
        window = buf.take(self._rows, axis=0)
        window[self._zeros] = 0
        window = window.reshape(self._window, C, inner, B).transpose(1, 0, 2, 3)
        y = self._local.matmat(window.reshape(-1, B))
        out[...] = y.T.reshape(out.shape)
        return out

    def _apply_adjoint(self, y: np.ndarray) -> np.ndarray:
        B = y.shape[0]
        C, inner = self.spec.in_channels, self.spec.inner_in
        dtype = np.result_type(self.dtype, y.dtype)
        me = self.slab
        if self._local is None:
            buf = np.zeros((me.buffer_size, C * inner * B), dtype=dtype)
        else:
            n_e = self._window
            g = self._local.rmatmat(y.reshape(B, -1).T)  # (C * n_e * inner, B)
            g = g.reshape(C, n_e, inner, B).transpose(1, 0, 2, 3).reshape(n_e, -1)
            if self._scatter is not None:
                buf = np.ascontiguousarray(self._scatter @ g, dtype=dtype)
            else:
                buf = np.zeros((me.buffer_size, g.shape[1]), dtype=dtype)
                buf[self._rows[self._hit]] = g[self._hit]
        self._reverse_exchange(buf)
        x = buf[: me.size].reshape(me.size, C, inner, B).transpose(3, 1, 0, 2)
        return np.ascontiguousarray(x).reshape(B, *self.input_shape)

    # ------------------------------------------------------------------ pylops-mpi
    def _matvec(self, x: DistributedArray) -> DistributedArray:
        self._check_vector(x, self._in_local, "x")
        y = self._apply(x.local_array.reshape(1, *self.input_shape))
        return self._vector(y, self._out_local)

    def _rmatvec(self, x: DistributedArray) -> DistributedArray:
        self._check_vector(x, self._out_local, "x")
        y = self._apply_adjoint(x.local_array.reshape(1, *self.output_shape))
        return self._vector(y, self._in_local)

    def _side(self, side: str) -> tuple[tuple[int, ...], list[int], int, int, tuple[int, ...]]:
        spec, me = self.spec, self.slab
        if side == "input":
            full = (spec.in_channels, *spec.input_size)
            return self.input_shape, self._in_local, me.start, me.stop, full
        if side == "output":
            full = (spec.out_channels, *spec.output_size)
            return self.output_shape, self._out_local, me.out_start, me.out_stop, full
        raise ValueError(f"`side` must be 'input' or 'output'; got {side!r}")

    @property
    def halo_bytes(self) -> int:
        """Bytes this rank receives per product (all its halo pieces), per vector."""
        return self.slab.halo * self.spec.in_channels * self.spec.inner_in * self.dtype.itemsize


class MPIConvTransposeOperator(_SlabVectors, MPILinearOperator):
    r"""A transposed convolution's matrix ``M^T`` on a signal split over MPI ranks.

    Made by :func:`mpi_conv_transpose_operator`. ``M^T`` is the plain transpose of the
    matrix ``M`` of the convolution it transposes (no complex conjugate, as
    ``torch.nn.functional.conv_transpose1d`` and :func:`toeplitz_conv.conv_transpose`):
    since the entries of ``M`` are the weights, ``M(w)^T = M(\bar w)^H``, so it is the
    adjoint of the distributed convolution with the conjugate weight, and shares its
    slabs and halo exchange.

    Attributes
    ----------
    conv : MPIConvOperator
        The distributed convolution with weight ``conj(w)``: ``self`` is ``conv.H``.
    comm, slabs, slab
        Those of `conv` (its output rows are this operator's input slabs).
    input_shape, output_shape : tuple of int
        This rank's local input ``(C_out, ...)`` (the rows of `conv`) and local output
        ``(C_in, b - a, ...)`` (the slab of `conv`).
    shape : (int, int)
        ``(C_in * prod(S), C_out * prod(S_out))``, as
        :func:`toeplitz_conv.conv_transpose_operator`.
    """

    def __init__(self, conv: MPIConvOperator) -> None:
        self.conv = conv
        self.comm = conv.comm
        self.slabs, self.slab = conv.slabs, conv.slab
        self.input_shape, self.output_shape = conv.output_shape, conv.input_shape
        m, n = conv.shape
        super().__init__(shape=(n, m), dtype=conv.dtype, base_comm=conv.comm)

    def __repr__(self) -> str:
        m, n = self.shape
        return (
            f"<{m}x{n} MPIConvTransposeOperator with dtype={self.dtype}: "
            f"transpose of {self.conv!r}>"
        )

    def forward_local(self, x: ArrayLike) -> np.ndarray:
        """``M^T`` on local slabs (collective): ``input_shape`` in, ``output_shape`` out."""
        return self.conv.adjoint_local(x)

    def adjoint_local(self, y: ArrayLike) -> np.ndarray:
        """``conj(M)`` on local slabs (collective), the adjoint of :meth:`forward_local`."""
        return self.conv.forward_local(y)

    def _matvec(self, x: DistributedArray) -> DistributedArray:
        return self.conv._rmatvec(x)

    def _rmatvec(self, x: DistributedArray) -> DistributedArray:
        return self.conv._matvec(x)

    def _side(self, side: str) -> tuple[tuple[int, ...], list[int], int, int, tuple[int, ...]]:
        if side not in ("input", "output"):
            raise ValueError(f"`side` must be 'input' or 'output'; got {side!r}")
        return self.conv._side("output" if side == "input" else "input")

    @property
    def halo_bytes(self) -> int:
        """Bytes this rank receives per product (the convolution's halo), per vector."""
        return self.conv.halo_bytes


def _sizes(comm: MPI.Comm, length: int, local_size: object) -> list[int]:
    """Slab sizes of every rank: the default split, or each rank's `local_size`."""

    def check() -> int | None:
        if local_size is None:
            return None
        if isinstance(local_size, bool) or not isinstance(local_size, (int, np.integer)):
            raise TypeError(f"`local_size` must be an int >= 1 or None; got {local_size!r}")
        if local_size < 1:
            raise ValueError(f"`local_size` must be an int >= 1 or None; got {local_size}")
        return int(local_size)

    mine = collective(comm, check)
    every = comm.allgather(mine)
    if all(n is None for n in every):
        return split_sizes(length, comm.Get_size())

    def agree() -> None:
        if any(n is None for n in every) or sum(every) != length:
            raise ValueError(
                f"`local_size` must be given on every rank or on none, adding up to the "
                f"length {length} of the split axis; got {every}"
            )

    collective(comm, agree)
    return every


def _build(
    validate: Callable[[], Layer],
    dtype: DTypeLike | None,
    comm: MPI.Comm | None,
    local_size: object,
    conjugate: bool = False,
) -> MPIConvOperator:
    """The operator of the layer `validate` returns (called collectively: every rank
    raises the same error)."""
    comm = MPI.COMM_WORLD if comm is None else comm
    spec = collective(comm, lambda: conv_spec(validate(), dtype))
    if conjugate and spec.weight.dtype.kind == "c":
        spec = ConvSpec(spec.weight.conj(), spec.geoms, spec.groups)
    same_layer_everywhere(comm, spec)
    sizes = _sizes(comm, spec.input_size[0], local_size)
    return collective(comm, lambda: MPIConvOperator(spec, sizes, comm))


def mpi_conv_operator(
    weight: ArrayLike,
    input_size: int | tuple[int, ...],
    *,
    stride: int | tuple[int, ...] = 1,
    padding: PaddingND = 0,
    dilation: int | tuple[int, ...] = 1,
    groups: int = 1,
    padding_mode: PaddingMode = "zeros",
    dtype: DTypeLike | None = None,
    local_size: int | None = None,
    comm: MPI.Comm | None = None,
) -> MPIConvOperator:
    r"""The matrix of a conv layer as a distributed ``pylops_mpi.MPILinearOperator``.

    Collective: every rank of `comm` calls it with the same layer.

    Parameters
    ----------
    weight : array_like, shape (C_out, C_in/groups, K_1, ..., K_n)
        The kernel in torch's layout, the same on every rank.
    input_size : int or tuple of int
        ``L`` (1-D) or ``(L_1, ..., L_n)``; the signal is split along ``L_1``.
    stride, padding, dilation, groups, padding_mode, dtype : optional
        As in :func:`toeplitz_conv.conv1d_operator` (every padding mode).
    local_size : int, optional
        This rank's slab length along the split axis; given on every rank or on none.
        By default ``L_1`` is split as evenly as possible, the first ``L_1 % n`` ranks
        one sample longer (pylops-mpi's rule).
    comm : mpi4py.MPI.Comm, optional
        Defaults to ``MPI.COMM_WORLD``.

    Returns
    -------
    MPIConvOperator
        ``op.matvec`` / ``op @ x`` maps a ``DistributedArray`` of the ranks' input slabs
        to one of their output rows; ``op.rmatvec`` and ``op.H`` are the adjoint
        (transposed convolution, input gradient); ``op.forward_local`` and
        ``op.adjoint_local`` work on local numpy slabs, with a batch axis.

    Raises
    ------
    ValueError, TypeError
        On every rank, when the layer is invalid on any rank or differs between ranks.

    Notes
    -----
    Rank ``r`` owns input samples ``[a_r, b_r)`` of the split axis (all channels, all
    other axes) and output rows ``[o_r, o_{r+1})``: when the split axis keeps its length
    (``L_out = L``, e.g. ``padding="same"``) ``o_r = a_r``, so the output vector of a
    square operator has exactly the input's layout (``op @ x - x`` and pylops-mpi's
    ``cg`` work); otherwise the rows ``i`` whose first tap ``clamp(i s - p_l, 0, L-1)``
    lies in its slab. Its rows read

    .. math::

        \tilde x[c, j], \quad j \in [o_r s - p_l,\; (o_{r+1} - 1) s - p_l + d(K-1)],

    its own samples, the neighbours' edges (at most ``d(K-1)`` samples in all; from
    further ranks when a slab is smaller than that), and at the global ends the
    padding: zeros, reflect/replicate from the end ranks' samples, circular from the
    rank at the other end. The distributed vector is the ranks' slabs in rank order,
    each flattened over ``(channel, position, ...)``: for one channel exactly
    ``vec(x)``, for more a permutation of it (:meth:`~MPIConvOperator.from_vec` and
    :meth:`~MPIConvOperator.to_vec` convert). A batch (:meth:`~MPIConvOperator.forward_local`)
    is not split: every rank holds all ``N`` samples of its slab, and one message per
    neighbour carries the whole batch.

    Examples
    --------
    >>> import numpy as np
    >>> from toeplitz_conv.mpi import mpi_conv_operator
    >>> op = mpi_conv_operator([4.0, 3.0], 5)       # one rank here; mpiexec for more
    >>> x = op.scatter(np.array([[1.0, 2, 3, 4, 5]]))
    >>> (op @ x).local_array
    array([10., 17., 24., 31.])
    """
    geometry: dict[str, Any] = dict(
        stride=stride, padding=padding, dilation=dilation, padding_mode=padding_mode
    )
    return _build(
        lambda: conv_layer(weight, input_size, groups=groups, ndim=None, **geometry),
        dtype,
        comm,
        local_size,
    )


def mpi_conv_transpose_operator(
    weight: ArrayLike,
    input_size: int | tuple[int, ...],
    *,
    stride: int | tuple[int, ...] = 1,
    padding: TransposePadding = 0,
    output_padding: int | tuple[int, ...] = 0,
    groups: int = 1,
    dilation: int | tuple[int, ...] = 1,
    dtype: DTypeLike | None = None,
    local_size: int | None = None,
    comm: MPI.Comm | None = None,
) -> MPIConvTransposeOperator:
    """The matrix of ``conv_transpose`` as a distributed operator (collective).

    Parameters are those of :func:`toeplitz_conv.conv_transpose1d_operator` (and
    :func:`toeplitz_conv.conv_transpose_operator` in n-D). The result is the plain
    transpose ``M^T`` of the convolution it transposes, for complex weights too (no
    conjugate). Its output (``L`` samples along the split axis, the convolution's input)
    is split into slabs as in :func:`mpi_conv_operator` (`local_size` counts those
    samples); its input is the convolution's output rows, laid out by the same rule.

    Returns
    -------
    MPIConvTransposeOperator
        ``op @ x`` maps a ``DistributedArray`` in the layout of ``op.scatter(x)`` to one
        in the layout of ``op.scatter(y, side="output")``.

    Examples
    --------
    >>> import numpy as np
    >>> from toeplitz_conv.mpi import mpi_conv_transpose_operator
    >>> op = mpi_conv_transpose_operator([4.0, 3.0], 2, stride=2)
    >>> (op @ op.scatter(np.array([[1.0, 2.0]]))).local_array
    array([4., 3., 8., 6.])
    """
    geometry: dict[str, Any] = dict(
        stride=stride, padding=padding, output_padding=output_padding, dilation=dilation
    )
    conv = _build(
        lambda: transpose_layer(weight, input_size, groups=groups, ndim=None, **geometry),
        dtype,
        comm,
        local_size,
        conjugate=True,
    )
    return MPIConvTransposeOperator(conv)
