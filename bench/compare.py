"""Comparing two runs case by case, from their raw samples.

Method, per case matched on its full identity (``Case.key``):
    ratio       = median(candidate) / median(baseline) (> 1 is slower)
    ratio CI    = percentile bootstrap, 95%: both sides resampled with replacement
                  (2000 times, fixed seed), the 2.5th and 97.5th percentiles of the
                  resampled ratio
    p           = Mann-Whitney U test, two-sided, normal approximation with tie
                  correction and continuity correction
    verdict     = "inconclusive" if either side has fewer than ``min_samples``
                  samples or an IQR above ``noise_limit`` x its median;
                  "slower" if ratio > 1 + threshold and p < alpha;
                  "faster" if ratio < 1 / (1 + threshold) and p < alpha;
                  otherwise "unchanged".
Both conditions are needed: a significant 1% change is not a regression worth a
red CI, and a 30% change with overlapping noisy samples is not proven.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from .stats import iqr, median
from .worker import Result

VERDICTS = ("slower", "faster", "unchanged", "inconclusive", "new", "missing")


@dataclass(frozen=True)
class Thresholds:
    threshold: float = 0.10
    alpha: float = 0.01
    noise_limit: float = 0.25  # IQR / median above which a side is too noisy to judge
    min_samples: int = 5


@dataclass(frozen=True)
class CaseComparison:
    key: str
    verdict: str
    baseline_p50_ms: Optional[float] = None
    candidate_p50_ms: Optional[float] = None
    ratio: Optional[float] = None
    ratio_ci_low: Optional[float] = None
    ratio_ci_high: Optional[float] = None
    p_value: Optional[float] = None
    reason: str = ""


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
    rng = np.random.default_rng(seed)
    a, b = np.asarray(base, dtype=float), np.asarray(cand, dtype=float)
    ma = np.median(rng.choice(a, size=(n_boot, len(a))), axis=1)
    mb = np.median(rng.choice(b, size=(n_boot, len(b))), axis=1)
    ratios = mb / ma
    return float(np.percentile(ratios, 2.5)), float(np.percentile(ratios, 97.5))


def compare_samples(key: str, base_ns: Sequence[int], cand_ns: Sequence[int], t: Thresholds) -> CaseComparison:
    base = [s / 1e6 for s in base_ns]
    cand = [s / 1e6 for s in cand_ns]
    if not base or not cand:
        side = "baseline" if not base else "candidate"
        return CaseComparison(key, "inconclusive", reason=f"the {side} has no samples")
    mb, mc = median(base), median(cand)
    ratio = mc / mb
    lo, hi = bootstrap_ratio_ci(base, cand)
    p = mann_whitney_p(base, cand)
    figures = dict(baseline_p50_ms=mb, candidate_p50_ms=mc, ratio=ratio, ratio_ci_low=lo, ratio_ci_high=hi, p_value=p)
    for side, xs, m in (("baseline", base, mb), ("candidate", cand, mc)):
        if len(xs) < t.min_samples:
            return CaseComparison(key, "inconclusive", reason=f"the {side} has {len(xs)} samples "
                                                              f"(fewer than {t.min_samples})", **figures)
        if iqr(xs) / m > t.noise_limit:
            return CaseComparison(key, "inconclusive", reason=f"the {side} is too noisy (IQR {100 * iqr(xs) / m:.0f}% "
                                                              f"of its median, limit {100 * t.noise_limit:.0f}%)", **figures)
    return CaseComparison(key, timing_verdict(ratio, p, t), **figures)


def timing_verdict(ratio: float, p: float, t: Thresholds, each: Sequence[float] = ()) -> str:
    """slower: ratio > 1 + threshold and p < alpha (and every ratio in ``each``, from separately measured
    parts such as pairs of worker processes, above 1 + threshold/2); faster: the mirror image; else unchanged."""
    if p < t.alpha and ratio > 1 + t.threshold and all(r > 1 + t.threshold / 2 for r in each):
        return "slower"
    if p < t.alpha and ratio < 1 / (1 + t.threshold) and all(r < 1 / (1 + t.threshold / 2) for r in each):
        return "faster"
    return "unchanged"


def compare_runs(baseline: Sequence[Result], candidate: Sequence[Result],
                 t: Thresholds = Thresholds()) -> list[CaseComparison]:
    """Every case of either run: matched ones compared, the rest listed as new or missing, never compared."""
    base = {r.case.key: r for r in baseline}
    cand = {r.case.key: r for r in candidate}
    out = [compare_samples(k, base[k].samples_ns, cand[k].samples_ns, t) for k in base if k in cand]
    out += [CaseComparison(k, "missing", reason="in the baseline only") for k in base if k not in cand]
    out += [CaseComparison(k, "new", reason="in the candidate only") for k in cand if k not in base]
    return out


# -- deterministic metrics and whole-run comparison -------------------------------------------------

EXACT_METRICS = ("params", "macs", "activation_bytes", "saved_bytes", "instructions_per_iter")
ENV_KEYS = ("hostname", "cpu_model", "gpu_name", "torch", "threads", "tf32_matmul", "tf32_cudnn")


@dataclass(frozen=True)
class ExactChange:
    key: str
    metric: str
    baseline: Optional[float]
    candidate: Optional[float]
    failed: bool  # beyond the tolerance

    @property
    def relative(self) -> float:
        if not self.baseline:
            return math.inf if self.candidate else 0.0
        return (self.candidate - self.baseline) / self.baseline


@dataclass(frozen=True)
class Side:
    """One side of a comparison: a stored run or a run file."""

    label: str
    meta: dict
    results: tuple[Result, ...]


def exact_changes(baseline: Sequence[Result], candidate: Sequence[Result], tolerance: float = 0.0,
                  metrics: Sequence[str] = EXACT_METRICS, tolerances: Optional[dict[str, float]] = None) -> list[ExactChange]:
    """Every change of a deterministic metric between matched cases; ``failed`` beyond the relative tolerance."""
    base = {r.case.key: r for r in baseline}
    out = []
    for r in candidate:
        b = base.get(r.case.key)
        if b is None:
            continue
        for metric in metrics:
            old, new = getattr(b, metric, None), getattr(r, metric, None)
            if old is None or new is None or old == new:
                continue
            limit = (tolerances or {}).get(metric, tolerance)
            rel = abs(new - old) / abs(old) if old else math.inf
            out.append(ExactChange(r.case.key, metric, old, new, rel > limit))
    return out


def env_differences(base_env: dict, cand_env: dict) -> list[str]:
    return [f"{key}: {base_env.get(key)!r} -> {cand_env.get(key)!r}"
            for key in ENV_KEYS if base_env.get(key) != cand_env.get(key)]


_ORDER = {"slower": 0, "inconclusive": 2, "unchanged": 3, "faster": 4, "missing": 5, "new": 6}


def worst_first(rows: Sequence[CaseComparison]) -> list[CaseComparison]:
    return sorted(rows, key=lambda c: (_ORDER[c.verdict], -(c.ratio or 0.0), c.key))
