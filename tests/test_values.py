"""bench/values.py: one rule per kind of value, every bad one refused with its value quoted."""

import pytest
from hypothesis import given, settings, strategies as st

from bench import values
from bench.cli import main
from bench.errors import BadValue


@pytest.mark.parametrize("text", ["0", "-3", "1.5", "abc", "", "²", "١٢", "1e3", "99999999999999999999", True])
def test_positive_int_refuses(text):
    with pytest.raises(BadValue, match="batch size must be a positive integer, got"):
        values.batch_size(text)


@pytest.mark.parametrize("text, expected", [("1", 1), (" 32 ", 32), (8, 8)])
def test_positive_int_accepts(text, expected):
    assert values.batch_size(text) == expected


@pytest.mark.parametrize("text", ["0", "-1", "inf", "nan", "-inf", "x", "", "1e999"])
def test_positive_float_refuses_non_finite_and_non_positive(text):
    with pytest.raises(BadValue, match="--threshold must be a positive number"):
        values.positive_float(text, "--threshold")


def test_sizes_and_shapes():
    assert values.byte_size("2GiB") == 2 * 2**30 and values.byte_size("512MiB") == 512 * 2**20
    assert values.input_size("3x32x32") == (3, 32, 32) and values.input_size([1, 8, 8]) == (1, 8, 8)
    for bad in ("0", "2XB", "1e99GiB", "-1GiB"):
        with pytest.raises(BadValue, match="memory size"):
            values.byte_size(bad)
    for bad in ("3,224", "3,²,4", "0,8,8", "3,224,224,1"):
        with pytest.raises(BadValue, match="input size must be three positive integers"):
            values.input_size(bad)


def test_durations_probabilities_and_file_names():
    assert values.seconds("600", "--timeout") == 600.0 and values.fraction("0.05", "--alpha", 0.5) == 0.05
    with pytest.raises(BadValue, match="--timeout must be at most 604800 s"):
        values.seconds("1e10", "--timeout")  # would overflow a timer after the run was stored
    for bad in ("0.51", "1.5", "0"):
        with pytest.raises(BadValue, match="--alpha must be"):
            values.fraction(bad, "--alpha", 0.5, "a probability")
    for bad in ("0.5", "0.4b"):  # a fraction of a byte is no limit
        with pytest.raises(BadValue, match="at least 1 byte"):
            values.byte_size(bad)
    assert values.file_stem("nightly-2.1_x") == "nightly-2.1_x"
    for bad in ("../x", "a/b", "", ".hidden", "x" * 201, 5):
        with pytest.raises(BadValue, match="name must be letters, digits"):
            values.file_stem(bad, "baseline name")


def test_measure_settings_accept_whole_floats_from_stored_runs():
    from bench.cases import Measure

    assert Measure.from_dict({"min_samples": 10.0, "max_seconds": 2}) == Measure(min_samples=10, max_seconds=2.0)
    assert isinstance(Measure.from_dict({"min_samples": 10.0}).min_samples, int)
    for data, message in (({"min_samples": 10.5}, "measure.min_samples must be a positive integer"),
                          ({"timeout_s": 1e10}, "measure.timeout_s must be at most")):
        with pytest.raises(BadValue, match=message):
            Measure.from_dict(data)


@pytest.mark.parametrize("argv, message", [
    (["run", "--dry-run", "--isolation", "thread"], "--isolation must be one of process, none, got 'thread'"),
    (["run", "--dry-run", "--timeout", "1e10"], "--timeout must be at most"),
    (["export", "latest", "--format", "xml"], "format must be one of csv, json, parquet, got 'xml'"),
    (["baseline", "save", "latest", "--name", "../up"], "baseline name must be letters"),
    (["ab", "lenet5", "--vs", "batch-size=2", "--alpha", "1.5"], "--alpha must be a probability"),
    (["compare", "a.json", "b.json", "--confirm", "--gate", "timing"], "--gate must be one of all, exact, got 'timing'"),
    (["compare", "a.json", "b.json", "--confirm", "--instructions-tolerance", "nan"], "--instructions-tolerance"),
    (["compare", "a.json", "b.json", "--confirm", "some"], "--confirm must be one of doubtful, all, got 'some'"),
    (["profile", "lenet5", "--steps", "2.5"], "--steps must be a positive integer, got '2.5'"),
    (["run", "--dry-run", "--worker-memory-limit", "lots"], "memory size"),
    (["inspect", "lenet5", "--dtype", "int4"], "dtype must be one of float32, bfloat16, float16, got 'int4'"),
])
def test_options_are_refused_before_any_work(capsys, argv, message):
    # the run files do not exist: had the command started, it would have failed on them instead
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


# -- every CLI value, hostile: a clean one-line refusal or a valid value, never a traceback ---------------------

CLI_VALUES = [
    ["inspect", "lenet5", "--batch-size"], ["inspect", "lenet5", "--input-size"], ["inspect", "lenet5", "--dtype"],
    ["run", "--batch-sizes"], ["run", "--threads"], ["run", "--max-seconds"], ["run", "--timeout"],
    ["run", "--worker-memory-limit"], ["run", "--group"], ["run", "--isolation"], ["run", "--resume"],
    ["run", "--suite"], ["run", "--store"], ["compare", "a.json", "b.json", "--threshold"],
    ["compare", "a.json", "b.json", "--alpha"], ["compare", "a.json", "b.json", "--noise-limit"],
    ["compare", "a.json", "b.json", "--exact-tolerance"], ["compare", "a.json", "b.json", "--confirm"],
    ["ab", "lenet5", "--vs"], ["profile", "lenet5", "--steps"], ["profile", "lenet5", "--run"],
    ["baseline", "save", "latest", "--name"], ["export", "latest", "--format"], ["export"], ["report"],
]
NUMBERISH = st.one_of(st.text(max_size=30), st.integers().map(str), st.floats().map(str),
                      st.sampled_from(["²", "١٢", "1e309", "nan", "-0", "1_0", "0x1f", "9" * 40, "1,2", "3x8x8"]))


@settings(max_examples=40, deadline=None)
@given(NUMBERISH)
def test_every_cli_value_is_refused_in_one_line_or_parsed(text):
    import contextlib
    import io

    from bench.cli import build_parser
    from bench.errors import CnnbenchError

    for argv in CLI_VALUES:
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err):
                build_parser().parse_args(argv + [text])
        except CnnbenchError as exc:  # a type= of bench.values: cli.main prints it as one line, exit 2 or 3
            assert exc.exit_code in (2, 3) and "\n" not in str(exc).strip(), (argv, text, exc)
        except SystemExit as exc:  # argparse's own refusal, printed by cli._Parser as one line
            assert exc.code == 2 and len(err.getvalue().strip().splitlines()) == 1, (argv, text, err.getvalue())
