"""Normalisers that put customer fields into the form the de-duplication compares.

Every function here is pure and deterministic. The scalar functions (``normalize_name``,
``name_key``, ``normalize_company``, ``normalize_email``, ``normalize_phone``,
``normalize_city``, ``normalize_address``, ``address_core``) map one value and
``normalize_record`` a whole record; ``crm_core.dedupe.frame.normalize_frame`` gives the
same results for a whole DataFrame.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from functools import lru_cache

from crm_core.dedupe.chinese import (
    CJK,
    CJK_ONLY,
    CJK_RUN,
    chinese_name_parts,
    is_transcription,
    split_pinyin_name,
    to_simplified,
)
from crm_core.dedupe.vocabulary import (
    ADDRESS_WORDS,
    CHINESE_TITLES,
    CN_PLACE_PREFIXES,
    COMPANY_SUFFIXES,
    NICKNAMES,
    TITLES,
)
from crm_core.normalize import clean_text, try_normalize_phone

FIELDS: tuple[str, ...] = ("name", "company", "email", "phone", "city", "address")
"""The input columns the de-duplication reads; any other column is ignored."""

_SPACES = re.compile(r"\s+")
SPACE_RE2 = (
    r"\t\n\x0b\x0c\r\x1c-\x20\x85\xa0\x{1680}\x{2000}-\x{200a}"
    r"\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}"
)
r"""Every character ``str.split()`` splits at, as the body of an RE2 class (RE2's ``\s``
is ASCII only): for the Arrow forms of the normalisers."""
_JOINERS = re.compile(r"['’`\-‐‑·・•]")
_NOT_WORD = re.compile(r"[\W_]+")
_BRACKETS = re.compile(r"[(（\[【][^)）\]】]*[)）\]】]")
_CN_TITLES_LONGEST_FIRST = tuple(sorted(CHINESE_TITLES, key=len, reverse=True))
_CN_NAME_ENDINGS = tuple(CHINESE_TITLES) + tuple(s for s in COMPANY_SUFFIXES if not s.isascii())
_CJK_GAP = re.compile(r"(?<=[^\x00-\x7f])\s+|\s+(?=[^\x00-\x7f])")


def _strip_accents(text: str) -> str:
    if text.isascii() or CJK.search(text):
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _words(text: str) -> list[str]:
    return _NOT_WORD.sub(" ", text).split()


# --- companies (names of organisations reuse this) -------------------------------------------

_LATIN_SUFFIXES = frozenset(s for s in COMPANY_SUFFIXES if s.isascii())
_CN_SUFFIXES = tuple(s for s in COMPANY_SUFFIXES if not s.isascii())
_DOTTED = re.compile(r"\b(l\.l\.c|l\.l\.p|s\.a|s\.p\.a|n\.v|b\.v|k\.k|p\.l\.c)\.?(?=\s|,|$)")
_CN_PLACES = frozenset(CN_PLACE_PREFIXES)
_CN_PLACE_LENGTHS = sorted({len(p) for p in CN_PLACE_PREFIXES}, reverse=True)


def _without_place(text: str) -> str:
    """A leading Chinese province or city (``北京``, ``北京市``) removed, if anything is left."""
    for size in _CN_PLACE_LENGTHS:
        if text[:size] in _CN_PLACES:
            rest = text[size:]
            for mark in ("自治区", "省", "市"):
                if rest.startswith(mark):
                    rest = rest[len(mark) :]
                    break
            return rest or text
    return text


def _strip_legal(text: str) -> str:
    """Legal-form suffixes removed from the end, repeatedly (``acme co ltd`` -> ``acme``)."""
    while True:
        if text.endswith(_CN_SUFFIXES):
            stripped = next(text[: -len(x)].rstrip() for x in _CN_SUFFIXES if text.endswith(x))
        else:
            head, _, last = text.rpartition(" ")
            if last not in _LATIN_SUFFIXES:
                return text
            stripped = head.rstrip()
        if not stripped:
            return text
        text = stripped


@lru_cache(maxsize=500_000)
def _normalize_company(text: str) -> str:
    text = to_simplified(_strip_accents(text.lower()))
    if "(" in text or "（" in text or "[" in text or "【" in text:
        text = _BRACKETS.sub(" ", text)
    if "." in text:
        text = _DOTTED.sub(lambda m: m.group(1).replace(".", ""), text)
    text = " ".join(_words(text.replace("&", " and ")))
    text = _strip_legal(text)
    if not text.isascii() and CJK.search(text):
        if " " in text:
            text = _CJK_GAP.sub("", text)
        text = _without_place(text)
    return text


def normalize_company(value: object) -> str | None:
    """A company name for comparison: lower case, simplified characters, punctuation, a
    leading Chinese place name and legal suffixes removed (``"Acme Co., Ltd."`` -> ``"acme"``,
    ``"北京华为技术有限公司"`` -> ``"华为技术"``)."""
    text = clean_text(value)
    if text is None:
        return None
    return _normalize_company(text) or None


# --- names -----------------------------------------------------------------------------------


def _latin_name_tokens(text: str) -> list[str]:
    if "," in text:  # "Wang, Wei" -> "Wei Wang"
        last, _, first = text.partition(",")
        text = f"{first} {last}"
    if text.isascii() and text.replace(" ", "").isalpha():
        tokens = text.split()
    else:
        tokens = _words(_JOINERS.sub("", _strip_accents(text)))
    kept = [t for t in tokens if t not in TITLES]
    return kept or tokens


def _name_extras(text: str, chars: str) -> str:
    """What a name holding Chinese characters says besides them, joined: digits and Latin
    words (``客户12`` -> ``12``, ``王伟A`` -> ``a``), without titles, legal suffixes and the
    pinyin of its characters (``王伟 Wei Wang`` -> nothing)."""
    rest = CJK_RUN.sub(" ", text)
    if not rest or rest.isspace():
        return ""
    tokens = _words(_JOINERS.sub("", _strip_accents(rest)))
    return "".join(
        t
        for t in tokens
        if t not in TITLES and t not in _LATIN_SUFFIXES and not is_transcription(t, chars)
    )


def _normalize_name(text: str) -> str:
    text = text.lower()
    if text.isascii():
        words = text.split()
        if (  # the common case, "john smith": nothing to remove
            len(words) > 1
            and text.replace(" ", "").isalpha()
            and TITLES.isdisjoint(words)
            and words[-1] not in _LATIN_SUFFIXES
        ):
            return " ".join(words)
        tokens = _latin_name_tokens(text)
        return _strip_legal(" ".join(tokens)) if len(tokens) > 1 else " ".join(tokens)
    text = to_simplified(text)
    if CJK_ONLY.match(text) and len(text) <= 4 and not text.endswith(_CN_NAME_ENDINGS):
        return text  # the common case, "王小明"
    if CJK.search(text):
        body = _BRACKETS.sub(" ", text) if "(" in text or "（" in text else text
        runs = CJK_RUN.findall(body)
        if not runs:  # "Jiali Chen (陈嘉丽)": the characters are in the brackets
            body, runs = text, CJK_RUN.findall(text)
        chinese = _strip_legal("".join(runs))
        if len(chinese) >= 5:  # an organisation: 北京星辰软件 and 星辰软件 are one name
            chinese = _without_place(chinese)
        if chinese.endswith(CHINESE_TITLES) and len(chinese) > 1:
            for title in _CN_TITLES_LONGEST_FIRST:
                if chinese.endswith(title) and len(chinese) > len(title):
                    chinese = chinese[: -len(title)]
                    break
        return chinese + _name_extras(body, "".join(runs))
    tokens = _latin_name_tokens(text)
    return _strip_legal(" ".join(tokens)) if len(tokens) > 1 else " ".join(tokens)


def normalize_name(value: object) -> str | None:
    """A customer's name for comparison: NFKC, lower case, simplified characters, no titles
    (Mr, Dr, 先生, 女士 …), no punctuation, no legal suffix; ``"Wang, Wei"`` becomes
    ``"wei wang"``. A name holding Chinese characters keeps them, then its digits and Latin
    words that are not the pinyin of its characters (``王伟 Wei Wang`` -> ``王伟``,
    ``客户 12`` -> ``客户12``, ``王伟A`` -> ``王伟a``). ``None`` when nothing is left."""
    text = clean_text(value)
    if text is None:
        return None
    return _normalize_name(text) or None


def _name_key(normalized: str) -> str:
    if not normalized.isascii() and CJK.search(normalized):
        surname, given = chinese_name_parts(normalized)
        extras = CJK_RUN.sub("", normalized)  # digits and Latin words kept by the name
        if not extras:
            if not given or not surname:
                return surname or given
            return f"{given} {surname}" if given < surname else f"{surname} {given}"
        return " ".join(sorted(t for t in (surname, given, extras) if t))
    tokens = [NICKNAMES.get(t, t) for t in normalized.split()]
    if len(tokens) == 1:
        tokens = list(split_pinyin_name(tokens[0]) or tokens)
    long = [t for t in tokens if len(t) > 1 or t.isdigit()]
    if len(long) >= 2:  # "john a smith" -> "john smith"
        tokens = long
    return " ".join(sorted(tokens))


def name_key(value: object) -> str | None:
    """An order-free, script-free key of a name so that its spellings meet.

    Chinese characters become pinyin as surname and given name (``王小明`` -> ``wang xiaoming``),
    English nicknames become the full name (``Bill`` -> ``william``), middle initials go and
    the tokens are sorted, so 王伟, 王偉, ``Wang Wei``, ``Wei Wang``, ``WangWei`` and
    ``Wang, Wei`` all give ``wang wei``.
    """
    normalized = normalize_name(value)
    if normalized is None:
        return None
    return _name_key(normalized) or None


def _name_rows(values: list[str]) -> list[tuple[str, str]]:
    """``(name, key)`` of each value after collapsing its spaces, as ``_normalize_name`` and
    ``_name_key`` give them (``""`` for nothing): the bulk form of ``normalize_name`` and
    ``name_key`` (``crm_core.dedupe.frame`` does the common shapes in Arrow first)."""
    out: list[tuple[str, str]] = []
    for value in values:
        name = _normalize_name(" ".join(value.split()))
        out.append((name, _name_key(name) if name else ""))
    return out


# --- emails ----------------------------------------------------------------------------------

_GMAIL = frozenset({"gmail.com", "googlemail.com"})
_EMAIL = r"^([^+@]+)(?:\+[^@]*)?@([^@]+?)\.?$"
_EMAIL_RE = re.compile(_EMAIL)


def normalize_email(value: object) -> str | None:
    """An email address for comparison: lower case, ``+tag`` removed from the local part,
    dots removed and googlemail.com read as gmail.com for Gmail; ``None`` unless it has the
    form ``local@domain``."""
    text = clean_text(value)
    if text is None:
        return None
    match = _EMAIL_RE.match(_SPACES.sub("", text.lower()))
    if not match:
        return None
    local, domain = match.groups()
    if domain in _GMAIL:
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}" if local else None


# --- phones ----------------------------------------------------------------------------------

_PHONE_PUNCT = r"[\s\-().]"
_TRUNK_AFTER_86 = r"^(?:\+|00)860"  # "+86 010 …": the trunk 0 does not belong after +86
_PHONE_RULES: tuple[tuple[str, str, bool], ...] = (
    # (pattern with the kept digits as group "n", prefix, only for region CN)
    (r"^(?:\+86|0086|86)?(?P<n>1[3-9]\d{9})$", "+86", True),  # Chinese mobile
    (r"^0(?P<n>[1-9]\d{8,10})$", "+86", True),  # Chinese number with trunk 0
    (r"^(?:\+|00)(?P<n>[1-9]\d{6,14})$", "+", False),  # any number with a country code
)
_PHONE_RES = tuple((re.compile(p), prefix, cn) for p, prefix, cn in _PHONE_RULES)


def _compact_phone(text: str) -> str:
    return re.sub(_TRUNK_AFTER_86, "+86", re.sub(_PHONE_PUNCT, "", text.replace("(0)", "")))


def normalize_phone(value: object, *, region: str = "CN") -> str | None:
    """A phone number in E.164 form (``138 0013 8000`` -> ``+8613800138000``), or ``None``.

    Numbers written with a country code (``+44 …``, ``0086 …``), Chinese mobiles and Chinese
    numbers with a trunk ``0`` are read directly; anything else goes through
    ``crm_core.normalize.try_normalize_phone`` with ``region`` as the default country."""
    text = clean_text(value)
    if text is None:
        return None
    compact = _compact_phone(text)
    for pattern, prefix, cn_only in _PHONE_RES:
        if cn_only and region.upper() != "CN":
            continue
        match = pattern.match(compact)
        if match:
            return prefix + match.group("n")
    return try_normalize_phone(text, region=region)


# --- places ----------------------------------------------------------------------------------

_CITY_SUFFIX = re.compile(r"(?:市|地区|自治州|盟|县|区|省)$")
_LATIN_CITY_SUFFIX = re.compile(r"\s+(?:city|shi)$")


@lru_cache(maxsize=100_000)
def _normalize_city(text: str) -> str:
    from crm_core.dedupe.chinese import pinyin

    text = to_simplified(text.lower())
    if CJK.search(text):
        chars = "".join(CJK_RUN.findall(text))
        return "".join(pinyin(_CITY_SUFFIX.sub("", chars) or chars))
    return "".join(_words(_LATIN_CITY_SUFFIX.sub("", _strip_accents(text))))


def normalize_city(value: object) -> str | None:
    """A city for comparison, written in Latin letters: ``北京市``, ``北京``, ``Beijing`` and
    ``Beijing City`` all give ``beijing``."""
    text = clean_text(value)
    if text is None:
        return None
    return _normalize_city(text) or None


_ADMIN_LEVELS: tuple[tuple[str, ...], ...] = (("自治区", "省"), ("市",), ("街道", "区", "县", "镇"))
_STREET_MARKS = ("路", "街", "道", "巷", "弄", "号")
_ADMIN_MARK = re.compile("[省区市县镇]")
_UNIT_WORDS = ("apartment", "suite", "unit", "flat", "floor", "room")
_UNIT = re.compile(r"\b(?:" + "|".join(_UNIT_WORDS) + r")\s+\w+\b")


def _without_admin_prefix(text: str) -> str:
    """``北京市朝阳区建国路88号`` -> ``建国路88号``: province, city and district dropped from
    the front, as long as a street is left."""
    if not _ADMIN_MARK.search(text, 0, 12):
        return text
    start = 0
    for markers in _ADMIN_LEVELS:
        window = text[start : start + 9]
        cut = min(
            (i + len(m) for m in markers if (i := window.find(m, 1)) > 0),
            default=0,
        )
        rest = text[start + cut :]
        if cut and any(mark in rest for mark in _STREET_MARKS):
            start += cut
    return text[start:]


def _normalize_address(text: str) -> str:
    text = text.lower()
    if not text.isascii():
        text = to_simplified(text)
        if CJK.search(text):
            text = text.replace(" ", "").replace("#", "")
            return _without_admin_prefix(text) or text
        text = _strip_accents(text)
    words = [ADDRESS_WORDS.get(w, w) for w in _words(text)]
    return " ".join(w for w in words if w)


def normalize_address(value: object) -> str | None:
    """A street address for comparison: lower case, simplified characters, punctuation
    removed, abbreviations written out (``12 Main St.`` -> ``12 main street``); a Chinese
    address also loses spaces and its leading province, city and district
    (``北京市朝阳区建国路 88 号`` -> ``建国路88号``)."""
    text = clean_text(value)
    if text is None:
        return None
    return _normalize_address(text) or None


def _address_core(normalized: str) -> str:
    if CJK.search(normalized):
        head, mark, _ = normalized.partition("号")
        return head + mark
    if any(word in normalized for word in _UNIT_WORDS):
        normalized = _UNIT.sub(" ", normalized)
    return " ".join(normalized.split())


def address_core(value: object) -> str | None:
    """The building of an address, without flat, suite or room (``建国路88号A座1201室`` ->
    ``建国路88号``, ``Apt 4, 12 Main St`` -> ``12 main street``)."""
    normalized = normalize_address(value)
    if normalized is None:
        return None
    return _address_core(normalized) or None


def _address_rows(values: list[str]) -> list[tuple[str, str]]:
    """``(address, building)`` of each value, as ``_normalize_address`` and ``_address_core``
    give them (``""`` for nothing), after collapsing its spaces: the bulk form of
    ``normalize_address`` and ``address_core``, with the Latin case inline."""
    abbreviations, units, not_word = ADDRESS_WORDS, _UNIT_WORDS, _NOT_WORD.sub
    out: list[tuple[str, str]] = []
    append = out.append
    for value in values:
        clean = " ".join(value.split())
        text = clean.lower()
        if not text.isascii():
            address = _normalize_address(clean)
            append((address, _address_core(address) if address else ""))
            continue
        # _words(text): letters and digits parted by single spaces need no regex
        words = text.split() if text.replace(" ", "").isalnum() else not_word(" ", text).split()
        address = " ".join(w for w in [abbreviations.get(w, w) for w in words] if w)
        if not address or any(word in address for word in units):
            append((address, _address_core(address) if address else ""))
        else:  # _address_core of a Latin address without a unit: itself
            append((address, address))
    return out


# --- whole frames ----------------------------------------------------------------------------

NORMALIZED_COLUMNS: tuple[str, ...] = (
    "name",
    "name_key",
    "company",
    "email",
    "email_local",
    "email_domain",
    "phone",
    "city",
    "address",
    "address_core",
)
"""Columns of the frame ``normalize_frame`` returns (each ``str`` or ``None``)."""


def normalize_record(record: Mapping[str, object], *, region: str = "CN") -> dict[str, str | None]:
    """One record normalised: the columns of ``NORMALIZED_COLUMNS``, exactly as
    ``normalize_frame`` gives them, without building a frame (for checking one record)."""
    name = normalize_name(record.get("name"))
    email = normalize_email(record.get("email"))
    address = normalize_address(record.get("address"))
    local, _, domain = email.rpartition("@") if email else (None, None, None)
    return {
        "name": name,
        "name_key": (_name_key(name) or None) if name else None,
        "company": normalize_company(record.get("company")),
        "email": email,
        "email_local": local or None,
        "email_domain": domain or None,
        "phone": normalize_phone(record.get("phone"), region=region),
        "city": normalize_city(record.get("city")),
        "address": address,
        "address_core": (_address_core(address) or None) if address else None,
    }
