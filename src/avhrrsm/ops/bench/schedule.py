"""The global 40-year run scheduled on N nodes, from the DAG as Snakemake plans it and each
job's projected cost (:mod:`avhrrsm.requests`, the per-unit costs the benchmarks measured).

The DAG comes from ``snakemake --dag`` on the global config (jobs, wildcards, dependencies);
job groups are formed as the SLURM profile says (``groups`` and ``group-components``: a
group job holds that many independent jobs of the group and runs them one after another on
its allocation's GPU, or side by side on its cores). The schedule is a list schedule: a job is
ready when the jobs it needs are done; ready jobs start, longest remaining path first, on the
first node with the cores (and GPU) they ask for. Local rules (``all``, the manifest) run on
the head node and are reported apart: the run is stacks -> product -> validation.
"""

from __future__ import annotations

import heapq
import math
import re
import subprocess
import sys
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avhrrsm.config import load_yaml, validate_config
from avhrrsm.ops.bench.dag import local_rules
from avhrrsm.ops.bench.fixtures import write_global_standins
from avhrrsm.ops.checkout import Checkout
from avhrrsm.requests import GROUP_JOB_CORES, job_request

NODE_CORES = 32
NODE_GPUS = 1
NODE_COUNTS = (1, 4, 16, 64)


@dataclass
class Task:
    """A submission: one job, or a group job of several."""

    name: str
    rules: list[str]
    minutes: float  # projected wall minutes on its threads
    threads: int
    gpu: bool
    runtime_requested: int  # minutes asked of the scheduler
    needs: set[int] = field(default_factory=set)
    members: int = 1


# rules with a {year} wildcard: the dot labels show it only where no input job has it already
YEAR_RULES = {
    "stack_year",
    "samples_year",
    "inference_tile",
    "inference_tile_cpu",
    "product_year",
    "validation_year",
}


def parse_dot(text: str) -> tuple[dict[int, tuple[str, dict[str, str]]], list[tuple[int, int]]]:
    """Jobs (id -> rule, wildcards) and dependencies (from, to) of ``snakemake --dag``. A
    label names only the wildcards its input jobs do not have: a year rule's missing year is
    the latest year among the jobs it reads (a tile reads its year's and the previous stack)."""
    jobs = {}
    for job_id, label in re.findall(r'^\s*(\d+)\[label = "([^"]*)"', text, re.MULTILINE):
        lines = label.split("\\n")
        wildcards = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
        jobs[int(job_id)] = (lines[0], wildcards)
    edges = [(int(a), int(b)) for a, b in re.findall(r"^\s*(\d+) -> (\d+)", text, re.MULTILINE)]
    inputs: dict[int, list[int]] = defaultdict(list)
    for a, b in edges:
        inputs[b].append(a)

    def year_of(job_id: int) -> str | None:
        rule, wildcards = jobs[job_id]
        if "year" not in wildcards and rule in YEAR_RULES:
            years = [year_of(a) for a in inputs[job_id]]
            known = [int(y) for y in years if y is not None]
            if known:
                wildcards["year"] = str(max(known))
        return wildcards.get("year")

    for job_id in sorted(jobs):
        year_of(job_id)
    return jobs, edges


def global_dag(workdir: Path, checkout: Checkout) -> str:
    write_global_standins(workdir)
    done = subprocess.run(
        [
            sys.executable, "-m", "snakemake", "--snakefile", str(checkout.snakefile),
            "--dag", "--configfile", str(checkout.config("global")),
        ],
        cwd=workdir, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"snakemake --dag failed: {done.stderr[-2000:]}")
    return done.stdout


def tasks_of(
    jobs: Mapping[int, tuple[str, dict[str, str]]],
    edges: Sequence[tuple[int, int]],
    config: Mapping[str, Any],
    groups: Mapping[str, str],
    group_components: Mapping[str, int],
    local: set[str],
    job_cores: int = GROUP_JOB_CORES,
) -> tuple[list[Task], list[Task]]:
    """The submissions of the DAG (jobs grouped as the profile says) and the head-node jobs.
    ``job_cores``: the most cores a (group) job asks for, the installed SLURM profile's
    `cores`; a group job runs its CPU members side by side on them."""
    requests = {}
    for job_id, (rule, wildcards) in jobs.items():
        if rule in local:
            continue
        year = int(wildcards["year"]) if "year" in wildcards else None
        threads = min(job_cores, job_request(rule, config, year, wildcards.get("tile")).threads)
        requests[job_id] = job_request(rule, config, year, wildcards.get("tile"), threads)
    gpu_rules = {"inference_tile", "train_deep", "train_deep_replicate"}
    has_gpu = int(config["hpc"]["gpus_per_job"]) > 0
    # group members in the DAG's job order, chunked as --group-components does
    members: dict[str, list[int]] = defaultdict(list)
    task_of: dict[int, int] = {}
    tasks: list[Task] = []
    for job_id in sorted(requests):
        rule = jobs[job_id][0]
        if rule in groups:
            members[groups[rule]].append(job_id)
            continue
        request = requests[job_id]
        task_of[job_id] = len(tasks)
        tasks.append(
            Task(
                f"{rule} {' '.join(jobs[job_id][1].values())}".strip(),
                [rule],
                request.projected_minutes,
                request.threads,
                has_gpu and rule in gpu_rules,
                request.runtime,
            )
        )
    for group, ids in members.items():
        size = max(1, int(group_components.get(group, 1)))
        for start in range(0, len(ids), size):
            chunk = ids[start : start + size]
            rule = jobs[chunk[0]][0]
            gpu = has_gpu and rule in gpu_rules
            threads = max(requests[j].threads for j in chunk)
            if gpu:  # one after another on the allocation's GPU
                minutes = sum(requests[j].projected_minutes for j in chunk)
                runtime = sum(requests[j].runtime for j in chunk)
            else:  # side by side on the allocation's cores
                side = max(1, job_cores // threads)
                layers = math.ceil(len(chunk) / side)
                minutes = layers * max(requests[j].projected_minutes for j in chunk)
                runtime = layers * max(requests[j].runtime for j in chunk)
                threads = min(job_cores, threads * min(side, len(chunk)))
            for j in chunk:
                task_of[j] = len(tasks)
            tasks.append(
                Task(f"group {group} #{start // size}", [rule], minutes, threads, gpu, runtime,
                     members=len(chunk))
            )  # fmt: skip
    for a, b in edges:
        if a in task_of and b in task_of and task_of[a] != task_of[b]:
            tasks[task_of[b]].needs.add(task_of[a])
    head = [
        Task(rule, [rule], 0.0, 1, False, 0)
        for job_id, (rule, _) in sorted(jobs.items())
        if rule in local
    ]
    return tasks, head


def critical_path(tasks: Sequence[Task]) -> tuple[float, list[int], list[float]]:
    """Length (minutes) of the longest chain, its tasks, and every task's longest path to the
    end (its priority)."""
    users: dict[int, list[int]] = defaultdict(list)
    for k, task in enumerate(tasks):
        for need in task.needs:
            users[need].append(k)
    order = _topological(tasks)
    rank = [0.0] * len(tasks)
    following: list[int | None] = [None] * len(tasks)
    for k in reversed(order):
        best = max(users[k], key=lambda u: rank[u], default=None)
        rank[k] = tasks[k].minutes + (rank[best] if best is not None else 0.0)
        following[k] = best
    start = max(range(len(tasks)), key=lambda k: rank[k]) if tasks else None
    chain = []
    while start is not None:
        chain.append(start)
        start = following[start]
    return (rank[chain[0]] if chain else 0.0), chain, rank


def _topological(tasks: Sequence[Task]) -> list[int]:
    indegree = [len(t.needs) for t in tasks]
    users: dict[int, list[int]] = defaultdict(list)
    for k, task in enumerate(tasks):
        for need in task.needs:
            users[need].append(k)
    ready = [k for k, d in enumerate(indegree) if d == 0]
    order = []
    while ready:
        k = ready.pop()
        order.append(k)
        for u in users[k]:
            indegree[u] -= 1
            if indegree[u] == 0:
                ready.append(u)
    if len(order) != len(tasks):
        raise ValueError("the DAG has a cycle")
    return order


def list_schedule(
    tasks: Sequence[Task], nodes: int, cores: int = NODE_CORES, gpus: int = NODE_GPUS
) -> dict[str, Any]:
    """Simulate the run on ``nodes`` nodes: wall hours, core and GPU utilisation."""
    _, _, rank = critical_path(tasks)
    waiting = [len(t.needs) for t in tasks]
    users: dict[int, list[int]] = defaultdict(list)
    for k, task in enumerate(tasks):
        for need in task.needs:
            users[need].append(k)
    free_cores = [cores] * nodes
    free_gpus = [gpus] * nodes
    ready = [(-rank[k], k) for k, w in enumerate(waiting) if w == 0]
    heapq.heapify(ready)
    running: list[tuple[float, int, int]] = []  # (end, task, node)
    now = 0.0
    core_minutes = gpu_minutes = 0.0
    done = 0
    while done < len(tasks):
        deferred = []
        while ready:
            priority, k = heapq.heappop(ready)
            task = tasks[k]
            need_cores = min(cores, task.threads)
            node = next(
                (
                    n
                    for n in range(nodes)
                    if free_cores[n] >= need_cores and (not task.gpu or free_gpus[n] > 0)
                ),
                None,
            )
            if node is None:
                deferred.append((priority, k))
                continue
            free_cores[node] -= need_cores
            free_gpus[node] -= int(task.gpu)
            core_minutes += need_cores * task.minutes
            gpu_minutes += task.minutes if task.gpu else 0.0
            heapq.heappush(running, (now + task.minutes, k, node))
        for item in deferred:
            heapq.heappush(ready, item)
        if not running:
            raise RuntimeError("nothing runs and nothing is ready: a task fits no node")
        now, k, node = heapq.heappop(running)
        free_cores[node] += min(cores, tasks[k].threads)
        free_gpus[node] += int(tasks[k].gpu)
        done += 1
        for u in users[k]:
            waiting[u] -= 1
            if waiting[u] == 0:
                heapq.heappush(ready, (-rank[u], u))
    wall = now
    return {
        "nodes": nodes,
        "wall_hours": wall / 60.0,
        "core_utilisation": core_minutes / (nodes * cores * wall) if wall else 0.0,
        "gpu_utilisation": gpu_minutes / (nodes * gpus * wall) if wall and gpus else 0.0,
    }


def bench_schedule(work: Path, checkout: Checkout) -> dict[str, Any]:
    """The schedule of the global run on 1, 4, 16 and 64 nodes of 32 cores and one GPU."""
    workdir = work / "schedule"
    workdir.mkdir(parents=True, exist_ok=True)
    jobs, edges = parse_dot(global_dag(workdir, checkout))
    config = validate_config(load_yaml(checkout.config("global")), source="global config")
    profile = load_yaml(checkout.profile("slurm"))
    groups = dict(entry.split("=", 1) for entry in profile.get("groups", []))
    components = {
        name: int(n) for name, n in (e.split("=", 1) for e in profile.get("group-components", []))
    }
    tasks, head = tasks_of(jobs, edges, config, groups, components, local_rules(checkout.rules_dir))
    return schedule_summary(tasks, head)


def schedule_summary(tasks: Sequence[Task], head: Sequence[Task]) -> dict[str, Any]:
    length, chain, _ = critical_path(tasks)
    longest = max(tasks, key=lambda t: t.minutes)
    tight = min(tasks, key=lambda t: t.runtime_requested / max(t.minutes, 1e-9))
    work = work_per_rule(tasks)
    core_hours = sum(w["core_hours"] for w in work.values())
    gpu_hours = sum(w["gpu_hours"] for w in work.values())
    return {
        "node": {"cores": NODE_CORES, "gpus": NODE_GPUS},
        "submissions": len(tasks),
        "jobs": sum(t.members for t in tasks),
        "head_node_rules": sorted({t.rules[0] for t in head}),
        "critical_path_hours": length / 60.0,
        "critical_path": [tasks[k].name for k in chain],
        "longest_job": {
            "name": longest.name,
            "minutes": longest.minutes,
            "threads": longest.threads,
            "runtime_requested": longest.runtime_requested,
        },
        "smallest_margin": {
            "name": tight.name,
            "ratio": tight.runtime_requested / max(tight.minutes, 1e-9),
        },
        "core_hours": core_hours,
        "gpu_hours": gpu_hours,
        "work_per_rule": work,
        "on_nodes": [
            {
                **list_schedule(tasks, n),
                "lower_bound_hours": lower_bound_hours(core_hours, gpu_hours, length / 60.0, n),
            }
            for n in NODE_COUNTS
        ],
    }


def work_per_rule(tasks: Sequence[Task]) -> dict[str, dict[str, float]]:
    """Each rule's submissions and work in the schedule: core-hours (the cores a submission
    holds x its projected hours) and GPU-hours."""
    work: dict[str, dict[str, float]] = defaultdict(
        lambda: {"submissions": 0, "core_hours": 0.0, "gpu_hours": 0.0}
    )
    for task in tasks:
        entry = work[task.rules[0]]
        entry["submissions"] += 1
        entry["core_hours"] += min(NODE_CORES, task.threads) * task.minutes / 60.0
        entry["gpu_hours"] += task.minutes / 60.0 if task.gpu else 0.0
    return dict(work)


def lower_bound_hours(
    core_hours: float,
    gpu_hours: float,
    critical_path_hours: float,
    nodes: int,
    cores: int = NODE_CORES,
    gpus: int = NODE_GPUS,
) -> float:
    """No schedule of the run on ``nodes`` nodes is shorter than the cores' work spread
    perfectly over all cores, the GPUs' over all GPUs, or the critical path."""
    return max(
        core_hours / (nodes * cores),
        gpu_hours / (nodes * gpus) if gpus else 0.0,
        critical_path_hours,
    )


def schedule_markdown(schedule: Mapping[str, Any] | None) -> list[str]:
    """The schedule's lines of the README cost block and RESULTS.md."""
    if not schedule or "skipped" in schedule:
        return []
    node, longest = schedule["node"], schedule["longest_job"]
    rows = [
        f"| {r['nodes']} | {r['wall_hours']:,.1f} | {_bound(r)} | "
        f"{100 * r['core_utilisation']:.0f}% | {100 * r['gpu_utilisation']:.0f}% |"
        for r in schedule["on_nodes"]
    ]
    work = [
        f"| {rule} | {w['submissions']:,} | {w['core_hours']:,.1f} | "
        + (f"{w['gpu_hours']:,.1f}" if w["gpu_hours"] else "")
        + " |"
        for rule, w in sorted(
            schedule.get("work_per_rule", {}).items(),
            key=lambda item: (-item[1]["core_hours"], item[0]),
        )
    ]
    return [
        "",
        f"The schedule (`avhrrsm bench --section schedule`): the global DAG as Snakemake plans "
        f"it ({schedule['jobs']:,} jobs in {schedule['submissions']:,} SLURM submissions after "
        f"job grouping), each job at its projected cost on the threads it asks for, list-"
        f"scheduled on nodes of {node['cores']} cores and {node['gpus']} GPU (head-node rules "
        f"{', '.join(schedule['head_node_rules'])} apart):",
        "",
        "| nodes | wall (h) | lower bound (h) | cores busy | GPU busy |",
        "|---:|---:|---:|---:|---:|",
        *rows,
        "",
        "Lower bound: the projected work of the cores spread perfectly over all cores, that of "
        "the GPUs over all GPUs, or the critical path, whichever is longest. The work by rule "
        "(core-hours: the cores a submission holds x its projected hours):",
        "",
        "| rule | submissions | core-hours | GPU-hours |",
        "|---|---:|---:|---:|",
        *work,
        "",
        f"Critical path {schedule['critical_path_hours']:,.1f} h: "
        + " -> ".join(schedule["critical_path"])
        + f". Longest job: {longest['name']}, {longest['minutes']:,.0f} min on "
        f"{longest['threads']} thread(s) (asks {longest['runtime_requested']:,} min). Smallest "
        f"margin of a request over its projection: {schedule['smallest_margin']['ratio']:.2f} "
        f"({schedule['smallest_margin']['name']}).",
    ]


def _bound(row: Mapping[str, Any]) -> str:
    bound = row.get("lower_bound_hours")
    return "" if bound is None else f"{bound:,.1f}"
