"""LeNet-5, the predecessor the seed compares AlexNet against.

LeCun, Bottou, Bengio, Haffner, "Gradient-Based Learning Applied to Document
Recognition", Proc. IEEE 1998.
"""

from __future__ import annotations

import torch
from torch import nn

from ._registry import register_model

__all__ = ["LeNet5", "lenet5"]


class LeNet5(nn.Module):
    """C1 (6@5x5) - S2 - C3 (16@5x5) - S4 - C5 (120@5x5) - F6 (84) - output, on 1x32x32."""

    def __init__(self, *, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, kernel_size=5),  # N x 6 x 28 x 28
            nn.Tanh(),
            nn.AvgPool2d(kernel_size=2, stride=2),  # N x 6 x 14 x 14
            nn.Conv2d(6, 16, kernel_size=5),  # N x 16 x 10 x 10
            nn.Tanh(),
            nn.AvgPool2d(kernel_size=2, stride=2),  # N x 16 x 5 x 5
            nn.Conv2d(16, 120, kernel_size=5),  # N x 120 x 1 x 1
            nn.Tanh(),
        )
        self.classifier = nn.Sequential(
            nn.Linear(120, 84),
            nn.Tanh(),
            nn.Linear(84, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


@register_model(family="lenet", input_shape=(1, 32, 32))
def lenet5(*, num_classes: int = 10) -> LeNet5:
    """LeNet-5 for 1x32x32 input, 61,706 params at 10 classes.

    Deviations from the paper: C3 connects to all six S2 maps (the paper's
    connection table uses 10 of the 16x6 pairs); S2 and S4 are plain average
    pools without the paper's trainable coefficient and bias; plain tanh instead
    of the scaled 1.7159*tanh(2/3 x); the output is a linear layer, not Euclidean
    RBF units.
    """
    return LeNet5(num_classes=num_classes)
