"""Does interleaving bias a small model's median? Within-block bias, alone and interleaved, per block length.

    python benchmarks/block_bias.py [--models lenet5,googlenet,alexnet] [--blocks 0.01,0.05,0.2]
                                    [--other vgg11] [--rounds 40]

In a comparison group (``bench.group``) each member runs a block of at least
``block_s`` seconds after the others ran theirs, so its first iterations refill
caches the others evicted (and wake its thread pool). A block too short makes
that refill a share of every block and biases the member's block medians, and
so its p50 and its ratios, upward.

Measuring two runs against each other would drown the effect in the machine's
drift (tens of percent between runs minutes apart). So the bias is read inside
each block, where drift is nil: a block's median against the median of the
block's second half (iterations long past the switch, the steady state). For
each small model and block length, in one group with ``--other`` (a model whose
weights far exceed the caches) and in a group of the model alone (idle between
blocks, as a member waits for the others), it prints the median over blocks of
(block median / steady median - 1), and the interleaving's own share: the
interleaved bias minus the alone bias. ``bench.cases.BLOCK_S`` is the
shortest block that keeps it within the suites' target interval (+/-2%).
Blocks of one or two iterations have no second half (nan): for them, the
last two columns give the penalty of a block's *first* iteration over the
steady state, measured in longer blocks; a one-iteration block pays that penalty
in full.

Never run it while anything else measures on the machine.
"""

from __future__ import annotations

import argparse
import math
import sys

from bench.cases import Case, Measure, all_cores
from bench.environment import cpu_model
from bench.group import Arm, run_group
from bench.stats import median
from bench.zoo import resolve


def _within_block_bias(arms: list[Arm], block_s: float, rounds: int) -> tuple[float, float, float, int]:
    """(median over blocks of block median / second-half median - 1, the same of the block's first iteration,
    the first member's median ms, iterations per block)."""
    sampling = Measure(max_seconds=600, warmup_seconds=1.0)
    bounds = [0]

    def record(members: list) -> bool:  # called after every round: where the first member's block ended
        bounds.append(len(members[0].samples_ns))
        return False

    run = run_group(arms, sampling, record, block_s=block_s, min_rounds=1, max_rounds=rounds)
    first = run.members[0]
    if not first.active:
        raise SystemExit(f"{first.arm.case.key}: {first.status}: {first.reason}")
    biases, firsts, sizes = [], [], []
    for lo, hi in zip(bounds, bounds[1:]):
        block = first.samples_ns[lo:hi]
        sizes.append(len(block))
        if len(block) >= 3:
            steady = median(block[len(block) // 2:])
            biases.append(median(block) / steady - 1)
            firsts.append(block[0] / steady - 1)
    bias = median(biases) if biases else math.nan
    first_penalty = median(firsts) if firsts else math.nan
    return bias, first_penalty, median(first.samples_ns) / 1e6, int(median(sizes))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="lenet5,googlenet,alexnet")
    parser.add_argument("--blocks", default="0.01,0.05,0.2", help="block lengths, s")
    parser.add_argument("--other", default="vgg11")
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args(argv)
    threads = all_cores()

    def arm(name: str) -> Arm:
        return Arm(Case(name, threads=threads, input_shape=resolve(name).input_shape))

    other = arm(args.other)
    print(f"machine: {cpu_model()}, {threads} threads; other member {args.other} b1")
    print(f"{'model':<12} {'block s':>8} {'iters':>6} {'ms alone':>9} {'ms inter':>9} "
          f"{'bias alone':>11} {'bias inter':>11} {'interleaving':>13} {'1st alone':>10} {'1st inter':>10}")
    for name in args.models.split(","):
        small = arm(name)
        for block_s in (float(b) for b in args.blocks.split(",")):
            alone, first_alone, alone_ms, _ = _within_block_bias([small], block_s, args.rounds)
            inter, first_inter, inter_ms, size = _within_block_bias([small, other], block_s, args.rounds)
            print(f"{name:<12} {block_s:>8g} {size:>6} {alone_ms:>9.3f} {inter_ms:>9.3f} {100 * alone:>+10.2f}% "
                  f"{100 * inter:>+10.2f}% {100 * (inter - alone):>+12.2f}% {100 * first_alone:>+9.2f}% "
                  f"{100 * first_inter:>+9.2f}%", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
