"""The report builder: saved reports made without code, computed by SQL aggregation under the
viewer's access rights.

A ``ReportDefinition`` picks a source (``customers``, ``deals``, ``orders``, ``tickets``,
``interactions`` or ``module:<key>``), filters, one or two groupings (date fields by day, week,
month, quarter or year), a measure (``count``, or ``sum``/``avg``/``min``/``max`` of a numeric
field) and a chart type (``bar``, ``line``, ``pie``, ``funnel``, ``table``). Built-in sources
start from the customers the viewer may see (``reports.filters.customer_scope``); module sources
from ``lowcode.records.record_query``. Saved reports belong to their author and can be pinned
to the author's personal dashboard or (managers, admins) to the shared one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from sqlalchemy import (
    Date,
    DateTime,
    Float,
    Integer,
    String,
    and_,
    cast,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.orm import Session, aliased

from crm_core import access, audit
from crm_core.access import Actor
from crm_core.db import analytics_settings
from crm_core.errors import InvalidInput, NotFound, PermissionDenied
from crm_core.lowcode import permissions as perms
from crm_core.lowcode.fieldspec import (
    DATE_TYPES,
    GROUPABLE_TYPES,
    MEASURE_TYPES,
    NUMERIC_TYPES,
)
from crm_core.lowcode.modules import field_specs, get_module
from crm_core.lowcode.records import Condition, RecordFilter, record_query
from crm_core.models import (
    Customer,
    Deal,
    Interaction,
    ModuleRecord,
    ModuleValue,
    Order,
    Role,
    SavedReport,
    Ticket,
)
from crm_core.normalize import clean_text
from crm_core.reports import export as report_export
from crm_core.reports._sql import dialect_of, utc
from crm_core.reports.dashboard import ReportResult
from crm_core.reports.filters import ReportFilter, customer_scope

GRAINS = ("day", "week", "month", "quarter", "year")
MEASURES = ("count", "sum", "avg", "min", "max")
CHARTS = ("bar", "line", "pie", "funnel", "table")
DASHBOARDS = ("personal", "shared")
SHARE_ROLES = frozenset({Role.ADMIN, Role.MANAGER})


@dataclass(frozen=True)
class Grouping:
    field: str
    grain: str | None = None  # for date fields


@dataclass(frozen=True)
class ReportDefinition:
    """What a saved report computes and how it is drawn. It describes and does nothing."""

    source: str
    group_by: Sequence[Grouping] = ()
    measure: str = "count"
    measure_field: str | None = None
    filters: Sequence[Condition] = ()
    chart: str = "bar"
    include_archived: bool = False

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["group_by"] = [asdict(g) for g in self.group_by]
        data["filters"] = [asdict(c) for c in self.filters]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReportDefinition:
        return cls(
            source=str(data.get("source", "")),
            group_by=tuple(Grouping(**g) for g in data.get("group_by", [])),
            measure=str(data.get("measure", "count")),
            measure_field=data.get("measure_field"),
            filters=tuple(Condition(**c) for c in data.get("filters", [])),
            chart=str(data.get("chart", "bar")),
            include_archived=bool(data.get("include_archived", False)),
        )


@dataclass(frozen=True)
class SourceField:
    """A field a report may filter, group or measure by: ``kind`` text, number or date."""

    key: str
    label_en: str
    kind: str
    column: Any = field(default=None, compare=False)
    label_zh: str | None = None


def _f(key: str, label: str, kind: str, column: Any, zh: str | None = None) -> SourceField:
    return SourceField(key, label, kind, column, zh)


#: Built-in sources: model and fields (the customer scope comes from ``customer_scope``).
BUILTIN: dict[str, tuple[Any, tuple[SourceField, ...]]] = {
    "customers": (Customer, (
        _f("lifecycle_stage", "Lifecycle stage", "text", Customer.lifecycle_stage, "生命周期阶段"),
        _f("kind", "Kind", "text", Customer.kind, "类型"),
        _f("city", "City", "text", Customer.city, "城市"),
        _f("province", "Province", "text", Customer.province, "省份"),
        _f("industry", "Industry", "text", Customer.industry, "行业"),
        _f("source", "Source", "text", Customer.source, "来源"),
        _f("value_tier", "Value tier", "text", Customer.value_tier, "价值等级"),
        _f("owner_id", "Owner", "number", Customer.owner_id, "负责人"),
        _f("created_at", "Created", "date", Customer.created_at, "创建时间"),
        _f("last_contact_at", "Last contact", "date", Customer.last_contact_at, "最近联系"),
    )),
    "deals": (Deal, (
        _f("stage", "Stage", "text", Deal.stage, "阶段"),
        _f("status", "Status", "text", Deal.status, "状态"),
        _f("currency", "Currency", "text", Deal.currency, "币种"),
        _f("owner_id", "Owner", "number", Deal.owner_id, "负责人"),
        _f("amount", "Amount", "number", Deal.amount, "金额"),
        _f("created_at", "Created", "date", Deal.created_at, "创建时间"),
        _f("expected_close", "Expected close", "date", Deal.expected_close, "预计成交"),
        _f("closed_at", "Closed", "date", Deal.closed_at, "成交时间"),
    )),
    "orders": (Order, (
        _f("status", "Status", "text", Order.status, "状态"),
        _f("channel", "Channel", "text", Order.channel, "渠道"),
        _f("product_line", "Product line", "text", Order.product_line, "产品线"),
        _f("currency", "Currency", "text", Order.currency, "币种"),
        _f("total", "Total", "number", Order.total, "金额"),
        _f("ordered_at", "Ordered", "date", Order.ordered_at, "下单时间"),
    )),
    "tickets": (Ticket, (
        _f("kind", "Kind", "text", Ticket.kind, "类型"),
        _f("status", "Status", "text", Ticket.status, "状态"),
        _f("priority", "Priority", "text", Ticket.priority, "优先级"),
        _f("assignee_id", "Assignee", "number", Ticket.assignee_id, "处理人"),
        _f("satisfaction", "Satisfaction", "number", Ticket.satisfaction, "满意度"),
        _f("created_at", "Created", "date", Ticket.created_at, "创建时间"),
        _f("resolved_at", "Resolved", "date", Ticket.resolved_at, "解决时间"),
    )),
    "interactions": (Interaction, (
        _f("kind", "Kind", "text", Interaction.kind, "类型"),
        _f("user_id", "User", "number", Interaction.user_id, "用户"),
        _f("occurred_at", "Occurred", "date", Interaction.occurred_at, "发生时间"),
    )),
}  # fmt: skip


def source_fields(session: Session, source: str) -> list[SourceField]:
    """The fields of a source (module fields: ``kind`` from their type; no column)."""
    if source in BUILTIN:
        return list(BUILTIN[source][1])
    if source.startswith("module:"):
        module = get_module(session, source.removeprefix("module:"))
        out = []
        for spec in field_specs(session, module):
            if spec.field_type in DATE_TYPES:
                kind = "date"
            elif spec.field_type in MEASURE_TYPES:
                kind = "number"
            elif spec.field_type in GROUPABLE_TYPES or spec.field_type in NUMERIC_TYPES:
                kind = "text" if spec.field_type not in NUMERIC_TYPES else "id"
            else:
                kind = "text"
            if spec.field_type == "long_text":
                continue
            out.append(SourceField(spec.key, spec.label_en, kind, None, spec.label_zh))
        out.append(
            SourceField("created_at", "Created", "date", ModuleRecord.created_at, "创建时间")
        )
        return out
    raise InvalidInput(f"unknown report source '{source}'", field="source")


def sources(session: Session, *, actor: Actor) -> dict[str, str]:
    """``{source key: English name}`` of every source the actor may report on."""
    from crm_core.lowcode.modules import list_modules

    found = {k: k.capitalize() for k in BUILTIN}
    for module in list_modules(session, actor=actor):
        found[f"module:{module.key}"] = module.name_en
    return found


# ---------------------------------------------------------------- SQL pieces


def _iso_text(column: Any, dialect: str, *, is_date: bool) -> Any:
    """A date or timestamp column as ISO text (``YYYY-MM-DD…``)."""
    if dialect == "sqlite":
        return column
    if is_date:
        return func.to_char(column, "YYYY-MM-DD")
    return func.to_char(utc(column, dialect), "YYYY-MM-DD")


def bucket(text: Any, grain: str, dialect: str) -> Any:
    """The period key of an ISO date text: ``2026-05-03``, ``2026-05-04`` (week's Monday),
    ``2026-05``, ``2026-Q2`` or ``2026``."""
    if grain == "day":
        return func.substr(text, 1, 10)
    if grain == "month":
        return func.substr(text, 1, 7)
    if grain == "year":
        return func.substr(text, 1, 4)
    if grain == "quarter":
        quarter = (cast(func.substr(text, 6, 2), Integer) + 2) // 3
        return func.substr(text, 1, 4) + literal("-Q") + cast(quarter, String)
    if grain == "week":
        day = func.substr(text, 1, 10)
        if dialect == "sqlite":
            return func.date(day, "weekday 0", "-6 days")
        return func.to_char(func.date_trunc("week", cast(day, Date)), "YYYY-MM-DD")
    raise InvalidInput(f"unknown period '{grain}'", field="grain")


def _parse_bound(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value
    text = clean_text(value) or ""
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise InvalidInput(f"'{text}' is not a date (use YYYY-MM-DD)", field="filters") from None


def _column_condition(sf: SourceField, cond: Condition) -> Any:
    column = sf.column
    op, value = cond.op, cond.value
    if op == "empty":
        return column.is_(None)
    if op == "not_empty":
        return column.is_not(None)
    if sf.kind == "date":
        bound = _parse_bound(value)
        is_dt = isinstance(column.type, DateTime) or hasattr(column.type, "impl")
        if is_dt and not isinstance(bound, datetime):
            start = datetime.combine(bound, time.min, UTC)
            if op == "eq":
                return and_(column >= start, column < start + timedelta(days=1))
            if op in ("lte", "gt"):
                start = start + timedelta(days=1)
                op = "lt" if op == "lte" else "gte"
            value = start
        else:
            value = bound
    if op == "in":
        return column.in_(list(value if isinstance(value, list | tuple) else [value]))
    if op == "contains":
        return column.ilike(f"%{value}%")
    ops = {
        "eq": column == value, "ne": or_(column != value, column.is_(None)),
        "lt": column < value, "lte": column <= value, "gt": column > value, "gte": column >= value,
    }  # fmt: skip
    if op not in ops:
        raise InvalidInput(f"unknown operator '{op}'", field=cond.field)
    return ops[op]


def _check(definition: ReportDefinition, fields: dict[str, SourceField]) -> None:
    if not 1 <= len(definition.group_by) <= 2:
        raise InvalidInput("group by one or two fields", field="group_by")
    for g in definition.group_by:
        sf = fields.get(g.field)
        if sf is None:
            raise InvalidInput(f"'{g.field}' is not a field of this source", field="group_by")
        if sf.kind == "date" and g.grain not in GRAINS:
            raise InvalidInput("pick day, week, month, quarter or year", field="grain")
        if sf.kind == "number" and not g.field.endswith("_id"):
            raise InvalidInput(f"'{g.field}' is a measure, not a grouping", field="group_by")
    if definition.measure not in MEASURES:
        raise InvalidInput(f"unknown measure '{definition.measure}'", field="measure")
    if definition.measure != "count":
        sf = fields.get(definition.measure_field or "")
        if sf is None or sf.kind != "number":
            raise InvalidInput("pick a numeric field to measure", field="measure_field")
    if definition.chart not in CHARTS:
        raise InvalidInput(f"unknown chart type '{definition.chart}'", field="chart")


def _aggregate(measure: str, column: Any) -> Any:
    if measure == "count":
        return func.count()
    aggregate: Any = getattr(func, measure)  # sum, avg, min, max
    return aggregate(column)


def _builtin_statement(
    session: Session, actor: Actor, d: ReportDefinition, fields: dict[str, SourceField]
) -> Any:
    model, _ = BUILTIN[d.source]
    dialect = dialect_of(session)
    scope = customer_scope(
        session, actor=actor, filters=ReportFilter(include_archived=d.include_archived)
    )
    keys = []
    for g in d.group_by:
        sf = fields[g.field]
        if sf.kind == "date":
            is_date = isinstance(sf.column.type, Date)
            keys.append(
                bucket(_iso_text(sf.column, dialect, is_date=is_date), g.grain or "", dialect)
            )
        else:
            keys.append(sf.column)
    value_column = (
        fields[d.measure_field].column if d.measure != "count" and d.measure_field else None
    )
    stmt = select(*[k.label(f"g{i}") for i, k in enumerate(keys)],
                  _aggregate(d.measure, value_column).label("value"))  # fmt: skip
    if model is Customer:
        stmt = stmt.select_from(Customer).where(scope)
    else:
        stmt = stmt.select_from(model).join(Customer, Customer.id == model.customer_id).where(scope)
    for cond in d.filters:
        filtered = fields.get(cond.field)
        if filtered is None:
            raise InvalidInput(f"'{cond.field}' is not a field of this source", field="filters")
        stmt = stmt.where(_column_condition(filtered, cond))
    for g in d.group_by:  # date groupings skip records without that date
        if fields[g.field].kind == "date":
            stmt = stmt.where(fields[g.field].column.is_not(None))
    return stmt.group_by(*keys)


def _module_statement(
    session: Session, actor: Actor, d: ReportDefinition, fields: dict[str, SourceField]
) -> Any:
    """Groupings and measures read the records' JSON values in one pass over the module's
    records (no join per field); multi-choice groupings join the value index (one row per
    choice). Filters go through ``record_query``, so access and filters match the list."""
    module_key = d.source.removeprefix("module:")
    module = get_module(session, module_key)
    specs = {s.key: s for s in field_specs(session, module)}
    dialect = dialect_of(session)
    base = record_query(
        session,
        actor=actor,
        module_key=module_key,
        filters=RecordFilter(
            archived=None if d.include_archived else False, conditions=tuple(d.filters)
        ),
    )
    keys: list[Any] = []
    joins: list[tuple[Any, Any]] = []
    for i, g in enumerate(d.group_by):
        sf = fields[g.field]
        if g.field == "created_at":
            text = _iso_text(ModuleRecord.created_at, dialect, is_date=False)
            keys.append(bucket(text, g.grain or "", dialect))
        elif specs[g.field].field_type == "multi_choice":
            v = aliased(ModuleValue, name=f"v{i}")
            joins.append((v, and_(v.record_id == ModuleRecord.id, v.field_key == g.field,
                                  v.module_id == module.id)))  # fmt: skip
            keys.append(v.text_value)
        else:
            value = ModuleRecord.data[g.field].as_string()
            keys.append(bucket(value, g.grain or "", dialect) if sf.kind == "date" else value)
    value_column = None
    if d.measure != "count":
        value_column = cast(ModuleRecord.data[d.measure_field or ""].as_string(), Float)
    stmt = base.with_only_columns(
        *[k.label(f"g{i}") for i, k in enumerate(keys)],
        _aggregate(d.measure, value_column).label("value"),
    )
    for alias, on in joins:
        stmt = stmt.join(alias, on)
    for key in [*keys, *([value_column] if value_column is not None else [])]:
        stmt = stmt.where(key.is_not(None))  # records lacking a grouped or measured value
    return stmt.group_by(*keys)


def _label(sf: SourceField, locale: str | None) -> str:
    return sf.label_zh if (locale or "").startswith("zh") and sf.label_zh else sf.label_en


def run_definition(
    session: Session, *, actor: Actor, definition: ReportDefinition, locale: str | None = "en"
) -> pd.DataFrame:
    """The report's frame: one column per grouping (named by the field's label, with the
    period in brackets) and ``value``; sorted by the groupings."""
    access.require(actor, "reports.read")
    fields = {f.key: f for f in source_fields(session, definition.source)}
    _check(definition, fields)
    if definition.source in BUILTIN:
        stmt = _builtin_statement(session, actor, definition, fields)
    else:
        module = get_module(session, definition.source.removeprefix("module:"))
        perms.require(actor, module, "read")
        stmt = _module_statement(session, actor, definition, fields)
    columns = []
    for g in definition.group_by:
        name = _label(fields[g.field], locale)
        columns.append(
            f"{name} ({g.grain})" if g.grain and fields[g.field].kind == "date" else name
        )
    analytics_settings(session)
    rows = session.execute(stmt).all()
    df = pd.DataFrame([tuple(r) for r in rows], columns=[*columns, "value"])
    df["value"] = pd.to_numeric(df["value"].map(lambda v: None if v is None else float(v)))
    df["value"] = df["value"].astype("float64")
    for column in columns:
        df[column] = [
            "" if v is None else (int(v) if isinstance(v, float) and v.is_integer() else v)
            for v in df[column]
        ]
        df[column] = df[column].astype(str)
    return df.sort_values(columns, kind="stable").reset_index(drop=True)


def figure(df: pd.DataFrame, *, chart: str, title: str) -> go.Figure:
    """A Plotly figure of a report frame."""
    groups = [c for c in df.columns if c != "value"]
    fig = go.Figure()
    if chart == "table" or df.empty and chart != "table":
        if chart == "table":
            fig.add_trace(go.Table(
                header={"values": list(df.columns)},
                cells={"values": [df[c].tolist() for c in df.columns]},
            ))  # fmt: skip
    elif chart == "pie":
        labels = df[groups].astype(str).agg(" · ".join, axis=1)
        fig.add_trace(go.Pie(labels=labels.tolist(), values=df["value"].tolist(), sort=False))
    elif chart == "funnel":
        ordered = df.sort_values("value", ascending=False)
        labels = ordered[groups].astype(str).agg(" · ".join, axis=1)
        fig.add_trace(go.Funnel(y=labels.tolist(), x=ordered["value"].tolist()))
    else:
        series = df[groups[1]].unique().tolist() if len(groups) == 2 else [None]
        for name in series:
            part = df if name is None else df[df[groups[1]] == name]
            x, y = part[groups[0]].tolist(), part["value"].tolist()
            if chart == "line":
                fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=name or "value"))
            else:
                fig.add_trace(go.Bar(x=x, y=y, name=name or "value"))
        fig.update_layout(barmode="group", xaxis_title=groups[0], yaxis_title="value")
        fig.update_xaxes(type="category")
    fig.update_layout(title={"text": title}, template="plotly_white", margin={"t": 50})
    return fig


# ---------------------------------------------------------------- saved reports


@dataclass
class BuiltReport:
    """A computed saved report: its frame and figure."""

    id: int | None
    name: str
    definition: ReportDefinition
    frame: pd.DataFrame
    figure: go.Figure

    def as_result(self) -> ReportResult:
        return ReportResult(key=f"report_{self.id or 0}", title=self.name, frame=self.frame,
                            figure=self.figure)  # fmt: skip


def _validate_definition(session: Session, actor: Actor, d: ReportDefinition) -> None:
    fields = {f.key: f for f in source_fields(session, d.source)}
    _check(d, fields)
    if d.source.startswith("module:"):
        perms.require(actor, get_module(session, d.source.removeprefix("module:")), "read")


def save_report(
    session: Session,
    *,
    actor: Actor,
    name: str,
    definition: ReportDefinition,
    report_id: int | None = None,
) -> SavedReport:
    """Save a new report or change one of the actor's own."""
    access.require(actor, "reports.read")
    title = clean_text(name)
    if not title:
        raise InvalidInput("is required", field="name")
    _validate_definition(session, actor, definition)
    if report_id is None:
        report = SavedReport(owner_id=actor.id, name=title[:120], spec=definition.to_dict())
        session.add(report)
        before: dict[str, Any] = {}
    else:
        report = _own(session, actor, report_id)
        before = {"name": report.name, "spec": report.spec}
        report.name, report.spec = title[:120], definition.to_dict()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="saved_report.save",
        entity_type="saved_report",
        entity_id=report.id,
        changes=audit.diff(before, {"name": report.name, "spec": report.spec}),
    )
    return report


def _readable(session: Session, actor: Actor, report_id: int) -> SavedReport:
    access.require(actor, "reports.read")
    report = session.get(SavedReport, report_id)
    if report is None or (report.owner_id != actor.id and report.dashboard != "shared"):
        raise NotFound(f"report {report_id} does not exist")
    return report


def _own(session: Session, actor: Actor, report_id: int) -> SavedReport:
    report = _readable(session, actor, report_id)
    if report.owner_id != actor.id and actor.role != Role.ADMIN:
        raise PermissionDenied("only its author may change this report")
    return report


def list_reports(session: Session, *, actor: Actor) -> list[SavedReport]:
    """The actor's own reports and those shared on the shared dashboard."""
    access.require(actor, "reports.read")
    stmt = select(SavedReport).where(
        or_(SavedReport.owner_id == actor.id, SavedReport.dashboard == "shared")
    )
    return list(session.scalars(stmt.order_by(SavedReport.name, SavedReport.id)))


def pin_report(
    session: Session, *, actor: Actor, report_id: int, dashboard: str | None
) -> SavedReport:
    """Pin a report to the personal or shared dashboard, or unpin it (``None``)."""
    report = _own(session, actor, report_id)
    if dashboard not in (None, *DASHBOARDS):
        raise InvalidInput("pick personal or shared", field="dashboard")
    if dashboard == "shared" and actor.role not in SHARE_ROLES:
        raise PermissionDenied("only managers and admins may pin to the shared dashboard")
    before = report.dashboard
    report.dashboard = dashboard
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="saved_report.pin",
        entity_type="saved_report",
        entity_id=report.id,
        changes={"dashboard": [before, dashboard]},
    )
    return report


def delete_report(session: Session, *, actor: Actor, report_id: int) -> None:
    report = _own(session, actor, report_id)
    audit.record(session, actor=actor, action="saved_report.delete", entity_type="saved_report",
                 entity_id=report.id, changes={"name": [report.name, None]})  # fmt: skip
    session.delete(report)
    session.flush()


def dashboard_reports(session: Session, *, actor: Actor) -> list[SavedReport]:
    """Reports on the actor's dashboard: their personal pins, then the shared ones."""
    access.require(actor, "reports.read")
    stmt = select(SavedReport).where(
        or_(
            and_(SavedReport.owner_id == actor.id, SavedReport.dashboard == "personal"),
            SavedReport.dashboard == "shared",
        )
    )
    return sorted(session.scalars(stmt), key=lambda r: (r.dashboard != "personal", r.name))


def build(
    session: Session,
    *,
    actor: Actor,
    definition: ReportDefinition,
    name: str = "Report",
    report_id: int | None = None,
    locale: str | None = "en",
) -> BuiltReport:
    """Compute a definition (saved or not) for the actor: frame and figure."""
    df = run_definition(session, actor=actor, definition=definition, locale=locale)
    return BuiltReport(
        report_id, name, definition, df, figure(df, chart=definition.chart, title=name)
    )


def run_saved(
    session: Session, *, actor: Actor, report_id: int, locale: str | None = "en"
) -> BuiltReport:
    """A saved report computed under the *viewer's* access rights."""
    report = _readable(session, actor, report_id)
    definition = ReportDefinition.from_dict(report.spec)
    return build(session, actor=actor, definition=definition, name=report.name,
                 report_id=report.id, locale=locale)  # fmt: skip


def export_saved(
    session: Session, *, actor: Actor, report_id: int, fmt: str, locale: str | None = "en"
) -> bytes:
    """A saved report as a self-contained HTML page or an ``.xlsx`` workbook (audited)."""
    access.require(actor, "export.run")
    if fmt not in report_export.FORMATS:
        raise InvalidInput("pick html or xlsx", field="format")
    built = run_saved(session, actor=actor, report_id=report_id, locale=locale)
    audit.record(session, actor=actor, action="saved_report.export", entity_type="saved_report",
                 entity_id=report_id, detail=fmt)  # fmt: skip
    if fmt == "html":
        return report_export.to_html([built.as_result()], title=built.name, locale=locale).encode()
    return report_export.to_xlsx([built.as_result()])
