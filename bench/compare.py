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
from dataclasses import asdict, dataclass
from typing import Any, Optional, Sequence

from . import allocator
from .errors import BadValue
from .record import Result, tally
from .stats import bootstrap_ratio_ci, iqr, mann_whitney_p, median

VERDICTS = ("slower", "inconclusive", "unchanged", "faster", "missing", "new")  # worst first
CONFIRM_MODES = ("doubtful", "all")  # which cases compare --confirm measures again (bench.confirm)
GATES = ("all", "exact")  # what decides a comparison's exit status: timing and exact metrics, or exact only


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


def compare_samples(key: str, base_ns: Sequence[int], cand_ns: Sequence[int], thresholds: Thresholds) -> CaseComparison:
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
    for side, xs, middle in (("baseline", base, mb), ("candidate", cand, mc)):
        if len(xs) < thresholds.min_samples:
            return CaseComparison(key, "inconclusive", reason=f"the {side} has {len(xs)} samples "
                                                              f"(fewer than {thresholds.min_samples})", **figures)
        if iqr(xs) / middle > thresholds.noise_limit:
            why = (f"the {side} is too noisy (IQR {100 * iqr(xs) / middle:.0f}% of its median, "
                   f"limit {100 * thresholds.noise_limit:.0f}%)")
            return CaseComparison(key, "inconclusive", reason=why, **figures)
    return CaseComparison(key, timing_verdict(ratio, p, thresholds), **figures)


def timing_verdict(ratio: float, p: float, thresholds: Thresholds, each: Sequence[float] = ()) -> str:
    """slower: ratio > 1 + threshold and p < alpha (and every ratio in ``each``, from separately measured
    parts such as pairs of worker processes, above 1 + threshold/2); faster: the mirror image; else unchanged."""
    step, significant = thresholds.threshold, p < thresholds.alpha
    if significant and ratio > 1 + step and all(r > 1 + step / 2 for r in each):
        return "slower"
    if significant and ratio < 1 / (1 + step) and all(r < 1 / (1 + step / 2) for r in each):
        return "faster"
    return "unchanged"


def compare_runs(baseline: Sequence[Result], candidate: Sequence[Result],
                 thresholds: Thresholds = Thresholds()) -> list[CaseComparison]:
    """Every case of either run: matched ones compared, the rest listed as new or missing, never compared."""
    base = {r.case.key: r for r in baseline}
    cand = {r.case.key: r for r in candidate}
    out = [compare_samples(k, base[k].samples_ns, cand[k].samples_ns, thresholds) for k in base if k in cand]
    out += [CaseComparison(k, "missing", reason="in the baseline only") for k in base if k not in cand]
    out += [CaseComparison(k, "new", reason="in the candidate only") for k in cand if k not in base]
    return out


# -- deterministic metrics and whole-run comparison -------------------------------------------------

EXACT_METRICS = ("params", "macs", "activation_bytes", "saved_bytes", "instructions_per_iter")
ENV_KEYS = ("hostname", "cpu_model", "gpu_name", "torch", "threads", "tf32_matmul", "tf32_cudnn", "cudnn_benchmark",
            "cpu_allocator", "cuda_build", "cudnn", "gpu_driver")
ENV_BEFORE = {"cpu_allocator": allocator.STORED_BEFORE}  # what a run recorded before the key had


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


def env_differences(base_env: dict, cand_env: dict, devices: Sequence[str] = ()) -> list[str]:
    """The ENV_KEYS that differ, then the GPUs that ``devices`` (the compared cases' devices: cuda, cuda:1) name
    where the two runs hold different models (``gpu_names``, by index; ``gpu_name`` is only the first GPU's).
    A run recorded before ``gpu_names`` is not judged on them."""
    old_new = [(key, *(env.get(key, ENV_BEFORE.get(key)) for env in (base_env, cand_env))) for key in ENV_KEYS]
    out = [f"{key}: {old!r} -> {new!r}" for key, old, new in old_new if old != new]
    if "gpu_names" in base_env and "gpu_names" in cand_env:
        for device in sorted(set(devices) - {"cpu"}):
            index = int(device.partition(":")[2] or 0)
            old, new = (names[index] if index < len(names) else None
                        for names in (base_env["gpu_names"], cand_env["gpu_names"]))
            if old != new:
                out.append(f"{device}: {old!r} -> {new!r}")
    return out


def machine_difference(base_run: dict, cand_run: dict) -> Optional[str]:
    """Why two runs are from different machines, or None: their labels differ, or one label names two kinds of
    hardware (``environment.fingerprint``). A run from before machine labels is not judged."""
    base, cand = base_run.get("machine"), cand_run.get("machine")
    if not base or not cand:
        return None
    if base != cand:
        return f"the baseline ran on machine {base!r}, the candidate on {cand!r}"
    prints = [run.get("environment", {}).get("machine_fingerprint") for run in (base_run, cand_run)]
    if all(prints) and prints[0] != prints[1]:
        return f"both ran on a machine labelled {base!r}, but on different hardware (fingerprints {' and '.join(prints)})"
    return None


MACHINE_MOVED = 0.10  # a calibration peak that moved more than this between two runs is said (machine_speed_notes)


def machine_speed_notes(base_run: dict, cand_run: dict, moved: float = MACHINE_MOVED) -> list[str]:
    """What the two runs' matmul calibrations (``bench.calibrate``, taken as each run started) say of the
    machine between them: each peak that moved more than ``moved``, and each lower precision's speed relative to
    float32 on the same device and threads that moved more than that (the footing of an amp speedup). Times
    that differ by as much may be the machine's, not the code's; runs without calibrations say nothing."""
    base, cand = _peaks(base_run), _peaks(cand_run)
    notes = []
    for key in sorted(set(base) & set(cand)):
        if abs(cand[key] / base[key] - 1) > moved:
            notes.append(f"the machine's {key} matmul peak moved {100 * (cand[key] / base[key] - 1):+.0f}% "
                         f"between the runs ({base[key]:.0f} -> {cand[key]:.0f} GFLOP/s)")
    for key in sorted(set(base) & set(cand)):
        parts = key.rsplit("/", 2)
        if len(parts) != 3:
            continue
        device, dtype, threads = parts
        fp32 = f"{device}/float32/{threads}"
        if dtype == "float32" or not all(fp32 in side for side in (base, cand)):
            continue
        before, after = base[key] / base[fp32], cand[key] / cand[fp32]
        if abs(after / before - 1) > moved:
            notes.append(f"on {device} ({threads}), {dtype} ran at {before:.2f}x float32's matmul speed in the "
                         f"baseline and {after:.2f}x in the candidate: its variants' differences against float32 "
                         "ones are the machine's as much as the code's")
    return notes


def _peaks(run: dict) -> dict[str, float]:
    """A run's calibration peaks that are positive numbers (a run file's may hold anything)."""
    calibration = run.get("calibration")
    if not isinstance(calibration, dict):
        return {}
    return {str(key): float(value) for key, value in calibration.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0}


def comparable(base: "Side", cand: "Side", *, strict_env: bool = False, cross_machine: bool = False) -> list[str]:
    """The environment differences of two sides, after refusing what may not be compared: runs from different
    machines (unless ``cross_machine``), or from different environments at all (``strict_env``)."""
    why = machine_difference(base.meta, cand.meta)
    if why and not cross_machine:
        raise BadValue(f"refusing to compare runs from different machines: {why}; pass --cross-machine to compare "
                       "them anyway")
    devices = {r.case.device for r in base.results} & {r.case.device for r in cand.results}
    env_diff = env_differences(base.meta.get("environment", {}), cand.meta.get("environment", {}), sorted(devices))
    if env_diff and strict_env:
        raise BadValue("refusing to compare runs from different environments (--strict-env): " + "; ".join(env_diff))
    return env_diff


def require_coverage(rows: Sequence[CaseComparison]) -> None:
    """The gate refuses to pass on what it did not compare: no case in common, or a baseline case the candidate
    lacks, is BadValue (exit 2); ``compare --allow-missing`` skips this and gates on the cases in common."""
    compared = [r for r in rows if r.verdict not in ("missing", "new")]
    missing = [r.key for r in rows if r.verdict == "missing"]
    if not compared:
        raise BadValue(f"the two runs have no case in common ({len(missing)} in the baseline, "
                       f"{len(rows) - len(missing)} in the candidate): nothing was compared, so nothing passed; "
                       "compare runs of the same suite, or pass --allow-missing")
    if missing:
        raise BadValue(f"the candidate lacks {len(missing)} of the baseline's {len(missing) + len(compared)} cases "
                       f"(first: {missing[0]!r}); pass --allow-missing to gate on the {len(compared)} in common")


def worst_first(rows: Sequence[CaseComparison]) -> list[CaseComparison]:
    """Verdicts in ``VERDICTS`` order, then the largest ratio first, then by key."""
    return sorted(rows, key=lambda c: (VERDICTS.index(c.verdict), -(c.ratio or 0.0), c.key))


def regressed(rows: Sequence[CaseComparison], exact: Sequence[ExactChange], gate: str = "all") -> bool:
    """The gate's rule: a regression is an exact metric changed beyond its tolerance, or (``gate="all"``)
    a timing verdict of slower."""
    return (gate == "all" and any(r.verdict == "slower" for r in rows)) or any(e.failed for e in exact)


def document(base: Side, cand: Side, rows: Sequence[CaseComparison], exact: Sequence[ExactChange],
             env_diff: Sequence[str], gate: str = "all") -> dict[str, Any]:
    """The whole comparison as one JSON-ready document (``compare --format json``)."""
    return {
        "baseline": base.label, "candidate": cand.label, "environment_differences": list(env_diff),
        "machine_speed_notes": machine_speed_notes(base.meta, cand.meta),
        "verdicts": tally(r.verdict for r in rows), "timing": [asdict(r) for r in rows],
        "exact": [{**asdict(e), "relative": e.relative} for e in exact],
        "regressed": regressed(rows, exact, gate),
    }
