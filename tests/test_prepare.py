"""bench/prepare.py: the validity check compares like with like, in inference and in training."""

import pytest
import torch

from bench.cases import Case
from bench.precision import PRECISIONS, tolerance
from bench.prepare import Prepared, get_ready, skip_reason, validity

# without BatchNorm, with it (ours and torchvision's), and with auxiliary outputs
MODELS = {"lenet5": (1, 32, 32), "tv.resnet18": (3, 64, 64), "googlenet": (3, 224, 224)}
VARIANTS = [(p, f) for p in PRECISIONS for f in ("contiguous", "channels_last") if (p, f) != ("fp32", "contiguous")]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("precision, memory_format", VARIANTS)
def test_every_training_variant_the_cpu_runs_is_valid(model, precision, memory_format):
    case = Case(model, batch_size=2, precision=precision, memory_format=memory_format, mode="train", threads=1,
                input_shape=MODELS[model])
    if skip_reason(case):
        pytest.skip(skip_reason(case))
    checks = validity(Prepared(case))
    assert checks["check_output"], checks
    assert checks.get("check_channels_last", True) and checks["check_dtype"]
    if precision == "fp32":  # same arithmetic, another layout: no more than float32 rounding
        assert checks["output_rel_err"] < 1e-4


def test_the_training_check_runs_on_the_weights_and_statistics_the_step_starts_from():
    case = Case("tv.resnet18", batch_size=4, precision="fp32", memory_format="channels_last", mode="train",
                threads=1, input_shape=(3, 64, 64))
    prep = Prepared(case)
    before = {k: v.clone() for k, v in prep.model.state_dict().items()}
    checks = validity(prep)
    after = prep.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BatchNorm's running statistics put back
    assert checks["output_rel_err"] < 1e-4
    figures = {}
    get_ready(case, 0.2, figures)  # the cold-start SGD step changes the weights: the check came before it
    assert figures["check_output"] and figures["output_rel_err"] < 1e-4 and figures["cold_start_ms"] > 0


def test_training_compares_the_train_mode_forward_not_the_eval_one():
    infer = validity(Prepared(Case("tv.resnet18", batch_size=4, precision="amp-bf16", threads=1,
                                   input_shape=(3, 64, 64))))
    train = validity(Prepared(Case("tv.resnet18", batch_size=4, precision="amp-bf16", mode="train", threads=1,
                                   input_shape=(3, 64, 64))))
    # batch statistics remove what the images share, so the same rounding is a larger share of what is left
    assert train["output_rel_err"] > infer["output_rel_err"]
    assert tolerance("amp-bf16", "train") > tolerance("amp-bf16", "infer")


def test_a_real_difference_is_still_invalid_in_training(fault_models):
    case = Case("fault_layout", memory_format="channels_last", mode="train", threads=1, input_shape=(3, 8, 8))
    assert validity(Prepared(case))["check_output"] is False


def test_getting_an_inference_reference_ready_runs_no_forward_before_its_cold_start(monkeypatch):
    """Labels feed only the training loss: the reference case (no reference output to read the class count
    from) runs no extra forward for them in inference, and still draws them (one forward) in training."""
    calls = []
    monkeypatch.setattr(torch.nn.Module, "__call__", lambda self, *a, **k: calls.append(type(self).__name__)
                        or torch.nn.Module._call_impl(self, *a, **k))
    infer = Prepared(Case("lenet5", threads=1, input_shape=(1, 32, 32)))
    assert infer.labels is None and not calls
    train = Prepared(Case("lenet5", mode="train", batch_size=3, threads=1, input_shape=(1, 32, 32)))
    assert calls and train.labels.shape == (3,) and int(train.labels.max()) < 10


def _pointers(model):
    return [t.data_ptr() for t in [*model.parameters(), *model.buffers()]]


@pytest.mark.parametrize("mode, precision, llc, kept", [
    ("infer", "fp32", 1, True), ("infer", "amp-bf16", 1, True), ("infer", "bf16", 1, True), ("train", "fp32", 1, False),
    ("infer", "fp32", None, False), ("infer", "fp32", 1 << 40, False)])
def test_a_member_keeps_its_builders_weights_only_when_it_reads_them_and_no_cache_could_hold_them(
        monkeypatch, mode, precision, llc, kept):
    from bench import prepare

    monkeypatch.setattr(prepare, "cpu_llc_bytes", lambda: llc)
    case = Case("lenet5", input_shape=(1, 32, 32), mode=mode, precision=precision, threads=1)
    prepare.prebuild([case])
    built = _pointers(next(iter(prepare._BASES.values())).model)
    # the row's weights_shared: the timed model reads the builder's pages; a bf16 cast is a copy of its own
    assert prepare.own_base(case) is (kept and precision != "bf16")
    base = prepare.take_base(case)
    assert (_pointers(base.model) == built) is kept
    assert not base.shared  # taken: the input is this process's own either way
    assert base.builder_pages is kept


@pytest.mark.parametrize("mode, weight_bytes, llc, kept", [
    ("infer", 2 * 32 * 2**20 + 1, 32 * 2**20, True),  # over twice the cache
    ("infer", 2 * 32 * 2**20, 32 * 2**20, False),  # at it: a copy
    ("train", 10**9, 32 * 2**20, False),  # the optimizer writes the weights
    ("infer", 10**9, None, False),  # a cache of unknown size
])
def test_the_rule_for_keeping_a_builders_pages(mode, weight_bytes, llc, kept):
    from bench.prepare import keeps_builder_pages

    assert keeps_builder_pages(Case("vgg16", mode=mode), weight_bytes, llc) is kept
