"""toeplitz_conv.nn: the network Lipschitz bracket and the spectral normalisation.

Every bracket is checked against dense SVDs of ``from_torch`` matrices (or of the
merged product of the layers' matrices) on small inputs.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import toeplitz_conv as tc
from conftest import require_torch

torch = require_torch()
nn = torch.nn

from models import (  # noqa: E402
    ResNet,
    audio_convnet,
    randomize_batchnorm,
    vgg_small,
)
from toeplitz_conv.nn import lipschitz_bound, spectral_norm  # noqa: E402
from toeplitz_conv.nn._constants import (  # noqa: E402
    gelu_constant,
    maxpool_constant,
    maxpool_counts,
    silu_constant,
)

FAST = {"power_iterations": 8, "starts": 1, "time_limit": None}


def dense_norm(M) -> float:
    M = np.asarray(M, dtype=np.float64)
    if min(M.shape) <= 512:
        return float(np.linalg.norm(M, 2))
    G = M.T @ M if M.shape[0] >= M.shape[1] else M @ M.T  # faster than an SVD
    return math.sqrt(float(np.linalg.eigvalsh(G)[-1]))


def matrix(module, size) -> np.ndarray:
    M, _ = tc.from_torch(module, size, format="dense", dtype="float64")
    return M


def jacobian(fn, shape) -> np.ndarray:
    """The matrix of a linear torch map on one sample of `shape` (float64)."""
    x = torch.zeros(1, *shape, dtype=torch.float64)
    J = torch.autograd.functional.jacobian(lambda t: fn(t).reshape(-1), x)
    return J.reshape(-1, math.prod(shape)).numpy()


def seeded(module):
    torch.manual_seed(0)
    return module


# --------------------------------------------------------------------------- single ops
CONVS = [
    (lambda: nn.Conv1d(3, 4, 3, stride=2, padding=2, padding_mode="reflect"), (3, 12)),
    (
        lambda: nn.Conv1d(4, 4, 5, dilation=2, padding=3, groups=2, padding_mode="replicate"),
        (4, 15),
    ),
    (lambda: nn.Conv2d(2, 3, 3, padding=1, padding_mode="circular"), (2, 6, 5)),
    (lambda: nn.Conv2d(2, 4, (3, 2), stride=(2, 1), padding="valid", bias=False), (2, 7, 6)),
    (lambda: nn.Conv3d(2, 2, 3, padding=1), (2, 4, 4, 3)),
    (lambda: nn.ConvTranspose1d(3, 2, 4, stride=2, padding=1, output_padding=1), (3, 6)),
    (lambda: nn.ConvTranspose2d(4, 2, 3, stride=2, groups=2, dilation=2), (4, 3, 4)),
    (lambda: nn.ConvTranspose3d(2, 2, 2, stride=2), (2, 2, 3, 2)),
]


@pytest.mark.parametrize(("make", "shape"), CONVS)
def test_conv_layer_bracket_is_the_dense_norm(make, shape):
    torch.manual_seed(1)
    conv = make().eval()
    res = lipschitz_bound(conv, shape, **FAST)
    true = dense_norm(matrix(conv, shape[1:]))
    (row,) = res.layers
    assert row.lower <= true * (1 + 1e-9) and true <= row.upper * (1 + 1e-12)
    assert row.upper <= true * (1 + 1e-6)
    assert res.upper == pytest.approx(true, rel=1e-6)
    assert res.lower <= res.upper
    assert res.lower >= 0.9 * true  # a linear map: power iteration finds its norm


def test_batchnorm_folded_exactly():
    torch.manual_seed(2)
    conv, bn = nn.Conv2d(3, 5, 3, padding=1, stride=2), nn.BatchNorm2d(5)
    randomize_batchnorm(bn, seed=3)
    model = nn.Sequential(conv, bn).eval()
    res = lipschitz_bound(model, (3, 9, 8), **FAST)
    (row,) = res.layers
    assert row.kind == "conv2d+bn2d"
    scale = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().double().numpy()
    true = dense_norm(np.repeat(scale, 5 * 4)[:, None] * matrix(conv, (9, 8)))
    assert row.upper == pytest.approx(true, rel=1e-6)
    assert row.lower == pytest.approx(true, rel=1e-6)
    # the usual rule multiplies by max |gamma / sigma|: looser
    assert row.upper < dense_norm(matrix(conv, (9, 8))) * np.abs(scale).max()


def test_standalone_batchnorm_and_linear():
    torch.manual_seed(3)
    bn = randomize_batchnorm(nn.BatchNorm1d(6), seed=1)
    lin = nn.Linear(6, 4)
    model = nn.Sequential(nn.ReLU(), bn, lin).eval()
    res = lipschitz_bound(model, (6,), **FAST)
    scale = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().double().numpy()
    true = dense_norm(lin.weight.detach().double().numpy() * scale[None, :])
    assert res.layers[-1].upper == pytest.approx(true, rel=1e-6)
    assert res.upper == pytest.approx(true, rel=1e-6)


def test_merged_chain_within_one_percent_of_the_composite_norm():
    torch.manual_seed(4)
    c1, pool = nn.Conv2d(2, 4, 3, padding=1), nn.AvgPool2d(2)
    c2, lin = nn.Conv2d(4, 3, 3, padding=1, padding_mode="reflect"), nn.Linear(3 * 4 * 4, 5)
    model = nn.Sequential(c1, pool, c2, nn.Flatten(), lin).eval()
    res = lipschitz_bound(model, (2, 8, 8), **FAST)
    (row,) = res.layers
    M1, M3 = matrix(c1, (8, 8)), matrix(c2, (4, 4))
    P = jacobian(lambda t: nn.functional.avg_pool2d(t, 2), (4, 8, 8))
    W = lin.weight.detach().double().numpy()
    product = W @ M3 @ P @ M1
    true = dense_norm(product)
    assert abs(row.upper - true) <= 0.01 * true and row.lower <= true * (1 + 1e-9)
    assert abs(row.lower - true) <= 0.01 * true
    naive = dense_norm(M1) * dense_norm(P) * dense_norm(M3) * dense_norm(W)
    assert row.upper < naive


def test_linear_residual_is_merged_below_the_naive_rule():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv1d(3, 3, 3, padding=1)
            self.b = nn.Conv1d(3, 3, 3, padding=1)

        def forward(self, x):
            return x + self.b(self.a(x))

    torch.manual_seed(5)
    block = Block().eval()
    res = lipschitz_bound(block, (3, 10), **FAST)
    A, B = matrix(block.a, 10), matrix(block.b, 10)
    true = dense_norm(np.eye(30) + B @ A)
    assert res.upper == pytest.approx(true, rel=1e-6)
    assert res.upper < 1 + dense_norm(A) * dense_norm(B)


def test_residual_block_with_relu_below_the_naive_rule():
    torch.manual_seed(6)
    model = randomize_batchnorm(ResNet((1,), width=4, num_classes=3), seed=2).eval()
    res = lipschitz_bound(model, (3, 12, 12), **FAST)
    # the naive rule: every conv's norm times max |gamma/sigma| of its BatchNorm
    naive = 1.0
    convs = {"conv1": (12, 12), "layer1.0.conv1": (3, 3), "layer1.0.conv2": (3, 3)}
    parts = {}
    for name, size in convs.items():
        conv = model.get_submodule(name)
        bn = model.get_submodule(name.replace("conv", "bn"))
        s = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).abs().max().item()
        parts[name] = dense_norm(matrix(conv, size)) * s
    naive = parts["conv1"] * 2 * (1 + parts["layer1.0.conv1"] * parts["layer1.0.conv2"])
    W = model.fc.weight.detach().double().numpy()
    naive *= 1 / 3 * dense_norm(W)  # avg pool 3x3 -> 1x1 has norm 1/3
    assert res.lower <= res.upper < naive
    add = [r for r in res.layers if r.kind == "add"]
    assert len(add) == 1


def test_cat_of_two_sources_and_of_one_source():
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv1d(2, 2, 3, padding=1)
            self.b = nn.Conv1d(2, 3, 1)

        def forward(self, x):
            return torch.cat([self.a(x), torch.relu(self.b(x))], dim=1)

    class One(Two):
        def forward(self, x):
            return torch.cat([self.a(x), self.b(x)], dim=-1)

    torch.manual_seed(7)
    two = Two().eval()
    res = lipschitz_bound(two, (2, 8), **FAST)
    A, B = dense_norm(matrix(two.a, 8)), dense_norm(matrix(two.b, 8))
    assert res.upper == pytest.approx(math.hypot(A, B), rel=1e-6)
    one = One()
    one.b = nn.Conv1d(2, 2, 1)  # the same channels: concatenated along the length
    one.eval()
    res = lipschitz_bound(one, (2, 8), **FAST)
    (row,) = res.layers
    assert row.kind == "conv1d+conv1d"
    stacked = np.concatenate(
        [matrix(one.a, 8).reshape(2, 8, 16), matrix(one.b, 8).reshape(2, 8, 16)], axis=1
    ).reshape(32, 16)
    assert res.upper == pytest.approx(dense_norm(stacked), rel=1e-6)


class _Linear(nn.Module):
    """A linear map of one activation written with torch's sums and scalings (`how`)."""

    def __init__(self, how):
        super().__init__()
        self.how = how
        self.conv = nn.Conv1d(2, 2, 3, padding=1)
        self.register_buffer("c", torch.ones(1, 2, 6))

    def forward(self, x):
        y = self.conv(x)
        if self.how == "x+x":
            return x + x
        if self.how == "add x x alpha":
            return torch.add(x, x, alpha=3)
        if self.how == "y+y":
            return y + y
        if self.how == "y+=y":
            y += y
            return y
        if self.how == "y.add_(y)":
            return y.add_(y)
        if self.how == "y.sub(y, alpha)":
            return y.sub(y, alpha=3)
        if self.how == "y+y+y":
            return y + y + y
        if self.how == "x-x+y":
            return x - x + y
        if self.how == "c + alpha y":
            return torch.add(self.c, y, alpha=3)
        if self.how == "c - alpha y":
            return torch.sub(self.c, y, alpha=3)
        if self.how == "c - y":
            return self.c - y
        if self.how == "y + alpha c":
            return torch.add(y, self.c, alpha=5)
        if self.how == "x + alpha y":
            return torch.add(x, y, alpha=5)
        if self.how == "cat x x":
            return torch.cat([x, x], dim=1)
        if self.how == "cat y y":
            return torch.cat([y, y], dim=-1)
        raise AssertionError(self.how)


@pytest.mark.parametrize(
    "how",
    [
        "x+x",
        "add x x alpha",
        "y+y",
        "y+=y",
        "y.add_(y)",
        "y.sub(y, alpha)",
        "y+y+y",
        "x-x+y",
        "c + alpha y",
        "c - alpha y",
        "c - y",
        "y + alpha c",
        "x + alpha y",
        "cat x x",
        "cat y y",
    ],
)
def test_sums_of_one_activation_are_bracketed(how):
    """An activation added to itself, scaled by `alpha` as either operand, or concatenated
    with itself: the bracket holds the norm of the map's Jacobian (its matrix: the map is
    affine), and closes on it."""
    torch.manual_seed(11)
    model = _Linear(how).double().eval()
    res = lipschitz_bound(model, (2, 6), **FAST)
    true = dense_norm(jacobian(model, (2, 6)))
    assert res.lower <= true * (1 + 1e-9) and true <= res.upper * (1 + 1e-9)
    assert res.upper == pytest.approx(true, rel=1e-4)


def test_adaptive_pool_with_sizes_that_do_not_divide():
    torch.manual_seed(8)
    conv = nn.Conv2d(2, 2, 3)
    model = nn.Sequential(conv, nn.AdaptiveAvgPool2d((3, 2)), nn.Flatten()).eval()
    res = lipschitz_bound(model, (2, 9, 7), **FAST)
    P = jacobian(lambda t: nn.functional.adaptive_avg_pool2d(t, (3, 2)), (2, 7, 5))
    true = dense_norm(P @ matrix(conv, (9, 7)))
    assert res.upper == pytest.approx(true, rel=1e-6)
    alone = lipschitz_bound(nn.AdaptiveAvgPool2d((3, 2)).eval(), (2, 7, 5), **FAST)
    assert dense_norm(P) * (1 - 1e-9) <= alone.upper <= dense_norm(P) * 1.5


# --------------------------------------------------------------------------- non-linear
def _max_derivative(fn) -> float:
    x = torch.linspace(-8, 8, 400001, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(fn(x).sum(), x)
    return float(g.abs().max())


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        (nn.ReLU(), 1.0),
        (nn.LeakyReLU(0.2), 1.0),
        (nn.LeakyReLU(-3.0), 3.0),
        (nn.ELU(alpha=2.0), 2.0),
        (nn.Tanh(), 1.0),
        (nn.Sigmoid(), 0.25),
        (nn.GELU(), None),
        (nn.GELU(approximate="tanh"), None),
        (nn.SiLU(), None),
        (nn.Softplus(), 1.0),
        (nn.ReLU6(), 1.0),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, nn.Module) else str(v),
)
def test_activation_constants(module, expected):
    true = _max_derivative(module) if expected is None else expected
    res = lipschitz_bound(nn.Sequential(module).eval(), (5,), **FAST)
    (row,) = res.layers
    assert row.upper >= true * (1 - 1e-9) and row.upper == pytest.approx(true, rel=1e-6)
    assert row.lower <= row.upper


def test_named_constants():
    assert gelu_constant() == pytest.approx(1.1289, abs=1e-4)
    assert silu_constant() == pytest.approx(1.0998, abs=1e-4)


@pytest.mark.parametrize(
    ("pool", "shape", "count"),
    [
        (nn.MaxPool2d(2), (1, 6, 6), 1),
        (nn.MaxPool2d(3, stride=1), (1, 6, 6), 9),
        (nn.MaxPool2d(3, stride=2, padding=1), (1, 7, 7), 4),
        (nn.MaxPool1d(3, stride=2, dilation=2), (1, 11), 3),
        (nn.AdaptiveMaxPool1d(3), (1, 7), 2),
    ],
)
def test_maxpool_constant_is_attained(pool, shape, count):
    res = lipschitz_bound(nn.Sequential(pool).eval(), shape, **FAST)
    (row,) = res.layers
    assert row.upper == pytest.approx(math.sqrt(count))
    # attained: raise the position that the most windows hold, all else far below
    x = -100.0 * torch.ones(1, *shape, dtype=torch.float64)
    best, pair = 0.0, None
    for i in range(math.prod(shape)):
        y = x.clone().reshape(-1)
        y[i] = 1.0
        z = y.clone()
        z[i] = 2.0
        d = (pool(z.reshape(x.shape)) - pool(y.reshape(x.shape))).norm().item()
        if d > best:
            best, pair = d, i
    assert pair is not None and best == pytest.approx(math.sqrt(count))


def test_maxpool_counts_formula():
    assert maxpool_counts((6, 6), (2, 2), (3, 3), (3, 3), (0, 0), (1, 1)) == 1
    assert maxpool_constant(4)[1] == 2.0


# --------------------------------------------------------------------------- structures
@pytest.mark.parametrize(
    ("make", "shape"),
    [
        (lambda: ResNet((1, 1), width=4, num_classes=5), (3, 16, 16)),
        (vgg_small, (3, 8, 8)),
        (audio_convnet, (1, 32)),
    ],
    ids=["resnet", "vgg", "audio1d"],
)
def test_network_structures(make, shape):
    torch.manual_seed(9)
    model = randomize_batchnorm(make(), seed=4).eval()
    res = lipschitz_bound(model, shape, **FAST)
    assert 0 < res.lower <= res.upper
    # the lower end is attained: re-evaluate the model at a pair of points near it
    x = torch.randn(3, *shape)
    y = x + 1e-2 * torch.randn(3, *shape)
    with torch.no_grad():
        ratios = (model(x) - model(y)).flatten(1).norm(dim=1) / (x - y).flatten(1).norm(dim=1)
    assert float(ratios.max()) <= res.upper * (1 + 1e-4)
    text = str(res)
    assert "<= L <=" in text and res.layers[0].name in text


# --------------------------------------------------------------------------- refusals
class _Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(4, 1, batch_first=True)

    def forward(self, x):
        return self.attn(x, x, x, need_weights=False)[0]


class _Square(nn.Module):
    def forward(self, x):
        return x * x


class _Branchy(nn.Module):
    def forward(self, x):
        return x if x.sum() > 0 else -x


class _Conv(nn.Module):
    """One conv, then `how`: forms whose traced graph would read a value other than the one
    torch computes (in-place changes of a tensor read again), or that are not Lipschitz."""

    def __init__(self, how):
        super().__init__()
        self.how = how
        self.a = nn.Conv1d(2, 2, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        y = self.a(x)
        if self.how == "mul_ then read":
            y.mul_(10)
            return y
        if self.how == "inplace relu then read":
            self.relu(y)
            return y - self.a(x)
        if self.how == "alias +=":
            z = y
            z += 10 * x
            return y
        if self.how == "floor division":
            return y + torch.div(y, 0.1, rounding_mode="floor")
        raise AssertionError(self.how)


@torch.fx.wrap
def flatten(x):  # a user function named like torch's, not traced into
    return torch.sin(10 * x).flatten(1)


class _Wrapped(nn.Module):
    def forward(self, x):
        return flatten(x)


def _hooked(kind):
    model = nn.Sequential(nn.Conv1d(2, 2, 3, padding=1))
    if kind == "hook":
        model[0].register_forward_hook(lambda mod, i, o: o * 10)
    else:
        model[0].register_forward_pre_hook(lambda mod, i: (i[0] * 10,))
    return model


@pytest.mark.parametrize(
    ("model", "shape", "error", "match"),
    [
        (_Conv("mul_ then read"), (2, 6), ValueError, "changes 'a' in place, which is read"),
        (_Conv("inplace relu then read"), (2, 6), ValueError, "module 'relu' .*in place"),
        (_Conv("alias +="), (2, 6), ValueError, "changes 'a' in place"),
        (_Conv("floor division"), (2, 6), ValueError, "rounding division"),
        (nn.Sequential(nn.MaxPool2d(2, 1)), (5, 5), ValueError, "pass the channel axis"),
        (nn.Sequential(nn.AvgPool1d(2)), (6,), ValueError, "pass the channel axis"),
        (nn.Sequential(nn.Softplus(threshold=0.5)), (4,), ValueError, "threshold=0.5"),
        (_Wrapped(), (2, 6), ValueError, "neither torch's nor an operator"),
        (_hooked("hook"), (2, 6), ValueError, "module '0' \\(Conv1d\\) has forward hooks"),
        (_hooked("pre"), (2, 6), ValueError, "has forward pre-hooks"),
    ],
    ids=[
        "mul_",
        "inplace-relu",
        "alias",
        "floor-div",
        "pool-no-channel",
        "pool1d-no-channel",
        "softplus",
        "wrapped",
        "hook",
        "pre-hook",
    ],
)
def test_misread_forms_are_refused(model, shape, error, match):
    """Each of these was bounded below its true constant before it was refused."""
    with pytest.raises(error, match=match):
        lipschitz_bound(model.double().eval(), shape, **FAST)


def test_in_place_forms_read_once_are_bounded():
    """An in-place change of a tensor nothing else reads is its out-of-place form: the input
    scaled in place, a residual added in place, inplace ReLUs."""

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv1d(2, 2, 3, padding=1)
            self.relu = nn.ReLU(inplace=True)

        def forward(self, x):
            x = x.mul_(3)
            out = self.a(x)
            out += x
            return self.relu(out)

    torch.manual_seed(12)
    block = Block().double().eval()
    res = lipschitz_bound(block, (2, 6), **FAST)
    M = 3 * (matrix(block.a, 6) + np.eye(12))
    assert res.upper == pytest.approx(dense_norm(M), rel=1e-6)


@pytest.mark.parametrize(
    ("model", "shape", "error", "match"),
    [
        (_Attention(), (3, 4), ValueError, "module 'attn' \\(MultiheadAttention\\)"),
        (_Square(), (4,), ValueError, "product of two activations"),
        (nn.Sequential(nn.LayerNorm(4)), (4,), ValueError, "module '0' \\(LayerNorm\\)"),
        (nn.Sequential(nn.Flatten(0)), (2, 3), ValueError, "mixes the samples"),
        (_Branchy(), (4,), TypeError, "_Branchy"),
    ],
    ids=["attention", "square", "layernorm", "batch-flatten", "untraceable"],
)
def test_unsupported_operations_raise_by_name(model, shape, error, match):
    with pytest.raises(error, match=match):
        lipschitz_bound(model.eval(), shape, **FAST)


def test_bad_arguments():
    with pytest.raises(ValueError, match="training mode"):
        lipschitz_bound(nn.Sequential(nn.Linear(2, 2)), (2,))
    with pytest.raises(ValueError, match="input_size"):
        lipschitz_bound(nn.Linear(2, 2).eval(), (0, 2))
    with pytest.raises(ValueError, match="does not fit"):
        lipschitz_bound(nn.Linear(2, 2).eval(), (3,))
    with pytest.raises(TypeError, match=r"torch\.nn\.Module"):
        lipschitz_bound(lambda x: x, (2,))


# --------------------------------------------------------------------------- spectral_norm
def test_spectral_norm_fixes_pytorch_issue_99149():
    torch.manual_seed(10)
    theirs = nn.utils.parametrizations.spectral_norm(nn.Conv2d(20, 20, 7, padding=3)).eval()
    ours = spectral_norm(nn.Conv2d(20, 20, 7, padding=3), 12).eval()
    assert dense_norm(matrix(theirs, 12)) > 1.3  # the reshaped weight's norm is not the layer's
    true = dense_norm(matrix(ours, 12))
    assert 0.97 <= true <= 1 + 1e-6


SN_LAYERS = [
    (lambda: nn.Conv1d(3, 4, 3, stride=2, padding=2, padding_mode="reflect"), 13),
    (
        lambda: nn.Conv1d(4, 4, 3, dilation=2, groups=2, padding="same", padding_mode="replicate"),
        12,
    ),
    (lambda: nn.Conv2d(3, 4, 3, padding=1, padding_mode="circular"), (6, 5)),
    (lambda: nn.Conv2d(2, 4, 2, stride=2), 6),
    (lambda: nn.Conv3d(2, 3, 3, padding=1, stride=(1, 2, 1)), 4),
    (lambda: nn.ConvTranspose1d(3, 2, 4, stride=2, padding=1, output_padding=1), 7),
    (lambda: nn.ConvTranspose2d(4, 2, 3, stride=2, groups=2), (4, 3)),
    (lambda: nn.ConvTranspose3d(2, 2, 2, stride=2, dilation=1), 2),
]


@pytest.mark.parametrize(("make", "size"), SN_LAYERS)
def test_spectral_norm_after_training_steps(make, size):
    torch.manual_seed(11)
    layer = spectral_norm(make(), size)
    n = layer.weight.ndim - 2
    spatial = (size,) * n if isinstance(size, int) else size
    channels = layer.parametrizations.weight.original.shape[
        0 if isinstance(layer, nn.modules.conv._ConvTransposeNd) else 1
    ] * (1 if isinstance(layer, nn.modules.conv._ConvTransposeNd) else layer.groups)
    opt = torch.optim.SGD(layer.parameters(), lr=0.05)
    layer.train()
    for _ in range(12):
        x = torch.randn(4, channels, *spatial)
        loss = (layer(x) - 1).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    layer.eval()
    true = dense_norm(matrix(layer, spatial))
    assert 0.97 <= true <= 1 + 1e-6
    layer.train()
    with torch.no_grad():
        trained = dense_norm(matrix(layer, spatial))
    assert 0.97 <= trained <= 1.03  # power iteration, one step per pass: close to 1


def test_spectral_norm_gradient_is_that_of_the_top_singular_value():
    torch.manual_seed(12)
    layer = spectral_norm(nn.Conv1d(2, 2, 3, padding=1), 6, n_power_iterations=50)
    w = layer.parametrizations.weight.original
    layer.train()
    layer.weight  # noqa: B018 - converge u, v
    sigma_fn = lambda W: torch.linalg.matrix_norm(  # noqa: E731
        torch.from_numpy(tc.conv1d_matrix(W.detach().numpy(), 6, padding=1, format="dense")), ord=2
    )
    W0 = w.detach().clone()
    G = torch.randn_like(W0)
    out = (layer.weight * G).sum()
    (grad,) = torch.autograd.grad(out, w)
    h = 1e-3
    with torch.no_grad():
        dirn = torch.randn_like(W0)
        f = lambda W: float((W / sigma_fn(W) * G).sum())  # noqa: E731
        fd = (f(W0 + h * dirn) - f(W0 - h * dirn)) / (2 * h)
    assert float((grad * dirn).sum()) == pytest.approx(fd, rel=2e-2, abs=1e-3)


def test_spectral_norm_survives_dtype_moves_and_data_writes():
    """`.double()` (nn.Module._apply) works on a normalised layer, and a write through
    `.data` (which leaves the version counter alone) renews the certified norm."""
    torch.manual_seed(13)
    conv = spectral_norm(nn.Conv1d(2, 2, 3, padding=1), (8,)).double().eval()
    assert conv.weight.dtype == torch.float64
    with torch.no_grad():
        conv.parametrizations.weight.original.data.mul_(10)
    assert dense_norm(matrix(conv, 8)) == pytest.approx(1.0, rel=1e-6)
    res = lipschitz_bound(nn.Sequential(conv).eval(), (2, 8), **FAST)
    assert res.upper == pytest.approx(1.0, rel=1e-6)


def test_spectral_norm_refuses_bad_input():
    with pytest.raises(TypeError, match="Linear"):
        spectral_norm(nn.Linear(2, 2), 4)
    with pytest.raises(ValueError, match="input"):
        spectral_norm(nn.Conv1d(1, 1, 5), 3)


# --------------------------------------------------------------------------- CLI
def test_cli_lipschitz(tmp_path, capsys):
    from toeplitz_conv.cli import main

    path = tmp_path / "nets.py"
    path.write_text(
        "import torch\n"
        "def make():\n"
        "    torch.manual_seed(0)\n"
        "    return torch.nn.Sequential(torch.nn.Conv1d(2, 3, 3), torch.nn.Tanh())\n"
    )
    assert main(["lipschitz", f"{path}:make", "--size", "2x9", "--power-iterations", "3"]) == 0
    text = capsys.readouterr().out
    assert "<= L <=" in text and "conv1d" in text and "tanh" in text
    assert main(["lipschitz", f"{path}:missing", "--size", "2x9"]) == 2
    assert "no attribute 'missing'" in capsys.readouterr().err
    assert main(["lipschitz", f"{path}:make", "--size", "2by9"]) == 2
    assert "--size" in capsys.readouterr().err
