"""Locale-aware display of dates, numbers and money (Babel), in the user's language."""

from __future__ import annotations

import os
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache

from babel import dates, numbers
from babel.dates import get_timezone

from crm_core.i18n import BABEL_LOCALES, normalize_locale


@lru_cache(maxsize=8)
def _zone(name: str):  # type: ignore[no-untyped-def]
    return get_timezone(name)


def timezone_name() -> str:
    """The zone times are shown in (``CRM_TIMEZONE``, default UTC)."""
    return os.environ.get("CRM_TIMEZONE", "UTC") or "UTC"


def _babel(locale: str) -> str:
    return BABEL_LOCALES[normalize_locale(locale)]


def fmt_datetime(value: datetime | None, locale: str) -> str:
    """``Mar 5, 2025, 2:30 PM`` / ``2025年3月5日 14:30``; empty for ``None``."""
    if value is None:
        return ""
    return dates.format_datetime(
        value, format="medium", tzinfo=_zone(timezone_name()), locale=_babel(locale)
    )


def fmt_date(value: date | datetime | None, locale: str) -> str:
    """A date in the locale's medium form; a datetime is first moved to the display zone."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.astimezone(_zone(timezone_name())).date()
    return dates.format_date(value, format="medium", locale=_babel(locale))


def fmt_number(value: int | float | Decimal | None, locale: str) -> str:
    if value is None:
        return ""
    return numbers.format_decimal(value, locale=_babel(locale))


def fmt_money(value: Decimal | int | float | None, currency: str, locale: str) -> str:
    """``CN¥1,234.50`` in English, ``¥1,234.50`` in Chinese."""
    if value is None:
        return ""
    return numbers.format_currency(value, currency, locale=_babel(locale))
