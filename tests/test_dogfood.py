"""The project gates itself: the ci suite's exact metrics against the committed results/baselines/ci.json.

A change to a model's structure or to the counting changes params, MACs or
activation bytes and fails here. Instruction counts are compared too where
Valgrind is present and the machine and torch match the baseline's (counts
depend on the CPU's instruction set and the torch build). Wall time is not
gated (CI machines are noisy); its markdown comparison is printed for the reader.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path


from bench import runfile
from bench.environment import collect

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "results" / "baselines" / "ci.json"


def cnnbench(*args, **kw):
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True, cwd=ROOT, **kw)


def test_ci_suite_matches_the_committed_baseline(tmp_path):
    baseline = runfile.read(BASELINE)
    env, base_env = collect(), baseline["run"]["environment"]
    same_machine = (env["cpu_model"], env["torch"]) == (base_env.get("cpu_model"), base_env.get("torch"))
    count = shutil.which("valgrind") is not None and same_machine
    db = str(tmp_path / "ci.db")
    run = cnnbench("run", "--suite", "ci", "--store", db, "--quiet", *(["--instructions", "lenet5"] if count else []),
                   timeout=900)
    assert run.returncode == 0, run.stderr
    counted = [r for r in baseline["results_parsed"] if r.instructions_per_iter]
    if count:
        assert counted, "the baseline has no instruction counts to compare with"
    gate = cnnbench("compare", str(BASELINE), "latest", "--store", db, "--gate", "exact", "--format", "json",
                    *([] if count else ["--instructions-tolerance", "1e9"]))
    doc = json.loads(gate.stdout)
    print(cnnbench("compare", str(BASELINE), "latest", "--store", db, "--gate", "exact", "--format", "markdown").stdout)
    assert doc["timing"], "no case was matched with the baseline"
    assert {r["verdict"] for r in doc["timing"]} <= {"slower", "faster", "unchanged", "inconclusive"}
    assert [e for e in doc["exact"] if e["failed"]] == [], doc["exact"]
    assert gate.returncode == 0
