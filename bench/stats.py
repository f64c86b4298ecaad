"""Statistics of raw samples: pure functions, nothing stored twice.

The median's confidence interval is distribution-free: the order statistics
x_(j), x_(k) with j, k = n/2 -/+ z * sqrt(n)/2 (the normal approximation to the
binomial(n, 1/2) count of samples below the median) bracket the population
median with ~95% probability for z = 1.96, whatever the shape of the timing
distribution (timings are skewed and often multi-modal, so mean +/- t*s would lie).
"""

from __future__ import annotations

import math
from typing import Sequence

Z95 = 1.959963984540054


def percentile(samples: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), q in [0, 100]."""
    if not samples:
        return math.nan
    xs = sorted(samples)
    pos = (len(xs) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def median(samples: Sequence[float]) -> float:
    return percentile(samples, 50)


def mean(samples: Sequence[float]) -> float:
    return sum(samples) / len(samples) if samples else math.nan


def stdev(samples: Sequence[float]) -> float:
    n = len(samples)
    if n < 2:
        return math.nan
    m = mean(samples)
    return math.sqrt(sum((x - m) ** 2 for x in samples) / (n - 1))


def iqr(samples: Sequence[float]) -> float:
    return percentile(samples, 75) - percentile(samples, 25)


def median_ci(samples: Sequence[float], z: float = Z95) -> tuple[float, float]:
    """The distribution-free ~95% confidence interval of the median (see the module docstring)."""
    n = len(samples)
    if n < 3:
        return (math.nan, math.nan)
    xs = sorted(samples)
    half = z * math.sqrt(n) / 2
    j = max(0, math.floor(n / 2 - half))
    k = min(n - 1, math.ceil(n / 2 + half) - 1)
    return (xs[j], xs[k])


def median_ci_rel(samples: Sequence[float]) -> float:
    """Half-width of the median's CI relative to the median: 0.02 means +/-2%."""
    lo, hi = median_ci(samples)
    m = median(samples)
    if math.isnan(lo) or not m:
        return math.inf
    return (hi - lo) / 2 / m


def summarize(samples_ms: Sequence[float]) -> dict[str, float]:
    """The latency figures of one case, in ms, under their column names."""
    lo, hi = median_ci(samples_ms)
    return {
        "latency_ms_p50": median(samples_ms),
        "latency_ms_p90": percentile(samples_ms, 90),
        "latency_ms_p99": percentile(samples_ms, 99),
        "latency_ms_mean": mean(samples_ms),
        "latency_ms_stdev": stdev(samples_ms),
        "latency_ms_iqr": iqr(samples_ms),
        "latency_ms_min": min(samples_ms) if samples_ms else math.nan,
        "latency_ms_p50_ci_low": lo,
        "latency_ms_p50_ci_high": hi,
        "latency_p50_ci_rel": median_ci_rel(samples_ms),
        "samples": len(samples_ms),
    }
