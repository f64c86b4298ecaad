"""Getting one case ready to time: build, cast, check, cold start, warm up.

Shared by everything that runs a case's step: the worker (``bench.worker``),
the profiler (``bench.profiling``), instruction counts (``bench.instructions``),
the pytest plugin and the benchmarks, so that all of them run the same model on
the same input.

Method
    **Build.** ``torch.manual_seed(seed)`` then the registry's builder; the input
    is N(0, 1) from a generator seeded ``seed + 1``; training labels from the same
    generator. The reference output (fp32, contiguous, eager, same weights and
    input, on the case's device, in the check's mode, below) is computed before
    the model is cast (bf16/fp16) or converted to channels_last.

    **Step.** Inference runs in eval mode under ``torch.inference_mode()``;
    training is a full step (zero grads, forward, cross-entropy on the fixed
    labels, backward, SGD with momentum 0.9, lr 1e-4), in train mode; a model
    returning several outputs (GoogLeNet's ``(main, aux2, aux1)``, Inception-v3's
    aux logits) adds its auxiliary losses weighted 0.3, as in the GoogLeNet paper.

    **Validity** (``validity``). Asked-for channels_last is checked on the input
    and every 4-D conv weight; the output dtype against the precision
    (``bench.precision``); every variant other than fp32/contiguous/eager against
    the reference (max absolute error, and that error relative to the
    reference's largest magnitude, within the precision's tolerance for the
    case's mode). Both outputs come from the same weights, buffers and input:
    inference compares eval-mode outputs; training compares the forward the
    training step runs (train mode: BatchNorm normalises with the batch's own
    statistics), with dropout modules switched off and the RNG seeded alike,
    before any optimizer step has changed the weights, and the buffers
    (BatchNorm's running statistics) put back afterwards. The main output is
    compared (GoogLeNet's auxiliary heads apply functional dropout).

    **Cold start** (``get_ready``) is the first step alone (for ``compile``, the
    compilation with it); a training case is checked before it (the step changes
    the weights), an inference case on the cold start's own output (an inference
    step is the check's forward: eval mode, no autograd, the case's autocast). **Warm-up** (``warm_up``) then runs until the median of
    the last three iterations is within 5% of the three before, or the warm-up
    cap passes (``warmup_settled`` says which).
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import math
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional, Sequence

import torch
from torch import nn

from . import allocator
from .cases import Case
from .devices import device_of
from .environment import cpu_llc_bytes
from .errors import first_line
from .precision import PRECISIONS, tolerance
from .record import CompileCounts
from .stats import median
from .zoo import resolve


def dtype(name: str) -> torch.dtype:
    """The torch dtype of a dtype name of ``bench.precision`` ("bfloat16" -> torch.bfloat16)."""
    return getattr(torch, name)


def set_backends(tf32: bool, cudnn_benchmark: bool) -> None:
    """The run-wide backend flags, set the same way in a worker and in-process."""
    torch.backends.cuda.matmul.allow_tf32 = bool(tf32)
    torch.backends.cudnn.allow_tf32 = bool(tf32)
    torch.backends.cudnn.benchmark = bool(cudnn_benchmark)


def apply_flags(flags: dict[str, Any]) -> str:
    """A run's worker flags (``bench.runner.RunOptions.worker_flags``: the backend flags and the host
    allocator, ``bench.allocator``) in this process, from a request; a request without an allocator gets the
    default. Returns the allocator in effect."""
    set_backends(bool(flags.get("tf32")), bool(flags.get("cudnn_benchmark")))
    return allocator.use(flags.get("allocator") or allocator.DEFAULT_ALLOCATOR)


class Skip(Exception):
    """This combination cannot run here; the message says why."""


def is_oom(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(
        s in text for s in ("can't allocate memory", "out of memory", "not enough memory", "cannot allocate memory"))


def failure(exc: Exception) -> tuple[str, str]:
    """The status and reason of a case that could not be measured: skipped, oom or error."""
    if isinstance(exc, Skip):
        return "skipped", str(exc)
    reason = f"{type(exc).__name__}: {first_line(exc)}" if str(exc).strip() else type(exc).__name__
    return "oom" if is_oom(exc) else "error", reason


def skip_reason(case: Case) -> Optional[str]:
    """Why this combination cannot run here, or None. Cheap: the runner asks before starting a worker."""
    device = device_of(case.device)
    reason = device.unavailable() or device.unsupported(case.precision)
    if reason:
        return reason
    if PRECISIONS[case.precision].autocast:
        try:
            with torch.autocast(device.kind, dtype=dtype(PRECISIONS[case.precision].compute)):
                nn.functional.conv2d(torch.ones(1, 1, 3, 3, device=case.device),
                                     torch.ones(1, 1, 1, 1, device=case.device))
        except (RuntimeError, AssertionError) as exc:
            return f"{case.precision} autocast is not available on {case.device} in this torch build: {first_line(exc)}"
    if case.compile_mode:
        if not torch._dynamo.is_dynamo_supported():
            return f"torch.compile is not supported on Python {sys.version.split()[0]}"
        return device.compile_unavailable()
    return None


def loss(out: Any, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the main output, plus 0.3 x that of each auxiliary output."""
    if isinstance(out, torch.Tensor):
        return nn.functional.cross_entropy(out.float(), labels)
    main, *aux = out
    total = nn.functional.cross_entropy(main.float(), labels)
    for extra in aux:
        if isinstance(extra, torch.Tensor):
            total = total + 0.3 * nn.functional.cross_entropy(extra.float(), labels)
    return total


def _first(out: Any) -> torch.Tensor:
    return out if isinstance(out, torch.Tensor) else out[0]


@dataclass
class Base:
    """What every variant of one model, batch, input and mode is made from (the module docstring's **Build**): the
    fp32 contiguous model on the case's device, the input, the generator that draws the training labels next, and
    the reference output (None where no case needs one). ``shared``: it is still a group builder's
    (``bench.forkserver``), not yet taken by this process (``take_base``)."""

    model: nn.Module
    x: torch.Tensor
    gen: torch.Generator
    reference: Optional[torch.Tensor]
    shared: bool = False  # a group builder's, held for the processes forked from it
    builder_pages: bool = False  # a forked member's parameters and buffers still the builder's pages (never copied)


BaseKey = tuple[str, int, tuple[int, ...], str, str, int]
_BASES: dict[BaseKey, Base] = {}  # the base this process holds for its case: built ahead (``own_base``, ``prebuild``)


def base_key(case: Case, seed: int = 0) -> BaseKey:
    """The axes a base depends on: cases alike in these differ only in precision, memory format and compiler."""
    return case.model, case.batch_size, tuple(case.input_shape), case.mode, case.device, seed


def build_base(case: Case, seed: int = 0, reference: bool = True) -> Base:
    """Build the model and input of the module docstring's **Build**, and the reference output if asked."""
    device = device_of(case.device).torch_device()
    torch.manual_seed(seed)
    model = resolve(case.model).build().to(device)
    gen = torch.Generator().manual_seed(seed + 1)
    x = torch.randn((case.batch_size, *case.input_shape), generator=gen).to(device)
    base = Base(model, x, gen, None)
    if reference:
        _add_reference(base, case.mode)
    return base


def _add_reference(base: Base, mode: str) -> None:
    """The reference: same weights, same input, fp32 contiguous eager, in the check's mode, on the case's device."""
    with _checking(base.model, mode), _fp32_exact():
        base.reference = _first(base.model(base.x)).float().clone()


def prebuild(cases: Sequence[Case], seed: int = 0) -> None:
    """Build the base that every one of ``cases`` (one base key) starts from, with the reference where one of them
    is not the reference case, and hold it (``shared``) for the processes forked from this one: a comparison
    group's builder (``bench.forkserver``), so that its members do not each build the same model."""
    keys = {base_key(case, seed) for case in cases}
    if len(keys) != 1:
        raise ValueError(f"cases of {len(keys)} different models, batches, inputs, modes or devices share no base")
    base = build_base(cases[0], seed, reference=any(not case.is_reference for case in cases))
    base.shared = True
    _BASES.clear()
    _BASES[keys.pop()] = base


def drop_bases() -> None:
    """Free the bases this process holds (a group builder whose members have all taken theirs)."""
    _BASES.clear()
    gc.collect()


SHARE_ABOVE_LLC = 2  # a read-only model over this many times the last-level cache keeps its builder's pages


def keeps_builder_pages(case: Case, weight_bytes: int, llc_bytes: Optional[int]) -> bool:
    """Whether a member forked from a group builder reads the model's parameters and buffers from the builder's
    pages (copy-on-write, never written) instead of copying them into memory of its own (``take_base``).

    A copy exists so that no member finds in the cache what another member's block left there. That can only
    happen to weights that fit in the last-level cache: a forward streams its weights in order, so where they are
    over ``SHARE_ABOVE_LLC`` times the cache (the margin for a replacement policy that is not LRU), what the
    previous block left is evicted by this block's first layers before its last layers read it. Such a model
    keeps the builder's pages when the case only reads them (inference: training's optimizer writes the weights,
    and a page written first in the cold step would put copy-on-write faults in it); the copy of a VGG-16 (528 MB)
    cost 1.1-1.25 s per member on a 2-vCPU AMD EPYC VM, about half of a case's time outside its timed
    iterations. The cache is the one the member's CPUs have between them (``cpu_llc_bytes``: it is pinned by
    now); an unknown cache size copies."""
    return case.mode == "infer" and llc_bytes is not None and weight_bytes > SHARE_ABOVE_LLC * llc_bytes


def _weight_bytes(model: nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in itertools.chain(model.parameters(), model.buffers()))


def take_base(case: Case, seed: int = 0) -> Base:
    """The base of ``case``: the one this process holds, else built now. One forked from a group builder is made
    this process's own: its input copied, and its parameters and buffers too unless ``keeps_builder_pages``."""
    base = _BASES.pop(base_key(case, seed), None)
    if base is None:
        return build_base(case, seed, reference=not case.is_reference)
    if base.shared:
        base.builder_pages = keeps_builder_pages(case, _weight_bytes(base.model), cpu_llc_bytes())
        if not base.builder_pages:
            with torch.no_grad():
                for tensor in itertools.chain(base.model.parameters(), base.model.buffers()):
                    tensor.data = tensor.data.clone()
        base.x, base.shared = base.x.clone(), False
    if base.reference is None and not case.is_reference:
        _add_reference(base, case.mode)
    return base


def own_base(case: Case, seed: int = 0) -> bool:
    """Take the base of ``case`` now (``take_base``: built, or made this process's own), for the next ``Prepared``:
    a worker calls it before its memory window opens, so that the window counts what the case adds to its model.
    Returns whether the timed model will read its parameters and buffers from a group builder's pages (the
    Result's ``weights_shared``): kept ones, in a precision whose weights stay fp32 (a bf16/fp16 cast copies them)."""
    base = _BASES[base_key(case, seed)] = take_base(case, seed)
    return base.builder_pages and PRECISIONS[case.precision].weights == "float32"


class Prepared:
    """The model and input of a case, transformed as it asks, and its step function."""

    def __init__(self, case: Case, seed: int = 0) -> None:
        self.case, self.device = case, device_of(case.device)
        precision = PRECISIONS[case.precision]
        base = take_base(case, seed)
        model, x, gen = base.model, base.x, base.gen
        self.reference = None if case.is_reference else base.reference
        if precision.weights != "float32":
            model = model.to(dtype(precision.weights))
            x = x.to(dtype(precision.weights))
        if case.memory_format == "channels_last":
            model = model.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        self.model, self.x = model, x
        self.labels = self._labels(gen) if case.mode == "train" else None  # inference has no loss
        self.callable: Callable[..., Any] = torch.compile(model, mode=case.compile_mode) if case.compile_mode else model
        # float16 autocast trains with a gradient scaler (its gradients underflow without one)
        self.scaler = (torch.amp.GradScaler(self.device.kind) if case.mode == "train" and precision.autocast
                       and precision.compute == "float16" else None)

    def _labels(self, gen: torch.Generator) -> torch.Tensor:
        """The training labels: uniform over the model's classes (the reference's width, else a forward of one
        sample's), drawn from the build's generator."""
        num_classes = _first(self.reference).shape[-1] if self.reference is not None else None
        if num_classes is None:
            with torch.inference_mode():
                num_classes = _first(self.model.eval()(self.x[:1])).shape[-1]
        return torch.randint(0, num_classes, (self.case.batch_size,), generator=gen).to(self.x.device)

    def autocast(self) -> contextlib.AbstractContextManager:
        precision = PRECISIONS[self.case.precision]
        if precision.autocast:
            return torch.autocast(self.device.kind, dtype=dtype(precision.compute))
        return contextlib.nullcontext()

    def forward_checked(self) -> torch.Tensor:
        """The main output that the validity check compares with the reference (see the module docstring)."""
        with _checking(self.model, self.case.mode), self.autocast():
            return _first(self.callable(self.x))

    def step(self) -> Callable[[], Any]:
        if self.case.mode == "infer":
            self.model.eval()

            def infer_step() -> torch.Tensor:  # eval() once, not per iteration: it walks every module
                with torch.inference_mode(), self.autocast():
                    return self.callable(self.x)

            return infer_step
        self.model.train()
        optimizer = torch.optim.SGD(self.model.parameters(), lr=1e-4, momentum=0.9)
        scaler = self.scaler

        def train_step() -> torch.Tensor:
            optimizer.zero_grad(set_to_none=True)
            with self.autocast():
                value = loss(self.callable(self.x), self.labels)
            if scaler is None:
                value.backward()
                optimizer.step()
            else:  # what an fp16 training loop runs: its inf check's sync is part of the step's cost
                scaler.scale(value).backward()
                scaler.step(optimizer)
                scaler.update()
            return value

        return train_step


@contextlib.contextmanager
def _fp32_exact() -> Iterator[None]:
    """TF32 off while the fp32 reference is computed, whatever the run's ``--tf32``: the reference is fp32."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


_DROPOUT = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)


@contextlib.contextmanager
def _checking(model: nn.Module, mode: str) -> Iterator[None]:
    """The state a validity forward runs in: eval mode for inference; for training, train mode with dropout
    modules off, the RNG seeded, no autograd graph, and every buffer restored afterwards."""
    if mode == "infer":
        model.eval()
        with torch.inference_mode():
            yield
        return
    saved = {name: buffer.clone() for name, buffer in model.named_buffers()}
    model.train()
    dropouts = [m for m in model.modules() if isinstance(m, _DROPOUT)]
    for m in dropouts:
        m.eval()
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(0)
            yield
    finally:
        for m in dropouts:
            m.train()
        with torch.no_grad():
            for name, buffer in model.named_buffers():
                buffer.copy_(saved[name])


def validity(prep: Prepared, out: Optional[torch.Tensor] = None) -> dict[str, Any]:
    """The validity figures of ``bench.record.Result``: check_channels_last, output_dtype, check_dtype,
    output_max_abs_err, output_rel_err, check_output (each only where it applies); of ``out``, an inference
    step's main output, where given, else of a forward of its own (``Prepared.forward_checked``)."""
    case, checks = prep.case, {}
    precision = PRECISIONS[case.precision]
    if case.memory_format == "channels_last":
        weights = [m.weight for m in prep.model.modules() if isinstance(m, nn.Conv2d)]
        checks["check_channels_last"] = prep.x.is_contiguous(memory_format=torch.channels_last) and all(
            w.is_contiguous(memory_format=torch.channels_last) for w in weights)
    out = prep.forward_checked() if out is None else out
    checks["output_dtype"] = str(out.dtype).replace("torch.", "")
    checks["check_dtype"] = out.dtype == dtype(precision.compute)
    if prep.reference is not None:
        err = (out.float() - prep.reference).abs().max().item()
        scale = prep.reference.abs().max().item() or 1.0
        checks["output_max_abs_err"] = err
        checks["output_rel_err"] = err / scale
        checks["check_output"] = math.isfinite(err) and err / scale <= tolerance(case.precision, case.mode)
    return checks


class CompileWatch:
    """Dynamo's counters over one compiled case (``torch._dynamo.utils.counters``, process-wide, cleared here):
    graphs compiled (``stats/unique_graphs``), graph breaks (``graph_break``, by reason) and, from
    ``sampling_starts`` on, frames compiled again (``frames/total``: Dynamo converts a frame only when no
    cached graph's guards pass, so in a steady state it stays put)."""

    def __init__(self) -> None:
        from torch._dynamo.utils import counters

        self.counters = counters
        counters.clear()
        self.frames_at_sampling: Optional[int] = None

    def _frames(self) -> int:
        return int(self.counters["frames"]["total"])

    def sampling_starts(self) -> None:
        self.frames_at_sampling = self._frames()

    def counts(self) -> CompileCounts:
        start = self._frames() if self.frames_at_sampling is None else self.frames_at_sampling
        return CompileCounts(graphs=int(self.counters["stats"]["unique_graphs"]),
                             graph_breaks=int(sum(self.counters["graph_break"].values())),
                             recompiles=self._frames() - start)


def sync(case: Case) -> None:
    device_of(case.device).synchronize()


def warm_up(step: Callable[[], Any], case: Case, cap_s: float) -> tuple[int, bool]:
    """(iterations, settled): until the last three iterations' median is within 5% of the three before, or the cap;
    not before the device's ``min_warmup_s`` (the cap permitting)."""
    times: list[int] = []
    start = time.perf_counter()
    deadline = start + cap_s
    floor = start + min(cap_s, device_of(case.device).min_warmup_s)
    while True:
        t0 = time.perf_counter_ns()
        step()
        sync(case)
        times.append(time.perf_counter_ns() - t0)
        if len(times) >= 6 and time.perf_counter() >= floor \
                and abs(median(times[-3:]) / median(times[-6:-3]) - 1) <= 0.05:
            return len(times), True
        if time.perf_counter() >= deadline and len(times) >= 2:
            return len(times), False


def get_ready(case: Case, warmup_cap_s: float, figures: dict[str, Any]) -> Callable[[], Any]:
    """Build, check, time the cold start and warm up (in the module docstring's order); the figures go into
    ``figures``."""
    prep = Prepared(case)
    if case.mode == "train":
        figures.update(validity(prep))
    step = prep.step()
    t0 = time.perf_counter_ns()
    out = step()
    sync(case)
    figures["cold_start_ms"] = (time.perf_counter_ns() - t0) / 1e6
    if case.mode == "infer":
        figures.update(validity(prep, _first(out)))
    del out
    figures["warmup_iterations"], figures["warmup_settled"] = warm_up(step, case, warmup_cap_s)
    return step
