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


def test_release_runs_when_dropped_and_before_the_next_load():
    offload("test")
    events = []

    def build(k):
        events.append(("load", k, tuple(loaded("test"))))
        return k

    for k in range(3):
        load_on_worker(
            ("test", k),
            lambda k=k: build(k),
            limit=2,
            release=lambda v: events.append(("release", v)),
        )
    # The oldest went before the third was built: never three held at once.
    assert events[2] == ("release", 0) and events[3] == ("load", 2, (("test", 1),))
    load_on_worker(("keep", 0), object)
    # Everything but `keep`, sparing what earlier tests of this process hold.
    others = tuple({k[0] for k in loaded()} - {"test"})
    assert offload(keep=others) == 2 and loaded("test") == [] and loaded("keep") == [("keep", 0)]
    assert events[-2:] == [("release", 1), ("release", 2)]
    offload("keep")


def _object_id() -> int:
    return id(load_on_worker(("test-worker",), object))


def test_a_worker_keeps_its_object_between_tasks(client):
    worker = next(iter(client.scheduler_info()["workers"]))
    ids = {client.submit(_object_id, pure=False, workers=[worker]).result() for _ in range(3)}
    assert len(ids) == 1
    assert client.run(offload, "test-worker", workers=[worker]) == {worker: 1}
