"""The field-spec abstraction every record form renders from, built-in or custom.

A ``FieldSpec`` describes one field (key, labels, type, choices, required, help); the panel's
form renderer and the layout service only ever see specs, whether they come from the customer
profile, the customer's custom fields or a custom module. ``coerce`` is the one validation of
a custom module's value; ``index_rows`` is how a value is written to the typed value index.
Pure functions, no database access.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from crm_core.errors import InvalidInput
from crm_core.normalize import clean_text, normalize_email, normalize_phone, parse_date


class ModuleFieldType(enum.StrEnum):
    TEXT = "text"
    LONG_TEXT = "long_text"
    NUMBER = "number"
    MONEY = "money"
    DATE = "date"
    DATETIME = "datetime"
    CHOICE = "choice"
    MULTI_CHOICE = "multi_choice"
    YES_NO = "yes_no"
    EMAIL = "email"
    PHONE = "phone"
    CUSTOMER = "customer"
    USER = "user"
    MODULE = "module"


T = ModuleFieldType
#: Types whose values are ids of other records.
LINK_TYPES = frozenset({T.CUSTOMER, T.USER, T.MODULE})
#: Types indexed as numbers (``num_value``); the rest (but long text) as text.
NUMERIC_TYPES = frozenset({T.NUMBER, T.MONEY, T.YES_NO, *LINK_TYPES})
#: Types that may be marked unique.
UNIQUE_TYPES = frozenset({T.TEXT, T.NUMBER, T.MONEY, T.DATE, T.DATETIME, T.EMAIL, T.PHONE})
#: Types whose text goes into the quick-search text.
SEARCHED_TYPES = frozenset({T.TEXT, T.LONG_TEXT, T.EMAIL, T.PHONE, T.CHOICE, T.MULTI_CHOICE})
#: Types a report may group by.
GROUPABLE_TYPES = frozenset(
    {T.TEXT, T.CHOICE, T.MULTI_CHOICE, T.YES_NO, T.DATE, T.DATETIME, *LINK_TYPES}
)
DATE_TYPES = frozenset({T.DATE, T.DATETIME})
MEASURE_TYPES = frozenset({T.NUMBER, T.MONEY})

_TRUE = {"true", "yes", "y", "1", "是", "对", "on"}
_FALSE = {"false", "no", "n", "0", "否", "不", "off"}
TEXT_MAX = 2000
LONG_TEXT_MAX = 20_000
INDEX_TEXT_MAX = 255


@dataclass(frozen=True)
class FieldSpec:
    """One field of a record form. ``key`` of a customer's custom field is ``custom.<key>``."""

    key: str
    label_en: str
    field_type: str
    label_zh: str | None = None
    choices: tuple[str, ...] = ()
    required: bool = False
    unique: bool = False
    help_text: str | None = None
    active: bool = True
    link_module: str | None = None
    readonly: bool = False
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def label(self, locale: str | None) -> str:
        """The label in ``locale`` (English when there is no Chinese one)."""
        if (locale or "").startswith("zh") and self.label_zh:
            return self.label_zh
        return self.label_en

    def with_(self, **changes: Any) -> FieldSpec:
        return replace(self, **changes)


def _number(raw: Any, name: str) -> Decimal:
    if isinstance(raw, bool):
        raise InvalidInput(f"'{raw}' is not a number", field=name)
    try:
        number = Decimal(str(raw).replace(",", "").strip())
    except InvalidOperation:
        raise InvalidInput(f"'{raw}' is not a number", field=name) from None
    if not number.is_finite():
        raise InvalidInput(f"'{raw}' is not a number", field=name)
    return number


def _choice(spec: FieldSpec, raw: Any) -> str:
    text = clean_text(raw) or ""
    for choice in spec.choices:
        if choice.casefold() == text.casefold():
            return choice
    raise InvalidInput(
        f"'{text}' is not one of the choices ({', '.join(spec.choices)})", field=spec.key
    )


def _datetime(raw: Any, name: str) -> str:
    if isinstance(raw, datetime):
        value = raw
    elif isinstance(raw, date):
        value = datetime(raw.year, raw.month, raw.day)
    else:
        text = (clean_text(raw) or "").replace("Z", "+00:00")
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise InvalidInput(
                f"'{text}' is not a date and time (use YYYY-MM-DD HH:MM)", field=name
            ) from None
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _empty(raw: Any) -> bool:
    if raw is None:
        return True
    if isinstance(raw, float) and raw != raw:  # NaN from pandas
        return True
    if isinstance(raw, str) and not raw.strip():
        return True
    return isinstance(raw, list | tuple | set) and not raw


def coerce(spec: FieldSpec, raw: Any) -> Any:
    """The stored (JSON) form of one value, or ``InvalidInput`` naming the field.

    Links are checked for existence and access by the records service (this is pure).
    """
    name = spec.key
    if _empty(raw):
        return None
    kind = spec.field_type
    if kind in (T.TEXT, T.LONG_TEXT):
        limit = TEXT_MAX if kind == T.TEXT else LONG_TEXT_MAX
        text = clean_text(raw) if kind == T.TEXT else str(raw).strip()
        if text and len(text) > limit:
            raise InvalidInput(f"is longer than {limit} characters", field=name)
        return text
    if kind == T.NUMBER:
        number = _number(raw, name)
        return int(number) if number == number.to_integral_value() else float(number)
    if kind == T.MONEY:
        number = _number(raw, name)
        if abs(number) >= Decimal("1e12"):
            raise InvalidInput("is too large an amount", field=name)
        return str(number.quantize(Decimal("0.01")))
    if kind == T.DATE:
        value = parse_date(raw, field=name)
        return value.isoformat() if value else None
    if kind == T.DATETIME:
        return _datetime(raw, name)
    if kind == T.CHOICE:
        if isinstance(raw, list | tuple):
            if len(raw) != 1:
                raise InvalidInput("takes one choice only", field=name)
            raw = raw[0]
        return _choice(spec, raw)
    if kind == T.MULTI_CHOICE:
        items = (
            raw if isinstance(raw, list | tuple | set) else str(raw).replace(";", ",").split(",")
        )
        picked = {_choice(spec, item) for item in items if clean_text(item)}
        return [c for c in spec.choices if c in picked] or None
    if kind == T.YES_NO:
        if isinstance(raw, bool):
            return raw
        text = (clean_text(raw) or "").casefold()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise InvalidInput(f"'{raw}' is not yes or no", field=name)
    if kind == T.EMAIL:
        return normalize_email(raw, field=name)
    if kind == T.PHONE:
        return normalize_phone(raw, field=name)
    if kind in LINK_TYPES:
        if isinstance(raw, bool):
            raise InvalidInput(f"'{raw}' is not a record number", field=name)
        try:
            record_id = int(str(raw).strip().lstrip("#"))
        except ValueError:
            raise InvalidInput(f"'{raw}' is not a record number", field=name) from None
        if record_id <= 0:
            raise InvalidInput(f"'{raw}' is not a record number", field=name)
        return record_id
    raise InvalidInput(f"unknown field type '{kind}'", field=name)


def index_rows(spec: FieldSpec, value: Any) -> list[tuple[str | None, float | None]]:
    """``(text_value, num_value)`` rows of the typed value index for one stored value."""
    if value is None or spec.field_type == T.LONG_TEXT:
        return []
    if spec.field_type == T.MULTI_CHOICE:
        return [(str(v)[:INDEX_TEXT_MAX], None) for v in value]
    if spec.field_type == T.YES_NO:
        return [(None, 1.0 if value else 0.0)]
    if spec.field_type in NUMERIC_TYPES:
        return [(None, float(value))]
    return [(str(value)[:INDEX_TEXT_MAX], None)]


def unique_key(spec: FieldSpec, value: Any) -> str:
    """The form of a value compared for uniqueness (text case-insensitively)."""
    if spec.field_type in (T.NUMBER, T.MONEY):
        return str(Decimal(str(value)).normalize())
    return str(value).casefold()[:INDEX_TEXT_MAX]


def display(spec: FieldSpec, value: Any) -> str:
    """A value as plain text (lists joined, yes/no spelled out)."""
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
