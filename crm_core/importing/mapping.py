"""Column mapping: which customer field each file column fills.

``guess_mapping`` reads headers in English and Chinese (姓名, 手机, 邮箱, 公司 …) and the labels
and keys of custom fields; the result is editable and can be saved under a name and reused.
A mapping is a plain ``{header: target}`` dict; targets are the names in ``TARGETS`` or
``custom.<key>``; several columns may fill the list targets ``phone``, ``email`` and ``tags``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core import audit
from crm_core.access import Actor, require
from crm_core.customfields import list_definitions
from crm_core.errors import InvalidInput, NotFound
from crm_core.models import ImportMapping
from crm_core.normalize import clean_text

#: Customer fields a column can fill, with the header words that suggest each.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "id": ("id", "crm id", "crm_id", "客户id", "系统编号"),
    "name": (
        "name", "full name", "fullname", "customer", "customer name", "contact", "contact name",
        "姓名", "名字", "客户", "客户名", "客户名称", "客户姓名", "联系人", "联系人姓名", "名称",
    ),
    "kind": ("kind", "type", "customer type", "类型", "客户类型"),
    "phone": (
        "phone", "phones", "mobile", "mobile phone", "cell", "cellphone", "tel", "telephone",
        "phone number", "work phone", "home phone", "手机", "手机号", "手机号码", "移动电话",
        "电话", "电话号码", "联系电话", "座机", "固定电话", "联系方式",
    ),
    "email": (
        "email", "emails", "e-mail", "mail", "email address", "e-mail address", "邮箱", "电子邮箱",
        "电子邮件", "邮件", "邮箱地址", "email地址",
    ),
    "company_name": (
        "company", "company name", "company_name", "organization", "organisation", "employer", "account",
        "公司", "公司名称", "单位", "工作单位", "企业", "企业名称", "所属公司",
    ),
    "position": ("position", "title", "job title", "job", "职位", "职务", "岗位", "头衔"),
    "industry": ("industry", "sector", "行业", "所属行业"),
    "size": ("size", "company size", "employees", "规模", "公司规模", "人数"),
    "source": (
        "source", "lead source", "channel", "来源", "客户来源", "渠道", "来源渠道", "获客渠道",
    ),
    "country": ("country", "country code", "国家", "国家代码"),
    "province": ("province", "state", "region", "省", "省份", "省市", "所在省份"),
    "city": ("city", "town", "城市", "市", "所在城市"),
    "district": ("district", "county", "区", "区县", "县区"),
    "street": (
        "address", "street", "street address", "address line", "地址", "详细地址", "街道",
        "联系地址", "通讯地址",
    ),
    "postcode": ("postcode", "postal code", "zip", "zip code", "邮编", "邮政编码"),
    "birthday": (
        "birthday", "birth date", "birthdate", "date of birth", "dob", "生日", "出生日期",
        "出生年月日",
    ),
    "lifecycle_stage": (
        "lifecycle", "lifecycle stage", "stage", "status", "阶段", "生命周期", "客户阶段",
        "客户状态",
    ),
    "value_tier": ("tier", "value tier", "level", "grade", "等级", "客户等级", "价值等级"),
    "owner": ("owner", "owner id", "owner_id", "sales rep", "account owner", "负责人", "销售", "所属销售", "客户经理"),
    "tags": ("tags", "tag", "labels", "label", "标签", "客户标签"),
    "external_id": (
        "external id", "external_id", "ext id", "customer id", "customer no", "customer number",
        "外部编号", "外部id", "客户编号", "编号",
    ),
    "notes": ("notes", "note", "remark", "remarks", "comment", "comments", "备注", "说明"),
}  # fmt: skip

#: Targets several columns may fill (their values are joined in column order).
LIST_TARGETS = frozenset({"phone", "email", "tags"})
TARGETS = tuple(SYNONYMS)
#: Keys an import may match existing customers by; ``auto`` takes, row by row, the first of
#: ``id``, ``external_id``, ``email``, ``phone`` that the row has.
MATCH_KEYS = ("auto", "id", "external_id", "email", "phone")
AUTO_ORDER = ("id", "external_id", "email", "phone")


def _key(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold().strip()
    text = re.sub(r"[\s_\-./:：()（）*#]+", " ", text).strip()
    return text


_LOOKUP = {_key(word): target for target, words in SYNONYMS.items() for word in words}


def custom_targets(session: Session) -> dict[str, str]:
    """``{lookup key: "custom.<key>"}`` for the active custom fields (key, English and Chinese
    labels)."""
    out: dict[str, str] = {}
    for d in list_definitions(session):
        for word in (d.key, d.label_en, d.label_zh):
            if word:
                out[_key(word)] = f"custom.{d.key}"
    return out


def guess_target(header: str, custom: Mapping[str, str] | None = None) -> str | None:
    """The target a header most likely means, or ``None``."""
    key = _key(header)
    if not key:
        return None
    if custom and key in custom:
        return custom[key]
    if key in _LOOKUP:
        return _LOOKUP[key]
    compact = key.replace(" ", "")
    for word, target in _LOOKUP.items():
        if word.replace(" ", "") == compact:
            return target
    # a header that contains a known word ("客户手机号", "Work Email"): the longest word wins
    best: tuple[int, str] | None = None
    for word, target in _LOOKUP.items():
        if len(word) < 2 or word in {"市", "区", "省"}:
            continue
        if word.isascii():
            hit = re.search(rf"\b{re.escape(word)}\b", key) is not None
        else:
            hit = word in key
        if hit and (best is None or len(word) > best[0]):
            best = (len(word), target)
    return best[1] if best else None


def guess_mapping(headers: Iterable[str], session: Session | None = None) -> dict[str, str | None]:
    """``{header: target or None}`` guessed from the header names. A single-value target is
    given to its first column only."""
    custom = custom_targets(session) if session is not None else {}
    taken: set[str] = set()
    out: dict[str, str | None] = {}
    for header in headers:
        target = guess_target(header, custom)
        if target and target not in LIST_TARGETS and target in taken:
            target = None
        if target:
            taken.add(target)
        out[header] = target
    return out


def check_mapping(
    mapping: Mapping[str, str | None], headers: Iterable[str], session: Session | None = None
) -> dict[str, str]:
    """The mapping reduced to columns present in the file, validated. Raises ``InvalidInput``
    for unknown targets, a single-value target filled twice, or no ``name`` column."""
    headers = list(headers)
    custom = {t for t in custom_targets(session).values()} if session is not None else None
    out: dict[str, str] = {}
    used: dict[str, str] = {}
    for header, target in mapping.items():
        target = clean_text(target)
        if not target or target == "ignore" or header not in headers:
            continue
        if target.startswith("custom."):
            if custom is not None and target not in custom:
                raise InvalidInput(
                    f"column '{header}': '{target[7:]}' is not a defined custom field",
                    field="mapping",
                )
        elif target not in SYNONYMS:
            raise InvalidInput(
                f"column '{header}': '{target}' is not a customer field", field="mapping"
            )
        if target not in LIST_TARGETS and target in used:
            raise InvalidInput(
                f"columns '{used[target]}' and '{header}' both fill '{target}'; keep one",
                field="mapping",
            )
        used.setdefault(target, header)
        out[header] = target
    if "name" not in used:
        raise InvalidInput("map one column to the customer name", field="mapping")
    return out


def key_targets(match_key: str, mapping: Mapping[str, str]) -> tuple[str, ...]:
    """The mapped key columns a match key uses, in order (``auto``: all mapped of id,
    external id, e-mail, phone)."""
    targets = set(mapping.values())
    wanted = AUTO_ORDER if match_key == "auto" else (match_key,)
    return tuple(k for k in wanted if k in targets)


# ---------------------------------------------------------------- saved mappings


def save_mapping(
    session: Session,
    *,
    actor: Actor,
    name: str,
    columns: Mapping[str, str | None],
    mode: str | None = None,
    match_key: str | None = None,
) -> ImportMapping:
    """Save (or replace) a named mapping for later imports."""
    require(actor, "import.run")
    label = clean_text(name)
    if not label or len(label) > 80:
        raise InvalidInput("give the mapping a name of 1 to 80 characters", field="name")
    clean = {str(h): t for h, t in columns.items() if t}
    for target in clean.values():
        if target not in SYNONYMS and not str(target).startswith("custom.") and target != "ignore":
            raise InvalidInput(f"'{target}' is not a customer field", field="mapping")
    row = session.scalar(select(ImportMapping).where(ImportMapping.name == label))
    before = {"columns": row.columns, "mode": row.mode, "match_key": row.match_key} if row else {}
    if row is None:
        row = ImportMapping(name=label, created_by_id=actor.id)
        session.add(row)
    row.columns = clean
    row.mode = mode
    row.match_key = match_key
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="import_mapping.save",
        entity_type="import_mapping",
        entity_id=row.id,
        changes=audit.diff(before, {"columns": clean, "mode": mode, "match_key": match_key}),
    )
    return row


def load_mapping(session: Session, *, actor: Actor, name: str) -> ImportMapping:
    """A saved mapping by name."""
    require(actor, "import.run")
    row = session.scalar(select(ImportMapping).where(ImportMapping.name == clean_text(name)))
    if row is None:
        raise NotFound(f"no saved mapping named '{name}'")
    return row


def list_mappings(session: Session, *, actor: Actor) -> list[ImportMapping]:
    require(actor, "import.run")
    return list(session.scalars(select(ImportMapping).order_by(ImportMapping.name)))


def describe(mapping: Mapping[str, Any]) -> str:
    """One line per column: ``header -> target``."""
    return "\n".join(f"{h} -> {t or '(ignored)'}" for h, t in mapping.items())
