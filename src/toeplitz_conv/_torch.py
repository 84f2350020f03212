"""PyTorch, imported lazily: the one place that imports it and names its conv classes."""

from __future__ import annotations

from typing import Any

__all__ = ["conv_classes", "import_torch"]


def import_torch(what: str) -> Any:
    """The ``torch`` module, or a ``ModuleNotFoundError`` saying that `what` needs it."""
    try:
        import torch
    except ImportError as exc:
        raise ModuleNotFoundError(
            f"{what} needs PyTorch, which is not installed ({exc}); "
            "install it with `pip install toeplitz_conv[torch]` (or see pytorch.org for "
            "a CPU-only build)",
            name="torch",
        ) from None
    return torch


def conv_classes(torch: Any) -> tuple[tuple[type, ...], tuple[type, ...]]:
    """``(convs, transposes)``: torch's ``ConvNd`` and ``ConvTransposeNd`` module classes."""
    nn = torch.nn
    convs = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
    return convs, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
