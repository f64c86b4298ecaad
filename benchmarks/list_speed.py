"""How fast `cnnbench list` answers, cold and warm, and the static analysis on the meta device.

    python benchmarks/list_speed.py [--repeats 5]

Targets (issue 10): `cnnbench list` under 2 s once warm, under 1 s for a
pattern that matches one model. Each figure is the median of ``--repeats``
fresh processes (`python -m bench list ...`, wall time from spawn to exit),
with the spread; the cold figure fills an empty cache folder first. Also times
``analyse("vgg19", batch_size=1024)`` in this process (meta device: no real
memory, so it should take well under a second once imports are paid).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time


def spawn(argv: list[str], cache: str) -> float:
    env = dict(os.environ, CNNBENCH_CACHE_DIR=cache)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bench", *argv], env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        cold = spawn(["list"], cache)
        print(f"list, cold cache (all models analysed): {cold:.2f} s")
        for argv in (["list"], ["list", "alexnet"], ["list", "vgg1*"]):
            times = [spawn(argv, cache) for _ in range(args.repeats)]
            print(f"{' '.join(argv):<14} warm: median {statistics.median(times):.3f} s "
                  f"(min {min(times):.3f}, max {max(times):.3f}, {args.repeats} processes)")
    from bench.analysis import analyse

    analyse("vgg19")  # imports and the first build paid here
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        analyse("vgg19", batch_size=1024)
        times.append(time.perf_counter() - t0)
    print(f"analyse vgg19 b1024 on meta: median {statistics.median(times):.3f} s (min {min(times):.3f}, "
          f"max {max(times):.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
