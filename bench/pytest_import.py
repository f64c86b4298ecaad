"""Bringing a pytest-benchmark JSON file (``--benchmark-json`` or ``--benchmark-autosave``) into the store.

Each benchmark becomes a row: its case from ``extra_info`` when it was measured
with the ``cnnbench_case`` fixture, else a case named after the test; its raw
samples when pytest-benchmark kept them (``--benchmark-save-data``), else the row
says that only summary statistics exist.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from .cases import Case
from .errors import BadValue
from .runfile import read_json
from .record import Result
from .store import Store
from .values import of_type, text


def import_file(open_store: Callable[[], Store], path: str) -> str:
    """Read ``path`` whole, then open the store (``open_store``) and add it as one run: a file that cannot be
    imported leaves the store as it was, or uncreated."""
    doc = read_json(path, "pytest-benchmark file")
    if not isinstance(doc, dict) or not isinstance(doc.get("benchmarks"), list) or \
            not isinstance(doc.get("machine_info"), dict) or not isinstance(doc.get("commit_info") or {}, dict):
        raise BadValue(f"{path!r} is not a pytest-benchmark JSON file (no machine_info and benchmarks tables)")
    machine, commit = doc["machine_info"], doc.get("commit_info") or {}
    environment = {
        "hostname": machine.get("node"), "cpu_model": _table(machine.get("cpu")).get("brand_raw"),
        "python": machine.get("python_version"), "git_commit": commit.get("id"), "git_dirty": commit.get("dirty"),
        "source": f"pytest-benchmark {doc.get('version')}",
    }
    try:
        results = [_result(b, f"benchmarks[{i}]") for i, b in enumerate(doc["benchmarks"])]
    except BadValue as exc:
        raise BadValue(f"pytest-benchmark file {path!r} is malformed: {exc}") from None
    if not results:
        raise BadValue(f"{path!r} holds no benchmarks")
    run_id = "pytest-" + time.strftime("%Y%m%d-%H%M%S") + "-" + Path(path).stem[:24].replace(" ", "_")
    run = {"id": run_id, "suite": "pytest-benchmark", "suite_definition": {"file": str(path)},
           "environment": environment, "calibration": {}, "settings": {}, "started_at": time.time(),
           "finished_at": time.time(), "cases_total": len(results)}
    return open_store().import_run(run, results)


def _table(value: Any, what: str = "") -> dict[str, Any]:
    """A table of the file (null: empty); anything else is BadValue naming ``what`` (or, without one, empty)."""
    if value is None or (not what and not isinstance(value, dict)):
        return {}
    if not isinstance(value, dict):
        raise BadValue(f"{what} must be a table, got {value!r:.80}")
    return value


def _result(bench: Any, what: str) -> Result:
    bench = _table(bench, what)
    extra = _table(bench.get("extra_info"), f"{what}.extra_info")
    if "cnnbench_case" in extra:
        case = Case.from_dict(extra["cnnbench_case"], f"{what}.extra_info.cnnbench_case")
    else:
        name = bench.get("fullname") or bench.get("name")
        case = Case(model=text(name, f"{what}.name"), threads=0, input_shape=(0,))
    data = of_type(_table(bench.get("stats"), f"{what}.stats").get("data") or [], "tuple[float, ...]",
                   f"{what}.stats.data")
    if not all(0 <= s < 1e9 for s in data):  # seconds per round: NaN, inf and negatives are no timings
        raise BadValue(f"{what}.stats.data must hold seconds from 0 to 1e9, got {data!r:.80}")
    samples = tuple(int(round(s * 1e9)) for s in data)
    reason = "" if samples else "pytest-benchmark kept only summary statistics (run it with --benchmark-save-data)"
    return Result(case=case, status="ok", reason=reason,
                  samples_ns=samples, timer="pytest-benchmark",
                  **{key: of_type(extra.get(key), "Optional[int]", f"{what}.extra_info.{key}")
                     for key in ("params", "macs", "activation_bytes", "saved_bytes")})
