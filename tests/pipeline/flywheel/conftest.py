"""Hand-built battle runs for the selection tests: real Arena-Hard prompts and real recorded
GPT answers, written through the real answer cache and the real battle record writers, with
the judge's scores chosen by the test."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pyarrow as pa
import pytest

from arena_models.cache import ANSWER, VERDICT, AnswerCache
from core.schemas import prompt_id, short_hash
from pipeline.battle.judging import answers_key
from pipeline.battle.prompts import PROMPTS, write_prompts
from pipeline.battle.records import battle_records, combined_pairs, write_table

REPO = Path(__file__).resolve().parents[3]
RECORDED = REPO / "arena_models" / "rosters" / "answers"
ARENA_HARD = REPO / "eval_sets" / "samples" / "arena_hard_v0.1.jsonl"
TARGET = "gpt-3.5-turbo-0125"
OPPONENTS = ("gpt-4-0314", "gpt-4-0613")


@cache
def arena_hard() -> list[tuple[str, str]]:
    """(uid, prompt text) of every Arena-Hard v0.1 prompt, in file order."""
    with open(ARENA_HARD, encoding="utf-8") as f:
        return [(r["uid"], r["prompt"]) for r in map(json.loads, f)]


@cache
def recorded(model: str) -> dict[str, str]:
    """uid -> the model's recorded answer text."""
    with open(RECORDED / f"{model}.jsonl", encoding="utf-8") as f:
        rows = list(map(json.loads, f))
    return {r["uid"]: r["messages"][1]["content"]["answer"] for r in rows}


def sampling_key(model: str) -> str:
    return short_hash(f"key\x00{model}", 8)


class RunBuilder:
    """A battle run folder, as pipeline/battle/run.py lays it out. Add prompts, answers
    and both games' scores of pairs, then `write()`."""

    def __init__(self, root: Path, models=(TARGET, *OPPONENTS), judge="smollm2-judge"):
        self.root, self.models, self.judge = Path(root), tuple(models), judge
        self.cache = self.root / "_cache"
        self.prompts: dict[str, list[dict]] = {}
        self.answers: list[dict] = []
        self.games: list[dict] = []
        self.verdicts: list[dict] = []

    def prompt(self, *turns: str) -> str:
        """A prompt of consecutive user turns; returns its prompt_id."""
        messages = [{"role": "user", "content": t} for t in turns]
        self.prompts[prompt_id(messages)] = messages
        return prompt_id(messages)

    def answer(self, model: str, pid: str, *texts: str, finish: tuple[str, ...] = ()):
        self.answers.append(
            {
                "model": model,
                "prompt_id": pid,
                "sampling_key": sampling_key(model),
                "answers": list(texts),
                "finish_reasons": list(finish) or ["stop"] * len(texts),
                "prompt_tokens": 0,
                "completion_tokens": 0,
            }
        )

    def pair(self, pid: str, x: str, y: str, x_scores=(5, 5), y_scores=(5, 5), error=None):
        """Both games of x vs y: each model's score in game 1 and game 2 (None: `error`)."""
        (a, sa), (b, sb) = sorted([(x, x_scores), (y, y_scores)])
        for game in (1, 2):
            key = answers_key(sampling_key(a), sampling_key(b))
            self.games.append(
                {"prompt_id": pid, "model_a": a, "model_b": b, "game": game, "answers_key": key}
            )
            failed = error is not None and game == 2
            self.verdicts.append(
                {
                    "judge": self.judge,
                    "judge_key": "jk",
                    "prompt_id": pid,
                    "model_a": a,
                    "model_b": b,
                    "game": game,
                    "answers_key": key,
                    "score_a": None if failed else sa[game - 1],
                    "score_b": None if failed else sb[game - 1],
                    "error": error if failed else None,
                    "explanation": "chosen by the test",
                    "raw": "",
                    "constraint": "regex",
                    "finish_reason": "stop",
                    "attempts": 1,
                    "prompt_tokens": 0,
                    "completion_tokens": 0,
                }
            )

    def write(self, combine: str = "total") -> Path:
        ids = sorted(self.prompts)
        write_prompts(
            pa.table({"prompt_id": ids, "messages": [self.prompts[i] for i in ids]}, PROMPTS),
            self.root / "_work" / "prompts.parquet",
        )
        answers = AnswerCache(self.cache)
        for model in self.models:
            mine = [r for r in self.answers if r["model"] == model]
            answers.model(model).append(pa.Table.from_pylist(mine, ANSWER))
        (self.cache / "answers").mkdir(parents=True, exist_ok=True)
        records = battle_records(
            self.games, pa.Table.from_pylist(self.verdicts, VERDICT), self.judge
        )
        manifest = {
            "judge": self.judge,
            "judge_key": "jk",
            "models": list(self.models),
            "answer_keys": {m: sampling_key(m) for m in self.models},
            "cache": str(self.cache.resolve()),
            "config": {"schedule": "target", "target": self.models[0], "combine": combine},
        }
        write_table(records, self.root / "battles", manifest)
        write_table(combined_pairs(records, combine), self.root / "combined", manifest)
        return self.root


@pytest.fixture
def run_builder(tmp_path):
    """run_builder(name) -> a RunBuilder for a run folder tmp_path/name."""
    return lambda name="run", **kw: RunBuilder(tmp_path / name, **kw)
