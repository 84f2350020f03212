r"""The linear operations of a network, and the merged linear blocks they form.

A *piece* is one linear operation on one sample (the bias dropped: a Lipschitz
constant does not see it), as a float64 ``scipy.sparse.linalg.LinearOperator`` on the
row-major flattened sample with its exact adjoint, and its own norm bracket:

* :class:`ConvPiece`: a conv or transposed conv (torch's weight layout and parameters),
  BatchNorm folded into it exactly (a per-output-channel scale of the weight); its
  bracket is the library's (:func:`toeplitz_conv.spectral_norm_bounds`);
  average poolings are depthwise convs with weight ``1/divisor``.
* :class:`MatrixPiece`: ``nn.Linear`` on the last axis (``I (x) W``), norm ``||W||_2``.
* :class:`DiagPiece`: a standalone BatchNorm or a constant factor, norm ``max |d|``.
* :class:`TorchPiece`: any other non-negative linear map torch computes (adaptive
  average pooling with sizes that do not divide, ``ceil_mode``), applied by torch in
  float64 with the adjoint from autograd; its upper end is the Schur test
  ``||A||_2 <= sqrt(||A||_1 ||A||_inf)``, exact for the usual poolings.
* :class:`ReshapePiece`: flatten/view/reshape keeping the batch axis: the identity.

An *expression* (:class:`Expr`) is what a run of linear operations computes from one
source tensor: a chain of pieces, a sum of expressions (a residual block with two
linear branches) or their concatenation. :func:`close` brackets the norm of the whole
expression: the upper end is the least of the product (or sum, or root of the sum of
squares) of the pieces' certified upper ends and, when the smaller side of the merged
matrix has at most :data:`GRAM_SIDE` rows, the norm of the merged operator itself from
its dense Gram matrix.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple

import numpy as np
from scipy.sparse.linalg import LinearOperator

from .._layer import Layer, conv_layer, transpose_layer
from ..operators import ConvOperator, ConvTransposeOperator
from ..spectral._bracket import norm_bounds
from ..spectral._krylov import lanczos_lower
from ..spectral._method import Budget, choose_method
from ..spectral._symbol import dense_matrix

__all__ = [
    "GRAM_SIDE",
    "Bracket",
    "Context",
    "ConvPiece",
    "DiagPiece",
    "Expr",
    "MatrixPiece",
    "ReshapePiece",
    "TorchPiece",
    "close",
    "conv_params",
]

#: A merged block's own norm is computed from its dense Gram matrix when the smaller
#: side of the merged matrix has at most this many rows (that many products with it).
GRAM_SIDE: int = 2048
_EPS = float(np.finfo(np.float64).eps)
_DENSE_GRAM_LIMIT = 2**24  # entries: a conv's dense matrix when its bracket stays open
_GRAM_MARGIN = 1e-9  # relative rounding margin on a merged operator's dense norm


class Bracket(NamedTuple):
    """``lower <= norm <= upper``: ``lower`` attained, ``upper`` proved; how."""

    lower: float
    upper: float
    method: str


@dataclass
class Context:
    """The analysis settings and the shared time budget."""

    rtol: float
    maxiter: int
    deadline: float | None  # time.monotonic()
    pending: int = 1  # linear brackets still to compute (for the time share)

    def layer_time(self) -> float | None:
        """Seconds for the next bracket: a share of what is left (at least 0.2 s)."""
        if self.deadline is None:
            return None
        left = self.deadline - time.monotonic()
        return max(0.2, 0.7 * left / max(self.pending, 1))

    def deadline_in(self, seconds: float | None) -> float | None:
        return None if seconds is None else time.monotonic() + seconds


def _columns_operator(
    shape: tuple[int, int],
    mat: Callable[[np.ndarray], np.ndarray],
    rmat: Callable[[np.ndarray], np.ndarray],
) -> LinearOperator:
    """A float64 ``LinearOperator`` from its products with columns ``(n, B)``; vectors are
    the case ``B = 1``."""
    return LinearOperator(
        shape,
        matvec=lambda x: mat(x.reshape(-1, 1)).ravel(),
        rmatvec=lambda y: rmat(y.reshape(-1, 1)).ravel(),
        matmat=mat,
        rmatmat=rmat,
        dtype=np.float64,
    )


def _identity_op(n: int) -> LinearOperator:
    return LinearOperator(
        (n, n),
        matvec=lambda x: x,
        rmatvec=lambda x: x,
        matmat=lambda X: X,
        rmatmat=lambda X: X,
        dtype=np.float64,
    )


# --------------------------------------------------------------------------- pieces
@dataclass(eq=False)
class Piece:
    name: str
    kind: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    _bracket: Bracket | None = field(default=None, init=False, repr=False)

    @property
    def trivial(self) -> bool:
        """An isometry that changes only the shape (no row of its own)."""
        return False

    @cached_property
    def op(self) -> LinearOperator:  # pragma: no cover - every piece defines it
        raise NotImplementedError

    def bracket(self, ctx: Context) -> Bracket:
        if self._bracket is None:
            self._bracket = self._compute(ctx)
        return self._bracket

    def _compute(self, ctx: Context) -> Bracket:  # pragma: no cover
        raise NotImplementedError


@dataclass(eq=False)
class ConvPiece(Piece):
    """A conv (``transposed=False``) or transposed conv in torch's weight layout."""

    weight: np.ndarray = None  # type: ignore[assignment]  # always given; float64, (C_out, C_in/g, *K) or (C_in, C_out/g, *K)
    params: dict[str, Any] = field(default_factory=dict)
    transposed: bool = False
    depthwise_copies: bool = False  # a pooling: C identical 1-channel kernels

    @cached_property
    def layer(self) -> Layer:
        return self._layer(self.weight)

    def _layer(self, weight: np.ndarray) -> Layer:
        p = self.params
        n = weight.ndim - 2
        size = self.in_shape[1:]
        groups = p["groups"] if weight.shape[0] == self.weight.shape[0] else 1
        axes = {key: p[key] for key in ("stride", "padding", "dilation")}
        if self.transposed:
            q = p["output_padding"]
            return transpose_layer(weight, size, output_padding=q, groups=groups, ndim=n, **axes)
        mode = p["padding_mode"]
        return conv_layer(weight, size, padding_mode=mode, groups=groups, ndim=n, **axes)

    @cached_property
    def op(self) -> LinearOperator:
        lay = self.layer
        conv = ConvOperator(
            np.ascontiguousarray(lay.weight, dtype=np.float64), lay.geoms, lay.groups
        )
        return ConvTransposeOperator(conv) if self.transposed else conv

    def folded(self, scale: np.ndarray, name: str, kind: str) -> ConvPiece:
        """This layer followed by a per-output-channel `scale` (an eval BatchNorm)."""
        w = self.weight.copy()
        n = w.ndim - 2
        if self.transposed:  # output channel o = (c // (C_in/g)) * (C_out/g) + j
            c_in, per_out = w.shape[0], w.shape[1]
            per_in = c_in // self.params["groups"]
            idx = (np.arange(c_in)[:, None] // per_in) * per_out + np.arange(per_out)[None, :]
            w *= scale[idx].reshape(c_in, per_out, *([1] * n))
        else:
            w *= scale.reshape(-1, 1, *([1] * n))
        return ConvPiece(
            f"{self.name}+{name}",
            f"{self.kind}+{kind}",
            self.in_shape,
            self.out_shape,
            weight=w,
            params=self.params,
            transposed=self.transposed,
        )

    def _compute(self, ctx: Context) -> Bracket:
        layer = self._layer(self.weight[:1]) if self.depthwise_copies else self.layer
        w = layer.weight
        pads = [(g.pad_left, g.pad_right) for g in layer.geoms]
        if all(k == 1 for k in layer.kernel_size) and all(p == (0, 0) for p in pads):
            # a 1x1 conv without padding applies W at each kept position: ||W|| per group
            blocks = w.reshape(layer.groups, -1, *w.shape[1:2])
            top = max(float(np.linalg.norm(b, ord=2)) for b in blocks)
            return Bracket(top * (1 - 256 * _EPS), top * (1 + 256 * _EPS), "1x1: ||W||_2, exact")
        m, n = layer.shape
        method = choose_method(layer, "norm")
        if method == "fft":
            how = "exact (FFT of the block-circulant symbol)"
        elif method == "dense":
            how = "exact (dense SVD)"
        elif m * n <= _DENSE_GRAM_LIMIT:
            # a small matrix: exact, where the circulant bound is loose (short inputs)
            top = _gram_norm(dense_matrix(layer))
            margin = 64 * min(m, n) * _EPS
            return Bracket(top * (1 - margin), top * (1 + margin), "exact (dense Gram)")
        else:
            how = "certified (circulant symbol bound / Gram certificate; Lanczos below)"
        ctx.pending = max(ctx.pending - 1, 1)
        lo, hi = norm_bounds(layer, ctx.rtol, Budget(ctx.maxiter, ctx.layer_time()))
        return Bracket(float(lo), float(hi), how)


@dataclass(eq=False)
class MatrixPiece(Piece):
    """``nn.Linear``'s weight ``W`` applied along the last axis."""

    weight: np.ndarray = None  # type: ignore[assignment]  # always given; (out, in) float64

    @cached_property
    def op(self) -> LinearOperator:
        W = self.weight
        rows = math.prod(self.out_shape)
        cols = math.prod(self.in_shape)

        def mat(X):
            B = X.shape[1]
            Y = X.T.reshape(B, -1, W.shape[1]) @ W.T
            return Y.reshape(B, rows).T

        def rmat(Y):
            B = Y.shape[1]
            X = Y.T.reshape(B, -1, W.shape[0]) @ W
            return X.reshape(B, cols).T

        return _columns_operator((rows, cols), mat, rmat)

    def folded(self, scale: np.ndarray, name: str, kind: str) -> MatrixPiece:
        return MatrixPiece(
            f"{self.name}+{name}",
            f"{self.kind}+{kind}",
            self.in_shape,
            self.out_shape,
            weight=self.weight * scale[:, None],
        )

    def _compute(self, ctx: Context) -> Bracket:
        W = self.weight
        G = W @ W.T if W.shape[0] <= W.shape[1] else W.T @ W
        top = math.sqrt(max(float(np.linalg.eigvalsh(G)[-1]), 0.0))
        margin = 64 * max(W.shape) * _EPS
        return Bracket(top * (1 - margin), top * (1 + margin), "||W||_2, exact")


@dataclass(eq=False)
class DiagPiece(Piece):
    """Elementwise multiplication by ``d`` (the sample's shape): BatchNorm, a constant."""

    diag: np.ndarray = None  # type: ignore[assignment]  # always given
    bn_scale: np.ndarray | None = None  # per channel: a BatchNorm, foldable into a layer

    @cached_property
    def op(self) -> LinearOperator:
        d = self.diag.reshape(-1)
        return LinearOperator(
            (d.size, d.size),
            matvec=lambda x: d * x.ravel(),
            rmatvec=lambda y: d * y.ravel(),
            matmat=lambda X: d[:, None] * X,
            rmatmat=lambda Y: d[:, None] * Y,
            dtype=np.float64,
        )

    def _compute(self, ctx: Context) -> Bracket:
        top = float(np.max(np.abs(self.diag))) if self.diag.size else 0.0
        return Bracket(top, top, "max |d|, exact")


@dataclass(eq=False)
class ReshapePiece(Piece):
    """flatten / view / reshape with the batch axis kept: the identity on the flat sample."""

    @property
    def trivial(self) -> bool:
        return True

    @cached_property
    def op(self) -> LinearOperator:
        return _identity_op(math.prod(self.in_shape))

    def _compute(self, ctx: Context) -> Bracket:
        return Bracket(1.0, 1.0, "reshape")


@dataclass(eq=False)
class TorchPiece(Piece):
    """A non-negative linear map torch applies (float64), the adjoint by autograd."""

    fn: Any = None  # batch (B, *in_shape) float64 tensor -> (B, *out_shape)

    @cached_property
    def op(self) -> LinearOperator:
        import torch

        fn, ins = self.fn, self.in_shape
        rows, cols = math.prod(self.out_shape), math.prod(ins)

        def mat(X):
            x = torch.from_numpy(np.ascontiguousarray(X.T)).reshape(-1, *ins)
            with torch.no_grad():
                return fn(x).reshape(X.shape[1], rows).numpy().T

        def rmat(Y):
            B = Y.shape[1]
            x = torch.zeros(B, *ins, dtype=torch.float64, requires_grad=True)
            y = torch.from_numpy(np.ascontiguousarray(Y.T)).reshape(B, *self.out_shape)
            with torch.enable_grad():
                (g,) = torch.autograd.grad(fn(x), x, y)
            return g.reshape(B, cols).numpy().T

        return _columns_operator((rows, cols), mat, rmat)

    def _compute(self, ctx: Context) -> Bracket:
        op = self.op
        rows = op.matvec(np.ones(op.shape[1]))  # A 1: row sums (A >= 0)
        cols = op.rmatvec(np.ones(op.shape[0]))  # A^T 1: column sums
        if rows.min(initial=0.0) < 0 or cols.min(initial=0.0) < 0:  # pragma: no cover
            raise ValueError(f"{self.name}: a negative entry in a pooling map")
        upper = math.sqrt(float(rows.max(initial=0.0)) * float(cols.max(initial=0.0)))
        upper *= 1 + 1e-12
        lower = _lower(op, upper, ctx)
        return Bracket(
            min(lower, upper), upper, "Schur test sqrt(max row sum * max column sum); Lanczos below"
        )


def conv_params(module: Any) -> tuple[dict[str, Any], bool, str]:
    """``(params, transposed, kind)`` of a torch conv module, as :class:`ConvPiece` takes them."""
    padding = module.padding if isinstance(module.padding, str) else tuple(module.padding)
    params = {
        "stride": tuple(module.stride),
        "padding": padding,
        "dilation": tuple(module.dilation),
        "groups": module.groups,
        "padding_mode": module.padding_mode,
        "output_padding": tuple(module.output_padding),
    }
    n = module.weight.ndim - 2
    transposed = bool(module.transposed)
    return params, transposed, f"conv_transpose{n}d" if transposed else f"conv{n}d"


# --------------------------------------------------------------------------- expressions
class Expr:
    """A linear map from one source tensor (one sample) to a node's value."""

    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]

    def pieces(self) -> list[Piece]:  # pragma: no cover
        raise NotImplementedError

    @property
    def op(self) -> LinearOperator:  # pragma: no cover
        raise NotImplementedError

    def naive(self, ctx: Context) -> float:  # pragma: no cover
        """A certified upper bound from the pieces' own brackets."""
        raise NotImplementedError

    def label(self) -> str:  # pragma: no cover
        raise NotImplementedError


@dataclass(eq=False)
class Chain(Expr):
    """``parts[-1] o ... o parts[0]`` (the empty chain is the identity on `in_shape`)."""

    in_shape: tuple[int, ...]
    parts: tuple[Any, ...] = ()  # Piece or Expr, applied first to last

    @property
    def out_shape(self) -> tuple[int, ...]:  # type: ignore[override]
        return self.parts[-1].out_shape if self.parts else self.in_shape

    def pieces(self) -> list[Piece]:
        out: list[Piece] = []
        for p in self.parts:
            out.extend([p] if isinstance(p, Piece) else p.pieces())
        return out

    @cached_property
    def op(self) -> LinearOperator:
        ops = [p.op for p in self.parts if not (isinstance(p, Piece) and p.trivial)]
        if not ops:
            return _identity_op(math.prod(self.in_shape))
        out = ops[0]
        for o in ops[1:]:
            out = o @ out
        return out

    def naive(self, ctx: Context) -> float:
        value = 1.0
        for p in self.parts:
            value *= p.bracket(ctx).upper if isinstance(p, Piece) else p.naive(ctx)
        return value

    def label(self) -> str:
        names = [
            p.name if isinstance(p, Piece) else p.label()
            for p in self.parts
            if not (isinstance(p, Piece) and p.trivial)
        ]
        return " -> ".join(names) if names else "identity"

    def then(self, piece: Piece) -> Chain:
        """This chain, then `piece`; a BatchNorm scale folds into the conv or linear before it."""
        scale = getattr(piece, "bn_scale", None)
        if scale is not None and self.parts and hasattr(self.parts[-1], "folded"):
            last = self.parts[-1]
            if (isinstance(last, ConvPiece) and not last.depthwise_copies) or (
                isinstance(last, MatrixPiece) and len(last.out_shape) == 1
            ):
                folded = last.folded(scale, piece.name, piece.kind)
                return Chain(self.in_shape, (*self.parts[:-1], folded))
        return Chain(self.in_shape, (*self.parts, piece))


@dataclass(eq=False)
class Sum(Expr):
    """``sum_i sign_i * terms[i]`` of expressions on the same source and shape."""

    terms: tuple[Expr, ...]
    signs: tuple[float, ...]

    @property
    def in_shape(self) -> tuple[int, ...]:  # type: ignore[override]
        return self.terms[0].in_shape

    @property
    def out_shape(self) -> tuple[int, ...]:  # type: ignore[override]
        return self.terms[0].out_shape

    def pieces(self) -> list[Piece]:
        return [p for t in self.terms for p in t.pieces()]

    @cached_property
    def op(self) -> LinearOperator:
        out: LinearOperator = self.signs[0] * self.terms[0].op
        for s, t in zip(self.signs[1:], self.terms[1:], strict=True):
            out = out + s * t.op
        return out

    def naive(self, ctx: Context) -> float:
        return sum(abs(s) * t.naive(ctx) for s, t in zip(self.signs, self.terms, strict=True))

    def label(self) -> str:
        return "(" + " + ".join(t.label() for t in self.terms) + ")"


@dataclass(eq=False)
class Cat(Expr):
    """``torch.cat([terms...], dim)`` of expressions on the same source (``dim`` per sample)."""

    terms: tuple[Expr, ...]
    dim: int

    @property
    def in_shape(self) -> tuple[int, ...]:  # type: ignore[override]
        return self.terms[0].in_shape

    @property
    def out_shape(self) -> tuple[int, ...]:  # type: ignore[override]
        shape = list(self.terms[0].out_shape)
        shape[self.dim] = sum(t.out_shape[self.dim] for t in self.terms)
        return tuple(shape)

    def pieces(self) -> list[Piece]:
        return [p for t in self.terms for p in t.pieces()]

    @cached_property
    def op(self) -> LinearOperator:
        ops = [t.op for t in self.terms]
        shapes = [t.out_shape for t in self.terms]
        d = self.dim
        sizes = [s[d] for s in shapes]
        rows, cols = math.prod(self.out_shape), ops[0].shape[1]

        def mat(X):
            B = X.shape[1]
            parts = [o.matmat(X).T.reshape(B, *s) for o, s in zip(ops, shapes, strict=True)]
            return np.concatenate(parts, axis=d + 1).reshape(B, rows).T

        def rmat(Y):
            B = Y.shape[1]
            Yb = Y.T.reshape(B, *self.out_shape)
            pieces = np.split(Yb, np.cumsum(sizes)[:-1], axis=d + 1)
            out = np.zeros((cols, B))
            for o, p in zip(ops, pieces, strict=True):
                out += o.rmatmat(np.ascontiguousarray(p.reshape(B, -1).T))
            return out

        return _columns_operator((rows, cols), mat, rmat)

    def naive(self, ctx: Context) -> float:
        return math.sqrt(sum(t.naive(ctx) ** 2 for t in self.terms))

    def label(self) -> str:
        return "cat(" + ", ".join(t.label() for t in self.terms) + ")"


# --------------------------------------------------------------------------- brackets
def _lower(op: LinearOperator, target: float, ctx: Context) -> float:
    """An attained ``||A v|| / ||v||`` by Lanczos on ``A^T A`` from a random start."""
    x0 = np.random.default_rng(0).standard_normal(op.shape[1])
    x0 += 1.0  # poolings and averaging maps peak near the constant vector
    deadline = ctx.deadline_in(ctx.layer_time())
    lower, _ = lanczos_lower(
        op,
        x0,
        steps=ctx.maxiter,
        target=target / (1 + ctx.rtol),
        stall=ctx.rtol / 16,
        deadline=deadline,
    )
    return float(lower)


def _gram_norm(op: LinearOperator | np.ndarray) -> float:
    """``||A||_2`` from the dense Gram matrix of the smaller side (``GRAM_SIDE`` products)."""
    m, n = op.shape
    if isinstance(op, np.ndarray):
        G = op @ op.T if m <= n else op.T @ op
        return math.sqrt(max(float(np.linalg.eigvalsh(G)[-1]), 0.0))
    wide = m <= n
    side = m if wide else n
    G = np.empty((side, side))
    for start in range(0, side, 256):
        E = np.zeros((side, min(256, side - start)))
        E[start + np.arange(E.shape[1]), np.arange(E.shape[1])] = 1.0
        if wide:
            G[:, start : start + E.shape[1]] = op.matmat(op.rmatmat(E))
        else:
            G[:, start : start + E.shape[1]] = op.rmatmat(op.matmat(E))
    G = (G + G.T) / 2
    return math.sqrt(max(float(np.linalg.eigvalsh(G)[-1]), 0.0))


def close(expr: Expr, ctx: Context) -> Bracket:
    """The norm bracket of a merged linear block (see the module docstring)."""
    real = [p for p in expr.pieces() if not p.trivial]
    flat = isinstance(expr, Chain) and all(isinstance(p, Piece) for p in expr.parts)
    if flat and len(real) == 1:
        return real[0].bracket(ctx)
    if flat and not real:  # reshapes only (a sum or concatenation of them is not an isometry)
        return Bracket(1.0, 1.0, "identity")
    naive = expr.naive(ctx)
    op = expr.op
    how = f"merged {len(real)} ops"
    if min(op.shape) <= GRAM_SIDE:
        top = _gram_norm(op)
        upper = min(naive, top * (1 + _GRAM_MARGIN))
        return Bracket(
            top * (1 - _GRAM_MARGIN),
            upper,
            f"{how}: dense Gram {min(op.shape)}^2, exact; product {naive:.4g}",
        )
    lower = _lower(op, naive, ctx)
    return Bracket(lower, naive, f"{how}: upper = composed layer bounds; Lanczos below")
