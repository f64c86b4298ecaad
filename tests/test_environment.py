"""bench/environment.py: the recorded environment and the machine's fingerprint."""

from bench import environment

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
    assert {"cpu_model", "cpu_cores_logical", "gpu_name", "gpu_count", "gpu_driver", "torch", "cuda_build"} <= set(env)
