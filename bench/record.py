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

from collections import Counter
from dataclasses import asdict, dataclass, fields
from typing import Any, Iterable, Optional

from .cases import Case

STATUSES = ("ok", "noisy", "invalid", "skipped", "oom", "crashed", "timeout", "error")
MEASURED = ("ok", "noisy", "invalid")  # statuses that carry samples
CHECKS = ("check_channels_last", "check_dtype", "check_output")  # the validity checks, each True, False or None


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


def failed_checks(figures: dict[str, Any]) -> list[str]:
    """The names of the validity checks that failed (not those that were not run)."""
    return [name for name in CHECKS if figures.get(name) is False]


def tally(labels: Iterable[str]) -> dict[str, int]:
    """How many of each status or verdict, in name order: ``{"ok": 40, "skipped": 8}``."""
    return dict(sorted(Counter(labels).items()))


__all__ = ["Result", "STATUSES", "MEASURED", "CHECKS", "failed_checks", "tally"]
