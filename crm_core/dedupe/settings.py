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
    """How ``find_duplicates`` blocks, scores and clusters (every field has a default).

    The default thresholds were chosen on generated customers with planted duplicates
    (``benchmarks/dedupe_bench.py``): at 0.80 the clusters' pairwise F1 is highest
    (0.5 and 0.9 both do slightly worse), and the pairs scoring 0.99 or more were true
    duplicates 99.98 % of the time.
    """

    review_threshold: float = DEFAULT_REVIEW_THRESHOLD
    """Lowest match probability reported in ``pairs`` (default 0.80); also the lowest link
    joining two records into a cluster unless ``cluster_threshold`` is set."""
    auto_merge_threshold: float = DEFAULT_AUTO_MERGE_THRESHOLD
    """Pairs at or above it (default 0.99) are safe to merge in bulk without review."""
    cluster_threshold: float | None = None
    """Lowest link joining two records into a cluster (default: ``review_threshold``)."""
    block_cap: int = 20
    """A block (records sharing a key) larger than this is not compared all against all..."""
    block_window: int = 5
    """... but by sorted neighbourhood: each record against its next ``block_window``."""
    max_cluster_size: int = 50
    """No cluster grows beyond this; the weakest links of a larger group are cut."""
    min_link: float = 0.01
    """Two records whose own pair scores below this never share a cluster through others."""
    chunk_size: int = 250_000
    """Candidate pairs compared per chunk (bounds the memory of string comparisons)."""
    u_sample_pairs: int = 100_000
    """Random record pairs drawn to estimate how often non-duplicates agree."""
    min_records_to_train: int = 2_000
    """A smaller frame is scored with the built-in ``model.DEFAULT_M`` / ``DEFAULT_U``."""
    em_sample_pairs: int = 500_000
    """Candidate pairs (at most) that expectation maximisation learns from."""
    em_max_iter: int = 50
    """Iterations (at most) of each expectation maximisation."""
    label_strength: float = 50.0
    """How many decided pairs the learned ``m`` counts as when steward decisions refine it."""
    tf_boost_cap: float = 10.0
    """A rare shared value (name, email, phone) weighs at most this many times more than an
    average one."""
    region: str = "CN"
    """Country of phone numbers written without a country code."""
    workers: int = -1
    """Threads for string comparisons and for normalising the columns of a large frame side
    by side (-1: all CPUs)."""
    processes: int = 1
    """Processes normalising names, addresses and companies of a large frame. More than one
    forks worker processes (Linux): faster on an idle multi-core machine, slower on a busy
    one, and best avoided inside a threaded server."""
    seed: int = 0
    """Seed of the random samples, so that a run is repeatable."""

    def __post_init__(self) -> None:
        for name in ("review_threshold", "auto_merge_threshold", "min_link", "cluster_threshold"):
            value = getattr(self, name)
            if value is None:
                continue
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
