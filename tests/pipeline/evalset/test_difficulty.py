"""Difficulty scores: parsing, retries and the probability-weighted judge with real SmolLM2;
the stage's judge as a roster entry (checks before submission, a vLLM judge on a GPU worker)."""

import json

import pyarrow as pa
import pytest

from arena_models.backends.base import ChatBackend
from arena_models.backends.transformers_backend import TransformersBackend
from arena_models.difficulty import DifficultyScorer, parse_difficulty
from arena_models.roster import FIELDS, load_roster, make_backend, parse_entry
from core.errors import UserError
from core.parquet_io import write_parquet_atomic
from core.schemas import CONVERSATION, prompt_id
from pipeline.evalset.difficulty import PROBABILITY_BACKENDS, DifficultyConfig, ScoreDifficulty

MODEL = "builtin:smollm2-135m-instruct"


@pytest.mark.parametrize(
    "reply, score",
    [
        ("Difficulty: 7", 7.0),
        ("difficulty is 3/10.", 3.0),
        ("Difficulty = 10", 10.0),
        ("8", 8.0),
        ("Difficulty: 12", None),
        ("I think it is hard.", None),
        ("", None),
    ],
)
def test_parse(reply, score):
    assert parse_difficulty(reply) == score


@pytest.fixture(scope="module")
def smollm2():
    return TransformersBackend("builtin:smollm2-135m-instruct", batch_size=4)


@pytest.mark.slow
def test_expected_scores_from_real_judge(smollm2):
    scorer = DifficultyScorer(smollm2, mode="expected")
    results = scorer.score(
        ["Hi!", "Prove Fermat's last theorem for n = 3, then formalise it in Lean."]
    )
    for r in results:
        assert r.error is None and 0 <= r.score <= 10
        assert r.raw.startswith("0:")  # the judge's probability of every score is kept


@pytest.mark.slow
def test_generated_scores_retry_then_error_never_invent(smollm2, tmp_path):
    # A template that asks for no score at all: every reply must end as an error.
    template = tmp_path / "no_score.txt"
    template.write_text("Repeat this text back, word for word: {instruction}")
    scorer = DifficultyScorer(smollm2, template=template, retries=1, max_tokens=8, mode="generate")
    results = scorer.score(["The cat sat on the mat.", "Blue skies."])
    assert all(r.score is None and r.attempts == 2 and r.error for r in results)


def _entry(tmp_path, **fields):
    return parse_entry({"name": "j", **fields}, 1, tmp_path / "judges.yaml")


class _NoProbabilities(ChatBackend):
    name = "stub"

    def generate(self, conversations, sampling):
        raise AssertionError("not called")


def test_config_refuses_what_cannot_score_before_any_task(tmp_path):
    openai = _entry(tmp_path, backend="openai", endpoint="http://localhost:9/v1", model="m")
    recorded = next(s for s in load_roster("demo") if s.backend == "recorded")
    cases = [
        (dict(mode="mean"), "difficulty mode 'mean'"),
        (dict(judge=openai), "backend openai gives no token probabilities"),
        (dict(judge=recorded), "backend recorded gives no token probabilities"),
        (dict(template=str(tmp_path / "missing.txt")), "needs a file with {instruction}"),
    ]
    for kwargs, message in cases:
        with pytest.raises(UserError, match=message) as err:
            DifficultyConfig(**kwargs)
        assert "\n" not in str(err.value)
    assert DifficultyConfig(judge=openai, mode="generate").judge is openai
    with pytest.raises(UserError, match="difficulty mode"):
        DifficultyScorer(_NoProbabilities(), mode="mean")
    with pytest.raises(UserError, match="stub: this backend gives no token probabilities"):
        DifficultyScorer(_NoProbabilities(), mode="expected")


def test_probability_backends_are_those_with_the_method(tmp_path):
    specs = {
        "transformers": _entry(tmp_path, backend="transformers", path=MODEL),
        "vllm": _entry(tmp_path, backend="vllm", path=MODEL),
        "openai": _entry(tmp_path, backend="openai", endpoint="http://localhost:9/v1", model="m"),
        "recorded": next(s for s in load_roster("demo") if s.backend == "recorded"),
    }
    assert set(specs) == set(FIELDS)
    for backend, spec in specs.items():
        has = hasattr(make_backend(spec), "continuation_probabilities")
        assert has == (backend in PROBABILITY_BACKENDS), backend


def test_stage_holds_the_judges_resources_and_a_json_config(tmp_path):
    default = ScoreDifficulty(tmp_path, tmp_path / "a")
    assert default.config.judge.name == "smollm2-difficulty" and default.resources == {}
    # Exactly the scorer of the Hard sets built before (the default stays byte-identical).
    assert default.config.judge.options == {"path": MODEL, "dtype": "float32", "batch_size": 8}
    vllm = load_roster("judges")
    vllm = next(s for s in vllm if s.name == "smollm2-difficulty-vllm")
    stage = ScoreDifficulty(tmp_path, tmp_path / "b", DifficultyConfig(judge=vllm))
    assert stage.resources == {"GPU": 1.0}
    assert json.loads(json.dumps(stage.config_dict()))["judge"]["backend"] == "vllm"
    assert stage.config_hash != default.config_hash


def _candidates(folder, texts, per_part=2):
    for start in range(0, len(texts), per_part):
        rows = [[{"role": "user", "content": t}] for t in texts[start : start + per_part]]
        columns = {name: [None] * len(rows) for name in CONVERSATION.names}
        columns.update(prompt_id=[prompt_id(m) for m in rows], messages=rows)
        table = pa.table(columns, schema=CONVERSATION)
        write_parquet_atomic(table, folder / f"part-{start // per_part:05d}.parquet")


def _engines() -> int:
    from core.worker_cache import VLLM_ENGINE, loaded

    return len(loaded(VLLM_ENGINE))


@pytest.mark.slow
def test_vllm_judge_scores_on_a_gpu_worker_like_transformers(gpu_worker, tmp_path):
    import pandas as pd

    from core.runner import run_stage

    texts = ["Hi!", "Name a colour.", "Prove that sqrt(2) is irrational.", "Sort a list in C."]
    _candidates(tmp_path / "candidates", texts)
    # Eager, short context: a fast engine start (the packaged entry compiles).
    judge = _entry(
        tmp_path, backend="vllm", path=MODEL, dtype="float32", enforce_eager=True, max_model_len=512
    )
    stage = ScoreDifficulty(tmp_path / "candidates", tmp_path / "scored", DifficultyConfig(judge))
    with gpu_worker() as client:
        manifest = run_stage(stage, client, progress=False)
        engines = client.run(_engines)
    assert manifest["parts"] == 2 and manifest["rows_rejected"] == 0
    assert list(engines.values()) == [1]  # one engine on the worker for both tasks
    scored = pd.read_parquet(tmp_path / "scored").sort_values("prompt_id")
    float32 = TransformersBackend(MODEL, dtype="float32", batch_size=8)
    want = {
        prompt_id([{"role": "user", "content": t}]): r.score
        for t, r in zip(texts, DifficultyScorer(float32, mode="expected").score(texts))
    }
    for row in scored.itertuples():
        assert pd.isna(row.difficulty_error) and row.difficulty_reply.startswith("0:")
        assert abs(row.difficulty - want[row.prompt_id]) < 0.01
