"""`arena elo BATTLES... --out DIR`: Bradley-Terry leaderboard with bootstrap CIs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jobs.cluster import add_cluster_arguments


def register(sub) -> None:
    p = sub.add_parser(
        "elo", help="rate models from battle files (ours, FastChat's, left/right votes)"
    )
    p.add_argument(
        "battles", nargs="+", help="Parquet / CSV / JSONL battle files or Parquet folders"
    )
    p.add_argument("--out", required=True, help="output folder for leaderboard files")
    p.add_argument(
        "--ties",
        choices=["half", "ignore"],
        default="half",
        help="a tie counts half a win each way, or not at all",
    )
    p.add_argument(
        "--bothbad", choices=["tie", "ignore"], default="tie", help="how 'tie (bothbad)' counts"
    )
    p.add_argument(
        "--anchor",
        default="mean=1000",
        help="mean=VALUE or MODEL=VALUE (paper: Llama-2-70B-Chat=1100)",
    )
    p.add_argument(
        "--bootstrap", type=int, default=100, help="bootstrap rounds (0: point fit only)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--alpha", type=float, default=1e-4, help="regulariser: pseudo-count per pair")
    p.add_argument(
        "--judge", action="append", default=[], help="keep battles of this judge (repeatable)"
    )
    p.add_argument(
        "--models", default="", help="comma-separated: keep battles between these models"
    )
    p.add_argument(
        "--since", help="keep battles on or after this date (needs tstamp or date column)"
    )
    p.add_argument("--until", help="keep battles before this date")
    p.add_argument(
        "--online-elo", action="store_true", help="add FastChat's online Elo (k=4) column"
    )
    p.add_argument(
        "--style-control", action="store_true", help="add a style-controlled rating column"
    )
    p.add_argument(
        "--reference",
        help="reference leaderboard (model, rating[, lower, upper]) for consistency metrics",
    )
    add_cluster_arguments(p)
    p.set_defaults(run=run)


def recompute(
    client,
    paths,
    out,
    *,
    anchor: str = "mean=1000",
    ties: str = "half",
    bothbad: str = "tie",
    bootstrap: int = 100,
    seed: int = 0,
    alpha: float = 1e-4,
    judges=(),
    models=(),
    since=None,
    until=None,
    online: bool = False,
    style: bool = False,
    reference=None,
    progress: bool = True,
) -> dict:
    """Aggregate, fit, write the leaderboard files; returns the summary (table included)."""
    import numpy as np
    from tqdm import tqdm

    from pipeline.errors import UserError
    from pipeline.ratings.battle_files import BattleFilter, aggregate_battles, collect_battles
    from pipeline.ratings.bradley_terry import Anchor
    from pipeline.ratings.leaderboard import RatingOptions, build_leaderboard, write_leaderboard
    from pipeline.ratings.pair_counts import PairCounts

    try:
        parsed_anchor = Anchor.parse(anchor)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    paths = [Path(p) for p in paths]
    filt = BattleFilter(tuple(judges), tuple(models), since, until)
    agg = aggregate_battles(paths, filt, client)
    if agg.battles == 0:
        raise UserError(
            f"no battles to rate (dropped: {agg.dropped or 0}, filtered out: {agg.filtered})"
        )
    counts = PairCounts.from_counts(agg.counts, bothbad_as_tie=bothbad == "tie")
    options = RatingOptions(ties, bothbad == "tie", parsed_anchor, bootstrap, alpha, seed)
    with tqdm(
        total=bootstrap, desc="bootstrap", file=sys.stderr, disable=not progress or not bootstrap
    ) as bar:
        board = build_leaderboard(counts, options, progress=bar)
    unrated = sorted(set(models) - set(counts.models))
    if unrated:
        board.warnings.append(f"no battles for {', '.join(unrated)}: not rated")

    extra = {
        "battles": agg.battles,
        "dropped": agg.dropped,
        "filtered": agg.filtered,
        "models": len(counts.models),
        "options": {
            "anchor": anchor,
            "ties": ties,
            "bothbad": bothbad,
            "bootstrap": bootstrap,
            "seed": seed,
            "alpha": alpha,
        },
    }
    if online or style:
        battles = collect_battles(paths, filt, client)
        if bothbad != "tie":
            battles = battles[battles.outcome != "tie (bothbad)"]
        index = {m: i for i, m in enumerate(counts.models)}
        if online:
            from pipeline.ratings.online_elo import online_elo

            elo = online_elo(
                battles.model_a.map(index).to_numpy(),
                battles.model_b.map(index).to_numpy(),
                battles.outcome.to_numpy(),
                counts.models,
            )
            board.table["online_elo"] = board.table.model.map(dict(zip(counts.models, elo)))
        if style:
            from pipeline.ratings.style_control import fit_style_controlled

            fit = fit_style_controlled(battles, counts.models)
            shifted = parsed_anchor.apply(fit.elo, counts.models)
            board.table["rating_style_controlled"] = board.table.model.map(
                dict(zip(counts.models, shifted))
            )
            extra["style_coefficients"] = dict(zip(fit.features, np.round(fit.coefficients, 4)))
    if reference:
        from pipeline.ratings.consistency import consistency, read_reference

        extra["consistency"] = consistency(board.table, read_reference(Path(reference)))
    write_leaderboard(board, Path(out), extra)
    return {**extra, "warnings": board.warnings, "table": board.table}


def report(summary: dict, out) -> str:
    from pipeline.ratings.leaderboard import markdown_table

    lines = [markdown_table(summary["table"]).rstrip()]
    dropped = sum(summary["dropped"].values())
    lines.append(
        f"{summary['battles']} battles counted, {dropped} dropped, {summary['filtered']} filtered out; "
        f"{summary['models']} models -> {out}/leaderboard.csv"
    )
    lines += [f"  dropped ({reason}): {n}" for reason, n in sorted(summary["dropped"].items())]
    lines += [f"  warning: {w}" for w in summary["warnings"]]
    if "consistency" in summary:
        c = summary["consistency"]
        lines.append(
            f"consistency with reference ({c['models_compared']} models): spearman {c['spearman']:.3f}, "
            f"agreement with CI {c['agreement_with_ci']:.3f}, separability {c['separability']:.3f}, "
            f"brier {c['brier']:.4f}"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from jobs.cluster import connect

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    with connect(args) as client:
        summary = recompute(
            client,
            args.battles,
            args.out,
            anchor=args.anchor,
            ties=args.ties,
            bothbad=args.bothbad,
            bootstrap=args.bootstrap,
            seed=args.seed,
            alpha=args.alpha,
            judges=args.judge,
            models=models,
            since=args.since,
            until=args.until,
            online=args.online_elo,
            style=args.style_control,
            reference=args.reference,
        )
    print(report(summary, args.out))
    return 0
