"""scripts/gpu_check.sh and its summary (scripts/gpu_summary.py), in the parts that run without a GPU: the summary
from whatever the store holds (a run cut short, no run at all), the torchvision check up front, and OUTDIR taken
from the caller's directory."""

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


def test_without_cuda_the_check_stops_before_measuring(tmp_path):
    import torch

    if torch.cuda.is_available():
        return
    done = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), str(tmp_path / "o")], cwd=tmp_path,
                          env={**os.environ, "PYTHON": sys.executable}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "no CUDA device visible to torch" in done.stderr
    assert not (tmp_path / "o" / "gpu.db").exists()
