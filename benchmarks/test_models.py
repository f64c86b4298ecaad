"""The project's own pytest-benchmark suite, measured through the harness (bench.pytest_plugin).

    pytest benchmarks --benchmark-only --benchmark-autosave --benchmark-save-data \
        --benchmark-compare --benchmark-compare-fail=median:10%
    cnnbench import-pytest-benchmark .benchmarks/*/0001_*.json
"""

import pytest


@pytest.mark.parametrize("model, batch", [("lenet5", 1), ("lenet5", 16), ("alexnet", 1), ("googlenet", 1)])
def test_inference(cnnbench_case, model, batch):
    cnnbench_case(model, batch_size=batch)


def test_lenet5_training_step(cnnbench_case):
    cnnbench_case("lenet5", batch_size=16, mode="train")


def test_alexnet_channels_last_bf16(cnnbench_case):
    cnnbench_case("alexnet", batch_size=1, precision="amp-bf16", memory_format="channels_last")
