"""`arena decontaminate --train POOL --against SETS... --out DIR`: drop the training rows
nearest to every benchmark item (top-k by embedding, paper k = 5; optional threshold)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from jobs.cluster import add_cluster_arguments


def register(sub) -> None:
    p = sub.add_parser("decontaminate", help="remove training rows that are near benchmark items")
    p.add_argument(
        "--train", required=True, help="training pool: a conversation folder (arena ingest/dedup)"
    )
    p.add_argument(
        "--against",
        nargs="+",
        required=True,
        help="benchmark sets: conversation folders (e.g. an eval set's mix/) or pool files",
    )
    p.add_argument("--out", required=True, help="kept rows; _removed/ reports every removed row")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument(
        "--threshold", type=float, default=None, help="also drop rows with cosine >= this"
    )
    p.add_argument("--embed-model", default="builtin:all-minilm-l6-v2")
    p.add_argument("--overwrite", action="store_true")
    add_cluster_arguments(p)
    p.set_defaults(run=run)


def benchmark_conversations(paths: list[str]) -> tuple[list[str], list[str]]:
    """(prompt_ids, texts) of every benchmark item, from stage folders or raw pool files."""
    import pandas as pd

    from pipeline.ingest.readers import expand_inputs, plan_file, read_records
    from pipeline.ingest.shapes import RowRejected, to_conversation
    from pipeline.schemas import prompt_id, prompt_text

    ids, texts = [], []
    for raw in paths:
        path = Path(raw)
        if path.is_dir() and list(path.glob("part-*.parquet")):
            frame = pd.read_parquet(path, columns=["prompt_id", "messages"])
            ids += list(frame.prompt_id)
            texts += [prompt_text(list(m)) for m in frame.messages]
            continue
        for file in expand_inputs([raw]):
            for spec in plan_file(file, 1 << 30):
                for _, value, raw in read_records(spec):
                    try:
                        messages, _, _ = to_conversation(json.loads(raw) if raw else value, 10**7)
                    except (RowRejected, ValueError):  # unreadable benchmark rows are not compared
                        continue
                    ids.append(prompt_id(messages))
                    texts.append(prompt_text(messages))
    return ids, texts


def decontaminate(
    client,
    train: Path,
    against: list[str],
    out: Path,
    *,
    top_k: int = 5,
    threshold: float | None = None,
    embed_model: str = "builtin:all-minilm-l6-v2",
    overwrite: bool = False,
) -> dict:
    import pandas as pd

    from pipeline.decontaminate import (
        DecontaminationConfig,
        DropContaminated,
        NearestTrainRows,
        choose_removals,
    )
    from pipeline.embed import EmbedConfig, EmbedConversations, embed_texts
    from pipeline.errors import UserError
    from pipeline.runner import run_stage

    ids, texts = benchmark_conversations(against)
    if not texts:
        raise UserError("the benchmark sets hold no conversations")
    config = DecontaminationConfig(top_k=top_k, threshold=threshold)
    embed = EmbedConfig(model=embed_model)
    bench = embed_texts(texts, embed)
    if overwrite:  # the work folders live inside OUT: start them afresh too
        import shutil

        shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    embedded = out / "_embedded"
    run_stage(EmbedConversations(train, embedded, embed), client)
    run_stage(NearestTrainRows(embedded, out / "_candidates", bench, config), client)
    removals = choose_removals(pd.read_parquet(out / "_candidates"), config)
    stage = DropContaminated(embedded, out, removals, ids, texts, config)
    return run_stage(stage, client)


def run(args: argparse.Namespace) -> int:
    from jobs.cluster import connect

    with connect(args) as client:
        manifest = decontaminate(
            client,
            Path(args.train),
            args.against,
            Path(args.out),
            top_k=args.top_k,
            threshold=args.threshold,
            embed_model=args.embed_model,
            overwrite=args.overwrite,
        )
    print(
        f"decontaminate: {manifest['rows_in']} training rows, {manifest['rows_rejected']} removed, "
        f"{manifest['rows_out']} kept -> {args.out} (report: {args.out}/_removed/)"
    )
    return 0
