"""core.worker_cache: one object per key and process, a bound per kind, offload on demand,
and on a real Dask worker the object survives between tasks."""

from core.worker_cache import load_on_worker, loaded, offload


def test_loads_once_per_key():
    offload("test")
    built = []
    first = load_on_worker(("test", 1), lambda: built.append(1) or object())
    again = load_on_worker(("test", 1), lambda: built.append(1) or object())
    assert first is again and built == [1]
    assert offload("test") == 1 and loaded("test") == []


def test_limit_drops_the_oldest_of_a_kind_only():
    offload("test")
    offload("other")
    load_on_worker(("other", 0), object)
    for k in range(3):
        load_on_worker(("test", k), object, limit=2)
    assert loaded("test") == [("test", 1), ("test", 2)]
    assert loaded("other") == [("other", 0)]
    assert offload(key=("test", 2)) == 1 and loaded("test") == [("test", 1)]
    offload("test")
    offload("other")


def _object_id() -> int:
    return id(load_on_worker(("test-worker",), object))


def test_a_worker_keeps_its_object_between_tasks(client):
    worker = next(iter(client.scheduler_info()["workers"]))
    ids = {client.submit(_object_id, pure=False, workers=[worker]).result() for _ in range(3)}
    assert len(ids) == 1
    assert client.run(offload, "test-worker", workers=[worker]) == {worker: 1}
