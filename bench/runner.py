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

Comparison groups (``RunOptions.group``, a key of ``bench.cases.GROUPINGS``;
a suite's ``group``, default ``variant``): the cases a report compares are
measured together, interleaved (``bench.group``), one serving worker per
case, so that the machine's drift cancels in their ratios. Each member's
time against the group's reference (fp32/contiguous/eager for ``variant``,
the first model for ``model``) is stored as its ``Pairing``; the rounds'
medians are stored too, and its p50's interval comes from them (what a
rerun would see), not from consecutive iterations. The stopping rule: every
active member's ratio to the reference and its own round-median interval
within ``target_ci``, or ``max_seconds`` of blocks per member, or
``max_samples`` rounds. A member that fails leaves with its status and the
others go on; an invalid member stays (timed, marked invalid, unpaired). A
group whose workers would not fit in memory together (the static analysis's
weights, gradients and activations, plus a runtime allowance, and the fp32
weights its builder holds until the members are ready, against the machine's
available memory) is split in parts that keep the reference, and the part is
in the group's label. A group is committed as a whole, so ``--resume``
measures a group that was in flight again, whole.

The machine-speed track (``bench.probe``): the runner probes before each
group (no worker alive), inside each group as one more member of its rounds
(``PROBE_GROUP_S``, at most every ``PROBE_EVERY_S``; the runner's probe threads
get the members' pause after them), and after the last; the probes are stored
with the group's results. Right after each group, with no worker alive, it
also prices a page of memory new to a process (``bench.probe.fresh_memory_us``)
for the group's CPU cases, which counted their page faults
(``bench.worker``): ``bench.results`` makes of the two the share of a step
that goes to fresh memory.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import logging
import math
import os
import socket
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from . import environment, instructions, processes
from .allocator import DEFAULT_ALLOCATOR, checked as checked_allocator, stored_options
from .analysis import analyse
from .calibrate import calibrate
from .cases import BLOCK_S, GROUPINGS, ISOLATIONS, Case, Measure, group_cases
from .devices import device_of
from .errors import BadInput, BadValue, StoreError, WorkerFailed
from .group import (SETTLE_BLIND_S, SETTLE_CAPPED_WARN, SETTLE_S, Arm, Member, capped_share, paired_rounds,
                    run_group, settle_warning, shares_build)
from .precision import DTYPE_BYTES, weight_dtype
from .prepare import apply_flags, skip_reason
from .probe import FRESH_REPEATS, PROBE_GROUP_S, PROBE_S, fresh_memory_us, probe_gflop_s
from .record import Pairing, Result, attached, invalid_reason, timing_status
from .shards import Shard, job_id, shard_cases, shard_keys
from .stats import median_ci, median_ci_rel, paired_figures
from .store import Store
from .suites import Suite
from .values import writable_folder
from .worker import measure

log = logging.getLogger(__name__)

PROFILE_TIMEOUT_S = 900.0  # one profile of one case, build and compilation included

RUNTIME_BYTES = 600 * 2**20  # a worker's own footprint before its model: the interpreter, torch, allocator slack


@dataclass(frozen=True)
class RunOptions:
    isolation: str = "process"
    oom_retry: bool = False
    memory_limit_bytes: Optional[int] = None  # per worker: address space allowed above its size after start-up
    tf32: bool = False
    cudnn_benchmark: bool = False
    allocator: str = DEFAULT_ALLOCATOR  # what a worker's malloc does with freed memory (bench.allocator)
    calibrate_seconds: float = 0.5
    instructions: Optional[str] = None  # model pattern whose cases also get callgrind instruction counts
    profile_dir: Optional[str] = None  # profile every measured case after measuring it, traces under here
    group: Optional[str] = None  # a key of GROUPINGS; None: the suite's (start_run), or "none" for older runs
    block_s: float = BLOCK_S  # length of one member's block in a group's round

    def __post_init__(self) -> None:
        if self.isolation not in ISOLATIONS:
            raise BadValue(f"isolation must be one of {', '.join(ISOLATIONS)}, got {self.isolation!r}")
        if self.group is not None and self.group not in GROUPINGS:
            raise BadValue(f"group must be one of {', '.join(GROUPINGS)}, got {self.group!r}")
        checked_allocator(self.allocator)

    def worker_flags(self) -> dict[str, Any]:
        """What every worker of the run is told to set before it builds anything (``bench.prepare.apply_flags``)."""
        return {"tf32": self.tf32, "cudnn_benchmark": self.cudnn_benchmark, "allocator": self.allocator}

    @classmethod
    def stored(cls, options: dict[str, Any]) -> "RunOptions":
        """A stored run's options; one stored before the allocator was a setting was measured with glibc's own."""
        return cls(**stored_options(options))


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
    ended = processes.run_on_request("bench.worker", "worker", {
        "case": case.to_dict(), "measure": asdict(sampling), "memory_limit_bytes": options.memory_limit_bytes,
        **options.worker_flags(),
    }, sampling.timeout_s)
    if ended.answer is not None:
        return Result.from_dict(ended.answer)
    return Result(case=case, status="timeout" if ended.timed_out else "crashed", reason=ended.reason("result"),
                  started_at=started, duration_s=time.perf_counter() - t0)


_wait = processes.wait_for  # the name tests/test_processes.py knows it by

CALIBRATE_TIMEOUT_S = 300.0  # one short matmul per device, dtype and thread count, CUDA start-up included
CALIBRATE_STDERR_LINES = 5  # of a failed calibration's stderr, in its message: CUDA's last lines are advice


def calibrate_isolated(cases: list[Case], options: RunOptions) -> dict[str, float]:
    """The matmul peaks (``bench.calibrate``) measured with the run's backend flags: in a worker of its own
    (``--isolation process``), or here after ``apply_flags`` (``--isolation none``). A worker that fails or
    passes its limit is ``WorkerFailed``, saying how it ended and the last lines of its stderr; ``start_run``
    then goes on without peaks (its rows without peak fractions), with that as a warning."""
    unique = sorted({(c.device, c.precision, c.threads) for c in cases})
    few = [Case("calibration", device=d, precision=p, threads=t) for d, p, t in unique]
    if options.isolation == "none":
        apply_flags(options.worker_flags())
        return calibrate(few, options.calibrate_seconds)
    ended = processes.run_on_request("bench.calibrate", "calibrate", {
        "cases": [c.to_dict() for c in few], "seconds": options.calibrate_seconds, **options.worker_flags()},
        CALIBRATE_TIMEOUT_S)
    if ended.answer is None:
        why = ended.reason("peaks", CALIBRATE_STDERR_LINES).removeprefix("worker ")
        raise WorkerFailed(f"the calibration worker {why}")
    return ended.answer["peaks"]


def profile_isolated(case: Case, out: str, run_id: str, options: RunOptions = RunOptions()) -> str:
    """``cnnbench profile`` of a measured case in its own process, after the measurement, never during it.

    The case goes to ``python -m bench.profiling REQUEST.json`` as a file; returns "" when the
    profile was written, else why not (for the case's row).
    """
    ended = processes.run_on_request("bench.profiling", "profile", {
        "case": case.to_dict(), "out": out, "run": run_id, "timeout_s": PROFILE_TIMEOUT_S, **options.worker_flags()},
        PROFILE_TIMEOUT_S, answers=False)
    if ended.returncode == 0:
        return ""
    why = ended.reason("profile").removeprefix("worker ")
    return f"profile {why}" if ended.timed_out else f"profile failed: {why}"


def run_in_process(case: Case, sampling: Measure, options: RunOptions) -> Result:
    """One case in the runner's process (``--isolation none``): Dynamo's caches are reset first, so that a
    compiled case does not find the graphs of the one before."""
    apply_flags(options.worker_flags())
    if case.compile_mode:
        import torch._dynamo

        torch._dynamo.reset()
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


def check_options(cases: list[Case], options: RunOptions) -> None:
    """Refuse devices and options that cannot work for these cases, before anything is measured or stored."""
    if options.profile_dir:  # a file where the folder should be would profile nothing and say ok
        writable_folder(options.profile_dir, "profiles")
    gpu = sorted({case.device for case in cases} - {"cpu"})
    for name in gpu:
        missing = device_of(name).missing()
        if missing:
            raise BadValue(missing)
    if options.memory_limit_bytes and gpu:
        raise BadValue(f"--worker-memory-limit caps a worker's address space, which {', '.join(gpu)} reserves far "
                       "beyond any limit (every case would be oom): use it for CPU-only suites")


@dataclass(frozen=True)
class NewRun:
    """A run planned by ``start_run``, not yet stored: ``execute`` stores it together with its first results
    (``Store.import_run``, one transaction), so a run that could not start (a failure before its first case
    was committed, kill -9 or a full disk included) leaves nothing in the store."""

    id: str
    row: dict[str, Any]  # the store's run record (``Store.run``'s shape)
    shard: Optional[dict[str, Any]] = None  # a sharded run's row for this shard (``Store.shards``' shape)
    warnings: tuple[str, ...] = ()  # what went wrong in planning without stopping the run (a failed calibration)


def new_run_id() -> str:
    """A run's id when none is chosen: the local time to the second and 6 random hex digits, 20261128-035239-54d61f."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


def start_run(suite: Suite, options: RunOptions, machine: Optional[str] = None, run_id: Optional[str] = None,
              shard: Optional[Shard] = None, store: Optional[Store] = None) -> NewRun:
    """Plan a run of ``suite``: its cases, options, environment and calibration; nothing is stored yet.
    ``machine``: the run's label (default: the hostname); ``run_id``: the id (default: the time and 6 random
    hex digits); ``shard``: measure only that part of the suite (``bench.shards``), under ``run_id``, which
    every shard of the run shares; with ``store``, a shard of a run stored already is checked against it
    (planned alike) before the calibration. The calibration covers the whole suite's precisions, whichever
    shard stores the run first; one that failed is a warning of the NewRun (``warnings``, for the caller to
    show), not a failed run."""
    cases = suite.cases()
    check_options(cases, options)
    options = replace(options, group=options.group or suite.group)
    settings = run_settings(suite, cases, options)
    if shard is not None:
        settings["shards"] = shard.count
        if store is not None and run_id and store.has_run(run_id):
            store.check_plan(run_id, settings, f"shard {shard}")
    # the workers' flags, not this process's
    env = environment.collect(options.tf32, options.cudnn_benchmark, options.allocator)
    env["threads"] = sorted({c.threads for c in cases})
    warnings: tuple[str, ...] = ()
    try:
        peaks = calibrate_isolated(cases, options)
    except WorkerFailed as exc:
        peaks, warnings = {}, (f"{exc}; the run goes on without peaks, so its rows have no peak_fraction",)
    run_id = run_id or new_run_id()
    machine = machine or env["hostname"]
    shard_row = None
    if shard is not None:
        shard_row = {"shard": shard.index, "shards": shard.count, "machine": machine, "environment": env,
                     "calibration": peaks, "job_id": job_id(), "started_at": time.time(),
                     "cases_total": len(shard_cases(cases, options.group, shard))}
    return NewRun(run_id, {"id": run_id, "suite": suite.name, "suite_definition": suite.to_dict(), "environment": env,
                           "calibration": peaks, "settings": settings, "started_at": time.time(),
                           "finished_at": None, "cases_total": len(cases), "machine": machine}, shard_row, warnings)


def keys_of_shard(run: dict[str, Any], shard: Shard) -> set[str]:
    """The case keys of ``shard`` of a stored run (``Store.run``'s record); one BadValue line where the run was
    not sharded, or not in that many shards."""
    settings = run["settings"]
    if "shards" not in settings:
        raise BadValue(f"run {run['id']!r} was not sharded: resume it without --shard")
    if settings["shards"] != shard.count:
        raise BadValue(f"run {run['id']!r} has {settings['shards']} shards, not {shard.count}: "
                       f"--shard K/{settings['shards']}")
    return shard_keys(settings, shard)


def pending(run: dict[str, Any], done: set[str]) -> tuple[list[Case], Measure, RunOptions]:
    """The cases of a run (``Store.run``'s record) not among ``done``, with the run's own settings."""
    settings = run["settings"]
    if not isinstance(settings, dict) or not {"cases", "measure", "options"} <= settings.keys():
        raise BadValue(f"run {run['id']!r} ({run['suite']!r}) was not started by 'cnnbench run' "
                       "(an imported or merged run): there is nothing to resume")
    cases = [Case.from_dict(c) for c in settings["cases"]]
    todo = [c for c in cases if c.key not in done]
    return todo, Measure.from_dict(settings["measure"]), RunOptions.stored(settings["options"])


@contextlib.contextmanager
def fresh_inductor_cache() -> Iterator[str]:
    """An empty Inductor cache for the run (``TORCHINDUCTOR_CACHE_DIR``, which workers inherit, removed
    afterwards): a compiled case's cold start compiles from nothing in every run, so cold starts compare across
    runs, not against whatever an earlier run left in the user's cache."""
    saved = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    with tempfile.TemporaryDirectory(prefix="cnnbench-inductor-", ignore_cleanup_errors=True) as folder:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = folder
        try:
            yield folder
        finally:
            if saved is None:
                os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)
            else:
                os.environ["TORCHINDUCTOR_CACHE_DIR"] = saved


def _in_fresh_inductor_cache(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with fresh_inductor_cache():
            return func(*args, **kwargs)
    return wrapper


@_in_fresh_inductor_cache
def execute(store: Store, run: "NewRun | str", *, shard: Optional[Shard] = None, machine: Optional[str] = None,
            on_start: Callable[[Case, int, int], None] = lambda *a: None,
            on_result: Callable[[Result], None] = lambda r: None) -> None:
    """Measure every pending case of a run (a ``NewRun``, or the id of a stored one to resume), committing each
    case (or group) before the next starts, with an Inductor cache of the run's own (``fresh_inductor_cache``);
    a finished run resumed with nothing pending is left as it was. A resumed run's ``shard`` (K/N): only that
    shard's pending cases, and its row renewed with ``machine`` (default: the hostname) and this job's id.
    Every result is labelled with the machine that measured it."""
    run_id = run.id if isinstance(run, NewRun) else run
    here = machine or socket.gethostname()
    shard_row = run.shard if isinstance(run, NewRun) else None
    if shard_row is not None:
        shard = Shard(shard_row["shard"], shard_row["shards"])
    where = str(Path(store.url[len("sqlite:///"):]).resolve()) if store.url.startswith("sqlite:///") else store.url
    one_runner = f"{where}\0{run_id}" + (f"\0{shard}" if shard else "")
    with processes.claim(one_runner, f"run {run_id!r}" + (f" shard {shard}" if shard else "") + f" of {store.label!r}"):
        unsaved = run.row if isinstance(run, NewRun) else None
        if unsaved is not None and store.has_run(run_id):
            if shard_row is None:
                raise StoreError(f"run {run_id!r} is already in {store.label!r}: 'cnnbench run --resume {run_id}' "
                                 "finishes it, or choose another --run-id")
            store.store_planned(unsaved, [], shard_row)  # a shard joins the run (planned alike, else one line)
            unsaved = None
        record = unsaved or store.run(run_id)
        todo, sampling, options = pending(record, store.done_keys(run_id))
        if shard is not None:
            keys = keys_of_shard(record, shard)
            todo = [case for case in todo if case.key in keys]
            if not isinstance(run, NewRun):  # resumed: the shard's row names this runner now
                store.start_shard(run_id, {"shard": shard.index, "shards": shard.count, "job_id": job_id(),
                                           "machine": here, "cases_total": len(keys),
                                           "started_at": time.time()})
        label = shard_row["machine"] if shard_row else unsaved["machine"] if unsaved else here
        _measure(store, run_id, record, unsaved, shard_row, todo, sampling, options, label, on_start, on_result)
        if shard is not None:
            store.finish_shard(run_id, shard.index)
        if "shards" in record["settings"]:  # finished by whichever runner stores its last case
            everything = {Case.from_dict(case).key for case in record["settings"]["cases"]}
            if everything <= store.done_keys(run_id) and store.run(run_id)["finished_at"] is None:
                store.finish_run(run_id)


def _measure(store: Store, run_id: str, record: dict[str, Any], unsaved: Optional[dict[str, Any]],
             shard_row: Optional[dict[str, Any]], todo: list[Case], sampling: Measure, options: RunOptions,
             machine: str, on_start: Callable[[Case, int, int], None], on_result: Callable[[Result], None]) -> None:
    one = run_isolated if options.isolation == "process" else run_in_process
    grouping = options.group if options.isolation == "process" else "none"
    # the run's largest thread count, resumed or not, so that every probe of the track measures alike
    threads = max(case["threads"] for case in record["settings"]["cases"])
    track: list[tuple[float, float]] = []  # probes kept until the group (and the run, at first) is stored

    def probe(seconds: float = PROBE_S) -> None:  # the machine-speed track (bench.probe)
        t0 = time.time()
        value = probe_gflop_s(threads, seconds)
        track.append(((t0 + time.time()) / 2, value))

    probe_waits = [0, 0, 0]  # the in-group probe's waits for its threads, those its threads outlasted, warned yet

    def in_group() -> None:  # one more member of a group's round, its pause after it as the members have
        probe(PROBE_GROUP_S)
        if threads > 1:
            capped = processes.settle(SETTLE_S, SETTLE_BLIND_S)
            if capped is not None:
                probe_waits[0] += 1
                probe_waits[1] += capped
            share = capped_share(probe_waits[1], probe_waits[0])
            if not probe_waits[2] and probe_waits[0] >= 10 and share is not None and share >= SETTLE_CAPPED_WARN:
                probe_waits[2] = 1
                log.warning("the machine-speed probe's %s", settle_warning(share))

    sharded = "shards" in record["settings"]
    done = 0
    for members in group_cases(todo, grouping or "none"):
        if sharded and unsaved is None:  # another runner of this shard (submitted twice) may have stored some
            stored = store.done_keys(run_id)
            left = [case for case in members if case.key not in stored]
            done += len(members) - len(left)
            members = left
            if not members:
                continue
        probe()  # between groups: no worker is alive
        for case in members:
            on_start(case, done, len(todo))
        if len(members) == 1:
            results = list(_attempts(members[0], sampling, options, one))
        else:
            results = measure_group(members, sampling, options, in_group)
            for result in list(results):  # --oom-retry: a member out of memory is retried alone, smaller
                if result.status == "oom" and options.oom_retry:
                    results += list(_attempts(result.case, sampling, options, one))[1:]
        results = [_finish(result, options, run_id, machine) for result in _priced(results)]
        if unsaved is None:
            left_out = store.add_results(run_id, results)
        else:  # the run and its first results in one transaction, then the probes it had so far
            left_out = store.store_planned(unsaved, results, shard_row)
            unsaved = None
        store.add_track(run_id, track, machine)
        track.clear()
        for result in left_out:
            log.warning("case %s of run %s was stored meanwhile by another runner; this measurement is left out",
                        result.case.key, run_id)
        for result in results:
            if not any(result is other for other in left_out):
                on_result(result)
        done += len(members)
    if todo:
        probe()
    if unsaved is not None:  # nothing of its own to measure (a shard whose groups are all stored): the plan alone
        store.store_planned(unsaved, [], shard_row)
    if track:
        store.add_track(run_id, track, machine)
    if not sharded and (todo or record["finished_at"] is None):
        store.finish_run(run_id)


def _priced(results: list[Result]) -> list[Result]:
    """The CPU cases of a group that counted their page faults, with the price of a fresh page measured now, right
    after the group, in this process (``bench.probe.fresh_memory_us``): one measurement for all of them, while no
    worker is alive."""
    def counted(result: Result) -> bool:
        return result.page_faults_per_iter is not None and result.case.device == "cpu"

    if not any(counted(r) for r in results):
        return results
    price = fresh_memory_us(repeats=FRESH_REPEATS)
    return [replace(r, fresh_page_us=price) if counted(r) else r for r in results]


def _finish(result: Result, options: RunOptions, run_id: str, machine: str) -> Result:
    """A measured case's row completed: the machine's label, static figures, instruction counts and its profile,
    as asked."""
    result = replace(result, machine=machine, **static_figures(result.case))
    if options.instructions and result.samples_ns and fnmatch.fnmatchcase(result.case.model, options.instructions):
        per_iter, why = instructions.count(result.case)
        result = replace(result, instructions_per_iter=per_iter, instructions_reason=why)
    if options.profile_dir and result.samples_ns:
        why_not = profile_isolated(result.case, options.profile_dir, run_id, options)
        if why_not:
            result = replace(result, reason="; ".join(filter(None, [result.reason, why_not])))
    return result


def group_label(members: list[Case], grouping_fields: tuple[str, ...]) -> str:
    first = members[0]
    parts = []
    for name in grouping_fields:
        value = getattr(first, name)
        parts.append("x".join(map(str, value)) if name == "input_shape" else
                     f"b{value}" if name == "batch_size" else f"t{value}" if name == "threads" else str(value))
    return "|".join(parts)


def _reference_index(members: list[Case]) -> int:
    """fp32/contiguous/eager where the group has it, else its first member."""
    return next((i for i, case in enumerate(members) if case.is_reference), 0)


def _footprint_bytes(case: Case) -> int:
    """What a worker of this case holds at its peak, from the static analysis: weights (with gradients and SGD
    momentum in training), activations (saved for backward in training) and the runtime allowance."""
    figures = static_figures(case)
    weights = (figures.get("params") or 0) * DTYPE_BYTES[weight_dtype(case.precision)]
    if case.mode == "train":
        return RUNTIME_BYTES + 3 * weights + (figures.get("saved_bytes") or figures.get("activation_bytes") or 0)
    return RUNTIME_BYTES + weights + (figures.get("activation_bytes") or 0)


def _builder_bytes(members: list[Case]) -> int:
    """What a group's builder (``bench.group``) holds: the fp32 weights of the members' one model."""
    return (static_figures(members[0]).get("params") or 0) * DTYPE_BYTES["float32"] if members else 0


def available_bytes() -> Optional[int]:
    """The kernel's MemAvailable, or None where it is not known."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def split_to_fit(members: list[Case], budget: Optional[int]) -> list[list[Case]]:
    """The group in parts whose workers fit in ``budget`` bytes together, each part keeping the reference."""
    if budget is None or sum(map(_footprint_bytes, members)) <= budget or len(members) <= 2:
        return [members]
    ref = members[_reference_index(members)]
    parts: list[list[Case]] = []
    current = [ref]
    for case in members:
        if case is ref:
            continue
        if len(current) > 1 and sum(map(_footprint_bytes, current + [case])) > budget:
            parts.append(current)
            current = [ref]
        current.append(case)
    parts.append(current)
    return parts


def measure_group(members: list[Case], sampling: Measure, options: RunOptions,
                  probe: Optional[Callable[[], None]] = None) -> list[Result]:
    """One comparison group, interleaved (see the module docstring): a Result per member, in the members' order;
    ``probe``, the machine-speed probe, runs as one more member of its rounds (``bench.group.run_group``)."""
    grouping_fields = GROUPINGS[options.group or "variant"] or ()
    label = group_label(members, grouping_fields)
    skipped = {case.key: reason for case in members if (reason := skip_reason(case))}
    runnable = [case for case in members if case.key not in skipped]
    budget = available_bytes()
    if budget:  # a group's builder holds one fp32 copy of the model until its members have theirs
        budget = int(budget * 0.8) - (_builder_bytes(runnable) if shares_build([Arm(c) for c in runnable]) else 0)
    parts = split_to_fit(runnable, budget) if runnable else []
    out: dict[str, Result] = {key: Result(case=next(c for c in members if c.key == key), status="skipped",
                                          reason=reason, started_at=time.time()) for key, reason in skipped.items()}
    for n, part in enumerate(parts):
        part_label = label if len(parts) == 1 else f"{label} (part {n + 1} of {len(parts)}: too big for memory together)"
        for result in _measure_part(part, part_label, sampling, options, probe):
            if result.case.key in out and out[result.case.key].status == "ok":
                continue  # the reference, measured again in a later part: its first measurement stands
            out[result.case.key] = result
    return [out[case.key] for case in members]


def _measure_part(members: list[Case], label: str, sampling: Measure, options: RunOptions,
                  probe: Optional[Callable[[], None]]) -> list[Result]:
    started, t0 = time.time(), time.perf_counter()
    ref_index = _reference_index(members)

    def enough(state: list[Member]) -> bool:
        ref = state[ref_index]
        for member in state:
            if not member.active:
                continue
            if median_ci_rel([r for r in member.round_ns if r is not None]) > sampling.target_ci:
                return False
            if member is not ref and ref.active:
                base, mine = paired_rounds(member, ref)
                lo, hi = median_ci([math.log(m / b) for b, m in zip(base, mine)])
                if math.isnan(lo) or (hi - lo) / 2 > sampling.target_ci:
                    return False
        return True

    run = run_group([Arm(case) for case in members], sampling, enough, block_s=options.block_s,
                    min_rounds=sampling.min_samples, max_rounds=sampling.max_samples,
                    max_seconds=sampling.max_seconds * len(members), finish=True, probe=probe,
                    request_extra={**options.worker_flags(), "memory_limit_bytes": options.memory_limit_bytes})
    duration = time.perf_counter() - t0
    reference = run.members[ref_index]
    results = []
    for member in run.members:
        results.append(_member_result(member, reference, run.rounds, run.stop_reason, label, len(members),
                                      sampling, started, duration))
    return results


def _member_result(member: Member, reference: Member, rounds: int, stop: str, label: str, size: int,
                   sampling: Measure, started: float, duration: float) -> Result:
    case = member.arm.case
    common = dict(case=case, started_at=started, duration_s=duration, **member.figures)
    if not member.active:
        return Result(status=member.status, reason=member.reason, **common)
    round_ns = tuple(r for r in member.round_ns if r is not None)
    why = invalid_reason(case, member.figures)
    status, reason = ("invalid", why) if why else timing_status(round_ns, stop, sampling)
    pairing = Pairing(group=label, reference=reference.arm.case.key, members=size)
    if member is not reference and reference.active and not why and not invalid_reason(reference.arm.case,
                                                                                        reference.figures):
        base, mine = paired_rounds(member, reference)
        if base:
            pairing = replace(pairing, rounds=len(base), **paired_figures(base, mine))
    return Result(status=status, reason=reason, samples_ns=tuple(member.samples_ns), timer=device_of(case.device).timer,
                  stop_reason="max samples" if stop == "max rounds" else stop, round_medians_ns=round_ns,
                  pairing=pairing, settle_waits=member.settle_waits or None,
                  settle_capped=member.settle_capped if member.settle_waits else None,
                  **_finish_figures(member.memory), **common)


def _finish_figures(reply: dict[str, Any]) -> dict[str, Any]:
    """A worker's finish reply as Result fields: its memory figures, its GPU readings and compile counts."""
    return {**reply, **attached(reply)}
