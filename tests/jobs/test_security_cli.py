"""`arena battle` with an API key: every file it writes and everything it prints is
searched for the key (the server: tests/keyed_server.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.parquet_io import write_parquet_atomic
from core.schemas import CONVERSATION, prompt_id
from jobs.cli import main
from tests.keyed_server import ENV, KEY, LEAK, absent, serving_with_key


@pytest.fixture
def keyed_server():
    with serving_with_key() as served:
        yield served


def _decoded(path: Path) -> str:
    """A file's text for the search: Parquet rows and metadata decoded, else its bytes."""
    raw = path.read_bytes().decode("latin-1")
    if path.suffix == ".parquet":
        table = pq.read_table(path)
        metadata = {
            k.decode("latin-1"): v.decode("latin-1")
            for k, v in (table.schema.metadata or {}).items()
        }
        return raw + json.dumps(table.to_pylist(), default=str) + json.dumps(metadata)
    return raw


def test_a_battle_with_a_key_writes_it_nowhere(
    keyed_server, shared_data, tmp_path, monkeypatch, capfd
):
    """`arena battle` (embedded LocalCluster) with a hosted model and a hosted judge that need
    the key, one prompt the server answers with a 401 echoing the key: every file under the
    output folder and the cache, and everything printed, is searched for the key."""
    url, seen = keyed_server
    cache = tmp_path / "arena-cache"
    monkeypatch.setenv("ARENA_CACHE", str(cache))
    monkeypatch.setenv(ENV, KEY)
    rows = []
    with open(shared_data / "prompts" / "arena_hard_v0.1.jsonl") as f:
        prompts = [json.loads(next(f))["prompt"] for _ in range(2)]
    prompts[1] += f" {LEAK}"  # no recorded answer for it: answerable_only stays off
    for line, prompt in enumerate(prompts):
        messages = [{"role": "user", "content": prompt}]
        rows.append(
            {
                "prompt_id": prompt_id(messages), "messages": messages, "source": "ah",
                "source_id": None, "source_file": "ah", "source_line": line, "metadata": "{}",
            }
        )  # fmt: skip
    write_parquet_atomic(
        pa.Table.from_pylist(rows, CONVERSATION), tmp_path / "evalset" / "part-0.parquet"
    )
    answers = shared_data / "answers" / "arena-hard-v0.1" / "gpt-4-0314.jsonl"
    hosted = f"backend: openai, endpoint: '{url}', api_key_env: {ENV}, retries: 0"
    (tmp_path / "roster.yaml").write_text(
        "models:\n"
        f"  - {{name: hosted, {hosted}}}\n"
        f"  - {{name: gpt-4-0314, backend: recorded, path: '{answers}'}}\n"
    )
    (tmp_path / "judges.yaml").write_text(f"models:\n  - {{name: judge, {hosted}}}\n")
    out = tmp_path / "out"
    code = main(
        [
            "battle", "--roster", str(tmp_path / "roster.yaml"), "--evalset", str(tmp_path / "evalset"),
            "--out", str(out), "--judge", "judge", "--judge-roster", str(tmp_path / "judges.yaml"),
            "--no-answerable-only", "--judge-retries", "0", "--workers", "1",
        ]
    )  # fmt: skip
    printed = capfd.readouterr()
    assert code == 0, printed.err[-2000:]
    assert seen.authorized >= 3 and seen.refused >= 1  # the key was used, and a 401 echoed it
    files = [p for root in (out, cache) for p in root.rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" for p in files)
    everything = ""
    for path in files:
        text = _decoded(path)
        absent(text, str(path))
        everything += text
    assert "HTTP 401" in everything  # the echoing error was recorded, redacted
    absent(printed.out, "stdout")
    absent(printed.err, "stderr")
