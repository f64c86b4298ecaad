"""Turn a suite into cases, hand each to a worker, keep every result.

Isolation: by default each case runs in its own worker process
(``python -m bench.worker``, a new process session) with a time limit, so a
crash, a hang or an allocation failure costs that case only:

    worker wrote a Result                -> its status (ok, noisy, invalid, skipped, oom, error)
    killed by a signal                   -> crashed, with the signal's name
    exited without a Result              -> crashed, with its exit status and last stderr line
    past Measure.timeout_s               -> timeout (the whole process group is killed)

The batch size is never changed behind the user's back; with ``oom_retry`` an
``oom`` case is followed by the same case at half the batch, down to 1, each a
row of its own with ``requested_batch_size`` set. ``isolation="none"`` measures
in this process, for debugging (no time limit, a crash ends the suite).
"""

from __future__ import annotations

import fnmatch
import functools
import json
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Optional

from . import environment, instructions, processes
from .analysis import analyse
from .calibrate import calibrate
from .cases import Case, Measure
from .errors import BadInput, BadValue
from .precision import weight_dtype
from .prepare import set_backends, skip_reason
from .record import Result
from .store import Store
from .suites import Suite
from .worker import measure

PROFILE_TIMEOUT_S = 900.0  # one profile of one case, build and compilation included

ISOLATIONS = ("process", "none")


@dataclass(frozen=True)
class RunOptions:
    isolation: str = "process"
    oom_retry: bool = False
    memory_limit_bytes: Optional[int] = None  # per worker: address space allowed above its size after start-up
    tf32: bool = False
    cudnn_benchmark: bool = False
    calibrate_seconds: float = 0.5
    instructions: Optional[str] = None  # model pattern whose cases also get callgrind instruction counts
    profile_dir: Optional[str] = None  # profile every measured case after measuring it, traces under here

    def __post_init__(self) -> None:
        if self.isolation not in ISOLATIONS:
            raise BadValue(f"isolation must be one of {', '.join(ISOLATIONS)}, got {self.isolation!r}")


@functools.lru_cache(maxsize=256)
def _static(model: str, batch: int, shape: tuple[int, ...], dtype: str, training: bool) -> dict[str, Optional[int]]:
    try:
        a = analyse(model, batch_size=batch, input_shape=shape, dtype=dtype, training=training)
    except BadInput:  # the worker will meet the same problem and say so in its row
        return {}
    return {"params": a.params, "macs": a.macs, "activation_bytes": a.activation_bytes, "saved_bytes": a.saved_bytes}


def static_figures(case: Case) -> dict[str, Optional[int]]:
    return _static(case.model, case.batch_size, tuple(case.input_shape), weight_dtype(case.precision),
                   case.mode == "train")


def run_isolated(case: Case, sampling: Measure, options: RunOptions) -> Result:
    """One case in a fresh worker process."""
    started, t0 = time.time(), time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cnnbench-") as tmp:
        request, answer = Path(tmp) / "request.json", Path(tmp) / "result.json"
        request.write_text(json.dumps({
            "case": case.to_dict(), "measure": asdict(sampling), "memory_limit_bytes": options.memory_limit_bytes,
            "tf32": options.tf32, "cudnn_benchmark": options.cudnn_benchmark,
        }))
        proc = processes.start("bench.worker", [str(request), str(answer)])

        def failed(status: str, reason: str) -> Result:
            return Result(case=case, status=status, reason=reason, started_at=started,
                          duration_s=time.perf_counter() - t0)

        err = _wait(proc, sampling.timeout_s)
        if err is None:
            return failed("timeout", f"worker passed its {sampling.timeout_s:g} s limit and was killed")
        if answer.exists():
            return Result.from_dict(json.loads(answer.read_text()))
        return failed("crashed", processes.exit_reason(proc.returncode, err, "result"))


def _wait(proc: subprocess.Popen, timeout_s: float) -> Optional[str]:
    """Wait for a worker to end: its stderr, or None when it passed ``timeout_s`` and was killed.
    Ctrl-C or the runner being stopped takes the worker down too."""
    try:
        _, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        processes.kill_group(proc)
        return None
    except BaseException:
        processes.kill_group(proc)
        raise
    return (err or b"").decode(errors="replace")


def profile_isolated(case: Case, out: str, run_id: str) -> str:
    """``cnnbench profile`` of a measured case in its own process, after the measurement, never during it.

    The case goes to ``python -m bench.profiling REQUEST.json`` as a file; returns "" when the
    profile was written, else why not (for the case's row).
    """
    with tempfile.TemporaryDirectory(prefix="cnnbench-profile-") as tmp:
        request = Path(tmp) / "request.json"
        request.write_text(json.dumps({"case": case.to_dict(), "out": out, "run": run_id}))
        proc = processes.start("bench.profiling", [str(request)])
        err = _wait(proc, PROFILE_TIMEOUT_S)
        if err is None:
            return f"profile passed its {PROFILE_TIMEOUT_S:g} s limit and was killed"
        if proc.returncode != 0:
            return "profile failed: " + processes.exit_reason(proc.returncode, err, "profile").removeprefix("worker ")
    return ""


def run_in_process(case: Case, sampling: Measure, options: RunOptions) -> Result:
    set_backends(options.tf32, options.cudnn_benchmark)
    return measure(case, sampling)


def _attempts(case: Case, sampling: Measure, options: RunOptions, one: Callable[[Case, Measure, RunOptions], Result]):
    """The case, then (with oom_retry) the same at half the batch after each oom, each its own Result."""
    reason = skip_reason(case)
    if reason:
        yield Result(case=case, status="skipped", reason=reason, started_at=time.time())
        return
    result = one(case, sampling, options)
    yield result
    while options.oom_retry and result.status == "oom" and case.batch_size > 1:
        smaller = replace(case, batch_size=case.batch_size // 2)
        result = replace(one(smaller, sampling, options), requested_batch_size=result.requested_batch_size or case.batch_size)
        case = smaller
        yield result


def run_settings(suite: Suite, cases: list[Case], options: RunOptions) -> dict[str, Any]:
    return {"measure": asdict(suite.measure), "options": asdict(options), "cases": [c.to_dict() for c in cases]}


def start_run(store: Store, suite: Suite, options: RunOptions) -> str:
    cases = suite.cases()
    env = environment.collect()
    # what the workers run with, not what this process happens to have
    env.update(tf32_matmul=options.tf32, tf32_cudnn=options.tf32, cudnn_benchmark=options.cudnn_benchmark,
               threads=sorted({c.threads for c in cases}))
    peaks = calibrate(cases, options.calibrate_seconds)
    return store.new_run(suite=suite.name, suite_json=suite.to_dict(), environment=env, calibration=peaks,
                         settings=run_settings(suite, cases, options), cases_total=len(cases))


def pending(store: Store, run_id: str) -> tuple[list[Case], Measure, RunOptions]:
    """The cases of a run not yet in the store, with the run's own settings."""
    run = store.run(run_id)
    settings = run["settings"]
    done = store.done_keys(run_id)
    cases = [Case.from_dict(c) for c in settings["cases"]]
    return [c for c in cases if c.key not in done], Measure.from_dict(settings["measure"]), RunOptions(**settings["options"])


def execute(store: Store, run_id: str, *, on_start: Callable[[Case, int, int], None] = lambda *a: None,
            on_result: Callable[[Result], None] = lambda r: None) -> None:
    """Measure every pending case of a run, committing each before the next starts."""
    todo, sampling, options = pending(store, run_id)
    one = run_isolated if options.isolation == "process" else run_in_process
    for index, case in enumerate(todo):
        on_start(case, index, len(todo))
        for result in _attempts(case, sampling, options, one):
            result = replace(result, **static_figures(result.case))
            if options.instructions and result.samples_ns and fnmatch.fnmatchcase(result.case.model, options.instructions):
                per_iter, why = instructions.count(result.case)
                result = replace(result, instructions_per_iter=per_iter, instructions_reason=why)
            if options.profile_dir and result.samples_ns:
                why_not = profile_isolated(result.case, options.profile_dir, run_id)
                if why_not:
                    result = replace(result, reason="; ".join(filter(None, [result.reason, why_not])))
            store.add_result(run_id, result)
            on_result(result)
    store.finish_run(run_id)
