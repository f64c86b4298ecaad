"""AlexNet: the seed's one-GPU half network, and the 2012 paper's full widths.

Krizhevsky, Sutskever, Hinton, "ImageNet Classification with Deep Convolutional
Neural Networks", NeurIPS 2012.
"""

from __future__ import annotations

import torch
from torch import nn

from ._weights_init import kaiming_conv_normal_linear_
from ._registry import register_model

__all__ = ["AlexNet", "alexnet", "alexnet_paper"]


class AlexNet(nn.Module):
    """Five convolutions and three fully connected layers.

    ``widths`` are the output channels of the five convolutions and ``fc_width``
    the width of the two hidden fully connected layers; the seed network and the
    paper's full network differ only in these.
    """

    def __init__(
        self,
        *,
        widths: tuple[int, int, int, int, int] = (48, 128, 192, 192, 128),
        fc_width: int = 2048,
        num_classes: int = 1000,
        init_weights: bool = False,
    ) -> None:
        super().__init__()
        c1, c2, c3, c4, c5 = widths
        self.features = nn.Sequential(
            nn.Conv2d(3, c1, kernel_size=11, stride=4, padding=2),  # N x c1 x 55 x 55
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),  # N x c1 x 27 x 27
            nn.Conv2d(c1, c2, kernel_size=5, padding=2),  # N x c2 x 27 x 27
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),  # N x c2 x 13 x 13
            nn.Conv2d(c2, c3, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c3, c4, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c4, c5, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),  # N x c5 x 6 x 6
        )
        self.classifier = nn.Sequential(
            nn.Dropout(p=0.5),
            nn.Linear(c5 * 6 * 6, fc_width),
            nn.ReLU(inplace=True),
            nn.Dropout(p=0.5),
            nn.Linear(fc_width, fc_width),
            nn.ReLU(inplace=True),
            nn.Linear(fc_width, num_classes),
        )
        if init_weights:
            self._initialize_weights()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = torch.flatten(x, start_dim=1)
        return self.classifier(x)

    def _initialize_weights(self) -> None:
        kaiming_conv_normal_linear_(self)


@register_model(family="alexnet", input_shape=(3, 224, 224), source="seed")
def alexnet(*, num_classes: int = 1000, init_weights: bool = False) -> AlexNet:
    """The seed's AlexNet: one GPU's half of the 2012 network (16,630,440 params).

    Deviations from the paper: channel widths 48/128/192/192/128 and 2048-wide FC
    layers (the paper's 96/256/384/384/256 and 4096 are split over two GPUs); no
    local response normalisation; no cross-GPU grouping; first convolution padded
    by 2 so that a 224x224 input gives 55x55 (the paper says 224, which does not
    divide; the seed's prose says "244", a typo). Optional init: Kaiming-normal
    (fan_out) for convolutions, N(0, 0.01) for linear layers, zero biases (the paper
    uses N(0, 0.01) everywhere and biases of 1 in some layers).
    """
    return AlexNet(num_classes=num_classes, init_weights=init_weights)


@register_model(family="alexnet", input_shape=(3, 224, 224))
def alexnet_paper(*, num_classes: int = 1000, init_weights: bool = False) -> AlexNet:
    """AlexNet at the 2012 paper's full widths: 96/256/384/384/256, FC 4096.

    Deviations from the paper: one tower, no grouping (the paper's conv2, conv4 and
    conv5 see only their own GPU's half of the channels, so this network has more
    parameters than the paper's 60M); no local response normalisation; padding 2
    on the first convolution as in the seed.
    """
    return AlexNet(
        widths=(96, 256, 384, 384, 256),
        fc_width=4096,
        num_classes=num_classes,
        init_weights=init_weights,
    )
