"""Role permissions per custom module and the record scope of each user.

A module stores which roles may ``read``, ``create``, ``edit`` and ``archive`` its records.
Record scope follows the customer access policy of ``crm_core.access``: a record linked to a
customer is visible to whoever may see that customer (``access.visible_customers``), so sales
users see the records of their own customers only; a record without a customer is visible to
its creator and to the roles that see every customer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, true

from crm_core import access
from crm_core.access import Actor
from crm_core.errors import InvalidInput, PermissionDenied
from crm_core.models import Customer, CustomModule, ModuleRecord, Role

ACTIONS = ("read", "create", "edit", "archive")
ROLES = tuple(r.value for r in Role if r != Role.SYSTEM)

#: What a new module allows unless the admin says otherwise.
DEFAULT_PERMISSIONS: dict[str, list[str]] = {
    "read": list(ROLES),
    "create": [Role.ADMIN, Role.MANAGER, Role.SALES],
    "edit": [Role.ADMIN, Role.MANAGER, Role.SALES],
    "archive": [Role.ADMIN, Role.MANAGER],
}


def clean_permissions(raw: Mapping[str, Any] | None) -> dict[str, list[str]]:
    """Validated ``{action: [roles]}``; missing actions take the defaults; admins always may."""
    result: dict[str, list[str]] = {}
    for action in ACTIONS:
        roles = (raw or {}).get(action, DEFAULT_PERMISSIONS[action])
        unknown = [r for r in roles if r not in ROLES]
        if unknown:
            raise InvalidInput(f"unknown role '{unknown[0]}'", field=f"permissions.{action}")
        result[action] = sorted({Role.ADMIN.value, *roles})
    return result


def can(actor: Actor, module: CustomModule, action: str) -> bool:
    """May the actor's role do ``action`` on records of ``module``?"""
    if actor.role == Role.SYSTEM:
        return True
    allowed = (module.permissions or DEFAULT_PERMISSIONS).get(action, [])
    return actor.role in allowed or actor.role == Role.ADMIN


def require(actor: Actor, module: CustomModule, action: str) -> None:
    """Raise ``PermissionDenied`` unless the role may do ``action`` on this module."""
    if not can(actor, module, action):
        raise PermissionDenied(
            f"role '{actor.role}' may not {action} records of module '{module.key}'"
        )


def visible_records(actor: Actor) -> ColumnElement[bool]:
    """SQL condition on ``ModuleRecord``: the records the actor may see."""
    if actor.role in access.UNRESTRICTED_READERS:
        return true()
    customers = select(Customer.id).where(access.visible_customers(actor))
    return or_(
        ModuleRecord.customer_id.in_(customers),
        and_(ModuleRecord.customer_id.is_(None), ModuleRecord.created_by_id == actor.id),
    )


def can_see(actor: Actor, record: ModuleRecord, customer: Customer | None) -> bool:
    """The Python twin of ``visible_records`` for one loaded record (and its customer)."""
    if actor.role in access.UNRESTRICTED_READERS:
        return True
    if record.customer_id is None:
        return record.created_by_id == actor.id
    return customer is not None and access.can_see(actor, customer)
