"""Pure, deterministic normalisers shared by the services, imports and de-duplication.

No database access here: every function maps a value to its canonical form or raises
``InvalidInput`` naming the field and the problem.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime
from functools import lru_cache

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pypinyin import Style, lazy_pinyin

from crm_core.errors import InvalidInput

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_SPACES = re.compile(r"\s+")


def clean_text(value: object) -> str | None:
    """Trim, NFKC-normalise and collapse spaces; empty strings become ``None``."""
    if value is None:
        return None
    if isinstance(value, float) and value != value:  # NaN from pandas
        return None
    text = unicodedata.normalize("NFKC", str(value))
    text = _SPACES.sub(" ", text).strip()
    return text or None


def has_cjk(text: str | None) -> bool:
    """True when the text holds Chinese characters."""
    return bool(text and _CJK.search(text))


@lru_cache(maxsize=200_000)
def pinyin_syllables(text: str) -> tuple[str, ...]:
    """Pinyin syllables (no tones, lower case) of the Chinese characters in ``text``."""
    return tuple(
        s.lower() for s in lazy_pinyin(text, style=Style.NORMAL, errors="ignore") if s.strip()
    )


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


@lru_cache(maxsize=200_000)
def _parse_phone(raw: str, region: str) -> str:
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


@lru_cache(maxsize=200_000)
def _check_email(text: str) -> str:
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
