"""A customer's history: interactions, deals, orders and payments, contracts, tickets, tasks,
loyalty points, and the one timeline that shows them together.

Access follows the customer: whoever may change a customer may add to its history; support
staff may log interactions, tickets and tasks on any customer they can see.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from crm_core import access, audit
from crm_core.access import Actor, require
from crm_core.customers import load_customer
from crm_core.errors import ConflictError, InvalidInput, NotFound, PermissionDenied
from crm_core.models import (
    Contract,
    Customer,
    Deal,
    DealStatus,
    Interaction,
    InteractionKind,
    LoyaltyEntry,
    Order,
    Payment,
    PipelineStage,
    Priority,
    Role,
    Task,
    Ticket,
    TicketKind,
    TicketNote,
    TicketStatus,
    User,
    utcnow,
)
from crm_core.normalize import clean_text

DEFAULT_STAGES: tuple[tuple[str, str, str, int, bool, bool], ...] = (
    ("new", "New", "新建", 10, False, False),
    ("qualified", "Qualified", "已确认", 25, False, False),
    ("proposal", "Proposal", "方案报价", 50, False, False),
    ("negotiation", "Negotiation", "谈判", 75, False, False),
    ("won", "Won", "赢单", 100, True, False),
    ("lost", "Lost", "输单", 0, False, True),
)

#: Support may add these to any customer they can see.
_SUPPORT_WRITES = frozenset({"interaction.write", "ticket.create", "ticket.manage", "task.write"})


def ensure_pipeline_stages(session: Session) -> None:
    """Insert the default pipeline stages into an empty database."""
    if session.scalar(select(func.count()).select_from(PipelineStage)):
        return
    for position, (key, en, zh, prob, won, lost) in enumerate(DEFAULT_STAGES):
        session.add(
            PipelineStage(
                key=key,
                name_en=en,
                name_zh=zh,
                position=position,
                probability=prob,
                is_won=won,
                is_lost=lost,
            )
        )
    session.flush()


def pipeline_stages(session: Session) -> list[PipelineStage]:
    """The stages in board order (the defaults if none are stored)."""
    ensure_pipeline_stages(session)
    return list(session.scalars(select(PipelineStage).order_by(PipelineStage.position)))


def _customer_for(session: Session, actor: Actor, customer_id: int, permission: str) -> Customer:
    """The customer whose history the actor is about to change, after every access check."""
    require(actor, permission)
    customer = load_customer(session, actor=actor, customer_id=customer_id)
    if actor.role in (Role.SUPPORT, Role.DATA_STEWARD) and permission in _SUPPORT_WRITES:
        return customer
    if not access.can_change(actor, customer):
        raise PermissionDenied(f"you may not change the history of customer {customer_id}")
    return customer


def _money(value: Any, field: str) -> Decimal:
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        raise InvalidInput(f"'{value}' is not an amount", field=field) from None
    if not amount.is_finite() or amount < 0:
        raise InvalidInput("must be zero or more", field=field)
    return amount


def _currency(value: str | None) -> str:
    currency = (clean_text(value) or "CNY").upper()
    if len(currency) != 3 or not currency.isalpha():
        raise InvalidInput(f"'{currency}' is not a 3-letter currency code", field="currency")
    return currency


def _aware(value: datetime | None, field: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise InvalidInput("needs a time zone", field=field)
    return value


def _check_version(record: Any, expected_version: int | None, what: str) -> None:
    if expected_version is not None and record.version != expected_version:
        raise ConflictError(
            f"{what} was changed by someone else (version {record.version}, you edited "
            f"version {expected_version}); reload and try again",
            current_version=record.version,
        )


def _assignee(session: Session, user_id: int | None, field: str) -> int | None:
    if user_id is None:
        return None
    user = session.get(User, user_id)
    if user is None or not user.active:
        raise InvalidInput(f"user {user_id} does not exist or is inactive", field=field)
    return user.id


def _audit_create(
    session: Session, actor: Actor, kind: str, record: Any, fields: dict[str, Any]
) -> None:
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=f"{kind}.create",
        entity_type=kind,
        entity_id=record.id,
        changes=audit.diff({}, fields),
    )


def _visible_child(session: Session, actor: Actor, model: Any, record_id: int, what: str) -> Any:
    record = session.get(model, record_id)
    if record is None:
        raise NotFound(f"{what} {record_id} does not exist")
    customer_id = getattr(record, "customer_id", None)
    if customer_id is not None:
        try:
            load_customer(session, actor=actor, customer_id=customer_id)
        except NotFound:
            raise NotFound(f"{what} {record_id} does not exist") from None
    elif getattr(record, "assignee_id", None) not in (actor.id, None) and actor.role not in (
        Role.ADMIN,
        Role.SYSTEM,
        Role.MANAGER,
    ):
        raise NotFound(f"{what} {record_id} does not exist")
    return record


# ---------------------------------------------------------------- interactions


def log_interaction(
    session: Session,
    *,
    actor: Actor,
    customer_id: int,
    kind: str,
    subject: str,
    body: str | None = None,
    occurred_at: datetime | None = None,
) -> Interaction:
    """Log a call, email, meeting, visit, chat or note; updates the customer's last contact."""
    customer = _customer_for(session, actor, customer_id, "interaction.write")
    if kind not in {k.value for k in InteractionKind}:
        raise InvalidInput(
            f"'{kind}' is not one of {', '.join(k.value for k in InteractionKind)}", field="kind"
        )
    subject = clean_text(subject) or ""
    if not subject:
        raise InvalidInput("is required", field="subject")
    when = _aware(occurred_at, "occurred_at") or utcnow()
    if when > utcnow().replace(microsecond=0) and (when - utcnow()).days >= 1:
        raise InvalidInput("is in the future", field="occurred_at")
    item = Interaction(
        customer_id=customer.id,
        user_id=actor.id,
        kind=kind,
        subject=subject,
        body=clean_text(body) if body else None,
        occurred_at=when,
    )
    session.add(item)
    # last contact is bookkeeping: it must not bump the profile's version (no false conflicts)
    session.execute(
        update(Customer)
        .where(Customer.id == customer.id)
        .where((Customer.last_contact_at.is_(None)) | (Customer.last_contact_at < when))
        .values(last_contact_at=when)
        .execution_options(synchronize_session=False)
    )
    _audit_create(
        session,
        actor,
        "interaction",
        item,
        {"customer_id": customer.id, "kind": kind, "subject": subject},
    )
    session.refresh(customer, ["last_contact_at"])
    return item


def list_interactions(
    session: Session, *, actor: Actor, customer_id: int, limit: int = 200
) -> list[Interaction]:
    load_customer(session, actor=actor, customer_id=customer_id)
    stmt = (
        select(Interaction)
        .where(Interaction.customer_id == customer_id)
        .order_by(Interaction.occurred_at.desc(), Interaction.id.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt))


# ---------------------------------------------------------------- deals


def _stage(session: Session, key: str) -> PipelineStage:
    for stage in pipeline_stages(session):
        if stage.key == key:
            return stage
    keys = ", ".join(s.key for s in pipeline_stages(session))
    raise InvalidInput(f"'{key}' is not a pipeline stage ({keys})", field="stage")


def create_deal(
    session: Session,
    *,
    actor: Actor,
    customer_id: int,
    title: str,
    amount: Any = 0,
    currency: str | None = None,
    stage: str = "new",
    owner_id: int | None = None,
    expected_close: date | None = None,
) -> Deal:
    customer = _customer_for(session, actor, customer_id, "deal.write")
    title = clean_text(title) or ""
    if not title:
        raise InvalidInput("is required", field="title")
    stage_row = _stage(session, stage)
    if actor.role == Role.SALES and owner_id not in (None, actor.id):
        raise PermissionDenied("sales users can only own their own deals")
    deal = Deal(
        customer_id=customer.id,
        title=title,
        amount=_money(amount, "amount"),
        currency=_currency(currency),
        stage=stage_row.key,
        status=DealStatus.WON
        if stage_row.is_won
        else DealStatus.LOST
        if stage_row.is_lost
        else DealStatus.OPEN,
        owner_id=_assignee(session, owner_id, "owner_id") or customer.owner_id or actor.id,
        expected_close=expected_close,
        stage_changed_at=utcnow(),
    )
    session.add(deal)
    _audit_create(
        session,
        actor,
        "deal",
        deal,
        {"customer_id": customer.id, "title": title, "amount": deal.amount, "stage": deal.stage},
    )
    return deal


def move_deal(
    session: Session,
    *,
    actor: Actor,
    deal_id: int,
    stage: str,
    expected_version: int | None = None,
    reason: str | None = None,
) -> Deal:
    """Move a deal to another stage; the won and lost stages close it (lost needs a reason)."""
    require(actor, "deal.write")
    deal = _visible_child(session, actor, Deal, deal_id, "deal")
    _customer_for(session, actor, deal.customer_id, "deal.write")
    _check_version(deal, expected_version, f"deal {deal_id}")
    target = _stage(session, stage)
    reason = clean_text(reason)
    if target.is_lost and not reason:
        raise InvalidInput("a reason is required to mark a deal lost", field="reason")
    before = {"stage": deal.stage, "status": deal.status, "lost_reason": deal.lost_reason}
    deal.stage = target.key
    deal.stage_changed_at = utcnow()
    if target.is_won:
        deal.status, deal.closed_at, deal.lost_reason = DealStatus.WON, utcnow(), None
    elif target.is_lost:
        deal.status, deal.closed_at, deal.lost_reason = DealStatus.LOST, utcnow(), reason
    else:
        deal.status, deal.closed_at, deal.lost_reason = DealStatus.OPEN, None, None
    after = {"stage": deal.stage, "status": deal.status, "lost_reason": deal.lost_reason}
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="deal.move",
        entity_type="deal",
        entity_id=deal.id,
        changes=audit.diff(before, after),
        detail=reason,
    )
    return deal


def list_deals(
    session: Session,
    *,
    actor: Actor,
    customer_id: int | None = None,
    owner_id: int | None = None,
    team_id: int | None = None,
    status: str | None = None,
    limit: int = 2000,
) -> list[Deal]:
    """Deals of customers the actor may see, newest first."""
    require(actor, "customer.read")
    if actor.role == Role.SUPPORT:
        raise PermissionDenied("support staff do not see deals")
    stmt = select(Deal).join(Customer, Customer.id == Deal.customer_id)
    stmt = stmt.where(access.visible_customers(actor))
    if customer_id is not None:
        stmt = stmt.where(Deal.customer_id == customer_id)
    if owner_id is not None:
        stmt = stmt.where(Deal.owner_id == owner_id)
    if team_id is not None:
        stmt = stmt.where(Customer.team_id == team_id)
    if status:
        stmt = stmt.where(Deal.status == status)
    return list(session.scalars(stmt.order_by(Deal.id.desc()).limit(limit)))


# ---------------------------------------------------------------- orders, payments, contracts


def create_order(
    session: Session,
    *,
    actor: Actor,
    customer_id: int,
    total: Any,
    number: str | None = None,
    ordered_at: datetime | None = None,
    currency: str | None = None,
    product_line: str | None = None,
    channel: str | None = None,
    status: str = "paid",
) -> Order:
    customer = _customer_for(session, actor, customer_id, "order.write")
    order = Order(
        customer_id=customer.id,
        total=_money(total, "total"),
        currency=_currency(currency),
        number=clean_text(number) or "",
        ordered_at=_aware(ordered_at, "ordered_at") or utcnow(),
        product_line=clean_text(product_line),
        channel=clean_text(channel),
        status=status,
    )
    session.add(order)
    session.flush()
    if not order.number:
        order.number = f"SO-{order.id:08d}"
    _audit_create(
        session,
        actor,
        "order",
        order,
        {"customer_id": customer.id, "number": order.number, "total": order.total},
    )
    return order


def add_payment(
    session: Session,
    *,
    actor: Actor,
    order_id: int,
    amount: Any,
    method: str = "transfer",
    paid_at: datetime | None = None,
) -> Payment:
    require(actor, "order.write")
    order = _visible_child(session, actor, Order, order_id, "order")
    _customer_for(session, actor, order.customer_id, "order.write")
    payment = Payment(
        order_id=order.id,
        amount=_money(amount, "amount"),
        method=method,
        paid_at=_aware(paid_at, "paid_at") or utcnow(),
    )
    session.add(payment)
    _audit_create(
        session, actor, "payment", payment, {"order_id": order.id, "amount": payment.amount}
    )
    return payment


def create_contract(
    session: Session,
    *,
    actor: Actor,
    customer_id: int,
    title: str,
    start_date: date,
    end_date: date,
    value: Any = 0,
    currency: str | None = None,
    number: str | None = None,
) -> Contract:
    customer = _customer_for(session, actor, customer_id, "contract.write")
    title = clean_text(title) or ""
    if not title:
        raise InvalidInput("is required", field="title")
    if end_date < start_date:
        raise InvalidInput("ends before it starts", field="end_date")
    contract = Contract(
        customer_id=customer.id,
        title=title,
        start_date=start_date,
        end_date=end_date,
        value=_money(value, "value"),
        currency=_currency(currency),
        number=clean_text(number) or "",
    )
    session.add(contract)
    session.flush()
    if not contract.number:
        contract.number = f"CT-{contract.id:07d}"
    _audit_create(
        session,
        actor,
        "contract",
        contract,
        {
            "customer_id": customer.id,
            "title": title,
            "start_date": start_date,
            "end_date": end_date,
        },
    )
    return contract


# ---------------------------------------------------------------- tickets


def create_ticket(
    session: Session,
    *,
    actor: Actor,
    customer_id: int,
    kind: str,
    subject: str,
    body: str | None = None,
    priority: str = "normal",
    assignee_id: int | None = None,
    due_at: datetime | None = None,
) -> Ticket:
    customer = _customer_for(session, actor, customer_id, "ticket.create")
    if kind not in {k.value for k in TicketKind}:
        raise InvalidInput(f"'{kind}' is not feedback, complaint or request", field="kind")
    if priority not in {p.value for p in Priority}:
        raise InvalidInput(f"'{priority}' is not low, normal, high or urgent", field="priority")
    subject = clean_text(subject) or ""
    if not subject:
        raise InvalidInput("is required", field="subject")
    ticket = Ticket(
        customer_id=customer.id,
        kind=kind,
        subject=subject,
        body=clean_text(body),
        priority=priority,
        status=TicketStatus.OPEN,
        assignee_id=_assignee(session, assignee_id, "assignee_id"),
        due_at=_aware(due_at, "due_at"),
    )
    session.add(ticket)
    _audit_create(
        session,
        actor,
        "ticket",
        ticket,
        {"customer_id": customer.id, "kind": kind, "subject": subject, "priority": priority},
    )
    return ticket


def update_ticket(
    session: Session,
    *,
    actor: Actor,
    ticket_id: int,
    expected_version: int | None = None,
    status: str | None = None,
    priority: str | None = None,
    assignee_id: int | None | type[...] = ...,
    satisfaction: int | None = None,
    due_at: datetime | None = None,
) -> Ticket:
    """Assign, re-prioritise, change status or close with a satisfaction score (1-5)."""
    require(actor, "ticket.manage")
    ticket = _visible_child(session, actor, Ticket, ticket_id, "ticket")
    _check_version(ticket, expected_version, f"ticket {ticket_id}")
    before = {
        "status": ticket.status,
        "priority": ticket.priority,
        "assignee_id": ticket.assignee_id,
        "satisfaction": ticket.satisfaction,
        "due_at": ticket.due_at,
    }
    if status is not None:
        if status not in {s.value for s in TicketStatus}:
            raise InvalidInput(f"'{status}' is not a ticket status", field="status")
        ticket.status = status
        if status in (TicketStatus.RESOLVED, TicketStatus.CLOSED):
            ticket.resolved_at = ticket.resolved_at or utcnow()
        else:
            ticket.resolved_at = None
    if priority is not None:
        if priority not in {p.value for p in Priority}:
            raise InvalidInput(f"'{priority}' is not a priority", field="priority")
        ticket.priority = priority
    if assignee_id is not ...:
        ticket.assignee_id = _assignee(session, assignee_id, "assignee_id")  # type: ignore[arg-type]
    if satisfaction is not None:
        if not 1 <= int(satisfaction) <= 5:
            raise InvalidInput("must be between 1 and 5", field="satisfaction")
        ticket.satisfaction = int(satisfaction)
    if due_at is not None:
        ticket.due_at = _aware(due_at, "due_at")
    after = {
        "status": ticket.status,
        "priority": ticket.priority,
        "assignee_id": ticket.assignee_id,
        "satisfaction": ticket.satisfaction,
        "due_at": ticket.due_at,
    }
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="ticket.update",
        entity_type="ticket",
        entity_id=ticket.id,
        changes=audit.diff(before, after),
    )
    return ticket


def close_ticket(
    session: Session,
    *,
    actor: Actor,
    ticket_id: int,
    satisfaction: int | None = None,
    expected_version: int | None = None,
) -> Ticket:
    return update_ticket(
        session,
        actor=actor,
        ticket_id=ticket_id,
        status=TicketStatus.CLOSED,
        satisfaction=satisfaction,
        expected_version=expected_version,
    )


def add_ticket_note(session: Session, *, actor: Actor, ticket_id: int, body: str) -> TicketNote:
    require(actor, "ticket.create")
    ticket = _visible_child(session, actor, Ticket, ticket_id, "ticket")
    _customer_for(session, actor, ticket.customer_id, "ticket.create")
    body = clean_text(body) or ""
    if not body:
        raise InvalidInput("is required", field="body")
    note = TicketNote(ticket_id=ticket.id, author_id=actor.id, body=body)
    session.add(note)
    _audit_create(session, actor, "ticket_note", note, {"ticket_id": ticket.id})
    return note


def list_tickets(
    session: Session,
    *,
    actor: Actor,
    status: str | list[str] | None = None,
    kind: str | None = None,
    assignee_id: int | None = None,
    customer_id: int | None = None,
    limit: int = 500,
) -> list[Ticket]:
    """Tickets of visible customers: open ones first by priority and due time."""
    require(actor, "customer.read")
    stmt = select(Ticket).join(Customer, Customer.id == Ticket.customer_id)
    stmt = stmt.where(access.visible_customers(actor))
    if isinstance(status, str):
        stmt = stmt.where(Ticket.status == status)
    elif status:
        stmt = stmt.where(Ticket.status.in_(status))
    if kind:
        stmt = stmt.where(Ticket.kind == kind)
    if assignee_id is not None:
        stmt = stmt.where(Ticket.assignee_id == assignee_id)
    if customer_id is not None:
        stmt = stmt.where(Ticket.customer_id == customer_id)
    return list(
        session.scalars(stmt.order_by(Ticket.created_at.desc(), Ticket.id.desc()).limit(limit))
    )


# ---------------------------------------------------------------- tasks


def create_task(
    session: Session,
    *,
    actor: Actor,
    title: str,
    customer_id: int | None = None,
    assignee_id: int | None = None,
    due_at: datetime | None = None,
    remind_at: datetime | None = None,
    notes: str | None = None,
    source_key: str | None = None,
) -> Task:
    """A to-do for a user (the actor by default), optionally about a customer."""
    if customer_id is not None:
        _customer_for(session, actor, customer_id, "task.write")
    else:
        require(actor, "task.write")
    title = clean_text(title) or ""
    if not title:
        raise InvalidInput("is required", field="title")
    assignee = _assignee(session, assignee_id, "assignee_id") or actor.id
    if actor.role == Role.SALES and assignee != actor.id:
        raise PermissionDenied("sales users can only create tasks for themselves")
    task = Task(
        customer_id=customer_id,
        title=title,
        notes=clean_text(notes),
        assignee_id=assignee,
        created_by_id=actor.id,
        due_at=_aware(due_at, "due_at"),
        remind_at=_aware(remind_at, "remind_at"),
        source_key=source_key,
    )
    session.add(task)
    _audit_create(
        session,
        actor,
        "task",
        task,
        {"title": title, "customer_id": customer_id, "assignee_id": assignee, "due_at": due_at},
    )
    return task


def _own_task(session: Session, actor: Actor, task_id: int) -> Task:
    task = _visible_child(session, actor, Task, task_id, "task")
    if task.assignee_id != actor.id and actor.role not in (Role.ADMIN, Role.MANAGER, Role.SYSTEM):
        raise PermissionDenied(f"task {task_id} is assigned to someone else")
    return task


def complete_task(
    session: Session, *, actor: Actor, task_id: int, expected_version: int | None = None
) -> Task:
    task = _own_task(session, actor, task_id)
    _check_version(task, expected_version, f"task {task_id}")
    if task.done_at is not None:
        raise ConflictError(f"task {task_id} is done already")
    task.done_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="task.complete",
        entity_type="task",
        entity_id=task.id,
        changes={"done_at": [None, task.done_at]},
    )
    return task


def reschedule_task(
    session: Session,
    *,
    actor: Actor,
    task_id: int,
    due_at: datetime,
    expected_version: int | None = None,
) -> Task:
    task = _own_task(session, actor, task_id)
    _check_version(task, expected_version, f"task {task_id}")
    before = task.due_at
    task.due_at = _aware(due_at, "due_at")
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="task.reschedule",
        entity_type="task",
        entity_id=task.id,
        changes=audit.diff({"due_at": before}, {"due_at": task.due_at}),
    )
    return task


def list_tasks(
    session: Session,
    *,
    actor: Actor,
    assignee_id: int | None = None,
    include_done: bool = False,
    customer_id: int | None = None,
    limit: int = 500,
) -> list[Task]:
    """Tasks (the actor's own by default), overdue first, then by due time."""
    stmt = select(Task)
    if customer_id is not None:
        load_customer(session, actor=actor, customer_id=customer_id)
        stmt = stmt.where(Task.customer_id == customer_id)
    else:
        target = assignee_id if assignee_id is not None else actor.id
        if target != actor.id and actor.role not in (Role.ADMIN, Role.MANAGER):
            raise PermissionDenied("you may only list your own tasks")
        stmt = stmt.where(Task.assignee_id == target)
    if not include_done:
        stmt = stmt.where(Task.done_at.is_(None))
    stmt = stmt.order_by(Task.due_at.is_(None), Task.due_at, Task.id)
    return list(session.scalars(stmt.limit(limit)))


# ---------------------------------------------------------------- loyalty


def add_points(
    session: Session,
    *,
    actor: Actor,
    customer_id: int,
    points: int,
    reason: str,
    order_id: int | None = None,
) -> LoyaltyEntry:
    """Add (or with a negative number redeem) loyalty points; the balance never goes below 0."""
    customer = _customer_for(session, actor, customer_id, "loyalty.write")
    if not isinstance(points, int) or points == 0:
        raise InvalidInput("must be a non-zero whole number", field="points")
    reason = clean_text(reason) or ""
    if not reason:
        raise InvalidInput("is required", field="reason")
    if points < 0 and points_balance(session, actor=actor, customer_id=customer_id) + points < 0:
        raise InvalidInput("would make the balance negative", field="points")
    entry = LoyaltyEntry(customer_id=customer.id, points=points, reason=reason, order_id=order_id)
    session.add(entry)
    _audit_create(
        session,
        actor,
        "loyalty",
        entry,
        {"customer_id": customer.id, "points": points, "reason": reason},
    )
    return entry


def points_balance(session: Session, *, actor: Actor, customer_id: int) -> int:
    load_customer(session, actor=actor, customer_id=customer_id)
    total = session.scalar(
        select(func.coalesce(func.sum(LoyaltyEntry.points), 0)).where(
            LoyaltyEntry.customer_id == customer_id
        )
    )
    return int(total or 0)


# ---------------------------------------------------------------- timeline


@dataclass(frozen=True)
class TimelineItem:
    """One event of a customer's history."""

    kind: str  # interaction, deal, order, contract, ticket, task
    id: int
    at: datetime
    title: str
    detail: str = ""
    status: str = ""


def timeline(
    session: Session, *, actor: Actor, customer_id: int, limit: int = 200
) -> list[TimelineItem]:
    """Interactions, deals, orders, contracts, tickets and tasks of one customer, newest first.

    Support staff see interactions, tickets and tasks only.
    """
    load_customer(session, actor=actor, customer_id=customer_id)
    items: list[TimelineItem] = []

    def newest(model: Any, column: Any) -> list[Any]:
        stmt = (
            select(model)
            .where(model.customer_id == customer_id)
            .order_by(column.desc())
            .limit(limit)
        )
        return list(session.scalars(stmt))

    for i in newest(Interaction, Interaction.occurred_at):
        items.append(
            TimelineItem("interaction", i.id, i.occurred_at, i.subject, i.body or "", i.kind)
        )
    for t in newest(Ticket, Ticket.created_at):
        items.append(TimelineItem("ticket", t.id, t.created_at, t.subject, t.kind, t.status))
    for k in newest(Task, Task.created_at):
        items.append(
            TimelineItem(
                "task", k.id, k.created_at, k.title, k.notes or "", "done" if k.done_at else "open"
            )
        )
    if actor.role != Role.SUPPORT:
        for d in newest(Deal, Deal.created_at):
            items.append(
                TimelineItem(
                    "deal",
                    d.id,
                    d.created_at,
                    d.title,
                    f"{d.amount} {d.currency} · {d.stage}",
                    d.status,
                )
            )
        for o in newest(Order, Order.ordered_at):
            items.append(
                TimelineItem(
                    "order", o.id, o.ordered_at, o.number, f"{o.total} {o.currency}", o.status
                )
            )
        for c in newest(Contract, Contract.created_at):
            items.append(
                TimelineItem(
                    "contract",
                    c.id,
                    c.created_at,
                    c.title,
                    f"{c.start_date} – {c.end_date}",
                    c.status,
                )
            )
    from crm_core.lowcode.records import timeline_items  # records of custom modules

    items.extend(timeline_items(session, actor=actor, customer_id=customer_id, limit=limit))
    items.sort(key=lambda item: (item.at, item.id), reverse=True)
    return items[:limit]


# ---------------------------------------------------------------- pipeline board


@dataclass(frozen=True)
class BoardColumn:
    """One stage of the pipeline board: its deals and their count and amounts per currency."""

    stage: PipelineStage
    deals: list[Deal]
    count: int
    amounts: dict[str, Decimal]


def pipeline_board(
    session: Session,
    *,
    actor: Actor,
    owner_id: int | None = None,
    team_id: int | None = None,
    per_stage: int = 100,
) -> list[BoardColumn]:
    """Deals the actor may see, grouped by stage in board order, with the count and amount per
    stage over every matching deal (each column lists its ``per_stage`` newest deals)."""
    require(actor, "customer.read")
    if actor.role == Role.SUPPORT:
        raise PermissionDenied("support staff do not see deals")
    stmt = (
        select(Deal.stage, Deal.currency, func.count(Deal.id), func.sum(Deal.amount))
        .join(Customer, Customer.id == Deal.customer_id)
        .where(access.visible_customers(actor))
    )
    if owner_id is not None:
        stmt = stmt.where(Deal.owner_id == owner_id)
    if team_id is not None:
        stmt = stmt.where(Customer.team_id == team_id)
    counts: dict[str, int] = {}
    amounts: dict[str, dict[str, Decimal]] = {}
    for stage_key, currency, count, total in session.execute(
        stmt.group_by(Deal.stage, Deal.currency)
    ):
        counts[stage_key] = counts.get(stage_key, 0) + int(count)
        amounts.setdefault(stage_key, {})[currency] = Decimal(str(total or 0))
    columns = []
    for stage in pipeline_stages(session):
        deals_stmt = (
            select(Deal)
            .join(Customer, Customer.id == Deal.customer_id)
            .where(access.visible_customers(actor), Deal.stage == stage.key)
        )
        if owner_id is not None:
            deals_stmt = deals_stmt.where(Deal.owner_id == owner_id)
        if team_id is not None:
            deals_stmt = deals_stmt.where(Customer.team_id == team_id)
        shown = list(session.scalars(deals_stmt.order_by(Deal.id.desc()).limit(per_stage)))
        columns.append(
            BoardColumn(stage, shown, counts.get(stage.key, 0), amounts.get(stage.key, {}))
        )
    return columns
