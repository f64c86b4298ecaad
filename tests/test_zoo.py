"""The classic_cnns registry and the models it builds (classic_cnns/)."""

import pytest
import torch
import torchvision

import classic_cnns
from classic_cnns import build_on_meta, get_entry, get_model, list_models

SEED_PARAMS = {
    "alexnet": 16_630_440,
    "vgg11": 132_863_336,
    "vgg13": 133_047_848,
    "vgg16": 138_357_544,
    "vgg19": 143_667_240,
    "googlenet": 13_378_280,
}
OWN = [name for name in list_models() if get_entry(name).source in ("seed", "companion")]


def test_the_registry_lists_every_own_model():
    assert set(SEED_PARAMS) <= set(OWN) and len(OWN) == 13  # the seed's six, VGG-BN x4, alexnet_paper, lenet5, nin


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def meta_model(name: str, **kwargs):
    return build_on_meta(get_entry(name).builder, **kwargs)[0]


@pytest.mark.parametrize("name", sorted(SEED_PARAMS))
def test_seed_parameter_counts(name):
    assert n_params(meta_model(name)) == SEED_PARAMS[name]


def test_googlenet_without_aux_heads():
    assert n_params(meta_model("googlenet", aux_logits=False)) == 6_998_552


def test_companion_parameter_counts():
    # alexnet_paper: full 2012 widths without grouping; lenet5: 156+2416+48120+10164+850.
    assert n_params(meta_model("alexnet_paper")) == 62_378_344
    assert n_params(meta_model("lenet5")) == 61_706
    assert n_params(meta_model("nin")) == 7_439_608


@pytest.mark.parametrize("name", OWN)
def test_every_own_model_maps_its_input_to_logits(name):
    entry = get_entry(name)
    model = meta_model(name).eval()
    out = model(torch.empty(2, *entry.input_shape, device="meta"))
    classes = 10 if name == "lenet5" else 1000
    assert out.shape == (2, classes)


@pytest.mark.parametrize("name", OWN)
def test_builders_are_keyword_only_and_cite_their_paper(name):
    builder = get_entry(name).builder
    with pytest.raises(TypeError):
        builder(10)
    assert "Deviations" in builder.__doc__ or "deviation" in builder.__doc__.lower()


def test_googlenet_returns_aux_outputs_only_in_training():
    model = meta_model("googlenet")
    x = torch.empty(2, 3, 224, 224, device="meta")
    main, aux2, aux1 = model.train()(x)
    assert main.shape == aux2.shape == aux1.shape == (2, 1000)
    assert isinstance(model.eval()(x), torch.Tensor)
    assert isinstance(meta_model("googlenet", aux_logits=False).train()(x), torch.Tensor)


def test_googlenet_accepts_other_input_sizes():
    model = meta_model("googlenet").eval()
    assert model(torch.empty(1, 3, 160, 200, device="meta")).shape == (1, 1000)


def test_seed_init_options():
    torch.manual_seed(0)
    alex = get_model("alexnet", init_weights=True)
    fc = alex.classifier[1]
    assert torch.all(fc.bias == 0) and abs(fc.weight.std().item() - 0.01) < 1e-3
    conv = alex.features[0]
    fan_out = conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1]
    assert abs(conv.weight.std().item() - (2 / fan_out) ** 0.5) < 0.1 * (2 / fan_out) ** 0.5
    vgg = get_model("vgg11", init_weights=True)
    bound = (6 / (3 * 9 + 64 * 9)) ** 0.5  # Xavier-uniform on the first 3x3 conv
    assert vgg.features[0].weight.abs().max().item() <= bound
    assert vgg.features[0].weight.abs().max().item() > 0.9 * bound


def test_list_models_patterns():
    assert list_models("vgg1*") == ["vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"]
    assert list_models("lenet*,nin") == ["lenet5", "nin"]
    assert "tv.resnet50" in list_models("tv.res*")
    assert list_models("nothing-like-this*") == []
    torchvision_names = torchvision.models.list_models(module=torchvision.models)
    assert len(list_models("tv.*")) == len(torchvision_names)


def test_unknown_name_suggests_close_matches():
    with pytest.raises(classic_cnns.UnknownModelError) as info:
        get_model("vgg17")
    assert "'vgg17'" in str(info.value) and "vgg16" in str(info.value)
    with pytest.raises(KeyError):
        get_entry("tv.resnet51")


def test_entries_know_their_input_shape():
    assert get_entry("lenet5").input_shape == (1, 32, 32)
    assert get_entry("vgg16").input_shape == (3, 224, 224)
    assert get_entry("tv.inception_v3").input_shape == (3, 299, 299)
    assert get_entry("tv.efficientnet_b7").input_shape == (3, 600, 600)
    # DEFAULT weights are 518x518, but the default-built model only takes 224x224
    assert get_entry("tv.vit_h_14").input_shape == (3, 224, 224)


def test_regnet_needs_the_cpu_fallback_and_still_builds_on_meta():
    model, built_on = build_on_meta(get_entry("tv.regnet_x_400mf").builder)
    assert built_on == "cpu"
    assert all(p.device.type == "meta" for p in model.parameters())


@pytest.mark.parametrize("depth", [11, 13, 16, 19])
@pytest.mark.parametrize("bn", ["", "_bn"])
def test_seed_vgg_loads_torchvision_state_dict_and_agrees(depth, bn):
    name = f"vgg{depth}{bn}"
    reference = getattr(torchvision.models, name)().eval()
    ours = get_model(name).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 3, 224, 224)
    with torch.inference_mode():
        # torchvision's adaptive pool is the identity on 7x7 maps, so the outputs are the same computation
        assert torch.equal(ours(x), reference(x))
