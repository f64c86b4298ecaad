"""Agreement with torch.utils.benchmark: the harness's median vs Timer.adaptive_autorange, interleaved.

For each case (seed AlexNet batch 1, VGG-11 batch 8; fp32, CPU, all cores), rounds
alternate harness -> Timer -> harness -> ... on the same model object and input,
in one process, so drift on this shared machine hits both alike. Timer gets the
same thread count explicitly (it defaults to one, pytorch#58585).

    python benchmarks/agreement.py [--rounds 5]

Prints each round's medians and the ratio of the medians of the round medians;
the target is within +/-3%.
"""

from __future__ import annotations

import argparse
import statistics
import sys

import torch
import torch.utils.benchmark as tb

from bench.cases import Case, Measure, all_cores
from bench.prepare import Prepared, warm_up
from bench.worker import sample


def harness_median_ms(prep: Prepared, m: Measure) -> float:
    step = prep.step()
    warm_up(step, prep.case, m.warmup_seconds)
    samples = sample(step, prep.case, m)[0]
    return statistics.median(samples) / 1e6


def timer_median_ms(prep: Prepared, threads: int) -> float:
    model, x = prep.model.eval(), prep.x
    timer = tb.Timer(stmt="with torch.inference_mode(): model(x)", globals={"model": model, "x": x, "torch": torch},
                     num_threads=threads)
    return timer.adaptive_autorange(threshold=0.02, min_run_time=1.0).median * 1e3


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    threads = all_cores()
    torch.set_num_threads(threads)
    m = Measure(max_seconds=5.0, warmup_seconds=1.0)
    worst = 0.0
    for model, batch in (("alexnet", 1), ("vgg11", 8)):
        prep = Prepared(Case(model, batch_size=batch, threads=threads))
        ours, theirs = [], []
        for round_ in range(args.rounds):
            ours.append(harness_median_ms(prep, m))
            theirs.append(timer_median_ms(prep, threads))
            print(f"{model} b{batch} round {round_ + 1}: harness {ours[-1]:.3f} ms, Timer {theirs[-1]:.3f} ms",
                  flush=True)
        ratio = statistics.median(ours) / statistics.median(theirs)
        worst = max(worst, abs(ratio - 1))
        print(f"{model} b{batch}: harness median {statistics.median(ours):.3f} ms "
              f"(rounds {min(ours):.3f}-{max(ours):.3f}), Timer {statistics.median(theirs):.3f} ms "
              f"(rounds {min(theirs):.3f}-{max(theirs):.3f}), ratio {ratio:.4f} ({100 * (ratio - 1):+.2f}%)")
    print(f"worst disagreement {100 * worst:.2f}% (target within 3%) on {threads} threads")
    return 0 if worst <= 0.03 else 1


if __name__ == "__main__":
    sys.exit(main())
