"""Checking and converting the array arguments: weights, inputs, biases, dtypes."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ._geometry import check_int
from ._typing import DTypeLike

__all__ = [
    "as_array",
    "as_weight",
    "check_groups",
    "check_memory",
    "compute_dtype",
    "matrix_dtype",
    "spatial_dims",
]


def _tensor_to_numpy(tensor: Any, name: str) -> np.ndarray:
    """A torch tensor's values as an ndarray (detached, on the CPU, conj/neg bits resolved).

    dtypes numpy lacks are widened exactly: bfloat16 and the float8 types to
    float32, complex32 to complex64. A tensor without values (on the ``meta``
    device), a sparse or a quantized one is refused naming `name`.
    """
    import torch  # already imported: `tensor` is one of its tensors

    if tensor.device.type == "meta":
        raise ValueError(
            f"`{name}` is on torch's 'meta' device, which holds no values; "
            "create it on a real device (e.g. the CPU) first"
        )
    if tensor.layout != torch.strided:
        raise TypeError(
            f"`{name}` must be a dense (strided) tensor; got layout {tensor.layout} "
            "(call .to_dense() first)"
        )
    if tensor.is_quantized:
        raise TypeError(
            f"`{name}` is a quantized tensor ({tensor.dtype}); call .dequantize() first"
        )
    tensor = tensor.detach()
    if tensor.dtype == torch.complex32:
        tensor = tensor.to(torch.complex64)
    elif tensor.is_floating_point() and tensor.dtype not in (
        torch.float16,
        torch.float32,
        torch.float64,
    ):
        tensor = tensor.to(torch.float32)  # bfloat16, float8_*: exact in float32
    try:
        return tensor.cpu().resolve_conj().resolve_neg().numpy()
    except (TypeError, RuntimeError) as exc:
        raise TypeError(
            f"`{name}` is a torch tensor of dtype {tensor.dtype} that numpy cannot hold: {exc}"
        ) from None


def as_array(value: object, name: str) -> np.ndarray:
    """Return `value` as an ndarray; torch tensors are detached and copied to the CPU.

    Torch is not imported unless `value` is one of its tensors (recognised by its
    module and ``detach`` method).
    """
    if type(value).__module__.startswith("torch") and hasattr(value, "detach"):
        value = _tensor_to_numpy(value, name)
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"`{name}` must be array-like; got {type(value).__name__}: {exc}") from None
    if array.dtype.kind not in "biufc":
        raise TypeError(
            f"`{name}` must hold numbers (bool, int, float or complex); got dtype {array.dtype}"
        )
    return array


def _weight_shape_text(n: int | None) -> str:
    if n == 1:
        return "(C_out, C_in/groups, K) or (K,)"
    if n in (2, 3):
        axes = ", ".join(f"K_{a + 1}" for a in range(n))
        return f"(C_out, C_in/groups, {axes}) or ({axes})"
    return "(C_out, C_in/groups, K_1, ..., K_n) with n = 1, 2 or 3 spatial axes, or (K_1, ..., K_n)"


def spatial_dims(weight_ndim: int, input_size: object, ndim: int | None) -> tuple[int, bool]:
    """How many spatial axes a `weight_ndim`-dimensional weight has, and if it is the kernel alone.

    `ndim` fixes the count (``conv2d_*`` pass 2); otherwise a tuple `input_size`
    gives it, or else the weight does (``(C_out, G, *K)``; a 1-D weight is one
    channel's 1-D kernel). Returns ``(n, kernel_only)``; raises if they disagree.
    """
    from_size = ""
    if ndim is None and isinstance(input_size, (tuple, list)) and 1 <= len(input_size) <= 3:
        ndim = len(input_size)
        from_size = f" for the {ndim} spatial axes of `input_size`={tuple(input_size)!r}"
    if ndim is not None:
        if weight_ndim == ndim + 2:
            return ndim, False
        if weight_ndim == ndim:
            return ndim, True
    elif weight_ndim == 1:
        return 1, True
    elif 3 <= weight_ndim <= 5:
        return weight_ndim - 2, False
    elif weight_ndim == 2:
        raise ValueError(
            "with an int `input_size`, `weight` must be a full (C_out, C_in/groups, K_1, "
            "..., K_n) weight (or a 1-D kernel (K,)): a 2-D kernel alone, (K_1, K_2), needs "
            "`input_size` as a tuple, e.g. (H, W), or the conv2d_* functions; got 2 dimensions"
        )
    raise ValueError(
        f"`weight` must have shape {_weight_shape_text(ndim)}{from_size}; "
        f"got {weight_ndim} dimensions"
    )


def as_weight(weight: object, input_size: object = None, ndim: int | None = 1) -> np.ndarray:
    """Return the weight as ``(C_out, C_in/groups, K_1, ..., K_n)``.

    A weight with only the kernel axes (``(K,)`` for 1-D) is one channel in and
    out; see :func:`spatial_dims` for how ``n`` is chosen.
    """
    w = as_array(weight, "weight")
    try:
        _, kernel_only = spatial_dims(w.ndim, input_size, ndim)
    except ValueError as exc:
        raise ValueError(f"{exc} with shape {w.shape}") from None
    if kernel_only:
        w = w.reshape(1, 1, *w.shape)
    if w.size == 0:
        raise ValueError(f"`weight` must not be empty; got shape {w.shape}")
    return w


def check_groups(weight_shape: tuple[int, ...], groups: object) -> tuple[int, int]:
    """Validate `groups` against a ``(C_out, C_in/groups, *K)`` weight.

    Returns ``(groups, C_in)``.
    """
    groups = check_int(groups, "groups", minimum=1)
    c_out, c_in_per_group = weight_shape[:2]
    if c_out % groups:
        raise ValueError(
            f"`groups`={groups} must divide the output channels C_out={c_out} "
            f"(weight shape {tuple(weight_shape)})"
        )
    return groups, c_in_per_group * groups


_MATRIX_DTYPES = tuple(map(np.dtype, (np.float32, np.float64, np.complex64, np.complex128)))


def matrix_dtype(weight_dtype: np.dtype, dtype: DTypeLike | None = None) -> np.dtype:
    """The dtype of the matrix: `dtype` if given, else the weight's.

    float32/float64/complex64/complex128 are kept; integers and booleans become
    float64 and float16 becomes float32 (scipy.sparse has no float16). A complex
    weight cannot be given a real `dtype` (that would drop its imaginary part).
    """
    if dtype is not None:
        try:
            chosen = np.dtype(dtype)
        except TypeError:
            raise TypeError(f"`dtype` must be a numpy dtype; got {dtype!r}") from None
        if chosen not in _MATRIX_DTYPES:
            allowed = ", ".join(str(d) for d in _MATRIX_DTYPES)
            raise TypeError(f"`dtype` must be one of {allowed}; got {chosen}")
        if weight_dtype.kind == "c" and chosen.kind != "c":
            raise ValueError(
                f"`dtype`={chosen} is real but the weight is complex ({weight_dtype}); "
                "a real matrix would drop its imaginary part: pass complex64 or complex128 "
                "(or the weight's real part)"
            )
        return chosen
    if weight_dtype in _MATRIX_DTYPES:
        return weight_dtype
    if weight_dtype.kind == "c":
        return np.dtype(np.complex128)
    if weight_dtype == np.float16:
        return np.dtype(np.float32)
    return np.dtype(np.float64)  # bool, integers, longdouble


def compute_dtype(*dtypes: np.dtype) -> np.dtype:
    """The dtype to compute a forward pass in: numpy's promotion, integers as float64."""
    dtype = np.result_type(*dtypes)
    return np.dtype(np.float64) if dtype.kind in "biu" else dtype


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 16 * 2**30


def check_memory(
    nbytes: int,
    what: str,
    hint: str,
) -> None:
    """Refuse, before allocating, a result larger than this machine's memory.

    `hint` is the remedy that fits the request (every caller says its own: a sparse
    request must not be told to use a sparse format).
    """
    limit = _physical_memory()
    if nbytes > limit:
        raise ValueError(
            f"{what} would take {nbytes / 2**30:,.1f} GiB, more than this machine's "
            f"{limit / 2**30:,.1f} GiB of memory; {hint}"
        )
