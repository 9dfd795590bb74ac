"""The one way work reaches the cluster: a resource check, placement, tasks with progress.

Stages (core.runner), battle answers and verdicts, training jobs and the ratings
counts all submit through `run_tasks`, so every path fails the same way when no
worker can run a task (a one-line error naming the resource, not a hang), shows
the same progress bar, retries a task the same way, and is placed the same way:
tasks holding a resource (GPU=1) run only on workers declaring it, and tasks
holding none stay off those workers while a worker without a GPU exists, so CPU
work never occupies a GPU a generation or training task waits for.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable

from core.errors import UserError

# How often a waiting run checks that the workers its CPU tasks are pinned to still
# exist (a restarted worker comes back under a new address).
PLACEMENT_CHECK_S = 10.0
# A bar with no finished task for this long is redrawn: its clock shows the job waiting
# on its named step (a slow endpoint, a long judge chunk), not hung.
IDLE_REDRAW_S = 60.0
# Work that ends sooner draws no bar: a finished bar stays a line of the job's output, and
# a short step's says nothing that the step's own line does not.
BAR_DELAY_S = 2.0
# Dask config a job sets on a cluster it started itself (jobs.cluster): there the model
# slot (GPU=1) sits on cores the CPU tasks share and the job runs one stage at a time, so
# no GPU task waits behind CPU work and CPU tasks run on every worker.
CPU_TASKS_ANYWHERE = "arena.cpu-tasks-anywhere"


def holds(worker: dict, resources: dict) -> bool:
    """The one resource rule: a task runs on a worker holding all of its resources at once,
    so a job waits for (and a stage checks) one such worker, not each resource somewhere."""
    return all(worker.get("resources", {}).get(k, 0) >= v for k, v in resources.items())


def require_resources(client, resources: dict | None, what: str) -> None:
    """Fail with a clear message instead of waiting forever for a worker that will never come."""
    if not resources:
        return
    workers = client.scheduler_info(n_workers=-1)["workers"].values()
    if not any(holds(w, resources) for w in workers):
        wanted = ",".join(f"{k}={v:g}" for k, v in resources.items())
        raise UserError(
            f"{what}: no worker holds {wanted}; start workers with `dask worker ... --resources "
            f"{wanted}` (embedded cluster: --worker-resources {wanted})"
        )


def cpu_workers(client) -> list[str] | None:
    """Workers declaring no resource, when the cluster also has workers that do (GPU
    workers); None when every worker is alike or CPU_TASKS_ANYWHERE is set, so tasks may
    run anywhere."""
    import dask

    if dask.config.get(CPU_TASKS_ANYWHERE, False):
        return None
    workers = client.scheduler_info(n_workers=-1)["workers"]
    plain = [address for address, w in workers.items() if not any(w.get("resources", {}).values())]
    return plain if plain and len(plain) < len(workers) else None


def run_tasks(
    client,
    fn,
    args: list[tuple],
    *,
    desc: str,
    resources: dict | None = None,
    keys: list[str] | None = None,
    retries: int = 0,
    unit: str = "task",
    done: int = 0,
    progress: bool = True,
) -> list:
    """fn(*a) for each a on the cluster; results in completion order. `keys` name the
    tasks (else Dask makes unique ones); `done` counts finished work shown on the bar."""
    if not args:
        return []
    require_resources(client, resources, desc)
    # Named for what they do ("answers-smollm2-<uuid>"), so the dashboard and the
    # scheduler's task stream say which tasks ran where.
    keys = keys or [f"{'-'.join(desc.split())}-{uuid.uuid4()}" for _ in args]

    def submit(indices: list[int], attempt: int) -> tuple[dict, list[str] | None]:
        """{future: index} for the given tasks, and the workers they are pinned to."""
        pinned = None if resources else cpu_workers(client)
        return {
            client.submit(
                fn,
                *args[i],
                key=f"{keys[i]}-again{attempt}" if attempt else keys[i],
                resources=resources or None,
                workers=pinned,
                retries=retries,
                pure=False,
                priority=-i,  # submission order: the first chunks finish first
            ): i
            for i in indices
        }, pinned

    from tqdm import tqdm

    bar = tqdm(
        total=done + len(args),
        initial=done,
        desc=desc,
        unit=unit,
        file=sys.stderr,
        disable=not progress,
        mininterval=1.0,
        delay=BAR_DELAY_S,
    )
    with bar:
        return _drain(client, submit, len(args), bar, desc)


def _drain(client, submit, count: int, bar, desc: str) -> list:
    """Gather results as tasks finish. Tasks pinned to CPU workers that have all gone
    (a restarted worker has a new address) are submitted again to the workers there are."""
    from distributed import KilledWorker, wait

    pending, pinned = submit(list(range(count)), 0)
    results, attempt = [], 0
    while pending:
        try:
            finished, _ = wait(
                list(pending), timeout=PLACEMENT_CHECK_S, return_when="FIRST_COMPLETED"
            )
        except TimeoutError:
            if not bar.disable and time.time() - bar.last_print_t >= IDLE_REDRAW_S:
                bar.refresh()
                # Once per IDLE_REDRAW_S, not at every check: in a log each redraw is a line.
                bar.last_print_t = time.time()
            live = client.scheduler_info(n_workers=-1)["workers"]
            if pinned and not set(pinned) & set(live):
                attempt += 1
                client.cancel(list(pending))
                pending, pinned = submit(sorted(pending.values()), attempt)
            continue
        for future in finished:
            pending.pop(future)
            try:
                results.append(future.result())
            except KilledWorker as err:
                task, _, failures = err.args
                raise UserError(
                    f"{desc}: task {task} died with its worker {failures} times (out of "
                    "memory? give workers more --memory-limit or fewer threads)"
                ) from None
            future.release()
            bar.update(1)
    return results


def task_kind(key) -> str:
    """What a task is, from its key: the words before its first hex word ("answers-smollm2"
    of "answers-smollm2-<uuid>", "embed" of "embed-<config hash>-part-00003")."""
    words = str(key).split("-")
    for i, word in enumerate(words):
        if len(word) >= 8 and all(c in "0123456789abcdef" for c in word):
            return "-".join(words[:i])
    return str(key)


def fixed_chunks(items: list, size: int, group: Callable | None = None) -> list[list]:
    """`items` cut into chunks of at most `size` consecutive items; with `group`, items
    of two groups never share a chunk. A chunk is one engine batch, and what a model
    writes can depend on the batch it shares, so chunks are a function of the work
    alone, never of the worker count or of what is cached: callers cut the whole
    work, then drop what is done. A group added later (a new model's pairs) leaves the
    other groups' chunks as they were."""
    chunks: list[list] = []
    last = object()
    for item in items:
        key = group(item) if group else None
        if not chunks or len(chunks[-1]) >= size or key != last:
            chunks.append([])
        chunks[-1].append(item)
        last = key
    return chunks
