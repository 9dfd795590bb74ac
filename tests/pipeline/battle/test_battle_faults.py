"""Battles against a faulty OpenAI-compatible endpoint: a real HTTP server on loopback that
answers every model and the judge, and is scripted (seeded, by request content) to fail
20% of requests with 500 and stall 10% past the client's timeout. A flaky run must end
with every answer and the same outputs as a run against the healthy server; a judge that
never gives a readable verdict must make `arena battle` exit non-zero with the reason."""

from __future__ import annotations

import hashlib
import http.server
import json
import random
import threading
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.parquet_io import write_parquet_atomic
from core.schemas import CONVERSATION, prompt_id
from jobs.cli import main
from pipeline.battle.config import BattleConfig
from pipeline.flows.battle import prepare_battle, run_battles

REPO = Path(__file__).resolve().parents[3]
SAMPLES = REPO / "eval_sets" / "samples" / "arena_hard_v0.1.jsonl"
SEED = 7
TIMEOUT_S = 0.5  # the roster's client timeout; a stall outlasts it
STALL_S = 1.5
MAX_FAULTS_IN_A_ROW = 3  # below the roster's 4 retries, so the test is bounded by design


class Endpoint:
    """One OpenAI-compatible server for every roster entry; `mode` is healthy, flaky,
    garbage (the judge's replies are not verdicts) or judge-down (the judge's requests get 500). Replies depend on the request's
    model and messages only, so healthy and flaky runs must give the same outputs."""

    def __init__(self):
        self.mode = "healthy"
        self.lock = threading.Lock()
        self.seen: Counter = Counter()  # request content -> times asked
        self.streak: Counter = Counter()  # request content -> faults in a row
        self.injected: Counter = Counter()  # "500" / "stall" / "200"

    def fault(self, key: str) -> str | None:
        with self.lock:
            self.seen[key] += 1
            if self.mode != "flaky" or self.streak[key] >= MAX_FAULTS_IN_A_ROW:
                self.streak[key] = 0
                return None
            draw = random.Random(f"{SEED}:{key}:{self.seen[key]}").random()
            fault = "500" if draw < 0.2 else "stall" if draw < 0.3 else None
            self.streak[key] = self.streak[key] + 1 if fault else 0
            self.injected[fault or "200"] += 1
            return fault

    def reply(self, body: dict, key: str) -> str:
        digest = hashlib.sha256(key.encode()).digest()
        if "response_format" not in body:  # a model's answer
            return f"{body['model']} answers {digest.hex()[:12]}"
        if self.mode == "garbage":
            return "Both answers have merit; I cannot choose."
        verdict = {"score_a": 1 + digest[0] % 10, "score_b": 1 + digest[1] % 10}
        return json.dumps({**verdict, "explanation": "scored by the test server"})


@pytest.fixture(scope="module")
def endpoint():
    state = Endpoint()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            key = json.dumps([body["model"], body["messages"]], sort_keys=True)
            fault = state.fault(key)
            if state.mode == "judge-down" and "response_format" in body:
                fault = "500"
            if fault == "stall":
                time.sleep(STALL_S)
            status = 500 if fault == "500" else 200
            payload = {
                "choices": [
                    {"message": {"content": state.reply(body, key)}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 5, "completion_tokens": 3},
            }
            data = json.dumps(payload if status == 200 else {"error": "injected"}).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client timed out and left

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", state
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def arena(tmp_path_factory, endpoint):
    """Six Arena-Hard prompts; three models and a judge, all served by the endpoint."""
    root = tmp_path_factory.mktemp("faults")
    rows = []
    for line, text in enumerate(SAMPLES.read_text().splitlines()[:6]):
        messages = [{"role": "user", "content": json.loads(text)["prompt"]}]
        rows.append(
            {
                "prompt_id": prompt_id(messages),
                "messages": messages,
                "source": "ah",
                "source_id": None,
                "source_file": "ah",
                "source_line": line,
                "metadata": "{}",
            }
        )
    write_parquet_atomic(
        pa.Table.from_pylist(rows, CONVERSATION), root / "evalset" / "part-0.parquet"
    )
    url, _ = endpoint
    entry = f"backend: openai, endpoint: '{url}', timeout: {TIMEOUT_S}, retries: 4, concurrency: 4"
    (root / "roster.yaml").write_text(
        "defaults:\n  sampling: {max_tokens: 16}\nmodels:\n"
        + "".join(f"  - {{name: {m}, model: {m}, {entry}}}\n" for m in ("alpha", "beta", "gamma"))
    )
    (root / "judges.yaml").write_text(f"models:\n  - {{name: judge, model: judge, {entry}}}\n")
    return root


def battle(client, arena: Path, out: Path) -> dict:
    setup = prepare_battle(
        arena / "roster.yaml",
        BattleConfig(judge_chunk=6, answer_chunk=3),
        judge="judge",
        judge_roster=arena / "judges.yaml",
    )
    return run_battles(client, setup, arena / "evalset", out, progress=False)


def outputs(out: Path) -> dict[str, list]:
    """Records and pairs in order; the caches as sets of rows: part names are times, and a
    task Dask ran twice (a lost worker connection under load) appends a key twice."""
    tables = {name: pq.read_table(out / name).to_pylist() for name in ("battles", "combined")}
    for cache in ("answers", "verdicts"):
        rows = pq.read_table(out / "_cache" / cache).to_pylist()
        tables[cache] = sorted({json.dumps(r, sort_keys=True) for r in rows})
    return tables


def test_a_flaky_endpoint_is_retried_to_the_healthy_outputs(client, arena, endpoint, tmp_path):
    _, state = endpoint
    state.mode = "healthy"
    healthy = battle(client, arena, tmp_path / "healthy")
    state.mode = "flaky"
    flaky = battle(client, arena, tmp_path / "flaky")
    state.mode = "healthy"
    assert state.injected["500"] >= 5 and state.injected["stall"] >= 3, state.injected
    for summary in (healthy, flaky):
        assert summary["no_verdict"] is None
        assert all(a["failed"] == 0 and a["generated"] == 6 for a in summary["answers"].values())
        assert summary["games_judged_now"] == 6 * 3 * 2 and summary["judge_errors"] == 0
    got, want = outputs(tmp_path / "flaky"), outputs(tmp_path / "healthy")
    for name in want:
        extra = [r for r in got[name] if r not in want[name]]
        lacking = [r for r in want[name] if r not in got[name]]
        assert got[name] == want[name], (name, extra[:2], lacking[:2])


def test_a_judge_without_one_verdict_fails_the_run(client, arena, endpoint, tmp_path, capsys):
    _, state = endpoint
    state.mode = "garbage"
    try:
        code = main(
            [
                "battle",
                "--roster",
                str(arena / "roster.yaml"),
                "--judge-roster",
                str(arena / "judges.yaml"),
                "--judge",
                "judge",
                "--evalset",
                str(arena / "evalset"),
                "--out",
                str(tmp_path / "out"),
                "--judge-retries",
                "0",
                "--scheduler-address",
                client.scheduler.address,
            ]  # fmt: skip
        )
    finally:
        state.mode = "healthy"
    assert code == 1
    reason = "judge reply is not a JSON verdict with score_a, score_b 1-10 (1 attempts)"
    assert f"arena battle: no verdict: all 36 games failed: {reason} (36 of 36)" in (
        capsys.readouterr().err.splitlines()
    )
    records = pq.read_table(tmp_path / "out" / "battles").to_pylist()  # kept for inspection
    assert len(records) == 36 and all(r["winner"] is None and r["error"] for r in records)
    assert "**no verdict: all 36 games failed" in (tmp_path / "out" / "summary.md").read_text()


def test_a_judge_that_never_answered_is_asked_again(client, arena, endpoint, tmp_path, capsys):
    """The judge's endpoint down: `arena battle` and `arena judge-eval` exit non-zero with
    the reason; once it is back, the same commands judge those games, none reused. (No
    retries, so the 500s are quick; no stalls, so a long timeout never fires.)"""
    url, state = endpoint
    judges = tmp_path / "judges.yaml"
    judges.write_text(
        f"models:\n  - {{name: judge, model: judge, backend: openai, endpoint: '{url}',"
        f" timeout: 10, retries: 0}}\n"
    )
    pair = {"prompt": "Say hi", "model_x": "m1", "answer_x": "hi", "model_y": "m2"}
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(
        "".join(
            json.dumps(
                {**pair, "pair_id": f"p{i}", "answer_y": f"hello {i}", "crowd_votes": {"x": 2}}
            )
            + "\n"
            for i in range(3)
        )
    )
    judge = ["--judge-roster", str(judges), "--judge", "judge"]
    cluster = ["--scheduler-address", client.scheduler.address]
    battle = ["battle", "--roster", str(arena / "roster.yaml"), "--evalset", str(arena / "evalset")]
    battle += ["--out", str(tmp_path / "battle"), *judge, *cluster]
    judge_eval = ["judge-eval", str(pairs), "--out", str(tmp_path / "eval"), *judge, *cluster]
    state.mode = "judge-down"
    try:
        assert main(battle) == 1
        assert main(judge_eval) == 2
    finally:
        state.mode = "healthy"
    err = capsys.readouterr().err
    assert "arena battle: no verdict: all 36 games failed: judge backend failed" in err
    assert "judge judge gave no verdict in any of 6 games: judge backend failed" in err
    assert main(battle) == 0 and main(judge_eval) == 0
    summary = json.loads((tmp_path / "battle" / "summary.json").read_text())
    assert summary["games_judged_now"] == 36 and summary["judge_errors"] == 0
    run = json.loads((tmp_path / "eval" / "judge_eval.json").read_text())["run"]
    assert (run["judged_now"], run["from_cache"], run["errors_now"]) == (6, 0, 0)


def test_a_flywheel_battle_without_a_verdict_is_not_done(client, arena, endpoint, tmp_path):
    """A flywheel's slice battle whose every game failed raises, is not recorded as done,
    and runs again (here, judged) on the next try."""
    from arena_models.roster import load_roster
    from core.errors import UserError
    from pipeline.flows.flywheel import FlywheelSetup, _step, battle_on_slice
    from pipeline.flywheel.config import FlywheelConfig
    from pipeline.flywheel.state import FlywheelState

    url, state = endpoint
    alpha, beta, gamma = load_roster(arena / "roster.yaml")
    judges = tmp_path / "judges.yaml"
    judges.write_text(
        f"models:\n  - {{name: judge, model: judge, backend: openai, endpoint: '{url}',"
        " timeout: 10, retries: 0}\n"
    )
    [judge] = load_roster(judges)
    config = FlywheelConfig(target="alpha", roster=str(arena / "roster.yaml"))
    setup = FlywheelSetup(config, 1, alpha, [beta, gamma], judge, {})
    flywheel = FlywheelState.open(tmp_path / "fw", {"test": 1})

    def step():
        work = lambda: battle_on_slice(  # noqa: E731
            client, setup, alpha, arena / "evalset", tmp_path / "run", tmp_path / "cache"
        )
        return _step(flywheel, 1, "sft.battle", work, say=lambda line: None)

    state.mode = "judge-down"
    try:
        with pytest.raises(UserError, match="no verdict: all 24 games failed: judge backend"):
            step()
    finally:
        state.mode = "healthy"
    assert flywheel.done(1, "sft.battle") is None
    assert step()["judge_errors"] == 0 and flywheel.done(1, "sft.battle")["games"] == 24
