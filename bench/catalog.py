"""The model catalogue ``cnnbench list`` prints, served from a cache of the static analysis.

A row is a model's name, family, source, registered input shape, params and
MACs of one image (batch 1, float32, inference), as ``bench.analysis`` counts them.

Cache: ``catalog-<fingerprint>.json`` under ``$CNNBENCH_CACHE_DIR`` (default
``$XDG_CACHE_HOME/cnnbench``, else ``~/.cache/cnnbench``; set it empty to turn
the cache off). The fingerprint covers everything that changes the figures or
the list of names: the installed torch and torchvision versions, the size and
modification time of every source file of ``classic_cnns`` and of the
analysis code, and ``CNNBENCH_PLUGINS`` with its modules' files (a package's
every file). Plugins are imported on every call, so one that no longer imports
fails the same warm or cold. A warm cache without plugins answers without
importing torch (the registry, the models and the analysis are loaded only for
what is missing); a folder that cannot be written is no error,
the rows are then computed each time. Writes are atomic (a temporary file
renamed over the old), so two ``list`` at once never read half a file.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Optional

_BENCH = Path(__file__).resolve().parent
_ANALYSIS_SOURCES = ("analysis.py", "precision.py", "zoo.py", "catalog.py")
_KEEP = 8  # cache files kept: one per fingerprint (plugin sets, versions)


def cache_dir() -> Optional[Path]:
    """Where the catalogue is cached; None when ``CNNBENCH_CACHE_DIR`` is set empty."""
    configured = os.environ.get("CNNBENCH_CACHE_DIR")
    if configured is not None:
        return Path(configured) if configured.strip() else None
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cnnbench"


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def _stat(path: Path) -> str:
    try:
        info = path.stat()
    except OSError:
        return f"{path}:absent"
    return f"{path}:{info.st_size}:{info.st_mtime_ns}"


def fingerprint() -> str:
    """A hash of what the rows depend on (see the module docstring)."""
    parts = [f"torch {_version('torch')}", f"torchvision {_version('torchvision')}"]
    spec = importlib.util.find_spec("classic_cnns")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        parts += [_stat(p) for p in sorted(Path(folder).glob("*.py"))]
    parts += [_stat(_BENCH / name) for name in _ANALYSIS_SOURCES]
    plugins = os.environ.get("CNNBENCH_PLUGINS", "")
    parts.append(f"plugins {plugins}")
    for name in (n.strip() for n in plugins.split(",") if n.strip()):
        try:
            found = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            found = None
        if not (found and found.origin):
            parts.append(f"{name}:absent")
        elif found.submodule_search_locations:  # a package: every source file under it, submodules included
            for folder in found.submodule_search_locations:
                parts += [_stat(p) for p in sorted(Path(folder).rglob("*.py"))]
        else:
            parts.append(_stat(Path(found.origin)))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


_ROW_KEYS = {"model": str, "family": str, "source": str, "input_shape": list, "params": int, "macs": int,
             "gmacs": (int, float)}


def _well_formed(doc: Any) -> bool:
    """A cache file of the shape ``_write`` leaves; anything else (edited, truncated, foreign) is a miss."""
    if not isinstance(doc, dict) or not isinstance(doc.get("rows"), dict):
        return False
    names = doc.get("names", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return False
    return all(isinstance(row, dict) and all(isinstance(row.get(k), kind) for k, kind in _ROW_KEYS.items())
               for row in doc["rows"].values())


def _read(path: Optional[Path]) -> dict[str, Any]:
    if path is None:
        return {}
    with contextlib.suppress(OSError, ValueError):
        doc = json.loads(path.read_text(encoding="utf-8"))
        if _well_formed(doc):
            return doc
    return {}


def _write(path: Optional[Path], doc: dict[str, Any]) -> None:
    """Atomically, and silently not at all where the folder cannot be written: the cache only saves time."""
    if path is None:
        return
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".catalog-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(doc, fh)
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        for old in sorted(path.parent.glob("catalog-*.json"), key=lambda p: p.stat().st_mtime)[:-_KEEP]:
            old.unlink()


def _matching(names: list[str], pattern: str) -> list[str]:
    """``classic_cnns.list_models``'s rule: comma-separated shell patterns, OR-ed, in name order."""
    patterns = [p.strip() for p in pattern.split(",") if p.strip()] or ["*"]
    return sorted(n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns))


def _row(name: str) -> dict[str, Any]:
    from .analysis import analyse
    from .zoo import resolve

    entry = resolve(name)
    a = analyse(name, training=False)
    return {"model": name, "family": entry.family, "source": entry.source, "input_shape": list(entry.input_shape),
            "params": a.params, "macs": a.macs, "gmacs": round(a.macs / 1e9, 3)}


def list_rows(pattern: str = "*") -> list[dict[str, Any]]:
    """One row per registered model matching ``pattern``, in name order (see the module docstring)."""
    if os.environ.get("CNNBENCH_PLUGINS", "").strip():  # a plugin that no longer imports fails warm as cold
        from .zoo import load_plugins

        load_plugins()
    folder = cache_dir()
    path = folder / f"catalog-{fingerprint()}.json" if folder is not None else None
    doc = _read(path)
    names = _matching(doc.get("names") or [], pattern)
    if not names:  # a cold cache, or nothing matches: the registry decides, and names close matches
        from .zoo import select

        names = select(pattern)
        doc["names"] = select("*")
    rows = doc.setdefault("rows", {})
    missing = [name for name in names if name not in rows]
    for name in missing:
        rows[name] = _row(name)
    if missing or "names" not in doc:
        _write(path, doc)
    return [{**rows[name], "input_shape": tuple(rows[name]["input_shape"])} for name in names]
