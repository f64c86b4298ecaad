"""bench/profiling.py and `cnnbench profile`: traces, per-layer time joined with the static analysis, TensorBoard."""

import gzip
import json
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest

from bench.cases import Case
from bench.cli import main
from bench.profiling import profile_case, read_trace
from conftest import run_cli

LENET = Case("lenet5", threads=1, input_shape=(1, 32, 32))
ALEXNET = Case("alexnet", threads=2)


@pytest.fixture(scope="module")
def profiles(tmp_path_factory):
    root = tmp_path_factory.mktemp("profiles")
    # 8 active steps: one scheduler hiccup in the glue between layers then moves the average little
    return root, {case.model: profile_case(case, out=root, run="test", steps=8) for case in (LENET, ALEXNET)}


def test_traces_are_gzipped_json_with_the_expected_operators(profiles):
    _, by_model = profiles
    for result in by_model.values():
        assert result.trace_files and all(f.name.endswith(".pt.trace.json.gz") for f in result.trace_files)
        with gzip.open(result.trace_files[0], "rt") as fh:
            trace = json.load(fh)
        names = {e.get("name") for e in trace["traceEvents"]}
        assert "aten::conv2d" in names and ({"aten::addmm", "aten::linear"} & names)
        assert any(n and n.startswith("layer::") for n in names)  # the per-layer scopes are in the trace
        assert read_trace(result.trace_files[0]) == trace


@pytest.mark.parametrize("model, leaves", [("lenet5", 11), ("alexnet", 20)])
def test_every_leaf_once_and_layers_add_up_to_the_step(profiles, model, leaves):
    result = profiles[1][model]
    paths = [row["layer"] for row in result.layers]
    assert len(paths) == len(set(paths)) == leaves
    total = sum(row["time_ms"] for row in result.layers)
    assert abs(total / result.step_ms - 1) <= 0.15, (total, result.step_ms)


def test_layers_are_joined_with_the_static_analysis(profiles):
    rows = {r["layer"]: r for r in profiles[1]["alexnet"].layers}
    conv1 = rows["features.0"]
    assert conv1["macs"] == 48 * 55 * 55 * 3 * 11 * 11 and conv1["params"] == 48 * 3 * 11 * 11 + 48
    assert conv1["achieved_gflop_s"] == pytest.approx(2 * conv1["macs"] / (conv1["time_ms"] / 1e3) / 1e9)
    fc1 = rows["classifier.1"]
    assert fc1["params"] > 10 * conv1["params"] and fc1["intensity_flop_per_byte"] < conv1["intensity_flop_per_byte"]
    assert profiles[1]["alexnet"].top_ops[0]["self_cpu_ms"] > 0


def test_cli_formats_and_bad_input(tmp_path, capsys):
    assert main(["profile", "lenet5", "--threads", "1", "--out", str(tmp_path), "--run", "r", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["case"].startswith("lenet5|cpu|b1|fp32") and len(doc["layers"]) == 11 and doc["trace_files"]
    assert main(["profile", "vgg17"]) == 2
    assert "unknown model 'vgg17'" in capsys.readouterr().err
    if not __import__("torch").cuda.is_available():
        assert main(["profile", "alexnet", "--device", "cuda", "--out", str(tmp_path)]) == 2
        assert "cannot run here: cuda is not available" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["profile", "lenet5", "--out", str(blocker)]) == 2
    assert "cannot write profiles under" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(port, path, **params):
    query = urllib.parse.urlencode(params)
    url = f"http://127.0.0.1:{port}/data/plugin/pytorch_profiler/{path}" + (f"?{query}" if query else "")
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def test_tensorboard_plugin_loads_the_run(profiles):
    pytest.importorskip("tensorboard", reason="tensorboard is not installed")
    pytest.importorskip("torch_tb_profiler", reason="torch-tb-profiler is not installed")
    root, _ = profiles
    port = _free_port()
    board = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", str(root), "--host", "127.0.0.1",
                              "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline, runs = time.time() + 120, []
        while time.time() < deadline:
            try:
                data = _get(port, "runs")
                runs = data["runs"]
                if runs and not data["loading"]:
                    break
            except OSError:
                pass
            time.sleep(1)
        run = next(r for r in runs if "lenet5" in r)
        views = _get(port, "views", run=run)
        assert "Overview" in views and "Operator" in views
        worker = _get(port, "workers", run=run, view="Operator")[0]
        span = _get(port, "spans", run=run, worker=worker)[0]
        table = _get(port, "operation/table", run=run, worker=worker, span=span, group_by="Operation")
        rows = table["data"]["rows"] if isinstance(table.get("data"), dict) else table.get("rows", table)
        assert len(rows) > 0
    finally:
        board.kill()
        board.wait()


def test_report_shows_profiles_of_its_run(profiles, tmp_path):
    from bench.report import gather, render
    from bench.store import Store
    from bench.record import Result

    root, by_model = profiles
    store = Store(tmp_path / "s.db")
    store.import_run({"id": "test", "suite": "t", "started_at": 0.0},
                     [Result(case=LENET, status="ok", samples_ns=(1000, 1100, 900), params=61_706, macs=416_520)])
    page = render(gather(store, ["test"]), generated_at="X", profiles_root=root, report_dir=tmp_path)
    assert 'id="profiles"' in page and LENET.key in page and "features.0" in page
    assert "aten::" in page.split('id="profiles"')[1]
    assert 'id="profiles"' not in render(gather(store, ["test"]), generated_at="X")


def test_run_profile_profiles_each_measured_case_afterwards(tmp_path, capsys):
    code, out, err = run_cli(capsys, "run", "--models", "lenet5", "--batch-sizes", "1", "--precision", "fp32",
                             "--memory-format", "contiguous", "--threads", "1", "--max-seconds", "0.3",
                             "--store", str(tmp_path / "s.db"), "--profile", "--profile-dir",
                             str(tmp_path / "profiles"), "--json")
    assert code == 0, err
    run_id = json.loads(out)["run_id"]
    summaries = list((tmp_path / "profiles" / run_id).glob("*/summary.json"))
    assert len(summaries) == 1 and list(summaries[0].parent.glob("*.pt.trace.json.gz"))


def test_training_profile_splits_backward_per_layer(tmp_path):
    result = profile_case(Case("lenet5", threads=1, input_shape=(1, 32, 32), mode="train", batch_size=8),
                          out=tmp_path, run="train")
    rows = {r["layer"]: r for r in result.layers}
    assert rows["features.0"]["backward_ms"] > 0 and rows["classifier.2"]["backward_ms"] > 0
    total = sum(r["time_ms"] + r["backward_ms"] for r in result.layers)
    assert 0.3 < total / result.step_ms <= 1.0  # the optimizer step and the loss are the rest


def test_a_profile_that_fails_is_said_in_the_case_row(tmp_path):
    from bench.runner import RunOptions, execute, start_run
    from bench.store import Store
    from bench.suites import suite_from_dict

    store = Store(tmp_path / "s.db")
    suite = suite_from_dict({"models": ["lenet5"], "threads": [1], "measure": {"max_seconds": 0.3}}, name="t")
    run = start_run(suite, RunOptions(calibrate_seconds=0.05, profile_dir=str(tmp_path / "profiles")))
    (tmp_path / "profiles" / run.id).write_text("")  # a file where the run's folder of profiles would go
    execute(store, run)
    (result,) = store.results(run.id)
    assert result.samples_ns and "profile failed" in result.reason and "cannot write profiles under" in result.reason
