"""The trl side of a training job: one trainer per kind, built from a checked TrainConfig.

- sft: `SFTTrainer` on conversational prompt/completion rows, loss on the completion
  tokens only (trl 1.16 does that by default for prompt-completion data; set explicitly).
- dpo: `DPOTrainer`, the reference model a frozen copy of the base.
- reward: `RewardTrainer` on `AutoModelForSequenceClassification(num_labels=1)` made from
  the causal base (a fresh score head), chosen/rejected full conversations, `margin` in
  the loss when the shard has it.
- rl: `GRPOTrainer` (trl 1.x has no PPOTrainer), scored by a reward model the reward
  kind trained, loaded as a sequence classifier.

`row_counts` says what trl did to the rows after its own processing: RewardTrainer
drops pairs over `max_length`, DPOTrainer drops rows whose prompt fills it and its
collator truncates the rest, SFTTrainer truncates (and drops fully masked rows).
"""

from __future__ import annotations

import logging
from pathlib import Path

from core.errors import UserError

log = logging.getLogger(__name__)

# Columns trl reads per kind; everything else in a shard is provenance and is dropped.
COLUMNS = {
    "sft": ("prompt", "completion"),
    "dpo": ("prompt", "chosen", "rejected"),
    "reward": ("chosen", "rejected"),
    "rl": ("prompt",),
}
OPTIONAL_COLUMNS = {"reward": ("margin",)}
SEQUENCE_CLASSIFIER = "ForSequenceClassification"
# Checkpoints come from our own jobs or a user's folder: never run their Python.
TRUST = {"trust_remote_code": False}


def load_tokenizer(path: str):
    from transformers import AutoTokenizer

    tokenizer = _loading(path, lambda: AutoTokenizer.from_pretrained(path, **TRUST))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not tokenizer.chat_template:
        raise UserError(f"checkpoint {path} does not load: its tokenizer has no chat template")
    return tokenizer


def load_causal_lm(path: str):
    import torch
    from transformers import AutoModelForCausalLM

    # float32 weights everywhere: on a GPU bf16 is autocast (mixed precision), so
    # updates as small as DPO's are not rounded away in bfloat16 weights.
    return _loading(
        path, lambda: AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, **TRUST)
    )


def load_reward_model(path: str, *, from_causal: bool):
    """A one-logit sequence classifier: a fresh head on a causal base (`from_causal`), or a
    reward model the reward kind trained."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    if not from_causal:
        config = _loading(path, lambda: AutoConfig.from_pretrained(path, **TRUST))
        architectures = getattr(config, "architectures", None) or []
        if not any(a.endswith(SEQUENCE_CLASSIFIER) for a in architectures):
            raise UserError(
                f"reward model {path} is not a sequence classifier ({', '.join(architectures)}); "
                "train one with `arena train reward`"
            )
    return _loading(
        path,
        lambda: AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=1, dtype=torch.float32, **TRUST
        ),
    )


def require_model_folder(path: str | Path) -> None:
    """A checkpoint the trainers and backends can read has its config.json in place."""
    if not (Path(path) / "config.json").is_file():
        raise UserError(f"checkpoint {path} does not load: no config.json there")


def _loading(path: str, load):
    require_model_folder(path)
    try:
        return load()
    except (OSError, ValueError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UserError(f"checkpoint {path} does not load: {reason}") from None


def trl_arguments(config, out_dir: Path, device: str, bf16: bool):
    """The trl config of `config.kind`, with our defaults (logging every step, no
    checkpoints, no reporting) and the resolved device and precision."""
    import trl

    on_gpu = device == "cuda"
    common = dict(
        output_dir=str(out_dir),
        max_steps=config.max_steps,
        per_device_train_batch_size=config.per_device_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation,
        learning_rate=config.resolved_learning_rate,
        seed=config.seed,
        data_seed=config.seed,
        logging_steps=1,
        save_strategy="no",  # the job saves the final model itself: no optimizer state
        report_to="none",
        disable_tqdm=True,  # the Dask progress bar counts jobs; the log holds the steps
        dataloader_num_workers=0,
        use_cpu=not on_gpu,
        bf16=bf16,
        # Activations are most of a small model's training memory: recomputing them costs
        # about 10% more time on CPU and saves 2 GiB of a 135M model's DPO step.
        gradient_checkpointing=True,
    )
    if config.kind == "sft":
        return trl.SFTConfig(
            **common,
            max_length=config.max_length,
            completion_only_loss=True,  # trl's default (None) does it for prompt-completion rows
            packing=False,
        )
    if config.kind == "dpo":
        # The reference is the base, which the policy is before its first step: its
        # log-probabilities are computed once up front, and no second model is held.
        return trl.DPOConfig(
            **common, max_length=config.max_length, beta=config.beta, precompute_ref_log_probs=True
        )
    if config.kind == "reward":
        return trl.RewardConfig(**common, max_length=config.max_length)
    return trl.GRPOConfig(
        **common,
        num_generations=config.rl_num_generations,
        max_completion_length=config.completion_length,
        remove_unused_columns=True,  # only `prompt` reaches the reward model
    )


def build_trainer(config, args, dataset, base: str, tokenizer, reward_model: str | None):
    """The trl trainer of `config.kind` over `dataset` (trl's columns only)."""
    import trl

    if config.kind == "sft":
        return trl.SFTTrainer(
            model=load_causal_lm(base), args=args, train_dataset=dataset, processing_class=tokenizer
        )
    if config.kind == "dpo":
        return trl.DPOTrainer(
            model=load_causal_lm(base),  # also the reference (precompute_ref_log_probs)
            args=args,
            train_dataset=dataset,
            processing_class=tokenizer,
        )
    if config.kind == "reward":
        model = load_reward_model(base, from_causal=True)
        model.config.pad_token_id = tokenizer.pad_token_id  # the score is read at the last token
        return trl.RewardTrainer(
            model=model, args=args, train_dataset=dataset, processing_class=tokenizer
        )
    scorer = load_reward_model(reward_model, from_causal=False)
    scorer_tokenizer = load_tokenizer(reward_model)
    scorer.config.pad_token_id = scorer_tokenizer.pad_token_id
    return trl.GRPOTrainer(
        model=load_causal_lm(base),
        reward_funcs=scorer,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        reward_processing_classes=scorer_tokenizer,
    )


def log_steps(trainer, kind: str) -> None:
    """trl's per-step dicts (loss, learning rate, ...) go to the log at DEBUG, not to the
    worker's stdout, where transformers' PrinterCallback (with disable_tqdm) prints them:
    the record keeps the losses, -v and --log-file show each step."""
    import transformers

    class LogSteps(transformers.TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            log.debug("%s step %d: %s", kind, state.global_step, logs)

    trainer.remove_callback(transformers.PrinterCallback)
    trainer.add_callback(LogSteps())


def rl_prompt_budget(config) -> int:
    """GRPO does not truncate prompts: longer ones than this are left out before training."""
    return config.max_length - config.completion_length


def row_counts(kind: str, trainer, max_length: int) -> dict:
    """Rows trl trains on after its own processing, and how many of them it truncates."""
    data = trainer.train_dataset
    counts = {"rows_trained": len(data), "rows_truncated": 0}
    if kind == "sft":
        # Truncated rows end exactly at max_length (a row of exactly max_length counts too).
        lengths = [len(ids) for ids in data["input_ids"]]
        labels = data["labels"]
        counts["rows_truncated"] = sum(n >= max_length for n in lengths)
        counts["input_tokens"] = sum(lengths)
        counts["loss_tokens"] = sum(sum(t != -100 for t in row) for row in labels)
    elif kind == "dpo":
        # DPO's collator cuts prompt + longer answer at max_length.
        counts["rows_truncated"] = sum(
            len(p) + max(len(c), len(r)) > max_length
            for p, c, r in zip(data["prompt_ids"], data["chosen_ids"], data["rejected_ids"])
        )
    return counts
