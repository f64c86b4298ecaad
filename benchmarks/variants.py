"""Benchmark-only model variants (loaded through CNNBENCH_PLUGINS=variants with benchmarks/ on PYTHONPATH).

``NAME_x120`` runs NAME on its batch and again on the first fifth of it: 20% more
images of work per iteration at batch 5, with the same weights and input.
"""

import torch
from torch import nn

from classic_cnns import get_entry, register_model


class _MoreWork(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.inner(x)
        extra = self.inner(x[: max(1, x.shape[0] // 5)])
        return out + 0 * extra.sum()


def _variant(base: str):
    entry = get_entry(base)

    def build(**kwargs):
        return _MoreWork(entry.build(**kwargs))

    build.__name__ = f"{base}_x120"
    build.__doc__ = f"{base} doing 20% more work per iteration at batch 5 (benchmark only)."
    register_model(family="variant", input_shape=entry.input_shape)(build)


for _base in ("lenet5", "alexnet", "googlenet"):
    _variant(_base)
