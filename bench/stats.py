"""Statistics of raw samples: every statistical method of the harness, as pure functions; nothing stored twice.

    median, percentile   linear interpolation between closest ranks (numpy's default)
    median_ci            distribution-free CI of the median from order statistics (below)
    mann_whitney_p       two-sided Mann-Whitney U test, normal approximation, tie and continuity corrected
    bootstrap_ratio_ci   percentile bootstrap CI of a ratio of medians
    sign_test_p          exact two-sided sign test of a zero median
    paired_figures       ratio of paired rounds: exp(median log ratio), its CI, and the sign test
    rerun_interval       where a rerun's median lands: the CI and the machine's spread, for two windows

The median's confidence interval is distribution-free: the order statistics
x_(j), x_(k) with j, k = n/2 -/+ z * sqrt(n)/2 (the normal approximation to the
binomial(n, 1/2) count of samples below the median) bracket the population
median with ~95% probability for z = 1.96, whatever the shape of the timing
distribution (timings are skewed and often multi-modal, so mean +/- t*s would lie).
It needs ``MIN_CI_SAMPLES`` values: with n the widest it can be is [min, max],
which covers the median with probability 1 - 2 x 2**-n, 93.75% for 5 and
96.9% for 6; below 6 no pair of order statistics reaches 95%, so the interval
is unknown (nan), and a case or a pairing with so few is not known to any precision.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

Z95 = 1.959963984540054
MIN_CI_SAMPLES = 6  # the fewest values whose [min, max] covers the median with >= 95% (module docstring)


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
    if n < MIN_CI_SAMPLES:
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


def rerun_interval(center: float, low: float, high: float, log_sd: float, z: float = Z95) -> tuple[float, float]:
    """Where the median of a rerun at another moment is expected (~95%): a prediction interval. Each side of the CI
    [low, high] around ``center``, taken in log space, is combined in quadrature with ``z`` x ``log_sd`` (the
    standard deviation of the log of the machine's speed from one case's window to another, or of a case's p50
    from one run to another: ``bench.results.result_rows``), and the whole
    widened by sqrt(2), since the rerun has a window of its own, as uncertain and at as random a moment as this
    one: center x exp(-/+ sqrt(2) x sqrt(side**2 + (z * log_sd)**2))."""
    if not (center > 0 and low > 0 and high > 0) or math.isnan(log_sd):
        return (math.nan, math.nan)
    extra = (z * log_sd) ** 2
    below = math.sqrt(2 * (math.log(center / low) ** 2 + extra))
    above = math.sqrt(2 * (math.log(high / center) ** 2 + extra))
    return (center * math.exp(-below), center * math.exp(above))


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


def mann_whitney_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p-value of the Mann-Whitney U test (normal approximation, tie and continuity corrected)."""
    n1, n2 = len(a), len(b)
    if n1 == 0 or n2 == 0:
        return math.nan
    values = np.concatenate([np.asarray(a, dtype=float), np.asarray(b, dtype=float)])
    order = values.argsort(kind="mergesort")
    ranks = np.empty(len(values))
    sorted_values = values[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_values, return_index=True, return_counts=True)
    average = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(average, counts)
    u1 = ranks[:n1].sum() - n1 * (n1 + 1) / 2.0
    n = n1 + n2
    tie_term = float(((counts**3) - counts).sum()) / (n * (n - 1)) if n > 1 else 0.0
    sigma = math.sqrt(n1 * n2 / 12.0 * ((n + 1) - tie_term))
    if sigma == 0:
        return 1.0
    z = (abs(u1 - n1 * n2 / 2.0) - 0.5) / sigma
    return math.erfc(max(z, 0.0) / math.sqrt(2))


def bootstrap_ratio_ci(base: Sequence[float], cand: Sequence[float], *, n_boot: int = 2000,
                       seed: int = 0) -> tuple[float, float]:
    """95% percentile bootstrap of median(cand) / median(base): both sides resampled with replacement
    ``n_boot`` times (fixed seed), the 2.5th and 97.5th percentiles of the resampled ratio."""
    rng = np.random.default_rng(seed)
    a, b = np.asarray(base, dtype=float), np.asarray(cand, dtype=float)
    ma = np.median(rng.choice(a, size=(n_boot, len(a))), axis=1)
    mb = np.median(rng.choice(b, size=(n_boot, len(b))), axis=1)
    ratios = mb / ma
    return float(np.percentile(ratios, 2.5)), float(np.percentile(ratios, 97.5))


def sign_test_p(values: list[float]) -> float:
    """Exact two-sided sign test of a zero median; zeros are dropped."""
    nonzero = [v for v in values if v != 0]
    n = len(nonzero)
    if n == 0:
        return 1.0
    k = min(sum(v > 0 for v in nonzero), sum(v < 0 for v in nonzero))
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def paired_figures(base_ns: Sequence[float], cand_ns: Sequence[float]) -> dict[str, Any]:
    """Paired rounds judged together: d = log(cand / base) per round; ratio = exp(median d), its 95% CI
    = exp of ``median_ci(d)``, p = ``sign_test_p(d)``."""
    d = [math.log(c / b) for b, c in zip(base_ns, cand_ns)]
    lo, hi = median_ci(d)
    return {"ratio": math.exp(median(d)), "ratio_ci_low": math.exp(lo) if not math.isnan(lo) else None,
            "ratio_ci_high": math.exp(hi) if not math.isnan(hi) else None, "p_value": sign_test_p(d)}
