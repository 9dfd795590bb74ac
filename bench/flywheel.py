"""Flywheel benchmark: training throughput of each trl trainer, and the rating change of
one SFT iteration, judged by a different judge than the one that selected its data.

Run: .venv/bin/python -m bench.flywheel [--steps 300] [--throughput-steps 8]
     [--prompts 200] [--rate-prompts 100] [--rater-roster judges --rater NAME]
     [--device auto] [--out runs/bench_flywheel] [--skip-iteration]

1. Throughput: SFT, DPO and reward shards made from real recorded answers (GPT-4-0314
   chosen over GPT-3.5-turbo-0125 on Arena-Hard prompts), each trained for
   --throughput-steps trl steps on SmolLM2-135M-Instruct; the baseline, in the same
   run, is a plain torch loop (AdamW, forward and backward of the same causal LM on the
   same SFT token batches), so the ratio is what trl's machinery costs.
2. Iteration: `arena flywheel` with stage sft only, --steps SFT steps, the target
   SmolLM2 against the recorded GPT-4 and GPT-3.5 answers, the data selected by the
   flywheel's judge; then the base model and the checkpoint are re-rated on the eval
   set by --rater (give a strong judge on a GPU cluster; the default is SmolLM2
   scoring by probability, a different scoring of the same small model).
Prints tokens/s per trainer, the ratio to the baseline, the selected and trained
rows, and the ratings before and after with their 95% intervals.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "eval_sets" / "samples" / "arena_hard_v0.1.jsonl"
ANSWERS = REPO / "arena_models" / "rosters" / "answers"


def recorded(model: str) -> dict[str, str]:
    """Arena-Hard uid -> the recorded model's answer text."""
    out = {}
    for line in (ANSWERS / f"{model}.jsonl").read_text().splitlines():
        row = json.loads(line)
        content = row["messages"][-1]["content"]
        out[row["uid"]] = content["answer"] if isinstance(content, dict) else content
    return out


def real_pairs(limit: int) -> list[dict]:
    """(prompt, GPT-4 answer, GPT-3.5 answer) on Arena-Hard prompts both answered."""
    strong, weak = recorded("gpt-4-0314"), recorded("gpt-3.5-turbo-0125")
    rows = []
    for line in SAMPLES.read_text().splitlines():
        row = json.loads(line)
        uid = row["uid"]
        if uid in strong and uid in weak:
            prompt = [{"role": "user", "content": row["prompt"]}]
            rows.append({"prompt": prompt, "chosen": strong[uid], "rejected": weak[uid]})
        if len(rows) == limit:
            break
    return rows


def write_shards(pairs: list[dict], folder: Path) -> dict[str, Path]:
    import pandas as pd

    def said(text):
        return [{"role": "assistant", "content": text}]

    frames = {
        "sft": pd.DataFrame({"prompt": [p["prompt"] for p in pairs],
                             "completion": [said(p["chosen"]) for p in pairs]}),
        "dpo": pd.DataFrame({"prompt": [p["prompt"] for p in pairs],
                             "chosen": [said(p["chosen"]) for p in pairs],
                             "rejected": [said(p["rejected"]) for p in pairs]}),
        "reward": pd.DataFrame({"chosen": [p["prompt"] + said(p["chosen"]) for p in pairs],
                                "rejected": [p["prompt"] + said(p["rejected"]) for p in pairs],
                                "margin": [2.0] * len(pairs)}),
    }  # fmt: skip
    paths = {}
    for kind, frame in frames.items():
        (folder / kind).mkdir(parents=True, exist_ok=True)
        frame.to_parquet(folder / kind / "part-00000.parquet", index=False)
        paths[kind] = folder / kind
    return paths


def torch_baseline(
    base: str, pairs: list[dict], steps: int, batch: int, max_length: int, device: str
) -> float:
    """Tokens/s of a bare AdamW loop over the same SFT texts: the floor trl is measured on."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base, trust_remote_code=False)
    model = AutoModelForCausalLM.from_pretrained(
        base, dtype=torch.float32, trust_remote_code=False
    ).to(device)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)
    texts = [
        tokenizer.apply_chat_template(
            p["prompt"] + [{"role": "assistant", "content": p["chosen"]}], tokenize=False
        )
        for p in pairs
    ]
    tokens, started = 0, time.perf_counter()
    for step in range(steps):
        chunk = [texts[(step * batch + i) % len(texts)] for i in range(batch)]
        enc = tokenizer(chunk, return_tensors="pt", padding=True, truncation=True,
                        max_length=max_length).to(device)  # fmt: skip
        loss = model(**enc, labels=enc["input_ids"]).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        tokens += int(enc["attention_mask"].sum())
    return tokens / (time.perf_counter() - started)


def throughput(args, out: Path) -> None:
    from arena_models.local_models import smollm2_dir
    from pipeline.flywheel.training import TrainConfig, train

    base = str(smollm2_dir())
    pairs = real_pairs(max(args.throughput_steps * 2, 16))
    shards = write_shards(pairs, out / "throughput" / "data")
    settings = {"max_steps": args.throughput_steps, "max_length": args.max_length,
                "device": args.device}  # fmt: skip
    results = {}
    for kind, folder in shards.items():
        record = train(TrainConfig.from_dict(kind, settings), folder, base,
                       out / "throughput" / kind, overwrite=True)  # fmt: skip
        results[kind] = record
    device = results["sft"]["device"]
    floor = torch_baseline(base, pairs, args.throughput_steps, 2, args.max_length, device)
    print(f"\n# Training throughput ({device}, {args.throughput_steps} steps, batch 2,"
          f" max_length {args.max_length}, SmolLM2-135M)")  # fmt: skip
    print("| trainer | rows trained | tokens/s | vs torch loop |")
    print("|---|---:|---:|---:|")
    for kind, r in results.items():
        speed = r["tokens_per_second"] or 0
        print(f"| {kind} | {r['rows_trained']} of {r['rows_selected']} | {speed:.0f} |"
              f" {speed / floor:.2f}x |")  # fmt: skip
    print(f"| torch AdamW loop (baseline) | - | {floor:.0f} | 1.00x |")


def iteration(args, out: Path) -> None:
    from dask.distributed import Client, LocalCluster

    from arena_models.roster import pick_model
    from pipeline.battle.config import BattleConfig
    from pipeline.battle.run import battle_models
    from pipeline.flows.flywheel import prepare_flywheel, run_flywheel
    from pipeline.flows.ratings import RatingsConfig, rate_battles
    from pipeline.flywheel.config import FlywheelConfig

    pool = out / "pool.jsonl"
    lines = SAMPLES.read_text().splitlines()
    pool.write_text("\n".join(lines) + "\n")
    evalset = out / "evalset"
    config_file = out / "flywheel.yaml"
    config_file.write_text(json.dumps({
        "target": "smollm2-greedy", "roster": "demo",
        "opponents": ["gpt-4-0314", "gpt-3.5-turbo-0125"], "phases": ["sft"],
        "judge_scoring": args.selector_scoring, "sft_gap": [args.sft_gap], "slices": 2,
        "slice_prompts": args.prompts, "pool": str(out / "ingested"),
        "evalset": str(evalset), "rate_prompts": args.rate_prompts,
        "train": {"max_steps": args.steps, "max_length": args.max_length, "device": args.device},
    }))  # fmt: skip
    with (
        LocalCluster(n_workers=1, threads_per_worker=1, resources={"GPU": 1},
                     dashboard_address=":0") as cluster,
        Client(cluster) as client,
    ):  # fmt: skip
        from pipeline.flows.ingest import ingest, pool_files

        ingest(client, pool_files([pool]), out / "ingested")
        # Slice 2 of the same pool is the eval set: disjoint from the training slice D1.
        from core.runner import run_stage
        from pipeline.flywheel.slices import SliceConfig, TakeSlice

        run_stage(TakeSlice(out / "ingested", evalset, SliceConfig(2, 2, 0)), client)
        setup = prepare_flywheel(FlywheelConfig.load(config_file), out / "flywheel", 1)
        started = time.perf_counter()
        it = run_flywheel(client, setup, out / "flywheel")
        seconds = time.perf_counter() - started
        final = it["final_model"]
        rater = pick_model(args.rater_roster, args.rater)
        from pipeline.flows.flywheel import checkpoint_spec

        players = [setup.start, checkpoint_spec(setup.start, final["name"], final["path"]),
                   *setup.opponents]  # fmt: skip
        battle_models(client, players, rater, evalset=evalset, out=out / "rated" / "battles",
                      config=BattleConfig(limit=args.rate_prompts, judge_scoring=args.rater_scoring),
                      cache=out / "flywheel" / "_cache")  # fmt: skip
        board = rate_battles(client, [out / "rated" / "battles" / "battles"], out / "rated",
                             RatingsConfig(bootstrap=100))  # fmt: skip
    steps = it["steps"]
    print(f"\n# One SFT iteration ({seconds:.0f} s): {steps['sft.select']['line']}")
    print(f"trained: {steps['sft.train']['line']}")
    print(f"selector judge {setup.judge.name} ({args.selector_scoring}):"
          f" {steps['rate']['line']}")  # fmt: skip
    table = board["table"].set_index("model")
    print(f"rater judge {rater.name} ({args.rater_scoring}), {args.rate_prompts} eval prompts:")
    for name in (setup.start.name, final["name"]):
        r = table.loc[name]
        print(f"  {name}: {r.rating:.0f} [{r.lower:.0f}, {r.upper:.0f}]")
    delta = table.loc[final["name"]].rating - table.loc[setup.start.name].rating
    print(f"  change: {delta:+.0f} Elo")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=300, help="SFT steps of the iteration")
    p.add_argument("--throughput-steps", type=int, default=8)
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--prompts", type=int, default=200, help="battle prompts of the SFT slice")
    p.add_argument("--rate-prompts", type=int, default=100)
    p.add_argument("--sft-gap", type=float, default=0.25)
    p.add_argument("--selector-scoring", default="expected")
    p.add_argument("--rater-roster", default="judges")
    p.add_argument("--rater", default="smollm2-judge")
    p.add_argument("--rater-scoring", default="discrete")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default="runs/bench_flywheel")
    p.add_argument("--skip-iteration", action="store_true")
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    throughput(args, out)
    if not args.skip_iteration:
        iteration(args, out)


if __name__ == "__main__":
    main()
