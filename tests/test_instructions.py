"""bench/instructions.py: when a case can be counted (the count itself runs in test_dogfood)."""

import shutil

from bench.cases import Case
from bench.instructions import count, unavailable


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
