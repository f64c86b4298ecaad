"""Hostile input through the real command line: does every one end as promised? (issue 13)

    python benchmarks/hostile_inputs.py [--jobs 2] [--seed 13] [--kind KIND] [--show-bad]

Each input is one ``python -m bench ...`` process in a sandbox of its own (a
temporary folder holding a store, run files, a pytest-benchmark file and a suite
file, copied from one prepared set); the test-only plugin ``tests/fault_models.py``
registers models whose names are hostile to a path, a link, a terminal,
Markdown and matplotlib's mathtext. Cheap commands only: nothing is measured
(``--dry-run``, refusals, reading); ``profile`` runs a tiny 8x8 model for one step.

Every file of the sandbox is hashed before and after, and each input is put in
the worst class that fits, in this order:

    traceback        a Python traceback on stderr, a signal, or no end within 120 s
    escaped          a file written outside the place the command writes to
    data changed     a file that was there changed or removed, or a new one left
                     behind, by a command that failed or only reads (SQLite's own
                     -wal/-shm files aside)
    accepted bad     exit 0 for an input that must be refused
    unsafe output    a raw control character on the terminal, raw HTML in Markdown,
                     a report link that is not a relative path
    clean error      exit 2 or 3 and one line 'error: ...' naming the problem
    valid result     exit 0 (or compare's 1, a regression) for an input that may pass

Inputs come from fixed lists and from generators seeded by ``--seed`` (numbers
spelled every wrong way, run files and suite files with one value replaced by
one of the wrong type, pytest-benchmark files likewise), so a run is
reproducible. It is not a timing benchmark; it takes a few minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import copy
import fnmatch
import hashlib
import json
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
sys.path[:0] = [str(ROOT), str(TESTS)]

from fault_models import HOSTILE_NAMES  # noqa: E402
from hostile import paths, replaced  # noqa: E402

OUTCOMES = ("traceback", "escaped", "data changed", "accepted bad", "unsafe output", "clean error", "valid result")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069]")
PLUGIN_ENV = {"CNNBENCH_PLUGINS": "fault_models"}


@dataclass
class Input:
    kind: str
    label: str
    argv: list[str]
    expect: str = "error"  # error: must be refused; ok: must pass; any: either, if clean
    files: dict[str, Any] = field(default_factory=dict)  # sandbox path -> bytes, str, JSON-able, or None (a folder)
    writes: tuple[str, ...] = ()  # globs (sandbox-relative) a successful command may create or change
    env: dict[str, str] = field(default_factory=dict)
    check: Optional[Callable[[str, Path], str]] = None  # (stdout, sandbox) -> what is unsafe, or ""


# -- what every sandbox starts with --------------------------------------------------------------------------

def small_run(doc: dict[str, Any], n: int = 4, samples: int = 60) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    out["results"] = [{**r, "samples_ns": r["samples_ns"][:samples]} for r in out["results"] if r["samples_ns"]][:n]
    out["run"]["settings"]["cases"] = [r["case"] for r in out["results"]]  # finished: nothing left to resume
    return out


def hostile_run(doc: dict[str, Any]) -> dict[str, Any]:
    """The small run with every name hostile: models, suite, host and run id."""
    out = copy.deepcopy(doc)
    names = list(HOSTILE_NAMES.values())
    for i, result in enumerate(out["results"]):
        result["case"]["model"] = names[i % len(names)]
    out["run"].update(id="../../" + HOSTILE_NAMES["terminal"], suite=HOSTILE_NAMES["markdown"], settings={})
    out["run"]["environment"]["hostname"] = HOSTILE_NAMES["terminal"]
    return out


def pytest_file() -> dict[str, Any]:
    return {"machine_info": {"node": "h", "cpu": {"brand_raw": "cpu"}, "python_version": "3.11"},
            "commit_info": {"id": "abc", "dirty": False}, "version": "4.0.0",
            "benchmarks": [{"name": "test_a", "fullname": "t.py::test_a", "stats": {"data": [0.001, 0.0011, 0.0012]},
                            "extra_info": {}}]}


def prepare(base: Path) -> None:
    """The sandbox's starting files, made once through the library (not the inputs under test)."""
    from bench import escape, runfile
    from bench.store import Store

    fixture = json.loads((TESTS / "fixtures" / "quick_run.json").read_text())
    run, hostile = small_run(fixture), hostile_run(small_run(fixture))
    other = copy.deepcopy(run)
    for result in other["results"]:
        result["case"]["model"] = "lenet5"  # no case in common with run.json
    fewer = copy.deepcopy(run)
    fewer["results"] = fewer["results"][:2]
    for name, doc in (("run.json", run), ("hostile.json", hostile), ("other.json", other), ("fewer.json", fewer)):
        (base / name).write_text(runfile.dumps(doc))
    (base / "pytest.json").write_text(json.dumps(pytest_file()))
    (base / "suite.toml").write_text('[suite]\nname = "t"\nmodels = ["lenet5"]\nbatch_sizes = [1]\n')
    for db, doc in (("s.db", run), ("hostile.db", hostile)):
        store = Store(base / db)
        runfile.import_into(store, runfile.read(base / (("run" if db == "s.db" else "hostile") + ".json")))
        store.engine.dispose()
    summary = {"case_key": hostile["results"][0]["case"]["model"], "step_ms": 1.0, "layers": [], "top_ops": []}
    folder = escape.path(base / "prof", hostile["run"]["id"], summary["case_key"])
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps(summary))
    foreign = sqlite3.connect(base / "foreign.db")  # someone else's database, in the default rollback journal
    foreign.execute("create table people (name text)")
    foreign.execute("insert into people values ('ada')")
    foreign.commit()
    foreign.close()


# -- checks of what reached the terminal ---------------------------------------------------------------------

def raw_control(stdout: str, _: Path) -> str:
    return "a raw control character on the terminal" if CONTROL.search(stdout) else ""


def raw_markdown(stdout: str, sandbox: Path) -> str:
    return raw_control(stdout, sandbox) or ("raw HTML in Markdown" if "<" in stdout or ">" in stdout.replace(
        " -> ", "") else "")


def report_links(_: str, sandbox: Path) -> str:
    html = (sandbox / "out" / "r.html").read_text(errors="replace")
    links = re.findall(r'href="([^"]*)"', html)
    bad = [link for link in links if not link.startswith(("./", "../", "#"))]
    raw = "<img src=x" in html
    return f"unsafe links {bad}" if bad else ("raw HTML from a name" if raw else "")


# -- the inputs ----------------------------------------------------------------------------------------------

BAD_NUMBERS = ["0", "-1", "1.5", "abc", "", " ", "inf", "-inf", "nan", "1e309", "1e3", "²", "١٢", "0x10", "1_000",
               "99999999999999999999", "True", "+1", "1,2", "-0", "0.0", "1e-400", "1" * 5000, "٣.٥", "1.", ".5"]
_INT = re.compile(r"\s*[0-9]+\s*")
_FLOAT = re.compile(r"\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*")


def allowed(text: str, kind: str) -> bool:
    """This script's own reading of the rules in the README and --help (an oracle, not bench.values)."""
    if kind == "int":
        return bool(_INT.fullmatch(text)) and 1 <= int(text) <= 2**31 - 1
    if kind == "shape":
        parts = text.replace("x", ",").split(",")
        return len(parts) == 3 and all(allowed(p, "int") for p in parts)
    number = float(text) if _FLOAT.fullmatch(text) else float("nan")
    most = {"seconds": 7 * 24 * 3600, "threshold": 1.0, "alpha": 0.5, "noise": 1.0}.get(kind, float("inf"))
    return (0 <= number if kind == "tolerance" else 0 < number) and number <= most and number != float("inf")


def spelled(rng: random.Random) -> str:
    """A number spelled one of many ways, right or wrong."""
    value = rng.choice([rng.randint(-3, 40), rng.randint(0, 10**12), rng.uniform(-1, 3), rng.uniform(0, 1e6),
                        10 ** rng.randint(-30, 30)])
    text = rng.choice(["{}", "{:.3g}", "{:e}", " {} ", "+{}", "{}0", "0{}"]).format(value)
    if rng.random() < 0.15:
        text = text.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    return text


def numbers(rng: random.Random) -> list[Input]:
    options = [  # (argv before the value, its kind, whether a valid value may run: no measuring, no profiling)
        (["inspect", "lenet5", "--batch-size"], "int", True), (["inspect", "lenet5", "--input-size"], "shape", True),
        (["run", "--dry-run", "--models", "lenet5", "--batch-sizes"], "int", True),
        (["run", "--dry-run", "--models", "lenet5", "--threads"], "int", True),
        (["run", "--dry-run", "--models", "lenet5", "--max-seconds"], "seconds", True),
        (["run", "--dry-run", "--models", "lenet5", "--timeout"], "seconds", True),
        (["compare", "run.json", "run.json", "--threshold"], "threshold", True),
        (["compare", "run.json", "run.json", "--alpha"], "alpha", True),
        (["compare", "run.json", "run.json", "--noise-limit"], "noise", True),
        (["compare", "run.json", "run.json", "--exact-tolerance"], "tolerance", True),
        (["profile", "lenet5", "--threads", "1", "--steps"], "int", False),
        (["ab", "lenet5", "--vs", "batch-size=2", "--max-seconds"], "seconds", False),
    ]
    out = []
    for argv, kind, may_run in options:
        tried = rng.sample(BAD_NUMBERS, 5) + [spelled(rng) for _ in range(4)]
        for text in tried:
            if kind == "int" and argv[0] == "inspect" and allowed(text, kind) and int(text) > 4096:
                continue  # a valid batch of millions is an analysis of millions of images: not a cheap input
            if may_run or not allowed(text, kind):
                out.append(Input("numbers", f"{argv[-1]} {text[:14]!r}", argv + [text],
                                 ("any" if kind == "shape" else "ok") if allowed(text, kind) else "error"))
    for text in ("2GiB", "512MiB", "1.5GB", "0", "0.5b", "1e99GiB", "-1GiB", "lots", "2XB", "١GiB"):
        out.append(Input("numbers", f"--worker-memory-limit {text!r}",
                         ["run", "--dry-run", "--models", "lenet5", "--worker-memory-limit", text],
                         "ok" if text in ("2GiB", "512MiB", "1.5GB") else "error"))
    return out


WRONG_VALUES = ["text", 7, -1, 1.5, True, None, [], {}, [1, "a"], {"a": 1}, 1e308, float("nan"), "\x1b[2J", 10**30]


def files(rng: random.Random, base: Path) -> list[Input]:
    run = json.loads((base / "run.json").read_text())
    pytest_doc = json.loads((base / "pytest.json").read_text())
    out = []
    # run files: one value replaced by one of the wrong type, read by compare
    for path in rng.sample([p for p in paths(run) if p[0] in ("run", "results")], 40):
        value = rng.choice(WRONG_VALUES)
        out.append(Input("run files", f"{'.'.join(map(str, path))[:40]} = {value!r:.12}",
                         ["compare", "bad.json", "run.json"], "any", {"bad.json": replaced(run, path, value)}))
    # pytest-benchmark files likewise, imported into a new store
    for path in rng.sample(paths(pytest_doc), 16):
        value = rng.choice(WRONG_VALUES)
        out.append(Input("pytest-benchmark files", f"{'.'.join(map(str, path))[:40]} = {value!r:.12}",
                         ["import-pytest-benchmark", "bad.json", "--store", "new.db"], "any",
                         {"bad.json": replaced(pytest_doc, path, value)}, writes=("new.db",)))
    # suite files: each key given a value of the wrong type
    keys = ["models", "batch_sizes", "precisions", "memory_formats", "modes", "compilers", "threads", "input_size",
            "devices", "exclude", "group", "name", "measure", "nonsense"]
    for key in keys:
        for value in rng.sample(WRONG_VALUES[:10], 2):
            table = {"models": ["lenet5"], key: value}
            out.append(Input("suite files", f"{key} = {value!r:.12}", ["run", "--suite", "bad.toml", "--dry-run"],
                             "any", {"bad.toml": _toml(table)}))
    for measure_key in ("target_ci", "min_samples", "max_seconds", "timeout_s"):
        value = rng.choice(["'x'", "-1", "0", "inf", "nan", "1e10", "true", "[1]"])
        out.append(Input("suite files", f"measure.{measure_key} = {value}", ["run", "--suite", "bad.toml", "--dry-run"],
                         "error", {"bad.toml": f'[suite]\nmodels = ["lenet5"]\n[suite.measure]\n{measure_key} = {value}\n'}))
    # shapes no parser expects
    for reader, argv in (("run files", ["compare", "F", "run.json"]),
                         ("pytest-benchmark files", ["import-pytest-benchmark", "F", "--store", "new.db"]),
                         ("suite files", ["run", "--suite", "F", "--dry-run"])):
        name = "F.toml" if reader == "suite files" else "F.json"
        argv = [name if a == "F" else a for a in argv]
        for label, content in (("not UTF-8", b"\xff\xfe\x00bad"), ("empty", b""), ("a folder", None),
                               ("nested 100000 deep", b"[" * 100000), ("binary", bytes(range(256))),
                               ("a 5000-digit number", b"1" * 5000), ("top level a list", b"[1, 2]")):
            out.append(Input(reader, label, argv, "error", {name: content}))
        out.append(Input(reader, "missing", argv, "error"))
    out.append(Input("run files", "valid", ["compare", "run.json", "run.json"], "ok"))
    out.append(Input("pytest-benchmark files", "valid", ["import-pytest-benchmark", "pytest.json", "--store", "new.db"],
                     "ok", writes=("new.db",)))
    out.append(Input("suite files", "valid", ["run", "--suite", "suite.toml", "--dry-run"], "ok"))
    return out


def _toml(table: dict[str, Any]) -> str:
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, float) and v != v:
            return "nan"
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + "}"
        if v is None:
            return '""'
        return repr(v)
    return "[suite]\n" + "".join(f"{k} = {value(v)}\n" for k, v in table.items())


def stores() -> list[Input]:
    cases = [("a folder", "."), ("an unknown URL scheme", "foo://x"), ("PostgreSQL without its driver", "postgresql://u@localhost/x"),
             ("sqlite:/// with no file", "sqlite:///"), ("not a URL", "://x"), ("a text file", "run.json"),
             ("a missing file", "nope.db"), ("empty", ""), ("a foreign SQLite database", "foreign.db"),
             ("a file where its folder should be", "run.json/s.db")]
    out = [Input("stores", label, ["runs", "--store", where]) for label, where in cases]
    out += [Input("stores", "a new store in a file's place", ["run", "--models", "lenet5", "--threads", "1",
                                                             "--max-seconds", "0.2", "--store", "run.json/x.db"])]
    out.append(Input("stores", "valid", ["runs", "--store", "s.db"], "ok", check=raw_control))
    return out


def plugins() -> list[Input]:
    bodies = {"raises": "raise RuntimeError('plugin broke')\n", "a syntax error": "def (:\n",
              "registers a name twice": "from classic_cnns import register_model\nfrom classic_cnns.lenet import lenet5"
                                        "\nregister_model(family='x', input_shape=(1, 32, 32))(lenet5)\n",
              "exits": "raise SystemExit(0)\n"}
    out = [Input("plugins", label, ["list", "lenet5"], "error", {"plug.py": body},
                 env={"CNNBENCH_PLUGINS": "plug", "PYTHONPATH": "."}) for label, body in bodies.items()]
    out.append(Input("plugins", "not importable", ["list", "lenet5"], env={"CNNBENCH_PLUGINS": "no_such_module"}))
    return out


def names() -> list[Input]:
    out = []
    for kind, name in HOSTILE_NAMES.items():
        out.append(Input("names", f"list ({kind})", ["list", "*"], "ok", env=PLUGIN_ENV, check=raw_control))
        out.append(Input("names", f"profile ({kind})", ["profile", name, "--threads", "1", "--steps", "1", "--out",
                                                          "prof", "--run", name], "ok", env=PLUGIN_ENV,
                         writes=("prof/**",), check=raw_control))
        out.append(Input("names", f"run --dry-run ({kind})", ["run", "--dry-run", "--threads", "1", "--models",
                                                              name.replace(",", "?")], "any", env=PLUGIN_ENV,
                         check=raw_control))
    out += [
        Input("names", "profile --run ../../x", ["profile", "lenet5", "--threads", "1", "--steps", "1", "--out", "prof",
                                                 "--run", "../../x"], "ok", writes=("prof/**",), check=raw_control),
        Input("names", "runs (hostile store)", ["runs", "--store", "hostile.db"], "ok", check=raw_control),
        Input("names", "export to the terminal", ["export", "latest", "--store", "hostile.db"], "ok", check=raw_control),
        Input("names", "compare table", ["compare", "hostile.json", "hostile.json"], "ok", check=raw_control),
        Input("names", "compare markdown", ["compare", "hostile.json", "hostile.json", "--format", "markdown"], "ok",
              check=raw_markdown),
        Input("names", "report (links, HTML, mathtext)", ["report", "--latest", "--store", "hostile.db", "-o",
                                                          "out/r.html", "--profiles", "prof"], "ok",
              writes=("out/**",), check=report_links),
        Input("names", "baseline named after a hostile suite", ["baseline", "save", "latest", "--store", "hostile.db",
                                                                "--dir", "bl"]),
    ]
    return out


def silent() -> list[Input]:
    empty = [["list", ""], ["inspect", ""], ["run", "--suite", "", "--dry-run"], ["run", "--models", "", "--dry-run"],
             ["run", "--resume", "", "--store", "s.db"], ["runs", "--store", ""], ["export", "", "--store", "s.db"],
             ["export", "latest", "--store", "s.db", "-o", ""], ["report", "", "--store", "s.db"],
             ["report", "--latest", "--store", "s.db", "-o", ""], ["report", "--latest", "--store", "s.db", "--profiles", ""],
             ["compare", "", "run.json"], ["compare", "run.json", ""], ["baseline", "save", "", "--store", "s.db"],
             ["baseline", "save", "latest", "--store", "s.db", "--dir", ""], ["baseline", "save", "latest", "--name", ""],
             ["import-pytest-benchmark", ""], ["profile", ""], ["profile", "lenet5", "--out", ""],
             ["profile", "lenet5", "--run", ""], ["ab", ""], ["run", "--dry-run", "--instructions", ""],
             ["run", "--dry-run", "--profile-dir", ""]]
    out = [Input("empty strings", " ".join(a if a else "''" for a in argv)[:44], argv) for argv in empty]
    out += [
        Input("gate", "no case in common", ["compare", "run.json", "other.json"]),
        Input("gate", "candidate lacks cases", ["compare", "run.json", "fewer.json"]),
        Input("gate", "no case in common --format json", ["compare", "run.json", "other.json", "--format", "json"]),
        Input("gate", "--allow-missing", ["compare", "run.json", "fewer.json", "--allow-missing"], "ok"),
        Input("gate", "same cases", ["compare", "run.json", "run.json"], "ok"),
        Input("resume", "a finished run (finish time kept)", ["run", "--resume", "20261128-035239-54d61f", "--store",
                                                              "s.db"], "any"),
        Input("resume", "with a flag that changes the run", ["run", "--resume", "20261128-035239-54d61f", "--store",
                                                             "s.db", "--batch-sizes", "4"]),
        Input("resume", "with --suite", ["run", "--resume", "20261128-035239-54d61f", "--store", "s.db", "--suite", "ci"]),
        Input("resume", "an unknown run", ["run", "--resume", "nope", "--store", "s.db"]),
        Input("resume", "an imported run", ["run", "--resume", "../../" + HOSTILE_NAMES["terminal"], "--store",
                                            "hostile.db"]),
        Input("outputs", "export into a missing folder", ["export", "latest", "--store", "s.db", "-o", "no/x.csv"]),
        Input("outputs", "export onto a folder", ["export", "latest", "--store", "s.db", "-o", "."]),
        Input("outputs", "report onto a folder", ["report", "--latest", "--store", "s.db", "-o", "prof"]),
        Input("outputs", "report under a file", ["report", "--latest", "--store", "s.db", "-o", "run.json/r.html"]),
        Input("outputs", "baseline under a file", ["baseline", "save", "latest", "--store", "s.db", "--dir", "run.json"]),
        Input("outputs", "profile under a file", ["profile", "lenet5", "--threads", "1", "--out", "run.json"]),
        Input("outputs", "--profile-dir a file", ["run", "--models", "lenet5", "--threads", "1", "--max-seconds", "0.2",
                                                  "--profile", "--profile-dir", "run.json", "--store", "new.db"]),
        Input("outputs", "export parquet to stdout", ["export", "latest", "--store", "s.db", "--format", "parquet"]),
        Input("outputs", "export valid", ["export", "latest", "--store", "s.db", "-o", "out.csv"], "ok",
              writes=("out.csv",)),
    ]
    return out


# -- running and judging -------------------------------------------------------------------------------------

IGNORED = ("*-wal", "*-shm", "*-journal")


def snapshot(folder: Path) -> dict[str, str]:
    out = {}
    for path in folder.rglob("*"):
        rel = path.relative_to(folder).as_posix()
        if path.is_file() and not any(fnmatch.fnmatch(rel, pattern) for pattern in IGNORED):
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def run_one(item: Input, base: Path, scratch: Path, cache: str) -> tuple[str, str]:
    box = Path(tempfile.mkdtemp(dir=scratch))
    work = box / "a" / "b" / "work"  # two levels to climb before a '../../' leaves the sandbox
    shutil.copytree(base, work)
    for name, content in item.files.items():
        target = work / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            target.mkdir(exist_ok=True)
        elif isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content if isinstance(content, str) else json.dumps(content))
    before, started = snapshot(box), time.monotonic()
    env = dict(os.environ, CNNBENCH_CACHE_DIR=cache, PYTHONPATH=os.pathsep.join([str(ROOT), str(TESTS)]))
    env.update({k: (os.pathsep.join([str(work), str(ROOT), str(TESTS)]) if k == "PYTHONPATH" else v)
                for k, v in item.env.items()})
    try:
        proc = subprocess.run([sys.executable, "-m", "bench", *item.argv], cwd=work, env=env, capture_output=True,
                              text=True, errors="replace", timeout=120)
        code, out, err = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired:
        shutil.rmtree(box, ignore_errors=True)
        return "traceback", "no end within 120 s"
    after = snapshot(box)
    print(f"{time.monotonic() - started:5.1f} s  {item.kind}: {item.label!r}", file=sys.stderr, flush=True)
    verdict = judge(item, code, out, err, before, after, work.relative_to(box).as_posix(), work)
    shutil.rmtree(box, ignore_errors=True)
    return verdict


def judge(item: Input, code: int, out: str, err: str, before: dict[str, str], after: dict[str, str], work: str,
          sandbox: Path) -> tuple[str, str]:
    last = (err.strip().splitlines() or [""])[-1]
    if "Traceback (most recent call last)" in err or code not in (0, 1, 2, 3):
        return "traceback", (last or f"exit {code}")[:100]
    ok = code == 0 or (code == 1 and item.argv[0] == "compare" and "error:" not in err)
    allowed = [f"{work}/{pattern}" for pattern in item.writes] if ok else []
    stray = [p for p in after if p not in before and not any(fnmatch.fnmatch(p, a) for a in allowed)]
    # outside the sandbox's work folder, or beside the place a successful writer was given: a name escaped
    escaped = [p for p in stray if not p.startswith(work + "/") or allowed]
    if escaped:
        return "escaped", ", ".join(escaped)[:100]
    changed = [p for p in before if after.get(p) != before[p] and not any(fnmatch.fnmatch(p, a) for a in allowed)]
    if changed or stray:
        return "data changed", ", ".join(changed + stray)[:100]
    if ok and item.expect == "error":
        return "accepted bad", f"exit {code}"
    if ok:
        problem = item.check(out, sandbox) if item.check else ""
        if not problem and CONTROL.search(err):
            problem = "a raw control character on stderr"
        return ("unsafe output", problem) if problem else ("valid result", "")
    error_lines = [line for line in err.splitlines() if line.startswith("error:")]
    if code in (2, 3) and len(error_lines) == 1 and last.startswith("error:") and not CONTROL.search(err):
        return ("clean error", last[:100]) if item.expect != "ok" else ("accepted bad", "refused a valid input: " + last)
    return "traceback", f"exit {code}: {last[:90]}"  # not one clean line: as bad as a traceback for a user


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--kind", help="only the inputs of this kind")
    parser.add_argument("--show-bad", action="store_true", help="list every input not ended as promised")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="hostile-") as tmp:
        base, scratch, cache = Path(tmp, "base"), Path(tmp, "boxes"), str(Path(tmp, "cache"))
        base.mkdir()
        scratch.mkdir()
        prepare(base)
        inputs = numbers(rng) + files(rng, base) + stores() + plugins() + names() + silent()
        if args.kind:
            inputs = [i for i in inputs if i.kind == args.kind]
        subprocess.run([sys.executable, "-m", "bench", "list", "lenet5"], env=dict(os.environ, CNNBENCH_CACHE_DIR=cache),
                       capture_output=True)  # fill the list cache once
        with ThreadPoolExecutor(args.jobs) as pool:
            verdicts = list(pool.map(lambda item: run_one(item, base, scratch, cache), inputs))
    table: dict[str, Counter] = defaultdict(Counter)
    for item, (outcome, _) in zip(inputs, verdicts):
        table[item.kind][outcome] += 1
    width = max(len(k) for k in table) + 2
    print(f"{'kind':<{width}}{'tried':>6}" + "".join(f"{o:>15}" for o in OUTCOMES))
    for kind, counts in list(table.items()) + [("all", sum(table.values(), Counter()))]:
        print(f"{kind:<{width}}{sum(counts.values()):>6}" + "".join(f"{counts[o]:>15}" for o in OUTCOMES))
    bad = [(item, v) for item, v in zip(inputs, verdicts) if v[0] not in ("clean error", "valid result")]
    if args.show_bad or bad:
        print(f"\n{len(bad)} inputs not ended as promised:" if bad else "")
        for item, (outcome, detail) in bad:
            print(f"  [{outcome}] {item.kind}: {item.label!r}: {' '.join(item.argv)[:80]!r} -> {detail!r}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
