"""Fellegi–Sunter match model, learned from the data itself by expectation maximisation.

For every field comparison level the model holds two probabilities: ``m`` (the level is seen
when the two records are the same customer) and ``u`` (seen when they are not). A pair's
match weight is the sum over fields of ``log(m/u)`` of its levels, plus the prior log-odds;
its match probability is the logistic of that weight.

* ``u`` is estimated from random record pairs, which are almost all non-matches.
* ``m`` and the prior are estimated by expectation maximisation over the candidate pairs,
  with no labels. Steward decisions (pairs marked duplicate or not), when there are some,
  enter the same EM with their posterior fixed to the decision, which refines ``m``.
* At prediction the ``u`` of an exact level is replaced by how common the shared value is
  (term frequency): two records both named 王伟 say less than two both named 欧阳娜娜.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from crm_core.dedupe.scoring import (
    COMPARISONS,
    FIELD_NAMES,
    MISSING,
    Prepared,
    compare,
    tf_column,
)

_EPS = 1e-9


@dataclass
class MatchModel:
    """A trained Fellegi–Sunter model. ``m[field][level]`` and ``u[field][level]`` are the
    probabilities of each comparison level among matching and non-matching pairs; ``prior``
    is the share of candidate pairs that match; ``tf`` holds, per normalised column, the share
    of records holding each repeated value (unlisted values count as held by one record of
    ``n_records``)."""

    m: dict[str, list[float]]
    u: dict[str, list[float]]
    prior: float
    n_records: int = 1
    tf: dict[str, dict[str, float]] = field(default_factory=dict)
    tf_boost_cap: float = 10.0
    iterations: int = 0
    converged: bool = False

    # -- prediction -------------------------------------------------------------------------

    def _tables(self) -> tuple[np.ndarray, np.ndarray]:
        width = max(len(c.levels) for c in COMPARISONS)
        m = np.ones((len(COMPARISONS), width), np.float64)
        u = np.ones((len(COMPARISONS), width), np.float64)
        for j, c in enumerate(COMPARISONS):
            m[j, : len(c.levels)] = self.m[c.field]
            u[j, : len(c.levels)] = self.u[c.field]
        return m, u

    def match_weight(self, gamma: np.ndarray, freq: np.ndarray | None = None) -> np.ndarray:
        """Log-odds (natural log) that each pair matches, from its comparison matrix
        ``gamma`` and, optionally, the frequency of its shared values ``freq`` (same shape)."""
        m, u = self._tables()
        gamma = np.asarray(gamma)
        weight = np.full(len(gamma), _logit(self.prior), np.float64)
        for j, c in enumerate(COMPARISONS):
            g = gamma[:, j].astype(np.int64)
            present = g != MISSING
            gi = np.where(present, g, 0)
            mj, uj = m[j, gi], u[j, gi]
            if freq is not None and c.tf_levels:
                at_tf = present & np.isin(g, c.tf_levels)
                u_tf = np.maximum(freq[:, j].astype(np.float64), uj / self.tf_boost_cap)
                uj = np.where(at_tf, u_tf, uj)
            weight += np.where(present, np.log(np.maximum(mj, _EPS) / np.maximum(uj, _EPS)), 0.0)
        return weight

    def probability(self, gamma: np.ndarray, freq: np.ndarray | None = None) -> np.ndarray:
        """Match probability 0..1 of each pair (see ``match_weight``)."""
        return _sigmoid(self.match_weight(gamma, freq)).astype(np.float32)

    def frequencies(self, norm: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
        """Frequency of each listed record's values in the training data, shape
        ``(len(rows), fields)``, looked up in ``tf`` (for scoring records outside it)."""
        floor = 1.0 / max(self.n_records, 1)
        out = np.empty((len(rows), len(COMPARISONS)), np.float32)
        for j, c in enumerate(COMPARISONS):
            table = self.tf.get(tf_column(c.field), {})
            values = norm[tf_column(c.field)].to_numpy(dtype=object)[rows]
            out[:, j] = [table.get(v, floor) if v is not None else floor for v in values]
        return out

    def weights(self) -> pd.DataFrame:
        """The model as a table: ``field, level, description, m, u, bayes_factor``."""
        rows = []
        for c in COMPARISONS:
            for level, description in enumerate(c.levels):
                m, u = self.m[c.field][level], self.u[c.field][level]
                rows.append((c.field, level, description, m, u, m / max(u, _EPS)))
        return pd.DataFrame(
            rows, columns=["field", "level", "description", "m", "u", "bayes_factor"]
        )

    # -- persistence -----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form of the model (``MatchModel.from_dict`` reads it back)."""
        return {
            "m": self.m,
            "u": self.u,
            "prior": self.prior,
            "n_records": self.n_records,
            "tf": self.tf,
            "tf_boost_cap": self.tf_boost_cap,
            "iterations": self.iterations,
            "converged": self.converged,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MatchModel:
        """The model saved by ``to_dict``."""
        return cls(**data)


# -- training ----------------------------------------------------------------------------------


def _logit(p: float) -> float:
    p = min(max(p, _EPS), 1 - _EPS)
    return math.log(p / (1 - p))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -50, 50)))


def _level_shares(gamma: np.ndarray, weights: np.ndarray | None, smoothing: float) -> dict:
    shares: dict[str, list[float]] = {}
    for j, c in enumerate(COMPARISONS):
        g = gamma[:, j]
        present = g != MISSING
        counts = np.bincount(
            g[present].astype(np.int64),
            weights=None if weights is None else weights[present],
            minlength=len(c.levels),
        ).astype(np.float64)
        counts += smoothing
        shares[c.field] = (counts / counts.sum()).tolist()
    return shares


def estimate_u(
    prep: Prepared, *, sample_pairs: int = 500_000, seed: int = 0, workers: int = -1
) -> dict[str, list[float]]:
    """``u`` probabilities from random record pairs (nearly all non-matches)."""
    rng = np.random.default_rng(seed)
    n = prep.n
    if n < 2:
        return {c.field: [1.0 / len(c.levels)] * len(c.levels) for c in COMPARISONS}
    size = min(sample_pairs, n * (n - 1) // 2)
    left = rng.integers(0, n, size)
    right = (left + rng.integers(1, n, size)) % n
    gamma = compare(prep, left, right, workers=workers)
    return _level_shares(gamma, None, smoothing=1.0)


def _initial_m() -> dict[str, list[float]]:
    m = {}
    for c in COMPARISONS:
        raw = np.array([2.0**level for level in range(len(c.levels))])
        raw[-1] *= 4
        m[c.field] = (raw / raw.sum()).tolist()
    return m


def fit_em(
    gamma: np.ndarray,
    u: dict[str, list[float]],
    *,
    labels: np.ndarray | None = None,
    label_weight: float = 5.0,
    prior: float = 0.1,
    max_iter: int = 50,
    tol: float = 1e-5,
) -> MatchModel:
    """Expectation maximisation of ``m`` and the prior over a comparison matrix, ``u`` fixed.

    ``labels`` (same length as ``gamma``; ``1`` duplicate, ``0`` not, ``-1``/NaN unknown) fixes
    the posterior of decided pairs, each counting ``label_weight`` times.
    """
    model = MatchModel(m=_initial_m(), u=u, prior=prior)
    known = None
    if labels is not None:
        labels = np.asarray(labels, dtype=np.float64)
        known = np.isfinite(labels) & (labels >= 0)
    sample_weight = np.ones(len(gamma))
    if known is not None:
        sample_weight[known] = label_weight
    for iteration in range(1, max_iter + 1):
        p = _sigmoid(model.match_weight(gamma))
        if known is not None:
            p[known] = labels[known]
        new_m = _level_shares(gamma, p * sample_weight, smoothing=1e-3)
        new_prior = float(np.average(p, weights=sample_weight))
        change = max(
            abs(new_prior - model.prior),
            max(
                max(abs(a - b) for a, b in zip(new_m[f], model.m[f], strict=True))
                for f in FIELD_NAMES
            ),
        )
        model.m, model.prior, model.iterations = (
            new_m,
            min(max(new_prior, 1e-6), 1 - 1e-6),
            iteration,
        )
        if change < tol:
            model.converged = True
            break
    return model


def term_frequencies(prep: Prepared, *, min_count: int = 2) -> dict[str, dict[str, float]]:
    """Share of records holding each value seen at least ``min_count`` times, per column
    used for term-frequency adjustment."""
    tables: dict[str, dict[str, float]] = {}
    n = max(prep.n, 1)
    for col in {tf_column(c.field) for c in COMPARISONS}:
        counts = pd.Series(prep.values[col]).value_counts(dropna=True)
        counts = counts[counts >= min_count]
        tables[col] = {str(k): float(v) / n for k, v in counts.items()}
    return tables
