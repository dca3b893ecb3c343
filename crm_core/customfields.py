"""Admin-defined custom fields: definitions and the validation of their values."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core import audit
from crm_core.access import Actor, require
from crm_core.errors import ConflictError, InvalidInput, NotFound
from crm_core.models import CustomFieldDefinition, FieldType
from crm_core.normalize import clean_text, parse_date

_KEY = re.compile(r"^[a-z][a-z0-9_]{0,59}$")
_TRUE = {"true", "yes", "y", "1", "是", "对", "on"}
_FALSE = {"false", "no", "n", "0", "否", "不", "off"}


def list_definitions(
    session: Session, *, entity: str = "customer", include_inactive: bool = False
) -> list[CustomFieldDefinition]:
    stmt = select(CustomFieldDefinition).where(CustomFieldDefinition.entity == entity)
    if not include_inactive:
        stmt = stmt.where(CustomFieldDefinition.active.is_(True))
    return list(
        session.scalars(stmt.order_by(CustomFieldDefinition.position, CustomFieldDefinition.id))
    )


def define_field(
    session: Session,
    *,
    actor: Actor,
    key: str,
    label_en: str,
    field_type: str,
    label_zh: str | None = None,
    choices: list[str] | None = None,
    required: bool = False,
    help_text: str | None = None,
    entity: str = "customer",
) -> CustomFieldDefinition:
    """Add a custom field (admins). ``key`` is lower-case ``snake_case``."""
    require(actor, "settings.manage")
    if not _KEY.match(key or ""):
        raise InvalidInput(
            "must be lower-case letters, digits and _ (start with a letter)", field="key"
        )
    if field_type not in {t.value for t in FieldType}:
        raise InvalidInput(f"unknown type '{field_type}'", field="field_type")
    clean_choices = [c for c in (clean_text(c) for c in (choices or [])) if c]
    if field_type == FieldType.CHOICE and not clean_choices:
        raise InvalidInput("a choice field needs at least one choice", field="choices")
    if not clean_text(label_en):
        raise InvalidInput("is required", field="label_en")
    exists = session.scalar(
        select(CustomFieldDefinition.id).where(
            CustomFieldDefinition.entity == entity, CustomFieldDefinition.key == key
        )
    )
    if exists:
        raise ConflictError(f"a field '{key}' exists already")
    position = len(list_definitions(session, entity=entity, include_inactive=True))
    definition = CustomFieldDefinition(
        entity=entity,
        key=key,
        label_en=clean_text(label_en) or key,
        label_zh=clean_text(label_zh),
        field_type=field_type,
        choices=clean_choices,
        required=required,
        help_text=help_text,
        position=position,
        active=True,
    )
    session.add(definition)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="custom_field.create",
        entity_type="custom_field",
        entity_id=definition.id,
        changes={
            "key": [None, key],
            "field_type": [None, field_type],
            "choices": [None, clean_choices],
        },
    )
    return definition


def update_field(
    session: Session,
    *,
    actor: Actor,
    field_id: int,
    label_en: str | None = None,
    label_zh: str | None = None,
    choices: list[str] | None = None,
    required: bool | None = None,
    active: bool | None = None,
    help_text: str | None = None,
) -> CustomFieldDefinition:
    """Change a definition's labels, choices, required flag or retire it (values are kept)."""
    require(actor, "settings.manage")
    definition = session.get(CustomFieldDefinition, field_id)
    if definition is None:
        raise NotFound(f"custom field {field_id} does not exist")
    before = {
        "label_en": definition.label_en,
        "label_zh": definition.label_zh,
        "choices": list(definition.choices),
        "required": definition.required,
        "active": definition.active,
        "help_text": definition.help_text,
    }
    if label_en is not None:
        definition.label_en = clean_text(label_en) or definition.label_en
    if label_zh is not None:
        definition.label_zh = clean_text(label_zh)
    if choices is not None:
        definition.choices = [c for c in (clean_text(c) for c in choices) if c]
    if required is not None:
        definition.required = required
    if active is not None:
        definition.active = active
    if help_text is not None:
        definition.help_text = help_text
    after = {
        "label_en": definition.label_en,
        "label_zh": definition.label_zh,
        "choices": list(definition.choices),
        "required": definition.required,
        "active": definition.active,
        "help_text": definition.help_text,
    }
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="custom_field.update",
        entity_type="custom_field",
        entity_id=definition.id,
        changes=audit.diff(before, after),
    )
    return definition


def coerce_value(definition: CustomFieldDefinition, raw: Any) -> Any:
    """The stored (JSON) form of one value, or ``InvalidInput`` naming the field."""
    field = f"custom.{definition.key}"
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    kind = definition.field_type
    if kind == FieldType.TEXT:
        text = clean_text(raw)
        if text and len(text) > 2000:
            raise InvalidInput("is longer than 2000 characters", field=field)
        return text
    if kind == FieldType.NUMBER:
        if isinstance(raw, bool):
            raise InvalidInput(f"'{raw}' is not a number", field=field)
        try:
            number = Decimal(str(raw).replace(",", "").strip())
        except InvalidOperation:
            raise InvalidInput(f"'{raw}' is not a number", field=field) from None
        if not number.is_finite():
            raise InvalidInput(f"'{raw}' is not a number", field=field)
        return int(number) if number == number.to_integral_value() else float(number)
    if kind == FieldType.DATE:
        value = raw if isinstance(raw, date) else parse_date(raw, field=field)
        return value.isoformat() if value else None
    if kind == FieldType.CHOICE:
        text = clean_text(raw) or ""
        for choice in definition.choices:
            if choice.casefold() == text.casefold():
                return choice
        raise InvalidInput(
            f"'{text}' is not one of the choices ({', '.join(definition.choices)})", field=field
        )
    if kind == FieldType.YES_NO:
        if isinstance(raw, bool):
            return raw
        text = (clean_text(raw) or "").casefold()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise InvalidInput(f"'{raw}' is not yes or no", field=field)
    raise InvalidInput(f"unknown field type '{kind}'", field=field)


def validate_values(
    definitions: list[CustomFieldDefinition],
    values: Mapping[str, Any],
    *,
    existing: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Validate ``values`` against active definitions and merge them into ``existing``.

    Unknown keys and missing required values raise ``InvalidInput`` naming the field; values of
    retired fields already stored are kept untouched.
    """
    by_key = {d.key: d for d in definitions}
    result = dict(existing or {})
    errors: dict[str, str] = {}
    for key, raw in values.items():
        definition = by_key.get(key)
        if definition is None or not definition.active:
            errors[f"custom.{key}"] = "is not a defined custom field"
            continue
        try:
            value = coerce_value(definition, raw)
        except InvalidInput as exc:
            errors[exc.field or f"custom.{key}"] = exc.message.split(": ", 1)[-1]
            continue
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    for definition in definitions:
        if definition.active and definition.required and result.get(definition.key) is None:
            errors.setdefault(f"custom.{definition.key}", "is required")
    if errors:
        first = next(iter(errors))
        raise InvalidInput(
            "; ".join(f"{k}: {v}" for k, v in errors.items()), field=first, errors=errors
        )
    return result
