"""False alarms and power of the regression gate (bench.compare), measured on this machine.

    python benchmarks/gate.py [--pairs 20] [--store results/gate-bench.db]

False alarms: the ``ci`` suite measured pairs+1 times back to back (same code);
each run is compared with the next: no ``slower`` verdict is wanted in at least
19 of 20 comparisons.

Power: pairs of runs of lenet5 and alexnet at batch 5 (one thread), the
candidate being ``NAME_x120`` (20% more images of work per iteration, see
benchmarks/variants.py) relabelled as NAME, so the case keys match; the
candidate must be flagged ``slower`` in at least 19 of 20 comparisons. A 5% MACs
change is checked on the static figures of a model with 5% more MACs.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])
os.environ["CNNBENCH_PLUGINS"] = "variants"
sys.path.insert(0, str(HERE))

from bench.cases import resolve_suite, suite_from_dict  # noqa: E402
from bench.compare import Thresholds, compare_runs, exact_changes  # noqa: E402
from bench.runner import RunOptions, execute, start_run  # noqa: E402
from bench.store import Store  # noqa: E402


def measure(store: Store, suite) -> list:
    run_id = start_run(store, suite, RunOptions(calibrate_seconds=0.1))
    execute(store, run_id)
    return store.results(run_id)


def relabel(results, suffix="_x120"):
    return [dataclasses.replace(r, case=dataclasses.replace(r.case, model=r.case.model.removesuffix(suffix)))
            for r in results]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--store", default="results/gate-bench.db")
    args = parser.parse_args()
    store = Store(args.store)
    t = Thresholds()

    runs = []
    for i in range(args.pairs + 1):
        runs.append(measure(store, resolve_suite("ci")))
        print(f"A/A run {i + 1}/{args.pairs + 1} done", flush=True)
    alarms = []
    for a, b in zip(runs, runs[1:]):
        verdicts = [c.verdict for c in compare_runs(a, b, t)]
        alarms.append(verdicts.count("slower"))
        print(f"  A/A comparison: {verdicts}", flush=True)
    clean = sum(1 for n in alarms if n == 0)
    print(f"false alarms: {clean} of {len(alarms)} A/A comparisons have no 'slower' verdict (target >= 19 of 20)")

    base_suite = suite_from_dict({"name": "power", "models": ["lenet5", "alexnet"], "batch_sizes": [5], "threads": [1],
                                  "measure": {"max_seconds": 3.0, "warmup_seconds": 1.0}}, name="power")
    slow_suite = dataclasses.replace(base_suite, name="power-x120", models=("lenet5_x120", "alexnet_x120"))
    caught = []
    for i in range(args.pairs):
        base = measure(store, base_suite)
        cand = relabel(measure(store, slow_suite))
        rows = compare_runs(base, cand, t)
        caught.append([(c.key.split("|")[0], c.verdict, round(c.ratio or 0, 3)) for c in rows])
        print(f"  power pair {i + 1}: {caught[-1]}", flush=True)
    for model in ("lenet5", "alexnet"):
        hits = sum(1 for pair in caught for m, v, _ in pair if m == model and v == "slower")
        print(f"power: {model} 20% slower flagged 'slower' in {hits} of {len(caught)} comparisons (target >= 19 of 20)")

    base = runs[0]
    more_macs = [dataclasses.replace(r, macs=round(r.macs * 1.05)) for r in base]
    caught_macs = sum(1 for _ in range(args.pairs) if any(c.failed and c.metric == "macs"
                                                          for c in exact_changes(base, more_macs)))
    print(f"exact: a 5% MACs change fails the gate in {caught_macs} of {args.pairs} comparisons")
    return 0


if __name__ == "__main__":
    sys.exit(main())
