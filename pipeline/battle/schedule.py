"""Which pairs of models meet on which prompt.

A pair is ordered by name (model_a < model_b) whatever the schedule, so the same
two models always make the same pair and their cached verdicts are found again
when the roster grows. The sampled schedule ranks opponents by a seeded hash of
(prompt, model, opponent) rather than a random draw: adding a model to the
roster only adds the pairs it wins a place in, and the draw is the same in
every process.
"""

from __future__ import annotations

from itertools import combinations

from core.errors import UserError
from core.schemas import short_hash
from pipeline.battle.config import BattleConfig


def _pair(x: str, y: str) -> tuple[str, str]:
    return (x, y) if x < y else (y, x)


def _known(name: str, models: list[str], what: str) -> None:
    if name not in models:
        raise UserError(f"{what} {name!r} is not in the roster ({', '.join(models)})")


def fixed_pairs(models: list[str], config: BattleConfig) -> list[tuple[str, str]]:
    """The pairs of the all-pairs, target and anchor schedules (the same on every prompt)."""
    if len(models) < 2:
        raise UserError(f"a battle needs at least two models; the roster has {len(models)}")
    if config.schedule == "all-pairs":
        return sorted(_pair(x, y) for x, y in combinations(models, 2))
    if config.schedule == "anchor":
        _known(config.anchor, models, "anchor")
        return sorted(_pair(config.anchor, m) for m in models if m != config.anchor)
    if config.schedule == "target":
        _known(config.target, models, "target")
        opponents = list(config.opponents) or [m for m in models if m != config.target]
        for o in opponents:
            _known(o, models, "opponent")
        return sorted({_pair(config.target, o) for o in opponents if o != config.target})
    raise ValueError(f"schedule {config.schedule} has no fixed pairs")


def sampled_pairs(
    prompt_id: str, models: list[str], k: int, seed: int, target: str | None = None
) -> list[tuple[str, str]]:
    """Each model (or only `target`) meets its `k` lowest-ranked opponents on this prompt."""
    players = [target] if target else models
    pairs = set()
    for m in players:
        ranked = sorted(
            (o for o in models if o != m),
            key=lambda o: short_hash(f"{seed}\x00{prompt_id}\x00{'|'.join(_pair(m, o))}", 8),
        )
        pairs.update(_pair(m, o) for o in ranked[:k])
    return sorted(pairs)


def battling_models(models: list[str], config: BattleConfig) -> list[str]:
    """The models the schedule can put in a battle, in roster order (sampled: any)."""
    if config.schedule == "sampled":
        return list(models)
    playing = {m for pair in fixed_pairs(models, config) for m in pair}
    return [m for m in models if m in playing]


def check_schedule(models: list[str], config: BattleConfig) -> None:
    """Raise UserError for a schedule the roster cannot play (before any work starts)."""
    if config.schedule != "sampled":
        fixed_pairs(models, config)
        return
    if len(models) < 2:
        raise UserError(f"a battle needs at least two models; the roster has {len(models)}")
    if config.target:
        _known(config.target, models, "target")


def schedule(
    prompt_ids: list[str], models: list[str], config: BattleConfig
) -> list[tuple[str, str, str]]:
    """(prompt_id, model_a, model_b) for every battle of the run."""
    check_schedule(models, config)
    if config.schedule != "sampled":
        pairs = fixed_pairs(models, config)
        return [(p, a, b) for p in prompt_ids for a, b in pairs]
    return [
        (p, a, b)
        for p in prompt_ids
        for a, b in sampled_pairs(p, models, config.k, config.seed, config.target)
    ]
