"""Suites: which cases to measure.

A **suite** is a cartesian product of the case axes (``bench.cases.AXES``)
minus exclusions, written as TOML (a file, or ``[tool.cnnbench]`` in a
pyproject.toml), named built-in, or given as CLI flags over either.

    [suite]                      # or [tool.cnnbench] in a pyproject.toml
    name = "mine"
    models = ["vgg1*", "alexnet"]
    batch_sizes = [1, 8]
    precisions = ["fp32", "amp-bf16"]
    memory_formats = ["contiguous", "channels_last"]
    exclude = [{ precision = "amp-bf16", memory_format = "channels_last" }]
    group = "variant"            # measured together, interleaved: variant (default), model, or none

    [suite.measure]              # the sampling rule, see bench.cases.Measure
    target_ci = 0.02
    max_seconds = 10
"""

from __future__ import annotations

import itertools
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

from .cases import (AXES, CASE_AXES, DEVICE_THREADS, DEVICES, EXCLUDE_KEYS, GROUPINGS, Case, Measure, all_cores,
                    device_covers)
from .errors import BadValue
from .values import device, one_of
from .zoo import resolve, select

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SEED_MODELS = ("alexnet", "vgg11", "vgg13", "vgg16", "vgg19", "googlenet")
_PRODUCT = tuple(axis for axis in AXES if axis.product)
_BY_SUITE_KEY = {axis.suite_key: axis for axis in AXES}
_BY_FIELD = {axis.field: axis for axis in AXES}


@dataclass(frozen=True)
class Suite:
    name: str
    models: tuple[str, ...]
    devices: tuple[str, ...] = ("cpu",)
    batch_sizes: tuple[int, ...] = (1,)
    precisions: tuple[str, ...] = ("fp32",)
    memory_formats: tuple[str, ...] = ("contiguous",)
    modes: tuple[str, ...] = ("infer",)
    compilers: tuple[str, ...] = ("eager",)
    threads: tuple[int, ...] = ()  # empty: all usable cores
    input_size: Optional[tuple[int, ...]] = None  # None: each model's own
    exclude: tuple[tuple[tuple[str, Any], ...], ...] = ()
    measure: Measure = field(default_factory=Measure)
    group: str = "variant"  # a key of bench.cases.GROUPINGS

    def cases(self) -> list[Case]:
        """The product of the axes minus the exclusions, models in pattern order."""
        names: list[str] = []
        for pattern in self.models:
            names += [n for n in select(pattern) if n not in names]
        axes = {axis.field: getattr(self, axis.suite_key) for axis in _PRODUCT}
        axes["model"], axes["threads"] = names, self.threads or (all_cores(),)
        cases: list[Case] = []
        seen: set[str] = set()
        for point in itertools.product(*axes.values()):
            chosen = dict(zip(axes, point))
            if chosen["device"] != "cpu":  # host threads do not time a GPU: one key whatever the host's cores
                chosen["threads"] = DEVICE_THREADS
            case = Case(**chosen, input_shape=self.input_size or resolve(chosen["model"]).input_shape)
            if case.key not in seen and not any(_matches(case, rule) for rule in self.exclude):
                seen.add(case.key)
                cases.append(case)
        if not cases:
            raise BadValue(f"suite {self.name!r} has no cases: the product of its axes is empty after exclusions")
        return cases

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["input_shape"] = data.pop("input_size")  # the stored spelling, as runs before the axis table wrote it
        data["exclude"] = [dict(rule) for rule in self.exclude]
        return data


def _matches(case: Case, rule: tuple[tuple[str, Any], ...]) -> bool:
    """Whether an exclusion rule covers a case: every key of the rule names one of the case's values (a device
    kind names each of its devices, ``bench.cases.device_covers``)."""
    for key, value in rule:
        allowed = value if isinstance(value, (list, tuple)) else (value,)
        if key == "device":
            if not any(device_covers(v, case.device) for v in allowed):
                return False
        elif getattr(case, key) not in allowed:
            return False
    return True


def _axis(suite_key: str, given: Any) -> Any:
    """The checked values of one axis: a tuple for product axes, one value for the others."""
    axis = _BY_SUITE_KEY[suite_key]
    if not axis.product:
        return axis.parse(given)
    if isinstance(given, (str, int)):
        given = [given]
    if not isinstance(given, (list, tuple)) or not given:
        raise BadValue(f"suite axis {suite_key!r} must be a non-empty list, got {given!r}")
    if axis.field == "model":
        for v in given:
            select(str(v))  # an unknown model or an empty pattern fails here, with close names
        return tuple(str(v) for v in given)
    if axis.parse is not None:
        return tuple(axis.parse(v) for v in given)
    for v in given:
        if v not in axis.choices:
            raise BadValue(f"suite axis {suite_key!r} takes {', '.join(axis.choices)}; got {v!r}")
    return tuple(given)


def _rule_value(key: str, value: Any) -> Any:
    """One value of an exclusion rule, checked as its axis checks it: a rule that can never match (a precision
    misspelt, a device that is none) is refused, not silently kept. A device keeps its spelling: "cuda" (every
    GPU) and "cuda:0" (the first only) mean different rules. Model names are taken as they are."""
    axis = _BY_FIELD[key]
    if key == "device":
        device(value, DEVICES)
        return str(value).strip()
    if axis.parse is not None:
        return axis.parse(value)
    if axis.choices:
        return one_of(value, axis.choices, f"exclude {key}")
    return value


def _exclusions(rules: Any) -> tuple[tuple[tuple[str, Any], ...], ...]:
    if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
        raise BadValue(f"exclude must be a list of tables like {{ precision = \"amp-bf16\" }}, got {rules!r}")
    checked = []
    for rule in rules:
        for key in rule:
            if key not in EXCLUDE_KEYS:
                raise BadValue(f"unknown exclude key {key!r}; allowed: {', '.join(sorted(EXCLUDE_KEYS))}")
        checked.append(tuple(sorted(
            (k, tuple(_rule_value(k, x) for x in v) if isinstance(v, list) else _rule_value(k, v))
            for k, v in rule.items())))
    return tuple(checked)


def suite_from_dict(data: dict[str, Any], *, name: str) -> Suite:
    """Validate a suite table (TOML-shaped) and build the Suite; every error names the bad key or value."""
    if not isinstance(data, dict):
        raise BadValue(f"a suite must be a table, got {data!r}")
    known = set(_BY_SUITE_KEY) | {"name", "exclude", "measure", "group"}
    for key in data:
        if key not in known:
            raise BadValue(f"unknown suite key {key!r}; allowed: {', '.join(sorted(known))}")
    if "models" not in data:
        raise BadValue(f"suite {name!r} names no models (add models = [\"vgg16\", ...])")
    kwargs: dict[str, Any] = {k: _axis(k, v) for k, v in data.items() if k in _BY_SUITE_KEY}
    kwargs["exclude"] = _exclusions(data.get("exclude", []))
    measure = data.get("measure", {})
    if not isinstance(measure, dict):
        raise BadValue(f"measure must be a table like {{ max_seconds = 10 }}, got {measure!r}")
    kwargs["measure"] = Measure.from_dict(measure)
    if "group" in data:
        kwargs["group"] = one_of(data["group"], tuple(GROUPINGS), "group")
    return Suite(name=str(data.get("name", name)), **kwargs)


def load_toml(path: str) -> Suite:
    file = Path(path)
    try:
        doc = tomllib.loads(file.read_text())
    except OSError as exc:
        raise BadValue(f"cannot read suite file {path!r}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise BadValue(f"suite file {path!r} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise BadValue(f"suite file {path!r} is not valid TOML: {exc}") from None
    if "tool" in doc:
        table = doc["tool"].get("cnnbench") if isinstance(doc["tool"], dict) else None
        if table is None:
            raise BadValue(f"{path!r} has no [tool.cnnbench] table")
        return suite_from_dict(table, name=file.stem)
    if "suite" in doc:
        return suite_from_dict(doc["suite"], name=file.stem)
    return suite_from_dict(doc, name=file.stem)


BUILTIN: dict[str, dict[str, Any]] = {
    # every seed model on the CPU, small batches: the default, under 10 minutes on 2 cores (7.9 min on a noisy 2-vCPU
    # VM); 8 s of blocks per case give a VGG variant group (one iteration a block) 21-70 rounds to pair: on a VM whose
    # speed moves from one block to the next every group takes all of it, and 6 s left paired speedups 4-5% wide,
    # repeating within +/-5% for 69-78% of them (89-100% with 8 s: README's known limits). A 0.5 s warm-up after the
    # cold start, at least 2 iterations: a VGG's first eager step took a median 1.0-1.26x its p50 in a quick run, so
    # its warm-up confirms a steady state more than it reaches one. With 1 s, a VGG group's first round was 0.98-1.02x
    # its median (p90 1.11-1.16x); with 0.5 s (3.2 warm-up iterations, 2 of 64 settled) 1.04x (p90 1.39x), one round
    # of 21-70 that the medians shrug off, for about 0.3 s a case
    "quick": {
        "models": list(SEED_MODELS), "batch_sizes": [1, 2], "precisions": ["fp32", "amp-bf16"],
        "memory_formats": ["contiguous", "channels_last"],
        "measure": {"max_seconds": 8.0, "warmup_seconds": 0.5},
    },
    "cpu-full": {
        "models": list(SEED_MODELS) + ["alexnet_paper", "nin", "lenet5"], "batch_sizes": [1, 4, 16, 32],
        "precisions": ["fp32", "amp-bf16"], "memory_formats": ["contiguous", "channels_last"],
        "modes": ["infer", "train"], "compilers": ["eager", "compile"],
    },
    "gpu": {
        "models": list(SEED_MODELS), "devices": ["cuda"], "batch_sizes": [1, 8, 32, 64, 128, 256],
        "precisions": ["fp32", "amp-fp16", "amp-bf16"], "memory_formats": ["contiguous", "channels_last"],
        "modes": ["infer", "train"], "compilers": ["eager", "compile"],
    },
    # small and fast, for the regression gate; one thread, which drifts about half as much as two on a shared VM
    "ci": {
        "models": ["lenet5", "alexnet", "googlenet"], "batch_sizes": [1], "precisions": ["fp32"], "threads": [1],
        "measure": {"max_seconds": 3.0, "warmup_seconds": 1.0},
    },
}


def pyproject_suite(folder: Path = Path(".")) -> Optional[str]:
    """``folder``/pyproject.toml when it has a [tool.cnnbench] table: the default suite when no --suite is given."""
    path = folder / "pyproject.toml"
    if path.is_file() and "[tool.cnnbench" in path.read_text(errors="replace"):
        return str(path)
    return None


def resolve_suite(spec: Optional[str]) -> Suite:
    """A built-in name, a TOML file, or a pyproject.toml with [tool.cnnbench]; None is ``quick``."""
    spec = spec or "quick"
    if spec in BUILTIN:
        return suite_from_dict(BUILTIN[spec], name=spec)
    if Path(spec).suffix == ".toml" or Path(spec).exists():
        return load_toml(spec)
    raise BadValue(f"unknown suite {spec!r}: give a built-in ({', '.join(BUILTIN)}) or a .toml file")


def override(suite: Suite, **texts: Optional[str]) -> Suite:
    """Apply CLI flags (comma-separated text, keyed by the suite's axis keys) over a suite's axes."""
    changes: dict[str, Any] = {}
    for suite_key, text in texts.items():
        if text is None:
            continue
        axis = _BY_SUITE_KEY[suite_key]
        changes[suite_key] = _axis(suite_key, text if not axis.product else
                                   [v.strip() for v in text.split(",") if v.strip()])
    if not changes:
        return suite
    return replace(suite, name=suite.name if suite.name.endswith("+flags") else f"{suite.name}+flags", **changes)


def suite_from_flags(spec: Optional[str], texts: dict[str, Optional[str]], *, max_seconds: Optional[float] = None,
                     timeout_s: Optional[float] = None, group: Optional[str] = None) -> Suite:
    """``run``'s suite: ``spec`` (default: [tool.cnnbench] of ./pyproject.toml, else quick) with the axis flags
    (``texts``, keyed by suite key), the grouping and the sampling caps given over it."""
    suite = override(resolve_suite(spec or pyproject_suite()), **texts)
    if group is not None:
        suite = replace(suite, group=group)
    caps = {key: value for key, value in (("max_seconds", max_seconds), ("timeout_s", timeout_s)) if value is not None}
    return replace(suite, measure=replace(suite.measure, **caps)) if caps else suite


def single_case(model: str, texts: dict[str, Optional[str]], command: str) -> Case:
    """The one case that a model and one value per case axis name (``texts`` keyed by Case field)."""
    suite = suite_from_dict({"models": [model]}, name=command)
    suite = override(suite, **{axis.suite_key: texts.get(axis.field) for axis in CASE_AXES})
    cases = suite.cases()
    if len(cases) != 1:
        raise BadValue(f"{command} takes one value per axis; these flags give {len(cases)} cases")
    return cases[0]


__all__ = ["Suite", "SEED_MODELS", "BUILTIN", "suite_from_dict", "load_toml", "resolve_suite", "override",
           "single_case", "suite_from_flags", "pyproject_suite"]
