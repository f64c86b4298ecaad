"""The ``cnnbench`` command line: parses, calls, prints. Nothing below imports it."""

from __future__ import annotations

import argparse
import math
import re
import sys
from typing import Any, NoReturn, Optional, Sequence

from . import analysis, environment
from .errors import BadInput, BadValue, CnnbenchError
from .models import parse_batch_size, parse_input_size, resolve, select
from .table import (
    FORMATS,
    Column,
    percent,
    render_csv,
    render_json,
    render_table,
    scaled,
    shape,
    thousands,
)

MIB = 2**20
MACS_NOTE = ("MACs are multiply-accumulates of conv and matmul; FLOPs = 2 x MACs. "
             "torchvision's and timm's \"GFLOPS\" are GMACs.")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {message} (see '{self.prog} --help')", file=sys.stderr)
        sys.exit(2)


def _format_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", default="table", help=f"output format: {', '.join(FORMATS)} (default: table)")


def _check_format(value: str) -> str:
    if value not in FORMATS:
        raise BadValue(f"format must be one of {', '.join(FORMATS)}, got {value!r}")
    return value


def cmd_list(args: argparse.Namespace) -> int:
    fmt = _check_format(args.format)
    rows = []
    for name in select(args.pattern):
        entry = resolve(name)
        a = analysis.analyse(name, training=False)
        rows.append({
            "model": name, "family": entry.family, "source": entry.source,
            "input_shape": entry.input_shape, "params": a.params, "macs": a.macs, "gmacs": round(a.macs / 1e9, 3),
        })
    if fmt == "json":
        print(render_json(rows))
    elif fmt == "csv":
        print(render_csv(rows))
    else:
        print(render_table(rows, [
            Column("model", "model", align="<"), Column("family", "family", align="<"),
            Column("source", "source", align="<"), Column("input_shape", "input (CxHxW)", shape),
            Column("params", "params", thousands), Column("macs", "GMACs (batch 1)", scaled(1e9, 3)),
        ]))
        print(f"\n{len(rows)} models. {MACS_NOTE}")
    return 0


def _layer_rows(a: analysis.Analysis) -> list[dict[str, Any]]:
    return [
        {
            "layer": layer.path, "type": layer.type, "output_shape": layer.output_shape,
            "params": layer.params, "macs": layer.macs, "activation_bytes": layer.activation_bytes,
            "macs_share": analysis.share(layer.macs, a.macs),
            "activation_share": analysis.share(layer.activation_bytes, a.activation_bytes),
        }
        for layer in a.layers
    ]


def cmd_inspect(args: argparse.Namespace) -> int:
    fmt = _check_format(args.format)
    batch = parse_batch_size(args.batch_size)
    size = parse_input_size(args.input_size) if args.input_size is not None else None
    a = analysis.analyse(args.model, batch_size=batch, input_shape=size, dtype=args.dtype)
    rows = _layer_rows(a)
    if fmt == "json":
        print(render_json({"totals": a.totals(), "layers": rows}))
        return 0
    if fmt == "csv":
        print(render_csv(rows))
        return 0
    print(render_table(rows, [
        Column("layer", "layer", align="<"), Column("type", "type", align="<"),
        Column("output_shape", "output", shape), Column("params", "params", thousands),
        Column("macs", "MMACs", scaled(1e6, 1)), Column("macs_share", "MACs %", percent),
        Column("activation_bytes", "act (MiB)", scaled(MIB, 2)), Column("activation_share", "act %", percent),
    ], footer={"layer": "total", "params": a.params, "macs": a.macs, "activation_bytes": a.activation_bytes}))
    t = a.totals()
    print()
    print(f"model             {a.model}  (input {t['input_shape']}, batch {a.batch_size}, {a.dtype}, built on {a.built_on})")
    print(f"params            {a.params:,} ({a.trainable_params:,} trainable)")
    print("param memory      " + ", ".join(f"{k} {v / MIB:,.1f} MiB" for k, v in a.param_bytes.items()))
    print(f"buffers           {a.buffer_bytes / MIB:,.2f} MiB")
    print(f"MACs              {a.macs:,} ({a.macs / 1e9:,.3f} GMACs)")
    print(f"FLOPs             {a.flops:,} ({a.flops / 1e9:,.3f} GFLOPs)")
    print(f"activations       {a.activation_bytes / MIB:,.1f} MiB written by the forward pass")
    if a.saved_bytes is not None:
        print(f"saved for grad    {a.saved_bytes / MIB:,.1f} MiB kept by autograd for backward (train mode)")
    for note in a.notes:
        print(f"note              {note}")
    print(MACS_NOTE)
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    fmt = _check_format(args.format)
    info = environment.collect()
    if fmt == "json":
        print(render_json(info))
    elif fmt == "csv":
        print(render_csv([info]))
    else:
        width = max(map(len, info))
        for key, value in info.items():
            print(f"{key:<{width}}  {'-' if value is None else value}")
    return 0


_UNITS = {"": 1, "b": 1, "k": 1e3, "kb": 1e3, "kib": 2**10, "m": 1e6, "mb": 1e6, "mib": 2**20,
          "g": 1e9, "gb": 1e9, "gib": 2**30}


def parse_bytes(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(text))
    if not match or match.group(2).lower() not in _UNITS or float(match.group(1)) <= 0:
        raise BadValue(f"memory size must be a positive number with an optional unit (512MiB, 2GiB), got {text!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def _positive_float(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value > 0:
        raise BadValue(f"{what} must be a positive number, got {text!r}")
    return value


def _suite_from_args(args: argparse.Namespace):
    from dataclasses import replace

    from .cases import override, resolve_suite

    suite = resolve_suite(args.suite or _pyproject_suite())
    suite = override(suite, models=args.models, devices=args.devices, batch_sizes=args.batch_sizes,
                     precisions=args.precision, memory_formats=args.memory_format, modes=args.mode,
                     compilers=args.compiler, threads=args.threads, input_size=args.input_size)
    if args.max_seconds is not None:
        suite = replace(suite, measure=replace(suite.measure, max_seconds=_positive_float(args.max_seconds, "--max-seconds")))
    if args.timeout is not None:
        suite = replace(suite, measure=replace(suite.measure, timeout_s=_positive_float(args.timeout, "--timeout")))
    return suite


def _pyproject_suite() -> Optional[str]:
    """A [tool.cnnbench] table in ./pyproject.toml is the default suite when no --suite is given."""
    from pathlib import Path

    path = Path("pyproject.toml")
    if path.is_file() and "[tool.cnnbench" in path.read_text(errors="replace"):
        return str(path)
    return None


def _fmt_ms(value: Optional[float]) -> str:
    return "-" if value is None or value != value else f"{value:.3f}"


def _case_line(row: dict[str, Any]) -> str:
    c = row
    head = f"{c['model']:<10} {c['device']:<4} b{c['batch_size']:<4} {c['variant']:<34} {c['mode']:<5}"
    if row["samples"]:
        figures = f"p50 {row['latency_ms_p50']:9.3f} ms  {row['throughput_img_s']:9.1f} img/s"
    else:
        figures = " " * 37
    reason = f"  ({row['reason']})" if row["reason"] else ""
    return f"{head} {figures}  {row['status']}{reason}"


def cmd_run(args: argparse.Namespace) -> int:
    from .results import result_row
    from .runner import RunOptions, execute, start_run
    from .store import open_store

    if args.resume:
        store = open_store(args.store, create=False)
        run_id = args.resume
        store.run(run_id)  # an unknown id fails here
    else:
        suite = _suite_from_args(args)
        cases = suite.cases()
        if args.dry_run:
            for case in cases:
                print(case.key)
            print(f"{len(cases)} cases in suite {suite.name!r}", file=sys.stderr)
            return 0
        options = RunOptions(
            isolation=args.isolation, oom_retry=args.oom_retry, tf32=args.tf32, cudnn_benchmark=args.cudnn_benchmark,
            instructions=args.instructions, profile_dir=args.profile_dir if args.profile else None,
            memory_limit_bytes=parse_bytes(args.worker_memory_limit) if args.worker_memory_limit else None,
        )
        store = open_store(args.store, create=True)
        run_id = start_run(store, suite, options)
    quiet = args.quiet or args.json
    rows: list[dict[str, Any]] = []
    progress = None
    if not quiet:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                            console=Console(stderr=True), transient=True)
        progress.start()
        task = progress.add_task("starting", total=None)
        print(f"run {run_id} -> {store.label}", file=sys.stderr)

    def on_start(case, index: int, total: int) -> None:
        if progress is not None:
            progress.update(task, total=total, completed=index, description=f"{case.model} b{case.batch_size} {case.variant} {case.mode}")

    def on_result(result) -> None:
        row = result_row(result)
        rows.append(row)
        if progress is not None:
            progress.console.print(_case_line(row), highlight=False, markup=False, soft_wrap=True)

    try:
        execute(store, run_id, on_start=on_start, on_result=on_result)
    finally:
        if progress is not None:
            progress.stop()
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    if args.json:
        print(render_json({"run_id": run_id, "store": store.label, "statuses": counts, "results": [
            {k: row[k] for k in ("case_key", "status", "reason", "latency_ms_p50", "throughput_img_s", "samples")}
            for row in rows]}))
    else:
        summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "nothing left to measure"
        print(f"run {run_id}: {summary}")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    import datetime

    from .store import open_store

    fmt = _check_format(args.format)
    rows = open_store(args.store, create=False).list_runs()
    for row in rows:
        row["started"] = datetime.datetime.fromtimestamp(row["started_at"]).strftime("%Y-%m-%d %H:%M:%S")
        row["status_counts"] = " ".join(f"{k}={v}" for k, v in sorted(row["statuses"].items()))
        row["complete"] = row["finished_at"] is not None and row["cases_done"] >= row["cases_total"]
    if fmt == "json":
        print(render_json(rows))
    elif fmt == "csv":
        print(render_csv([{k: v for k, v in r.items() if k != "statuses"} for r in rows]))
    else:
        print(render_table(rows, [
            Column("run_id", "run", align="<"), Column("suite", "suite", align="<"),
            Column("started", "started", align="<"), Column("cases_done", "done"), Column("cases_total", "cases"),
            Column("status_counts", "statuses", align="<"), Column("hostname", "host", align="<"),
        ]))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .results import export
    from .store import open_store

    store = open_store(args.store, create=False)
    run_id = store.latest_run_id() if args.run_id == "latest" else args.run_id
    where = export(run_id, args.format, args.output, store)
    if where != "-":
        print(f"wrote {where}", file=sys.stderr)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .report import write_report
    from .store import open_store

    store = open_store(args.store, create=False)
    run_ids = list(args.run_ids)
    if args.latest:
        run_ids.append(store.latest_run_id())
    if not run_ids:
        raise BadValue("name the runs to report (see 'cnnbench runs') or pass --latest")
    path = write_report(store, run_ids, args.output, profiles_root=args.profiles)
    print(path.resolve())
    return 0


def _load_side(spec: str, store_location: Optional[str]):
    from pathlib import Path

    from . import runfile
    from .compare import Side
    from .store import open_store

    if spec.endswith(".json") or Path(spec).is_file():
        doc = runfile.read(spec)
        return Side(spec, doc["run"], tuple(doc["results_parsed"]))
    store = open_store(store_location, create=False)
    run_id = store.latest_run_id() if spec == "latest" else spec
    return Side(run_id, store.run(run_id), tuple(store.results(run_id)))


def _compare_document(base, cand, rows, exact, env_diff, regressed: bool) -> dict[str, Any]:
    from dataclasses import asdict

    counts: dict[str, int] = {}
    for row in rows:
        counts[row.verdict] = counts.get(row.verdict, 0) + 1
    return {
        "baseline": base.label, "candidate": cand.label, "environment_differences": env_diff,
        "verdicts": counts, "timing": [asdict(r) for r in rows],
        "exact": [{**asdict(e), "relative": e.relative} for e in exact],
        "regressed": regressed,
    }


def _fmt_ratio_ci(row) -> str:
    return "-" if row.ratio_ci_low is None else f"{row.ratio_ci_low:.3f}-{row.ratio_ci_high:.3f}"


def _render_compare(doc: dict[str, Any], rows, exact, fmt: str) -> str:
    timing_cols = ["case", "baseline p50 (ms)", "candidate p50 (ms)", "ratio", "95% CI", "p", "verdict"]
    timing = [[r.key, _fmt_ms(r.baseline_p50_ms), _fmt_ms(r.candidate_p50_ms),
               "-" if r.ratio is None else f"{r.ratio:.3f}", _fmt_ratio_ci(r),
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
        def md(cols, body):
            lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
            lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in body]
            return "\n".join(lines)
        parts = [f"### cnnbench compare: `{doc['baseline']}` -> `{doc['candidate']}`", "", f"**{summary}**", ""]
        if doc["environment_differences"]:
            parts += ["Environments differ: " + "; ".join(doc["environment_differences"]), ""]
        parts += [md(timing_cols, timing), ""]
        if exact_rows:
            parts += ["Exact metrics:", "", md(exact_cols, exact_rows), ""]
        return "\n".join(parts).rstrip()
    def table(cols, body):
        columns = [Column(str(i), c, align="<" if i in (0, len(cols) - 1) else ">") for i, c in enumerate(cols)]
        return render_table([{str(i): v for i, v in enumerate(row)} for row in body], columns)
    parts = [f"baseline {doc['baseline']} -> candidate {doc['candidate']}"]
    if doc["environment_differences"]:
        parts.append("warning: the environments differ: " + "; ".join(doc["environment_differences"]))
    parts += ["", table(timing_cols, timing)]
    if exact_rows:
        parts += ["", "exact metrics:", table(exact_cols, exact_rows)]
    parts += ["", summary]
    return "\n".join(parts)


def cmd_compare(args: argparse.Namespace) -> int:
    from .compare import (
        compare_runs,
        env_differences,
        exact_changes,
        worst_first,
    )

    if args.format not in ("table", "markdown", "json"):
        raise BadValue(f"format must be one of table, markdown, json, got {args.format!r}")
    thresholds = _thresholds(args, noise_limit=_positive_float(args.noise_limit, "--noise-limit"))
    try:
        tolerance = float(args.exact_tolerance)
    except ValueError:
        tolerance = -1.0
    if not tolerance >= 0:
        raise BadValue(f"--exact-tolerance must be a number >= 0 (a relative change), got {args.exact_tolerance!r}")
    base, cand = _load_side(args.baseline, args.store), _load_side(args.candidate, args.store)
    env_diff = env_differences(base.meta.get("environment", {}), cand.meta.get("environment", {}))
    if env_diff and args.strict_env:
        raise BadValue("refusing to compare runs from different environments (--strict-env): " + "; ".join(env_diff))
    rows = compare_runs(base.results, cand.results, thresholds)
    if args.confirm:
        from .gate import confirm

        def on_case(key: str, index: int, total: int) -> None:
            if args.format == "table":
                print(f"re-measuring {index + 1}/{total}: {key}", file=sys.stderr, flush=True)

        rows = confirm(rows, base, cand, thresholds, mode=args.confirm, base_src=args.baseline_src,
                       cand_src=args.candidate_src, on_case=on_case)
    rows = worst_first(rows)
    exact = exact_changes(base.results, cand.results, tolerance,
                          tolerances={"instructions_per_iter": _positive_float(args.instructions_tolerance,
                                                                             "--instructions-tolerance")})
    if args.gate not in ("all", "exact"):
        raise BadValue(f"--gate must be all or exact, got {args.gate!r}")
    regressed = (args.gate == "all" and any(r.verdict == "slower" for r in rows)) or any(e.failed for e in exact)
    doc = _compare_document(base, cand, rows, exact, env_diff, regressed)
    print(render_json(doc) if args.format == "json" else _render_compare(doc, rows, exact, args.format))
    return 1 if regressed else 0


def cmd_baseline(args: argparse.Namespace) -> int:
    from pathlib import Path

    from . import runfile
    from .store import open_store

    store = open_store(args.store, create=False)
    run_id = store.latest_run_id() if args.run_id == "latest" else args.run_id
    doc = runfile.dump(store, run_id)
    name = args.name or doc["run"]["suite"].replace("+flags", "")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise BadValue(f"baseline name must be letters, digits, '.', '_' or '-', got {name!r}")
    path = runfile.write(Path(args.dir) / f"{name}.json", doc)
    print(path)
    return 0


def cmd_import_pytest_benchmark(args: argparse.Namespace) -> int:
    from .pytest_import import import_file
    from .store import open_store

    run_id = import_file(open_store(args.store, create=True), args.file)
    print(run_id)
    return 0


CASE_FLAGS = {  # flag: help; one value each (the singular form of run's axes)
    "device": "cpu or cuda (default: cpu)",
    "batch_size": "default: 1",
    "precision": "fp32, amp-bf16, amp-fp16, bf16 or fp16 (default: fp32)",
    "memory_format": "contiguous or channels_last (default: contiguous)",
    "mode": "infer or train (default: infer)",
    "compiler": "eager or compile (default: eager)",
    "threads": "CPU threads (default: all usable cores)",
    "input_size": "C,H,W (default: the model's own)",
}


def _add_threshold_flags(p: argparse.ArgumentParser, test: str) -> None:
    p.add_argument("--threshold", default="0.10", help="relative change of the median that matters (default 0.10)")
    p.add_argument("--alpha", default="0.01", help=f"significance level of the {test} (default 0.01)")


def _thresholds(args: argparse.Namespace, **more: float):
    """The verdict thresholds that _add_threshold_flags declared, checked."""
    from .compare import Thresholds

    return Thresholds(threshold=_positive_float(args.threshold, "--threshold"),
                      alpha=_positive_float(args.alpha, "--alpha"), **more)


def _add_src_flags(p: argparse.ArgumentParser, base: str, cand: str, default: str) -> None:
    """--baseline-src / --candidate-src: checkouts whose code measures each side of an interleaved A/B."""
    for flag, side in (("--baseline-src", base), ("--candidate-src", cand)):
        p.add_argument(flag, metavar="DIR", help=f"a checkout of {side} code{default}")


def _add_case_flags(p: argparse.ArgumentParser) -> None:
    for name, text in CASE_FLAGS.items():
        p.add_argument("--" + name.replace("_", "-"), help=text)


def _single_case(model: str, flags: dict[str, Any], command: str):
    """The one case that a model and the singular case flags (CASE_FLAGS) name."""
    from .cases import override, suite_from_dict

    suite = suite_from_dict({"models": [model]}, name=command)
    suite = override(suite, devices=flags.get("device"), batch_sizes=flags.get("batch_size"),
                     precisions=flags.get("precision"), memory_formats=flags.get("memory_format"),
                     modes=flags.get("mode"), compilers=flags.get("compiler"), threads=flags.get("threads"),
                     input_size=flags.get("input_size"))
    cases = suite.cases()
    if len(cases) != 1:
        raise BadValue(f"{command} takes one value per axis; these flags give {len(cases)} cases")
    return cases[0]


def cmd_ab(args: argparse.Namespace) -> int:
    """Interleaved A/B of two cases: a model against another, or against itself with other flags (--vs)."""
    from dataclasses import asdict

    from .ab import Arm, check_src, interleave
    from .cases import Measure
    from .gate import paired_verdict

    if args.format not in ("table", "json"):
        raise BadValue(f"format must be one of table, json, got {args.format!r}")
    base_flags = {name: getattr(args, name) for name in CASE_FLAGS}
    cand_flags = dict(base_flags)
    for item in args.vs or []:
        name, eq, value = item.partition("=")
        key = name.strip().replace("-", "_")
        if not eq or key not in CASE_FLAGS or not value.strip():
            allowed = ", ".join(n.replace("_", "-") for n in CASE_FLAGS)
            raise BadValue(f"--vs takes FLAG=VALUE with FLAG one of {allowed}, got {item!r}")
        cand_flags[key] = value.strip()
    base = _single_case(args.baseline, base_flags, "ab")
    cand = _single_case(args.candidate or args.baseline, cand_flags, "ab")
    thresholds = _thresholds(args)
    m = Measure(max_seconds=_positive_float(args.max_seconds, "--max-seconds"),
                warmup_seconds=_positive_float(args.warmup_seconds, "--warmup-seconds"))
    for src in (args.baseline_src, args.candidate_src):
        if src:
            check_src(src)
    if base == cand and not (args.baseline_src or args.candidate_src):
        print("note: both sides are the same case from the same code (an A/A check)", file=sys.stderr)
    if args.format == "table":
        print(f"A: {base.key}\nB: {cand.key}\ninterleaving, one iteration at a time ...", file=sys.stderr, flush=True)
    paired = interleave(Arm(base, args.baseline_src), Arm(cand, args.candidate_src), m)
    row = paired_verdict(f"{base.key} -> {cand.key}", paired, thresholds)
    if args.format == "json":
        print(render_json({**asdict(row), "baseline": base.key, "candidate": cand.key, "rounds": paired.rounds,
                           "baseline_samples": paired.base_samples, "candidate_samples": paired.cand_samples,
                           "pair_ratios": list(paired.pair_ratios),
                           "status": paired.status}))
    else:
        if paired.status != "ok":
            print(f"{row.verdict}: {row.reason}")
        else:
            print(f"A p50 {_fmt_ms(row.baseline_p50_ms)} ms, B p50 {_fmt_ms(row.candidate_p50_ms)} ms "
                  f"(interleaved: each includes refilling caches after the other ran)")
            print(f"B/A ratio {row.ratio:.3f} (95% CI {_fmt_ratio_ci(row)}), sign test p = {row.p_value:.2g}, "
                  f"{paired.rounds} rounds in {paired.seconds:.1f} s; each pair of worker processes: "
                  + ", ".join(f"{r:.3f}" for r in paired.pair_ratios))
            print(f"verdict: {row.verdict} (threshold {100 * thresholds.threshold:g}%, alpha {thresholds.alpha:g})")
    return 1 if row.verdict == "slower" else 0


def cmd_profile(args: argparse.Namespace) -> int:
    import time as time_module

    from .profiling import profile_case

    fmt = _check_format(args.format)
    case = _single_case(args.model, vars(args), "profile")
    steps = int(_positive_float(args.steps, "--steps"))
    run = args.run or time_module.strftime("%Y%m%d-%H%M%S")
    result = profile_case(case, out=args.out, run=run, steps=steps)
    rows = list(result.layers)
    if fmt == "json":
        print(render_json({"case": result.case.key, "step_ms": result.step_ms, "trace_dir": str(result.trace_dir),
                           "trace_files": [str(f) for f in result.trace_files], "layers": rows,
                           "top_ops": list(result.top_ops)}))
        return 0
    if fmt == "csv":
        print(render_csv(rows))
        return 0
    print(render_table(rows, [
        Column("layer", "layer", align="<"), Column("type", "type", align="<"), Column("output_shape", "output", shape),
        Column("params", "params", thousands), Column("macs", "MMACs", scaled(1e6, 1)),
        Column("time_ms", "fwd (ms)", scaled(1, 3)),
        *([Column("backward_ms", "bwd (ms)", scaled(1, 3))] if result.case.mode == "train" else []),
        Column("time_share", "time %", percent),
        Column("achieved_gflop_s", "GFLOP/s", scaled(1, 1)), Column("intensity_flop_per_byte", "FLOP/B", scaled(1, 1)),
    ], footer={"layer": "layers", "time_ms": sum(r["time_ms"] for r in rows), "params": sum(r["params"] for r in rows),
               "macs": sum(r["macs"] for r in rows)}))
    print(f"\nstep {result.step_ms:.3f} ms ({result.case.key}); layers cover "
          f"{100 * sum(r['time_ms'] for r in rows) / result.step_ms:.1f}% of it")
    print("\ntop operators by self time:")
    print(render_table(list(result.top_ops)[:10], [
        Column("operator", "operator", align="<"), Column("calls", "calls"),
        Column("self_cpu_ms", "self CPU (ms/step)", scaled(1, 3)), Column("cpu_total_ms", "CPU total (ms/step)", scaled(1, 3)),
    ]))
    print(f"\ntraces: {result.trace_dir} (tensorboard --logdir {args.out}, or open the .json.gz in ui.perfetto.dev)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cnnbench", description="Benchmark and profile classic CNNs in PyTorch.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("list", help="registered models with params and GMACs")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style pattern, e.g. 'vgg*' or 'tv.res*' (default: all)")
    _format_option(p)
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("inspect", help="static analysis of one model: per-layer table and totals")
    p.add_argument("model")
    p.add_argument("--batch-size", default="1", help="batch size (default: 1)")
    p.add_argument("--input-size", help="C,H,W without the batch (default: the model's registered input)")
    p.add_argument("--dtype", default="float32", help=f"{', '.join(analysis.DTYPES)} (default: float32)")
    _format_option(p)
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("run", help="measure a suite of cases into the results store")
    p.add_argument("--suite", help="built-in suite (quick, cpu-full, gpu, ci) or a TOML file (default: quick, "
                                   "or [tool.cnnbench] of ./pyproject.toml)")
    p.add_argument("--models", help="comma-separated names or shell patterns, e.g. 'vgg1*,alexnet'")
    p.add_argument("--devices", help="cpu,cuda")
    p.add_argument("--batch-sizes", help="e.g. 1,8,32")
    p.add_argument("--precision", help="fp32,amp-bf16,amp-fp16,bf16,fp16")
    p.add_argument("--memory-format", help="contiguous,channels_last")
    p.add_argument("--mode", help="infer,train")
    p.add_argument("--compiler", help="eager,compile")
    p.add_argument("--threads", help="CPU threads, e.g. 1,2 (default: all usable cores)")
    p.add_argument("--input-size", help="C,H,W for every model (default: each model's own)")
    p.add_argument("--max-seconds", help="time cap on each case's sampling, in s")
    p.add_argument("--timeout", help="each worker's whole time limit, in s (default 600)")
    p.add_argument("--dry-run", action="store_true", help="list the cases and stop")
    p.add_argument("--resume", metavar="RUN_ID", help="measure only what an interrupted run is missing")
    p.add_argument("--store", help="results store: an SQLite path or a SQLAlchemy URL (default: results/cnnbench.db)")
    p.add_argument("--isolation", default="process", help="process (default: a worker per case) or none")
    p.add_argument("--oom-retry", action="store_true", help="after an oom, retry at half the batch (each its own row)")
    p.add_argument("--worker-memory-limit", help="address space a worker may add after start-up, e.g. 2GiB")
    p.add_argument("--tf32", action="store_true", help="allow TF32 on CUDA (off by default)")
    p.add_argument("--cudnn-benchmark", action="store_true", help="set torch.backends.cudnn.benchmark")
    p.add_argument("--instructions", nargs="?", const="*", metavar="PATTERN",
                   help="also count instructions per iteration with Valgrind's callgrind, for the models matching "
                        "PATTERN (default: all); CPU and eager only, about 100 s a case")
    p.add_argument("--profile", action="store_true", help="after measuring each case, profile it (see 'cnnbench profile')")
    p.add_argument("--profile-dir", default="results/profiles", help="trace root for --profile (default: results/profiles)")
    p.add_argument("--quiet", action="store_true", help="no progress or per-case lines; one summary line")
    p.add_argument("--json", action="store_true", help="print the run's results as one JSON document")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("runs", help="runs in the results store")
    p.add_argument("--store", help="results store (default: results/cnnbench.db)")
    _format_option(p)
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("export", help="one run as a tidy table: one row per case, units in column names")
    p.add_argument("run_id", metavar="RUN_ID", help="a run id, or 'latest'")
    p.add_argument("--format", default="csv", help="csv, json or parquet (default: csv)")
    p.add_argument("-o", "--output", help="file to write (default: standard output; parquet needs a file)")
    p.add_argument("--store", help="results store (default: results/cnnbench.db)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("report", help="one self-contained HTML report from one or more runs")
    p.add_argument("run_ids", nargs="*", metavar="RUN_ID", help="runs to report; the first is the baseline of comparisons")
    p.add_argument("--latest", action="store_true", help="the newest run in the store")
    p.add_argument("-o", "--output", default="reports/index.html", help="where to write (default: reports/index.html)")
    p.add_argument("--profiles", default="results/profiles", help="where 'run --profile' put traces (default: results/profiles)")
    p.add_argument("--store", help="results store (default: results/cnnbench.db)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("compare", help="compare two runs (ids, 'latest' or run files); exit 1 on a regression")
    p.add_argument("baseline", metavar="BASELINE")
    p.add_argument("candidate", metavar="CANDIDATE")
    _add_threshold_flags(p, "Mann-Whitney test")
    p.add_argument("--noise-limit", default="0.25", help="IQR/median above which a side is inconclusive (default 0.25)")
    p.add_argument("--exact-tolerance", default="0", help="relative change of params/MACs/bytes allowed (default 0)")
    p.add_argument("--instructions-tolerance", default="0.01", help="relative change of instruction counts allowed (default 0.01)")
    p.add_argument("--strict-env", action="store_true", help="refuse to compare runs from different environments")
    p.add_argument("--confirm", nargs="?", const="doubtful", metavar="WHICH",
                   help="measure again the doubtful cases (slower, inconclusive, or a ratio above 1 + threshold/2), or "
                        "'all'; interleaved A/B where both sides' code can run (see --baseline-src), else the "
                        "candidate alone")
    _add_src_flags(p, "the baseline's", "the candidate's", " (default: this checkout, when that side ran its commit)")
    p.add_argument("--gate", default="all", help="what decides the exit status: all (default) or exact (exact metrics "
                                                 "only; wall time is reported, not gated)")
    p.add_argument("--format", default="table", help="table, markdown or json (default: table)")
    p.add_argument("--store", help="results store (default: results/cnnbench.db)")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("ab", help="interleaved A/B of two cases, one iteration at a time; exit 1 if B is slower")
    p.add_argument("baseline", metavar="MODEL_A")
    p.add_argument("candidate", metavar="MODEL_B", nargs="?", help="default: MODEL_A (then --vs says what differs)")
    _add_case_flags(p)
    p.add_argument("--vs", action="append", metavar="FLAG=VALUE",
                   help="B's case flag where it differs from A, e.g. --vs memory-format=channels_last (repeatable)")
    _add_src_flags(p, "A's", "B's", " (default: this one)")
    p.add_argument("--max-seconds", default="10", help="time cap on the interleaved blocks (default: 10)")
    p.add_argument("--warmup-seconds", default="2", help="warm-up cap per side (default: 2)")
    _add_threshold_flags(p, "sign test")
    p.add_argument("--format", default="table", help="table or json (default: table)")
    p.set_defaults(func=cmd_ab)

    p = sub.add_parser("baseline", help="baselines: compact, diffable run files meant to be committed")
    bsub = p.add_subparsers(dest="baseline_command", metavar="ACTION", parser_class=_Parser)
    bsub.required = True
    b = bsub.add_parser("save", help="write a run as results/baselines/NAME.json")
    b.add_argument("run_id", metavar="RUN_ID", help="a run id, or 'latest'")
    b.add_argument("--name", help="file name without .json (default: the run's suite)")
    b.add_argument("--dir", default="results/baselines", help="folder (default: results/baselines)")
    b.add_argument("--store", help="results store (default: results/cnnbench.db)")
    b.set_defaults(func=cmd_baseline)

    p = sub.add_parser("import-pytest-benchmark", help="bring a pytest-benchmark JSON file into the store as a run")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--store", help="results store (default: results/cnnbench.db)")
    p.set_defaults(func=cmd_import_pytest_benchmark)

    p = sub.add_parser("profile", help="torch.profiler traces of one case and its time per layer beside the static analysis")
    p.add_argument("model")
    _add_case_flags(p)
    p.add_argument("--steps", default="3", help="active profiler steps (default: 3)")
    p.add_argument("--out", default="results/profiles", help="trace root (default: results/profiles)")
    p.add_argument("--run", help="folder under --out for this profile (default: a timestamp)")
    _format_option(p)
    p.set_defaults(func=cmd_profile)

    p = sub.add_parser("env", help="versions, CPU, GPU and git commit")
    _format_option(p)
    p.set_defaults(func=cmd_env)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CnnbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # `cnnbench list | head`
        return 0
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


__all__ = ["main", "build_parser", "BadInput"]
