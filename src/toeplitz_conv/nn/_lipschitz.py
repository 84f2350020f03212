r"""A certified Lipschitz bracket for a whole torch model (``lipschitz_bound``).

The model is traced with ``torch.fx`` to its graph of operations, with every tensor's
shape from one forward pass (``ShapeProp``). The graph is then walked in order, keeping
for every tensor either

* a *linear expression* in an earlier tensor (its *source*): runs of linear operations
  (convs with their BatchNorms folded in, linear layers, average poolings, reshapes,
  sums and concatenations of linear branches of one source) are merged into one
  operator (:mod:`._pieces`), whose norm is bracketed only when a non-linear operation
  (or the output) needs it; or
* a Lipschitz upper bound from the network input to that tensor, ``L(node)``.

Rules: ``L(linear block) = L(source) ||block||``; ``L(sigma(x)) = c_sigma L(x)``;
``L(f + g) <= L(f) + L(g)`` (two branches of different sources); ``L(cat(f, g)) <=
sqrt(L(f)^2 + L(g)^2)``, since ``||(f(x), g(x)) - (f(y), g(y))||^2 =
||f(x) - f(y)||^2 + ||g(x) - g(y)||^2``. The upper end is the output's ``L``: a proof
(up to rounding) that ``||f(x) - f(y)|| <= upper ||x - y||`` for all ``x, y`` (in exact
arithmetic; the model's float32 rounding is not counted).

The lower end is attained: the ratio ``||f(x + t v) - f(x)|| / ||t v||`` at a random
point ``x`` along the direction ``v`` that power iteration on ``J(x)^T J(x)`` found
(torch autograd, float64, a copy of the model).
"""

from __future__ import annotations

import copy
import importlib
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .._torch import import_torch
from ..spectral._method import check_rtol
from ._pieces import Context
from ._walk import LayerRow, Walker, trace

if TYPE_CHECKING:
    import torch

__all__ = ["LayerRow", "LipschitzBound", "lipschitz_bound"]


@dataclass
class LipschitzBound:
    """``lower <= Lip(model) <= upper`` at one input shape, with the per-block table.

    Attributes
    ----------
    lower : float
        Attained: ``||f(x) - f(y)|| / ||x - y||`` for two inputs the search found
        (see ``lower_method``).
    upper : float
        Proved (up to rounding): the composition of the blocks' certified norms.
    layers : list of LayerRow
        ``(name, kind, input_shape, lower, upper, method)`` per non-linear operation,
        merged linear block, residual sum or concatenation, in graph order.
    input_size : tuple of int
    lower_method : str
    seconds : float
        Wall time of the analysis.
    """

    lower: float
    upper: float
    layers: list[LayerRow] = field(default_factory=list)
    input_size: tuple[int, ...] = ()
    lower_method: str = ""
    seconds: float = 0.0

    def table(self) -> str:
        """The per-block rows as a plain-text table."""
        head = ("name", "kind", "input", "lower", "upper", "method")
        rows = [head] + [
            (
                r.name,
                r.kind,
                "x".join(map(str, r.input_shape)),
                "" if r.lower is None else f"{r.lower:.6g}",
                "" if r.upper is None else f"{r.upper:.6g}",
                r.method,
            )
            for r in self.layers
        ]
        cut = [min(max(len(r[i]) for r in rows), 48) for i in range(5)]
        lines = []
        for r in rows:
            cells = [c if len(c) <= w else c[: w - 3] + "..." for c, w in zip(r, cut, strict=False)]
            lines.append(
                "  ".join(c.ljust(w) for c, w in zip(cells, cut, strict=False)) + "  " + r[5]
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        size = "x".join(map(str, self.input_size))
        return (
            f"Lipschitz constant at input {size}: {self.lower:.6g} <= L <= {self.upper:.6g} "
            f"(ratio {self.upper / self.lower:.3g}; {self.seconds:.1f} s)\n"
            f"upper: composed certified block norms; lower: {self.lower_method}\n\n" + self.table()
        )


# --------------------------------------------------------------------------- public
def lipschitz_bound(
    model: torch.nn.Module,
    input_size: int | tuple[int, ...],
    *,
    rtol: float = 1e-3,
    time_limit: float | None = 120.0,
    maxiter: int = 50,
    power_iterations: int = 30,
    starts: int = 2,
    seed: int = 0,
) -> LipschitzBound:
    r"""A certified bracket on the Lipschitz constant (l2 -> l2) of a torch model.

    Parameters
    ----------
    model : torch.nn.Module
        In eval mode (BatchNorm uses its running statistics; Dropout is the identity);
        traceable by ``torch.fx.symbolic_trace``. It maps a batch ``(N, *input_size)``
        to one tensor.
    input_size : int or tuple of int
        One sample's shape: ``(C, L)``, ``(C, H, W)``, ``(C, D, H, W)``, or ``(F,)``.
    rtol : float, optional
        Relative width asked of each conv layer's norm bracket.
    time_limit : float or None, optional
        Seconds for the whole analysis (default 120): about 70% is shared among the
        layer brackets (each returns what it reached), the rest is the lower end's
        search, which stops after the step it is in (``lower_method`` says so).
        ``None``: only the iteration budgets.
    maxiter : int, optional
        Lanczos steps per bracket.
    power_iterations, starts : int, optional
        The lower end's search: `starts` random points, `power_iterations` steps each.
    seed : int, optional
        Seeds the random points and start vectors.

    Returns
    -------
    LipschitzBound
        ``.lower``, ``.upper``, ``.layers`` (the table); ``print`` shows it all.

    Raises
    ------
    ValueError
        A module in training mode, an operation that cannot be bounded (named, with
        the module or function: attention, a product of two activations, an unknown
        module, the refusals in the Notes), a reshape that mixes samples, an
        `input_size` the model rejects, forward hooks.
    TypeError
        A model that is not an ``nn.Module`` or cannot be traced (the error names it).
    ModuleNotFoundError
        Without torch.

    Notes
    -----
    Supported: ``Conv1d/2d/3d`` and ``ConvTranspose1d/2d/3d`` (every padding mode,
    stride, dilation, groups), ``BatchNorm1d/2d/3d`` (folded exactly into the conv or
    linear layer before it, else a diagonal), ``Linear``, ``AvgPool``/``AdaptiveAvgPool``
    (depthwise convs; sizes that do not divide, or ``ceil_mode``, by torch with the
    Schur test), flatten/view/reshape, Dropout/Identity; ``ReLU`` (1), ``ReLU6``,
    ``Hardtanh`` (1), ``LeakyReLU`` (``max(1, |slope|)``), ``ELU`` (``max(1, alpha)``),
    ``GELU`` (1.1284, see :func:`~._constants.gelu_constant`), ``SiLU`` (1.0998),
    ``Tanh`` (1), ``Sigmoid`` (1/4), ``Softplus`` (1), ``MaxPool``/``AdaptiveMaxPool``
    (``sqrt`` of the most windows holding one position: 1 without overlap, see
    :func:`~._constants.maxpool_constant`), ``+``/``-`` (two linear branches of one
    source are merged; else ``L(f) + L(g)``), ``torch.cat`` (merged, or
    ``sqrt(L(f)^2 + L(g)^2)``), multiplication by constants; the functional forms too.
    ``Softplus`` needs ``threshold >= 20`` (its switch to ``x`` jumps by
    ``log(1 + e^-threshold) / beta``, at most 2.1e-9 / beta there, left out).

    Refused, because the traced graph would not compute what torch does: forward hooks
    and pre-hooks (except pruning's and the old ``weight_norm``/``spectral_norm``'s,
    which only set the weight), functions that are neither torch's nor operators, an
    in-place change (``mul_``, ``inplace=True``, ``+=``) of a tensor that is read
    again elsewhere, rounding divisions, pooling without a channel axis. One form
    torch.fx cannot see: ``z += w`` traces as ``z + w``, so when another name holds the
    same tensor and reads it afterwards (``z = y; z += w; ... y ...``) the bound is of
    the out-of-place program (a discarded ``z += w`` is refused).

    Merged linear blocks are bracketed as one operator: exactly from the dense Gram
    matrix of the smaller side when it has at most :data:`~._pieces.GRAM_SIDE` rows,
    else the product of the layers' certified upper ends (Lanczos on the merged
    operator from below). A single conv's bracket is
    :func:`toeplitz_conv.spectral_norm_bounds`.

    Examples
    --------
    >>> import pytest; torch = pytest.importorskip("torch")
    >>> from toeplitz_conv.nn import lipschitz_bound
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> net = torch.nn.Sequential(torch.nn.Conv1d(2, 4, 3, padding=1), torch.nn.ReLU(),
    ...                           torch.nn.Conv1d(4, 1, 3)).eval()
    >>> res = lipschitz_bound(net, (2, 16))
    >>> bool(0 < res.lower <= res.upper)
    True
    >>> [r.kind for r in res.layers]
    ['conv1d', 'relu', 'conv1d']
    """
    torch = import_torch("lipschitz_bound")
    start = time.monotonic()
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"`model` must be a torch.nn.Module; got {type(model).__name__}")
    size = _check_size(input_size)
    rtol = check_rtol(rtol)
    if time_limit is not None and not (
        isinstance(time_limit, (int, float)) and not isinstance(time_limit, bool) and time_limit > 0
    ):
        raise ValueError(f"`time_limit` must be None or seconds > 0; got {time_limit!r}")
    for name, mod in model.named_modules():
        if mod.training:
            raise ValueError(
                f"module {name or '(the model)'!r} ({type(mod).__name__}) is in training "
                "mode; call model.eval() first (BatchNorm and Dropout must be fixed maps)"
            )
    _refuse_hooks(torch, model)
    gm = trace(torch, model)
    ctx = Context(
        rtol=rtol,
        maxiter=maxiter,
        deadline=None if time_limit is None else start + 0.75 * time_limit,
    )
    walker = Walker(torch, gm, size, ctx)
    upper = walker.run()
    deadline = None if time_limit is None else start + time_limit
    lower, how = _network_lower(torch, model, size, power_iterations, starts, deadline, seed)
    return LipschitzBound(
        lower=min(lower, upper),
        upper=upper,
        layers=walker.rows,
        input_size=size,
        lower_method=how,
        seconds=time.monotonic() - start,
    )


def _refuse_hooks(torch: Any, model: Any) -> None:
    """Forward hooks change what a module returns (or takes) where the traced graph does not
    look: refuse them by name. Pre-hooks that only recompute the weight (pruning, the old
    ``weight_norm`` and ``spectral_norm``) are kept: the bound reads the weight they set."""
    weight_only = tuple(
        getattr(importlib.import_module(f"torch.nn.utils.{module}"), cls)
        for module, cls in (
            ("prune", "BasePruningMethod"),
            ("weight_norm", "WeightNorm"),
            ("spectral_norm", "SpectralNorm"),
        )
    )
    for name, mod in model.named_modules():
        pre = [h for h in mod._forward_pre_hooks.values() if not isinstance(h, weight_only)]
        if mod._forward_hooks or pre:
            raise ValueError(
                f"module {name or '(the model)'!r} ({type(mod).__name__}) has forward "
                f"{'hooks' if mod._forward_hooks else 'pre-hooks'}, which can change its "
                "input or output where the traced graph does not see it; remove them "
                "(handle.remove()) to bound the model"
            )


def _check_size(input_size: object) -> tuple[int, ...]:
    size = (input_size,) if isinstance(input_size, (int, np.integer)) else input_size
    if (
        not isinstance(size, (tuple, list))
        or not size
        or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1 for s in size)
    ):
        raise ValueError(
            "`input_size` must be one sample's shape, a tuple of positive ints such as "
            f"(3, 32, 32); got {input_size!r}"
        )
    return tuple(int(s) for s in size)


# --------------------------------------------------------------------------- lower end
def _network_lower(
    torch: Any,
    model: Any,
    size: tuple[int, ...],
    steps: int,
    starts: int,
    deadline: float | None,
    seed: int,
) -> tuple[float, str]:
    """The best attained ratio ``||f(x + t v) - f(x)|| / ||t v||`` (see module docstring)."""
    m = copy.deepcopy(model).double().eval()
    gen = torch.Generator().manual_seed(seed)
    best = 0.0
    taken = 0
    points = 0
    late = False  # the deadline cut the search short

    def out_of_time() -> bool:
        nonlocal late
        late = late or (deadline is not None and time.monotonic() > deadline)
        return late

    for _ in range(max(starts, 1)):
        if points and out_of_time():
            break  # out of time: keep the points already searched
        points += 1
        x = torch.randn(1, *size, generator=gen, dtype=torch.float64)
        v = torch.randn(1, *size, generator=gen, dtype=torch.float64)
        v /= v.norm()
        xg = x.clone().requires_grad_(True)
        with torch.enable_grad():
            y = m(xg.clone())  # (a model may change its input in place: never the leaf)
            u = torch.zeros_like(y, requires_grad=True)
            (g,) = torch.autograd.grad(y, xg, u, create_graph=True)  # J^T u, linear in u
            for _ in range(max(steps, 1)):
                if out_of_time():  # v need not converge: any v gives an attained ratio
                    break
                (jv,) = torch.autograd.grad(g, u, v, retain_graph=True)  # J v
                (w,) = torch.autograd.grad(y, xg, jv, retain_graph=True)  # J^T J v
                taken += 1
                norm = float(w.norm())
                if not norm > 0 or not math.isfinite(norm):
                    break
                v = (w / norm).detach()
        t = 1e-6 * max(1.0, float(x.norm()))
        with torch.no_grad():
            ratio = float((m(x + t * v) - m(x.clone())).norm()) / (t * float(v.norm()))
        best = max(best, ratio)
    how = (
        f"||f(x + t v) - f(x)|| / ||t v|| attained at {points} random point(s), v "
        f"from power iteration on J^T J ({taken} steps, autograd, float64)"
        + ("; stopped at the time limit" if late else "")
    )
    return best, how
