"""Jobs attached to real `dask scheduler` / `dask worker` processes on loopback, by file or
address: they wait for the workers they need (a bounded, stated wait, then one line), and
the scheduler's own task stream shows where each task ran."""

import json
import logging
import os
import re
import time

import pandas as pd
import pytest

from bench.small_main_job import REPO
from jobs.cli import main
from tests.loopback import loopback_cluster

# Task names say what runs: answers of the vLLM model, games of its judge, difficulty scores.
GPU_TASKS = ("answers-tiny-", "judge-judge-", "score-difficulty-")


@pytest.fixture(scope="module")
def scheduler_file(tmp_path_factory):
    """A scheduler, a CPU worker and a worker declaring GPU=1, as on a GPU cluster, and one
    declaring another resource (SSD=1), so resources are split across workers."""
    worker = ["--nthreads", "1", "--name"]
    with loopback_cluster(
        tmp_path_factory.mktemp("cluster"),
        [*worker, "cpu"],
        [*worker, "gpu", "--resources", "GPU=1"],
        [*worker, "ssd", "--resources", "SSD=1"],
        expect=3,
    ) as path:
        yield path


def test_ingest_on_scheduler_file(scheduler_file, tmp_path, capsys):
    pool = tmp_path / "p.jsonl"
    pool.write_text('{"prompt": "one"}\n{"prompt": "two"}\n')
    out = tmp_path / "out"
    assert (
        main(["ingest", str(pool), "--out", str(out), "--scheduler-file", str(scheduler_file)]) == 0
    )
    err = capsys.readouterr().err
    assert "connected to scheduler file" in err
    # CPU work stays off the GPU worker, as the scheduler's own records show.
    assert "placement (scheduler task stream): cpu (no resources): 1 ingest\n" in err
    assert len(pd.read_parquet(out)) == 2


def test_gpu_tasks_reach_the_gpu_worker(scheduler_file, tmp_path, monkeypatch):
    """A task holding {"GPU": 1} runs only where a worker offers it; DASK_SCHEDULER_ADDRESS
    attaches a job as --scheduler-address does."""
    from dask.distributed import Client

    address = json.loads(scheduler_file.read_text())["address"]
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", address)
    with Client(address) as c:
        gpu = {a for a, w in c.scheduler_info()["workers"].items() if "GPU" in w["resources"]}
        futures = [c.submit(os.getpid, resources={"GPU": 1}, pure=False) for _ in range(4)]
        pids = c.run(os.getpid, workers=list(gpu))
        assert {f.result(timeout=60) for f in futures} == set(pids.values())
    pool = tmp_path / "p.jsonl"
    pool.write_text('{"prompt": "via env"}\n')
    assert main(["ingest", str(pool), "--out", str(tmp_path / "out")]) == 0
    assert pd.read_parquet(tmp_path / "out").messages[0][0]["content"] == "via env"


@pytest.mark.slow
def test_evalset_build_and_battle_place_every_model_task_on_the_gpu_worker(
    scheduler_file, tmp_path, capsys, tiny_llama
):
    """An eval-set build (vLLM difficulty judge) and a battle (vLLM answers and judge), run
    as batch jobs attached by scheduler file: the scheduler's task stream shows every
    generation, judging and scoring task on the GPU=1 worker and every other task off it.
    The subject is placement: the models are the session's tiny Llama on real vLLM."""
    from dask.distributed import Client, get_task_stream

    from core.submit import task_kind

    with open(REPO / "eval_sets" / "samples" / "arena_hard_v0.1.jsonl") as f:
        (tmp_path / "pool.jsonl").write_text("".join(next(f) for _ in range(24)))
    answers = REPO / "arena_models" / "rosters" / "answers" / "gpt-4-0314.jsonl"
    vllm = f"backend: vllm, path: '{tiny_llama}', enforce_eager: true, max_model_len: 2048"
    (tmp_path / "roster.yaml").write_text(
        "defaults:\n  sampling: {max_tokens: 8}\nmodels:\n"
        f"  - {{name: tiny, {vllm}, sampling: {{temperature: 0.0}}}}\n"
        f"  - {{name: gpt-4-0314, backend: recorded, path: '{answers}'}}\n"
    )
    # Same engine settings as the answering model: one engine serves all three uses.
    (tmp_path / "judges.yaml").write_text(
        "models:\n"
        f"  - {{name: judge, {vllm}, sampling: {{temperature: 0.0, max_tokens: 200}}}}\n"
        f"  - {{name: difficulty, {vllm}}}\n"
    )
    attach = ["--scheduler-file", str(scheduler_file), "--wait-workers", "30"]
    with Client(scheduler_file=str(scheduler_file)) as c, get_task_stream(client=c) as stream:
        workers = c.scheduler_info()["workers"]
        assert (
            main(
                [
                    "build-evalset",
                    "--pool",
                    str(tmp_path / "pool.jsonl"),
                    "--out",
                    str(tmp_path / "es"),
                ]
                + ["--clusters", "2", "--diverse-per-cluster", "2"]
                + ["--hard-candidates-per-cluster", "2", "--hard-top", "2"]
                + [
                    "--difficulty-judge",
                    "difficulty",
                    "--judge-roster",
                    str(tmp_path / "judges.yaml"),
                ]
                + attach
            )
            == 0
        )
        assert (
            main(
                ["battle", "--evalset", str(tmp_path / "es" / "mix"), "--out", str(tmp_path / "b")]
                + ["--roster", str(tmp_path / "roster.yaml"), "--judge", "judge"]
                + ["--judge-roster", str(tmp_path / "judges.yaml")]
                + attach
            )
            == 0
        )
    ran_on = {r["key"]: workers[r["worker"]]["name"] for r in stream.data}
    model_tasks = {k: w for k, w in ran_on.items() if str(k).startswith(GPU_TASKS)}
    assert {task_kind(k) for k in model_tasks} == {
        "answers-tiny",
        "judge-judge",
        "score-difficulty",
    }
    assert set(model_tasks.values()) == {"gpu"}, model_tasks
    cpu_tasks = {k: w for k, w in ran_on.items() if k not in model_tasks}
    # Recorded answers need no GPU: they stay off the GPU worker with the CPU stages.
    assert {"ingest", "embed", "answers-gpt-4-0314"} <= {task_kind(k) for k in cpu_tasks}
    assert set(cpu_tasks.values()) == {"cpu"}, cpu_tasks
    records = pd.read_parquet(tmp_path / "b" / "battles")
    assert len(records) > 0 and records.error.isna().all()
    # Each job says the same in its placement line.
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("placement")]
    shown = [dict(w.split(": ", 1) for w in x.split(": ", 1)[1].split("; ")) for x in lines]
    assert [sorted(s) for s in shown] == [["cpu (no resources)", "gpu (GPU=1)"]] * 2
    assert "score-difficulty" in shown[0]["gpu (GPU=1)"]
    assert "answers-tiny" in shown[1]["gpu (GPU=1)"]
    assert "answers-tiny" not in shown[1]["cpu (no resources)"]


def test_a_scheduler_without_workers_is_a_stated_wait_then_one_line(tmp_path, capsys):
    from dask.distributed import LocalCluster

    pool = tmp_path / "p.jsonl"
    pool.write_text('{"prompt": "one"}\n')
    with LocalCluster(n_workers=0, processes=False, dashboard_address=":0") as empty:
        started = time.monotonic()
        code = main(
            ["ingest", str(pool), "--out", str(tmp_path / "o")]
            + ["--scheduler-address", empty.scheduler_address, "--wait-workers", "1"]
        )
    assert code == 2 and time.monotonic() - started < 15
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == "waiting up to 1 s for a worker (--wait-workers)"
    assert len(err) == 2 and "no worker joined" in err[1] and "--wait-workers" in err[1]


def test_a_missing_resource_or_scheduler_file_is_one_line(scheduler_file, tmp_path, capsys, caplog):
    """GPU=2 is held by no worker of the loopback cluster: the wait names it and the flag
    that provides it. A scheduler file that never appears is waited for, then named."""
    from core.errors import UserError
    from jobs.cli import build_parser
    from jobs.cluster import connect

    pool = tmp_path / "p.jsonl"
    pool.write_text('{"prompt": "one"}\n')
    args = build_parser("ingest").parse_args(
        ["ingest", str(pool), "--out", str(tmp_path / "o")]
        + ["--scheduler-file", str(scheduler_file), "--wait-workers", "1"]
    )
    caplog.set_level(logging.INFO, logger="jobs.cluster")
    with pytest.raises(UserError, match=r"holds GPU=2 after 1 s .*--resources GPU=2"):
        with connect(args, {"GPU": 2.0}):
            pass
    assert "waiting up to 1 s for a worker holding GPU=2" in caplog.text
    # GPU=1 and SSD=1 are each held, but by two workers: no task needing both could run,
    # so the job does not pass its wait only to fail at its first submit.
    with pytest.raises(UserError, match=r"holds GPU=1,SSD=1 after 1 s"):
        with connect(args, {"GPU": 1.0, "SSD": 1.0}):
            pass
    assert "waiting up to 1 s for a worker holding GPU=1,SSD=1" in caplog.text
    missing = tmp_path / "nowhere.json"
    capsys.readouterr()  # the waits above, on a terminal an earlier job configured
    code = main(
        ["ingest", str(pool), "--out", str(tmp_path / "o")]
        + ["--scheduler-file", str(missing), "--wait-workers", "1"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == f"waiting up to 1 s for scheduler file {missing} (--wait-workers)"
    assert code == 2 and len(err) == 2 and f"scheduler file {missing} does not exist" in err[1]


def test_a_scheduler_killed_under_an_attached_job_is_one_line(tmp_path):
    """SIGKILL the scheduler while an attached battle's worker waits on an endpoint that
    never answers: the job ends in a bounded time with one line that says the scheduler
    was lost and how to resume, and no traceback."""
    import signal
    import socket
    import subprocess
    import sys
    import threading

    import psutil
    import pyarrow as pa

    from core.parquet_io import write_parquet_atomic
    from core.schemas import CONVERSATION, prompt_id

    endpoint, held = socket.create_server(("127.0.0.1", 0)), []
    threading.Thread(target=lambda: held.append(endpoint.accept()[0]), daemon=True).start()
    answers = REPO / "arena_models" / "rosters" / "answers" / "gpt-4-0314.jsonl"
    with open(answers) as f:  # prompts the recorded model answers
        turns = [[{"role": "user", "content": json.loads(next(f))["messages"][0]["content"]}]]
    write_parquet_atomic(
        pa.Table.from_pylist(
            [{"prompt_id": prompt_id(m), "messages": m} for m in turns], schema=CONVERSATION
        ),
        tmp_path / "evalset" / "part-0.parquet",
    )
    (tmp_path / "roster.yaml").write_text(
        "models:\n"
        f"  - {{name: silent, backend: openai, endpoint: "
        f"'http://127.0.0.1:{endpoint.getsockname()[1]}/v1', timeout: 600, max_wait: 600}}\n"
        f"  - {{name: recorded, backend: recorded, path: '{answers}', model: gpt-4-0314}}\n"
    )
    log = tmp_path / "job.log"
    with loopback_cluster(tmp_path, ["--nthreads", "1"], expect=1) as path:
        title = f"dask scheduler [{json.loads(path.read_text())['address']}]"  # its proctitle
        [scheduler] = [
            p for p in psutil.process_iter(["cmdline"]) if title in (p.info["cmdline"] or [""])[0]
        ]
        command = [sys.executable, "-m", "jobs.cli", "battle", "--scheduler-file", str(path)]
        command += ["--evalset", str(tmp_path / "evalset"), "--judge", "recorded"]
        command += ["--roster", str(tmp_path / "roster.yaml"), "--out", str(tmp_path / "out")]
        command += ["--wait-workers", "10"]  # also how long a lost scheduler is waited for
        job = subprocess.Popen(command, cwd=REPO, stdout=log.open("w"), stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120
            while not held:  # a worker runs the answers task
                assert job.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            scheduler.send_signal(signal.SIGKILL)
            code = job.wait(timeout=180)
        finally:
            if job.poll() is None:
                job.kill()
            endpoint.close()
    text = log.read_text()
    assert code == 2, text
    assert re.fullmatch(
        r"arena battle: error: lost the Dask scheduler at tcp://127.0.0.1:\d+ \(no answer for"
        r" \d+ s\); rerun the same command to resume",
        text.rstrip().splitlines()[-1],
    ), text
    assert "Traceback" not in text, text


def test_semantic_dedup_attached_by_scheduler_file(scheduler_file, shared_data, tmp_path, capsys):
    """`arena dedup --semantic` on conversations without vectors: the workers embed them,
    then the clusters pass and the exact pass drop the same planted rewordings."""
    lines = (shared_data / "prompts" / "alpaca_eval.jsonl").read_text().splitlines()[:120]
    texts = [json.loads(line)["instruction"] for line in lines]
    rows = texts + [t.rstrip(".?!") + " Thanks!" for t in texts[::6]]
    (tmp_path / "p.jsonl").write_text("".join(json.dumps({"prompt": t}) + "\n" for t in rows))
    attach = ["--scheduler-file", str(scheduler_file)]
    assert (
        main(["ingest", str(tmp_path / "p.jsonl"), "--out", str(tmp_path / "pool"), *attach]) == 0
    )
    dropped = {}
    for search in ("clusters", "exact"):
        out = tmp_path / search
        argv = ["dedup", "--semantic", str(tmp_path / "pool"), "--out", str(out)]
        argv += ["--search", search, "--rows-per-cluster", "20", *attach]
        assert main(argv) == 0
        printed = capsys.readouterr().out
        assert f"semantic dedup: {len(rows)} rows in" in printed and f"{out}/_dropped/" in printed
        dropped[search] = set(pd.read_parquet(out / "_dropped").prompt_id)
        assert len(pd.read_parquet(out)) + len(dropped[search]) == len(rows)
    assert len(dropped["exact"]) >= 15 and dropped["clusters"] == dropped["exact"]
