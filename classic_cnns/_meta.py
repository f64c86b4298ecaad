"""Building a model on the meta device: its structure without memory or values."""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

import torch
from torch import nn

__all__ = ["build_on_meta"]

# Every initialiser a builder may call; patched to no-ops when a model must be built on the CPU
# only to learn its structure, so that a 644M-parameter RegNet costs untouched pages, not seconds of RNG.
_INIT_FUNCTIONS = (
    "uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "eye_", "dirac_",
    "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_", "sparse_",
)


@contextlib.contextmanager
def _skip_init() -> Iterator[None]:
    saved = {name: getattr(nn.init, name) for name in _INIT_FUNCTIONS if hasattr(nn.init, name)}
    try:
        for name in saved:
            setattr(nn.init, name, lambda tensor, *args, **kwargs: tensor)
        yield
    finally:
        for name, fn in saved.items():
            setattr(nn.init, name, fn)


def build_on_meta(builder: Callable[..., nn.Module], **kwargs: Any) -> tuple[nn.Module, str]:
    """Build a model whose tensors live on the meta device; returns the model and how it was built.

    ``"meta"``: built directly under ``torch.device("meta")``. ``"cpu"``: the builder
    needs real tensors (RegNet computes its widths with them), so it is built on the
    CPU with initialisation skipped and then moved to meta: same structure, no values.
    """
    try:
        with torch.device("meta"):
            return builder(**kwargs), "meta"
    except (NotImplementedError, RuntimeError):
        pass
    with _skip_init():
        model = builder(**kwargs)
    return model.to("meta"), "cpu"
