"""The machine-speed track: one fixed probe, measured all through a run, inside comparison groups and between them.

Why: a shared machine's speed drifts by tens of percent over seconds and
minutes. Paired ratios cancel the drift inside a group; absolute figures do
not, and two runs an hour apart may differ because the machine did. The track
says by how much, so a reader can tell the machine's movement from the code's.

Method
    The probe (``probe_gflop_s``): a float32 matmul of ``PROBE_N`` square
    (about 0.1 GFLOP, about half a millisecond on 2 cores), repeated for a
    fixed time (at least ``PROBE_REPEATS`` times) in the runner process with
    the run's largest thread count; its value is the *median* repeat's rate:
    the machine's typical speed over that time, not its best. It runs for
    ``PROBE_S`` before the first group, between groups (no worker is then
    alive, so it measures the machine, not a contention with the benchmark)
    and after the last; and, for ``PROBE_GROUP_S``, inside every comparison
    group as one more member of its rounds (``bench.group``: at a shuffled
    place in a round, at most every ``PROBE_EVERY_S``), so that the group's
    own window has probes of its own. Every probe is stored per run
    (``Store.add_probe``) with its unix time and the machine's label. A
    sharded run's machines each probe their own speed: a case is set against
    the track of the machine that measured it (``own_track``).

    A case's speed (``speed_during``): the median of the probes inside the
    case's window (a grouped case's: its group's own), or, where none fell
    inside (a case measured alone), of the probes from the last one at or
    before its start to the first one at or after its end; over the median of
    the whole track: 1.0 is the run's typical speed, 0.8 a machine 20% slower
    than typical while the case ran.

    The run's movement (``movement``): the 5th and 95th percentiles of the
    track over its median, and its extremes, in per cent.

    The run's spread (``spread``): the standard deviation of the log of the
    machine's speed from one case's window to another (``speed_during`` of
    each distinct window: a group's members share one), with at least
    ``MIN_SPREAD_WINDOWS`` windows: how much the machine's speed, averaged as a
    case averages it, differs from one moment of the run to another.
    ``bench.results`` widens each case's p50 interval by it
    (``rerun_interval``): a rerun happens at another moment. A window whose
    speed is off the run's typical by more than ``DISTURBED`` times (a 2-core
    VM whose other vCPU was taken: the probe then waits a scheduler slice per
    matmul, 7% of its speed) is left out of the spread, and its cases carry a
    warning instead (``bench.results.case_warnings``): one disturbance would
    otherwise widen every case's interval tenfold. Single probes
    would not do: a 20 ms probe sees the machine's fast swings in full, which
    a case's window of seconds averages away. Nor would a robust SD (1.4826 x
    MAD): each window's speed is already a median, so what is left in the
    tails (disturbances apart) are the machine's real phases, which a rerun
    meets too (on a 2-core VM, two quick runs: the MAD's prediction interval
    covered 79% of the second run's p50s, the SD's 90%).
"""

from __future__ import annotations

import bisect
import math
import mmap
import time
from typing import Optional, Sequence

from .stats import median, percentile, stdev

PROBE_N = 384
PROBE_REPEATS = 9
PROBE_S = 0.1  # between groups
PROBE_GROUP_S = 0.02  # inside a group, as one more member of a round
# inside a group: at most this often; each probe and its wait cost a round about 28 ms on 2 vCPUs, and a group's
# window of 30-60 s gets 15-30 probes at this rate, more than its one speed (``speed_during``) needs
PROBE_EVERY_S = 2.0
DISTURBED = 2.0  # a window at under 1/2 or over 2x the run's typical speed was disturbed, not drifting
MIN_SPREAD_WINDOWS = 5  # fewer say little about how the machine's speed varies from one window to another

Track = Sequence[tuple[float, float]]  # (unix time, GFLOP/s), in time order


def probe_gflop_s(threads: int, seconds: float = PROBE_S) -> float:
    """The probe's rate now: the median of timed matmuls over ``seconds`` (see the module docstring)."""
    import torch

    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a = torch.randn(PROBE_N, PROBE_N)
        b = torch.randn(PROBE_N, PROBE_N)
        torch.mm(a, b)  # the first call allocates and picks the kernel
        rates: list[float] = []
        until = time.perf_counter() + seconds
        while len(rates) < PROBE_REPEATS or time.perf_counter() < until:
            t0 = time.perf_counter_ns()
            torch.mm(a, b)
            rates.append(2 * PROBE_N**3 / max(1, time.perf_counter_ns() - t0))  # FLOP/ns = GFLOP/s
        return round(median(rates), 3)
    finally:
        torch.set_num_threads(saved)


FRESH_MEMORY_BYTES = 64 << 20  # mapped and unmapped each time: pages new from the kernel
FRESH_REPEATS = 3  # the runner's price after each group: about 75 ms on a 2-vCPU VM


def fresh_memory_us(repeats: int = 5) -> float:
    """What memory new to the process costs now, in microseconds per 4 KiB page: the median of ``repeats``
    anonymous mappings of ``FRESH_MEMORY_BYTES`` (``mmap``, not malloc: whatever this process's allocator keeps,
    ``bench.allocator``, the pages are new) with one byte of every page written, on one thread: the page
    faults' price (the kernel's, and on a VM the host's), without the write a step would pay in memory it
    already had.

    Not part of the track: a diagnosis (``fresh_spread``). The matmul probe runs in memory it already has; a step
    that allocates large buffers every iteration (an autocast step's copies of large weights: 63,000 pages a
    VGG-11 step) also pays the kernel, and on a VM the host, for every page, at a price that can move while the
    matmul's speed holds still (``benchmarks/variant_drift.py``)."""
    import torch

    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        costs = []
        for _ in range(repeats):
            t0 = time.perf_counter_ns()
            with mmap.mmap(-1, FRESH_MEMORY_BYTES) as fresh:
                torch.frombuffer(fresh, dtype=torch.uint8)[::4096] = 1
                costs.append((time.perf_counter_ns() - t0) / 1e3 / (FRESH_MEMORY_BYTES // 4096))
        return round(median(costs), 3)
    finally:
        torch.set_num_threads(saved)


def fresh_spread(prices: Sequence[tuple[tuple[float, float], Optional[float]]]) -> Optional[float]:
    """The SD of the log of the price of fresh memory (``fresh_memory_us``) from one case's window to another:
    ``prices`` are (the case's window (start, end), the price measured right after its group, ``bench.runner``); the
    members of a group share a window, which counts once, at its members' median price; a window whose price is
    off the run's median by more than ``DISTURBED`` times is left out, as for ``spread``. None with fewer than
    ``MIN_SPREAD_WINDOWS`` windows."""
    by_window: dict[tuple[float, float], list[float]] = {}
    for window, price in prices:
        if price and price > 0:
            by_window.setdefault(window, []).append(price)
    if not by_window:
        return None
    values = [median(v) for v in by_window.values()]
    typical = median(values)
    return _log_sd([value / typical for value in values])


def speed_during(track: Track, start: float, end: float) -> Optional[float]:
    """The probe's speed over [start, end] relative to the whole track's median (see the module docstring);
    None without a track."""
    if not track:
        return None
    times = [at for at, _ in track]
    first_inside, after = bisect.bisect_left(times, start), bisect.bisect_right(times, end)
    if first_inside < after:
        window = [value for _, value in track[first_inside:after]]
    else:
        first = max(0, bisect.bisect_right(times, start) - 1)
        last = min(len(track), bisect.bisect_left(times, end) + 1)
        window = [value for _, value in track[first:last]] or [track[-1][1]]
    typical = median([value for _, value in track])
    return median(window) / typical if typical > 0 else None


def disturbed(speed: Optional[float]) -> bool:
    """Whether a window's speed (``speed_during``) is off the run's typical by more than ``DISTURBED`` times."""
    return speed is not None and not 1 / DISTURBED <= speed <= DISTURBED


def own_track(tracks: "dict[Optional[str], list[tuple[float, float]]]", machine: Optional[str]) -> Track:
    """The track of the machine that measured a case (``Store.tracks``' answer): that machine's own points where
    it probed, else every point (a run from before machine labels)."""
    if machine in tracks:
        return tracks[machine]
    return sorted(point for points in tracks.values() for point in points)


def spread(track: Track, windows: Sequence[tuple[float, float]]) -> Optional[float]:
    """The SD of the log of the machine's speed over the distinct case ``windows`` (start, end) of a run
    (see the module docstring), disturbed windows left out; None with fewer than ``MIN_SPREAD_WINDOWS`` windows
    left that have a speed."""
    return _log_sd([speed_during(track, start, end) for start, end in sorted(set(windows))])


def _log_sd(relative: Sequence[Optional[float]]) -> Optional[float]:
    """The SD of the log of windows' values over the run's typical (``spread``, ``fresh_spread``), disturbed ones
    and those without a value left out; None with fewer than ``MIN_SPREAD_WINDOWS`` left."""
    logs = [math.log(value) for value in relative if value and not disturbed(value)]
    return stdev(logs) if len(logs) >= MIN_SPREAD_WINDOWS else None


def movement(track: Track) -> Optional[dict[str, float]]:
    """How much the machine's speed moved during a run, in per cent of the track's median."""
    if len(track) < 2:
        return None
    values = [value for _, value in track]
    typical = median(values)

    def pct(value: float) -> float:
        return 100 * (value / typical - 1)

    return {"p5_pct": pct(percentile(values, 5)), "p95_pct": pct(percentile(values, 95)),
            "min_pct": pct(min(values)), "max_pct": pct(max(values)), "probes": len(values),
            "median_gflop_s": typical}


def movement_line(track: Track) -> str:
    """One line for a report's header or a terminal: '-4% to +3% (p5-p95 of 12 probes; extremes -9%, +5%)'."""
    moved = movement(track)
    if moved is None:
        return "no machine-speed track (a run before cnnbench kept one, or fewer than 2 probes)"
    return (f"{moved['p5_pct']:+.0f}% to {moved['p95_pct']:+.0f}% of its median {moved['median_gflop_s']:.1f} GFLOP/s "
            f"(p5-p95 of {moved['probes']} probes; extremes {moved['min_pct']:+.0f}%, {moved['max_pct']:+.0f}%)")
