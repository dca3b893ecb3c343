"""Settings of the de-duplication engine: a plain dataclass that describes and does nothing."""

from __future__ import annotations

from dataclasses import dataclass

from crm_core.errors import InvalidInput

DEFAULT_REVIEW_THRESHOLD = 0.80
"""Pairs whose match probability is at least this are proposed to a data steward."""

DEFAULT_AUTO_MERGE_THRESHOLD = 0.99
"""Pairs whose match probability is at least this may be merged in bulk without review."""


@dataclass(frozen=True)
class DedupeSettings:
    """How ``find_duplicates`` blocks, scores and clusters.

    Thresholds are match probabilities (0..1):

    * ``review_threshold`` (default 0.80): the lowest score reported in ``pairs`` and the
      lowest link that joins two records into a cluster (unless ``cluster_threshold`` is set);
    * ``auto_merge_threshold`` (default 0.99): pairs at or above it are safe to merge in bulk.

    Blocking: a block (records sharing a key) larger than ``block_cap`` is compared by
    sorted neighbourhood, each record against its ``block_window`` next neighbours.
    Clustering: no cluster holds more than ``max_cluster_size`` records, and two records whose
    pair scores below ``min_link`` never end up in the same cluster through others.

    Training: a frame of fewer than ``min_records_to_train`` records is scored with the
    built-in defaults (``model.DEFAULT_M`` / ``DEFAULT_U``) instead of learning them.
    """

    review_threshold: float = DEFAULT_REVIEW_THRESHOLD
    auto_merge_threshold: float = DEFAULT_AUTO_MERGE_THRESHOLD
    cluster_threshold: float | None = None
    block_cap: int = 20
    block_window: int = 5
    max_cluster_size: int = 50
    min_link: float = 0.01
    chunk_size: int = 250_000
    u_sample_pairs: int = 100_000
    min_records_to_train: int = 2_000
    em_sample_pairs: int = 500_000
    em_max_iter: int = 50
    label_strength: float = 50.0
    tf_boost_cap: float = 10.0
    region: str = "CN"
    workers: int = -1
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("review_threshold", "auto_merge_threshold", "min_link"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise InvalidInput(f"must be between 0 and 1, not {value}", field=name)
        if self.auto_merge_threshold < self.review_threshold:
            raise InvalidInput("must not be below review_threshold", field="auto_merge_threshold")
        if self.block_cap < 2 or self.block_window < 1 or self.max_cluster_size < 2:
            raise InvalidInput("block_cap and max_cluster_size must be >= 2, block_window >= 1")

    @property
    def link_threshold(self) -> float:
        """The score from which a pair joins two records into a cluster."""
        return self.review_threshold if self.cluster_threshold is None else self.cluster_threshold
