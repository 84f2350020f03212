"""The walk over a traced model's graph: a Lipschitz rule for every operation.

``Walker(torch, gm, size, ctx).run()`` visits the ``torch.fx`` graph in order and keeps,
for every tensor, a linear expression in an earlier tensor (merged into one operator
until a non-linear operation needs its norm) or a Lipschitz upper bound from the input
(see :mod:`toeplitz_conv.nn._lipschitz` for the rules). ``Walker.rows`` is the table.
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from .._torch import conv_classes
from ._constants import activation_constant, maxpool_constant, maxpool_counts
from ._pieces import (
    Bracket,
    Cat,
    Chain,
    Context,
    ConvPiece,
    DiagPiece,
    Expr,
    MatrixPiece,
    ReshapePiece,
    Sum,
    TorchPiece,
    close,
    conv_params,
)

__all__ = ["BATCH", "LayerRow", "Unsupported", "Walker", "trace"]

BATCH = 2  # the traced batch: a reshape that mixes samples changes it


class LayerRow(NamedTuple):
    """One row of the table: an operation or a merged linear block."""

    name: str
    kind: str
    input_shape: tuple[int, ...]
    lower: float | None
    upper: float | None
    method: str


class Unsupported(ValueError):
    """An operation the walk has no Lipschitz rule for."""


@dataclass
class _Val:
    expr: Expr
    src: Any  # the fx node the expression starts from


def trace(torch: Any, model: Any) -> Any:
    from collections import OrderedDict

    from torch import fx

    if fx.Tracer().is_leaf_module(model, ""):  # one torch layer: trace it as a call
        model = torch.nn.Sequential(OrderedDict([(type(model).__name__, model)]))
    try:
        return fx.symbolic_trace(model)
    except Exception as exc:
        raise TypeError(
            f"cannot trace the model ({type(model).__name__}) with torch.fx.symbolic_trace: "
            f"{type(exc).__name__}: {exc}. Data-dependent control flow is not traceable; "
            "wrap the untraceable part or rewrite it without branching on tensor values"
        ) from exc


_ACT_MODULES = {
    "ReLU": "relu",
    "ReLU6": "relu6",
    "Hardtanh": "hardtanh",
    "LeakyReLU": "leaky_relu",
    "ELU": "elu",
    "GELU": "gelu",
    "SiLU": "silu",
    "Tanh": "tanh",
    "Sigmoid": "sigmoid",
    "Softplus": "softplus",
}
_ACT_NAMES = {  # functions and methods
    "relu": "relu",
    "relu_": "relu",
    "relu6": "relu6",
    "hardtanh": "hardtanh",
    "hardtanh_": "hardtanh",
    "leaky_relu": "leaky_relu",
    "leaky_relu_": "leaky_relu",
    "elu": "elu",
    "elu_": "elu",
    "gelu": "gelu",
    "silu": "silu",
    "tanh": "tanh",
    "tanh_": "tanh",
    "sigmoid": "sigmoid",
    "sigmoid_": "sigmoid",
    "softplus": "softplus",
}
_RESHAPES = {
    "flatten",
    "view",
    "reshape",
    "unflatten",
    "squeeze",
    "unsqueeze",
    "contiguous",
    "view_as",
    "reshape_as",
}
_IDENTITIES = {
    "Identity",
    "Dropout",
    "Dropout1d",
    "Dropout2d",
    "Dropout3d",
    "AlphaDropout",
    "Flatten",
    "Unflatten",
}


_SCALES = ("mul", "div", "mul_", "div_", "neg")
_PRODUCTS = ("matmul", "bmm", "mm", "einsum", "scaled_dot_product_attention", "softmax", "baddbmm")


#: Python's in-place operators (``y += z`` traces to ``operator.iadd(y, z)``)
_IN_PLACE_OPERATORS = frozenset(
    getattr(operator, n) for n in ("iadd", "isub", "imul", "itruediv", "ifloordiv", "imod", "ipow")
)


def _name_of(target: Any) -> str:
    return getattr(target, "__name__", str(target))


class Walker:
    def __init__(self, torch: Any, gm: Any, size: tuple[int, ...], ctx: Context) -> None:
        from torch.fx.passes.shape_prop import ShapeProp

        self.torch, self.gm, self.ctx = torch, gm, ctx
        self.F = torch.nn.functional
        param = next(gm.parameters(), None)
        dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
        try:
            with torch.no_grad():
                ShapeProp(gm).propagate(torch.zeros(BATCH, *size, dtype=dtype))
        except Exception as exc:
            raise ValueError(
                f"`input_size`={size} does not fit the model: a forward pass on a zero batch "
                f"of shape {(BATCH, *size)} failed with {type(exc).__name__}: {exc}"
            ) from exc
        self.vals: dict[Any, _Val] = {}
        self.lips: dict[Any, float] = {}
        self.closed: dict[int, Bracket] = {}
        self.rows: list[LayerRow] = []
        ctx.pending = max(1, sum(1 for m in gm.modules() if "Conv" in type(m).__name__))

    # ---- helpers
    def shape(self, node: Any) -> tuple[int, ...]:
        meta = node.meta.get("tensor_meta")
        return tuple(meta.shape[1:])

    def describe(self, node: Any) -> str:
        if node.op == "call_module":
            mod = self.gm.get_submodule(node.target)
            return f"module {node.target!r} ({type(mod).__name__})"
        if node.op == "call_method":
            return f"method .{node.target}() at node {node.name!r}"
        return f"function {_name_of(node.target)} at node {node.name!r}"

    def fail(self, node: Any, why: str) -> None:
        raise Unsupported(f"lipschitz_bound cannot bound {self.describe(node)}: {why}")

    def is_activation(self, v: Any) -> bool:
        """Whether `v` is a node whose value depends on the input (not a constant)."""
        return hasattr(v, "op") and v in self.vals

    def dependent(self, node: Any) -> list[Any]:
        found: list[Any] = []

        def visit(a: Any) -> None:
            if self.is_activation(a) and a not in found:
                found.append(a)
            elif isinstance(a, (list, tuple)):
                for b in a:
                    visit(b)
            elif isinstance(a, dict):
                for b in a.values():
                    visit(b)

        visit(node.args)
        visit(node.kwargs)
        return found

    def lip(self, node: Any) -> float:
        val = self.vals[node]
        key = id(val.expr)
        if key not in self.closed:
            br = close(val.expr, self.ctx)
            self.closed[key] = br
            real = [p for p in val.expr.pieces() if not p.trivial]
            if real:
                kinds = "+".join(p.kind for p in real)
                self.rows.append(
                    LayerRow(
                        val.expr.label(), kinds, val.expr.in_shape, br.lower, br.upper, br.method
                    )
                )
        return self.lips[val.src] * self.closed[key].upper

    def source(self, node: Any, lip: float) -> None:
        self.lips[node] = lip
        self.vals[node] = _Val(Chain(self.shape(node)), node)

    def linear(self, node: Any, x: Any, piece: Any) -> None:
        val = self.vals[x]
        chain = val.expr if isinstance(val.expr, Chain) else Chain(val.expr.in_shape, (val.expr,))
        self.vals[node] = _Val(chain.then(piece), val.src)

    def nonlinear(self, node: Any, x: Any, kind: str, consts: tuple[float, float, str]) -> None:
        lo, hi, how = consts
        upstream = self.lip(x)
        self.rows.append(
            LayerRow(
                node.name if node.op != "call_module" else node.target,
                kind,
                self.shape(x),
                lo,
                hi,
                how,
            )
        )
        self.source(node, hi * upstream)

    # ---- the walk
    def run(self) -> float:
        for node in self.gm.graph.nodes:
            if node.op == "placeholder":
                if self.vals:
                    self.fail(node, "the model takes more than one input")
                self.source(node, 1.0)
                continue
            if node.op == "output":
                out = node.args[0]
                if not self.is_activation(out):
                    raise Unsupported(
                        "lipschitz_bound needs a model returning one tensor that depends on "
                        f"its input; this one returns {out!r}"
                    )
                return self.lip(out)
            if node.op == "get_attr":
                continue
            deps = self.dependent(node)
            if not deps:
                continue  # a constant (sizes, buffers)
            if "tensor_meta" not in node.meta or not hasattr(node.meta["tensor_meta"], "shape"):
                self.fail(
                    node,
                    "its result is not one tensor (a tuple, or a value read off "
                    "a tensor) and depends on the input",
                )
            if node.meta["tensor_meta"].shape[0] != BATCH:
                self.fail(node, "it mixes the samples of a batch (the batch axis is not kept)")
            try:
                self.check(node)
                self.step(node, deps)
            except Unsupported:
                raise
            except (TypeError, ValueError, IndexError, KeyError, ZeroDivisionError) as exc:
                raise Unsupported(
                    f"lipschitz_bound cannot bound {self.describe(node)}: {exc}"
                ) from exc
        raise Unsupported("the traced graph has no output")  # pragma: no cover

    def check(self, node: Any) -> None:
        """Refuse what the rules below would misread: a function that is neither torch's nor
        Python's operators (a wrapped user function named like one of them), an in-place
        change of a tensor that is read again (the graph reads it as it was before), a
        rounding division, a pooling layer on an input without a channel axis, and a
        softplus whose switch to ``x`` jumps by more than 2.1e-9 / beta."""
        t = node.target
        if node.op == "call_function" and not getattr(t, "__module__", "").startswith(
            ("torch", "_operator", "operator")
        ):
            self.fail(node, "a function that is neither torch's nor an operator")
        mod = self.gm.get_submodule(t) if node.op == "call_module" else None
        name = type(mod).__name__ if mod is not None else t if isinstance(t, str) else _name_of(t)
        in_place = (
            (name.endswith("_") and not name.startswith("__"))
            or (node.op == "call_function" and t in _IN_PLACE_OPERATORS)
            or node.kwargs.get("inplace") is True
            or (mod is not None and getattr(mod, "inplace", False) is True)
        )
        changed: Any = node.args[0] if node.args else None
        # torch.fx traces `z += w` as `z + w`: a sum nothing reads can only be such an
        # augmented assignment through another name for `z` (z = y; z += w; return y)
        discarded = not node.users and name in ("add", "sub", "mul", "truediv", "floordiv")
        if (in_place or discarded) and hasattr(changed, "op") and len(changed.users) > 1:
            self.fail(
                node,
                f"it changes {changed.name!r} in place, which is read again elsewhere (the "
                "traced graph reads the value from before the change); use the out-of-place "
                "form",
            )
        if node.kwargs.get("rounding_mode") is not None:
            self.fail(node, "a rounding division is not continuous")
        pool = re.search(r"pool(\d)d$", name.lower().replace("_", ""))
        x = changed if self.is_activation(changed) else None
        if pool and x is not None and len(self.shape(x)) != int(pool.group(1)) + 1:
            self.fail(
                node,
                f"a {pool.group(1)}-D pooling of an input of shape {self.shape(x)} per sample: "
                "pass the channel axis too (input_size = (C, *spatial))",
            )
        if name.lower() == "softplus":
            threshold = (
                mod.threshold
                if mod is not None
                else _arg(node.args, node.kwargs, 2, "threshold", 20.0)
            )
            if threshold < 20:
                self.fail(
                    node,
                    f"softplus with threshold={threshold}: where it switches to x it jumps by "
                    "log(1 + exp(-threshold)) / beta (not Lipschitz); threshold >= 20 jumps "
                    "by at most 2.1e-9 / beta, which the bound leaves out",
                )

    def step(self, node: Any, deps: list[Any]) -> None:
        if node.op == "call_module":
            self.module(node, deps)
        elif node.op in ("call_function", "call_method"):
            self.function(node, deps)
        else:  # pragma: no cover
            self.fail(node, f"unknown graph operation {node.op!r}")

    def one(self, node: Any, deps: list[Any]) -> Any:
        if len(deps) != 1 or node.args[0] is not deps[0]:
            self.fail(node, "it combines several activations (only + and cat are supported)")
        return deps[0]

    # ---- modules
    def module(self, node: Any, deps: list[Any]) -> None:
        torch, nn = self.torch, self.torch.nn
        mod = self.gm.get_submodule(node.target)
        x = self.one(node, deps)
        name, tname = node.target, type(mod).__name__
        ins, outs = self.shape(x), self.shape(node)
        if tname in _ACT_MODULES:
            kind = _ACT_MODULES[tname]
            params: dict[str, Any] = {
                "negative_slope": getattr(mod, "negative_slope", 0.0),
                "alpha": getattr(mod, "alpha", 1.0),
                "approximate": getattr(mod, "approximate", "none"),
            }
            if kind == "hardtanh" and getattr(mod, "min_val", -1) >= getattr(mod, "max_val", 1):
                self.fail(node, "an empty Hardtanh range")
            self.nonlinear(node, x, kind, activation_constant(kind, **params))
        elif tname in _IDENTITIES:
            self.linear(node, x, ReshapePiece(name, tname.lower(), ins, outs))
        elif isinstance(mod, (nn.modules.conv._ConvNd)):
            self.conv(node, x, mod)
        elif isinstance(mod, nn.modules.batchnorm._BatchNorm):
            self.batchnorm(node, x, mod)
        elif isinstance(mod, nn.Linear):
            w = mod.weight.detach().double().numpy()
            self.linear(node, x, MatrixPiece(name, "linear", ins, outs, weight=w))
        elif isinstance(mod, (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)):
            self.avgpool(
                node,
                x,
                mod.kernel_size,
                mod.stride,
                mod.padding,
                mod.ceil_mode,
                mod.count_include_pad,
                getattr(mod, "divisor_override", None),
            )
        elif isinstance(mod, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)):
            self.adaptive_avg(node, x)
        elif isinstance(mod, (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)):
            self.maxpool(node, x, mod.kernel_size, mod.stride, mod.padding, mod.dilation)
        elif isinstance(mod, (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)):
            self.maxpool(node, x, None, None, None, None)
        else:
            why = "an unknown module: no Lipschitz rule for it"
            if isinstance(mod, nn.MultiheadAttention) or "Attention" in tname:
                why = "attention multiplies activations together: not globally Lipschitz"
            elif isinstance(mod, (nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm2d)):
                why = "normalisation by the sample's own statistics is not globally Lipschitz"
            del torch
            self.fail(node, why)

    def conv(self, node: Any, x: Any, mod: Any) -> None:
        convs, transposes = conv_classes(self.torch)
        if not isinstance(mod, convs + transposes):
            self.fail(node, "an unknown conv class")
        if len(node.args) > 1 or node.kwargs:
            self.fail(node, "the transposed conv is called with an output_size")
        params, transposed, kind = conv_params(mod)
        piece = ConvPiece(
            node.target,
            kind,
            self.shape(x),
            self.shape(node),
            weight=mod.weight.detach().double().numpy(),
            params=params,
            transposed=transposed,
        )
        self.check_conv(node, piece)
        self.linear(node, x, piece)

    def check_conv(self, node: Any, piece: ConvPiece) -> None:
        rows = piece.layer.shape[1] if piece.transposed else piece.layer.shape[0]
        if rows != math.prod(piece.out_shape):
            self.fail(node, f"its output shape {piece.out_shape} is not the layer's")

    def batchnorm(self, node: Any, x: Any, mod: Any) -> None:
        if mod.running_var is None:
            self.fail(node, "a BatchNorm without running statistics normalises by the batch")
        var = mod.running_var.detach().double().numpy()
        gamma = (
            mod.weight.detach().double().numpy() if mod.weight is not None else np.ones_like(var)
        )
        scale = gamma / np.sqrt(var + mod.eps)
        ins = self.shape(x)
        diag = np.broadcast_to(scale.reshape(-1, *([1] * (len(ins) - 1))), ins).copy()
        kind = type(mod).__name__.lower().replace("batchnorm", "bn")
        self.linear(node, x, DiagPiece(node.target, kind, ins, ins, diag=diag, bn_scale=scale))

    def avgpool(self, node, x, kernel, stride, padding, ceil_mode, include_pad, divisor):
        ins, outs = self.shape(x), self.shape(node)
        n = len(ins) - 1
        tup = lambda v: tuple(v) if isinstance(v, (tuple, list)) else (v,) * n  # noqa: E731
        k = tup(kernel)
        s = tup(stride) if stride not in (None, [], ()) else k
        p = tup(padding)
        F = self.F
        fn_name = f"avg_pool{n}d"
        as_conv = all(q == 0 for q in p) or include_pad
        conv_out = tuple((ins[1 + a] + 2 * p[a] - k[a]) // s[a] + 1 for a in range(n))
        if as_conv and conv_out == outs[1:]:
            w = np.full((ins[0], 1, *k), 1.0 / (divisor or math.prod(k)))
            params = {
                "stride": s,
                "padding": p,
                "dilation": (1,) * n,
                "groups": ins[0],
                "padding_mode": "zeros",
                "output_padding": (0,) * n,
            }
            piece = ConvPiece(
                str(node.target if node.op == "call_module" else node.name),
                f"avgpool{n}d",
                ins,
                outs,
                weight=w,
                params=params,
                depthwise_copies=True,
            )
            self.linear(node, x, piece)
            return
        fn = getattr(F, fn_name)
        kw = {
            "kernel_size": k,
            "stride": s,
            "padding": p,
            "ceil_mode": ceil_mode,
            "count_include_pad": include_pad,
        }
        if n > 1:
            kw["divisor_override"] = divisor
        self.linear(
            node, x, TorchPiece(str(node.name), f"avgpool{n}d", ins, outs, fn=lambda t: fn(t, **kw))
        )

    def adaptive_avg(self, node: Any, x: Any) -> None:
        ins, outs = self.shape(x), self.shape(node)
        n = len(ins) - 1
        if all(ins[1 + a] % outs[1 + a] == 0 for a in range(n)):
            k = tuple(ins[1 + a] // outs[1 + a] for a in range(n))
            self.avgpool(node, x, k, k, 0, False, True, None)
            return
        fn = getattr(self.F, f"adaptive_avg_pool{n}d")
        size = outs[1:]
        self.linear(
            node,
            x,
            TorchPiece(
                str(node.name), f"adaptive_avgpool{n}d", ins, outs, fn=lambda t: fn(t, size)
            ),
        )

    def maxpool(
        self,
        node: Any,
        x: Any,
        kernel: Any,  # torch's int-or-sequence pooling sizes; all None when adaptive
        stride: Any,
        padding: Any,
        dilation: Any,
    ) -> None:
        ins, outs = self.shape(x), self.shape(node)
        n = len(ins) - 1
        if kernel is not None:
            tup = lambda v: tuple(v) if isinstance(v, (tuple, list)) else (v,) * n  # noqa: E731
            kernel = tup(kernel)
            stride = tup(stride) if stride not in (None, [], ()) else kernel
            padding, dilation = tup(padding), tup(dilation)
        count = maxpool_counts(ins[1:], outs[1:], kernel, stride, padding, dilation)
        kind = f"maxpool{n}d" if kernel is not None else f"adaptive_maxpool{n}d"
        self.nonlinear(node, x, kind, maxpool_constant(count))

    # ---- functions and methods
    def function(self, node: Any, deps: list[Any]) -> None:
        """A function or method call: the rule for its kind of operation."""
        torch = self.torch
        t = node.target
        name = t if isinstance(t, str) else _name_of(t)
        adds = (operator.add, operator.iadd, operator.sub, operator.isub, torch.add, torch.sub)
        scales = (operator.mul, operator.imul, torch.mul, operator.truediv, torch.div)
        if t in adds or name in ("add", "sub", "add_", "sub_"):
            self.add(node, negative=name.startswith(("sub", "isub")))
        elif t in (*scales, operator.neg, torch.neg) or name in _SCALES:
            self.scale(node, deps, name)
        elif t is torch.cat or name == "cat":
            self.cat(node, deps)
        elif name in _ACT_NAMES and (isinstance(t, str) or t in _act_functions(torch)):
            self.activation(node, self.one(node, deps), name)
        elif name in _RESHAPES or t is torch.flatten:
            self.reshape(node, self.one(node, deps))
        elif name.startswith(("dropout", "alpha_dropout", "feature_alpha_dropout")):
            self.dropout(node, self.one(node, deps))
        elif name in ("avg_pool1d", "avg_pool2d", "avg_pool3d"):
            self.avgpool_call(node, self.one(node, deps))
        elif name.startswith("adaptive_avg_pool"):
            self.adaptive_avg(node, self.one(node, deps))
        elif name.startswith("adaptive_max_pool"):
            self.maxpool(node, self.one(node, deps), None, None, None, None)
        elif name in ("max_pool1d", "max_pool2d", "max_pool3d"):
            self.maxpool_call(node, self.one(node, deps))
        elif (name == "mean" and node.op == "call_method") or t is torch.mean:
            self.mean(node, self.one(node, deps))
        elif name in _PRODUCTS:
            why = (
                "attention multiplies activations together: not globally Lipschitz"
                if len(deps) > 1 or name in ("softmax", "scaled_dot_product_attention")
                else "a matrix product with a tensor: no rule for it"
            )
            self.fail(node, why)
        else:
            self.fail(node, "an unknown operation: no Lipschitz rule for it")

    def activation(self, node: Any, x: Any, name: str) -> None:
        args, kw = node.args, node.kwargs
        kind = _ACT_NAMES[name]
        params = {
            "negative_slope": _arg(args, kw, 1, "negative_slope", 0.01),
            "alpha": _arg(args, kw, 1, "alpha", 1.0),
            "approximate": kw.get("approximate", "none"),
        }
        self.nonlinear(node, x, kind, activation_constant(kind, **params))

    def reshape(self, node: Any, x: Any) -> None:
        ins, outs = self.shape(x), self.shape(node)
        if math.prod(ins) != math.prod(outs):  # pragma: no cover - torch refuses it
            self.fail(node, "a reshape that changes the size")
        self.linear(node, x, ReshapePiece(node.name, "reshape", ins, outs))

    def dropout(self, node: Any, x: Any) -> None:
        if _arg(node.args, node.kwargs, 2, "training", True):
            self.fail(node, "dropout with training=True (pass training=self.training)")
        self.linear(node, x, ReshapePiece(node.name, "dropout", self.shape(x), self.shape(node)))

    def avgpool_call(self, node: Any, x: Any) -> None:
        args, kw = node.args, node.kwargs
        self.avgpool(
            node,
            x,
            _arg(args, kw, 1, "kernel_size", None),
            _arg(args, kw, 2, "stride", None),
            _arg(args, kw, 3, "padding", 0),
            _arg(args, kw, 4, "ceil_mode", False),
            _arg(args, kw, 5, "count_include_pad", True),
            _arg(args, kw, 6, "divisor_override", None),
        )

    def maxpool_call(self, node: Any, x: Any) -> None:
        args, kw = node.args, node.kwargs
        if _arg(args, kw, 6, "return_indices", False):
            self.fail(node, "max pooling with return_indices")
        self.maxpool(
            node,
            x,
            _arg(args, kw, 1, "kernel_size", None),
            _arg(args, kw, 2, "stride", None),
            _arg(args, kw, 3, "padding", 0),
            _arg(args, kw, 4, "dilation", 1),
        )

    def mean(self, node: Any, x: Any) -> None:
        dim = _arg(node.args, node.kwargs, 1, "dim", None)
        if dim is None:
            self.fail(node, "a mean over the batch axis")
        keep = _arg(node.args, node.kwargs, 2, "keepdim", False)
        dims = (dim,) if isinstance(dim, int) else tuple(dim)
        if any(d % (len(self.shape(x)) + 1) == 0 for d in dims):
            self.fail(node, "a mean over the batch axis")
        piece = TorchPiece(
            node.name,
            "mean",
            self.shape(x),
            self.shape(node),
            fn=lambda v: v.mean(dim=dims, keepdim=keep),
        )
        self.linear(node, x, piece)

    def add(self, node: Any, negative: bool) -> None:
        """``a + alpha b`` (``a - alpha b`` when `negative`): a shift, a scaled activation,
        or a sum of two activations (the same one twice included: ``x + x`` is ``2 x``)."""
        args = list(node.args)
        a = args[0]
        b = args[1] if len(args) >= 2 else node.kwargs.get("other")
        alpha = node.kwargs.get("alpha", 1)
        sign = -float(alpha) if negative else float(alpha)  # the coefficient of b
        if not (self.is_activation(a) and self.is_activation(b)):  # one and a constant
            if not (self.is_activation(a) or self.is_activation(b)):
                self.fail(node, "an activation inside a container operand")
            x = a if self.is_activation(a) else b
            if self.shape(x) != self.shape(node):
                self.fail(node, "a constant that broadcasts the activation to a larger shape")
            if x is a or sign == 1:  # x + alpha c, c + x: a shift
                piece: Any = ReshapePiece(node.name, "shift", self.shape(x), self.shape(node))
            else:  # c + sign x
                shape = self.shape(node)
                piece = DiagPiece(node.name, "scale", shape, shape, diag=np.full(shape, sign))
            self.linear(node, x, piece)
            return
        if self.shape(a) != self.shape(b):
            self.fail(node, "a sum of activations of different shapes (broadcast)")
        va, vb = self.vals[a], self.vals[b]
        if va.src is vb.src:
            self.vals[node] = _Val(Sum((va.expr, vb.expr), (1.0, sign)), va.src)
            return
        la, lb = self.lip(a), abs(sign) * self.lip(b)
        self.rows.append(
            LayerRow(
                node.name,
                "add",
                self.shape(node),
                None,
                la + lb,
                f"L(f) + L(g) = {la:.4g} + {lb:.4g}",
            )
        )
        self.source(node, la + lb)

    def scale(self, node: Any, deps: list[Any], name: str) -> None:
        torch = self.torch
        tensors = [a for a in node.args if self.is_activation(a)]
        if len(deps) != 1 or len(tensors) > 1:
            self.fail(node, "a product of two activations: not globally Lipschitz")
        x = deps[0]
        if name in ("neg",):
            factor: Any = -1.0
        else:
            args = list(node.args)
            if name in ("truediv", "div", "div_", "itruediv") and args[0] is not x:
                self.fail(node, "division by an activation: not globally Lipschitz")
            other = args[1] if args[0] is x else args[0]
            factor = self.constant(node, other)
            if name in ("truediv", "div", "div_", "itruediv"):
                factor = 1.0 / factor
        shape = self.shape(node)
        if self.shape(x) != shape:
            self.fail(node, "a constant factor that broadcasts the activation to a larger shape")
        if isinstance(factor, torch.Tensor):
            value = factor.detach().double()
            if value.ndim == len(shape) + 1:
                if value.shape[0] != 1:
                    self.fail(node, "a constant factor with a batch axis")
                value = value[0]
            d = np.broadcast_to(value.numpy(), shape).copy()
        else:
            d = np.full(shape, float(factor))
        self.linear(node, x, DiagPiece(node.name, "scale", shape, shape, diag=d))

    def constant(self, node: Any, other: Any) -> Any:
        if isinstance(other, (int, float)) and not isinstance(other, bool):
            return float(other)
        if hasattr(other, "op") and other.op == "get_attr":
            value = self.gm
            for part in other.target.split("."):
                value = getattr(value, part)
            return value
        self.fail(node, "a factor that is neither a number nor a stored tensor")
        return None  # pragma: no cover

    def cat(self, node: Any, deps: list[Any]) -> None:
        items = node.args[0]
        dim = _arg(node.args, node.kwargs, 1, "dim", 0)
        if not all(self.is_activation(i) for i in items):
            self.fail(node, "a concatenation with a constant tensor")
        nd = len(self.shape(node)) + 1
        dim = dim % nd
        if dim == 0:
            self.fail(node, "a concatenation along the batch axis")
        vals = [self.vals[i] for i in items]
        if all(v.src is vals[0].src for v in vals):
            self.vals[node] = _Val(Cat(tuple(v.expr for v in vals), dim - 1), vals[0].src)
            return
        lips = [self.lip(i) for i in items]
        total = math.sqrt(sum(v * v for v in lips))
        self.rows.append(
            LayerRow(
                node.name,
                "cat",
                self.shape(node),
                None,
                total,
                "sqrt(sum L_i^2) = sqrt(" + " + ".join(f"{v:.4g}^2" for v in lips) + ")",
            )
        )
        self.source(node, total)


def _arg(args: tuple, kwargs: dict, index: int, name: str, default: Any) -> Any:
    if name in kwargs:
        return kwargs[name]
    return args[index] if len(args) > index else default


def _act_functions(torch: Any) -> set:
    F = torch.nn.functional
    names = (
        "relu",
        "relu_",
        "relu6",
        "hardtanh",
        "hardtanh_",
        "leaky_relu",
        "leaky_relu_",
        "elu",
        "elu_",
        "gelu",
        "silu",
        "tanh",
        "sigmoid",
        "softplus",
    )
    out = set()
    for mod in (F, torch):
        for n in names:
            f = getattr(mod, n, None)
            if f is not None:
                out.add(f)
    return out
