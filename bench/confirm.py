"""``compare --confirm``: settle the doubtful timing verdicts of a comparison by measuring again.

A first pass (``bench.compare.compare_runs``) compares samples taken at
different times; on a shared machine the CPU's speed drifts by more than the
threshold between them, so it both cries wolf and misses. Confirmation:

    which cases   "doubtful" (the default): verdict slower or inconclusive, or a
                  ratio above 1 + threshold/2 (a real regression at the threshold
                  can show at half of it after a slow spell on the baseline's side);
                  "all": every matched case.
    both sides    runnable (see below): an interleaved A/B (``bench.ab``) decides
                  the verdict on its own paired rounds: slower if ratio > 1 +
                  threshold and sign-test p < alpha and every pair of worker
                  processes on its own saw a ratio above 1 + threshold/2 (an
                  effect one pair of processes carries alone is a property of
                  those processes, not of the code), faster likewise,
                  otherwise unchanged; inconclusive if a side fails.
    candidate     only runnable: the candidate is measured again alone and a
                  ``slower`` verdict is kept only if it reproduces against the
                  stored baseline samples; other verdicts stand.
    neither       the verdict stands, with the reason it was not re-measured.

A side is runnable when a checkout of its code is given (``--baseline-src``,
``--candidate-src``), or when its run recorded this checkout's git commit and
neither that run nor this tree was dirty: its code is what is here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, Optional, Sequence

from . import environment, processes
from .ab import Arm, interleave
from .cases import Case, Measure
from .compare import CONFIRM_MODES, CaseComparison, Side, Thresholds, compare_samples, timing_verdict
from .errors import BadValue
from .runner import RunOptions, run_isolated
from .stats import median

@dataclass(frozen=True)
class Runnable:
    ok: bool
    src: Optional[str] = None  # a checkout to run this side's code from; None: this one
    why_not: str = ""


def runnable(side: Side, src: Optional[str], flag: str = "--baseline-src") -> Runnable:
    """Whether this side's code can still be run, and from where; ``flag`` names the option that says where."""
    if src:
        return Runnable(True, src)
    found = _runnable_here(side)
    return found if found.ok else Runnable(False, why_not=f"{found.why_not} ({flag} DIR names a checkout of its code)")


def _runnable_here(side: Side) -> Runnable:
    env = side.meta.get("environment", {}) or {}
    commit, dirty = env.get("git_commit"), env.get("git_dirty")
    here, here_dirty = environment.git_state()
    if not commit:
        return Runnable(False, why_not=f"{side.label} recorded no git commit")
    if commit != here:
        return Runnable(False, why_not=f"{side.label} ran commit {commit[:10]}, this checkout is at "
                                       f"{(here or 'no commit')[:10]}")
    if dirty or here_dirty:
        return Runnable(False, why_not=f"{side.label} or this checkout had uncommitted changes")
    return Runnable(True)


def doubtful(row: CaseComparison, thresholds: Thresholds) -> bool:
    if row.verdict in ("slower", "inconclusive"):
        return True
    return row.verdict in ("unchanged", "faster") and (row.ratio or 0) > 1 + thresholds.threshold / 2


def paired_verdict(key: str, paired, thresholds: Thresholds, before: Optional[CaseComparison] = None) -> CaseComparison:
    """The comparison row an interleaved A/B (``bench.ab.Paired``) gives; ``before``: the first pass, if any."""
    first = "" if before is None else (
        f" (first pass: {before.verdict}" + (f", ratio {before.ratio:.3f})" if before.ratio else ")"))
    if paired.status != "ok":
        failed = f"interleaved measurement failed: {paired.reason}{first}"
        return CaseComparison(key, "inconclusive", reason=failed) if before is None else \
            replace(before, verdict="inconclusive", reason=failed)
    figures = dict(baseline_p50_ms=median(paired.base_ns) / 1e6, candidate_p50_ms=median(paired.cand_ns) / 1e6,
                   ratio=paired.ratio, ratio_ci_low=paired.ratio_ci_low, ratio_ci_high=paired.ratio_ci_high,
                   p_value=paired.p_value)
    pairs = paired.pair_ratios or (paired.ratio,)
    verdict = timing_verdict(paired.ratio, paired.p_value, thresholds, each=pairs)
    each = ", ".join(f"{r:.3f}" for r in pairs)
    return CaseComparison(key, verdict, reason=_join(f"interleaved A/B, {paired.rounds} rounds, "
                                                     f"{len(pairs)} process pairs ({each}){first}", *paired.warnings),
                          **figures)


def confirm(rows: Sequence[CaseComparison], base: Side, cand: Side, thresholds: Thresholds, *, mode: str = "doubtful",
            base_src: Optional[str] = None, cand_src: Optional[str] = None,
            on_case: Callable[[str, int, int], None] = lambda key, i, n: None,
            candidate_case: Callable[[Case], Case] = lambda case: case) -> list[CaseComparison]:
    """The rows with the chosen ones re-measured (see the module docstring).

    ``candidate_case`` maps the candidate's stored case to the one to run: a
    benchmark that stores a variant model under the baseline's key runs the variant.
    """
    if mode not in CONFIRM_MODES:
        raise BadValue(f"--confirm must be one of {', '.join(CONFIRM_MODES)}, got {mode!r}")
    for src in (base_src, cand_src):
        if src:
            processes.checkout(src)
    can_base, can_cand = runnable(base, base_src), runnable(cand, cand_src, "--candidate-src")
    settings = cand.meta.get("settings", {}) or {}
    sampling = Measure.from_dict(settings["measure"]) if "measure" in settings else Measure()
    options = RunOptions.stored(settings.get("options") or {})  # as the candidate was measured
    request_extra = options.worker_flags()
    base_by_key = {r.case.key: r for r in base.results}
    cand_by_key = {r.case.key: r for r in cand.results}
    chosen = {row.key for row in rows if row.verdict not in ("new", "missing") and (mode == "all" or doubtful(row, thresholds))}
    out = []
    measured = 0
    for row in rows:
        if row.key not in chosen:
            out.append(row)
            continue
        on_case(row.key, measured, len(chosen))
        measured += 1
        if not can_cand.ok:
            out.append(replace(row, reason=_join(row.reason, f"not re-measured: {can_cand.why_not}")))
        elif can_base.ok:
            paired = interleave(Arm(base_by_key[row.key].case, can_base.src),
                                Arm(candidate_case(cand_by_key[row.key].case), can_cand.src),
                                replace(sampling, max_seconds=2 * sampling.max_seconds), request_extra=request_extra)
            out.append(paired_verdict(row.key, paired, thresholds, row))
        elif row.verdict == "slower":
            again = run_isolated(candidate_case(cand_by_key[row.key].case), sampling, options)
            second = compare_samples(row.key, base_by_key[row.key].samples_ns, again.samples_ns, thresholds)
            if second.verdict == "slower":
                out.append(replace(row, reason=_join(row.reason, f"confirmed on re-measurement (ratio {second.ratio:.3f}); "
                                                                 f"not interleaved: {can_base.why_not}")))
            else:
                out.append(replace(row, verdict="unchanged", reason=(
                    f"slower did not reproduce on re-measurement (ratio {second.ratio or math.nan:.3f}, "
                    f"{second.verdict}); not interleaved: {can_base.why_not}")))
        else:
            out.append(replace(row, reason=_join(row.reason, f"not re-measured: {can_base.why_not}")))
    return out


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)
