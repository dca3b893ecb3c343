"""Field comparisons of candidate pairs, vectorised with rapidfuzz.

A comparison turns a pair of normalised values into a *level*: ``-1`` when either side is
missing (no evidence), ``0`` when they differ, and higher levels for closer agreement up to
exact equality. Exact equality is decided on integer codes; only pairs that are neither
equal nor missing go through rapidfuzz's ``process.cpdist``, which scores aligned arrays of
pairs in C++ across all cores. There is no Python loop over pairs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from crm_core.dedupe.normalize import NORMALIZED_COLUMNS

MISSING = -1


@dataclass(frozen=True)
class Comparison:
    """How one field of two records is compared: ``levels[i]`` describes level ``i``."""

    field: str
    levels: tuple[str, ...]
    tf_levels: tuple[int, ...]
    """Levels meaning "same value"; their weight is adjusted for how common the value is."""


COMPARISONS: tuple[Comparison, ...] = (
    Comparison(
        "name",
        ("different", "similar", "very similar", "same name in another form", "same name"),
        tf_levels=(3, 4),
    ),
    Comparison("company", ("different", "similar", "very similar", "same"), tf_levels=(3,)),
    Comparison("email", ("different", "same mailbox or one typo", "same"), tf_levels=(2,)),
    Comparison("phone", ("different", "one digit off", "same"), tf_levels=(2,)),
    Comparison("city", ("different", "same"), tf_levels=(1,)),
    Comparison("address", ("different", "similar", "very similar", "same"), tf_levels=(3,)),
)
"""The comparisons of the model, in the column order of a comparison matrix."""

FIELD_NAMES: tuple[str, ...] = tuple(c.field for c in COMPARISONS)

_TF_COLUMN = {"name": "name_key"}
"""Column whose value frequency adjusts a field's exact level (default: the field itself)."""


@dataclass
class Prepared:
    """Normalised records ready for comparison: values and integer codes per column.

    ``codes[col][i]`` is ``-1`` when record ``i`` has no value, and two records share a code
    exactly when their normalised values are equal. ``freq[col][i]`` is the share of records
    holding record ``i``'s value.
    """

    norm: pd.DataFrame
    values: dict[str, np.ndarray] = field(default_factory=dict)
    codes: dict[str, np.ndarray] = field(default_factory=dict)
    freq: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.norm)


def prepare(norm: pd.DataFrame) -> Prepared:
    """Codes and value frequencies of a normalised frame (see ``normalize_frame``)."""
    prepared = Prepared(norm=norm)
    n = max(len(norm), 1)
    for col in NORMALIZED_COLUMNS:
        values = norm[col].to_numpy(dtype=object)
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        counts = np.r_[np.bincount(codes[codes >= 0], minlength=len(uniques)), 0]
        prepared.values[col] = values
        prepared.codes[col] = codes.astype(np.int32)
        prepared.freq[col] = (counts[codes] / n).astype(np.float32)  # code -1 picks the 0
    return prepared


def tf_column(field_name: str) -> str:
    """The normalised column whose value frequency adjusts ``field_name``'s exact level."""
    return _TF_COLUMN.get(field_name, field_name)


Scorer = Callable[..., float]


def similarity(
    left: np.ndarray, right: np.ndarray, scorer: Scorer = fuzz.ratio, *, workers: int = -1
) -> np.ndarray:
    """Similarity 0..1 of aligned arrays of strings, pair by pair (``left[i]`` vs ``right[i]``)."""
    if len(left) == 0:
        return np.empty(0, np.float32)
    scores = process.cpdist(left, right, scorer=scorer, workers=workers, dtype=np.float32)
    return np.asarray(scores, dtype=np.float32) / np.float32(100.0)


def _osa_distance(left: np.ndarray, right: np.ndarray, *, workers: int) -> np.ndarray:
    if len(left) == 0:
        return np.empty(0, np.int32)
    return np.asarray(
        process.cpdist(left, right, scorer=OSA.distance, workers=workers, dtype=np.int32)
    )


def _equal_and_missing(
    prep: Prepared, col: str, left: np.ndarray, right: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    a, b = prep.codes[col][left], prep.codes[col][right]
    missing = (a < 0) | (b < 0)
    return (a == b) & ~missing, missing


def _graded(
    prep: Prepared,
    col: str,
    left: np.ndarray,
    right: np.ndarray,
    cuts: tuple[float, ...],
    workers: int,
    scorer: Scorer = fuzz.ratio,
) -> np.ndarray:
    """Levels of a field graded by similarity: ``len(cuts)+1`` for exact, then one level per
    cut (highest cut first), 0 below the last cut, -1 when missing."""
    equal, missing = _equal_and_missing(prep, col, left, right)
    level = np.zeros(len(left), np.int8)
    fuzzy = np.flatnonzero(~equal & ~missing)
    values = prep.values[col]
    sims = similarity(values[left[fuzzy]], values[right[fuzzy]], scorer, workers=workers)
    graded = np.zeros(len(fuzzy), np.int8)
    for rank, cut in enumerate(sorted(cuts)):
        graded[sims >= cut] = rank + 1
    level[fuzzy] = graded
    level[equal] = len(cuts) + 1
    level[missing] = MISSING
    return level


def _name_levels(prep: Prepared, left: np.ndarray, right: np.ndarray, workers: int) -> np.ndarray:
    level = _graded(prep, "name_key", left, right, (0.72, 0.88), workers)
    same_name, _ = _equal_and_missing(prep, "name", left, right)
    level[same_name] = 4
    return level


def _email_levels(prep: Prepared, left: np.ndarray, right: np.ndarray, workers: int) -> np.ndarray:
    equal, missing = _equal_and_missing(prep, "email", left, right)
    level = np.zeros(len(left), np.int8)
    same_local, _ = _equal_and_missing(prep, "email_local", left, right)
    fuzzy = np.flatnonzero(~equal & ~missing & ~same_local)
    values = prep.values["email"]
    sims = similarity(values[left[fuzzy]], values[right[fuzzy]], workers=workers)
    level[fuzzy[sims >= 0.9]] = 1
    level[same_local & ~missing] = 1
    level[equal] = 2
    level[missing] = MISSING
    return level


def _phone_levels(prep: Prepared, left: np.ndarray, right: np.ndarray, workers: int) -> np.ndarray:
    equal, missing = _equal_and_missing(prep, "phone", left, right)
    level = np.zeros(len(left), np.int8)
    fuzzy = np.flatnonzero(~equal & ~missing)
    values = prep.values["phone"]
    dist = _osa_distance(values[left[fuzzy]], values[right[fuzzy]], workers=workers)
    level[fuzzy[dist <= 1]] = 1
    level[equal] = 2
    level[missing] = MISSING
    return level


def _city_levels(prep: Prepared, left: np.ndarray, right: np.ndarray, workers: int) -> np.ndarray:
    equal, missing = _equal_and_missing(prep, "city", left, right)
    level = equal.astype(np.int8)
    level[missing] = MISSING
    return level


_LEVELS: dict[str, Callable[[Prepared, np.ndarray, np.ndarray, int], np.ndarray]] = {
    "name": _name_levels,
    "company": lambda p, a, b, w: _graded(p, "company", a, b, (0.75, 0.9), w),
    "email": _email_levels,
    "phone": _phone_levels,
    "city": _city_levels,
    "address": lambda p, a, b, w: _graded(p, "address", a, b, (0.75, 0.9), w),
}


def compare(
    prep: Prepared, left: np.ndarray, right: np.ndarray, *, workers: int = -1
) -> np.ndarray:
    """Comparison matrix of the pairs ``(left[i], right[i])`` (row positions in ``prep``):
    ``int8`` of shape ``(pairs, len(COMPARISONS))``, one level per field (see ``COMPARISONS``).
    Symmetric: swapping ``left`` and ``right`` gives the same matrix."""
    left = np.asarray(left, dtype=np.int64)
    right = np.asarray(right, dtype=np.int64)
    gamma = np.empty((len(left), len(COMPARISONS)), np.int8)
    for j, comparison in enumerate(COMPARISONS):
        gamma[:, j] = _LEVELS[comparison.field](prep, left, right, workers)
    return gamma


def exact_frequency(prep: Prepared, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """For each pair and field, the share of records holding the pair's common value
    (``float32``, shape ``(pairs, fields)``); only meaningful where the level is exact."""
    freq = np.empty((len(left), len(COMPARISONS)), np.float32)
    for j, comparison in enumerate(COMPARISONS):
        col = tf_column(comparison.field)
        freq[:, j] = np.maximum(prep.freq[col][left], prep.freq[col][right])
    return freq
