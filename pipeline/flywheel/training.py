"""Training jobs of the flywheel: one trl trainer over one shard, into one model folder.

In: a shard folder (`part-*.parquet` in trl's columns plus provenance, which is
dropped; `_manifest.json` beside them), a base checkpoint and, for `rl`, the reward
model the `reward` kind trained. Out: a model folder that vLLM and transformers load
(config.json, safetensors, tokenizer with its chat template; no optimizer state) with
`_training.json`: what was trained, on how many rows, how fast, the loss per step.

trl leaves rows out or cuts them without a word (RewardTrainer drops pairs over
max_length), so the record counts rows selected (the shard's), trained (after trl's
processing) and truncated, and the shard's manifest gets the trained count under
"trained". The folder appears whole or not at all (trained in a hidden folder beside
it, then renamed); a rerun with the same config and inputs returns the record without
training, another config on an existing folder is refused unless `overwrite`.

On Dask, `train_task(TrainJob)` is the task: it frees the worker's cached engines first,
holds `TrainConfig.resources` (GPU=1) like any model task, and trains in a child process
(train_process) whose memory is all returned when it ends.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from arena_models.local_models import resolve_model_path
from core.config_files import check_mapping, field_types, parse_resources
from core.errors import UserError
from core.hashing import config_hash, file_records, files_problem
from core.output_folder import recorded_names, refuse_foreign
from core.parquet_io import atomic_folder, part_files, require_columns, write_json_atomic
from core.worker_cache import TRANSFORMERS_MODEL, VLLM_ENGINE, free_memory, offload
from pipeline.flywheel import trainers
from pipeline.flywheel.train_process import train_in_process

log = logging.getLogger(__name__)

KINDS = ("sft", "dpo", "reward", "rl")
DEVICES = ("auto", "cpu", "cuda")
RECORD = "_training.json"
MANIFEST = "_manifest.json"

# Learning rates by kind, when the config gives none:
# - sft 2e-5: trl SFTConfig's default (full fine-tuning of small chat models).
# - dpo 5e-7: the Zephyr DPO recipe (alignment-handbook zephyr-7b-beta); trl's is 1e-6.
# - reward 1e-5: Llama 2's reward models (1e-5 below 70B); trl's 1e-4 suits adapters.
# - rl 1e-6: trl GRPOConfig's default.
LEARNING_RATES = {"sft": 2e-5, "dpo": 5e-7, "reward": 1e-5, "rl": 1e-6}


def _help(text: str, **more) -> dict:
    return {"help": text, **more}


@dataclass(frozen=True)
class TrainConfig:
    """One training job's settings; checks itself (UserError)."""

    kind: str = field(default="sft", metadata=_help("what to train", choices=KINDS))
    max_steps: int = field(default=200, metadata=_help("optimizer steps"))
    per_device_batch_size: int = field(default=2, metadata=_help("rows per device and step"))
    gradient_accumulation: int = field(default=1, metadata=_help("micro-batches per step"))
    learning_rate: float | None = field(
        default=None,
        metadata=_help(
            "AdamW learning rate (default by kind: sft 2e-5, dpo 5e-7, reward 1e-5, rl 1e-6)"
        ),
    )
    beta: float = field(default=0.1, metadata=_help("DPO's KL coefficient (trl's default)"))
    max_length: int = field(
        default=1024, metadata=_help("tokens of prompt + answer; longer rows are cut or dropped")
    )
    rl_num_generations: int = field(
        default=2, metadata=_help("rl: answers sampled per prompt (GRPO group size)")
    )
    rl_max_completion_length: int | None = field(
        default=None,
        metadata=_help(
            "rl: tokens of each sampled answer (default max_length / 2: trl's 512 at 1024)"
        ),
    )
    seed: int = field(default=0, metadata=_help("seed of the trainer and its data order"))
    device: str = field(
        default="auto", metadata=_help("auto: cuda when available", choices=DEVICES)
    )
    # Text (GPU=1,memory=2e9) from the command line or a file becomes the mapping.
    resources: dict[str, float] | str = field(
        default_factory=lambda: {"GPU": 1.0},
        metadata=_help("Dask resources a training task holds (default GPU=1; NAME=AMOUNT,...)"),
    )

    def __post_init__(self):
        if isinstance(self.resources, str):  # from the CLI: "GPU=1,memory=2e9"
            object.__setattr__(self, "resources", parse_resources(self.resources, "resources"))
        for name, number in field_types(type(self)).items():  # YAML reads 1e-5 as a string
            value = getattr(self, name)
            if number is not str and value is not None and not isinstance(value, bool):
                try:
                    object.__setattr__(self, name, number(value))
                except (TypeError, ValueError):
                    raise UserError(f"{name} {value!r}: expected a number") from None
        if self.kind not in KINDS:
            raise UserError(f"training kind {self.kind!r}: expected one of {', '.join(KINDS)}")
        if self.device not in DEVICES:
            raise UserError(f"device {self.device!r}: expected one of {', '.join(DEVICES)}")
        for name in ("max_steps", "per_device_batch_size", "gradient_accumulation", "max_length"):
            if int(getattr(self, name)) < 1:
                raise UserError(f"{name} must be at least 1")
        if self.learning_rate is not None and not 0 < self.learning_rate < 1:
            raise UserError(f"learning_rate {self.learning_rate}: expected 0 < rate < 1")
        if not 0 < self.beta < float("inf"):
            raise UserError(f"beta {self.beta}: expected a positive KL coefficient")
        if self.kind == "rl":
            if self.rl_num_generations < 2:
                raise UserError("rl_num_generations must be at least 2 (GRPO compares a group)")
            if (self.per_device_batch_size * self.gradient_accumulation) % self.rl_num_generations:
                raise UserError(
                    f"rl: per_device_batch_size x gradient_accumulation "
                    f"({self.per_device_batch_size * self.gradient_accumulation}) must be a multiple "
                    f"of rl_num_generations ({self.rl_num_generations})"
                )
            if not 1 <= self.completion_length < self.max_length:
                raise UserError(
                    f"rl_max_completion_length {self.completion_length}: expected 1 to "
                    f"max_length - 1 ({self.max_length - 1}), leaving room for the prompt"
                )

    @property
    def completion_length(self) -> int:
        """rl: the tokens GRPO samples per answer; the prompt gets the rest of max_length."""
        if self.rl_max_completion_length is not None:
            return self.rl_max_completion_length
        return max(1, self.max_length // 2)

    @property
    def resolved_learning_rate(self) -> float:
        return self.learning_rate if self.learning_rate is not None else LEARNING_RATES[self.kind]

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def fingerprint(self) -> dict:
        """What shapes the model: everything but where the task runs."""
        return {k: v for k, v in self.as_dict().items() if k != "resources"}

    @classmethod
    def from_dict(cls, kind: str, values: dict | None = None) -> TrainConfig:
        """A config from a mapping (a flywheel YAML's `train:`); unknown keys are an error."""
        check_mapping(cls, values or {}, f"{kind} training settings", not_settable=("kind",))
        return cls(kind=kind, **(values or {}))


@dataclass(frozen=True)
class TrainJob:
    """A training job as a Dask task argument: `train_task(job)`."""

    config: TrainConfig
    data: str
    base: str
    out: str
    reward_model: str | None = None
    overwrite: bool = False

    @property
    def resources(self) -> dict[str, float]:
        return dict(self.config.resources)


def train_task(job: TrainJob) -> dict:
    """The Dask task: free the worker's cached engines, then `train` in a child process
    (train_process), so that the trainer's memory leaves with it."""
    # A worker that ran battles holds vLLM engines (and transformers models): their
    # memory goes to the trainer.
    offload(VLLM_ENGINE)
    offload(TRANSFORMERS_MODEL)
    return train_in_process(job)


def train(
    config: TrainConfig | str,
    data_folder: str | os.PathLike,
    base_model_path: str | os.PathLike,
    out_folder: str | os.PathLike,
    *,
    reward_model: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> dict:
    """Train `config.kind` on the shard into `out_folder`; returns the `_training.json` record
    (with `"resumed": True` when a finished folder of the same job was found)."""

    config = TrainConfig(kind=config) if isinstance(config, str) else config
    plan = _plan(config, data_folder, base_model_path, reward_model, out_folder)
    done = _finished(plan.out, plan.digest, overwrite)
    if done is not None:
        _note_trained(plan.data, done)  # a shard rewritten with the same rows gets it back
        return {**done, "resumed": True}

    _set_threads()
    # A killed attempt (SIGKILL, a dead worker) leaves its temporary folder: a whole
    # checkpoint's worth of disk that nothing else would ever remove.
    for stale in plan.out.parent.glob(f".{plan.out.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    try:
        with atomic_folder(plan.out, replace=True) as tmp:
            record = _run(config, plan, tmp)
            record.update(
                config=config.as_dict(),
                config_hash=plan.digest,
                data=str(plan.data),
                base=plan.base,
                reward_model=plan.scorer,
                out=str(plan.out),
            )
            # What a rerun checks before it trusts the folder (sizes, then BLAKE2b).
            files = sorted(p for p in tmp.rglob("*") if p.is_file())
            record["files"] = file_records(tmp, files)
            write_json_atomic(record, tmp / RECORD)
    finally:
        free_memory()  # the trainer's models, for a caller that goes on in this process
    _note_trained(plan.data, record)
    return record


def check_job(job: TrainJob) -> None:
    """The checks that need no model loaded, for a CLI to run before a cluster starts: the
    shard's rows and columns, the checkpoints' config.json, the output folder."""
    plan = _plan(job.config, job.data, job.base, job.reward_model, job.out)

    for path in filter(None, (plan.base, plan.scorer)):
        trainers.require_model_folder(path)
    _finished(plan.out, plan.digest, job.overwrite)


def training_report(record: dict) -> str:
    """A few lines for a person: what was trained, on what, how fast, to which loss."""
    if record.get("resumed"):
        head = f"{record['out']}: already trained ({record['kind']}), nothing to do"
    else:
        head = f"{record['out']}: trained {record['kind']} in {record['seconds']:.0f} s"
    loss = record.get("final_loss")
    return "\n".join(
        [
            head,
            f"  rows: {record['rows_selected']} selected, {record['rows_trained']} trained, "
            f"{record['rows_truncated']} truncated, {record['rows_dropped']} dropped",
            f"  steps {record['steps']}, {record['train_tokens']} tokens "
            f"({record['tokens_per_second']} tokens/s) on {record['device']} ({record['dtype']})",
            f"  final loss {loss:.4f}" if loss is not None else "  no loss logged",
        ]
    )


def read_record(out_folder: str | os.PathLike) -> dict | None:
    """The `_training.json` of a model folder, None when it has none."""
    path = Path(out_folder) / RECORD
    return json.loads(path.read_text()) if path.is_file() else None


@dataclass(frozen=True)
class _Plan:
    data: Path
    parts: list[Path]
    rows: int
    base: str
    scorer: str | None
    out: Path
    digest: str


def _plan(config: TrainConfig, data_folder, base_model_path, reward_model, out_folder) -> _Plan:
    """The job's inputs resolved and checked, and the hash binding an output folder to them."""
    if config.kind == "rl" and reward_model is None:
        raise UserError("rl training needs a reward model (the folder `arena train reward` wrote)")
    data = Path(data_folder)
    base = resolve_model_path(str(base_model_path))
    scorer = resolve_model_path(str(reward_model)) if reward_model is not None else None
    parts, rows = _check_shard(data, config.kind)
    identity = {
        "config": config.fingerprint(),
        "data": _shard_fingerprint(data, parts),
        "base": _checkpoint_fingerprint(base),
        "reward_model": _checkpoint_fingerprint(scorer) if scorer else None,
    }
    return _Plan(data, parts, rows, base, scorer, Path(out_folder), config_hash(identity))


def _checkpoint_fingerprint(path: str) -> dict:
    """A checkpoint by its path and, when a training job wrote it, that job's hash: a base or
    reward model retrained in place makes this job another one."""
    folder = Path(path)
    record = read_record(folder) if folder.is_dir() else None
    return {
        "path": str(folder.resolve()) if folder.exists() else path,
        "trained": record.get("config_hash") if record else None,
    }


def _run(config: TrainConfig, plan: _Plan, tmp: Path) -> dict:
    import datasets
    import torch
    import transformers
    import trl

    device, bf16 = _resolve_device(config.device)
    tokenizer = trainers.load_tokenizer(plan.base)
    keep = [
        c
        for c in trainers.COLUMNS[config.kind] + trainers.OPTIONAL_COLUMNS.get(config.kind, ())
        if c in _columns(plan.parts[0])
    ]
    tmp.mkdir(parents=True)
    dataset = datasets.load_dataset(
        "parquet",
        data_files=[str(p) for p in plan.parts],
        split="train",
        cache_dir=str(tmp / "_datasets"),  # trl's tokenized copies go with the temporary folder
    ).select_columns(keep)  # provenance columns never reach trl
    dropped_before = 0
    if config.kind == "rl":
        budget = trainers.rl_prompt_budget(config)
        fits = dataset.filter(lambda row: _prompt_tokens(tokenizer, row["prompt"]) <= budget)
        dropped_before, dataset = len(dataset) - len(fits), fits
        if not len(dataset):
            raise UserError(
                f"rl: no prompt fits in {budget} tokens (max_length - rl_max_completion_length)"
            )
    args = trainers.trl_arguments(config, tmp / "_trainer", device, bf16)
    trainer = trainers.build_trainer(config, args, dataset, plan.base, tokenizer, plan.scorer)
    trainers.log_steps(trainer, config.kind)
    counts = trainers.row_counts(config.kind, trainer, config.max_length)
    if counts["rows_trained"] == 0:
        raise UserError(
            f"{config.kind}: trl kept none of the {plan.rows} rows at max_length"
            f" {config.max_length} (it drops longer ones): raise max_length"
        )

    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started

    trainer.save_model(str(tmp))
    tokenizer.save_pretrained(str(tmp))  # tokenizer.json and the chat template beside it
    for scratch in ("_trainer", "_datasets"):
        shutil.rmtree(tmp / scratch, ignore_errors=True)
    (tmp / "training_args.bin").unlink(missing_ok=True)  # a pickle; the record holds the config
    history = trainer.state.log_history
    losses = [{"step": h["step"], "loss": float(h["loss"])} for h in history if "loss" in h]
    tokens = max((int(h["num_tokens"]) for h in history if "num_tokens" in h), default=0)
    last = next((h for h in reversed(history) if "loss" in h), {})
    return {
        "kind": config.kind,
        "rows_selected": plan.rows,
        "rows_dropped": plan.rows - counts["rows_trained"],
        **counts,
        "steps": trainer.state.global_step,
        "rows_seen": _rows_seen(config, trainer.state.global_step, counts["rows_trained"]),
        "train_tokens": tokens,
        "seconds": round(seconds, 3),
        "tokens_per_second": round(tokens / seconds, 1) if seconds > 0 else None,
        "losses": losses,
        "final_loss": losses[-1]["loss"] if losses else None,
        "last_log": {k: v for k, v in last.items() if isinstance(v, int | float)},
        "rl_prompts_over_budget": dropped_before if config.kind == "rl" else None,
        "rl_completion_length": config.completion_length if config.kind == "rl" else None,
        "learning_rate": config.resolved_learning_rate,
        "device": device,
        "dtype": "bfloat16 autocast, float32 weights" if bf16 else "float32",
        "torch_threads": torch.get_num_threads(),
        "trl_version": trl.__version__,
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
    }


def _rows_seen(config: TrainConfig, steps: int, rows: int) -> int:
    """Distinct rows the optimizer stepped on: a short run sees only its first batches
    (GRPO's batch counts completions, `rl_num_generations` of them per prompt)."""
    per_step = config.per_device_batch_size * config.gradient_accumulation
    if config.kind == "rl":
        per_step //= config.rl_num_generations
    return min(rows, steps * per_step)


def _prompt_tokens(tokenizer, messages: list[dict]) -> int:
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def _check_shard(data: Path, kind: str) -> tuple[list[Path], int]:
    import pyarrow.parquet as pq

    if not data.is_dir():
        raise UserError(f"shard {data} is not a folder")
    parts = part_files(data)
    rows = 0
    for part in parts:
        try:
            rows += pq.read_metadata(part).num_rows
        except (OSError, ValueError) as exc:  # ArrowInvalid is a ValueError
            raise UserError(f"{part}: not a readable Parquet file ({exc})") from None
    if not rows:
        raise UserError(f"shard {data} has no rows")
    require_columns(
        pq.read_schema(parts[0]), trainers.COLUMNS[kind], f"shard {data} ({kind} training)"
    )
    return parts, rows


def _columns(part: Path) -> list[str]:
    import pyarrow.parquet as pq

    return pq.read_schema(part).names


def _shard_fingerprint(data: Path, parts: list[Path]) -> dict:
    """The shard's content hash when its manifest has one, else its parts' names and sizes."""
    manifest = _read_json(data / MANIFEST)
    if manifest.get("content_hash"):
        return {"content_hash": manifest["content_hash"]}
    return {"parts": [[p.name, p.stat().st_size] for p in parts]}


def _finished(out: Path, digest: str, overwrite: bool) -> dict | None:
    """The record of a finished identical job in `out`, None to train; refuses to replace
    another job's folder unless `overwrite`."""
    if not out.exists():
        return None
    record = read_record(out)
    if record is not None and record.get("config_hash") == digest:
        problem = files_problem(out, record.get("files"))
        if problem is None:
            return record
        log.warning("%s: training again: %s", out, problem)
        return None
    if overwrite:  # the folder is replaced whole: it may hold only what training wrote
        refuse_foreign(out, recorded_names([out / RECORD]) if record is not None else ())
        return None
    if record is not None:
        raise UserError(
            f"{out} holds a model trained with another config or data "
            f"({record.get('kind')}, hash {record.get('config_hash')}); "
            "use another --out or --overwrite"
        )
    if any(out.iterdir()):
        raise UserError(f"{out} exists and is no training output; use another --out or --overwrite")
    return None


def _note_trained(data: Path, record: dict) -> None:
    """The shard's manifest records what training used of it, next to what selection wrote."""

    path = data / MANIFEST
    manifest = _read_json(path)
    if not path.is_file():
        return
    manifest["trained"] = {
        "kind": record["kind"],
        "rows": record["rows_trained"],
        "rows_truncated": record["rows_truncated"],
        "rows_dropped": record["rows_dropped"],
        "max_length": record["config"]["max_length"],
        "model": record["out"],
        "config_hash": record["config_hash"],
    }
    write_json_atomic(manifest, path)


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        value = json.loads(path.read_text())
    except ValueError:
        raise UserError(f"{path}: not JSON") from None
    return value if isinstance(value, dict) else {}


def _resolve_device(device: str) -> tuple[str, bool]:
    """(device, bf16 autocast): cuda when asked for or available; bf16 only where the GPU
    computes it, never on CPU."""
    import torch

    available = torch.cuda.is_available()
    if device == "cuda" and not available:
        raise UserError("device cuda: torch sees no CUDA device here (use --device cpu or auto)")
    resolved = "cuda" if device == "cuda" or (device == "auto" and available) else "cpu"
    return resolved, resolved == "cuda" and torch.cuda.is_bf16_supported()


def _set_threads() -> None:
    threads = os.environ.get("OMP_NUM_THREADS", "")
    if threads.isdigit() and int(threads) > 0:
        import torch

        torch.set_num_threads(int(threads))
