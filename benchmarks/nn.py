"""Whole networks (issue 16): ResNet-18's Lipschitz bracket, and true-norm spectral normalisation.

Three measurements, side by side in one run:

1. ResNet-18 (torchvision's structure, ``tests/models.py``; random weights, random
   BatchNorm statistics, eval) at 3x224x224: :func:`toeplitz_conv.nn.lipschitz_bound`'s
   whole bracket and its time (target <= 60 s), per block.
2. Its upper end against the network bound composed (same rules: products, residual
   ``L(f) + L(skip)``, max pool 2, global average pool 1/7, ``||fc||``) from per-layer
   bounds with BatchNorm multiplied in as ``max |gamma / sigma|``, as their users do:
   Delattre et al. 2024 (Gram iteration), TensorNorm (Grishina et al. 2024), Singla &
   Feizi 2021 (``sqrt(h w)`` times the least reshaped-weight norm), and our own per-layer
   certified norms (unfolded). Its lower end against power iteration on the Jacobian
   (``--power-steps``, default 100) at random points.
3. A ``Conv2d(64, 64, 3, padding=1)`` training step (batch 32 at 32x32) spectrally
   normalised by :func:`toeplitz_conv.nn.spectral_norm` against
   ``torch.nn.utils.parametrizations.spectral_norm`` (target: within 2x), and each
   layer's true norm after the steps in eval mode (a certified bracket).

Run ``python benchmarks/nn.py`` (minutes) or ``--smoke`` (a small ResNet, seconds).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_HERE, "..", "src"))
sys.path.insert(0, os.path.join(_HERE, "..", "tests"))
sys.path.insert(0, _HERE)

import torch  # noqa: E402
from _harness import interleaved, machine, markdown_table  # noqa: E402
from spectral_nd import delattre2024, singla2021, tensor_norm  # noqa: E402

import toeplitz_conv as tc  # noqa: E402
from models import ResNet, randomize_batchnorm, resnet18  # noqa: E402
from toeplitz_conv.nn import lipschitz_bound, spectral_norm  # noqa: E402
from toeplitz_conv.nn._lipschitz import _network_lower  # noqa: E402


def bn_max(bn: torch.nn.BatchNorm2d) -> float:
    return float((bn.weight / torch.sqrt(bn.running_var + bn.eps)).abs().max().detach())


def composed(model: ResNet, size: int, conv_norm) -> float:
    """The ResNet's bound from per-layer bounds ``conv_norm(conv, input_side)`` x max|BN|."""
    side = size // 2
    bound = conv_norm(model.conv1, size) * bn_max(model.bn1) * 2  # max pool 3/2: sqrt(4)
    side = (side + 1) // 2
    for stage in (model.layer1, model.layer2, model.layer3, model.layer4):
        if not isinstance(stage, torch.nn.Sequential):
            continue
        for block in stage:
            f = conv_norm(block.conv1, side) * bn_max(block.bn1)
            side = (side - 1) // block.conv1.stride[0] + 1
            f *= conv_norm(block.conv2, side) * bn_max(block.bn2)
            skip = 1.0
            if block.downsample is not None:
                skip = conv_norm(block.downsample[0], side * block.conv1.stride[0]) * bn_max(
                    block.downsample[1]
                )
            bound *= f + skip
    W = model.fc.weight.detach().double().numpy()
    return bound / side * float(np.linalg.norm(W, 2))  # global average pool: 1/side


def weight_of(conv) -> np.ndarray:
    return conv.weight.detach().double().numpy()


def ours_per_layer(conv, side: int, rtol: float) -> float:
    return tc.spectral_norm_bounds(
        weight_of(conv),
        (side, side),
        stride=conv.stride,
        padding=conv.padding,
        rtol=rtol,
        time_limit=3,
    ).upper


def resnet_section(smoke: bool, power_steps: int, time_limit: float) -> None:
    torch.manual_seed(0)
    size = 32 if smoke else 224
    model = ResNet((1, 1), width=8, num_classes=10) if smoke else resnet18()
    model = randomize_batchnorm(model).eval()
    print(
        f"\n## ResNet-18{' (smoke: a small ResNet)' if smoke else ''}, 3x{size}x{size}, "
        "random weights, eval\n"
    )
    t0, c0 = time.perf_counter(), time.process_time()
    res = lipschitz_bound(model, (3, size, size), time_limit=time_limit)
    ours_time, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(
        f"lipschitz_bound: {res.lower:.4g} <= L <= {res.upper:.4g} in {ours_time:.1f} s "
        f"wall, {cpu:.1f} s CPU (time_limit={time_limit:g}; load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)\n"
    )
    rows = [
        (
            r.name,
            r.kind,
            "x".join(map(str, r.input_shape)),
            "" if r.lower is None else f"{r.lower:.4g}",
            "" if r.upper is None else f"{r.upper:.4g}",
            r.method,
        )
        for r in res.layers
    ]
    print(markdown_table(("block", "kind", "input", "lower", "upper", "method"), rows))

    peers = {
        "Delattre et al. 2024 (Gram iteration)": lambda c, s: delattre2024(weight_of(c))[0],
        "TensorNorm (Grishina et al. 2024)": lambda c, s: tensor_norm(weight_of(c)),
        "Singla & Feizi 2021 (reshapes x sqrt(hw))": lambda c, s: singla2021(weight_of(c)),
        "toeplitz_conv per layer, BN multiplied in": lambda c, s: ours_per_layer(c, s, 1e-3),
    }
    table = [("toeplitz_conv.nn.lipschitz_bound (BN folded)", res.upper, 1.0, ours_time)]
    for name, fn in peers.items():
        t0 = time.perf_counter()
        bound = composed(model, size, fn)
        table.append((name, bound, bound / res.upper, time.perf_counter() - t0))
    print("\n### Upper end: the network bound composed from per-layer bounds\n")
    print(markdown_table(("per-layer bound", "network upper", "/ ours", "time (s)"), table))

    t0 = time.perf_counter()
    lower, _ = _network_lower(torch, model, (3, size, size), power_steps, 2, None, 1)
    t_lower = time.perf_counter() - t0
    print("\n### Lower end\n")
    print(
        markdown_table(
            ("method", "lower", "time (s)"),
            [
                ("lipschitz_bound (within its time limit)", res.lower, ours_time),
                (
                    f"power iteration on J^T J, {power_steps} steps x 2 random points",
                    lower,
                    t_lower,
                ),
            ],
        )
    )


def spectral_norm_section(smoke: bool, steps: int) -> None:
    side, batch = (16, 8) if smoke else (32, 32)
    print(
        f"\n## Spectral normalisation, Conv2d(64, 64, 3, padding=1), batch {batch} at "
        f"{side}x{side}\n"
    )
    torch.manual_seed(0)
    base = torch.nn.Conv2d(64, 64, 3, padding=1)
    theirs = torch.nn.utils.parametrizations.spectral_norm(torch.nn.Conv2d(64, 64, 3, padding=1))
    ours = spectral_norm(torch.nn.Conv2d(64, 64, 3, padding=1), side)
    for m in (theirs, ours):
        with torch.no_grad():
            orig = m.parametrizations.weight.original
            orig.copy_(base.weight)
    x = torch.randn(batch, 64, side, side)
    opts = {id(m): torch.optim.SGD(m.parameters(), lr=0.01) for m in (base, theirs, ours)}

    def step(m):
        def run():
            m.train()
            loss = m(x).square().mean()
            opts[id(m)].zero_grad()
            loss.backward()
            opts[id(m)].step()

        return run

    best = interleaved(
        {"plain": step(base), "torch": step(theirs), "ours": step(ours)}, rounds=steps, number=3
    )
    rows = [
        ("no normalisation", best["plain"], best["plain"] / best["torch"]),
        ("torch.nn.utils.parametrizations.spectral_norm", best["torch"], 1.0),
        ("toeplitz_conv.nn.spectral_norm", best["ours"], best["ours"] / best["torch"]),
    ]
    print(markdown_table(("training step", "best time (s)", "/ torch"), rows))
    norms = []
    for name, m in (("torch", theirs), ("ours", ours)):
        m.eval()
        w = m.weight.detach().double().numpy()
        lo, hi = tc.spectral_norm_bounds(w, (side, side), padding=1, rtol=1e-4)
        norms.append((name, lo, hi))
    print(f"\nTrue norm of the layer in eval mode after {steps * 3} steps (certified bracket):\n")
    print(markdown_table(("layer", "lower", "upper"), norms))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--power-steps", type=int, default=100)
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("--only", choices=["resnet", "spectral_norm"], default=None)
    args = parser.parse_args()
    try:
        from threadpoolctl import threadpool_info

        blas = "; ".join(
            f"{i['internal_api']} {i['num_threads']} threads" for i in threadpool_info()
        )
    except ImportError:  # pragma: no cover
        blas = "threadpoolctl not installed"
    print(
        f"# benchmarks/nn.py\n\n{machine()}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads); {blas}"
    )
    if args.only in (None, "resnet"):
        resnet_section(args.smoke, args.power_steps, args.time_limit)
    if args.only in (None, "spectral_norm"):
        spectral_norm_section(args.smoke, 5 if args.smoke else 10)


if __name__ == "__main__":
    main()
