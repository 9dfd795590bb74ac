"""`arena judge-eval` end to end with a vLLM judge on a GPU=1 worker, on six real labelled
pairs: the report files, counts that add up, and a rerun that judges nothing because
every game is cached. The subject is the run, not what the judge says, so the judge is
the session's tiny Llama (tests/tiny_model.py) under the name of the packaged judge,
with the main job's engine settings (eager, 2048 tokens); its verdicts are noise in the
enforced format. What SmolLM2 says as a judge is tested in tests/arena_models."""

import json

import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipeline.flows.judge_eval import (
    JudgeEvalConfig,
    agreement_line,
    judge_eval_report,
    prepare_judge_eval,
    run_judge_eval,
)

pytestmark = pytest.mark.slow
FLIP = {"x": "y", "y": "x", "tie": "tie"}


def test_a_judge_on_six_pairs_then_a_rerun_from_the_cache(
    gpu_worker, shared_data, tmp_path, tiny_llama
):
    path = shared_data / "judging" / "llmfao_pairs_dev.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    recorded = tmp_path / "contrarian.jsonl"  # GPT-4's verdicts reversed: a second recorded row
    recorded.write_text(
        "".join(
            json.dumps({"pair_id": r["pair_id"], "verdict": FLIP[r["gpt4_verdict"]]}) + "\n"
            for r in rows
        )
    )
    (tmp_path / "judges.yaml").write_text(
        f"models:\n  - {{name: smollm2-judge, backend: vllm, path: '{tiny_llama}',"
        " enforce_eager: true, max_model_len: 2048,"
        " sampling: {temperature: 0.0, max_tokens: 128, seed: 0}}\n"
    )
    options = dict(
        max_answer_chars=300, judge_retries=1, judge_chunk=4, recorded=(str(recorded),),
        judge_roster=str(tmp_path / "judges.yaml"),
    )  # fmt: skip
    setup = prepare_judge_eval(path, JudgeEvalConfig(limit=6, **options))
    out = tmp_path / "out"
    with gpu_worker() as client:
        first = run_judge_eval(client, setup, out, progress=False)
        again = run_judge_eval(client, setup, out, progress=False)
        grown = run_judge_eval(
            client,
            prepare_judge_eval(path, JudgeEvalConfig(limit=7, **options)),
            out,
            progress=False,
        )

    for name in ("report.md", "judge_eval.json", "verdicts.parquet", "agreement.png"):
        assert (out / name).stat().st_size > 0
    assert first["pairs"] == 6 and first["run"]["games"] == 12
    assert first["run"]["judged_now"] == 12 and first["run"]["from_cache"] == 0
    assert again["run"]["judged_now"] == 0 and again["run"]["from_cache"] == 12
    assert again["rows"] == first["rows"]
    assert grown["run"]["judged_now"] == 2 and grown["run"]["from_cache"] == 12  # one new pair

    names = [(r["name"], r["scores"], r["rule"]) for r in first["rows"]]
    assert names == [
        ("smollm2-judge", "discrete", "total"),
        ("smollm2-judge", "discrete", "consistent"),
        ("smollm2-judge", "expected", "total"),
        ("smollm2-judge", "expected", "consistent"),
        ("gpt-4 (recorded)", "recorded", None),
        ("contrarian (recorded)", "recorded", None),
    ]
    assert first["people"]["pairs"] == 6 and first["people"]["no_verdict"] == 0
    for row in first["rows"]:
        assert row["pairs"] == 6 == row["with_verdict"] + row["no_verdict"]
        assert row["n_without_ties"] <= row["n_with_ties"] == row["with_verdict"]
    for row in first["rows"][:4]:
        assert row["games"] == 12 and row["no_verdict"] <= row["parse_errors"] <= 12
        assert row["n_consistency"] == 6 - row["no_verdict"]
    gpt4, contrarian = first["rows"][4:]
    assert gpt4["n_without_ties"] == contrarian["n_without_ties"]
    if gpt4["n_without_ties"]:  # a reversed judge agrees exactly where GPT-4 does not
        assert gpt4["agreement_without_ties"] + contrarian["agreement_without_ties"] == 1
    assert first["recorded"][1]["unmatched"] == 653 - 6

    # Reloaded after the third run (7 pairs), so: 14 games, both orders of every pair.
    games = pd.read_parquet(out / "verdicts.parquet")
    assert len(games) == 14 and games.groupby("pair_id").size().eq(2).all()
    by_id = {str(r["pair_id"]): r for r in rows}
    for g in games.itertuples():
        pair = by_id[g.pair_id]
        assert (g.game, g.shown_a) in ((1, "x"), (2, "y"))
        assert g.model_a == pair["model_x" if g.shown_a == "x" else "model_y"]
        shown = (g.score_x, g.score_y) if g.shown_a == "x" else (g.score_y, g.score_x)
        assert pd.isna(g.score_a) or (g.score_a, g.score_b) == shown
        assert pd.isna(g.error) == pd.notna(g.score_a)
    cached = sum(pq.ParquetFile(p).metadata.num_rows for p in (out / "_games").rglob("*.parquet"))
    assert cached == 14  # no game twice, however often it ran

    saved = json.loads((out / "judge_eval.json").read_text())
    assert saved["pairs"] == 7 and saved["rows"][0]["games"] == 14
    report = (out / "report.md").read_text()
    assert "| judge | scores | rule |" in report and "## Definitions" in report
    assert "arena judge-eval" in report and "--limit 7" in report
    line = agreement_line(first)
    assert line.startswith("judge smollm2-judge agrees with people on ")
    assert "of 6 labelled pairs, ties counted (GPT-4, recorded: " in line
    assert f"of the {first['rows'][0]['n_without_ties']} where both pick a winner" in line
    assert judge_eval_report(first, out).splitlines()[0] == line
