"""Form layouts of any record page, built-in (``customer``) or custom (``module:<key>``).

An admin arranges a page's fields into sections with a number of columns, sets the field
order and help text and hides fields from chosen roles. The stored layout is applied at once
by ``resolve_layout``, which the panel's forms render from: a list of sections holding
``FieldSpec``s, without the fields hidden from the viewer's role. Fields the layout does not
place (added later) come last, so a new field is never lost from a form.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core import access, audit
from crm_core.access import Actor
from crm_core.customfields import list_definitions
from crm_core.errors import InvalidInput
from crm_core.lowcode.fieldspec import FieldSpec
from crm_core.lowcode.modules import field_specs, get_module
from crm_core.lowcode.permissions import ROLES
from crm_core.models import FormLayout
from crm_core.normalize import clean_text

#: The customer profile's own fields as specs (``custom.<key>`` specs are added from the
#: custom field definitions).
CUSTOMER_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("name", "Name", "text", "名称", required=True),
    FieldSpec("kind", "Kind", "choice", "类型", choices=("person", "company")),
    FieldSpec("phones", "Phones", "phone", "电话"),
    FieldSpec("emails", "Emails", "email", "邮箱"),
    FieldSpec("company_name", "Company", "text", "公司"),
    FieldSpec("position", "Position", "text", "职位"),
    FieldSpec("industry", "Industry", "text", "行业"),
    FieldSpec("size", "Company size", "text", "公司规模"),
    FieldSpec("source", "Source", "text", "来源"),
    FieldSpec("country", "Country", "text", "国家"),
    FieldSpec("province", "Province / state", "text", "省份"),
    FieldSpec("city", "City", "text", "城市"),
    FieldSpec("district", "District", "text", "区县"),
    FieldSpec("street", "Street", "text", "街道"),
    FieldSpec("postcode", "Postcode", "text", "邮编"),
    FieldSpec("birthday", "Birthday", "date", "生日"),
    FieldSpec("lifecycle_stage", "Lifecycle stage", "choice", "生命周期阶段"),
    FieldSpec("value_tier", "Value tier", "choice", "价值等级", choices=("A", "B", "C")),
    FieldSpec("owner_id", "Owner", "user", "负责人"),
    FieldSpec("tags", "Tags", "multi_choice", "标签"),
    FieldSpec("notes", "Notes", "long_text", "备注"),
)


@dataclass
class Section:
    """A titled group of fields shown in ``columns`` columns."""

    title_en: str
    title_zh: str | None = None
    columns: int = 2
    fields: list[FieldSpec] = field(default_factory=list)

    def title(self, locale: str | None) -> str:
        if (locale or "").startswith("zh") and self.title_zh:
            return self.title_zh
        return self.title_en


@dataclass
class ResolvedLayout:
    """The form of one record page for one viewer."""

    entity: str
    sections: list[Section]

    @property
    def keys(self) -> list[str]:
        return [f.key for s in self.sections for f in s.fields]


def entity_specs(session: Session, entity: str) -> list[FieldSpec]:
    """Every active field of a record page (``customer`` or ``module:<key>``) as specs."""
    if entity == "customer":
        custom = [
            FieldSpec(
                key=f"custom.{d.key}",
                label_en=d.label_en,
                label_zh=d.label_zh,
                field_type=d.field_type,
                choices=tuple(d.choices or ()),
                required=d.required,
                help_text=d.help_text,
            )
            for d in list_definitions(session)
        ]
        return [*CUSTOMER_FIELDS, *custom]
    if entity.startswith("module:"):
        return field_specs(session, get_module(session, entity.removeprefix("module:")))
    raise InvalidInput(f"unknown record page '{entity}'", field="entity")


def stored_layout(session: Session, entity: str) -> dict[str, Any]:
    """The stored layout document (empty when the page has none)."""
    row = session.scalar(select(FormLayout).where(FormLayout.entity == entity))
    return dict(row.layout) if row is not None else {}


def resolve_layout(session: Session, *, actor: Actor, entity: str) -> ResolvedLayout:
    """The sections of a record page as the actor sees them (hidden fields removed)."""
    specs = {s.key: s for s in entity_specs(session, entity)}
    doc = stored_layout(session, entity)
    help_texts: dict[str, str] = doc.get("help", {})
    hidden: dict[str, list[str]] = doc.get("hidden", {})

    def visible(key: str) -> FieldSpec | None:
        spec = specs.get(key)
        if spec is None or actor.role in hidden.get(key, []):
            return None
        text = help_texts.get(key)
        return spec.with_(help_text=text) if text else spec

    sections: list[Section] = []
    placed: set[str] = set()
    for raw in doc.get("sections", []):
        section = Section(
            raw.get("title_en") or "", raw.get("title_zh"), int(raw.get("columns", 2))
        )
        for key in raw.get("fields", []):
            placed.add(key)
            spec = visible(key)
            if spec is not None:
                section.fields.append(spec)
        sections.append(section)
    rest = [spec for key in specs if key not in placed and (spec := visible(key)) is not None]
    if rest:
        title = ("More", "更多") if sections else ("Details", "详情")
        sections.append(Section(title[0], title[1], 2, rest))
    return ResolvedLayout(entity, [s for s in sections if s.fields])


def save_layout(
    session: Session,
    *,
    actor: Actor,
    entity: str,
    sections: Sequence[Mapping[str, Any]],
    help: Mapping[str, str] | None = None,
    hidden: Mapping[str, Sequence[str]] | None = None,
) -> FormLayout:
    """Store a page's layout (admins). Each section: ``title_en``, ``title_zh``, ``columns``
    (1-4) and ``fields`` (keys, in order, each placed once)."""
    access.require(actor, "settings.manage")
    known = {s.key for s in entity_specs(session, entity)}
    clean_sections: list[dict[str, Any]] = []
    seen: set[str] = set()
    for n, raw in enumerate(sections):
        title = clean_text(raw.get("title_en"))
        if not title:
            raise InvalidInput("a section needs a title", field=f"sections.{n}.title_en")
        columns = int(raw.get("columns", 2))
        if not 1 <= columns <= 4:
            raise InvalidInput("must be 1 to 4", field=f"sections.{n}.columns")
        keys = list(raw.get("fields", []))
        for key in keys:
            if key not in known:
                raise InvalidInput(f"'{key}' is not a field of this page", field=f"sections.{n}")
            if key in seen:
                raise InvalidInput(f"'{key}' is placed twice", field=f"sections.{n}")
            seen.add(key)
        clean_sections.append(
            {"title_en": title, "title_zh": clean_text(raw.get("title_zh")), "columns": columns,
             "fields": keys}
        )  # fmt: skip
    clean_help = {k: str(v).strip() for k, v in (help or {}).items() if str(v or "").strip()}
    clean_hidden = {k: sorted(set(v)) for k, v in (hidden or {}).items() if v}
    for key in [*clean_help, *clean_hidden]:
        if key not in known:
            raise InvalidInput(f"'{key}' is not a field of this page", field=key)
    for key, roles in clean_hidden.items():
        bad = [r for r in roles if r not in ROLES]
        if bad:
            raise InvalidInput(f"unknown role '{bad[0]}'", field=key)
    doc = {"sections": clean_sections, "help": clean_help, "hidden": clean_hidden}
    row = session.scalar(select(FormLayout).where(FormLayout.entity == entity))
    before = dict(row.layout) if row is not None else {}
    if row is None:
        row = FormLayout(entity=entity, layout=doc)
        session.add(row)
    else:
        row.layout = doc
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="layout.save",
        entity_type="form_layout",
        entity_id=row.id,
        changes=audit.diff(before, doc),
        detail=entity,
    )
    return row
