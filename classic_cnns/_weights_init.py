"""The initialisation the seed gives AlexNet and GoogLeNet."""

from torch import nn


def kaiming_conv_normal_linear_(model: nn.Module) -> None:
    """Kaiming-normal (fan_out, ReLU) for convolutions, N(0, 0.01) for linear layers, zero biases."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.constant_(m.bias, 0)
