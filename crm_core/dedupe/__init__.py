"""Fuzzy de-duplication of customers: normalise, block, compare, score, cluster.

Pure functions over pandas DataFrames; no database access. Typical use in a notebook::

    from crm_core.dedupe import find_duplicates

    result = find_duplicates(customers, id_column="id")
    result.pairs      # left_id, right_id, score (0..1), highest first
    result.clusters   # id, cluster_id (every input id)

The match model is learned from the data itself (Fellegi–Sunter with expectation
maximisation); ``score_candidates`` reuses it to check one new record, and ``blocking_keys``
gives the keys under which a database finds that record's candidates.
"""

from crm_core.dedupe.api import DedupeResult, find_duplicates, score_candidates, train_model
from crm_core.dedupe.blocking import blocking_keys
from crm_core.dedupe.model import MatchModel
from crm_core.dedupe.settings import (
    DEFAULT_AUTO_MERGE_THRESHOLD,
    DEFAULT_REVIEW_THRESHOLD,
    DedupeSettings,
)

__all__ = [
    "DEFAULT_AUTO_MERGE_THRESHOLD",
    "DEFAULT_REVIEW_THRESHOLD",
    "DedupeResult",
    "DedupeSettings",
    "MatchModel",
    "blocking_keys",
    "find_duplicates",
    "score_candidates",
    "train_model",
]
