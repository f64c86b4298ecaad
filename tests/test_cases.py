"""bench/cases.py: suites as products of axes, TOML, built-ins, CLI overrides, bad suites."""

import textwrap

import pytest

from bench.cases import Case
from bench.suites import BUILTIN, SEED_MODELS, load_toml, override, resolve_suite, suite_from_dict
from bench.cli import main
from bench.errors import BadValue, UnknownModel


def test_product_and_exclusions():
    suite = suite_from_dict({
        "models": ["alexnet", "lenet5"], "batch_sizes": [1, 8], "precisions": ["fp32", "amp-bf16"],
        "threads": [1], "exclude": [{"model": "lenet5", "precision": "amp-bf16"}],
    }, name="t")
    cases = suite.cases()
    assert len(cases) == 2 * 2 * 2 - 2
    assert all(not (c.model == "lenet5" and c.precision == "amp-bf16") for c in cases)
    lenet = next(c for c in cases if c.model == "lenet5")
    assert lenet.input_shape == (1, 32, 32) and lenet.threads == 1


def test_case_identity_is_stable_and_complete():
    case = Case("vgg16", "cuda", 8, "amp-fp16", "channels_last", "train", "compile", 4, (3, 224, 224))
    assert case.key == "vgg16|cuda|b8|amp-fp16|channels_last|train|compile|t4|3x224x224"
    assert Case.from_dict(case.to_dict()) == case
    assert not case.is_reference and Case("vgg16").is_reference


def test_builtin_suites():
    quick = resolve_suite(None).cases()
    assert {c.model for c in quick} == set(SEED_MODELS)
    assert {c.device for c in quick} == {"cpu"} and {c.mode for c in quick} == {"infer"}
    assert len({c.batch_size for c in quick}) == 2
    assert {c.precision for c in quick} == {"fp32", "amp-bf16"}
    assert {c.memory_format for c in quick} == {"contiguous", "channels_last"}
    assert len(quick) == 6 * 2 * 2 * 2
    gpu = resolve_suite("gpu").cases()
    assert {c.device for c in gpu} == {"cuda"} and {c.compiler for c in gpu} == {"eager", "compile"}
    assert min(c.batch_size for c in gpu) == 1 and max(c.batch_size for c in gpu) == 256
    full = resolve_suite("cpu-full").cases()
    assert {"train", "infer"} == {c.mode for c in full} and "compile" in {c.compiler for c in full}
    assert set(BUILTIN) == {"quick", "cpu-full", "gpu", "ci"}


def test_toml_file_and_pyproject_table(tmp_path):
    suite_file = tmp_path / "mine.toml"
    suite_file.write_text(textwrap.dedent("""
        [suite]
        models = ["vgg1*"]
        batch_sizes = [2]
        memory_formats = ["contiguous", "channels_last"]
        exclude = [{ model = ["vgg13", "vgg13_bn"] }]
        [suite.measure]
        max_seconds = 2.5
    """))
    suite = load_toml(str(suite_file))
    assert suite.name == "mine" and suite.measure.max_seconds == 2.5
    assert {c.model for c in suite.cases()} == {"vgg11", "vgg11_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"}
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "x"\n[tool.cnnbench]\nname = "from-pyproject"\nmodels = ["nin"]\n')
    assert load_toml(str(pyproject)).cases()[0].model == "nin"
    assert load_toml(str(pyproject)).name == "from-pyproject"


def test_cli_flags_override_the_suite():
    suite = override(resolve_suite("quick"), models="lenet5", batch_sizes="1,2,3", precisions="fp32",
                     memory_formats=None, threads="1")
    cases = suite.cases()
    assert len(cases) == 3 * 2 and {c.threads for c in cases} == {1}
    assert suite.name == "quick+flags"


@pytest.mark.parametrize("table, message", [
    ({"models": ["alexnet"], "precisions": ["fp64"]}, "axis 'precisions' takes fp32, amp-bf16, amp-fp16, bf16, fp16; got 'fp64'"),
    ({"models": ["alexnet"], "batch_sizes": [-4]}, "batch size must be a positive integer, got -4"),
    ({"models": ["alexnet"], "batch_sizes": []}, "must be a non-empty list"),
    ({"models": ["alexnet"], "exclude": [{"model": "alexnet"}]}, "has no cases"),
    ({"models": ["alexnet"], "colour": "red"}, "unknown suite key 'colour'"),
    ({"models": ["alexnet"], "exclude": [{"flavour": "x"}]}, "unknown exclude key 'flavour'"),
    ({"models": ["alexnet"], "measure": {"max_seconds": -1}}, "measure.max_seconds must be a positive number"),
    ({"models": ["alexnet"], "threads": [0]}, "threads must be positive integers, got 0"),
    ({"batch_sizes": [1]}, "names no models"),
])
def test_bad_suites(table, message):
    with pytest.raises(BadValue, match=None) as info:
        suite_from_dict(table, name="bad").cases()
    assert message in str(info.value)


def test_unknown_model_in_a_suite():
    with pytest.raises(UnknownModel, match="'vgg17'"):
        suite_from_dict({"models": ["vgg17"]}, name="bad")


def test_malformed_toml(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[suite\nmodels = [")
    with pytest.raises(BadValue, match="is not valid TOML"):
        load_toml(str(bad))


@pytest.mark.parametrize("argv, fragment", [
    (["run", "--dry-run", "--precision", "fp64"], "got 'fp64'"),
    (["run", "--dry-run", "--batch-sizes", "-3"], "got '-3'"),
    (["run", "--dry-run", "--models", "lenet5", "--mode", "infer", "--devices", "tpu"], "got 'tpu'"),
    (["run", "--dry-run", "--suite", "nosuch"], "unknown suite 'nosuch'"),
    (["run", "--dry-run", "--max-seconds", "0"], "--max-seconds must be a positive number, got '0'"),
])
def test_cli_bad_suite_is_one_line(capsys, argv, fragment):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1


def test_cli_malformed_toml_and_empty_product(capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("models = [\n")
    assert main(["run", "--dry-run", "--suite", str(bad)]) == 2
    assert "not valid TOML" in capsys.readouterr().err
    empty = tmp_path / "empty.toml"
    empty.write_text('models = ["lenet5"]\nexclude = [{ model = "lenet5" }]\n')
    assert main(["run", "--dry-run", "--suite", str(empty)]) == 2
    assert "has no cases" in capsys.readouterr().err


def test_dry_run_lists_cases(capsys):
    assert main(["run", "--dry-run", "--models", "lenet5", "--precision", "fp32,bf16", "--threads", "1",
                 "--batch-sizes", "1"]) == 0
    out = capsys.readouterr().out.split()
    assert out == ["lenet5|cpu|b1|fp32|contiguous|infer|eager|t1|1x32x32",
                   "lenet5|cpu|b1|fp32|channels_last|infer|eager|t1|1x32x32",
                   "lenet5|cpu|b1|bf16|contiguous|infer|eager|t1|1x32x32",
                   "lenet5|cpu|b1|bf16|channels_last|infer|eager|t1|1x32x32"]


def test_the_axis_table_is_the_one_description_of_a_case():
    from dataclasses import fields

    from bench.cases import AXES, EXCLUDE_KEYS, Case
    from bench.cli import build_parser
    from bench.suites import Suite

    assert [axis.field for axis in AXES] == [f.name for f in fields(Case)]
    assert {axis.suite_key for axis in AXES} <= {f.name for f in fields(Suite)}
    assert set(EXCLUDE_KEYS) == {f.name for f in fields(Case)} - {"input_shape"}
    # a valid value of each axis (checked when the command line is parsed)
    value = {axis: axis.choices[0] if axis.choices else "1,8,8" if axis.field == "input_shape" else
             "cpu" if axis.field == "device" else "1" if axis.parse else "m" for axis in AXES}
    run = build_parser().parse_args(["run", *[x for axis in AXES for x in (axis.run_flag, value[axis])]])
    case = build_parser().parse_args(["profile", "m", *[x for axis in AXES if axis.case_flag
                                                        for x in (axis.case_flag, value[axis])]])
    assert all(getattr(run, axis.run_flag[2:].replace("-", "_")) == value[axis] for axis in AXES)
    assert all(getattr(case, axis.case_flag[2:].replace("-", "_")) == value[axis] for axis in AXES if axis.case_flag)


def _devices_left(exclude):
    suite = suite_from_dict({"models": ["lenet5"], "devices": ["cpu", "cuda", "cuda:1", "cuda:2"],
                             "exclude": exclude}, name="t")
    return sorted(c.device for c in suite.cases())


def test_an_exclusion_by_device_kind_covers_every_gpu_and_by_index_one():
    assert _devices_left([{"device": "cuda"}]) == ["cpu"]
    assert _devices_left([{"device": "cuda:1"}]) == ["cpu", "cuda", "cuda:2"]
    assert _devices_left([{"device": "cuda:0"}]) == ["cpu", "cuda:1", "cuda:2"]  # cuda:0 is the case spelt cuda
    assert _devices_left([{"device": ["cpu", " cuda:02"]}]) == ["cuda", "cuda:1"]
    amp = suite_from_dict({"models": ["lenet5"], "devices": ["cuda", "cuda:1"], "precisions": ["fp32", "amp-bf16"],
                           "exclude": [{"device": "cuda", "precision": "amp-bf16"}]}, name="t").cases()
    assert sorted((c.device, c.precision) for c in amp) == [("cuda", "fp32"), ("cuda:1", "fp32")]


def test_an_exclusion_by_device_survives_the_suite_file(tmp_path):
    path = tmp_path / "gpus.toml"
    path.write_text('models = ["lenet5"]\ndevices = ["cuda:0", "cuda:1"]\nbatch_sizes = [1, 8]\n'
                    'exclude = [{ device = "cuda", batch_size = 8 }, { device = "cuda:1", batch_size = 1 }]\n')
    cases = load_toml(str(path)).cases()
    assert sorted((c.device, c.batch_size) for c in cases) == [("cuda", 1)]


@pytest.mark.parametrize("rule, message", [
    ({"device": "gpu"}, "device must be one of cpu, cuda, or cuda:N for one GPU by its index (e.g. cuda:1), got 'gpu'"),
    ({"device": ["cuda", "cuda:x"]}, "got 'cuda:x'"),
    ({"precision": "amp-bf17"},
     "exclude precision must be one of fp32, amp-bf16, amp-fp16, bf16, fp16, got 'amp-bf17'"),
    ({"batch_size": 0}, "batch size must be a positive integer, got 0"),
    ({"mode": "training"}, "exclude mode must be one of infer, train, got 'training'"),
])
def test_an_exclusion_that_could_never_match_is_refused_with_the_value(rule, message):
    with pytest.raises(BadValue) as info:
        suite_from_dict({"models": ["lenet5"], "exclude": [rule]}, name="t")
    assert message in str(info.value)
