"""The index math of a convolution, one spatial axis at a time: one source of truth, pure integers.

An N-d layer is one :class:`ConvGeometry` per spatial axis (padding is
separable, exactly as torch's ``F.pad`` does it); the parsers at the bottom
turn torch-style per-axis parameters into that tuple, naming the axis in
every error. Everything the builders and the forward passes need to know about *where* a
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

# No size, stride, dilation or padding of a real layer comes near this; bounding them keeps
# every index (positions, flattened sizes) inside int64.
MAX_INT = 2**48

PaddingMode = Literal["zeros", "reflect", "replicate", "circular"]
PADDING_MODES: tuple[str, ...] = ("zeros", "reflect", "replicate", "circular")
Padding = int | tuple[int, int] | str
# N-d padding: one of the above for all axes, or a tuple of per-axis ints / (left, right) pairs
PaddingND = Padding | tuple[int | tuple[int, int], ...]

__all__ = [
    "MAX_INT",
    "ConvGeometry",
    "axis_name",
    "check_choice",
    "check_int",
    "conv_geometries",
    "conv_geometry",
    "per_axis",
    "per_axis_padding",
    "polyphase_taps",
    "resolve_padding",
    "transpose_geometries",
    "transpose_geometry",
    "transposed_length",
]


def check_int(value: object, name: str, *, minimum: int, maximum: int = MAX_INT) -> int:
    """Return `value` as a Python int, or raise naming `name`.

    Booleans are refused (``True`` is not a stride); numpy integers are fine.
    Values above `maximum` (default :data:`MAX_INT`) are refused too, so that
    every index computed from them fits in 64 bits.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"`{name}` must be an integer >= {minimum}, got {value!r} "
            f"of type {type(value).__name__}"
        )
    value = int(value)
    if value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value}")
    if value > maximum:
        raise ValueError(
            f"`{name}` must be an integer <= {maximum:,} (indices must fit in 64 bits), "
            f"got {value:,}"
        )
    return value


def check_choice(value: object, name: str, allowed: tuple[str, ...]) -> str:
    """Return `value` if it is one of `allowed`, else raise naming `name`."""
    if not isinstance(value, str) or value not in allowed:
        choices = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"`{name}` must be one of {choices}; got {value!r}")
    return value


def axis_name(name: str, axis: int | None) -> str:
    """``name`` for a 1-D parameter, ``name[axis]`` for one axis of an N-d one."""
    return name if axis is None else f"{name}[{axis}]"


def per_axis(value: object, name: str, n: int, *, minimum: int) -> tuple[int, ...]:
    """An int for every spatial axis: an int applies to all `n` axes, a tuple gives one each.

    torch's 1-tuples are accepted for 1-D (``stride=(2,)``). Errors name the axis
    (``stride[1]``) for N-d layers.
    """
    if isinstance(value, (tuple, list)):
        if len(value) != n:
            what = "an int or a 1-tuple" if n == 1 else f"an int or a tuple of {n} ints"
            raise ValueError(
                f"`{name}` must be {what} (one per spatial axis); "
                f"got a sequence of length {len(value)}: {tuple(value)!r}"
            )
        return tuple(
            check_int(v, axis_name(name, a if n > 1 else None), minimum=minimum)
            for a, v in enumerate(value)
        )
    v = check_int(value, name, minimum=minimum)
    return (v,) * n


def per_axis_padding(padding: object, n: int) -> tuple[Padding, ...]:
    """Split torch-style `padding` into one item per spatial axis (see :func:`resolve_padding`).

    ``'same'``/``'valid'`` and an int apply to every axis. For 1-D the item is
    the whole argument (``p``, ``(p_l, p_r)`` or ``(p,)``); for N-d a tuple
    must have one item per axis, each an int or a ``(left, right)`` pair.
    """
    if isinstance(padding, str) or n == 1:
        if (
            n == 1
            and isinstance(padding, (tuple, list))
            and len(padding) == 1
            and isinstance(padding[0], (tuple, list))
        ):
            padding = padding[0]  # ((p_l, p_r),): one pair per axis, for the one axis
        return (padding,) * n  # type: ignore[return-value]
    if isinstance(padding, (tuple, list)):
        if len(padding) != n:
            raise ValueError(
                f"`padding` must be an int, 'same', 'valid' or a tuple of {n} items (one per "
                "spatial axis, each an int or a (left, right) pair); "
                f"got a sequence of length {len(padding)}: {tuple(padding)!r}"
            )
        return tuple(padding)
    if isinstance(padding, bool) or not isinstance(padding, numbers.Integral):
        raise TypeError(
            f"`padding` must be an int, a tuple of {n} per-axis ints or (left, right) pairs, "
            f"'same' or 'valid'; got {padding!r} of type {type(padding).__name__}"
        )
    return (check_int(padding, "padding", minimum=0),) * n


def resolve_padding(
    padding: Padding, *, kernel_size: int, stride: int, dilation: int, axis: int | None = None
) -> tuple[int, int]:
    """Turn torch-style `padding` of one axis into ``(p_l, p_r)``.

    ``p`` means ``(p, p)``; a pair is ``(p_l, p_r)``; ``"valid"`` is ``(0, 0)``;
    ``"same"`` (stride 1 only) pads ``t = d*(K-1)`` in total with
    ``p_l = t // 2`` and the odd one on the right, as torch does. `axis` names
    the axis of an N-d layer in error messages.
    """
    name = axis_name("padding", axis)
    if isinstance(padding, str):
        check_choice(padding, "padding", ("same", "valid"))
        if padding == "valid":
            return 0, 0
        if stride != 1:
            raise ValueError(
                f"`padding`='same' requires `{axis_name('stride', axis)}`=1 (as in torch), "
                f"got stride={stride}"
            )
        total = dilation * (kernel_size - 1)
        return total // 2, total - total // 2
    if isinstance(padding, (tuple, list)):
        if len(padding) == 1:  # torch accepts a 1-tuple for 1-D
            padding = (padding[0], padding[0])
        if len(padding) != 2:
            raise ValueError(
                f"`{name}` must be an int, a (left, right) pair, 'same' or 'valid'; "
                f"got a sequence of length {len(padding)}: {padding!r}"
            )
        return (
            check_int(padding[0], f"{name}[0]", minimum=0),
            check_int(padding[1], f"{name}[1]", minimum=0),
        )
    if isinstance(padding, bool) or not isinstance(padding, numbers.Integral):
        raise TypeError(
            f"`{name}` must be an int, a (left, right) pair, 'same' or 'valid'; "
            f"got {padding!r} of type {type(padding).__name__}"
        )
    p = check_int(padding, name, minimum=0)
    return p, p


def transposed_length(
    L_z: int, K: int, s: int, d: int, p_l: int = 0, p_r: int = 0, q: int = 0
) -> int:
    """The length a transposed convolution returns (may be < 1; the caller refuses that).

    .. math:: L' = (L_z - 1) s - p_l - p_r + d (K - 1) + q + 1,

    ``L_z`` the length fed to it, ``K``, ``s``, ``d``, ``(p_l, p_r)`` its kernel
    size, stride, dilation and padding, ``q`` its ``output_padding``. It is also
    the least input with ``L_z`` outputs of the forward convolution; without
    padding, the padded positions a forward pass with ``L_z`` outputs reads.

    Examples
    --------
    >>> transposed_length(5, 3, 2, 1, 1, 1, 1)
    10
    """
    return (L_z - 1) * s - p_l - p_r + d * (K - 1) + q + 1


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
    def output_padding(self) -> int:
        """``q``: what ``L`` has beyond the least input with ``L_out`` outputs.

        ``L - transposed_length(L_out, K, s, d, p_l, p_r)`` (:func:`transposed_length`);
        for a :func:`transpose_geometry`, the `output_padding` it was given.
        """
        return self.input_length - transposed_length(
            self.output_length,
            self.kernel_size,
            self.stride,
            self.dilation,
            self.pad_left,
            self.pad_right,
        )

    @property
    def pads_zeros(self) -> bool:
        """True when every padding cell is zero (zero padding, or none): nothing folds back."""
        return self.padding_mode == "zeros" or self.pad_left == self.pad_right == 0

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

    def resized(self, input_length: int, padding: tuple[int, int] | None = None) -> ConvGeometry:
        """The same taps, stride, dilation and padding mode on `input_length` samples, with
        `padding` (``(p_l, p_r)``; this geometry's by default), validated like any other."""
        return conv_geometry(
            input_length,
            self.kernel_size,
            stride=self.stride,
            padding=(self.pad_left, self.pad_right) if padding is None else padding,
            dilation=self.dilation,
            padding_mode=self.padding_mode,
        )


def polyphase_taps(
    geoms: tuple[ConvGeometry, ...], *, padded: bool
) -> tuple[np.ndarray, np.ndarray]:
    r"""The polyphase split of the strided axes, tap by tap.

    With stride ``s_a`` the positions an axis reads split into ``s_a`` phases
    ``r_a = j_a mod s_a``; tap ``k`` (row-major over ``(K_1, ..., K_n)``) reads
    phase ``r_a`` at offset ``q_a`` on every axis,

    .. math:: k_a d_a - o_a = q_a s_a + r_a, \qquad 0 \le r_a < s_a,

    with ``o_a = 0`` for positions in the padded signal (`padded`) and
    ``o_a = p_{l,a}`` for positions in the signal itself.

    Parameters
    ----------
    geoms : tuple of ConvGeometry
        One per spatial axis.
    padded : bool
        Whether positions count from the start of the padded signal.

    Returns
    -------
    q : ndarray of int64, shape (prod(K), n)
        The offsets ``q_a`` of every tap.
    phase : ndarray of int, shape (prod(K),)
        The flat phase ``(r_1, ..., r_n)`` row-major over ``(s_1, ..., s_n)``.

    Examples
    --------
    >>> g = conv_geometry(9, 3, stride=2, padding=1)
    >>> q, phase = polyphase_taps((g,), padded=True)
    >>> q[:, 0].tolist(), phase.tolist()
    ([0, 0, 1], [0, 1, 0])
    """
    kernel_size = tuple(g.kernel_size for g in geoms)
    taps = np.indices(kernel_size).reshape(len(geoms), -1).T  # (prod K, n), row-major
    dil = np.array([g.dilation for g in geoms])
    left = np.array([0 if padded else g.pad_left for g in geoms])
    s = np.array([g.stride for g in geoms])
    q, r = np.divmod(taps * dil - left, s)
    if not r.size:
        return q, np.zeros(0, dtype=np.int64)
    return q, np.ravel_multi_index(tuple(r.T), tuple(int(v) for v in s))


def _on_axis(axis: int | None) -> str:
    return "" if axis is None else f" on axis {axis}"


def _padding_limits(mode: str, L: int, p_l: int, p_r: int, axis: int | None) -> None:
    length = "input_length" if axis is None else f"input_size[{axis}]"
    if mode == "reflect" and max(p_l, p_r) >= L:
        raise ValueError(
            f"`padding_mode`='reflect' needs padding < input_length on each side "
            f"(as in torch); got padding=({p_l}, {p_r}) with {length}={L}{_on_axis(axis)}"
        )
    if mode == "circular" and max(p_l, p_r) > L:
        raise ValueError(
            f"`padding_mode`='circular' needs padding <= input_length on each side "
            f"(as in torch); got padding=({p_l}, {p_r}) with {length}={L}{_on_axis(axis)}"
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
    axis: int | None = None,
) -> ConvGeometry:
    """Validate torch ``conv1d`` parameters (of one axis) and return their :class:`ConvGeometry`.

    `axis` names the axis of an N-d layer in error messages (``stride[1]``).

    Raises
    ------
    TypeError, ValueError
        Naming the argument, the value received and what is allowed.
    """
    length_name = "input_length" if axis is None else f"input_size[{axis}]"
    L = check_int(input_length, length_name, minimum=1)
    K = check_int(kernel_size, axis_name("kernel_size", axis), minimum=1)
    s = check_int(stride, axis_name("stride", axis), minimum=1)
    d = check_int(dilation, axis_name("dilation", axis), minimum=1)
    mode = check_choice(padding_mode, "padding_mode", PADDING_MODES)
    p_l, p_r = resolve_padding(padding, kernel_size=K, stride=s, dilation=d, axis=axis)
    _padding_limits(mode, L, p_l, p_r, axis)
    L_out = _natural_output_length(L, K, s, d, p_l, p_r)
    if L_out < 1:
        raise ValueError(
            f"the output would be empty{_on_axis(axis)}: output length = "
            f"floor((L + p_l + p_r - d*(K-1) - 1) / s) + 1 = {L_out} < 1 for input_length={L}, "
            f"kernel_size={K}, padding=({p_l}, {p_r}), dilation={d}, stride={s}; "
            "use a longer input, more padding or a smaller kernel/dilation"
        )
    return ConvGeometry(L, K, s, d, p_l, p_r, mode, L_out)


def _axes(n: int, stride: object, padding: object, dilation: object) -> list[tuple]:
    """``(axis, stride, padding, dilation)`` per axis, checked; `axis` is ``None`` in 1-D
    (error messages then name the plain argument)."""
    strides = per_axis(stride, "stride", n, minimum=1)
    dilations = per_axis(dilation, "dilation", n, minimum=1)
    paddings = per_axis_padding(padding, n)
    names = range(n) if n > 1 else [None]
    return list(zip(names, strides, paddings, dilations, strict=True))


def conv_geometries(
    input_size: tuple[int, ...],
    kernel_size: tuple[int, ...],
    *,
    stride: object = 1,
    padding: object = 0,
    dilation: object = 1,
    padding_mode: str = "zeros",
) -> tuple[ConvGeometry, ...]:
    """One :class:`ConvGeometry` per spatial axis, from torch-style (per-axis) parameters.

    `input_size` and `kernel_size` are tuples of ``n`` ints (already checked);
    `stride`, `dilation` are an int or an n-tuple; `padding` as in
    :func:`per_axis_padding`. Errors name the axis when ``n > 1``.
    """
    axes = _axes(len(input_size), stride, padding, dilation)
    return tuple(
        conv_geometry(L, K, stride=s, padding=p, dilation=d, padding_mode=padding_mode, axis=a)
        for L, K, (a, s, p, d) in zip(input_size, kernel_size, axes, strict=True)
    )


def transpose_geometry(
    input_length: int,
    kernel_size: int,
    *,
    stride: int = 1,
    padding: int | tuple[int, int] = 0,
    output_padding: int = 0,
    dilation: int = 1,
    axis: int | None = None,
) -> ConvGeometry:
    """Geometry of the conv1d whose transpose is ``conv_transpose1d`` (along one axis).

    `input_length` is ``L_z``, the length fed to the transposed convolution. It
    returns the forward geometry on ``L' = (L_z-1)s - p_l - p_r + d(K-1) + q + 1``
    samples with ``output_length = L_z`` rows, so the transposed convolution's
    matrix is this geometry's matrix transposed.
    """
    L_z = check_int(
        input_length, "input_length" if axis is None else f"input_size[{axis}]", minimum=1
    )
    K = check_int(kernel_size, axis_name("kernel_size", axis), minimum=1)
    s = check_int(stride, axis_name("stride", axis), minimum=1)
    d = check_int(dilation, axis_name("dilation", axis), minimum=1)
    if isinstance(padding, str):  # also what a string `padding` of transpose_geometries becomes
        raise TypeError(
            "`padding` of a transposed convolution must be an int, a (left, right) pair or "
            f"one of those per axis (torch has no string padding there); got {padding!r}"
        )
    p_l, p_r = resolve_padding(padding, kernel_size=K, stride=s, dilation=d, axis=axis)
    q = check_int(output_padding, axis_name("output_padding", axis), minimum=0)
    if q >= max(s, d):
        raise ValueError(
            f"`{axis_name('output_padding', axis)}` must be smaller than max(stride, dilation) "
            f"= {max(s, d)} (torch's rule); got output_padding={q} with stride={s}, "
            f"dilation={d}{_on_axis(axis)}"
        )
    L = transposed_length(L_z, K, s, d, p_l, p_r, q)
    if L < 1:
        raise ValueError(
            f"the transposed convolution's output would be empty{_on_axis(axis)}: "
            f"(L_in - 1)*s - p_l - p_r + d*(K-1) + output_padding + 1 = {L} < 1 for "
            f"input_length={L_z}, kernel_size={K}, stride={s}, padding=({p_l}, {p_r}), "
            f"dilation={d}, output_padding={q}"
        )
    return ConvGeometry(L, K, s, d, p_l, p_r, "zeros", L_z)


def transpose_geometries(
    input_size: tuple[int, ...],
    kernel_size: tuple[int, ...],
    *,
    stride: object = 1,
    padding: object = 0,
    output_padding: object = 0,
    dilation: object = 1,
) -> tuple[ConvGeometry, ...]:
    """One :func:`transpose_geometry` per spatial axis, from torch-style parameters."""
    n = len(input_size)
    output_paddings = per_axis(output_padding, "output_padding", n, minimum=0)
    axes = _axes(n, stride, padding, dilation)
    return tuple(
        transpose_geometry(L, K, stride=s, padding=p, output_padding=q, dilation=d, axis=a)
        for L, K, q, (a, s, p, d) in zip(
            input_size, kernel_size, output_paddings, axes, strict=True
        )
    )
