"""Does a variant's speedup hold still on this machine? One comparison group interleaved for minutes, cut in windows.

    python benchmarks/variant_drift.py [--model vgg11] [--batch 1] [--minutes 5] [--window 20]

The quick suite's comparison group of one model and batch (fp32 and amp-bf16,
contiguous and channels_last), measured as the runner measures a group
(``bench.group.run_group``: one worker per variant, the runner's block and
pause, the order shuffled per round), for ``--minutes`` instead of until its
intervals are narrow. The rounds are then cut into windows of ``--window``
seconds of wall time (a quick-suite group of a VGG measures for 10-25 s), and
per window each variant's paired speedup over fp32/contiguous is computed as
the runner stores it: exp(-median of the per-round log ratios), with the 95%
interval of ``bench.stats.paired_figures``.

If the machine's relative speed of the variants held still, every window
would give the same speedup within its interval, and two runs of the suite
(each measuring this group in one such window, minutes apart) would agree.
Printed per variant: each window's speedup, their spread (min, max, SD in
percent of the median), the median half-width of a window's interval, and the
share of window pairs within +/-5% of each other: all pairs, and pairs at least
``--apart`` seconds apart (what two back-to-back quick runs are: about 6
minutes); also the verdict flips among those pairs (faster in one window,
slower in another, each decided by its interval), after each member's own
median per window (ms). The machine-speed probe
(``bench.probe``, fp32 matmul) runs inside the rounds at most every
``PROBE_EVERY_S``, as in a suite; its median per window is printed, and beside it the cost of fresh
memory (``bench.probe.fresh_memory_us``: 64 MiB allocated and first touched,
in us per 4 KiB page; on a VM the host backs each page on first touch, at a
price that moves), which the matmul
does not see and an amp-bf16 step pays every iteration (the autocast copies of
large weights).

Never run it while anything else measures on the machine.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import time

from bench.cases import BLOCK_S, Case, Measure, all_cores
from bench.environment import cpu_model
from bench.errors import CnnbenchError
from bench.group import SETTLE_BLIND_S, Arm, run_group, settle_for
from bench.processes import settle
from bench.probe import PROBE_GROUP_S, fresh_memory_us, probe_gflop_s
from bench.record import Pairing
from bench.results import pairing_columns
from bench.stats import median, paired_figures, stdev
from bench.values import MAX_SECONDS, batch_size, fraction, non_negative_float, option, seconds
from bench.zoo import resolve

VARIANTS = [("fp32", "contiguous"), ("fp32", "channels_last"), ("amp-bf16", "contiguous"),
            ("amp-bf16", "channels_last")]


def _windows(ends: list[float], width: float) -> list[list[int]]:
    """Round indices grouped into consecutive windows of ``width`` seconds (by each round's end); a last window
    shorter than half the width is dropped."""
    out: list[list[int]] = [[]]
    start = ends[0]
    for i, end in enumerate(ends):
        if end - start > width:
            out.append([])
            start = end
        out[-1].append(i)
    if len(out) > 1 and ends[out[-1][-1]] - ends[out[-1][0]] < width / 2:
        out.pop()
    return out


def _decided(fig: dict) -> str:
    lo, hi = fig["speedup_ci_low"], fig["speedup_ci_high"]
    return "faster" if lo > 1 else "slower" if hi < 1 else "none"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="vgg11")
    parser.add_argument("--batch", default="1", type=option(batch_size))
    parser.add_argument("--minutes", default="5",
                        type=option(fraction, "--minutes", MAX_SECONDS / 60, "a number of minutes"))
    parser.add_argument("--window", default="20", type=option(seconds, "--window"),
                        help="seconds of wall time per window")
    parser.add_argument("--apart", default="120", type=option(non_negative_float, "--apart"),
                        help="seconds: window pairs at least this far apart")
    try:
        args = parser.parse_args(argv)
        shape = resolve(args.model).input_shape
    except CnnbenchError as exc:  # one line, as the command line gives it
        print(f"error: {exc}", file=sys.stderr)
        return 2
    threads = all_cores()
    cases = [Case(args.model, batch_size=args.batch, precision=p, memory_format=f, threads=threads,
                  input_shape=shape) for p, f in VARIANTS]
    ends: list[float] = []
    probes: list[tuple[float, float]] = []
    faults: list[tuple[float, float]] = []

    def probe() -> None:
        probes.append((time.perf_counter(), probe_gflop_s(threads, PROBE_GROUP_S)))
        faults.append((time.perf_counter(), fresh_memory_us(repeats=1)))
        if threads > 1:
            settle(settle_for(cases), SETTLE_BLIND_S)

    def never(_members: list) -> bool:  # called after every round: when it ended
        ends.append(time.perf_counter())
        return False

    duration_s = args.minutes * 60
    print(f"machine: {cpu_model()}, {threads} threads; {args.model} b{args.batch}, {args.minutes:g} min, "
          f"windows of {args.window:g} s", flush=True)
    run = run_group([Arm(c) for c in cases], Measure(max_seconds=duration_s, warmup_seconds=1.0),
                    never, block_s=BLOCK_S, min_rounds=1, max_rounds=1_000_000, max_seconds=duration_s, probe=probe)
    ref = run.members[0]
    for member in run.members:
        if not member.active:
            print(f"{member.arm.case.key}: {member.status}: {member.reason}")
    if not ref.active or len(ends) < 4:
        return 1
    windows = _windows(ends, args.window)
    centres = [(ends[w[0]] + ends[w[-1]]) / 2 - ends[0] for w in windows]
    bounds = [(ends[w[0] - 1] if w[0] else -math.inf, ends[w[-1]]) for w in windows]
    probe_w = [median([g for t, g in probes if lo <= t <= hi] or [math.nan]) for lo, hi in bounds]
    fault_w = [median([f for t, f in faults if lo <= t <= hi] or [math.nan]) for lo, hi in bounds]
    print(f"{run.rounds} rounds in {len(windows)} windows; probe (fp32 matmul, GFLOP/s) per window: "
          + " ".join(f"{p:.0f}" for p in probe_w))
    print("fresh memory (bench.probe.fresh_memory_us), us per 4 KiB page, per window: "
          + " ".join(f"{f:.2f}" for f in fault_w))
    for member in run.members:
        if member.active:
            ms = [median([member.round_ns[i] for i in w if member.round_ns[i] is not None]) / 1e6 for w in windows]
            c = member.arm.case
            print(f"{c.precision}/{c.memory_format} ms per window: " + " ".join(f"{v:.1f}" for v in ms))
    for member in run.members[1:]:
        if not member.active:
            continue
        figs = []
        for w in windows:  # each window's rounds paired, and turned into a speedup, as the runner stores them
            both = [(ref.round_ns[i], member.round_ns[i]) for i in w]
            base, mine = zip(*[(b, m) for b, m in both if b is not None and m is not None])
            pairing = Pairing(group="window", reference=ref.arm.case.key, members=len(cases), rounds=len(base),
                              **paired_figures(base, mine))
            figs.append({k: math.nan if v is None else v for k, v in pairing_columns(pairing).items()})
        values = [f["speedup"] for f in figs]
        half = median([(f["speedup_ci_high"] - f["speedup_ci_low"]) / 2 / f["speedup"] for f in figs])
        pairs = list(itertools.combinations(range(len(figs)), 2))
        far = [(a, b) for a, b in pairs if centres[b] - centres[a] >= args.apart]

        def within(sel: list[tuple[int, int]]) -> str:
            if not sel:
                return "n/a"
            share = sum(abs(values[b] / values[a] - 1) <= 0.05 for a, b in sel) / len(sel)
            flips = sum({_decided(figs[a]), _decided(figs[b])} == {"faster", "slower"} for a, b in sel)
            return f"{100 * share:.0f}% of {len(sel)} ({flips} flips)"

        c = member.arm.case
        print(f"\n{c.precision}/{c.memory_format} over fp32/contiguous, per window: "
              + " ".join(f"{v:.3f}" for v in values))
        print(f"  min {min(values):.3f}  max {max(values):.3f}  SD {100 * stdev(values) / median(values):.1f}%  "
              f"median interval half-width {100 * half:.1f}%  ({median([f['paired_rounds'] for f in figs]):.0f} rounds a window)")
        print(f"  window pairs within +/-5%: all {within(pairs)}; >= {args.apart:g} s apart {within(far)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
