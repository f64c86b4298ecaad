"""bench/catalog.py: `cnnbench list` from a cache of the static analysis, keyed by what changes the figures."""

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.catalog import fingerprint, list_rows

TESTS = Path(__file__).resolve().parent


def _list(cache: Path, *argv: str, plugins: str = "") -> tuple[list[dict], set[str]]:
    """`cnnbench list ARGV --format json` in a fresh interpreter: its rows, and the modules it loaded."""
    code = ("import json, sys\nfrom bench.cli import main\ncode = main(sys.argv[1:])\n"
            "print('MODULES', json.dumps(sorted(sys.modules)))\nsys.exit(code)")
    env = dict(os.environ, CNNBENCH_CACHE_DIR=str(cache), CNNBENCH_PLUGINS=plugins,
               PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", code, "list", *argv, "--format", "json"], capture_output=True,
                          text=True, env=env, check=True)
    out, _, modules = done.stdout.rpartition("MODULES ")
    return json.loads(out), set(json.loads(modules))


def test_a_warm_cache_answers_without_torch_and_says_the_same(tmp_path):
    cold, cold_modules = _list(tmp_path, "alexnet,lenet5")
    warm, warm_modules = _list(tmp_path, "alexnet,lenet5")
    assert "torch" in cold_modules and "torch" not in warm_modules
    assert warm == cold and cold[0]["params"] == 16_630_440 and cold[0]["input_shape"] == [3, 224, 224]
    others, _ = _list(tmp_path, "vgg1?")  # names come from the cache, missing rows are computed and added
    assert [r["model"] for r in others] == ["vgg11", "vgg13", "vgg16", "vgg19"]


def test_rows_are_keyed_by_what_changes_them(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNBENCH_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("CNNBENCH_PLUGINS", raising=False)
    list_rows("lenet5")
    (path,) = tmp_path.glob("catalog-*.json")
    doc = json.loads(path.read_text())
    doc["rows"]["lenet5"]["params"] = 1  # the cache is what answers ...
    path.write_text(json.dumps(doc))
    assert list_rows("lenet5")[0]["params"] == 1
    before = fingerprint()
    monkeypatch.setenv("CNNBENCH_PLUGINS", "fault_models")  # ... until something that changes the figures changes
    assert fingerprint() != before
    rows, _ = _list(tmp_path, "lenet5", plugins="fault_models")
    assert rows[0]["params"] == 61_706


def test_no_usable_cache_folder_is_no_error(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("CNNBENCH_CACHE_DIR", str(blocker / "sub"))
    assert list_rows("lenet5")[0]["macs"] == 416_520
    monkeypatch.setenv("CNNBENCH_CACHE_DIR", "")
    assert list_rows("lenet5")[0]["macs"] == 416_520


def test_an_unknown_pattern_still_names_close_matches(tmp_path, monkeypatch, capsys):
    from bench.cli import main

    monkeypatch.setenv("CNNBENCH_CACHE_DIR", str(tmp_path))
    list_rows("lenet5")
    assert main(["list", "vgg17"]) == 2
    assert "unknown model 'vgg17'" in capsys.readouterr().err


def test_a_plugin_that_cannot_be_imported_is_the_environment_not_bad_input(tmp_path, monkeypatch, capsys):
    from bench.cli import main
    from bench.zoo import load_plugins

    monkeypatch.setenv("CNNBENCH_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CNNBENCH_PLUGINS", "no_such_plugin_module")
    load_plugins.cache_clear()
    try:
        assert main(["list", "lenet5"]) == 3
    finally:
        load_plugins.cache_clear()
    err = capsys.readouterr().err
    assert "cannot import plugin 'no_such_plugin_module'" in err and len(err.strip().splitlines()) == 1


def test_a_malformed_cache_file_is_a_miss(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNBENCH_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("CNNBENCH_PLUGINS", raising=False)
    list_rows("lenet5")
    (path,) = tmp_path.glob("catalog-*.json")
    for broken in ({"names": "lenet5", "rows": {}}, {"names": ["lenet5"], "rows": {"lenet5": {"params": "x"}}},
                   {"names": [1], "rows": {}}, [1, 2]):
        path.write_text(json.dumps(broken))
        assert list_rows("lenet5")[0]["params"] == 61_706
    path.write_bytes(b"\xff\xfe not utf-8")
    assert list_rows("lenet5")[0]["params"] == 61_706


def test_a_plugin_package_is_keyed_by_all_its_files_and_imported_warm(tmp_path, monkeypatch):
    package = tmp_path / "pkgplugin"
    package.mkdir()
    (package / "__init__.py").write_text("from . import models\n")
    (package / "models.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("CNNBENCH_PLUGINS", "pkgplugin")
    before = fingerprint()
    (package / "models.py").write_text("X = 22\n")  # a submodule edited: other figures may follow
    assert fingerprint() != before
    cache = tmp_path / "cache"
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    rows, _ = _list(cache, "lenet5", plugins="pkgplugin")
    assert rows[0]["params"] == 61_706
    (package / "__init__.py").write_text("raise RuntimeError('broken plugin')\n")
    os.utime(package / "__init__.py", ns=(1, 1))  # even with a stale key, the warm path imports the plugin
    code = "import sys\nfrom bench.cli import main\nsys.exit(main(['list', 'lenet5']))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, CNNBENCH_CACHE_DIR=str(cache), CNNBENCH_PLUGINS="pkgplugin"))
    assert done.returncode == 3 and "cannot import plugin 'pkgplugin'" in done.stderr
    assert "broken plugin" in done.stderr and "Traceback" not in done.stderr
