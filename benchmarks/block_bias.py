"""Does interleaving bias a small model's median? Alone against interleaved with a large model, per block length.

    python benchmarks/block_bias.py [--models lenet5,googlenet,alexnet] [--blocks 0.01,0.05,0.2]
                                    [--other vgg11] [--rounds 40] [--reps 2]

In a comparison group (``bench.group``) each member runs a block of at least
``block_s`` seconds after the others ran theirs, so its first iterations refill
caches the others evicted. A block too short makes that refill a share of every
block and biases the member's median up (slower than it runs alone). For each
small model and block length this measures the model alone (a group of one, the
same engine, the same blocks) and interleaved with ``--other`` (a model whose
weights far exceed the caches), alternating which goes first from one repetition
to the next so the machine's drift does not fall on one side, and prints the
ratio interleaved / alone of the median iteration per repetition and their
median: the bias. ``bench.cases.BLOCK_S`` is the shortest block whose bias stays
within the suites' target interval (+/-2%).

Never run it while anything else measures on the machine.
"""

from __future__ import annotations

import argparse
import platform
import sys

from bench.cases import Case, Measure, all_cores
from bench.group import Arm, run_group
from bench.stats import median


def _median_ms(arms: list[Arm], block_s: float, rounds: int) -> float:
    sampling = Measure(max_seconds=600, warmup_seconds=1.0)
    run = run_group(arms, sampling, lambda members: False, block_s=block_s, min_rounds=rounds, max_rounds=rounds)
    first = run.members[0]
    if not first.active:
        raise SystemExit(f"{first.arm.case.key}: {first.status}: {first.reason}")
    return median(first.samples_ns) / 1e6


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="lenet5,googlenet,alexnet")
    parser.add_argument("--blocks", default="0.01,0.05,0.2", help="block lengths, s")
    parser.add_argument("--other", default="vgg11")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--reps", type=int, default=2)
    args = parser.parse_args(argv)
    threads = all_cores()
    other = Arm(Case(args.other, threads=threads))
    print(f"machine: {platform.processor() or platform.machine()}, {threads} threads; other member {args.other} b1")
    print(f"{'model':<12} {'block s':>8}  {'alone ms':>9} {'inter ms':>9}  ratios (interleaved / alone)  bias")
    for name in args.models.split(","):
        small = Arm(Case(name, threads=threads))
        for block_s in (float(b) for b in args.blocks.split(",")):
            ratios, alone_ms, inter_ms = [], [], []
            for rep in range(args.reps):
                order = ("alone", "inter") if rep % 2 == 0 else ("inter", "alone")
                got = {}
                for kind in order:
                    arms = [small] if kind == "alone" else [small, other]
                    got[kind] = _median_ms(arms, block_s, args.rounds)
                alone_ms.append(got["alone"])
                inter_ms.append(got["inter"])
                ratios.append(got["inter"] / got["alone"])
            bias = median(ratios) - 1
            print(f"{name:<12} {block_s:>8g}  {median(alone_ms):>9.3f} {median(inter_ms):>9.3f}  "
                  f"{', '.join(f'{r:.3f}' for r in ratios):<28} {100 * bias:+.1f}%", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
