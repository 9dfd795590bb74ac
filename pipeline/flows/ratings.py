"""Flow: battle files -> Bradley-Terry leaderboard with bootstrap CIs (`arena elo`).

Battles are reduced to outcome counts per model pair on the workers; the fit and
the bootstrap work on those counts (pipeline/ratings). With `by`, the counts are kept
per value of a column too, and every value gets its own leaderboard beside the whole's
(pipeline/ratings/groups.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

# Imported where used, not here: the modules that read battle files and write leaderboards
# (pyarrow), which `arena elo --help` does not need (it loads this module for RatingsConfig),
# and those of a reference or style control (pandas), which `arena elo` imports only then.
from core.errors import UserError
from core.progress import LazyBar
from pipeline.ratings.bradley_terry import Anchor
from pipeline.ratings.online_elo import online_elo
from pipeline.ratings.pair_counts import PairCounts


@dataclass(frozen=True)
class RatingsConfig:
    ties: str = field(
        default="half",
        metadata={
            "help": "a tie counts half a win each way, or not at all",
            "choices": ("half", "ignore"),
        },
    )
    bothbad: str = field(
        default="tie", metadata={"help": "how 'tie (bothbad)' counts", "choices": ("tie", "ignore")}
    )
    anchor: str = field(
        default="mean=1000",
        metadata={"help": "mean=VALUE or MODEL=VALUE (paper: Llama-2-70B-Chat=1100)"},
    )
    bootstrap: int = field(default=100, metadata={"help": "bootstrap rounds (0: point fit only)"})
    seed: int = 0
    alpha: float = field(default=1e-4, metadata={"help": "regulariser: pseudo-count per pair"})
    judge: tuple[str, ...] = field(
        default=(), metadata={"help": "keep battles of this judge (repeatable)", "repeat": True}
    )
    models: tuple[str, ...] = field(
        default=(), metadata={"help": "comma-separated: keep battles between these models"}
    )
    since: str | None = field(
        default=None,
        metadata={"help": "keep battles on or after this date (tstamp or date column)"},
    )
    until: str | None = field(default=None, metadata={"help": "keep battles before this date"})
    online_elo: bool = field(
        default=False, metadata={"help": "add FastChat's online Elo (k=4) column"}
    )
    style_control: bool = field(
        default=False, metadata={"help": "add a style-controlled rating column"}
    )
    reference: str | None = field(
        default=None,
        metadata={"help": "reference leaderboard (model, rating[, lower, upper]) for consistency"},
    )
    by: str | None = field(
        default=None,
        metadata={
            "help": "also one leaderboard per value of this column (subset: Diverse / Hard, a"
            " Mix prompt in both counting in each; cluster) and a side-by-side table, in OUT/by/"
        },
    )

    def __post_init__(self):
        try:
            Anchor.parse(self.anchor)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        if self.bootstrap < 0:
            raise UserError(f"--bootstrap {self.bootstrap}: expected 0 or more rounds")
        if not 0 <= self.alpha < float("inf"):
            raise UserError(f"--alpha {self.alpha}: expected a pseudo-count >= 0")
        for flag, value in (("--since", self.since), ("--until", self.until)):
            if value is not None:
                try:  # checked here: a bad date would fail inside every counting task
                    datetime.fromisoformat(value)
                except ValueError:
                    raise UserError(
                        f"{flag} {value!r}: expected an ISO date (2024-05-01)"
                    ) from None
        if self.by is not None and not self.by.strip():
            raise UserError("--by is empty; give a column of the battle files (subset, cluster)")

    def rating_options(self):
        """The fit's options (pipeline.ratings.leaderboard.RatingOptions)."""
        from pipeline.ratings.leaderboard import RatingOptions  # lazy: pyarrow (see the top)

        return RatingOptions(
            self.ties,
            self.bothbad == "tie",
            Anchor.parse(self.anchor),
            self.bootstrap,
            self.alpha,
            self.seed,
        )

    def options(self) -> dict:
        return {
            "anchor": self.anchor,
            "ties": self.ties,
            "bothbad": self.bothbad,
            "bootstrap": self.bootstrap,
            "seed": self.seed,
            "alpha": self.alpha,
        }


def rate_battles(
    client, paths, out, config: RatingsConfig = RatingsConfig(), *, progress: bool = True
) -> RatingsSummary:
    """Aggregate, fit, write the leaderboard files; returns the summary (table included)."""
    import numpy as np

    # lazy: pyarrow (see the top)
    from pipeline.ratings.battle_files import aggregate_battles, collect_battles
    from pipeline.ratings.battle_rules import BattleFilter
    from pipeline.ratings.leaderboard import build_leaderboard, write_leaderboard

    anchor = Anchor.parse(config.anchor)
    # A bad reference fails before the battles are read and rated, not after.
    reference = None
    if config.reference:
        from pipeline.ratings.consistency import read_reference  # lazy: pandas (see the top)

        reference = read_reference(Path(config.reference))
    paths = [Path(p) for p in paths]
    filt = BattleFilter(tuple(config.judge), tuple(config.models), config.since, config.until)
    agg = grouped = aggregate_battles(paths, filt, client, progress=progress, by=config.by)
    if config.by is not None:
        agg = grouped.total
    if agg.battles == 0:
        raise UserError(
            f"no battles to rate (dropped: {agg.dropped or 0}, filtered out: {agg.filtered})"
        )
    bothbad_as_tie = config.bothbad == "tie"
    counts = PairCounts.from_cells(agg.models, agg.cells, bothbad_as_tie=bothbad_as_tie)
    options = config.rating_options()
    with LazyBar(config.bootstrap, "bootstrap", enabled=progress) as bar:
        board = build_leaderboard(counts, options, progress=bar)
    unrated = sorted(set(config.models) - set(counts.models))
    if unrated:
        board.warnings.append(f"no battles for {', '.join(unrated)}: not rated")

    extra = {
        "battles": agg.battles,
        "dropped": agg.dropped,
        "filtered": agg.filtered,
        "models": len(counts.models),
        "options": config.options(),
    }
    if config.online_elo or config.style_control:
        battles = collect_battles(paths, filt, client, progress=progress)
        if not bothbad_as_tie:
            battles = battles[battles.outcome != "tie (bothbad)"]
        index = {m: i for i, m in enumerate(counts.models)}
        if config.online_elo:
            elo = online_elo(
                battles.model_a.map(index).to_numpy(),
                battles.model_b.map(index).to_numpy(),
                battles.outcome.to_numpy(),
                counts.models,
            )
            board.add_column("online_elo", dict(zip(counts.models, elo)))
        if config.style_control:
            from pipeline.ratings.style_control import fit_style_controlled  # lazy: pandas

            fit = fit_style_controlled(battles, counts.models)
            shifted = anchor.apply(fit.elo, counts.models)
            board.add_column("rating_style_controlled", dict(zip(counts.models, shifted)))
            extra["style_coefficients"] = dict(zip(fit.features, np.round(fit.coefficients, 4)))
            if fit.left_out:
                board.warnings.append(
                    f"style control: {fit.left_out} battles without both lengths are left out"
                    " of its fit; the plain ratings count them"
                )
    if reference is not None:
        from pipeline.ratings.consistency import consistency  # lazy: pandas

        extra["consistency"] = consistency(board.table, reference)
    groups = None
    if config.by is not None:
        from pipeline.ratings.groups import rate_groups, write_group_boards  # lazy: pyarrow

        rounds = config.bootstrap * len(grouped.groups)
        with LazyBar(rounds, f"bootstrap by {config.by}", enabled=progress) as bar:
            groups = rate_groups(grouped, config.by, options, whole=board, progress=bar)
        extra["by"] = write_group_boards(groups, Path(out), {"options": config.options()})
    write_leaderboard(board, Path(out), extra)
    return RatingsSummary({**extra, "warnings": board.warnings}, board, groups)


class RatingsSummary(dict):
    """What `rate_battles` counted and wrote; `summary["table"]` is the leaderboard as pandas,
    made on first use, so a caller that only prints (`arena elo`) never imports pandas.
    `groups`: the per-value leaderboards (pipeline.ratings.groups.GroupBoards) with `by`."""

    def __init__(self, items: dict, board, groups=None):
        super().__init__(items)
        self.board = board
        self.groups = groups

    def __missing__(self, key):
        if key != "table":
            raise KeyError(key)
        self["table"] = self.board.table
        return self["table"]


def ratings_report(summary: RatingsSummary, out, *, whole_table: bool = True) -> str:
    """The leaderboard, its counts and warnings, and the side-by-side table of its groups;
    `whole_table=False` leaves the leaderboard's own table out where the side-by-side
    table shows its ratings (its `all` column)."""
    from pipeline.ratings.leaderboard import markdown_table  # lazy: pyarrow (see the top)

    whole_table = whole_table or summary.groups is None
    lines = [markdown_table(summary.board.columns).rstrip()] if whole_table else []
    dropped = sum(summary["dropped"].values())
    lines.append(
        f"{summary['battles']} battles counted, {dropped} dropped, {summary['filtered']} filtered out; "
        f"{summary['models']} models -> {out}/leaderboard.csv"
    )
    lines += [f"  dropped ({reason}): {n}" for reason, n in sorted(summary["dropped"].items())]
    lines += [f"  warning: {w}" for w in summary["warnings"]]
    if summary.groups is not None:
        from pipeline.ratings.groups import side_by_side_markdown  # lazy: pyarrow

        by = summary["by"]
        lines += ["", f"by {by['column']} ({out}/{by['table']}):", ""]
        lines.append(side_by_side_markdown(summary.groups).rstrip())
        lines += [f"  warning: {w}" for w in by["warnings"]]
    if "consistency" in summary:
        c = summary["consistency"]
        lines.append(
            f"consistency with reference ({c['models_compared']} models): spearman {c['spearman']:.3f}, "
            f"agreement with CI {c['agreement_with_ci']:.3f}, separability {c['separability']:.3f}, "
            f"brier {c['brier']:.4f}"
        )
    return "\n".join(lines)
