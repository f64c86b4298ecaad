"""Measure one case: get it ready (``bench.prepare``), sample, and return one immutable ``bench.record.Result``.

Method
    The case is built, checked, cold-started and warmed up by
    ``bench.prepare.get_ready`` (its docstring has the step, the validity checks
    and the warm-up rule); this module times it.

    **Sampling** is adaptive and runs in blocks: one sample per iteration,
    iterations grouped into consecutive blocks of ``BLOCK_S`` (50 ms, at least
    one iteration each). The p50 is the median of all samples; its interval is
    the distribution-free 95% CI (``bench.stats.median_ci``) of the *blocks'
    medians*, not of the single iterations: consecutive iterations share the
    machine's speed of that moment, so their spread claims a precision that a
    rerun a minute later does not see, while blocks spread over the whole
    measuring window carry its drift into the interval (batch medians, as the
    rounds of a comparison group do in ``bench.group``). Sampling stops once at
    least ``min_samples`` iterations and ``MIN_BLOCKS`` blocks are in and that
    interval is within +/-``target_ci`` of the blocks' median; or at the time cap
    ``max_seconds`` (at least 3 blocks), or at ``max_samples`` (once ``MIN_BLOCKS``
    are in); stopped by either with the interval wider than the target, the
    case is ``noisy`` with its spread, not passed off as precise. A step
    longer than a block makes each block one iteration: the rule is then the
    median's CI over the iterations.

    **Timers** (each device's, in ``bench.devices``). CPU: ``time.perf_counter_ns`` around each iteration. CUDA: a pair
    of CUDA events around each iteration, with no synchronisation inside the
    timed loop: iterations run in runs of up to five, sized from the iteration
    time so that a long step does not overrun its block, the host synchronises
    once at the end of a run, then reads the events; the host's own wall time per iteration
    (``perf_counter_ns`` between launches) is kept beside them, so launch overhead
    shows.

    **Memory.** CPU: peak resident memory of this (isolated) process above its
    resident size once the fp32 model, its input and the reference output are
    built (``bench.prepare.own_base``; the casts and conversions of the variant
    come after, inside the window), from the kernel's own
    accounting (``VmHWM`` of ``/proc/self/status``, reset through
    ``/proc/self/clear_refs``); a 1 ms sampler where that reset is refused. CUDA:
    the allocator's peak allocated and reserved bytes while the case is timed:
    the peaks are reset once warm-up is over (after a synchronise and emptying
    the cache), so they hold the weights, the input and the steady-state steps,
    not the fp32 reference, the cast copies or cuDNN's autotuning workspaces of
    set-up (``start_memory_window``); the bytes allocated when that window opens
    (weights, input, optimizer state) are stored as the baseline, with the peak
    allocated above it.

    **Telemetry** (a GPU with nvidia-ml-py, ``bench.telemetry``): the GPU's
    clocks, power, temperature, throttle reasons and other processes, read once
    the memory window opens and again when sampling ends. **Compile**: for a
    compiled case, Dynamo's graphs and graph breaks over the whole case and the
    frames it compiled again while sampling (``bench.prepare.CompileWatch``); a
    recompile there means the steady state was not one, a warning in the row.

    **Page faults.** The process's minor page faults over the timed iterations (``getrusage``), per
    iteration: the pages new to the process each step touches (a cast's copies, buffers above glibc's mmap
    threshold, which go back to the kernel when freed). The runner prices such a page right after the case's
    group (``bench.runner``); with the two, ``bench.results`` says what share of the step goes to fresh memory,
    a price that moves with the machine (on a VM, the host's) while the matmul probe holds still. Under the
    default host allocator (``bench.allocator``: ``keep``, set from the request before anything is built)
    freed memory stays with the worker, and a warm step takes about none.

    A failed validity check makes the case ``invalid``, with the check named.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from . import processes
from .cases import BLOCK_S, Case, Measure
from .devices import device_of
from .prepare import CompileWatch, Skip, apply_flags, failure, get_ready, own_base, skip_reason
from .record import Result, invalid_reason, timing_status
from .stats import median, median_ci_rel
from .zoo import load_plugins

MIN_BLOCKS = 10  # blocks before the interval may stop sampling: fewer give an order-statistic CI too coarse to trust


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


def minor_faults() -> int:
    """This process's minor page faults so far, all its threads."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def fault_figures(faults: int, iterations: int) -> dict[str, Optional[float]]:
    """The Result's page-fault figure (see the module docstring): minor faults per timed iteration; None without
    iterations."""
    return {"page_faults_per_iter": round(faults / iterations, 1) if iterations else None}


def timed_block(step: Callable[[], Any], case: Case, seconds: float) -> tuple[list[int], list[int]]:
    """Iterations for ``seconds`` (at least one), one sample each, on the case's device (``bench.devices``):
    (samples ns, host ns per iteration; CUDA only). The unit of sampling: of a case alone (``sample``) and of an
    interleaved round (``serve``)."""
    return device_of(case.device).timed_block(step, seconds)


def sample(step: Callable[[], Any], case: Case, sampling: Measure,
           block_s: float = BLOCK_S) -> tuple[list[int], list[int], list[int], str]:
    """Block by block until the rule of the module docstring holds: (samples, host samples, block medians, stop)."""
    samples: list[int] = []
    host: list[int] = []
    medians: list[int] = []
    deadline = time.perf_counter() + sampling.max_seconds
    while True:
        block, block_host = timed_block(step, case, block_s)
        samples += block
        host += block_host
        medians.append(round(median(block)))
        if len(medians) < MIN_BLOCKS and time.perf_counter() < deadline:
            continue
        if len(samples) >= sampling.min_samples and median_ci_rel(medians) <= sampling.target_ci:
            return samples, host, medians, "target"
        if len(samples) >= sampling.max_samples:
            return samples, host, medians, "max samples"
        if len(medians) >= 3 and time.perf_counter() >= deadline:
            return samples, host, medians, "time cap"


def measure(case: Case, sampling: Measure) -> Result:
    """Measure one case in this process. Never raises for a case that fails: that is a Result too."""
    started, t_start = time.time(), time.perf_counter()

    def done(status: str, reason: str = "", **figures: Any) -> Result:
        return Result(case=case, status=status, reason=reason, started_at=started,
                      duration_s=time.perf_counter() - t_start, **figures)

    device = device_of(case.device)
    try:
        reason = skip_reason(case)
        if reason:
            raise Skip(reason)
        device.setup(case.threads)
        figures: dict[str, Any] = {"weights_shared": own_base(case)}  # before the memory window (module docstring)
        watch = CompileWatch() if case.compile_mode else None
        with _cpu_peak_rss() as rss:
            step = get_ready(case, sampling.warmup_seconds, figures)
            start_memory_window(case)
            figures["gpu_start"] = device.telemetry()
            if watch:
                watch.sampling_starts()
            faults = minor_faults()
            samples, host, medians, stop = sample(step, case, sampling)
            faults = minor_faults() - faults
            figures["gpu_end"] = device.telemetry()
            if watch:
                figures["compile_counts"] = watch.counts()
            figures.update(samples_ns=tuple(samples), host_samples_ns=tuple(host), round_medians_ns=tuple(medians),
                           timer=device.timer, stop_reason=stop)
        figures.update(device.memory(rss))
        figures.update(fault_figures(faults, len(samples)))
    except Exception as exc:  # a failing case is a row, not a crashed suite
        return done(*failure(exc))
    why = invalid_reason(case, figures)
    if why:
        return done("invalid", why, **figures)
    return done(*timing_status(figures["round_medians_ns"], stop, sampling), **figures)


def start_memory_window(case: Case) -> None:
    """What the memory peaks count from here on (see the module docstring); on the CPU nothing: its peak is
    measured above the resident size once the model is built."""
    device_of(case.device).start_memory_window()


def _limit_memory(extra_bytes: int) -> None:
    """Cap this process's address space at its current size plus ``extra_bytes``."""
    current = _rss_bytes("VmSize") or 0
    resource.setrlimit(resource.RLIMIT_AS, (current + extra_bytes, resource.RLIM_INFINITY))


def _apply_request(request: dict[str, Any]) -> tuple[Case, Measure]:
    load_plugins()
    apply_flags(request)
    if request.get("memory_limit_bytes"):
        _limit_memory(int(request["memory_limit_bytes"]))
    return Case.from_dict(request["case"]), Measure.from_dict(request["measure"])


def serve(lines: Iterator[str], reply: Callable[[dict[str, Any]], None],
          own_limit: Callable[[Optional[float]], None] = lambda seconds: None) -> int:
    """Interleaved measurement (``python -m bench.worker --serve``), one JSON object per line.

    The first line is a request like the file of ``main``; the worker builds, checks
    and warms up the case and answers ``{"ready": true, ...figures}``, or
    ``{"ready": false, "status": ..., "reason": ...}``; a ``"cpus"`` list in the request pins
    the worker to those CPUs first. Then each ``{"block": SECONDS}``
    runs iterations for that long (and with ``"settle_cap": SECONDS`` waits after them until its other threads
    stop running, at most that long, ``bench.processes.settle``; with only ``"settle": SECONDS``, as an older
    runner sends, it sleeps that long) and answers ``{"samples_ns": [...]}`` (after a wait, with
    ``"settle_capped"``: whether its threads still ran when the cap ended it, null where it cannot see them);
    ``{"finish": true}`` answers the memory
    figures of the worker's whole life (its peak above the baseline once built) and its page faults per timed
    iteration (``fault_figures``) and ends it,
    as does the end of input (with the GPU's telemetry at ready and at finish, and a compiled case's Dynamo
    counts, where there are some). Between blocks it waits on its input, idle, while the others run.
    """
    request = json.loads(next(lines))
    case, sampling = _apply_request(request)
    # its own limit while it works (build, blocks), none while it waits for the next request: the others' turns;
    # a runner that ends closes its input, which ends the wait
    own_limit(sampling.timeout_s)
    processes.pin(request.get("cpus"))
    device = device_of(case.device)
    figures: dict[str, Any] = {}
    watch = CompileWatch() if case.compile_mode else None
    try:
        reason = skip_reason(case)
        if reason:
            raise Skip(reason)
        device.setup(case.threads)
        figures["weights_shared"] = own_base(case)  # built here, or the group builder's taken (prepare.take_base)
    except Exception as exc:
        status, reason = failure(exc)
        reply({"ready": False, "status": status, "reason": reason})
        return 0
    with _cpu_peak_rss() as rss:
        try:
            step = get_ready(case, sampling.warmup_seconds, figures)
        except Exception as exc:
            status, reason = failure(exc)
            reply({"ready": False, "status": status, "reason": reason})
            return 0
        start_memory_window(case)
        gpu_start = device.telemetry()
        if watch:
            watch.sampling_starts()
        reply({"ready": True, **figures})
        own_limit(None)
        finished = False
        faults = iterations = 0
        for line in lines:
            own_limit(sampling.timeout_s)
            ask = json.loads(line)
            if ask.get("finish"):
                finished = True
                break
            try:
                before = minor_faults()
                samples = timed_block(step, case, float(ask["block"]))[0]
                faults, iterations = faults + minor_faults() - before, iterations + len(samples)
            except Exception as exc:  # an oom or a failure mid-run: say which, then stop
                status, reason = failure(exc)
                reply({"failed": True, "status": status, "reason": reason})
                return 0
            answer: dict[str, Any] = {"samples_ns": samples}
            if ask.get("settle_cap"):  # let this worker's thread pool stop spinning before the next member runs
                answer["settle_capped"] = processes.settle(float(ask["settle_cap"]), float(ask.get("settle") or 0))
            elif ask.get("settle"):
                time.sleep(float(ask["settle"]))
            reply(answer)
            own_limit(None)
    if finished:
        ends = {"gpu_start": gpu_start, "gpu_end": device.telemetry(), "compile_counts": watch and watch.counts()}
        reply({**device.memory(rss), **{k: asdict(v) for k, v in ends.items() if v is not None},
               **fault_figures(faults, iterations)})
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

        return serve(iter(sys.stdin.readline, ""), reply, processes.own_limit)  # a worker process: its own limit
    case, sampling = _apply_request(json.loads(Path(argv[0]).read_text()))
    processes.own_limit(sampling.timeout_s)  # the runner's limit, kept even if the runner is gone
    result = measure(case, sampling)
    tmp = Path(argv[1] + ".tmp")
    tmp.write_text(json.dumps(result.to_dict()))
    os.replace(tmp, argv[1])
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    sys.exit(main(sys.argv[1:]))
