"""vLLM engines on one real Dask worker, walked through every way a worker holds them, in
several orders: load, evict (a third engine), reload; two side by side; all freed for a
real trl training task, then an engine of the fresh checkpoint; a task that fails after
loading its engine, retried on the same worker. Each engine of the same weights must
write what the first wrote, and a freed engine must give its memory back.

vLLM keeps its parallel groups per process and every engine's shutdown destroys them;
an engine merely dropped is never freed (gc.freeze). Both broke the main job by chance.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from arena_models.backends.base import Sampling
from arena_models.backends.vllm_backend import VLLMBackend, engines_per_worker
from core.errors import UserError
from core.submit import run_tasks
from core.worker_cache import VLLM_ENGINE, loaded, offload
from pipeline.flywheel.training import TrainConfig, TrainJob, train_task

pytestmark = pytest.mark.slow

CHAT = [[{"role": "user", "content": "Name three rivers of Europe."}]]
GREEDY = Sampling(temperature=0.0, top_p=1.0, max_tokens=12, seed=0)
# Engine settings that differ only in context length: distinct engines, same weights.
LENGTHS = {"A": 512, "B": 640, "C": 768}


def _rss_gib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**30


def _generate(path: str, length: int) -> dict:
    backend = VLLMBackend(path, enforce_eager=True, max_model_len=length, kv_cache_gib=1)
    [answer] = backend.generate(CHAT, GREEDY)
    return {"text": answer.text, "error": answer.error, "engines": len(loaded(VLLM_ENGINE))}


def _fail_once(path: str, length: int, marker: str) -> dict:
    """Loads its engine and answers, then fails the first time it runs."""
    result = _generate(path, length)
    if not Path(marker).exists():
        Path(marker).write_text("failed once")
        raise RuntimeError("the first attempt fails after loading its engine")
    return result


def _free() -> dict:
    before = _rss_gib()
    gone = offload(VLLM_ENGINE)
    return {"gone": gone, "freed_gib": before - _rss_gib(), "engines": len(loaded(VLLM_ENGINE))}


@pytest.fixture
def sft_shard(tmp_path) -> Path:
    folder = tmp_path / "shard"
    folder.mkdir()
    rows = [
        {
            "prompt": [{"role": "user", "content": f"Say the number {n}."}],
            "completion": [{"role": "assistant", "content": f"The number is {n}."}],
        }
        for n in range(4)
    ]
    pq.write_table(pa.Table.from_pylist(rows), folder / "part-00000.parquet")
    (folder / "_manifest.json").write_text(json.dumps({"rows_out": len(rows)}))
    return folder


def _walk(client, steps, tiny_llama, job, marker, answers) -> None:
    """Each step a task on the one worker; what every engine wrote lands in `answers`."""
    run = lambda fn, *args, **kw: client.submit(  # noqa: E731
        fn, *args, resources={"GPU": 1}, pure=False, **kw
    ).result(timeout=300)
    for step in steps:
        if step == "free":
            freed = run(_free)
            assert freed["engines"] == 0
            if freed["gone"]:  # each engine preallocates a 1 GiB KV cache
                assert freed["freed_gib"] > 0.5 * freed["gone"], freed
            continue
        if step == "train":  # frees the worker's engines, trains (or finds it trained)
            [record] = run_tasks(client, train_task, [(job,)], desc="train", resources={"GPU": 1})
            assert record["rows_trained"] == 4
            result = run(_generate, job.out, LENGTHS["A"])
            answers.setdefault("trained", result["text"])
            assert result["text"] == answers["trained"] and not result["error"]
            continue
        if step == "retry":
            Path(marker).unlink(missing_ok=True)
            result = run(_fail_once, tiny_llama, LENGTHS["B"], marker, retries=1)
            assert Path(marker).exists()  # it failed once, and its retry answered
        else:
            result = run(_generate, tiny_llama, LENGTHS[step])
        assert not result["error"], (step, result)
        assert result["engines"] <= engines_per_worker()
        answers.setdefault("base", result["text"])
        assert result["text"] == answers["base"], (steps, step)


def test_engines_outlive_each_other_on_one_worker(
    gpu_worker, tiny_llama, sft_shard, tmp_path, monkeypatch
):
    # Two engines a worker, as on a GPU (a CPU keeps one), so that two live side by side.
    monkeypatch.setenv("ARENA_ENGINES_PER_WORKER", "2")
    written = ["A", "B", "C", "A", "retry", "free", "train"]
    shuffled = list(written)
    random.Random(1).shuffle(shuffled)
    job = TrainJob(
        config=TrainConfig(kind="sft", max_steps=1, per_device_batch_size=2, max_length=64),
        data=str(sft_shard),
        base=tiny_llama,
        out=str(tmp_path / "sft"),
    )
    answers: dict[str, str] = {}
    with gpu_worker() as client:
        # Two walks on the same worker, each ending by reloading the first engine.
        for steps in (written + ["A"], shuffled + ["A"]):
            _walk(client, steps, tiny_llama, job, str(tmp_path / "failed-once"), answers)
    assert answers["base"] and answers["trained"]


def test_a_cpu_worker_keeps_one_engine_unless_told(monkeypatch):
    import torch

    monkeypatch.delenv("ARENA_ENGINES_PER_WORKER", raising=False)
    assert engines_per_worker() == (2 if torch.cuda.is_available() else 1)
    monkeypatch.setenv("ARENA_ENGINES_PER_WORKER", "3")
    assert engines_per_worker() == 3
    monkeypatch.setenv("ARENA_ENGINES_PER_WORKER", "two")
    with pytest.raises(UserError, match="ARENA_ENGINES_PER_WORKER='two': expected a whole"):
        engines_per_worker()
