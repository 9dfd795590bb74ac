"""The one place that chooses a Dask cluster.

Order: --scheduler-address, --scheduler-file, DASK_SCHEDULER_ADDRESS, else an
embedded LocalCluster sized by --workers / --threads-per-worker /
--memory-limit; a job small enough for one process and no cluster named runs
in this process (`connect_unless_small`). --worker-resources (e.g. GPU=1) declares resources on the
embedded workers; on a real cluster start workers with
`dask worker ADDRESS --resources GPU=1`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys

from core.config_files import parse_resources


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("cluster")
    group.add_argument(
        "--scheduler-address", help="connect to this Dask scheduler (tcp://host:8786)"
    )
    group.add_argument(
        "--scheduler-file", help="connect using a scheduler file written by `dask scheduler`"
    )
    group.add_argument(
        "--workers", type=int, default=None, help="embedded cluster: worker processes"
    )
    group.add_argument(
        "--threads-per-worker", type=int, default=1, help="embedded cluster: threads each"
    )
    group.add_argument(
        "--memory-limit", default="auto", help="embedded cluster: per worker, e.g. 4GiB"
    )
    group.add_argument(
        "--worker-resources",
        default="",
        help="embedded cluster: resources of every worker, e.g. GPU=1 (comma separated)",
    )


def _prepare_worker_environment(threads: int) -> None:
    """Before the first cluster: worker processes inherit these at spawn."""
    import dask

    # Dask sets MALLOC_TRIM_THRESHOLD_ for workers by default; measured here it
    # cost ~20% on embedding. Torch threads must not oversubscribe the cores.
    dask.config.set(
        {
            "distributed.nanny.pre-spawn-environ": {
                "OMP_NUM_THREADS": str(threads),
                "MKL_NUM_THREADS": str(threads),
                "OPENBLAS_NUM_THREADS": str(threads),
                "TOKENIZERS_PARALLELISM": "false",
            },
        }
    )


def embedded_resources(args: argparse.Namespace, needed: dict[str, float]) -> None:
    """Give the embedded cluster's workers the resources a job's tasks need (e.g. the GPU
    slot vLLM tasks hold, which on a CPU-only laptop serialises engine use per worker)
    unless the user chose them. A real cluster declares its own (`dask worker --resources`)."""
    if needed and not args.worker_resources:
        args.worker_resources = ",".join(f"{k}={v:g}" for k, v in sorted(needed.items()))


def cluster_named(args: argparse.Namespace) -> bool:
    """Whether the user pointed at a cluster or sized the embedded one."""
    return bool(
        args.scheduler_address
        or args.scheduler_file
        or os.environ.get("DASK_SCHEDULER_ADDRESS")
        or args.workers
    )


@contextlib.contextmanager
def connect_unless_small(args: argparse.Namespace, small: bool, *, quiet: bool = False):
    """None (work in this process: no cluster to start or import) for a job small enough for
    one process when no cluster was named; else a client as `connect` gives."""
    if small and not cluster_named(args):
        yield None
        return
    with connect(args, quiet=quiet) as client:
        yield client


@contextlib.contextmanager
def connect(args: argparse.Namespace, *, quiet: bool = False):
    """Yield a dask.distributed Client for the cluster the arguments describe."""
    from dask.distributed import Client

    address = args.scheduler_address or os.environ.get("DASK_SCHEDULER_ADDRESS")
    if args.scheduler_file:
        client = Client(scheduler_file=args.scheduler_file)
        where = f"scheduler file {args.scheduler_file}"
    elif address:
        client = Client(address)
        where = address
    else:
        client = None
    if client is not None:
        if not quiet:
            print(
                f"connected to {where} ({len(client.scheduler_info()['workers'])} workers)",
                file=sys.stderr,
            )
        with client:
            yield client
        return

    from dask.distributed import LocalCluster

    cores = os.cpu_count() or 1
    workers = args.workers or max(1, cores // max(1, args.threads_per_worker))
    torch_threads = max(1, cores // workers)
    _prepare_worker_environment(torch_threads)
    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=args.threads_per_worker,
        memory_limit=args.memory_limit,
        resources=parse_resources(args.worker_resources) or None,
        dashboard_address=":0",
    )
    with cluster, Client(cluster) as client:
        if not quiet:
            print(
                f"embedded LocalCluster: {workers} workers x {args.threads_per_worker} threads, "
                f"dashboard {client.dashboard_link}",
                file=sys.stderr,
            )
        yield client
