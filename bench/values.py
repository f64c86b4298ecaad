"""Every value a user types, checked once at the boundary: one rule per kind, one BadValue line when it is broken.

The same functions serve the CLI (as argparse ``type=``, so a bad option fails
before any work starts), suite files and the case axes. ``what`` names the value
in the message, e.g. ``positive_int("0", "batch size")`` ->
"batch size must be a positive integer, got '0'".
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from pathlib import Path
from typing import Any, Callable, Sequence

from .errors import BadValue, Unavailable, cannot

InputShape = tuple[int, ...]
_DIGITS = re.compile(r"[0-9]+")  # ASCII only: str.isdigit() accepts '²' and '١', which int() refuses or misreads
_MAX_INT = 2**31 - 1  # beyond any batch, thread count or image side a machine can hold


def positive_int(value: Any, what: str = "value", plural: bool = False) -> int:
    """A positive integer from an int or its decimal text (no sign, no fraction, no bool)."""
    text = str(value).strip()
    if isinstance(value, bool) or not _DIGITS.fullmatch(text) or not 1 <= int(text) <= _MAX_INT:
        rule = "must be positive integers" if plural else "must be a positive integer"
        raise BadValue(f"{what} {rule}, got {value!r}")
    return int(text)


def positive_int_at_most(value: Any, what: str, limit: int) -> int:
    """A positive integer no larger than ``limit``."""
    number = positive_int(value, what)
    if number > limit:
        raise BadValue(f"{what} must be at most {limit}, got {value!r}")
    return number


_DECIMAL = re.compile(r"\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*")  # float() also takes
# '1_000', 'inf' and other scripts' digits ('١٢'): a number typed is ASCII decimal notation, nothing else


def _number(value: Any) -> float:
    """A number, or its ASCII decimal text, as a float; NaN for anything else (a bool, other text)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return math.nan
    if isinstance(value, str) and not _DECIMAL.fullmatch(value):
        return math.nan
    try:
        return float(value)
    except OverflowError:  # an integer beyond any float
        return math.inf


def positive_float(value: Any, what: str = "value") -> float:
    """A finite number above zero, from a number or its ASCII text."""
    number = _number(value)
    if not (number > 0 and math.isfinite(number)):
        raise BadValue(f"{what} must be a positive number, got {value!r}")
    return number


MAX_SECONDS = 7 * 24 * 3600.0  # a week: beyond any time limit a benchmark needs, within what timers and sleep() accept


def seconds(value: Any, what: str = "value") -> float:
    """A duration: a positive number of seconds up to a week (``1e10`` would overflow a timer after the run starts)."""
    number = positive_float(value, what)
    if number > MAX_SECONDS:
        raise BadValue(f"{what} must be at most {MAX_SECONDS:.0f} s (a week), got {value!r}")
    return number


def fraction(value: Any, what: str = "value", most: float = 1.0, meaning: str = "a number") -> float:
    """A number above 0 and at most ``most``: a threshold that cannot switch the gate off (``--threshold 1e9``),
    a significance level that means something (``--alpha`` at most 0.5)."""
    number = positive_float(value, what)
    if number > most:
        raise BadValue(f"{what} must be {meaning} above 0 and at most {most:g}, got {value!r}")
    return number


def non_negative_float(value: Any, what: str = "value", meaning: str = "") -> float:
    """A finite number at or above zero, from a number or its ASCII text."""
    number = _number(value)
    if not (number >= 0 and math.isfinite(number)):
        raise BadValue(f"{what} must be a number >= 0{f' ({meaning})' if meaning else ''}, got {value!r}")
    return number


def one_of(value: Any, allowed: Sequence[str], what: str) -> str:
    if value not in allowed:
        raise BadValue(f"{what} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def device(value: Any, kinds: Sequence[str] = ("cpu", "cuda")) -> str:
    """A device: a kind ("cpu", "cuda") or one GPU by its index ("cuda:1"). "cuda:0" is "cuda", the first
    visible GPU, so that a case has one key whichever way it was asked for; the host takes no index."""
    text = str(value).strip()
    kind, colon, index = text.partition(":")
    if kind in kinds and not colon:
        return kind
    if kind in kinds and kind != "cpu" and _DIGITS.fullmatch(index) and int(index) < 4096:
        return kind if int(index) == 0 else f"{kind}:{int(index)}"
    accel = [k for k in kinds if k != "cpu"]
    raise BadValue(f"device must be one of {', '.join(kinds)}, or {'/'.join(accel)}:N for one GPU by its index "
                   f"(e.g. {accel[0]}:1), got {value!r}")


def batch_size(value: Any) -> int:
    return positive_int(value, "batch size")


def input_size(value: Any) -> InputShape:
    """``C,H,W`` (or ``CxHxW``, or a list of three) of positive integers, without the batch."""
    text = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
    parts = [p.strip() for p in text.replace("x", ",").split(",")]
    if len(parts) != 3 or not all(_DIGITS.fullmatch(p) and 0 < int(p) <= _MAX_INT for p in parts):
        raise BadValue(f"input size must be three positive integers C,H,W (e.g. 3,224,224), got {value!r}")
    return tuple(int(p) for p in parts)


_UNITS = {"": 1, "b": 1, "k": 1e3, "kb": 1e3, "kib": 2**10, "m": 1e6, "mb": 1e6, "mib": 2**20,
          "g": 1e9, "gb": 1e9, "gib": 2**30}


def byte_size(text: Any) -> int:
    """A memory size: a positive number with an optional unit (512MiB, 2GiB, 1.5GB)."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", str(text))
    number = float(match.group(1)) * _UNITS[match.group(2).lower()] if match and match.group(2).lower() in _UNITS else 0
    if not 1 <= number <= 2**62:
        raise BadValue(f"memory size must be at least 1 byte: a number with an optional unit (512MiB, 2GiB), "
                       f"got {text!r}")
    return int(number)


def file_stem(value: Any, what: str = "name") -> str:
    """A name that becomes one file name as it is: letters, digits, '.', '_' or '-', starting with a letter or digit."""
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}", value):
        raise BadValue(f"{what} must be letters, digits, '.', '_' or '-' (starting with a letter or digit), "
                       f"got {value!r}")
    return value


def chosen_run_id(value: Any) -> str:
    """A run id a user chooses (``--run-id``): a file stem of at most 64 characters, the store's id column."""
    text = file_stem(value, "--run-id")
    if len(text) > 64:
        raise BadValue(f"--run-id must be at most 64 characters, got {len(text)}: {value!r}")
    return text


def shard(value: Any) -> "Shard":
    """``K/N`` (``--shard``): the K-th of N shards, 1 <= K <= N <= MAX_SHARDS."""
    from .shards import MAX_SHARDS, Shard

    match = re.fullmatch(r"\s*([0-9]+)/([0-9]+)\s*", str(value))
    if match and 1 <= int(match.group(1)) <= int(match.group(2)) <= MAX_SHARDS:
        return Shard(int(match.group(1)), int(match.group(2)))
    raise BadValue(f"--shard must be K/N with 1 <= K <= N <= {MAX_SHARDS} (e.g. 1/2), got {value!r}")


_TYPES: dict[str, Callable[[Any], bool]] = {
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "bool": lambda v: isinstance(v, bool),
    "dict": lambda v: isinstance(v, dict),
}


def of_type(value: Any, annotation: str, what: str) -> Any:
    """A value read from a file (JSON, TOML) checked against a dataclass field's annotation: ``int``, ``float``,
    ``str``, ``bool``, ``Optional[...]`` of one, or ``tuple[int, ...]`` (a list in the file, a tuple returned)."""
    kind = annotation.removeprefix("Optional[").removesuffix("]") if annotation.startswith("Optional[") else annotation
    if value is None and kind != annotation:
        return None
    if kind.startswith("tuple[") and isinstance(value, (list, tuple)):
        item = kind[len("tuple["):].split(",")[0]
        if all(_TYPES[item](v) for v in value):
            return tuple(value)
    elif kind in _TYPES and _TYPES[kind](value):
        return value
    raise BadValue(f"{what} must be {annotation}, got {value!r:.80}")


def checked_fields(cls: type, data: Any, what: str, skip: Sequence[str] = ()) -> dict[str, Any]:
    """A dataclass's fields (but ``skip``) from a table read from a file, each checked with ``of_type``; a required
    field missing or the table not a table is one BadValue line; null is a field's default. Keys that are not
    fields are left out."""
    if not isinstance(data, dict):
        raise BadValue(f"{what} must be a table, got {data!r:.80}")
    out: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        if field.name in skip:
            continue
        if field.name in data and data[field.name] is None and field.default is not dataclasses.MISSING:
            out[field.name] = field.default  # null in the file: the field's default, as older files wrote it
        elif field.name in data:
            out[field.name] = of_type(data[field.name], str(field.type), f"{what}.{field.name}")
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise BadValue(f"{what} lacks its {field.name!r}")
    return out


def text(value: Any, what: str = "value") -> str:
    """A name, a run id, a pattern or a path as typed: one line, not empty (an empty one would fall back to a
    default the user did not ask for)."""
    if not isinstance(value, str) or not value.strip() or "\n" in value or "\x00" in value:
        raise BadValue(f"{what} must be a non-empty line of text, got {value!r}")
    return value


def untyped(value: str) -> str:
    """What argparse checks an option without a ``type=`` with: ``text``, failing as argparse expects, so that
    its one line names the option ("argument --out: the value must be a non-empty line of text, got ''")."""
    import argparse

    try:
        return text(value, "the value")
    except BadValue as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def store_location(value: Any) -> str:
    """``--store``: an SQLite file (not a folder) or a SQLAlchemy URL; a URL's kind and driver are checked where the
    store is opened (``bench.store``: one line naming the extra a driver comes with, the password never shown),
    which every command does before any work."""
    location = text(value, "--store")
    if "://" not in location or location.startswith("sqlite:///"):
        path = location.removeprefix("sqlite:///")
        if not path or os.path.isdir(path):
            raise BadValue(f"--store must name an SQLite file or a SQLAlchemy URL, got {value!r}"
                           + (", a folder (name a file in it, e.g. cnnbench.db)" if path else ""))
    return location


def writable_folder(folder: "str | os.PathLike[str]", what: str) -> Path:
    """A folder a command will write into, made if missing and tried with a file: one line when it cannot be
    (a file stands there, no permission, a read-only disk), before any work is done for it."""
    path = Path(folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
        (path / ".cnnbench-write-test").write_text("")
        (path / ".cnnbench-write-test").unlink()
    except OSError as exc:
        raise cannot(f"write {what} under {str(path)!r}", exc) from None
    return path


def option(parse: Callable[..., Any], *args: Any) -> Callable[[str], Any]:
    """A parser as argparse ``type=``: ``option(positive_float, "--threshold")``.

    It raises BadValue, which argparse does not catch: ``cli.main`` reports it as
    one line with exit 2, before any command runs.
    """
    def convert(text: str) -> Any:
        return parse(text, *args)

    convert.__name__ = getattr(parse, "__name__", "value")
    return convert
