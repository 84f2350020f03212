r"""The symbol of a conv layer and its FFT spectrum.

After the polyphase split a stride-``s`` layer is a stride-1 conv with ``C_in s``
channels; its symbol ``A(theta) = sum_j Q_j e^{i theta q_j}`` (one small
``C_out/groups x G s`` matrix per group and angle) gives the exact spectrum of
block-circulant layers (Sedghi, Gupta & Long 2019; Senderovich et al. 2022) and the
circulant embedding that bounds every other layer. Also the validated float64 layer
every spectral function starts from.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._arrays import check_memory
from .._build import layer_matrix
from .._geometry import PaddingND, polyphase_taps
from .._layer import Layer, conv_layer
from .._threads import run_slices

__all__ = [
    "EPS",
    "Symbol",
    "analysis_layer",
    "circulant_spectrum",
    "dense_matrix",
    "gram_terms",
    "in_float64",
    "is_circulant",
    "is_real",
    "is_zero",
    "layer_symbol",
    "svdvals",
    "top_bounds",
    "top_vector",
    "unit_scaled",
]

EPS = np.finfo(np.float64).eps
_SVD_BATCH = 64  # symbol matrices per batched SVD call


# --------------------------------------------------------------------------- the layer
def analysis_layer(
    weight: object,
    input_size: object,
    stride: object,
    padding: PaddingND,
    dilation: object,
    groups: int,
    padding_mode: str,
) -> Layer:
    """The validated layer (``n`` spatial axes), its weight in float64 (complex128 if complex).

    `input_size` is an int (1-D, or every axis of an N-d weight) or a tuple of ``n`` ints.
    """
    geometry: dict[str, Any] = dict(
        stride=stride, padding=padding, dilation=dilation, padding_mode=padding_mode
    )
    return in_float64(conv_layer(weight, input_size, groups=groups, ndim=None, **geometry))


def in_float64(layer: Layer) -> Layer:
    """`layer` with its weight in float64 (complex128 if complex); NaN or inf refused."""
    dtype = np.complex128 if layer.weight.dtype.kind == "c" else np.float64
    if not np.isfinite(layer.weight).all():
        bad = int(np.size(layer.weight) - np.count_nonzero(np.isfinite(layer.weight)))
        raise ValueError(
            f"`weight` has NaN or inf entries ({bad} of {layer.weight.size}); "
            "the spectrum of such a matrix is undefined"
        )
    return Layer(np.ascontiguousarray(layer.weight, dtype=dtype), layer.geoms, layer.groups)


def unit_scaled(layer: Layer) -> tuple[Layer, int]:
    """`layer` with its weight times ``2^-e``, its largest entry in ``[0.5, 1)``, and ``e``.

    A power of two scales exactly: the singular values of `layer` are those of the returned
    layer times ``2^e`` (``np.ldexp(value, e)``), bit for bit. The searches and certificates
    square the weight's scale (Gram matrices, ``1 / sigma^2``), which over- or underflows for
    weights far from 1 (1e-170 gave a "certified" bracket [0, 0]); on the unit-scaled layer
    it cannot.
    """
    top = float(np.max(np.abs(layer.weight)))
    if top == 0.0:
        return layer, 0
    e = math.frexp(top)[1]
    w = layer.weight
    scaled = np.empty_like(w)  # ldexp takes no complex numbers: each part on its own
    if w.dtype.kind == "c":
        scaled.real, scaled.imag = np.ldexp(w.real, -e), np.ldexp(w.imag, -e)
    else:
        scaled[...] = np.ldexp(w, -e)
    return Layer(scaled, layer.geoms, layer.groups), e


def is_real(layer: Layer) -> bool:
    return layer.weight.dtype.kind != "c"


def is_zero(layer: Layer) -> bool:
    """The zero map: every weight is 0, so every singular value is exactly 0."""
    return not np.any(layer.weight)


def is_circulant(layer: Layer) -> bool:
    """Block-circulant on every axis (circular padding, one period of output per axis)."""
    return layer.is_circulant


def dense_matrix(layer: Layer) -> np.ndarray:
    return layer_matrix(layer, fmt="dense")


# --------------------------------------------------------------------------- the symbol
@dataclass(frozen=True)
class Symbol:
    r"""``A(theta) = sum_j Q[:, j] e^{i theta . q_j}``, per group, after the polyphase split.

    ``Q`` has shape ``(groups, nq, C_out/groups, G*R)`` with ``R = prod(s_a)``
    phases; column ``c*R + r`` is input channel ``c`` at phase ``r`` (row-major
    over ``(r_1, ..., r_n)``). Tap ``k`` sits at ``k_a d_a - p_a = q_a s_a + r_a``
    on every axis ``a``; ``q`` holds the distinct offsets ``(q_1, ..., q_n)``.
    """

    Q: np.ndarray
    q: np.ndarray  # (nq, n) integer offsets, centred per axis
    stride: tuple[int, ...]
    lipschitz: np.ndarray  # (n,): sum_j ||Q_j|| |q_ja| >= ||d A / d t_a||
    curvature: np.ndarray  # (n,): sum_j ||Q_j|| (q_ja - c_a)^2 >= ||d^2 (e^{-it.c} A) / d t_a^2||
    real: bool
    seen: dict = field(default_factory=dict, compare=False)  # (n, f) -> sigma_max; 'gram'

    @property
    def ndim(self) -> int:
        return self.q.shape[1]

    def angles(self, theta: object) -> np.ndarray:
        """`theta` as ``(T, n)`` angles (a 1-D symbol also takes ``(T,)``)."""
        theta = np.asarray(theta, dtype=np.float64)
        if theta.ndim <= 1 and self.ndim == 1:
            return theta.reshape(-1, 1)
        return theta.reshape(-1, self.ndim)

    def __call__(self, theta: np.ndarray, derivative: int = 0, axis: int = 0) -> np.ndarray:
        """``A(theta)`` (or its `derivative`-th derivative along `axis`) at each angle.

        `theta` has shape ``(T, n)`` (or ``(T,)`` for 1-D). Returns shape
        ``(T, groups, C_out/groups, G*R)``.
        """
        theta = self.angles(theta)
        phase = theta @ self.q.T.astype(np.float64)
        flat = self.Q.transpose(1, 0, 2, 3).reshape(self.q.shape[0], -1)
        if derivative:
            flat = flat * ((1j * self.q[:, axis]) ** derivative)[:, None]
        out = np.empty((theta.shape[0], flat.shape[1]), dtype=np.complex128)
        if self.real and not derivative:
            np.matmul(np.cos(phase), flat, out=out.real)
            np.matmul(np.sin(phase), flat, out=out.imag)
        else:
            out[...] = np.exp(1j * phase) @ flat
        return out.reshape(theta.shape[0], *self.Q.shape[:1], *self.Q.shape[2:])


def layer_symbol(layer: Layer) -> Symbol:
    c_out, G = layer.weight.shape[:2]
    groups = layer.groups
    strides = tuple(g.stride for g in layer.geoms)
    R = math.prod(strides)
    q_taps, phase = polyphase_taps(layer.geoms, padded=False)
    q_unique, which = np.unique(q_taps, axis=0, return_inverse=True)
    which = np.asarray(which).reshape(-1)
    taps = q_taps.shape[0]
    Q = np.zeros((groups, q_unique.shape[0], c_out // groups, G, R), dtype=layer.weight.dtype)
    w = layer.weight.reshape(groups, c_out // groups, G, taps)
    for k in range(taps):  # prod(K) is small; taps may share a polyphase offset
        Q[:, which[k], :, :, phase[k]] += w[..., k]
    Q = Q.reshape(groups, q_unique.shape[0], c_out // groups, G * R)
    n = layer.ndim
    norms = np.linalg.norm(Q, ord=2, axis=(2, 3)) if Q.size else np.zeros((groups, 0))
    lip = np.zeros(n)
    curv = np.zeros(n)
    q = q_unique.copy()
    for a in range(n):  # centre each axis where half the weight lies (small |q|)
        qa = q_unique[:, a]
        order = np.argsort(qa, kind="stable")
        cum = np.cumsum(norms.max(axis=0)[order]) if norms.size else np.zeros(0)
        centre = qa[order][np.searchsorted(cum, cum[-1] / 2)] if cum.size and cum[-1] > 0 else 0
        q[:, a] = qa - centre
        if norms.size:
            lip[a] = float(np.max(norms @ np.abs(q[:, a])))
            # sum_j ||Q_j|| (q_j - c)^2 bounds the second derivative; best c the weighted mean
            total = norms.sum(axis=1, keepdims=True)
            mean = (norms @ q[:, a].astype(np.float64))[:, None] / np.where(total > 0, total, 1)
            curv[a] = float(np.max((norms * (q[None, :, a] - mean) ** 2).sum(axis=1)))
    return Symbol(Q, q, strides, lip, curv, is_real(layer))


def svdvals(A: np.ndarray) -> np.ndarray:
    """Singular values of a batch ``(..., m, n)``, in batches that fit in cache."""
    lead = A.shape[:-2]
    flat = A.reshape(-1, *A.shape[-2:])
    out = np.empty((flat.shape[0], min(A.shape[-2:])), dtype=np.float64)

    def work(sl: slice) -> None:
        out[sl] = np.linalg.svd(flat[sl], compute_uv=False)

    run_slices(work, flat.shape[0], _SVD_BATCH)
    return out.reshape(*lead, -1)


def gram_terms(sym: Symbol) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""The Gram matrix of the symbol as a trigonometric polynomial, and its rounding bound.

    With ``B(t) = A(t)`` if it is taller than wide, else ``A(t)^H`` (the smaller
    Gram matrix), ``B(t) = sum_j P_j e^{i t p_j}`` and
    ``B^H B (t) = sum_u S_u e^{i t d_u}`` with ``S_u = sum_{p_k - p_j = d_u} P_j^H P_k``.

    Returns ``(d, S, delta)``: ``d`` the offsets ``(nd, n_axes)``, ``S`` of shape
    ``(groups, nd, n, n)`` and, per
    group, ``delta >= ||B^H B(t) - computed||_2`` for every ``t``: matmul, sum
    and evaluation each err by at most ``gamma_T sum_{j,k} |P_j|^H |P_k|``
    entrywise (``T`` the longest chain of roundings), whose 2-norm is at most
    ``(sum_j ||P_j||_F)^2``; the factor 4 covers complex arithmetic.
    """
    if "gram" in sym.seen:  # computed once per symbol
        return sym.seen["gram"]
    Q, q = sym.Q, sym.q
    if Q.shape[2] < Q.shape[3]:  # wide: use A A^H = (A^H)^H (A^H), A^H = sum Q_j^H e^{-i t q_j}
        P, p = Q.conj().transpose(0, 1, 3, 2), -q
    else:
        P, p = Q, q
    diffs = (p[None, :, :] - p[:, None, :]).reshape(-1, p.shape[1])  # d = p_k - p_j, pair (j, k)
    d, which = np.unique(diffs, axis=0, return_inverse=True)
    which = np.asarray(which).reshape(-1)
    groups, nq, m, k = P.shape
    X = P.transpose(0, 2, 1, 3).reshape(groups, m, nq * k)  # [P_0 P_1 ...] side by side
    XX = (X.conj().transpose(0, 2, 1) @ X).reshape(groups, nq, k, nq, k)  # block (j, k)
    S = np.zeros((groups, d.shape[0], k, k), dtype=XX.dtype)
    for i, u in enumerate(which):
        S[:, u] += XX[:, i // nq, :, i % nq, :]  # P_j^H P_k
    chain = P.shape[2] + diffs.shape[0] + 2 * d.shape[0] + 8
    fro = np.linalg.norm(P, axis=(2, 3)).sum(axis=1)
    delta = 4 * chain * EPS * fro * fro
    sym.seen["gram"] = (d.astype(np.float64), S, delta)
    return sym.seen["gram"]


def top_bounds(sym: Symbol, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""``lo <= sigma_max(A(theta_i)) <= hi`` from the eigenvalues of the Gram matrix.

    Cheaper than the SVD of ``A``: the Gram matrix comes from
    :func:`gram_terms` (off by at most ``delta``), and ``eigvalsh`` is backward
    stable (its values are exact for a matrix off by at most
    ``16 k eps ||G||_F``, more than LAPACK's bound), so by Weyl the largest
    eigenvalue is within the sum of both of ``sigma_max^2``.
    """
    d, S, delta = gram_terms(sym)
    groups, _, k, _ = S.shape
    theta = sym.angles(theta)
    phase = theta @ d.T
    flat = S.transpose(1, 0, 2, 3).reshape(d.shape[0], -1)
    G: np.ndarray = np.empty((theta.shape[0], flat.shape[1]), dtype=np.complex128)
    if flat.dtype.kind != "c":
        np.matmul(np.cos(phase), flat, out=G.real)
        np.matmul(np.sin(phase), flat, out=G.imag)
    else:
        np.matmul(np.exp(1j * phase), flat, out=G)
    G = G.reshape(-1, k, k)
    top = np.empty(G.shape[0])

    def work(sl: slice) -> None:
        top[sl] = np.linalg.eigvalsh(G[sl])[:, -1]

    run_slices(work, G.shape[0], _SVD_BATCH)
    size = np.sqrt(np.einsum("ijk,ijk->i", G.view(np.float64), G.view(np.float64)))
    T = theta.shape[0]
    margin = (delta[None, :] + 16 * k * EPS * size.reshape(T, groups)).ravel()
    lo = np.sqrt(np.maximum(top - margin, 0)).reshape(T, groups).max(axis=1)
    hi = np.sqrt(np.maximum(top + margin, 0)).reshape(T, groups).max(axis=1)
    return lo, hi


def _frequencies(n: int, real: bool) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies of one axis to evaluate and how many times each one's values occur.

    For real weights ``f`` and ``n - f`` share their singular values (on the
    last axis of an N-d grid: ``f`` and ``-f`` mod ``n`` jointly), so only
    ``0 <= f <= n // 2`` are evaluated.
    """
    if not real:
        return np.arange(n), np.ones(n, dtype=np.int64)
    f = np.arange(n // 2 + 1)
    mult = np.full(f.size, 2, dtype=np.int64)
    mult[0] = 1
    if n % 2 == 0:
        mult[-1] = 1
    return f, mult


def _grid_shape(n: tuple[int, ...], real: bool) -> tuple[int, ...]:
    """Grid points evaluated per axis: all, but half of the last axis for real weights."""
    return (*n[:-1], n[-1] // 2 + 1 if real else n[-1])


def circulant_spectrum(layer: Layer, deadline: float | None = None) -> np.ndarray:
    r"""All singular values of a block-circulant layer (unsorted).

    The symbol at ``f = (f_1..f_n)``, ``A(f) = sum_k W[:, :, k] e^{-2 pi i sum_a
    f_a (k_a d_a - p_a) / L_a}`` (after the polyphase split), one SVD per
    frequency of the half grid (the rfft symmetry for real weights). Past
    `deadline` (``time.monotonic()``, checked between chunks of frequencies) it
    raises ``TimeoutError`` saying how far it got: a spectrum has no useful part.
    """
    count = min(layer.shape)
    check_memory(
        3 * 8 * count,
        f"the spectrum's {count:,} singular values",
        "use a shorter input (`spectral_norm` needs no spectrum)",
    )
    sym = layer_symbol(layer)
    n = layer.output_size  # = L_a / s_a
    grid = _grid_shape(n, sym.real)
    _, mult_last = _frequencies(n[-1], sym.real)
    total = math.prod(grid)
    per = max(1, sym.Q[0, 0].size * sym.Q.shape[0] * 16)
    step = max(1, 2**22 // per)
    spacing = 2 * np.pi / np.array(n, dtype=np.float64)
    out = np.empty((total, sym.Q.shape[0] * min(sym.Q.shape[2:])), dtype=np.float64)
    for i in range(0, total, step):
        if deadline is not None and i and time.monotonic() >= deadline:
            raise TimeoutError(
                f"the circular spectrum reached {i:,} of its {total:,} frequencies "
                f"({count:,} singular values in all) within its time_limit; pass a larger "
                "time_limit or none (spectral_norm needs no spectrum)"
            )
        f = np.stack(np.unravel_index(np.arange(i, min(i + step, total)), grid), axis=1)
        A = sym(f * spacing)
        out[i : i + A.shape[0]] = svdvals(A).reshape(A.shape[0], -1)
    mult = np.broadcast_to(mult_last, grid).ravel()
    return np.repeat(out, mult, axis=0).ravel()


def top_vector(sym: Symbol, theta: object) -> np.ndarray:
    """Right singular vector (shape ``(groups, G*R)``) of ``A(theta)``'s top value."""
    A = sym(sym.angles(theta)[:1])[0]  # (groups, m, n)
    _, svals, vh = np.linalg.svd(A, full_matrices=False)
    g = int(np.argmax(svals[:, 0]))
    u = np.zeros(A.shape[0::2], dtype=np.complex128)
    u[g] = vh[g, 0].conj()
    return u
