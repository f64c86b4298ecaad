"""Static analysis on the meta device: params, MACs, FLOPs, activation memory, per layer.

Nothing here allocates real memory or computes real values: the model and its
input live on the ``meta`` device, so VGG-19 at batch 1024 costs milliseconds.

Counting method
    **MACs** are multiply-accumulates of convolutions and matrix products (mm,
    addmm, bmm, baddbmm, convolution, scaled dot-product attention), counted per
    ATen operator as the forward pass dispatches it, with the shape formulas of
    ``torch.utils.flop_counter`` (which counts 2 FLOPs per MAC; we halve it).
    Elementwise work, pooling, normalisation and softmax are not counted.
    **FLOPs = 2 x MACs**, always, and both carry their names. torchvision's
    ``meta["_ops"]`` ("GFLOPS" in its docs) and timm's ``gmacs``/"GFLOPs" tables
    report *MACs* in billions: compare them with ``macs / 1e9``, not with ``flops``.

    **activation_bytes** is the size of every tensor the forward pass newly
    allocates (each operator output whose schema does not alias an input:
    views and in-place operators such as ``relu_`` cost nothing), the input
    excluded, at the analysis dtype; max pooling's int64 indices count too,
    since eager ``max_pool2d`` allocates them. It is the total traffic of intermediate
    outputs, not a peak: eager PyTorch frees most of them as it goes.

    **saved_bytes** is what training keeps for backward: a forward pass in train
    mode under ``torch.autograd.graph.saved_tensors_hooks``, summing the distinct
    storages autograd saves, parameters excluded (the input batch included, since
    the first layer keeps it).

    Each count is attributed to the innermost module whose ``forward`` is running
    (module hooks keep the stack), which gives the per-layer table; an independent
    count from module hooks alone (conv and linear weights against their output
    shapes) is kept as ``hook_macs`` to cross-check the dispatch count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from classic_cnns import build_on_meta

from .errors import BadValue, ShapeMismatch, first_line
from .precision import DTYPE_BYTES
from .values import InputShape
from .zoo import resolve

DTYPES = {name: getattr(torch, name) for name in DTYPE_BYTES}
ROOT = "(model)"


@dataclass(frozen=True)
class LayerStat:
    """One module's own share: what its forward ran outside its children."""

    path: str
    type: str
    output_shape: Optional[tuple[int, ...]]  # None: not called in this mode (e.g. auxiliary heads in eval)
    params: int
    macs: int
    activation_bytes: int


@dataclass(frozen=True)
class Analysis:
    model: str
    batch_size: int
    input_shape: InputShape  # C x H x W, without the batch
    dtype: str
    built_on: str  # "meta", or "cpu" when the builder needed real tensors
    params: int
    trainable_params: int
    buffer_bytes: int
    macs: int
    activation_bytes: int
    saved_bytes: Optional[int]
    hook_macs: dict[str, int] = field(repr=False)  # conv/linear module path -> MACs from module hooks alone
    layers: tuple[LayerStat, ...] = field(repr=False)
    notes: tuple[str, ...] = ()  # what could not be derived, and why

    @property
    def flops(self) -> int:
        return 2 * self.macs

    @property
    def param_bytes(self) -> dict[str, int]:
        """Bytes of the parameters if held in each dtype the harness measures."""
        return {name: self.params * dtype.itemsize for name, dtype in DTYPES.items()}

    def totals(self) -> dict[str, Any]:
        """The flat record: tidy column names with units."""
        return {
            "model": self.model,
            "batch_size": self.batch_size,
            "input_shape": "x".join(map(str, self.input_shape)),
            "dtype": self.dtype,
            "params": self.params,
            "trainable_params": self.trainable_params,
            **{f"param_bytes_{k}": v for k, v in self.param_bytes.items()},
            "buffer_bytes": self.buffer_bytes,
            "macs": self.macs,
            "flops": self.flops,
            "gmacs": round(self.macs / 1e9, 3),
            "gflops": round(self.flops / 1e9, 3),
            "activation_bytes": self.activation_bytes,
            "saved_bytes": self.saved_bytes,
            "built_on": self.built_on,
        }


def _allocates(func: Any) -> list[bool]:
    """For each return of an operator, whether it is fresh memory (not a view or in-place result)."""
    return [ret.alias_info is None for ret in func._schema.returns]


def _tensor_bytes(value: Any) -> int:
    return value.numel() * value.element_size() if isinstance(value, torch.Tensor) else 0


class _Tracker(TorchDispatchMode):
    """Counts MACs and fresh output bytes per operator, charged to the innermost running module."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.stack: list[str] = [ROOT]
        self.macs: dict[str, int] = {}
        self.act: dict[str, int] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.order: list[str] = []
        self.hook_macs: dict[str, int] = {}
        self._handles = []
        for path, module in model.named_modules():
            self._handles.append(module.register_forward_pre_hook(self._enter(path or ROOT)))
            self._handles.append(module.register_forward_hook(self._leave(path or ROOT)))

    def _enter(self, path: str):
        def hook(module: nn.Module, args: Any) -> None:
            self.stack.append(path)
            if path not in self.order:
                self.order.append(path)
        return hook

    def _leave(self, path: str):
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            self.stack.pop()
            if isinstance(output, torch.Tensor):
                self.shapes[path] = tuple(output.shape)
            elif isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
                self.shapes[path] = tuple(output[0].shape)
            # The independent count: each output element of a conv costs one MAC per weight of its
            # filter (in_channels/groups x kernel), of a linear layer one per input feature.
            if isinstance(output, torch.Tensor) and isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
                self.hook_macs[path] = self.hook_macs.get(path, 0) + output.numel() * module.weight[0].numel()
            elif isinstance(output, torch.Tensor) and isinstance(module, nn.Linear):
                self.hook_macs[path] = self.hook_macs.get(path, 0) + output.numel() * module.in_features
        return hook

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        owner = self.stack[-1]
        packet = func._overloadpacket
        if packet in flop_registry:
            self.macs[owner] = self.macs.get(owner, 0) + flop_registry[packet](*args, **kwargs, out_val=out) // 2
        outs = out if isinstance(out, (tuple, list)) else (out,)
        fresh = sum(_tensor_bytes(o) for o, new in zip(outs, _allocates(func)) if new)
        if fresh:
            self.act[owner] = self.act.get(owner, 0) + fresh
        return out


def _saved_bytes(model: nn.Module, x: torch.Tensor) -> int:
    param_storages = {p.untyped_storage()._cdata for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage._cdata not in param_storages:
            seen[storage._cdata] = storage.nbytes()
        return t

    model.train()
    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x)
    return sum(seen.values())


def analyse(
    name: str,
    *,
    batch_size: int = 1,
    input_shape: Optional[InputShape] = None,
    dtype: str = "float32",
    training: bool = True,
    model_kwargs: Optional[dict[str, Any]] = None,
) -> Analysis:
    """Analyse a registered model at one batch size and input shape (default: the registry's).

    ``training=False`` skips the train-mode pass, leaving ``saved_bytes`` None; so
    does a shape that only the eval-mode network takes, with the reason in ``notes``.
    """
    if dtype not in DTYPES:
        raise BadValue(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    entry = resolve(name)
    shape = tuple(input_shape) if input_shape is not None else entry.input_shape
    model, built_on = build_on_meta(entry.builder, **(model_kwargs or {}))
    model = model.to(DTYPES[dtype]).eval()
    x = torch.empty((batch_size, *shape), device="meta", dtype=DTYPES[dtype])

    tracker = _Tracker(model)
    try:
        with torch.no_grad(), tracker:
            model(x)
    except Exception as exc:  # a shape the network cannot take, whatever layer says so
        raise ShapeMismatch(
            f"input shape {'x'.join(map(str, shape))!r} does not fit model {name!r} ({first_line(exc)}); "
            f"its default is {'x'.join(map(str, entry.input_shape))}"
        ) from None
    finally:
        tracker.remove()
    saved, notes = None, []
    if training:
        try:
            saved = _saved_bytes(model, x)
        except Exception as exc:  # e.g. GoogLeNet's auxiliary heads need 224x224, its main path does not
            notes.append(f"no train-mode figures at this shape: {first_line(exc)}")

    modules = dict(model.named_modules())
    params_of = {path or ROOT: sum(p.numel() for p in m.parameters(recurse=False)) for path, m in modules.items()}
    leaves = [path or ROOT for path, m in modules.items() if not any(True for _ in m.children())]
    charged = set(tracker.macs) | set(tracker.act) | {p for p, n in params_of.items() if n}
    called = [p for p in tracker.order if p in charged or p in leaves]
    uncalled = [p for p in leaves if p not in tracker.order]
    layers = tuple(
        LayerStat(
            path=path,
            type=type(modules[path if path != ROOT else ""]).__name__,
            output_shape=tracker.shapes.get(path),
            params=params_of.get(path, 0),
            macs=tracker.macs.get(path, 0),
            activation_bytes=tracker.act.get(path, 0),
        )
        for path in called + uncalled
    )
    params = sum(p.numel() for p in model.parameters())
    return Analysis(
        model=name,
        batch_size=batch_size,
        input_shape=tuple(shape),
        dtype=dtype,
        built_on=built_on,
        params=params,
        trainable_params=sum(p.numel() for p in model.parameters() if p.requires_grad),
        buffer_bytes=sum(_tensor_bytes(b) for b in model.buffers()),
        macs=sum(tracker.macs.values()),
        activation_bytes=sum(tracker.act.values()),
        saved_bytes=saved,
        hook_macs=tracker.hook_macs,
        layers=layers,
        notes=tuple(notes),
    )


def share(part: int, whole: int) -> float:
    return part / whole if whole else math.nan


def layer_rows(a: Analysis) -> list[dict[str, Any]]:
    """The per-layer table of ``cnnbench inspect``: each layer's figures and its shares of the totals."""
    return [
        {
            "layer": layer.path, "type": layer.type, "output_shape": layer.output_shape,
            "params": layer.params, "macs": layer.macs, "activation_bytes": layer.activation_bytes,
            "macs_share": share(layer.macs, a.macs),
            "activation_share": share(layer.activation_bytes, a.activation_bytes),
        }
        for layer in a.layers
    ]
