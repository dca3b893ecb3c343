"""Normalisers that put customer fields into the form the de-duplication compares.

Every function here is pure and deterministic. The scalar functions (``normalize_name``,
``name_key``, ``normalize_company``, ``normalize_email``, ``normalize_phone``,
``normalize_city``, ``normalize_address``) map one value; ``normalize_frame`` applies them to
a whole DataFrame, computing each distinct value once so that a million records with
repeating names, companies and cities stay cheap.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from functools import lru_cache

import numpy as np
import pandas as pd

from crm_core.normalize import clean_text, try_normalize_phone

FIELDS: tuple[str, ...] = ("name", "company", "email", "phone", "city", "address")
"""The input columns the de-duplication reads; any other column is ignored."""

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_SPACES = re.compile(r"\s+")
_JOINERS = re.compile(r"['’`\-‐‑·・•]")
_NOT_WORD = re.compile(r"[^\w]+")
_DIGITS = re.compile(r"\D+")

# --- Chinese: traditional -> simplified, pinyin -------------------------------------------

_opencc = None


def to_simplified(text: str) -> str:
    """Traditional Chinese characters turned into simplified ones (other text unchanged)."""
    if not _CJK.search(text):
        return text
    return _t2s(text)


@lru_cache(maxsize=500_000)
def _t2s(text: str) -> str:
    global _opencc
    if _opencc is None:
        from opencc import OpenCC

        _opencc = OpenCC("t2s")
    return str(_opencc.convert(text))


# Readings of characters that pypinyin's single-character default gets wrong as a surname.
_SURNAME_READINGS: dict[str, str] = {
    "单": "shan",
    "曾": "zeng",
    "解": "xie",
    "区": "ou",
    "仇": "qiu",
    "朴": "piao",
    "查": "zha",
    "翟": "zhai",
    "乐": "yue",
    "缪": "miao",
    "覃": "qin",
    "盖": "ge",
    "种": "chong",
    "秘": "bi",
    "召": "shao",
    "柏": "bai",
    "繁": "po",
    "句": "gou",
    "员": "yun",
    "长孙": "zhangsun",
    "尉迟": "yuchi",
    "万俟": "moqi",
    "单于": "chanyu",
}

COMPOUND_SURNAMES: frozenset[str] = frozenset(
    [
        "欧阳",
        "司马",
        "上官",
        "诸葛",
        "东方",
        "皇甫",
        "尉迟",
        "公孙",
        "慕容",
        "令狐",
        "夏侯",
        "长孙",
        "宇文",
        "司徒",
        "端木",
        "独孤",
        "南宫",
        "西门",
        "轩辕",
        "澹台",
        "呼延",
        "万俟",
        "申屠",
        "钟离",
        "闻人",
        "赫连",
        "单于",
        "太史",
        "司空",
        "东郭",
        "百里",
        "第五",
    ]
)

_char_pinyin: dict[str, str] = {}


def _pinyin_of_char(char: str) -> str:
    syllable = _char_pinyin.get(char)
    if syllable is None:
        from pypinyin import Style, lazy_pinyin

        found = lazy_pinyin(char, style=Style.NORMAL, errors="ignore")
        syllable = found[0].lower() if found else ""
        _char_pinyin[char] = syllable
    return syllable


def pinyin(text: str) -> list[str]:
    """Pinyin syllables (no tones) of the Chinese characters of ``text``, one per character."""
    return [s for s in (_pinyin_of_char(c) for c in text if _CJK.match(c)) if s]


def chinese_name_parts(name: str) -> tuple[str, str]:
    """Pinyin of the surname and of the given name of a Chinese name (``王小明`` ->
    ``("wang", "xiaoming")``). Compound surnames such as 欧阳 are recognised."""
    chars = "".join(_CJK_RUN.findall(name))
    if not chars:
        return "", ""
    surname_len = 2 if len(chars) > 2 and chars[:2] in COMPOUND_SURNAMES else 1
    surname, given = chars[:surname_len], chars[surname_len:]
    surname_py = _SURNAME_READINGS.get(surname) or "".join(pinyin(surname))
    return surname_py, "".join(pinyin(given))


# --- names ----------------------------------------------------------------------------------

TITLES: frozenset[str] = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "miss",
        "mx",
        "dr",
        "prof",
        "professor",
        "sir",
        "madam",
        "madame",
        "dame",
        "lord",
        "lady",
        "rev",
        "fr",
        "mister",
        "jr",
        "sr",
        "ii",
        "iii",
        "iv",
        "phd",
        "md",
        "esq",
        "mba",
    ]
)
CHINESE_TITLES: tuple[str, ...] = (
    "先生",
    "女士",
    "小姐",
    "太太",
    "夫人",
    "老师",
    "博士",
    "教授",
    "医生",
    "经理",
    "总经理",
    "董事长",
    "总监",
    "主任",
    "同学",
)
_CN_TITLE_RE = re.compile("(?:" + "|".join(sorted(CHINESE_TITLES, key=len, reverse=True)) + ")$")

NICKNAMES: dict[str, str] = {
    nick: full
    for full, nicks in {
        "william": "bill billy will willy willie liam",
        "robert": "bob bobby rob robbie bert",
        "elizabeth": "liz lizzie lizzy beth betty bess bessie eliza elisabeth libby",
        "james": "jim jimmy jamie",
        "michael": "mike mikey mick mickey",
        "richard": "dick rick ricky rich richie",
        "thomas": "tom tommy",
        "anthony": "tony",
        "katherine": "kate katie kathy cathy kat kathryn catherine kay",
        "christopher": "chris kit",
        "david": "dave davey",
        "daniel": "dan danny",
        "joseph": "joe joey",
        "john": "jack johnny jon",
        "edward": "ed eddie ted teddy ned",
        "samuel": "sam sammy",
        "steven": "steve stephen stevie",
        "alexander": "alex sasha",
        "andrew": "andy drew",
        "matthew": "matt matty",
        "nicholas": "nick nicky",
        "patrick": "pat paddy",
        "peter": "pete",
        "gregory": "greg",
        "benjamin": "ben benny",
        "charles": "charlie chuck chas",
        "frederick": "fred freddie freddy",
        "henry": "harry hank",
        "jennifer": "jen jenny jenn",
        "jessica": "jess jessie",
        "susan": "sue susie suzy",
        "margaret": "maggie meg peggy madge",
        "rebecca": "becky becca",
        "abigail": "abby abbie",
        "victoria": "vicky vicki tori",
        "amanda": "mandy",
        "sandra": "sandy",
        "deborah": "deb debbie debby",
        "pamela": "pam",
        "cynthia": "cindy",
        "timothy": "tim timmy",
        "kenneth": "ken kenny",
        "lawrence": "larry",
        "gerald": "jerry gerry",
        "ronald": "ron ronnie",
        "donald": "don donnie",
        "douglas": "doug",
        "philip": "phil phillip",
        "raymond": "ray",
        "walter": "walt",
        "leonard": "leo leon len lenny",
        "jonathan": "jonny",
        "zachary": "zach zack",
        "nathaniel": "nate nathan nat",
        "theodore": "theo",
        "gabriel": "gabe",
        "vincent": "vince vinny",
        "jacob": "jake",
        "joshua": "josh",
        "benedict": "benny",
        "dorothy": "dot dotty dottie",
        "patricia": "patty patsy trish tricia",
        "barbara": "barb barbie",
        "christina": "tina christine kristina kristine",
        "jacqueline": "jackie",
        "josephine": "josie jo",
        "judith": "judy",
        "kimberly": "kim",
        "melissa": "mel missy",
        "stephanie": "steph",
        "valerie": "val",
        "alexandra": "alexa lexi",
        "samantha": "sammie",
        "natalie": "nat",
        "michelle": "shelly",
        "frances": "fran",
        "eleanor": "ellie nell nellie",
        "angela": "angie",
        "caroline": "carol carrie",
        "isabella": "bella izzy isabel",
        "olivia": "liv",
        "penelope": "penny",
        "suzanne": "suzie",
        "teresa": "terry tess theresa",
    }.items()
    for nick in nicks.split()
}
"""Common English short forms mapped to the full given name they stand for."""


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@lru_cache(maxsize=500_000)
def _normalize_name(text: str) -> str:
    text = to_simplified(text.lower())
    if _CJK.search(text):
        chinese = "".join(_CJK_RUN.findall(text))
        chinese = _CN_TITLE_RE.sub("", chinese) or chinese
        latin = _latin_name_tokens(_CJK_RUN.sub(" ", text))
        return " ".join([chinese, *latin]) if latin else chinese
    return " ".join(_latin_name_tokens(text))


def _latin_name_tokens(text: str) -> list[str]:
    if "," in text:  # "Wang, Wei" -> "Wei Wang"
        last, _, first = text.partition(",")
        text = f"{first} {last}"
    text = _JOINERS.sub("", _strip_accents(text))
    tokens = [t for t in _NOT_WORD.sub(" ", text).replace("_", " ").split() if t]
    kept = [t for t in tokens if t not in TITLES]
    return kept or tokens


def normalize_name(value: object) -> str | None:
    """A person's name for comparison: NFKC, lower case, simplified characters, no titles
    (Mr, Dr, 先生, 女士 …), no punctuation; ``"Wang, Wei"`` becomes ``"wei wang"``.
    Chinese characters are kept as written (``王伟``); ``None`` when nothing is left."""
    text = clean_text(value)
    if text is None:
        return None
    return _normalize_name(text) or None


@lru_cache(maxsize=500_000)
def _name_key(normalized: str) -> str:
    tokens: list[str] = []
    for token in normalized.split():
        if _CJK.match(token):
            tokens.extend(t for t in chinese_name_parts(token) if t)
        else:
            tokens.append(NICKNAMES.get(token, token))
    return " ".join(sorted(tokens))


def name_key(value: object) -> str | None:
    """An order-free, script-free key of a name so that its spellings meet.

    Chinese characters become pinyin as surname and given name (``王小明`` -> ``wang xiaoming``),
    English nicknames become the full name (``Bill`` -> ``william``) and the tokens are sorted,
    so 王伟, 王偉, ``Wang Wei``, ``Wei Wang`` and ``Wang, Wei`` all give ``wang wei``.
    """
    normalized = normalize_name(value)
    if normalized is None:
        return None
    return _name_key(normalized) or None


# --- companies ------------------------------------------------------------------------------

COMPANY_SUFFIXES: tuple[str, ...] = (
    "集团股份有限公司",
    "集团有限公司",
    "股份有限公司",
    "有限责任公司",
    "有限公司",
    "责任公司",
    "股份公司",
    "分公司",
    "总公司",
    "集团",
    "公司",
    "incorporated",
    "corporation",
    "limited",
    "company",
    "holdings",
    "group",
    "gmbh",
    "corp",
    "ltd",
    "inc",
    "llc",
    "llp",
    "plc",
    "pty",
    "pte",
    "co",
    "ag",
    "sa",
    "bv",
    "nv",
    "lp",
    "kk",
    "srl",
    "spa",
    "oy",
    "ab",
)
"""Legal-form words removed from the end of a company name before comparing."""

_BRACKETS = re.compile(r"[(（\[【][^)）\]】]*[)）\]】]")
_LATIN_SUFFIX = re.compile(
    r"(?:\s|^)(?:" + "|".join(s for s in COMPANY_SUFFIXES if s.isascii()) + r")\s*$"
)
_CN_SUFFIX = re.compile("(?:" + "|".join(s for s in COMPANY_SUFFIXES if not s.isascii()) + ")$")
_DOTTED = re.compile(r"\b(l\.l\.c|l\.l\.p|s\.a|s\.p\.a|n\.v|b\.v|k\.k)\.?(?=\s|$)")


@lru_cache(maxsize=500_000)
def _normalize_company(text: str) -> str:
    text = to_simplified(_strip_accents(text.lower()))
    text = _BRACKETS.sub(" ", text)
    text = _DOTTED.sub(lambda m: m.group(1).replace(".", ""), text)
    text = text.replace("&", " and ")
    text = _SPACES.sub(" ", _NOT_WORD.sub(" ", text).replace("_", " ")).strip()
    while True:
        stripped = _CN_SUFFIX.sub("", text).strip()
        stripped = _LATIN_SUFFIX.sub("", stripped).strip()
        if not stripped or stripped == text:
            break
        text = stripped
    if _CJK.search(text):
        text = _cjk_spaces_removed(text)
    return text


def _cjk_spaces_removed(text: str) -> str:
    return re.sub(r"(?<=[^\x00-\x7f])\s+|\s+(?=[^\x00-\x7f])", "", text)


def normalize_company(value: object) -> str | None:
    """A company name for comparison: lower case, simplified characters, punctuation and
    legal suffixes removed (``"Acme Co., Ltd."`` -> ``"acme"``, ``"华为技术有限公司"`` ->
    ``"华为技术"``)."""
    text = clean_text(value)
    if text is None:
        return None
    return _normalize_company(text) or None


# --- emails and phones ----------------------------------------------------------------------

_GMAIL = frozenset({"gmail.com", "googlemail.com"})


def normalize_email(value: object) -> str | None:
    """An email address for comparison: lower case, ``+tag`` removed from the local part,
    dots removed and googlemail.com read as gmail.com for Gmail; ``None`` without an ``@``."""
    text = clean_text(value)
    if text is None:
        return None
    text = text.lower().replace(" ", "")
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain:
        return None
    local = local.split("+", 1)[0]
    domain = domain.rstrip(".")
    if domain in _GMAIL:
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}" if local else None


_CN_MOBILE = re.compile(r"^(?:\+?86|0086)?(1(?:3\d|5[0-35-9]|7[0-35-8]|8\d|9[0-35-9])\d{8})$")


def normalize_phone(value: object, *, region: str = "CN") -> str | None:
    """A phone number in E.164 form (``138 0013 8000`` -> ``+8613800138000``) or ``None`` when
    it is not a valid number. ``region`` is the country of numbers written without one."""
    text = clean_text(value)
    if text is None:
        return None
    if region.upper() == "CN":
        compact = re.sub(r"[\s\-().]", "", text)
        match = _CN_MOBILE.match(compact)
        if match:
            return "+86" + match.group(1)
    return try_normalize_phone(text, region=region)


# --- places ---------------------------------------------------------------------------------

_CITY_SUFFIX = re.compile(r"(?:市|地区|自治州|盟|县|区|省)$")
_LATIN_CITY_SUFFIX = re.compile(r"\s+(?:city|shi)$")


@lru_cache(maxsize=100_000)
def _normalize_city(text: str) -> str:
    text = to_simplified(text.lower())
    if _CJK.search(text):
        chars = "".join(_CJK_RUN.findall(text))
        chars = _CITY_SUFFIX.sub("", chars) or chars
        return "".join(pinyin(chars))
    text = _LATIN_CITY_SUFFIX.sub("", _strip_accents(text))
    return _NOT_WORD.sub("", text).replace("_", "")


def normalize_city(value: object) -> str | None:
    """A city for comparison, written in Latin letters: ``北京市``, ``北京``, ``Beijing`` and
    ``Beijing City`` all give ``beijing``."""
    text = clean_text(value)
    if text is None:
        return None
    return _normalize_city(text) or None


ADDRESS_WORDS: dict[str, str] = {
    "st": "street",
    "str": "street",
    "rd": "road",
    "ave": "avenue",
    "av": "avenue",
    "blvd": "boulevard",
    "dr": "drive",
    "ln": "lane",
    "ct": "court",
    "pl": "place",
    "sq": "square",
    "hwy": "highway",
    "apt": "apartment",
    "ste": "suite",
    "fl": "floor",
    "bldg": "building",
    "no": "",
    "n": "north",
    "s": "south",
    "e": "east",
    "w": "west",
}
"""Address abbreviations written out before comparing (``Rd`` -> ``road``)."""

_CN_ADDRESS = (("號", "号"), ("路口", "路"), ("大道", "大道"), ("弄", "弄"))


@lru_cache(maxsize=500_000)
def _normalize_address(text: str) -> str:
    text = to_simplified(_strip_accents(text.lower()))
    text = text.replace("#", " ")
    words = _NOT_WORD.sub(" ", text).replace("_", " ").split()
    words = [ADDRESS_WORDS.get(w, w) for w in words]
    text = " ".join(w for w in words if w)
    if _CJK.search(text):
        text = _cjk_spaces_removed(text)
    return text


def normalize_address(value: object) -> str | None:
    """A street address for comparison: lower case, simplified characters, punctuation
    removed, abbreviations written out (``12 Main St.`` -> ``12 main street``)."""
    text = clean_text(value)
    if text is None:
        return None
    return _normalize_address(text) or None


# --- whole frames ---------------------------------------------------------------------------

NORMALIZED_COLUMNS: tuple[str, ...] = (
    "name",
    "name_key",
    "company",
    "email",
    "email_local",
    "phone",
    "city",
    "address",
)
"""Columns of the frame ``normalize_frame`` returns (each ``str`` or ``None``)."""


def _map_unique(values: pd.Series, func: Callable[[object], str | None]) -> np.ndarray:
    """``func`` applied to each distinct value once; an object array aligned with ``values``."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    mapped = np.array([func(v) for v in uniques] + [None], dtype=object)
    return mapped[codes]  # code -1 (missing) picks the trailing None


def normalize_frame(df: pd.DataFrame, *, region: str = "CN") -> pd.DataFrame:
    """The de-duplication fields of ``df`` normalised, one row per input row (same order,
    a fresh ``RangeIndex``), with the columns of ``NORMALIZED_COLUMNS``. Missing input
    columns give all-``None`` columns; other input columns are ignored."""
    n = len(df)
    empty = pd.Series([None] * n, dtype=object)

    def column(name: str) -> pd.Series:
        if name in df.columns:
            return df[name].reset_index(drop=True).astype(object)
        return empty

    name = _map_unique(column("name"), normalize_name)
    key = _map_unique(pd.Series(name, dtype=object), name_key)
    email = _map_unique(column("email"), normalize_email)
    email_local = np.array(
        [e.rpartition("@")[0] if e is not None else None for e in email], dtype=object
    )
    return pd.DataFrame(
        {
            "name": name,
            "name_key": key,
            "company": _map_unique(column("company"), normalize_company),
            "email": email,
            "email_local": email_local,
            "phone": _map_unique(column("phone"), lambda v: normalize_phone(v, region=region)),
            "city": _map_unique(column("city"), normalize_city),
            "address": _map_unique(column("address"), normalize_address),
        },
        dtype=object,
    )
