"""Field comparisons of candidate pairs, vectorised with rapidfuzz.

A comparison turns a pair of normalised values into a *level*: ``-1`` when either side is
missing (no evidence), ``0`` when they differ, and higher levels for closer agreement up to
exact equality. Exact equality is decided on integer codes; only pairs that are neither
equal nor missing go through rapidfuzz's ``process.cpdist``, which scores aligned arrays of
pairs in C++ across all cores. There is no Python loop over pairs.

``field_levels`` compares the six fields one by one (what a steward is shown). The match
model reads ``compare``, which keeps name, email and phone and folds company, address and
city into one *site* comparison: colleagues share their company's address and city, so
counting those three as independent evidence would call every two colleagues duplicates.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from crm_core.dedupe.chinese import CJK, CJK_RE2
from crm_core.dedupe.frame import NormalizedColumn, normalize_columns
from crm_core.dedupe.normalize import NORMALIZED_COLUMNS, SPACE_RE2

MISSING = -1


@dataclass(frozen=True)
class Comparison:
    """One comparison of the match model: ``levels[i]`` describes level ``i``."""

    field: str
    levels: tuple[str, ...]
    tf_levels: tuple[int, ...] = ()
    """Levels meaning "same value"; their weight is adjusted for how common the value is."""


COMPARISONS: tuple[Comparison, ...] = (
    Comparison(
        "name",
        ("different", "similar", "very similar", "same name in another form", "same name"),
        tf_levels=(3, 4),
    ),
    Comparison("email", ("different", "one typo", "same"), tf_levels=(2,)),
    Comparison("phone", ("different", "one digit off", "same"), tf_levels=(2,)),
    Comparison(
        "site",
        (
            "nothing in common",
            "same city",
            "same company",
            "same address",
            "same company and address",
        ),
    ),
)
"""The comparisons of the match model, in the column order of a comparison matrix."""

FIELD_NAMES: tuple[str, ...] = tuple(c.field for c in COMPARISONS)

FIELD_LEVELS: dict[str, tuple[str, ...]] = {
    "name": COMPARISONS[0].levels,
    "company": ("different", "similar", "very similar", "same"),
    "email": COMPARISONS[1].levels,
    "phone": COMPARISONS[2].levels,
    "city": ("different", "same"),
    "address": ("different", "similar", "same building", "same"),
}
"""Levels of the per-field comparisons of ``field_levels``."""

_TF_COLUMN = {"name": "name_key"}
"""Column whose value frequency adjusts a field's exact level (default: the field itself)."""


@dataclass
class Prepared:
    """Normalised records ready for comparison: values and integer codes per column.

    ``codes[col][i]`` is ``-1`` when record ``i`` has no value, and two records share a code
    exactly when their normalised values are equal (``uniques[col][code]`` is the value).
    ``freq[col][i]`` is the share of records
    holding record ``i``'s value; ``chinese_name[i]`` tells whether the name is in Chinese
    characters, ``name_tokens`` counts the words of its name key and ``name_key_reversed``
    holds that key's words in reverse order; ``name_initialled`` codes the name with all but
    its last word cut to initials (``nicholas vargas`` -> ``n vargas``) and
    ``name_has_initial`` tells whether the name was written with an initial;
    ``name_digits`` codes the digits of the name (``客户12`` and ``Customer 12`` share one
    code; a name without digits has its own); ``name_chars`` codes the Chinese characters of
    a name in Chinese characters (``-1`` for others) and ``name_plain`` tells whether such a
    name is nothing but its characters (``王伟``, not ``王伟 David``).
    """

    size: int
    values: dict[str, np.ndarray] = field(default_factory=dict)
    codes: dict[str, np.ndarray] = field(default_factory=dict)
    uniques: dict[str, np.ndarray] = field(default_factory=dict)
    freq: dict[str, np.ndarray] = field(default_factory=dict)
    chinese_name: np.ndarray = field(default_factory=lambda: np.empty(0, bool))
    name_tokens: np.ndarray = field(default_factory=lambda: np.empty(0, np.int32))
    name_initialled: np.ndarray = field(default_factory=lambda: np.empty(0, np.int32))
    name_has_initial: np.ndarray = field(default_factory=lambda: np.empty(0, bool))
    name_key_reversed: np.ndarray = field(default_factory=lambda: np.empty(0, object))
    name_digits: np.ndarray = field(default_factory=lambda: np.empty(0, np.int32))
    name_chars: np.ndarray = field(default_factory=lambda: np.empty(0, np.int32))
    name_plain: np.ndarray = field(default_factory=lambda: np.empty(0, bool))

    @property
    def n(self) -> int:
        """Number of records."""
        return self.size

    @property
    def norm(self) -> pd.DataFrame:
        """The normalised records as a frame (see ``normalize_frame``)."""
        return pd.DataFrame({c: self.values[c] for c in NORMALIZED_COLUMNS}, dtype=object)


def prepare(norm: pd.DataFrame) -> Prepared:
    """Codes and value frequencies of a normalised frame (see ``normalize_frame``)."""
    columns = {}
    for col in NORMALIZED_COLUMNS:
        values = norm[col].to_numpy(dtype=object)
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        columns[col] = NormalizedColumn(
            values=values, codes=codes.astype(np.int32), uniques=np.asarray(uniques, dtype=object)
        )
    return prepare_columns(columns)


def prepare_values(values: dict[str, list[str | None]]) -> Prepared:
    """Records ready for comparison from lists of normalised values per column (a few
    records: no frame is built)."""
    columns = {}
    for col in NORMALIZED_COLUMNS:
        array = np.array(values[col] + [None], dtype=object)[:-1]
        codes, uniques = pd.factorize(array, use_na_sentinel=True)
        columns[col] = NormalizedColumn(
            values=array, codes=codes.astype(np.int32), uniques=np.asarray(uniques, dtype=object)
        )
    return prepare_columns(columns)


def prepare_frame(
    df: pd.DataFrame, *, region: str = "CN", processes: int = 1, threads: int = 1
) -> Prepared:
    """``df`` normalised (see ``normalize_frame``; ``processes`` and ``threads`` as for
    ``normalize_columns``) and prepared for comparison."""
    columns = normalize_columns(df, region=region, processes=processes, threads=threads)
    return prepare_columns(columns)


def prepare_columns(columns: dict[str, NormalizedColumn]) -> Prepared:
    """Records ready for comparison from their normalised columns."""
    size = len(columns[NORMALIZED_COLUMNS[0]].values)
    prepared = Prepared(size=size)
    n = max(size, 1)
    for col in NORMALIZED_COLUMNS:
        column = columns[col]
        codes, uniques = column.codes, column.uniques
        counts = np.r_[np.bincount(codes[codes >= 0], minlength=len(uniques)), 0]
        prepared.values[col] = column.values
        prepared.codes[col] = codes
        prepared.uniques[col] = uniques
        prepared.freq[col] = (counts[codes] / n).astype(np.float32)  # code -1 picks the 0
    _name_features(prepared)
    return prepared


_WORD = f"[^{SPACE_RE2}]"
_SPACED = f"^{_WORD}+(?: {_WORD}+)*$"
"""Words parted by single spaces: what ``str.split`` and ``" ".join`` leave."""
_ASCII_OR_CJK = f"^(?:[\\x00-\\x7f]*|{CJK_RE2}+)$"


def _bools(arr: pa.Array) -> np.ndarray:
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=bool)


def _objects(arr: pa.Array) -> np.ndarray:
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=object)


def _name_features(prepared: Prepared) -> None:
    """The name columns of ``Prepared`` from the distinct names and name keys, in Arrow
    (values not made of words parted by single spaces go through ``_initialled``)."""
    codes, uniques = prepared.codes["name"], prepared.uniques["name"]
    names = pa.array(uniques, pa.string())
    chinese_u = _bools(pc.match_substring_regex(names, "^" + CJK_RE2))
    chinese = np.r_[chinese_u, False]
    prepared.chinese_name = chinese[codes]
    # "nicholas vargas" -> "n vargas" (every word but the last cut to its first letter)
    spaced = _bools(pc.match_substring_regex(names, _SPACED))
    several = _bools(pc.match_substring(names, " ")) & spaced & ~chinese_u
    forms = _objects(pc.replace_substring_regex(names, f"({_WORD}){_WORD}* ", r"\1 "))
    has_initial = _bools(pc.match_substring_regex(names, f"(?:^| ){_WORD} ")) & several
    forms[~several] = None
    for i in np.flatnonzero(~spaced & ~chinese_u):  # odd spacing: the scalar way
        form = _initialled(uniques[i])
        forms[i], has_initial[i] = (form[0], form[1]) if form else (None, False)
    initialled, _ = pd.factorize(np.r_[forms, np.array([None], dtype=object)])
    prepared.name_initialled = initialled[codes].astype(np.int32)
    prepared.name_has_initial = np.r_[has_initial, False][codes]
    # digits: Arrow knows ASCII digits; a name neither ASCII nor Chinese goes through re's \d
    digits = _objects(pc.replace_substring_regex(names, "[^0-9]+", ""))
    for i in np.flatnonzero(~_bools(pc.match_substring_regex(names, _ASCII_OR_CJK))):
        digits[i] = _DIGITS.sub("", uniques[i])
    digit_codes, _ = pd.factorize(np.r_[digits, np.array([""], dtype=object)])
    prepared.name_digits = digit_codes[codes].astype(np.int32)
    chars = _objects(pc.replace_substring_regex(names, f"[^{CJK_RE2[1:-1]}]+", ""))
    chars[~chinese_u] = None
    char_codes, _ = pd.factorize(np.r_[chars, np.array([None], dtype=object)])
    prepared.name_chars = char_codes[codes].astype(np.int32)
    plain = chinese_u & (chars == uniques)
    prepared.name_plain = np.r_[plain, False][codes]
    codes, uniques = prepared.codes["name_key"], prepared.uniques["name_key"]
    keys = pa.array(uniques, pa.string())
    spaced = _bools(pc.match_substring_regex(keys, _SPACED))
    count = np.asarray(pc.count_substring(keys, " ").to_numpy(), np.int32) + 1
    reverse = _objects(pc.replace_substring_regex(keys, f"^({_WORD}+) ({_WORD}+)$", r"\2 \1"))
    for i in np.flatnonzero(~spaced | (count > 2)):  # three words or odd spacing
        tokens = uniques[i].split()
        count[i], reverse[i] = len(tokens), " ".join(tokens[::-1])
    prepared.name_tokens = np.r_[count, np.int32(0)][codes]
    prepared.name_key_reversed = np.r_[reverse, np.array([None], dtype=object)][codes]


_DIGITS = re.compile(r"\D+")


def _initialled(name: str) -> tuple[str, bool] | None:
    """``("n vargas", False)`` for ``nicholas vargas``; ``("n vargas", True)`` for
    ``n vargas``; ``None`` for a name in Chinese characters or of one word."""
    words = name.split()
    if len(words) < 2 or CJK.match(name):
        return None
    return " ".join([*(w[0] for w in words[:-1]), words[-1]]), any(len(w) == 1 for w in words[:-1])


def tf_column(field_name: str) -> str:
    """The normalised column whose value frequency adjusts ``field_name``'s exact level."""
    return _TF_COLUMN.get(field_name, field_name)


Scorer = Callable[..., float]


def similarity(
    left: np.ndarray,
    right: np.ndarray,
    scorer: Scorer = fuzz.ratio,
    *,
    cutoff: float = 0.0,
    workers: int = -1,
) -> np.ndarray:
    """Similarity 0..1 of aligned arrays of strings, pair by pair (``left[i]`` vs ``right[i]``).
    Similarities below ``cutoff`` come back as 0 (rapidfuzz can then stop early)."""
    if len(left) == 0:
        return np.empty(0, np.float32)
    scores = process.cpdist(
        left, right, scorer=scorer, score_cutoff=cutoff * 100, workers=workers, dtype=np.float32
    )
    return np.asarray(scores, dtype=np.float32) / np.float32(100.0)


def _within_one_edit(left: np.ndarray, right: np.ndarray, *, workers: int) -> np.ndarray:
    """Whether each pair of strings is at most one edit (or one swap of neighbours) apart."""
    if len(left) == 0:
        return np.empty(0, bool)
    distance = process.cpdist(
        left, right, scorer=OSA.distance, score_cutoff=1, workers=workers, dtype=np.int32
    )
    return np.asarray(distance) <= 1


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
    sims = similarity(
        values[left[fuzzy]], values[right[fuzzy]], scorer, cutoff=min(cuts), workers=workers
    )
    graded = np.zeros(len(fuzzy), np.int8)
    for rank, cut in enumerate(sorted(cuts)):
        graded[sims >= cut] = rank + 1
    level[fuzzy] = graded
    level[equal] = len(cuts) + 1
    level[missing] = MISSING
    return level


def _name_levels(prep: Prepared, left: np.ndarray, right: np.ndarray, workers: int) -> np.ndarray:
    equal, missing = _equal_and_missing(prep, "name_key", left, right)
    level = np.zeros(len(left), np.int8)
    fuzzy = np.flatnonzero(~equal & ~missing)
    a, b = left[fuzzy], right[fuzzy]
    names, keys, reverse = prep.values["name"], prep.values["name_key"], prep.name_key_reversed
    sims = np.empty(len(fuzzy), np.float32)
    # Two names in Chinese characters compare by character: 王伟 / 王玮 already met through
    # pinyin, while 田超 / 田浩 are different people however close their pinyin looks.
    cn = prep.chinese_name[a] & prep.chinese_name[b]
    sims[cn] = similarity(names[a[cn]], names[b[cn]], cutoff=0.72, workers=workers)
    # Otherwise the best of: the keys (nicknames resolved), the keys with one side's tokens
    # in reverse order (a typo can change the sorted order), the names' sorted tokens.
    la, lb = a[~cn], b[~cn]
    sims[~cn] = np.maximum.reduce(
        [
            similarity(keys[la], keys[lb], cutoff=0.72, workers=workers),
            similarity(keys[la], reverse[lb], cutoff=0.72, workers=workers),
            similarity(names[la], names[lb], fuzz.token_sort_ratio, cutoff=0.72, workers=workers),
        ]
    )
    # A name of one word that is one of the other's words (王先生 -> "wang" in "wang wei",
    # "Bates" in "Vanessa Bates") fits it: as close as "similar".
    single = (prep.name_tokens[a] == 1) | (prep.name_tokens[b] == 1)
    fits = np.zeros(len(fuzzy), bool)
    fits[single] = (
        similarity(keys[a[single]], keys[b[single]], fuzz.token_set_ratio, cutoff=1.0) >= 1.0
    )
    # "N. Vargas" fits "Nicholas Vargas".
    ia, ib = prep.name_initialled[a], prep.name_initialled[b]
    fits |= (ia == ib) & (ia >= 0) & (prep.name_has_initial[a] | prep.name_has_initial[b])
    # 王伟 and 王伟 David: the same characters, one name saying more.
    chars = prep.name_chars
    fits |= (chars[a] == chars[b]) & (chars[a] >= 0) & (prep.name_plain[a] | prep.name_plain[b])
    level[fuzzy[(sims >= 0.72) | fits]] = 1
    level[fuzzy[sims >= 0.88]] = 2
    # Names told apart by their digits (客户1 / 客户2, "Store 12" / "Store 13") are different
    # names however alike the rest is.
    level[fuzzy[prep.name_digits[a] != prep.name_digits[b]]] = 0
    level[equal] = 3
    same_name, _ = _equal_and_missing(prep, "name", left, right)
    level[same_name] = 4
    level[missing] = MISSING
    return level


def _email_levels(prep: Prepared, left: np.ndarray, right: np.ndarray, workers: int) -> np.ndarray:
    equal, missing = _equal_and_missing(prep, "email", left, right)
    level = np.zeros(len(left), np.int8)
    same_domain, _ = _equal_and_missing(prep, "email_domain", left, right)
    fuzzy = np.flatnonzero(~equal & ~missing & same_domain)
    local = prep.values["email_local"]
    level[fuzzy[_within_one_edit(local[left[fuzzy]], local[right[fuzzy]], workers=workers)]] = 1
    level[equal] = 2
    level[missing] = MISSING
    return level


def _phone_levels(prep: Prepared, left: np.ndarray, right: np.ndarray, workers: int) -> np.ndarray:
    equal, missing = _equal_and_missing(prep, "phone", left, right)
    level = np.zeros(len(left), np.int8)
    fuzzy = np.flatnonzero(~equal & ~missing)
    values = prep.values["phone"]
    level[fuzzy[_within_one_edit(values[left[fuzzy]], values[right[fuzzy]], workers=workers)]] = 1
    level[equal] = 2
    level[missing] = MISSING
    return level


def _city_levels(prep: Prepared, left: np.ndarray, right: np.ndarray, workers: int) -> np.ndarray:
    equal, missing = _equal_and_missing(prep, "city", left, right)
    level = equal.astype(np.int8)
    level[missing] = MISSING
    return level


def _company_levels(
    prep: Prepared, left: np.ndarray, right: np.ndarray, workers: int
) -> np.ndarray:
    return _graded(prep, "company", left, right, (0.75, 0.9), workers)


def _address_levels(
    prep: Prepared, left: np.ndarray, right: np.ndarray, workers: int
) -> np.ndarray:
    level = _graded(prep, "address", left, right, (0.85,), workers)  # 0, 1, 2 = exact
    level[level == 2] = 3
    same_building, _ = _equal_and_missing(prep, "address_core", left, right)
    level[same_building & (level < 3)] = 2
    return level


_LEVEL_FUNCTIONS: dict[str, Callable[[Prepared, np.ndarray, np.ndarray, int], np.ndarray]] = {
    "name": _name_levels,
    "company": _company_levels,
    "email": _email_levels,
    "phone": _phone_levels,
    "city": _city_levels,
    "address": _address_levels,
}


def field_levels(
    prep: Prepared, left: np.ndarray, right: np.ndarray, *, workers: int = -1
) -> dict[str, np.ndarray]:
    """Level of each field (``name, company, email, phone, city, address``) for the pairs
    ``(left[i], right[i])`` (row positions in ``prep``): ``-1`` missing, ``0`` different,
    then closer up to exact (see ``FIELD_LEVELS``)."""
    left = np.asarray(left, dtype=np.int64)
    right = np.asarray(right, dtype=np.int64)
    return {name: _LEVEL_FUNCTIONS[name](prep, left, right, workers) for name in FIELD_LEVELS}


def site_level(company: np.ndarray, address: np.ndarray, city: np.ndarray) -> np.ndarray:
    """The joint *site* level (see ``COMPARISONS``) from company, address and city levels."""
    same_company = company >= 2
    same_address = address >= 2
    level = np.full(len(company), MISSING, np.int8)
    level[(company != MISSING) | (address != MISSING) | (city != MISSING)] = 0
    level[city == 1] = 1
    level[same_company] = 2
    level[same_address] = 3
    level[same_company & same_address] = 4
    return level


def levels_matrix(levels: dict[str, np.ndarray]) -> np.ndarray:
    """The comparison matrix of the model from per-field levels (see ``field_levels``)."""
    site = site_level(levels["company"], levels["address"], levels["city"])
    columns = [levels["name"], levels["email"], levels["phone"], site]
    return np.column_stack(columns).astype(np.int8)


def compare(
    prep: Prepared, left: np.ndarray, right: np.ndarray, *, workers: int = -1
) -> np.ndarray:
    """Comparison matrix of the pairs ``(left[i], right[i])`` (row positions in ``prep``):
    ``int8`` of shape ``(pairs, len(COMPARISONS))``, one level per comparison. Symmetric:
    swapping ``left`` and ``right`` gives the same matrix."""
    return levels_matrix(field_levels(prep, left, right, workers=workers))


def exact_frequency(prep: Prepared, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """For each pair and comparison, the share of records holding the pair's common value
    (``float32``, shape ``(pairs, comparisons)``); only meaningful at its ``tf_levels``."""
    freq = np.zeros((len(left), len(COMPARISONS)), np.float32)
    for j, comparison in enumerate(COMPARISONS):
        col = tf_column(comparison.field)
        if comparison.tf_levels:
            freq[:, j] = np.maximum(prep.freq[col][left], prep.freq[col][right])
    return freq
