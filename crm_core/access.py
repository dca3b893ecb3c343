"""Roles and record-level access: the one policy every service, report and export applies.

| role          | sees                                   | may change                              |
| ------------- | -------------------------------------- | --------------------------------------- |
| admin         | everything                             | everything                              |
| manager       | own team's customers                   | team's records, archive/restore, owners |
| sales         | own customers and unowned leads        | own customers and their history         |
| support       | all customers, contact fields only     | tickets, interactions                   |
| data_steward  | all customers                          | imports, duplicate review, merges       |
| analyst       | all customers, personal fields masked  | nothing                                 |
"""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import ColumnElement, CompoundSelect, Select, and_, false, or_, select, true, union

from crm_core.errors import PermissionDenied
from crm_core.models import Customer, Lifecycle, Role


class Actor(Protocol):
    """Who acts: any object with these attributes (normally a ``User``)."""

    id: int
    username: str
    role: str
    team_id: int | None


A, M, S, SU, DS, AN, SY = (
    Role.ADMIN,
    Role.MANAGER,
    Role.SALES,
    Role.SUPPORT,
    Role.DATA_STEWARD,
    Role.ANALYST,
    Role.SYSTEM,
)

#: What each role may do at all; record scope is checked separately.
PERMISSIONS: dict[str, frozenset[str]] = {
    "customer.read": frozenset({A, M, S, SU, DS, AN, SY}),
    "customer.create": frozenset({A, M, S, DS, SY}),
    "customer.update": frozenset({A, M, S, SY}),
    "customer.archive": frozenset({A, M, SY}),
    "customer.restore": frozenset({A, M, SY}),
    "customer.reassign": frozenset({A, M, SY}),
    "customer.erase": frozenset({A, SY}),
    "interaction.write": frozenset({A, M, S, SU, SY}),
    "deal.write": frozenset({A, M, S, SY}),
    "order.write": frozenset({A, M, S, SY}),
    "contract.write": frozenset({A, M, S, SY}),
    "ticket.create": frozenset({A, M, S, SU, SY}),
    "ticket.manage": frozenset({A, M, SU, SY}),
    "task.write": frozenset({A, M, S, SU, DS, SY}),
    "loyalty.write": frozenset({A, M, S, SY}),
    "import.run": frozenset({A, DS, SY}),
    "export.run": frozenset({A, M, S, DS, AN}),
    "dedupe.review": frozenset({A, M, DS}),
    "dedupe.merge": frozenset({A, M, DS}),
    "reports.read": frozenset({A, M, S, AN, DS, SY}),
    "users.manage": frozenset({A}),
    "settings.manage": frozenset({A, SY}),
    "audit.read": frozenset({A}),
    "automation.manage": frozenset({A, SY}),
}

#: Fields support staff see; everything else of a customer is hidden from them.
CONTACT_FIELDS = frozenset(
    {
        "id",
        "kind",
        "name",
        "company_id",
        "company_name",
        "position",
        "phone",
        "phones",
        "email",
        "emails",
        "country",
        "province",
        "city",
        "district",
        "street",
        "postcode",
        "lifecycle_stage",
        "owner_id",
        "team_id",
        "archived_at",
        "merged_into_id",
        "anonymised_at",
        "version",
        "created_at",
        "updated_at",
        "tags",
        "last_contact_at",
    }
)

#: Personal fields an analyst sees masked.
PERSONAL_FIELDS = frozenset(
    {"name", "phone", "phones", "email", "emails", "street", "postcode", "birthday", "notes"}
)

UNRESTRICTED_READERS = frozenset({A, SU, DS, AN, SY})


def can(actor: Actor, permission: str) -> bool:
    """True when the actor's role grants ``permission``."""
    return actor.role in PERMISSIONS.get(permission, frozenset())


def require(actor: Actor, permission: str) -> None:
    """Raise ``PermissionDenied`` unless the actor's role grants ``permission``."""
    if not can(actor, permission):
        raise PermissionDenied(f"role '{actor.role}' may not {permission.replace('.', ' ')}")


def visible_customers(actor: Actor) -> ColumnElement[bool]:
    """SQL condition selecting the customers the actor may see (tombstones never included)."""
    base = Customer.merged_into_id.is_(None)
    if actor.role in UNRESTRICTED_READERS:
        return base
    if actor.role == Role.MANAGER:
        return and_(base, or_(*manager_sees(actor)))
    if actor.role == Role.SALES:
        unowned_lead = and_(Customer.owner_id.is_(None), Customer.lifecycle_stage == Lifecycle.LEAD)
        return and_(base, or_(Customer.owner_id == actor.id, unowned_lead))
    return false()


def manager_sees(actor: Actor) -> list[ColumnElement[bool]]:
    """The manager's rule in parts: conditions on ``Customer``, any one of which lets the
    manager see a customer that is not merged into another (their team's, when they have a
    team, and their own). ``visible_customers`` and ``manager_customer_ids`` both use it."""
    parts: list[ColumnElement[bool]] = []
    if actor.team_id is not None:
        parts.append(Customer.team_id == actor.team_id)
    parts.append(Customer.owner_id == actor.id)
    return parts


def manager_customer_ids(actor: Actor) -> Select[Any] | CompoundSelect[Any]:
    """A ``SELECT`` of the ids of the customers a manager sees, without the merged test of
    ``visible_customers`` (the caller adds it): one select per part of ``manager_sees`` (the
    team index, the owner index), in a ``UNION`` when there are two."""
    parts = [select(Customer.id).where(part) for part in manager_sees(actor)]
    return parts[0] if len(parts) == 1 else union(*parts)


def visible_to_users(users: Any, customers: Any = Customer) -> ColumnElement[bool]:
    """The SQL twin of ``visible_customers`` for a *joined* users table: true where the user
    row ``users`` may see the customer row ``customers``. Set-based work (notifications of many
    recipients at once) filters with it instead of one query per recipient."""
    base = customers.merged_into_id.is_(None)
    manager = and_(
        users.role == M,
        or_(
            customers.owner_id == users.id,
            and_(users.team_id.is_not(None), customers.team_id == users.team_id),
        ),
    )
    sales = and_(
        users.role == S,
        or_(
            customers.owner_id == users.id,
            and_(customers.owner_id.is_(None), customers.lifecycle_stage == Lifecycle.LEAD),
        ),
    )
    return and_(base, or_(users.role.in_(sorted(UNRESTRICTED_READERS)), manager, sales))


def can_see(actor: Actor, customer: Customer) -> bool:
    """The Python twin of ``visible_customers`` for one loaded record."""
    if customer.merged_into_id is not None:
        return False
    if actor.role in UNRESTRICTED_READERS:
        return True
    if actor.role == Role.MANAGER:
        return customer.owner_id == actor.id or (
            actor.team_id is not None and customer.team_id == actor.team_id
        )
    if actor.role == Role.SALES:
        return customer.owner_id == actor.id or (
            customer.owner_id is None and customer.lifecycle_stage == Lifecycle.LEAD
        )
    return False


def can_change(actor: Actor, customer: Customer) -> bool:
    """May the actor change this customer record (and its history)?"""
    if actor.role in (A, SY):
        return True
    if actor.role in (M, S):
        return can_see(actor, customer)
    return False


def changeable_customers(actor: Actor) -> ColumnElement[bool]:
    """SQL condition selecting the customers the actor may change."""
    if actor.role in (A, SY):
        return Customer.merged_into_id.is_(None)
    if actor.role in (M, S):
        return visible_customers(actor)
    return false()


def all_rows() -> ColumnElement[bool]:
    return true()


# ---------------------------------------------------------------- masking


def mask_name(name: str | None) -> str | None:
    """``王小明`` -> ``王**``; ``John Smith`` -> ``J*** S****``."""
    if not name:
        return name
    if " " not in name and any("\u4e00" <= ch <= "\u9fff" for ch in name):
        return name[0] + "*" * (len(name) - 1)
    return " ".join(part[:1] + "*" * (len(part) - 1) for part in name.split(" "))


def mask_phone(phone: str | None) -> str | None:
    """Keep the country code and the last four digits: ``+86138****8000`` -> ``+86*******8000``."""
    if not phone:
        return phone
    keep_head = 3 if phone.startswith("+") else 0
    return phone[:keep_head] + "*" * max(0, len(phone) - keep_head - 4) + phone[-4:]


def mask_email(email: str | None) -> str | None:
    """``john.doe@example.com`` -> ``j***@example.com``."""
    if not email or "@" not in email:
        return email
    local, _, domain = email.rpartition("@")
    return f"{local[:1]}***@{domain}"


def mask_value(field: str, value: Any) -> Any:
    """Mask one personal field for readers who may not see it in clear."""
    if value is None:
        return None
    if field == "name":
        return mask_name(value)
    if field == "phone":
        return mask_phone(value)
    if field == "email":
        return mask_email(value)
    if field == "phones":
        return [mask_phone(v) for v in value]
    if field == "emails":
        return [mask_email(v) for v in value]
    return None


def shape_for(actor: Actor, data: dict[str, Any]) -> dict[str, Any]:
    """Apply the actor's field rules to a customer dict: support sees contact fields only,
    analysts see personal fields masked. Everyone else sees it whole."""
    if actor.role == Role.SUPPORT:
        return {k: (v if k in CONTACT_FIELDS else None) for k, v in data.items()}
    if actor.role == Role.ANALYST:
        return {k: (mask_value(k, v) if k in PERSONAL_FIELDS else v) for k, v in data.items()}
    return data


def field_mode(actor: Actor) -> str:
    """``full``, ``contact`` (support) or ``masked`` (analyst)."""
    return {Role.SUPPORT: "contact", Role.ANALYST: "masked"}.get(actor.role, "full")  # type: ignore[call-overload]
