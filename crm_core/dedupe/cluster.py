"""Clustering of scored pairs into groups of duplicates, with a guard against chains.

Plain connected components over the pairs above the threshold can chain: A looks like B,
B like C, …, and the last record has nothing to do with the first. Two guards prevent it:

* **complete check** — inside every group of three or more, *all* pairs are scored (not just
  the candidate pairs). A group holding a pair that is clearly not a match (probability below
  ``min_link``) is rebuilt link by link, strongest first, and two parts are joined only when
  no pair across them is clearly not a match;
* **size cap** — a group larger than ``max_cluster_size`` is rebuilt the same way, strongest
  links first, never letting a part grow beyond the cap (its weakest links are cut).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Rescore = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""Match probabilities of the pairs ``(left[i], right[i])`` (row positions)."""


def connected_components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Component label of each of ``n`` nodes joined by the edges ``(left[i], right[i])``:
    the smallest node of its component (a node without edges is its own label)."""
    labels = np.arange(n, dtype=np.int64)
    left = np.asarray(left, np.int64)
    right = np.asarray(right, np.int64)
    while len(left):
        a, b = labels[left], labels[right]
        differ = a != b
        if not differ.any():
            break
        a, b = a[differ], b[differ]
        np.minimum.at(labels, np.maximum(a, b), np.minimum(a, b))
        while True:  # pointer jumping until every node points at its root
            jumped = labels[labels]
            if np.array_equal(jumped, labels):
                break
            labels = jumped
        left, right = left[differ], right[differ]
    return labels


def _groups(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nodes ordered by label, with start offsets and sizes of each label's run."""
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    starts = np.flatnonzero(np.r_[True, sorted_labels[1:] != sorted_labels[:-1]])
    sizes = np.diff(np.r_[starts, len(order)])
    return order, starts, sizes


def _internal_pairs(labels: np.ndarray, min_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of nodes sharing a label whose group has at least ``min_size`` nodes."""
    order, starts, sizes = _groups(labels)
    in_kept = np.repeat(sizes >= min_size, sizes)
    size_at = np.repeat(sizes, sizes)
    remaining = size_at - 1 - (np.arange(len(order)) - np.repeat(starts, sizes))
    current = np.flatnonzero(in_kept & (remaining >= 1))
    rem = remaining[current]
    lefts, rights = [np.empty(0, np.int64)], [np.empty(0, np.int64)]
    step = 1
    while len(current):
        lefts.append(order[current])
        rights.append(order[current + step])
        step += 1
        current, rem = current[rem >= step], rem[rem >= step]
    return np.concatenate(lefts), np.concatenate(rights)


class _Parts:
    """Union-find over a few nodes, keeping each part's members."""

    def __init__(self, nodes: np.ndarray) -> None:
        self.parent = {int(x): int(x) for x in nodes}
        self.members = {int(x): [int(x)] for x in nodes}

    def find(self, x: int) -> int:
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: int, b: int) -> None:
        if len(self.members[a]) < len(self.members[b]):
            a, b = b, a
        self.parent[b] = a
        self.members[a].extend(self.members.pop(b))


def _rebuild(
    nodes: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    prob: np.ndarray,
    *,
    threshold: float,
    max_size: int,
    blocked: set[tuple[int, int]] | None,
) -> dict[int, int]:
    """Parts of one group built strongest link first under the size cap and, when
    ``blocked`` (pairs that are clearly not matches) is given, never joining across one."""
    parts = _Parts(nodes)
    for i in np.argsort(-prob, kind="stable"):
        if prob[i] < threshold:
            break
        a, b = parts.find(int(left[i])), parts.find(int(right[i]))
        if a == b or len(parts.members[a]) + len(parts.members[b]) > max_size:
            continue
        if blocked and any(
            (min(x, y), max(x, y)) in blocked for x in parts.members[a] for y in parts.members[b]
        ):
            continue
        parts.union(a, b)
    return {node: parts.find(node) for node in parts.parent}


def _relabel_groups(
    labels: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    prob: np.ndarray,
    groups: np.ndarray,
    *,
    threshold: float,
    max_size: int,
    min_link: float | None,
) -> None:
    """Rebuild, in place, the groups whose label is in ``groups`` from the given pairs."""
    in_group = np.isin(labels[left], groups)
    left, right, prob = left[in_group], right[in_group], prob[in_group]
    pair_label = labels[left]
    order = np.argsort(pair_label, kind="stable")
    left, right, prob, pair_label = left[order], right[order], prob[order], pair_label[order]
    bounds = np.searchsorted(pair_label, groups)
    ends = np.searchsorted(pair_label, groups, side="right")
    node_order, starts, sizes = _groups(labels)
    node_label = labels[node_order[starts]]
    where = np.searchsorted(node_label, groups)
    for lo, hi, w in zip(bounds, ends, where, strict=True):
        nodes = node_order[starts[w] : starts[w] + sizes[w]]
        gl, gr, p = left[lo:hi], right[lo:hi], prob[lo:hi]
        blocked = None
        if min_link is not None:
            weak = p < min_link
            blocked = {
                (min(a, b), max(a, b))
                for a, b in zip(gl[weak].tolist(), gr[weak].tolist(), strict=True)
            }
        parts = _rebuild(nodes, gl, gr, p, threshold=threshold, max_size=max_size, blocked=blocked)
        for node, root in parts.items():
            labels[node] = root


def cluster_pairs(
    n: int,
    left: np.ndarray,
    right: np.ndarray,
    prob: np.ndarray,
    *,
    threshold: float,
    rescore: Rescore | None = None,
    max_cluster_size: int = 50,
    min_link: float = 0.01,
) -> np.ndarray:
    """Cluster label (0..k-1, in order of first member) of each of ``n`` records from scored
    pairs. Records are joined by pairs with ``prob >= threshold``; with ``rescore`` given,
    groups of three or more are checked pair by pair and split where a pair scores below
    ``min_link``; no cluster grows beyond ``max_cluster_size``."""
    left = np.asarray(left, np.int64)
    right = np.asarray(right, np.int64)
    prob = np.asarray(prob, np.float64)
    strong = prob >= threshold
    left, right, prob = left[strong], right[strong], prob[strong]
    labels = connected_components(n, left, right)

    _, starts, sizes = _groups(labels)
    order = np.argsort(labels, kind="stable")
    big = labels[order[starts[sizes > max_cluster_size]]]
    if len(big):
        _relabel_groups(
            labels,
            left,
            right,
            prob,
            big,
            threshold=threshold,
            max_size=max_cluster_size,
            min_link=None,
        )
        labels = labels[labels]

    if rescore is not None:
        il, ir = _internal_pairs(labels, min_size=3)
        if len(il):
            ip = np.asarray(rescore(il, ir), np.float64)
            conflicted = np.unique(labels[il[ip < min_link]])
            if len(conflicted):
                _relabel_groups(
                    labels,
                    il,
                    ir,
                    ip,
                    conflicted,
                    threshold=threshold,
                    max_size=max_cluster_size,
                    min_link=min_link,
                )
                labels = labels[labels]

    _, dense = np.unique(labels, return_inverse=True)
    first_seen = np.full(dense.max() + 1 if n else 0, n, np.int64)
    np.minimum.at(first_seen, dense, np.arange(n))
    rank = np.empty_like(first_seen)
    rank[np.argsort(first_seen, kind="stable")] = np.arange(len(first_seen))
    return rank[dense]
