"""Dispatch: the shards of one run as one job array, through submitit; each task is ``cnnbench run --shard K/N``.

``cnnbench submit --shards N [suite flags] --store URL`` checks what a task would meet (the flags, the suite,
the store, Slurm's partition) before anything is submitted, then submits one job array of N tasks through
submitit (``map_array``): task K runs ``cnnbench run`` with the suite flags as they were typed, plus ``--shard
K/N --run-id ID --store URL``, with ``CNNBENCH_JOB_ID`` set to its job id (submitit's ``JobEnvironment``),
which the shard's row in the store keeps (``bench.shards``).

Executors: ``slurm`` (one Slurm job array, at most ``--max-parallel`` tasks at a time) or ``local``
(submitit's LocalExecutor: each task a process of this machine, all started at once, with Ctrl-C ignored so
that stopping ``--wait`` leaves them running as it leaves Slurm's); ``auto`` is slurm where ``sbatch`` is on
PATH. Every task must reach the store: PostgreSQL on a cluster, or an SQLite file that every node sees (on
one node any path; it is made absolute, since a task may start elsewhere).

A task's state (``states``), for ``--wait``: the result file submitit writes when the task returns or raises
says done or failed; before that, the scheduler's word: ``squeue`` for a Slurm job it still lists (the
controller's own view; ``sacct``, which submitit asks, answers only where Slurm keeps accounting, and a small
cluster may not), else submitit's state (``sacct`` for Slurm, the process for a local job). A job that ended
without a result (cancelled, timed out, killed) failed; one that no source knows is ``unknown`` and followed on.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

from .errors import BadValue, CnnbenchError, Unavailable, first_line

EXECUTORS = ("auto", "slurm", "local")
DEFAULT_TIME_MIN = 60  # submitit would ask Slurm for 5 minutes, less than most suites take
EXTRA = "pip install 'cnnbench[slurm]'"
POLL_S = 2.0  # between looks at the jobs and the store while --wait follows them
LOG_LINES = 5  # of a failed task's stderr log, shown

# Slurm's job states (squeue %T, sacct State) by what --wait makes of them; any other ended without a result
PENDING = {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "RESIZING", "SUSPENDED", "STOPPED"}
RUNNING = {"RUNNING", "COMPLETING", "SIGNALING", "STAGE_OUT"}
CATEGORIES = ("pending", "running", "done", "failed", "unknown")


@dataclass(frozen=True)
class Resources:
    """What each task asks of the scheduler."""

    time_min: int = DEFAULT_TIME_MIN  # the task's time limit, minutes
    cpus_per_task: Optional[int] = None  # None: the scheduler's default
    gpus_per_task: Optional[int] = None
    partition: Optional[str] = None  # Slurm only
    max_parallel: Optional[int] = None  # tasks of the array at a time; Slurm only
    setup: tuple[str, ...] = ()  # shell lines each task runs before cnnbench ('module load cuda')


@dataclass(frozen=True)
class Task:
    """One submitted shard: its label ("K/N"), the command it runs and its submitit job."""

    shard: str
    argv: tuple[str, ...]
    job: Any

    @property
    def job_id(self) -> str:
        return str(self.job.job_id)


@dataclass(frozen=True)
class State:
    """A task's state: one of CATEGORIES, and the word it came from (the scheduler's, or the result's)."""

    category: str
    word: str


def need_submitit() -> Any:
    """The submitit module, or Unavailable naming the extra that brings it. Its log goes quiet: its INFO lines go
    to standard output, which is this command's, and the states it logs are reported here."""
    try:
        import submitit
    except ImportError:
        raise Unavailable(f"cnnbench submit needs submitit: {EXTRA}") from None
    logging.getLogger("submitit").setLevel(logging.ERROR)
    return submitit


def executor_kind(asked: str) -> str:
    """"slurm" or "local" for ``--executor`` ``asked``: auto is slurm where Slurm's ``sbatch`` is on PATH."""
    if asked == "local":
        return "local"
    if shutil.which("sbatch") and shutil.which("srun"):
        return "slurm"
    if asked == "slurm":
        raise Unavailable("--executor slurm needs Slurm's sbatch and srun on PATH, and they are not there")
    return "local"


def check_partition(partition: str) -> None:
    """Refuse a Slurm partition that this cluster does not have, naming the ones it has."""
    out = _slurm(["sinfo", "-h", "-o", "%R"])
    names = sorted(set(out.split()))
    if partition not in names:
        raise BadValue(f"--slurm-partition must be one of this cluster's partitions ({', '.join(names) or 'none'}), "
                       f"got {partition!r}")


def _slurm(command: list[str]) -> str:
    """A Slurm command's standard output; Unavailable (one line, Slurm's own) when it fails."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise Unavailable(f"{command[0]} did not answer: {first_line(exc)}") from None
    if done.returncode != 0:
        raise Unavailable(f"{command[0]} failed: {first_line(done.stderr or done.stdout or str(done.returncode))}")
    return done.stdout


def task_store(location: str) -> str:
    """The store as every task names it: an SQLite file as an absolute path, a server's URL as it is."""
    if "://" in location and not location.startswith("sqlite:///"):
        return location
    return str(Path(location.removeprefix("sqlite:///")).resolve())


def task_argv(run_flags: Sequence[str], shard: str, run_id: str, store: str) -> list[str]:
    """The ``cnnbench`` command line of one task: ``run``, the suite flags as typed, and its place in the run."""
    return ["run", *run_flags, "--shard", shard, "--run-id", run_id, "--store", store]


def run_task(argv: list[str]) -> None:
    """One task, in its job: ``cnnbench ARGV`` with the job's id in ``CNNBENCH_JOB_ID`` (the shard's row keeps
    it). SIGTERM (``scancel``, a local job killed) ends it at once, as it ends a plain ``cnnbench run``: submitit
    sets it aside, which would let the runner store the case in flight as crashed when its worker, signalled
    alike, dies first. A non-zero exit raises, so that submitit and the scheduler record a failure."""
    import submitit

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.environ["CNNBENCH_JOB_ID"] = submitit.JobEnvironment().job_id
    from .cli import main  # the task is the command a user would type; the command line is its entry point

    status = main(argv)
    if status != 0:  # its own error line is above, in this task's log; the command line holds the store's password
        raise RuntimeError(f"the task's 'cnnbench {argv[0]}' ended with exit status {status}")


@contextlib.contextmanager
def _interrupts_ignored(ignored: bool) -> Iterator[None]:
    """Ctrl-C ignored while local jobs start, so that they inherit it ignored: it then stops ``--wait``, not them."""
    if not ignored:
        yield
        return
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


def submit(kind: str, folder: Path, resources: Resources, argvs: Sequence[Sequence[str]], shards: Sequence[str],
           name: str) -> list[Task]:
    """Submit ``argvs`` (task i runs ``cnnbench argvs[i]``, shard ``shards[i]``) as one job array of executor
    ``kind`` ("slurm" or "local"), with its scripts, pickles and logs under ``folder``."""
    submitit = need_submitit()
    executor = submitit.AutoExecutor(folder=folder, cluster=kind)
    params: dict[str, Any] = {"name": name, "timeout_min": resources.time_min,
                              "cpus_per_task": resources.cpus_per_task}
    if kind == "slurm":
        params.update(slurm_partition=resources.partition, slurm_gpus_per_task=resources.gpus_per_task,
                      slurm_array_parallelism=resources.max_parallel)
    else:
        params["gpus_per_node"] = resources.gpus_per_task
    if resources.setup:
        params[f"{kind}_setup"] = list(resources.setup)
    executor.update_parameters(**{key: value for key, value in params.items() if value is not None})
    said = io.StringIO()  # sbatch's complaint, which submitit prints before it raises: said once, below
    try:
        with _interrupts_ignored(kind == "local"), contextlib.redirect_stderr(said):
            jobs = executor.map_array(run_task, [list(argv) for argv in argvs])
    except (OSError, submitit.core.utils.FailedJobError, submitit.core.utils.FailedSubmissionError) as exc:
        raise CnnbenchError(f"{'sbatch' if kind == 'slurm' else 'the local executor'} did not take the job array: "
                            f"{first_line(exc) if str(exc).strip() else first_line(said.getvalue())}") from None
    return [Task(shard, tuple(argv), job) for shard, argv, job in zip(shards, argvs, jobs)]


def _outcome(job: Any) -> Optional[str]:
    """The outcome in the job's result file ("success" or "error"), None before there is one."""
    path = job.paths.result_pickle
    if not path.exists():
        return None
    from submitit.core.utils import pickle_load

    try:
        return str(pickle_load(path)[0])
    except Exception:  # being written (submitit moves it into place, but a shared filesystem may show it early)
        return None


def _squeue(job_ids: Sequence[str]) -> Optional[dict[str, str]]:
    """Slurm's state of each job (array tasks one by one) that the controller still lists; None when squeue fails."""
    bases = sorted({job_id.split("_")[0] for job_id in job_ids})
    try:
        done = subprocess.run(["squeue", "-h", "-r", "-t", "all", "-j", ",".join(bases), "-o", "%i|%T"],
                              capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return dict(line.split("|", 1) for line in done.stdout.splitlines() if "|" in line)


def slurm_category(word: str) -> str:
    """What a Slurm state word means for a task without a result file yet."""
    word = word.split()[0].upper() if word.strip() else "UNKNOWN"
    if word in PENDING:
        return "pending"
    if word in RUNNING:
        return "running"
    if word == "COMPLETED":  # the task returned (a failure raises, which Slurm records as FAILED)
        return "done"
    return "unknown" if word == "UNKNOWN" else "failed"


def states(kind: str, tasks: Sequence[Task]) -> list[State]:
    """Each task's state now (the module's docstring says from where)."""
    live = _squeue([task.job_id for task in tasks]) if kind == "slurm" else {}
    out = []
    for task in tasks:
        outcome = _outcome(task.job)
        if outcome is not None:
            out.append(State("done" if outcome == "success" else "failed", "COMPLETED" if outcome == "success"
                             else "the task raised"))
        elif kind == "slurm":
            word = (live or {}).get(task.job_id) or str(task.job.state)
            out.append(State(slurm_category(word), word))
        else:
            word = str(task.job.state)  # a local job: RUNNING, FINISHED or INTERRUPTED
            out.append(State("running", word) if word == "RUNNING" else State("failed", f"{word} without a result"))
    return out


def counts(now: Sequence[State]) -> dict[str, int]:
    """How many tasks are in each category, in CATEGORIES' order."""
    return {category: sum(state.category == category for state in now) for category in CATEGORIES}


def follow(kind: str, tasks: Sequence[Task], on_poll: Callable[[list[State]], None],
           poll_s: float = POLL_S) -> list[State]:
    """Look at the tasks every ``poll_s`` seconds, calling ``on_poll`` with their states, until each is done or
    failed; their last states."""
    while True:
        now = states(kind, tasks)
        on_poll(now)
        if all(state.category in ("done", "failed") for state in now):
            return now
        time.sleep(poll_s)


def log_tail(task: Task, lines: int = LOG_LINES) -> tuple[Path, list[str]]:
    """A task's stderr log and its last ``lines`` lines (none when it has no log yet), up to submitit's traceback
    of a task that raised, which only repeats the exit status: cnnbench's own error line stands before it."""
    path = Path(task.job.paths.stderr)
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return path, []
    kept = [line for line in text.splitlines() if line.strip()]
    raised = [i for i, line in enumerate(kept) if "Submitted job triggered an exception" in line]
    return path, kept[:raised[-1] if raised else len(kept)][-lines:]


def cancel_hint(kind: str, tasks: Sequence[Task]) -> str:
    """How to cancel the tasks: scancel of the array for Slurm, kill of each process for local jobs."""
    if kind == "slurm":
        return "scancel " + " ".join(sorted({task.job_id.split("_")[0] for task in tasks}))
    return "kill " + " ".join(task.job_id for task in tasks)


__all__ = ["EXECUTORS", "Resources", "Task", "State", "need_submitit", "executor_kind", "check_partition",
           "task_store", "task_argv", "run_task", "submit", "states", "counts", "follow", "log_tail", "cancel_hint"]
