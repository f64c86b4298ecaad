"""Interleaved measurement of N cases: serving workers timed in short blocks, round after round.

The engine under ``cnnbench ab``, ``compare --confirm`` (two members, see
``bench.ab``) and the suite runner's comparison groups (``bench.runner``).

Why: on a shared machine the CPU's speed drifts by tens of percent over
seconds, so cases measured minutes apart differ by more than the effects a
comparison is asked to find. Measured in the same moments, the drift hits
every member of a round alike and cancels in their ratios.

Method (``run_group``)
    Members: one serving worker per case (``python -m bench.worker --serve``,
    from another checkout when ``Arm.src`` is set), started and made ready one
    after another (built, checked, cold-started and warmed up on its own, so no
    build overlaps a timed block), all pinned to the same CPUs. Where every
    member is a CPU case of this checkout with one model, batch, input and mode
    (the default grouping's groups), the fp32 model, input and reference output
    they all start from are built once, by a group builder they are forked from
    (``processes.group_builder``, ``bench.forkserver``), and each member copies
    them into memory of its own before its casts and conversions (an inference
    model too big to stay in the last-level cache keeps reading the builder's
    pages: ``bench.prepare.keeps_builder_pages``): the same model, no longer
    built once per member.

    Rounds: each member in turn runs a block of at least one iteration and
    ``block_s`` seconds, while the others wait idle on their input. The order
    alternates (AB, BA, ...) for two members and is shuffled per round (a fixed
    seed) for more, so that no member always follows the same other one. A
    round gives each member one value: the median of its block. After a
    multi-threaded CPU block the worker waits, outside its timed iterations,
    until its other threads stop running (OpenMP's idle threads spin for 1-3 ms
    on a Xeon VM, about 8 ms on an AMD EPYC VM, and would take the CPUs from the
    next member), at most ``settle_s`` (``bench.processes.settle``), before it
    answers, and says whether its threads outlasted that cap (a pool that never
    stops spinning, as under ``OMP_WAIT_POLICY=active``: counted per member,
    ``Member.settle_capped_share``, and warned of in the member's row); in a
    group with a worker of another checkout, which knows only a fixed pause,
    every member sleeps ``SETTLE_BLIND_S`` (``block_request``).

    Probe: where the caller gives one (the runner's machine-speed probe,
    ``bench.probe``), it runs in the caller's process as one more member of a
    round, at a shuffled place in it, at most every ``probe_every_s`` seconds:
    the group's window gets probes of its own, taken while the members wait.

    Stopping: at least ``min_rounds`` rounds, then as soon as ``enough`` (the
    caller's rule, on the round medians) holds, or the blocks have taken
    ``max_seconds``, or ``max_rounds`` rounds.

    Failure: a member whose worker is not ready (skipped, oom, error), dies
    (crashed), passes its time limit (timeout) or fails inside a block (oom,
    error) leaves with that status; the others go on.
"""

from __future__ import annotations

import json
import logging
import math
import random
import select
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Optional, Sequence

from .cases import Case, Measure
from .prepare import base_key
from .probe import PROBE_EVERY_S
from .processes import ForkServer, exit_reason, group_builder, kill_group, shared_cpus, start
from .stats import median

log = logging.getLogger(__name__)

SETTLE_S = 0.025  # after a multi-threaded CPU block: the longest wait for the worker's threads to stop
SETTLE_BLIND_S = 0.005  # the fixed pause instead: a worker blind to its threads, or a group with another checkout
SETTLE_CAPPED_WARN = 0.2  # of a member's waits after its blocks, those its threads outlasted: warned of from here on


@dataclass(frozen=True)
class Arm:
    """One member: a case, and the checkout whose code measures it (None: this one)."""

    case: Case
    src: Optional[str] = None


@dataclass
class Member:
    """What one member's worker gave: its readiness figures, every timed iteration, one median per round."""

    arm: Arm
    status: str = "ok"  # or the status it left with
    reason: str = ""
    figures: dict[str, Any] = field(default_factory=dict)  # the ready reply: cold start, validity, warm-up
    samples_ns: list[int] = field(default_factory=list)
    round_ns: list[Optional[int]] = field(default_factory=list)  # per round: the block's median (None: not in it)
    memory: dict[str, Any] = field(default_factory=dict)  # the finish reply
    settle_waits: int = 0  # blocks after which the worker waited for its threads and could see them
    settle_capped: int = 0  # of those, the ones its threads outlasted (``bench.processes.settle``)

    @property
    def active(self) -> bool:
        return self.status == "ok"

    @property
    def settle_capped_share(self) -> Optional[float]:
        """Of the blocks after which this member waited for its threads, the share that ended at the cap with a
        thread still running: the next member's block began with it on the CPUs. None without such waits."""
        return capped_share(self.settle_capped, self.settle_waits)

    def add_block(self, answer: dict[str, Any]) -> None:
        """One block's reply: its samples, their median as this round's value, and the wait after it."""
        samples = answer["samples_ns"]
        self.samples_ns += samples
        self.round_ns[-1] = round(median(samples))
        if answer.get("settle_capped") is not None:  # absent: an older worker or a fixed pause; null: a blind wait
            self.settle_waits += 1
            self.settle_capped += bool(answer["settle_capped"])


@dataclass(frozen=True)
class GroupRun:
    members: tuple[Member, ...]
    rounds: int
    seconds: float  # of blocks, all members together
    stop_reason: str  # "target", "time cap" or "max rounds"


class _Gone(Exception):
    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


class _Worker:
    """A serving worker process (``bench.worker --serve``) and its line protocol."""

    def __init__(self, name: str, arm: Arm, sampling: Measure, request_extra: dict[str, Any],
                 server: Optional[ForkServer] = None) -> None:
        self.name = name
        self.timeout = sampling.timeout_s
        self.stderr = tempfile.TemporaryFile(mode="w+")  # a file, not a pipe: a chatty worker never blocks on it
        self.proc = start("bench.worker", ["--serve"], src=arm.src, stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=self.stderr, text=True, server=server,
                          allocator=request_extra.get("allocator"))
        self.send({"case": arm.case.to_dict(), "measure": asdict(sampling), **request_extra})

    def send(self, obj: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(obj) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass  # it died: receive() says how

    def receive(self) -> dict[str, Any]:
        """The next reply; raises _Gone with a status and reason when the worker dies, hangs or fails."""
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
        answer = json.loads(line)
        if answer.get("failed"):  # the worker caught its own failure mid-run (an oom in a block)
            raise _Gone(answer.get("status", "error"), f"{self.name}: {answer.get('reason', '')}")
        return answer

    def close(self) -> None:
        kill_group(self.proc)
        for stream in (self.proc.stdin, self.proc.stdout, self.stderr):
            if stream:
                stream.close()


def capped_share(capped: Optional[int], waits: Optional[int]) -> Optional[float]:
    """Of ``waits`` for a worker's threads after its blocks, the share its threads outlasted; None without waits."""
    return capped / waits if waits else None


def settle_warning(capped_share: float) -> str:
    """What threads that outlasted ``capped_share`` of the waits after their blocks did to the rest of a group (a
    member's row, ``ab``'s verdict, the runner's probe)."""
    return (f"threads were still running when the {SETTLE_S * 1e3:g} ms wait for them ended after "
            f"{capped_share:.0%} of its blocks (an OpenMP pool that does not stop spinning: OMP_WAIT_POLICY=active, "
            "or Intel OpenMP's KMP_BLOCKTIME): the next member of the group began its block with them on the CPUs, "
            "which slows that member and its pairing; unset OMP_WAIT_POLICY (or set KMP_BLOCKTIME=0) and rerun")


def settle_for(cases: Sequence[Case]) -> float:
    """The longest pause after each block: SETTLE_S for multi-threaded CPU members, else none."""
    return SETTLE_S if all(c.device == "cpu" for c in cases) and max(c.threads for c in cases) > 1 else 0.0


def block_request(arms: Sequence[Arm], block_s: float, settle_s: float) -> dict[str, Any]:
    """What a member is asked for a block: ``block_s`` of iterations, then a wait until its threads stop, at most
    ``settle_s`` (``settle_cap``); where an arm runs another checkout's worker, which knows only a fixed pause
    (``settle``), every member gets the fixed ``SETTLE_BLIND_S``, so that neither side leaves its threads spinning
    into the other's blocks more than the other does."""
    alike = all(arm.src is None for arm in arms)
    return {"block": block_s, "settle": min(settle_s, SETTLE_BLIND_S), "settle_cap": settle_s if alike else 0.0}


def shares_build(arms: Sequence[Arm]) -> bool:
    """Whether the arms' workers can start from one model built ahead: CPU cases of this checkout, one base
    (``bench.prepare.base_key``: model, batch, input, mode)."""
    return (len(arms) > 1 and all(arm.src is None and arm.case.device == "cpu" for arm in arms)
            and len({base_key(arm.case) for arm in arms}) == 1)


def _builder(arms: Sequence[Arm], sampling: Measure) -> Optional[ForkServer]:
    """The group's builder (``processes.group_builder``) where the arms share a build, else None; one that
    cannot start is a warning, and the members build their own."""
    if not shares_build(arms):
        return None
    try:
        return group_builder([arm.case for arm in arms], sampling.timeout_s)
    except OSError as exc:
        log.warning("%s; each member builds its own model", exc)
        return None


def _order(n_members: int, round_index: int, rng: random.Random) -> list[int]:
    if n_members <= 2:
        return list(range(n_members)) if round_index % 2 == 0 else list(reversed(range(n_members)))
    order = list(range(n_members))
    rng.shuffle(order)
    return order


def run_group(arms: Sequence[Arm], sampling: Measure, enough: Callable[[list[Member]], bool], *,
              names: Optional[Sequence[str]] = None, block_s: float = 0.0, min_rounds: int = 20,
              max_rounds: int = 400, max_seconds: Optional[float] = None, request_extra: Optional[dict] = None,
              pin: bool = True, settle_s: Optional[float] = None, finish: bool = False,
              stop_on_failure: bool = False, probe: Optional[Callable[[], None]] = None,
              probe_every_s: float = PROBE_EVERY_S) -> GroupRun:
    """Interleave the arms' cases (see the module docstring). Never raises for a failing member.

    ``finish`` asks each worker for its memory figures at the end (workers of this
    checkout only: older ones do not know the request). ``stop_on_failure`` ends the
    whole group when one member fails (what a two-sided A/B needs).
    """
    max_seconds = sampling.max_seconds if max_seconds is None else max_seconds
    cases = [arm.case for arm in arms]
    extra = {**(request_extra or {}), "cpus": shared_cpus(*cases) if pin else None}
    settle_s = settle_for(cases) if settle_s is None else settle_s
    members = [Member(arm) for arm in arms]
    names = list(names or [arm.case.key for arm in arms])
    workers: list[Optional[_Worker]] = [None] * len(arms)
    rng, probe_rng = random.Random(0), random.Random(1)
    last_probe = -math.inf

    def leave(i: int, status: str, reason: str) -> None:
        members[i].status, members[i].reason = status, reason
        if workers[i] is not None:
            workers[i].close()
            workers[i] = None

    spent, rounds, stop = 0.0, 0, "max rounds"
    block = block_request(arms, block_s, settle_s)
    builder = _builder(arms, sampling)
    try:
        for i, arm in enumerate(arms):  # one after another: no build overlaps another's warm-up
            workers[i] = _Worker(names[i], arm, sampling, extra, builder)
            try:
                hello = workers[i].receive()
            except _Gone as gone:
                leave(i, gone.status, gone.reason)
                continue
            if not hello.get("ready"):
                leave(i, hello.get("status", "error"), f"{names[i]}: {hello.get('reason', '')}")
            else:
                members[i].figures = {k: v for k, v in hello.items() if k != "ready"}
        if builder is not None:
            # every member holds its copy or its mapping of the pages: the rest goes back, and is gone, before a block
            if not builder.drop():
                log.warning("the group's builder did not say it had freed its model: its freeing may overlap blocks")
        while any(m.active for m in members) and not (stop_on_failure and not all(m.active for m in members)):
            for member in members:
                member.round_ns.append(None)
            order: list[Optional[int]] = list(_order(len(arms), rounds, rng))
            if probe is not None and time.perf_counter() - last_probe >= probe_every_s:
                order.insert(probe_rng.randrange(len(order) + 1), None)
            for i in order:
                if i is None:
                    last_probe = time.perf_counter()
                    probe()
                    continue
                if not members[i].active:
                    continue
                b0 = time.perf_counter()
                workers[i].send(block)
                try:
                    answer = workers[i].receive()
                except _Gone as gone:
                    leave(i, gone.status, gone.reason)
                    continue
                spent += time.perf_counter() - b0
                members[i].add_block(answer)
            rounds += 1
            if rounds >= min_rounds:
                if enough(members):
                    stop = "target"
                    break
                if spent >= max_seconds:
                    stop = "time cap"
                    break
                if rounds >= max_rounds:
                    break
        if finish:
            for i, worker in enumerate(workers):
                if worker is not None and members[i].active:
                    worker.send({"finish": True})
                    try:
                        members[i].memory = worker.receive()
                    except _Gone:
                        pass  # timed and answered every block: its figures stand without the memory peak
    finally:
        for worker in workers:
            if worker is not None:
                worker.close()
        if builder is not None:
            builder.close()
    return GroupRun(tuple(members), rounds, spent, stop)


def paired_rounds(member: Member, reference: Member) -> tuple[list[int], list[int]]:
    """The round medians of the reference and the member over the rounds both ran."""
    both = [(r, m) for r, m in zip(reference.round_ns, member.round_ns) if r is not None and m is not None]
    return [r for r, _ in both], [m for _, m in both]
