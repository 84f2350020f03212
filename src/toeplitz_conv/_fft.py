r"""Long 1-D kernels by FFT: grouped cross-correlation by overlap-save.

For a kernel of ``D`` taps (dilation already spelled out as zeros) the direct
passes of :mod:`toeplitz_conv._kernel` cost ``O(D)`` per output and channel
pair; overlap-save costs ``O(log D)``. The signal is cut into overlapping
segments of ``N`` samples (``N - D + 1`` new outputs each, ``N`` chosen as
:func:`scipy.signal.oaconvolve` does: ``N = D ln(2 e N)``), every segment is
transformed once per input channel, the channels are summed per frequency
(one product per ``(out, in)`` pair of a group), and every output channel is
transformed back once. Memory stays ``O(signal)``; real data use ``rfft`` and
float32 stays float32 (:mod:`scipy.fft` keeps the precision).

Cross-correlation, as torch computes it (no flip):

.. math::

    z[o, j] = \sum_{c \in \mathrm{group}(o)} \sum_{m=0}^{D-1} h[o, c, m]\, x[c, j + m],
    \qquad 0 \le j < M,

which is the circular convolution of a segment with the reversed kernel,
read from position ``D - 1`` on.

References
----------
.. [1] A. V. Oppenheim, R. W. Schafer, *Discrete-Time Signal Processing*, 3rd ed.,
   Pearson, 2010, §8.7.3 (overlap-save).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft
from numpy.lib.stride_tricks import sliding_window_view
from scipy.special import lambertw

__all__ = ["Correlator", "dilate"]


def dilate(weight: np.ndarray, dilation: int) -> np.ndarray:
    """``(..., K)`` -> ``(..., d(K-1)+1)``: the taps ``d`` apart, zeros between."""
    K = weight.shape[-1]
    out = np.zeros((*weight.shape[:-1], dilation * (K - 1) + 1), dtype=weight.dtype)
    out[..., ::dilation] = weight
    return out


class Correlator:
    """The grouped correlation with the taps `h` ``(groups, C_out/groups, G, D)``.

    Parameters
    ----------
    h : ndarray, shape (groups, C_out/groups, G, D)
        Per group, output and input channel, the ``D`` taps (dilated).
    """

    def __init__(self, h: np.ndarray) -> None:
        self.h = h
        self.groups, self.cog, self.G, self.D = h.shape
        self._spectra: dict[tuple[np.dtype, int], np.ndarray] = {}

    def fft_size(self, M: int) -> int:
        """Segment length ``N`` for ``M`` outputs: the cost optimum of overlap-save."""
        overlap = self.D - 1
        whole = scipy.fft.next_fast_len(M + overlap)
        if overlap == 0:
            return min(whole, 4096)
        best = -overlap * lambertw(-1 / (2 * math.e * overlap), k=-1).real
        return min(whole, scipy.fft.next_fast_len(max(math.ceil(best), 2 * overlap + 1)))

    def _spectrum(self, dtype: np.dtype, N: int) -> np.ndarray:
        """``(groups, C_out/groups, G, F)``: the transform of the reversed taps."""
        key = (np.dtype(dtype), N)
        if key not in self._spectra:
            rev = self.h[..., ::-1].astype(dtype)
            tr = scipy.fft.rfft if key[0].kind == "f" else scipy.fft.fft
            self._spectra[key] = tr(rev, n=N, axis=-1)
        return self._spectra[key]

    def __call__(self, x: np.ndarray, M: int, lead: int = 0, spread: int = 1) -> np.ndarray:
        """``x`` ``(C_in, E, B)`` -> ``z`` ``(C_out, M, B)``.

        The correlated signal is ``x`` spread out: ``x[:, e]`` at position
        ``lead + e * spread``, zero everywhere else (the adjoint's upsampled,
        zero-padded output, without building it).
        """
        C, E, B = x.shape
        dtype, D = x.dtype, self.D
        real = dtype.kind == "f"
        N = self.fft_size(M)
        step = N - D + 1
        n_seg = -(-M // step)
        total = (n_seg - 1) * step + N
        buf = np.zeros((C, B, total), dtype=dtype)
        keep = min(E, max(0, -(-(total - lead) // spread)))
        buf[:, :, lead : lead + (keep - 1) * spread + 1 : spread] = x[:, :keep].transpose(0, 2, 1)
        segments = sliding_window_view(buf, N, axis=-1)[:, :, ::step]  # (C, B, n_seg, N)
        X = (scipy.fft.rfft if real else scipy.fft.fft)(segments, axis=-1)
        del buf, segments
        H = self._spectrum(dtype, N)
        groups, cog, G = self.groups, self.cog, self.G
        F = X.shape[-1]
        Xg = X.reshape(groups, G, B * n_seg, F)
        if G * cog <= 16:  # a few pairs: multiply-adds streaming over all frequencies
            if cog == 1:  # in place over the first input channel: no fresh array
                Y = Xg[:, :1]
                Y *= H[:, :, 0, None, :]
            else:
                Y = H[:, :, 0, None, :] * Xg[:, None, 0]
            for c in range(1, G):
                Y += H[:, :, c, None, :] * Xg[:, None, c]
        else:  # a matrix product per group and frequency
            Y = np.matmul(H.transpose(0, 3, 1, 2), Xg.transpose(0, 3, 1, 2)).transpose(0, 2, 3, 1)
        del X, Xg
        Y = Y.reshape(groups * cog, B, n_seg, F)
        z = scipy.fft.irfft(Y, n=N, axis=-1) if real else scipy.fft.ifft(Y, axis=-1)
        z = z[..., D - 1 :].reshape(groups * cog, B, n_seg * step)[:, :, :M]
        return np.ascontiguousarray(z.transpose(0, 2, 1))
