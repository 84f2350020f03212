"""The index math of a 1-D convolution: one source of truth, pure integers.

Everything the builders and the forward passes need to know about *where* a
tap lands lives here; nothing here knows the weight values.

For an input of length ``L``, kernel size ``K``, stride ``s``, dilation ``d``
and padding ``(p_l, p_r)``, output position ``i`` and tap ``k`` read the padded
signal at ``j = i*s + k*d - p_l``; the padding mode maps ``j`` back to a source
sample ``src(j)`` in ``[0, L)``, or to "nothing" (``-1``) for zero padding.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np

PaddingMode = Literal["zeros", "reflect", "replicate", "circular"]
PADDING_MODES: tuple[str, ...] = ("zeros", "reflect", "replicate", "circular")
Padding = int | tuple[int, int] | str

__all__ = [
    "ConvGeometry",
    "check_int",
    "conv_geometry",
    "resolve_padding",
    "transpose_geometry",
]


def check_int(value: object, name: str, *, minimum: int) -> int:
    """Return `value` as a Python int, or raise naming `name`.

    Booleans are refused (``True`` is not a stride); numpy integers are fine.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"`{name}` must be an integer >= {minimum}, got {value!r} "
            f"of type {type(value).__name__}"
        )
    value = int(value)
    if value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value}")
    return value


def check_choice(value: object, name: str, allowed: tuple[str, ...]) -> str:
    """Return `value` if it is one of `allowed`, else raise naming `name`."""
    if not isinstance(value, str) or value not in allowed:
        choices = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"`{name}` must be one of {choices}; got {value!r}")
    return value


def resolve_padding(
    padding: Padding, *, kernel_size: int, stride: int, dilation: int
) -> tuple[int, int]:
    """Turn torch-style `padding` into ``(p_l, p_r)``.

    ``p`` means ``(p, p)``; a pair is ``(p_l, p_r)``; ``"valid"`` is ``(0, 0)``;
    ``"same"`` (stride 1 only) pads ``t = d*(K-1)`` in total with
    ``p_l = t // 2`` and the odd one on the right, as torch does.
    """
    if isinstance(padding, str):
        check_choice(padding, "padding", ("same", "valid"))
        if padding == "valid":
            return 0, 0
        if stride != 1:
            raise ValueError(
                f"`padding`='same' requires `stride`=1 (as in torch), got stride={stride}"
            )
        total = dilation * (kernel_size - 1)
        return total // 2, total - total // 2
    if isinstance(padding, (tuple, list)):
        if len(padding) == 1:  # torch accepts a 1-tuple for 1-D
            padding = (padding[0], padding[0])
        if len(padding) != 2:
            raise ValueError(
                "`padding` must be an int, a (left, right) pair, 'same' or 'valid'; "
                f"got a sequence of length {len(padding)}: {padding!r}"
            )
        return (
            check_int(padding[0], "padding[0]", minimum=0),
            check_int(padding[1], "padding[1]", minimum=0),
        )
    if isinstance(padding, bool) or not isinstance(padding, numbers.Integral):
        raise TypeError(
            "`padding` must be an int, a (left, right) pair, 'same' or 'valid'; "
            f"got {padding!r} of type {type(padding).__name__}"
        )
    p = check_int(padding, "padding", minimum=0)
    return p, p


@dataclass(frozen=True)
class ConvGeometry:
    """Validated 1-D convolution geometry along one spatial axis.

    Attributes
    ----------
    input_length : int
        ``L``, samples per input channel.
    kernel_size : int
        ``K``, taps per kernel.
    stride, dilation : int
        ``s`` and ``d``.
    pad_left, pad_right : int
        ``p_l`` and ``p_r``.
    padding_mode : str
        How the padded signal is read outside ``[0, L)``.
    output_length : int
        ``L_out``; normally ``floor((L + p_l + p_r - d(K-1) - 1) / s) + 1``,
        shorter only when a transposed convolution asks for fewer rows.
    """

    input_length: int
    kernel_size: int
    stride: int
    dilation: int
    pad_left: int
    pad_right: int
    padding_mode: str
    output_length: int

    def src(self, j: np.ndarray) -> np.ndarray:
        """Map padded positions ``j`` in ``[-p_l, L + p_r)`` to source samples.

        Returns an integer array of the same shape with values in ``[0, L)``,
        or ``-1`` where zero padding reads nothing.
        """
        L = self.input_length
        j = np.asarray(j)
        mode = self.padding_mode
        if mode == "zeros":
            return np.where((j >= 0) & (j < L), j, -1)
        if mode == "replicate":
            return np.clip(j, 0, L - 1)
        if mode == "circular":
            return np.mod(j, L)
        # reflect: mirror about the edge sample without repeating it
        if L == 1:
            return np.zeros_like(j)
        period = 2 * (L - 1)
        m = np.mod(j, period)
        return np.where(m < L, m, period - m)

    @cached_property
    def interior(self) -> tuple[int, int]:
        """Rows ``[lo, hi)`` whose taps all read inside ``[0, L)`` directly.

        In these rows tap ``k`` of row ``i`` reads sample ``i*s + k*d - p_l``
        with no help from the padding mode; all other rows are boundary rows.
        """
        s, L_out = self.stride, self.output_length
        span = self.dilation * (self.kernel_size - 1)
        lo = min(-(-self.pad_left // s), L_out)
        last = self.input_length - 1 - span + self.pad_left  # need i*s <= last
        hi = min(last // s + 1, L_out) if last >= 0 else 0
        return lo, max(lo, hi)

    def positions(self, rows: np.ndarray) -> np.ndarray:
        """Source samples ``src(i*s + k*d - p_l)`` for `rows` x taps, shape ``(len(rows), K)``."""
        taps = np.arange(self.kernel_size) * self.dilation - self.pad_left
        return self.src(np.asarray(rows)[:, None] * self.stride + taps[None, :])

    @property
    def is_circulant(self) -> bool:
        """True when the matrix is exactly (strided block-)circulant: one period of output.

        That is circular padding (or no padding at all) with ``L_out * s == L``;
        its spectrum is then exact by FFT.
        """
        wraps = self.padding_mode == "circular" or self.pad_left == self.pad_right == 0
        return wraps and self.output_length * self.stride == self.input_length

    def padded_sources(self) -> np.ndarray:
        """``src(j)`` for every padded position ``j = -p_l, ..., L + p_r - 1``."""
        return self.src(np.arange(-self.pad_left, self.input_length + self.pad_right))

    def boundary_rows(self) -> np.ndarray:
        """The rows outside :attr:`interior`, ascending."""
        lo, hi = self.interior
        return np.concatenate([np.arange(lo), np.arange(hi, self.output_length)])


def _padding_limits(mode: str, L: int, p_l: int, p_r: int) -> None:
    if mode == "reflect" and max(p_l, p_r) >= L:
        raise ValueError(
            f"`padding_mode`='reflect' needs padding < input_length on each side "
            f"(as in torch); got padding=({p_l}, {p_r}) with input_length={L}"
        )
    if mode == "circular" and max(p_l, p_r) > L:
        raise ValueError(
            f"`padding_mode`='circular' needs padding <= input_length on each side "
            f"(as in torch); got padding=({p_l}, {p_r}) with input_length={L}"
        )


def _natural_output_length(L: int, K: int, s: int, d: int, p_l: int, p_r: int) -> int:
    """``floor((L + p_l + p_r - d(K-1) - 1) / s) + 1`` (may be < 1)."""
    return (L + p_l + p_r - d * (K - 1) - 1) // s + 1


def conv_geometry(
    input_length: int,
    kernel_size: int,
    *,
    stride: int = 1,
    padding: Padding = 0,
    dilation: int = 1,
    padding_mode: str = "zeros",
) -> ConvGeometry:
    """Validate torch ``conv1d`` parameters and return their :class:`ConvGeometry`.

    Raises
    ------
    TypeError, ValueError
        Naming the argument, the value received and what is allowed.
    """
    L = check_int(input_length, "input_length", minimum=1)
    K = check_int(kernel_size, "kernel_size", minimum=1)
    s = check_int(stride, "stride", minimum=1)
    d = check_int(dilation, "dilation", minimum=1)
    mode = check_choice(padding_mode, "padding_mode", PADDING_MODES)
    p_l, p_r = resolve_padding(padding, kernel_size=K, stride=s, dilation=d)
    _padding_limits(mode, L, p_l, p_r)
    L_out = _natural_output_length(L, K, s, d, p_l, p_r)
    if L_out < 1:
        raise ValueError(
            f"the output would be empty: output length = floor((L + p_l + p_r - d*(K-1) - 1)"
            f" / s) + 1 = {L_out} < 1 for input_length={L}, kernel_size={K}, "
            f"padding=({p_l}, {p_r}), dilation={d}, stride={s}; "
            "use a longer input, more padding or a smaller kernel/dilation"
        )
    return ConvGeometry(L, K, s, d, p_l, p_r, mode, L_out)


def transpose_geometry(
    input_length: int,
    kernel_size: int,
    *,
    stride: int = 1,
    padding: int | tuple[int, int] = 0,
    output_padding: int = 0,
    dilation: int = 1,
) -> ConvGeometry:
    """Geometry of the conv1d whose transpose is ``conv_transpose1d``.

    `input_length` is ``L_z``, the length fed to the transposed convolution. It
    returns the forward geometry on ``L' = (L_z-1)s - p_l - p_r + d(K-1) + q + 1``
    samples with ``output_length = L_z`` rows, so the transposed convolution's
    matrix is this geometry's matrix transposed.
    """
    L_z = check_int(input_length, "input_length", minimum=1)
    K = check_int(kernel_size, "kernel_size", minimum=1)
    s = check_int(stride, "stride", minimum=1)
    d = check_int(dilation, "dilation", minimum=1)
    if isinstance(padding, str):
        raise TypeError(
            f"`padding` of a transposed convolution must be an int or a (left, right) "
            f"pair (torch has no string padding there); got {padding!r}"
        )
    p_l, p_r = resolve_padding(padding, kernel_size=K, stride=s, dilation=d)
    q = check_int(output_padding, "output_padding", minimum=0)
    if q >= max(s, d):
        raise ValueError(
            f"`output_padding` must be smaller than max(stride, dilation) = {max(s, d)} "
            f"(torch's rule); got output_padding={q} with stride={s}, dilation={d}"
        )
    L = (L_z - 1) * s - p_l - p_r + d * (K - 1) + q + 1
    if L < 1:
        raise ValueError(
            f"the transposed convolution's output would be empty: "
            f"(L_in - 1)*s - p_l - p_r + d*(K-1) + output_padding + 1 = {L} < 1 for "
            f"input_length={L_z}, kernel_size={K}, stride={s}, padding=({p_l}, {p_r}), "
            f"dilation={d}, output_padding={q}"
        )
    return ConvGeometry(L, K, s, d, p_l, p_r, "zeros", L_z)
