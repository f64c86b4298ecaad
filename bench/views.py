"""What the commands print: each command's records rendered as a table, CSV, JSON or Markdown.

The CLI gathers the records and hands them here; nothing here measures,
decides or reads a store. Rendering primitives live in ``bench.table``.
"""

from __future__ import annotations

import datetime
import sys
from dataclasses import asdict
from typing import Any, Optional, Sequence

from . import escape
from .table import Column, percent, render_csv, render_json, render_table, scaled, shape, thousands

MIB = 2**20
MACS_NOTE = ("MACs are multiply-accumulates of conv and matmul; FLOPs = 2 x MACs. "
             "torchvision's and timm's \"GFLOPS\" are GMACs.")


def show(text: str, file: Any = None) -> None:
    """Print a command's output: names in it come from outside, so control characters are shown escaped."""
    print(escape.terminal_lines(text), file=file or sys.stdout, flush=True)


def records(rows: Sequence[dict[str, Any]], fmt: str, columns: Sequence[Column], footer: Optional[dict] = None,
            json_doc: Any = None) -> str:
    """``rows`` as JSON (``json_doc`` when given), CSV, or an aligned table of ``columns``."""
    if fmt == "json":
        return render_json(rows if json_doc is None else json_doc)
    if fmt == "csv":
        return render_csv(rows)
    return render_table(rows, columns, footer)


def model_list(rows: Sequence[dict[str, Any]], fmt: str) -> str:
    text = records(rows, fmt, [
        Column("model", "model", align="<"), Column("family", "family", align="<"),
        Column("source", "source", align="<"), Column("input_shape", "input (CxHxW)", shape),
        Column("params", "params", thousands), Column("macs", "GMACs (batch 1)", scaled(1e9, 3)),
    ])
    return text if fmt != "table" else f"{text}\n\n{len(rows)} models. {MACS_NOTE}"


def inspection(analysis: Any, rows: Sequence[dict[str, Any]], fmt: str) -> str:
    """``cnnbench inspect``: the per-layer table and the totals of a ``bench.analysis.Analysis``."""
    if fmt != "table":
        return records(rows, fmt, [], json_doc={"totals": analysis.totals(), "layers": list(rows)})
    a, t = analysis, analysis.totals()
    lines = [render_table(rows, [
        Column("layer", "layer", align="<"), Column("type", "type", align="<"),
        Column("output_shape", "output", shape), Column("params", "params", thousands),
        Column("macs", "MMACs", scaled(1e6, 1)), Column("macs_share", "MACs %", percent),
        Column("activation_bytes", "act (MiB)", scaled(MIB, 2)), Column("activation_share", "act %", percent),
    ], footer={"layer": "total", "params": a.params, "macs": a.macs, "activation_bytes": a.activation_bytes}), "",
        f"model             {a.model}  (input {t['input_shape']}, batch {a.batch_size}, {a.dtype}, built on {a.built_on})",
        f"params            {a.params:,} ({a.trainable_params:,} trainable)",
        "param memory      " + ", ".join(f"{k} {v / MIB:,.1f} MiB" for k, v in a.param_bytes.items()),
        f"buffers           {a.buffer_bytes / MIB:,.2f} MiB",
        f"MACs              {a.macs:,} ({a.macs / 1e9:,.3f} GMACs)",
        f"FLOPs             {a.flops:,} ({a.flops / 1e9:,.3f} GFLOPs)",
        f"activations       {a.activation_bytes / MIB:,.1f} MiB written by the forward pass"]
    if a.saved_bytes is not None:
        lines.append(f"saved for grad    {a.saved_bytes / MIB:,.1f} MiB kept by autograd for backward (train mode)")
    lines += [f"note              {note}" for note in a.notes]
    lines.append(MACS_NOTE)
    return "\n".join(lines)


def environment(info: dict[str, Any], fmt: str) -> str:
    if fmt != "table":
        return records([info], fmt, [], json_doc=info)
    width = max(map(len, info))
    return "\n".join(f"{key:<{width}}  {'-' if value is None else value}" for key, value in info.items())


def run_list(rows: Sequence[dict[str, Any]], fmt: str) -> str:
    """``cnnbench runs``: the store's ``list_runs()``, with a local start time, status counts and completeness."""
    for row in rows:
        row["started"] = datetime.datetime.fromtimestamp(row["started_at"]).strftime("%Y-%m-%d %H:%M:%S")
        row["status_counts"] = " ".join(f"{k}={v}" for k, v in sorted(row["statuses"].items()))
        row["complete"] = row["finished_at"] is not None and row["cases_done"] >= row["cases_total"]
        row["shards_text"] = f"{row['shards_done']}/{row['shards']}" if row.get("shards") else "-"
    if fmt == "csv":
        return render_csv([{k: v for k, v in r.items() if k not in ("statuses", "shards_text")} for r in rows])
    return records(rows, fmt, [
        Column("run_id", "run", align="<"), Column("suite", "suite", align="<"),
        Column("started", "started", align="<"), Column("cases_done", "done"), Column("cases_total", "cases"),
        Column("shards_text", "shards done", align="<"),
        Column("status_counts", "statuses", align="<"), Column("machine", "machine", align="<"),
    ])


def ms(value: Optional[float]) -> str:
    return "-" if value is None or value != value else f"{value:.3f}"


def case_line(row: dict[str, Any]) -> str:
    """One measured case of ``cnnbench run``, as it finishes."""
    head = f"{row['model']:<10} {row['device']:<4} b{row['batch_size']:<4} {row['variant']:<34} {row['mode']:<5}"
    if row["samples"]:
        figures = f"p50 {row['latency_ms_p50']:9.3f} ms  {row['throughput_img_s']:9.1f} img/s"
    else:
        figures = " " * 37
    reason = f"  ({row['reason']})" if row["reason"] else ""
    return f"{head} {figures}  {row['status']}{reason}"


def run_summary(run_id: str, store_label: str, counts: dict[str, int], rows: Sequence[dict[str, Any]],
                as_json: bool) -> str:
    if as_json:
        return render_json({"run_id": run_id, "store": store_label, "statuses": counts, "results": [
            {k: row[k] for k in ("case_key", "status", "reason", "latency_ms_p50", "throughput_img_s", "samples")}
            for row in rows]})
    summary = ", ".join(f"{n} {s}" for s, n in counts.items()) or "nothing left to measure"
    return f"run {run_id}: {summary}"


def submitted(run_id: str, jobs: Sequence[tuple[str, str]]) -> str:
    """``cnnbench submit``: the run's id, then each shard (K/N) and its job id, a line each."""
    return "\n".join([f"run {run_id}", *(f"shard {shard}  job {job_id}" for shard, job_id in jobs)])


def jobs_line(run_id: str, done: int, total: int, counts: dict[str, int]) -> str:
    """``submit --wait``'s line: the run's cases stored so far and its jobs by state (those with none left out)."""
    jobs = ", ".join(f"{n} {state}" for state, n in counts.items() if n) or "none"
    return f"run {run_id}: {done}/{total} cases stored; jobs: {jobs}"


def shard_list(rows: Sequence[dict[str, Any]]) -> str:
    """A sharded run's shards (``Store.shards``): job, machine, cases done of its own, start and time taken."""
    shown = [{**row, "shard": f"{row['shard']}/{row['shards']}", "job_id": row.get("job_id") or "-",
              "started": datetime.datetime.fromtimestamp(row["started_at"]).strftime("%Y-%m-%d %H:%M:%S"),
              "took_s": None if row.get("finished_at") is None else row["finished_at"] - row["started_at"]}
             for row in rows]
    return render_table(shown, [
        Column("shard", "shard", align="<"), Column("job_id", "job", align="<"),
        Column("machine", "machine", align="<"), Column("cases_done", "done"), Column("cases_total", "cases"),
        Column("started", "started", align="<"), Column("took_s", "took (s)", scaled(1, 1)),
    ]) if rows else "no shard has stored its row"


def ratio_ci(row: Any) -> str:
    return "-" if row.ratio_ci_low is None else f"{row.ratio_ci_low:.3f}-{row.ratio_ci_high:.3f}"


def _plain_table(cols: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    columns = [Column(str(i), c, align="<" if i in (0, len(cols) - 1) else ">") for i, c in enumerate(cols)]
    return render_table([{str(i): v for i, v in enumerate(row)} for row in body], columns)


def _markdown_table(cols: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(escape.markdown(c) for c in row) + " |" for row in body]
    return "\n".join(lines)


def comparison(doc: dict[str, Any], rows: Sequence[Any], exact: Sequence[Any], fmt: str) -> str:
    """``cnnbench compare``: its document (``bench.compare.document``) as JSON, a table or Markdown."""
    if fmt == "json":
        return render_json(doc)
    timing_cols = ["case", "baseline p50 (ms)", "candidate p50 (ms)", "ratio", "95% CI", "p", "verdict"]
    timing = [[r.key, ms(r.baseline_p50_ms), ms(r.candidate_p50_ms),
               "-" if r.ratio is None else f"{r.ratio:.3f}", ratio_ci(r),
               "-" if r.p_value is None else f"{r.p_value:.2g}", r.verdict + (f" ({r.reason})" if r.reason else "")]
              for r in rows]
    exact_cols = ["case", "metric", "baseline", "candidate", "change", "verdict"]
    exact_rows = [[e.key, e.metric, f"{e.baseline:,}", f"{e.candidate:,}", f"{100 * e.relative:+.2f}%",
                   "FAIL" if e.failed else "changed (within tolerance)"] for e in exact]
    counts = ", ".join(f"{n} {v}" for v, n in sorted(doc["verdicts"].items())) or "no cases"
    verdict = "REGRESSION" if doc["regressed"] else "no regression"
    summary = (f"{verdict}: timing {counts}; {len(exact)} exact-metric changes "
               f"({sum(e.failed for e in exact)} beyond tolerance)")
    if fmt == "markdown":
        sides = " -> ".join(escape.markdown(doc[side]) for side in ("baseline", "candidate"))
        parts = [f"### cnnbench compare: {sides}", "", f"**{summary}**", ""]
        if doc["environment_differences"]:
            parts += ["Environments differ: " + escape.markdown("; ".join(doc["environment_differences"])), ""]
        if doc.get("machine_speed_notes"):
            parts += ["Machine speed (calibration): " + escape.markdown("; ".join(doc["machine_speed_notes"])), ""]
        parts += [_markdown_table(timing_cols, timing), ""]
        if exact_rows:
            parts += ["Exact metrics:", "", _markdown_table(exact_cols, exact_rows), ""]
        return "\n".join(parts).rstrip()
    parts = [f"baseline {doc['baseline']} -> candidate {doc['candidate']}"]
    if doc["environment_differences"]:
        parts.append("warning: the environments differ: " + "; ".join(doc["environment_differences"]))
    for note in doc.get("machine_speed_notes", ()):
        parts.append("note: " + note)
    parts += ["", _plain_table(timing_cols, timing)]
    if exact_rows:
        parts += ["", "exact metrics:", _plain_table(exact_cols, exact_rows)]
    parts += ["", summary]
    return "\n".join(parts)


def ab_outcome(row: Any, paired: Any, base_key: str, cand_key: str, thresholds: Any, fmt: str) -> str:
    """``cnnbench ab``: the verdict row (``bench.confirm.paired_verdict``) and its ``bench.ab.Paired``."""
    if fmt == "json":
        return render_json({**asdict(row), "baseline": base_key, "candidate": cand_key, "rounds": paired.rounds,
                            "baseline_samples": paired.base_iterations,  # iterations, under 0.1's key
                            "candidate_samples": paired.cand_iterations,
                            "pair_ratios": list(paired.pair_ratios), "status": paired.status})
    if paired.status != "ok":
        return f"{row.verdict}: {row.reason}"
    return "\n".join([
        f"A p50 {ms(row.baseline_p50_ms)} ms, B p50 {ms(row.candidate_p50_ms)} ms "
        f"(interleaved: each includes refilling caches after the other ran)",
        f"B/A ratio {row.ratio:.3f} (95% CI {ratio_ci(row)}), sign test p = {row.p_value:.2g}, "
        f"{paired.rounds} rounds in {paired.seconds:.1f} s; each pair of worker processes: "
        + ", ".join(f"{r:.3f}" for r in paired.pair_ratios),
        f"verdict: {row.verdict} (threshold {100 * thresholds.threshold:g}%, alpha {thresholds.alpha:g})",
        *(f"warning: {warning}" for warning in paired.warnings),
    ])


def profile(result: Any, out: str, fmt: str) -> str:
    """``cnnbench profile``: per-layer times of a ``bench.profiling.ProfileResult`` and its top operators."""
    rows = list(result.layers)
    if fmt == "json":
        return render_json({"case": result.case.key, "step_ms": result.step_ms, "trace_dir": str(result.trace_dir),
                            "trace_files": [str(f) for f in result.trace_files], "layers": rows,
                            "top_ops": list(result.top_ops)})
    if fmt == "csv":
        return render_csv(rows)
    covered = sum(r["time_ms"] for r in rows)
    return "\n".join([
        render_table(rows, [
            Column("layer", "layer", align="<"), Column("type", "type", align="<"),
            Column("output_shape", "output", shape), Column("params", "params", thousands),
            Column("macs", "MMACs", scaled(1e6, 1)), Column("time_ms", "fwd (ms)", scaled(1, 3)),
            *([Column("backward_ms", "bwd (ms)", scaled(1, 3))] if result.case.mode == "train" else []),
            Column("time_share", "time %", percent),
            Column("achieved_gflop_s", "GFLOP/s", scaled(1, 1)),
            Column("intensity_flop_per_byte", "FLOP/B", scaled(1, 1)),
        ], footer={"layer": "layers", "time_ms": covered, "params": sum(r["params"] for r in rows),
                   "macs": sum(r["macs"] for r in rows)}),
        "",
        f"step {result.step_ms:.3f} ms ({result.case.key}); layers cover {100 * covered / result.step_ms:.1f}% of it",
        "",
        "top operators by self time:",
        render_table(list(result.top_ops)[:10], [
            Column("operator", "operator", align="<"), Column("calls", "calls"),
            *([Column("self_device_ms", "self device (ms/step)", scaled(1, 3))]
              if result.top_ops and "self_device_ms" in result.top_ops[0] else []),
            Column("self_cpu_ms", "self CPU (ms/step)", scaled(1, 3)),
            Column("cpu_total_ms", "CPU total (ms/step)", scaled(1, 3)),
        ]),
        "",
        f"traces: {result.trace_dir} (tensorboard --logdir {out}, or open the .json.gz in ui.perfetto.dev)",
    ])


class Progress:
    """A progress bar on stderr, with a line per finished case above it (nothing when ``quiet``); keeps the rows."""

    def __init__(self, title: str, quiet: bool = False) -> None:
        self.rows: list[dict[str, Any]] = []
        self.started: list[str] = []  # the keys of the cases begun, finished or not
        self.bar: Any = None
        if quiet:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
            TimeRemainingColumn

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                            console=Console(stderr=True), transient=True)
        self.bar.start()
        self.task = self.bar.add_task("starting", total=None)
        show(title, sys.stderr)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.stop()

    def in_flight(self) -> list[str]:
        """The keys of the cases begun and not finished."""
        finished = {row["case_key"] for row in self.rows}
        return [key for key in self.started if key not in finished]

    def row(self, row: dict[str, Any]) -> None:
        """A finished case: kept, and shown as its line."""
        self.rows.append(row)
        if self.bar is not None:
            self.bar.console.print(escape.terminal_lines(case_line(row)), highlight=False, markup=False,
                                   soft_wrap=True)

    def case(self, case: Any, index: int, total: int) -> None:
        """A case begins: kept, and named on the bar."""
        self.started.append(case.key)
        if self.bar is None:
            return
        self.bar.update(self.task, total=total, completed=index,
                        description=escape.terminal(f"{case.model} b{case.batch_size} {case.variant} {case.mode}"))


class StatusLine:
    """One line on stderr that changes: redrawn in place on a terminal, printed anew when it changed elsewhere
    (a log keeps each step)."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self.last: Optional[str] = None
        self.status: Any = None

    def __enter__(self) -> "StatusLine":
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.status is not None:
            self.status.stop()
        if self.last is not None and self.console.is_terminal:
            show(self.last, sys.stderr)  # the last state stays on screen

    def update(self, text: str) -> None:
        if text == self.last:
            return
        self.last = text
        if not self.console.is_terminal:
            show(text, sys.stderr)
            return
        from rich.text import Text

        shown = Text(escape.terminal(text))  # plain text: a name in it is not rich markup
        if self.status is None:
            self.status = self.console.status(shown)
            self.status.start()
        else:
            self.status.update(shown)
