"""Bradley-Terry leaderboards at scale: ours against the peers, in the same run.

    python -m bench.ratings [--sizes 1000000x100,10000000x200] [--rounds 100]

For each size (battles x models) it simulates battles with known strengths
(10% ties), then times, from the same in-memory battles to ratings with 95%
bootstrap CIs where the method has them:
- ours: counts per pair (one bincount) -> choix ILSR point fit on the count
  matrix; exact multinomial bootstrap of the counts, chunks of rounds drawn and
  fitted together by batched Newton steps from the point fit, a thread per core;
- FastChat's method (re-implemented from its description): weighted BT by
  L-BFGS on the unique (a, b, outcome) rows, ties as half a win each way, and a
  multinomial bootstrap of the unique rows' counts, the rounds fitted in a pool
  of one process per core as FastChat does;
- evalica (PyPI): Bradley-Terry on per-battle input, bootstrap by resampling;
- arena-rank (PyPI): BT in JAX on its aggregated PairDataset, bootstrap CIs;
- scikit-learn LogisticRegression on per-battle rows (point fit only: a
  100-round bootstrap of it is what the aggregated methods exist to avoid).
It prints, for the point fit alone and for the point fit with the bootstrap,
seconds and the speed-up of ours against each, and the largest rating
difference to FastChat's method on the Elo scale (point fits, mean-centred).
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import time
from functools import partial

import numpy as np
import pandas as pd

ELO = 400 / math.log(10)


def simulate(
    battles: int, models: int, seed: int | list[int] = 0, strength: np.ndarray | None = None
) -> pd.DataFrame:
    """Battles a, b (model codes), outcome (0 a wins, 1 b wins, 2 tie: 10%), by Bradley-Terry on
    `strength` (Elo scale; by default drawn from the seed, normal with sd 200)."""
    rng = np.random.default_rng(seed)
    drawn = rng.normal(0, 200, models)
    strength = drawn if strength is None else strength
    a = rng.integers(0, models, battles, dtype=np.int32)
    b = ((a + rng.integers(1, models, battles, dtype=np.int32)) % models).astype(np.int32)
    p = 1 / (1 + 10 ** ((strength[b] - strength[a]) / 400))
    u = rng.random(battles)
    outcome = np.where(u < 0.1, 2, np.where(rng.random(battles) < p, 0, 1)).astype(
        np.int8
    )  # 0 a, 1 b, 2 tie
    return pd.DataFrame({"a": a, "b": b, "outcome": outcome})


def centred(elo: np.ndarray) -> np.ndarray:
    return elo - elo.mean()


# -- ours ---------------------------------------------------------------------------
def ours(df: pd.DataFrame, n: int, rounds: int) -> np.ndarray:
    from pipeline.ratings.bootstrap import bootstrap_ratings
    from pipeline.ratings.pair_counts import PairCounts

    counts = PairCounts.from_codes(
        [str(i) for i in range(n)], df.a.to_numpy(), df.b.to_numpy(), df.outcome.to_numpy()
    )
    return centred(bootstrap_ratings(counts, rounds=rounds).point)


# -- FastChat's method, from its description ------------------------------------------
def _weighted_bt_fit(rows_a, rows_b, y, n, weights, start):
    """Weighted logistic BT by L-BFGS on the unique (a, b, outcome) rows."""
    from scipy.optimize import minimize

    def loss(theta):
        z = theta[rows_a] - theta[rows_b]
        nll = (weights * (np.logaddexp(0, -z) * y + np.logaddexp(0, z) * (1 - y))).sum()
        g = weights * (1 / (1 + np.exp(-z)) - y)
        return nll / weights.sum(), (
            np.bincount(rows_a, g, n) - np.bincount(rows_b, g, n)
        ) / weights.sum()

    return minimize(
        loss, start, jac=True, method="L-BFGS-B", options={"gtol": 1e-9, "maxiter": 1000}
    ).x


# Pools fork from a server started before any peer imports JAX (forking a process
# that runs JAX's threads can deadlock).
POOLS = multiprocessing.get_context("forkserver")


def fastchat_method(df: pd.DataFrame, n: int, rounds: int) -> np.ndarray:
    unique = df.groupby(["a", "b", "outcome"], observed=True).size().reset_index(name="k")
    a, b, o = (unique[c].to_numpy() for c in ("a", "b", "outcome"))
    return fastchat_fit(a, b, o, unique.k.to_numpy(), n, rounds)


def fastchat_fit(
    a: np.ndarray, b: np.ndarray, o: np.ndarray, k: np.ndarray, n: int, rounds: int
) -> np.ndarray:
    """FastChat's fit and bootstrap on the unique (a, b, outcome) rows and their counts k."""
    # A tie is a half win for each side: two rows, each with half the weight.
    ties = o == 2
    rows_a = np.concatenate([a, a[ties]])
    rows_b = np.concatenate([b, b[ties]])
    y = np.concatenate([(o == 0).astype(float), np.zeros(ties.sum())])
    y[: len(o)][ties] = 1.0
    half = np.concatenate([np.where(ties, 0.5, 1.0), np.full(ties.sum(), 0.5)])
    fit = partial(_weighted_bt_fit, rows_a, rows_b, y, n)

    k = k.astype(float)
    point = fit(np.concatenate([k, k[ties]]) * half, np.zeros(n))
    if rounds:
        # All rounds' counts in one multinomial call, the fits in a pool of one process
        # per core, as FastChat's compute_bootstrap_bt does.
        draws = np.random.default_rng(0).multinomial(int(k.sum()), k / k.sum(), size=rounds)
        weights = [np.concatenate([d, d[ties]]) * half for d in draws.astype(float)]
        with POOLS.Pool(len(os.sched_getaffinity(0))) as pool:
            list(pool.starmap(fit, [(w, point) for w in weights]))
    return centred(point * ELO)


# -- PyPI peers --------------------------------------------------------------------------
def evalica_bt(df: pd.DataFrame, n: int, rounds: int) -> np.ndarray:
    import evalica

    codes = [evalica.Winner.X, evalica.Winner.Y, evalica.Winner.Draw]
    winners = [codes[o] for o in df.outcome.to_numpy()]  # evalica takes a sequence of Winner
    xs, ys = df.a.to_numpy(), df.b.to_numpy()
    index = pd.Index(range(n))
    result = evalica.bradley_terry(xs, ys, winners, index=index)
    if rounds:
        evalica.bootstrap(
            evalica.bradley_terry,
            xs,
            ys,
            winners,
            index=index,
            n_resamples=rounds,
            bootstrap_method="percentile",
            random_state=0,
        )
    scores = result.scores.reindex(index).to_numpy()
    return centred(np.log(scores) * ELO)


def arena_rank_bt(df: pd.DataFrame, n: int, rounds: int) -> np.ndarray:
    from arena_rank.models.bradley_terry import BradleyTerry
    from arena_rank.utils.data_utils import PairDataset

    frame = pd.DataFrame(
        {
            "model_a": df.a.astype(str),
            "model_b": df.b.astype(str),
            "winner": np.array(["model_a", "model_b", "tie"])[df.outcome.to_numpy()],
        }
    )
    dataset = PairDataset.from_pandas(frame)
    model = BradleyTerry(n_competitors=len(dataset.competitors))
    result = model.compute_ratings_and_cis(
        dataset,
        ci_method="bootstrap" if rounds else "sandwich",
        num_bootstrap=max(rounds, 1),
        n_jobs=2,
    )
    ratings = pd.Series(np.asarray(result["ratings"]), index=[int(c) for c in dataset.competitors])
    return centred(ratings.reindex(range(n)).to_numpy())


def sklearn_lr(df: pd.DataFrame, n: int, rounds: int) -> np.ndarray:
    from scipy.sparse import csr_matrix
    from sklearn.linear_model import LogisticRegression

    ties = df.outcome.to_numpy() == 2
    a = np.concatenate([df.a.to_numpy(), df.a.to_numpy()[ties]])
    b = np.concatenate([df.b.to_numpy(), df.b.to_numpy()[ties]])
    y = np.concatenate([(df.outcome.to_numpy() != 1).astype(int), np.zeros(ties.sum(), int)])
    w = np.concatenate([np.where(ties, 0.5, 1.0), np.full(ties.sum(), 0.5)])
    rows = np.repeat(np.arange(len(a)), 2)
    cols = np.column_stack([a, b]).ravel()
    vals = np.tile([1.0, -1.0], len(a))
    X = csr_matrix((vals, (rows, cols)), shape=(len(a), n))
    lr = LogisticRegression(fit_intercept=False, C=1e6, tol=1e-8, max_iter=1000)
    lr.fit(X, y, sample_weight=w)
    return centred(lr.coef_[0] * ELO)


POINT_ONLY = {"sklearn LR"}  # a bootstrap of per-battle fits is what aggregation avoids
PEERS = {
    "FastChat method": fastchat_method,
    "evalica": evalica_bt,
    "arena-rank": arena_rank_bt,
    "sklearn LR": sklearn_lr,
}


def timed(fn, *args) -> tuple[float, np.ndarray | None, str]:
    start = time.perf_counter()
    try:
        result = fn(*args)
    except Exception as exc:  # noqa: BLE001 - a failing peer is reported, the bench goes on
        return time.perf_counter() - start, None, f"failed: {type(exc).__name__}: {str(exc)[:80]}"
    return time.perf_counter() - start, result, ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="1000000x100,10000000x200", help="BATTLESxMODELS, comma separated"
    )
    parser.add_argument("--rounds", type=int, default=100, help="bootstrap rounds")
    parser.add_argument("--skip", default="", help="comma-separated peers to skip")
    opts = parser.parse_args()
    # arena-rank bootstraps in a multiprocessing pool; forking a process that
    # has started JAX deadlocks, so children are spawned.
    multiprocessing.set_start_method("spawn", force=True)
    POOLS.set_forkserver_preload(["numpy", "scipy.optimize"])
    with POOLS.Pool(1):
        pass  # starts the fork server now, while no thread runs
    skip = {s.strip() for s in opts.skip.split(",") if s.strip()}
    warm = simulate(2000, 5)  # imports and JIT compilation are not part of any timing
    for fn in (ours, *PEERS.values()):
        timed(fn, warm, 5, 2)
    for size in opts.sizes.split(","):
        battles, models = (int(x) for x in size.lower().split("x"))
        df = simulate(battles, models)
        print(f"\n{battles:,} battles x {models} models x {opts.rounds} bootstrap rounds")
        table = {"ours": (timed(ours, df, models, 0), timed(ours, df, models, opts.rounds))}
        for name, fn in PEERS.items():
            if name in skip:
                continue
            point = timed(fn, df, models, 0)
            boot = None if name in POINT_ONLY else timed(fn, df, models, opts.rounds)
            table[name] = (point, boot)
        reference = table.get("FastChat method", ((0, None, ""),))[0][1]
        print(
            f"{'method':26}{'point fit s':>12}{'ours faster':>12}"
            f"{'+ bootstrap s':>14}{'ours faster':>12}{'max |Δ| Elo':>13}"
        )
        for name, (point, boot) in table.items():
            cells = []
            for run, ours_run in ((point, table["ours"][0]), (boot, table["ours"][1])):
                if run is None:
                    cells += ["not run", ""]
                    continue
                speed = "" if name == "ours" or run[1] is None else f"{run[0] / ours_run[0]:.1f}x"
                cells += [f"{run[0]:.2f}", speed]
            ratings = point[1]
            delta = (
                ""
                if ratings is None or reference is None
                else f"{np.abs(ratings - reference).max():.3f}"
            )
            notes = "  ".join(run[2] for run in (point, boot) if run and run[2])
            print(
                f"{name:26}{cells[0]:>12}{cells[1]:>12}{cells[2]:>14}{cells[3]:>12}{delta:>13}  {notes}"
            )
        for column, label in ((0, "point fit"), (1, f"point fit + {opts.rounds} bootstrap rounds")):
            peers = [
                runs[column][0]
                for name, runs in table.items()
                if name != "ours" and runs[column] is not None and runs[column][1] is not None
            ]
            if peers:
                ratio = min(peers) / table["ours"][column][0]
                print(f"{label}: ours vs the fastest peer {ratio:.1f}x")


if __name__ == "__main__":
    main()
