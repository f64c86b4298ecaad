"""Network in Network, whose global average pooling GoogLeNet adopted.

Lin, Chen, Yan, "Network In Network", ICLR 2014.
"""

from __future__ import annotations

import torch
from torch import nn

from ._registry import register_model

__all__ = ["NiN", "nin"]


def mlpconv(in_channels: int, out_channels: int, kernel_size: int, stride: int, padding: int) -> nn.Sequential:
    """A k x k convolution followed by two 1x1 convolutions (the "micro network"), each with ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, kernel_size=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, kernel_size=1),
        nn.ReLU(inplace=True),
    )


class NiN(nn.Module):
    """Four mlpconv blocks; the last maps to one channel per class, then global average pooling."""

    def __init__(self, *, num_classes: int = 1000) -> None:
        super().__init__()
        self.features = nn.Sequential(
            mlpconv(3, 96, kernel_size=11, stride=4, padding=0),  # N x 96 x 54 x 54
            nn.MaxPool2d(kernel_size=3, stride=2),  # N x 96 x 26 x 26
            mlpconv(96, 256, kernel_size=5, stride=1, padding=2),  # N x 256 x 26 x 26
            nn.MaxPool2d(kernel_size=3, stride=2),  # N x 256 x 12 x 12
            mlpconv(256, 384, kernel_size=3, stride=1, padding=1),  # N x 384 x 12 x 12
            nn.MaxPool2d(kernel_size=3, stride=2),  # N x 384 x 5 x 5
            nn.Dropout(0.5),
            mlpconv(384, num_classes, kernel_size=3, stride=1, padding=1),  # N x classes x 5 x 5
        )
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = self.avgpool(x)
        return torch.flatten(x, 1)


@register_model(family="nin", input_shape=(3, 224, 224))
def nin(*, num_classes: int = 1000) -> NiN:
    """Network in Network for 3x224x224 ImageNet input.

    The paper gives full layer sizes only for its CIFAR/SVHN/MNIST models; this is
    the four-block ImageNet layout of its released Caffe model (as reproduced in
    "Dive into Deep Learning"). Deviations: the last block's ReLU before global
    pooling is kept as in that model; no local response normalisation.
    """
    return NiN(num_classes=num_classes)
