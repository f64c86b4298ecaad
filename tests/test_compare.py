"""bench/compare.py and `cnnbench compare` / `baseline save` / `import-pytest-benchmark`."""

import json
import random

import pytest

from bench import runfile
from bench.cases import Case
from bench.cli import main
from bench.compare import Thresholds, compare_runs, compare_samples, env_differences, exact_changes, worst_first
from bench.record import Result
from bench.stats import mann_whitney_p
from bench.store import Store


def samples(median_ms, n=60, spread=0.02, seed=0):
    rng = random.Random(seed)
    return tuple(int(median_ms * 1e6 * (1 + rng.gauss(0, spread))) for _ in range(n))


def result(model="lenet5", ms=1.0, **kw):
    fields = dict(params=61_706, macs=416_520, activation_bytes=58_408)
    fields.update(kw)
    return Result(case=Case(model, threads=1, input_shape=(1, 32, 32)), status="ok",
                  samples_ns=samples(ms, seed=hash(model) % 100 + int(ms * 1000)), **fields)


def test_mann_whitney_matches_the_textbook_value():
    assert mann_whitney_p([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]) == pytest.approx(0.01219, abs=2e-4)
    assert mann_whitney_p([1, 2, 3], [1, 2, 3]) == pytest.approx(1.0)


@pytest.mark.parametrize("factor, verdict", [(1.25, "slower"), (0.75, "faster"), (1.0, "unchanged"),
                                             (1.05, "unchanged")])
def test_timing_verdicts(factor, verdict):
    row = compare_samples("k", samples(1.0, seed=1), samples(factor, seed=2), Thresholds())
    assert row.verdict == verdict
    assert row.ratio == pytest.approx(factor, rel=0.02)
    assert row.ratio_ci_low <= row.ratio <= row.ratio_ci_high


def test_a_significant_small_change_is_not_a_regression():
    row = compare_samples("k", samples(1.0, n=2000, spread=0.01, seed=1),
                          samples(1.03, n=2000, spread=0.01, seed=2), Thresholds())
    assert row.p_value < 1e-6 and row.verdict == "unchanged"


def test_inconclusive_when_noisy_or_short():
    noisy = compare_samples("k", samples(1.0, spread=0.6, seed=1), samples(1.5, seed=2), Thresholds())
    assert noisy.verdict == "inconclusive" and "too noisy" in noisy.reason
    short = compare_samples("k", samples(1.0, n=3), samples(2.0, n=3), Thresholds())
    assert short.verdict == "inconclusive" and "3 samples" in short.reason


def test_matching_lists_new_and_missing_never_compared():
    base = [result("lenet5"), result("alexnet")]
    cand = [result("lenet5", 1.3), result("nin")]
    rows = {r.key.split("|")[0]: r for r in compare_runs(base, cand)}
    assert rows["lenet5"].verdict == "slower"
    assert rows["alexnet"].verdict == "missing" and rows["alexnet"].ratio is None
    assert rows["nin"].verdict == "new" and rows["nin"].ratio is None
    assert worst_first(list(rows.values()))[0].verdict == "slower"


def test_exact_metrics():
    base, same = [result()], [result()]
    assert exact_changes(base, same) == []
    more = [result(macs=int(416_520 * 1.05))]
    (change,) = exact_changes(base, more)
    assert change.metric == "macs" and change.failed and change.relative == pytest.approx(0.05, rel=1e-3)
    assert not exact_changes(base, more, tolerance=0.1)[0].failed
    counts = exact_changes([result(instructions_per_iter=1000.0)], [result(instructions_per_iter=1005.0)],
                           tolerances={"instructions_per_iter": 0.01})
    assert [c.failed for c in counts] == [False]


def test_environment_differences():
    assert env_differences({"torch": "2.4", "threads": [2]}, {"torch": "2.5", "threads": [2]}) == ["torch: '2.4' -> '2.5'"]


# -- the command line ------------------------------------------------------------------------------

def make_store(tmp_path, base_results, cand_results, cand_env=None, calibrations=({}, {})):
    store = Store(tmp_path / "s.db")
    ids = []
    sides = ((base_results, {"torch": "2.14", "hostname": "h"}), (cand_results, cand_env or {"torch": "2.14", "hostname": "h"}))
    for (results, env), calibration in zip(sides, calibrations):
        run_id = store.new_run(suite="ci", suite_json={}, environment=env, calibration=calibration, settings={},
                               cases_total=len(results))
        for r in results:
            store.add_result(run_id, r)
        ids.append(run_id)
    return str(tmp_path / "s.db"), ids


def test_exit_status_and_formats(tmp_path, capsys):
    db, (a, b) = make_store(tmp_path, [result("lenet5"), result("alexnet")], [result("lenet5"), result("alexnet", 1.0)])
    assert main(["compare", a, b, "--store", db]) == 0
    out = capsys.readouterr().out
    assert "no regression" in out and "unchanged" in out
    db2, (c, d) = make_store(tmp_path / "x", [result("lenet5")], [result("lenet5", 1.5)])
    assert main(["compare", c, d, "--store", db2, "--format", "markdown"]) == 1
    md = capsys.readouterr().out
    assert md.startswith("### cnnbench compare") and "| case |" in md and "**REGRESSION" in md
    assert main(["compare", c, d, "--store", db2, "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["regressed"] is True and doc["timing"][0]["verdict"] == "slower"
    assert main(["compare", c, d, "--store", db2, "--threshold", "0.6"]) == 0
    capsys.readouterr()


def test_a_gate_that_compared_nothing_or_less_than_the_baseline_fails_unless_allowed(tmp_path, capsys):
    db, (a, b) = make_store(tmp_path, [result("lenet5"), result("alexnet")], [result("nin")])
    assert main(["compare", a, b, "--store", db]) == 2
    err = capsys.readouterr().err
    assert "no case in common" in err and "nothing was compared" in err and len(err.strip().splitlines()) == 1
    db, (a, b) = make_store(tmp_path / "x", [result("lenet5"), result("alexnet")], [result("lenet5")])
    assert main(["compare", a, b, "--store", db]) == 2
    err = capsys.readouterr().err
    assert "lacks 1 of the baseline's 2 cases" in err and "alexnet" in err and "--allow-missing" in err
    assert main(["compare", a, b, "--store", db, "--allow-missing"]) == 0
    assert "missing" in capsys.readouterr().out
    assert main(["compare", b, a, "--store", db]) == 0  # a candidate with more cases gates on the baseline's
    capsys.readouterr()


def test_exact_change_fails_the_gate_even_when_timing_is_unchanged(tmp_path, capsys):
    db, (a, b) = make_store(tmp_path, [result()], [result(macs=416_521)])
    assert main(["compare", a, b, "--store", db]) == 1
    out = capsys.readouterr().out
    assert "macs" in out and "FAIL" in out
    assert main(["compare", a, b, "--store", db, "--exact-tolerance", "0.01"]) == 0
    capsys.readouterr()


def test_strict_env(tmp_path, capsys):
    db, (a, b) = make_store(tmp_path, [result()], [result()], cand_env={"torch": "2.15", "hostname": "h"})
    assert main(["compare", a, b, "--store", db]) == 0
    assert "environments differ: torch: '2.14' -> '2.15'" in capsys.readouterr().out
    assert main(["compare", a, b, "--store", db, "--strict-env"]) == 2
    assert "refusing to compare" in capsys.readouterr().err


def test_baseline_round_trip(tmp_path, capsys):
    db, (a, b) = make_store(tmp_path, [result("lenet5"), result("alexnet")], [result("lenet5"), result("alexnet")])
    assert main(["baseline", "save", a, "--name", "mine", "--dir", str(tmp_path / "baselines"), "--store", db]) == 0
    path = tmp_path / "baselines" / "mine.json"
    assert capsys.readouterr().out.strip() == str(path)
    doc = runfile.read(path)
    assert doc["version"] == 1 and len(doc["results"]) == 2
    assert sorted(r.case.key for r in doc["results_parsed"]) == sorted(r.case.key for r in Store(db).results(a))
    lines = path.read_text().splitlines()
    assert sum(1 for line in lines if line.startswith(' {') and '"case":{' in line) == 2  # one line per case: diffable
    assert main(["compare", str(path), b, "--store", db]) == 0
    capsys.readouterr()
    assert main(["baseline", "save", a, "--name", "x", "--dir", str(path), "--store", db]) == 2  # a file, not a folder
    err = capsys.readouterr().err
    assert "cannot write run file" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("content, message", [
    ("{not json", "is not valid JSON"),
    ('{"format": "something-else"}', "is not a cnnbench run file"),
    ('{"format": "cnnbench-run", "version": 0, "run": {}, "results": []}', "format version 0 (older or unknown)"),
    ('{"format": "cnnbench-run", "version": 9, "run": {}, "results": []}', "format version 9 (newer)"),
    ('{"format": "cnnbench-run", "version": 1, "run": {"id": "x"}, "results": [{"nope": 1}]}', "is malformed: results[0]"),
])
def test_malformed_baselines(tmp_path, capsys, content, message):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    assert main(["compare", str(bad), str(bad)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_bad_compare_options(tmp_path, capsys):
    db, (a, b) = make_store(tmp_path, [result()], [result()])
    for args in (["--threshold", "-1"], ["--format", "xml"], ["--exact-tolerance", "x"]):
        assert main(["compare", a, b, "--store", db, *args]) == 2
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert main(["compare", a, "nope", "--store", db]) == 2
    assert "no run 'nope'" in capsys.readouterr().err


def test_import_pytest_benchmark(tmp_path, capsys):
    case = Case("lenet5", threads=1, input_shape=(1, 32, 32))
    doc = {"machine_info": {"node": "box", "cpu": {"brand_raw": "cpu"}}, "commit_info": {"id": "abc"},
           "version": "5.1.0", "datetime": "2026-11-28T00:00:00",
           "benchmarks": [
               {"name": "test_inference[lenet5-1]", "fullname": "benchmarks/test_models.py::test_inference[lenet5-1]",
                "extra_info": {"cnnbench_case": case.to_dict(), "macs": 416_520, "params": 61_706},
                "stats": {"median": 0.001, "data": [0.001, 0.0011, 0.0009]}},
               {"name": "test_other", "fullname": "t.py::test_other", "extra_info": {}, "stats": {"median": 0.5}},
           ]}
    path = tmp_path / "0001_x.json"
    path.write_text(json.dumps(doc))
    db = str(tmp_path / "s.db")
    assert main(["import-pytest-benchmark", str(path), "--store", db]) == 0
    run_id = capsys.readouterr().out.strip()
    results = Store(db).results(run_id)
    assert results[0].case == case and results[0].samples_ns == (1_000_000, 1_100_000, 900_000)
    assert results[0].macs == 416_520
    assert results[1].samples_ns == () and "--benchmark-save-data" in results[1].reason
    bad = tmp_path / "bad.json"
    bad.write_text('{"hello": 1}')
    assert main(["import-pytest-benchmark", str(bad), "--store", db]) == 2
    assert "not a pytest-benchmark JSON file" in capsys.readouterr().err
    # an imported run has no suite to measure: resuming it is one line, not a KeyError
    assert main(["run", "--resume", run_id, "--store", db]) == 2
    assert "nothing to resume" in capsys.readouterr().err


def test_pytest_benchmark_plugin_round_trip(tmp_path, capsys):
    """The project's own benchmarks/ under pytest-benchmark, then imported into the store."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "benchmarks/test_models.py::test_inference[lenet5-1]",
         "--benchmark-only", "--benchmark-save-data", f"--benchmark-json={out}", "--benchmark-max-time=0.2",
         "--benchmark-min-rounds=5", "-q", "-p", "no:cacheprovider"],
        capture_output=True, text=True, cwd=root, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    doc = json.loads(out.read_text())
    (bench,) = doc["benchmarks"]
    assert bench["extra_info"]["case_key"].startswith("lenet5|cpu|b1|fp32")
    assert bench["extra_info"]["macs"] == 416_520
    db = str(tmp_path / "s.db")
    assert main(["import-pytest-benchmark", str(out), "--store", db]) == 0
    run_id = capsys.readouterr().out.strip()
    (imported,) = Store(db).results(run_id)
    assert imported.case.model == "lenet5" and len(imported.samples_ns) >= 5


# -- machine identity ---------------------------------------------------------------------------------

def machine_store(tmp_path, *machines):
    """One run per (label, fingerprint), the same lenet5 result in each; label None: a run from before labels."""
    store = Store(tmp_path / "m.db")
    ids = []
    for label, print_ in machines:
        run_id = store.new_run(suite="ci", suite_json={}, environment={"hostname": "h", "machine_fingerprint": print_},
                               calibration={}, settings={}, cases_total=1, machine=label)
        store.add_result(run_id, result())
        ids.append(run_id)
    if any(label is None for label, _ in machines):
        with store.engine.begin() as conn:
            conn.exec_driver_sql("update runs set machine = null where environment_json like '%\"old\"%'")
    return str(tmp_path / "m.db"), ids


def test_compare_refuses_two_machines_unless_asked(tmp_path, capsys):
    db, (a, b, c) = machine_store(tmp_path, ("box-a", "f1"), ("box-b", "f1"), ("box-a", "f2"))
    assert main(["compare", a, b, "--store", db]) == 2
    err = capsys.readouterr().err
    assert err == ("error: refusing to compare runs from different machines: the baseline ran on machine 'box-a', "
                   "the candidate on 'box-b'; pass --cross-machine to compare them anyway\n")
    assert main(["compare", a, c, "--store", db]) == 2
    assert "labelled 'box-a', but on different hardware (fingerprints f1 and f2)" in capsys.readouterr().err
    assert main(["compare", a, b, "--store", db, "--cross-machine"]) == 0
    capsys.readouterr()
    doc = runfile.dump(Store(db, create=False), b)  # a run file keeps its machine
    path = tmp_path / "b.json"
    runfile.write(path, doc)
    assert main(["compare", a, str(path), "--store", db]) == 2
    capsys.readouterr()


def test_runs_from_before_machine_labels_are_not_judged(tmp_path, capsys):
    db, (a, b) = machine_store(tmp_path, ("box-a", "f1"), (None, "old"))
    assert main(["compare", a, b, "--store", db]) == 0
    capsys.readouterr()
    assert main(["runs", "--store", db, "--format", "json"]) == 0
    assert [run["machine"] for run in json.loads(capsys.readouterr().out)] == ["box-a", "h"]  # else the hostname


def test_a_run_records_its_machine_label_and_fingerprint(tmp_path, capsys):
    from bench import environment

    db = str(tmp_path / "r.db")
    args = ["run", "--models", "lenet5", "--precision", "fp32", "--memory-format", "contiguous", "--threads", "1",
            "--max-seconds", "0.2", "--isolation", "none", "--store", db, "--quiet"]
    assert main([*args, "--machine", "lab-gpu-1"]) == 0
    assert main(args) == 0
    capsys.readouterr()
    store = Store(db, create=False)
    first, second = store.list_runs()
    assert first["machine"] == "lab-gpu-1" and second["machine"] == environment.socket.gethostname()
    env = store.run(first["run_id"])["environment"]
    assert env["machine_fingerprint"] == environment.fingerprint(env) and len(env["machine_fingerprint"]) == 12
    assert main(["run", "--models", "lenet5", "--machine", "a b", "--store", db]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --machine must be letters, digits") and "'a b'" in err


def test_the_environment_check_covers_the_gpu_stack_and_cudnn_benchmark():
    base = {"cudnn_benchmark": False, "cuda_build": "12.4", "cudnn": 90100, "gpu_driver": "550.54.15"}
    cand = {"cudnn_benchmark": True, "cuda_build": "12.6", "cudnn": 90500, "gpu_driver": "560.35.03"}
    assert env_differences(base, cand) == ["cudnn_benchmark: False -> True", "cuda_build: '12.4' -> '12.6'",
                                           "cudnn: 90100 -> 90500", "gpu_driver: '550.54.15' -> '560.35.03'"]
    assert env_differences(base, dict(base)) == []


def test_the_environment_check_names_the_host_allocator_a_run_stored_before_it_having_used_glibcs():
    assert env_differences({}, {"cpu_allocator": "keep"}) == ["cpu_allocator: 'system' -> 'keep'"]
    assert env_differences({}, {"cpu_allocator": "system"}) == []


def test_the_environment_check_names_the_gpus_the_cases_ran_on():
    """gpu_name is the first GPU's: a run on cuda:1 is judged on GPU 1's model, found in gpu_names by index."""
    from bench.compare import Side, comparable

    base = {"gpu_name": "NVIDIA A100-SXM4-40GB", "gpu_names": ["NVIDIA A100-SXM4-40GB", "NVIDIA H100 80GB HBM3"]}
    cand = {"gpu_name": "NVIDIA A100-SXM4-40GB", "gpu_names": ["NVIDIA A100-SXM4-40GB", "NVIDIA H200"]}
    assert env_differences(base, cand, ["cuda"]) == []
    assert env_differences(base, cand, ["cpu", "cuda:1"]) == ["cuda:1: 'NVIDIA H100 80GB HBM3' -> 'NVIDIA H200'"]
    assert env_differences(base, {**cand, "gpu_names": cand["gpu_names"][:1]}, ["cuda:1"]) == [
        "cuda:1: 'NVIDIA H100 80GB HBM3' -> None"]  # the candidate's machine has no second GPU
    assert env_differences({"gpu_name": base["gpu_name"]}, cand, ["cuda:1"]) == []  # recorded before gpu_names

    def side(label, env, device):
        return Side(label, {"environment": env}, (Result(case=Case("lenet5", device=device), status="ok"),))

    assert comparable(side("a", base, "cuda:1"), side("b", cand, "cuda:1")) == [
        "cuda:1: 'NVIDIA H100 80GB HBM3' -> 'NVIDIA H200'"]
    assert comparable(side("a", base, "cuda"), side("b", cand, "cuda")) == []


@pytest.mark.parametrize("value", ["0", "-0.1", "1.5", "1e9", "nan", "x"])
def test_the_noise_limit_is_a_ratio_above_0_and_at_most_1(tmp_path, capsys, value):
    db, (a, b) = make_store(tmp_path, [result()], [result()])
    assert main(["compare", a, b, "--store", db, "--noise-limit", value]) == 2
    assert capsys.readouterr().err == (f"error: --noise-limit must be an IQR/median ratio above 0 and at most 1, "
                                       f"got {value!r}\n")
    assert main(["compare", a, b, "--store", db, "--noise-limit", "1"]) == 0  # the range's top is allowed


def test_a_machine_whose_speed_moved_between_the_runs_is_said(tmp_path, capsys):
    from bench.compare import machine_speed_notes

    steady = {"cpu/float32/t2": 230.0, "cpu/bfloat16/t2": 790.0}
    moved = {"cpu/float32/t2": 240.0, "cpu/bfloat16/t2": 1700.0}  # fp32 +4%, bf16 +115%: 3.43x -> 7.08x fp32's
    assert machine_speed_notes({"calibration": steady}, {"calibration": steady}) == []
    assert machine_speed_notes({"calibration": {}}, {"calibration": moved}) == []  # nothing to set against
    notes = machine_speed_notes({"calibration": steady}, {"calibration": moved})
    assert len(notes) == 2 and "cpu/bfloat16/t2 matmul peak moved +115%" in notes[0]
    assert "bfloat16 ran at 3.43x float32's matmul speed in the baseline and 7.08x in the candidate" in notes[1]
    db, (a, b) = make_store(tmp_path, [result("lenet5")], [result("lenet5")], calibrations=(steady, moved))
    assert main(["compare", a, b, "--store", db]) == 0  # said, not judged: the gate's verdicts stand
    assert "note: on cpu (t2), bfloat16 ran at 3.43x" in capsys.readouterr().out
    assert main(["compare", a, b, "--store", db, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["machine_speed_notes"] == notes
    assert main(["compare", a, b, "--store", db, "--format", "markdown"]) == 0
    assert "Machine speed (calibration): the machine" in capsys.readouterr().out


def test_machine_speed_notes_read_only_positive_peaks_of_well_formed_keys():
    from bench.compare import machine_speed_notes

    odd = {"calibration": {"cpu/bfloat16/t2": None, "cpu/float32/t2": "fast", "x": 5.0, "a/b": 1.0,
                           "cpu/float16/t2": float("nan")}}
    assert machine_speed_notes(odd, {"calibration": {"cpu/bfloat16/t2": 700.0, "x": 50.0, "a/b": 9.0}}) == [
        "the machine's a/b matmul peak moved +800% between the runs (1 -> 9 GFLOP/s)",
        "the machine's x matmul peak moved +900% between the runs (5 -> 50 GFLOP/s)"]
    assert machine_speed_notes({"calibration": ["not", "a", "table"]}, odd) == []
