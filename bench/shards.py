"""Shards: one logical run split over several runners (machines, Slurm tasks) that write into one store.

``cnnbench run --shard K/N --run-id ID`` measures the K-th of N parts of the
suite's cases under the run ID that every shard shares, so ``runs``,
``export``, ``report`` and ``compare`` see one run. The partition is by
comparison group (``bench.cases.group_cases``), never splitting one: the
suite's groups, in the order the suite lists its cases, are dealt to the
shards in turn (group i to shard i mod N + 1). It depends only on the suite's
cases and grouping, which every shard computes alike: no hash seed, no Python
version, no machine enters it. Round-robin by group balances the number of
groups per shard, not their time: a suite whose costly groups fall in one
residue class loads that shard more.

Each shard has its own row in the store (``Store.shards``): its machine, its
environment and calibration, its job id (``job_id``), when it started and
finished. The run is finished when every case of it is stored, whichever
shard stored it last; a shard that died is finished by ``--resume ID --shard
K/N`` on any machine.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple, Optional, Sequence, TypeVar

from .cases import Case, group_cases

MAX_SHARDS = 10_000

T = TypeVar("T")


class Shard(NamedTuple):
    index: int  # 1-based
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def partition(groups: Sequence[Sequence[T]], shard: Shard) -> list[T]:
    """The members of the groups that fall to ``shard``: group i (0-based, in order) to shard i mod N + 1."""
    return [member for i, group in enumerate(groups) if i % shard.count == shard.index - 1 for member in group]


def shard_cases(cases: list[Case], grouping: Optional[str], shard: Shard) -> list[Case]:
    """The cases of ``shard`` among a run's ``cases``, measured in groups of ``grouping`` (None: "none")."""
    return partition(group_cases(cases, grouping or "none"), shard)


def shard_keys(settings: dict[str, Any], shard: Shard) -> set[str]:
    """The case keys of ``shard`` of a stored run (its ``settings``: cases and options)."""
    cases = [Case.from_dict(c) for c in settings["cases"]]
    return {case.key for case in shard_cases(cases, settings["options"].get("group"), shard)}


def job_id(environ: Optional[dict[str, str]] = None) -> Optional[str]:
    """The batch job this process runs in: ``CNNBENCH_JOB_ID`` (set by ``cnnbench submit``), else Slurm's array
    task (``ARRAYJOB_TASK``) or job id; None outside a batch system."""
    env = os.environ if environ is None else environ
    if env.get("CNNBENCH_JOB_ID"):
        return env["CNNBENCH_JOB_ID"]
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    return env.get("SLURM_JOB_ID") or None


__all__ = ["Shard", "partition", "shard_cases", "shard_keys", "job_id", "MAX_SHARDS"]
