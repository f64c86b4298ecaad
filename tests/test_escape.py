"""bench/escape.py: hostile names (a plugin registers any name) as paths, links, terminal text, Markdown, plot text."""

import base64
import json
import re
from xml.etree import ElementTree
from pathlib import Path
from urllib.parse import unquote

import pytest
from hypothesis import given, settings, strategies as st

from bench import escape, runfile, views
from bench.cli import main
from bench.store import Store

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "quick_run.json"
# tests/fault_models.py's hostile names, as written there: importing it here would register its models for
# every test of this process (tests/test_zoo.py is parametrised over the registry)
HOSTILE_NAMES = {"path": "../../escaped", "link": "javascript:alert(1)", "terminal": "\x1b[2J\x1b[1;31mFAKE ROW\r",
                 "mathtext": "$\\frac{1}{0}$ ^_^ $", "markdown": "<img src=x onerror=alert(1)>|`md`[x](javascript:1)",
                 "nested path": "nested/name"}


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_a_name_becomes_one_path_component_inside_its_folder(name):
    part = escape.slug(name)
    assert part not in ("", ".", "..") and "/" not in part and "\x00" not in part and len(part) <= 100
    assert escape.path("/srv/root", name, name).resolve().parent.parent == Path("/srv/root")
    if part == name:  # kept as it is only when it is a plain file stem
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name)


def test_slugs_of_different_names_differ_and_plain_names_stay():
    assert escape.slug("alexnet") == "alexnet" and escape.slug("20261128-035239-54d61f") == "20261128-035239-54d61f"
    assert escape.slug("a/b") != escape.slug("a_b") and escape.slug("a/b") != escape.slug("a\\b")
    assert escape.slug("../../escaped").startswith("escaped-")


@given(st.text(max_size=200))
def test_terminal_text_has_no_control_character(text):
    shown = escape.terminal(text)
    assert not re.search(r"[\x00-\x1f\x7f\u202a-\u202e]", shown)
    assert escape.terminal_lines("a\nb") == "a\nb"


@given(st.text(min_size=1, max_size=100))
def test_a_link_is_a_relative_path_never_a_scheme(relative):
    link = escape.href(relative)
    assert link.startswith(("./", "../")) and not re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", link)
    assert escape.href("javascript:alert(1)") == "./javascript%3Aalert%281%29"


def _hostile_store(tmp_path):
    doc = json.loads(FIXTURE.read_text())
    doc["results"] = [r for r in doc["results"] if r["samples_ns"]][:len(HOSTILE_NAMES)]
    for result, name in zip(doc["results"], HOSTILE_NAMES.values()):
        result["case"]["model"] = name
        result["samples_ns"] = result["samples_ns"][:40]
    doc["run"].update(id="../../" + HOSTILE_NAMES["terminal"], suite=HOSTILE_NAMES["markdown"])
    path = tmp_path / "hostile.json"
    path.write_text(runfile.dumps(doc))
    store = Store(tmp_path / "s.db")
    runfile.import_into(store, runfile.read(path))
    return store, doc, path


def test_hostile_names_reach_the_terminal_and_markdown_escaped(tmp_path, capsys):
    store, doc, path = _hostile_store(tmp_path)
    assert main(["runs", "--store", str(tmp_path / "s.db")]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\r" not in out and "\\x1b[2J" in out
    assert main(["compare", str(path), str(path), "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert "<img" not in out and "&lt;img" in out and "\\|" in out and "\x1b" not in out and "`md`" not in out
    assert main(["compare", str(path), str(path)]) == 0
    assert "\x1b" not in capsys.readouterr().out
    views.show("a\x1b[2Jb\nc\rd")
    assert capsys.readouterr().out == "a\\x1b[2Jb\nc\\rd\n"


def test_report_of_hostile_names_links_inside_and_draws_mathtext_as_text(tmp_path):
    from bench.report import write_report

    store, doc, _ = _hostile_store(tmp_path)
    summary = {"case_key": HOSTILE_NAMES["link"], "step_ms": 1.0, "layers": [], "top_ops": []}
    folder = escape.path(tmp_path / "profiles", doc["run"]["id"], summary["case_key"])
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps(summary))
    out = write_report(store, [doc["run"]["id"]], tmp_path / "r" / "index.html", profiles_root=tmp_path / "profiles")
    html = out.read_text()
    links = re.findall(r'href="([^"]*)"', html)
    assert links and all(link.startswith(("./", "../", "#")) for link in links)
    assert (out.parent / unquote(links[0])).resolve().is_relative_to(tmp_path / "profiles")
    assert "<img src=x" not in html and "&lt;img src=x" in html
    for svg in re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', html):
        ElementTree.fromstring(base64.b64decode(svg))  # well-formed: no raw control character in the plot text
    assert "$\\frac{1}{0}$ ^_^ $" in html  # matplotlib drew the name as text (mathtext would fail on it)


@pytest.mark.usefixtures("fault_models")
def test_a_profile_of_a_hostile_name_stays_in_its_folder(tmp_path):
    from bench.profiling import profile_case
    from bench.suites import single_case

    case = single_case(HOSTILE_NAMES["path"], {"threads": "1"}, "profile")
    result = profile_case(case, out=tmp_path / "out", run="../../run", steps=1)
    assert result.trace_dir.resolve().is_relative_to(tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
