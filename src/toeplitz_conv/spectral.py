r"""Singular values, norms and condition numbers of conv layers, exact where it can be.

Three sources of truth, in order of preference:

* **FFT** (circular padding whose output covers one period): the matrix is
  block-circulant after a polyphase split (Sedghi, Gupta & Long 2019;
  Senderovich et al. 2022), so its singular values are those of the small
  ``C_out x C_in*s`` symbol matrices, one per frequency. Exact.
* **Dense SVD** of :func:`~toeplitz_conv.conv1d_matrix` for matrices with at most
  :data:`DENSE_LIMIT` entries. Exact (to rounding).
* **Certified bracket** for the norm of everything else: zero padding embeds
  ``M`` in a circulant of length ``N >= L + p_l + p_r`` whose norm (an FFT
  computation) bounds ``||M||`` from above; a Lanczos refinement of that
  circulant's top singular vector, restricted to the signal, bounds it from
  below by a vector it attains.

Every function takes the layer the way :func:`~toeplitz_conv.conv1d_matrix`
does: ``(weight, input_length, *, stride, padding, dilation, groups,
padding_mode)``. Computations run in float64 (complex128 for complex weights).
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import numpy as np

from ._arrays import check_memory
from ._certify import (
    _boundary_norm,
    _copies,
    _embedding_lengths,
    _gram_certificate,
    _grid_max,
    _refine_peak,
)
from ._geometry import PaddingND, check_choice, check_int
from ._krylov import (
    _edge_vector,
    _lanczos_ends,
    _lanczos_lower,
    _rng,
    _smallest_singular_value,
    _SplitOperator,
    _start_vector,
    _svds_top,
)
from ._layer import Layer
from ._symbol import _EPS, _circulant_spectrum, _dense, _is_circulant, _layer, _operator, _symbol
from ._threads import max_threads

__all__ = [
    "DENSE_LIMIT",
    "NormBounds",
    "condition_number",
    "singular_values",
    "spectral_norm",
    "spectral_norm_bounds",
]
#: Largest matrix (``rows * cols`` entries) whose spectrum is computed from the
#: dense matrix: 2**22 entries is 32 MiB in float64, e.g. 2048 x 2048, whose full
#: SVD takes about a second on one core.
DENSE_LIMIT: int = 2**22
_DENSE_NORM_SIDE = 256  # spectral norm by dense SVD when min(rows, cols) <= this
_METHODS = ("auto", "fft", "dense", "svds")


class NormBounds(NamedTuple):
    """A certified bracket ``lower <= ||M||_2 <= upper``.

    ``lower`` is attained: it is ``||M v|| / ||v||`` for a vector ``v`` found by
    the method. ``upper`` is proved (up to floating-point rounding, for which a
    margin of a few hundred ulps is added).
    """

    lower: float
    upper: float


# --------------------------------------------------------------------------- public API
def _check_rtol(rtol: object) -> float:
    if isinstance(rtol, bool) or not isinstance(rtol, (int, float, np.floating)):
        raise TypeError(f"`rtol` must be a float in (0, 1); got {rtol!r}")
    rtol = float(rtol)
    if not 0 < rtol < 1:
        raise ValueError(f"`rtol` must be a float in (0, 1); got {rtol}")
    return rtol


def _dense_ok(layer: Layer) -> bool:
    m, n = layer.shape
    return m * n <= DENSE_LIMIT


def singular_values(
    weight: object,
    input_size: int | tuple[int, ...],
    *,
    stride: int | tuple[int, ...] = 1,
    padding: PaddingND = 0,
    dilation: int | tuple[int, ...] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    k: int | None = None,
    method: str = "auto",
    tol: float = 0.0,
    rng: object = None,
) -> np.ndarray:
    r"""The singular values of ``conv1d_matrix(weight, input_length, ...)``, largest first.

    Parameters
    ----------
    weight : array_like, shape (C_out, C_in/groups, K) or (K,)
    input_length : int
        ``L``.
    stride, padding, dilation, groups, padding_mode : optional
        As in :func:`~toeplitz_conv.conv1d_matrix`.
    k : int, optional
        Return only the `k` largest; all ``min(C_out L_out, C_in L)`` by default.
    method : {'auto', 'fft', 'dense', 'svds'}, optional
        ``'fft'``: exact, for block-circulant layers (circular padding with
        ``L_out * s == L``). ``'dense'``: SVD of the dense matrix. ``'svds'``:
        the `k` largest by ``scipy.sparse.linalg.svds`` on the matrix-free
        operator. ``'auto'`` picks fft, then dense up to :data:`DENSE_LIMIT`
        entries, then svds (which needs `k`).
    tol : float, optional
        Passed to ``svds`` (0 means machine precision).
    rng : None, int or numpy.random.Generator, optional
        Seeds ``svds``'s start vector; ``None`` means seed 0 (deterministic).

    Returns
    -------
    ndarray of float64, shape (min(m, n),) or (k,)
        Descending.

    Raises
    ------
    ValueError
        For the complete spectrum of a non-circulant layer larger than
        :data:`DENSE_LIMIT` entries, an out-of-range `k`, or ``method='fft'``
        on a layer that is not block-circulant.

    Notes
    -----
    With circular padding, stride ``s`` dividing ``L`` and ``L_out = L/s``, split
    the input into ``s`` phases (``x_r[m] = x[m s + r]``, an orthogonal
    permutation) and write ``k d - p_l = q_k s + r_k``. The layer becomes a
    stride-1 circular conv on ``n = L/s`` samples with ``C_in s`` channels, whose
    singular values are those of the symbol matrices

    .. math::

        A(f) = \sum_k W[:, :, k]\, E_{r_k}\, e^{2\pi i f q_k / n}
        \in \mathbb{C}^{C_{out} \times C_{in} s}, \qquad f = 0, \dots, n-1,

    (``E_r`` places channel ``c`` at column ``c s + r``): ``n`` SVDs of size
    ``C_out x C_in s`` instead of one of size ``C_out n x C_in L``. For real
    weights ``A(n - f) = conj(A(f))``, so only ``f <= n/2`` are computed.

    Other padding modes are not circulant; their exact spectrum comes from the
    dense matrix, so it is limited in size. ``svds`` on the operator gives the
    top `k` of larger layers, but the top of a zero-padded conv's spectrum is
    clustered (neighbouring values differ by O(1/L^2)), so it converges slowly:
    loosen `tol`, or use :func:`spectral_norm` for the largest value.

    Examples
    --------
    >>> import numpy as np
    >>> w = np.array([1.0, 2.0, 3.0])
    >>> singular_values(w, 4, padding=1, padding_mode="circular").round(4)
    array([6.    , 2.8284, 2.8284, 2.    ])
    >>> M = np.array([[2.0, 3, 0, 1], [1, 2, 3, 0], [0, 1, 2, 3], [3, 0, 1, 2]])
    >>> np.linalg.svd(M, compute_uv=False).round(4)
    array([6.    , 2.8284, 2.8284, 2.    ])
    >>> singular_values([4.0, 3.0], 5, k=1).round(4)
    array([6.6646])
    """
    layer = _layer(weight, input_size, stride, padding, dilation, groups, padding_mode)
    check_choice(method, "method", _METHODS)
    m, n = layer.shape
    full = min(m, n)
    if k is not None:
        k = check_int(k, "k", minimum=1)
        if k > full:
            raise ValueError(
                f"`k` must be at most min(rows, cols) = {full} for this {m}x{n} matrix; got {k}"
            )
    circ = _is_circulant(layer)
    if method == "auto":
        method = "fft" if circ else "dense" if _dense_ok(layer) else "svds"
    if method == "fft":
        if not circ:
            g = layer.geoms
            out, st, size = (
                tuple(getattr(x, a) for x in g) for a in ("output_length", "stride", "input_length")
            )
            if layer.ndim == 1:
                out, st, size = out[0], st[0], size[0]
            raise ValueError(
                "`method`='fft' needs a block-circulant layer: padding_mode='circular' "
                f"with output_length * stride == input_length on every axis; got "
                f"output_length={out}, stride={st}, input_length={size}, "
                f"padding_mode={g[0].padding_mode!r}"
            )
        values = _circulant_spectrum(layer)
    elif method == "dense":
        values = np.linalg.svd(_dense(layer), compute_uv=False)
    else:
        if k is None:
            raise ValueError(
                f"the complete spectrum of this {m}x{n} matrix needs the dense matrix, "
                f"which has {m * n:,} entries, more than DENSE_LIMIT = {DENSE_LIMIT:,}; "
                "pass `k` for the k largest (by svds), or method='dense' to insist"
            )
        return _svds_top(layer, k, tol=tol, rng=rng)
    values = np.sort(values)[::-1]
    return values[:k] if k is not None else values


def spectral_norm_bounds(
    weight: object,
    input_size: int | tuple[int, ...],
    *,
    stride: int | tuple[int, ...] = 1,
    padding: PaddingND = 0,
    dilation: int | tuple[int, ...] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    rtol: float = 1e-6,
    maxiter: int = 50,
    rng: object = None,
) -> NormBounds:
    r"""A certified bracket ``(lower, upper)`` on the spectral norm ``||M||_2``.

    Parameters
    ----------
    weight, input_length, stride, padding, dilation, groups, padding_mode
        The layer, as in :func:`~toeplitz_conv.conv1d_matrix`.
    rtol : float, optional
        Stop once ``upper - lower <= rtol * upper``.
    maxiter : int, optional
        Most Lanczos steps (each one ``M`` and one ``M^H`` product) for the lower end.
    rng : None, int or numpy.random.Generator, optional
        Seeds the random boundary part of the Lanczos start for reflect,
        replicate and circular padding; ``None`` means seed 0 (deterministic).

    Returns
    -------
    NormBounds
        ``(lower, upper)``; ``lower`` is attained by a vector, ``upper`` proved.
        It may be wider than `rtol` when the method cannot certify more (see Notes).

    Notes
    -----
    *Block-circulant layers* (circular padding, one period of output) and
    *small matrices* (at most :data:`DENSE_LIMIT` entries): exact, by FFT or
    dense SVD, ``lower == upper`` up to rounding.

    *Zero padding*: ``M`` is a submatrix of the (strided) circular convolution
    ``C_N`` on ``N >= L + p_l + p_r`` samples (``s | N``), so

    .. math::

        \|M\|_2 \le \|C_N\|_2 = \max_f \sigma_{\max}\big(A(2\pi f / (N/s))\big),

    the maximum over the symbol matrices of :func:`singular_values`. It is
    computed by branch and bound over the frequencies (exact SVDs at range
    ends, an interpolation bound inside, see ``_grid_max``); if needed a few
    ``N`` are tried that put the peak between two grid points, and the least
    bound is kept. The lower end starts from ``C_N``'s top singular vector
    restricted to the signal (a sine-windowed complex exponential at the
    peak frequency, refined by a parabola) and is improved by Lanczos on
    ``M^H M``. The two ends differ by O(1/L^2): about 1e-6 relative at
    ``L ~ 2000`` for a 64-channel layer.

    *Reflect, replicate and non-periodic circular padding*: ``M = T P`` where
    ``P`` copies the signal into its padded extension and ``T`` is the
    unpadded conv of the extension, so ``||M|| <= ||P|| ||C_N||`` with
    ``||P|| = sqrt(most copies of one sample)`` (2 for reflect, ``p + 1`` for
    replicate); also ``||M|| <= ||M_zeros|| + ||M - M_zeros||`` where the
    difference lives on the boundary rows only (its norm is exact, by a small
    dense SVD). These rarely close to `rtol`, so then:

    *Any non-circular padding, when the circulant bound is not tight enough*
    (short inputs, or the modes above): a banded Cholesky factorisation of
    ``mu^2 I - M^H M`` with ``mu = lower (1 + rtol/2)`` proves ``||M|| < mu``.
    In position-major order the Gram matrix has bandwidth ``b <= C_in (d(K-1)+1)``,
    so this costs ``O(C_in L b^2)`` time and ``O(C_in L b)`` memory; it is tried
    while the Gram matrix has at most 2e7 nonzeros and the work is at most 4e9
    (e.g. 16 channels on 7,000 samples or one channel on 1.8 million, with
    K = 5), else the dense SVD up to
    :data:`DENSE_LIMIT` entries, else the bracket stays wide (and
    :func:`spectral_norm` warns).

    Examples
    --------
    >>> import numpy as np
    >>> w = np.random.default_rng(0).standard_normal((4, 4, 5))
    >>> lo, hi = spectral_norm_bounds(w, 3000, padding=2)
    >>> bool(hi - lo <= 1e-6 * hi)
    True
    >>> bool(abs(hi - spectral_norm(w, 300, padding=2)) < 1e-2)
    True
    """
    layer = _layer(weight, input_size, stride, padding, dilation, groups, padding_mode)
    rtol = _check_rtol(rtol)
    maxiter = check_int(maxiter, "maxiter", minimum=0)
    return _bounds(layer, rtol, maxiter, _rng(rng))


def _bounds(
    layer: Layer, rtol: float, maxiter: int, rng: np.random.Generator | None = None
) -> NormBounds:
    if _is_circulant(layer):
        sym = _symbol(layer)
        upper, best, _ = _grid_max(sym, layer.output_size, rtol=0.0)
        return NormBounds(best * (1 - 64 * _EPS), upper * (1 + 256 * _EPS))
    if min(layer.shape) <= _DENSE_NORM_SIDE:
        return _dense_bounds(layer)
    return _bracket(layer, rtol, maxiter, rng)


def _dense_bounds(layer: Layer) -> NormBounds:
    top = float(np.linalg.norm(_dense(layer), ord=2))
    return NormBounds(top * (1 - 256 * _EPS), top * (1 + 256 * _EPS))


def _bracket(
    layer: Layer, rtol: float, maxiter: int, rng: np.random.Generator | None = None
) -> NormBounds:
    check_memory(  # the start vector, its image and a few Krylov vectors
        4 * layer.weight.itemsize * sum(layer.shape),
        f"the iterative bracket's vectors for a {layer.shape} matrix",
        "use a shorter input",
    )
    sym = _symbol(layer)
    mode = layer.geoms[0].padding_mode
    n0 = _embedding_lengths(layer, np.nan, 1)[0]
    upper_c, _, f_best = _grid_max(sym, n0, rtol=rtol / 8)
    theta = _refine_peak(sym, f_best, n0)
    if mode == "zeros":
        factor, extra = 1.0, 0.0
    else:
        factor = math.sqrt(_copies(layer))
        extra = _boundary_norm(layer)

    def upper_of(u: float) -> float:
        return min(factor * u, u + extra) * (1 + 256 * _EPS)

    upper = upper_of(upper_c)
    op = _operator(layer)
    x0, mx0 = _start_vector(layer, sym, theta)
    if max_threads() > 1 and layer.groups == 1 and min(layer.weight.shape[:2]) >= 2:
        op = _SplitOperator(layer)  # two halves of each product on the package's pool
    stall = rtol / 16
    if mode != "zeros":
        mx0 = None
        # the padding can lift the norm near the ends: give Krylov a start there too, and
        # do not stop early, since it may take many steps to find the edge
        x0 = x0 + _edge_vector(layer, rng)
        stall = 0.0
    lower, _ = _lanczos_lower(
        op, x0, steps=maxiter, target=upper / (1 + rtol), stall=stall, mx0=mx0
    )
    # a few more embedding lengths: the grid that misses the peak most gives the least bound
    lengths = _embedding_lengths(layer, theta, 4) if upper - lower > rtol * upper else []
    for n in lengths[1:]:
        if upper - lower <= rtol * upper:
            break
        u, _, _ = _grid_max(sym, n, rtol=rtol / 8, threshold=lower * (1 + rtol / 2))
        upper = min(upper, upper_of(u))
    if upper - lower > rtol * upper:
        # the circulant cannot certify this close (short input, or reflect/replicate)
        for slack in (rtol / 2, rtol * 0.9):
            cert = _gram_certificate(layer, lower * (1 + slack))
            if cert is not None:
                upper = min(upper, cert)
                break
    if upper - lower > rtol * upper and _dense_ok(layer):
        return _dense_bounds(layer)
    return NormBounds(float(lower), float(upper))


def spectral_norm(
    weight: object,
    input_size: int | tuple[int, ...],
    *,
    stride: int | tuple[int, ...] = 1,
    padding: PaddingND = 0,
    dilation: int | tuple[int, ...] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    rtol: float = 1e-6,
    maxiter: int = 50,
    rng: object = None,
) -> float:
    r"""The spectral norm ``||M||_2`` (largest singular value): the layer's Lipschitz constant.

    Parameters
    ----------
    weight, input_length, stride, padding, dilation, groups, padding_mode
        The layer, as in :func:`~toeplitz_conv.conv1d_matrix`.
    rtol : float, optional
        Relative accuracy to certify (see :func:`spectral_norm_bounds`).
    maxiter : int, optional
        Most Lanczos steps for the lower end of the bracket.
    rng : None, int or numpy.random.Generator, optional
        As in :func:`spectral_norm_bounds`; ``None`` means seed 0 (deterministic).

    Returns
    -------
    float
        Exact (FFT or dense SVD) where available; otherwise the lower end of a
        certified bracket of relative width ``<= rtol``, a value attained by a
        vector. If the bracket could not be closed, a ``RuntimeWarning`` says
        which bracket was reached and the lower end is returned.

    Notes
    -----
    .. math::

        \|M\|_2 = \max_{x \ne 0} \frac{\|M x\|_2}{\|x\|_2} = \sigma_{\max}(M).

    Why not power iteration: the top of a zero-padded conv's spectrum is
    clustered (neighbouring values differ by O(1/L^2)), so random starts
    crawl and ARPACK stalls; the bracket of :func:`spectral_norm_bounds` starts
    next to the answer and proves it.

    Examples
    --------
    >>> round(spectral_norm([4.0, 3.0], 5), 6)
    6.664564
    >>> spectral_norm([1.0, 2.0, 3.0], 8, padding=1, padding_mode="circular")
    6.0
    """
    layer = _layer(weight, input_size, stride, padding, dilation, groups, padding_mode)
    rtol = _check_rtol(rtol)
    maxiter = check_int(maxiter, "maxiter", minimum=0)
    gen = _rng(rng)
    if _is_circulant(layer):
        sym = _symbol(layer)
        _, best, _ = _grid_max(sym, layer.output_size, rtol=0.0)
        return float(best)
    if min(layer.shape) <= _DENSE_NORM_SIDE:
        return float(np.linalg.norm(_dense(layer), ord=2))
    lower, upper = _bracket(layer, rtol, maxiter, gen)
    if upper - lower > rtol * upper:
        warnings.warn(
            f"spectral_norm: the certified bracket [{lower:.10g}, {upper:.10g}] "
            f"(relative width {(upper - lower) / upper:.2e}) did not close to rtol={rtol:g} "
            f"for padding_mode={layer.geoms[0].padding_mode!r}; returning the lower end, "
            "which a vector attains",
            RuntimeWarning,
            stacklevel=2,
        )
    return float(lower)


def condition_number(
    weight: object,
    input_size: int | tuple[int, ...],
    *,
    stride: int | tuple[int, ...] = 1,
    padding: PaddingND = 0,
    dilation: int | tuple[int, ...] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    tol: float = 1e-8,
    maxiter: int | None = None,
    rng: object = None,
) -> float:
    r"""The 2-norm condition number ``sigma_max / sigma_min`` of the layer's matrix.

    Parameters
    ----------
    weight, input_length, stride, padding, dilation, groups, padding_mode
        The layer, as in :func:`~toeplitz_conv.conv1d_matrix`.
    tol, maxiter : optional
        For the Lanczos estimate of large non-circulant layers (``eigsh``).
    rng : None, int or numpy.random.Generator, optional
        Seeds the Lanczos start vector; ``None`` means seed 0 (deterministic).

    Returns
    -------
    float
        ``inf`` when the matrix is singular, i.e. when
        ``sigma_min <= max(m, n) * eps * sigma_max`` (numpy's rank tolerance).

    Notes
    -----
    ``sigma_min`` is the smallest of the ``min(m, n)`` singular values (so a
    wide matrix is judged on its rows, as ``numpy.linalg.cond`` does).

    * block-circulant layers: exact, from every symbol matrix's SVD;
    * at most :data:`DENSE_LIMIT` entries: exact, dense SVD;
    * larger, up to ``4e6`` nonzeros: ``sigma_max`` from the certified
      bracket of :func:`spectral_norm_bounds` (its attained lower end, within
      ``1e-6``), ``sigma_min`` by shift-invert Lanczos at zero on a sparse LU
      of :math:`[[0, M], [M^H, 0]]` (or of the smaller Gram matrix when ``M``
      is not square): fast and accurate even for very ill-conditioned layers;
    * larger still: an *estimate* from the two ends of the spectrum of
      ``M^H M`` (or ``M M^H`` if wide) by Lanczos (``scipy.sparse.linalg.eigsh``,
      ``which='BE'``); the smallest end may converge slowly.

    Examples
    --------
    >>> condition_number([1.0, 2.0, 3.0], 4, padding=1, padding_mode="circular")
    3.0
    >>> condition_number([1.0, -1.0], 4, padding=1, padding_mode="circular", stride=1)
    inf
    """
    layer = _layer(weight, input_size, stride, padding, dilation, groups, padding_mode)
    m, n = layer.shape
    if _is_circulant(layer):
        values = _circulant_spectrum(layer)
    elif _dense_ok(layer):
        values = np.linalg.svd(_dense(layer), compute_uv=False)
    else:
        bottom = _smallest_singular_value(layer)
        if bottom is None:
            values = _lanczos_ends(layer, tol=tol, maxiter=maxiter, rng=rng)
        else:
            lower, _ = _bracket(layer, 1e-6, 50, _rng(rng))
            values = np.array([lower, bottom])
    top, bottom = float(values.max()), float(values.min())
    if top == 0 or bottom <= max(m, n) * _EPS * top:
        return math.inf
    return top / bottom
