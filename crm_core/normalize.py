"""Pure, deterministic normalisers shared by the services, imports and de-duplication.

No database access here: every function maps a value to its canonical form or raises
``InvalidInput`` naming the field and the problem.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime
from functools import cache, lru_cache
from itertools import chain
from typing import Any

import phonenumbers
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email
from email_validator.validate_email import CASE_INSENSITIVE_MAILBOX_NAMES
from pypinyin import Style
from pypinyin.converter import DefaultConverter
from pypinyin.seg.simpleseg import seg as _pinyin_segments

from crm_core.errors import InvalidInput

#: pypinyin's default conversion (what ``lazy_pinyin`` uses), called per word below
_PINYIN_CONVERTER = DefaultConverter()

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def clean_text(value: object) -> str | None:
    """Trim, NFKC-normalise and collapse spaces; empty strings become ``None``."""
    if value is None:
        return None
    if isinstance(value, float) and value != value:  # NaN from pandas
        return None
    text = value if type(value) is str else str(value)
    if not text.isascii():  # NFKC leaves ASCII as it is
        text = unicodedata.normalize("NFKC", text)
    # str.split() and the regex \s agree on what whitespace is
    return " ".join(text.split()) or None


def has_cjk(text: str | None) -> bool:
    """True when the text holds Chinese characters."""
    return bool(text and _CJK.search(text))


@lru_cache(maxsize=100_000)
def _segment_syllables(segment: str) -> tuple[str, ...]:
    found = _PINYIN_CONVERTER.convert(segment, Style.NORMAL, False, "ignore", strict=True)
    return tuple(s.lower() for s in chain.from_iterable(found) if s.strip())


@lru_cache(maxsize=200_000)
def pinyin_syllables(text: str) -> tuple[str, ...]:
    """Pinyin syllables (no tones, lower case) of the Chinese characters in ``text``.

    The same as pypinyin's ``lazy_pinyin``, which cuts the text into words of its phrase
    dictionary and single characters and converts each on its own: here each word is
    converted once and remembered (names share their surnames and given-name words), which
    is several times faster over many names.
    """
    out: list[str] = []
    for segment in _pinyin_segments(text):
        out.extend(_segment_syllables(segment))
    return tuple(out)


def pinyin_key(name: str | None) -> str:
    """Search key of a Chinese name: joined pinyin and initials (``王伟`` -> ``wangwei ww``).

    Names without Chinese characters get an empty key.
    """
    if not name or not has_cjk(name):
        return ""
    syllables = pinyin_syllables(name)
    if not syllables:
        return ""
    return f"{''.join(syllables)} {''.join(s[0] for s in syllables)}"


_PHONE_SEPARATORS = re.compile(r"[\s\-.()/]")
_CN_META: Any = phonenumbers.PhoneMetadata.metadata_for_region("CN")
_CN_MOBILE = re.compile(str(_CN_META.mobile.national_number_pattern))
_CN_GENERAL = re.compile(str(_CN_META.general_desc.national_number_pattern))


def _fast_cn_mobile(raw: str, region: str) -> str | None:
    """E.164 of a Chinese mobile written in one of the usual ways, without a full parse.

    This is phonenumbers' own rule for these numbers (the national number fully matches
    China's mobile and general patterns from its metadata); anything else returns ``None``
    and takes the full parse.
    """
    digits = _PHONE_SEPARATORS.sub("", raw)
    if digits.startswith("+86"):
        national = digits[3:]
    elif region == "CN" and digits.startswith("0086"):
        national = digits[4:]
    elif region == "CN" and len(digits) == 11:
        national = digits
    elif region == "CN" and len(digits) == 13 and digits.startswith("86"):
        national = digits[2:]
    else:
        return None
    if (
        len(national) == 11
        and national.isascii()
        and national.isdigit()
        and _CN_MOBILE.fullmatch(national)
        and _CN_GENERAL.fullmatch(national)
    ):
        return "+86" + national
    return None


class _Region:
    """What the fast path needs of one region's phonenumbers metadata, compiled once."""

    def __init__(self, code: str) -> None:
        meta: Any = phonenumbers.PhoneMetadata.metadata_for_region(code, None)
        self.country_code: int = meta.country_code
        self.general = self._desc(meta.general_desc)
        general = meta.general_desc
        self.lengths: tuple[int, ...] = tuple(general.possible_length or ())
        self.local_lengths: tuple[int, ...] = tuple(general.possible_length_local_only or ())
        self.prefix = (
            re.compile(meta.national_prefix_for_parsing)
            if meta.national_prefix_for_parsing
            else None
        )
        self.transform = bool(meta.national_prefix_transform_rule)
        self.idd = re.compile(meta.international_prefix) if meta.international_prefix else None
        self.leading = re.compile(meta.leading_digits) if meta.leading_digits else None
        kinds = [
            meta.premium_rate,
            meta.toll_free,
            meta.shared_cost,
            meta.voip,
            meta.personal_number,
            meta.pager,
            meta.uan,
            meta.voicemail,
            meta.fixed_line,
        ]
        if not meta.same_mobile_and_fixed_line_pattern:
            kinds.append(meta.mobile)
        self.kinds = [d for d in (self._desc(k) for k in kinds) if d is not None]

    @staticmethod
    def _desc(desc: Any) -> tuple[frozenset[int], re.Pattern[str]] | None:
        if desc is None or not desc.national_number_pattern:
            return None
        return frozenset(desc.possible_length or ()), re.compile(desc.national_number_pattern)

    @staticmethod
    def matches(number: str, desc: tuple[frozenset[int], re.Pattern[str]] | None) -> bool:
        if desc is None:
            return False
        lengths, pattern = desc
        if lengths and len(number) not in lengths:
            return False
        return pattern.fullmatch(number) is not None

    def viable(self, number: str) -> bool:  # phonenumbers' _match_national_number(general)
        return self.general is not None and self.general[1].fullmatch(number) is not None

    def valid(self, number: str) -> bool:  # phonenumbers' _number_type_helper != UNKNOWN
        if not self.matches(number, self.general):
            return False
        kinds = self._kinds_of_length(len(number))
        return kinds is not None and kinds.fullmatch(number) is not None

    @lru_cache(maxsize=64)  # noqa: B019 (one _Region per region code, kept for good)
    def _kinds_of_length(self, size: int) -> re.Pattern[str] | None:
        """One pattern for every number type a number of ``size`` digits may be: the
        fullmatch of an alternation is the fullmatch of any of its branches."""
        patterns = [p.pattern for lengths, p in self.kinds if not lengths or size in lengths]
        return re.compile("|".join(f"(?:{p})" for p in patterns)) if patterns else None

    def strip_national_prefix(self, number: str) -> str | None:
        """The number without its national prefix as phonenumbers strips it (``None``: the
        region rewrites the prefix, a case left to phonenumbers)."""
        if not number or self.prefix is None:
            return number
        found = self.prefix.match(number)
        if not found:
            return number
        if self.transform:
            return None
        if self.viable(number) and not self.viable(number[found.end() :]):
            return number
        return number[found.end() :]

    def length_ok(self, number: str) -> bool:
        """phonenumbers' ``_test_number_length`` is not TOO_SHORT, IS_POSSIBLE_LOCAL_ONLY or
        INVALID_LENGTH."""
        size = len(number)
        if size in self.local_lengths or not self.lengths:
            return False
        if self.lengths[0] == size:
            return True
        if self.lengths[0] > size:
            return False
        return self.lengths[-1] < size or size in self.lengths[1:]  # TOO_LONG counts as kept

    def too_long(self, number: str) -> bool:
        size = len(number)
        return (
            bool(self.lengths)
            and size not in self.local_lengths
            and self.lengths[0] < size
            and self.lengths[-1] < size
        )


@cache
def _region(code: str) -> _Region | None:
    meta = phonenumbers.PhoneMetadata.metadata_for_region(code, None)
    if meta is None or not meta.general_desc or not meta.general_desc.possible_length:
        return None
    return _Region(code)


_SIMPLE_PHONE = re.compile(r"\+?[0-9]{4,20}")


def _country_code(digits: str) -> tuple[int, str] | None:
    if not digits or digits[0] == "0":
        return None
    for size in (1, 2, 3):
        code = int(digits[:size])
        if code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            return code, digits[size:]
    return None


def _fast_phone(raw: str, region: str) -> tuple[str, str] | None:
    """E.164 and national significant number of a valid phone written as digits with the
    usual separators and at most a leading ``+``, following phonenumbers' own rules step by step from its metadata, or
    ``None``: then the full parse decides (every number it cannot vouch for, invalid
    numbers included). tests/test_normalize.py checks it against phonenumbers."""
    digits = _PHONE_SEPARATORS.sub("", raw)
    if len(raw) > 250 or not _SIMPLE_PHONE.fullmatch(digits) or not digits[-1].isdigit():
        return None
    home = _region(region)
    if digits[0] == "+":
        international: str | None = digits[1:]
    elif home is None:
        return None
    else:
        international = None
        idd = home.idd.match(digits) if home.idd is not None else None
        if idd:
            rest = digits[idd.end() :]
            if not rest:
                return None
            if rest[0] != "0":
                international = rest
    if international is not None:
        if len(international) <= 2:
            return None
        found = _country_code(international)
        if found is None:
            return None
        code, national = found
    else:
        assert home is not None
        code, national = home.country_code, digits
        meta: _Region | None = home  # the number is read in the default region
        prefix = str(code)
        if digits.startswith(prefix):
            shorter = home.strip_national_prefix(digits[len(prefix) :])
            if shorter is None:
                return None
            if (not home.viable(digits) and home.viable(shorter)) or home.too_long(digits):
                national, meta = shorter, None  # written with the country code, no "+"
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE[code]
    if regions[0] == "001":
        return None
    if international is not None or meta is None:
        meta = _region(regions[0])  # the main region of the country code, as phonenumbers
    if meta is None or len(national) < 2:
        return None
    stripped = meta.strip_national_prefix(national)
    if stripped is None:
        return None
    if meta.length_ok(stripped):
        national = stripped
    if not 2 <= len(national) <= 17:
        return None
    chosen = regions[0] if len(regions) == 1 else None
    if chosen is None:
        for code_of in regions:
            candidate = _region(code_of)
            if candidate is None:
                continue
            if candidate.leading is not None:
                if candidate.leading.match(national):
                    chosen = code_of
                    break
            elif candidate.valid(national):
                chosen = code_of
                break
    target = _region(chosen) if chosen is not None else None
    if target is None or target.country_code != code or not target.valid(national):
        return None
    return f"+{code}{national}", national


@lru_cache(maxsize=200_000)
def _parse_phone(raw: str, region: str) -> str:
    fast = _fast_cn_mobile(raw, region)
    if fast is not None:
        return fast
    found = _fast_phone(raw, region)
    if found is not None:
        return found[0]
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidInput(f"'{raw}' is not a phone number ({exc})", field="phone") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidInput(f"'{raw}' is not a valid phone number", field="phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_phone(raw: object, *, region: str = "CN", field: str = "phone") -> str | None:
    """E.164 form of a phone written in any common format (``138 0013 8000``, ``+86-138...``).

    ``region`` is the default country for numbers written without one. Raises
    ``InvalidInput`` for text that is not a valid number.
    """
    text = clean_text(raw)
    if text is None:
        return None
    try:
        return _parse_phone(text, region.upper())
    except InvalidInput as exc:
        raise InvalidInput(exc.message.split(": ", 1)[-1], field=field) from None


def try_normalize_phone(raw: object, *, region: str = "CN") -> str | None:
    """Like ``normalize_phone`` but returns ``None`` instead of raising."""
    try:
        return normalize_phone(raw, region=region)
    except InvalidInput:
        return None


# a conservative subset of RFC 5322's dot-atom: anything it accepts, email-validator accepts
# with the local part unchanged, so only the domain needs the full check (once per domain)
_SIMPLE_LOCAL = re.compile(r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*")


# a conservative subset of the host names email-validator accepts unchanged but for case:
# ASCII labels of letters, digits and inner hyphens (no "--", so no Punycode), a final label
# that ends with a letter, and none of the special-use names it refuses
_SIMPLE_DOMAIN = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9-]{0,62}[A-Za-z]"
)


@lru_cache(maxsize=50_000)
def _check_domain(domain: str) -> str | None:
    if len(domain) <= 200 and "--" not in domain and _SIMPLE_DOMAIN.fullmatch(domain):
        lower = domain.lower()
        last = lower.rpartition(".")[2]
        if not lower.startswith("-") and last[0] != "-" and last not in SPECIAL_USE_DOMAIN_NAMES:
            return lower
    try:
        result = validate_email(f"a@{domain}", check_deliverability=False)
    except EmailNotValidError:
        return None
    return result.normalized.rpartition("@")[2].lower()


@lru_cache(maxsize=200_000)
def _check_email(text: str) -> str:
    local, at, domain = text.rpartition("@")
    if at and len(text) <= 254 and len(local) <= 64 and _SIMPLE_LOCAL.fullmatch(local):
        checked = _check_domain(domain)
        if checked is not None:
            if local.lower() in CASE_INSENSITIVE_MAILBOX_NAMES:  # RFC 2142, as email-validator
                local = local.lower()
            return f"{local}@{checked}"
    try:
        result = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidInput(
            f"'{text}' is not a valid email address ({exc})", field="email"
        ) from None
    local, _, domain = result.normalized.rpartition("@")
    return f"{local}@{domain.lower()}"


def normalize_email(raw: object, *, field: str = "email") -> str | None:
    """Validated email with the domain lower-cased (the local part is kept as written)."""
    text = clean_text(raw)
    if text is None:
        return None
    try:
        return _check_email(text)
    except InvalidInput as exc:
        raise InvalidInput(exc.message.split(": ", 1)[-1], field=field) from None


_DATE_FORMATS = (
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%Y.%m.%d",
    "%Y年%m月%d日",
    "%Y%m%d",
    "%d/%m/%Y",
    "%d.%m.%Y",
    "%m/%d/%Y",
    "%d %B %Y",
    "%d %b %Y",
    "%B %d, %Y",
    "%b %d, %Y",
)


def parse_date(raw: object, *, field: str = "date") -> date | None:
    """A date from ISO, Chinese (``1990年5月3日``) or common English forms; ``None`` if empty.

    Ambiguous day/month forms are read day first (``03/05/1990`` is 3 May) unless the first
    number cannot be a day.
    """
    if raw is None:
        return None
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    text = clean_text(raw)
    if text is None:
        return None
    text = text.replace("号", "日")
    if text.endswith(("00:00:00", "00:00")):
        text = text.split(" ")[0].split("T")[0]
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise InvalidInput(f"'{text}' is not a date (use YYYY-MM-DD)", field=field)
