"""Bringing a pytest-benchmark JSON file (``--benchmark-json`` or ``--benchmark-autosave``) into the store.

Each benchmark becomes a row: its case from ``extra_info`` when it was measured
with the ``cnnbench_case`` fixture, else a case named after the test; its raw
samples when pytest-benchmark kept them (``--benchmark-save-data``), else the row
says that only summary statistics exist.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .cases import Case
from .errors import BadValue
from .runfile import read_json
from .record import Result
from .store import Store


def import_file(store: Store, path: str) -> str:
    doc = read_json(path, "pytest-benchmark file")
    if not isinstance(doc, dict) or not isinstance(doc.get("benchmarks"), list) or "machine_info" not in doc:
        raise BadValue(f"{path!r} is not a pytest-benchmark JSON file (no machine_info and benchmarks)")
    machine, commit = doc.get("machine_info", {}), doc.get("commit_info", {})
    environment = {
        "hostname": machine.get("node"), "cpu_model": (machine.get("cpu") or {}).get("brand_raw"),
        "python": machine.get("python_version"), "git_commit": commit.get("id"), "git_dirty": commit.get("dirty"),
        "source": f"pytest-benchmark {doc.get('version')}",
    }
    results = [_result(b) for b in doc["benchmarks"]]
    if not results:
        raise BadValue(f"{path!r} holds no benchmarks")
    run_id = "pytest-" + time.strftime("%Y%m%d-%H%M%S") + "-" + Path(path).stem[:24].replace(" ", "_")
    run = {"id": run_id, "suite": "pytest-benchmark", "suite_definition": {"file": str(path)},
           "environment": environment, "calibration": {}, "settings": {}, "started_at": time.time(),
           "finished_at": time.time(), "cases_total": len(results)}
    return store.import_run(run, results)


def _result(bench: dict[str, Any]) -> Result:
    extra = bench.get("extra_info") or {}
    if "cnnbench_case" in extra:
        case = Case.from_dict(extra["cnnbench_case"])
    else:
        case = Case(model=str(bench.get("fullname") or bench.get("name")), threads=0, input_shape=(0,))
    stats = bench.get("stats") or {}
    data = stats.get("data") or []
    samples = tuple(int(round(s * 1e9)) for s in data)
    reason = "" if samples else "pytest-benchmark kept only summary statistics (run it with --benchmark-save-data)"
    return Result(case=case, status="ok", reason=reason,
                  samples_ns=samples, timer="pytest-benchmark",
                  params=extra.get("params"), macs=extra.get("macs"),
                  activation_bytes=extra.get("activation_bytes"), saved_bytes=extra.get("saved_bytes"))
