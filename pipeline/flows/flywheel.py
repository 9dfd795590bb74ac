"""Flow: one flywheel iteration (Arena Learning, section 2.4), end to end on one cluster.

pool -> decontaminated against the eval sets -> slices D1..DN -> for each data phase
of the iteration, on its own slice: the current model battles the opponents, the
battle outcomes are selected into a trl shard, a trl job trains the next checkpoint
(SFT on the losses, DPO on win/lose pairs, a reward model on the pairs accumulated
over iterations, then the on-policy RL trainer against it) -> the last checkpoint is
re-rated beside the model the iteration started from -> OUT/iteration-i/report.md.

The iteration is planned as a list of named steps first (`plan_iteration`), then run in
order; a step reads what earlier ones made from their results (StepResult), and records
its own in OUT/flywheel.json. A rerun skips recorded steps, handing their recorded
results on, and the steps themselves resume (battle caches, stage markers, training
records).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
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
from pipeline.flywheel.cost import iteration_cost
from pipeline.flywheel.report import write_iteration_report
from pipeline.flywheel.rl_prompts import write_rl_prompts
from pipeline.flywheel.selection import SelectionConfig, select_shard
from pipeline.flywheel.slices import SliceConfig, TakeSlice
from pipeline.flywheel.state import FlywheelState
from pipeline.flywheel.steps import Step, StepResult
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
    training = {kind: train_config(config, kind) for kind in config.phases}
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
    state.update(
        i,
        start_model={"name": setup.start.name, "path": str(setup.start.options["path"])},
        slices={k: cfg.slice_of(k, i) for k in cfg.data_phases},
        thresholds={f"{k}_gap": cfg.gap(k, i) for k in cfg.data_phases},
        opponents=[o.name for o in setup.opponents],
        judge=setup.judge.name,
    )
    cache = Path(cfg.cache) if cfg.cache else out / "_cache"
    run = IterationRun(client, setup, out, cache, model=setup.start)
    for step in plan_iteration(cfg, i):
        run_step(state, run, step)
    model, here = run.model, run.here
    final = {"name": model.name, "path": str(model.options["path"])}
    state.update(i, final_model=final, cost=iteration_cost(here))
    write_iteration_report(here, state.iteration(i), i)
    state.update(i, status="done", report=str(here / "report.md"))
    log.info(
        "iteration %d: %s -> %s; %s", i, setup.start.name, model.name, run.results["rate"].line
    )
    log.info("report: %s", here / "report.md")
    return state.iteration(i)


def plan_iteration(cfg: FlywheelConfig, i: int) -> list[Step]:
    """Iteration i's steps in the order they run: the pool; per data phase its slice, the
    current model's battles on it, the selected shard and the training; rl's prompts and
    training (it battles no slice: the reward model just trained scores the policy's own
    answers); then the re-rating of the last checkpoint."""
    steps = [Step("pool", pool_step)]
    for phase in cfg.phases:
        # Every phase but the reward model trains the policy: its checkpoint goes on.
        policy = None if phase == "reward" else f"{cfg.target}-it{i}-{phase}"
        if phase == "rl":
            reward = "reward.train"
            steps += [
                Step("rl.prompts", rl_prompts_step, needs_model_of=reward),
                Step(
                    "rl.train",
                    train_step,
                    ("rl", "rl.prompts", reward),
                    policy=policy,
                    needs_model_of=reward,
                ),
            ]
            continue
        k = cfg.slice_of(phase, i)
        steps += [
            Step(f"slice D{k}", slice_step, (k,)),
            Step(f"{phase}.battle", battle_step, (phase, f"slice D{k}")),
            Step(f"{phase}.select", select_step, (phase,)),
            Step(f"{phase}.train", train_step, (phase, f"{phase}.select"), policy=policy),
        ]
    return [*steps, Step("rate", rate_step)]


@dataclass
class IterationRun:
    """An iteration under way: what its steps share, and what they made so far."""

    client: object
    setup: FlywheelSetup
    out: Path  # the flywheel's folder
    cache: Path  # answers and verdicts
    model: ModelSpec  # the policy: the start model, then each checkpoint trained
    results: dict[str, StepResult] = field(default_factory=dict)

    @property
    def config(self) -> FlywheelConfig:
        return self.setup.config

    @property
    def here(self) -> Path:
        return self.out / f"iteration-{self.setup.iteration}"

    def reward_runs(self) -> list[Path]:
        """The reward phase's battle runs of every iteration so far: its data accumulates
        (D3, D3+D6, D3+D6+D9)."""
        return [
            self.out / f"iteration-{n}" / "reward" / "battles"
            for n in range(1, self.setup.iteration + 1)
        ]


def run_step(state: FlywheelState, run: IterationRun, step: Step) -> None:
    """Run a step unless the state records it as done; record, log and keep its result."""
    i = run.setup.iteration
    if step.needs_model_of and not run.results[step.needs_model_of].checkpoint:
        log.info("%s: skipped, %s trained no model", step.name, step.needs_model_of)
        return
    result = state.done(i, step.name)
    if result is not None:
        log.info("%s: done before (%s)", step.name, result.line)
    else:
        result = state.record(i, step.name, step.work(run, *step.args))
        log.info("%s: %s", step.name, result.line)
    run.results[step.name] = result
    if step.policy and result.checkpoint:
        run.model = checkpoint_spec(run.setup.start, step.policy, result.checkpoint)


def pool_step(run: IterationRun) -> StepResult:
    """The pool the slices come from: decontaminated against every eval set first."""
    cfg, out = run.config, run.out
    pool = Path(cfg.pool)
    if not cfg.decontaminate_against:
        return StepResult(f"pool {pool} (not decontaminated: no eval sets given)", folder=str(pool))
    manifest = decontaminate(run.client, pool, list(cfg.decontaminate_against), out / "pool")
    return StepResult(
        f"{manifest['rows_out']} of {manifest['rows_in']} pool rows kept after"
        f" decontamination against {len(cfg.decontaminate_against)} eval sets"
        f" ({manifest['rows_rejected']} removed; {out / 'pool' / '_removed'})",
        folder=str(out / "pool"),
        rows=manifest["rows_out"],
        details={"rows_in": manifest["rows_in"], "removed": manifest["rows_rejected"]},
    )


def slice_step(run: IterationRun, k: int) -> StepResult:
    """Slice Dk of the pool the pool step named."""
    return take_slice(run.client, run.config, run.results["pool"].folder, k, run.out)


def take_slice(client, cfg: FlywheelConfig, pool: str, k: int, out: Path) -> StepResult:
    folder = out / "slices" / f"D{k}"
    manifest = run_stage(
        TakeSlice(pool, folder, SliceConfig(cfg.slices, k, cfg.slice_seed)), client, progress=False
    )
    if manifest["rows_out"] == 0:
        raise UserError(
            f"slice D{k} of {cfg.slices} is empty ({manifest['rows_in']} pool rows): use fewer slices"
        )
    return StepResult(
        f"{manifest['rows_out']} of {manifest['rows_in']} pool rows -> {folder}",
        folder=str(folder),
        rows=manifest["rows_out"],
    )


def battle_step(run: IterationRun, phase: str, slice_name: str) -> StepResult:
    """The current model against the opponents on the phase's slice (that step's folder)."""
    cfg, setup, model = run.config, run.setup, run.model
    slice_dir, run_dir = Path(run.results[slice_name].folder), run.here / phase / "battles"
    config = BattleConfig(
        schedule="target",
        target=model.name,
        opponents=tuple(o.name for o in setup.opponents),
        limit=cfg.slice_prompts,
        combine=cfg.combine,
        judge_scoring=cfg.judge_scoring,
    )
    summary = battle_models(
        run.client, [model, *setup.opponents], setup.judge, evalset=slice_dir, out=run_dir,
        config=config, cache=run.cache,
    )  # fmt: skip
    require_verdicts(summary, run_dir)
    if not summary["prompts"]:
        left = summary.get("prompts_left_out") or {}
        raise UserError(
            f"{slice_dir}: no prompt every model can answer ({left.get('of', 0)} in the slice;"
            f" lacking: {left.get('lacking', {})})"
        )
    return StepResult(
        f"{model.name} vs {', '.join(o.name for o in setup.opponents)} on"
        f" {summary['prompts']} prompts: {summary['battles']} games,"
        f" {summary['judge_errors']} judge errors -> {run_dir}",
        run=str(run_dir),
        details={
            "model": model.name,
            "prompts": summary["prompts"],
            "games": summary["battles"],
            "judge_errors": summary["judge_errors"],
        },
    )


def select_step(run: IterationRun, phase: str) -> StepResult:
    """The phase's trl shard from its battles; the reward model's from every iteration's
    reward battles so far, each run's target its own (that iteration's DPO checkpoint)."""
    cfg, i = run.config, run.setup.iteration
    runs, slices, target = [run.here / phase / "battles"], [cfg.slice_of(phase, i)], run.model.name
    if phase == "reward":
        runs, target = run.reward_runs(), None
        slices = [cfg.slice_of("reward", n) for n in range(1, i + 1)]
    folder = run.here / phase / "data"
    selection = SelectionConfig(
        kind=phase,
        **{f"{phase}_gap": cfg.gap(phase, i)},
        shard_rows=cfg.shard_rows,
        jsonl=cfg.jsonl,
    )
    manifest = select_shard(runs, target, selection, folder, slices=slices)
    dropped = sum(manifest["dropped"].values())
    return StepResult(
        f"{manifest['rows']} {phase} rows ({dropped} pairs or prompts dropped:"
        f" {_reasons(manifest['dropped'])}) -> {folder}",
        folder=str(folder),
        rows=manifest["rows"],
        details={"dropped": manifest["dropped"], "sources": manifest["sources"]},
    )


def _reasons(dropped: dict) -> str:
    return ", ".join(f"{n} {reason}" for reason, n in sorted(dropped.items())) or "none"


def rl_prompts_step(run: IterationRun) -> StepResult:
    """RL's prompts: those of every reward slice so far."""
    return write_rl_prompts(run.reward_runs(), run.here / "rl" / "data")


def train_step(
    run: IterationRun, phase: str, data_step: str, reward_step: str | None = None
) -> StepResult:
    """The current model trained on `data_step`'s rows (rl: scored by `reward_step`'s
    reward model); a reward model is written to `model/`, a policy to `checkpoint/`."""
    model, data, folder = run.model, run.results[data_step], run.here / phase
    if not data.rows:
        return StepResult(
            f"no {phase} rows selected: {model.name} goes on untrained by {phase}",
            details={"trained_rows": 0},
        )
    name = "model" if phase == "reward" else "checkpoint"
    job = TrainJob(
        config=run.setup.training[phase],
        data=data.folder,
        base=resolve_model_path(str(model.options["path"])),
        out=str(folder / name),
        reward_model=run.results[reward_step].checkpoint if reward_step else None,
    )
    # Training needs more memory than any other step: every worker whose engines live
    # in host memory lets them go (the task's own worker frees everything it holds).
    run.client.run(free_host_engines)
    [result] = run_tasks(
        run.client, train_task, [(job,)], desc=f"train {phase}", resources=job.resources
    )
    return StepResult(
        f"{phase}: trl kept {result['rows_trained']} of {result['rows_selected']} rows,"
        f" {result.get('steps')} steps saw {result.get('rows_seen')}, loss {_loss(result)}"
        f" -> {folder / name}",
        checkpoint=str(folder / name),
        details={
            "trained_rows": result["rows_trained"],
            "rows_seen": result.get("rows_seen"),
            "selected_rows": result["rows_selected"],
            "steps": result.get("steps"),
            "final_loss": result.get("final_loss"),
            "tokens_per_second": result.get("tokens_per_second"),
            "seconds": result.get("seconds"),
        },
    )


def _loss(result: dict) -> str:
    loss = result.get("final_loss")
    return "n/a" if loss is None else f"{loss:.3f}"


def rate_step(run: IterationRun) -> StepResult:
    """The new checkpoint beside the model the iteration started from, on the eval set."""
    cfg, setup, model, folder = run.config, run.setup, run.model, run.here / "rate"
    if model.name == setup.start.name:
        return StepResult(f"nothing trained: {model.name} is not re-rated")
    players = [setup.start, model, *setup.opponents]
    summary = battle_models(
        run.client, players, setup.judge, evalset=cfg.evalset, out=folder / "battles",
        config=BattleConfig(limit=cfg.rate_prompts, combine=cfg.combine), cache=run.cache,
    )  # fmt: skip
    require_verdicts(summary, folder / "battles")
    board = rate_battles(
        run.client, [folder / "battles" / "battles"], folder / "leaderboard",
        RatingsConfig(bootstrap=cfg.bootstrap),
    )  # fmt: skip
    table = board["table"].set_index("model")
    before, after = table.loc[setup.start.name], table.loc[model.name]
    return StepResult(
        f"rating {setup.start.name} {before.rating:.0f}"
        f" [{before.lower:.0f}, {before.upper:.0f}] -> {model.name} {after.rating:.0f}"
        f" [{after.lower:.0f}, {after.upper:.0f}] on {summary['prompts']} eval prompts",
        leaderboard=str(folder / "leaderboard"),
        details={
            "prompts": summary["prompts"],
            "before": _rating(before),
            "after": _rating(after),
        },
    )


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
