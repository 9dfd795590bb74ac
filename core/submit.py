"""The one way work reaches the cluster: a resource check, then tasks with progress.

Stages (core.runner), battle answers and verdicts, and the ratings counts all
submit through `run_tasks` (functions) or `compute_tasks` (dask.delayed graphs),
so every path fails the same way when no worker can run a task (a one-line
error naming the resource, not a hang), shows the same progress bar, and
retries a task the same way.
"""

from __future__ import annotations

import sys

from core.errors import UserError


def require_resources(client, resources: dict | None, what: str) -> None:
    """Fail with a clear message instead of waiting forever for a worker that will never come."""
    if not resources:
        return
    workers = client.scheduler_info()["workers"].values()
    if not any(
        all(w.get("resources", {}).get(k, 0) >= v for k, v in resources.items()) for w in workers
    ):
        wanted = ",".join(f"{k}={v:g}" for k, v in resources.items())
        raise UserError(
            f"{what}: no worker holds {wanted}; start workers with `dask worker ... --resources "
            f"{wanted}` (embedded cluster: --worker-resources {wanted})"
        )


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
    futures = [
        client.submit(
            fn,
            *a,
            key=keys[i] if keys else None,
            resources=resources or None,
            retries=retries,
            pure=False,
            priority=-i,  # submission order: the first chunks finish first
        )
        for i, a in enumerate(args)
    ]
    return _drain(futures, desc, unit, done, progress)


def compute_tasks(client, tasks: list, *, desc: str, unit: str = "part", progress: bool = True):
    """Results of dask.delayed `tasks` (e.g. one per partition of a Dask frame), in order."""
    if not tasks:
        return []
    futures = client.compute(tasks)
    _drain(list(futures), desc, unit, 0, progress, release=False)
    return client.gather(futures)


def _drain(futures, desc: str, unit: str, done: int, progress: bool, release: bool = True):
    from dask.distributed import as_completed
    from tqdm import tqdm

    results = []
    bar = tqdm(
        total=done + len(futures),
        initial=done,
        desc=desc,
        unit=unit,
        file=sys.stderr,
        disable=not progress,
        mininterval=1.0,
    )
    with bar:
        for future in as_completed(futures):
            results.append(future.result())
            bar.update(1)
            if release:
                future.release()
    return results


def worker_chunks(client, items: list, cap: int) -> list[list]:
    """At most `cap` items a chunk, and at least one chunk per worker when there are enough
    items, so a small run still uses every worker."""
    import math

    workers = max(1, len(client.scheduler_info()["workers"]))
    size = max(1, min(cap, math.ceil(len(items) / workers)))
    return [items[i : i + size] for i in range(0, len(items), size)]
