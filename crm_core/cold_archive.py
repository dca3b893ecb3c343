"""Cold archive: archived customers and their history exported to CSV or Parquet files with a
manifest (row counts and SHA-256 checksums), optionally removed from the live database, and
restored from those files exactly as they were.

Layout of an archive directory::

    manifest.json            format, when, by whom, customer count, and per table: file, rows, sha256
    customers.csv|parquet    one file per table (customers, phones, e-mails, tags, history …)

Every cell holds the JSON text of its value (``null``, ``"text"``, ``12``, ``"2026-01-02"``) so
empty strings, missing values, money and JSON fields come back exactly; the files stay
readable with pandas or a spreadsheet.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Boolean, Date, Integer, Numeric, delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crm_core import audit
from crm_core.access import Actor, require
from crm_core.customers import CustomerFilter, customer_query
from crm_core.errors import ConflictError, InvalidInput
from crm_core.models import (
    AuditEntry,
    ConsentEvent,
    Contract,
    Customer,
    CustomerEmail,
    CustomerPhone,
    Deal,
    Interaction,
    LoyaltyEntry,
    Order,
    Payment,
    Tag,
    Task,
    Ticket,
    TicketNote,
    UTCDateTime,
    customer_tags,
    utcnow,
)

MANIFEST = "manifest.json"
FORMATS = ("csv", "parquet")
MANIFEST_VERSION = 1

#: Tables in the archive, parents first (restore order); children of customers are selected
#: by ``customer_id``, payments by order and ticket notes by ticket.
TABLES: tuple[tuple[str, Any], ...] = (
    ("customers", Customer.__table__),
    ("customer_phones", CustomerPhone.__table__),
    ("customer_emails", CustomerEmail.__table__),
    ("customer_tags", customer_tags),
    ("interactions", Interaction.__table__),
    ("deals", Deal.__table__),
    ("orders", Order.__table__),
    ("payments", Payment.__table__),
    ("contracts", Contract.__table__),
    ("tickets", Ticket.__table__),
    ("ticket_notes", TicketNote.__table__),
    ("tasks", Task.__table__),
    ("loyalty_entries", LoyaltyEntry.__table__),
    ("consent_events", ConsentEvent.__table__),
)


@dataclass(frozen=True)
class Manifest:
    """What an archive holds: customer count and, per table, its file, rows and SHA-256."""

    format: str
    created_at: str
    created_by: str
    customers: int
    purged: bool
    tables: dict[str, dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {
            "manifest_version": MANIFEST_VERSION,
            "format": self.format,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "customers": self.customers,
            "purged": self.purged,
            "tables": self.tables,
        }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _encode(value: Any) -> str:
    if isinstance(value, datetime | date):
        value = value.isoformat()
    elif isinstance(value, Decimal):
        value = str(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _decode(value: str, column: Any) -> Any:
    raw = json.loads(value)
    if raw is None:
        return None
    kind = column.type
    if isinstance(kind, UTCDateTime):
        return datetime.fromisoformat(raw)
    if isinstance(kind, Date):
        return date.fromisoformat(raw)
    if isinstance(kind, Numeric):
        return Decimal(raw)
    if isinstance(kind, Boolean):
        return bool(raw)
    if isinstance(kind, Integer):
        return int(raw)
    return raw


def _rows(session: Session, name: str, table: Any, ids: list[int]) -> list[dict[str, Any]]:
    if name == "customers":
        where = table.c.id.in_(ids)
    elif name == "payments":
        where = table.c.order_id.in_(select(Order.id).where(Order.customer_id.in_(ids)))
    elif name == "ticket_notes":
        where = table.c.ticket_id.in_(select(Ticket.id).where(Ticket.customer_id.in_(ids)))
    else:
        where = table.c.customer_id.in_(ids)
    stmt = select(table).where(where)
    if name == "customer_tags":
        stmt = select(table, Tag.name.label("tag_name")).join(Tag).where(where)
    order = [c for c in (table.c.get("id"), table.c.get("customer_id")) if c is not None]
    return [dict(r._mapping) for r in session.execute(stmt.order_by(*order))]


def _write(frame: pd.DataFrame, path: Path, fmt: str) -> None:
    if fmt == "csv":
        frame.to_csv(path, index=False)
    else:
        try:
            frame.to_parquet(path, index=False)
        except ImportError as exc:  # pragma: no cover - pyarrow is a dependency
            raise InvalidInput(
                "Parquet needs pyarrow: pip install pyarrow", field="format"
            ) from exc


def _read(path: Path, fmt: str) -> pd.DataFrame:
    if fmt == "csv":
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    return pd.read_parquet(path).astype(str)


def export_archived(
    session: Session,
    *,
    actor: Actor,
    directory: Path | str,
    fmt: str = "parquet",
    customer_ids: Sequence[int] | None = None,
    archived_before: datetime | None = None,
    purge: bool = False,
) -> Manifest:
    """Write the archived customers the actor may change (all, those archived before a date,
    or the given ids) to ``directory``; with ``purge`` remove them from the live database
    afterwards (in the caller's transaction, so a failed purge leaves everything in place)."""
    require(actor, "customer.archive")
    if fmt not in FORMATS:
        raise InvalidInput(f"'{fmt}' is not csv or parquet", field="format")
    folder = Path(directory)
    if (folder / MANIFEST).exists():
        raise ConflictError(f"{folder} holds an archive already; choose an empty directory")
    folder.mkdir(parents=True, exist_ok=True)
    stmt = customer_query(session, actor=actor, filters=CustomerFilter(archived=True))
    if archived_before is not None:
        stmt = stmt.where(Customer.archived_at < archived_before)
    if customer_ids is not None:
        stmt = stmt.where(Customer.id.in_(list(customer_ids)))
    ids = sorted(int(i) for i in session.scalars(stmt.with_only_columns(Customer.id)))
    tables: dict[str, dict[str, Any]] = {}
    for name, table in TABLES:
        rows: list[dict[str, Any]] = []
        for i in range(0, len(ids), 900):
            rows.extend(_rows(session, name, table, ids[i : i + 900]))
        columns = [c.name for c in table.columns] + (
            ["tag_name"] if name == "customer_tags" else []
        )
        frame = pd.DataFrame(
            [[_encode(r.get(c)) for c in columns] for r in rows], columns=columns, dtype=str
        )
        path = folder / f"{name}.{fmt}"
        _write(frame, path, fmt)
        tables[name] = {"file": path.name, "rows": len(rows), "sha256": _sha256(path)}
    manifest = Manifest(
        format=fmt,
        created_at=utcnow().isoformat(),
        created_by=actor.username,
        customers=len(ids),
        purged=purge,
        tables=tables,
    )
    (folder / MANIFEST).write_text(json.dumps(manifest.to_json(), indent=2, ensure_ascii=False))
    _audit_many(session, actor, ids, "customer.cold_export", f"{folder} purge={purge}")
    if purge and ids:
        _purge(session, ids)
    return manifest


def _audit_many(session: Session, actor: Actor, ids: list[int], action: str, detail: str) -> None:
    if not ids:
        return
    now = utcnow()
    session.execute(
        insert(AuditEntry),
        [
            {
                "at": now,
                "actor_id": actor.id,
                "actor_name": actor.username,
                "action": action,
                "entity_type": "customer",
                "entity_id": cid,
                "changes": {},
                "detail": detail,
            }
            for cid in ids
        ],
    )


def _purge(session: Session, ids: list[int]) -> None:
    try:
        with session.begin_nested():
            for i in range(0, len(ids), 900):
                chunk = ids[i : i + 900]
                for name, table in reversed(TABLES):
                    if name == "customers":
                        continue
                    if name == "payments":
                        orders = select(Order.id).where(Order.customer_id.in_(chunk))
                        session.execute(delete(table).where(table.c.order_id.in_(orders)))
                    elif name == "ticket_notes":
                        tickets = select(Ticket.id).where(Ticket.customer_id.in_(chunk))
                        session.execute(delete(table).where(table.c.ticket_id.in_(tickets)))
                    else:
                        session.execute(delete(table).where(table.c.customer_id.in_(chunk)))
                session.execute(
                    delete(Customer)
                    .where(Customer.id.in_(chunk))
                    .execution_options(synchronize_session=False)
                )
    except IntegrityError as exc:
        raise ConflictError(
            "the archived customers are still referenced by other records (for example contact "
            f"persons of an archived company); nothing was removed ({exc.orig})"
        ) from None


def read_manifest(directory: Path | str, *, verify: bool = True) -> Manifest:
    """The manifest of an archive; with ``verify`` every file's row count and SHA-256 is
    checked first and a mismatch raises ``InvalidInput`` naming the file."""
    folder = Path(directory)
    try:
        data = json.loads((folder / MANIFEST).read_text())
    except FileNotFoundError:
        raise InvalidInput(f"{folder} has no {MANIFEST}", field="directory") from None
    if data.get("manifest_version") != MANIFEST_VERSION or data.get("format") not in FORMATS:
        raise InvalidInput("unknown archive format", field="directory")
    manifest = Manifest(
        format=data["format"],
        created_at=data["created_at"],
        created_by=data["created_by"],
        customers=int(data["customers"]),
        purged=bool(data["purged"]),
        tables=data["tables"],
    )
    if verify:
        for name, _table in TABLES:
            entry = manifest.tables.get(name)
            if entry is None:
                raise InvalidInput(f"the manifest lists no '{name}' file", field="directory")
            path = folder / entry["file"]
            if not path.exists():
                raise InvalidInput(f"{entry['file']} is missing", field="directory")
            if _sha256(path) != entry["sha256"]:
                raise InvalidInput(
                    f"{entry['file']} does not match its SHA-256 checksum; the archive is damaged",
                    field="directory",
                )
    return manifest


@dataclass(frozen=True)
class RestoreReport:
    customers: int
    rows: dict[str, int]


def restore_archive(session: Session, *, actor: Actor, directory: Path | str) -> RestoreReport:
    """Put the customers of an archive back into the database (still archived, ids kept).
    Checksums and row counts are verified first; customers already present are refused."""
    require(actor, "customer.restore")
    folder = Path(directory)
    manifest = read_manifest(folder, verify=True)
    frames: dict[str, pd.DataFrame] = {}
    for name, _table in TABLES:
        frame = _read(folder / manifest.tables[name]["file"], manifest.format)
        if len(frame) != int(manifest.tables[name]["rows"]):
            raise InvalidInput(
                f"{manifest.tables[name]['file']} has {len(frame)} rows, the manifest says "
                f"{manifest.tables[name]['rows']}",
                field="directory",
            )
        frames[name] = frame
    ids = [int(json.loads(v)) for v in frames["customers"].get("id", pd.Series(dtype=str))]
    present = session.scalar(select(func.count()).where(Customer.id.in_(ids))) if ids else 0
    if present:
        raise ConflictError(f"{present} of these customers are in the database already")
    counts: dict[str, int] = {}
    for name, table in TABLES:
        frame = frames[name]
        records = []
        for row in frame.to_dict("records"):
            record = {c.name: _decode(row[c.name], c) for c in table.columns if c.name in row}
            if name == "customer_tags":
                tag_name = json.loads(row["tag_name"])
                tag = session.scalar(select(Tag).where(Tag.name == tag_name))
                if tag is None:
                    tag = Tag(name=tag_name)
                    session.add(tag)
                    session.flush()
                record["tag_id"] = tag.id
            records.append(record)
        if records:
            session.execute(insert(table), records)
        counts[name] = len(records)
    _audit_many(session, actor, ids, "customer.cold_restore", str(folder))
    audit.record(
        session,
        actor=actor,
        action="archive.restore",
        entity_type="cold_archive",
        entity_id=None,
        detail=f"{folder}: {len(ids)} customers",
    )
    _fix_sequences(session)
    return RestoreReport(customers=len(ids), rows=counts)


def _fix_sequences(session: Session) -> None:
    """PostgreSQL: keep id sequences ahead of the restored ids."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for _name, table in TABLES:
        if "id" not in table.c:
            continue
        session.execute(
            select(
                func.setval(
                    func.pg_get_serial_sequence(table.name, "id"),
                    func.greatest(select(func.max(table.c.id)).scalar_subquery(), 1),
                )
            )
        )


__all__ = ["Manifest", "RestoreReport", "export_archived", "read_manifest", "restore_archive"]
