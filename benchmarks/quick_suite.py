"""Cost and repeatability of the quick suite: two back-to-back runs on this machine.

    python benchmarks/quick_suite.py [--store PATH] [--runs RUN_A RUN_B]

Without --runs it measures the quick suite twice (never two things at once), then
reports for each run: total wall time (start to finish, worker start-up,
calibration and checks included), the per-case overhead outside the timed loops
(wall time per case minus the time inside sampled iterations), and the share of
cases whose medians agree within +/-5% between the two runs (target: 90%).
"""

from __future__ import annotations

import argparse
import sys

from bench.suites import resolve_suite
from bench.results import load
from bench.runner import RunOptions, execute, start_run
from bench.store import Store


def measure_once(store: Store) -> str:
    run_id = (run := start_run(resolve_suite("quick"), RunOptions())).id
    execute(store, run, on_result=lambda r: print(f"  {r.case.key} {r.status}", flush=True))
    return run_id


def cost(store: Store, run_id: str) -> None:
    run = store.run(run_id)
    frame = load(run_id, store)
    wall = run["finished_at"] - run["started_at"]
    sampled = sum(sum(r.samples_ns) for r in store.results(run_id)) / 1e9
    inside = frame["duration_s"].sum()
    n = len(frame)
    print(f"run {run_id}: {n} cases in {wall:.1f} s ({wall / 60:.2f} min); statuses "
          f"{frame['status'].value_counts().to_dict()}")
    print(f"  time in sampled iterations {sampled:.1f} s; per-case overhead outside the timed loop "
          f"{(wall - sampled) / n:.2f} s (of which worker start-up and model build outside measure(): "
          f"{(wall - inside) / n:.2f} s)")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", default="results/quick-bench.db")
    parser.add_argument("--runs", nargs=2, metavar="RUN_ID")
    args = parser.parse_args()
    store = Store(args.store)
    runs = args.runs or [measure_once(store), measure_once(store)]
    for run_id in runs:
        cost(store, run_id)
    peaks = [store.run(r)["calibration"] for r in runs]
    for key in sorted(set(peaks[0]) & set(peaks[1])):
        print(f"matmul peak {key}: {peaks[0][key]:.1f} -> {peaks[1][key]:.1f} GFLOP/s "
              f"({100 * (peaks[1][key] / peaks[0][key] - 1):+.1f}%: how much the machine itself changed speed)")
    a, b = (load(r, store).set_index("case_key").add_suffix(s) for r, s in zip(runs, ("_a", "_b")))
    both = a.join(b, how="inner")
    both = both[both["latency_ms_p50_a"].notna() & both["latency_ms_p50_b"].notna()]
    ratio = both["latency_ms_p50_b"] / both["latency_ms_p50_a"]
    agree = (ratio.sub(1).abs() <= 0.05).mean()
    print(f"repeatability: {100 * agree:.1f}% of {len(both)} cases agree within +/-5% "
          f"(median |ratio-1| {100 * ratio.sub(1).abs().median():.2f}%, worst {100 * ratio.sub(1).abs().max():.1f}%)")
    for key, r in ratio.items():
        if abs(r - 1) > 0.05:
            print(f"  outside: {key} ratio {r:.3f}")
    return 0 if agree >= 0.9 else 1


if __name__ == "__main__":
    sys.exit(main())
