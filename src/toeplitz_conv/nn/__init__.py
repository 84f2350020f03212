"""Whole networks: a certified Lipschitz bracket, and spectral normalisation by the true norm.

Needs PyTorch (``pip install toeplitz_conv[torch]``); ``import toeplitz_conv`` does not
import this subpackage, and this subpackage imports torch only when one of its
functions is used.

* :func:`lipschitz_bound`: ``lower <= Lip(model) <= upper`` for a torch model at one
  input shape, with a per-block table; adjacent linear operations are merged first.
* :func:`spectral_norm`: a ``torch.nn.utils.parametrize`` parametrization dividing a conv
  layer's weight by the layer's true operator norm at its input size.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names __getattr__ imports on first use
    from ._lipschitz import LayerRow, LipschitzBound, lipschitz_bound
    from ._spectral_norm import spectral_norm

__all__ = ["LayerRow", "LipschitzBound", "lipschitz_bound", "spectral_norm"]

_WHERE = {
    "LayerRow": "._lipschitz",
    "LipschitzBound": "._lipschitz",
    "lipschitz_bound": "._lipschitz",
    "spectral_norm": "._spectral_norm",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'toeplitz_conv.nn' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_WHERE[name], __name__), name)


def __dir__() -> list[str]:
    return sorted(__all__)
