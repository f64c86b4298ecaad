"""Static analysis on the meta device (bench/analysis.py)."""


import pytest
import torchvision

from bench.analysis import analyse, share
from bench.errors import BadValue, ShapeMismatch, UnknownModel
from classic_cnns import get_entry

TORCHVISION = torchvision.models.list_models(module=torchvision.models)
# torchvision publishes these weights without the auxiliary heads
WITHOUT_AUX = {"googlenet": {"aux_logits": False}}


def reference_weights(name: str):
    """The weights entry (DEFAULT first) whose crop size is the one the registry's default model takes."""
    entries = list(torchvision.models.get_model_weights(name))
    default = torchvision.models.get_model_weights(name).DEFAULT
    entries.remove(default)
    crop = get_entry(f"tv.{name}").input_shape[-1]
    for weights in [default, *entries]:
        size = weights.transforms.keywords.get("crop_size")
        if (size[0] if isinstance(size, (list, tuple)) else size) == crop:
            return weights
    raise AssertionError(f"no weights entry of {name} at crop {crop}")


def test_there_are_80_torchvision_classifiers():
    assert len(TORCHVISION) == 80


@pytest.mark.parametrize("name", TORCHVISION)
def test_params_and_macs_match_torchvision_weights_meta(name):
    meta = reference_weights(name).meta
    a = analyse(f"tv.{name}", training=False, model_kwargs=WITHOUT_AUX.get(name))
    assert a.params == meta["num_params"]
    assert round(a.macs / 1e9, 3) == meta["_ops"]
    assert a.flops == 2 * a.macs


@pytest.mark.parametrize("depth", [11, 13, 16, 19])
def test_bn_and_plain_vgg_have_equal_macs(depth):
    plain, bn = analyse(f"vgg{depth}"), analyse(f"vgg{depth}_bn")
    assert plain.macs == bn.macs > 0
    assert bn.params - plain.params == 2 * sum(  # BN adds a weight and a bias per channel
        layer.output_shape[1] for layer in bn.layers if layer.type == "BatchNorm2d")


@pytest.mark.parametrize("name", ["alexnet", "vgg16", "googlenet", "nin", "lenet5", "tv.resnet50",
                                  "tv.vit_b_16", "tv.mobilenet_v3_small", "tv.regnet_y_400mf"])
def test_module_hook_count_agrees_with_dispatch_count_for_conv_and_linear(name):
    a = analyse(name, batch_size=3, training=False)
    by_path = {layer.path: layer for layer in a.layers}
    assert a.hook_macs, "no conv or linear layer was seen"
    for path, macs in a.hook_macs.items():
        assert by_path[path].macs == macs, path


def test_known_figures_of_the_seed_alexnet():
    a = analyse("alexnet", batch_size=2)
    conv1 = next(layer for layer in a.layers if layer.path == "features.0")
    assert conv1.output_shape == (2, 48, 55, 55)
    assert conv1.macs == 2 * 48 * 55 * 55 * 3 * 11 * 11
    assert conv1.activation_bytes == 2 * 48 * 55 * 55 * 4
    # in-place ReLU writes nothing new
    assert next(layer for layer in a.layers if layer.path == "features.1").activation_bytes == 0
    fc3 = next(layer for layer in a.layers if layer.path == "classifier.6")
    assert fc3.macs == 2 * 2048 * 1000 and fc3.params == 2048 * 1000 + 1000


def test_macs_scale_linearly_with_batch_and_dtype_halves_bytes():
    one, many = analyse("vgg11", batch_size=1), analyse("vgg11", batch_size=16)
    assert many.macs == 16 * one.macs
    assert many.activation_bytes == 16 * one.activation_bytes
    # LeNet-5 has no max pool, whose int64 indices would not halve
    full, half = analyse("lenet5", batch_size=16), analyse("lenet5", batch_size=16, dtype="bfloat16")
    assert half.activation_bytes * 2 == full.activation_bytes
    assert half.macs == full.macs
    assert one.param_bytes == {"float32": 4 * one.params, "bfloat16": 2 * one.params, "float16": 2 * one.params}


def test_layers_add_up_to_the_totals():
    for name in ["googlenet", "tv.vit_b_16", "tv.densenet121"]:
        a = analyse(name)
        assert sum(layer.params for layer in a.layers) == a.params
        assert sum(layer.macs for layer in a.layers) == a.macs
        assert sum(layer.activation_bytes for layer in a.layers) == a.activation_bytes
        assert len({layer.path for layer in a.layers}) == len(a.layers)


def test_max_pool_indices_count_as_written_bytes():
    # eager max_pool2d goes through max_pool2d_with_indices and allocates int64 indices
    a = analyse("alexnet", batch_size=1)
    pool = next(layer for layer in a.layers if layer.path == "features.2")
    assert pool.activation_bytes == 48 * 27 * 27 * (4 + 8)


def test_uncalled_auxiliary_heads_are_listed_without_shapes():
    a = analyse("googlenet")
    aux = [layer for layer in a.layers if layer.path.startswith("aux")]
    assert aux and all(layer.output_shape is None and layer.macs == 0 for layer in aux)


def test_saved_for_backward_bytes():
    # LeNet-5 in train mode keeps: the input, each conv/linear output for tanh's backward
    # (tanh saves its result), and each pool's input.
    a = analyse("lenet5", batch_size=4)
    f = 4  # float32
    expected = 4 * f * (1 * 32 * 32 + 6 * 28 * 28 + 6 * 14 * 14 + 16 * 10 * 10 + 16 * 5 * 5 + 120 + 84)
    # tanh results feed the next layer, which saves the same storage again: counted once
    assert a.saved_bytes == expected
    assert analyse("lenet5", training=False).saved_bytes is None


def test_vgg19_at_batch_1024_scales_on_meta():  # its time is measured by benchmarks/list_speed.py
    a = analyse("vgg19", batch_size=1024)
    assert a.macs == 1024 * analyse("vgg19").macs and a.built_on == "meta"


def test_bad_input():
    with pytest.raises(UnknownModel, match="'vgg17'"):
        analyse("vgg17")
    with pytest.raises(ShapeMismatch, match="'3x64x64'.*'alexnet'"):
        analyse("alexnet", input_shape=(3, 64, 64))
    with pytest.raises(ShapeMismatch):
        analyse("vgg16", input_shape=(3, 200, 200))
    with pytest.raises(BadValue, match="'int4'"):
        analyse("alexnet", dtype="int4")


def test_googlenet_off_224_has_eval_figures_and_says_why_train_ones_are_missing():
    a = analyse("googlenet", input_shape=(3, 160, 160))
    assert a.macs > 0 and a.saved_bytes is None
    assert a.notes and "train-mode" in a.notes[0]
    assert analyse("googlenet", input_shape=(3, 160, 160), model_kwargs={"aux_logits": False}).saved_bytes > 0


def test_share_of_nothing_is_nan():
    assert share(1, 4) == 0.25
    assert share(0, 0) != share(0, 0)
