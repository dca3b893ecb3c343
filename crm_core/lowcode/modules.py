"""Custom modules: record types an admin defines (names in English and Chinese, typed fields,
required and unique flags, a display name field) and their later changes.

Changes keep data: adding a field, renaming it (its labels; the key stays), retiring it (hidden,
values kept), restoring it, adding or renaming choices. A change that existing data would break
(making a field required while records lack it, unique while records share a value, removing
a choice in use, a type the stored values do not fit) is refused with ``SchemaChangeRefused``,
which carries the number of affected records. See ``crm_core.models.lowcode`` for storage.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from crm_core import access, audit
from crm_core.access import Actor
from crm_core.errors import ConflictError, InvalidInput, NotFound
from crm_core.lowcode import permissions as perms
from crm_core.lowcode.fieldspec import (
    LINK_TYPES,
    UNIQUE_TYPES,
    FieldSpec,
    ModuleFieldType,
    coerce,
    index_rows,
    unique_key,
)
from crm_core.models import (
    CustomModule,
    ModuleField,
    ModuleRecord,
    ModuleUniqueValue,
    ModuleValue,
)
from crm_core.normalize import clean_text

_KEY = re.compile(r"^[a-z][a-z0-9_]{0,59}$")
#: Keys a module field may not take (they name record columns in lists and exports).
RESERVED = frozenset({"id", "display_name", "customer_id", "archived_at", "version", "module"})


class SchemaChangeRefused(InvalidInput):
    """A module change that existing records would not survive; ``affected`` counts them."""

    status = 409

    def __init__(self, message: str, *, field: str, affected: int) -> None:
        super().__init__(message, field=field)
        self.affected = affected


def _key(value: str, field: str) -> str:
    if not _KEY.match(value or ""):
        raise InvalidInput(
            "must be lower-case letters, digits and _ (start with a letter)", field=field
        )
    return value


def get_module(session: Session, key: str) -> CustomModule:
    """The module with ``key`` or ``NotFound``."""
    module = session.scalar(select(CustomModule).where(CustomModule.key == key))
    if module is None or not module.active:
        raise NotFound(f"module '{key}' does not exist")
    return module


def list_modules(session: Session, *, actor: Actor) -> list[CustomModule]:
    """Active modules whose records the actor's role may read."""
    modules = session.scalars(
        select(CustomModule).where(CustomModule.active.is_(True)).order_by(CustomModule.name_en)
    )
    return [m for m in modules if perms.can(actor, m, "read")]


def module_fields(
    session: Session, module: CustomModule, *, include_retired: bool = False
) -> list[ModuleField]:
    stmt = select(ModuleField).where(ModuleField.module_id == module.id)
    if not include_retired:
        stmt = stmt.where(ModuleField.active.is_(True))
    return list(session.scalars(stmt.order_by(ModuleField.position, ModuleField.id)))


def spec_of(f: ModuleField) -> FieldSpec:
    """The ``FieldSpec`` of a module field."""
    return FieldSpec(
        key=f.key,
        label_en=f.label_en,
        label_zh=f.label_zh,
        field_type=f.field_type,
        choices=tuple(f.choices or ()),
        required=f.required,
        unique=f.unique,
        help_text=f.help_text,
        active=f.active,
        link_module=f.link_module,
    )


def field_specs(
    session: Session, module: CustomModule, *, include_retired: bool = False
) -> list[FieldSpec]:
    """The specs of a module's fields in form order."""
    return [spec_of(f) for f in module_fields(session, module, include_retired=include_retired)]


def _field(session: Session, module: CustomModule, key: str) -> ModuleField:
    found = session.scalar(
        select(ModuleField).where(ModuleField.module_id == module.id, ModuleField.key == key)
    )
    if found is None:
        raise NotFound(f"module '{module.key}' has no field '{key}'")
    return found


def _field_snapshot(f: ModuleField) -> dict[str, Any]:
    return {
        "key": f.key,
        "label_en": f.label_en,
        "label_zh": f.label_zh,
        "field_type": f.field_type,
        "choices": list(f.choices or []),
        "required": f.required,
        "unique": f.unique,
        "active": f.active,
        "help_text": f.help_text,
        "link_module": f.link_module,
    }


def _module_snapshot(m: CustomModule) -> dict[str, Any]:
    return {
        "key": m.key,
        "name_en": m.name_en,
        "name_zh": m.name_zh,
        "display_field": m.display_field,
        "permissions": m.permissions,
    }


def _records_with_values(session: Session, module: CustomModule, key: str) -> list[ModuleRecord]:
    stmt = select(ModuleRecord).where(ModuleRecord.module_id == module.id)
    return [r for r in session.scalars(stmt) if (r.data or {}).get(key) is not None]


def _count_records(session: Session, module: CustomModule) -> int:
    return int(session.scalar(select(func.count()).where(ModuleRecord.module_id == module.id)) or 0)


def _validate_field(
    session: Session,
    *,
    field_type: str,
    choices: list[str],
    unique: bool,
    link_module: str | None,
) -> None:
    if field_type not in {t.value for t in ModuleFieldType}:
        raise InvalidInput(f"unknown type '{field_type}'", field="field_type")
    if field_type in ("choice", "multi_choice") and not choices:
        raise InvalidInput("a choice field needs at least one choice", field="choices")
    if len(set(c.casefold() for c in choices)) != len(choices):
        raise InvalidInput("choices must differ", field="choices")
    if unique and field_type not in UNIQUE_TYPES:
        raise InvalidInput(f"a {field_type} field cannot be unique", field="unique")
    if field_type == "module":
        if not link_module:
            raise InvalidInput("name the module this field links to", field="link_module")
        get_module(session, link_module)


def _clean_choices(choices: Iterable[Any] | None) -> list[str]:
    return [c for c in (clean_text(c) for c in (choices or [])) if c]


def define_module(
    session: Session,
    *,
    actor: Actor,
    key: str,
    name_en: str,
    name_zh: str | None = None,
    fields: Iterable[Mapping[str, Any]] = (),
    display_field: str | None = None,
    permissions: Mapping[str, Any] | None = None,
) -> CustomModule:
    """Define a new record type (admins). ``fields`` are keyword sets of ``add_field``."""
    access.require(actor, "settings.manage")
    _key(key, "key")
    if not clean_text(name_en):
        raise InvalidInput("is required", field="name_en")
    if session.scalar(select(CustomModule.id).where(CustomModule.key == key)):
        raise ConflictError(f"a module '{key}' exists already")
    module = CustomModule(
        key=key,
        name_en=clean_text(name_en) or key,
        name_zh=clean_text(name_zh),
        permissions=perms.clean_permissions(permissions),
        active=True,
    )
    session.add(module)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="module.create",
        entity_type="custom_module",
        entity_id=module.id,
        changes=audit.diff({}, _module_snapshot(module)),
    )
    for spec in fields:
        add_field(session, actor=actor, module_key=key, **dict(spec))
    keys = [f.key for f in module_fields(session, module)]
    if display_field is None and keys:
        display_field = keys[0]
    if display_field is not None:
        update_module(session, actor=actor, module_key=key, display_field=display_field)
    return module


def update_module(
    session: Session,
    *,
    actor: Actor,
    module_key: str,
    name_en: str | None = None,
    name_zh: str | None = None,
    display_field: str | None = None,
    permissions: Mapping[str, Any] | None = None,
) -> CustomModule:
    """Rename a module, pick its display name field or change its role permissions."""
    access.require(actor, "settings.manage")
    module = get_module(session, module_key)
    before = _module_snapshot(module)
    if name_en is not None:
        module.name_en = clean_text(name_en) or module.name_en
    if name_zh is not None:
        module.name_zh = clean_text(name_zh)
    if display_field is not None:
        f = _field(session, module, display_field)
        if f.field_type in ("long_text", "multi_choice") or not f.active:
            raise InvalidInput("pick an active short field", field="display_field")
        if display_field != module.display_field:
            module.display_field = display_field
            from crm_core.lowcode.records import refresh_display_names

            refresh_display_names(session, module)
    if permissions is not None:
        module.permissions = perms.clean_permissions(permissions)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="module.update",
        entity_type="custom_module",
        entity_id=module.id,
        changes=audit.diff(before, _module_snapshot(module)),
    )
    return module


def add_field(
    session: Session,
    *,
    actor: Actor,
    module_key: str,
    key: str,
    label_en: str,
    field_type: str,
    label_zh: str | None = None,
    choices: list[str] | None = None,
    required: bool = False,
    unique: bool = False,
    help_text: str | None = None,
    link_module: str | None = None,
) -> ModuleField:
    """Add a field; a required one is refused while records exist (they would lack it)."""
    access.require(actor, "settings.manage")
    module = get_module(session, module_key)
    _key(key, "key")
    if key in RESERVED:
        raise InvalidInput(f"'{key}' is a reserved name", field="key")
    if not clean_text(label_en):
        raise InvalidInput("is required", field="label_en")
    clean = _clean_choices(choices)
    _validate_field(
        session, field_type=field_type, choices=clean, unique=unique, link_module=link_module
    )
    if session.scalar(
        select(ModuleField.id).where(ModuleField.module_id == module.id, ModuleField.key == key)
    ):
        raise ConflictError(f"a field '{key}' exists already (a retired one can be restored)")
    if required:
        lacking = _count_records(session, module)
        if lacking:
            raise SchemaChangeRefused(
                f"{lacking} records have no value for the new field; add it as optional, "
                "fill it, then make it required",
                field="required",
                affected=lacking,
            )
    position = len(module_fields(session, module, include_retired=True))
    f = ModuleField(
        module_id=module.id,
        key=key,
        label_en=clean_text(label_en) or key,
        label_zh=clean_text(label_zh),
        field_type=field_type,
        choices=clean,
        required=required,
        unique=unique,
        active=True,
        position=position,
        help_text=help_text,
        link_module=link_module if field_type == "module" else None,
    )
    session.add(f)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="module.field_add",
        entity_type="custom_module",
        entity_id=module.id,
        changes=audit.diff({}, _field_snapshot(f)),
        detail=key,
    )
    return f


def _reindex_field(session: Session, module: CustomModule, spec: FieldSpec) -> None:
    """Rewrite a field's typed-index and unique rows from the records' stored values."""
    session.execute(
        delete(ModuleValue).where(
            ModuleValue.module_id == module.id, ModuleValue.field_key == spec.key
        )
    )
    session.execute(
        delete(ModuleUniqueValue).where(
            ModuleUniqueValue.module_id == module.id, ModuleUniqueValue.field_key == spec.key
        )
    )
    for record in _records_with_values(session, module, spec.key):
        value = record.data[spec.key]
        for text_value, num_value in index_rows(spec, value):
            session.add(
                ModuleValue(
                    module_id=module.id,
                    record_id=record.id,
                    field_key=spec.key,
                    text_value=text_value,
                    num_value=num_value,
                )
            )
        if spec.unique and spec.active:
            session.add(
                ModuleUniqueValue(
                    module_id=module.id,
                    field_key=spec.key,
                    value=unique_key(spec, value),
                    record_id=record.id,
                )
            )
    session.flush()


def update_field(
    session: Session,
    *,
    actor: Actor,
    module_key: str,
    field_key: str,
    label_en: str | None = None,
    label_zh: str | None = None,
    help_text: str | None = None,
    choices: list[str] | None = None,
    rename_choices: Mapping[str, str] | None = None,
    required: bool | None = None,
    unique: bool | None = None,
    field_type: str | None = None,
    active: bool | None = None,
) -> ModuleField:
    """Change a field while keeping its data, or refuse with the count of affected records.

    ``rename_choices`` (``{old: new}``) renames choices and the stored values with them;
    ``active=False`` retires the field (hidden everywhere, values kept), ``True`` restores it.
    """
    access.require(actor, "settings.manage")
    module = get_module(session, module_key)
    f = _field(session, module, field_key)
    before = _field_snapshot(f)
    records = _records_with_values(session, module, field_key)
    old = spec_of(f)
    rewrite: dict[int, Any] = {}

    new_type = field_type or f.field_type
    new_choices = _clean_choices(choices) if choices is not None else list(f.choices or [])
    renames = {clean_text(k) or "": clean_text(v) or "" for k, v in (rename_choices or {}).items()}
    if renames:
        missing = [k for k in renames if k not in (f.choices or [])]
        if missing:
            raise InvalidInput(f"'{missing[0]}' is not a choice", field="rename_choices")
        if choices is None:
            new_choices = [renames.get(c, c) for c in new_choices]
    new_unique = f.unique if unique is None else unique
    _validate_field(
        session,
        field_type=new_type,
        choices=new_choices,
        unique=new_unique,
        link_module=f.link_module,
    )
    crosses_link = f.field_type in LINK_TYPES or new_type in LINK_TYPES
    if new_type != f.field_type and crosses_link and records:
        raise SchemaChangeRefused(
            f"{len(records)} records hold links or values that cannot change between a "
            "link and another type",
            field="field_type",
            affected=len(records),
        )
    new = old.with_(field_type=new_type, choices=tuple(new_choices), unique=new_unique)

    if new_type != f.field_type or choices is not None or renames:
        failures = 0
        for record in records:
            value = record.data[field_key]
            if renames:
                if isinstance(value, list):
                    value = [renames.get(v, v) for v in value]
                else:
                    value = renames.get(value, value)
            if new_type == "text" and isinstance(value, list):
                value = ", ".join(value)
            try:
                converted = coerce(new, value)
            except InvalidInput:
                failures += 1
                continue
            if converted != record.data[field_key]:
                rewrite[record.id] = converted
        if failures:
            what = "a type" if new_type != f.field_type else "choices"
            raise SchemaChangeRefused(
                f"{failures} records hold values that do not fit {what} change; "
                "change or clear those values first",
                field="field_type" if new_type != f.field_type else "choices",
                affected=failures,
            )
    if required and not f.required:
        lacking = (
            _count_records(session, module)
            - len(records)
            + sum(1 for rid, v in rewrite.items() if v is None)
        )
        if lacking:
            raise SchemaChangeRefused(
                f"{lacking} records have no value for this field; fill them first",
                field="required",
                affected=lacking,
            )
    if new_unique and (not f.unique or rewrite or (active and not f.active)):
        keys = Counter(
            unique_key(new, rewrite.get(r.id, r.data[field_key]))
            for r in records
            if rewrite.get(r.id, r.data[field_key]) is not None
        )
        clashing = sum(n for n in keys.values() if n > 1)
        if clashing:
            raise SchemaChangeRefused(
                f"{clashing} records share a value with another record; make them differ first",
                field="unique",
                affected=clashing,
            )

    if label_en is not None:
        f.label_en = clean_text(label_en) or f.label_en
    if label_zh is not None:
        f.label_zh = clean_text(label_zh)
    if help_text is not None:
        f.help_text = help_text or None
    if required is not None:
        f.required = required
    if active is not None:
        if not active and module.display_field == field_key:
            raise InvalidInput("pick another display name field first", field="active")
        f.active = active
    f.field_type = new_type
    f.choices = new_choices
    f.unique = new_unique
    for record in records:
        if record.id in rewrite:
            data = dict(record.data)
            if rewrite[record.id] is None:
                data.pop(field_key, None)
            else:
                data[field_key] = rewrite[record.id]
            record.data = data
    session.flush()
    after = _field_snapshot(f)
    if (
        rewrite
        or after["field_type"] != before["field_type"]
        or after["unique"] != before["unique"]
    ):
        _reindex_field(session, module, spec_of(f))
    if after["active"] != before["active"]:
        _reindex_field(session, module, spec_of(f))
    audit.record(
        session,
        actor=actor,
        action="module.field_update",
        entity_type="custom_module",
        entity_id=module.id,
        changes=audit.diff(before, after),
        detail=f"{field_key}; {len(rewrite)} records rewritten" if rewrite else field_key,
    )
    return f


def retire_field(session: Session, *, actor: Actor, module_key: str, field_key: str) -> ModuleField:
    """Hide a field everywhere; its stored values stay and come back on ``restore_field``."""
    return update_field(
        session, actor=actor, module_key=module_key, field_key=field_key, active=False
    )


def restore_field(
    session: Session, *, actor: Actor, module_key: str, field_key: str
) -> ModuleField:
    """Bring a retired field back with its values."""
    return update_field(
        session, actor=actor, module_key=module_key, field_key=field_key, active=True
    )
