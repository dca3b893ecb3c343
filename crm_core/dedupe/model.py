"""Fellegi–Sunter match model, learned from the data itself by expectation maximisation.

For every field comparison level the model holds two probabilities: ``m`` (the level is seen
when the two records are the same customer) and ``u`` (seen when they are not). A pair's
match weight is the sum over fields of ``log(m/u)`` of its levels, plus the prior log-odds;
its match probability is the logistic of that weight.

* ``u`` is estimated from random record pairs, which are almost all non-matches.
* ``m`` is estimated by expectation maximisation over the candidate pairs, with no labels,
  once per training rule (pairs sharing a phone train the other fields, and so on); the
  prior then by EM over all candidate pairs. Steward decisions, when there are some, refine
  ``m`` with the levels seen in pairs decided to be duplicates.
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
TF_MIN_RECORDS = 10_000
"""Fewer records than this give no reliable value frequencies: the plain ``u`` is used."""


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

    @property
    def uses_term_frequencies(self) -> bool:
        """Whether value frequencies were learned from enough records to be used."""
        return self.n_records >= TF_MIN_RECORDS

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
        # log Bayes factor per comparison and level; column 0 stands for "missing" (no evidence)
        log_bf = np.zeros((m.shape[0], m.shape[1] + 1))
        log_bf[:, 1:] = np.log(np.maximum(m, _EPS) / np.maximum(u, _EPS))
        gamma = np.asarray(gamma)
        weight = np.full(len(gamma), _logit(self.prior), np.float64)
        for j, c in enumerate(COMPARISONS):
            g = gamma[:, j].astype(np.intp) + 1
            weight += log_bf[j, g]
            if freq is None or not c.tf_levels:
                continue
            rows = np.flatnonzero(np.isin(g - 1, c.tf_levels))
            if not len(rows):
                continue
            u_level = u[j, g[rows] - 1]
            u_tf = np.maximum(freq[rows, j].astype(np.float64), u_level / self.tf_boost_cap)
            weight[rows] += np.log(np.maximum(u_level, _EPS) / np.maximum(u_tf, _EPS))
        return weight

    def probability(self, gamma: np.ndarray, freq: np.ndarray | None = None) -> np.ndarray:
        """Match probability 0..1 of each pair (see ``match_weight``)."""
        return _sigmoid(self.match_weight(gamma, freq)).astype(np.float32)

    def frequencies(self, prep: Prepared, rows: np.ndarray) -> np.ndarray:
        """Frequency of each listed record's values in the training data, shape
        ``(len(rows), fields)``, looked up in ``tf`` (for scoring records outside it)."""
        floor = 1.0 / max(self.n_records, 1)
        out = np.empty((len(rows), len(COMPARISONS)), np.float32)
        for j, c in enumerate(COMPARISONS):
            if not c.tf_levels:
                out[:, j] = floor
                continue
            table = self.tf.get(tf_column(c.field), {})
            values = prep.values[tf_column(c.field)][rows]
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
        total = counts.sum()
        shares[c.field] = (counts / total if total > 0 else counts).tolist()
    return shares


def _chance_equal(codes: np.ndarray) -> float:
    """Probability that two records drawn at random, both with a value, hold the same one."""
    present = codes[codes >= 0]
    if len(present) < 2:
        return 0.0
    counts = np.bincount(present).astype(np.float64)
    return float(((counts * (counts - 1)).sum()) / (len(present) * (len(present) - 1)))


_EXACT_COLUMNS: dict[str, dict[int, str]] = {
    "name": {4: "name", 3: "name_key"},
    "email": {2: "email"},
    "phone": {2: "phone"},
}
"""Levels whose ``u`` is computed exactly from value counts, and the column counted."""


def estimate_u(
    prep: Prepared, *, sample_pairs: int = 100_000, seed: int = 0, workers: int = -1
) -> dict[str, list[float]]:
    """``u`` probabilities: the chance of each level between two records drawn at random
    (nearly all non-matches). Exact-agreement levels of name, email and phone are computed
    from value counts (rare events a sample would miss); the other levels are the shares
    seen in ``sample_pairs`` random pairs, scaled to what the exact levels leave."""
    rng = np.random.default_rng(seed)
    n = prep.n
    if n < 2:
        return {c.field: [1.0 / len(c.levels)] * len(c.levels) for c in COMPARISONS}
    size = min(sample_pairs, n * (n - 1) // 2)
    left = rng.integers(0, n, size)
    right = (left + rng.integers(1, n, size)) % n
    gamma = compare(prep, left, right, workers=workers)
    u = _level_shares(gamma, None, smoothing=1.0)
    for j, c in enumerate(COMPARISONS):
        exact_cols = _EXACT_COLUMNS.get(c.field)
        if not exact_cols:
            continue
        exact: dict[int, float] = {}
        covered = 0.0
        for level in sorted(exact_cols, reverse=True):  # the finer level first
            chance = max(_chance_equal(prep.codes[exact_cols[level]]) - covered, 1e-9)
            exact[level] = chance
            covered += chance
        g = gamma[:, j]
        rest = g[(g != MISSING) & ~np.isin(g, list(exact))]
        counts = np.bincount(rest.astype(np.int64), minlength=len(c.levels)).astype(np.float64)
        counts[list(exact)] = 0.0
        counts[[lv for lv in range(len(c.levels)) if lv not in exact]] += 1.0  # smoothing
        shares = counts / counts.sum() * max(1.0 - covered, 1e-9)
        for level, chance in exact.items():
            shares[level] = chance
        u[c.field] = shares.tolist()
    return u


DEFAULT_M: dict[str, list[float]] = {
    "name": [0.01, 0.09, 0.17, 0.22, 0.51],
    "email": [0.22, 0.08, 0.70],
    "phone": [0.23, 0.01, 0.76],
    "site": [0.01, 0.02, 0.02, 0.40, 0.55],
}
"""``m`` probabilities EM starts from, and uses for a field or a frame too small to learn
from: rounded (and made less extreme) from a model learned on 100,000 generated customers."""

DEFAULT_U: dict[str, list[float]] = {
    "name": [0.9983, 0.0013, 0.0002, 0.0001, 0.0001],
    "email": [0.99998, 0.00001, 0.00001],
    "phone": [0.99998, 0.00001, 0.00001],
    "site": [0.9700, 0.0285, 0.0010, 0.0003, 0.0002],
}
"""``u`` probabilities for a frame too small to estimate them (a few thousand customers)."""


@dataclass(frozen=True)
class TrainingRule:
    """Pairs reaching ``min_level`` on each of ``fields`` train the ``m`` of the other fields.

    Training ``m`` of a field on pairs selected for agreeing on it would only confirm the
    selection; so, as in Splink, each rule trains the fields it does not select on, and a
    field's ``m`` is the average over the rules that train it.
    """

    name: str
    fields: tuple[tuple[str, int], ...]

    def mask(self, gamma: np.ndarray) -> np.ndarray:
        """Which rows of ``gamma`` the rule selects."""
        selected = np.ones(len(gamma), bool)
        for field_name, min_level in self.fields:
            selected &= gamma[:, FIELD_NAMES.index(field_name)] >= min_level
        return selected


TRAINING_RULES: tuple[TrainingRule, ...] = (
    TrainingRule("same phone", (("phone", 2),)),
    TrainingRule("same email", (("email", 2),)),
    TrainingRule("same name and place", (("name", 3), ("site", 1))),
)


def fit_em(
    gamma: np.ndarray,
    u: dict[str, list[float]],
    *,
    m: dict[str, list[float]] | None = None,
    fields: tuple[str, ...] = FIELD_NAMES,
    evidence: tuple[str, ...] | None = None,
    learn_u: bool = False,
    prior: float = 0.1,
    max_iter: int = 50,
    tol: float = 1e-5,
) -> MatchModel:
    """Expectation maximisation of the ``m`` of ``fields`` and of the prior over a comparison
    matrix, ``u`` fixed. Only the ``evidence`` fields (default: ``fields``) inform the
    posteriors; with ``fields=()`` and all fields as evidence only the prior is learned."""
    model = MatchModel(m=dict(m or DEFAULT_M), u=u, prior=prior)
    evidence = fields if evidence is None else evidence
    ignored = [j for j, f in enumerate(FIELD_NAMES) if f not in evidence]
    masked = gamma.copy()
    masked[:, ignored] = MISSING  # missing levels carry no evidence
    for iteration in range(1, max_iter + 1):
        p = _sigmoid(model.match_weight(masked))
        shares = _level_shares(masked, p, smoothing=1e-3)
        new_m = {f: shares[f] if f in fields else model.m[f] for f in FIELD_NAMES}
        if learn_u:
            u_shares = _level_shares(masked, 1.0 - p, smoothing=1e-3)
            model.u = {f: u_shares[f] if f in fields else model.u[f] for f in FIELD_NAMES}
        new_prior = min(max(float(p.mean()) if len(p) else prior, 1e-6), 1 - 1e-6)
        change = abs(new_prior - model.prior)
        for f in fields:
            change = max(change, *(abs(a - b) for a, b in zip(new_m[f], model.m[f], strict=True)))
        model.m, model.prior, model.iterations = new_m, new_prior, iteration
        if change < tol:
            model.converged = True
            break
    return model


def estimate_prior(
    model: MatchModel,
    gamma: np.ndarray,
    *,
    pairs_represented: float,
    total_pairs: float,
    max_iter: int = 100,
    tol: float = 1e-4,
) -> float:
    """The probability that two records drawn at random are the same customer.

    Pairs that share no blocking key are taken as non-matches, so the expected number of
    matching pairs is the sum of the match probabilities of the candidate pairs; ``gamma``
    is a sample of them standing for ``pairs_represented`` candidates. The prior is the
    fixed point of ``prior = expected matches / total_pairs`` (EM for the prior alone)."""
    if total_pairs <= 0 or not len(gamma):
        return _EPS
    weight = model.match_weight(gamma) - _logit(model.prior)
    scale = pairs_represented / len(gamma)
    prior = max(float((weight > 0).sum()) * scale / total_pairs, _EPS)
    for _ in range(max_iter):
        expected = float(_sigmoid(weight + _logit(prior)).sum()) * scale
        new = min(max(expected / total_pairs, _EPS), 0.5)
        if abs(math.log(new) - math.log(prior)) < tol:
            return new
        prior = new
    return prior


def fit_model(
    gamma: np.ndarray,
    u: dict[str, list[float]],
    *,
    total_pairs: float,
    pairs_represented: float | None = None,
    rules: tuple[TrainingRule, ...] = TRAINING_RULES,
    label_gamma: np.ndarray | None = None,
    decisions: np.ndarray | None = None,
    label_strength: float = 50.0,
    min_pairs: int = 50,
    max_iter: int = 50,
) -> MatchModel:
    """A model learned from the comparison matrix of (a sample of) candidate pairs, without
    labels.

    ``m`` comes from EM per training rule (see ``TrainingRule``); the prior from
    ``estimate_prior`` over the ``total_pairs`` record pairs, ``gamma`` standing for
    ``pairs_represented`` candidate pairs (default: its length). Steward decisions
    (``label_gamma`` with ``decisions``, 1 duplicate / 0 not) then refine ``m``: the learned
    ``m`` counts as ``label_strength`` pairs and the decided duplicates are added to it.
    """
    totals = {f: np.zeros(len(DEFAULT_M[f])) for f in FIELD_NAMES}
    counts = dict.fromkeys(FIELD_NAMES, 0)
    iterations, converged = 0, True
    for rule in rules:
        rows = gamma[rule.mask(gamma)]
        if len(rows) < min_pairs:
            continue
        trained = tuple(f for f in FIELD_NAMES if f not in {name for name, _ in rule.fields})
        fitted = fit_em(rows, u, fields=trained, prior=0.5, max_iter=max_iter)
        iterations += fitted.iterations
        converged &= fitted.converged
        for f in trained:
            totals[f] += fitted.m[f]
            counts[f] += 1
    m = {
        f: (totals[f] / counts[f]).tolist() if counts[f] else list(DEFAULT_M[f])
        for f in FIELD_NAMES
    }
    if label_gamma is not None and decisions is not None and len(label_gamma):
        matches = label_gamma[np.asarray(decisions) == 1]
        if len(matches):
            seen = _level_shares(matches, None, smoothing=0.0)
            for j, f in enumerate(FIELD_NAMES):
                n_seen = int((matches[:, j] != MISSING).sum())
                if not n_seen:
                    continue
                blended = np.asarray(m[f]) * label_strength + np.asarray(seen[f]) * n_seen
                m[f] = (blended / blended.sum()).tolist()
    m = {f: _floored(v) for f, v in m.items()}
    model = MatchModel(m=m, u=u, prior=0.5, iterations=iterations, converged=converged)
    model.prior = estimate_prior(
        model,
        gamma,
        pairs_represented=len(gamma) if pairs_represented is None else pairs_represented,
        total_pairs=total_pairs,
    )
    return model


def _floored(shares: list[float], floor: float = 1e-3) -> list[float]:
    """Shares with none below ``floor`` (no single level may veto a match on its own)."""
    arr = np.maximum(np.asarray(shares, np.float64), floor)
    return (arr / arr.sum()).tolist()


def term_frequencies(prep: Prepared, *, min_count: int = 2) -> dict[str, dict[str, float]]:
    """Share of records holding each value seen at least ``min_count`` times, per column
    used for term-frequency adjustment."""
    tables: dict[str, dict[str, float]] = {}
    n = max(prep.n, 1)
    for col in sorted({tf_column(c.field) for c in COMPARISONS if c.tf_levels}):
        codes, uniques = prep.codes[col], prep.uniques[col]
        counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
        common = np.flatnonzero(counts >= min_count)
        shares = (counts[common] / n).tolist()
        tables[col] = dict(zip(uniques[common].tolist(), shares, strict=True))
    return tables
