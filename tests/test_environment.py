"""bench/environment.py: the recorded environment, the machine's fingerprint, the flags a run's workers use, and
the GPUs by index."""

import json
from types import SimpleNamespace

import torch

from bench import allocator, environment
from bench.cli import main

HARDWARE = {"cpu_model": "Intel(R) Xeon(R) Processor", "cpu_cores_logical": 2, "gpu_name": None, "gpu_count": 0}


def test_the_fingerprint_is_the_hardware_not_the_software():
    base = environment.fingerprint({**HARDWARE, "torch": "2.9.0", "gpu_driver": None, "hostname": "a"})
    assert base == environment.fingerprint({**HARDWARE, "torch": "2.10.0", "gpu_driver": "550.1", "hostname": "b"})
    assert base != environment.fingerprint({**HARDWARE, "cpu_cores_logical": 4})
    assert base != environment.fingerprint({**HARDWARE, "gpu_name": "NVIDIA H100", "gpu_count": 1})
    assert len(base) == 12 and int(base, 16) >= 0


def test_collect_records_the_fingerprint_of_what_it_found():
    env = environment.collect()
    assert env["machine_fingerprint"] == environment.fingerprint(env)
    assert {"cpu_model", "cpu_cores_logical", "gpu_name", "gpu_names", "gpu_count", "gpu_driver", "torch",
            "cuda_build"} <= set(env)


def _flags():
    b = torch.backends
    return b.cuda.matmul.allow_tf32, b.cudnn.allow_tf32, b.cudnn.benchmark


def test_worker_flags_are_what_set_backends_sets_and_leave_this_process_alone():
    before = _flags()
    torch.backends.cudnn.allow_tf32 = True  # the process default that workers turn off
    try:
        assert environment.worker_flags() == {"tf32_matmul": False, "tf32_cudnn": False, "cudnn_benchmark": False,
                                              "cpu_allocator": allocator.effective("keep")}
        assert environment.worker_flags(tf32=True, cudnn_benchmark=True) == {
            "tf32_matmul": True, "tf32_cudnn": True, "cudnn_benchmark": True,
            "cpu_allocator": allocator.effective("keep")}
        assert torch.backends.cudnn.allow_tf32 is True  # put back
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark = before


def test_env_shows_the_workers_flags_not_the_process_defaults(capsys):
    torch.backends.cudnn.allow_tf32 = True
    assert main(["env", "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["tf32_cudnn"], shown["tf32_matmul"], shown["cudnn_benchmark"]) == (False, False, False)
    assert main(["env", "--format", "json", "--tf32", "--cudnn-benchmark"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["tf32_cudnn"], shown["tf32_matmul"], shown["cudnn_benchmark"]) == (True, True, True)
    assert "cuda_visible_devices" in shown and "gpu_uuids" in shown
    assert shown["cpu_allocator"] == allocator.effective("keep")
    assert main(["env", "--format", "json", "--allocator", "system"]) == 0
    assert json.loads(capsys.readouterr().out)["cpu_allocator"] == "system"


def test_gpu_uuids_in_nvidia_smis_spelling_by_index(monkeypatch):
    uuids = {0: "8c5b3ab0-1d2e-4f60-9a1b-0c2d3e4f5a6b", 1: "MIG-0f1e2d3c-aaaa-bbbb-cccc-000000000001", 2: None}
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: SimpleNamespace(uuid=uuids[i]))
    assert environment.gpu_uuids() == ["GPU-8c5b3ab0-1d2e-4f60-9a1b-0c2d3e4f5a6b",
                                       "MIG-0f1e2d3c-aaaa-bbbb-cccc-000000000001", None]


def test_the_run_records_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert environment.collect()["cuda_visible_devices"] == "2,3"
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert environment.collect()["cuda_visible_devices"] is None


def test_the_last_level_cache_is_each_distinct_highest_level_cache_of_the_cpus_counted_once(tmp_path):
    from bench.environment import cpu_llc_bytes

    for cpu in range(4):  # two core complexes of two CPUs, each with its own L3
        for name, level, kind, size, shared in [("index0", 1, "Data", "48K", str(cpu)),
                                                ("index1", 1, "Instruction", "32K", str(cpu)),
                                                ("index2", 2, "Unified", "2048K", str(cpu)),
                                                ("index3", 3, "Unified", "32M", "0-1" if cpu < 2 else "2-3")]:
            folder = tmp_path / f"cpu{cpu}" / "cache" / name
            folder.mkdir(parents=True)
            for field, value in (("level", level), ("type", kind), ("size", size), ("shared_cpu_list", shared)):
                (folder / field).write_text(f"{value}\n")
    assert cpu_llc_bytes([0, 1], tmp_path) == 32 << 20  # one L3 shared by both
    assert cpu_llc_bytes([0, 2], tmp_path) == 64 << 20  # one in each complex
    assert cpu_llc_bytes([7], tmp_path) is None  # no such CPU
    (tmp_path / "cpu0" / "cache" / "index3" / "size").write_text("lots\n")
    assert cpu_llc_bytes([0, 1], tmp_path) is None  # unreadable: not known, rather than a wrong figure
    assert "cpu_llc_bytes" in environment.collect()
