"""bench/instructions.py: when a case can be counted, and the valgrind that starts a count uninstrumented (the count
itself runs in test_dogfood)."""

import os
import shutil
import subprocess

from bench.cases import Case
from bench.instructions import _UNINSTRUMENTED_START, count, unavailable


def test_only_cpu_eager_cases_are_counted():
    assert unavailable(Case("lenet5", device="cuda")) == "instruction counts are for CPU cases"
    assert "eager" in unavailable(Case("lenet5", compiler="compile"))
    assert count(Case("lenet5", device="cuda")) == (None, "instruction counts are for CPU cases")


def test_valgrind_presence_decides():
    reason = unavailable(Case("lenet5", threads=1, input_shape=(1, 32, 32)))
    if shutil.which("valgrind") is None:
        assert reason == "valgrind is not installed (apt-get install valgrind)"
    else:
        assert reason is None


def test_the_valgrind_wrapper_starts_uninstrumented_and_passes_the_rest_as_given(tmp_path):
    wrapper = tmp_path / "valgrind"
    shows = """sh -c 'echo "late=$CNNBENCH_INSTR_LATE"; printf "%s\\n" "$@"' -"""  # in place of valgrind
    wrapper.write_text(_UNINSTRUMENTED_START.format(valgrind=shows))
    env = {k: v for k, v in os.environ.items() if k != "CNNBENCH_INSTR_LATE"}
    done = subprocess.run(["sh", str(wrapper), "--tool=callgrind", "--instr-atstart=yes", "python", "a b"],
                          capture_output=True, text=True, env=env)
    assert done.stdout.splitlines() == ["late=1", "--tool=callgrind", "--instr-atstart=no", "python", "a b"]
    done = subprocess.run(["sh", str(wrapper), "--tool=callgrind", "python"], capture_output=True, text=True, env=env)
    assert done.stdout.splitlines() == ["late=", "--tool=callgrind", "python"]  # torch's flags changed: as it was
