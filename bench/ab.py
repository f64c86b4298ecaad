"""Interleaved A/B measurement: two cases timed in alternating short blocks, judged on paired rounds.

Why: on a shared machine the CPU's speed drifts by tens of percent over
seconds (other tenants, the host), so two measurements taken a minute apart
differ by more than the regressions a gate is asked to catch. Measured here
(2-core VM): 1 s medians of one GoogLeNet process vary with a 15% coefficient
of variation, and consecutive windows inside one process spread as widely as
fresh processes do. What cancels that drift is measuring both sides in the
same moments.

Method (``interleave``)
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
    run would steal the CPUs from the next block. Each worker waits
    ``SETTLE_S`` before it answers (outside its timed iterations). AlexNet at
    batch 2 on two threads against itself: with no pause the ratio's CI was
    0.76-1.34 over 300 rounds, with 1 ms 0.82-1.22, with 3 ms 0.994-1.032.

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

import json
import math
import select
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from typing import Any, Optional

from .processes import exit_reason, kill_group, shared_cpus, start
from .cases import Case, Measure
from .stats import median, median_ci, paired_figures


@dataclass(frozen=True)
class Arm:
    """One side of an A/B: a case, and the checkout whose code measures it (None: this one)."""

    case: Case
    src: Optional[str] = None


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

    @property
    def rounds(self) -> int:
        return len(self.base_ns)


class _Worker:
    """A serving worker process (``bench.worker --serve``) and its line protocol."""

    def __init__(self, name: str, arm: Arm, sampling: Measure, request_extra: dict[str, Any]) -> None:
        self.name = name
        self.timeout = sampling.timeout_s
        self.stderr = tempfile.TemporaryFile(mode="w+")  # a file, not a pipe: a chatty worker never blocks on it
        self.proc = start("bench.worker", ["--serve"], src=arm.src, stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=self.stderr, text=True)
        self.send({"case": arm.case.to_dict(), "measure": asdict(sampling), **request_extra})

    def send(self, obj: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(obj) + "\n")
        self.proc.stdin.flush()

    def receive(self) -> dict[str, Any]:
        """The next reply; raises _Gone with a status and reason when the worker dies or hangs."""
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], self.timeout)
        if not ready:
            self.close()
            raise _Gone("timeout", f"{self.name}: worker passed its {self.timeout:g} s limit and was killed")
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            self.stderr.seek(0)
            raise _Gone("crashed", f"{self.name}: {exit_reason(code, self.stderr.read(), 'reply')}")
        return json.loads(line)

    def close(self) -> None:
        kill_group(self.proc)
        for stream in (self.proc.stdin, self.proc.stdout, self.stderr):
            if stream:
                stream.close()


class _Gone(Exception):
    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


SETTLE_S = 0.005  # after a multi-threaded CPU block: OpenMP's idle threads spin for about 1-3 ms


def interleave(base: Arm, cand: Arm, sampling: Measure = Measure(), *, block_s: float = 0.0, min_rounds: int = 20,
               max_rounds: int = 400, max_seconds: Optional[float] = None, request_extra: Optional[dict] = None,
               pin: bool = True, settle_s: Optional[float] = None, processes: int = 2) -> Paired:
    """Time ``base`` and ``cand`` in alternating blocks (see the module docstring). Never raises for a failing side.

    ``processes`` pairs of workers run one pair after another, each with its share
    of ``min_rounds``, ``max_rounds`` and ``max_seconds``; their rounds are pooled.
    """
    max_seconds = sampling.max_seconds if max_seconds is None else max_seconds
    t0 = time.perf_counter()
    request_extra = {**(request_extra or {}), "cpus": shared_cpus(base.case, cand.case) if pin else None}
    if settle_s is None:
        settle_s = SETTLE_S if base.case.device == "cpu" and max(base.case.threads, cand.case.threads) > 1 else 0.0
    medians: tuple[list[int], list[int]] = ([], [])
    counts = [0, 0]
    pair_ratios = []
    share = max(1, processes)
    try:
        for _ in range(share):
            pair = _one_pair(base, cand, sampling, request_extra, block_s=block_s, settle_s=settle_s,
                             min_rounds=math.ceil(min_rounds / share), max_rounds=math.ceil(max_rounds / share),
                             max_seconds=max_seconds / share)
            if isinstance(pair, Paired):
                return replace(pair, seconds=time.perf_counter() - t0)
            (base_ns, cand_ns), (n_base, n_cand) = pair
            medians[0].extend(base_ns)
            medians[1].extend(cand_ns)
            counts[0] += n_base
            counts[1] += n_cand
            pair_ratios.append(paired_figures(base_ns, cand_ns)["ratio"])
    except _Gone as gone:
        return Paired(status=gone.status, reason=gone.reason, seconds=time.perf_counter() - t0)
    return Paired(status="ok", base_ns=tuple(medians[0]), cand_ns=tuple(medians[1]), base_iterations=counts[0],
                  cand_iterations=counts[1], seconds=time.perf_counter() - t0, pair_ratios=tuple(pair_ratios),
                  **paired_figures(medians[0], medians[1]))


def _one_pair(base: Arm, cand: Arm, sampling: Measure, request_extra: dict[str, Any], *, block_s: float, settle_s: float,
              min_rounds: int, max_rounds: int, max_seconds: float):
    """One pair of workers, alternating: ((base medians, cand medians), (base count, cand count)), or a failed Paired."""
    workers: list[_Worker] = []
    try:
        for name, arm in (("baseline", base), ("candidate", cand)):
            workers.append(_Worker(name, arm, sampling, request_extra))
        for worker in workers:
            hello = worker.receive()
            if not hello.get("ready"):
                return Paired(status=hello.get("status", "error"), reason=f"{worker.name}: {hello.get('reason', '')}")
        medians: tuple[list[int], list[int]] = ([], [])
        counts = [0, 0]
        spent = 0.0
        while True:
            order = (0, 1) if len(medians[0]) % 2 == 0 else (1, 0)
            for side in order:
                b0 = time.perf_counter()
                workers[side].send({"block": block_s, "settle": settle_s})
                samples = workers[side].receive()["samples_ns"]
                spent += time.perf_counter() - b0
                medians[side].append(round(median(samples)))
                counts[side] += len(samples)
            n = len(medians[0])
            if n >= min_rounds:
                lo, hi = median_ci([math.log(c / b) for b, c in zip(*medians)])
                if (hi - lo) / 2 <= sampling.target_ci or spent >= max_seconds or n >= max_rounds:
                    return medians, counts
    finally:
        for worker in workers:
            worker.close()
