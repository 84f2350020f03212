r"""Spectral normalisation of a conv layer by its true operator norm at one input size.

``torch.nn.utils.parametrizations.spectral_norm`` divides a conv weight by the norm of
the weight reshaped to ``(C_out, C_in k)``: not the layer's norm, which can be larger
(pytorch issue 99149: a "normalised" ``Conv2d(20, 20, 7, padding=3)`` on 12x12 has norm
1.66). Here the divisor is the norm of the layer itself, the linear map
``x -> conv(x, W)`` on inputs of the given size:

* training: power iteration with persistent vectors ``u``, ``v`` on the exact map (the
  padding mode applied by ``F.pad`` then the conv, as ``nn.Conv2d`` does) and its exact
  adjoint (torch autograd of that map with respect to its input: right for every
  stride, padding mode and output padding, where ``conv_transpose`` is not); the
  divisor is ``sigma = <u, A(W) v>``, differentiable in ``W`` (its gradient is
  ``u v^T`` unrolled, the derivative of a simple top singular value);
* eval: the upper end of :func:`toeplitz_conv.spectral_norm_bounds` (certified),
  computed once per weight value and cached, so the evaluated layer has norm at most
  1 (up to the float rounding of ``W / upper``).
"""

from __future__ import annotations

import math
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from .._layer import input_size_tuple
from .._torch import conv_classes, import_torch
from ..spectral._method import check_rtol
from ._pieces import Context, ConvPiece, conv_params

if TYPE_CHECKING:
    from .._typing import TorchConv

    _Conv = TypeVar("_Conv", bound=TorchConv)

__all__ = ["spectral_norm"]


def spectral_norm(
    module: _Conv,
    input_size: int | tuple[int, ...],
    *,
    name: str = "weight",
    n_power_iterations: int = 1,
    eps: float = 1e-12,
    rtol: float = 1e-3,
    seed: int = 0,
) -> _Conv:
    r"""Divide a conv layer's weight by the layer's true spectral norm at `input_size`.

    Parameters
    ----------
    module : torch.nn.Conv1d/2d/3d or ConvTranspose1d/2d/3d
        Any padding, padding mode, stride, dilation, groups (output padding).
    input_size : int or tuple of n ints
        The spatial size of the layer's input ``(S_1, ..., S_n)`` (an int: every axis).
    name : str, optional
        The parameter to normalise.
    n_power_iterations : int, optional
        Power iterations per training forward pass (15 more at registration).
    eps : float, optional
        Guards the normalisation of ``u`` and ``v``.
    rtol : float, optional
        Relative width of the certified bracket used in eval mode.
    seed : int, optional
        Seeds the initial ``v``.

    Returns
    -------
    module
        The same module, with a ``torch.nn.utils.parametrize`` parametrization on
        `name`: ``module.weight`` is ``W / sigma`` (training) or ``W / upper`` (eval).

    Raises
    ------
    TypeError
        For a module that is not a conv or transposed conv.
    ValueError
        For an `input_size` the layer does not accept, or bad settings.

    Notes
    -----
    In training, ``sigma <= ||A||`` (a Rayleigh quotient), so ``W / sigma`` may have
    norm slightly above 1 until the iteration has converged; it converges over the
    training steps as torch's does. In eval the certified upper end
    ``||A|| <= upper`` makes the layer at most 1-Lipschitz.

    References
    ----------
    .. [1] T. Miyato et al., "Spectral Normalization for Generative Adversarial
       Networks", ICLR 2018.
    .. [2] H. Gouk et al., "Regularisation of neural networks by enforcing Lipschitz
       continuity", Machine Learning 2021 (power iteration on the conv operator).

    Examples
    --------
    >>> import pytest; torch = pytest.importorskip("torch")
    >>> import numpy as np, toeplitz_conv as tc
    >>> from toeplitz_conv.nn import spectral_norm
    >>> conv = spectral_norm(torch.nn.Conv2d(4, 4, 3, padding=1), (8, 8)).eval()
    >>> M, _ = tc.from_torch(conv, (8, 8), format="dense", dtype="float64")
    >>> print(f"{np.linalg.norm(M, 2):.3f}")    # the layer's true norm, at most 1
    1.000
    """
    torch = import_torch("spectral_norm")
    convs, transposes = conv_classes(torch)
    if not isinstance(module, convs + transposes):
        raise TypeError(
            "`module` must be a torch.nn.Conv1d/2d/3d or ConvTranspose1d/2d/3d; got "
            f"{type(module).__name__}"
        )
    if (
        isinstance(n_power_iterations, bool)
        or not isinstance(n_power_iterations, int)
        or (n_power_iterations < 0)
    ):
        raise ValueError(f"`n_power_iterations` must be an int >= 0; got {n_power_iterations!r}")
    if not (isinstance(eps, (int, float)) and eps > 0):
        raise ValueError(f"`eps` must be a float > 0; got {eps!r}")
    rtol = check_rtol(rtol)
    weight = getattr(module, name, None)
    if not isinstance(weight, torch.Tensor) or weight.ndim != module.weight.ndim:
        raise ValueError(f"`name`={name!r} is not the module's weight")
    size = input_size_tuple(input_size, weight.ndim - 2)
    param = _parametrization(torch)(module, weight, size, n_power_iterations, eps, rtol, seed)
    torch.nn.utils.parametrize.register_parametrization(module, name, param)
    return module


@cache
def _parametrization(torch: Any) -> type:
    F = torch.nn.functional

    class _TrueSpectralNorm(torch.nn.Module):
        def __init__(
            self,
            module: Any,
            weight: Any,
            size: tuple[int, ...],
            n_power_iterations: int,
            eps: float,
            rtol: float,
            seed: int,
        ) -> None:
            super().__init__()
            self.params, self.transposed, self.kind = conv_params(module)
            n = weight.ndim - 2
            self.ndim, self.size = n, size
            self.n_power_iterations, self.eps, self.rtol = n_power_iterations, eps, rtol
            self.pad = getattr(module, "_reversed_padding_repeated_twice", None)
            in_channels = weight.shape[0] if self.transposed else module.in_channels
            self.in_shape = (in_channels, *size)
            w = weight.detach()
            # validate the size (a clear error for an empty output) before any torch call
            _ = ConvPiece(
                "",
                self.kind,
                self.in_shape,
                (),
                weight=np.zeros(tuple(w.shape)),
                params=self.params,
                transposed=self.transposed,
            ).layer
            gen = torch.Generator().manual_seed(seed)
            v = torch.randn(1, *self.in_shape, generator=gen, dtype=w.dtype)
            with torch.no_grad():
                u = self._layer_map(w, v)
            self.register_buffer("_u", F.normalize(u.flatten(), dim=0, eps=eps).view_as(u))
            self.register_buffer("_v", F.normalize(v.flatten(), dim=0, eps=eps).view_as(v))
            self._seen: Any = None  # the weight the certified upper end is of
            self._upper: float = math.nan
            with torch.no_grad():
                for _ in range(15):
                    self._power_step(w)

        def _layer_map(self, weight: Any, x: Any) -> Any:
            # (not `_apply`: that is nn.Module's, which .to(), .double() and .cuda() call)
            p = self.params
            n = self.ndim
            if self.transposed:
                fn = getattr(F, f"conv_transpose{n}d")
                return fn(
                    x,
                    weight,
                    None,
                    p["stride"],
                    p["padding"],
                    p["output_padding"],
                    p["groups"],
                    p["dilation"],
                )
            fn = getattr(F, f"conv{n}d")
            if p["padding_mode"] != "zeros":
                x = F.pad(x, self.pad, mode=p["padding_mode"])
                return fn(x, weight, None, p["stride"], 0, p["dilation"], p["groups"])
            return fn(x, weight, None, p["stride"], p["padding"], p["dilation"], p["groups"])

        def _power_step(self, w: Any) -> None:
            with torch.enable_grad():
                x = self._v.detach().clone().requires_grad_(True)
                y = self._layer_map(w, x)
                u = F.normalize(y.detach().flatten(), dim=0, eps=self.eps).view_as(y)
                (g,) = torch.autograd.grad(y, x, u)  # A^T u, the exact adjoint
            self._u.copy_(u)
            self._v.copy_(F.normalize(g.flatten(), dim=0, eps=self.eps).view_as(g))

        def certified_upper(self, weight: Any) -> float:
            """The certified upper end of the layer's norm for this weight (made again when
            its values change)."""
            seen = self._seen
            if (  # by value: writes through .data do not bump the version counter
                seen is None
                or (seen.shape, seen.dtype, seen.device)
                != (weight.shape, weight.dtype, weight.device)
                or not torch.equal(seen, weight.detach())
            ):
                w = weight.detach().double().cpu().numpy()
                piece = ConvPiece(
                    "",
                    self.kind,
                    self.in_shape,
                    (),
                    weight=w,
                    params=self.params,
                    transposed=self.transposed,
                )
                ctx = Context(rtol=self.rtol, maxiter=100, deadline=None)
                self._upper = piece.bracket(ctx).upper
                self._seen = weight.detach().clone()
            return self._upper

        def forward(self, weight: Any) -> Any:
            if not self.training:
                return weight / self.certified_upper(weight)
            with torch.no_grad():
                w = weight.detach()
                for _ in range(self.n_power_iterations):
                    self._power_step(w)
            u = self._u.clone(memory_format=torch.contiguous_format)
            v = self._v.clone(memory_format=torch.contiguous_format)
            sigma = torch.sum(u * self._layer_map(weight, v))
            return weight / sigma

    return _TrueSpectralNorm
