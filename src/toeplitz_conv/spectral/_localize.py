r"""Upper bounds for reflect and replicate padding from the edges only (IMS localisation).

Off the few samples the padding reads (:func:`touched_columns`), a reflect or replicate
layer equals its zero-padded version, a submatrix of the circulant. A partition of unity
over the samples splits ``A = M^H M`` into edge pieces, certified by Cholesky on their
windows (:func:`._certify.band_cholesky` in 1-D, windowed block-Cholesky strips of
:func:`._blockgram.block_gram_certificate` in N-d), and an interior bounded by the
circulant; the IMS localisation formula bounds what the partition costs
(:func:`localized_bound`, :func:`localized_nd`).

References
----------
.. [1] B. Simon, "Semiclassical analysis of low lying eigenvalues. I.", Ann. Inst. H.
   Poincaré Sect. A 38 (1983) 295-308 (the IMS localisation formula).
.. [2] S. M. Rump, "Verification of positive definiteness", BIT 46 (2006) 433-452.
"""

from __future__ import annotations

import math
import time

import numpy as np

from .._geometry import ConvGeometry
from .._layer import Layer
from .._linop import LayerOperator
from .._threads import blas_threads
from ._blockgram import block_gram_certificate, block_gram_cost
from ._certify import (
    GRAM_BYTES_ND,
    band_cholesky,
    boundary_norm,
    copies,
    embedding_lengths,
    gram_certificate,
    grid_max,
    probed_window_gram,
)
from ._symbol import EPS, layer_symbol

__all__ = ["localized_bound", "touched_columns"]

_LOCAL_ENTRIES = 1e7  # most nonzeros of one edge window's Gram matrix (localized_bound)
_LOCAL_FLOPS_ND = 1.5e12  # most (estimated) flops of the N-d edge strips' certificates together


def touched_columns(g: ConvGeometry) -> tuple[int, int]:
    """``(a, b)``: the padding reads only samples ``l < a`` and ``l >= L - b`` on this axis.

    Off those columns the layer equals its zero-padded version (``(0, 0)`` for zero padding).
    """
    L = g.input_length
    rows = g.boundary_rows()
    if rows.size == 0:
        return 0, 0
    pos = g.positions(rows)
    raw = rows[:, None] * g.stride + np.arange(g.kernel_size) * g.dilation - g.pad_left
    outside = (raw < 0) | (raw >= L)
    cols = pos[outside & (pos >= 0)]
    left = cols[cols < L / 2]
    right = cols[cols >= L / 2]
    return (int(left.max()) + 1 if left.size else 0), (L - int(right.min()) if right.size else 0)


def _flat_edges(g: ConvGeometry) -> tuple[int, int]:
    """``(a, b)`` of :func:`touched_columns`, widened to every sample (and centre) an output
    that reads padding reads: those outputs see flat ramps (:func:`_commutator_weights`
    is then zero on them, and no column of ``D_k S_k`` has two entries)."""
    lo, hi = touched_columns(g)
    L = g.input_length
    rows = g.boundary_rows()
    if rows.size == 0 or not (lo or hi):
        return lo, hi
    raw = rows[:, None] * g.stride + np.arange(g.kernel_size) * g.dilation - g.pad_left
    centre = rows * g.stride - g.pad_left + g.dilation * (g.kernel_size - 1) / 2
    pos = g.positions(rows)
    left, right = (raw < 0).any(axis=1), (raw >= L).any(axis=1)
    if lo and left.any():
        reach = max(int(pos[left].max()), math.ceil(float(centre[left].max())))
        lo = max(lo, reach + 1)
    if hi and right.any():
        read = np.where(pos[right] >= 0, pos[right], L)
        reach = min(int(read.min()), math.floor(float(centre[right].min())))
        hi = max(hi, L - reach)
    return lo, hi


def _ramp_vectors(x: np.ndarray, L: int, a: int, b: int, ell: int) -> np.ndarray:
    r"""``v(x) = (phi_left, phi_mid, phi_right)(x)``, shape ``(3, *x.shape)``: a unit vector.

    The angle ``Psi = psi_l + psi_r`` with ``psi_l = (pi/2) clip((x - a + 1) / (ell + 1), 0, 1)``
    (``pi/2`` when ``a = 0``: no left ramp) and ``psi_r = (pi/2) clip((x - L + b + ell + 1) /
    (ell + 1), 0, 1)`` (``0`` when ``b = 0``); ``v = (cos Psi, sin Psi, 0)`` up to ``pi/2``,
    ``(0, sin Psi, -cos Psi)`` after. ``phi_left`` lives on ``x < a + ell``, ``phi_right``
    on ``x >= L - b - ell``, ``phi_mid`` on ``a <= x < L - b``.
    """
    x = np.asarray(x, dtype=np.float64)
    half = np.pi / 2
    if a:
        psi = half * np.clip((x - (a - 1)) / (ell + 1), 0.0, 1.0)
    else:
        psi = np.full(x.shape, half)
    right = half * np.clip((x - (L - b - ell - 1)) / (ell + 1), 0.0, 1.0) if b else 0.0
    first = psi < half
    psi = psi + right
    zero = np.zeros(x.shape)
    return np.stack(
        [np.where(first, np.cos(psi), zero), np.sin(psi), np.where(first, zero, -np.cos(psi))]
    )


def _commutator_weights(g: ConvGeometry, a: int, b: int, ell: int) -> np.ndarray:
    r"""``||D_k S_k||`` for each tap ``k`` of this axis, ``(K,)`` (upper bounds).

    ``S_k`` is the 0/1 matrix of tap ``k`` (output ``q`` to sample ``src(q s + k d - p_l)``)
    and ``D_k = diag_q |v(src) - v(c_q)|^2``, ``c_q = q s - p_l + d (K - 1) / 2`` the
    centre of output ``q``'s taps (:func:`_ramp_vectors`). Each row of ``D_k S_k``
    has at most one entry, so its norm is the largest column norm, exactly;
    ``1e-15`` on each distance covers the rounding of the cosines (a tap that
    reads its centre has distance 0).
    """
    L, K = g.input_length, g.kernel_size
    q = np.arange(g.output_length)
    centre = q * g.stride - g.pad_left + g.dilation * (K - 1) / 2
    vc = _ramp_vectors(centre, L, a, b, ell)
    pos = g.positions(q)
    out = np.zeros(K)
    for k in range(K):
        ok = pos[:, k] >= 0
        vs = _ramp_vectors(pos[ok, k], L, a, b, ell)
        dist = np.sqrt(((vs - vc[:, ok]) ** 2).sum(axis=0))
        dist = np.where(pos[ok, k] == centre[ok], 0.0, dist + 1e-15)  # equal: exactly 0
        omega = dist * dist * (1 + 8 * EPS)
        cols = np.bincount(pos[ok, k], weights=omega * omega, minlength=L)
        out[k] = math.sqrt(float(cols.max(initial=0.0))) * (1 + 8 * EPS)
    return out


def _slice_layer(layer: Layer, axis: int, k: int) -> Layer:
    """``M'``: the layer of the other axes with weight ``W[..., k_axis = k, ...]``."""
    weight = np.take(layer.weight, k, axis=2 + axis)
    geoms = tuple(g for a, g in enumerate(layer.geoms) if a != axis)
    return Layer(weight, geoms, layer.groups)


def _padded_norm(layer: Layer) -> float:
    """An upper bound on ``||M||`` for :func:`localized_bound`'s slices (small layers).

    ``sqrt(copies)`` times the circulant's (in 1-D also the circulant's plus
    :func:`boundary_norm`), or, when cheaper than that, a Gram certificate at
    ``1.005`` or ``1.03`` times a power-iteration estimate (1-D: the banded
    Cholesky; ``n >= 2``: the block Cholesky when it costs at most ``1e10`` flops).
    """
    sym = layer_symbol(layer)
    circ = grid_max(sym, embedding_lengths(layer, np.nan, 1)[0], rtol=1e-3)[0]
    bound = math.sqrt(copies(layer)) * circ
    if layer.ndim == 1:
        bound = min(bound, circ + boundary_norm(layer))
    bound *= 1 + 256 * EPS
    if layer.ndim > 1 and block_gram_cost(layer)[0] > 1e10:
        return bound
    op = LayerOperator(layer)
    x = np.random.default_rng(0).standard_normal(op.shape[1])
    est = 0.0
    for _ in range(40):  # an estimate only: the certificate below proves the bound
        y = op.rmatvec(op.matvec(x))
        size = float(np.linalg.norm(y))
        if not size > 0:
            return bound
        est, x = math.sqrt(size / float(np.linalg.norm(x))), y / size
    for factor in (1.005, 1.03):
        if est * factor >= bound:
            break
        cert = gram_certificate(layer, est * factor)
        if cert is not None:
            return min(bound, cert)
    return bound


def localized_bound(
    layer: Layer,
    circulant: float,
    lower: float,
    rtol: float,
    max_entries: float | None = None,
    deadline: float | None = None,
    ell: int | None = None,
) -> float | None:
    r"""An upper bound on ``||M||`` for reflect/replicate padding from the edges only.

    ``M = T + B`` where ``T`` is the zero-padded conv (a submatrix of the
    circulant, ``||T|| <= circulant``) and ``B`` lives on the first ``a`` and last
    ``b`` columns. With a partition of unity over the samples,
    ``phi_left^2 + phi_mid^2 + phi_right^2 = 1``, ``phi_mid = 0`` on those
    columns and ramps ``(cos psi, sin psi)`` of ``ell`` samples between, the IMS
    localisation formula (Simon 1983) for ``A = M^H M``,

    .. math::

        A = \sum_i \phi_i A \phi_i + \tfrac12 \sum_i [\phi_i, [\phi_i, A]],

    gives ``lambda_max(A) <= max(mu_left^2, circulant^2, mu_right^2) + E`` where
    ``mu_left`` bounds ``||M[:, :a + ell]||`` (a banded Cholesky of that window's
    Gram matrix, :func:`._certify.band_cholesky`), likewise on the right, and
    ``[phi_i, [phi_i, A]]_{jk} = (phi_i(l_j) - phi_i(l_k))^2 A_{jk}`` with
    ``sum_i (phi_i(l) - phi_i(l'))^2 <= (psi(l) - psi(l'))^2
    <= (pi (l - l') / (2 (ell + 1)))^2``, so that

    .. math::

        E \le \tfrac12 \Big(\frac{\pi}{2(\ell + 1)}\Big)^2
        \max_j \sum_k |A_{jk}| (l_j - l_k)^2,

    the weighted row sums computed with ``|M|`` (the layer with ``|W|``, which
    bounds ``|M|`` entrywise) as ``l^2 |A| 1 - 2 l |A| l + |A| l^2``. The gap
    closes like ``1 / ell^2``; the windows cost what the Gram certificate of a
    ``2 (a + ell)``-sample layer costs, so ``ell`` is as long as `max_entries`
    (nonzeros of the windows' Gram matrices; default ``1e7``) allows. ``None`` if the windows do
    not fit or a window's Cholesky fails up to ``circulant``.

    ``n >= 2`` axes: the same from the edge strips of every axis
    (:func:`localized_nd`: block-Cholesky certificates of the strips,
    at most ``_LOCAL_FLOPS_ND`` flops, ramps of `ell` samples if given, and the
    `deadline`). In 1-D `ell` and `deadline` are not used (its windows are cheap).
    """
    if layer.ndim != 1:
        # blocks of a few hundred unknowns: on a busy 2-core machine two OpenBLAS threads
        # factorised 64 channels on 12 x 56 in 48 s, one in 12 s
        with blas_threads(1):
            return localized_nd(layer, circulant, lower, rtol, deadline=deadline, ell=ell)
    g = layer.geom
    if g.padding_mode not in ("reflect", "replicate"):
        return None
    c_in, L, s = layer.in_channels, g.input_length, g.stride
    span = g.dilation * (g.kernel_size - 1)
    band = c_in * (span + 1)
    a, b = touched_columns(g)
    if max_entries is None:
        max_entries = _LOCAL_ENTRIES
    width = int(max_entries // (c_in * (2 * band + 1)))  # most samples in one window
    ell = min(width - max(a, b), (L - a - b) // 2 - 2 * span - 2)
    if ell < 8 * span + 8:
        return None
    # a shorter layer with the same edges (same L mod s): M's windows are its windows
    margin = 2 * (max(a, b) + ell + 2 * span + g.pad_left + g.pad_right + 2 * s)
    short = L if L <= margin else L - ((L - margin) // s) * s
    sub = Layer(layer.weight, (g.resized(short),), layer.groups)
    op = LayerOperator(sub)
    pos = np.tile(np.arange(short), c_in)
    terms = (layer.weight.shape[0] + layer.weight.shape[1]) * g.kernel_size
    tries = [lower * (1 + t) for t in (rtol / 4, rtol, 1e-4, 1e-3, 1e-2, 0.1) if t >= rtol / 4]
    edge = []
    for window in (np.arange(a + ell), np.arange(short - b - ell, short)):
        gram = probed_window_gram(op, c_in, short, window, span)
        proved = None
        for mu in [*tries, circulant * (1 + 1e-3)]:
            proved = band_cholesky(gram.copy(), mu, terms)
            if proved is not None:
                break
        if proved is None:
            return None
        edge.append(proved)
    # the localisation error from the weighted row sums of |A| on the ramps
    absolute = LayerOperator(Layer(np.abs(sub.weight).astype(np.float64), sub.geoms, sub.groups))

    def gram_abs(x: np.ndarray) -> np.ndarray:
        return absolute.rmatvec(absolute.matvec(x))

    worst = 0.0
    for start in (a, short - b - ell):
        centre = start + ell / 2
        lpos = (pos - centre).astype(np.float64)
        ones = np.ones_like(lpos)
        a0, a1, a2 = gram_abs(ones), gram_abs(lpos), gram_abs(lpos * lpos)
        weighted = lpos * lpos * a0 - 2 * lpos * a1 + a2
        rounding = 16 * EPS * (lpos * lpos * a0 + 2 * np.abs(lpos) * gram_abs(np.abs(lpos)) + a2)
        near = np.abs(lpos) <= ell / 2 + span + 1
        worst = max(worst, float((weighted + rounding)[near].max()))
    error = 0.5 * (np.pi / (2 * (ell + 1))) ** 2 * worst
    top = max(edge[0], edge[1], circulant)
    return math.sqrt(top * top + error) * (1 + 256 * EPS)


def localized_nd(
    layer: Layer,
    circulant: float,
    lower: float,
    rtol: float,
    deadline: float | None = None,
    ell: int | None = None,
) -> float | None:
    r"""An upper bound on ``||M||`` (``n >= 2`` axes, reflect/replicate) from its edge strips.

    On axis ``a`` the padding reads only the first ``a_a`` and last ``b_a``
    samples (:func:`touched_columns`; widened by :func:`_flat_edges` so that the
    outputs that read padding see no ramp). A partition of unity per axis,
    ``phi_l^2 + phi_m^2 + phi_r^2 = 1`` (:func:`_ramp_vectors`: ``phi_m = 0``
    on the touched samples, ramps ``(cos psi, sin psi)`` of ``ell`` samples),
    and their products ``phi_i(p) = prod_a phi^a_{i_a}(p_a)`` (``3^n`` of them,
    ``sum_i phi_i^2 = 1``), localise ``A = M^H M`` by the IMS formula (Simon 1983),
    one axis after another:

    .. math::

        A = \sum_{i_a} \phi_{i_a} A \phi_{i_a}
          + \tfrac12 \sum_{i_a} [\phi_{i_a}, [\phi_{i_a}, A]],
        \qquad [\phi, [\phi, A]]_{jk} = (\phi(j) - \phi(k))^2 A_{jk}.

    *Regions.* ``x^H phi_i A phi_i x = ||M phi_i x||^2 <= mu_i^2 ||phi_i x||^2``
    with ``mu_i`` a bound on ``||M[:, supp phi_i]||``. A product with some
    ``i_a`` in ``{l, r}`` lives in an edge strip (the first ``a_a + ell`` or last
    ``b_a + ell`` samples of axis ``a``, every sample of the others), bounded by
    the block Cholesky certificate of that strip's Gram matrix, a principal
    submatrix of ``G`` (:func:`block_gram_certificate` with a window). The
    all-``m`` product reads only columns no padded position reads, where ``M``
    is the zero-padded conv ``T``: ``||T|| <= circulant``.

    *Commutators.* With ``A = M^H M``, ``y_j = M_{qj} x_j`` and the unit vectors
    ``v(j) = (phi_l, phi_m, phi_r)(j_a)``, for any centre ``c_q`` of output ``q``
    (``|v(j) - v(k)|^2`` is a squared distance; the cross term is ``<= 0``)

    .. math::

        \tfrac12 \sum_{jk} |v(j) - v(k)|^2 A_{jk} \bar x_j x_k
        \le \mathrm{Re} \langle N_a x, M x \rangle,
        \qquad (N_a)_{qj} = M_{qj} |v(j) - v(c_q)|^2 .

    Split by the tap ``k`` of axis ``a``, ``N_a = sum_k (D_k S_k) \otimes M'_k``
    (:func:`_commutator_weights`; ``M'_k`` the layer of the other axes with
    weight ``W[..., k, ...]``), so ``||N_a|| <= nu_a = sum_k ||D_k S_k|| ||M'_k||``
    (:func:`_padded_norm` bounds ``||M'_k||``). Localising axis ``a`` inside the pieces
    ``M phi_{i_<a}`` already cut along the earlier axes costs, by Cauchy-Schwarz
    over the pieces, at most ``nu_a ||M|| ||x||^2``. Hence, with
    ``m = max_i mu_i`` and ``nu = sum_a nu_a``,

    .. math::

        \|M\|^2 \le m^2 + \nu \|M\| \quad\Longrightarrow\quad
        \|M\| \le \tfrac12 \big(\nu + \sqrt{\nu^2 + 4 m^2}\big).

    ``|v(j) - v(c)| <= |Psi(j) - Psi(c)| <= pi |j - c| / (2 (ell + 1))``, so
    ``nu = O(ell^{-2})``. `ell` (common to the axes, shortened on a short one)
    is the least that brings ``nu / 2`` under ``rtol lower / 4``, or else the
    most the strips' certificates afford (``_LOCAL_FLOPS_ND`` flops together, ``GRAM_BYTES_ND``
    each); a given `ell` is used as it is. With a `deadline`
    (``time.monotonic()``) ramps half that long go first, and the least bound
    proved before it passes is returned. ``None``
    when no ``ell >= 1`` fits, or a strip's certificate fails up to
    ``lower * 1.1`` or is stopped by the `deadline` before any bound.

    References
    ----------
    .. [1] B. Simon, "Semiclassical analysis of low lying eigenvalues. I. Non-degenerate
       minima: asymptotic expansions",
       Ann. Inst. H. Poincare A 38 (1983) 295-308 (the IMS localisation formula).
    .. [2] S. M. Rump, "Verification of positive definiteness", BIT 46 (2006) 433-452.
    """
    geoms = layer.geoms
    if layer.ndim < 2 or any(g.padding_mode == "circular" for g in geoms):
        return None
    touched = [_flat_edges(g) for g in geoms]
    ramps = [a for a, (lo, hi) in enumerate(touched) if lo or hi]
    if not ramps or not (lower > 0 and circulant > 0):
        return None
    longest = {}
    for ax in ramps:
        lo, hi = touched[ax]
        L = geoms[ax].input_length
        longest[ax] = (L - lo - hi - 1) // 2 if lo and hi else L - lo - hi - 1
    if min(longest.values()) < 1:
        return None

    def windows(e: int) -> list[tuple[int, int, int]]:
        out = []
        for ax in ramps:
            lo, hi = touched[ax]
            L, e_ax = geoms[ax].input_length, min(e, longest[ax])
            out += [(ax, 0, lo + e_ax)] if lo else []
            out += [(ax, L - hi - e_ax, L)] if hi else []
        return out

    norms = {}  # ||M'_k|| per (axis, tap), as needed

    def nu(e: int) -> float:
        total = 0.0
        for ax in ramps:
            w = _commutator_weights(geoms[ax], *touched[ax], min(e, longest[ax]))
            for k in np.nonzero(w)[0]:
                if (ax, k) not in norms:
                    norms[(ax, k)] = _padded_norm(_slice_layer(layer, ax, int(k)))
                total += float(w[k]) * norms[(ax, k)]
        return total * (1 + 16 * EPS)

    def affordable(e: int) -> bool:
        costs = [block_gram_cost(layer, wnd) for wnd in windows(e)]
        return (
            sum(c[0] for c in costs) <= _LOCAL_FLOPS_ND
            and max(c[1] for c in costs) <= GRAM_BYTES_ND
        )

    if ell is None:
        top = max(longest.values())
        if not affordable(1):
            return None
        lo_e, hi_e = 1, top  # the most affordable ell: costs grow with ell
        while lo_e < hi_e:
            mid = (lo_e + hi_e + 1) // 2
            lo_e, hi_e = (mid, hi_e) if affordable(mid) else (lo_e, mid - 1)
        ell = lo_e
        aim = 0.25 * rtol * lower
        while ell > 1 and 0.5 * nu(ell - 1) <= aim:  # nu falls like ell^-2: a few steps
            ell -= 1
        # with a deadline, ramps half as long first (about an eighth of the work): a bound
        # in hand if the longest does not finish
        steps = [ell] if deadline is None else sorted({max(1, ell // 2), ell})
    else:
        steps = [int(ell)]
    if steps[0] < 1:
        return None
    best = None
    for e in steps:
        spread = nu(e)
        first = max(rtol / 4, spread / (16 * lower))  # the strips add ~ lower * first
        tries = [first * 4**j for j in range(12) if first * 4**j <= 0.1] or [0.1]
        tries = sorted({max(circulant, lower * (1 + t)) for t in tries})
        m = _prove_strips(layer, windows(e), tries, deadline)
        if m is None:
            break
        m = max(m, circulant)
        bound = 0.5 * (spread + math.sqrt(spread * spread + 4 * m * m)) * (1 + 64 * EPS)
        best = bound if best is None else min(best, bound)
    return best


def _prove_strips(
    layer: Layer, windows: list[tuple[int, int, int]], tries: list[float], deadline: float | None
) -> float | None:
    """The largest of the strips' norm bounds, each proved at the least of `tries` (ascending)
    that is not below the one the strip before needed (their maximum is what counts);
    ``None`` when a strip fails them all or the `deadline` passes."""
    level, best = 0, 0.0
    for wnd in windows:
        proved = None
        for j in range(level, len(tries)):
            if deadline is not None and time.monotonic() >= deadline:
                return None
            proved = block_gram_certificate(layer, tries[j], deadline, window=wnd)
            if proved is not None:
                level = j
                break
        if proved is None:
            return None
        best = max(best, proved)
    return best
