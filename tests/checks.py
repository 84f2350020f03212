"""Reusable checks of a matrix-free operator against its explicit matrix.

:func:`assert_operator_matches` checks every way scipy lets one apply a
``LinearOperator`` (``matvec``, ``rmatvec``, ``matmat``, ``rmatmat``, ``@``, ``.T``,
``.H``, ``.adjoint()`` and their transposes/adjoints again) against ``M``,
``M.T`` and ``M.conj().T``, with complex vectors, so that a transpose that
conjugates (or an adjoint that does not) is caught for complex weights.
:func:`dot_test` is PyLops' ``dottest`` with its complex flags: it checks
``<y, A x> == <A^H y, x>`` without any matrix. Both work for any shape of
operator, so the N-d operators can reuse them.
"""

from __future__ import annotations

import numpy as np


def _random(rng: np.random.Generator, shape: tuple[int, ...], complex_: bool) -> np.ndarray:
    a = rng.standard_normal(shape)
    return a + 1j * rng.standard_normal(shape) if complex_ else a


def assert_close(got: np.ndarray, want: np.ndarray, rtol: float, what: str = "result") -> None:
    """``max |got - want| <= rtol * max(1, max |want|)``, shapes equal."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    scale = max(1.0, float(np.abs(want).max(initial=0.0)))
    err = float(np.abs(got - want).max(initial=0.0))
    assert err <= rtol * scale, f"{what}: max error {err:.3g} (scale {scale:.3g})"


def dot_test(
    op,
    rng: np.random.Generator,
    *,
    complex_model: bool = True,
    complex_data: bool = True,
    rtol: float = 1e-10,
) -> None:
    """Assert ``vdot(y, op @ x) == vdot(op.H @ y, x)`` (PyLops' ``dottest``).

    `complex_model`/`complex_data` make ``x``/``y`` complex; for a complex
    operator a transpose that is not conjugated fails this test.
    """
    m, n = op.shape
    x = _random(rng, (n,), complex_model)
    y = _random(rng, (m,), complex_data)
    lhs = np.vdot(y, op.matvec(x))
    rhs = np.vdot(op.rmatvec(y), x)
    assert abs(lhs - rhs) <= rtol * max(1.0, abs(lhs)), f"dot test: {lhs} != {rhs}"
    lhs2 = np.vdot(y, op @ x)
    rhs2 = np.vdot(op.H @ y, x)
    assert abs(lhs2 - rhs2) <= rtol * max(1.0, abs(lhs2)), f"dot test via .H: {lhs2} != {rhs2}"


def assert_operator_matches(
    op, M: np.ndarray, rng: np.random.Generator, *, rtol: float = 1e-10, depth: int = 2
) -> None:
    """Assert that the ``LinearOperator`` `op` is the dense matrix `M`, every way round.

    Checks ``shape``, ``matvec``/``rmatvec``/``matmat``/``rmatmat``, ``@`` on a
    vector and on one column, an empty batch (``(n, 0)`` gives ``(m, 0)``), a dot
    test with complex vectors, and recursively (to `depth` levels) ``op.T`` against
    ``M.T``, ``op.H`` and ``op.adjoint()`` against ``M.conj().T``.
    """
    M = np.asarray(M)
    m, n = M.shape
    assert op.shape == (m, n), f"shape {op.shape}, expected {(m, n)}"
    x = _random(rng, (n,), True)
    y = _random(rng, (m,), True)
    X = _random(rng, (n, 3), True)
    Y = _random(rng, (m, 2), True)
    assert_close(op.matvec(x), M @ x, rtol, "matvec")
    assert_close(op.matvec(x.real), M @ x.real, rtol, "matvec of a real vector")
    assert_close(op.rmatvec(y), M.conj().T @ y, rtol, "rmatvec")
    assert_close(op.matmat(X), M @ X, rtol, "matmat")
    assert_close(op.rmatmat(Y), M.conj().T @ Y, rtol, "rmatmat")
    assert_close(op @ x, M @ x, rtol, "op @ x")
    assert_close(op @ X[:, :1], M @ X[:, :1], rtol, "op @ one column")
    assert_close(op.matmat(np.ones((n, 0))), np.ones((m, 0)), rtol, "matmat of an empty batch")
    assert_close(op.rmatmat(np.ones((m, 0))), np.ones((n, 0)), rtol, "rmatmat of an empty batch")
    dot_test(op, rng, rtol=rtol)
    if depth > 0:
        assert_operator_matches(op.T, M.T, rng, rtol=rtol, depth=depth - 1)
        assert_operator_matches(op.H, M.conj().T, rng, rtol=rtol, depth=depth - 1)
        assert_operator_matches(op.adjoint(), M.conj().T, rng, rtol=rtol, depth=0)
