"""The ``toeplitz-conv lipschitz`` subcommand: a model's certified Lipschitz bracket.

``toeplitz-conv lipschitz mymodels:make_net --size 3x32x32`` imports ``mymodels`` (from
the current directory, or a ``path/to/file.py``), calls ``make_net()`` (or takes the
module attribute if it is already a model), puts the model in eval mode and prints
:func:`toeplitz_conv.nn.lipschitz_bound`'s bracket and table. Torch is imported only
when the command runs.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from typing import IO, TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from importlib.abc import Loader
    from importlib.machinery import ModuleSpec

__all__ = ["add_lipschitz", "run_lipschitz"]


def add_lipschitz(sub: Any) -> None:
    """Register the subcommand on the CLI's subparsers."""
    p = sub.add_parser(
        "lipschitz",
        help="certified Lipschitz bracket of a torch model (needs torch)",
        description="Trace a torch model, merge its adjacent linear layers, bracket each "
        "block's norm and print lower <= L <= upper with the per-block table. The model "
        "comes from MODULE:FUNCTION (FUNCTION() returns it; MODULE may be a .py file) and "
        "is put in eval mode.",
    )
    p.add_argument("model", metavar="MODULE:FUNCTION", help="e.g. mypackage.models:resnet18")
    p.add_argument(
        "--size",
        required=True,
        metavar="CxHxW",
        help="one sample's shape, e.g. 3x32x32 (2-D), 1x16000 (1-D)",
    )
    p.add_argument(
        "--rtol",
        type=float,
        default=1e-3,
        metavar="R",
        help="relative width asked of each layer's bracket (default: 1e-3)",
    )
    p.add_argument(
        "--time-limit",
        type=float,
        default=120.0,
        metavar="S",
        help="seconds for the whole analysis (default: 120)",
    )
    p.add_argument(
        "--power-iterations",
        type=int,
        default=30,
        metavar="N",
        help="power iteration steps per random point for the lower end (default: 30)",
    )


def _load(spec: str) -> Any:
    if ":" not in spec:
        raise ValueError(f"the model must be given as MODULE:FUNCTION; got {spec!r}")
    where, _, attr = spec.rpartition(":")
    if where.endswith(".py"):
        if not os.path.isfile(where):
            raise ValueError(f"the model file {where!r} does not exist")
        # a .py path always has a spec and a source loader
        found = importlib.util.spec_from_file_location("_toeplitz_conv_model", where)
        loader = cast("ModuleSpec", found)
        module = importlib.util.module_from_spec(loader)
        cast("Loader", loader.loader).exec_module(module)
    else:
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        module = importlib.import_module(where)
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"{where!r} has no attribute {attr!r} (from {spec!r})")
        obj = getattr(obj, part)
    return obj


def _size(text: str) -> tuple[int, ...]:
    try:
        size = tuple(int(s) for s in text.lower().split("x"))
    except ValueError:
        size = ()
    if not size or min(size) < 1:
        raise ValueError(
            f"--size must be positive integers joined by x, like 3x32x32; got {text!r}"
        )
    return size


def run_lipschitz(args: argparse.Namespace, out: IO[str], progress: Any = None) -> int:
    """Run the subcommand; the CLI's main handles the errors."""
    from .._torch import import_torch
    from ._lipschitz import lipschitz_bound

    torch = import_torch("toeplitz-conv lipschitz")
    size = _size(args.size)
    obj = _load(args.model)
    model = obj if isinstance(obj, torch.nn.Module) else obj() if callable(obj) else obj
    if not isinstance(model, torch.nn.Module):
        raise TypeError(
            f"{args.model} must be (or return) a torch.nn.Module; got {type(model).__name__}"
        )
    model.eval()
    res = lipschitz_bound(
        model,
        size,
        rtol=args.rtol,
        time_limit=args.time_limit,
        power_iterations=args.power_iterations,
    )
    out.write(f"{res}\n")
    return 0
