"""At which time scales does this machine's speed move? What pairing neighbouring blocks can cancel.

    python benchmarks/time_scales.py [--seconds 60] [--threads 1,2] [--size 512]

For each thread count, one process runs a fixed fp32 matmul (--size square,
the machine-speed probe's kind of work, ``bench.probe``) back to back for
--seconds, timing every iteration. The iterations are then cut into windows of
5 ms to 5 s; per window length it prints:

- sd: the spread of the windows' mean iteration time (SD of its log), what a
  case measured in one such window carries;
- allan: the Allan deviation, sqrt(mean((y[k+1] - y[k])^2) / 2) over the logs y
  of neighbouring windows: what is left of two neighbouring windows' difference,
  so what an interleaved pair of blocks of that length cannot cancel
  (sd = allan for noise that is independent from window to window; allan well
  under sd for slow drift, which pairing removes);
- lag1: the correlation of neighbouring windows.

Read it with ``bench.group``: a round pairs blocks of at least 50 ms (a VGG
block is one iteration, 0.1-0.5 s on 2 CPUs), members a round apart. On a
2-vCPU AMD EPYC VM (2026-12-03, two runs half an hour apart), two threads: sd
12-15% for 5-50 ms windows and 5-8% for 5 s ones, allan 4.7-8.9% at every
length from 5 ms to 5 s, lag1 0.62-0.85 up to 100 ms: the speed moves at every
scale from milliseconds to seconds, and neighbouring blocks share only part of
it, so a pair of blocks still differs by about 5-9%.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy
import torch

WINDOWS_S = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


def iteration_times(threads: int, size: int, seconds: float) -> numpy.ndarray:
    """Seconds per matmul, back to back for ``seconds``, after a few untimed ones."""
    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(5):
        a @ b
    stamps = [time.perf_counter()]
    end = stamps[0] + seconds
    while stamps[-1] < end:
        a @ b
        stamps.append(time.perf_counter())
    return numpy.diff(numpy.array(stamps))


def scales(times: numpy.ndarray) -> list[dict[str, float]]:
    """Per window length (whole iterations: about ``WINDOWS_S``, each length once): windows, sd, allan and lag1 of
    the log of each window's mean iteration time."""
    typical = float(numpy.median(times))
    rows: list[dict[str, float]] = []
    for window in WINDOWS_S:
        per = max(1, round(window / typical))
        count = len(times) // per
        if count < 8 or (rows and rows[-1]["iterations"] == per):  # too few windows, or the last length again
            continue
        y = numpy.log(times[:count * per].reshape(count, per).mean(axis=1))
        rows.append({"window_ms": per * typical * 1e3, "iterations": per, "windows": count, "sd": float(y.std()),
                     "allan": math.sqrt(float(numpy.mean(numpy.diff(y) ** 2)) / 2),
                     "lag1": float(numpy.corrcoef(y[:-1], y[1:])[0, 1])})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()
    for threads in (int(t) for t in args.threads.split(",")):
        times = iteration_times(threads, args.size, args.seconds)
        print(f"{threads} thread(s): {len(times)} matmuls of {args.size}x{args.size}, median "
              f"{numpy.median(times) * 1e6:.0f} us")
        print(f"  {'window':>9} {'iters':>6} {'windows':>8} {'sd':>7} {'allan':>7} {'lag1':>6}")
        for row in scales(times):
            print(f"  {row['window_ms']:>6.0f} ms {row['iterations']:>6} {row['windows']:>8} {100 * row['sd']:>6.2f}% "
                  f"{100 * row['allan']:>6.2f}% {row['lag1']:>6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
