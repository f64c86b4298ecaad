"""The harness's view of the zoo: resolving names and patterns, parsing batch sizes and input shapes."""

from __future__ import annotations

import functools
import importlib
import os
from typing import Any

import classic_cnns
from classic_cnns import ModelEntry

from .errors import BadValue, UnknownModel

InputShape = tuple[int, ...]


@functools.lru_cache(maxsize=None)
def load_plugins() -> tuple[str, ...]:
    """Import the modules named in ``CNNBENCH_PLUGINS`` (comma-separated), which register more models.

    Workers inherit the variable, so a plugin's models can be measured in isolation too.
    """
    names = tuple(n.strip() for n in os.environ.get("CNNBENCH_PLUGINS", "").split(",") if n.strip())
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise BadValue(f"cannot import plugin {name!r} from CNNBENCH_PLUGINS: {exc}") from None
    return names


def resolve(name: str) -> ModelEntry:
    load_plugins()
    try:
        return classic_cnns.get_entry(name)
    except classic_cnns.UnknownModelError as exc:
        raise UnknownModel(str(exc)) from None


def select(pattern: str) -> list[str]:
    load_plugins()
    names = classic_cnns.list_models(pattern)
    if not names and not any(ch in pattern for ch in "*?[,"):
        resolve(pattern)  # a plain name: fail with the closest names
    if not names:
        raise UnknownModel(f"no model matches {pattern!r} (patterns are shell-style: 'vgg*', 'tv.res*')")
    return names


def parse_batch_size(value: Any) -> int:
    """A positive integer, from an int or its decimal text."""
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() or int(text) < 1:
        raise BadValue(f"batch size must be a positive integer, got {value!r}")
    return int(text)


def parse_input_size(value: str) -> InputShape:
    """``C,H,W`` (or ``CxHxW``) of positive integers, without the batch."""
    parts = [p.strip() for p in str(value).replace("x", ",").split(",")]
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise BadValue(f"input size must be three positive integers C,H,W (e.g. 3,224,224), got {value!r}")
    return tuple(int(p) for p in parts)
