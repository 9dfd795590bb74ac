"""The resident memory of a job's whole process tree, sampled while it runs: the peak of
the tree, and of each kind of process (driver, worker, trainer, engine), each with the step the
job was in when it happened.

The tree is measured twice. RSS summed over processes is the figure the targets use; it
counts the pages of a shared library (libtorch, vLLM's kernels) once in every process
that maps it. PSS splits each shared page among the processes that map it, so its sum is
what the tree takes from the machine.

Kinds: the job's own process is the driver; its spawned children are Dask workers
(Dask's and multiprocessing's helper processes, which hold no data, are "helper");
a training job's own process is a trainer; anything else a worker starts (a vLLM engine
core, a compile worker) is an engine. The step
is the output folder the job began last (stages make their folder when they start, so
the newest one under OUT, three levels deep, caches and temporaries left out, names the
stage), then what the job's log last said (a progress bar's label, such as "judge
smollm2-judge" or "train sft", names the step inside a flywheel stage).
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bench.job_process import doing

GIB = 2**30


def _kind(process: psutil.Process, root: int) -> str:
    if process.pid == root:
        return "driver"
    try:
        parent = process.ppid()
        command = " ".join(process.cmdline())
    except psutil.Error:
        return "helper"
    if parent != root:
        return "trainer" if "pipeline.flywheel.train_process" in command else "engine"
    return "helper" if "resource_tracker" in command or "forkserver" in command else "worker"


@dataclass
class Peak:
    gib: float = 0.0
    step: str = ""
    pid: int = 0


@dataclass
class MemoryTrace:
    """Peaks of one run: `tree` (all processes summed), and per kind the largest single
    process (`process`) and the kind's sum (`total`)."""

    tree: Peak = field(default_factory=Peak)
    tree_pss: Peak = field(default_factory=Peak)
    process: dict[str, Peak] = field(default_factory=dict)
    total: dict[str, Peak] = field(default_factory=dict)
    samples: int = 0

    def add(self, sizes: list[tuple[str, int, int, int]], step: str) -> None:
        self.samples += 1
        tree = sum(rss for _, _, rss, _ in sizes) / GIB
        if tree > self.tree.gib:
            self.tree = Peak(tree, step)
        tree_pss = sum(pss for _, _, _, pss in sizes) / GIB
        if tree_pss > self.tree_pss.gib:
            self.tree_pss = Peak(tree_pss, step)
        sums: dict[str, float] = {}
        for kind, pid, rss, _ in sizes:
            sums[kind] = sums.get(kind, 0.0) + rss / GIB
            if rss / GIB > self.process.get(kind, Peak()).gib:
                self.process[kind] = Peak(rss / GIB, step, pid)
        for kind, gib in sums.items():
            if gib > self.total.get(kind, Peak()).gib:
                self.total[kind] = Peak(gib, step)

    def table(self) -> str:
        lines = [
            "| what | peak GiB | during |",
            "|---|---:|---|",
            f"| whole tree (RSS summed) | {self.tree.gib:.2f} | {self.tree.step} |",
            f"| whole tree (PSS summed) | {self.tree_pss.gib:.2f} | {self.tree_pss.step} |",
        ]
        for kind in ("driver", "worker", "trainer", "engine", "helper"):
            if kind in self.process:
                one = self.process[kind]
                lines.append(f"| one {kind} process (pid {one.pid}) | {one.gib:.2f} | {one.step} |")
                if kind != "driver":
                    every = self.total[kind]
                    lines.append(f"| all {kind} processes | {every.gib:.2f} | {every.step} |")
        return "\n".join(lines)


def tree_sizes(root: int) -> list[tuple[str, int, int, int]]:
    """(kind, pid, RSS bytes, PSS bytes) of `root` and every process below it."""
    try:
        top = psutil.Process(root)
        processes = [top, *top.children(recursive=True)]
    except psutil.Error:
        return []
    sizes = []
    for p in processes:
        try:
            memory = p.memory_full_info()
            sizes.append((_kind(p, root), p.pid, memory.rss, memory.pss))
        except psutil.Error:  # ended between listing and reading
            pass
    return sizes


class StepWatch:
    """The output folder a job began last, and what its log last said (see the module
    docstring)."""

    def __init__(self, out: Path, log: Path, depth: int = 3):
        self.out, self.log, self.depth = out, log, depth
        self.seen: set[Path] = set()
        self.current = "starting"

    def step(self) -> str:
        if self.out.is_dir():
            for path in self._folders(self.out, 1):
                if path not in self.seen:
                    self.seen.add(path)
                    self.current = str(path.relative_to(self.out))
        said = doing(self.log).split(":")[0] if self.log.exists() else ""
        return f"{self.current}: {said}" if said else self.current

    def _folders(self, folder: Path, level: int):
        try:
            children = sorted(p for p in folder.iterdir() if p.is_dir())
        except OSError:
            return
        for child in children:
            if child.name.startswith(("_", ".", "part-", "tmp")):
                continue
            yield child
            if level < self.depth:
                yield from self._folders(child, level + 1)


def watch(
    process: subprocess.Popen, out: Path, log: Path, interval: float = 1.0
) -> tuple[int, MemoryTrace]:
    """Sample `process`'s tree every `interval` seconds until it ends: (exit code, trace).
    `out` is the job's output folder, `log` where its output goes."""
    trace, steps = MemoryTrace(), StepWatch(out, log)
    while process.poll() is None:
        trace.add(tree_sizes(process.pid), steps.step())
        time.sleep(interval)
    return process.returncode, trace
