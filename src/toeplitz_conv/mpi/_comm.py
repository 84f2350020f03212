"""Collective error handling: one rank's bad input becomes the same error on every rank.

An exception on one rank while the others wait in a halo exchange or an ``allreduce``
would hang the job. Every public entry point of :mod:`toeplitz_conv.mpi` therefore runs
its checks inside :func:`collective`: each rank runs the check, the ranks agree on
whether any failed (one ``allreduce``), and if so every rank raises the same exception,
naming the first rank that failed and its message.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar, cast

if TYPE_CHECKING:
    from mpi4py import MPI

T = TypeVar("T")

__all__ = ["collective", "same_on_every_rank"]


def _exception_class(name: str) -> type[Exception]:
    cls = getattr(builtins, name, None)
    if isinstance(cls, type) and issubclass(cls, Exception):
        return cls
    return RuntimeError


def collective(
    comm: MPI.Comm, check: Callable[[], T], same: Callable[[T], dict] | None = None
) -> T:
    """Run ``check()`` on every rank of `comm`; if it raises anywhere, raise on every rank.

    Parameters
    ----------
    comm : mpi4py.MPI.Comm
        The communicator every rank of which calls this function.
    check : callable
        Takes no argument; its return value is returned.
    same : callable, optional
        Maps the return value to fingerprints that must agree across ranks, as the
        keyword arguments of :func:`same_on_every_rank`; checked in the same message.

    Returns
    -------
    The value of ``check()`` on this rank.

    Raises
    ------
    Exception
        On every rank when ``check`` raised on at least one: the built-in exception class
        of the first failing rank (``ValueError``, ``TypeError``, ...; ``RuntimeError``
        for others) with the message ``"rank r of n: <message>"``.
    ValueError
        On every rank when the fingerprints of `same` differ (:func:`same_on_every_rank`).

    Notes
    -----
    Costs one ``allreduce`` of an int when nothing fails (and an ``allgather`` of the
    messages when something does), or with `same` one ``allgather`` of the fingerprints,
    so it is cheap enough for every product.
    """
    result: T | None
    try:
        result = check()
        failure = None
        marks = None if same is None else _marks(same(result))
    except Exception as exc:  # every rank must learn of it, whatever it is
        result = marks = None
        failure = (type(exc).__name__, str(exc))
    if same is None:
        if comm.allreduce(0 if failure is None else 1) == 0:
            return cast("T", result)  # no rank failed: check() returned it
        failures = comm.allgather(failure)
    else:
        every = comm.allgather((failure, marks))
        failures = [f for f, _ in every]
        if all(f is None for f in failures):
            _compare([m for _, m in every])
            return cast("T", result)
    rank, (name, message) = next((r, f) for r, f in enumerate(failures) if f is not None)
    raise _exception_class(name)(f"rank {rank} of {comm.Get_size()}: {message}")


def _marks(values: dict) -> list[tuple[str, str]]:
    return [(name, repr(value)) for name, value in values.items()]


def _compare(every: list[list[tuple[str, str]]]) -> None:
    """Raise the same ValueError on every rank unless the ranks' marks agree."""
    for i, (name, first) in enumerate(every[0]):
        differ = [r for r, fp in enumerate(every) if fp[i][1] != first]
        if differ:
            shown = ", ".join(f"rank {r} has {every[r][i][1]}" for r in differ[:4])
            raise ValueError(
                f"`{name}` must be the same on every rank of the communicator; rank 0 has "
                f"{first}, {shown}"
            )


def same_on_every_rank(comm: MPI.Comm, **values: object) -> None:
    """Raise the same ``ValueError`` on every rank unless each value agrees across ranks.

    Parameters
    ----------
    comm : mpi4py.MPI.Comm
        The communicator every rank of which calls this function.
    **values
        Small fingerprints of this rank's arguments (a dtype, a shape, a path, a digest of
        a weight), compared by ``repr``; the keyword is the argument's name in the message.

    Raises
    ------
    ValueError
        On every rank, naming the first argument that differs, rank 0's value and the
        ranks whose value differs from it.

    Notes
    -----
    One ``allgather`` of the fingerprints. A collective call whose ranks disagree on an
    argument that sizes a message (a dtype, a batch, an iteration count) would otherwise
    hang or exchange garbage.
    """
    _compare(comm.allgather(_marks(values)))
