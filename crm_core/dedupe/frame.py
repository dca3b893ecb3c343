"""Normalisation of whole DataFrames for bulk de-duplication.

``normalize_frame`` gives, row by row, what the scalar normalisers of
``crm_core.dedupe.normalize`` give, but fast: text is cleaned in Arrow, emails and phones
are normalised column-wise in Arrow, and every other distinct value goes through its
Python normaliser once, so a million records with repeating names, companies and cities
stay cheap. ``normalize_columns`` also returns each column's integer codes.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crm_core.dedupe.normalize import (
    _EMAIL,
    _GMAIL,
    _PHONE_PUNCT,
    _PHONE_RULES,
    _TRUNK_AFTER_86,
    NORMALIZED_COLUMNS,
    _address_rows,
    _name_rows,
    _normalize_city,
    _normalize_company,
)
from crm_core.normalize import try_normalize_phone


def _arrow_text(values: pd.Series) -> pa.Array:
    """The text of a column NFKC-normalised and trimmed (blank -> null), as an Arrow array.
    Runs of spaces inside are left for the per-value normalisers (see ``_apply``): with
    ``clean_text``'s collapsing, that is what the scalar normalisers start from."""
    try:
        arr = pa.array(values, from_pandas=True)
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        if arr.type != pa.string():
            arr = arr.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        arr = pa.array(
            [None if v is None or v != v else str(v) for v in values.to_numpy(dtype=object)],
            pa.string(),
        )
    arr = pc.utf8_normalize(arr, "NFKC")
    arr = pc.utf8_trim_whitespace(arr)
    return pc.if_else(pc.equal(arr, ""), None, arr)


def _object(arr: pa.Array) -> np.ndarray:
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=object)


@dataclass
class NormalizedColumn:
    """One normalised column: ``values[i]`` (``None`` when missing) is ``uniques[codes[i]]``
    and ``codes[i]`` is ``-1`` when missing."""

    values: np.ndarray
    codes: np.ndarray
    uniques: np.ndarray


def _column_from(codes: np.ndarray, mapped: list[str | None]) -> NormalizedColumn:
    """A column from per-distinct codes and the normalised value of each distinct value
    (several distinct inputs may give one normalised value)."""
    merged, uniques = pd.factorize(np.array(mapped, dtype=object), use_na_sentinel=True)
    merged = np.r_[merged, -1]
    out = merged[codes].astype(np.int32)
    uniques = np.asarray(uniques, dtype=object)
    values = np.r_[uniques, np.array([None], dtype=object)][out]
    return NormalizedColumn(values=values, codes=out, uniques=uniques)


def _emails(arr: pa.Array) -> tuple[pa.Array, pa.Array, pa.Array]:
    """``normalize_email`` of a cleaned column (see ``_arrow_text``), in Arrow, with the
    local part and the domain of each address."""
    arr = pc.replace_substring_regex(pc.utf8_lower(arr), r"\s+", "")
    parts = pc.extract_regex(arr, _EMAIL.replace("([", "(?P<l>[", 1).replace("@([", "@(?P<d>["))
    local, domain = parts.field("l"), parts.field("d")
    gmail = pc.is_in(domain, pa.array(sorted(_GMAIL)))
    local = pc.if_else(gmail, pc.replace_substring(local, ".", ""), local)
    domain = pc.if_else(gmail, "gmail.com", domain)
    valid = pc.and_(pc.is_valid(parts), pc.greater(pc.utf8_length(local), 0))
    email = pc.if_else(valid, pc.binary_join_element_wise(local, domain, "@"), None)
    return email, pc.if_else(valid, local, None), pc.if_else(valid, domain, None)


def _phones(arr: pa.Array, region: str) -> pa.Array:
    """``normalize_phone`` of a cleaned column (see ``_arrow_text``): the direct forms in
    Arrow, the rest one by one."""
    compact = pc.replace_substring_regex(pc.replace_substring(arr, "(0)", ""), _PHONE_PUNCT, "")
    compact = pc.replace_substring_regex(compact, _TRUNK_AFTER_86, "+86")
    out = pa.nulls(len(arr), pa.string())
    resolved = pc.is_null(arr)
    for pattern, prefix, cn_only in _PHONE_RULES:
        if cn_only and region != "CN":
            continue
        found = pc.extract_regex(compact, pattern)
        hit = pc.and_(pc.is_valid(found), pc.invert(resolved))
        number = pc.binary_join_element_wise(prefix, found.field("n"), "")
        out = pc.if_else(hit, number, out)
        resolved = pc.or_(resolved, hit)
    rest = np.flatnonzero(~np.asarray(resolved.to_numpy(zero_copy_only=False), dtype=bool))
    if not len(rest):
        return out
    result = _object(out)
    texts = _object(arr)[rest]
    result[rest] = _map_unique(texts, lambda t: try_normalize_phone(t, region=region))
    return pa.array(result, pa.string())


def _company_rows(values: list[str]) -> list[tuple[str]]:
    return [(_normalize_company(" ".join(v.split())),) for v in values]


def _city_rows(values: list[str]) -> list[tuple[str]]:
    return [(_normalize_city(" ".join(v.split())),) for v in values]


Normaliser = Callable[[list[str]], list[tuple[str, ...]]]
_NORMALISERS: dict[str, tuple[Normaliser, int]] = {
    "name": (_name_rows, 2),
    "address": (_address_rows, 2),
    "company": (_company_rows, 1),
    "city": (_city_rows, 1),
}
"""Per input column: the function normalising a list of distinct values (after
``_arrow_text``), and how many columns it gives per value (a name gives the name and its
key, an address the address and its building; ``""`` for nothing)."""

PARALLEL_MIN_DISTINCT = 20_000
"""Fewer distinct values than this are normalised in this process (a pool would not pay)."""


def _apply(task: tuple[str, list[str]]) -> list[tuple[str, ...]]:
    return _NORMALISERS[task[0]][0](task[1])


def _distinct(arr: pa.Array) -> tuple[np.ndarray, list[str]]:
    encoded = pc.dictionary_encode(arr)
    codes = np.asarray(pc.fill_null(encoded.indices, -1).to_numpy(), dtype=np.int64)
    return codes, encoded.dictionary.to_pylist()


def _pool(processes: int) -> Any:
    """A pool of forked worker processes, or ``None`` when one process is asked for or the
    platform cannot fork (the workers inherit the loaded tables, so they start at once)."""
    if processes <= 1 or "fork" not in mp.get_all_start_methods():
        return None
    return mp.get_context("fork").Pool(processes)


def _submit(
    pool: Any, distinct: dict[str, tuple[np.ndarray, list[str]]], processes: int
) -> dict[str, Any]:
    """Start normalising the distinct values of each column: in ``pool`` (results later) or,
    without a pool, right now."""
    started: dict[str, Any] = {}
    for name, (_, values) in distinct.items():
        if pool is None:
            started[name] = _apply((name, values))
            continue
        size = max(1, -(-len(values) // (processes * 2)))
        chunks = [(name, values[i : i + size]) for i in range(0, len(values), size)]
        started[name] = pool.map_async(_apply, chunks)
    return started


def _collect(
    started: dict[str, Any], distinct: dict[str, tuple[np.ndarray, list[str]]]
) -> dict[str, list[NormalizedColumn]]:
    out = {}
    for name, job in started.items():
        rows = job if isinstance(job, list) else [row for chunk in job.get() for row in chunk]
        codes = distinct[name][0]
        width = _NORMALISERS[name][1]
        out[name] = [_column_from(codes, [r[k] or None for r in rows]) for k in range(width)]
    return out


def _arrow_column(arr: pa.Array) -> NormalizedColumn:
    encoded = pc.dictionary_encode(arr)
    codes = np.asarray(pc.fill_null(encoded.indices, -1).to_numpy(), dtype=np.int32)
    uniques = np.asarray(encoded.dictionary.to_numpy(zero_copy_only=False), dtype=object)
    values = np.r_[uniques, np.array([None], dtype=object)][codes]
    return NormalizedColumn(values=values, codes=codes, uniques=uniques)


def _map_unique(values: pd.Series | np.ndarray, func: Callable[[object], str | None]) -> np.ndarray:
    """``func`` applied to each distinct value once; an object array aligned with ``values``."""
    codes, uniques = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=True)
    mapped = np.array([func(v) for v in uniques] + [None], dtype=object)
    return mapped[codes]  # code -1 (missing) picks the trailing None


def normalize_columns(
    df: pd.DataFrame, *, region: str = "CN", processes: int = 1
) -> dict[str, NormalizedColumn]:
    """The normalised columns of ``df`` (see ``normalize_frame``) with their codes. With
    ``processes`` > 1 and many distinct values, names, addresses and companies are
    normalised in that many forked worker processes while emails and phones are done here."""
    n = len(df)

    def column(name: str) -> pa.Array:
        if name in df.columns and n:
            return _arrow_text(df[name].reset_index(drop=True))
        return pa.nulls(n, pa.string())

    distinct = {name: _distinct(column(name)) for name in _NORMALISERS}
    many = sum(len(values) for _, values in distinct.values()) >= PARALLEL_MIN_DISTINCT
    pool = _pool(processes) if many else None
    try:
        started = _submit(pool, distinct, processes)
        email, local, domain = _emails(column("email"))
        phone = _arrow_column(_phones(column("phone"), region.upper()))
        emails = [_arrow_column(email), _arrow_column(local), _arrow_column(domain)]
        done = _collect(started, distinct)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    (name, key), (address, core) = done["name"], done["address"]
    return {
        "name": name,
        "name_key": key,
        "company": done["company"][0],
        "email": emails[0],
        "email_local": emails[1],
        "email_domain": emails[2],
        "phone": phone,
        "city": done["city"][0],
        "address": address,
        "address_core": core,
    }


def normalize_frame(df: pd.DataFrame, *, region: str = "CN") -> pd.DataFrame:
    """The de-duplication fields of ``df`` normalised, one row per input row (same order,
    a fresh ``RangeIndex``), with the columns of ``NORMALIZED_COLUMNS``; each value is what
    the scalar normaliser of its field gives. Missing input columns give all-``None``
    columns; other input columns are ignored."""
    columns = normalize_columns(df, region=region)
    return pd.DataFrame({c: columns[c].values for c in NORMALIZED_COLUMNS}, dtype=object)
