"""One self-contained HTML report from one or more stored runs.

Reads the store only. Plots are seaborn/matplotlib figures embedded as SVG data
URIs (text kept as text, ids salted for determinism); CSS and the table-sorting
script are inline; every string from outside is escaped by Jinja's autoescape.
The same input gives the same file, apart from the one generated-at line.

Runs from several machines are grouped by machine (``machine_of``, in the order
the runs were given): the header has a heading per machine with its hardware and
software (CPU model and cores, GPU, torch, fingerprint) above its runs; the
summary and the speedups are per machine; and runs are compared only within
their machine, the first run of each the baseline of the others, as ``compare``
does (``compare.machine_difference``: another label, or one label on other
hardware). With ``cross_machine`` (``report --cross-machine``), the first run
given is compared with each other machine's first run as well.
"""

from __future__ import annotations

import base64
import datetime
import io
import math
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import jinja2
import pandas as pd

from . import escape
from .compare import Thresholds, compare_runs, machine_difference
from .errors import BadValue, StoreError, cannot
from .precision import DTYPE_BYTES, weight_dtype
from .probe import movement_line
from .record import STATUSES, Result
from .results import result_rows
from .store import Store

REFERENCE = "fp32/contiguous/eager"
NOT_OK = tuple(status for status in STATUSES if status != "ok")
MIB = 2**20
NUMERIC = ("speedup", "speedup_ci_low", "speedup_ci_high",
           "params", "macs", "flops", "step_flops", "activation_bytes", "saved_bytes", "cpu_peak_rss_delta_bytes",
           "cuda_peak_allocated_bytes", "cuda_peak_reserved_bytes", "throughput_img_s", "latency_ms_p50")


@dataclass(frozen=True)
class RunData:
    run_id: str
    meta: dict[str, Any]
    results: tuple[Result, ...]
    frame: pd.DataFrame


def machine_of(meta: dict[str, Any]) -> str:
    """The machine a run ran on: its label (``run --machine``), else its hostname (a run from before labels).
    The report groups runs by it; in the tables, a result that names its own machine (a shard's) keeps it."""
    return str(meta.get("machine") or meta.get("environment", {}).get("hostname") or "unknown")


def by_machine(runs: Sequence[RunData]) -> dict[str, list[RunData]]:
    """The runs grouped by ``machine_of``, machines in the order their first run was given, runs in theirs."""
    groups: dict[str, list[RunData]] = {}
    for run in runs:
        groups.setdefault(machine_of(run.meta), []).append(run)
    return groups


def gather(store: Store, run_ids: Sequence[str]) -> list[RunData]:
    runs = []
    for run_id in run_ids:
        meta = store.run(run_id)
        meta["track"] = store.track(run_id)
        results = tuple(store.results(run_id))
        if not results:
            raise StoreError(f"run {run_id!r} has no results yet; nothing to report")
        frame = pd.DataFrame(result_rows(results, meta["calibration"], store.tracks(run_id)))
        for column in NUMERIC:  # all-None columns would stay objects, and None does no arithmetic
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
        frame.insert(0, "run_id", escape.terminal(run_id))
        # a result's own machine where it has one, else its run's
        frame["machine"] = frame["machine"].fillna(machine_of(meta)) if "machine" in frame else machine_of(meta)
        # names are drawn and tabled with their control characters shown: SVG (XML) may not hold them raw
        for column in ("model", "variant"):
            frame[column] = frame[column].map(escape.terminal)
        runs.append(RunData(run_id, meta, results, frame))
    return runs


# -- plots --------------------------------------------------------------------------------------

def _mpl():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    # names are plain text in a plot: no mathtext ('$x$' in a model name would be parsed, or fail) and no TeX
    plain = {"svg.fonttype": "none", "svg.hashsalt": "cnnbench", "text.parse_math": False, "text.usetex": False}
    plt.rcParams.update({**plain, "figure.dpi": 96, "font.size": 9, "axes.titlesize": 10})
    sns.set_theme(style="whitegrid", palette="colorblind", rc=plain)
    return plt, sns


def _svg(fig) -> str:
    plt, _ = _mpl()
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode()


def _facets(keys: Sequence[Any], cols: int, panel_w: float, panel_h: float) -> tuple[Any, list[tuple[Any, Any]]]:
    """A figure with one panel per key, at most ``cols`` to a row, unused panels removed: (figure, [(axes, key)])."""
    plt, _ = _mpl()
    cols = max(1, min(cols, len(keys)))
    rows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(panel_w * cols, panel_h * rows), squeeze=False)
    flat = list(axes.flat)
    for ax in flat[len(keys):]:
        ax.remove()
    return fig, list(zip(flat, keys))


def _finish(fig) -> str:
    fig.tight_layout()
    return _svg(fig)


def plot_throughput(frame: pd.DataFrame, multi_run: bool) -> Optional[str]:
    data = frame[frame["throughput_img_s"].notna()]
    if data.empty:
        return None
    _, sns = _mpl()
    fig, panels = _facets(sorted(data["model"].unique()), 3, 4.2, 3.2)
    for ax, model in panels:
        part = data[data["model"] == model].sort_values("batch_size")
        sns.lineplot(part, x="batch_size", y="throughput_img_s", hue="variant", style="run_id" if multi_run else None,
                     markers=True, marker=None if multi_run else "o", ax=ax, errorbar=None)
        ax.set_xscale("log", base=2)
        ax.set(title=f"{model}: throughput vs batch size", xlabel="batch size (images, log scale)",
               ylabel="throughput (images/s)")
        ax.legend(fontsize=7, title="variant" + (" / run" if multi_run else ""), title_fontsize=7)
    return _finish(fig)


def plot_track(runs: Sequence[RunData]) -> Optional[str]:
    """Per run: the machine-speed probe over the run (``bench.probe``), each group's (or case's) window shaded."""
    tracked = [run for run in runs if len(run.meta.get("track") or ()) >= 2]
    if not tracked:
        return None
    fig, panels = _facets(tracked, 1, 9.0, 2.6)
    for ax, run in panels:
        start = run.meta["started_at"]
        windows = sorted({(r.started_at, r.duration_s) for r in run.results if r.duration_s})
        for i, (at, length) in enumerate(windows):
            ax.axvspan((at - start) / 60, (at + length - start) / 60, color="C0" if i % 2 else "C1", alpha=0.12, lw=0)
        minutes = [(at - start) / 60 for at, _ in run.meta["track"]]
        ax.plot(minutes, [value for _, value in run.meta["track"]], marker="o", ms=3, color="C2")
        ax.set(title=f"run {escape.terminal(run.run_id)}: machine speed (probe) with each group's window shaded",
               xlabel="minutes since the run started", ylabel="probe GFLOP/s")
    return _finish(fig)


def _samples_frame(runs: Sequence[RunData], batch_pick: str) -> pd.DataFrame:
    rows = []
    for run in runs:
        by_model: dict[str, list[Result]] = {}
        for r in run.results:
            if r.samples_ns:
                by_model.setdefault(r.case.model, []).append(r)
        for model, results in by_model.items():
            batches = sorted({r.case.batch_size for r in results})
            batch = batches[0] if batch_pick == "smallest" else batches[-1]
            if batch_pick == "smallest" and batch != 1 and 1 in batches:
                batch = 1
            for r in results:
                if r.case.batch_size == batch:
                    label = escape.terminal(f"{r.case.variant} {r.case.mode}" + (f" [{run.run_id}]" if len(runs) > 1 else ""))
                    rows += [{"model": escape.terminal(f"{model} (batch {batch})"), "variant": label, "latency_ms": s / 1e6}
                             for s in r.samples_ns]
    return pd.DataFrame(rows)


def plot_latency(runs: Sequence[RunData], batch_pick: str) -> Optional[str]:
    data = _samples_frame(runs, batch_pick)
    if data.empty:
        return None
    _, sns = _mpl()
    height = max(2.2, 0.32 * data.groupby("model")["variant"].nunique().max() + 1.0)
    fig, panels = _facets(sorted(data["model"].unique()), 2, 6.2, height)
    for ax, model in panels:
        part = data[data["model"] == model]
        order = sorted(part["variant"].unique())
        sns.boxplot(part, x="latency_ms", y="variant", order=order, ax=ax, fliersize=1.5, color="#d0d0d0",
                    linewidth=0.8)
        stats = part.groupby("variant")["latency_ms"]
        p50, p99 = stats.median(), stats.quantile(0.99)
        ys = range(len(order))
        ax.scatter([p50[v] for v in order], ys, marker="|", s=160, color="#0173b2", zorder=3, label="p50")
        ax.scatter([p99[v] for v in order], ys, marker="d", s=22, color="#de8f05", zorder=3, label="p99")
        ax.set(title=f"{model}: latency per iteration", xlabel="latency (ms)", ylabel="variant")
        ax.legend(fontsize=7, loc="lower right")
    return _finish(fig)


def speedup_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Every variant's speedup over fp32/contiguous/eager of the same model, batch, mode, device and threads
    (> 1 is faster): the paired speedup with its 95% CI where the two were measured together (``paired``),
    else the ratio of their medians, measured apart (no interval)."""
    data = frame[frame["latency_ms_p50"].notna()].copy()
    keys = ["run_id", "device", "mode", "threads", "model", "batch_size"]
    ref = data[data["variant"] == REFERENCE].set_index(keys)
    rows = data[data["variant"] != REFERENCE].set_index(keys)
    rows["apart"] = ref["latency_ms_p50"].reindex(rows.index) / rows["latency_ms_p50"]
    rows["reference_key"] = ref["case_key"].reindex(rows.index)
    rows = rows.reset_index()
    rows["paired"] = rows["speedup"].notna() & (rows["group_reference"] == rows["reference_key"])
    rows["value"] = rows["speedup"].where(rows["paired"], rows["apart"])
    # decided only where the interval is known and excludes 1: too few rounds for an interval is no difference shown
    rows["no_difference"] = rows["paired"] & ~((rows["speedup_ci_low"] > 1) | (rows["speedup_ci_high"] < 1))
    return rows[rows["value"].notna()]


def speedup_tables(frame: pd.DataFrame) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """Per (device, mode, variant), and machine where there are several: speedups as model x batch size, and
    where the interval includes 1."""
    rows = speedup_rows(frame)
    several = rows["machine"].nunique() > 1
    tables = {}
    for (device, mode, variant, machine), part in rows.groupby(["device", "mode", "variant", "machine"]):
        value = part.pivot_table(index="model", columns="batch_size", values="value")
        undecided = part.pivot_table(index="model", columns="batch_size", values="no_difference", aggfunc="max")
        title = f"{variant} ({device}, {mode})" + (f" on {machine}" if several else "")
        tables[title] = (value, undecided.reindex_like(value).fillna(False).astype(bool))
    return tables


def plot_speedups(tables: dict[str, tuple[pd.DataFrame, pd.DataFrame]]) -> Optional[str]:
    """Heatmaps of the speedups; a cell whose paired 95% CI includes 1 is grey, "no measurable difference"."""
    if not tables:
        return None
    _, sns = _mpl()
    from matplotlib.colors import ListedColormap, LogNorm

    fig, panels = _facets(list(tables.items()), 2, 5.6, 0.45 * max(len(t) for t, _ in tables.values()) + 1.8)
    values = pd.concat([t.stack() for t, _ in tables.values()])
    span = max(abs(math.log(values.min())), abs(math.log(values.max())), math.log(1.25))
    for ax, (title, (table, undecided)) in panels:
        labels = table.map(lambda v: "" if v != v else f"{v:.2f}").where(~undecided, "n.d.")
        sns.heatmap(table, mask=undecided | table.isna(), annot=labels, fmt="", cmap="RdBu",
                    norm=LogNorm(math.exp(-span), math.exp(span)),
                    cbar_kws={"label": "speedup vs fp32 contiguous eager (x)"}, linewidths=0.5, ax=ax)
        if undecided.to_numpy().any():
            sns.heatmap(table.where(undecided), mask=~undecided, annot=labels, fmt="", cbar=False, linewidths=0.5,
                        cmap=ListedColormap(["#d9d9d9"]), ax=ax)
        ax.set(title=f"speedup: {title}", xlabel="batch size", ylabel="model")
    return _finish(fig)


def speedup_table_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The heatmaps' numbers with their intervals, for the table under them."""
    rows = speedup_rows(frame).sort_values(["machine", "device", "mode", "model", "batch_size", "variant"])
    several = rows["machine"].nunique() > 1
    return [{"case": f"{r['model']} b{r['batch_size']} {r['mode']} ({r['device']}, t{r['threads']})"
                     + (f" on {r['machine']}" if several else ""),
             "variant": r["variant"], "speedup": r["value"],
             "ci": ("measured apart" if not r["paired"] else f"{r['speedup_ci_low']:.3f}-{r['speedup_ci_high']:.3f}"
                    if pd.notna(r["speedup_ci_low"]) else f"unknown ({r['paired_rounds']:.0f} rounds)"),
             "p": r["paired_p_value"] if r["paired"] else None,
             "verdict": "no measurable difference" if r["no_difference"] else
                        ("faster" if r["value"] > 1 else "slower") + ("" if r["paired"] else " (unpaired)")}
            for _, r in rows.iterrows()]


def _weight_bytes(precision: str) -> int:
    return DTYPE_BYTES[weight_dtype(precision)]


def plot_roofline(frame: pd.DataFrame, calibrations: dict[str, float]) -> Optional[str]:
    data = frame[frame["achieved_gflop_s"].notna() & frame["activation_bytes"].notna() & frame["params"].notna()].copy()
    if data.empty:
        return None
    plt, sns = _mpl()
    width = data["precision"].map(_weight_bytes)
    data["intensity_flop_per_byte"] = data["step_flops"] / (data["params"] * width + data["activation_bytes"])
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    sns.scatterplot(data, x="intensity_flop_per_byte", y="achieved_gflop_s", hue="model", style="variant", ax=ax, s=40)
    palette = sns.color_palette("colorblind")
    for i, (key, peak) in enumerate(sorted(calibrations.items())):
        ax.axhline(peak, linestyle="--", linewidth=1, color=palette[(i + 3) % len(palette)],
                   label=f"measured peak {key}: {peak:,.0f} GFLOP/s")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set(title="efficiency: achieved GFLOP/s against arithmetic intensity",
           xlabel="arithmetic intensity (FLOPs per byte of params + activations, log)",
           ylabel="achieved GFLOP/s (log)")
    ax.legend(fontsize=6.5, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return _svg(fig)


def plot_memory(frame: pd.DataFrame) -> Optional[str]:
    data = frame.copy()
    on_gpu = data["cuda_peak_allocated_bytes"].notna()  # cuda, cuda:1, ...: the allocator's peak
    data["measured_mib"] = data["cuda_peak_allocated_bytes"].where(on_gpu, data["cpu_peak_rss_delta_bytes"]) / MIB
    data = data[data["measured_mib"].notna()]
    if data.empty:
        return None
    _, sns = _mpl()
    width = data["precision"].map(_weight_bytes)
    # CPU figures are above the RSS once the model is built, so its parameters are not in them; CUDA peaks include them
    params_bytes = (data["params"] * width).where(data["cuda_peak_allocated_bytes"].notna(), 0)
    data["analytic_mib"] = (params_bytes + data["activation_bytes"]) / MIB
    fig, panels = _facets(sorted(data["model"].unique()), 3, 4.2, 3.2)
    for ax, model in panels:
        part = data[data["model"] == model].sort_values("batch_size")
        sns.lineplot(part, x="batch_size", y="measured_mib", hue="variant", marker="o", ax=ax, errorbar=None)
        analytic = part.groupby("batch_size")["analytic_mib"].max()
        ax.plot(analytic.index, analytic.values, "k--", linewidth=1, label="analytic: activations written (+ params on CUDA)")
        ax.set_xscale("log", base=2)
        ax.set(title=f"{model}: memory vs batch size", xlabel="batch size (images, log scale)",
               ylabel="MiB (measured peak above baseline)")
        ax.legend(fontsize=6.5)
    return _finish(fig)


# -- tables -------------------------------------------------------------------------------------

def summary_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """One row per model, and machine where there are several (machines in their order in the frame)."""
    rows = []
    order = {machine: n for n, machine in enumerate(dict.fromkeys(frame["machine"]))}
    groups = sorted(frame.groupby(["machine", "model"]), key=lambda group: (order[group[0][0]], group[0][1]))
    for (machine, model), part in groups:
        good = part[part["throughput_img_s"].notna()]
        best = good.loc[good["throughput_img_s"].idxmax()] if not good.empty else None
        at1 = good[(good["batch_size"] == 1)]
        ref1 = at1[at1["variant"] == REFERENCE]
        p50_1 = (ref1 if not ref1.empty else at1)["latency_ms_p50"].min() if not at1.empty else math.nan
        first = part.iloc[0]
        peak = pd.concat([part["cpu_peak_rss_delta_bytes"], part["cuda_peak_allocated_bytes"]]).max()
        macs_1 = (part["macs"] / part["batch_size"]).dropna()
        rows.append({
            "machine": machine,
            "model": model,
            "params": first["params"],
            "gmacs": macs_1.iloc[0] / 1e9 if not macs_1.empty else math.nan,
            "gflops": 2 * macs_1.iloc[0] / 1e9 if not macs_1.empty else math.nan,
            "best_img_s": best["throughput_img_s"] if best is not None else math.nan,
            "best_case": f"b{best['batch_size']} {best['variant']} {best['mode']}" if best is not None else "-",
            "p50_ms_b1": p50_1,
            "peak_mib": peak / MIB if peak == peak else math.nan,
            "statuses": " ".join(f"{k}={v}" for k, v in sorted(part["status"].value_counts().items())),
        })
    return rows


def static_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    from classic_cnns import get_entry

    rows = []
    for model, part in frame.groupby("model", sort=True):
        one = part.sort_values("batch_size").iloc[0]
        batch = int(one["batch_size"])
        ref_params = ref_gmacs = None
        try:
            tv_name = get_entry(model).tv_name or (model[3:] if model.startswith("tv.") else None)
        except KeyError:
            tv_name = None
        if tv_name:
            import torchvision

            meta = torchvision.models.get_model_weights(tv_name).DEFAULT.meta
            ref_params, ref_gmacs = meta.get("num_params"), meta.get("_ops")
        rows.append({
            "model": model, "input_shape": one["input_shape"], "params": one["params"],
            "gmacs": one["macs"] / batch / 1e9 if one["macs"] == one["macs"] else math.nan,
            "gflops": 2 * one["macs"] / batch / 1e9 if one["macs"] == one["macs"] else math.nan,
            "activation_mib": one["activation_bytes"] / batch / MIB if one["activation_bytes"] == one["activation_bytes"] else math.nan,
            "ref": tv_name or "", "ref_params": ref_params, "ref_gmacs": ref_gmacs,
        })
    return rows


def failure_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Cases that failed, and measured cases with warnings (a throttled or shared GPU): their reasons."""
    warned = frame["warnings"].fillna("").astype(str).ne("") if "warnings" in frame else False
    bad = frame[frame["status"].isin(NOT_OK) | warned].sort_values(["status", "case_key"])
    return [{"run_id": r["run_id"], "case": r["case_key"], "status": r["status"],
             "reason": "; ".join(filter(None, [r["reason"], r.get("warnings")]))} for _, r in bad.iterrows()]


# -- the page -----------------------------------------------------------------------------------

def fmt_value(value: Any, digits: int = 2) -> str:
    """Thousands separators; whole counts (numpy's too) without decimals; '-' for missing."""
    if value is None or isinstance(value, bool):
        return "-" if value is None else str(value)
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if isinstance(value, numbers.Real):
        number = float(value)
        if math.isnan(number):
            return "-"
        if number.is_integer() and abs(number) >= 1000:
            return f"{int(number):,}"
        return f"{number:,.{digits}f}"
    return str(value)


def _distinct(values: Sequence[Any]) -> str:
    """The values, each once, in their order, joined by ' / ' (runs of one machine may differ, e.g. in torch)."""
    return " / ".join(dict.fromkeys(str(value) for value in values))


def machine_header(name: str, runs: Sequence[RunData]) -> dict[str, Any]:
    """A machine's heading: its hardware and software as its runs recorded them, and its runs' header lines."""
    envs = [run.meta["environment"] for run in runs]
    gpus = [f"{env.get('gpu_count') or 1} x {env['gpu_name']} (driver {env.get('gpu_driver')})" if env.get("gpu_name")
            else "none" for env in envs]
    return {
        "name": name,
        "cpu": _distinct([f"{env.get('cpu_model')}, {env.get('cpu_cores_logical')} cores" for env in envs]),
        "gpu": _distinct(gpus),
        "torch": _distinct([f"torch {env.get('torch')}" for env in envs]),
        "fingerprint": _distinct([env.get("machine_fingerprint") or "not recorded" for env in envs]),
        "runs": [_env_line(run.meta) for run in runs],
    }


def comparisons_by_machine(machines: dict[str, list[RunData]], thresholds: Thresholds, cross_machine: bool
                           ) -> tuple[list[dict[str, Any]], list[str]]:
    """Within each machine, its first run against each of its others; with ``cross_machine``, also the first run
    given against each other machine's first. A pair ``compare`` would refuse without --cross-machine (one label
    on other hardware) is left out and said why, in the notes returned beside the comparisons."""
    pairs: list[tuple[RunData, RunData, str]] = []
    notes: list[str] = []
    for name, runs in machines.items():
        for run in runs[1:]:
            why = machine_difference(runs[0].meta, run.meta)
            if why and not cross_machine:
                notes.append(f"{runs[0].run_id} and {run.run_id} are not compared: {why}; "
                             "'cnnbench report --cross-machine' compares them")
            else:
                pairs.append((runs[0], run, f"on {name}" if not why else f"on {name}, across hardware (--cross-machine)"))
    firsts = [runs[0] for runs in machines.values()]
    if len(firsts) > 1 and cross_machine:
        base = firsts[0]
        pairs += [(base, run, f"across machines: {machine_of(base.meta)} to {machine_of(run.meta)} (--cross-machine)")
                  for run in firsts[1:]]
    elif len(firsts) > 1:
        notes.append(f"runs of {len(firsts)} machines: each run is compared only with runs of its own machine; "
                     "'cnnbench report --cross-machine' also compares the first run with each other machine's first")
    comparisons = [{"base": base.run_id, "cand": cand.run_id, "where": where,
                    "rows": compare_runs(base.results, cand.results, thresholds)} for base, cand, where in pairs]
    return comparisons, notes


def _env_line(meta: dict[str, Any]) -> dict[str, str]:
    env = meta["environment"]
    gpu = f"{env.get('gpu_name')} (driver {env.get('gpu_driver')})" if env.get("gpu_name") else "none"
    started = datetime.datetime.fromtimestamp(meta["started_at"], datetime.timezone.utc)
    return {
        "run_id": meta["id"], "suite": meta["suite"], "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "host": str(env.get("hostname")), "cpu": f"{env.get('cpu_model')} ({env.get('cpu_cores_usable')} cores)",
        "threads": ", ".join(map(str, env.get("threads") or [env.get("torch_threads")])), "gpu": gpu,
        "torch": f"torch {env.get('torch')}, torchvision {env.get('torchvision')}, CUDA {env.get('cuda_build')}, "
                 f"cuDNN {env.get('cudnn')}",
        "git": f"{(env.get('git_commit') or 'unknown')[:12]}{' (dirty)' if env.get('git_dirty') else ''}",
    }


def profile_sections(runs: Sequence[RunData], root: Optional["str | Path"], report_dir: Path) -> list[dict[str, Any]]:
    """Per profiled case: its top layers by time and top operators by self time, and a link to its traces."""
    if root is None:
        return []
    import os

    from .profiling import load_summaries

    sections = []
    for run in runs:
        for doc in load_summaries(root, run.run_id):
            layers = sorted(doc["layers"], key=lambda r: r["time_ms"], reverse=True)[:10]
            link = escape.href(os.path.relpath(doc["trace_dir"], report_dir))
            sections.append({"run_id": run.run_id, "case": doc["case_key"], "step_ms": doc["step_ms"],
                             "layers": layers, "ops": doc["top_ops"][:10], "link": link})
    return sections


def render(runs: Sequence[RunData], *, generated_at: Optional[str] = None, thresholds: Thresholds = Thresholds(),
           profiles_root: Optional["str | Path"] = None, report_dir: Path = Path("."),
           cross_machine: bool = False) -> str:
    frame = pd.concat([r.frame for r in runs], ignore_index=True)
    multi = len(runs) > 1
    noisy = frame["status"].isin(("noisy", "invalid")).mean()
    calibrations: dict[str, float] = {}
    for run in runs:
        calibrations.update(run.meta["calibration"])
    machines = by_machine(runs)
    comparisons, comparison_notes = comparisons_by_machine(machines, thresholds, cross_machine)
    speed = speedup_tables(frame)
    return _template().render(
        title=f"cnnbench report: {', '.join(r.run_id for r in runs)}",
        machines=[machine_header(name, group) for name, group in machines.items()],
        several_machines=len(machines) > 1,
        track_lines=[(r.run_id, movement_line(r.meta.get("track") or ())) for r in runs],
        noise_line=f"{100 * noisy:.0f}% of {len(frame)} cases are noisy or invalid "
                   f"({int(frame['status'].eq('noisy').sum())} noisy, {int(frame['status'].eq('invalid').sum())} invalid)",
        summary=summary_rows(frame),
        plots={
            "throughput": plot_throughput(frame, multi),
            "latency_small": plot_latency(runs, "smallest"),
            "latency_large": plot_latency(runs, "largest"),
            "speedup": plot_speedups(speed),
            "roofline": plot_roofline(frame, calibrations),
            "memory": plot_memory(frame),
            "track": plot_track(runs),
        },
        static=static_rows(frame),
        speedups=speedup_table_rows(frame),
        failures=failure_rows(frame),
        comparisons=comparisons,
        comparison_notes=comparison_notes,
        profiles=profile_sections(runs, profiles_root, report_dir),
        thresholds=thresholds,
        generated_at=generated_at or datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        fmt=fmt_value,
    )


def _template() -> jinja2.Template:
    """The page's Jinja template, every substitution autoescaped."""
    loader = jinja2.FileSystemLoader(str(Path(__file__).parent / "templates"))
    templates = jinja2.Environment(loader=loader, autoescape=True, undefined=jinja2.StrictUndefined,
                                   trim_blocks=True, lstrip_blocks=True)
    return templates.get_template("report.html.j2")


def write_report(store: Store, run_ids: Sequence[str], output: "str | Path", **kwargs: Any) -> Path:
    if not run_ids:
        raise BadValue("no runs to report: give run ids or --latest")
    path = Path(output)
    text = render(gather(store, run_ids), report_dir=path.resolve().parent, **kwargs)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    except OSError as exc:
        raise cannot(f"write report {str(path)!r}", exc) from None
    return path
