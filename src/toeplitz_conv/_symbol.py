r"""The symbol of a conv layer and its FFT spectrum.

After the polyphase split a stride-``s`` layer is a stride-1 conv with ``C_in s``
channels; its symbol ``A(theta) = sum_j Q_j e^{i theta q_j}`` (one small
``C_out/groups x G s`` matrix per group and angle) gives the exact spectrum of
block-circulant layers (Sedghi, Gupta & Long 2019; Senderovich et al. 2022) and the
circulant embedding that bounds every other layer. Also the validated float64 layer
every spectral function starts from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._arrays import check_memory
from ._geometry import Padding
from ._layer import Layer, conv_layer
from ._threads import run_slices
from .matrices import layer_matrix
from .operators import Conv1dOperator

_EPS = np.finfo(np.float64).eps
_SVD_BATCH = 64  # symbol matrices per batched SVD call


# --------------------------------------------------------------------------- the layer
def _layer(
    weight: object,
    input_length: int,
    stride: int,
    padding: Padding,
    dilation: int,
    groups: int,
    padding_mode: str,
) -> Layer:
    """The validated layer, its weight in float64 (complex128 for complex weights)."""
    layer = conv_layer(
        weight,
        input_length,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        padding_mode=padding_mode,
    )
    dtype = np.complex128 if layer.weight.dtype.kind == "c" else np.float64
    return Layer(np.ascontiguousarray(layer.weight, dtype=dtype), layer.geom, layer.groups)


def _is_real(layer: Layer) -> bool:
    return layer.weight.dtype.kind != "c"


def _operator(layer: Layer) -> Conv1dOperator:
    return Conv1dOperator(layer.weight, layer.geom, layer.groups)


def _dense(layer: Layer) -> np.ndarray:
    return layer_matrix(layer, fmt="dense")


# --------------------------------------------------------------------------- the symbol
@dataclass(frozen=True)
class _Symbol:
    r"""``A(theta) = sum_j Q[:, j] e^{i theta q_j}``, per group, after the polyphase split.

    ``Q`` has shape ``(groups, nq, C_out/groups, G*s)``; column ``c*s + r`` is
    input channel ``c`` at phase ``r``. Tap ``k`` sits at ``k*d - p_l = q*s + r``.
    """

    Q: np.ndarray
    q: np.ndarray  # (nq,) integer offsets, centred to make the Lipschitz constant small
    stride: int
    lipschitz: float  # sum_j ||Q_j|| |q_j| >= ||A'(t)||
    curvature: float  # sum_j ||Q_j|| (q_j - c)^2 >= ||(e^{-itc} A(t))''||, best centre c
    real: bool
    seen: dict = field(default_factory=dict, compare=False)  # (n, f) -> sigma_max; 'gram'

    def __call__(self, theta: np.ndarray, derivative: int = 0) -> np.ndarray:
        """``A(theta)`` (or its `derivative`-th derivative) for each angle.

        Shape ``(len(theta), groups, C_out/groups, G*s)``.
        """
        theta = np.asarray(theta, dtype=np.float64)
        phase = np.outer(theta, self.q)
        flat = self.Q.transpose(1, 0, 2, 3).reshape(self.q.size, -1)
        if derivative:
            flat = flat * ((1j * self.q) ** derivative)[:, None]
        out = np.empty((theta.size, flat.shape[1]), dtype=np.complex128)
        if self.real and not derivative:
            np.matmul(np.cos(phase), flat, out=out.real)
            np.matmul(np.sin(phase), flat, out=out.imag)
        else:
            out[...] = np.exp(1j * phase) @ flat
        return out.reshape(theta.size, *self.Q.shape[:1], *self.Q.shape[2:])


def _symbol(layer: Layer) -> _Symbol:
    g = layer.geom
    c_out, G, K = layer.weight.shape
    groups, s = layer.groups, g.stride
    offsets = np.arange(K) * g.dilation - g.pad_left
    q, r = np.divmod(offsets, s)
    q_unique, which = np.unique(q, return_inverse=True)
    Q = np.zeros((groups, q_unique.size, c_out // groups, G, s), dtype=layer.weight.dtype)
    w = layer.weight.reshape(groups, c_out // groups, G, K)
    for k in range(K):  # K is small; taps may share a polyphase offset
        Q[:, which[k], :, :, r[k]] += w[..., k]
    Q = Q.reshape(groups, q_unique.size, c_out // groups, G * s)
    # the Lipschitz constant of sigma_max(A(theta)): sum_j ||Q_j|| |q_j - centre|
    norms = np.linalg.norm(Q, ord=2, axis=(2, 3)) if Q.size else np.zeros((groups, 0))
    weights = norms.max(axis=0)
    cum = np.cumsum(weights)
    centre = q_unique[np.searchsorted(cum, cum[-1] / 2)] if cum[-1] > 0 else 0
    q = q_unique - centre
    lip = float(np.max(norms @ np.abs(q))) if norms.size else 0.0
    # sum_j ||Q_j|| (q_j - c)^2 bounds ||d^2/dt^2 e^{-i t c} A(t)||; best c is the weighted mean
    total = norms.sum(axis=1, keepdims=True)
    mean = (norms @ q.astype(np.float64))[:, None] / np.where(total > 0, total, 1)
    curv = float(np.max((norms * (q[None, :] - mean) ** 2).sum(axis=1))) if norms.size else 0.0
    return _Symbol(Q, q, s, lip, curv, _is_real(layer))


def _svdvals(A: np.ndarray) -> np.ndarray:
    """Singular values of a batch ``(..., m, n)``, in batches that fit in cache."""
    lead = A.shape[:-2]
    flat = A.reshape(-1, *A.shape[-2:])
    out = np.empty((flat.shape[0], min(A.shape[-2:])), dtype=np.float64)

    def work(sl: slice) -> None:
        out[sl] = np.linalg.svd(flat[sl], compute_uv=False)

    run_slices(work, flat.shape[0], _SVD_BATCH)
    return out.reshape(*lead, -1)


def _gram_terms(sym: _Symbol) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""The Gram matrix of the symbol as a trigonometric polynomial, and its rounding bound.

    With ``B(t) = A(t)`` if it is taller than wide, else ``A(t)^H`` (the smaller
    Gram matrix), ``B(t) = sum_j P_j e^{i t p_j}`` and
    ``B^H B (t) = sum_u S_u e^{i t d_u}`` with ``S_u = sum_{p_k - p_j = d_u} P_j^H P_k``.

    Returns ``(d, S, delta)``: ``S`` of shape ``(groups, nd, n, n)`` and, per
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
    diffs = (p[None, :] - p[:, None]).ravel()  # d = p_k - p_j for pair (j, k)
    d, which = np.unique(diffs, return_inverse=True)
    groups, nq, m, k = P.shape
    X = P.transpose(0, 2, 1, 3).reshape(groups, m, nq * k)  # [P_0 P_1 ...] side by side
    XX = (X.conj().transpose(0, 2, 1) @ X).reshape(groups, nq, k, nq, k)  # block (j, k)
    S = np.zeros((groups, d.size, k, k), dtype=XX.dtype)
    for i, u in enumerate(which):
        S[:, u] += XX[:, i // nq, :, i % nq, :]  # P_j^H P_k
    chain = P.shape[2] + diffs.size + 2 * d.size + 8
    fro = np.linalg.norm(P, axis=(2, 3)).sum(axis=1)
    delta = 4 * chain * _EPS * fro * fro
    sym.seen["gram"] = (d.astype(np.float64), S, delta)
    return sym.seen["gram"]


def _top_bounds(sym: _Symbol, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""``lo <= sigma_max(A(theta_i)) <= hi`` from the eigenvalues of the Gram matrix.

    Cheaper than the SVD of ``A``: the Gram matrix comes from
    :func:`_gram_terms` (off by at most ``delta``), and ``eigvalsh`` is backward
    stable (its values are exact for a matrix off by at most
    ``16 k eps ||G||_F``, more than LAPACK's bound), so by Weyl the largest
    eigenvalue is within the sum of both of ``sigma_max^2``.
    """
    d, S, delta = _gram_terms(sym)
    groups, _, k, _ = S.shape
    theta = np.asarray(theta, dtype=np.float64)
    phase = np.outer(theta, d)
    flat = S.transpose(1, 0, 2, 3).reshape(d.size, -1)
    G = np.empty((theta.size, flat.shape[1]), dtype=np.complex128)
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
    margin = (delta[None, :] + 16 * k * _EPS * size.reshape(theta.size, groups)).ravel()
    lo = np.sqrt(np.maximum(top - margin, 0)).reshape(theta.size, groups).max(axis=1)
    hi = np.sqrt(np.maximum(top + margin, 0)).reshape(theta.size, groups).max(axis=1)
    return lo, hi


def _frequencies(n: int, real: bool) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies to evaluate and how many times each one's values occur.

    For real weights ``f`` and ``n - f`` share their singular values, so only
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


def _circulant_spectrum(layer: Layer) -> np.ndarray:
    """All singular values of a block-circulant layer (unsorted)."""
    count = min(layer.shape)
    check_memory(
        3 * 8 * count,
        f"the spectrum's {count:,} singular values",
        "use a shorter input (`spectral_norm` needs no spectrum)",
    )
    sym = _symbol(layer)
    n = layer.geom.output_length  # = L / s
    f, mult = _frequencies(n, sym.real)
    chunks = []
    step = max(1, 2**22 // max(1, sym.Q[0, 0].size * sym.Q.shape[0] * 16))
    for i in range(0, f.size, step):
        A = sym(2 * np.pi * f[i : i + step] / n)
        vals = _svdvals(A).reshape(A.shape[0], -1)
        chunks.append(np.repeat(vals, mult[i : i + step], axis=0).ravel())
    return np.concatenate(chunks)


def _top_vector(sym: _Symbol, theta: float) -> np.ndarray:
    """Right singular vector (shape ``(groups, G*s)``) of ``A(theta)``'s top value."""
    A = sym(np.array([theta]))[0]  # (groups, m, n)
    _, svals, vh = np.linalg.svd(A)
    g = int(np.argmax(svals[:, 0]))
    u = np.zeros(A.shape[0::2], dtype=np.complex128)
    u[g] = vh[g, 0].conj()
    return u
