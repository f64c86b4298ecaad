"""Run files: one run (its environment, calibration, cases, figures and raw samples) as versioned JSON.

The format is meant to be committed and diffed (baselines, test fixtures): the
header is indented, each case is one line, sorted by its key.

    {"format": "cnnbench-run", "version": 1,
     "run": {"id": ..., "suite": ..., "environment": {...}, "calibration": {...}, ...},
     "results": [
      {"case": {...}, "status": "ok", "samples_ns": [...], ...},
      ...]}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .compare import Side
from .errors import BadValue, cannot, first_line
from .record import Result
from .store import Store, open_store
from .values import of_type

FORMAT = "cnnbench-run"
VERSION = 1
RUN_FIELDS = {"suite": "str", "environment": "dict", "calibration": "dict", "settings": "dict",
              "suite_definition": "dict", "started_at": "float", "finished_at": "Optional[float]",
              "cases_total": "int"}  # what a run's header holds, where present

def dump(store: Store, run_id: str) -> dict[str, Any]:
    run = store.run(run_id)
    results = sorted(store.results(run_id), key=lambda r: r.case.key)
    return {"format": FORMAT, "version": VERSION, "run": run, "results": [r.to_dict() for r in results]}


def dumps(doc: dict[str, Any]) -> str:
    head = {k: v for k, v in doc.items() if k != "results"}
    text = json.dumps(head, indent=1, sort_keys=True)
    lines = ",\n".join(" " + json.dumps(r, sort_keys=True, separators=(",", ":")) for r in doc["results"])
    return text[:-2] + ',\n "results": [\n' + lines + "\n ]\n}\n"


def write(path: "str | Path", doc: dict[str, Any]) -> Path:
    """Write a run file, creating its folder; a path that cannot be written is one line (``errors.cannot``)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dumps(doc))
    except OSError as exc:
        raise cannot(f"write run file {str(path)!r}", exc) from None
    return path


def read_json(path: "str | Path", what: str) -> Any:
    """A JSON file's content; a missing, unreadable (a folder, not UTF-8) or unparsable file is one BadValue line
    naming it as ``what``."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise cannot(f"read {what} {str(path)!r}", exc) from None
    except UnicodeDecodeError:
        raise BadValue(f"{what} {str(path)!r} is not UTF-8 text") from None
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, an integer of 5000 digits, nesting too deep
        raise BadValue(f"{what} {str(path)!r} is not valid JSON: {first_line(exc)}") from None


def read(path: "str | Path") -> dict[str, Any]:
    """Load and validate a run file; every problem is one BadValue line naming the file."""
    name = str(path)
    doc = read_json(path, "run file")
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise BadValue(f"{name!r} is not a cnnbench run file (no \"format\": \"{FORMAT}\")")
    version = doc.get("version")
    if version != VERSION:
        relation = "newer" if isinstance(version, int) and version > VERSION else "older or unknown"
        raise BadValue(f"run file {name!r} has format version {version!r} ({relation}); this cnnbench reads {VERSION}")
    run, results = doc.get("run"), doc.get("results")
    if not isinstance(run, dict) or not isinstance(results, list) or not isinstance(run.get("id"), str) \
            or not run["id"].strip():
        raise BadValue(f"run file {name!r} is malformed: it needs a \"run\" table with an id and a \"results\" list")
    try:
        for key, kind in RUN_FIELDS.items():
            if key in run:
                of_type(run[key], kind, f"run.{key}")
        doc["results_parsed"] = [Result.from_dict(r, f"results[{i}]") for i, r in enumerate(results)]
    except BadValue as exc:
        raise BadValue(f"run file {name!r} is malformed: {exc}") from None
    return doc


def load_side(spec: str, store_location: "str | None") -> Side:
    """One side of a comparison: a run file (a path, or a name ending in .json), else a run id or 'latest'
    in the store at ``store_location``."""
    if spec.endswith(".json") or Path(spec).is_file():
        doc = read(spec)
        return Side(spec, doc["run"], tuple(doc["results_parsed"]))
    store = open_store(store_location, create=False)
    stored = run_id(store, spec)
    return Side(stored, store.run(stored), tuple(store.results(stored)))


def run_id(store: Store, spec: str) -> str:
    """A run id as given, or the store's latest for 'latest'."""
    return store.latest_run_id() if spec == "latest" else spec


def import_into(store: Store, doc: dict[str, Any]) -> str:
    """Put a run file's run into a store under its own id (an id already there is refused)."""
    results = doc.get("results_parsed") or [Result.from_dict(r) for r in doc["results"]]
    return store.import_run(doc["run"], results)
