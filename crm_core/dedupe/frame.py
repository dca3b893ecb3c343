"""Normalisation of whole DataFrames for bulk de-duplication.

``normalize_frame`` gives, row by row, what the scalar normalisers of
``crm_core.dedupe.normalize`` give, but fast: text is cleaned in Arrow, each column's
distinct values are normalised once, and the common shapes (``John Smith``, names and
companies in simplified Chinese characters, Latin and Chinese addresses, companies in ASCII,
emails, phones) are normalised column-wise in Arrow; only the values of other shapes go
through the scalar Python normalisers. ``tests/test_dedupe_normalize.py`` checks the two
against each other. ``normalize_columns`` also returns each column's integer codes.
"""

from __future__ import annotations

import multiprocessing as mp
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crm_core.dedupe.chinese import (
    CJK_RE2,
    COMPOUND_SURNAMES,
    SURNAME_READINGS,
    pinyin_string,
    traditional_characters,
)
from crm_core.dedupe.normalize import (
    _BRACKETS,
    _CN_NAME_ENDINGS,
    _CN_PLACE_LENGTHS,
    _CN_SUFFIXES,
    _CN_TITLES_LONGEST_FIRST,
    _DOTTED,
    _EMAIL,
    _GMAIL,
    _LATIN_SUFFIXES,
    _PHONE_PUNCT,
    _PHONE_RULES,
    _TRUNK_AFTER_86,
    _UNIT,
    NORMALIZED_COLUMNS,
    SPACE_RE2,
    _address_rows,
    _name_rows,
    _normalize_city,
    _normalize_company,
)
from crm_core.dedupe.vocabulary import ADDRESS_WORDS, CN_PLACE_PREFIXES, NICKNAMES, TITLES
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


def _column_from(codes: np.ndarray, mapped: np.ndarray) -> NormalizedColumn:
    """A column from per-distinct codes and the normalised value of each distinct value
    (several distinct inputs may give one normalised value)."""
    merged, uniques = pd.factorize(mapped, use_na_sentinel=True)
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


def _map_distinct(arr: pa.Array, func: Callable[[str], str]) -> pa.Array:
    """``func`` applied once to each distinct value of a string array without nulls."""
    encoded = pc.dictionary_encode(arr)
    mapped = pa.array([func(v) for v in encoded.dictionary.to_pylist()], pa.string())
    return mapped.take(encoded.indices)


def _rows(mask: pa.Array) -> np.ndarray:
    return np.flatnonzero(np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool))


def _joined_in_order(a: pa.Array, b: pa.Array, *, strict: bool) -> pa.Array:
    """``"a b"`` or ``"b a"``, the smaller first (``a`` first on a tie unless ``strict``)."""
    first = pc.less(a, b) if strict else pc.less_equal(a, b)
    return pc.if_else(
        first, pc.binary_join_element_wise(a, b, " "), pc.binary_join_element_wise(b, a, " ")
    )


def _latin_names(values: pa.Array) -> tuple[np.ndarray, pa.Array, pa.Array]:
    """Rows of ``values`` of the form ``John Smith`` (two words of ASCII letters, no title,
    no legal suffix) with their name and key: ``_normalize_name``'s common case, and
    ``_name_key`` of two words (nicknames written out, sorted)."""
    rows = _rows(pc.match_substring_regex(values, "^[A-Za-z]+ [A-Za-z]+$"))
    text = pc.utf8_lower(values.take(rows))
    words = pc.split_pattern(text, " ")
    first, last = pc.list_element(words, 0), pc.list_element(words, 1)
    titles, suffixes = pa.array(sorted(TITLES)), pa.array(sorted(_LATIN_SUFFIXES))
    odd = pc.or_(pc.or_(pc.is_in(first, titles), pc.is_in(last, titles)), pc.is_in(last, suffixes))
    keep = _rows(pc.invert(odd))

    def full(word: str) -> str:
        return NICKNAMES.get(word, word)

    key = _joined_in_order(_map_distinct(first, full), _map_distinct(last, full), strict=False)
    return rows[keep], text.take(keep), key.take(keep)


_ENDINGS_RE2 = "(?:" + "|".join(re.escape(e) for e in _CN_NAME_ENDINGS) + ")$"


def _chinese_names(values: pa.Array) -> tuple[np.ndarray, pa.Array, pa.Array]:
    """Rows of ``values`` made of simplified Chinese characters only, with their name and
    key: ``_normalize_name`` (a short name as it is; otherwise legal forms, a leading place
    and a title removed) and ``_name_key`` of it (pinyin of surname and given name)."""
    traditional = traditional_characters()
    if traditional is None:  # every name goes through OpenCC's own conversion
        return np.empty(0, np.int64), pa.array([], pa.string()), pa.array([], pa.string())
    only = pc.match_substring_regex(values, f"^{CJK_RE2}+$")
    if traditional:
        only = pc.and_(
            only, pc.invert(pc.match_substring_regex(values, _character_class(traditional)))
        )
    rows = _rows(only)
    text = values.take(rows)
    # not a plain short name: legal forms, then a place (5 characters or more), then a title
    long = _rows(
        pc.or_(pc.greater(pc.utf8_length(text), 4), pc.match_substring_regex(text, _ENDINGS_RE2))
    )
    if len(long):
        name = _strip_chinese_suffixes(text.take(long))
        name = pc.if_else(
            pc.greater_equal(pc.utf8_length(name), 5), _without_place_arrow(name), name
        )
        chosen = pa.repeat(pa.scalar(False), len(name))
        for title in _CN_TITLES_LONGEST_FIRST:
            size = len(title)
            hit = pc.and_(pc.invert(chosen), pc.ends_with(name, title))
            hit = pc.and_(hit, pc.greater(pc.utf8_length(name), size))
            name = pc.if_else(hit, pc.utf8_slice_codeunits(name, 0, -size), name)
            chosen = pc.or_(chosen, hit)
        names = np.asarray(text.to_numpy(zero_copy_only=False), dtype=object)
        names[long] = name.to_numpy(zero_copy_only=False)
        text = pa.array(names, pa.string())
    # _name_key: chinese_name_parts (a compound surname such as 欧阳 counts as one), ordered
    compound = pc.and_(
        pc.greater(pc.utf8_length(text), 2),
        pc.is_in(pc.utf8_slice_codeunits(text, 0, 2), _COMPOUND),
    )
    head = pc.if_else(
        compound, pc.utf8_slice_codeunits(text, 0, 2), pc.utf8_slice_codeunits(text, 0, 1)
    )
    rest = pc.if_else(
        compound,
        pc.utf8_slice_codeunits(text, 2, 1 << 30),
        pc.utf8_slice_codeunits(text, 1, 1 << 30),
    )
    surname = _map_distinct(head, lambda c: SURNAME_READINGS.get(c) or pinyin_string(c))
    given = _map_distinct(rest, pinyin_string)
    either = pc.if_else(pc.equal(surname, ""), given, surname)
    both = pc.and_(pc.not_equal(surname, ""), pc.not_equal(given, ""))
    key = pc.if_else(both, _joined_in_order(given, surname, strict=True), either)
    return rows, text, key


_COMPOUND = pa.array(sorted(COMPOUND_SURNAMES))


def _name_columns(values: pa.Array) -> list[np.ndarray]:
    """Normalised names and their keys (``_name_rows``): the common shapes in Arrow, the
    rest one by one."""
    names = np.full(len(values), None, dtype=object)
    keys = np.full(len(values), None, dtype=object)
    done = np.zeros(len(values), bool)
    for rows, name, key in (_latin_names(values), _chinese_names(values)):
        names[rows] = name.to_numpy(zero_copy_only=False)
        keys[rows] = key.to_numpy(zero_copy_only=False)
        done[rows] = True
    rest = np.flatnonzero(~done)
    if len(rest):
        found = _name_rows(values.take(rest).to_pylist())
        names[rest] = [r[0] for r in found]
        keys[rest] = [r[1] for r in found]
    return [names, keys]


_SPACES_RE2 = f"[{SPACE_RE2}]+"


def _latin_addresses(values: pa.Array) -> tuple[np.ndarray, pa.Array, pa.Array]:
    """Rows of ASCII addresses with their normalised address and building (what
    ``_normalize_address`` and ``_address_core`` give): words of letters and digits,
    abbreviations written out, a flat, suite or room dropped from the building."""
    rows = _rows(pc.string_is_ascii(values))
    words = pc.replace_substring_regex(pc.ascii_lower(values.take(rows)), "[^a-z0-9]+", " ")
    words = pc.split_pattern(pc.utf8_trim(words, " "), " ")
    written = _map_distinct(pc.list_flatten(words), lambda w: ADDRESS_WORDS.get(w, w))
    joined = pc.binary_join(pa.ListArray.from_arrays(words.offsets, written), " ")
    address = pc.utf8_trim(pc.replace_substring_regex(joined, "  +", " "), " ")  # "no" -> ""
    core = pc.replace_substring_regex(address, _UNIT.pattern, " ")
    core = pc.utf8_trim(pc.replace_substring_regex(core, "  +", " "), " ")
    return rows, address, core


def _chinese_addresses(values: pa.Array) -> tuple[np.ndarray, pa.Array, pa.Array]:
    """Rows of addresses in Chinese characters (and ASCII) with their normalised address
    and building: spaces and ``#`` removed, the building up to its number (``号``). Those
    with traditional characters or a province, city or district near the front are left
    to ``_normalize_address``."""
    traditional = traditional_characters()
    if traditional is None:
        return np.empty(0, np.int64), pa.array([], pa.string()), pa.array([], pa.string())
    only = pc.match_substring_regex(values, f"^(?:[\\x00-\\x7f]|{CJK_RE2})*$")
    rows = _rows(pc.and_(only, pc.match_substring_regex(values, CJK_RE2)))
    text = pc.replace_substring_regex(pc.ascii_lower(values.take(rows)), _SPACES_RE2, "")
    text = pc.replace_substring(text, "#", "")
    odd = pc.match_substring_regex(text, "(?s)^.{0,11}[省区市县镇]")
    if traditional:
        odd = pc.or_(odd, pc.match_substring_regex(text, _character_class(traditional)))
    keep = _rows(pc.and_(pc.invert(odd), pc.not_equal(text, "")))
    text = text.take(keep)
    core = pc.replace_substring_regex(text, "(?s)^(.*?号).*$", r"\1")
    return rows[keep], text, core


@lru_cache(maxsize=4)
def _character_class(chars: frozenset[str]) -> str:
    """An RE2 class matching any of ``chars``, as ranges of code points."""
    codes = sorted(ord(c) for c in chars)
    parts, start = [], codes[0]
    for prev, code in zip(codes, [*codes[1:], -1], strict=True):
        if code != prev + 1:
            parts.append(f"\\x{{{start:x}}}" + (f"-\\x{{{prev:x}}}" if prev > start else ""))
            start = code
    return "[" + "".join(parts) + "]"


def _address_columns(values: pa.Array) -> list[np.ndarray]:
    """Normalised addresses and their buildings (``_address_rows``): Latin and Chinese
    addresses in Arrow, the rest one by one."""
    addresses = np.full(len(values), None, dtype=object)
    cores = np.full(len(values), None, dtype=object)
    done = np.zeros(len(values), bool)
    for rows, address, core in (_latin_addresses(values), _chinese_addresses(values)):
        addresses[rows] = address.to_numpy(zero_copy_only=False)
        cores[rows] = core.to_numpy(zero_copy_only=False)
        done[rows] = True
    rest = np.flatnonzero(~done)
    if len(rest):
        found = _address_rows(values.take(rest).to_pylist())
        addresses[rest] = [r[0] for r in found]
        cores[rest] = [r[1] for r in found]
    return [addresses, cores]


def _strip_latin_suffixes(text: pa.Array) -> pa.Array:
    """``_strip_legal`` of words parted by single spaces: a last word that is a legal form
    removed, again and again, as long as a word is left."""
    suffixes = pa.array(sorted(_LATIN_SUFFIXES))
    while len(text):
        last = pc.replace_substring_regex(text, "^.* ", "")
        hit = pc.and_(pc.match_substring(text, " "), pc.is_in(last, suffixes))
        if not pc.any(hit).as_py():
            break
        text = pc.if_else(hit, pc.replace_substring_regex(text, " [^ ]*$", ""), text)
    return text


def _strip_chinese_suffixes(text: pa.Array) -> pa.Array:
    """``_strip_legal`` of Chinese characters: the first listed legal form the text ends
    with removed, again and again, as long as something is left."""
    while len(text):
        result, chosen = text, pa.repeat(pa.scalar(False), len(text))
        for suffix in _CN_SUFFIXES:
            ends = pc.and_(pc.invert(chosen), pc.ends_with(text, suffix))
            stripped = pc.utf8_slice_codeunits(text, 0, -len(suffix))
            result = pc.if_else(pc.and_(ends, pc.not_equal(stripped, "")), stripped, result)
            chosen = pc.or_(chosen, ends)
        if pc.all(pc.equal(result, text)).as_py():
            return text
        text = result
    return text


_CN_COMPANY = "^[\\x{3400}-\\x{4dbf}\\x{4e00}-\\x{9fff}]+$"
"""Chinese characters only (every one of them a word character, as ``_words`` needs)."""
_DOTTED_RE2 = _DOTTED.pattern.replace("(?=", "(?:")
"""Where ``_DOTTED`` matches (RE2 has no look-ahead: the next character is consumed)."""


def _without_place_arrow(text: pa.Array) -> pa.Array:
    """``_without_place``: a leading province or city and its 自治区, 省 or 市 removed, if
    anything is left."""
    places = pa.array(sorted(CN_PLACE_PREFIXES))
    result, chosen = text, pa.repeat(pa.scalar(False), len(text))
    for size in _CN_PLACE_LENGTHS:
        hit = pc.and_(pc.invert(chosen), pc.is_in(pc.utf8_slice_codeunits(text, 0, size), places))
        rest = pc.utf8_slice_codeunits(text, size, 1 << 30)
        rest = pc.replace_substring_regex(rest, "^(?:自治区|省|市)", "")
        result = pc.if_else(pc.and_(hit, pc.not_equal(rest, "")), rest, result)
        chosen = pc.or_(chosen, hit)
    return result


def _company_columns(values: pa.Array) -> list[np.ndarray]:
    """Normalised companies (``_normalize_company``): names in ASCII or in simplified
    Chinese characters only in Arrow, the rest one by one."""
    out = np.full(len(values), None, dtype=object)
    done = np.zeros(len(values), bool)
    # ASCII: lower case, brackets and their content dropped, & written "and", words of
    # letters and digits, legal forms stripped
    collapsed = pc.utf8_trim(pc.replace_substring_regex(values, _SPACES_RE2, " "), " ")
    clean = pc.ascii_lower(collapsed)  # clean_text's spacing, lower case
    clean = pc.replace_substring_regex(clean, _BRACKETS.pattern, " ")
    dotted = pc.match_substring_regex(clean, _DOTTED_RE2)  # "l.l.c" and the like: one by one
    latin = _rows(pc.and_(pc.string_is_ascii(values), pc.invert(dotted)))
    text = clean.take(latin)
    text = pc.replace_substring(text, "&", " and ")
    text = pc.utf8_trim(pc.replace_substring_regex(text, "[^a-z0-9]+", " "), " ")
    out[latin] = _strip_latin_suffixes(text).to_numpy(zero_copy_only=False)
    done[latin] = True
    traditional = traditional_characters()
    if traditional is not None:
        chinese = pc.match_substring_regex(values, _CN_COMPANY)
        if traditional:
            chinese = pc.and_(
                chinese, pc.invert(pc.match_substring_regex(values, _character_class(traditional)))
            )
        rows = _rows(chinese)
        text = _without_place_arrow(_strip_chinese_suffixes(values.take(rows)))
        out[rows] = text.to_numpy(zero_copy_only=False)
        done[rows] = True
    rest = np.flatnonzero(~done)
    if len(rest):
        out[rest] = [r[0] for r in _company_rows(values.take(rest).to_pylist())]
    return [out]


def _python_columns(
    func: Callable[[list[str]], list[tuple[str, ...]]], width: int
) -> Callable[[pa.Array], list[np.ndarray]]:
    def columns(values: pa.Array) -> list[np.ndarray]:
        rows = func(values.to_pylist())
        return [np.array([r[k] for r in rows] + [None], dtype=object)[:-1] for k in range(width)]

    return columns


def _company_rows(values: list[str]) -> list[tuple[str, ...]]:
    return [(_normalize_company(" ".join(v.split())),) for v in values]


def _city_rows(values: list[str]) -> list[tuple[str, ...]]:
    return [(_normalize_city(" ".join(v.split())),) for v in values]


Normaliser = Callable[[pa.Array], list[np.ndarray]]
_NORMALISERS: dict[str, Normaliser] = {
    "name": _name_columns,
    "address": _address_columns,
    "company": _company_columns,
    "city": _python_columns(_city_rows, 1),
}
"""Per input column: the function normalising its distinct values (after ``_arrow_text``,
no nulls) into one or more columns (a name gives the name and its key, an address the
address and its building), ``""`` or ``None`` for nothing."""

PARALLEL_MIN_DISTINCT = 20_000
"""Fewer distinct values than this are normalised in this process (a pool would not pay)."""


def _apply(task: tuple[str, pa.Array]) -> list[np.ndarray]:
    return _NORMALISERS[task[0]](task[1])


def _distinct(arr: pa.Array) -> tuple[np.ndarray, pa.Array]:
    encoded = pc.dictionary_encode(arr)
    codes = np.asarray(pc.fill_null(encoded.indices, -1).to_numpy(), dtype=np.int64)
    return codes, encoded.dictionary


def _pool(processes: int) -> Any:
    """A pool of forked worker processes, or ``None`` when one process is asked for or the
    platform cannot fork (the workers inherit the loaded tables, so they start at once)."""
    if processes <= 1 or "fork" not in mp.get_all_start_methods():
        return None
    return mp.get_context("fork").Pool(processes)


def _submit(
    pool: Any, distinct: dict[str, tuple[np.ndarray, pa.Array]], processes: int
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
    started: dict[str, Any], distinct: dict[str, tuple[np.ndarray, pa.Array]]
) -> dict[str, list[NormalizedColumn]]:
    out: dict[str, list[NormalizedColumn]] = {}
    for name, job in started.items():
        parts = [job] if isinstance(job, list) else job.get()
        out[name] = []
        for k in range(len(parts[0])):
            mapped = np.concatenate([np.empty(0, object), *(part[k] for part in parts)])
            out[name].append(_column_from(distinct[name][0], _blank_to_none(mapped)))
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


def _emails_column(arr: pa.Array) -> list[NormalizedColumn]:
    return [_arrow_column(part) for part in _emails(arr)]


def _phone_column(arr: pa.Array, region: str) -> list[NormalizedColumn]:
    return [_arrow_column(_phones(arr, region))]


def _text_column(name: str, arr: pa.Array) -> list[NormalizedColumn]:
    codes, values = _distinct(arr)
    return [_column_from(codes, _blank_to_none(column)) for column in _apply((name, values))]


def _blank_to_none(column: np.ndarray) -> np.ndarray:
    column = np.asarray(column, dtype=object)
    column[column == ""] = None
    return column


def normalize_columns(
    df: pd.DataFrame, *, region: str = "CN", processes: int = 1, threads: int = 1
) -> dict[str, NormalizedColumn]:
    """The normalised columns of ``df`` (see ``normalize_frame``) with their codes.

    With ``threads`` > 1 the columns are normalised side by side in that many threads (most
    of the work is Arrow's, which runs outside the interpreter lock). With ``processes`` > 1
    and many distinct values, names, addresses and companies are instead normalised in that
    many forked worker processes while emails and phones are done here."""
    n = len(df)
    traditional_characters()  # load the tables once, before any thread needs them

    def column(name: str) -> pa.Array:
        if name in df.columns and n:
            return _arrow_text(df[name].reset_index(drop=True))
        return pa.nulls(n, pa.string())

    if processes > 1:
        done = _normalize_in_processes(column, region, processes)
    else:
        tasks: dict[str, Callable[[], list[NormalizedColumn]]] = {
            name: partial(lambda c: _text_column(c, column(c)), name) for name in _NORMALISERS
        }
        tasks["email"] = lambda: _emails_column(column("email"))
        tasks["phone"] = lambda: _phone_column(column("phone"), region.upper())
        if threads > 1 and n >= PARALLEL_MIN_ROWS:
            with ThreadPoolExecutor(threads) as pool:
                futures = {name: pool.submit(task) for name, task in tasks.items()}
                done = {name: future.result() for name, future in futures.items()}
        else:
            done = {name: task() for name, task in tasks.items()}
    (name, key), (address, core) = done["name"], done["address"]
    return {
        "name": name,
        "name_key": key,
        "company": done["company"][0],
        "email": done["email"][0],
        "email_local": done["email"][1],
        "email_domain": done["email"][2],
        "phone": done["phone"][0],
        "city": done["city"][0],
        "address": address,
        "address_core": core,
    }


PARALLEL_MIN_ROWS = 20_000
"""Fewer rows than this are normalised in one thread (threads would not pay)."""


def _normalize_in_processes(
    column: Callable[[str], pa.Array], region: str, processes: int
) -> dict[str, list[NormalizedColumn]]:
    distinct = {name: _distinct(column(name)) for name in _NORMALISERS}
    many = sum(len(values) for _, values in distinct.values()) >= PARALLEL_MIN_DISTINCT
    pool = _pool(processes) if many else None
    try:
        started = _submit(pool, distinct, processes)
        done = {"email": _emails_column(column("email"))}
        done["phone"] = _phone_column(column("phone"), region.upper())
        done.update(_collect(started, distinct))
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    return done


def normalize_frame(df: pd.DataFrame, *, region: str = "CN") -> pd.DataFrame:
    """The de-duplication fields of ``df`` normalised, one row per input row (same order,
    a fresh ``RangeIndex``), with the columns of ``NORMALIZED_COLUMNS``; each value is what
    the scalar normaliser of its field gives. Missing input columns give all-``None``
    columns; other input columns are ignored."""
    columns = normalize_columns(df, region=region)
    return pd.DataFrame({c: columns[c].values for c in NORMALIZED_COLUMNS}, dtype=object)
