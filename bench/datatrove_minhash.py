"""datatrove's MinHash dedup over a folder of JSONL files (`id`, `text`): the other side of
bench.near_vs_datatrove, run with the python of a separate datatrove venv (it imports
datatrove and the standard library only, nothing of this project).

    PYTHON bench/datatrove_minhash.py INPUT WORK [--tasks 2] [--workers 2]
        [--n-grams 5] [--buckets 14] [--hashes-per-bucket 8]

The four stages of datatrove's examples/minhash_deduplication.py on a LocalPipelineExecutor
(signatures, bucket matches, clusters, filter); the removed rows go to WORK/removed (the
filter's exclusion writer), the kept ones to WORK/output, datatrove's logs to WORK/_logs.
Prints one JSON line: the datatrove version, the config and each stage's seconds.
"""

from __future__ import annotations

import argparse
import json
import time
from importlib.metadata import version


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", help="folder of *.jsonl files with `id` and `text`")
    parser.add_argument("work", help="datatrove's folders: signatures, buckets, ..., removed")
    parser.add_argument("--tasks", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--n-grams", type=int, default=None, help="default: datatrove's")
    parser.add_argument("--buckets", type=int, default=None, help="default: datatrove's")
    parser.add_argument("--hashes-per-bucket", type=int, default=None, help="default: datatrove's")
    opts = parser.parse_args()

    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import MinhashDedupSignature
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
    )
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers.jsonl import JsonlWriter
    from datatrove.utils.typeshelper import Languages

    given = {
        "n_grams": opts.n_grams,
        "num_buckets": opts.buckets,
        "hashes_per_bucket": opts.hashes_per_bucket,
    }
    config = MinhashConfig(**{k: v for k, v in given.items() if v is not None})
    work = opts.work.rstrip("/")

    def reader():
        return JsonlReader(opts.input, glob_pattern="*.jsonl", text_key="text", id_key="id")

    stages = {
        "signatures": LocalPipelineExecutor(
            pipeline=[
                reader(),
                MinhashDedupSignature(
                    output_folder=f"{work}/signatures", config=config, language=Languages.english
                ),
            ],
            tasks=opts.tasks,
            workers=opts.workers,
            logging_dir=f"{work}/_logs/signatures",
        ),
        "buckets": LocalPipelineExecutor(
            pipeline=[
                MinhashDedupBuckets(
                    input_folder=f"{work}/signatures",
                    output_folder=f"{work}/buckets",
                    config=config,
                )
            ],
            tasks=config.num_buckets,
            workers=opts.workers,
            logging_dir=f"{work}/_logs/buckets",
        ),
        "clusters": LocalPipelineExecutor(
            pipeline=[
                MinhashDedupCluster(
                    input_folder=f"{work}/buckets",
                    output_folder=f"{work}/remove_ids",
                    config=config,
                )
            ],
            tasks=1,
            logging_dir=f"{work}/_logs/clusters",
        ),
        "filter": LocalPipelineExecutor(
            pipeline=[
                reader(),
                MinhashDedupFilter(
                    input_folder=f"{work}/remove_ids",
                    exclusion_writer=JsonlWriter(f"{work}/removed"),
                ),
                JsonlWriter(output_folder=f"{work}/output"),
            ],
            tasks=opts.tasks,
            workers=opts.workers,
            logging_dir=f"{work}/_logs/filter",
        ),
    }
    seconds = {}
    for name, stage in stages.items():
        began = time.monotonic()
        stage.run()
        seconds[name] = round(time.monotonic() - began, 2)
    print(
        json.dumps(
            {
                "datatrove": version("datatrove"),
                "n_grams": config.n_grams,
                "num_buckets": config.num_buckets,
                "hashes_per_bucket": config.hashes_per_bucket,
                "hash": str(config.hash_config),
                "seconds": seconds,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
