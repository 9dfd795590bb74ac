"""Flow: a training pool minus the rows nearest to every benchmark item (top-k by
embedding, the paper's k = 5; optionally every row above a cosine threshold)."""

from __future__ import annotations

import json
from pathlib import Path

from core.errors import UserError
from core.output_folder import clear_own, refuse_foreign
from core.runner import STAGE_FILE, run_stage, stage_outputs
from core.schemas import prompt_id, prompt_text
from core.submit import run_tasks
from core.worker_cache import ENCODER, offload
from pipeline.evalset.decontaminate import (
    DecontaminationConfig,
    DropContaminated,
    NearestTrainRows,
    choose_removals,
)
from pipeline.evalset.embed import EmbedConfig, EmbedConversations, embed_texts
from pipeline.ingest.readers import expand_inputs, plan_file, read_records
from pipeline.ingest.shapes import RowRejected, to_conversation

# Where an eval set sits in a folder this project wrote: a build-evalset output, or the
# main job's. Mix holds Diverse and Hard; the build's pool and dedup are no benchmark.
EVALSET_IN = ("mix", "evalset/mix")


def benchmark_folder(path: Path) -> Path:
    """The folder of benchmark rows `path` names: itself, or the eval set inside an output
    of this project (a build-evalset or main-job folder given whole)."""
    if path.is_dir() and not list(path.glob("part-*.parquet")):
        inner = next(
            (path / p for p in EVALSET_IN if list((path / p).glob("part-*.parquet"))), None
        )
        if inner is not None:
            return inner
    return path


def benchmark_conversations(paths: list[str]) -> tuple[list[str], list[str], list[str]]:
    """(prompt_ids, texts) of every benchmark item, from stage folders or raw pool files,
    and the rows that could not be read (file:line: reason), which are not compared."""
    import pandas as pd

    ids, texts, unreadable = [], [], []
    for raw in paths:
        path = benchmark_folder(Path(raw))
        if path.is_dir() and list(path.glob("part-*.parquet")):
            frame = pd.read_parquet(path, columns=["prompt_id", "messages"])
            ids += list(frame.prompt_id)
            texts += [prompt_text(list(m)) for m in frame.messages]
            continue
        for file in expand_inputs([str(path)]):
            for chunk in plan_file(file, 1 << 30):
                for where, value, raw in read_records(chunk):
                    try:
                        row = json.loads(raw.decode().removeprefix("\ufeff")) if raw else value
                        messages, _, _ = to_conversation(row, 10**7)
                    except (RowRejected, ValueError) as err:
                        unreadable.append(f"{file}:{where}: {err}")
                        continue
                    ids.append(prompt_id(messages))
                    texts.append(prompt_text(messages))
    return ids, texts, unreadable


def check_against(paths: list[str]) -> None:
    """The benchmark sets exist and hold some conversation (call before connecting)."""
    if not benchmark_conversations(paths)[1]:
        raise UserError("the benchmark sets hold no conversations")


def decontaminate(
    client,
    train: Path,
    against: list[str],
    out: Path,
    config: DecontaminationConfig = DecontaminationConfig(),
    embed: EmbedConfig = EmbedConfig(),
    *,
    overwrite: bool = False,
) -> dict:
    """Drop the training rows nearest to every benchmark item; returns the manifest."""
    import pandas as pd

    out = Path(out)
    if not (out / STAGE_FILE).exists():
        refuse_foreign(out)  # before the work folders go inside OUT
    elif overwrite:  # the work folders live inside OUT: start them afresh too
        clear_own(out, stage_outputs(out))
    ids, texts, unreadable = benchmark_conversations(against)
    if not texts:
        raise UserError("the benchmark sets hold no conversations")
    # A worker embeds the benchmark too: the driver loads no model (half a GiB for
    # MiniLM and torch), and that worker's encoder goes on to embed the pool.
    [bench] = run_tasks(client, embed_texts, [(texts, embed)], desc="embed benchmark")
    out.mkdir(parents=True, exist_ok=True)
    embedded = out / "_embedded"
    run_stage(EmbedConversations(train, embedded, embed), client)
    run_stage(NearestTrainRows(embedded, out / "_candidates", bench, config), client)
    removals = choose_removals(pd.read_parquet(out / "_candidates"), config)
    stage = DropContaminated(embedded, out, removals, ids, texts, config)
    manifest = run_stage(stage, client)
    # The encoders are done with: the next step (a flywheel's battles) has the memory.
    client.run(offload, ENCODER)
    return {**manifest, "benchmark_items": len(texts), "unreadable": unreadable}


def decontaminate_report(manifest: dict, out) -> str:
    unreadable = manifest.get("unreadable") or []
    return (
        f"decontaminate: {manifest['rows_in']} training rows, {manifest['rows_rejected']} removed, "
        f"{manifest['rows_out']} kept -> {out} (report: {out}/_removed/)"
        + (
            f"\n  warning: {len(unreadable)} benchmark rows could not be read and were not"
            f" compared; the first: {unreadable[0]}"
            if unreadable
            else ""
        )
    )
