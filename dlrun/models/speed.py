"""A small ResNet for time-to-accuracy on CIFAR-10, after the public speed records (the ResNet-9 of
the DAWNBench-winning entry and its descendants such as cifar10-airbench): few, wide layers, all
3x3 convs with batch norm, two residual blocks, a max-pooled head and a scaled linear layer."""

from __future__ import annotations

from torch import Tensor, nn


def conv_bn(c_in: int, c_out: int, pool: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
    ]
    layers.append(nn.GELU())
    if pool:
        layers.insert(1, nn.MaxPool2d(2))  # pool before batch norm: 4x less normalisation work
    return nn.Sequential(*layers)


class Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_bn(channels, channels), conv_bn(channels, channels))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResNet9(nn.Module):
    """prep 64 -> 128 (pool, residual) -> 256 (pool) -> 512 (pool, residual) -> global max-pool ->
    linear. `width` scales every stage (1.0 = 6.5M parameters); logits are multiplied by `scale`
    (0.125 in the records: it keeps early logits small, like a high softmax temperature)."""

    def __init__(
        self, in_channels: int, num_classes: int, width: float = 1.0, scale: float = 0.125
    ) -> None:
        super().__init__()
        c = [int(w * width) for w in (64, 128, 256, 512)]
        self.net = nn.Sequential(
            conv_bn(in_channels, c[0]),
            conv_bn(c[0], c[1], pool=True),
            Residual(c[1]),
            conv_bn(c[1], c[2], pool=True),
            conv_bn(c[2], c[3], pool=True),
            Residual(c[3]),
            nn.AdaptiveMaxPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(c[3], num_classes, bias=False)
        self.scale = scale

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> (B, classes)
        return self.head(self.net(x)) * self.scale
