"""VGG 11/13/16/19, with and without batch normalisation.

Simonyan, Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition", ICLR 2015 (configurations A, B, D, E).
"""

from __future__ import annotations

from typing import Union

import torch
from torch import nn

from ._registry import register_model

__all__ = ["VGG", "cfgs", "make_layers", "vgg11", "vgg13", "vgg16", "vgg19",
           "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn"]

# "M" is a 2x2 max pool with stride 2; a number is a 3x3 convolution (padding 1) to that many channels.
cfgs: dict[str, list[Union[int, str]]] = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"],
}


class VGG(nn.Module):
    """``features`` followed by the 512*7*7 -> 4096 -> 4096 -> classes classifier.

    There is no adaptive average pool (unlike torchvision), so the input must be
    224x224; the layer names and shapes are otherwise torchvision's, so its state
    dicts load strictly.
    """

    def __init__(self, features: nn.Sequential, *, num_classes: int = 1000, init_weights: bool = False) -> None:
        super().__init__()
        self.features = features
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(True),
            nn.Dropout(p=0.5),
            nn.Linear(4096, 4096),
            nn.ReLU(True),
            nn.Dropout(p=0.5),
            nn.Linear(4096, num_classes),
        )
        if init_weights:
            self._initialize_weights()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # N x 3 x 224 x 224
        x = self.features(x)
        # N x 512 x 7 x 7
        x = torch.flatten(x, start_dim=1)
        # N x 25088
        return self.classifier(x)

    def _initialize_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)


def make_layers(cfg: list[Union[int, str]], *, batch_norm: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = []
    in_channels = 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            assert isinstance(v, int)
            layers.append(nn.Conv2d(in_channels, v, kernel_size=3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(v))
            layers.append(nn.ReLU(inplace=True))
            in_channels = v
    return nn.Sequential(*layers)


def _vgg(cfg: str, batch_norm: bool, num_classes: int, init_weights: bool) -> VGG:
    return VGG(make_layers(cfgs[cfg], batch_norm=batch_norm), num_classes=num_classes, init_weights=init_weights)


_DEVIATIONS = """
    Deviations from the paper: dropout 0.5 after both hidden FC layers as in the
    paper, but no test-time dense evaluation, no multi-scale input, and the
    optional init is Xavier-uniform with zero biases (the paper initialises the
    deeper nets from the shallower one, then notes Glorot init works as well).
"""


@register_model(family="vgg", input_shape=(3, 224, 224), source="seed", tv_name="vgg11")
def vgg11(*, num_classes: int = 1000, init_weights: bool = False) -> VGG:
    """VGG-11 (configuration A), 132,863,336 params."""
    return _vgg("vgg11", False, num_classes, init_weights)


@register_model(family="vgg", input_shape=(3, 224, 224), source="seed", tv_name="vgg13")
def vgg13(*, num_classes: int = 1000, init_weights: bool = False) -> VGG:
    """VGG-13 (configuration B), 133,047,848 params."""
    return _vgg("vgg13", False, num_classes, init_weights)


@register_model(family="vgg", input_shape=(3, 224, 224), source="seed", tv_name="vgg16")
def vgg16(*, num_classes: int = 1000, init_weights: bool = False) -> VGG:
    """VGG-16 (configuration D), 138,357,544 params."""
    return _vgg("vgg16", False, num_classes, init_weights)


@register_model(family="vgg", input_shape=(3, 224, 224), source="seed", tv_name="vgg19")
def vgg19(*, num_classes: int = 1000, init_weights: bool = False) -> VGG:
    """VGG-19 (configuration E), 143,667,240 params."""
    return _vgg("vgg19", False, num_classes, init_weights)


@register_model(family="vgg", input_shape=(3, 224, 224), tv_name="vgg11_bn")
def vgg11_bn(*, num_classes: int = 1000, init_weights: bool = False) -> VGG:
    """VGG-11 with batch normalisation after every convolution (not in the paper; Ioffe and Szegedy 2015)."""
    return _vgg("vgg11", True, num_classes, init_weights)


@register_model(family="vgg", input_shape=(3, 224, 224), tv_name="vgg13_bn")
def vgg13_bn(*, num_classes: int = 1000, init_weights: bool = False) -> VGG:
    """VGG-13 with batch normalisation after every convolution (not in the paper; Ioffe and Szegedy 2015)."""
    return _vgg("vgg13", True, num_classes, init_weights)


@register_model(family="vgg", input_shape=(3, 224, 224), tv_name="vgg16_bn")
def vgg16_bn(*, num_classes: int = 1000, init_weights: bool = False) -> VGG:
    """VGG-16 with batch normalisation after every convolution (not in the paper; Ioffe and Szegedy 2015)."""
    return _vgg("vgg16", True, num_classes, init_weights)


@register_model(family="vgg", input_shape=(3, 224, 224), tv_name="vgg19_bn")
def vgg19_bn(*, num_classes: int = 1000, init_weights: bool = False) -> VGG:
    """VGG-19 with batch normalisation after every convolution (not in the paper; Ioffe and Szegedy 2015)."""
    return _vgg("vgg19", True, num_classes, init_weights)


for _builder in (vgg11, vgg13, vgg16, vgg19, vgg11_bn, vgg13_bn, vgg16_bn, vgg19_bn):
    _builder.__doc__ = (_builder.__doc__ or "") + "\n" + _DEVIATIONS
