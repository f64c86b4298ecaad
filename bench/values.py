"""Every value a user types, checked once at the boundary: one rule per kind, one BadValue line when it is broken.

The same functions serve the CLI (as argparse ``type=``, so a bad option fails
before any work starts), suite files and the case axes. ``what`` names the value
in the message, e.g. ``positive_int("0", "batch size")`` ->
"batch size must be a positive integer, got '0'".
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable, Sequence

from .errors import BadValue

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


def positive_float(value: Any, what: str = "value") -> float:
    """A finite number above zero, from a number or its text."""
    try:
        number = math.nan if isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        number = math.nan
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


def probability(value: Any, what: str = "value") -> float:
    """A number strictly between 0 and 1 (a significance level)."""
    number = positive_float(value, what)
    if number >= 1:
        raise BadValue(f"{what} must be a probability between 0 and 1, got {value!r}")
    return number


def non_negative_float(value: Any, what: str = "value", meaning: str = "") -> float:
    """A finite number at or above zero, from a number or its text."""
    try:
        number = math.nan if isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        number = math.nan
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


def option(parse: Callable[..., Any], *args: Any) -> Callable[[str], Any]:
    """A parser as argparse ``type=``: ``option(positive_float, "--threshold")``.

    It raises BadValue, which argparse does not catch: ``cli.main`` reports it as
    one line with exit 2, before any command runs.
    """
    def convert(text: str) -> Any:
        return parse(text, *args)

    convert.__name__ = getattr(parse, "__name__", "value")
    return convert
