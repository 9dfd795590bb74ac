"""Objects that live once per worker process: models, engines, encoders.

A task calls `load_on_worker(key, loader)`; the first call in a process builds
the object, every later task on that worker gets the same one, and a Dask
worker keeps it between tasks (the spirit of NeMo-Curator's
`load_object_on_worker`). The first item of a key names its kind (the constants
below); `limit` bounds how many of a kind stay loaded, the oldest going before a new
one is built, so a worker never holds limit + 1.

`offload` is the one way a worker's memory is freed: it drops objects (one key,
a kind, or all; `client.run(offload)` does it on every worker), runs each one's
`release` (an engine's shutdown: vLLM's engines are not freed by garbage
collection alone), collects garbage and hands the freed heap back to the OS.
Steps that load heavy objects outside the cache (a trainer) call `free_memory`
when they end.
"""

from __future__ import annotations

import functools
import gc
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

T = TypeVar("T")

# The kinds of object a worker keeps (a key's first item), what `limit` counts and
# `offload` drops by.
VLLM_ENGINE = "vllm"
TRANSFORMERS_MODEL = "transformers"
GRAMMAR = "xgrammar"  # a transformers model's compiled reply grammar
ENCODER = "encoder"  # a sentence-transformers or static embedding model

# key -> (object, its release or None)
_OBJECTS: OrderedDict[tuple, tuple[object, Callable[[object], None] | None]] = OrderedDict()
_LOCK = threading.RLock()  # threads of one worker must not build the same model twice


def load_on_worker(
    key: tuple[Hashable, ...],
    loader: Callable[[], T],
    limit: int | None = None,
    release: Callable[[T], None] | None = None,
) -> T:
    """The object for `key` in this process, built by `loader()` on first use.
    `release(obj)`, if given, frees what garbage collection cannot when it is dropped."""
    with _LOCK:
        if key in _OBJECTS:
            _OBJECTS.move_to_end(key)
            return _OBJECTS[key][0]  # type: ignore[return-value]
        if limit is not None:
            same_kind = [k for k in _OBJECTS if k[0] == key[0]]
            for old in same_kind[: max(0, len(same_kind) - limit + 1)]:
                offload(key=old)
        value = loader()
        _OBJECTS[key] = (value, release)
        return value


def offload(
    kind: Hashable | None = None, key: tuple | None = None, keep: tuple[Hashable, ...] = ()
) -> int:
    """Drop one object (`key`), every object of a `kind`, or all but the kinds in `keep`;
    returns how many went."""
    with _LOCK:
        if key is not None:
            gone = [k for k in _OBJECTS if k == key]
        else:
            gone = [k for k in _OBJECTS if kind in (None, k[0]) and k[0] not in keep]
        for k in gone:
            value, release = _OBJECTS.pop(k)
            if release is not None:
                release(value)
            del value
    if gone:
        free_memory()
    return len(gone)


def free_memory() -> None:
    """Collect garbage, empty the accelerator's cache and hand the freed heap back to the
    OS (glibc keeps it otherwise, and the RSS stays as if the model were still there)."""
    import sys

    gc.collect()
    torch = sys.modules.get("torch")  # only if a model already imported it
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
    return_freed_heap()


def return_freed_heap() -> None:
    """Hand memory already freed back to the OS: Arrow's pool (mimalloc) and glibc both keep
    it for reuse, so a worker's RSS stays at its largest task's for the rest of the run.
    Cheap (a heap walk, milliseconds), so every task's end can afford it."""
    import sys

    pyarrow = sys.modules.get("pyarrow")
    if pyarrow is not None:
        pyarrow.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim():
    """glibc's malloc_trim, looked up once: find_library runs ldconfig in a child process,
    which at every task's end showed in the worker's memory. None where libc is not glibc."""
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim
    except (OSError, AttributeError, TypeError):
        return None


def loaded(kind: Hashable | None = None) -> list[tuple]:
    """Keys of the objects this process holds (of one kind, or all)."""
    with _LOCK:
        return [k for k in _OBJECTS if kind is None or k[0] == kind]
