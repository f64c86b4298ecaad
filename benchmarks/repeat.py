"""Do comparisons repeat? The quick suite twice back to back, per grouping, figures side by side.

    python benchmarks/repeat.py [--groups variant,none] [--store PATH] [--allocator keep|system] [--runs GROUP=RUN_A,RUN_B ...]

For each grouping (``variant``: the cases a report compares measured together,
interleaved; ``none``: each case alone, one after another, as before comparison
groups) it measures the quick suite twice, one run right after the other (never
two things at once), then prints:

- variant speedups over fp32/contiguous/eager (the report heatmap's numbers:
  paired where the two were measured together, else the ratio of medians):
  the share within +/-5% between the two runs, and verdict flips (decided
  faster in one run, decided slower in the other; decided = the paired 95%
  interval excludes 1, or, unpaired, a speedup beyond +/-5%); the share within +/-5% by
  variant, and the median half-width of the paired speedups' 95% intervals;
  and whether the change between the runs is their sampling's: its SD per run
  against the SD each run's own rounds imply (``split_half_diffs``);
- absolute p50: the share within +/-5% between the runs, and the share of the
  second run's p50 inside the first run's 95% interval (a calibrated interval
  covers an independent rerun about 83% of the time; near 100% means it is
  too wide), with the median interval half-width; the same for the rerun
  interval (that CI widened by the run's machine-speed spread);
- cost: wall time per run and per-case overhead outside the timed iterations;
- the machine's own speed: the matmul calibration's change between the runs and
  each run's bf16:fp32 peak ratio (what an amp-bf16 speedup stands on),
  and the probe track (``bench.probe``): how much it moved within each run and
  its median's change from run 1 to run 2; and what fresh memory cost before and
  after each run (``bench.probe.fresh_memory_us``: what an amp-bf16 step pays
  for its weights' copies, and the matmul does not see).
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import replace

import pandas as pd

from bench.allocator import ALLOCATORS, DEFAULT_ALLOCATOR, STORED_BEFORE
from bench.probe import fresh_memory_us, movement_line
from bench.report import speedup_rows
from bench.results import FRESH_SHARE_WARN, load
from bench.runner import RunOptions, execute, start_run
from bench.stats import mean, median
from bench.store import Store
from bench.suites import resolve_suite


FRESH: dict[str, tuple[float, float]] = {}  # run id -> fresh memory's price (us per page) before and after it


def measure_once(store: Store, group: str, allocator: str) -> str:
    suite = replace(resolve_suite("quick"), group=group)
    before = fresh_memory_us()
    run_id = (run := start_run(suite, RunOptions(group=group, allocator=allocator))).id
    print(f"run {run_id} (group {group}, allocator {allocator})", flush=True)
    execute(store, run, on_result=lambda r: print(f"  {r.case.key} {r.status}", flush=True))
    FRESH[run_id] = (before, fresh_memory_us())
    return run_id


def _decided(row: pd.Series) -> str:
    if row["paired"]:
        return "faster" if row["speedup_ci_low"] > 1 else "slower" if row["speedup_ci_high"] < 1 else "none"
    return "faster" if row["value"] > 1.05 else "slower" if row["value"] < 1 / 1.05 else "none"


def split_half_diffs(store: Store, run_id: str) -> dict[str, float]:
    """Per paired member of a run: its median log ratio to its reference over the first half of their paired rounds
    minus that over the second half. The difference has 2x the SD of the whole run's estimate (each half has half the
    rounds), so rms(differences) / 2 is the sampling SD of the run's paired speedups, from the run alone. Members
    with fewer rounds than their reference (one that left the group), or fewer than 10, are left out."""
    results = store.results(run_id)
    by_key = {r.case.key: r for r in results}
    diffs = {}
    for result in results:
        pairing = result.pairing
        reference = by_key.get(pairing.reference) if pairing else None
        if reference is None or reference is result or pairing.ratio is None or reference.pairing is None \
                or reference.pairing.group != pairing.group or len(result.round_medians_ns) < 10 \
                or len(result.round_medians_ns) != len(reference.round_medians_ns):
            continue
        d = [math.log(m / b) for b, m in zip(reference.round_medians_ns, result.round_medians_ns)]
        h = len(d) // 2
        diffs[result.case.key] = median(d[:h]) - median(d[h:2 * h])
    return diffs


def figures(store: Store, runs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    frames = [load(r, store) for r in runs]
    for i, (run_id, frame) in enumerate(zip(runs, frames)):
        run = store.run(run_id)
        wall = run["finished_at"] - run["started_at"]
        sampled = sum(sum(r.samples_ns) for r in store.results(run_id)) / 1e9
        out[f"run {i + 1}: wall time"] = f"{wall / 60:.2f} min, {len(frame)} cases"
        out[f"run {i + 1}: overhead per case outside timed iterations"] = f"{(wall - sampled) / len(frame):.2f} s"
        out[f"run {i + 1}: host allocator"] = run["environment"].get("cpu_allocator", STORED_BEFORE)
        out[f"run {i + 1}: statuses"] = " ".join(f"{k}={v}" for k, v in sorted(frame["status"].value_counts().items()))
    s = [speedup_rows(f).set_index("case_key") for f in frames]
    both = s[0][["value", "paired", "speedup_ci_low", "speedup_ci_high"]].join(
        s[1][["value", "paired", "speedup_ci_low", "speedup_ci_high"]], suffixes=("_a", "_b"), how="inner")
    change = (both["value_b"] / both["value_a"] - 1).abs()
    flips = 0
    for _, row in both.iterrows():
        a = _decided(pd.Series({k[:-2]: row[k] for k in row.index if k.endswith("_a")}))
        b = _decided(pd.Series({k[:-2]: row[k] for k in row.index if k.endswith("_b")}))
        flips += {a, b} == {"faster", "slower"}
    out["speedups within +/-5% between runs"] = (f"{100 * (change <= 0.05).mean():.1f}% of {len(both)} "
                                                 f"(median change {100 * change.median():.2f}%, worst {100 * change.max():.1f}%)")
    out["verdict flips"] = str(flips)
    variant = pd.Series([key.split("|")[3] + "/" + key.split("|")[4] for key in both.index], index=both.index)
    out["speedups within +/-5%, by variant"] = ", ".join(
        f"{name} {100 * (part <= 0.05).mean():.0f}% (median {100 * part.median():.1f}%)"
        for name, part in change.groupby(variant))
    halves = [split_half_diffs(store, r) for r in runs]
    keys = [k for k in both.index if both.loc[k, "paired_a"] and both.loc[k, "paired_b"] and all(k in h for h in halves)]
    if keys:  # is the change between runs the sampling's, or does part of it belong to the run (its processes)?
        between = math.sqrt(mean([math.log(both.loc[k, "value_b"] / both.loc[k, "value_a"]) ** 2 for k in keys]) / 2)
        within = math.sqrt(mean([h[k] ** 2 for h in halves for k in keys])) / 2
        out["paired speedups' SD per run: between the runs / within each (split halves)"] = (
            f"{100 * between:.2f}% / {100 * within:.2f}% over {len(keys)} (ratio {between / within:.2f}; about 1: "
            "the change is the sampling's, which more time shrinks; well above 1: part of it is the run's own)")
    half = pd.concat([((both[f"speedup_ci_high{s}"] - both[f"speedup_ci_low{s}"]) / 2 / both[f"value{s}"])
                      for s in ("_a", "_b")])
    out["median paired-speedup interval half-width"] = f"{100 * half.median():.1f}%" if half.notna().any() else "-"
    out["speedups paired"] = f"{int(both['paired_a'].sum())} of {len(both)}"
    a, b = (f.set_index("case_key") for f in frames)
    joined = a.join(b, suffixes=("_a", "_b"), how="inner")
    joined = joined[joined["latency_ms_p50_a"].notna() & joined["latency_ms_p50_b"].notna()]
    ratio = joined["latency_ms_p50_b"] / joined["latency_ms_p50_a"]
    inside = (joined["latency_ms_p50_b"] >= joined["latency_ms_p50_ci_low_a"]) & (
        joined["latency_ms_p50_b"] <= joined["latency_ms_p50_ci_high_a"])
    out["absolute p50 within +/-5%"] = (f"{100 * (ratio.sub(1).abs() <= 0.05).mean():.1f}% of {len(joined)} "
                                        f"(median |change| {100 * ratio.sub(1).abs().median():.2f}%)")
    out["run 2 p50 inside run 1's 95% interval"] = f"{100 * inside.mean():.1f}%"
    out["median interval half-width"] = f"{100 * joined['latency_p50_ci_rel_a'].median():.2f}%"
    rerun = (joined["latency_ms_p50_b"] >= joined["latency_ms_p50_rerun_low_a"]) & (
        joined["latency_ms_p50_b"] <= joined["latency_ms_p50_rerun_high_a"])
    out["run 2 p50 inside run 1's rerun interval"] = (f"{100 * rerun.mean():.1f}%" if
                                                      joined["latency_ms_p50_rerun_low_a"].notna().any() else "-")
    out["median rerun interval half-width"] = f"{100 * joined['latency_p50_rerun_rel_a'].median():.2f}%"
    for source, part in joined.groupby(joined["latency_rerun_from_a"].fillna("none")):  # what set each interval
        out[f"  rerun interval from {source}"] = (
            f"{len(part)} cases, {100 * rerun[part.index].mean():.1f}% inside "
            f"(half-width {100 * part['latency_p50_rerun_rel_a'].median():.2f}%)")
    heavy = joined["fresh_memory_share_a"] >= FRESH_SHARE_WARN
    out[f"cases paying >= {FRESH_SHARE_WARN:.0%} of their step for fresh memory (run 1)"] = (
        f"{int(heavy.sum())}: " + ", ".join(f"{key.split('|')[0]} b{joined.loc[key, 'batch_size_a']} "
                                            f"{joined.loc[key, 'variant_a']} {100 * joined.loc[key, 'fresh_memory_share_a']:.0f}%"
                                            for key in joined.index[heavy]) if heavy.any() else "0")
    peaks = [store.run(r)["calibration"] for r in runs]
    moves = [f"{k} {100 * (peaks[1][k] / peaks[0][k] - 1):+.1f}%" for k in sorted(set(peaks[0]) & set(peaks[1]))]
    out["matmul calibration, run 2 vs run 1"] = ", ".join(moves) or "-"
    ratios = []  # the host's bf16 speed against its fp32 speed: what an amp-bf16 speedup stands on
    for peak in peaks:
        fp32 = {k.rsplit("/", 1)[1]: v for k, v in peak.items() if "/float32/" in k}
        ratios += [f"{peak[k] / fp32[k.rsplit('/', 1)[1]]:.2f}" for k in sorted(peak)
                   if "/bfloat16/" in k and k.rsplit("/", 1)[1] in fp32]
    out["matmul bf16:fp32 peak ratio, run 1 / run 2"] = " / ".join(ratios) or "-"
    tracks = [store.track(r) for r in runs]
    for i, track in enumerate(tracks):
        out[f"run {i + 1}: machine speed (probe) moved"] = movement_line(track)
        if runs[i] in FRESH:
            out[f"run {i + 1}: fresh memory, us per 4 KiB page, before -> after"] = "{:.2f} -> {:.2f}".format(
                *FRESH[runs[i]])
    if all(tracks):
        typical = [median([v for _, v in t]) for t in tracks]
        out["probe median, run 2 vs run 1"] = f"{100 * (typical[1] / typical[0] - 1):+.1f}%"
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--groups", default="variant,none")
    parser.add_argument("--store", default="results/repeat-bench.db")
    parser.add_argument("--allocator", default=DEFAULT_ALLOCATOR, choices=ALLOCATORS,
                        help="the workers' host allocator (bench.allocator; default keep)")
    parser.add_argument("--runs", nargs="*", default=[], metavar="GROUP=RUN_A,RUN_B",
                        help="report on runs already made instead of measuring")
    args = parser.parse_args()
    store = Store(args.store)
    given = dict(item.split("=", 1) for item in args.runs)
    table: dict[str, dict[str, str]] = {}
    for group in args.groups.split(","):
        runs = given[group].split(",") if group in given else [measure_once(store, group, args.allocator),
                                                                         measure_once(store, group, args.allocator)]
        print(f"group {group}: runs {','.join(runs)}", flush=True)
        table[group] = figures(store, runs)
    rows = list(dict.fromkeys(k for f in table.values() for k in f))
    width = max(map(len, rows))
    print("\n" + " " * width + "  " + "  |  ".join(f"group {g}" for g in table))
    for key in rows:
        print(f"{key:<{width}}  " + "  |  ".join(table[g].get(key, "-") for g in table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
