"""The project gates itself: the ci suite's exact metrics against the committed results/baselines/ci.json.

A change to a model's structure or to the counting changes params, MACs or
activation bytes and fails here. Instruction counts are compared too where
Valgrind is present and the machine and torch match the baseline's (counts
depend on the CPU's instruction set and the torch build). Wall time is not
gated (CI machines are noisy); its markdown comparison is printed for the reader.
"""

import json
import shutil
from pathlib import Path


from bench import runfile
from bench.environment import collect
from conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "results" / "baselines" / "ci.json"


def test_ci_suite_matches_the_committed_baseline(tmp_path, capsys):
    baseline = runfile.read(BASELINE)
    env, base_env = collect(), baseline["run"]["environment"]
    same_machine = (env["cpu_model"], env["torch"]) == (base_env.get("cpu_model"), base_env.get("torch"))
    count = shutil.which("valgrind") is not None and same_machine
    db = str(tmp_path / "ci.db")
    # the ci suite's cases with less sampling: only the exact metrics are gated
    code, _, err = run_cli(capsys, "run", "--suite", "ci", "--max-seconds", "0.5", "--store", db, "--quiet",
                           *(["--instructions", "lenet5"] if count else []))
    assert code == 0, err
    counted = [r for r in baseline["results_parsed"] if r.instructions_per_iter]
    if count:
        assert counted, "the baseline has no instruction counts to compare with"
    code, out, _ = run_cli(capsys, "compare", str(BASELINE), "latest", "--store", db, "--gate", "exact", "--format",
                           "json", *([] if count else ["--instructions-tolerance", "1e9"]))
    doc = json.loads(out)
    print(run_cli(capsys, "compare", str(BASELINE), "latest", "--store", db, "--gate", "exact", "--format",
                  "markdown")[1])
    assert doc["timing"], "no case was matched with the baseline"
    assert {r["verdict"] for r in doc["timing"]} <= {"slower", "faster", "unchanged", "inconclusive"}
    assert [e for e in doc["exact"] if e["failed"]] == [], doc["exact"]
    assert code == 0
