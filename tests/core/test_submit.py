"""core.submit on real clusters: the resource check, placement, results and retries."""

import pytest

import core.submit
from core.errors import UserError
from core.submit import fixed_chunks, require_resources, run_tasks


def _square(x):
    return x * x


def _fails_once(marker: str) -> str:
    # A file, not a global: the retry may land in another worker process.
    from pathlib import Path

    path = Path(marker)
    if not path.exists():
        path.write_text("failed once")
        raise RuntimeError("transient")
    return "ok"


def test_run_tasks_returns_every_result(client):
    results = run_tasks(client, _square, [(i,) for i in range(7)], desc="squares", progress=False)
    assert sorted(results) == [i * i for i in range(7)]


def test_a_resource_no_worker_holds_is_an_error_before_submission(client):
    with pytest.raises(UserError, match=r"squares: no worker holds GPU=1; start workers"):
        run_tasks(client, _square, [(1,)], desc="squares", resources={"GPU": 1}, progress=False)
    require_resources(client, {}, "nothing needed")  # no resources: runs anywhere


def test_retries_rerun_a_failed_task(client, tmp_path):
    marker = str(tmp_path / "marker")
    assert run_tasks(client, _fails_once, [(marker,)], desc="x", retries=1, progress=False) == [
        "ok"
    ]


def _where(seconds: float = 0.0) -> str:
    import time

    from distributed import get_worker

    time.sleep(seconds)
    return get_worker().name


@pytest.fixture
def mixed_cluster():
    """One plain worker and one declaring GPU=1, as a GPU cluster with CPU nodes."""
    from distributed import Client, Scheduler, SpecCluster, Worker

    spec = {
        "cpu": {"cls": Worker, "options": {"nthreads": 1}},
        "gpu": {"cls": Worker, "options": {"nthreads": 1, "resources": {"GPU": 1}}},
    }
    with (
        SpecCluster(
            workers=spec, scheduler={"cls": Scheduler, "options": {"dashboard_address": ":0"}}
        ) as cluster,
        Client(cluster) as c,
    ):
        c.wait_for_workers(2, timeout=30)
        yield cluster, c


def test_cpu_tasks_stay_off_gpu_workers_and_gpu_tasks_on_them(mixed_cluster):
    _, c = mixed_cluster
    assert set(run_tasks(c, _where, [(0.01,)] * 12, desc="cpu", progress=False)) == {"cpu"}
    gpu = run_tasks(c, _where, [(0.01,)] * 6, desc="gpu", resources={"GPU": 1}, progress=False)
    assert set(gpu) == {"gpu"}


def test_cpu_tasks_move_when_their_workers_are_gone(mixed_cluster, monkeypatch):
    """A pinned CPU task whose worker left would wait forever; it is submitted again."""
    import threading

    cluster, c = mixed_cluster
    monkeypatch.setattr(core.submit, "PLACEMENT_CHECK_S", 0.5)

    def remove_cpu_worker():
        cluster.worker_spec.pop("cpu")
        cluster.sync(cluster._correct_state)

    threading.Timer(1.0, remove_cpu_worker).start()
    where = run_tasks(c, _where, [(0.3,)] * 12, desc="cpu", progress=False)
    assert len(where) == 12 and set(where) == {"cpu", "gpu"}


def test_a_task_killing_its_worker_is_one_line(tmp_path):
    """A task that kills its worker every time ends as a UserError, not KilledWorker."""
    import dask
    from distributed import Client, LocalCluster

    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),
        LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=":0") as cluster,
        Client(cluster) as c,
        pytest.raises(UserError, match=r"killer: task .* died with its worker 0 times"),
    ):
        run_tasks(c, _exit_worker, [()], desc="killer", progress=False)


def _exit_worker():
    import os

    os._exit(1)


def test_chunks_are_a_function_of_the_work_alone():
    games = [(pair, n) for pair in ("a-b", "a-c") for n in range(5)]
    chunks = fixed_chunks(games, 2, group=lambda g: g[0])
    # No chunk mixes two pairs, and a pair's chunks stay as they were when a pair is added.
    assert [len(c) for c in chunks] == [2, 2, 1, 2, 2, 1]
    grown = fixed_chunks(games + [("b-c", n) for n in range(3)], 2, group=lambda g: g[0])
    assert grown[: len(chunks)] == chunks
    assert fixed_chunks(list(range(5)), 2) == [[0, 1], [2, 3], [4]]


def _slow(seconds: float) -> float:
    import time

    time.sleep(seconds)
    return seconds


def test_a_bar_waiting_on_a_long_task_is_redrawn(client, monkeypatch, capsys):
    """No task finishes for a while: the bar is drawn again, its clock moving, so the log
    shows the job waiting on its named step rather than hung."""
    monkeypatch.setattr(core.submit, "PLACEMENT_CHECK_S", 0.3)
    monkeypatch.setattr(core.submit, "IDLE_REDRAW_S", 0.5)
    monkeypatch.setattr(core.submit, "BAR_DELAY_S", 0.0)
    assert run_tasks(client, _slow, [(2.5,)], desc="slow step") == [2.5]
    draws = [d for d in capsys.readouterr().err.split("\r") if d.startswith("slow step")]
    assert len(draws) >= 4, draws  # the start, at least two redraws, the end
    assert any("0/1 [00:01<" in d or "0/1 [00:02<" in d for d in draws), draws
