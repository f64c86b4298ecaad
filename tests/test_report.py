"""bench/report.py: the HTML report from a stored run made of saved fixtures, and in a real browser."""

import base64
import dataclasses
import json
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from bench import runfile
from bench.cli import main
from bench.compare import Thresholds
from bench.report import (by_machine, comparisons_by_machine, gather, machine_header, render, speedup_tables,
                          summary_rows, write_report)
from bench.store import Store

FIXTURE = Path(__file__).parent / "fixtures" / "quick_run.json"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
HOSTILE = "<script>alert(1)</script>"
SECTIONS = ["header", "summary", "throughput", "latency", "speedup", "efficiency", "memory", "track", "static", "failures"]


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """The fixture run in a fresh store, plus a candidate run 25% slower on every case."""
    path = tmp_path_factory.mktemp("report") / "s.db"
    store = Store(path)
    doc = runfile.read(FIXTURE)
    base_id = runfile.import_into(store, doc)
    slower = [dataclasses.replace(r, samples_ns=tuple(int(s * 1.25) for s in r.samples_ns))
              for r in doc["results_parsed"]]
    cand_id = store.import_run({**doc["run"], "id": "candidate-run", "started_at": doc["run"]["started_at"] + 60},
                               slower)
    return store, path, base_id, cand_id


@pytest.fixture(scope="module")
def page(stored):
    store, _, base_id, _ = stored
    return render(gather(store, [base_id]), generated_at="FIXED")


def test_every_section_in_order(page):
    positions = [page.index(f'id="{name}"') for name in SECTIONS]
    assert positions == sorted(positions)
    assert page.count("<img class=\"plot\"") >= 6  # throughput, 2 x latency, speedup, roofline, memory


def test_self_contained(page):
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert "<link" not in page and "@import" not in page
    for src in re.findall(r'<img class="plot"[^>]*src="([^"]+)"', page):
        assert src.startswith("data:image/svg+xml;base64,")
        svg = base64.b64decode(src.split(",", 1)[1]).decode()
        assert "<svg" in svg
        assert not re.search(r'(href|src)="(https?:)?//|url\((https?:)?//', svg)  # namespaces are names, not fetches


def test_summary_numbers_equal_the_stored_figures(stored, page):
    store, _, base_id, _ = stored
    frame = gather(store, [base_id])[0].frame
    rows = {r["model"]: r for r in summary_rows(frame)}
    alex = frame[frame["model"] == "alexnet"]
    best = alex["throughput_img_s"].max()
    assert rows["alexnet"]["best_img_s"] == best
    assert f"{best:,.1f}" in page
    assert f"{int(alex['params'].iloc[0]):,}" in page
    ref = alex[(alex["batch_size"] == 1) & (alex["variant"] == "fp32/contiguous/eager")]["latency_ms_p50"].iloc[0]
    assert f"{ref:,.3f}" in page
    assert "16,630,440" in page and "0.311" in page  # seed AlexNet params and GMACs


def test_outside_strings_are_escaped(page):
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("<script>") == 1  # only the sorting script


def test_deterministic_apart_from_the_generated_line(stored):
    store, _, base_id, _ = stored
    one = render(gather(store, [base_id]), generated_at="A")
    two = render(gather(store, [base_id]), generated_at="B")
    assert one.replace("at A.", "") == two.replace("at B.", "")


def test_failures_and_noise_line(page, stored):
    store, _, base_id, _ = stored
    frame = gather(store, [base_id])[0].frame
    noisy = int((frame["status"] == "noisy").sum())
    assert f"{noisy} noisy" in page
    assert page.count('class="text status-noisy"') == noisy


def test_two_runs_give_a_comparison(stored):
    store, _, base_id, cand_id = stored
    page = render(gather(store, [base_id, cand_id]), generated_at="FIXED")
    assert 'id="comparison"' in page and f"{base_id} &rarr; {cand_id}" in page
    verdicts = re.findall(r'class="text status-(\w+)">', page.split('id="comparison"')[1])
    assert verdicts.count("slower") >= 0.5 * len(verdicts)  # 25% slower everywhere
    assert "faster" not in verdicts


def test_cli_errors(stored, tmp_path, capsys):
    _, path, base_id, _ = stored
    assert main(["report", "nope", "--store", str(path), "-o", str(tmp_path / "r.html")]) == 2
    assert "no run 'nope'" in capsys.readouterr().err
    assert main(["report", "--latest", "--store", str(tmp_path / "missing.db")]) == 2
    assert "no results store" in capsys.readouterr().err
    empty = Store(tmp_path / "empty.db")
    run_id = empty.new_run(suite="t", suite_json={}, environment={}, calibration={}, settings={}, cases_total=1)
    assert main(["report", run_id, "--store", str(tmp_path / "empty.db")]) == 2
    assert "has no results" in capsys.readouterr().err
    assert main(["report", "--store", str(path)]) == 2
    assert "--latest" in capsys.readouterr().err


# -- the browser ---------------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class DevTools:
    """A minimal Chrome DevTools Protocol client over one page's websocket."""

    def __init__(self, ws_url: str) -> None:
        import websocket

        self.ws = websocket.create_connection(ws_url, timeout=30)
        self.next_id = 0
        self.events: list[dict] = []

    def call(self, method: str, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method: str, seconds: float = 30):
        deadline = time.time() + seconds
        while time.time() < deadline:
            if any(e.get("method") == method for e in self.events):
                return
            self.events.append(json.loads(self.ws.recv()))
        raise TimeoutError(method)


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (scripts/test.sh installs it as root)")
def test_report_renders_in_headless_chromium(stored, tmp_path):
    store, _, base_id, _ = stored
    report = write_report(store, [base_id], tmp_path / "report.html")
    profile = tmp_path / "profile"
    browser = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-quic", f"--user-data-dir={profile}",
         "--remote-debugging-port=0", "--window-size=1400,1000", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        port = None
        deadline = time.time() + 60
        while port is None and time.time() < deadline:
            line = browser.stderr.readline()
            match = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            port = match.group(1) if match else None
        assert port, "chromium did not start its DevTools endpoint"
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10))
        page_target = next(t for t in targets if t["type"] == "page")
        tools = DevTools(page_target["webSocketDebuggerUrl"])
        for domain in ("Page", "Runtime", "Log"):
            tools.call(f"{domain}.enable")
        tools.call("Page.navigate", url=report.resolve().as_uri())
        tools.wait_for("Page.loadEventFired")

        def evaluate(expression):
            return tools.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

        assert evaluate("document.title").startswith("cnnbench report")
        assert evaluate("document.querySelectorAll('#summary-table tbody tr').length") >= 6
        assert evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
        # sorting by params, descending after two clicks: VGG-19 has the most
        evaluate("document.querySelectorAll('#summary-table th')[1].click()")
        evaluate("document.querySelectorAll('#summary-table th')[1].click()")
        assert evaluate("document.querySelector('#summary-table tbody tr td').textContent") == "vgg19"
        shot = tools.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "report.png").write_bytes(base64.b64decode(shot))
        errors = [e for e in tools.events if e.get("method") == "Runtime.exceptionThrown"
                  or (e.get("method") == "Runtime.consoleAPICalled" and e["params"].get("type") == "error")
                  or (e.get("method") == "Log.entryAdded" and e["params"]["entry"].get("level") == "error")]
        assert errors == []
    finally:
        browser.kill()
        browser.wait()


def test_counts_print_as_whole_numbers_whatever_their_type():
    import numpy as np

    from bench.report import fmt_value as _fmt
    assert _fmt(np.int64(16_630_440)) == "16,630,440" == _fmt(16_630_440.0) == _fmt(np.float64(16_630_440))
    assert _fmt(float("nan")) == "-" and _fmt(None) == "-" and _fmt(0.3114, 3) == "0.311"


def test_paired_speedups_fill_the_heatmap_and_an_interval_across_1_is_no_difference(tmp_path):
    from bench.record import Pairing
    from bench.report import speedup_rows

    doc = runfile.read(FIXTURE)
    results = list(doc["results_parsed"])
    by_key = {r.case.key: r for r in results}
    paired = {}
    for r in results:
        if r.case.is_reference or not r.samples_ns:
            continue
        ref = dataclasses.replace(r.case, precision="fp32", memory_format="contiguous", compiler="eager")
        if ref.key not in by_key:
            continue
        across_1 = r.case.memory_format == "channels_last"  # a made-up pairing: CI 0.9-1.2 or 0.45-0.55
        pairing = Pairing(group="g", reference=ref.key, members=4, rounds=30, ratio=1.05 if across_1 else 0.5,
                          ratio_ci_low=0.9 if across_1 else 0.45, ratio_ci_high=1.2 if across_1 else 0.55,
                          p_value=0.5 if across_1 else 1e-6)
        if across_1 and r.case.batch_size > 1:  # too few rounds for an interval: no difference shown either
            pairing = dataclasses.replace(pairing, rounds=4, ratio=0.5, ratio_ci_low=None, ratio_ci_high=None)
        paired[r.case.key] = dataclasses.replace(r, pairing=pairing)
    store = Store(tmp_path / "s.db")
    run_id = store.import_run({**doc["run"], "id": "paired"}, [paired.get(r.case.key, r) for r in results])
    runs = gather(store, [run_id])
    rows = speedup_rows(runs[0].frame).set_index("case_key")
    some_key = next(k for k, r in paired.items() if r.case.memory_format == "contiguous")
    assert rows.loc[some_key, "value"] == pytest.approx(2.0) and rows.loc[some_key, "paired"]
    assert rows["no_difference"].sum() == sum(r.case.memory_format == "channels_last" for r in paired.values()) > 0
    page = render(runs, generated_at="X")
    assert "no measurable difference" in page and ">measured apart<" not in page and "0.833-1.111" in page
    assert "unknown (4 rounds)" in page


def test_the_machine_speed_track_is_drawn_and_its_movement_in_the_header(tmp_path):
    doc = runfile.read(FIXTURE)
    store = Store(tmp_path / "s.db")
    run_id = store.import_run({**doc["run"], "id": "tracked"}, doc["results_parsed"])
    start = doc["run"]["started_at"]
    for i, value in enumerate([40.0, 40.0, 20.0, 40.0, 60.0]):
        store.add_probe(run_id, start + 30 * i, value)
    runs = gather(store, [run_id])
    assert runs[0].frame["machine_speed_rel"].notna().all()
    page = render(runs, generated_at="X")
    assert "machine speed during tracked: -40% to +40% of its median 40.0 GFLOP/s (p5-p95 of 5 probes; extremes -50%, +50%)" in page
    assert 'alt="machine speed over the run"' in page
    untracked = render(gather(store, [runfile.import_into(store, {**doc, "run": {**doc["run"], "id": "plain"}})]),
                       generated_at="X")
    assert "No run here has a machine-speed track." in untracked and "no machine-speed track" in untracked


# -- runs from several machines --------------------------------------------------------------------

@pytest.fixture(scope="module")
def machines(tmp_path_factory):
    """Runs under two machine labels, given interleaved: alpha-1, beta-1, alpha-2, beta-2 (the second of each 25%
    slower), and alpha-odd: labelled alpha, on other hardware."""
    path = tmp_path_factory.mktemp("machines") / "s.db"
    store = Store(path)
    doc = runfile.read(FIXTURE)
    env = doc["run"]["environment"]
    alpha = {**env, "hostname": "host-a", "cpu_model": "Alpha CPU 9000", "cpu_cores_logical": 16,
             "machine_fingerprint": "aaaaaaaaaaaa"}
    beta = {**env, "hostname": "host-b", "cpu_model": "Beta CPU 1", "cpu_cores_logical": 64, "gpu_name": "NVIDIA H200",
            "gpu_count": 2, "gpu_driver": "580.95", "torch": "2.15.0", "machine_fingerprint": "bbbbbbbbbbbb"}
    odd = {**alpha, "cpu_model": "Alpha CPU 1000", "machine_fingerprint": "cccccccccccc"}
    same = [r for r in doc["results_parsed"] if r.case.model in ("alexnet", "vgg11")]  # two models draw faster
    slower = [dataclasses.replace(r, samples_ns=tuple(int(s * 1.25) for s in r.samples_ns)) for r in same]
    for minute, (run_id, machine, environment, results) in enumerate([
            ("alpha-1", "alpha", alpha, same), ("beta-1", "beta", beta, same), ("alpha-2", "alpha", alpha, slower),
            ("beta-2", "beta", beta, slower), ("alpha-odd", "alpha", odd, same)]):
        store.import_run({**doc["run"], "id": run_id, "machine": machine, "environment": environment,
                          "started_at": doc["run"]["started_at"] + 60 * minute}, results)
    return store, path


def compared(page):
    return re.findall(r"<h3>(\S+) &rarr; (\S+) <span", page)


def test_a_report_of_several_machines_has_a_heading_per_machine_and_compares_within_each(machines):
    import html

    store, _ = machines
    runs = gather(store, ["alpha-1", "beta-1", "alpha-2", "beta-2"])
    page = render(runs, generated_at="X")
    header = page[page.index('id="header"'):page.index('id="summary"')]
    order = ["machine alpha", "alpha-1", "alpha-2", "machine beta", "beta-1", "beta-2"]
    assert [header.index(text) for text in order] == sorted(header.index(text) for text in order)
    assert "CPU Alpha CPU 9000, 16 cores; GPU none; torch 2.14.1+cu130; fingerprint aaaaaaaaaaaa" in header
    assert "CPU Beta CPU 1, 64 cores; GPU 2 x NVIDIA H200 (driver 580.95); torch 2.15.0; fingerprint bbbbbbbbbbbb" in header
    assert compared(page) == [("alpha-1", "alpha-2"), ("beta-1", "beta-2")]  # never alpha against beta
    assert "each run is compared only with runs of its own machine; 'cnnbench report --cross-machine'" in html.unescape(page)
    verdicts = re.findall(r'class="text status-(\w+)">', page.split('id="comparison"')[1])
    assert verdicts.count("slower") >= 0.5 * len(verdicts) and "faster" not in verdicts  # 25% slower on each
    frame = pd.concat([run.frame for run in runs])
    summary = summary_rows(frame)
    models = frame["model"].nunique()
    assert [row["machine"] for row in summary] == ["alpha"] * models + ["beta"] * models
    assert '<th class="text">machine</th>' in page
    assert {title.rsplit(" on ", 1)[1] for title in speedup_tables(frame)} == {"alpha", "beta"}


def test_runs_of_other_machines_are_compared_only_when_asked(machines, tmp_path):
    store, path = machines
    out = tmp_path / "r.html"
    assert main(["report", "alpha-1", "beta-1", "alpha-2", "--cross-machine", "--store", str(path), "-o", str(out)]) == 0
    page = out.read_text()
    assert compared(page) == [("alpha-1", "alpha-2"), ("alpha-1", "beta-1")]
    assert "across machines: alpha to beta (--cross-machine)" in page
    # one label on other hardware is another machine to compare, as for 'cnnbench compare'
    odd = gather(store, ["alpha-1", "alpha-odd"])
    comparisons, notes = comparisons_by_machine(by_machine(odd), Thresholds(), cross_machine=False)
    assert comparisons == [] and notes == [
        "alpha-1 and alpha-odd are not compared: both ran on a machine labelled 'alpha', but on different hardware "
        "(fingerprints aaaaaaaaaaaa and cccccccccccc); 'cnnbench report --cross-machine' compares them"]
    (pair,), _ = comparisons_by_machine(by_machine(odd), Thresholds(), cross_machine=True)
    assert (pair["base"], pair["cand"]) == ("alpha-1", "alpha-odd") and "across hardware" in pair["where"]
    assert machine_header("alpha", odd)["cpu"] == "Alpha CPU 9000, 16 cores / Alpha CPU 1000, 16 cores"
