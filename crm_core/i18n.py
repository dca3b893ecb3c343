"""Message catalogues (gettext ``.po`` files read with Babel) for English and Simplified Chinese.

Each area keeps its own catalogue domain so that teams do not edit one file:
``crm_core/locale/zh/LC_MESSAGES/<domain>.po`` (for example ``panel``, ``reports``,
``automation``). English is the source language: a missing translation shows the English text.

    _ = translator("zh", "reports")
    _("Revenue by month")  # -> "月度收入"
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).parent / "locale"
LOCALES = ("en", "zh")
#: Babel locale names used for formatting dates, numbers and currency.
BABEL_LOCALES = {"en": "en_US", "zh": "zh_Hans_CN"}


@lru_cache(maxsize=64)
def _catalog(locale: str, domain: str) -> dict[str, str]:
    path = LOCALE_DIR / locale / "LC_MESSAGES" / f"{domain}.po"
    if not path.exists():
        return {}
    with path.open("rb") as fh:
        catalog = read_po(fh, locale=BABEL_LOCALES.get(locale, locale))
    return {
        str(m.id): str(m.string)
        for m in catalog
        if m.id and isinstance(m.id, str) and m.string and not m.fuzzy
    }


def normalize_locale(locale: str | None) -> str:
    """``zh``, ``zh_CN``, ``zh-Hans`` -> ``zh``; anything else -> ``en``."""
    return "zh" if (locale or "").lower().startswith("zh") else "en"


def translator(locale: str | None, domain: str) -> Callable[[str], str]:
    """A ``gettext``-style function for ``locale`` and ``domain``; it also formats ``{}``
    placeholders when called with keyword arguments."""
    messages = _catalog(normalize_locale(locale), domain)

    def gettext(message: str, **kwargs: object) -> str:
        text = messages.get(message, message)
        return text.format(**kwargs) if kwargs else text

    return gettext


def clear_cache() -> None:
    _catalog.cache_clear()
