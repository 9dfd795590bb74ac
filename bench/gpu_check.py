"""The product's heavy paths on a GPU, prepared to run the day a GPU machine is lent.

    bench/gpu_check.sh --out DIR [--cpu] [--carry gpu_carry] [--work DIR] [--budget S]

(the shell script makes the carried wheels importable first; `make gpu-wheels` fills
the carry folder). Each step runs in its own process under its own time cap and
appends one JSON line per result to DIR/results.jsonl; DIR/gpu_check.log keeps every
step's output. A line is {"step", "name", "status": "ok" | "skip" | "error", ...}: "ok"
with its figures, "skip" and "error" with a "reason". Steps:

- env: the machine, the packages, how they were installed, what was carried (MiB).
- models: MiniLM and SmolLM2-135M-Instruct folders. Their weights do not fit in what a
  lent machine receives (bench/gpu_wheels.py), so where a folder has no weights the
  step builds random weights, seeded, of the real architecture with the real tokenizer:
  the throughput figures are then those of the real shapes, and every line says
  "weights": "real" or "random". Figures that depend on the weights (embedding
  agreement, the judge's parse rate and agreement with people) are skip lines there,
  with the reason; they are measured wherever the weights are at hand.
- embed: MiniLM throughput on CUDA in bfloat16, float16 and float32, and float32 on the
  machine's CPU cores, on the real prompts, batched as the embed stage batches; cosine
  agreement with float32 (real weights only).
- evalset: `arena build-evalset` of the real prompts on an embedded LocalCluster (its
  embed stage on CUDA, Hard scored by a transformers judge on CUDA): wall seconds per
  stage.
- train: trl SFT then DPO steps (pipeline.flywheel.training.train: bf16 autocast and
  gradient checkpointing on CUDA) on real answer pairs: tokens/s, finite losses, and the
  checkpoint loading back in transformers.
- judge: `arena judge-eval` on 50 labelled pairs with the transformers judge on CUDA:
  games/s and completion tokens/s; parse rate and agreement (real weights only).
- vllm: a skip line: its CUDA wheel is far over what a lent machine can receive.

`--cpu` is the dry run: the same steps on this machine's CPU at tiny sizes (a few rows,
steps and pairs; SmolLM2's tokenizer on the 2-layer shape of tests/tiny_model.py), so
the script is known to work before a GPU exists (tests/bench/test_gpu_check.py).
Exit status: 0 when no line is an error or holds a figure that is not finite (NaN, inf),
1 otherwise, 2 for a bad argument.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.gpu_wheels import CARRY, MINILM, SHARED_PROMPTS, SMOLLM2

REPO = Path(__file__).resolve().parents[1]
PAIRS = REPO / "eval_sets" / "judging" / "llmfao_pairs_dev.jsonl"
STEPS = ("env", "models", "embed", "evalset", "train", "judge", "vllm")
SEED = 0
# Per-step caps (seconds). On a GPU they add up to the default budget, 7 minutes, so
# with the wheels' install (under a minute) a run stays inside 8 and a retry fits in
# the 15 minutes a lent machine is held.
CAPS = {
    "gpu": {"models": 40, "embed": 80, "evalset": 120, "train": 100, "judge": 80},
    "cpu": {"models": 60, "embed": 60, "evalset": 120, "train": 120, "judge": 90},
}
# Sizes: the GPU run on the real prompts and the 50 pairs; the dry run tiny.
SIZES = {
    "gpu": dict(
        embed_rows=None,  # every distinct real prompt
        pool_lines=None,  # every line of every prompts file
        workers=4,
        clusters=50,
        hard_top=20,
        train_pairs=64,
        sft=dict(max_steps=30, per_device_batch_size=8, max_length=1024),
        dpo=dict(max_steps=20, per_device_batch_size=4, max_length=1024),
        answer_chars=None,
        judge_pairs=50,
        judge_answer_chars=None,
        batch_size=32,
    ),
    "cpu": dict(
        embed_rows=12,
        pool_lines=8,  # of each prompts file: 48 rows in six shapes
        workers=1,
        clusters=3,
        hard_top=2,
        train_pairs=4,
        sft=dict(max_steps=2, per_device_batch_size=2, max_length=128),
        dpo=dict(max_steps=2, per_device_batch_size=2, max_length=128),
        answer_chars=200,  # short real rows fit max_length 128
        judge_pairs=1,
        judge_answer_chars=200,
        batch_size=8,
    ),
}
# The dry run's shapes, with the real tokenizers: tests/tiny_model.py's Llama (bench may
# not import tests) and a MiniLM of 2 layers, 64 wide.
TINY_BERT = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2)
TINY_LLAMA = dict(
    hidden_size=128,
    intermediate_size=256,
    num_hidden_layers=2,
    num_attention_heads=2,
    num_key_value_heads=1,
    head_dim=64,
    max_position_embeddings=2048,
    initializer_range=0.1,
)
NO_MINILM_WEIGHTS = (
    "MiniLM's weights did not travel (87 MiB in float32, 43 in float16: over the 64 MiB a"
    " lent machine receives beside the wheels); random weights say nothing of MiniLM's"
    " agreement"
)
NO_JUDGE_WEIGHTS = (
    "SmolLM2's weights did not travel (its smallest packaged form, a 94 MiB GGUF, is over"
    " the 64 MiB a lent machine receives); a random-weight judge's parse rate and"
    " agreement with people say nothing of SmolLM2's"
)
TINY_JUDGE = (
    "the dry run judges with random weights of a tiny shape (SmolLM2-135M would take"
    " minutes on a few cores); parse rate and agreement need its real weights, in a GPU run"
    " where they are at hand"
)
VLLM_REASON = (
    "vLLM's CUDA wheel (228 MiB for vllm 0.34.0 on x86-64, before its dependencies) is far"
    " over the 64 MiB the working tree may carry to a lent machine, which reaches no package"
    " index; the vLLM backend (judge, answers, difficulty) cannot run there, so this check"
    " covers the transformers backend only"
)

log = logging.getLogger("bench.gpu_check")


class CheckError(Exception):
    """A bad argument: one line, exit 2."""


# --- results ----------------------------------------------------------------------------


def emit(results: Path, step: str, name: str, status: str = "ok", **fields) -> None:
    """Append one result line (written at once: a step killed later keeps its lines)."""
    line = {"step": step, "name": name, "status": status, **fields}
    with results.open("a") as f:
        f.write(json.dumps(line, allow_nan=True) + "\n")


def finite(value) -> bool:
    """Every number in a line (nested too) is finite."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return True
    if isinstance(value, int | float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(finite(v) for v in value)
    return True


def read_lines(results: Path) -> list[dict]:
    if not results.is_file():
        return []
    return [json.loads(line) for line in results.read_text().splitlines() if line.strip()]


# --- data ---------------------------------------------------------------------------------


def prompts_folder(carry: Path) -> Path:
    """The real prompts: carried beside the wheels, else ../shared/data/prompts."""
    for folder in (carry / "data" / "prompts", SHARED_PROMPTS):
        if folder.is_dir() and any(folder.glob("*.jsonl")):
            return folder
    raise CheckError(f"no real prompts in {carry}/data/prompts or {SHARED_PROMPTS}")


def prompt_texts(folder: Path) -> list[str]:
    """The distinct real prompts as the embed stage sees them (every user turn), by
    prompt id."""
    from core.defaults import MAX_CONVERSATION_CHARS
    from core.schemas import prompt_id, prompt_text
    from pipeline.ingest.shapes import to_conversation

    found: dict[str, str] = {}
    for path in sorted(folder.glob("*.jsonl")):
        for line in path.read_text().split("\n"):  # not splitlines: U+2028 sits in strings
            if line.strip():
                messages = to_conversation(json.loads(line), MAX_CONVERSATION_CHARS)[0]
                found.setdefault(prompt_id(messages), prompt_text(messages))
    return [found[k] for k in sorted(found)]


# --- step: models -------------------------------------------------------------------------


def model_source(carry: Path, name: str) -> Path:
    """A carried model folder, else the packaged model of this venv."""
    if (carry / "models" / name / "config.json").is_file():
        return carry / "models" / name
    from arena_models.local_models import minilm_dir, smollm2_dir

    return minilm_dir() if name == MINILM else smollm2_dir()


def has_weights(folder: Path) -> bool:
    return any(folder.glob("*.safetensors"))


def random_minilm(source: Path, target: Path, tiny: bool) -> int:
    """A sentence-transformers folder of MiniLM's files with a random BertModel (seeded) of
    its config, or of the tiny shape; returns the parameter count."""
    import torch
    from transformers import AutoConfig, AutoModel

    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    config = AutoConfig.from_pretrained(source, trust_remote_code=False)
    if tiny:
        for key, value in TINY_BERT.items():
            setattr(config, key, value)
        pooling = target / "1_Pooling" / "config.json"  # pools vectors of the model's width
        settings = json.loads(pooling.read_text())
        settings["word_embedding_dimension"] = config.hidden_size
        pooling.write_text(json.dumps(settings, indent=2))
    torch.manual_seed(SEED)
    model = AutoModel.from_config(config).to(torch.float32)
    model.save_pretrained(target)
    return sum(p.numel() for p in model.parameters())


def random_smollm2(source: Path, target: Path, tiny: bool) -> int:
    """SmolLM2's tokenizer and chat template with random causal-LM weights (seeded): of
    SmolLM2's own config, or of the tiny test shape; returns the parameter count."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, LlamaConfig

    tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=False)
    config = AutoConfig.from_pretrained(source, trust_remote_code=False)
    if tiny:
        config = LlamaConfig(
            **TINY_LLAMA,
            vocab_size=config.vocab_size,
            bos_token_id=config.bos_token_id,
            eos_token_id=config.eos_token_id,
            pad_token_id=config.pad_token_id,
            tie_word_embeddings=True,
        )
    torch.manual_seed(SEED)
    model = AutoModelForCausalLM.from_config(config).to(torch.float32)
    model.generation_config.eos_token_id = config.eos_token_id
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)  # tokenizer.json and chat_template.jinja
    return sum(p.numel() for p in model.parameters())


def step_models(s: dict, results: Path) -> None:
    import yaml

    models = Path(s["work"]) / "models"
    shutil.rmtree(models, ignore_errors=True)
    models.mkdir(parents=True)
    found = {}
    for name in (MINILM, SMOLLM2):
        started = time.perf_counter()
        source = model_source(Path(s["carry"]), name)
        # The dry run's subject is plumbing: random weights take the tiny shapes there, and
        # SmolLM2-135M's real ones too (trl and the judge would take minutes on 2 cores).
        tiny = s["mode"] == "cpu" and (name == SMOLLM2 or not has_weights(source))
        if has_weights(source) and not tiny:
            path, weights, params = source, "real", None
        elif name == MINILM:
            path, weights = models / name, "random"
            params = random_minilm(source, path, tiny)
        else:
            path, weights = models / name, "random"
            params = random_smollm2(source, path, tiny)
        shape = f"{name} tokenizer, tiny 2-layer shape" if tiny else f"{name} architecture"
        found[name] = {"path": str(path), "weights": weights, "shape": shape,
                       "weights_at_source": has_weights(source)}  # fmt: skip
        emit(
            results, "models", name, weights=weights, shape=shape, source=str(source),
            parameters=params, seconds=round(time.perf_counter() - started, 2),
        )  # fmt: skip
    # Judge and difficulty scorer: the transformers backend on SmolLM2's folder.
    dtype = "bfloat16" if s["device"] == "cuda" else "float32"
    entry = {"backend": "transformers", "path": found[SMOLLM2]["path"], "dtype": dtype,
             "batch_size": s["batch_size"]}  # fmt: skip
    roster = {
        "models": [
            {"name": "check-judge", **entry,
             "sampling": {"temperature": 0.0, "max_tokens": 128, "seed": 0}},
            {"name": "check-difficulty", **entry},
        ]
    }  # fmt: skip
    (models / "judges.yaml").write_text(yaml.safe_dump(roster, sort_keys=False))
    (models / "models.json").write_text(json.dumps(found, indent=1))


def read_models(s: dict) -> dict:
    path = Path(s["work"]) / "models" / "models.json"
    if not path.is_file():
        raise RuntimeError("no model folders: the models step did not finish")
    return json.loads(path.read_text())


# --- step: embed --------------------------------------------------------------------------


def encode(encoder, texts: list[str], config):
    """Unit vectors, batched as pipeline.evalset.embed.embed_texts batches (sorted by
    length under a token budget), with an encoder of any dtype (the pipeline's config
    takes float32 and bfloat16 only)."""
    import numpy as np

    from pipeline.evalset.embed import embedding_width, token_batches

    ids = encoder.tokenizer(texts, truncation=True, max_length=config.max_seq_length)["input_ids"]
    lengths = np.fromiter((len(row) for row in ids), np.int64, len(ids))
    vectors = np.empty((len(texts), embedding_width(encoder)), np.float32)
    for batch in token_batches(lengths, config.tokens_per_batch, config.batch_size):
        vectors[batch] = (
            encoder.encode([texts[i] for i in batch], batch_size=len(batch),
                           convert_to_tensor=True, show_progress_bar=False)
            .float().cpu().numpy()
        )  # fmt: skip
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0), int(lengths.sum())


def step_embed(s: dict, results: Path) -> None:
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    from pipeline.evalset.embed import EmbedConfig

    minilm = read_models(s)[MINILM]
    texts = prompt_texts(Path(s["prompts"]))[: s["embed_rows"]]
    config = EmbedConfig()
    if s["device"] == "cuda":
        runs = [("cuda", "bfloat16"), ("cuda", "float16"), ("cuda", "float32"), ("cpu", "float32")]
    else:
        runs = [("cpu", "float32"), ("cpu", "bfloat16"), ("cpu", "float16")]
    vectors, speed = {}, {}
    for device, dtype in runs:
        if device == "cpu" and s["device"] == "cuda":
            torch.set_num_threads(os.cpu_count() or 1)  # the machine's cores, against its GPU
        encoder = SentenceTransformer(minilm["path"], device=device, trust_remote_code=False)
        encoder.max_seq_length = config.max_seq_length
        encoder = encoder.to(getattr(torch, dtype))
        encode(encoder, texts[:8], config)  # loads kernels; not timed
        started = time.perf_counter()
        vectors[device, dtype], tokens = encode(encoder, texts, config)
        seconds = time.perf_counter() - started
        speed[device, dtype] = len(texts) / seconds
        emit(
            results, "embed", "throughput", device=device, dtype=dtype,
            weights=minilm["weights"], rows=len(texts), tokens=tokens,
            seconds=round(seconds, 3), rows_per_s=round(speed[device, dtype], 1),
            threads=torch.get_num_threads() if device == "cpu" else None,
        )  # fmt: skip
        del encoder
        if device == "cuda":
            torch.cuda.empty_cache()
    base = (s["device"], "float32")
    cpu = speed.get(("cpu", "float32"))
    emit(
        results, "embed", "speedup", weights=minilm["weights"],
        over_float32_same_device={f"{d} {t}": round(v / speed[base], 3) for (d, t), v in speed.items()},
        over_cpu_float32={f"{d} {t}": round(v / cpu, 3) for (d, t), v in speed.items()},
    )  # fmt: skip
    if minilm["weights"] != "real":
        emit(results, "embed", "agreement", "skip", reason=NO_MINILM_WEIGHTS)
        return
    for key, found in vectors.items():
        if key == base:
            continue
        cosine = np.sum(found * vectors[base], axis=1)
        emit(
            results, "embed", "agreement", weights="real", device=key[0], dtype=key[1],
            against=f"{base[0]} float32", cosine_mean=float(cosine.mean()),
            cosine_min=float(cosine.min()), rows=len(cosine),
        )  # fmt: skip


# --- step: evalset ------------------------------------------------------------------------


def small_pool(folder: Path, lines: int | None, target: Path) -> Path:
    """The prompts folder, or its files' first `lines` lines each (every shape kept)."""
    if lines is None:
        return folder
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(folder.glob("*.jsonl")):
        kept = [row for row in path.read_text().split("\n") if row.strip()][:lines]
        (target / path.name).write_text("\n".join(kept) + "\n")
    return target


def arena(args: list[str]) -> float:
    """Run an `arena` command (the CLI module: nothing is installed on a lent machine);
    returns its wall seconds. Its output goes to this step's log; a failure is raised
    with its last line."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "jobs.cli", *args], cwd=REPO, capture_output=True, text=True
    )
    sys.stderr.write(done.stdout + done.stderr)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"arena {args[0]} exited {done.returncode}: {last}")
    return time.perf_counter() - started


def stage_seconds(root: Path) -> dict[str, float]:
    """Seconds per stage folder, from the manifests' started/finished."""
    found = {}
    for manifest in sorted(root.rglob("_manifest.json")):
        record = json.loads(manifest.read_text())
        if "started" in record and "finished" in record:
            name = str(manifest.parent.relative_to(root))
            found[name] = round(record["finished"] - record["started"], 2)
    return found


def step_evalset(s: dict, results: Path) -> None:
    import pandas as pd
    import pyarrow.parquet as pq

    from core.parquet_io import part_files
    from pipeline.evalset.embed import DTYPE_KEY

    work, models = Path(s["work"]), read_models(s)
    out = work / "evalset"
    shutil.rmtree(out, ignore_errors=True)
    pool = small_pool(Path(s["prompts"]), s["pool_lines"], work / "pool")
    real = models[MINILM]["weights"] == "real"
    # Random weights put no probability on the scores (every candidate an error, Hard
    # empty); their enforced written score keeps Hard and Mix doing work.
    mode = "expected" if models[SMOLLM2]["weights"] == "real" else "generate"
    command = [
        "build-evalset", "--pool", str(pool), "--out", str(out),
        "--embed-model", models[MINILM]["path"], "--clusters", str(s["clusters"]),
        "--diverse-per-cluster", "2", "--hard-candidates-per-cluster", "1",
        "--hard-top", str(s["hard_top"]), "--seed", str(SEED),
        "--judge-roster", str(work / "models" / "judges.yaml"),
        "--difficulty-judge", "check-difficulty", "--difficulty-mode", mode,
        "--workers", str(s["workers"]),
        # Random MiniLM weights put every cosine near 1: semantic dedup would drop the pool.
        *(["--semantic-threshold", "0.95"] if real else []),
    ]  # fmt: skip
    wall = arena(command)
    first = part_files(out / "embedded")[0]
    footer = pq.read_schema(first).metadata or {}
    emit(
        # The workers' encoder_device(): CUDA wherever torch sees it, as in this run's env line.
        results, "evalset", "build", device=s["device"],
        embed_dtype=footer.get(DTYPE_KEY, b"?").decode(),
        embed_weights=models[MINILM]["weights"], difficulty_weights=models[SMOLLM2]["weights"],
        difficulty_mode=mode, difficulty_errors=int(
            pd.read_parquet(out / "scored", columns=["difficulty_error"]).difficulty_error.notna().sum()
        ),
        workers=s["workers"], rows_deduplicated=len(pd.read_parquet(out / "dedup", columns=["prompt_id"])),
        **{f"{name}_rows": len(pd.read_parquet(out / name, columns=["prompt_id"]))
           for name in ("diverse", "hard", "mix")},
        wall_s=round(wall, 2), stages_s=stage_seconds(out),
    )  # fmt: skip


# --- step: train --------------------------------------------------------------------------


def training_pairs(count: int, clip: int | None) -> list[dict]:
    """Real (prompt, GPT-4 answer, GPT-3.5 answer) pairs, shortest prompts first so the
    dry run's max_length keeps them; answers cut at `clip` characters."""
    from bench.flywheel import real_pairs

    pairs = sorted(real_pairs(10**6), key=lambda p: len(p["prompt"][0]["content"]))[:count]
    if clip:
        pairs = [
            {**p, "chosen": p["chosen"][:clip], "rejected": p["rejected"][:clip]} for p in pairs
        ]
    return pairs


def reload(folder: Path, device: str) -> dict:
    """The checkpoint as the transformers backend would load it: a forward pass and a few
    greedy tokens."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, trust_remote_code=False)
    model.to(device).eval()
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Name three primary colours."}],
        tokenize=False, add_generation_prompt=True,
    )  # fmt: skip
    batch = tokenizer(text, return_tensors="pt").to(device)
    with torch.no_grad():
        logits = model(**batch).logits
        new = model.generate(**batch, max_new_tokens=8, do_sample=False)
    return {
        "loads": True,
        "logits_finite": bool(torch.isfinite(logits).all()),
        "generated_tokens": int(new.shape[1] - batch["input_ids"].shape[1]),
        "seconds": round(time.perf_counter() - started, 2),
    }


def step_train(s: dict, results: Path) -> None:
    import torch

    from bench.flywheel import write_shards
    from pipeline.flywheel import trainers
    from pipeline.flywheel.training import TrainConfig, train

    work, smol = Path(s["work"]), read_models(s)[SMOLLM2]
    shards = write_shards(training_pairs(s["train_pairs"], s["answer_chars"]), work / "shards")
    for kind in ("sft", "dpo"):
        config = TrainConfig.from_dict(kind, {**s[kind], "device": s["device"], "seed": SEED})
        device = s["device"]
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        out = work / "checkpoints" / kind
        record = train(config, shards[kind], smol["path"], out, overwrite=True)
        # What trl got from the repository's settings on this device, built again to read.
        bf16 = record["dtype"].startswith("bfloat16")
        args = trainers.trl_arguments(config, work / "args", record["device"], bf16)
        losses = [step["loss"] for step in record["losses"]]
        emit(
            results, "train", kind, weights=smol["weights"], shape=smol["shape"],
            device=record["device"], dtype=record["dtype"], bf16=bool(args.bf16),
            gradient_checkpointing=bool(args.gradient_checkpointing),
            steps=record["steps"], rows_trained=record["rows_trained"],
            batch=config.per_device_batch_size, max_length=config.max_length,
            train_tokens=record["train_tokens"], seconds=record["seconds"],
            tokens_per_s=record["tokens_per_second"], final_loss=record["final_loss"],
            losses_finite=bool(losses) and all(math.isfinite(x) for x in losses),
            peak_gpu_gib=round(torch.cuda.max_memory_allocated() / 2**30, 2) if device == "cuda" else None,
            trl=record["trl_version"], transformers=record["transformers_version"],
        )  # fmt: skip
        emit(results, "train", f"{kind}-reload", **reload(out, device))


# --- step: judge --------------------------------------------------------------------------


def step_judge(s: dict, results: Path) -> None:
    work, smol = Path(s["work"]), read_models(s)[SMOLLM2]
    out = work / "judge"
    shutil.rmtree(out, ignore_errors=True)
    command = [
        "judge-eval", str(PAIRS), "--out", str(out), "--limit", str(s["judge_pairs"]),
        "--judge-roster", str(work / "models" / "judges.yaml"), "--judge", "check-judge",
        "--workers", "1",
    ]  # fmt: skip
    if s["judge_answer_chars"]:
        command += ["--max-answer-chars", str(s["judge_answer_chars"])]
    wall = arena(command)
    result = json.loads((out / "judge_eval.json").read_text())
    run, row = result["run"], result["rows"][0]  # discrete scores, rule total
    busy = max(run["task_seconds"], 1e-9)
    # Task seconds: judging on the worker, the model's load in its first task included.
    emit(
        results, "judge", "throughput", device=s["device"], weights=smol["weights"],
        shape=smol["shape"], pairs=result["pairs"], games=run["judged_now"],
        task_seconds=run["task_seconds"], games_per_s=round(run["judged_now"] / busy, 3),
        completion_tokens=run["completion_tokens_now"],
        completion_tokens_per_s=round(run["completion_tokens_now"] / busy, 1),
        wall_s=round(wall, 2),
    )  # fmt: skip
    if smol["weights"] != "real":
        reason = TINY_JUDGE if smol["weights_at_source"] else NO_JUDGE_WEIGHTS
        emit(results, "judge", "parse-rate", "skip", reason=reason)
        return
    emit(
        results, "judge", "parse-rate", weights="real", games=row["games"],
        parse_errors=row["parse_errors"], parse_rate=round(1 - row["parse_error_rate"], 4),
        agreement_with_ties=row["agreement_with_ties"],
        agreement_without_ties=row["agreement_without_ties"],
    )  # fmt: skip


STEP_FUNCTIONS = {
    "models": step_models,
    "embed": step_embed,
    "evalset": step_evalset,
    "train": step_train,
    "judge": step_judge,
}


# --- driver -------------------------------------------------------------------------------


def env_line(s: dict, results: Path) -> None:
    from importlib import metadata

    import torch

    from bench.gpu_wheels import sizes

    def version(name):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    packages = ("torch", "transformers", "sentence-transformers", "trl", "datasets", "dask",
                "distributed", "faiss-cpu", "xgrammar", "pyarrow", "numpy", "vllm")  # fmt: skip
    cuda = torch.cuda.is_available()
    carry = Path(s["carry"])
    emit(
        results, "env", "machine", mode=s["mode"], device=s["device"],
        gpu=torch.cuda.get_device_name(0) if cuda else None,
        cpu_cores=os.cpu_count(), python=sys.version.split()[0],
        packages={name: version(name) for name in packages},
        install=os.environ.get("GPU_CHECK_INSTALL", "not through bench/gpu_check.sh"),
        carried_mib={k: v and round(v, 2) for k, v in sizes(carry).items()} if carry.is_dir() else None,
        prompts=s["prompts"],
    )  # fmt: skip


def run_step(name: str, s: dict, timeout: float, log_file: Path) -> str | None:
    """The step in its own process group (its cluster and trainer die with it); None when
    it ended well, else why not."""
    with log_file.open("a") as out:
        out.write(f"\n===== {name} (cap {timeout:.0f} s) =====\n")
        out.flush()
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.gpu_check", "--step", name, "--settings", json.dumps(s)],
            cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return f"timed out after {timeout:.0f} s (its output: {log_file.name})"
        except BaseException:  # Ctrl-C: its own session hears none, so end it here
            os.killpg(process.pid, signal.SIGKILL)
            raise
    if code == 0:
        return None
    tail = [line for line in log_file.read_text().splitlines() if line.strip()]
    return f"exit code {code}: {tail[-1] if tail else 'no output'}"


def settings(args: argparse.Namespace) -> dict:
    """Every step's settings, checked before any starts (a CheckError otherwise)."""
    import torch

    from core.errors import UserError

    mode = "cpu" if args.cpu else "gpu"
    if mode == "gpu" and not torch.cuda.is_available():
        raise CheckError("torch sees no CUDA device here: use --cpu for the dry run")
    carry = args.carry.resolve()
    for name in (MINILM, SMOLLM2):  # found before any step starts, or one line
        try:
            model_source(carry, name)
        except UserError as error:
            raise CheckError(f"no {name} files in {carry}/models and {error}") from None
    return {
        "mode": mode,
        "device": "cuda" if mode == "gpu" else "cpu",
        "carry": str(carry),
        "prompts": str(prompts_folder(carry)),
        "results": str(args.out.resolve() / "results.jsonl"),
        **SIZES[mode],
    }


def check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise CheckError(f"--out {out} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CheckError(f"--out {out}: cannot create it ({error.strerror})") from None
    stray = sorted(
        p.name for p in out.iterdir() if p.name not in ("results.jsonl", "gpu_check.log")
    )
    if stray:
        raise CheckError(
            f"--out {out} holds other files ({', '.join(stray[:3])}): give an empty folder"
        )


def drive(args: argparse.Namespace) -> int:
    started = time.monotonic()
    check_out(args.out)
    s = settings(args)
    work = args.work or Path(tempfile.mkdtemp(prefix="arena-gpu-check-"))
    work.mkdir(parents=True, exist_ok=True)
    s["work"] = str(work.resolve())
    results, log_file = Path(s["results"]), args.out / "gpu_check.log"
    results.write_text("")
    log_file.write_text("")
    caps = CAPS[s["mode"]]
    # Steps never reach a hub (the lent machine has no network); Dask workers draw no plots.
    os.environ.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", MPLBACKEND="Agg")
    budget = args.budget if args.budget is not None else sum(caps.values())
    try:
        try:
            env_line(s, results)
        except Exception as error:  # noqa: BLE001 - the steps are worth running without it
            emit(results, "env", "machine", "error", reason=f"{type(error).__name__}: {error}")
        for name in STEPS[1:-1]:
            left = budget - (time.monotonic() - started)
            if left < 10:
                emit(results, name, "step", "skip", reason=f"the {budget:.0f} s budget is spent")
                continue
            log.info("%s (cap %.0f s)", name, min(caps[name], left))
            step_started = time.monotonic()
            problem = run_step(name, s, min(caps[name], left), log_file)
            if problem:
                emit(results, name, "step", "error", reason=problem)
            log.info("%s: %s in %.0f s", name, problem or "done", time.monotonic() - step_started)
        emit(results, "vllm", "engine", "skip", reason=VLLM_REASON)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    lines = read_lines(results)
    summary(lines, time.monotonic() - started)
    return 1 if any(line["status"] == "error" or not finite(line) for line in lines) else 0


FIGURES = ("rows_per_s", "tokens_per_s", "games_per_s", "wall_s", "parse_rate", "cosine_min",
           "final_loss", "logits_finite", "seconds")  # fmt: skip


def summary(lines: list[dict], seconds: float) -> None:
    """One line per result for a person; the JSON lines hold everything."""
    for line in lines:
        head = f"{line['step']:<8} {line['name']:<12} {line['status']:<5}"
        if line["status"] != "ok":
            print(f"{head} {line['reason']}")
            continue
        what = [f"{k}={line[k]}" for k in ("device", "dtype", "weights") if line.get(k)]
        what += [f"{k}={line[k]}" for k in FIGURES if line.get(k) is not None]
        flag = "" if finite(line) else "  <- a figure is not finite"
        print(f"{head} {' '.join(what)}{flag}")
    random = sorted(
        {
            f"{line['step']} {line['name']}"
            for line in lines
            if any(k.endswith("weights") and v == "random" for k, v in line.items())
        }
    )
    print(f"\n{len(lines)} results in {seconds:.0f} s; on random weights (timings and plumbing,"
          f" not quality): {', '.join(random) or 'none'}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="gpu_check: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="folder for results.jsonl and gpu_check.log")
    parser.add_argument("--cpu", action="store_true", help="the dry run: CPU, tiny sizes")
    parser.add_argument("--carry", type=Path, default=CARRY, help="make gpu-wheels' folder")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temporary one)")
    parser.add_argument("--budget", type=float, help="seconds for all steps (default: caps' sum)")
    parser.add_argument("--step", choices=sorted(STEP_FUNCTIONS), help=argparse.SUPPRESS)
    parser.add_argument("--settings", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.step:  # one step, in the process the driver started for it
        s = json.loads(args.settings)
        STEP_FUNCTIONS[args.step](s, Path(s["results"]))
        return 0
    try:
        if args.out is None:
            raise CheckError("--out DIR is required")
        if args.budget is not None and not 0 < args.budget < float("inf"):
            raise CheckError(f"--budget {args.budget}: expected a positive number of seconds")
        return drive(args)
    except CheckError as error:
        print(f"gpu_check: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gpu_check: interrupted; the lines so far are in results.jsonl", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
