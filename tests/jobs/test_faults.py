"""A worker process SIGKILLed while it runs an embedding, a battle or a training task, on a
cluster of real `dask scheduler` + `dask worker` processes on loopback (two workers
under nannies, so the other takes the task and the killed one comes back): the job
completes, and its outputs equal those of an uninterrupted run of the same job. Models
are the session's tiny Llama (tests/tiny_model.py): the subject is the cluster, not what
a model writes.

Dask reschedules a task whose worker died without counting it as a failure of the task
(`distributed.scheduler.allowed-failures`, 3 by default, bounds how many workers one
task may take down), so stage, battle and training tasks need no `retries`."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.parquet_io import write_parquet_atomic
from core.schemas import CONVERSATION, prompt_id
from tests.loopback import loopback_cluster

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "eval_sets" / "samples" / "arena_hard_v0.1.jsonl"
ANSWERS = REPO / "arena_models" / "rosters" / "answers" / "gpt-4-0314.jsonl"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A scheduler and two nanny-managed workers (GPU=1 each, as training tasks ask)."""
    from dask.distributed import Client

    workers = ["--nworkers", "2", "--nthreads", "1", "--nanny", "--resources", "GPU=1"]
    with (
        loopback_cluster(tmp_path_factory.mktemp("cluster"), workers, expect=2) as path,
        Client(scheduler_file=str(path), timeout=120) as client,
    ):
        yield client


def run_killing(client, job, prefix: str, *, ready=lambda: True, timeout: float = 600):
    """Run `job()` in a thread; SIGKILL the worker process the scheduler gave a task whose
    key starts with `prefix`, once `ready()` holds while it runs. Returns (job's result, key).
    Keys: core.submit names a task by its progress bar's words ("judge-judge-<uuid>")."""
    result: dict = {}

    def target():
        try:
            result["value"] = job()
        except BaseException as err:  # noqa: B036 - reported in the test's thread
            result["error"] = err

    thread = threading.Thread(target=target)
    thread.start()
    killed = None
    deadline = time.time() + timeout
    while killed is None and thread.is_alive() and time.time() < deadline:
        for address, keys in client.processing().items():
            hit = [str(k) for k in keys if str(k).startswith(prefix)]
            if hit and ready():
                os.kill(client.run(os.getpid, workers=[address])[address], signal.SIGKILL)
                killed = hit[0]
                break
        time.sleep(0.01)
    thread.join(timeout)
    if "error" in result:
        raise result["error"]
    assert killed, f"no {prefix} task was seen on a worker"
    client.wait_for_workers(2, timeout=180)  # the nanny has brought the killed one back
    return result["value"], killed


def rows(folder: Path) -> list[dict]:
    return [r for p in sorted(folder.glob("part-*.parquet")) for r in pq.read_table(p).to_pylist()]


def conversations(folder: Path, n: int) -> Path:
    table = []
    for line, text in enumerate(SAMPLES.read_text().splitlines()[:n]):
        messages = [{"role": "user", "content": json.loads(text)["prompt"]}]
        table.append(
            {"prompt_id": prompt_id(messages), "messages": messages, "source": "ah",
             "source_id": None, "source_file": "ah", "source_line": line, "metadata": "{}"}
        )  # fmt: skip
    write_parquet_atomic(pa.Table.from_pylist(table, CONVERSATION), folder / "part-00000.parquet")
    return folder


def test_a_worker_killed_mid_embedding(cluster, tmp_path):
    from core.runner import run_stage
    from pipeline.evalset.embed import EmbedConfig, EmbedConversations

    pool = conversations(tmp_path / "pool", 48)
    config = EmbedConfig(dtype="float32", rows_per_task=12)  # four tasks

    def embed(out):
        return lambda: run_stage(EmbedConversations(pool, out, config), cluster, progress=False)

    reference = embed(tmp_path / "uninterrupted")()
    manifest, key = run_killing(cluster, embed(tmp_path / "killed"), "embed-")
    assert manifest["parts"] == 4 and manifest["rows_out"] == 48
    assert manifest["content_hash"] == reference["content_hash"]
    assert rows(tmp_path / "killed") == rows(tmp_path / "uninterrupted")


def test_a_worker_killed_mid_battle(cluster, tmp_path, tiny_llama):
    from pipeline.battle.config import BattleConfig
    from pipeline.flows.battle import prepare_battle, run_battle

    evalset = conversations(tmp_path / "evalset", 3)
    transformers = f"backend: transformers, path: '{tiny_llama}'"
    (tmp_path / "roster.yaml").write_text(
        "defaults:\n  sampling: {max_tokens: 8}\nmodels:\n"
        f"  - {{name: tiny, {transformers}}}\n"
        f"  - {{name: gpt-4-0314, backend: recorded, path: '{ANSWERS}'}}\n"
    )
    (tmp_path / "judges.yaml").write_text(
        f"models:\n  - {{name: judge, {transformers}, sampling: {{max_tokens: 160}}}}\n"
    )
    # Nothing cached in either run, so both make the same answer and judge batches (padding
    # shapes greedy numbers); the kill lands in a judge task, the longest of a battle. The
    # tiny model's verdicts are noise in the enforced format: room for the whole format.
    config = BattleConfig(answer_chunk=1, judge_chunk=2, judge_retries=0, max_answer_chars=300)
    setup = prepare_battle(
        tmp_path / "roster.yaml", config, judge="judge", judge_roster=tmp_path / "judges.yaml"
    )

    def battle(out):
        return lambda: run_battle(cluster, setup, evalset, out, progress=False)

    reference = battle(tmp_path / "uninterrupted")()
    summary, key = run_killing(cluster, battle(tmp_path / "killed"), "judge-judge-")
    assert summary["answers"]["tiny"]["generated"] == 3 and summary["battles"] == 6
    assert summary["judge_errors"] == 0  # every game a verdict, as the format is enforced
    assert summary["games_judged_now"] == reference["games_judged_now"] == 6
    for name in ("battles", "combined"):
        assert rows(tmp_path / "killed" / name) == rows(tmp_path / "uninterrupted" / name)


def _safetensors_sha(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob("*.safetensors")
    }


def test_a_worker_killed_mid_training(cluster, tmp_path, tiny_llama):
    from core.submit import run_tasks
    from pipeline.flywheel.training import RECORD, TrainConfig, TrainJob, train_task

    lines = [json.loads(t) for t in SAMPLES.read_text().splitlines()[:40]]
    short = [r["prompt"] for r in lines if len(r["prompt"]) < 200][:4]
    shard = tmp_path / "shard"
    shard.mkdir()
    pq.write_table(
        pa.Table.from_pylist(
            [
                {
                    "prompt": [{"role": "user", "content": p}],
                    "completion": [
                        {"role": "assistant", "content": f"A short answer to: {p[:60]}"}
                    ],
                }
                for p in short
            ]  # fmt: skip
        ),
        shard / "part-00000.parquet",
    )
    config = TrainConfig(
        kind="sft", max_steps=1, per_device_batch_size=2, max_length=256, device="cpu"
    )

    def training(out):
        job = TrainJob(config=config, data=str(shard), base=tiny_llama, out=str(out))
        return lambda: run_tasks(
            cluster, train_task, [(job,)], desc="train", resources=job.resources, progress=False
        )[0]

    reference = training(tmp_path / "uninterrupted")()
    # Killed once the task has claimed its temporary checkpoint folder: trl is loading the
    # data, building the trainer or stepping.
    claimed = lambda: any(tmp_path.glob(".killed.tmp-*"))  # noqa: E731
    record, key = run_killing(cluster, training(tmp_path / "killed"), "train-", ready=claimed)
    assert not record.get("resumed")  # trained by the retried task, not found finished
    written = json.loads((tmp_path / "killed" / RECORD).read_text())
    for field in ("rows_selected", "rows_trained", "steps", "train_tokens", "losses"):
        assert written[field] == reference[field], field
    assert written["rows_trained"] == 4 and written["steps"] == 1
    # One checkpoint, no temporary folder of the killed attempt left beside it.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["killed", "shard", "uninterrupted"]
    # CPU training with a fixed seed is deterministic: the same weights.
    assert _safetensors_sha(tmp_path / "killed") == _safetensors_sha(tmp_path / "uninterrupted")
    assert _safetensors_sha(tmp_path / "killed")
