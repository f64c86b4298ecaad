"""The record of one measurement: ``Result``, its statuses and its checks. Imports no torch.

pyperf's ``Run`` in our terms: a frozen dataclass holding the case, its raw
samples and its status; statistics are derived from the samples by the pure
functions of ``bench.stats``, never stored twice. The store, run files, the
comparison and the report read it without loading the measuring code.

Statuses:

    ok        measured, the median known to the suite's target interval
    noisy     measured to the time cap, the median known less well than the target
    invalid   measured, but a validity check failed (the reason says which)
    skipped   this combination cannot run here (no CUDA, no fp16 autocast, ...)
    oom       the worker ran out of memory
    crashed   the worker died (a signal, or an exit without a result)
    timeout   the worker passed its time limit and was killed
    error     any other failure, with the exception's first line
"""

from __future__ import annotations

import math

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Optional, Sequence

from .cases import Case, Measure
from .precision import tolerance
from .stats import MIN_CI_SAMPLES, median_ci_rel
from .values import checked_fields

STATUSES = ("ok", "noisy", "invalid", "skipped", "oom", "crashed", "timeout", "error")
CHECKS = ("check_channels_last", "check_dtype", "check_output")  # the validity checks, each True, False or None


@dataclass(frozen=True)
class Pairing:
    """A case measured in a comparison group (``bench.group``): its time against the group's reference from
    their paired rounds. ratio = exp(median over rounds of log(case / reference)), > 1 is slower; its
    distribution-free 95% CI and the exact sign test's p (``bench.stats.paired_figures``). The reference
    itself carries its group with no ratio."""

    group: str  # the axes the members share, and "part i of n" when the group was split to fit in memory
    reference: str  # the reference case's key
    members: int  # cases measured together
    rounds: int = 0  # rounds this case and the reference both ran
    ratio: Optional[float] = None
    ratio_ci_low: Optional[float] = None
    ratio_ci_high: Optional[float] = None
    p_value: Optional[float] = None


@dataclass(frozen=True)
class GpuState:
    """A GPU at one moment, from NVML (``bench.telemetry``): read at the start and at the end of sampling."""

    sm_clock_mhz: int
    mem_clock_mhz: int
    power_w: float
    temperature_c: int
    clock_event_reasons: str  # NVML's throttle reasons by name, comma-separated ("" none): "gpu_idle,sw_power_cap"
    other_processes: int  # processes on the GPU other than the worker


@dataclass(frozen=True)
class CompileCounts:
    """What Dynamo did for a compiled case (``torch._dynamo.utils.counters``, cleared when the case starts)."""

    graphs: int  # graphs compiled: cold start, warm-up and sampling
    graph_breaks: int  # graph breaks met while compiling them
    recompiles: int  # frames compiled again while sampling: 0 in a steady state


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
    cuda_allocated_baseline_bytes: Optional[int] = None  # allocated once warm-up is over (the memory window opens)
    cuda_peak_allocated_delta_bytes: Optional[int] = None  # the peak allocated above that baseline
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
    # minor page faults per timed iteration (bench.worker), and the price of a fresh page (microseconds per 4 KiB page
    # faulted on one thread) measured by the runner right after the case's group: what the step pays for memory new
    # to it
    page_faults_per_iter: Optional[float] = None
    fresh_page_us: Optional[float] = None
    # a group member's: the blocks after which it waited for its threads to stop (bench.processes.settle), and of
    # those the ones its threads outlasted, still on the CPUs as the next member's block began; None without such waits
    settle_waits: Optional[int] = None
    settle_capped: Optional[int] = None
    # whether the case read its parameters and buffers from its group builder's pages instead of a copy of its own
    # (bench.prepare.keeps_builder_pages; what its precision or memory format converts is its own all the same)
    weights_shared: Optional[bool] = None
    started_at: float = 0.0  # unix time
    duration_s: float = 0.0  # the whole case: build, checks, warm-up, sampling
    machine: Optional[str] = None  # the label of the machine that measured it (a sharded run spans several)
    # the median of each block of sampling (a case alone) or of each interleaved round (a comparison group):
    # the p50's interval comes from these; and, in a group, the pairing with the reference
    round_medians_ns: tuple[int, ...] = ()
    pairing: Optional[Pairing] = None
    # a GPU case's telemetry where nvidia-ml-py answers (bench.telemetry): at the start and the end of sampling
    gpu_start: Optional[GpuState] = None
    gpu_end: Optional[GpuState] = None
    compile_counts: Optional[CompileCounts] = None  # a compiled case's

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["case"] = self.case.to_dict()
        for key in ("pairing", *ATTACHED):  # absent rather than null: older readers never see them
            if data[key] is None:
                data.pop(key)
        if not self.round_medians_ns:
            data.pop("round_medians_ns")
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], what: str = "result") -> "Result":
        """From a run file or a worker's answer: every field checked (``bench.values.checked_fields``), unknown keys
        (a newer cnnbench's) left out; a field of the wrong type is one BadValue line."""
        checked = checked_fields(cls, data, what, skip=("case", "pairing", *ATTACHED))
        for key in ("samples_ns", "host_samples_ns", "round_medians_ns"):
            checked[key] = checked.get(key) or ()
        pairing = data.get("pairing")
        records = {key: None if data.get(key) is None else kind(**checked_fields(kind, data[key], f"{what}.{key}"))
                   for key, kind in ATTACHED.items() if key in data}
        return cls(case=Case.from_dict(data.get("case"), f"{what}.case"), **checked, **records,
                   pairing=None if pairing is None else Pairing(**checked_fields(Pairing, pairing, f"{what}.pairing")))


# the Result fields that hold a record of their own, each stored in a table of its own (bench.store)
ATTACHED = {"gpu_start": GpuState, "gpu_end": GpuState, "compile_counts": CompileCounts}


def attached(data: dict[str, Any]) -> dict[str, Any]:
    """The ATTACHED fields in ``data`` (a worker's JSON reply, a run file) as their records."""
    return {key: kind(**data[key]) if isinstance(data.get(key), dict) else data.get(key)
            for key, kind in ATTACHED.items() if key in data}


def failed_checks(figures: dict[str, Any]) -> list[str]:
    """The names of the validity checks that failed (not those that were not run)."""
    return [name for name in CHECKS if figures.get(name) is False]


def invalid_reason(case: Case, figures: dict[str, Any]) -> str:
    """Why the validity checks in ``figures`` fail, or "" when none does."""
    detail = {"check_channels_last": "tensors are not channels_last",
              "check_dtype": f"output dtype is {figures.get('output_dtype')}",
              "check_output": f"output differs from fp32 contiguous eager by {figures.get('output_rel_err') or 0:.3g} "
                              f"(relative; allowed {tolerance(case.precision, case.mode):g})"}
    return "; ".join(detail[name] for name in failed_checks(figures))


def timing_status(spread_of: Sequence[float], stop: str, sampling: Measure) -> tuple[str, str]:
    """ok, or noisy when sampling stopped at a cap (time, samples, rounds) with the median's CI (from
    ``spread_of``: the medians of the blocks or the interleaved rounds) wider than the target."""
    spread = median_ci_rel(spread_of)
    if stop != "target" and spread > sampling.target_ci:
        known = (f"median known to +/-{100 * spread:.1f}%" if math.isfinite(spread) else
                 f"median's interval unknown (it needs {MIN_CI_SAMPLES})")
        return "noisy", (f"{known} after {len(spread_of)} blocks (target +/-{100 * sampling.target_ci:g}%) when "
                         f"sampling reached its {stop}; rerun with a larger "
                         f"{'max_seconds' if stop == 'time cap' else 'max_samples'} or a quieter machine")
    return "ok", ""


def tally(labels: Iterable[str]) -> dict[str, int]:
    """How many of each status or verdict, in name order: ``{"ok": 40, "skipped": 8}``."""
    return dict(sorted(Counter(labels).items()))


__all__ = ["Result", "Pairing", "GpuState", "CompileCounts", "ATTACHED", "attached", "STATUSES", "CHECKS", "failed_checks", "invalid_reason", "timing_status",
           "tally"]
