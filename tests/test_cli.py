"""The command line (bench/cli.py): output shapes, formats, and one-line errors with exit 2."""

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent


def test_list_table_has_units_and_the_seed_models(capsys):
    code, out, err = run_cli(capsys, "list", "vgg1*")
    assert code == 0
    header = out.splitlines()[0]
    for column in ("model", "family", "input (CxHxW)", "params", "GMACs"):
        assert column in header
    assert "132,863,336" in out and "143,678,248" in out  # vgg11, vgg19_bn
    assert "8 models" in out


def test_list_json_and_csv(capsys):
    code, out, _ = run_cli(capsys, "list", "alexnet,lenet5", "--format", "json")
    rows = json.loads(out)
    assert code == 0 and [r["model"] for r in rows] == ["alexnet", "lenet5"]
    assert rows[0]["params"] == 16_630_440 and rows[0]["input_shape"] == [3, 224, 224]
    assert rows[0]["macs"] == 311_191_824
    code, out, _ = run_cli(capsys, "list", "googlenet", "--format", "csv")
    (row,) = list(csv.DictReader(io.StringIO(out)))
    assert row["params"] == "13378280" and row["input_shape"] == "3x224x224"


def test_inspect_table_and_totals(capsys):
    code, out, _ = run_cli(capsys, "inspect", "alexnet", "--batch-size", "4")
    assert code == 0
    assert "features.0" in out and "Conv2d" in out and "4x48x55x55" in out
    assert "16,630,440" in out
    assert f"{4 * 311_191_824:,}" in out and f"{8 * 311_191_824:,}" in out  # MACs and FLOPs


def test_inspect_json_totals_and_layers(capsys):
    code, out, _ = run_cli(capsys, "inspect", "vgg11", "--format", "json", "--batch-size", "2")
    doc = json.loads(out)
    assert doc["totals"]["params"] == 132_863_336
    assert doc["totals"]["flops"] == 2 * doc["totals"]["macs"]
    assert sum(layer["macs"] for layer in doc["layers"]) == doc["totals"]["macs"]
    assert doc["layers"][0]["output_shape"] == [2, 64, 224, 224]


def test_inspect_csv_has_one_row_per_layer(capsys):
    code, out, _ = run_cli(capsys, "inspect", "lenet5", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == 11  # 8 feature layers, 3 classifier layers
    assert rows[0]["layer"] == "features.0" and rows[0]["output_shape"] == "1x6x28x28"


def test_inspect_other_input_size(capsys):
    code, out, _ = run_cli(capsys, "inspect", "googlenet", "--input-size", "3,160,160", "--format", "json")
    assert code == 0 and json.loads(out)["totals"]["input_shape"] == "3x160x160"


def test_env_reports_versions(capsys):
    code, out, _ = run_cli(capsys, "env", "--format", "json")
    info = json.loads(out)
    import torch
    assert code == 0 and info["torch"] == torch.__version__
    assert info["cpu_cores_logical"] >= 1 and "git_commit" in info and "cuda_available" in info


@pytest.mark.parametrize("argv, fragment", [
    (["inspect", "vgg17"], "unknown model 'vgg17'; closest: vgg19"),
    (["inspect", "alexnet", "--batch-size", "0"], "batch size must be a positive integer, got '0'"),
    (["inspect", "alexnet", "--batch-size", "-3"], "got '-3'"),
    (["inspect", "alexnet", "--batch-size", "abc"], "got 'abc'"),
    (["inspect", "alexnet", "--input-size", "3,64,64"], "input shape '3x64x64' does not fit model 'alexnet'"),
    (["inspect", "vgg16", "--input-size", "3,224"], "input size must be three positive integers C,H,W"),
    (["inspect", "vgg16", "--input-size", "a,b,c"], "got 'a,b,c'"),
    (["inspect", "vgg16", "--format", "xml"], "format must be one of table, csv, json, got 'xml'"),
    (["inspect", "vgg16", "--dtype", "int4"], "got 'int4'"),
    (["list", "nomatch*"], "no model matches 'nomatch*'"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["inspect"], "the following arguments are required: model"),
    (["run", "--allocator", "jemalloc"], "--allocator must be one of keep, system, got 'jemalloc'"),
    (["ab", "alexnet", "--allocator", "tcmalloc"], "--allocator must be one of keep, system, got 'tcmalloc'"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, argv, fragment):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2
    assert fragment in err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ")
    assert "Traceback" not in err


def test_console_script_and_module_agree_and_fail_cleanly():
    script = shutil.which("cnnbench", path=os.path.dirname(sys.executable))
    assert script, "the cnnbench console script is not installed beside this python"
    for command in ([script], [sys.executable, "-m", "bench"]):
        done = subprocess.run(command + ["inspect", "alexnet", "--batch-size", "-3"],
                              capture_output=True, text=True, cwd=ROOT)
        assert done.returncode == 2
        assert done.stderr == "error: batch size must be a positive integer, got '-3'\n"
    done = subprocess.run([script, "list", "lenet*", "--format", "json"], capture_output=True, text=True)
    assert done.returncode == 0 and json.loads(done.stdout)[0]["params"] == 61_706


def test_a_store_lost_before_a_new_run_was_stored_says_so_in_one_line(tmp_path, monkeypatch, capsys):
    import re

    from bench import runner
    from bench.errors import StoreUnavailable

    def lost(store, run, on_start, **_):  # the store fails the run's first commit, both cases in flight
        cases = runner.pending(run.row, set())[0]
        for index, case in enumerate(cases):
            on_start(case, index, len(cases))
        raise StoreUnavailable(f"results store {store.label!r} cannot be written: database or disk is full")

    monkeypatch.setattr(runner, "execute", lost)
    db = str(tmp_path / "s.db")
    code, _, err = run_cli(capsys, "run", "--models", "lenet5", "--batch-sizes", "1,2", "--precision", "fp32",
                           "--memory-format", "contiguous", "--threads", "1", "--store", db, "--quiet")
    assert code == 3
    assert re.fullmatch(rf"error: results store {re.escape(repr(db))} cannot be written: database or disk is full; "
                        r"not stored: 2 cases in flight \(lenet5\|cpu\|b1\|[^,]*, lenet5\|cpu\|b2\|[^)]*\); "
                        r"nothing of run '[0-9]{8}-[0-9]{6}-[0-9a-f]{6}' was stored: run the same command again once "
                        r"the store is back\n", err)
