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
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Optional

from . import environment, instructions
from .analysis import analyse
from .calibrate import calibrate
from .cases import Case, Measure, Suite, weight_dtype
from .errors import BadInput, BadValue
from .store import Store
from .worker import Result, measure, skip_reason

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


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def run_isolated(case: Case, m: Measure, options: RunOptions) -> Result:
    """One case in a fresh worker process."""
    started, t0 = time.time(), time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cnnbench-") as tmp:
        request, answer = Path(tmp) / "request.json", Path(tmp) / "result.json"
        request.write_text(json.dumps({
            "case": case.to_dict(), "measure": asdict(m), "memory_limit_bytes": options.memory_limit_bytes,
            "tf32": options.tf32, "cudnn_benchmark": options.cudnn_benchmark,
        }))
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.worker", str(request), str(answer)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

        def failed(status: str, reason: str) -> Result:
            return Result(case=case, status=status, reason=reason, started_at=started,
                          duration_s=time.perf_counter() - t0)

        try:
            _, err = proc.communicate(timeout=m.timeout_s)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            return failed("timeout", f"worker passed its {m.timeout_s:g} s limit and was killed")
        except BaseException:  # Ctrl-C or the runner being stopped: take the worker down too
            kill_group(proc)
            raise
        if answer.exists():
            return Result.from_dict(json.loads(answer.read_text()))
        return failed("crashed", exit_reason(proc.returncode, err.decode(errors="replace"), "result"))


def exit_reason(returncode: int, stderr: str, missing: str) -> str:
    """Why a worker ended without its ``missing`` (result, reply): the signal or status, and stderr's last line."""
    tail = [line for line in stderr.splitlines() if line.strip()]
    last = f": {tail[-1].strip()}" if tail else ""
    if returncode < 0:
        name = _signal_name(-returncode)
        hint = " (the kernel's OOM killer sends this)" if name == "SIGKILL" else ""
        return f"worker killed by {name}{hint}{last}"
    return f"worker exited with status {returncode} and no {missing}{last}"


def kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def profile_isolated(case: Case, out: str, run_id: str) -> None:
    """``cnnbench profile`` of a measured case in its own process, after the measurement, never during it."""
    flags = ["--device", case.device, "--batch-size", str(case.batch_size), "--precision", case.precision,
             "--memory-format", case.memory_format, "--mode", case.mode, "--compiler", case.compiler,
             "--threads", str(case.threads), "--input-size", ",".join(map(str, case.input_shape)),
             "--out", out, "--run", run_id, "--format", "json"]
    subprocess.run([sys.executable, "-m", "bench", "profile", case.model, *flags], stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=900, check=False)


def run_in_process(case: Case, m: Measure, options: RunOptions) -> Result:
    import torch

    torch.backends.cuda.matmul.allow_tf32 = options.tf32
    torch.backends.cudnn.allow_tf32 = options.tf32
    torch.backends.cudnn.benchmark = options.cudnn_benchmark
    return measure(case, m)


def _attempts(case: Case, m: Measure, options: RunOptions, one: Callable[[Case, Measure, RunOptions], Result]):
    """The case, then (with oom_retry) the same at half the batch after each oom, each its own Result."""
    reason = skip_reason(case)
    if reason:
        yield Result(case=case, status="skipped", reason=reason, started_at=time.time())
        return
    result = one(case, m, options)
    yield result
    while options.oom_retry and result.status == "oom" and case.batch_size > 1:
        smaller = replace(case, batch_size=case.batch_size // 2)
        result = replace(one(smaller, m, options), requested_batch_size=result.requested_batch_size or case.batch_size)
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
    return [c for c in cases if c.key not in done], Measure(**settings["measure"]), RunOptions(**settings["options"])


def execute(store: Store, run_id: str, *, on_start: Callable[[Case, int, int], None] = lambda *a: None,
            on_result: Callable[[Result], None] = lambda r: None) -> None:
    """Measure every pending case of a run, committing each before the next starts."""
    todo, m, options = pending(store, run_id)
    one = run_isolated if options.isolation == "process" else run_in_process
    for index, case in enumerate(todo):
        on_start(case, index, len(todo))
        for result in _attempts(case, m, options, one):
            result = replace(result, **static_figures(result.case))
            if options.instructions and result.samples_ns and fnmatch.fnmatchcase(result.case.model, options.instructions):
                per_iter, why = instructions.count(result.case)
                result = replace(result, instructions_per_iter=per_iter, instructions_reason=why)
            if options.profile_dir and result.samples_ns:
                profile_isolated(result.case, options.profile_dir, run_id)
            store.add_result(run_id, result)
            on_result(result)
    store.finish_run(run_id)
