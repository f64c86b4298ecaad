"""False alarms and power of the regression gate, measured on this machine.

    python benchmarks/gate.py [--pairs 20] [--store results/gate-bench.db] [--skip-aa] [--skip-power]

Three gates are scored from the same measurements:

    first pass     ``cnnbench compare A B``: stored samples of two runs (bench.compare)
    confirm        ``compare --confirm``: the doubtful cases decided by an interleaved A/B
    confirm all    ``compare --confirm all``: every case decided by an interleaved A/B

Each case is interleaved once (as ``--confirm all`` does); the ``confirm`` figure
takes the interleaved verdict only where the first pass was doubtful
(bench.confirm.doubtful) and the first-pass verdict elsewhere, which is exactly what
``--confirm`` would have printed.

False alarms: the ``ci`` suite measured pairs+1 times back to back (same code);
each run compared with the next; wanted: no ``slower`` in at least 19 of 20.

Power: runs of alexnet and googlenet at batch 5 (one thread) against
``NAME_x120`` (the same network also run on a fifth of the batch: 20% more
images of work, see benchmarks/variants.py) stored under NAME's key; wanted:
``slower`` in at least 19 of 20. A 5% MACs change is checked on the static figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])
os.environ["CNNBENCH_PLUGINS"] = "variants"
sys.path.insert(0, str(HERE))

from bench.suites import resolve_suite, suite_from_dict  # noqa: E402
from bench.compare import Side, Thresholds, compare_runs, exact_changes  # noqa: E402
from bench.confirm import confirm, doubtful  # noqa: E402
from bench.runner import RunOptions, execute, start_run  # noqa: E402
from bench.store import Store  # noqa: E402

SUFFIX = "_x120"


def measure(store: Store, suite) -> Side:
    run_id = (run := start_run(suite, RunOptions(calibrate_seconds=0.1))).id
    execute(store, run)
    return Side(run_id, store.run(run_id), tuple(store.results(run_id)))


def relabel(side: Side) -> Side:
    return dataclasses.replace(side, results=tuple(
        dataclasses.replace(r, case=dataclasses.replace(r.case, model=r.case.model.removesuffix(SUFFIX)))
        for r in side.results))


def judge(base: Side, cand: Side, t: Thresholds, candidate_case=lambda c: c) -> dict[str, list]:
    """Verdict rows of the three gates for one comparison."""
    first = compare_runs(base.results, cand.results, t)
    every = confirm(first, base, cand, t, mode="all", base_src=str(ROOT), cand_src=str(ROOT),
                    candidate_case=candidate_case)
    doubt = [again if doubtful(row, t) else row for row, again in zip(first, every)]
    return {"first pass": first, "confirm": doubt, "confirm all": every}


def short(rows) -> list:
    return [(r.key.split("|")[0], r.verdict, round(r.ratio or 0, 3)) for r in rows]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--store", default="results/gate-bench.db")
    parser.add_argument("--skip-aa", action="store_true")
    parser.add_argument("--skip-power", action="store_true")
    args = parser.parse_args()
    store = Store(args.store)
    t = Thresholds()
    gates = ("first pass", "confirm", "confirm all")
    t0 = time.perf_counter()

    if not args.skip_aa:
        clean = dict.fromkeys(gates, 0)
        ratios = []
        previous = measure(store, resolve_suite("ci"))
        for i in range(args.pairs):
            current = measure(store, resolve_suite("ci"))
            verdicts = judge(previous, current, t)
            for gate in gates:
                clean[gate] += not any(r.verdict == "slower" for r in verdicts[gate])
            ratios += [r.ratio for r in verdicts["confirm all"] if r.ratio]
            print(f"A/A {i + 1}: first {short(verdicts['first pass'])} | interleaved {short(verdicts['confirm all'])}",
                  flush=True)
            previous = current
        for gate in gates:
            print(f"false alarms, {gate}: {clean[gate]} of {args.pairs} A/A comparisons have no 'slower' "
                  f"(target >= 19 of 20)")
        print(f"  interleaved A/A ratios: median {statistics.median(ratios):.3f}, "
              f"range {min(ratios):.3f}-{max(ratios):.3f}, n={len(ratios)}")
        print(f"  elapsed {time.perf_counter() - t0:.0f} s", flush=True)

    if not args.skip_power:
        base_suite = suite_from_dict({"name": "power", "models": ["alexnet", "googlenet"], "batch_sizes": [5],
                                      "threads": [1], "measure": {"max_seconds": 3.0, "warmup_seconds": 1.0}},
                                     name="power")
        slow_suite = dataclasses.replace(base_suite, name="power-x120",
                                         models=tuple(m + SUFFIX for m in base_suite.models))
        caught = {(g, m): 0 for g in gates for m in base_suite.models}
        true_ratios: dict[str, list] = {m: [] for m in base_suite.models}
        for i in range(args.pairs):
            base = measure(store, base_suite)
            cand = relabel(measure(store, slow_suite))
            verdicts = judge(base, cand, t, candidate_case=lambda c: dataclasses.replace(c, model=c.model + SUFFIX))
            for gate in gates:
                for r in verdicts[gate]:
                    caught[gate, r.key.split("|")[0]] += r.verdict == "slower"
            for r in verdicts["confirm all"]:
                true_ratios[r.key.split("|")[0]].append(r.ratio)
            print(f"power {i + 1}: first {short(verdicts['first pass'])} | interleaved {short(verdicts['confirm all'])}",
                  flush=True)
        for gate in gates:
            for model in base_suite.models:
                print(f"power, {gate}: {model} (x1.2 work) flagged 'slower' in {caught[gate, model]} of {args.pairs} "
                      f"(target >= 19 of 20)")
        for model, rs in true_ratios.items():
            rs = [r for r in rs if r]
            if rs:
                print(f"  interleaved ratio of {model}{SUFFIX} to {model}: median {statistics.median(rs):.3f}, "
                      f"range {min(rs):.3f}-{max(rs):.3f}")
        print(f"  elapsed {time.perf_counter() - t0:.0f} s", flush=True)

    ci = measure(store, resolve_suite("ci")).results
    more_macs = [dataclasses.replace(r, macs=round(r.macs * 1.05)) for r in ci]
    caught_macs = sum(1 for _ in range(args.pairs) if any(c.failed and c.metric == "macs"
                                                          for c in exact_changes(ci, more_macs)))
    print(f"exact: a 5% MACs change fails the gate in {caught_macs} of {args.pairs} comparisons")
    return 0


if __name__ == "__main__":
    sys.exit(main())
