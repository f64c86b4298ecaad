"""Measure one case: build, check, warm up, sample, and return one immutable Result.

Method
    Inference runs in eval mode under ``torch.inference_mode()``; training is a
    full step (zero grads, forward, cross-entropy on fixed random labels, backward,
    SGD step), in train mode; a model returning several outputs (GoogLeNet's
    ``(main, aux2, aux1)``, Inception-v3's aux logits) adds its auxiliary losses
    weighted 0.3, as in the GoogLeNet paper.

    **Cold start** is the first iteration alone (for ``compile``, the compilation
    with it), kept apart from the steady state. **Warm-up** then runs until the
    median of the last three iterations is within 5% of the three before, or the
    warm-up cap passes (``warmup_settled`` says which).

    **Sampling** is adaptive: one sample per iteration, stopping once at least
    ``min_samples`` are in and the distribution-free 95% confidence interval of the
    median (``bench.stats.median_ci``) is within +/-``target_ci`` of it; or at the
    time cap ``max_seconds`` (at least 3 samples), in which case the case is
    ``noisy`` with its spread, not passed off as precise; or at ``max_samples``.

    **Timers.** CPU: ``time.perf_counter_ns`` around each iteration. CUDA: a pair
    of CUDA events around each iteration, with no synchronisation inside the
    timed loop: iterations run in blocks, the host synchronises once at the end of
    a block, then reads the events; the host's own wall time per iteration
    (``perf_counter_ns`` between launches) is kept beside them, so launch overhead
    shows.

    **Memory.** CPU: peak resident memory of this (isolated) process above its
    resident size once the model and input are built, from the kernel's own
    accounting (``VmHWM`` of ``/proc/self/status``, reset through
    ``/proc/self/clear_refs``); a 1 ms sampler where that reset is refused. CUDA:
    the allocator's peak allocated and reserved bytes, reset per case.

    **Validity.** Asked-for channels_last is checked on the input and every 4-D
    conv weight; the output dtype is checked against the precision; every variant
    other than fp32/contiguous/eager is compared with that reference on the same
    weights and input (max absolute error, and that error relative to the
    reference's largest magnitude). A failed check makes the case ``invalid``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import resource
import shutil
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import torch
from torch import nn

from .cases import Case, Measure
from .models import load_plugins, resolve
from .stats import median, median_ci_rel

STATUSES = ("ok", "noisy", "invalid", "skipped", "oom", "crashed", "timeout", "error")
# relative output error allowed against fp32 contiguous eager, by precision
TOLERANCE = {"fp32": 1e-3, "amp-bf16": 5e-2, "bf16": 8e-2, "amp-fp16": 1e-2, "fp16": 2e-2}
COMPUTE_DTYPE = {"fp32": torch.float32, "amp-bf16": torch.bfloat16, "bf16": torch.bfloat16,
                 "amp-fp16": torch.float16, "fp16": torch.float16}


@dataclass(frozen=True)
class Result:
    """One measurement: the case, its raw samples, its status. Statistics derive from the samples."""

    case: Case
    status: str
    reason: str = ""
    samples_ns: tuple[int, ...] = ()  # per iteration: perf_counter (CPU) or CUDA events (GPU)
    host_samples_ns: tuple[int, ...] = ()  # CUDA only: host wall time of the same iterations
    timer: str = ""
    cold_start_ms: Optional[float] = None
    warmup_iterations: int = 0
    warmup_settled: Optional[bool] = None
    stop_reason: str = ""  # "target", "time cap" or "max samples"
    cpu_peak_rss_delta_bytes: Optional[int] = None
    cpu_rss_baseline_bytes: Optional[int] = None
    cuda_peak_allocated_bytes: Optional[int] = None
    cuda_peak_reserved_bytes: Optional[int] = None
    check_channels_last: Optional[bool] = None
    output_dtype: Optional[str] = None
    check_dtype: Optional[bool] = None
    output_max_abs_err: Optional[float] = None
    output_rel_err: Optional[float] = None
    check_output: Optional[bool] = None
    requested_batch_size: Optional[int] = None  # set on an --oom-retry row
    # from the static analysis of the same model, batch and input (bench.analysis), filled in by the runner
    params: Optional[int] = None
    macs: Optional[int] = None  # of one forward pass
    activation_bytes: Optional[int] = None
    saved_bytes: Optional[int] = None
    # instructions per iteration counted by Valgrind's callgrind (``run --instructions``), single-threaded
    instructions_per_iter: Optional[float] = None
    instructions_reason: str = ""  # why there is no count, when asked for one
    started_at: float = 0.0  # unix time
    duration_s: float = 0.0  # the whole case: build, checks, warm-up, sampling

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["case"] = self.case.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Result":
        data = dict(data)
        data["case"] = Case.from_dict(data["case"])
        for key in ("samples_ns", "host_samples_ns"):
            data[key] = tuple(data.get(key) or ())
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class Skip(Exception):
    """This combination cannot run here; the message says why."""


def is_oom(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(
        s in text for s in ("can't allocate memory", "out of memory", "not enough memory", "cannot allocate memory"))


def skip_reason(case: Case) -> Optional[str]:
    """Why this combination cannot run here, or None. Cheap: the runner asks before starting a worker."""
    if case.device == "cuda":
        if not torch.cuda.is_available():
            return "cuda is not available on this machine"
        if case.precision in ("amp-bf16", "bf16") and not torch.cuda.is_bf16_supported():
            return f"{case.precision} is not supported by {torch.cuda.get_device_name(0)}"
    if case.precision.startswith("amp-"):
        try:
            with torch.autocast(case.device, dtype=COMPUTE_DTYPE[case.precision]):
                nn.functional.conv2d(torch.ones(1, 1, 3, 3, device=case.device),
                                     torch.ones(1, 1, 1, 1, device=case.device))
        except (RuntimeError, AssertionError) as exc:
            return (f"{case.precision} autocast is not available on {case.device} in this torch build: "
                    f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    if case.compiler == "compile":
        if not torch._dynamo.is_dynamo_supported():
            return f"torch.compile is not supported on Python {sys.version.split()[0]}"
        if case.device == "cpu" and not (shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")):
            return "torch.compile on the CPU needs a C++ compiler and none is on PATH"
    return None


def _rss_bytes(field_name: str) -> Optional[int]:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


@contextlib.contextmanager
def _cpu_peak_rss() -> Iterator[dict[str, Optional[int]]]:
    """Peak RSS above the current RSS while the block runs: kernel accounting, or a 1 ms sampler."""
    found: dict[str, Optional[int]] = {"baseline": _rss_bytes("VmRSS"), "delta": None}
    reset = False
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        reset = True
    except OSError:
        pass
    peak = [found["baseline"] or 0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.001):
            peak[0] = max(peak[0], _rss_bytes("VmRSS") or 0)

    sampler = None if reset else threading.Thread(target=sample, daemon=True)
    if sampler:
        sampler.start()
    try:
        yield found
    finally:
        stop.set()
        if sampler:
            sampler.join()
        high = _rss_bytes("VmHWM") if reset else peak[0]
        if high is not None and found["baseline"] is not None:
            found["delta"] = max(0, high - found["baseline"])


def _loss(out: Any, labels: torch.Tensor) -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        return nn.functional.cross_entropy(out.float(), labels)
    main, *aux = out
    loss = nn.functional.cross_entropy(main.float(), labels)
    for extra in aux:
        if isinstance(extra, torch.Tensor):
            loss = loss + 0.3 * nn.functional.cross_entropy(extra.float(), labels)
    return loss


def _first(out: Any) -> torch.Tensor:
    return out if isinstance(out, torch.Tensor) else out[0]


class _Prepared:
    """The model and input of a case, transformed as it asks, and its step function."""

    def __init__(self, case: Case, seed: int = 0) -> None:
        self.case = case
        device = torch.device(case.device)
        torch.manual_seed(seed)
        model = resolve(case.model).build()
        gen = torch.Generator().manual_seed(seed + 1)
        x = torch.randn((case.batch_size, *case.input_shape), generator=gen)
        # The reference: same weights, same input, fp32 contiguous eager, in eval mode, on the case's device.
        model = model.to(device)
        x = x.to(device)
        self.reference: Optional[torch.Tensor] = None
        if not case.is_reference:
            with torch.inference_mode():
                self.reference = _first(model.eval()(x)).float().clone()
        if case.precision in ("bf16", "fp16"):
            model = model.to(COMPUTE_DTYPE[case.precision])
            x = x.to(COMPUTE_DTYPE[case.precision])
        if case.memory_format == "channels_last":
            model = model.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        self.model, self.x = model, x
        num_classes = _first(self.reference).shape[-1] if self.reference is not None else None
        if num_classes is None:
            with torch.inference_mode():
                num_classes = _first(model.eval()(x[:1])).shape[-1]
        self.labels = torch.randint(0, num_classes, (case.batch_size,), generator=gen).to(device)
        self.callable: Callable[..., Any] = torch.compile(model) if case.compiler == "compile" else model

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.case.precision.startswith("amp-"):
            return torch.autocast(self.case.device, dtype=COMPUTE_DTYPE[self.case.precision])
        return contextlib.nullcontext()

    def forward_eval(self) -> torch.Tensor:
        self.model.eval()
        with torch.inference_mode(), self.autocast():
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

        def train_step() -> torch.Tensor:
            optimizer.zero_grad(set_to_none=True)
            with self.autocast():
                loss = _loss(self.callable(self.x), self.labels)
            loss.backward()
            optimizer.step()
            return loss

        return train_step


def _validity(prep: _Prepared) -> dict[str, Any]:
    case, checks = prep.case, {}
    if case.memory_format == "channels_last":
        weights = [m.weight for m in prep.model.modules() if isinstance(m, nn.Conv2d)]
        checks["check_channels_last"] = prep.x.is_contiguous(memory_format=torch.channels_last) and all(
            w.is_contiguous(memory_format=torch.channels_last) for w in weights)
    out = prep.forward_eval()
    checks["output_dtype"] = str(out.dtype).replace("torch.", "")
    checks["check_dtype"] = out.dtype == COMPUTE_DTYPE[case.precision]
    if prep.reference is not None:
        err = (out.float() - prep.reference).abs().max().item()
        scale = prep.reference.abs().max().item() or 1.0
        checks["output_max_abs_err"] = err
        checks["output_rel_err"] = err / scale
        checks["check_output"] = math.isfinite(err) and err / scale <= TOLERANCE[case.precision]
    return checks


def _sync(case: Case) -> None:
    if case.device == "cuda":
        torch.cuda.synchronize()


def _warm_up(step: Callable[[], Any], case: Case, cap_s: float) -> tuple[int, bool]:
    times: list[int] = []
    deadline = time.perf_counter() + cap_s
    while True:
        t0 = time.perf_counter_ns()
        step()
        _sync(case)
        times.append(time.perf_counter_ns() - t0)
        if len(times) >= 6 and abs(median(times[-3:]) / median(times[-6:-3]) - 1) <= 0.05:
            return len(times), True
        if time.perf_counter() >= deadline and len(times) >= 2:
            return len(times), False


def _sample_cpu(step: Callable[[], Any], m: Measure) -> tuple[list[int], str]:
    samples: list[int] = []
    deadline = time.perf_counter() + m.max_seconds
    check_every = 1
    while True:
        t0 = time.perf_counter_ns()
        step()
        samples.append(time.perf_counter_ns() - t0)
        n = len(samples)
        if n >= m.min_samples and n % check_every == 0:
            if median_ci_rel(samples) <= m.target_ci:
                return samples, "target"
            check_every = max(1, n // 20)  # the check sorts; keep it rare once samples are many
        if n >= m.max_samples:
            return samples, "max samples"
        if n >= 3 and time.perf_counter() >= deadline:
            return samples, "time cap"


def _cuda_block(step: Callable[[], Any], n: int) -> tuple[list[int], list[int]]:
    """``n`` iterations timed by CUDA events, one synchronisation at the end: (device ns, host ns) per iteration."""
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(n)]
    host_ns: list[int] = []
    for start, end in events:
        h0 = time.perf_counter_ns()
        start.record()
        step()
        end.record()
        host_ns.append(time.perf_counter_ns() - h0)
    torch.cuda.synchronize()
    return [round(start.elapsed_time(end) * 1e6) for start, end in events], host_ns


def _sample_cuda(step: Callable[[], Any], m: Measure) -> tuple[list[int], list[int], str]:
    device_ns: list[int] = []
    host_ns: list[int] = []
    deadline = time.perf_counter() + m.max_seconds
    block = max(5, m.min_samples)
    while True:
        device, host = _cuda_block(step, block)
        device_ns += device
        host_ns += host
        n = len(device_ns)
        if n >= m.min_samples and median_ci_rel(device_ns) <= m.target_ci:
            return device_ns, host_ns, "target"
        if n >= m.max_samples:
            return device_ns, host_ns, "max samples"
        if time.perf_counter() >= deadline:
            return device_ns, host_ns, "time cap"


def _get_ready(case: Case, m: Measure, figures: dict[str, Any]) -> Callable[[], Any]:
    """Build, time the cold start, run the validity checks and warm up; the figures go into ``figures``."""
    prep = _Prepared(case)
    step = prep.step()
    t0 = time.perf_counter_ns()
    step()
    _sync(case)
    figures["cold_start_ms"] = (time.perf_counter_ns() - t0) / 1e6
    figures.update(_validity(prep))
    step = prep.step()  # the check ran in eval mode; put a training case back
    figures["warmup_iterations"], figures["warmup_settled"] = _warm_up(step, case, m.warmup_seconds)
    return step


def _failure(exc: Exception) -> tuple[str, str]:
    """The status and reason of a case that could not be measured: skipped, oom or error."""
    if isinstance(exc, Skip):
        return "skipped", str(exc)
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return "oom" if is_oom(exc) else "error", f"{type(exc).__name__}: {first}".rstrip(": ")


def measure(case: Case, m: Measure) -> Result:
    """Measure one case in this process. Never raises for a case that fails: that is a Result too."""
    started, t_start = time.time(), time.perf_counter()

    def done(status: str, reason: str = "", **figures: Any) -> Result:
        return Result(case=case, status=status, reason=reason, started_at=started,
                      duration_s=time.perf_counter() - t_start, **figures)

    if case.device == "cpu":
        torch.set_num_threads(case.threads)
    try:
        reason = skip_reason(case)
        if reason:
            raise Skip(reason)
        figures: dict[str, Any] = {}
        if case.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        with _cpu_peak_rss() as rss:
            step = _get_ready(case, m, figures)
            if case.device == "cuda":
                device_ns, host_ns, stop = _sample_cuda(step, m)
                figures.update(samples_ns=tuple(device_ns), host_samples_ns=tuple(host_ns), timer="cuda-event")
            else:
                samples, stop = _sample_cpu(step, m)
                figures.update(samples_ns=tuple(samples), timer="perf_counter_ns")
            figures["stop_reason"] = stop
        if case.device == "cuda":
            figures["cuda_peak_allocated_bytes"] = torch.cuda.max_memory_allocated()
            figures["cuda_peak_reserved_bytes"] = torch.cuda.max_memory_reserved()
        else:
            figures["cpu_peak_rss_delta_bytes"] = rss["delta"]
            figures["cpu_rss_baseline_bytes"] = rss["baseline"]
    except Exception as exc:  # a failing case is a row, not a crashed suite
        return done(*_failure(exc))
    failed = [name for name in ("check_channels_last", "check_dtype", "check_output") if figures.get(name) is False]
    if failed:
        detail = {"check_channels_last": "tensors are not channels_last",
                  "check_dtype": f"output dtype is {figures.get('output_dtype')}",
                  "check_output": f"output differs from fp32 contiguous eager by {figures.get('output_rel_err'):.3g} "
                                  f"(relative; allowed {TOLERANCE[case.precision]:g})"}
        return done("invalid", "; ".join(detail[name] for name in failed), **figures)
    if stop == "time cap" and median_ci_rel(figures["samples_ns"]) > m.target_ci:
        spread = median_ci_rel(figures["samples_ns"])
        return done("noisy", f"median known to +/-{100 * spread:.1f}% after {len(figures['samples_ns'])} samples "
                             f"(target +/-{100 * m.target_ci:g}%); rerun with a longer max_seconds or a quieter machine",
                    **figures)
    return done("ok", **figures)


def _limit_memory(extra_bytes: int) -> None:
    """Cap this process's address space at its current size plus ``extra_bytes``."""
    current = _rss_bytes("VmSize") or 0
    resource.setrlimit(resource.RLIMIT_AS, (current + extra_bytes, resource.RLIM_INFINITY))


def _apply_request(request: dict[str, Any]) -> tuple[Case, Measure]:
    load_plugins()
    torch.backends.cuda.matmul.allow_tf32 = bool(request.get("tf32"))
    torch.backends.cudnn.allow_tf32 = bool(request.get("tf32"))
    torch.backends.cudnn.benchmark = bool(request.get("cudnn_benchmark"))
    if request.get("memory_limit_bytes"):
        _limit_memory(int(request["memory_limit_bytes"]))
    return Case.from_dict(request["case"]), Measure(**request["measure"])


def run_block(step: Callable[[], Any], case: Case, seconds: float) -> list[int]:
    """Iterations for ``seconds`` (at least one), one sample each: the unit of an interleaved A/B round."""
    samples: list[int] = []
    deadline = time.perf_counter() + seconds
    if case.device == "cuda":
        while not samples or time.perf_counter() < deadline:
            samples += _cuda_block(step, 5)[0]
        return samples
    while not samples or time.perf_counter() < deadline:
        t0 = time.perf_counter_ns()
        step()
        samples.append(time.perf_counter_ns() - t0)
    return samples


def serve(lines: Iterator[str], reply: Callable[[dict[str, Any]], None]) -> int:
    """Interleaved measurement (``python -m bench.worker --serve``), one JSON object per line.

    The first line is a request like the file of ``main``; the worker builds, checks
    and warms up the case and answers ``{"ready": true, ...figures}``, or
    ``{"ready": false, "status": ..., "reason": ...}``; a ``"cpus"`` list in the request pins
    the worker to those CPUs first. Then each ``{"block": SECONDS}``
    runs iterations for that long (and with ``"settle": SECONDS`` sleeps that long after
    them) and answers ``{"samples_ns": [...]}``; end of input
    ends the worker. Between blocks it waits on its input, idle, while the other side runs.
    """
    request = json.loads(next(lines))
    case, m = _apply_request(request)
    if request.get("cpus") and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(request["cpus"]))
    if case.device == "cpu":
        torch.set_num_threads(case.threads)
    figures: dict[str, Any] = {}
    try:
        reason = skip_reason(case)
        if reason:
            raise Skip(reason)
        step = _get_ready(case, m, figures)
    except Exception as exc:
        status, reason = _failure(exc)
        reply({"ready": False, "status": status, "reason": reason})
        return 0
    reply({"ready": True, **figures})
    for line in lines:
        ask = json.loads(line)
        samples = run_block(step, case, float(ask["block"]))
        if ask.get("settle"):
            time.sleep(float(ask["settle"]))  # let this worker's thread pool stop spinning before the other side runs
        reply({"samples_ns": samples})
    return 0


def main(argv: list[str]) -> int:
    """``python -m bench.worker REQUEST.json RESULT.json``: what the runner starts per case.

    ``python -m bench.worker --serve``: the interleaved form, driven over stdin/stdout (``serve``).
    """
    if argv[:1] == ["--serve"]:
        # nothing but replies on the protocol's channel: whatever else writes to fd 1 (Python or C) goes to stderr
        out = os.fdopen(os.dup(1), "w")
        os.dup2(2, 1)
        sys.stdout = sys.stderr

        def reply(obj: dict[str, Any]) -> None:
            out.write(json.dumps(obj) + "\n")
            out.flush()

        return serve(iter(sys.stdin.readline, ""), reply)
    case, m = _apply_request(json.loads(Path(argv[0]).read_text()))
    result = measure(case, m)
    tmp = Path(argv[1] + ".tmp")
    tmp.write_text(json.dumps(result.to_dict()))
    os.replace(tmp, argv[1])
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    sys.exit(main(sys.argv[1:]))
