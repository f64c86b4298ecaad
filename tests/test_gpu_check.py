"""scripts/gpu_check.sh and its summary (scripts/gpu_summary.py), in the parts that run without a GPU: the summary
from whatever the store holds (a run cut short, no run at all), the torchvision check up front, OUTDIR taken from
the caller's directory, and the script's time bound (its run cut short, as if on a GPU, by a fake python and a
`timeout` that shortens the run's bound)."""

import os
import runpy
import subprocess
import sys
from pathlib import Path

from bench.cases import Case
from bench.record import GpuState, Result
from bench.store import Store

ROOT = Path(__file__).resolve().parent.parent
summary = runpy.run_path(str(ROOT / "scripts" / "gpu_summary.py"))["summary"]


def _env():
    return {"gpu_name": "NVIDIA H200", "gpu_driver": "570.86.15", "torch": "2.14.1", "cuda_build": "13.0",
            "cudnn": 92400, "tf32_matmul": True, "tf32_cudnn": True, "cudnn_benchmark": False,
            "gpu_uuids": ["GPU-8c5b3ab0"], "cuda_visible_devices": None}


def test_a_run_cut_short_is_summarised_from_its_record(tmp_path):
    store = Store(tmp_path / "gpu.db")
    run = store.new_run(suite="gpu-check", suite_json={}, environment=_env(), calibration={}, settings={},
                        cases_total=3)
    hot = GpuState(sm_clock_mhz=1980, mem_clock_mhz=3201, power_w=655.0, temperature_c=83,
                   clock_event_reasons="sw_thermal_slowdown", other_processes=0)
    store.add_results(run, [
        Result(case=Case("alexnet", device="cuda", batch_size=64), status="ok", samples_ns=(2_000_000,) * 5,
               host_samples_ns=(100_000,) * 5, gpu_start=hot, gpu_end=hot, cuda_peak_allocated_bytes=2**30),
        Result(case=Case("alexnet", device="cuda", batch_size=64, precision="amp-bf16"), status="skipped",
               reason="amp-bf16 is not native on Tesla V100 | emulated"),
    ])  # never finished: the time bound cut it short
    text = summary(tmp_path, 124)
    assert text.startswith("# GPU check on NVIDIA H200 (driver 570.86.15, torch 2.14.1, CUDA 13.0, cuDNN 92400)")
    assert f"run {run} cut short by the time bound: 2 of 3 cases stored (the rest were not reached)" in text
    assert "TF32 matmul=True, TF32 cuDNN=True, cudnn.benchmark=False (from the run record)" in text
    rows = [line for line in text.splitlines() if line.startswith("| alexnet")]
    assert len(rows) == 2
    assert "| ok | - | 2.000 | 0.100 |" in rows[0] and "| 1980/1980 | 655 | 83 | True | False |" in rows[0]
    assert "the GPU throttled while sampling (sw_thermal_slowdown)" in rows[0] and "| 1024.0 |" in rows[0]
    assert "| skipped | amp-bf16 is not native on Tesla V100 / emulated |" in rows[1]  # a | in a reason kept the table


def test_no_store_at_all_still_gives_a_summary(tmp_path):
    assert summary(tmp_path, 124).startswith("# GPU check: no run recorded\n\nThe run cut short by the time bound")


def _fake_python(tmp_path, refuse: str) -> Path:
    fake = tmp_path / "python"
    fake.write_text(f'#!/bin/sh\ncase "$*" in *"{refuse}"*) exit 1;; esac\nexec {sys.executable} "$@"\n')
    fake.chmod(0o755)
    return fake


def test_the_check_asks_for_torchvision_first_and_takes_outdir_from_the_callers_directory(tmp_path):
    env = {**os.environ, "PYTHON": str(_fake_python(tmp_path, "import torchvision"))}
    done = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), "rel/out"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "cannot import torchvision" in done.stderr
    assert (tmp_path / "rel" / "out").is_dir() and not (ROOT / "rel").exists()
    summary_md = (tmp_path / "rel" / "out" / "summary.md").read_text()  # even a check that stopped up front says why
    assert summary_md.startswith("# GPU check: not run\n\n") and "cannot import torchvision" in summary_md


FAKE_ENV = '{"gpu_name": "fake"}'


def _as_if_on_a_gpu(tmp_path):
    """PATH and PYTHON for gpu_check.sh on this machine as if it had CUDA: a python that says CUDA is there, has
    torch, torchvision and nvidia-ml-py without importing them (the real imports' checks are tested above), whose
    `bench env` prints FAKE_ENV at once and whose `bench run` notes summary.md as it stands, then hangs until
    interrupted; a `timeout` that logs its calls and gives that run 2 s (SIGKILL 2 s later), whatever its bound."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    hang = ("import pathlib, sys, time; store = pathlib.Path(sys.argv[sys.argv.index('--store') + 1]); "
            "store.with_name('seen-during-run.md').write_text(store.with_name('summary.md').read_text()); "
            "time.sleep(600)")
    (bin_ / "python").write_text(
        f'#!/bin/sh\ncase "$*" in\n  *torch.cuda.is_available*|*"import pynvml"*) exit 0;;\n'
        f'  "-c import torch"|"-c import torchvision") exit 0;;\n'
        f"  *\"-m bench env\"*) echo '{FAKE_ENV}';;\n"
        f'  *"-m bench run"*) exec {sys.executable} -c "{hang}" "$@";;\n  *) exec {sys.executable} "$@";;\nesac\n')
    (bin_ / "timeout").write_text(
        f'#!/bin/bash\necho "$*" >> {tmp_path / "timeout.log"}\n'
        'case "$*" in *"-m bench run"*) shift 3; exec /usr/bin/timeout --signal=INT --kill-after=2 2 "$@";; esac\n'
        'exec /usr/bin/timeout "$@"\n')
    for path in bin_.iterdir():
        path.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_}:{os.environ['PATH']}", "PYTHON": str(bin_ / "python")}


def test_a_check_cut_short_by_its_bound_is_summarised_from_what_its_store_holds(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    store = Store(out / "gpu.db")  # what the run had stored when the bound cut it
    run = store.new_run(suite="gpu-check", suite_json={}, environment=_env(), calibration={}, settings={},
                        cases_total=3)
    store.add_results(run, [Result(case=Case("vgg16", device="cuda", batch_size=64), status="oom",
                                   reason="OutOfMemoryError: CUDA out of memory")])
    store.engine.dispose()
    done = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), str(out)], cwd=tmp_path,
                          env=_as_if_on_a_gpu(tmp_path), capture_output=True, text=True, timeout=300)
    assert done.returncode == 124, done.stderr  # timeout's status: the bound cut the run
    calls = (tmp_path / "timeout.log").read_text().splitlines()
    bounded = [c.split() for c in calls if "-m bench run" in c]
    assert len(bounded) == 1 and bounded[0][:2] == ["--signal=INT", "--kill-after=15"]
    assert 30 <= int(bounded[0][2]) <= 480 - 15 - 25  # the default 8 minutes, less start-up, the SIGKILL's 15 s
    assert all(c.split()[0].isdigit() for c in calls if "-m bench run" not in c)  # env, export, summary bounded too
    assert (out / "env.json").read_text() == FAKE_ENV + "\n"
    assert (out / "seen-during-run.md").read_text().startswith("# GPU check: no summary")  # until the summary
    summary_md = (out / "summary.md").read_text()
    assert f"run {run} cut short by the time bound: 1 of 3 cases stored (the rest were not reached)" in summary_md
    assert "| vgg16 | 64 | fp32/contiguous/eager | infer | oom | OutOfMemoryError: CUDA out of memory |" in summary_md
    assert (out / "results.csv").read_text().count("\n") == 2  # the header and the stored case


def test_a_check_whose_start_up_used_its_bound_measures_nothing_and_says_so(tmp_path):
    env = {**_as_if_on_a_gpu(tmp_path), "GPU_CHECK_SECONDS": "60"}  # less than start-up, 40 s to finish and 30 to run
    done = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), "out"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 124 and "of GPU_CHECK_SECONDS=60; nothing left to measure" in done.stderr
    assert "-m bench run" not in (tmp_path / "timeout.log").read_text()
    assert (tmp_path / "out" / "summary.md").read_text().startswith(
        "# GPU check: no run recorded\n\nThe run cut short by the time bound before storing anything")


def test_without_cuda_the_check_stops_before_measuring(tmp_path):
    import torch

    if torch.cuda.is_available():
        return
    done = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), str(tmp_path / "o")], cwd=tmp_path,
                          env={**os.environ, "PYTHON": sys.executable}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "no CUDA device visible to torch" in done.stderr
    assert not (tmp_path / "o" / "gpu.db").exists()
