"""The whole `arena elo` command against FastChat's fit + bootstrap compute, in the same run.

    python -m bench.elo_command [--battles 1000000] [--models 100] [--rounds 100] [--repeats 3]

It writes one Parquet file of simulated battles (FastChat's columns: model_a,
model_b, winner), then times, best of --repeats:
- `arena --help`, and `arena elo` on the file's first 10,000 battles;
- `arena elo FILE --bootstrap ROUNDS` end to end as a user runs it (a new process:
  imports, reading, counting, fit, bootstrap, CSV/Markdown/Parquet/PNG files), and
  its peak RSS;
- FastChat's method (bench.ratings.fastchat_method: weighted BT by L-BFGS on the
  unique rows, multinomial bootstrap, a pool of one process per core) on the
  same battles already in memory: its compute alone, no imports, no reading.
It prints the seconds, the ratio (the target is a whole command at most 1/4 of
FastChat's compute) and the largest rating difference between the two boards.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ARENA = [sys.executable, "-m", "jobs.cli"]


def write_battles(path: Path, battles: int, models: int) -> pd.DataFrame:
    from bench.ratings import simulate

    df = simulate(battles, models)
    names = np.array([f"model-{i:03d}" for i in range(models)])
    frame = pd.DataFrame(
        {
            "model_a": pd.Categorical.from_codes(df.a.to_numpy(), names),
            "model_b": pd.Categorical.from_codes(df.b.to_numpy(), names),
            "winner": np.array(["model_a", "model_b", "tie"])[df.outcome.to_numpy()],
        }
    )
    frame.to_parquet(path, index=False)
    return df


def timed_command(args: list[str], repeats: int) -> tuple[float, float]:
    """(best wall seconds, peak RSS GiB of the children) of a CLI command."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([*ARENA, *args], check=True, capture_output=True)
        best = min(best, time.perf_counter() - start)
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return best, peak_kib / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--battles", type=int, default=1_000_000)
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    opts = parser.parse_args()
    from bench.ratings import POOLS, fastchat_method

    POOLS.set_forkserver_preload(["numpy", "scipy.optimize"])
    root = Path(tempfile.mkdtemp(prefix="elo-command-"))
    battles = write_battles(root / "battles.parquet", opts.battles, opts.models)
    pd.read_parquet(root / "battles.parquet").head(10_000).to_parquet(root / "small.parquet")

    help_s, _ = timed_command(["--help"], opts.repeats)
    small_s, _ = timed_command(
        ["elo", str(root / "small.parquet"), "--out", str(root / "small")], opts.repeats
    )
    elo_s, peak = timed_command(
        [
            "elo",
            str(root / "battles.parquet"),
            "--out",
            str(root / "board"),
            "--bootstrap",
            str(opts.rounds),
        ],
        opts.repeats,
    )
    fastchat_method(battles.head(2000), opts.models, 2)  # start the pool outside the timing
    fastchat_s, reference = float("inf"), None
    for _ in range(opts.repeats):
        start = time.perf_counter()
        reference = fastchat_method(battles, opts.models, opts.rounds)
        fastchat_s = min(fastchat_s, time.perf_counter() - start)

    board = pd.read_parquet(root / "board" / "leaderboard.parquet")
    ours = board.set_index("model").rating.reindex([f"model-{i:03d}" for i in range(opts.models)])
    delta = np.abs((ours - ours.mean()).to_numpy() - reference).max()
    print(
        f"{opts.battles:,} battles x {opts.models} models x {opts.rounds} bootstrap rounds, "
        f"best of {opts.repeats}"
    )
    print(f"arena --help                          {help_s:7.2f} s   (target < 1.5 s)")
    print(f"arena elo, 10,000 battles             {small_s:7.2f} s   (target < 1.5 s)")
    print(f"arena elo, whole command              {elo_s:7.2f} s   peak RSS {peak:.2f} GiB")
    print(f"FastChat's method, fit + bootstrap    {fastchat_s:7.2f} s   (compute only)")
    print(
        f"whole command / FastChat's compute    {elo_s / fastchat_s:7.2f}    (target <= 0.25); "
        f"max |Δ| rating {delta:.2f} Elo (bootstrap median vs FastChat's point fit)"
    )


if __name__ == "__main__":
    main()
