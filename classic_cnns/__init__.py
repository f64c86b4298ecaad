"""The classic CNN zoo: the seed's AlexNet, VGG and GoogLeNet, their companions, and torchvision's classifiers.

>>> from classic_cnns import get_model, list_models
>>> list_models("vgg1*")
['vgg11', 'vgg11_bn', 'vgg13', 'vgg13_bn', 'vgg16', 'vgg16_bn', 'vgg19', 'vgg19_bn']
"""

from ._meta import build_on_meta
from ._registry import ModelEntry, UnknownModelError, get_entry, get_model, list_models, register_model
from .alexnet import AlexNet, alexnet, alexnet_paper
from .googlenet import GoogLeNet, googlenet
from .lenet import LeNet5, lenet5
from .nin import NiN, nin
from .vgg import VGG, vgg11, vgg11_bn, vgg13, vgg13_bn, vgg16, vgg16_bn, vgg19, vgg19_bn

__all__ = [
    "build_on_meta",
    "ModelEntry", "UnknownModelError", "get_entry", "get_model", "list_models", "register_model",
    "AlexNet", "GoogLeNet", "LeNet5", "NiN", "VGG",
    "alexnet", "alexnet_paper", "googlenet", "lenet5", "nin",
    "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn",
]
