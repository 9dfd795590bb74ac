"""Bradley-Terry leaderboards at scale: ours against the peers, in the same run.

    python -m bench.ratings [--sizes 1000000x100,10000000x200] [--rounds 100]

For each size (battles x models) it simulates battles with known strengths
(10% ties), then times, from the same in-memory battles to ratings with 95%
bootstrap CIs where the method has them:
- ours: counts per pair (one bincount) -> choix ILSR point fit on the count
  matrix; multinomial bootstrap of the counts, all rounds drawn at once and
  fitted together by batched Newton steps from the point fit;
- FastChat's method (re-implemented from its description): weighted BT by
  L-BFGS on the unique (a, b, outcome) rows, ties as half a win each way, and a
  multinomial bootstrap of the unique rows' counts;
- evalica (PyPI): Bradley-Terry on per-battle input, bootstrap by resampling;
- arena-rank (PyPI): BT in JAX on its aggregated PairDataset, bootstrap CIs;
- scikit-learn LogisticRegression on per-battle rows (point fit only: a
  100-round bootstrap of it is what the aggregated methods exist to avoid).
It prints seconds, the speed-up of ours against each, and the largest rating
difference to FastChat's method on the Elo scale (point fits, mean-centred).
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import time

import numpy as np
import pandas as pd

ELO = 400 / math.log(10)


def simulate(battles: int, models: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    strength = rng.normal(0, 200, models)
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
def fastchat_method(df: pd.DataFrame, n: int, rounds: int) -> np.ndarray:
    from scipy.optimize import minimize

    unique = df.groupby(["a", "b", "outcome"], observed=True).size().reset_index(name="k")
    a, b, o = (unique[c].to_numpy() for c in ("a", "b", "outcome"))
    # A tie is a half win for each side: two rows, each with half the weight.
    ties = o == 2
    rows_a = np.concatenate([a, a[ties]])
    rows_b = np.concatenate([b, b[ties]])
    y = np.concatenate([(o == 0).astype(float), np.zeros(ties.sum())])
    y[: len(o)][ties] = 1.0
    half = np.concatenate([np.where(ties, 0.5, 1.0), np.full(ties.sum(), 0.5)])

    def fit(weights: np.ndarray, start: np.ndarray) -> np.ndarray:
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

    k = unique.k.to_numpy().astype(float)
    point = fit(np.concatenate([k, k[ties]]) * half, np.zeros(n))
    rng = np.random.default_rng(0)
    for _ in range(rounds):
        draw = rng.multinomial(int(k.sum()), k / k.sum()).astype(float)
        fit(np.concatenate([draw, draw[ties]]) * half, point)
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


PEERS = {
    "FastChat method": fastchat_method,
    "evalica": evalica_bt,
    "arena-rank": arena_rank_bt,
    "sklearn LR (point only)": sklearn_lr,
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
    skip = {s.strip() for s in opts.skip.split(",") if s.strip()}
    warm = simulate(2000, 5)  # imports and JIT compilation are not part of any timing
    for fn in (ours, *PEERS.values()):
        timed(fn, warm, 5, 2)
    for size in opts.sizes.split(","):
        battles, models = (int(x) for x in size.lower().split("x"))
        df = simulate(battles, models)
        print(f"\n{battles:,} battles x {models} models x {opts.rounds} bootstrap rounds")
        t_ours, r_ours, _ = timed(ours, df, models, opts.rounds)
        results = {}
        for name, fn in PEERS.items():
            if name in skip:
                continue
            rounds = 0 if name.startswith("sklearn") else opts.rounds
            results[name] = timed(fn, df, models, rounds)
        reference = results.get("FastChat method", (0, None, ""))[1]
        print(f"{'method':26}{'seconds':>10}{'ours faster':>13}{'max |Δ| Elo vs FastChat':>26}")
        rows = [("ours", (t_ours, r_ours, ""))] + list(results.items())
        for name, (secs, ratings, note) in rows:
            delta = (
                ""
                if ratings is None or reference is None
                else f"{np.abs(ratings - reference).max():.3f}"
            )
            speed = "" if name == "ours" else f"{secs / t_ours:.1f}x"
            print(f"{name:26}{secs:>10.2f}{speed:>13}{delta:>26}  {note}")
        fastest = min((s for n, (s, r, _) in results.items() if r is not None), default=None)
        if fastest:
            print(f"ours vs the fastest peer: {fastest / t_ours:.1f}x")


if __name__ == "__main__":
    main()
