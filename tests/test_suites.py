"""bench/suites.py: suite files of any shape become a suite with cases, or one line naming the bad key or value."""

import math
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from bench.errors import BadInput
from bench.suites import load_toml

KEYS = ["name", "models", "devices", "batch_sizes", "precisions", "memory_formats", "modes", "compilers", "threads",
        "input_size", "exclude", "group", "measure", "unknown"]
SCALARS = (st.booleans() | st.integers(min_value=-(2**63), max_value=2**63 - 1)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12)
           | st.sampled_from(["lenet5", "cpu", "fp32", "channels_last", "train", "eager", "variant", "1,8,8"]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.sampled_from(["precision", "model", "max_seconds", "x"]), inner, max_size=2),
                      max_leaves=5)


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + value.encode("unicode_escape").decode().replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(map(toml_value, value)) + "]"
    return "{" + ", ".join(f'"{k}" = {toml_value(v)}' for k, v in value.items()) + "}"


def load_or_refuse(text: str):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "suite.toml"
        path.write_text(text)
        try:
            return load_toml(str(path)).cases()
        except BadInput as exc:
            assert "\n" not in str(exc).strip(), exc
            return None


def test_a_valid_suite_has_its_cases():
    cases = load_or_refuse('[suite]\nmodels = ["lenet5"]\nbatch_sizes = [1, 2]\nthreads = [1]\n')
    assert [c.batch_size for c in cases] == [1, 2]


@settings(max_examples=80, deadline=None)
@given(st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=3))
def test_a_suite_with_values_of_any_type_is_loaded_or_refused_in_one_line(table):
    table = {"models": ["lenet5"], **table}
    load_or_refuse("[suite]\n" + "".join(f"{key} = {toml_value(value)}\n" for key, value in table.items()))


@pytest.mark.parametrize("content", [b"\xff\xfe bad", b"[suite\n", b"", b"models = 5\n", b"[tool]\ncnnbench = 3\n"])
def test_files_that_are_no_suite_are_refused_in_one_line(content):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "suite.toml"
        path.write_bytes(content)
        with pytest.raises(BadInput):
            load_toml(str(path)).cases()
