"""Reading the store as tidy tables: one row per case, columns named with their units.

``load(run_id)`` returns a pandas DataFrame; the latency statistics are derived
here from the raw samples (``bench.stats``), never stored twice.

Derived columns: ``latency_ms_p50/p90/p99/mean/stdev/iqr/min``, the median's 95%
CI (``latency_ms_p50_ci_low/high``, ``latency_p50_ci_rel``: the measurement's, from block or round medians over
its window), where a rerun at another moment is expected (``latency_ms_p50_rerun_low/high``,
``latency_p50_rerun_rel``: that CI widened by the run's machine-speed spread, ``bench.probe.spread``, from one
case's window to another, or by how far this machine's cases moved since its previous run (``rerun_history``)
where that is wider; and, for a case that pays for fresh memory, by its share of the step times how far the price
of fresh memory moved from one case's window to another, ``bench.probe.fresh_spread``; ``latency_rerun_from`` says
which: "probe" or "run RUN_ID", with " + fresh memory" where that term widened it; empty for runs with a shorter
track and no earlier run), ``fresh_memory_share`` (a CPU case's minor page faults per timed iteration x the price of a
fresh page measured right after its group, over its p50: about how much of the step goes to memory new to it; an upper
estimate where the step's threads fault in parallel, the price being one thread's; at most 1), ``throughput_img_s``
(batch / median latency), ``flops`` (2 x MACs of one forward pass),
``step_flops`` (forward only for inference; 3 x the forward for a training step,
the usual forward + 2 x backward estimate), ``achieved_gflop_s`` (step_flops /
median) and ``peak_fraction`` (of the run's matmul calibration for that device,
dtype and thread count); for CUDA also ``enqueue_ms_p50`` (the host's enqueue time per iteration) and
``launch_bound``; for a GPU with nvidia-ml-py its telemetry at the start and end of sampling
(``gpu_*_start/_end``, ``gpu_throttled``, ``gpu_shared``); for a compiled case Dynamo's ``compile_graphs``,
``compile_graph_breaks`` and ``compile_recompiles`` (while sampling). ``warnings``: what makes a measured time
less than it seems (a throttled or shared GPU, a recompile while sampling, a disturbed machine, a step paying for fresh
memory, a group member whose threads outlast the wait after its blocks), with what to do; "" when nothing does.
"""

from __future__ import annotations

import math
from dataclasses import fields
from pathlib import Path
from typing import Any, Optional, Sequence

import pandas as pd

from . import escape
from .allocator import STORED_BEFORE
from .calibrate import calibration_key
from .errors import BadValue, Unavailable, cannot, first_line
from .group import SETTLE_CAPPED_WARN, capped_share, settle_warning
from .precision import compute_dtype
from .probe import Track, disturbed, fresh_spread, own_track, speed_during, spread
from .record import ATTACHED, CompileCounts, GpuState, Pairing, Result
from .telemetry import THROTTLING, shared, throttled
from .stats import median, median_ci, median_ci_rel, rerun_interval, summarize
from .store import Store, open_store
from .table import EXPORT_FORMATS

GPU_FIELDS = tuple(f.name for f in fields(GpuState))
COMPILE_FIELDS = tuple(f.name for f in fields(CompileCounts))



FRESH_SHARE_WARN = 0.25  # of a step's time paid for fresh memory: its time moves with that price, warned in the row
MIN_HISTORY_CASES = 5  # timed cases in both runs: fewer say little about how far a rerun lands
HISTORY_RUNS = 5  # how many earlier runs are looked through for one of this machine


def _p50s(results: Sequence[Result], machine: Optional[str]) -> dict[str, float]:
    """The p50 (ns) of each case measured on ``machine`` (or unlabelled) that was timed and passed its checks (ok or
    noisy), by case key."""
    return {r.case.key: median(r.samples_ns) for r in results
            if r.status in ("ok", "noisy") and r.samples_ns and r.machine in (None, machine)}


def _fingerprint(run: dict[str, Any]) -> Optional[str]:
    environment = run.get("environment")
    return environment.get("machine_fingerprint") if isinstance(environment, dict) else None


def measured_as(run: dict[str, Any]) -> tuple[str, str]:
    """How a stored run measured its cases, as far as that sets their p50s: its grouping (``bench.cases.GROUPINGS``;
    a run from before groups, or under ``--isolation none``, measured each case alone) and the host allocator in
    effect in its workers (the environment's ``cpu_allocator``, ``bench.allocator``; a run from before it: glibc's)."""
    options = (run.get("settings") or {}).get("options") or {}
    environment = run.get("environment") if isinstance(run.get("environment"), dict) else {}
    alone = options.get("isolation") == "none" or not options.get("group")
    return "none" if alone else options["group"], environment.get("cpu_allocator") or STORED_BEFORE


def rerun_history(st: Store, run: dict[str, Any], results: Sequence[Result]) -> Optional[tuple[float, str]]:
    """For ``run`` (as ``Store.run`` gives it) and its results: (the SD of the log of a case's p50 from one run to
    another, per run; the earlier run it is read from), or None. How far reruns on this machine have landed,
    whatever moved them (the probe's matmul sees only the machine's compute speed; a change of code between the
    runs counts too, as far as it moves the median case).

    The earlier run: the latest of the ``HISTORY_RUNS`` runs with this run's machine label started before it
    whose hardware fingerprint is this run's, which was measured the same way (``measured_as``: a case
    interleaved in a group and the same case alone, or under another host allocator, differ by more than a
    rerun) and which shares at least ``MIN_HISTORY_CASES`` timed cases with it measured on that machine (a run
    whose results come from other machines, or without a fingerprint, has no history). The SD: 1.4826 x the
    median over those cases of |log(p50 here / p50 there)| (a robust SD of the
    change, taken around no change, so that a machine that moved as a whole counts), over sqrt(2): each of the two
    runs has its own share of the change; a change of nothing is no history."""
    label, fingerprint = run.get("machine"), _fingerprint(run)
    if not fingerprint or not {r.machine for r in results} <= {None, label}:
        return None
    mine = _p50s(results, label)
    for other in st.earlier_run_ids(run["started_at"], label, HISTORY_RUNS):
        earlier = st.run(other)
        if _fingerprint(earlier) != fingerprint or measured_as(earlier) != measured_as(run):
            continue
        theirs = _p50s(st.results(other), label)
        changes = [abs(math.log(mine[k] / theirs[k])) for k in mine.keys() & theirs.keys() if mine[k] > 0 < theirs[k]]
        if len(changes) >= MIN_HISTORY_CASES:
            sd = 1.4826 * median(changes) / math.sqrt(2)
            return (sd, other) if sd > 0 else None
    return None


def result_rows(results: Sequence[Result], calibration: Optional[dict[str, float]],
                tracks: dict[Optional[str], list[tuple[float, float]]],
                history: Optional[tuple[float, str]] = None) -> list[dict[str, Any]]:
    """A run's rows (``result_row``): each case set against the track of the machine that measured it
    (``bench.probe.own_track``) and that machine's spread over its cases' windows (``bench.probe.spread``), or
    the spread between this run and an earlier one on the machine (``rerun_history``) where that is wider; and that
    machine's spread of the price of fresh memory (``bench.probe.fresh_spread``)."""
    by_machine: dict[Optional[str], list[Result]] = {}
    for result in results:
        by_machine.setdefault(result.machine, []).append(result)
    mine = {machine: own_track(tracks, machine) for machine in by_machine}
    spreads: dict[Optional[str], tuple[Optional[float], Optional[str]]] = {}
    for machine, theirs in by_machine.items():
        timed = [r for r in theirs if r.samples_ns]
        windows = [(r.started_at, r.started_at + r.duration_s) for r in timed]
        probed = spread(mine[machine], windows)
        wider = history is not None and (probed is None or history[0] > probed)
        fresh = fresh_spread([(window, r.fresh_page_us) for window, r in zip(windows, timed)])
        spreads[machine] = ((history[0], f"run {history[1]}") if wider else (probed, "probe")) + (fresh,)
    return [result_row(r, calibration, mine[r.machine], *spreads[r.machine]) for r in results]


def result_row(result: Result, calibration: Optional[dict[str, float]] = None, track: Track = (),
               log_spread: Optional[float] = None, spread_from: str = "probe",
               fresh_log_spread: Optional[float] = None) -> dict[str, Any]:
    """One case's row (the module docstring names its columns), with the run's calibration, probe track,
    machine-speed spread (``result_rows``; ``spread_from`` says where that came from) and spread of the price of
    fresh memory: the rerun interval's log SD is sqrt(spread**2 + (fresh_memory_share x fresh spread)**2)."""
    case = result.case
    row: dict[str, Any] = {"case_key": case.key, **case.to_dict(), "variant": case.variant}
    row["input_shape"] = "x".join(map(str, case.input_shape))
    data = result.to_dict()
    for key in ("case", "samples_ns", "host_samples_ns", "round_medians_ns", "pairing", *ATTACHED):
        data.pop(key, None)
    row.update(data)
    samples_ms = [s / 1e6 for s in result.samples_ns]
    row.update(summarize(samples_ms))
    row["latency_ci_from"] = "samples" if samples_ms else None
    if result.round_medians_ns:  # the interval a rerun would see: from the medians of blocks (or rounds) over the window
        rounds_ms = [r / 1e6 for r in result.round_medians_ns]
        row["latency_ms_p50_ci_low"], row["latency_ms_p50_ci_high"] = median_ci(rounds_ms)
        row["latency_p50_ci_rel"] = median_ci_rel(rounds_ms)
        row["latency_ci_from"] = "rounds" if result.pairing is not None else "blocks"
    row["settle_capped_share"] = capped_share(result.settle_capped, result.settle_waits)
    share = row["fresh_memory_share"] = fresh_share(result, row["latency_ms_p50"]) if samples_ms else None
    fresh_term = share * fresh_log_spread if share and fresh_log_spread else 0.0
    if log_spread is not None and fresh_term:
        log_spread, spread_from = math.hypot(log_spread, fresh_term), f"{spread_from} + fresh memory"
    row["latency_ms_p50_rerun_low"], row["latency_ms_p50_rerun_high"] = rerun_interval(
        row["latency_ms_p50"], row["latency_ms_p50_ci_low"], row["latency_ms_p50_ci_high"],
        _nan_if_none(log_spread)) if samples_ms else (math.nan, math.nan)
    row["latency_p50_rerun_rel"] = ((row["latency_ms_p50_rerun_high"] - row["latency_ms_p50_rerun_low"]) / 2
                                    / row["latency_ms_p50"] if samples_ms and row["latency_ms_p50"] else math.nan)
    row["latency_rerun_from"] = None if math.isnan(row["latency_ms_p50_rerun_low"]) else spread_from
    row.update(pairing_columns(result.pairing))
    row["machine_speed_rel"] = speed_during(track, result.started_at, result.started_at + result.duration_s)
    p50 = row["latency_ms_p50"]
    row["throughput_img_s"] = case.batch_size / (p50 / 1e3) if samples_ms and p50 > 0 else math.nan
    row["flops"] = 2 * result.macs if result.macs is not None else None
    row["step_flops"] = row["flops"] * (3 if case.mode == "train" else 1) if row["flops"] is not None else None
    row["achieved_gflop_s"] = (row["step_flops"] / (p50 / 1e3) / 1e9
                               if row["step_flops"] and samples_ms and p50 > 0 else math.nan)
    peak = (calibration or {}).get(calibration_key(case.device, compute_dtype(case.precision), case.threads))
    row["peak_gflop_s"] = peak
    row["peak_fraction"] = row["achieved_gflop_s"] / peak if peak else math.nan
    row["enqueue_ms_p50"] = median([s / 1e6 for s in result.host_samples_ns]) if result.host_samples_ns else math.nan
    row["launch_bound"] = launch_bound(row["enqueue_ms_p50"], p50) if result.host_samples_ns else None
    row.update(gpu_columns(result.gpu_start, result.gpu_end))
    counts = result.compile_counts
    row.update({f"compile_{name}": getattr(counts, name) if counts else None for name in COMPILE_FIELDS})
    row["warnings"] = "; ".join(case_warnings(row))
    return row


def fresh_share(result: Result, p50_ms: float) -> Optional[float]:
    """About what share of a CPU case's step goes to memory new to it: minor page faults per timed iteration x the
    price of a fresh page (``bench.worker.fault_figures``, ``bench.runner``'s price after the group) over the p50, at most 1: the time one thread would take
    for those faults, so an upper estimate where the step's threads fault in parallel; None without both figures."""
    if result.case.device != "cpu" or result.page_faults_per_iter is None or not result.fresh_page_us or not p50_ms > 0:
        return None
    return min(1.0, result.page_faults_per_iter * result.fresh_page_us / 1e3 / p50_ms)


def gpu_columns(start: Optional[GpuState], end: Optional[GpuState]) -> dict[str, Any]:
    """A GPU case's telemetry (``bench.telemetry``): each reading's fields at the start and the end of sampling
    (``gpu_sm_clock_mhz_start``, ``gpu_power_w_end``, ...), and whether either showed throttling or another
    process; empty without a reading (CPU cases, no nvidia-ml-py)."""
    row: dict[str, Any] = {f"gpu_{name}_{at}": getattr(state, name) if state else None
                           for at, state in (("start", start), ("end", end)) for name in GPU_FIELDS}
    row["gpu_throttled"] = throttled(start, end)
    row["gpu_shared"] = shared(start, end)
    return row


def case_warnings(row: dict[str, Any]) -> list[str]:
    """What makes a measured case's time less than it seems, each with what to do (the row's ``warnings``)."""
    out = []
    if row.get("gpu_throttled"):
        seen = {r for at in ("start", "end") for r in (row[f"gpu_clock_event_reasons_{at}"] or "").split(",")}
        out.append(f"the GPU throttled while sampling ({', '.join(sorted(seen & THROTTLING))}): the time is the "
                   "slowed clock's; let it cool or lift the power cap, and rerun")
    if row.get("gpu_shared"):
        others = max(row[f"gpu_other_processes_{at}"] or 0 for at in ("start", "end"))
        out.append(f"{others} other process{'es' if others != 1 else ''} on the GPU while sampling: the time is "
                   "shared; rerun on an idle GPU")
    speed = row.get("machine_speed_rel")
    if isinstance(speed, float) and disturbed(speed):
        out.append(f"the machine ran at {speed:.2g}x its typical speed in this run while this case was measured "
                   "(another process, or the host taking the CPUs): its times are the disturbed machine's; rerun it "
                   "on a quiet machine")
    share = row.get("fresh_memory_share")
    if share is not None and share >= FRESH_SHARE_WARN:
        out.append(f"about {share:.0%} of this step goes to memory new to the process "
                   f"({row['page_faults_per_iter']:,.0f} page faults per iteration at {row['fresh_page_us']:.2f} us "
                   "each): its time moves with the price of fresh memory, which the machine (on a VM, its host) sets "
                   "and the matmul probe does not see; a larger batch pays it less often, and --allocator keep (the "
                   "default) avoids it where the step frees what the next one asks for again")
    capped = row.get("settle_capped_share")
    if capped is not None and capped >= SETTLE_CAPPED_WARN:
        out.append(f"this case's {settle_warning(capped)}")
    if row.get("compile_recompiles"):
        n = row["compile_recompiles"]
        out.append(f"Dynamo recompiled {n} time{'s' if n != 1 else ''} while sampling: the steady state was not "
                   "one (guards failing on shapes or values); find why with TORCH_LOGS=recompiles")
    return out


def _nan_if_none(value: Optional[float]) -> float:
    return math.nan if value is None else value


LAUNCH_BOUND = 0.9  # host enqueue time over device time at which the GPU waits on the host


def launch_bound(enqueue_ms: float, device_ms: float) -> bool:
    """A CUDA case whose host takes about as long to enqueue an iteration as the device takes to run it: the
    GPU waits on Python and the launch overhead, so the case times the host (CUDA graphs, a larger batch or
    ``compile`` with reduce-overhead are the cure)."""
    return bool(device_ms > 0 and enqueue_ms >= LAUNCH_BOUND * device_ms)


def pairing_columns(pairing: Optional[Pairing]) -> dict[str, Any]:
    """A grouped case's columns: its group, the reference, the paired time ratio with its CI and p, and the
    speedup over the reference (1 / ratio, > 1 is faster) with its CI."""
    p = pairing or Pairing(group=None, reference=None, members=None, rounds=None)  # type: ignore[arg-type]

    def inverse(value: Optional[float]) -> Optional[float]:
        return 1 / value if value else None

    return {"group": p.group, "group_reference": p.reference, "group_members": p.members, "paired_rounds": p.rounds,
            "paired_ratio": p.ratio, "paired_ratio_ci_low": p.ratio_ci_low, "paired_ratio_ci_high": p.ratio_ci_high,
            "paired_p_value": p.p_value, "speedup": inverse(p.ratio), "speedup_ci_low": inverse(p.ratio_ci_high),
            "speedup_ci_high": inverse(p.ratio_ci_low)}


def load(run_id: Optional[str] = None, store: "Store | str | None" = None) -> pd.DataFrame:
    """One run as a DataFrame, one row per case (the latest run when ``run_id`` is None)."""
    st = store if isinstance(store, Store) else open_store(store, create=False)
    run_id = run_id or st.latest_run_id()
    run = st.run(run_id)
    results = st.results(run_id)
    rows = result_rows(results, run["calibration"], st.tracks(run_id), rerun_history(st, run, results))
    frame = pd.DataFrame(rows)
    frame.insert(0, "run_id", run_id)
    return frame


def load_track(run_id: Optional[str] = None, store: "Store | str | None" = None) -> pd.DataFrame:
    """One run's machine-speed track (``bench.probe``), one row per probe: its unix time, seconds since the
    run started, the probe's GFLOP/s and that over the track's median."""
    st = store if isinstance(store, Store) else open_store(store, create=False)
    run_id = run_id or st.latest_run_id()
    started = st.run(run_id)["started_at"]
    rows = []
    for machine, track in st.tracks(run_id).items():  # each machine against its own median
        typical = median([value for _, value in track])
        rows += [{"at_unix_s": at, "since_start_s": at - started, "machine": machine, "probe_gflop_s": value,
                  "speed_rel": value / typical} for at, value in track]
    frame = pd.DataFrame(sorted(rows, key=lambda row: row["at_unix_s"]),
                         columns=["at_unix_s", "since_start_s", "machine", "probe_gflop_s", "speed_rel"])
    frame.insert(0, "run_id", run_id)
    return frame


def export(run_id: str, fmt: str, path: Optional[str], store: "Store | str | None" = None,
           track: bool = False) -> str:
    """Write one run (or, with ``track``, its machine-speed track) as csv, json (records) or parquet;
    returns where it went ('-' is stdout)."""
    if fmt not in EXPORT_FORMATS:
        raise BadValue(f"export format must be one of {', '.join(EXPORT_FORMATS)}, got {fmt!r}")
    frame = load_track(run_id, store) if track else load(run_id, store)
    if fmt == "parquet":
        if path in (None, "-"):
            raise BadValue("parquet is binary: give a file with -o, e.g. -o run.parquet")
        try:
            frame.to_parquet(path, index=False)
        except ImportError as exc:
            raise Unavailable(f"parquet export needs pyarrow: {first_line(exc)}") from None
        except OSError as exc:
            raise cannot(f"write {path!r}", exc) from None
        return path
    text = frame.to_csv(index=False) if fmt == "csv" else frame.to_json(orient="records", indent=1)
    if path in (None, "-"):
        print(escape.terminal_lines(text.rstrip("\n")))  # to a terminal: no raw control characters
        return "-"
    try:
        Path(path).write_text(text)
    except OSError as exc:
        raise cannot(f"write {path!r}", exc) from None
    return path
