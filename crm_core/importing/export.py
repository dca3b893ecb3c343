"""Exports: CSV and ``.xlsx`` of customer lists and their history, and the data-subject export.

Every export goes through the same access rules as the lists: ``customer_query`` picks the
customers the actor may see, ``access.shape_for`` hides or masks fields per role (support sees
contact fields only, analysts see personal fields masked), and the export is audited. Text that a
spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, tab or carriage
return) gets a leading apostrophe; plain numbers such as ``+8613800138000`` or ``-12.5`` are
left as they are, they cannot run anything.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import IO, Any

from sqlalchemy import inspect, or_, select
from sqlalchemy.orm import Session

from crm_core import access, audit
from crm_core.access import Actor, require
from crm_core.customers import CustomerFilter, customer_dict, customer_names, customer_query
from crm_core.customfields import list_definitions
from crm_core.errors import InvalidInput, NotFound, PermissionDenied
from crm_core.models import (
    AuditEntry,
    ConsentEvent,
    Contract,
    Customer,
    Deal,
    ImportBatchRow,
    Interaction,
    LoyaltyEntry,
    Order,
    Payment,
    Role,
    Task,
    Ticket,
    TicketNote,
    User,
    utcnow,
)

FORMATS = ("csv", "xlsx")
KINDS = ("customers", "interactions", "deals", "orders", "tickets")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?$")
_ILLEGAL_XLSX = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_BATCH = 1000

#: Customer columns in export order (``phones``/``emails``/``tags`` joined with ``;``).
CUSTOMER_COLUMNS = (
    "id",
    "name",
    "kind",
    "phones",
    "emails",
    "company_name",
    "position",
    "industry",
    "size",
    "source",
    "country",
    "province",
    "city",
    "district",
    "street",
    "postcode",
    "birthday",
    "lifecycle_stage",
    "value_tier",
    "owner_id",
    "team_id",
    "tags",
    "external_id",
    "notes",
    "last_contact_at",
    "created_at",
    "updated_at",
    "archived_at",
)


def neutralise(value: Any) -> Any:
    """A cell value a spreadsheet will not run: formula-like text gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        if _PLAIN_NUMBER.match(value):
            return value
        return "'" + value
    return value


def _cell(value: Any) -> Any:
    """A plain, neutralised cell: lists joined, times in UTC without zone, money as number."""
    if value is None:
        return None
    if isinstance(value, list | tuple):
        value = ";".join(str(v) for v in value if v is not None)
    elif isinstance(value, dict):
        value = json.dumps(audit.jsonable(value), ensure_ascii=False)
    elif isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    elif isinstance(value, Decimal):
        return float(value)
    elif isinstance(value, bool | int | float | date):
        return value
    return neutralise(str(value))


@dataclass
class ExportResult:
    """What was written: how many rows, in which format, with which columns."""

    kind: str
    format: str
    rows: int
    columns: list[str]


# ---------------------------------------------------------------- writers


def _write(
    target: IO[bytes], fmt: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    if fmt == "csv":
        return _write_csv(target, columns, rows)
    if fmt == "xlsx":
        return _write_xlsx(target, columns, rows)
    raise InvalidInput(f"'{fmt}' is not csv or xlsx", field="format")


def _write_csv(target: IO[bytes], columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    text = io.TextIOWrapper(target, encoding="utf-8-sig", newline="", write_through=True)
    writer = csv.writer(text)
    writer.writerow([neutralise(c) for c in columns])
    n = 0
    for row in rows:
        writer.writerow(["" if v is None else v for v in (_cell(v) for v in row)])
        n += 1
    text.flush()
    text.detach()
    return n


def _write_xlsx(target: IO[bytes], columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("export")
    sheet.append([neutralise(c) for c in columns])
    n = 0
    for row in rows:
        cells = []
        for value in row:
            value = _cell(value)
            if isinstance(value, str):
                value = _ILLEGAL_XLSX.sub("", value)
            cells.append(value)
        sheet.append(cells)
        n += 1
    workbook.save(target)
    return n


def _audit_export(
    session: Session, actor: Actor, kind: str, fmt: str, rows: int, filters: Any
) -> None:
    shown = {}
    if filters is not None:
        shown = {k: v for k, v in vars(filters).items() if v not in (None, "", False)}
    audit.record(
        session,
        actor=actor,
        action=f"export.{kind}",
        entity_type="export",
        entity_id=None,
        changes={"rows": [None, rows], "format": [None, fmt], "filters": [None, shown]},
        detail=f"{rows} {kind} exported as {fmt} ({access.field_mode(actor)} fields)",
    )


# ---------------------------------------------------------------- customers


def customer_columns(session: Session, actor: Actor) -> list[str]:
    """The columns this actor's export holds (support: contact fields only)."""
    columns = list(CUSTOMER_COLUMNS)
    custom = [d.key for d in list_definitions(session)]
    if access.field_mode(actor) == "contact":
        return [c for c in columns if c in access.CONTACT_FIELDS]
    return columns + [f"custom.{k}" for k in custom]


def export_customers(
    session: Session,
    *,
    actor: Actor,
    target: IO[bytes],
    fmt: str = "csv",
    filters: CustomerFilter | None = None,
) -> ExportResult:
    """Write the customers the actor may see and ``filters`` select, shaped for the actor.

    The header row uses field names the importer maps back (``name``, ``phones``, ``emails`` …,
    custom fields as ``custom.<key>``), so an export can be edited and imported again.
    """
    require(actor, "export.run")
    columns = customer_columns(session, actor)
    stmt = customer_query(session, actor=actor, filters=filters).order_by(Customer.id)

    def rows() -> Iterator[list[Any]]:
        for customer in session.scalars(stmt.execution_options(yield_per=_BATCH)):
            data = access.shape_for(actor, customer_dict(customer))
            custom = data.get("custom") or {}
            yield [custom.get(c[7:]) if c.startswith("custom.") else data.get(c) for c in columns]

    header = [c[7:] if c.startswith("custom.") else c for c in columns]
    n = _write(target, fmt, header, rows())
    _audit_export(session, actor, "customers", fmt, n, filters)
    return ExportResult("customers", fmt, n, header)


# ---------------------------------------------------------------- history


_HISTORY: dict[str, tuple[Any, tuple[str, ...], Any]] = {
    "interactions": (
        Interaction,
        ("id", "customer_id", "kind", "subject", "body", "occurred_at", "user_id"),
        Interaction.occurred_at,
    ),
    "deals": (
        Deal,
        (
            "id",
            "customer_id",
            "title",
            "stage",
            "status",
            "amount",
            "currency",
            "expected_close",
            "closed_at",
            "lost_reason",
            "owner_id",
            "created_at",
        ),
        Deal.created_at,
    ),
    "orders": (
        Order,
        (
            "id",
            "customer_id",
            "number",
            "ordered_at",
            "total",
            "currency",
            "status",
            "product_line",
            "channel",
        ),
        Order.ordered_at,
    ),
    "tickets": (
        Ticket,
        (
            "id",
            "customer_id",
            "kind",
            "subject",
            "body",
            "status",
            "priority",
            "assignee_id",
            "due_at",
            "resolved_at",
            "satisfaction",
            "created_at",
        ),
        Ticket.created_at,
    ),
}
#: Free text that may hold personal details: left out for readers who see personal fields masked.
_FREE_TEXT = frozenset({"body", "lost_reason"})
#: History support staff may not see (as ``list_deals`` and ``timeline`` rule).
_NOT_FOR_SUPPORT = frozenset({"deals", "orders"})


def export_history(
    session: Session,
    *,
    actor: Actor,
    kind: str,
    target: IO[bytes],
    fmt: str = "csv",
    filters: CustomerFilter | None = None,
) -> ExportResult:
    """Write interactions, deals, orders or tickets of the customers the actor may see (and
    ``filters`` select; archived customers included unless the filter says otherwise)."""
    require(actor, "export.run")
    if kind not in _HISTORY:
        raise InvalidInput(f"'{kind}' is not one of {', '.join(KINDS)}", field="kind")
    if actor.role == Role.SUPPORT and kind in _NOT_FOR_SUPPORT:
        raise PermissionDenied(f"support staff do not see {kind}")
    model, fields, order = _HISTORY[kind]
    if access.field_mode(actor) == "masked":
        fields = tuple(f for f in fields if f not in _FREE_TEXT)
    filters = filters or CustomerFilter(archived=None)
    visible = customer_query(session, actor=actor, filters=filters).with_only_columns(Customer.id)
    stmt = select(model).where(model.customer_id.in_(visible)).order_by(order, model.id)
    columns = [*fields[:2], "customer", *fields[2:]]

    def rows() -> Iterator[list[Any]]:
        batch: list[Any] = []
        for record in session.scalars(stmt.execution_options(yield_per=_BATCH)):
            batch.append(record)
            if len(batch) >= _BATCH:
                yield from _history_rows(session, actor, batch, fields)
                batch = []
        yield from _history_rows(session, actor, batch, fields)

    n = _write(target, fmt, columns, rows())
    _audit_export(session, actor, kind, fmt, n, filters)
    return ExportResult(kind, fmt, n, columns)


def _history_rows(
    session: Session, actor: Actor, records: list[Any], fields: Sequence[str]
) -> Iterator[list[Any]]:
    if not records:
        return
    names = customer_names(session, actor=actor, customer_ids={r.customer_id for r in records})
    for record in records:
        values = [getattr(record, f) for f in fields]
        yield [*values[:2], names.get(record.customer_id, ""), *values[2:]]


def export(
    session: Session,
    *,
    actor: Actor,
    kind: str,
    target: IO[bytes],
    fmt: str = "csv",
    filters: CustomerFilter | None = None,
) -> ExportResult:
    """``export_customers`` or ``export_history`` by ``kind`` (one of ``KINDS``)."""
    if fmt not in FORMATS:
        raise InvalidInput(f"'{fmt}' is not csv or xlsx", field="format")
    if kind == "customers":
        return export_customers(session, actor=actor, target=target, fmt=fmt, filters=filters)
    return export_history(session, actor=actor, kind=kind, target=target, fmt=fmt, filters=filters)


# ---------------------------------------------------------------- data-subject export


def _record(obj: Any) -> dict[str, Any]:
    mapper = inspect(obj).mapper
    return {a.key: audit.jsonable(getattr(obj, a.key)) for a in mapper.column_attrs}


def subject_export(session: Session, *, actor: Actor, customer_id: int) -> dict[str, Any]:
    """Everything stored about one person, for an access request under PIPL or GDPR: the
    profile, phones and e-mails, records merged into it, history (interactions, deals, orders
    with payments, contracts, tickets with notes, tasks, loyalty points), consent, import
    history and the audit entries about the person and their records. Admins only; audited.
    """
    require(actor, "audit.read")
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"customer {customer_id} does not exist")
    merged = list(session.scalars(select(Customer).where(Customer.merged_into_id == customer_id)))
    ids = [customer_id, *(m.id for m in merged)]

    def rows(model: Any, column: Any, order: Any) -> list[Any]:
        return list(session.scalars(select(model).where(column.in_(ids)).order_by(order)))

    def plain(records: Iterable[Any]) -> list[dict[str, Any]]:
        return [_record(r) for r in records]

    orders = rows(Order, Order.customer_id, Order.ordered_at)
    tickets = rows(Ticket, Ticket.customer_id, Ticket.created_at)
    order_ids = [o.id for o in orders]
    ticket_ids = [t.id for t in tickets]
    history: dict[str, list[Any]] = {
        "interactions": rows(Interaction, Interaction.customer_id, Interaction.occurred_at),
        "deals": rows(Deal, Deal.customer_id, Deal.created_at),
        "orders": orders,
        "payments": list(session.scalars(select(Payment).where(Payment.order_id.in_(order_ids))))
        if order_ids
        else [],
        "contracts": rows(Contract, Contract.customer_id, Contract.start_date),
        "tickets": tickets,
        "ticket_notes": list(
            session.scalars(select(TicketNote).where(TicketNote.ticket_id.in_(ticket_ids)))
        )
        if ticket_ids
        else [],
        "tasks": rows(Task, Task.customer_id, Task.created_at),
        "loyalty": rows(LoyaltyEntry, LoyaltyEntry.customer_id, LoyaltyEntry.occurred_at),
        "consent": rows(ConsentEvent, ConsentEvent.customer_id, ConsentEvent.at),
    }
    entity_ids: dict[str, list[int]] = {
        "customer": ids,
        "interaction": [r.id for r in history["interactions"]],
        "deal": [r.id for r in history["deals"]],
        "order": order_ids,
        "contract": [r.id for r in history["contracts"]],
        "ticket": ticket_ids,
        "task": [r.id for r in history["tasks"]],
    }
    conditions = [
        (AuditEntry.entity_type == kind) & AuditEntry.entity_id.in_(values)
        for kind, values in entity_ids.items()
        if values
    ]
    audit_rows = list(
        session.scalars(select(AuditEntry).where(or_(*conditions)).order_by(AuditEntry.id))
    )
    imports = list(
        session.scalars(
            select(ImportBatchRow)
            .where(ImportBatchRow.customer_id.in_(ids))
            .order_by(ImportBatchRow.id)
        )
    )
    users = dict(session.execute(select(User.id, User.username)).all())
    profile = customer_dict(customer)
    document = {
        "generated_at": utcnow().isoformat(),
        "generated_by": actor.username,
        "about": (
            "Personal data held about one person (access request under PIPL art. 45 / GDPR art. 15)"
        ),
        "customer": audit.jsonable(profile),
        "phones": plain(customer.phones),
        "emails": plain(customer.emails),
        "owner": users.get(customer.owner_id) if customer.owner_id else None,
        "merged_records": [
            {
                **audit.jsonable(customer_dict(m)),
                "phones": plain(m.phones),
                "emails": plain(m.emails),
            }
            for m in merged
        ],
        **{name: plain(records) for name, records in history.items()},
        "import_history": plain(imports),
        "audit": plain(audit_rows),
    }
    audit.record(
        session,
        actor=actor,
        action="customer.subject_export",
        entity_type="customer",
        entity_id=customer_id,
        changes={},
        detail="data-subject access export",
    )
    return document


def subject_export_json(session: Session, *, actor: Actor, customer_id: int) -> bytes:
    """``subject_export`` as UTF-8 JSON (Chinese kept readable)."""
    document = subject_export(session, actor=actor, customer_id=customer_id)
    return json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8")
