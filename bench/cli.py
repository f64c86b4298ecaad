"""The ``cnnbench`` command line: parses, calls, prints. Nothing below imports it.

Every option is checked by argparse (``type=`` from ``bench.values``) before any
command runs, so a bad value never costs minutes of measuring first. The case
axes' flags are derived from ``bench.cases.AXES``. Modules that load torch,
pandas or SQLAlchemy are imported by the command that needs them, so that
``list`` (from its cache), ``runs`` and ``compare`` of stored runs start fast.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Optional, Sequence

from . import escape, views
from .cases import AXES, CASE_AXES, Measure, case_change
from .compare import CONFIRM_MODES, GATES, Thresholds
from .errors import BadInput, BadValue, CnnbenchError, StoreUnavailable
from .flags import (Parser, backend_flags, case_flags, dest, formats, src_flags, store_flag, suite_flags,
                    threshold_flags)
from .record import tally
from .table import EXPORT_FORMATS, FORMATS
from .values import (batch_size, chosen_run_id, fraction, input_size, file_stem, non_negative_float, one_of, option,
                     positive_float, positive_int, positive_int_at_most, seconds, shard, store_location)


def _store_of(args: argparse.Namespace, create: bool = False, upgrade: bool = False):
    from .store import open_store

    return open_store(args.store, create=create, upgrade=create or upgrade)


def cmd_list(args: argparse.Namespace) -> int:
    from .catalog import list_rows

    views.show(views.model_list(list_rows(args.pattern), args.format))
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from .analysis import analyse, layer_rows

    a = analyse(args.model, batch_size=args.batch_size, input_shape=args.input_size, dtype=args.dtype)
    views.show(views.inspection(a, layer_rows(a), args.format))
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    from .environment import collect

    views.show(views.environment(collect(args.tf32, args.cudnn_benchmark, args.allocator), args.format))
    return 0


def _suite_of(args: argparse.Namespace) -> Any:
    """The suite that ``run``'s (and ``submit``'s) suite flags ask for (``bench.flags.suite_flags``)."""
    from .suites import suite_from_flags

    return suite_from_flags(args.suite, {axis.suite_key: getattr(args, dest(axis.run_flag)) for axis in AXES},
                            max_seconds=args.max_seconds, timeout_s=args.timeout, group=args.group)


def _options_of(args: argparse.Namespace, suite: Any) -> Any:
    """The runner's options that the suite flags ask for."""
    from .runner import RunOptions

    return RunOptions(
        isolation=args.isolation, oom_retry=args.oom_retry, tf32=args.tf32, cudnn_benchmark=args.cudnn_benchmark,
        allocator=args.allocator,
        instructions=args.instructions, profile_dir=args.profile_dir if args.profile else None,
        memory_limit_bytes=args.worker_memory_limit, group=suite.group,
    )


def cmd_run(args: argparse.Namespace) -> int:
    from .results import result_row
    from .runner import check_options, execute, keys_of_shard, start_run

    if args.resume:
        changed = [f"--{k.replace('_', '-')}" for defaults in [vars(build_parser().parse_args(["run"]))]
                   for k, v in vars(args).items()
                   if k not in ("resume", "store", "quiet", "json", "shard", "machine", "command_line")
                   and v != defaults[k]]
        if changed:
            raise BadValue(f"--resume measures a run as it was started; {', '.join(changed)} would change it")
        run = run_id = args.resume
        record = (store := _store_of(args, upgrade=True)).run(run_id)  # an unknown id fails here
        if args.shard:
            keys_of_shard(record, args.shard)  # a run not sharded so fails here
    else:
        suite = _suite_of(args)
        cases = suite.cases()
        if args.dry_run:
            if args.shard:  # the shard's own cases, as it would measure them
                from .shards import shard_cases

                cases = shard_cases(cases, _options_of(args, suite).group or suite.group, args.shard)
            views.show("\n".join(case.key for case in cases))
            part = f"shard {args.shard} of " if args.shard else ""
            print(f"{len(cases)} cases in {part}suite {suite.name!r}", file=sys.stderr)
            return 0
        if args.shard and not args.run_id:
            raise BadValue("--shard needs --run-id: the id that every shard of the run shares (e.g. nightly-1128)")
        options = _options_of(args, suite)
        check_options(cases, options)  # before any work
        store = _store_of(args, create=True)  # a store that cannot be used fails before calibration
        if args.run_id and not args.shard and store.has_run(args.run_id):
            raise BadValue(f"run {args.run_id!r} is already in {store.label!r}: 'cnnbench run --resume "
                           f"{args.run_id}' finishes it, or choose another --run-id")
        run_id = (run := start_run(suite, options, machine=args.machine, run_id=args.run_id, shard=args.shard,
                                   store=store)).id
        for warning in run.warnings:
            print(f"warning: {escape.terminal(warning)}", file=sys.stderr)
    part = f" shard {args.shard}" if args.shard else ""
    with views.Progress(f"run {run_id}{part} -> {store.label}", quiet=args.quiet or args.json) as progress:
        try:
            execute(store, run, shard=args.shard, machine=args.machine, on_start=progress.case,
                    on_result=lambda result: progress.row(result_row(result)))
        except StoreUnavailable as exc:
            resume = (f"'cnnbench run --resume {run_id}{' --shard ' + str(args.shard) if args.shard else ''}'"
                      + (" with the same --store" if args.store else ""))
            raise StoreUnavailable(_store_lost(exc, f"run {run_id!r}{part}", progress, stored=isinstance(run, str),
                                               resume=resume)) from None
    rows = progress.rows
    views.show(views.run_summary(run_id, store.label, tally(row["status"] for row in rows), rows, args.json))
    return 0


def _store_lost(exc: StoreUnavailable, what: str, progress: views.Progress, stored: bool, resume: str) -> str:
    """The line for a store lost mid-run (``what``: the run, or its shard): its error, the cases in flight (not
    stored), and how to finish. ``stored``: the run was in the store before this runner began (a resumed run)."""
    flying = progress.in_flight()
    lost = (f"; not stored: {len(flying)} case{'s' if len(flying) > 1 else ''} in flight ({', '.join(flying[:3])}"
            f"{', ...' if len(flying) > 3 else ''})" if flying else "")
    if not stored and not progress.rows:  # a new run is stored with its first results: nothing of it was
        return f"{exc}{lost}; nothing of {what} was stored: run the same command again once the store is back"
    return f"{exc}{lost}; every case committed before is kept: finish with {resume} once the store is back"


def cmd_runs(args: argparse.Namespace) -> int:
    views.show(views.run_list(_store_of(args).list_runs(), args.format))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .results import export
    from .runfile import run_id

    where = export(run_id(store := _store_of(args), args.run_id), args.format, args.output, store, track=args.track)
    if where != "-":
        print(f"wrote {where}", file=sys.stderr)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .report import write_report

    store = _store_of(args)
    run_ids = list(args.run_ids) + ([store.latest_run_id()] if args.latest else [])
    if not run_ids:
        raise BadValue("name the runs to report (see 'cnnbench runs') or pass --latest")
    views.show(str(write_report(store, run_ids, args.output, profiles_root=args.profiles,
                                cross_machine=args.cross_machine).resolve()))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .compare import comparable, compare_runs, document, exact_changes, require_coverage, worst_first
    from .runfile import load_side

    thresholds = Thresholds(threshold=args.threshold, alpha=args.alpha, noise_limit=args.noise_limit)
    base, cand = load_side(args.baseline, args.store), load_side(args.candidate, args.store)
    env_diff = comparable(base, cand, strict_env=args.strict_env, cross_machine=args.cross_machine)
    rows = compare_runs(base.results, cand.results, thresholds)
    if not args.allow_missing:
        require_coverage(rows)
    if args.confirm:
        from .confirm import confirm

        def on_case(key: str, index: int, total: int) -> None:
            if args.format == "table":
                views.show(f"re-measuring {index + 1}/{total}: {key}", sys.stderr)

        rows = confirm(rows, base, cand, thresholds, mode=args.confirm, base_src=args.baseline_src,
                       cand_src=args.candidate_src, on_case=on_case)
    rows = worst_first(rows)
    exact = exact_changes(base.results, cand.results, args.exact_tolerance,
                          tolerances={"instructions_per_iter": args.instructions_tolerance})
    doc = document(base, cand, rows, exact, env_diff, args.gate)
    views.show(views.comparison(doc, rows, exact, args.format))
    return 1 if doc["regressed"] else 0


def cmd_baseline(args: argparse.Namespace) -> int:
    from pathlib import Path

    from . import runfile

    store = _store_of(args)
    doc = runfile.dump(store, runfile.run_id(store, args.run_id))
    name = args.name or file_stem(doc["run"]["suite"].replace("+flags", ""), "baseline name (from the run's suite)")
    views.show(str(runfile.write(Path(args.dir) / f"{name}.json", doc)))
    return 0


def cmd_import_pytest_benchmark(args: argparse.Namespace) -> int:
    from .pytest_import import import_file

    views.show(import_file(lambda: _store_of(args, create=True), args.file))
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    from .merge import merge

    views.show("\n".join(merge(args.sources, _store_of(args, create=True))))
    return 0


def submit_flags(p: argparse.ArgumentParser) -> None:
    """``submit``'s own options: where the run goes and what each task asks of the scheduler (the suite flags,
    ``bench.flags.suite_flags``, are the run's and are passed on to every task)."""
    from .shards import MAX_SHARDS
    from .submit import DEFAULT_TIME_MIN, EXECUTORS

    p.add_argument("--shards", required=True, type=option(positive_int_at_most, "--shards", MAX_SHARDS),
                   help=f"how many shards (job array tasks) to split the suite into, at most {MAX_SHARDS}")
    p.add_argument("--run-id", type=chosen_run_id, metavar="ID",
                   help="the run's id (default: the time and 6 random hex digits)")
    p.add_argument("--store", required=True, type=store_location,
                   help="the store every task writes into: a PostgreSQL URL on a cluster, or an SQLite path that "
                        "every node sees")
    p.add_argument("--executor", default="auto", type=option(one_of, EXECUTORS, "--executor"),
                   help="slurm, local (processes of this machine) or auto (default: slurm where sbatch is on PATH)")
    p.add_argument("--slurm-partition", metavar="P", help="the Slurm partition (default: the cluster's default)")
    p.add_argument("--gpus-per-task", metavar="G", type=option(positive_int, "--gpus-per-task"),
                   help="GPUs for each task (default: none)")
    p.add_argument("--cpus-per-task", metavar="C", type=option(positive_int, "--cpus-per-task"),
                   help="CPUs for each task (default: the suite's largest --threads)")
    p.add_argument("--time", metavar="MINUTES", default=str(DEFAULT_TIME_MIN), type=option(positive_int, "--time"),
                   help=f"each task's time limit, minutes (default: {DEFAULT_TIME_MIN})")
    p.add_argument("--max-parallel", metavar="M", type=option(positive_int, "--max-parallel"),
                   help="at most M tasks running at once (Slurm; default: all)")
    p.add_argument("--setup", metavar="LINE", action="append",
                   help="a shell line each task runs before cnnbench, e.g. 'module load cuda/12.4' (repeatable)")
    p.add_argument("--log-dir", metavar="DIR",
                   help="the jobs' scripts and logs, on a filesystem every node sees (default: results/jobs/RUN_ID)")
    p.add_argument("--wait", action="store_true",
                   help="follow the jobs until they end, then print the run's summary; exit 1 if a task failed")


def _passed_on(command_line: Sequence[str]) -> list[str]:
    """The suite flags of a ``submit`` command line as they were typed: what is left of it once ``submit``'s own
    options are taken out (argparse parses both alike: '--flag=value', abbreviations)."""
    own = Parser(prog="cnnbench submit", add_help=False)
    submit_flags(own)
    _, rest = own.parse_known_args(list(command_line)[list(command_line).index("submit") + 1:])
    return rest


def cmd_submit(args: argparse.Namespace) -> int:
    """The suite as ``--shards`` shards of one run, one job array (``bench.submit``); everything a task needs is
    checked here first. With ``--wait``: the jobs followed to the run's summary."""
    from pathlib import Path

    from . import submit as dispatch
    from .cases import Case, group_cases
    from .runner import check_options, new_run_id
    from .shards import Shard
    from .values import writable_folder

    dispatch.need_submitit()
    kind = dispatch.executor_kind(args.executor)
    if kind == "slurm" and args.slurm_partition:
        dispatch.check_partition(args.slurm_partition)
    suite = _suite_of(args)
    cases = suite.cases()
    options = _options_of(args, suite)
    check_options(cases, options)
    groups = len(group_cases(cases, options.group or "none"))  # what the shards share out (bench.shards)
    if args.shards > groups:
        raise BadValue(f"--shards must be at most the suite's {groups} comparison groups (which are never split), "
                       f"got {args.shards}: shard {args.shards}/{args.shards} would measure nothing")
    shards = [str(Shard(k, args.shards)) for k in range(1, args.shards + 1)]
    store = _store_of(args, create=True)  # made here, once, not raced by the tasks
    run_id = args.run_id or new_run_id()
    if store.has_run(run_id):  # submitted again: the shards finish what it misses, if it is the same run
        stored = store.run(run_id)["settings"]
        planned = {Case.from_dict(case).key for case in stored.get("cases", [])}
        if stored.get("shards") != args.shards or planned != {case.key for case in cases}:
            raise BadValue(f"--run-id {run_id!r} is a run in {store.label!r} with other cases or shards: submitting "
                           "again finishes a run only with the same suite flags and --shards (or choose another "
                           "--run-id)")
    folder = writable_folder(args.log_dir or Path("results") / "jobs" / run_id, "job logs").resolve()
    where = dispatch.task_store(args.store)
    argvs = [dispatch.task_argv(_passed_on(args.command_line), shard, run_id, where) for shard in shards]
    for argv in argvs:  # what each task will run parses as this command did
        build_parser().parse_args(argv)
    resources = dispatch.Resources(time_min=args.time, cpus_per_task=args.cpus_per_task or max(c.threads for c in cases),
                                   gpus_per_task=args.gpus_per_task, partition=args.slurm_partition,
                                   max_parallel=args.max_parallel, setup=tuple(args.setup or ()))
    if kind == "local" and (args.max_parallel or args.slurm_partition):
        print("note: the local executor starts every task at once, on this machine; --max-parallel and "
              "--slurm-partition apply to Slurm only", file=sys.stderr)
    why = {"slurm": " (sbatch is on PATH)", "local": " (no sbatch on PATH)"}[kind] if args.executor == "auto" else ""
    print(f"submitting run {run_id}: {len(cases)} cases as {args.shards} shards to "
          f"{'Slurm' if kind == 'slurm' else 'local processes'}{why}; scripts and logs under {folder}",
          file=sys.stderr)
    tasks = dispatch.submit(kind, folder, resources, argvs, shards, name=f"cnnbench-{run_id}")
    views.show(views.submitted(run_id, [(task.shard, task.job_id) for task in tasks]))
    if not args.wait:
        return 0
    return _follow(kind, tasks, store, run_id, len(cases))


def _follow(kind: str, tasks: list, store: Any, run_id: str, total: int) -> int:
    """``submit --wait``: a line following the jobs and the run's cases until every task ended, then the run's
    summary and its shards; exit 1 when a task failed or a case is missing, naming the shard and its log."""
    from . import submit as dispatch
    from .results import result_row

    def on_poll(now: list) -> None:
        done = len(store.done_keys(run_id)) if store.has_run(run_id) else 0
        line.update(views.jobs_line(run_id, done, total, dispatch.counts(now)))

    try:
        with views.StatusLine() as line:
            final = dispatch.follow(kind, tasks, on_poll)
    except KeyboardInterrupt:
        print(f"stopped waiting for run {run_id}; its jobs go on ('cnnbench runs --store {store.label}' shows "
              f"how far it is); to cancel them: {dispatch.cancel_hint(kind, tasks)}", file=sys.stderr)
        return 130
    rows = [result_row(result) for result in store.results(run_id)] if store.has_run(run_id) else []
    views.show(views.run_summary(run_id, store.label, tally(row["status"] for row in rows), rows, False))
    views.show(views.shard_list(store.shards(run_id) if store.has_run(run_id) else []))
    failed = [(task, state) for task, state in zip(tasks, final) if state.category == "failed"]
    for task, state in failed:
        log, lines = dispatch.log_tail(task)
        views.show(f"error: shard {task.shard} (job {task.job_id}) failed ({state.word}); "
                   + (f"the last lines of its log {log}:\n" + "\n".join(f"    {x}" for x in lines) if lines
                      else f"it left no log at {log}")
                   + f"\nfinish it with: cnnbench run --resume {run_id} --shard {task.shard} --store {store.label}",
                   sys.stderr)
    missing = total - len(rows)
    if missing > 0 and not failed:
        views.show(f"error: {missing} of the run's {total} cases are missing though every task ended well; "
                   f"finish them with: cnnbench run --resume {run_id} --store {store.label}", sys.stderr)
    return 1 if failed or missing > 0 else 0


def _case_texts(args: argparse.Namespace) -> dict[str, Optional[str]]:
    """The one-value case flags as given, keyed by Case field."""
    return {axis.field: getattr(args, dest(axis.case_flag)) for axis in CASE_AXES}


def cmd_ab(args: argparse.Namespace) -> int:
    """Interleaved A/B of two cases: a model against another, or against itself with other flags (--vs)."""
    from .ab import Arm, interleave
    from .confirm import paired_verdict
    from .runner import RunOptions
    from .suites import single_case

    base = single_case(args.baseline, _case_texts(args), "ab")
    cand = single_case(args.candidate or args.baseline, {**_case_texts(args), **dict(args.vs or [])}, "ab")
    thresholds = Thresholds(threshold=args.threshold, alpha=args.alpha)
    if base == cand and not (args.baseline_src or args.candidate_src):
        print("note: both sides are the same case from the same code (an A/A check)", file=sys.stderr)
    if args.format == "table":
        views.show(f"A: {base.key}\nB: {cand.key}\ninterleaving, one iteration at a time ...", sys.stderr)
    flags = RunOptions(tf32=args.tf32, cudnn_benchmark=args.cudnn_benchmark, allocator=args.allocator).worker_flags()
    paired = interleave(Arm(base, args.baseline_src), Arm(cand, args.candidate_src),
                        Measure(max_seconds=args.max_seconds, warmup_seconds=args.warmup_seconds),
                        request_extra=flags)
    row = paired_verdict(f"{base.key} -> {cand.key}", paired, thresholds)
    views.show(views.ab_outcome(row, paired, base.key, cand.key, thresholds, args.format))
    return 1 if row.verdict == "slower" else 0


def cmd_profile(args: argparse.Namespace) -> int:
    import time

    from .profiling import profile_case
    from .suites import single_case

    case = single_case(args.model, _case_texts(args), "profile")
    result = profile_case(case, out=args.out, run=args.run or time.strftime("%Y%m%d-%H%M%S"), steps=args.steps)
    views.show(views.profile(result, args.out, args.format))
    return 0


# -- the parser -------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    from .precision import DTYPE_BYTES

    parser = Parser(prog="cnnbench", description="Benchmark and profile classic CNNs in PyTorch.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True

    def command(name: str, func: Any, text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=text)
        p.set_defaults(func=func)
        return p

    p = command("list", cmd_list, "registered models with params and GMACs")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style pattern, e.g. 'vgg*' or 'tv.res*' (default: all)")
    formats(p)

    p = command("inspect", cmd_inspect, "static analysis of one model: per-layer table and totals")
    p.add_argument("model")
    p.add_argument("--batch-size", default="1", type=batch_size, help="batch size (default: 1)")
    p.add_argument("--input-size", type=input_size, help="C,H,W without the batch (default: the model's own)")
    p.add_argument("--dtype", default="float32", type=option(one_of, tuple(DTYPE_BYTES), "dtype"),
                   help=f"{', '.join(DTYPE_BYTES)} (default: float32)")
    formats(p)

    p = command("run", cmd_run, "measure a suite of cases into the results store")
    suite_flags(p)
    p.add_argument("--dry-run", action="store_true", help="list the cases and stop")
    p.add_argument("--resume", metavar="RUN_ID", help="measure only what an interrupted run is missing")
    p.add_argument("--shard", type=shard, metavar="K/N",
                   help="measure the K-th of N parts of the suite (whole comparison groups), under --run-id")
    p.add_argument("--run-id", type=chosen_run_id, metavar="ID", help="the run's id (default: the time and 6 hex digits); "
                   "every shard of a run shares it")
    p.add_argument("--machine", type=option(file_stem, "--machine"), help="this machine's label (default: hostname)")
    store_flag(p)
    p.add_argument("--quiet", action="store_true", help="no progress or per-case lines; one summary line")
    p.add_argument("--json", action="store_true", help="print the run's results as one JSON document")

    store_flag(command("runs", cmd_runs, "runs in the results store"), *FORMATS)

    p = command("export", cmd_export, "one run as a tidy table: one row per case, units in column names")
    p.add_argument("run_id", metavar="RUN_ID", help="a run id, or 'latest'")
    formats(p, EXPORT_FORMATS, "csv")
    p.add_argument("--track", action="store_true", help="the run's machine-speed track instead of its cases")
    p.add_argument("-o", "--output", help="file to write (default: standard output; parquet needs a file)")
    store_flag(p)

    p = command("report", cmd_report, "one self-contained HTML report from one or more runs")
    p.add_argument("run_ids", nargs="*", metavar="RUN_ID",
                   help="runs to report, grouped by machine; each machine's first run is the baseline of its others")
    p.add_argument("--latest", action="store_true", help="the newest run in the store")
    p.add_argument("--cross-machine", action="store_true",
                   help="also compare the first run with each other machine's first (else runs of different machines "
                        "are not compared)")
    p.add_argument("-o", "--output", default="reports/index.html", help="where to write (default: reports/index.html)")
    p.add_argument("--profiles", default="results/profiles", help="where 'run --profile' put traces (default: results/profiles)")
    store_flag(p)

    p = command("compare", cmd_compare, "compare two runs (ids, 'latest' or run files); exit 1 on a regression")
    p.add_argument("baseline", metavar="BASELINE")
    p.add_argument("candidate", metavar="CANDIDATE")
    threshold_flags(p, "Mann-Whitney test")
    p.add_argument("--noise-limit", default="0.25", type=option(fraction, "--noise-limit", 1.0, "an IQR/median ratio"),
                   help="IQR/median above which a side is inconclusive, at most 1 (default 0.25)")
    p.add_argument("--exact-tolerance", default="0",
                   type=option(non_negative_float, "--exact-tolerance", "a relative change"),
                   help="relative change of params/MACs/bytes allowed (default 0)")
    p.add_argument("--instructions-tolerance", default="0.01", type=option(positive_float, "--instructions-tolerance"),
                   help="relative change of instruction counts allowed (default 0.01)")
    p.add_argument("--strict-env", action="store_true", help="refuse to compare runs from different environments")
    p.add_argument("--cross-machine", action="store_true", help="compare runs from different machines (else refused)")
    p.add_argument("--allow-missing", action="store_true",
                   help="gate on the cases in common even when the candidate lacks some of the baseline's (or all)")
    p.add_argument("--confirm", nargs="?", const="doubtful", metavar="WHICH",
                   type=option(one_of, CONFIRM_MODES, "--confirm"),
                   help="measure again the doubtful cases (slower, inconclusive, or a ratio above 1 + threshold/2), or "
                        "'all'; interleaved A/B where both sides' code can run (see --baseline-src), else the "
                        "candidate alone")
    src_flags(p, "the baseline's", "the candidate's", " (default: this checkout, when that side ran its commit)")
    p.add_argument("--gate", default="all", type=option(one_of, GATES, "--gate"),
                   help="what decides the exit status: all (default) or exact (exact metrics only; wall time is "
                        "reported, not gated)")
    store_flag(p, "table", "markdown", "json")

    p = command("ab", cmd_ab, "interleaved A/B of two cases, one iteration at a time; exit 1 if B is slower")
    p.add_argument("baseline", metavar="MODEL_A")
    p.add_argument("candidate", metavar="MODEL_B", nargs="?", help="default: MODEL_A (then --vs says what differs)")
    case_flags(p)
    p.add_argument("--vs", action="append", metavar="FLAG=VALUE", type=case_change,
                   help="B's case flag where it differs from A, e.g. --vs memory-format=channels_last (repeatable)")
    src_flags(p, "A's", "B's", " (default: this one)")
    p.add_argument("--max-seconds", default="10", type=option(seconds, "--max-seconds"),
                   help="time cap on the interleaved blocks (default: 10)")
    p.add_argument("--warmup-seconds", default="2", type=option(seconds, "--warmup-seconds"),
                   help="warm-up cap per side (default: 2)")
    backend_flags(p)
    threshold_flags(p, "sign test")
    formats(p, ("table", "json"))

    p = command("baseline", None, "baselines: compact, diffable run files meant to be committed")
    bsub = p.add_subparsers(dest="baseline_command", metavar="ACTION", parser_class=Parser)
    bsub.required = True
    b = bsub.add_parser("save", help="write a run as results/baselines/NAME.json")
    b.add_argument("run_id", metavar="RUN_ID", help="a run id, or 'latest'")
    b.add_argument("--name", type=option(file_stem, "baseline name"),
                   help="file name without .json (default: the run's suite)")
    b.add_argument("--dir", default="results/baselines", help="folder (default: results/baselines)")
    store_flag(b)
    b.set_defaults(func=cmd_baseline)

    p = command("import-pytest-benchmark", cmd_import_pytest_benchmark,
                "bring a pytest-benchmark JSON file into the store as a run")
    p.add_argument("file", metavar="FILE")
    store_flag(p)

    p = command("submit", cmd_submit, "a suite as N shards of one run, one Slurm job array (or local processes)")
    submit_flags(p)
    suite_flags(p)

    p = command("merge", cmd_merge, "copy runs from other stores or run files into one store (twice is once)")
    p.add_argument("sources", nargs="+", metavar="SOURCE", help="a cnnbench store (path or URL) or a run file (.json)")
    p.add_argument("--into", dest="store", required=True, metavar="STORE",
                   help="the store to copy into: an SQLite path or a SQLAlchemy URL (made when missing)")

    p = command("profile", cmd_profile,
                "torch.profiler traces of one case and its time per layer beside the static analysis")
    p.add_argument("model")
    case_flags(p)
    p.add_argument("--steps", default="3", type=option(positive_int, "--steps"), help="active profiler steps (default: 3)")
    p.add_argument("--out", default="results/profiles", help="trace root (default: results/profiles)")
    p.add_argument("--run", help="folder under --out for this profile (default: a timestamp)")
    formats(p)

    p = command("env", cmd_env, "versions, CPU, GPU, git commit and the backend flags a run's workers use")
    backend_flags(p)
    formats(p)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    command_line = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(command_line)
        args.command_line = command_line  # `submit` passes its suite flags on as they were typed
        return args.func(args)
    except CnnbenchError as exc:
        print(f"error: {escape.terminal(exc)}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # `cnnbench list | head`
        return 0
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


__all__ = ["main", "build_parser", "BadInput"]
