"""Small torch model structures shared by tests/test_nn.py and benchmarks/nn.py.

``ResNet`` is torchvision's ResNet with ``BasicBlock`` written out (torchvision is not
needed): ``resnet18()`` has its exact structure (conv 7x7/2, max pool 3/2, four stages
of two blocks with 1x1/2 downsampling, global average pooling, a linear layer);
``width`` and ``blocks`` give the small variants the tests use.
"""

from __future__ import annotations

try:
    import torch
    from torch import nn
except ImportError:  # pragma: no cover - pytest's doctest collection without torch
    import pytest

    pytest.skip("torch is not installed", allow_module_level=True)


class BasicBlock(nn.Module):
    """torchvision's BasicBlock: conv-bn-relu-conv-bn, ``out += identity``, relu."""

    expansion = 1

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet(nn.Module):
    """torchvision's ResNet with BasicBlocks (``blocks=(2, 2, 2, 2)``: ResNet-18)."""

    def __init__(
        self, blocks=(2, 2, 2, 2), width: int = 64, num_classes: int = 1000, in_channels: int = 3
    ) -> None:
        super().__init__()
        self.inplanes = width
        self.conv1 = nn.Conv2d(in_channels, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        layers = []
        for i, n in enumerate(blocks):
            layers.append(self._make_layer(width * 2**i, n, stride=1 if i == 0 else 2))
        self.layer1, self.layer2, self.layer3, self.layer4 = (layers + [nn.Identity()] * 4)[:4]
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width * 2 ** (len(blocks) - 1), num_classes)

    def _make_layer(self, planes: int, n: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes),
            )
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, n)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


def resnet18(num_classes: int = 1000) -> ResNet:
    """ResNet-18 (torchvision's structure), random weights."""
    return ResNet((2, 2, 2, 2), 64, num_classes)


def randomize_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random running statistics and affine parameters (a trained-looking BatchNorm)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.running_mean.copy_(0.1 * torch.randn(n, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(n, generator=gen))
                m.weight.copy_(0.5 + torch.rand(n, generator=gen))
                m.bias.copy_(0.1 * torch.randn(n, generator=gen))
    return model


def vgg_small(in_channels: int = 3, classes: int = 10) -> nn.Sequential:
    """A VGG-style stack: (conv-bn-relu) x 2, max pool, twice, then two linear layers."""

    def stage(cin, cout):
        return [
            nn.Conv2d(cin, cout, 3, padding=1),
            nn.BatchNorm2d(cout),
            nn.ReLU(),
            nn.Conv2d(cout, cout, 3, padding=1),
            nn.BatchNorm2d(cout),
            nn.ReLU(),
            nn.MaxPool2d(2),
        ]

    return nn.Sequential(
        *stage(in_channels, 4),
        *stage(4, 8),
        nn.Flatten(),
        nn.Linear(8 * 2 * 2, 16),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(16, classes),
    )


def audio_convnet(in_channels: int = 1, classes: int = 5) -> nn.Sequential:
    """A 1-D convnet: strided, dilated and reflect-padded convs, GELU, average pooling."""
    return nn.Sequential(
        nn.Conv1d(in_channels, 4, 5, stride=2, padding=2, padding_mode="reflect"),
        nn.BatchNorm1d(4),
        nn.GELU(),
        nn.Conv1d(4, 8, 3, dilation=2, padding=2),
        nn.BatchNorm1d(8),
        nn.LeakyReLU(0.1),
        nn.AvgPool1d(2),
        nn.Conv1d(8, 8, 3, groups=2, padding=1),
        nn.SiLU(),
        nn.AdaptiveAvgPool1d(1),
        nn.Flatten(),
        nn.Linear(8, classes),
    )
