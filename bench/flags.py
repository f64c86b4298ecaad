"""The command line's shared option groups, derived from the facts they expose (``bench.cases.CASE_AXES``,
``bench.table.FORMATS``, the values of ``bench.values``), and a parser whose usage error is one line."""

from __future__ import annotations

import argparse
import sys
from typing import Any, NoReturn, Sequence

from . import escape
from .allocator import ALLOCATORS, DEFAULT_ALLOCATOR
from .cases import AXES, CASE_AXES, GROUPINGS, ISOLATIONS
from .processes import checkout
from .table import FORMATS
from .values import byte_size, fraction, one_of, option, seconds, store_location, untyped


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit status 2, and an option without a type is a non-empty line."""

    def add_argument(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("action", "store") in ("store", "append"):
            kwargs.setdefault("type", untyped)
        return super().add_argument(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        print(f"error: {escape.terminal(message)} (see '{self.prog} --help')", file=sys.stderr)
        sys.exit(2)


def dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def formats(p: argparse.ArgumentParser, allowed: Sequence[str] = FORMATS, default: str = "table") -> None:
    p.add_argument("--format", default=default, type=option(one_of, allowed, "format"),
                   help=f"{', '.join(allowed)} (default: {default})")


def store_flag(p: argparse.ArgumentParser, *allowed: str) -> None:
    """--store, and --format with ``allowed`` (the first the default) when given."""
    p.add_argument("--store", type=store_location,
                   help="results store: an SQLite path or a SQLAlchemy URL (default: results/cnnbench.db)")
    if allowed:
        formats(p, allowed, allowed[0])


def case_flags(p: argparse.ArgumentParser) -> None:
    for axis in CASE_AXES:
        choices = " or ".join(axis.choices) if axis.choices else axis.help
        p.add_argument(axis.case_flag, type=axis.checked, help=f"{choices} (default: {axis.default})")


def threshold_flags(p: argparse.ArgumentParser, test: str) -> None:
    p.add_argument("--threshold", default="0.10", type=option(fraction, "--threshold", 1.0, "a relative change"),
                   help="relative change of the median that matters, at most 1 (default 0.10)")
    p.add_argument("--alpha", default="0.01", type=option(fraction, "--alpha", 0.5, "a probability"),
                   help=f"significance level of the {test} (default 0.01)")


def src_flags(p: argparse.ArgumentParser, base: str, cand: str, default: str) -> None:
    """--baseline-src / --candidate-src: checkouts whose code measures each side of an interleaved A/B."""
    for flag, side in (("--baseline-src", base), ("--candidate-src", cand)):
        p.add_argument(flag, metavar="DIR", type=checkout, help=f"a checkout of {side} code{default}")


def backend_flags(p: argparse.ArgumentParser) -> None:
    """--tf32, --cudnn-benchmark and --allocator: the flags a run's workers (and ``env``'s report of them) use."""
    p.add_argument("--tf32", action="store_true", help="allow TF32 on CUDA (off by default)")
    p.add_argument("--cudnn-benchmark", action="store_true", help="set torch.backends.cudnn.benchmark")
    p.add_argument("--allocator", default=DEFAULT_ALLOCATOR, type=option(one_of, ALLOCATORS, "--allocator"),
                   help="host memory a step frees: keep (default: it stays with the worker, no page faults in "
                        "steady state) or system (glibc's own thresholds)")


def suite_flags(p: argparse.ArgumentParser) -> None:
    """What a run measures and how: the suite and its axes, the sampling limits, the grouping, the workers'
    isolation, limits and backend flags, instruction counts and profiles. ``run`` takes them, and ``submit``
    passes them on to every shard's ``run`` as they were typed."""
    p.add_argument("--suite", help="built-in suite (quick, cpu-full, gpu, ci) or a TOML file (default: quick, "
                                   "or [tool.cnnbench] of ./pyproject.toml)")
    for axis in AXES:
        p.add_argument(axis.run_flag, type=axis.checked, help=f"{axis.help} (default: the suite's)")
    p.add_argument("--max-seconds", type=option(seconds, "--max-seconds"), help="time cap on sampling a case, s")
    p.add_argument("--timeout", type=option(seconds, "--timeout"), help="a worker's whole limit, s (default 600)")
    p.add_argument("--group", type=option(one_of, tuple(GROUPINGS), "--group"), help="interleave: variant, model, none")
    p.add_argument("--isolation", default="process", type=option(one_of, ISOLATIONS, "--isolation"),
                   help="process (default: a worker per case) or none")
    p.add_argument("--oom-retry", action="store_true", help="after an oom, retry at half the batch (each its own row)")
    p.add_argument("--worker-memory-limit", type=byte_size, help="address space a worker may add after start-up: 2GiB")
    backend_flags(p)
    p.add_argument("--instructions", nargs="?", const="*", metavar="PATTERN",
                   help="also count instructions per iteration with Valgrind's callgrind, for the models matching "
                        "PATTERN (default: all); CPU and eager only, about 50 s a case")
    p.add_argument("--profile", action="store_true", help="after measuring each case, profile it (see 'cnnbench profile')")
    p.add_argument("--profile-dir", default="results/profiles", help="trace root for --profile (default: results/profiles)")
