"""Models by name: ``register_model``, ``list_models``, ``get_model``, ``get_entry``.

The seed's families and their companions register themselves when their
modules are imported (``classic_cnns/__init__.py`` imports them all); every torchvision classification model is added under a
``tv.`` prefix the first time the registry is read, so that importing this
package does not import torchvision.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from torch import nn

from ._meta import build_on_meta

__all__ = ["ModelEntry", "UnknownModelError", "register_model", "list_models", "get_model", "get_entry"]

InputShape = tuple[int, int, int]


class UnknownModelError(KeyError):
    """A model name that is not registered; the message lists the closest names."""

    def __init__(self, name: str, suggestions: list[str]) -> None:
        self.name = name
        self.suggestions = suggestions
        hint = f"; closest: {', '.join(suggestions)}" if suggestions else ""
        super().__init__(f"unknown model {name!r}{hint} (run 'cnnbench list' for all)")

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class ModelEntry:
    """What the registry knows of a model before building it.

    ``input_shape`` is C x H x W without the batch; for torchvision models it is
    resolved on first use (see ``_torchvision_input_shape``).
    """

    name: str
    family: str
    builder: Callable[..., nn.Module] = field(repr=False)
    source: str  # "seed", "companion" or "torchvision"
    _input_shape: Optional[InputShape] = field(default=None, repr=False)
    tv_name: Optional[str] = None  # the torchvision builder's name, when there is one to compare with

    @property
    def input_shape(self) -> InputShape:
        if self._input_shape is not None:
            return self._input_shape
        assert self.source == "torchvision"
        return _torchvision_input_shape(self.name[len(TV_PREFIX):])

    def build(self, **kwargs: Any) -> nn.Module:
        return self.builder(**kwargs)


TV_PREFIX = "tv."
_REGISTRY: dict[str, ModelEntry] = {}
# torchvision warns when these two are built without an explicit init_weights, then uses True.
_TV_DEFAULTS = {"googlenet": {"init_weights": True}, "inception_v3": {"init_weights": True}}


def register_model(
    *, family: str, input_shape: InputShape, source: str = "companion", tv_name: Optional[str] = None
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register a builder under its function name."""

    def wrap(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        name = builder.__name__
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = ModelEntry(name, family, builder, source, tuple(input_shape), tv_name)
        return builder

    return wrap


@functools.lru_cache(maxsize=None)
def _load_all() -> None:
    _register_torchvision()


def _register_torchvision() -> None:
    import torchvision.models as tvm

    for name in tvm.list_models(module=tvm):
        builder = functools.partial(tvm.get_model, name, **_TV_DEFAULTS.get(name, {}))
        family = tvm.get_model_builder(name).__module__.rsplit(".", 1)[-1]
        key = TV_PREFIX + name
        _REGISTRY.setdefault(key, ModelEntry(key, family, builder, "torchvision", None, name))


def _weights_in_order(name: str) -> list[Any]:
    """The model's weights entries, DEFAULT first."""
    import torchvision.models as tvm

    enum = tvm.get_model_weights(name)
    members = list(enum)
    default = getattr(enum, "DEFAULT", None)
    if default is not None:
        members.remove(default)
        members.insert(0, default)
    return members


@functools.lru_cache(maxsize=None)
def _torchvision_input_shape(name: str) -> InputShape:
    """The crop size of the first weights entry (DEFAULT first) that the default-built model accepts.

    Most models accept any size; some (ViT, MaxViT) are built for one, and their
    DEFAULT weights may be for another (``vit_h_14``'s DEFAULT is 518x518, its
    default model takes 224x224). The check is a forward pass on the meta device.
    """
    import torch
    import torchvision.models as tvm

    sizes: list[int] = []
    for weights in _weights_in_order(name):
        crop = weights.transforms.keywords.get("crop_size", 224)
        crop = crop[0] if isinstance(crop, (list, tuple)) else crop
        if crop not in sizes:
            sizes.append(int(crop))
    if len(sizes) <= 1:
        return (3, sizes[0] if sizes else 224, sizes[0] if sizes else 224)
    model = build_on_meta(functools.partial(tvm.get_model, name))[0].eval()
    for size in sizes:
        try:
            with torch.no_grad():
                model(torch.empty(1, 3, size, size, device="meta"))
        except Exception:  # the model rejects this size; try the next entry's
            continue
        return (3, size, size)
    return (3, sizes[0], sizes[0])


def list_models(pattern: str = "*") -> list[str]:
    """Registered names matching a shell-style pattern (``vgg1*``, ``tv.res*``); comma-separated patterns are OR-ed.
    Torchvision's models carry the ``tv.`` prefix, so ``vgg*`` is the project's
    own VGGs and ``*vgg*`` both.
    """
    _load_all()
    patterns = [p.strip() for p in pattern.split(",") if p.strip()] or ["*"]
    return sorted(n for n in _REGISTRY if any(fnmatch.fnmatchcase(n, p) for p in patterns))


def get_entry(name: str) -> ModelEntry:
    if name in _REGISTRY:  # own and plugin models need no torchvision import (a worker starts faster)
        return _REGISTRY[name]
    _load_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownModelError(name, difflib.get_close_matches(name, list(_REGISTRY), n=5, cutoff=0.5)) from None


def get_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model; ``kwargs`` go to its builder (``num_classes``, ``init_weights``, ...)."""
    return get_entry(name).build(**kwargs)
