"""What one case is: the table of case axes, the ``Case`` record and the sampling rule ``Measure``.

A **case** is one point of model x device x batch size x precision x memory
format x mode x compiler x CPU threads, with the input shape (from the registry
unless the suite overrides it). ``AXES`` is the one description of those axes:
the suite's TOML keys and exclusion keys (``bench.suites``), ``run``'s
comma-separated flags and the one-value flags of ``ab`` and ``profile``
(``bench.cli``) are all derived from it, and ``Case``'s fields follow its order
(a test checks it).

Nothing here imports torch or the model zoo: a stored result can be read
without either.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from typing import Any, Callable, Optional

from . import values
from .errors import BadValue
from .precision import PRECISIONS

DEVICES = ("cpu", "cuda")  # the kinds: bench.devices has a class per kind; a GPU is also named by index, cuda:1
MEMORY_FORMATS = ("contiguous", "channels_last")
MODES = ("infer", "train")
# torch.compile's modes, each a compiler of its own (a variant that is interleaved with eager and keyed apart);
# "compile" is the default mode, so the keys of earlier runs still match
COMPILE_MODES = {"compile": "default", "compile-reduce-overhead": "reduce-overhead",
                 "compile-max-autotune": "max-autotune"}
COMPILERS = ("eager", *COMPILE_MODES)


@dataclass(frozen=True)
class Axis:
    """One axis of a case, and every spelling of it."""

    field: str  # the Case field and the exclusion key: "batch_size"
    suite_key: str  # the Suite field and TOML key: "batch_sizes"
    run_flag: str  # run's flag, comma-separated values: "--batch-sizes"
    case_flag: Optional[str]  # the one-value flag of ab and profile (None: given positionally)
    help: str  # what the values are, e.g. "e.g. 1,8,32"
    choices: tuple[str, ...] = ()  # allowed values; empty: ``parse`` checks them
    parse: Optional[Callable[[Any], Any]] = None  # one value, from TOML or text
    default: str = ""  # what a case gets when the flag is not given, in words
    product: bool = True  # a list in a suite (False: one value for every case, like input_size)
    excludable: bool = True  # may appear in a suite's exclude rules

    def checked(self, text: str) -> str:
        """A flag's text as typed (comma-separated for a product axis), every value checked by ``parse`` or
        ``choices`` when the command line is parsed: a bad one fails before the model zoo is even loaded."""
        what = self.field.replace("_", " ")
        values.text(text, what)
        for value in (v.strip() for v in (text.split(",") if self.product else [text])):
            if value and self.parse is not None:
                self.parse(value)
            elif value and self.choices:
                values.one_of(value, self.choices, what)
        return text


AXES: tuple[Axis, ...] = (
    Axis("model", "models", "--models", None, "comma-separated names or shell patterns, e.g. 'vgg1*,alexnet'"),
    Axis("device", "devices", "--devices", "--device", "cpu, cuda (the first visible GPU) or cuda:N (GPU N)",
         parse=lambda v: values.device(v, DEVICES), default="cpu"),
    Axis("batch_size", "batch_sizes", "--batch-sizes", "--batch-size", "e.g. 1,8,32", parse=values.batch_size,
         default="1"),
    Axis("precision", "precisions", "--precision", "--precision", ",".join(PRECISIONS), tuple(PRECISIONS),
         default="fp32"),
    Axis("memory_format", "memory_formats", "--memory-format", "--memory-format", ",".join(MEMORY_FORMATS),
         MEMORY_FORMATS, default="contiguous"),
    Axis("mode", "modes", "--mode", "--mode", ",".join(MODES), MODES, default="infer"),
    Axis("compiler", "compilers", "--compiler", "--compiler",
         "eager, compile (torch.compile's default mode), compile-reduce-overhead (CUDA graphs), compile-max-autotune",
         COMPILERS, default="eager"),
    Axis("threads", "threads", "--threads", "--threads", "CPU threads, e.g. 1,2 (a GPU case's are 1)",
         parse=lambda v: values.positive_int(v, "threads", plural=True), default="all usable cores"),
    Axis("input_shape", "input_size", "--input-size", "--input-size", "C,H,W", parse=values.input_size,
         default="the model's own", product=False, excludable=False),
)
EXCLUDE_KEYS = tuple(axis.field for axis in AXES if axis.excludable)
CASE_AXES = tuple(axis for axis in AXES if axis.case_flag)  # what ab and profile take one value of


# Comparison groups: cases measured together, interleaved (bench.group), because a report compares them.
# Each grouping names the case fields the members of a group share; "none" measures every case alone.
BLOCK_S = 0.05  # a block of sampling, alone or in a group's round: >= 1 iteration and 50 ms (benchmarks/block_bias.py)

ISOLATIONS = ("process", "none")  # a worker process per case, or every case in the runner's process

GROUPINGS: dict[str, Optional[tuple[str, ...]]] = {
    "variant": ("model", "device", "batch_size", "mode", "threads", "input_shape"),  # precision x format x compiler
    "model": ("device", "batch_size", "precision", "memory_format", "mode", "compiler", "threads"),  # the ranking
    "none": None,
}


def group_cases(cases: list[Case], grouping: str) -> list[list[Case]]:
    """The cases in groups that share GROUPINGS[grouping]'s fields, in the order each group first appears."""
    shared = GROUPINGS[grouping]
    if shared is None:
        return [[case] for case in cases]
    groups: dict[tuple, list[Case]] = {}
    for case in cases:
        groups.setdefault(tuple(getattr(case, name) for name in shared), []).append(case)
    return list(groups.values())


def case_change(item: str) -> tuple[str, str]:
    """``ab --vs FLAG=VALUE``: (the Case field, the value's text), e.g. 'memory-format=channels_last'."""
    by_flag = {axis.case_flag.lstrip("-"): axis.field for axis in CASE_AXES}
    name, eq, value = str(item).partition("=")
    flag = name.strip().replace("_", "-")
    if not eq or flag not in by_flag or not value.strip():
        raise BadValue(f"--vs takes FLAG=VALUE with FLAG one of {', '.join(by_flag)}, got {item!r}")
    return by_flag[flag], value.strip()


def device_covers(rule: str, device: str) -> bool:
    """Whether an exclusion rule's device covers a case's device: a kind alone ("cuda") covers every device of
    that kind (cuda, cuda:1, ...); one GPU by its index ("cuda:1", or "cuda:0", which a case spells "cuda") covers
    that GPU only."""
    if ":" in str(rule):
        return values.device(rule, DEVICES) == device
    return device.partition(":")[0] == str(rule).strip()


DEVICE_THREADS = 1  # a GPU case's threads: a label, not a setting (host threads do not time the device)


def usable_cpus() -> list[int]:
    """The CPUs this process may run on (its affinity; where that is unknown, every CPU)."""
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))


def all_cores() -> int:
    return len(usable_cpus())


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
    def compile_mode(self) -> Optional[str]:
        """torch.compile's mode for this case ("default", "reduce-overhead", "max-autotune"), None when eager."""
        return COMPILE_MODES.get(self.compiler)

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
    def from_dict(cls, data: dict[str, Any], what: str = "case") -> "Case":
        """From a run file, a stored run's settings or a request; a field of the wrong type is one BadValue line."""
        unknown = sorted(set(data) - {f.name for f in fields(cls)}) if isinstance(data, dict) else []
        if unknown:
            raise BadValue(f"{what} has unknown fields {', '.join(map(repr, unknown))}")
        return cls(**values.checked_fields(cls, data, what))


@dataclass(frozen=True)
class Measure:
    """The sampling rule of a suite; see ``bench.worker`` for how it is applied."""

    target_ci: float = 0.02  # half-width of the median's 95% CI, relative to the median
    min_samples: int = 10
    max_samples: int = 20000  # iterations (rounds in a group); a 0.1 ms step fills 10 blocks of 50 ms with 5000
    max_seconds: float = 10.0  # time cap on sampling, per case
    warmup_seconds: float = 3.0  # cap on the warm-up, per case
    timeout_s: float = 600.0  # the worker's whole time limit, build and checks included

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Measure":
        """From a suite's ``[measure]`` table or stored run settings; every key and value checked."""
        kinds = {f.name: f.type for f in fields(cls)}
        checked: dict[str, Any] = {}
        for key, value in data.items():
            if key not in kinds:
                raise BadValue(f"unknown measure key {key!r}; allowed: {', '.join(kinds)}")
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise BadValue(f"measure.{key} must be a positive number, got {value!r}")
            if kinds[key] in ("int", int):  # 10.0 (a JSON round trip) is 10; 10.5 is refused
                whole = int(value) if isinstance(value, float) and value.is_integer() else value
                checked[key] = values.positive_int(whole, f"measure.{key}")
            elif key.endswith("seconds") or key.endswith("_s"):
                checked[key] = values.seconds(value, f"measure.{key}")
            else:
                checked[key] = values.positive_float(value, f"measure.{key}")
        return cls(**checked)
