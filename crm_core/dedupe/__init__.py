"""Fuzzy de-duplication of customers: normalise, block, compare, score, cluster.

Pure functions over pandas DataFrames; no database access. Typical use in a notebook::

    from crm_core.dedupe import find_duplicates

    result = find_duplicates(customers, id_column="id")
    result.pairs      # left_id, right_id, score (0..1), highest first
    result.clusters   # id, cluster_id (every input id)

The pipeline, one module per step:

* ``normalize`` / ``frame``: names (pinyin, simplified characters, nicknames, titles),
  companies (legal suffixes), E.164 phones, emails, cities and addresses, for one record or
  a whole frame;
* ``blocking``: the keys under which records are compared (phone, email, name + city,
  building + city, building + initials), capped so that pairs stay near-linear;
* ``scoring``: field comparison levels, vectorised with rapidfuzz;
* ``model``: a Fellegi–Sunter match model learned from the data by expectation
  maximisation, refined by steward decisions, giving a match probability;
* ``cluster``: connected components with a guard against chains;
* ``api``: ``find_duplicates``, ``train_model`` and ``score_candidates`` (one new record
  against candidates, with ``blocking_keys`` telling a database which candidates to fetch).

On the database (each service takes the acting user): ``store`` keeps every customer's
blocking keys and checks a new or edited customer before it is saved (``check_customer``);
``review`` scans into the review queue; ``merge`` merges and undoes, moving children and the
records of other areas that point at a merged customer (``references``: custom-module links).
"""

from crm_core.dedupe.api import DedupeResult, find_duplicates, score_candidates, train_model
from crm_core.dedupe.blocking import blocking_keys
from crm_core.dedupe.frame import normalize_frame
from crm_core.dedupe.model import MatchModel
from crm_core.dedupe.normalize import normalize_record
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
    "normalize_frame",
    "normalize_record",
    "score_candidates",
    "train_model",
]
