"""Why single runs disagree on this machine, and why the interleaved A/B is pinned.

    python benchmarks/noise.py [--seconds 30] [--tries 4]

Drift: one process measures googlenet (batch 1, one thread) for --seconds, with
a fixed 256x256 matmul timed after every iteration; per 1 s window: the
iteration median and the matmul median. Prints the windows' coefficient of
variation for both, their correlation, and the same for the ratio.

vCPUs: LeNet-5 against itself (A/A), interleaved one iteration at a time
(bench.ab), --tries times with the two workers left to the scheduler and
--tries times pinned to one CPU; prints each ratio and its sign-test p.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from bench.ab import Arm, interleave
from bench.cases import Case, Measure
from bench.prepare import Prepared
from bench.zoo import resolve


def case(model: str, batch: int = 1) -> Case:
    return Case(model, batch_size=batch, threads=1, input_shape=tuple(resolve(model).input_shape))


def drift(seconds: float) -> None:
    torch.set_num_threads(1)
    step = Prepared(case("googlenet")).step()
    a, b = torch.randn(256, 256), torch.randn(256, 256)
    for _ in range(10):
        step()
    windows = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        steps, probes = [], []
        w_end = time.perf_counter() + 1.0
        while time.perf_counter() < w_end:
            t0 = time.perf_counter_ns()
            step()
            t1 = time.perf_counter_ns()
            torch.mm(a, b)
            probes.append(time.perf_counter_ns() - t1)
            steps.append(t1 - t0)
        windows.append((statistics.median(steps) / 1e6, statistics.median(probes) / 1e6))
    s = [w[0] for w in windows]
    p = [w[1] for w in windows]
    r = [x / y for x, y in windows]

    def cv(v):
        return 100 * statistics.stdev(v) / statistics.mean(v)

    print(f"drift: {len(windows)} windows of 1 s, googlenet b1 t1 median {statistics.median(s):.2f} ms "
          f"(range {min(s):.2f}-{max(s):.2f}), cv {cv(s):.1f}%; matmul cv {cv(p):.1f}%; "
          f"correlation {statistics.correlation(s, p):.2f}; googlenet/matmul cv {cv(r):.1f}%", flush=True)


def vcpus(tries: int) -> None:
    m = Measure(max_seconds=3, warmup_seconds=1)
    for pin in (False, True):
        rows = []
        for _ in range(tries):
            r = interleave(Arm(case("lenet5")), Arm(case("lenet5")), m, pin=pin)
            rows.append(f"{r.ratio:.3f} (p {r.p_value:.1g})")
        print(f"lenet5 A/A interleaved, {'pinned to one CPU' if pin else 'unpinned'}: " + ", ".join(rows), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--tries", type=int, default=4)
    args = parser.parse_args()
    drift(args.seconds)
    vcpus(args.tries)
    return 0


if __name__ == "__main__":
    sys.exit(main())
