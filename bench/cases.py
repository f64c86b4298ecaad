"""Cases and suites: what to measure.

A **case** is one point of model x device x batch size x precision x memory
format x mode x compiler x CPU threads (with the input shape, from the
registry unless the suite overrides it). A **suite** is a cartesian product of
axes minus exclusions, written as TOML (a file, or ``[tool.cnnbench]`` in a
pyproject.toml), named built-in, or given as CLI flags.

    [suite]                      # or [tool.cnnbench] in a pyproject.toml
    name = "mine"
    models = ["vgg1*", "alexnet"]
    batch_sizes = [1, 8]
    precisions = ["fp32", "amp-bf16"]
    memory_formats = ["contiguous", "channels_last"]
    exclude = [{ precision = "amp-bf16", memory_format = "channels_last" }]

    [suite.measure]              # the sampling rule, see bench.worker.Settings
    target_ci = 0.02
    max_seconds = 10
"""

from __future__ import annotations

import itertools
import os
import sys
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Optional

from .errors import BadValue
from .models import parse_batch_size, parse_input_size, resolve, select

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEVICES = ("cpu", "cuda")
PRECISIONS = ("fp32", "amp-bf16", "amp-fp16", "bf16", "fp16")
MEMORY_FORMATS = ("contiguous", "channels_last")
MODES = ("infer", "train")
COMPILERS = ("eager", "compile")
SEED_MODELS = ("alexnet", "vgg11", "vgg13", "vgg16", "vgg19", "googlenet")


def weight_dtype(precision: str) -> str:
    """The dtype the model's weights are held in: cast for bf16/fp16, float32 otherwise (AMP casts per op)."""
    return {"bf16": "bfloat16", "fp16": "float16"}.get(precision, "float32")


def all_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@dataclass(frozen=True, order=True)
class Case:
    model: str
    device: str = "cpu"
    batch_size: int = 1
    precision: str = "fp32"
    memory_format: str = "contiguous"
    mode: str = "infer"
    compiler: str = "eager"
    threads: int = 1
    input_shape: tuple[int, ...] = (3, 224, 224)

    @property
    def key(self) -> str:
        """The full identity, stable across runs: what compare matches on."""
        return "|".join([
            self.model, self.device, f"b{self.batch_size}", self.precision, self.memory_format,
            self.mode, self.compiler, f"t{self.threads}", "x".join(map(str, self.input_shape)),
        ])

    @property
    def variant(self) -> str:
        return f"{self.precision}/{self.memory_format}/{self.compiler}"

    @property
    def is_reference(self) -> bool:
        """fp32 contiguous eager: what every other variant's output is checked against."""
        return (self.precision, self.memory_format, self.compiler) == ("fp32", "contiguous", "eager")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Case":
        data = dict(data)
        data["input_shape"] = tuple(data["input_shape"])
        return cls(**data)


@dataclass(frozen=True)
class Measure:
    """The sampling rule of a suite; see ``bench.worker`` for how it is applied."""

    target_ci: float = 0.02  # half-width of the median's 95% CI, relative to the median
    min_samples: int = 10
    max_samples: int = 2000
    max_seconds: float = 10.0  # time cap on sampling, per case
    warmup_seconds: float = 3.0  # cap on the warm-up, per case
    timeout_s: float = 600.0  # the worker's whole time limit, build and checks included


AXES = {
    "models": None,
    "devices": DEVICES,
    "batch_sizes": None,
    "precisions": PRECISIONS,
    "memory_formats": MEMORY_FORMATS,
    "modes": MODES,
    "compilers": COMPILERS,
    "threads": None,
}
# exclusion keys are the singular case fields
_EXCLUDE_KEYS = {"model", "device", "batch_size", "precision", "memory_format", "mode", "compiler", "threads"}


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
    input_shape: Optional[tuple[int, ...]] = None
    exclude: tuple[tuple[tuple[str, Any], ...], ...] = ()
    measure: Measure = field(default_factory=Measure)

    def cases(self) -> list[Case]:
        """The product of the axes minus the exclusions, models in pattern order."""
        names: list[str] = []
        for pattern in self.models:
            names += [n for n in select(pattern) if n not in names]
        threads = self.threads or (all_cores(),)
        cases = []
        for model, device, batch, precision, fmt, mode, compiler, n_threads in itertools.product(
            names, self.devices, self.batch_sizes, self.precisions, self.memory_formats,
            self.modes, self.compilers, threads,
        ):
            case = Case(model, device, batch, precision, fmt, mode, compiler, n_threads,
                        self.input_shape or resolve(model).input_shape)
            if not any(_matches(case, rule) for rule in self.exclude):
                cases.append(case)
        if not cases:
            raise BadValue(f"suite {self.name!r} has no cases: the product of its axes is empty after exclusions")
        return cases

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["exclude"] = [dict(rule) for rule in self.exclude]
        return data


def _matches(case: Case, rule: tuple[tuple[str, Any], ...]) -> bool:
    for key, value in rule:
        allowed = value if isinstance(value, (list, tuple)) else (value,)
        if getattr(case, key) not in allowed:
            return False
    return True


def _axis(name: str, values: Any) -> tuple[Any, ...]:
    if isinstance(values, (str, int)):
        values = [values]
    if not isinstance(values, (list, tuple)) or not values:
        raise BadValue(f"suite axis {name!r} must be a non-empty list, got {values!r}")
    allowed = AXES[name]
    if name == "batch_sizes":
        return tuple(parse_batch_size(v) for v in values)
    if name == "threads":
        out = []
        for v in values:
            if isinstance(v, bool) or not str(v).strip().isdigit() or int(v) < 1:
                raise BadValue(f"threads must be positive integers, got {v!r}")
            out.append(int(v))
        return tuple(out)
    if name == "models":
        for v in values:
            select(str(v))  # an unknown model or an empty pattern fails here, with close names
        return tuple(str(v) for v in values)
    for v in values:
        if v not in allowed:
            raise BadValue(f"suite axis {name!r} takes {', '.join(allowed)}; got {v!r}")
    return tuple(values)


def suite_from_dict(data: dict[str, Any], *, name: str) -> Suite:
    """Validate a suite table (TOML-shaped) and build the Suite; every error names the bad key or value."""
    if not isinstance(data, dict):
        raise BadValue(f"a suite must be a table, got {data!r}")
    known = set(AXES) | {"name", "input_size", "exclude", "measure"}
    for key in data:
        if key not in known:
            raise BadValue(f"unknown suite key {key!r}; allowed: {', '.join(sorted(known))}")
    if "models" not in data:
        raise BadValue(f"suite {name!r} names no models (add models = [\"vgg16\", ...])")
    kwargs: dict[str, Any] = {k: _axis(k, v) for k, v in data.items() if k in AXES}
    if "input_size" in data:
        size = data["input_size"]
        kwargs["input_shape"] = parse_input_size(",".join(map(str, size)) if isinstance(size, list) else size)
    rules = data.get("exclude", [])
    if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
        raise BadValue(f"exclude must be a list of tables like {{ precision = \"amp-bf16\" }}, got {rules!r}")
    for rule in rules:
        for key in rule:
            if key not in _EXCLUDE_KEYS:
                raise BadValue(f"unknown exclude key {key!r}; allowed: {', '.join(sorted(_EXCLUDE_KEYS))}")
    kwargs["exclude"] = tuple(tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in r.items()))
                              for r in rules)
    measure = data.get("measure", {})
    allowed_measure = {f.name: f.type for f in fields(Measure)}
    for key, value in measure.items():
        if key not in allowed_measure:
            raise BadValue(f"unknown measure key {key!r}; allowed: {', '.join(allowed_measure)}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise BadValue(f"measure.{key} must be a positive number, got {value!r}")
    kwargs["measure"] = Measure(**measure)
    return Suite(name=str(data.get("name", name)), **kwargs)


def load_toml(path: str) -> Suite:
    file = Path(path)
    try:
        doc = tomllib.loads(file.read_text())
    except OSError as exc:
        raise BadValue(f"cannot read suite file {path!r}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise BadValue(f"suite file {path!r} is not valid TOML: {exc}") from None
    if "tool" in doc:
        table = doc["tool"].get("cnnbench")
        if table is None:
            raise BadValue(f"{path!r} has no [tool.cnnbench] table")
        return suite_from_dict(table, name=file.stem)
    if "suite" in doc:
        return suite_from_dict(doc["suite"], name=file.stem)
    return suite_from_dict(doc, name=file.stem)


BUILTIN: dict[str, dict[str, Any]] = {
    # every seed model on the CPU, small batches: the default, under 10 minutes on 2 cores
    "quick": {
        "models": list(SEED_MODELS), "batch_sizes": [1, 2], "precisions": ["fp32", "amp-bf16"],
        "memory_formats": ["contiguous", "channels_last"],
        "measure": {"max_seconds": 4.0, "warmup_seconds": 1.5},
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


def resolve_suite(spec: Optional[str]) -> Suite:
    """A built-in name, a TOML file, or a pyproject.toml with [tool.cnnbench]; None is ``quick``."""
    spec = spec or "quick"
    if spec in BUILTIN:
        return suite_from_dict(BUILTIN[spec], name=spec)
    if Path(spec).suffix == ".toml" or Path(spec).exists():
        return load_toml(spec)
    raise BadValue(f"unknown suite {spec!r}: give a built-in ({', '.join(BUILTIN)}) or a .toml file")


def override(suite: Suite, **axes: Optional[str]) -> Suite:
    """Apply CLI flags (comma-separated text) over a suite's axes."""
    changes: dict[str, Any] = {}
    for name, text in axes.items():
        if text is None:
            continue
        if name == "input_size":
            changes["input_shape"] = parse_input_size(text)
            continue
        values = [v.strip() for v in text.split(",") if v.strip()]
        changes[name] = _axis(name, values)
    if not changes:
        return suite
    return replace(suite, name=suite.name if suite.name.endswith("+flags") else f"{suite.name}+flags", **changes)
