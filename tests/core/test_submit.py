"""core.submit on a real LocalCluster: every path's resource check, results and retries."""

import pytest

from core.errors import UserError
from core.submit import compute_tasks, require_resources, run_tasks


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


def test_compute_tasks_keeps_the_order_of_delayed_tasks(client):
    from dask import delayed

    tasks = [delayed(_square)(i) for i in range(5)]
    assert compute_tasks(client, tasks, desc="squares", progress=False) == [0, 1, 4, 9, 16]
