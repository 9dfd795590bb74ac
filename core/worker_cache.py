"""Objects that live once per worker process: models, engines, encoders.

A task calls `load_on_worker(key, loader)`; the first call in a process builds
the object, every later task on that worker gets the same one, and a Dask
worker keeps it between tasks (the spirit of NeMo-Curator's
`load_object_on_worker`). The first item of a key names its kind ("vllm",
"transformers", "encoder"); `limit` bounds how many of a kind stay loaded, the
oldest going first. `offload` drops them on demand (`client.run(offload)` does
it on every worker), freeing their memory before a different model loads.
"""

from __future__ import annotations

import gc
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

T = TypeVar("T")

_OBJECTS: OrderedDict[tuple, object] = OrderedDict()
_LOCK = threading.RLock()  # threads of one worker must not build the same model twice


def load_on_worker(
    key: tuple[Hashable, ...], loader: Callable[[], T], limit: int | None = None
) -> T:
    """The object for `key` in this process, built by `loader()` on first use."""
    with _LOCK:
        if key in _OBJECTS:
            _OBJECTS.move_to_end(key)
            return _OBJECTS[key]  # type: ignore[return-value]
        value = loader()
        _OBJECTS[key] = value
        if limit is not None:
            same_kind = [k for k in _OBJECTS if k[0] == key[0]]
            evicted = same_kind[: max(0, len(same_kind) - limit)]
            for old in evicted:
                del _OBJECTS[old]
            if evicted:
                gc.collect()
        return value


def offload(kind: Hashable | None = None, key: tuple | None = None) -> int:
    """Drop one object (`key`), every object of a `kind`, or all; returns how many went."""
    with _LOCK:
        gone = [
            k
            for k in _OBJECTS
            if (key is not None and k == key) or (key is None and (kind is None or k[0] == kind))
        ]
        for k in gone:
            del _OBJECTS[k]
    if gone:
        gc.collect()
        _empty_accelerator_cache()
        _return_freed_memory()
    return len(gone)


def _return_freed_memory() -> None:
    """Hand the heap freed by a dropped model back to the OS (glibc keeps it otherwise,
    and the process's RSS stays as if the model were still there)."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        ctypes.CDLL(name).malloc_trim(0)
    except (OSError, AttributeError, TypeError):  # not glibc: nothing to do
        pass


def loaded(kind: Hashable | None = None) -> list[tuple]:
    """Keys of the objects this process holds (of one kind, or all)."""
    with _LOCK:
        return [k for k in _OBJECTS if kind is None or k[0] == kind]


def _empty_accelerator_cache() -> None:
    import sys

    torch = sys.modules.get("torch")  # only if a model already imported it
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
