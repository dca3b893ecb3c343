"""Cleaning on the way in: from a file row to the input of the customer validator.

The rules of the customer record stay in ``crm_core.customers`` (``_Validator``) and
``crm_core.normalize``; this module only shapes spreadsheet text for them: trims, treats empty
cells as missing (an import never clears a value with an empty cell), repairs numbers Excel
mangled (``1.38001E+10``, ``13800138000.0``), reads more date spellings, and maps Chinese and
odd-case choice values (``线索``, ``VIP``, ``公司``) to the stored ones.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from crm_core.errors import InvalidInput
from crm_core.normalize import clean_text, normalize_email, parse_date, try_normalize_phone

_SCI = re.compile(r"^[+-]?\d+(\.\d+)?[eE]\+?\d+$")
_FLOAT_INT = re.compile(r"^\+?\d{5,}\.0+$")
_SERIAL = re.compile(r"^\d{5}(\.0+)?$")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z", re.ASCII)
_EXTRA_DATES = (
    "%Y-%m-%d %H:%M:%S",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%d-%b-%Y",
    "%d-%B-%Y",
    "%b %d %Y",
    "%Y年%m月",
    "%m/%d/%y",
)
_EXCEL_EPOCH = date(1899, 12, 30)

KIND_ALIASES = {
    "个人": "person",
    "人": "person",
    "公司": "company",
    "企业": "company",
    "单位": "company",
}
STAGE_ALIASES = {
    "线索": "lead",
    "潜在客户": "prospect",
    "意向客户": "prospect",
    "潜客": "prospect",
    "客户": "customer",
    "成交客户": "customer",
    "正式客户": "customer",
    "重要客户": "vip",
    "大客户": "vip",
    "沉睡": "dormant",
    "沉睡客户": "dormant",
    "休眠": "dormant",
    "流失": "churned",
    "流失客户": "churned",
    "已流失": "churned",
}
TIER_ALIASES = {"a类": "A", "b类": "B", "c类": "C", "a级": "A", "b级": "B", "c级": "C"}
_LIST_SPLIT = re.compile(r"[;；,，、|/\n]")
_PHONE_SPLIT = re.compile(r"[;；,，、|/\n]")


def fix_number_text(text: str) -> str:
    """Undo Excel's number formatting of ids and phones: ``1.38001E+10`` -> ``13800100000``,
    ``13800138000.0`` -> ``13800138000``. Other text is returned unchanged."""
    if _SCI.match(text):
        try:
            value = Decimal(text)
        except InvalidOperation:
            return text
        if value == value.to_integral_value():
            return str(int(value))
        return text
    if _FLOAT_INT.match(text):
        return text.split(".")[0]
    return text


def iso_date(text: str) -> date | None:
    """The date of ``YYYY-MM-DD`` text as ``parse_date``'s first format reads it, without
    ``strptime`` (most files write ISO); ``None`` for any other text."""
    if _ISO_DATE.match(text):
        try:
            return date(int(text[:4]), int(text[5:7]), int(text[8:10]))
        except ValueError:
            return None
    return None


def clean_date(text: str) -> str:
    """An ISO date from what ``parse_date`` reads plus Excel serial numbers, ``03-May-1990``
    and date-times; text that is no date is returned unchanged for the validator to refuse."""
    iso = iso_date(text)
    if iso is not None:
        return iso.isoformat()
    try:
        parsed = parse_date(text)
        if parsed is not None:
            return parsed.isoformat()
    except InvalidInput:
        pass
    if _SERIAL.match(text):
        serial = int(float(text))
        if 1 <= serial < 80_000:
            return (_EXCEL_EPOCH + timedelta(days=serial)).isoformat()
    for fmt in _EXTRA_DATES:
        try:
            return datetime.strptime(text, fmt).date().isoformat()
        except ValueError:
            continue
    return text


def _choice(text: str, aliases: Mapping[str, str]) -> str:
    return aliases.get(text.casefold(), aliases.get(text, text))


def split_list(text: str) -> list[str]:
    return [part.strip() for part in _LIST_SPLIT.split(text) if part.strip()]


def row_values(
    values: Sequence[str], columns: Sequence[tuple[int, str]]
) -> dict[str, str | list[str]]:
    """``{target: text}`` of one row (list targets collect every column's parts)."""
    out: dict[str, Any] = {}
    width = len(values)
    for index, target in columns:
        if index >= width or not values[index]:
            continue  # an empty cell is missing (as ``clean_text`` would say, only sooner)
        text = clean_text(values[index])
        if text is None:
            continue
        if target in ("phone", "email"):
            parts = [p.strip() for p in _PHONE_SPLIT.split(text) if p.strip()]
            out.setdefault(target, []).extend(parts)
        elif target == "tags":
            out.setdefault(target, []).extend(split_list(text))
        else:
            out[target] = text
    return out


def to_customer_data(
    raw: Mapping[str, Any], *, owners: Mapping[str, int] | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """The ``create_customer``/``update_customer`` input of one cleaned row, and the errors
    found while shaping it (``{field: reason}``; the validator finds the rest)."""
    data: dict[str, Any] = {}
    errors: dict[str, str] = {}
    custom: dict[str, Any] = {}
    for target, value in raw.items():
        if target == "phone":
            data["phones"] = [fix_number_text(v) for v in value]
        elif target == "email":
            data["emails"] = list(value)
        elif target == "tags":
            data["tags"] = list(value)
        elif target == "birthday":
            data["birthday"] = clean_date(value)
        elif target == "kind":
            data["kind"] = _choice(value, KIND_ALIASES).lower()
        elif target == "lifecycle_stage":
            data["lifecycle_stage"] = _choice(value, STAGE_ALIASES)
        elif target == "value_tier":
            data["value_tier"] = _choice(value, TIER_ALIASES)
        elif target == "external_id":
            data["external_id"] = fix_number_text(value)
        elif target == "postcode":
            data["postcode"] = fix_number_text(value)
        elif target == "owner":
            owner_id = (owners or {}).get(value.casefold())
            if owner_id is None and value.isdigit():
                owner_id = int(value)
            if owner_id is None:
                errors["owner_id"] = f"'{value}' is not a user name"
            else:
                data["owner_id"] = owner_id
        elif target == "id":
            continue  # matches a record, never written
        elif target.startswith("custom."):
            key = target[7:]
            custom[key] = fix_number_text(value)
        else:
            data[target] = value
    if custom:
        data["custom"] = custom
    return data, errors


def match_value(
    key: str, data: Mapping[str, Any], *, region: str, raw: Mapping[str, Any] | None = None
) -> str | None:
    """The normalised value a row is matched by (CRM id, external id, first e-mail or first
    phone); ``None`` when the row has none or it is invalid (the validator reports why)."""
    if key == "id":
        text = fix_number_text(str((raw or {}).get("id") or "")).strip()
        return text if text.isdigit() else None
    if key == "email":
        emails = data.get("emails") or []
        if not emails:
            return None
        try:
            return normalize_email(emails[0])
        except InvalidInput:
            return None
    if key == "phone":
        phones = data.get("phones") or []
        return try_normalize_phone(phones[0], region=region) if phones else None
    if key == "external_id":
        return clean_text(data.get("external_id"))
    raise InvalidInput(f"cannot match customers by '{key}'", field="match_key")
