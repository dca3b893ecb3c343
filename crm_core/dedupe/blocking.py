"""Blocking: which records are compared at all.

Each record gets several blocking keys (its phone, its email, its name with its city …);
two records become a candidate pair when they share at least one key. A block larger than
``block_cap`` is not compared all-against-all: its records are sorted by name and each is
paired with its ``block_window`` next neighbours, so a very common key (a shared switchboard
number, a frequent name) adds a number of pairs linear in its size, never quadratic.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from crm_core.dedupe.normalize import normalize_frame

KEY_KINDS: tuple[str, ...] = (
    "phone",
    "email",
    "email_local",
    "name_city",
    "name_company",
    "name_prefix_city",
    "company_initials",
    "address",
)
"""Blocking key kinds, each a prefix of the key strings (``phone:+8613800138000``)."""

_MIN_LOCAL = 4  # email local parts shorter than this ("li", "abc") say too little


def _initials(key: pd.Series) -> pd.Series:
    return key.map(lambda k: "".join(t[0] for t in k.split()) if isinstance(k, str) else None)


def _prefixes(key: pd.Series, width: int = 3) -> pd.Series:
    return key.map(lambda k: " ".join(t[:width] for t in k.split()) if isinstance(k, str) else None)


def _joined(*parts: pd.Series) -> pd.Series:
    """Parts joined by ``|``; ``None`` where any part is missing."""
    frame = pd.concat(parts, axis=1)
    result = frame.iloc[:, 0].astype(object)
    for i in range(1, frame.shape[1]):
        result = result + "|" + frame.iloc[:, i].astype(object)
    return result.where(frame.notna().all(axis=1), None)


def frame_keys(norm: pd.DataFrame) -> dict[str, pd.Series]:
    """Blocking keys of every normalised record, by kind (``None`` where a record has none)."""
    local = norm["email_local"].where(norm["email_local"].str.len() >= _MIN_LOCAL, None)
    return {
        "phone": norm["phone"],
        "email": norm["email"],
        "email_local": local,
        "name_city": _joined(norm["name_key"], norm["city"]),
        "name_company": _joined(norm["name_key"], norm["company"]),
        "name_prefix_city": _joined(_prefixes(norm["name_key"]), norm["city"]),
        "company_initials": _joined(norm["company"], _initials(norm["name_key"])),
        "address": _joined(norm["address"], norm["city"].fillna("")),
    }


def blocking_keys(record: Mapping[str, object], *, region: str = "CN") -> list[str]:
    """The blocking keys of one record (``{"name": ..., "phone": ...}``) as strings such as
    ``"phone:+8613800138000"``. Two records are compared when they share a key, so a
    database can store these in an indexed table and look a new record's keys up."""
    norm = normalize_frame(pd.DataFrame([dict(record)]), region=region)
    keys = frame_keys(norm)
    return [f"{kind}:{keys[kind].iloc[0]}" for kind in KEY_KINDS if keys[kind].iloc[0] is not None]


def _sort_rank(norm: pd.DataFrame) -> np.ndarray:
    """Rank of each record in name (then email) order, used inside oversized blocks."""
    order = (norm["name_key"].fillna("") + "\x00" + norm["email"].fillna("")).to_numpy()
    codes, _ = pd.factorize(order, sort=True)
    return codes.astype(np.int64)


def candidate_pairs(
    norm: pd.DataFrame, *, block_cap: int = 40, block_window: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """Candidate pairs ``(left, right)`` of row positions of ``norm`` (``left < right``,
    each pair once) for records sharing at least one blocking key."""
    n = len(norm)
    if n < 2:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    rows_parts, key_parts = [], []
    offset = 0
    for keys in frame_keys(norm).values():
        codes, uniques = pd.factorize(keys.to_numpy(dtype=object), use_na_sentinel=True)
        present = codes >= 0
        rows_parts.append(np.flatnonzero(present))
        key_parts.append(codes[present].astype(np.int64) + offset)
        offset += len(uniques)
    rows = np.concatenate(rows_parts)
    keys_all = np.concatenate(key_parts)
    rank = _sort_rank(norm)
    order = np.lexsort((rank[rows], keys_all))
    rows, keys_all = rows[order], keys_all[order]

    starts = np.flatnonzero(np.r_[True, keys_all[1:] != keys_all[:-1]])
    sizes = np.diff(np.r_[starts, len(keys_all)])
    size_at = np.repeat(sizes, sizes)
    pos_in_block = np.arange(len(keys_all)) - np.repeat(starts, sizes)
    remaining = size_at - 1 - pos_in_block
    limit = np.where(size_at <= block_cap, remaining, np.minimum(remaining, block_window))

    positions = np.flatnonzero(limit > 0)
    lefts, rights = [], []
    step = 1
    while len(positions):
        lefts.append(rows[positions])
        rights.append(rows[positions + step])
        step += 1
        positions = positions[limit[positions] >= step]
    if not lefts:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    left = np.concatenate(lefts)
    right = np.concatenate(rights)
    lo, hi = np.minimum(left, right), np.maximum(left, right)
    keep = lo != hi
    code = np.unique(lo[keep] * n + hi[keep])
    return code // n, code % n
