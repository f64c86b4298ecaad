"""The harness's view of the model zoo (``classic_cnns``): names and patterns resolved, plugins loaded."""

from __future__ import annotations

import contextlib
import functools
import importlib
import os

import classic_cnns
from classic_cnns import ModelEntry

from .errors import Unavailable, UnknownModel, first_line


@functools.lru_cache(maxsize=None)
def load_plugins() -> tuple[str, ...]:
    """Import the modules named in ``CNNBENCH_PLUGINS`` (comma-separated), which register more models.

    Workers inherit the variable, so a plugin's models can be measured in isolation too.
    """
    names = tuple(n.strip() for n in os.environ.get("CNNBENCH_PLUGINS", "").split(",") if n.strip())
    for name in names:
        try:
            importlib.import_module(name)
        except (Exception, SystemExit) as exc:  # ImportError, a plugin that raises, does not compile or exits
            raise Unavailable(f"cannot import plugin {name!r} from CNNBENCH_PLUGINS: {first_line(exc)}") from None
    return names


def resolve(name: str) -> ModelEntry:
    load_plugins()
    try:
        return classic_cnns.get_entry(name)
    except classic_cnns.UnknownModelError as exc:
        raise UnknownModel(str(exc)) from None


def select(pattern: str) -> list[str]:
    load_plugins()
    with contextlib.suppress(classic_cnns.UnknownModelError):  # a registered name as it is, '[' or ',' in it too
        return [classic_cnns.get_entry(pattern).name]
    names = classic_cnns.list_models(pattern)
    if not names and not any(ch in pattern for ch in "*?[,"):
        resolve(pattern)  # a plain name: fail with the closest names
    if not names:
        raise UnknownModel(f"no model matches {pattern!r} (patterns are shell-style: 'vgg*', 'tv.res*')")
    return names
