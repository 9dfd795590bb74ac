"""Answer and verdict caches: append-only parts, key index, newest row wins, safe for
several Dask workers writing at once, and half-written files never read."""

from __future__ import annotations

import pyarrow as pa
import pytest

from arena_models.cache import ANSWER, VERDICT, AnswerCache, VerdictCache, folder_name
from arena_models.judge import BACKEND_FAILED


def _answers(model: str, ids: list[str], key: str = "s1", text: str = "hi") -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "model": model,
                "prompt_id": p,
                "sampling_key": key,
                "answers": [f"{text} {p}"],
                "finish_reasons": ["stop"],
                "prompt_tokens": 3,
                "completion_tokens": 2,
            }
            for p in ids
        ],
        ANSWER,
    )


def _verdict(game: int, error: str | None, score: float | None) -> dict:
    return {
        "judge": "j",
        "judge_key": "k",
        "prompt_id": "p1",
        "model_a": "a",
        "model_b": "b",
        "game": game,
        "answers_key": "ak",
        "score_a": score,
        "score_b": score,
        "error": error,
        "explanation": "",
        "raw": "",
        "attempts": 1,
        "prompt_tokens": 1,
        "completion_tokens": 1,
    }


def test_answers_by_model_and_sampling_key(tmp_path):
    cache = AnswerCache(tmp_path)
    assert cache.keys("m/1", "s1") == set()
    cache.model("m/1").append(_answers("m/1", ["p1", "p2"]))
    cache.model("m/1").append(_answers("m/1", ["p3"], key="s2"))
    assert cache.model("m/1").append(_answers("m/1", [])) is None
    assert cache.keys("m/1", "s1") == {"p1", "p2"}
    assert cache.keys("m/1", "s2") == {"p3"}
    assert cache.keys("other", "s1") == set()
    found = cache.lookup("m/1", "s1", ["p2", "p3"])
    assert list(found) == ["p2"] and found["p2"]["answers"] == ["hi p2"]
    # Model names become safe, distinct folder names.
    assert "/" not in folder_name("m/1") and folder_name("m/1") != folder_name("m_1")


def test_newest_copy_of_a_key_wins_and_failed_verdicts_can_be_rejudged(tmp_path):
    cache = VerdictCache(tmp_path)
    part = cache.judge("j")
    part.append(
        pa.Table.from_pylist([_verdict(1, "no scores", None), _verdict(2, None, 5)], VERDICT)
    )
    assert cache.keys("j", "k") == {("p1", "a", "b", 1, "ak"), ("p1", "a", "b", 2, "ak")}
    assert cache.keys("j", "k", rejudge_errors=True) == {("p1", "a", "b", 2, "ak")}
    part.append(pa.Table.from_pylist([_verdict(1, None, 8)], VERDICT))
    rows = {r["game"]: r for r in cache.read("j", "k", ["p1"]).to_pylist()}
    assert len(rows) == 2 and rows[1]["error"] is None and rows[1]["score_a"] == 8
    assert cache.read("j", "other-key").num_rows == 0
    assert cache.keys("j", "k", rejudge_errors=True) == {
        ("p1", "a", "b", 1, "ak"),
        ("p1", "a", "b", 2, "ak"),
    }


def test_a_game_the_judge_never_answered_is_asked_again(tmp_path):
    """An endpoint down is no verdict: a rerun judges the game again without being told,
    while an unreadable reply (the judge's own answer) is reused unless --rejudge-errors."""
    cache = VerdictCache(tmp_path)
    down = f"{BACKEND_FAILED}: judge: ConnectError (after 3 attempts)"
    cache.judge("j").append(
        pa.Table.from_pylist([_verdict(1, down, None), _verdict(2, "no scores", None)], VERDICT)
    )
    assert cache.keys("j", "k") == {("p1", "a", "b", 2, "ak")}
    assert cache.keys("j", "k", rejudge_errors=True) == set()


def test_a_half_written_part_is_never_read(tmp_path):
    cache = AnswerCache(tmp_path)
    cache.model("m").append(_answers("m", ["p1"]))
    folder = cache.model("m").folder
    (folder / ".part-x.parquet.tmp-1234abcd").write_bytes(b"PAR1 truncated")
    assert cache.keys("m", "s1") == {"p1"}
    cache.model("m").clean()
    assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == []


def _write_chunk(root: str, worker: int) -> str:
    from arena_models.cache import AnswerCache

    ids = [f"w{worker}-p{i}" for i in range(50)]
    for start in range(0, 50, 10):  # five parts per writer, interleaved with the other
        AnswerCache(root).model("shared").append(_answers("shared", ids[start : start + 10]))
    return root


@pytest.mark.slow
def test_dask_workers_append_to_one_cache_at_once(tmp_path, client):
    futures = client.map(_write_chunk, [str(tmp_path)] * 4, range(4), pure=False)
    client.gather(futures)
    cache = AnswerCache(tmp_path)
    assert len(cache.model("shared").parts()) == 20
    assert cache.keys("shared", "s1") == {f"w{w}-p{i}" for w in range(4) for i in range(50)}
    assert cache.model("shared").read().num_rows == 200
