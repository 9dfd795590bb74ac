"""Flow: one flywheel iteration (Arena Learning, section 2.4), end to end on one cluster.

pool -> decontaminated against the eval sets -> slices D1..DN -> for each data stage
of the iteration, on its own slice: the current model battles the opponents, the
battle outcomes are selected into a trl shard, a trl job trains the next checkpoint
(SFT on the losses, DPO on win/lose pairs, a reward model on the pairs accumulated
over iterations, then the on-policy RL trainer against it) -> the last checkpoint is
re-rated beside the model the iteration started from -> OUT/iteration-i/report.md.

Every step records its result in OUT/flywheel.json; a rerun skips recorded steps,
and the steps themselves resume (battle caches, stage markers, training records).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from arena_models.backends.vllm_backend import free_host_engines
from arena_models.local_models import resolve_model_path
from arena_models.roster import ModelSpec, load_roster, pick_model
from core.errors import UserError
from core.runner import run_stage
from core.submit import run_tasks
from pipeline.battle.config import BattleConfig
from pipeline.battle.run import battle_models
from pipeline.flows.battle import check_scoring, require_verdicts
from pipeline.flows.decontaminate import decontaminate
from pipeline.flows.ratings import RatingsConfig, rate_battles
from pipeline.flywheel.config import FlywheelConfig
from pipeline.flywheel.report import write_iteration_report
from pipeline.flywheel.rl_prompts import write_rl_prompts
from pipeline.flywheel.selection import SelectionConfig, select_shard
from pipeline.flywheel.slices import SliceConfig, TakeSlice
from pipeline.flywheel.state import FlywheelState
from pipeline.flywheel.trainers import require_model_folder
from pipeline.flywheel.training import TrainConfig, TrainJob, train_task

log = logging.getLogger(__name__)

TRAINABLE = ("vllm", "transformers")  # backends whose `path` is a model folder to train
# What a flywheel writes in its folder (jobs/outputs.py: nothing else may be there).
OUTPUTS = ("flywheel.json", "pool", "slices", "iteration-[0-9]*")


@dataclass(frozen=True)
class FlywheelSetup:
    """A checked iteration: who is trained against whom, judged by whom, trained how."""

    config: FlywheelConfig
    iteration: int
    start: ModelSpec  # the model the iteration starts from
    opponents: list[ModelSpec]
    judge: ModelSpec
    training: dict[str, TrainConfig]

    @property
    def resources(self) -> dict[str, float]:
        needed: dict[str, float] = {}
        models = [self.start, *self.opponents, self.judge]
        for amounts in [m.resources for m in models] + [
            t.resources for t in self.training.values()
        ]:
            for name, amount in amounts.items():
                needed[name] = max(amount, needed.get(name, 0))
        return needed


def prepare_flywheel(
    config: FlywheelConfig,
    out,
    iteration: int | None = None,
    *,
    overwrite: bool = False,
    check_paths: bool = True,
) -> FlywheelSetup:
    """Check everything an iteration needs before any cluster work: the roster holds
    the target and opponents, the judge exists, the target is a local model folder
    that loads, the pool exists, earlier iterations finished, training keys are known."""
    specs = load_roster(config.roster)
    names = [s.name for s in specs]
    target = pick_model(specs, config.target, "target")
    opponents = [pick_model(specs, o, "opponents") for o in config.opponents] or [
        s for s in specs if s.name != target.name
    ]
    if not opponents:
        raise UserError(f"roster {config.roster} has no opponent for {target.name}: {names}")
    if target.backend not in TRAINABLE:
        raise UserError(
            f"target {target.name} is a {target.backend} entry: the flywheel trains a local"
            f" model ({' or '.join(TRAINABLE)} with a path)"
        )
    judge = pick_model(config.judge_roster, config.judge)
    check_scoring(judge, config.judge_scoring)
    state = None if out is None or overwrite else FlywheelState.load(out)
    if iteration is None:
        finished = [
            int(n)
            for n, it in (state.data["iterations"] if state else {}).items()
            if it.get("status") == "done"
        ]
        iteration = min(max(finished, default=0) + 1, config.iterations)
    config.check_iteration(iteration)
    start = target
    if iteration > 1:
        if state is None:
            raise UserError(f"iteration {iteration}: {out} has no flywheel state; run iteration 1")
        final = state.require_finished(iteration - 1)["final_model"]
        start = checkpoint_spec(target, final["name"], final["path"])
    check_loadable(start)
    if check_paths:
        check_inputs(config, out, iteration)
    training = {kind: train_config(config, kind) for kind in config.stages}
    return FlywheelSetup(config, iteration, start, opponents, judge, training)


def check_inputs(config: FlywheelConfig, out, iteration: int) -> None:
    """The pool, eval sets and re-rating eval set exist (the main job makes them first)."""
    if iteration == 1 or not (Path(out) / "slices").is_dir():
        if not config.pool:
            raise UserError("the flywheel config needs `pool`: the training pool folder")
        if not Path(config.pool).exists():
            raise UserError(f"pool {config.pool}: no such folder")
    for against in config.decontaminate_against:
        if not Path(against).exists():
            raise UserError(f"decontaminate_against {against}: no such eval set")
    if not config.evalset or not Path(config.evalset).is_dir():
        raise UserError(f"evalset {config.evalset}: the eval set the checkpoints are re-rated on")


def train_config(config: FlywheelConfig, kind: str) -> TrainConfig:
    """The trainer settings of `kind`: the file's `train`, then its `train_by_kind[kind]`."""
    return TrainConfig.from_dict(kind, {**config.train, **config.train_by_kind.get(kind, {})})


def check_loadable(spec: ModelSpec) -> None:
    require_model_folder(resolve_model_path(str(spec.options.get("path", ""))))


def checkpoint_spec(target: ModelSpec, name: str, path: str | Path) -> ModelSpec:
    """The roster entry of a trained checkpoint: the target's settings, the new weights."""
    return dataclasses.replace(target, name=name, options={**target.options, "path": str(path)})


def run_flywheel(
    client,
    setup: FlywheelSetup,
    out,
    *,
    overwrite: bool = False,
) -> dict:
    """One iteration; returns its state entry (also in OUT/flywheel.json)."""
    cfg, i = setup.config, setup.iteration
    out = Path(out)
    state = FlywheelState.open(out, _jsonable(cfg.as_dict()), overwrite=overwrite)
    here = out / f"iteration-{i}"
    cache = Path(cfg.cache) if cfg.cache else out / "_cache"
    state.update(
        i,
        start_model={"name": setup.start.name, "path": str(setup.start.options["path"])},
        slices={k: cfg.slice_of(k, i) for k in cfg.data_stages},
        thresholds={f"{k}_gap": cfg.gap(k, i) for k in cfg.data_stages},
        opponents=[o.name for o in setup.opponents],
        judge=setup.judge.name,
    )
    pool = _step(state, i, "pool", lambda: training_pool(client, cfg, out))
    model = setup.start
    for kind in cfg.stages:
        if kind == "rl":
            model = _rl(client, setup, state, here, model)
            continue
        k = cfg.slice_of(kind, i)
        _step(
            state,
            i,
            f"slice D{k}",
            lambda k=k: take_slice(client, cfg, pool["folder"], k, out),
        )
        run_dir = here / kind / "battles"
        _step(
            state, i, f"{kind}.battle",
            lambda kind=kind, k=k, model=model, run_dir=run_dir: battle_on_slice(
                client, setup, model, out / "slices" / f"D{k}", run_dir, cache
            ),
        )  # fmt: skip
        runs, slices, target = [run_dir], [k], model.name
        if kind == "reward":  # reward data accumulates: D3, D3+D6, D3+D6+D9
            earlier = range(1, i + 1)
            runs = [out / f"iteration-{n}" / "reward" / "battles" for n in earlier]
            slices = [cfg.slice_of("reward", n) for n in earlier]
            target = None  # each run's own target: the DPO checkpoint of its iteration
        selected = _step(
            state, i, f"{kind}.select",
            lambda kind=kind, runs=runs, target=target, slices=slices: select_step(
                cfg, kind, runs, target, here / kind / "data", i, slices
            ),
        )  # fmt: skip
        trained = _step(
            state, i, f"{kind}.train",
            lambda kind=kind, model=model, selected=selected: train_step(
                client, setup, kind, model, selected, here / kind, None
            ),
        )  # fmt: skip
        if kind in ("sft", "dpo") and trained.get("checkpoint"):
            model = checkpoint_spec(
                setup.start, f"{cfg.target}-it{i}-{kind}", trained["checkpoint"]
            )
    rated = _step(state, i, "rate", lambda: rate_step(client, setup, model, here / "rate", cache))
    state.update(i, final_model={"name": model.name, "path": str(model.options["path"])})
    write_iteration_report(here, state.iteration(i), i)
    state.update(i, status="done", report=str(here / "report.md"))
    log.info("iteration %d: %s -> %s; %s", i, setup.start.name, model.name, rated["line"])
    log.info("report: %s", here / "report.md")
    return state.iteration(i)


def _step(state: FlywheelState, i: int, name: str, work: Callable[[], dict]) -> dict:
    """Run a step unless the state records it as done; record and log its result."""
    found = state.done(i, name)
    if found:
        log.info("%s: done before (%s)", name, found.get("line", ""))
        return found
    result = state.record(i, name, work())
    log.info("%s: %s", name, result.get("line", ""))
    return result


def training_pool(client, cfg: FlywheelConfig, out: Path) -> dict:
    """The pool the slices come from: decontaminated against every eval set first."""
    pool = Path(cfg.pool)
    if not cfg.decontaminate_against:
        return {
            "folder": str(pool),
            "line": f"pool {pool} (not decontaminated: no eval sets given)",
        }
    manifest = decontaminate(client, pool, list(cfg.decontaminate_against), out / "pool")
    return {
        "folder": str(out / "pool"),
        "rows_in": manifest["rows_in"],
        "removed": manifest["rows_rejected"],
        "rows": manifest["rows_out"],
        "line": f"{manifest['rows_out']} of {manifest['rows_in']} pool rows kept after"
        f" decontamination against {len(cfg.decontaminate_against)} eval sets"
        f" ({manifest['rows_rejected']} removed; {out / 'pool' / '_removed'})",
    }


def take_slice(client, cfg: FlywheelConfig, pool: str, k: int, out: Path) -> dict:
    folder = out / "slices" / f"D{k}"
    manifest = run_stage(
        TakeSlice(pool, folder, SliceConfig(cfg.slices, k, cfg.slice_seed)), client, progress=False
    )
    if manifest["rows_out"] == 0:
        raise UserError(
            f"slice D{k} of {cfg.slices} is empty ({manifest['rows_in']} pool rows): use fewer slices"
        )
    return {
        "folder": str(folder),
        "rows": manifest["rows_out"],
        "line": f"{manifest['rows_out']} of {manifest['rows_in']} pool rows -> {folder}",
    }


def battle_on_slice(
    client, setup: FlywheelSetup, model: ModelSpec, slice_dir: Path, run_dir: Path, cache: Path
) -> dict:
    cfg = setup.config
    config = BattleConfig(
        schedule="target",
        target=model.name,
        opponents=tuple(o.name for o in setup.opponents),
        limit=cfg.slice_prompts,
        combine=cfg.combine,
        judge_scoring=cfg.judge_scoring,
    )
    summary = battle_models(
        client, [model, *setup.opponents], setup.judge, evalset=slice_dir, out=run_dir,
        config=config, cache=cache,
    )  # fmt: skip
    require_verdicts(summary, run_dir)
    if not summary["prompts"]:
        left = summary.get("prompts_left_out") or {}
        raise UserError(
            f"{slice_dir}: no prompt every model can answer ({left.get('of', 0)} in the slice;"
            f" lacking: {left.get('lacking', {})})"
        )
    return {
        "run": str(run_dir),
        "model": model.name,
        "prompts": summary["prompts"],
        "games": summary["battles"],
        "judge_errors": summary["judge_errors"],
        "line": f"{model.name} vs {', '.join(o.name for o in setup.opponents)} on"
        f" {summary['prompts']} prompts: {summary['battles']} games,"
        f" {summary['judge_errors']} judge errors -> {run_dir}",
    }


def select_step(
    cfg: FlywheelConfig,
    kind: str,
    runs: list[Path],
    target: str | None,
    folder: Path,
    i: int,
    slices: list[int],
) -> dict:
    selection = SelectionConfig(
        kind=kind,
        **{f"{kind}_gap": cfg.gap(kind, i)},
        shard_rows=cfg.shard_rows,
        jsonl=cfg.jsonl,
    )
    manifest = select_shard([Path(r) for r in runs], target, selection, folder, slices=slices)
    dropped = sum(manifest["dropped"].values())
    return {
        "folder": str(folder),
        "rows": manifest["rows"],
        "dropped": manifest["dropped"],
        "sources": manifest["sources"],
        "line": f"{manifest['rows']} {kind} rows ({dropped} pairs or prompts dropped:"
        f" {_reasons(manifest['dropped'])}) -> {folder}",
    }


def _reasons(dropped: dict) -> str:
    return ", ".join(f"{n} {reason}" for reason, n in sorted(dropped.items())) or "none"


def train_step(
    client,
    setup: FlywheelSetup,
    kind: str,
    model: ModelSpec,
    selected: dict,
    folder: Path,
    reward_model,
) -> dict:
    if not selected["rows"]:
        return {
            "checkpoint": None,
            "trained_rows": 0,
            "line": f"no {kind} rows selected: {model.name} goes on untrained by {kind}",
        }
    name = "model" if kind == "reward" else "checkpoint"
    job = TrainJob(
        config=setup.training[kind],
        data=selected["folder"],
        base=resolve_model_path(str(model.options["path"])),
        out=str(folder / name),
        reward_model=reward_model,
    )
    # Training needs more memory than any other step: every worker whose engines live
    # in host memory lets them go (the task's own worker frees everything it holds).
    client.run(free_host_engines)
    [result] = run_tasks(
        client, train_task, [(job,)], desc=f"train {kind}", resources=job.resources
    )
    return {
        "checkpoint": str(folder / name),
        "trained_rows": result["rows_trained"],
        "rows_seen": result.get("rows_seen"),
        "selected_rows": result["rows_selected"],
        "steps": result.get("steps"),
        "final_loss": result.get("final_loss"),
        "tokens_per_second": result.get("tokens_per_second"),
        "seconds": result.get("seconds"),
        "line": f"{kind}: trl kept {result['rows_trained']} of {result['rows_selected']} rows,"
        f" {result.get('steps')} steps saw {result.get('rows_seen')}, loss {_loss(result)}"
        f" -> {folder / name}",
    }


def _loss(result: dict) -> str:
    loss = result.get("final_loss")
    return "n/a" if loss is None else f"{loss:.3f}"


def _rl(
    client, setup: FlywheelSetup, state: FlywheelState, here: Path, model: ModelSpec
) -> ModelSpec:
    """RL on the prompts of every reward slice so far, scored by this iteration's reward model."""
    i = setup.iteration
    reward = state.done(i, "reward.train") or {}
    if not reward.get("checkpoint"):
        log.info("rl: skipped, no reward model was trained")
        return model
    runs = [here.parent / f"iteration-{n}" / "reward" / "battles" for n in range(1, i + 1)]
    prompts = _step(state, i, "rl.prompts", lambda: write_rl_prompts(runs, here / "rl" / "data"))
    trained = _step(
        state, i, "rl.train",
        lambda: train_step(client, setup, "rl", model, prompts, here / "rl", reward["checkpoint"]),
    )  # fmt: skip
    if not trained.get("checkpoint"):
        return model
    return checkpoint_spec(setup.start, f"{setup.config.target}-it{i}-rl", trained["checkpoint"])


def rate_step(client, setup: FlywheelSetup, model: ModelSpec, folder: Path, cache: Path) -> dict:
    """The new checkpoint beside the model the iteration started from, on the eval set."""
    cfg = setup.config
    if model.name == setup.start.name:
        return {"line": f"nothing trained: {model.name} is not re-rated"}
    players = [setup.start, model, *setup.opponents]
    summary = battle_models(
        client, players, setup.judge, evalset=cfg.evalset, out=folder / "battles",
        config=BattleConfig(limit=cfg.rate_prompts, combine=cfg.combine), cache=cache,
    )  # fmt: skip
    require_verdicts(summary, folder / "battles")
    board = rate_battles(
        client, [folder / "battles" / "battles"], folder / "leaderboard",
        RatingsConfig(bootstrap=cfg.bootstrap),
    )  # fmt: skip
    table = board["table"].set_index("model")
    before, after = table.loc[setup.start.name], table.loc[model.name]
    return {
        "leaderboard": str(folder / "leaderboard"),
        "prompts": summary["prompts"],
        "before": _rating(before),
        "after": _rating(after),
        "line": f"rating {setup.start.name} {before.rating:.0f}"
        f" [{before.lower:.0f}, {before.upper:.0f}] -> {model.name} {after.rating:.0f}"
        f" [{after.lower:.0f}, {after.upper:.0f}] on {summary['prompts']} eval prompts",
    }


def _rating(row) -> dict:
    return {
        "rating": float(row.rating),
        "lower": float(row.lower),
        "upper": float(row.upper),
        "rank": int(row["rank"]),
    }


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
