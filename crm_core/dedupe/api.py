"""The DataFrame face of the de-duplication engine (no database needed).

``find_duplicates`` runs the whole pipeline on a DataFrame: normalise, block, compare,
learn the match model from the data, score and cluster. ``score_candidates`` scores one new
record against given candidates with a trained model, ``train_model`` learns a model only.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from crm_core.dedupe.blocking import candidate_pairs
from crm_core.dedupe.cluster import cluster_pairs
from crm_core.dedupe.model import (
    DEFAULT_U,
    TF_MIN_RECORDS,
    TRAINING_RULES,
    MatchModel,
    estimate_u,
    fit_model,
    term_frequencies,
)
from crm_core.dedupe.normalize import FIELDS, NORMALIZED_COLUMNS, normalize_record
from crm_core.dedupe.scoring import (
    COMPARISONS,
    Prepared,
    compare,
    exact_frequency,
    field_levels,
    levels_matrix,
    prepare_frame,
    prepare_values,
)
from crm_core.dedupe.settings import DedupeSettings
from crm_core.errors import InvalidInput

LABEL_COLUMNS = ("left_id", "right_id", "is_duplicate")


@dataclass
class DedupeResult:
    """What ``find_duplicates`` found.

    ``pairs``: DataFrame ``left_id, right_id, score`` of the pairs scoring at least the review
    threshold, highest score first (``score`` is the match probability, 0..1).
    ``clusters``: DataFrame ``id, cluster_id`` holding every input id once; records in the
    same cluster are duplicates of each other, a record alone has a cluster of its own.
    ``model``: the match model used (reusable with ``score_candidates``).
    ``stats``: counts and timings of the run.
    """

    pairs: pd.DataFrame
    clusters: pd.DataFrame
    model: MatchModel
    settings: DedupeSettings
    stats: dict[str, float] = field(default_factory=dict)

    @property
    def auto_merge_pairs(self) -> pd.DataFrame:
        """The pairs at or above the auto-merge threshold."""
        return self.pairs[self.pairs["score"] >= self.settings.auto_merge_threshold]

    @property
    def review_pairs(self) -> pd.DataFrame:
        """The pairs between the review and the auto-merge threshold (for a steward)."""
        return self.pairs[self.pairs["score"] < self.settings.auto_merge_threshold]


def _check_ids(df: pd.DataFrame, id_column: str) -> np.ndarray:
    if id_column not in df.columns:
        raise InvalidInput(f"the frame has no '{id_column}' column", field="id_column")
    ids = df[id_column].to_numpy()
    if pd.isna(ids).any():
        raise InvalidInput(f"'{id_column}' has empty values", field=id_column)
    if len(pd.unique(ids)) != len(ids):
        raise InvalidInput(f"'{id_column}' values are not unique", field=id_column)
    return ids


def _label_positions(
    labels: pd.DataFrame | None, ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row positions ``(left, right)`` (left < right) and 0/1 decisions of labelled pairs."""
    if labels is None or labels.empty:
        empty = np.empty(0, np.int64)
        return empty, empty, np.empty(0, np.float64)
    missing = [c for c in LABEL_COLUMNS if c not in labels.columns]
    if missing:
        raise InvalidInput(f"labels need the columns {', '.join(LABEL_COLUMNS)}", field="labels")
    position = pd.Series(np.arange(len(ids)), index=pd.Index(ids))
    a = position.reindex(labels["left_id"].to_numpy()).to_numpy()
    b = position.reindex(labels["right_id"].to_numpy()).to_numpy()
    known = ~(np.isnan(a) | np.isnan(b)) & (a != b)
    a, b = a[known].astype(np.int64), b[known].astype(np.int64)
    decision = labels["is_duplicate"].to_numpy()[known].astype(np.float64)
    return np.minimum(a, b), np.maximum(a, b), decision


def _compare_chunked(
    prep: Prepared, left: np.ndarray, right: np.ndarray, settings: DedupeSettings
) -> np.ndarray:
    gamma = np.empty((len(left), len(COMPARISONS)), np.int8)
    for start in range(0, len(left), settings.chunk_size):
        stop = start + settings.chunk_size
        gamma[start:stop] = compare(
            prep, left[start:stop], right[start:stop], workers=settings.workers
        )
    return gamma


def _u(prep: Prepared, settings: DedupeSettings) -> dict[str, list[float]]:
    if prep.n < settings.min_records_to_train:
        return {f: list(v) for f, v in DEFAULT_U.items()}
    return estimate_u(
        prep, sample_pairs=settings.u_sample_pairs, seed=settings.seed, workers=settings.workers
    )


def _train(
    prep: Prepared,
    gamma: np.ndarray,
    settings: DedupeSettings,
    label_gamma: np.ndarray,
    decisions: np.ndarray,
    u: dict[str, list[float]],
) -> MatchModel:
    rng = np.random.default_rng(settings.seed)
    small = prep.n < settings.min_records_to_train
    sample = gamma
    if len(gamma) > settings.em_sample_pairs:
        sample = gamma[rng.choice(len(gamma), settings.em_sample_pairs, replace=False)]
    model = fit_model(
        sample,
        u,
        total_pairs=prep.n * (prep.n - 1) / 2,
        pairs_represented=len(gamma),
        rules=() if small else TRAINING_RULES,
        label_gamma=label_gamma,
        decisions=decisions,
        label_strength=settings.label_strength,
        max_iter=settings.em_max_iter,
    )
    model.n_records = prep.n
    model.tf = term_frequencies(prep)
    model.tf_boost_cap = settings.tf_boost_cap
    return model


@dataclass
class _Fitted:
    """A frame prepared, blocked, compared, and the model to score it with."""

    ids: np.ndarray
    prep: Prepared
    left: np.ndarray
    right: np.ndarray
    gamma: np.ndarray
    label_left: np.ndarray
    label_right: np.ndarray
    decisions: np.ndarray
    model: MatchModel
    seconds: dict[str, float]


def _fit(
    df: pd.DataFrame,
    id_column: str,
    settings: DedupeSettings,
    model: MatchModel | None,
    labels: pd.DataFrame | None,
) -> _Fitted:
    ids = _check_ids(df, id_column)
    clock = [time.perf_counter()]

    def lap() -> float:
        clock.append(time.perf_counter())
        return clock[-1] - clock[-2]

    threads = settings.workers if settings.workers > 0 else os.cpu_count() or 1
    prep = prepare_frame(df, region=settings.region, processes=settings.processes, threads=threads)
    seconds = {"seconds_normalize": lap()}
    with ThreadPoolExecutor(1) as pool:
        # u from random pairs is learned while blocking and comparing (both mostly outside
        # the interpreter lock); it reads only the prepared records, seeded, so the result
        # does not depend on the timing
        u_job = pool.submit(_u, prep, settings) if model is None and threads > 1 else None
        left, right = candidate_pairs(
            prep, block_cap=settings.block_cap, block_window=settings.block_window
        )
        seconds["seconds_block"] = lap()
        gamma = _compare_chunked(prep, left, right, settings)
        seconds["seconds_compare"] = lap()
        label_left, label_right, decisions = _label_positions(labels, ids)
        if model is None:
            label_gamma = compare(prep, label_left, label_right, workers=settings.workers)
            u = u_job.result() if u_job is not None else _u(prep, settings)
            model = _train(prep, gamma, settings, label_gamma, decisions, u)
    seconds["seconds_train"] = lap()
    return _Fitted(
        ids, prep, left, right, gamma, label_left, label_right, decisions, model, seconds
    )


def train_model(
    df: pd.DataFrame,
    *,
    id_column: str = "id",
    labels: pd.DataFrame | None = None,
    settings: DedupeSettings | None = None,
) -> MatchModel:
    """A match model learned from ``df`` (columns as for ``find_duplicates``) without labels,
    refined by steward decisions ``labels`` (``left_id, right_id, is_duplicate``) if given.
    Save it with ``MatchModel.to_dict`` and reuse it with ``find_duplicates(model=...)`` or
    ``score_candidates``."""
    return _fit(df, id_column, settings or DedupeSettings(), None, labels).model


def find_duplicates(
    df: pd.DataFrame,
    *,
    id_column: str = "id",
    settings: DedupeSettings | None = None,
    model: MatchModel | None = None,
    labels: pd.DataFrame | None = None,
) -> DedupeResult:
    """Find duplicate customers in ``df``.

    ``df`` holds an id column and any of ``name, company, email, phone, city, address``
    (other columns are ignored, missing ones count as empty). Without ``model`` the match
    model is learned from ``df`` itself (no labels needed); ``labels``, a DataFrame
    ``left_id, right_id, is_duplicate`` of steward decisions, refines it, and pairs decided
    "not a duplicate" are never reported nor clustered together.

    Default thresholds (see ``DedupeSettings``): pairs scoring at least 0.80 are reported
    and clustered; pairs at or above 0.99 are safe to merge without review.
    """
    settings = settings or DedupeSettings()
    started = time.perf_counter()
    fitted = _fit(df, id_column, settings, model, labels)
    ids, prep, model = fitted.ids, fitted.prep, fitted.model
    left, right, gamma = fitted.left, fitted.right, fitted.gamma
    label_left, label_right, decisions = fitted.label_left, fitted.label_right, fitted.decisions
    t_train = time.perf_counter()

    n = prep.n
    decided = pd.Series(decisions, index=label_left * n + label_right)
    decided = decided[~decided.index.duplicated(keep="last")]

    def score(a: np.ndarray, b: np.ndarray, g: np.ndarray | None = None) -> np.ndarray:
        g = compare(prep, a, b, workers=settings.workers) if g is None else g
        freq = exact_frequency(prep, a, b) if n >= TF_MIN_RECORDS else None
        p = model.probability(g, freq)
        if len(decided):
            code = np.minimum(a, b) * n + np.maximum(a, b)
            known = decided.reindex(code).to_numpy()
            p = np.where(np.isnan(known), p, known).astype(np.float32)
        return p

    floor = min(settings.review_threshold, settings.link_threshold)
    kept_l, kept_r, kept_p = [], [], []
    for start in range(0, len(left), settings.chunk_size):
        a, b = left[start : start + settings.chunk_size], right[start : start + settings.chunk_size]
        p = score(a, b, gamma[start : start + settings.chunk_size])
        keep = p >= floor
        kept_l.append(a[keep])
        kept_r.append(b[keep])
        kept_p.append(p[keep])
    # Pairs decided duplicate by a steward join clusters even if blocking missed them.
    yes = decisions == 1
    kept_l.append(label_left[yes])
    kept_r.append(label_right[yes])
    kept_p.append(np.ones(int(yes.sum()), np.float32))
    pl, pr, pp = (np.concatenate(x) for x in (kept_l, kept_r, kept_p))
    pair_code = pl * n + pr
    _, first = np.unique(pair_code, return_index=True)
    pl, pr, pp = pl[first], pr[first], pp[first]
    t_score = time.perf_counter()

    labels_out = cluster_pairs(
        n,
        pl,
        pr,
        pp,
        threshold=settings.link_threshold,
        rescore=score,
        max_cluster_size=settings.max_cluster_size,
        min_link=settings.min_link,
    )
    t_cluster = time.perf_counter()

    reported = pp >= settings.review_threshold
    order = np.lexsort((pr[reported], pl[reported], -pp[reported]))
    pairs = pd.DataFrame(
        {
            "left_id": ids[pl[reported][order]],
            "right_id": ids[pr[reported][order]],
            "score": pp[reported][order].astype(np.float64),
        }
    )
    clusters = pd.DataFrame({"id": ids, "cluster_id": labels_out})
    stats = {
        "records": float(n),
        "candidate_pairs": float(len(left)),
        "reported_pairs": float(len(pairs)),
        "clusters": float(labels_out.max() + 1 if n else 0),
        **fitted.seconds,
        "seconds_score": t_score - t_train,
        "seconds_cluster": t_cluster - t_score,
        "seconds_total": t_cluster - started,
    }
    return DedupeResult(pairs=pairs, clusters=clusters, model=model, settings=settings, stats=stats)


def score_candidates(
    record: Mapping[str, object],
    candidates: pd.DataFrame,
    model: MatchModel,
    *,
    id_column: str = "id",
    region: str = "CN",
) -> pd.DataFrame:
    """Score one record (a mapping with any of ``name, company, email, phone, city, address``)
    against ``candidates`` (an id column and the same fields) with a trained ``model``.

    Returns a DataFrame ``id, score`` plus one column per field (``name, company, email,
    phone, city, address``) holding its comparison level (``-1`` missing, ``0`` different,
    higher is closer; see ``scoring.FIELD_LEVELS``), highest score first. Meant for checking
    a new or edited customer before it is saved.
    """
    ids = _check_ids(candidates, id_column)
    if not len(candidates):
        return pd.DataFrame({"id": ids, "score": np.empty(0)})
    present = [c for c in FIELDS if c in candidates.columns]
    columns = [candidates[c].to_numpy(dtype=object) for c in present]
    rows_in: list[dict[str, object]] = [dict(record)]
    rows_in += [
        {c: col[i] for c, col in zip(present, columns, strict=True)} for i in range(len(ids))
    ]
    normalized = [normalize_record(r, region=region) for r in rows_in]
    prep = prepare_values({c: [r[c] for r in normalized] for c in NORMALIZED_COLUMNS})
    rows = np.arange(1, len(rows_in), dtype=np.int64)
    first = np.zeros(len(rows), np.int64)
    levels = field_levels(prep, first, rows, workers=1)
    gamma = levels_matrix(levels)
    freq = model.frequencies(prep, rows) if model.uses_term_frequencies else None
    score = model.probability(gamma, freq).astype(np.float64)
    result = pd.DataFrame({"id": ids, "score": score, **levels})
    return result.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)
