"""Bradley-Terry with style covariates (Chatbot Arena / Arena-Hard style control).

P(a beats b) = sigmoid(theta_a - theta_b + beta . d), where d holds, for each
style feature f, the normalised difference (f_a - f_b) / (f_a + f_b + 1),
standardised over the battles. The thetas are the style-controlled ratings;
beta says how much the judge rewards length and markdown by themselves.

Features come from the answer texts (`answer_a`, `answer_b`: characters,
headers, list items, bold spans) or from given lengths (`len_a`, `len_b`).
Unlike plain BT this needs one row per battle.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.errors import UserError
from pipeline.ratings.bradley_terry import to_elo

HEADER = re.compile(r"^#{1,6}\s", re.MULTILINE)
LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+\.)\s", re.MULTILINE)
BOLD = re.compile(r"\*\*[^*\n]+\*\*|__[^_\n]+__")


def style_features(battles: pd.DataFrame) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(feature names, features of a, features of b) per battle."""
    if {"answer_a", "answer_b"} <= set(battles.columns):

        def measure(texts: pd.Series) -> np.ndarray:
            # Object first: Parquet text arrives as a categorical, which fillna cannot
            # extend. A missing answer measures as an empty one, as CSV can only write it.
            t = texts.astype(object).fillna("").astype(str)
            return np.column_stack(
                [
                    t.str.len(),
                    t.map(lambda s: len(HEADER.findall(s))),
                    t.map(lambda s: len(LIST_ITEM.findall(s))),
                    t.map(lambda s: len(BOLD.findall(s))),
                ]
            ).astype(float)

        return (
            ["length", "headers", "lists", "bold"],
            measure(battles.answer_a),
            measure(battles.answer_b),
        )
    if {"len_a", "len_b"} <= set(battles.columns):
        a = pd.to_numeric(battles.len_a, errors="coerce").to_numpy(float)[:, None]
        b = pd.to_numeric(battles.len_b, errors="coerce").to_numpy(float)[:, None]
        return ["length"], a, b
    raise UserError(
        "style control needs answer_a/answer_b texts or len_a/len_b columns in the battles"
    )


@dataclass
class StyleFit:
    models: list[str]
    elo: np.ndarray
    features: list[str]
    coefficients: np.ndarray
    left_out: int = 0  # battles without both lengths (len_a, len_b), not in the fit


def fit_style_controlled(
    battles: pd.DataFrame, models: list[str], weights: np.ndarray | None = None, l2: float = 1e-6
) -> StyleFit:
    """Battles: model_a, model_b, outcome and the style columns. Ties count half each way."""
    from scipy.optimize import minimize

    names, fa, fb = style_features(battles)
    measured = ~(np.isnan(fa).any(axis=1) | np.isnan(fb).any(axis=1))
    if not measured.any():
        raise UserError("style control: no battle has both lengths (len_a, len_b)")
    left_out = int((~measured).sum())
    battles, fa, fb = battles[measured], fa[measured], fb[measured]
    weights = None if weights is None else weights[measured]
    diff = (fa - fb) / (fa + fb + 1.0)
    std = diff.std(axis=0)
    diff = (diff - diff.mean(axis=0)) / np.where(std > 0, std, 1.0)
    index = {m: i for i, m in enumerate(models)}
    a = battles.model_a.map(index).to_numpy()
    b = battles.model_b.map(index).to_numpy()
    y = battles.outcome.map(
        {"model_a": 1.0, "model_b": 0.0, "tie": 0.5, "tie (bothbad)": 0.5}
    ).to_numpy()
    w = np.ones(len(y)) if weights is None else weights
    n, k = len(models), diff.shape[1]

    def loss(params):
        theta, beta = params[:n], params[n:]
        z = theta[a] - theta[b] + diff @ beta
        # soft-label logistic loss: y log s(z) + (1 - y) log s(-z)
        nll = (w * (np.logaddexp(0, -z) * y + np.logaddexp(0, z) * (1 - y))).sum()
        g = w * (1 / (1 + np.exp(-z)) - y)
        grad_theta = np.bincount(a, g, n) - np.bincount(b, g, n)
        return nll + l2 * (params**2).sum(), np.concatenate(
            [grad_theta, diff.T @ g]
        ) + 2 * l2 * params

    result = minimize(loss, np.zeros(n + k), jac=True, method="L-BFGS-B", options={"maxiter": 2000})
    theta = result.x[:n] - result.x[:n].mean()
    return StyleFit(models, to_elo(theta), names, result.x[n:], left_out)
