r"""Singular values, norms and condition numbers of conv layers, exact where it can be.

Three sources of truth, in order of preference:

* **FFT** (circular padding whose output covers one period on every axis):
  the matrix is block-circulant after a polyphase split per axis (Sedghi, Gupta
  & Long 2019; Senderovich et al. 2022), so its singular values are those of the
  small ``C_out x C_in prod(s_a)`` symbol matrices, one per frequency
  ``f = (f_1, ..., f_n)``. Exact.
* **Dense SVD** of :func:`~toeplitz_conv.conv_matrix` for matrices with at most
  :data:`DENSE_LIMIT` entries. Exact (to rounding).
* **Certified bracket** for the norm of everything else: zero padding embeds
  ``M`` in a circulant of size ``N_a >= L_a + p_a,l + p_a,r`` per axis whose norm
  (the symbol's maximum over a frequency grid, proved by branch and bound over
  boxes) bounds ``||M||`` from above; a Lanczos refinement of that circulant's
  top singular vector (a separable windowed exponential), restricted to the
  signal, bounds it from below by a vector it attains.

Every function takes the layer the way :func:`~toeplitz_conv.conv_matrix`
does: ``(weight, input_size, *, stride, padding, dilation, groups,
padding_mode)``, for 1, 2 or 3 spatial axes (an int `input_size` with a
``(C_out, C_in/groups, K)`` weight is 1-D, as in :func:`~toeplitz_conv.conv1d_matrix`;
per-axis parameters are ints or n-tuples). Computations run in float64
(complex128 for complex weights).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, overload

import numpy as np

from .._arrays import check_memory
from .._geometry import PaddingND, check_choice, check_int
from .._public import renamed_keyword, warn_caller
from .._typing import ArrayLike, Float64Array, PaddingMode, SeedLike, SpectrumMethod
from ._bracket import NormBounds, exact_bounds, measure_norm, norm_bounds
from ._krylov import svds_top, top_singular_values
from ._method import (
    DENSE_LIMIT,
    METHODS,
    Budget,
    as_generator,
    check_rtol,
    check_tol,
    choose_method,
    complete_spectrum_error,
    spectrum_method,
)
from ._smallest import extreme_values
from ._symbol import EPS, analysis_layer, circulant_spectrum, dense_matrix, is_zero, unit_scaled

__all__ = [
    "DENSE_LIMIT",
    "Analysis",
    "NormBounds",
    "analyze",
    "condition_number",
    "singular_values",
    "spectral_norm",
    "spectral_norm_bounds",
]


@overload
def singular_values(
    weight: ArrayLike,
    input_size: int | tuple[int, ...],
    *,
    stride: int | tuple[int, ...] = ...,
    padding: PaddingND = ...,
    dilation: int | tuple[int, ...] = ...,
    groups: int = ...,
    padding_mode: PaddingMode = ...,
    k: int | None = ...,
    method: SpectrumMethod = ...,
    tol: float = ...,
    maxiter: int | None = ...,
    time_limit: float | None = ...,
    rng: SeedLike = ...,
    return_errors: Literal[False] = ...,
) -> Float64Array: ...
@overload
def singular_values(
    weight: ArrayLike,
    input_size: int | tuple[int, ...],
    *,
    stride: int | tuple[int, ...] = ...,
    padding: PaddingND = ...,
    dilation: int | tuple[int, ...] = ...,
    groups: int = ...,
    padding_mode: PaddingMode = ...,
    k: int | None = ...,
    method: SpectrumMethod = ...,
    tol: float = ...,
    maxiter: int | None = ...,
    time_limit: float | None = ...,
    rng: SeedLike = ...,
    return_errors: Literal[True],
) -> tuple[Float64Array, Float64Array]: ...
@overload
def singular_values(
    weight: ArrayLike,
    input_size: int | tuple[int, ...],
    *,
    stride: int | tuple[int, ...] = ...,
    padding: PaddingND = ...,
    dilation: int | tuple[int, ...] = ...,
    groups: int = ...,
    padding_mode: PaddingMode = ...,
    k: int | None = ...,
    method: SpectrumMethod = ...,
    tol: float = ...,
    maxiter: int | None = ...,
    time_limit: float | None = ...,
    rng: SeedLike = ...,
    return_errors: bool = ...,
) -> Float64Array | tuple[Float64Array, Float64Array]: ...
@renamed_keyword("input_length", "input_size")
def singular_values(
    weight: ArrayLike,
    input_size: int | tuple[int, ...],
    *,
    stride: int | tuple[int, ...] = 1,
    padding: PaddingND = 0,
    dilation: int | tuple[int, ...] = 1,
    groups: int = 1,
    padding_mode: PaddingMode = "zeros",
    k: int | None = None,
    method: SpectrumMethod = "auto",
    tol: float = 1e-6,
    maxiter: int | None = None,
    time_limit: float | None = None,
    rng: SeedLike = None,
    return_errors: bool = False,
) -> Float64Array | tuple[Float64Array, Float64Array]:
    r"""The singular values of ``conv_matrix(weight, input_size, ...)``, largest first.

    Parameters
    ----------
    weight : array_like, shape (C_out, C_in/groups, K_1, ..., K_n) or (K_1, ..., K_n)
    input_size : int or tuple of n ints
        ``L`` (1-D) or ``(L_1, ..., L_n)``.
    stride, padding, dilation, groups, padding_mode : optional
        As in :func:`~toeplitz_conv.conv_matrix` (ints or one per axis).
    k : int, optional
        Return only the `k` largest; all ``min(C_out L_out, C_in L)`` by default.
    method : {'auto', 'fft', 'dense', 'krylov', 'svds'}, optional
        ``'fft'``: exact, for block-circulant layers (circular padding with
        ``L_out * s == L``). ``'dense'``: SVD of the dense matrix. ``'krylov'``:
        the `k` largest by block Krylov on ``M^H M`` started at the symbol's
        peaks (see Notes), matrix-free. ``'svds'``: the `k` largest by ARPACK
        (``scipy.sparse.linalg.svds``) with the same budget. ``'auto'`` picks
        fft, then dense up to :data:`DENSE_LIMIT` entries, then krylov (which
        needs `k`).
    tol : float, optional
        Relative accuracy for the iterative methods: ``'krylov'`` stops once each
        value's certified error is at most about ``tol`` times the value; passed
        to ``svds``. ``0`` means to rounding (then the budget usually decides).
    maxiter : int, optional
        Budget of the iterative methods: most block steps of ``'krylov'`` (each
        one block product with ``M`` and ``M^H``; default 100), most Arnoldi
        restarts of ``'svds'`` (default 100).
    time_limit : float, optional
        Seconds after which the iterative methods stop (checked between steps)
        and return what they reached, with a warning; the FFT spectrum checks it
        between chunks of frequencies and raises ``TimeoutError`` (a spectrum has
        no useful part); the dense SVD (at most :data:`DENSE_LIMIT` entries)
        runs to its end. ``None``: no limit but `maxiter`.
    rng : None, int or numpy.random.Generator, optional
        Seeds the random part of the start vectors; ``None`` means seed 0
        (deterministic).
    return_errors : bool, optional
        Also return each value's certified error.

    Returns
    -------
    values : ndarray of float64, shape (min(m, n),) or (k,)
        Descending. An all-zero weight is the zero map: all zeros (errors 0),
        by every method.
    errors : ndarray of float64, same shape
        Only with ``return_errors=True``: an exact singular value lies within
        ``errors[i]`` of ``values[i]`` (``'krylov'``: from the residual, and
        ``values[i] <= sigma_i`` exactly; fft and dense: a rounding margin;
        ``'svds'``: ``nan``, unknown).

    Warns
    -----
    RuntimeWarning
        When an iterative method ran out of budget before reaching `tol`; the
        values reached are returned and the warning lists them with their errors
        (``'svds'``: ``nan`` for those ARPACK had not converged).

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

    ``n`` spatial axes: the same per axis. With ``k_a d_a - p_a = q_a s_a + r_a``,
    the symbol at ``f = (f_1, ..., f_n)`` is
    ``A(f) = sum_k W[:, :, k] E_{r(k)} e^{2 pi i sum_a f_a q_a / n_a}`` with
    ``C_in prod(s_a)`` columns (``r(k)`` the flat phase), one SVD per frequency
    of the grid ``prod(n_a)``; real weights need only half of the last axis
    (2-D: exactly Sedghi et al.'s ``fft2`` and one SVD per frequency).

    Other padding modes are not circulant; their exact spectrum comes from the
    dense matrix, so it is limited in size. For the top `k` of larger layers,
    note that the top of a conv's spectrum is clustered (neighbouring values
    differ by O(1/L^2)), where ARPACK from a random start crawls. ``'krylov'``
    uses what the symbol says instead: near a peak ``theta`` of
    ``sigma_max(A(theta))``, ``M^H M`` acts like a second difference modulated
    at ``theta``, whose eigenvectors are the windowed exponentials
    ``u e^{i theta l} sin(pi j (l + 1) / (L + 1))``, ``j = 1, 2, ...``; a block
    made of those (at the highest peak and the next ones, real and imaginary
    parts for real weights, plus random and edge vectors) spans a nearly
    invariant subspace, and a few block Krylov steps with Rayleigh-Ritz finish
    the job. For a unit vector ``v`` and ``theta = ||M v||^2``, some eigenvalue
    of ``M^H M`` lies within ``||M^H M v - theta v||`` of ``theta`` (Parlett
    1998, Thm 4.5.1): that residual gives each value its certified error.

    References
    ----------
    .. [1] H. Sedghi, V. Gupta, P. M. Long, "The Singular Values of
       Convolutional Layers", ICLR 2019.
    .. [2] B. N. Parlett, *The Symmetric Eigenvalue Problem*, SIAM 1998, ch. 4 and 13.

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

    Two spatial axes (a 2x2 kernel, circular padding on the right of each axis):

    >>> w2 = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> singular_values(w2, (3, 3), padding=((0, 1), (0, 1)), padding_mode="circular")[:3].round(4)
    array([10.    ,  6.0828,  6.0828])
    """
    layer, e = unit_scaled(
        analysis_layer(weight, input_size, stride, padding, dilation, groups, padding_mode)
    )
    check_choice(method, "method", METHODS)
    tol = check_tol(tol)
    budget = Budget(maxiter, time_limit)
    gen = as_generator(rng)
    m, n = layer.shape
    full = min(m, n)
    if k is not None:
        k = check_int(k, "k", minimum=1)
        if k > full:
            raise ValueError(
                f"`k` must be at most min(rows, cols) = {full} for this {m}x{n} matrix; got {k}"
            )
    chosen = spectrum_method(layer, method, k)
    if is_zero(layer):  # the zero map: every singular value is exactly 0, by any method
        count = full if k is None else k
        check_memory(8 * count, f"the spectrum's {count:,} singular values", "pass `k`")
        values = np.zeros(count)
        return (values, np.zeros(count)) if return_errors else values
    if chosen == "fft":
        values = circulant_spectrum(layer, budget.deadline)
    elif chosen == "dense":
        check_memory(
            8 * m * n * (2 if layer.weight.dtype.kind == "c" else 1),
            f"the dense {m}x{n} matrix for its SVD",
            "pass `k` for the k largest by method='krylov'",
        )
        values = np.linalg.svd(dense_matrix(layer), compute_uv=False)
    else:
        if k is None:
            raise complete_spectrum_error(layer)
        if chosen == "svds":
            values, errors, done = svds_top(layer, k, tol=tol, budget=budget, rng=gen)
        else:
            values, errors, done, _ = top_singular_values(layer, k, tol=tol, budget=budget, rng=gen)
        values, errors = np.ldexp(values, e), np.ldexp(errors, e)
        if not done:
            _warn_unfinished(f"singular_values: method={chosen!r}", budget, tol, values, errors)
        return (values, errors) if return_errors else values
    values = np.ldexp(np.sort(values)[::-1], e)
    if k is not None:
        values = values[:k]
    if return_errors:
        return values, 64 * full * EPS * np.full(values.shape, values[0] if values.size else 0.0)
    return values


def _warn_unfinished(
    who: str, budget: Budget, tol: float, values: np.ndarray, errors: np.ndarray
) -> None:
    """Warn that an iterative method stopped before `tol`, listing the values it reached."""
    listed = ", ".join(f"{v:.10g} +- {e:.2g}" for v, e in zip(values, errors, strict=True))
    warn_caller(
        f"{who} ran out of its budget ({budget.describe()}) before reaching tol={tol:g}; "
        f"returning the values reached: {listed}"
    )


def _ratio(top: float, bottom: float, shape: tuple[int, int]) -> float:
    """``top / bottom``, or ``inf`` when ``bottom <= max(m, n) eps top`` (numpy's rank test)."""
    if top == 0 or bottom <= max(shape) * EPS * top:
        return math.inf
    return top / bottom


@renamed_keyword("input_length", "input_size")
def spectral_norm_bounds(
    weight: ArrayLike,
    input_size: int | tuple[int, ...],
    *,
    stride: int | tuple[int, ...] = 1,
    padding: PaddingND = 0,
    dilation: int | tuple[int, ...] = 1,
    groups: int = 1,
    padding_mode: PaddingMode = "zeros",
    rtol: float = 1e-6,
    maxiter: int = 50,
    time_limit: float | None = None,
    rng: SeedLike = None,
) -> NormBounds:
    r"""A certified bracket ``(lower, upper)`` on the spectral norm ``||M||_2``.

    Parameters
    ----------
    weight, input_size, stride, padding, dilation, groups, padding_mode
        The layer, as in :func:`~toeplitz_conv.conv_matrix` (1, 2 or 3 spatial axes).
    rtol : float, optional
        Stop once ``upper - lower <= rtol * upper``.
    maxiter : int, optional
        Most Lanczos steps (each one ``M`` and one ``M^H`` product) for the lower end;
        when a Gram certificate then fails just above it, one more run of up to
        ``3 maxiter`` steps (see Notes).
    time_limit : float, optional
        Seconds after which the bracket stops improving (checked between
        Lanczos steps, between the levels of the symbol's branch and bound,
        whose open boxes then keep their bound, and before each further proof)
        and is returned as it is; the symbol's block norms and coarse grid run
        first regardless (a few seconds for 512 channels). ``None``: no limit
        but `maxiter` (every other step is bounded work).
    rng : None, int or numpy.random.Generator, optional
        Seeds the random boundary part of the Lanczos start for reflect,
        replicate and circular padding, and the random start of the second
        Lanczos run; ``None`` means seed 0 (deterministic).

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
    ends, an interpolation bound inside, see ``grid_max``); if needed a few
    ``N`` are tried that put the peak between two grid points, and the least
    bound is kept. The lower end starts from ``C_N``'s top singular vector
    restricted to the signal (a sine-windowed complex exponential at the
    peak frequency, refined by a parabola) and is improved by Lanczos on
    ``M^H M``. The two ends differ by O(1/L^2): about 1e-6 relative at
    ``L ~ 2000`` for a 64-channel layer.

    *N spatial axes*: the same with a circulant of size ``N_a`` per axis; its norm
    is the symbol's maximum over the grid ``2 pi f_a / (N_a / s_a)``, proved by
    branch and bound over boxes of grid points (the symbol's multilinear
    interpolation from a box's corners, plus a curvature term per axis; points
    proved below a level by Cholesky factorisations of ``mu^2 I - A^H A`` with
    rounding margins, SVDs only where that fails). It is always at most
    ``sup_omega ||A(omega)||``, so below every bound that holds for all input
    sizes (Delattre et al. 2024, Grishina et al. 2024, Singla & Feizi 2021,
    Araujo et al. 2021). The lower end starts from a separable windowed
    exponential at the peak. The gap is the boundary effect, ``O(sum_a 1/L_a^2)``:
    about 2e-4 relative for a 64-channel 3x3 layer on 56x56, a few percent on
    7x7, where the block-Cholesky certificate below closes it.

    *Reflect, replicate and non-periodic circular padding*: ``M = T P`` where
    ``P`` copies the signal into its padded extension and ``T`` is the
    unpadded conv of the extension, so ``||M|| <= ||P|| ||C_N||`` with
    ``||P|| = sqrt(most copies of one sample)`` (2 for reflect, ``p + 1`` for
    replicate; in N-d the product over the axes); also (1-D)
    ``||M|| <= ||M_zeros|| + ||M - M_zeros||`` where the difference lives on
    the boundary rows only (its norm is exact, by a small dense SVD). These
    rarely close to `rtol`, so then:

    *Any non-circular padding, when the circulant bound is not tight enough*
    (short inputs, or the modes above): a banded Cholesky factorisation of
    ``mu^2 I - M^H M`` with ``mu = lower (1 + rtol/2)`` proves ``||M|| < mu``.
    In position-major order the Gram matrix has bandwidth ``b <= C_in (d(K-1)+1)``,
    so this costs ``O(C_in L b^2)`` time and ``O(C_in L b)`` memory; it is tried
    while the Gram matrix has at most 2e7 nonzeros and the work is at most 4e9
    (e.g. 16 channels on 7,000 samples or one channel on 1.8 million, with
    K = 5); its band comes from ``C_in (2 d (K-1) + 1)`` products with
    ``M^H M`` (structured probing, Curtis, Powell & Reid 1974). If ``mu`` fails
    (the lower end is not that close yet), ``lower (1 + t)`` for ``t`` = 1e-4,
    1e-3, 1e-2, 0.1 is tried. *N axes* (zero, reflect, replicate): the Gram
    matrix ordered by slices of one axis (pixel-major, then channels) is block
    banded with blocks of ``n = C_in prod_{b != a} L_b`` unknowns; its blocks
    come from the weights (``W_k^H W_k'`` and per-axis counts), and a block
    Cholesky factorisation (on every core's BLAS thread) costs about
    ``L_a (b^2 + b + 1/3) n^3`` flops, ``b = d_a (K_a - 1)``: 1.6e12 for 512
    channels, 3x3 on 7x7, 3.6e12 for 256 on 14x14. It is tried, each group on
    its own, while its blocks fit in 2 GiB and its time predicted from the rate
    this machine reaches fits in what is left of `time_limit` (without one,
    while it costs at most 1.2e13 flops: about two minutes on two cores); it
    stops at the deadline, or as soon as its rate shows it cannot finish by
    then. Lanczos then runs its `maxiter` steps without stopping early, since
    the proof is at ``lower (1 + rtol/2)``. If that proof fails, the lower end
    is short of the top (a cluster of top singular values, or a mode the
    structured start hardly touches: 64 channels, 3x3 on 14x14 can stop 1.2e-3
    short after 50 steps): Lanczos runs again, up to ``3 maxiter`` steps from the
    start plus a random vector, and the proof is tried once more.

    *Reflect and replicate padding beyond that budget*: ``M`` equals the
    zero-padded conv except on a few edge columns, so with a partition of unity
    over the samples (IMS localisation, Simon 1983) ``||M||^2`` is at most the
    largest of the circulant bound (inside) and of Cholesky proofs on two edge
    windows, plus a term that decays like ``1 / window^2``: for 16 -> 16
    channels, K = 5, L = 8192 the bracket is 2.6e-6 wide (it was 22%, from
    ``min(sqrt(copies) ||C_N||, ||C_N|| + ||M - M_zeros||)``). Else the dense
    SVD up to :data:`DENSE_LIMIT` entries, else the bracket stays wide (and
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
    layer, e = unit_scaled(
        analysis_layer(weight, input_size, stride, padding, dilation, groups, padding_mode)
    )
    rtol = check_rtol(rtol)
    budget = Budget(maxiter, time_limit)
    return _scaled_bounds(norm_bounds(layer, rtol, budget, as_generator(rng)), e)


@renamed_keyword("input_length", "input_size")
def spectral_norm(
    weight: ArrayLike,
    input_size: int | tuple[int, ...],
    *,
    stride: int | tuple[int, ...] = 1,
    padding: PaddingND = 0,
    dilation: int | tuple[int, ...] = 1,
    groups: int = 1,
    padding_mode: PaddingMode = "zeros",
    rtol: float = 1e-6,
    maxiter: int = 50,
    time_limit: float | None = None,
    rng: SeedLike = None,
) -> float:
    r"""The spectral norm ``||M||_2`` (largest singular value): the layer's Lipschitz constant.

    Parameters
    ----------
    weight, input_size, stride, padding, dilation, groups, padding_mode
        The layer, as in :func:`~toeplitz_conv.conv_matrix` (1, 2 or 3 spatial axes).
    rtol : float, optional
        Relative accuracy to certify (see :func:`spectral_norm_bounds`).
    maxiter : int, optional
        Most Lanczos steps for the lower end of the bracket.
    time_limit : float, optional
        Seconds after which the bracket stops improving, as in
        :func:`spectral_norm_bounds` (a warning names it when it cut the
        bracket short); ``None``: no limit but `maxiter`.
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
    layer, e = unit_scaled(
        analysis_layer(weight, input_size, stride, padding, dilation, groups, padding_mode)
    )
    rtol = check_rtol(rtol)
    budget = Budget(maxiter, time_limit)
    gen = as_generator(rng)
    method, value, (lower, upper) = measure_norm(layer, rtol, budget, gen)
    value, lower, upper = (float(np.ldexp(v, e)) for v in (value, lower, upper))
    if method == "bracket" and upper - lower > rtol * upper:
        late = budget.out_of_time()
        warn_caller(
            f"spectral_norm: the certified bracket [{lower:.10g}, {upper:.10g}] "
            f"(relative width {(upper - lower) / upper:.2e}) did not close to rtol={rtol:g} "
            f"for padding_mode={layer.geoms[0].padding_mode!r}"
            + (f" within time_limit={budget.time_limit:g} s" if late else "")
            + "; returning the lower end, which a vector attains"
        )
    return float(value)


@renamed_keyword("input_length", "input_size")
def condition_number(
    weight: ArrayLike,
    input_size: int | tuple[int, ...],
    *,
    stride: int | tuple[int, ...] = 1,
    padding: PaddingND = 0,
    dilation: int | tuple[int, ...] = 1,
    groups: int = 1,
    padding_mode: PaddingMode = "zeros",
    tol: float = 1e-6,
    maxiter: int | None = None,
    time_limit: float | None = None,
    rng: SeedLike = None,
) -> float:
    r"""The 2-norm condition number ``sigma_max / sigma_min`` of the layer's matrix.

    Parameters
    ----------
    weight, input_size, stride, padding, dilation, groups, padding_mode
        The layer, as in :func:`~toeplitz_conv.conv_matrix` (1, 2 or 3 spatial axes).
    tol : float, optional
        Relative accuracy of ``sigma_max`` and ``sigma_min`` for layers beyond the
        dense limit (a warning says when it was not reached).
    maxiter : int, optional
        Most steps of each iterative part (the Lanczos and block Krylov steps for
        ``sigma_max``, the block Krylov steps for ``sigma_min``; default 100).
    time_limit : float, optional
        Seconds for the whole call beyond the dense limit, shared by the parts for
        ``sigma_max`` and ``sigma_min`` (checked between steps; a sparse LU, once
        started, runs to its end); block-circulant layers: as in
        :func:`singular_values` (``TimeoutError`` from the FFT spectrum); the
        dense SVD runs to its end. ``None``: no limit but `maxiter`.
    rng : None, int or numpy.random.Generator, optional
        Seeds the random start vectors; ``None`` means seed 0 (deterministic).

    Returns
    -------
    float
        ``inf`` when the matrix is singular, i.e. when
        ``sigma_min <= max(m, n) * eps * sigma_max`` (numpy's rank tolerance),
        the zero map (an all-zero weight) included, as :func:`numpy.linalg.cond`.
        Beyond the dense limit, ``sigma_max`` is attained by a vector and
        ``sigma_min`` is ``||M v||`` for a unit ``v``: the ratio is at most the
        true condition number (and equal to it within `tol` when converged).

    Warns
    -----
    RuntimeWarning
        When the search for ``sigma_max`` or ``sigma_min`` stopped before `tol`
        (its budget, or rounding: ``sigma_min`` is accurate to about
        ``16 eps kappa`` relative); the warning gives the value reached and its
        error, and that value is used.

    Notes
    -----
    ``sigma_min`` is the smallest of the ``min(m, n)`` singular values (so a
    wide matrix is judged on its rows, as ``numpy.linalg.cond`` does).

    * block-circulant layers: exact, from every symbol matrix's SVD;
    * at most :data:`DENSE_LIMIT` entries: exact, dense SVD;
    * larger, every padding mode: ``sigma_max`` from the bracket of
      :func:`spectral_norm_bounds` (its attained lower end, without the proofs),
      and, when that bracket is wider than `tol`, block Krylov from the symbol's
      peaks (as ``singular_values(..., k=1)``); ``sigma_min`` by block Krylov
      started at the symbol's troughs, within the same budget:
    * while ``M`` has at most ``12e6`` nonzeros, shift-invert at zero: a sparse
      LU of ``M`` (square) or of the augmented matrix ``[[alpha I, B], [B^H, 0]]``
      (``B`` = ``M`` or ``M^H``, whichever is tall; never the Gram matrix, whose
      rounding would cost ``eps kappa^2``), and block Krylov on ``(B^H B)^{-1}``,
      whose top is ``1 / sigma_min^2``, then one step of inverse iteration on its
      vector. A factor that is exactly singular, or a solve that overflows, gives
      ``inf``;
    * larger still: block Krylov on ``sigma_max^2 I - M^H M``, which may need
      more than the budget and cannot beat ``eps kappa^2`` (then a warning says
      what was reached).

    Examples
    --------
    >>> condition_number([1.0, 2.0, 3.0], 4, padding=1, padding_mode="circular")
    3.0
    >>> condition_number([1.0, -1.0], 4, padding=1, padding_mode="circular", stride=1)
    inf
    """
    layer, _ = unit_scaled(  # (the ratio is the same at every scale)
        analysis_layer(weight, input_size, stride, padding, dilation, groups, padding_mode)
    )
    tol = check_tol(tol)
    budget = Budget(maxiter, time_limit)
    gen = as_generator(rng)
    method = choose_method(layer)
    if method == "fft":
        values = circulant_spectrum(layer, budget.deadline)
    elif method == "dense":
        values = np.linalg.svd(dense_matrix(layer), compute_uv=False)
    else:
        lower, bottom = extreme_values(layer, tol, budget, gen)
        values = np.array([lower, bottom])
    return _ratio(float(values.max()), float(values.min()), layer.shape)


@dataclass(frozen=True, eq=False)
class Analysis:
    """What :func:`analyze` found about a layer's matrix ``M`` (``m x n``).

    Attributes
    ----------
    shape : tuple of int
        ``(m, n)``.
    norm : float
        ``||M||_2``: exact (FFT or dense SVD), or the attained lower end of `bounds`,
        as :func:`spectral_norm` returns it (past the dense limit ``singular_values[0]``,
        a Ritz value of another search, may lie a little above it, within `bounds`).
    bounds : NormBounds
        A certified bracket ``lower <= ||M||_2 <= upper``.
    condition_number : float
        ``sigma_max / sigma_min`` over the ``min(m, n)`` singular values, ``inf`` when
        ``M`` is singular, as :func:`condition_number` returns it.
    singular_values : ndarray of float64, shape (k,)
        The `k` largest singular values, descending.
    errors : ndarray of float64, shape (k,)
        An exact singular value lies within ``errors[i]`` of ``singular_values[i]``.
    methods : dict of str to str
        The method behind ``'norm'`` (and `bounds`), ``'condition_number'`` and
        ``'singular_values'``: ``'fft'``, ``'dense'``, ``'bracket'`` (the certified
        bracket of :func:`spectral_norm_bounds`), ``'krylov'`` (block Krylov), or
        ``'zero'`` (an all-zero weight, whose singular values are exactly 0).
    """

    shape: tuple[int, int]
    norm: float
    bounds: NormBounds
    condition_number: float
    singular_values: np.ndarray
    errors: np.ndarray
    methods: dict[str, str]


def analyze(
    weight: ArrayLike,
    input_size: int | tuple[int, ...],
    *,
    stride: int | tuple[int, ...] = 1,
    padding: PaddingND = 0,
    dilation: int | tuple[int, ...] = 1,
    groups: int = 1,
    padding_mode: PaddingMode = "zeros",
    k: int = 6,
    rtol: float = 1e-6,
    tol: float = 1e-6,
    maxiter: int | None = None,
    time_limit: float | None = None,
    rng: SeedLike = None,
) -> Analysis:
    r"""The norm with its certified bracket, the condition number and the top singular values.

    One call for what :func:`spectral_norm`, :func:`spectral_norm_bounds`,
    :func:`condition_number` and ``singular_values(..., k=k)`` compute, each by the
    method those would pick (recorded in :attr:`Analysis.methods`), sharing work: a
    block-circulant layer's or a small matrix's whole spectrum is computed once.

    Parameters
    ----------
    weight, input_size, stride, padding, dilation, groups, padding_mode
        The layer, as in :func:`~toeplitz_conv.conv_matrix` (1, 2 or 3 spatial axes).
    k : int, optional
        How many of the largest singular values (at most ``min(m, n)``; fewer if the
        matrix has fewer).
    rtol : float, optional
        Relative width to certify for the norm's bracket, as in :func:`spectral_norm_bounds`.
    tol : float, optional
        Relative accuracy of the iterative parts (the top singular values, ``sigma_max``
        and ``sigma_min``), as in :func:`singular_values` and :func:`condition_number`.
    maxiter : int, optional
        Most steps of each iterative part (Lanczos for the bracket, block Krylov for
        the values); default 100.
    time_limit : float, optional
        Seconds for the whole call, shared by its iterative parts (as in
        :func:`condition_number`); ``None``: no limit but `maxiter`.
    rng : None, int or numpy.random.Generator, optional
        Seeds the random start vectors; ``None`` means seed 0 (deterministic).

    Returns
    -------
    Analysis
        ``norm``, ``bounds``, ``condition_number``, ``singular_values``, ``errors``
        and ``methods``.

    Warns
    -----
    RuntimeWarning
        When an iterative part stopped before `tol` (as :func:`singular_values` and
        :func:`condition_number` warn); the values reached are returned.

    Notes
    -----
    * block-circulant layers: the spectrum by FFT (every value, exact), the
      bracket from the symbol's maximum (as :func:`spectral_norm_bounds`);
    * at most :data:`DENSE_LIMIT` entries: one dense SVD gives everything;
    * larger: the certified bracket (or a dense norm while a side is at most 256),
      the top `k` by block Krylov from the symbol's peaks, ``sigma_min`` as
      :func:`condition_number` finds it, and ``sigma_max`` the best of the
      bracket's attained lower end and the top Ritz value.

    Examples
    --------
    >>> import numpy as np
    >>> a = analyze([1.0, 2.0, 3.0], 4, padding=1, padding_mode="circular", k=2)
    >>> a.norm, a.condition_number, a.methods["norm"]
    (6.0, 3.0, 'fft')
    >>> a.singular_values.round(4)
    array([6.    , 2.8284])
    >>> b = analyze(np.ones((2, 2, 3, 3)), (8, 8), padding=1, k=3)
    >>> b.methods
    {'norm': 'dense', 'condition_number': 'dense', 'singular_values': 'dense'}
    >>> bool(b.bounds.lower <= b.norm <= b.bounds.upper)
    True
    """
    layer, e = unit_scaled(
        analysis_layer(weight, input_size, stride, padding, dilation, groups, padding_mode)
    )
    k = check_int(k, "k", minimum=1)
    rtol = check_rtol(rtol)
    tol = check_tol(tol)
    budget = Budget(maxiter, time_limit)
    gen = as_generator(rng)
    full = min(layer.shape)
    k = min(k, full)
    spectrum = choose_method(layer)
    if is_zero(layer):
        zeros = np.zeros(k)
        methods = dict.fromkeys(("norm", "condition_number", "singular_values"), "zero")
        return Analysis(layer.shape, 0.0, NormBounds(0.0, 0.0), math.inf, zeros, zeros, methods)
    if spectrum == "krylov":
        method, norm, bounds = measure_norm(layer, rtol, budget, gen)
        values, errors, done, _ = top_singular_values(layer, k, tol=tol, budget=budget, rng=gen)
        if not done:
            _warn_unfinished(
                "analyze: the top singular values by block Krylov", budget, tol, values, errors
            )
        top = bounds.lower
        if values[0] <= bounds.upper:  # a Ritz value is attained: at most the proved upper end
            top = max(top, float(values[0]))
        top, bottom = extreme_values(
            layer, tol, budget, gen, bounds=(top, bounds.upper), caller="analyze"
        )
        cond = _ratio(top, bottom, layer.shape)
        methods = {"norm": method, "condition_number": "krylov", "singular_values": "krylov"}
        values, errors = np.ldexp(values, e), np.ldexp(errors, e)
        norm, bounds = float(np.ldexp(norm, e)), _scaled_bounds(bounds, e)
        return Analysis(layer.shape, norm, bounds, cond, values, errors, methods)
    if spectrum == "fft":
        spec = circulant_spectrum(layer, budget.deadline)
        method, norm, bounds = measure_norm(layer, rtol, budget, gen)
    else:
        spec = np.linalg.svd(dense_matrix(layer), compute_uv=False)
        method, norm, bounds = "dense", float(spec[0]), exact_bounds(float(spec[0]))
    spec = np.ldexp(np.sort(spec)[::-1], e)
    cond = _ratio(float(spec[0]), float(spec[-1]), layer.shape)
    errors = np.full(k, 64 * full * EPS * spec[0])
    methods = {"norm": method, "condition_number": spectrum, "singular_values": spectrum}
    norm, bounds = float(np.ldexp(norm, e)), _scaled_bounds(bounds, e)
    return Analysis(layer.shape, norm, bounds, cond, spec[:k].copy(), errors, methods)


def _scaled_bounds(bounds: NormBounds, e: int) -> NormBounds:
    """The `bounds` of a :func:`~toeplitz_conv.spectral._symbol.unit_scaled` layer, times
    ``2^e``: those of the layer it came from."""
    return NormBounds(*(float(np.ldexp(v, e)) for v in bounds))
