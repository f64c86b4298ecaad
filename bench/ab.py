"""Interleaved A/B measurement: two cases timed in alternating short blocks, judged on paired rounds.

Why: on a shared machine the CPU's speed drifts by tens of percent over
seconds (other tenants, the host), so two measurements taken a minute apart
differ by more than the regressions a gate is asked to catch. Measured here
(2-core VM): 1 s medians of one GoogLeNet process vary with a 15% coefficient
of variation, and consecutive windows inside one process spread as widely as
fresh processes do. What cancels that drift is measuring both sides in the
same moments.

Method (``interleave``, on the N-way engine of ``bench.group`` with two members)
    Both sides get a worker process of their own (``python -m bench.worker
    --serve``, the baseline's from its own checkout when ``Arm.src`` is set),
    built, checked and warmed up like any case, and both pinned to the same
    CPUs. Then rounds: each side runs a block of iterations of ``block_s``
    seconds (default 0: one iteration) while the other waits idle, the order
    alternating AB, BA, AB, ... so a steady drift cancels too. A round gives one
    paired value, d = log(median of the candidate block / median of the
    baseline block). Absolute times include refilling the caches the other side
    emptied, on both sides alike: the ratio is the result, not the milliseconds.

    Why pinned: the two vCPUs of a VM run at different speeds for seconds at a
    time (their host threads have different neighbours), and an idle process
    wakes on the CPU it last ran on. Unpinned, two one-thread workers of the
    same LeNet-5 differed by up to 11% (p < 1e-20) from where they happened to
    run; pinned to one CPU, 0.998-1.020 in four tries.

    Why a pause after multi-threaded blocks: OpenMP's worker threads spin for
    a while after a parallel region before they sleep; the side that has just
    run would steal the CPUs from the next block. Each worker waits, outside
    its timed iterations, until its other threads stop running, at most
    ``SETTLE_S`` (``bench.processes.settle``), before it answers; where one side
    is another checkout's worker, both sleep a fixed ``SETTLE_BLIND_S`` instead,
    alike (and, not waiting, cannot tell whether a side's threads outlast
    the pause; ours say so, ``Paired.warnings``). AlexNet at batch 2 on two threads against itself, on a Xeon VM: with
    no pause the ratio's CI was 0.76-1.34 over 300 rounds, with 1 ms 0.82-1.22,
    with 3 ms 0.994-1.032.

    ratio     = exp(median of d) (> 1: the candidate is slower)
    ratio CI  = exp of the distribution-free 95% CI of the median of d
                (``bench.stats.median_ci``; order statistics, no shape assumed)
    p         = exact two-sided sign test of "median d = 0"
    stopping  = at least ``min_rounds`` rounds, then until the CI's half-width
                is within ``target_ci`` (in log terms, about +/- that fraction), or
                ``max_seconds`` of blocks, or ``max_rounds``.
    processes = ``processes`` pairs of workers (default 2), one pair after the
                other, each with its share of the rounds and time; rounds pooled,
                and each pair's own ratio kept (``pair_ratios``). A process can be
                slow for its whole life (where its pages landed): AlexNet at
                batch 2 on two threads against itself gave 0.864 (p 3e-18) once,
                0.97-1.01 in seven other pairs.

The rounds are nearly independent where single samples are not (a slow spell
hits both blocks of a round), which is what makes the sign test honest here.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Optional

from .cases import Measure
from .group import SETTLE_CAPPED_WARN, SETTLE_S, Arm, Member, capped_share, paired_rounds, run_group, settle_warning
from .stats import median_ci, paired_figures

__all__ = ["Arm", "Paired", "interleave", "SETTLE_S"]


@dataclass(frozen=True)
class Paired:
    """The outcome of an interleaved A/B: per-round medians of both sides and what they say."""

    status: str  # "ok", or the failing side's status ("error", "skipped", "oom", "timeout", "crashed")
    reason: str = ""
    base_ns: tuple[int, ...] = ()  # per round: median of the baseline block
    cand_ns: tuple[int, ...] = ()
    base_iterations: int = 0  # iterations timed, all blocks together
    cand_iterations: int = 0
    seconds: float = 0.0
    ratio: Optional[float] = None
    ratio_ci_low: Optional[float] = None
    ratio_ci_high: Optional[float] = None
    p_value: Optional[float] = None
    pair_ratios: tuple[float, ...] = ()  # the ratio each pair of worker processes found on its own
    # per side: the share of its blocks whose threads outlasted the wait for them (bench.group.Member), None: no waits
    settle_capped_share: tuple[Optional[float], Optional[float]] = (None, None)

    @property
    def rounds(self) -> int:
        return len(self.base_ns)

    @property
    def warnings(self) -> tuple[str, ...]:
        """What makes the pairing less than it seems: a side whose threads kept the CPUs into the other's blocks."""
        return tuple(f"the {side}'s {settle_warning(share)}"
                     for side, share in zip(("baseline", "candidate"), self.settle_capped_share)
                     if share is not None and share >= SETTLE_CAPPED_WARN)


def interleave(base: Arm, cand: Arm, sampling: Measure = Measure(), *, block_s: float = 0.0, min_rounds: int = 20,
               max_rounds: int = 400, max_seconds: Optional[float] = None, request_extra: Optional[dict] = None,
               pin: bool = True, settle_s: Optional[float] = None, processes: int = 2) -> Paired:
    """Time ``base`` and ``cand`` in alternating blocks (see the module docstring). Never raises for a failing side.

    ``processes`` pairs of workers run one pair after another, each with its share
    of ``min_rounds``, ``max_rounds`` and ``max_seconds``; their rounds are pooled.
    """
    max_seconds = sampling.max_seconds if max_seconds is None else max_seconds
    t0 = time.perf_counter()
    share = max(1, processes)

    def enough(members: list[Member]) -> bool:
        base_ns, cand_ns = paired_rounds(members[1], members[0])
        lo, hi = median_ci([math.log(c / b) for b, c in zip(base_ns, cand_ns)])
        return (hi - lo) / 2 <= sampling.target_ci

    medians: tuple[list[int], list[int]] = ([], [])
    counts, waits, capped = [0, 0], [0, 0], [0, 0]
    pair_ratios = []
    for _ in range(share):
        run = run_group([base, cand], sampling, enough, names=["baseline", "candidate"], block_s=block_s,
                        min_rounds=math.ceil(min_rounds / share), max_rounds=math.ceil(max_rounds / share),
                        max_seconds=max_seconds / share, request_extra=request_extra, pin=pin, settle_s=settle_s,
                        stop_on_failure=True)
        failed = next((m for m in run.members if not m.active), None)
        if failed is not None:
            return Paired(status=failed.status, reason=failed.reason, seconds=time.perf_counter() - t0)
        base_ns, cand_ns = paired_rounds(run.members[1], run.members[0])
        medians[0].extend(base_ns)
        medians[1].extend(cand_ns)
        for side, member in enumerate(run.members):
            counts[side] += len(member.samples_ns)
            waits[side] += member.settle_waits
            capped[side] += member.settle_capped
        pair_ratios.append(paired_figures(base_ns, cand_ns)["ratio"])
    return Paired(status="ok", base_ns=tuple(medians[0]), cand_ns=tuple(medians[1]), base_iterations=counts[0],
                  cand_iterations=counts[1], seconds=time.perf_counter() - t0, pair_ratios=tuple(pair_ratios),
                  settle_capped_share=(capped_share(capped[0], waits[0]), capped_share(capped[1], waits[1])),
                  **paired_figures(medians[0], medians[1]))
