"""Training jobs with real trl steps over tiny shards of real texts (Arena-Hard prompts,
GPT-4 and GPT-3.5 answers): SFT, DPO, reward, GRPO with that reward model; the SFT
checkpoint answers in vLLM and transformers; one job runs as a Dask task. The subject is
plumbing (rows, steps, records, checkpoints), so the model is the session's tiny Llama
with SmolLM2's tokenizer (tests/tiny_model.py): real trl, real weights, small ones."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.errors import UserError
from pipeline.flywheel.training import RECORD, TrainConfig, TrainJob, train, train_task

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[3]
CLIP = 400  # answer characters: short real rows fit max_length 256
TINY = dict(max_steps=2, per_device_batch_size=2, max_length=256)


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _texts():
    """(uid, prompt, gpt-4 answer, gpt-3.5 answer) with short prompts, shortest rows first."""
    prompts = {
        r["uid"]: r["prompt"] for r in _jsonl(REPO / "eval_sets/samples/arena_hard_v0.1.jsonl")
    }
    answers = {
        model: {
            r["uid"]: r["messages"][1]["content"]["answer"]
            for r in _jsonl(REPO / f"arena_models/rosters/answers/{model}.jsonl")
        }
        for model in ("gpt-4-0314", "gpt-3.5-turbo-0125")
    }
    good, weak = answers["gpt-4-0314"], answers["gpt-3.5-turbo-0125"]
    uids = [u for u in prompts if len(prompts[u]) < 300 and u in good and u in weak]
    uids.sort(key=lambda u: len(prompts[u]) + min(len(good[u]), CLIP) + min(len(weak[u]), CLIP))
    return [(u, prompts[u], good[u], weak[u]) for u in uids]


def _user(text):
    return [{"role": "user", "content": text}]


def _assistant(text):
    return [{"role": "assistant", "content": text}]


def _write_shard(folder: Path, rows: list[dict]) -> Path:
    folder.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), folder / "part-00000.parquet")
    (folder / "_manifest.json").write_text(json.dumps({"rows_out": len(rows)}))
    return folder


def _provenance(uid):
    return {"prompt_id": uid, "source_model": "gpt-4-0314", "gap": 3.0}


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("shards")
    texts = _texts()
    short = texts[:8]
    long_uid, long_prompt, long_good, long_weak = next(t for t in texts[20:] if len(t[2]) > 3000)
    sft = [
        {"prompt": _user(p), "completion": _assistant(g[:CLIP]), **_provenance(u)}
        for u, p, g, _ in short
    ]
    # One whole long answer: trl cuts it at max_length.
    sft.append(
        {"prompt": _user(long_prompt), "completion": _assistant(long_good), **_provenance(long_uid)}
    )
    dpo = [
        {
            "prompt": _user(p),
            "chosen": _assistant(g[: CLIP // 2]),  # DPO runs 4 sequences a pair: keep it short
            "rejected": _assistant(w[: CLIP // 2]),
            **_provenance(u),
        }
        for u, p, g, w in short
    ]
    pair = lambda p, g, w, m, u: {  # noqa: E731
        "chosen": _user(p) + _assistant(g),
        "rejected": _user(p) + _assistant(w),
        "margin": m,
        **_provenance(u),
    }
    reward = [pair(p, g[:CLIP], w[:CLIP], 1.0, u) for u, p, g, w in short]
    # One pair over max_length: RewardTrainer drops it without a word; the record counts it.
    reward.append(pair(long_prompt, long_good, long_weak, 2.0, long_uid))
    rl = [{"prompt": _user(p), **_provenance(u)} for u, p, _, _ in short[:4]]
    return {
        "sft": _write_shard(root / "sft", sft),
        "dpo": _write_shard(root / "dpo", dpo),
        "reward": _write_shard(root / "reward", reward),
        "rl": _write_shard(root / "rl", rl),
    }


@pytest.fixture(scope="module")
def trained(shards, tmp_path_factory, tiny_llama):
    """trained(kind) -> (record, model folder); each kind trains once per module."""
    root = tmp_path_factory.mktemp("models")
    done: dict[str, tuple[dict, Path]] = {}

    def get(kind: str):
        if kind not in done:
            extra = {}
            reward_model = None
            if kind == "rl":
                extra = dict(rl_num_generations=2, rl_max_completion_length=16)
                reward_model = get("reward")[1]
            out = root / kind
            record = train(
                TrainConfig(kind=kind, **TINY, **extra),
                shards[kind],
                tiny_llama,
                out,
                reward_model=reward_model,
            )
            print(
                f"\n{kind}: {record['seconds']:.1f} s, {record['train_tokens']} tokens, "
                f"{record['tokens_per_second']} tokens/s, losses {record['losses']}"
            )
            done[kind] = record, out
        return done[kind]

    return get


def _check_record(record: dict, kind: str):
    assert record["kind"] == kind and record["steps"] == 2
    assert [entry["step"] for entry in record["losses"]] == [1, 2]
    assert all(math.isfinite(entry["loss"]) for entry in record["losses"])
    assert math.isfinite(record["final_loss"])
    assert 0 < record["rows_trained"] <= record["rows_selected"]
    assert record["rows_dropped"] == record["rows_selected"] - record["rows_trained"]
    assert record["train_tokens"] > 0 and record["tokens_per_second"] > 0
    assert record["device"] == "cpu" and record["dtype"] == "float32"
    assert record["trl_version"].startswith("1.") and record["config"]["kind"] == kind


def _saved_model(folder: Path):
    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", RECORD} <= names
    assert (
        "chat_template.jinja" in names
        or "chat_template" in (folder / "tokenizer_config.json").read_text()
    )
    leftovers = ("optimizer", "checkpoint", "training_args", "_trainer", "_datasets")
    assert not [n for n in names if n.startswith(leftovers)]
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}.")]


def test_sft_trains_on_completions_counts_rows_and_fills_the_manifest(trained, shards):
    record, folder = trained("sft")
    _check_record(record, "sft")
    assert record["rows_trained"] == record["rows_selected"] == 9
    assert record["rows_truncated"] == 1  # the whole long answer, cut at 256 tokens
    assert 0 < record["loss_tokens"] < record["input_tokens"]  # prompts carry no loss
    _saved_model(folder)
    assert json.loads((folder / RECORD).read_text()) == record
    manifest = json.loads((shards["sft"] / "_manifest.json").read_text())
    assert manifest["rows_out"] == 9  # what selection wrote stays
    assert manifest["trained"]["rows"] == 9 and manifest["trained"]["rows_truncated"] == 1


def test_dpo_trains_against_the_base(trained, shards):
    record, folder = trained("dpo")
    _check_record(record, "dpo")
    assert record["rows_trained"] == 8 and record["learning_rate"] == 5e-7
    assert "rewards/margins" in record["last_log"]
    _saved_model(folder)
    assert json.loads((shards["dpo"] / "_manifest.json").read_text())["trained"]["rows"] == 8


def test_reward_model_drops_the_over_long_pair_and_counts_it(trained, shards):
    record, folder = trained("reward")
    _check_record(record, "reward")
    assert record["rows_selected"] == 9 and record["rows_trained"] == 8
    assert record["rows_dropped"] == 1
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"][0].endswith("ForSequenceClassification")
    assert config["pad_token_id"] is not None
    _saved_model(folder)
    trained_note = json.loads((shards["reward"] / "_manifest.json").read_text())["trained"]
    assert trained_note["rows"] == 8 and trained_note["rows_dropped"] == 1


def test_rl_grpo_is_scored_by_the_trained_reward_model(trained):
    record, folder = trained("rl")
    _check_record(record, "rl")
    assert record["rows_trained"] == 4 and record["reward_model"].endswith("reward")
    assert "reward" in record["last_log"]
    _saved_model(folder)


def test_a_finished_job_resumes_and_another_config_is_refused(trained, shards, tiny_llama):
    record, folder = trained("sft")
    started = time.perf_counter()
    again = train(TrainConfig(kind="sft", **TINY), shards["sft"], tiny_llama, folder)
    assert time.perf_counter() - started < 10  # nothing trained
    assert again["resumed"] and again["seconds"] == record["seconds"]
    with pytest.raises(UserError, match="another config"):
        train(
            TrainConfig(kind="sft", **{**TINY, "max_steps": 3}), shards["sft"], tiny_llama, folder
        )
    rl_record, rl_folder = trained("rl")
    rl_config = TrainConfig(kind="rl", **TINY, rl_num_generations=2, rl_max_completion_length=16)
    reward_folder = trained("reward")[1]
    again = train(rl_config, shards["rl"], tiny_llama, rl_folder, reward_model=reward_folder)
    assert again["resumed"] and again["config_hash"] == rl_record["config_hash"]


def test_a_damaged_checkpoint_is_trained_again(trained, shards, tmp_path, caplog, tiny_llama):
    """Its record lists every file with size and hash: a checkpoint whose weights changed is
    never resumed as finished."""
    import shutil

    record, folder = trained("sft")
    assert {f["path"] for f in record["files"]} >= {"model.safetensors", "config.json"}
    copy = tmp_path / "sft"
    shutil.copytree(folder, copy)
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    again = train(TrainConfig(kind="sft", **TINY), shards["sft"], tiny_llama, copy)
    assert not again.get("resumed")
    assert "training again: model.safetensors does not match its hash" in caplog.text
    assert train(TrainConfig(kind="sft", **TINY), shards["sft"], tiny_llama, copy)["resumed"]


QUESTION = _user("What is the capital of France?")


def _next_token(folder):
    """P(next token) after QUESTION's assistant header, from the checkpoint in `folder` loaded
    here with transformers in float32, and its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    text = tokenizer.apply_chat_template(QUESTION, tokenize=False, add_generation_prompt=True)
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt").input_ids
    with torch.inference_mode():
        return torch.softmax(model(ids).logits[0, -1].float(), -1).tolist(), tokenizer


def _single_tokens(probs: list[float], tokenizer, top: int = 32) -> dict[str, int]:
    """The likeliest `top` tokens whose text is that one token again when tokenized (the
    options a backend is asked about), text -> token id."""
    options = {}
    for i in sorted(range(len(probs)), key=probs.__getitem__, reverse=True)[:top]:
        text = tokenizer.decode([i])
        alone = tokenizer(text, add_special_tokens=False).input_ids == [i]
        if alone and i not in tokenizer.all_special_ids:
            options[text] = i
    return options


@pytest.mark.parametrize("backend", ["vllm", "transformers"])
def test_the_sft_checkpoint_answers_with_its_trained_weights(
    trained, tmp_path, backend, tiny_llama
):
    """The backend loads the trained weights, not the base's: they differ from the base's,
    and the next-token probabilities the backend reads equal those of the trained model
    (loaded here from the folder) and not the base's, on the same prompt."""
    from safetensors.torch import load_file

    from arena_models.roster import make_backend, parse_entry

    _, folder = trained("sft")
    weights, base = (load_file(Path(f) / "model.safetensors") for f in (folder, tiny_llama))
    assert weights.keys() == base.keys()
    changed = [k for k in weights if not weights[k].equal(base[k])]
    assert len(changed) > len(weights) // 2, changed  # two optimizer steps touch most tensors

    want, tokenizer = _next_token(folder)
    base_probs, _ = _next_token(tiny_llama)
    options = _single_tokens(want, tokenizer)
    assert len(options) >= 16
    entry = {
        "name": f"sft-{backend}",
        "backend": backend,
        "path": str(folder),
        "dtype": "float32",
        "sampling": {"max_tokens": 16, "temperature": 0.0},
    }
    if backend == "vllm":
        entry.update(enforce_eager=True, max_model_len=1024)
    spec = parse_entry(entry, 1, tmp_path / "roster.yaml")
    loaded = make_backend(spec)
    try:
        [normalised], [mass] = loaded.continuation_probabilities([QUESTION], "", list(options))
        answer = loaded.generate([QUESTION], spec.sampling)[0]
    finally:
        loaded.close()
    assert answer.error is None and answer.text.strip(), answer
    # log P(token): the backend's (its renormalised probabilities times their mass), the
    # trained checkpoint's and the base's, token by token
    got = [math.log(p * mass) for p in normalised]
    trained_gap = max(abs(g - math.log(want[i])) for g, i in zip(got, options.values()))
    base_gap = max(abs(g - math.log(base_probs[i])) for g, i in zip(got, options.values()))
    print(f"\n{backend}: |log p loaded - trained| {trained_gap:.1e}, - base {base_gap:.1e}")
    assert trained_gap < 1e-3
    assert base_gap > 10 * trained_gap + 1e-3


def test_bad_inputs_are_one_line_errors(shards, tmp_path, trained, tiny_llama):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="has no rows"):
        train("sft", empty, tiny_llama, tmp_path / "out")
    no_rows = _write_shard(tmp_path / "no-rows", [])
    pq.write_table(
        pa.table({"prompt": pa.array([], pa.string()), "completion": pa.array([], pa.string())}),
        no_rows / "part-00000.parquet",
    )
    with pytest.raises(UserError, match="has no rows"):
        train("sft", no_rows, tiny_llama, tmp_path / "out")
    with pytest.raises(UserError, match="missing column.*completion"):
        train("sft", shards["dpo"], tiny_llama, tmp_path / "out")
    with pytest.raises(UserError, match="missing column.*chosen"):
        train("reward", shards["sft"], tiny_llama, tmp_path / "out")
    with pytest.raises(UserError, match="does not load: no config.json"):
        train("sft", shards["sft"], tmp_path / "nowhere", tmp_path / "out")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    with pytest.raises(UserError, match=f"checkpoint {broken} does not load: "):
        train("sft", shards["sft"], broken, tmp_path / "out")
    with pytest.raises(UserError, match="needs a reward model"):
        train("rl", shards["rl"], tiny_llama, tmp_path / "out")
    with pytest.raises(UserError, match="not a sequence classifier"):
        train(
            TrainConfig(kind="rl", **TINY, rl_max_completion_length=16),
            shards["rl"],
            tiny_llama,
            tmp_path / "out",
            reward_model=tiny_llama,
        )
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]
    for bad in (
        dict(kind="ppo"),
        dict(max_steps=0),
        dict(device="tpu"),
        dict(kind="rl", per_device_batch_size=3, rl_num_generations=2),
        dict(kind="rl", max_length=64, rl_max_completion_length=64),
        dict(resources="GPU"),
    ):
        with pytest.raises(UserError):
            TrainConfig(**bad)
    with pytest.raises(UserError, match="unknown"):
        TrainConfig.from_dict("sft", {"max_step": 3})
    assert TrainConfig(resources="GPU=1,memory=2").resources == {"GPU": 1.0, "memory": 2.0}


def _worker_threads() -> int:
    import torch

    return torch.get_num_threads()


def test_train_task_runs_on_a_dask_worker_holding_the_gpu(gpu_worker, shards, tmp_path, tiny_llama):
    from core.submit import run_tasks

    out = tmp_path / "sft-dask"
    out.mkdir()  # another job's folder: replaced, since the job says overwrite
    (out / RECORD).write_text(json.dumps({"kind": "sft", "config_hash": "other"}))
    job = TrainJob(
        config=TrainConfig(kind="sft", max_steps=1, max_length=96),
        data=str(shards["sft"]),
        base=tiny_llama,
        out=str(out),
        overwrite=True,
    )
    assert job.resources == {"GPU": 1.0}
    with gpu_worker() as client:
        [record] = run_tasks(
            client, train_task, [(job,)], desc="train sft", resources=job.resources
        )
        threads = client.run(_worker_threads)
        # The job trains in a child process: what it raises reaches the caller as itself.
        missing = TrainJob(
            config=job.config, data=str(tmp_path / "gone"), base=tiny_llama, out=str(out)
        )
        with pytest.raises(UserError, match=r"shard .*gone is not a folder"):
            run_tasks(client, train_task, [(missing,)], desc="train sft", resources=job.resources)
    assert record["steps"] == 1 and math.isfinite(record["final_loss"])
    assert record["rows_truncated"] >= 1 and record["torch_threads"] == 1
    assert list(threads.values()) == [1]
    assert json.loads((out / RECORD).read_text())["config_hash"] == record["config_hash"]
