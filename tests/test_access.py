"""A manager's rule ("their team's customers or their own") is written once, in
``access.manager_sees``: the condition of ``access.visible_customers``, the ids of
``access.manager_customer_ids`` and the ids a manager's reports read on SQLite
(``reports.filters._team_customer_ids``) select the same customers, and all three follow
the rule when it changes."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy import select, update

from crm_core import access
from crm_core import customers as svc
from crm_core.models import Customer
from crm_core.reports import filters as report_filters


def _customers(db, staff) -> dict[str, int]:
    """Customers of team A (sales1's, the manager's), of team B (sales2's, one of them owned
    by the manager), an unowned lead, and one of team A merged into another."""
    owners = {
        "a_sales": staff.sales1,
        "a_manager": staff.manager,
        "b_sales": staff.sales2,
        "b_manager": staff.sales2,
        "lead": None,
        "a_merged": staff.sales1,
    }
    ids: dict[str, int] = {}
    with db.transaction() as s:
        for key, owner in owners.items():
            data = {"name": key, "owner_id": owner.id if owner else None}
            if owner is None:
                data["lifecycle_stage"] = "lead"
            ids[key] = svc.create_customer(s, actor=staff.admin, data=data).id
        s.execute(
            update(Customer)
            .where(Customer.id == ids["b_manager"])
            .values(owner_id=staff.manager.id)
        )
        s.execute(
            update(Customer)
            .where(Customer.id == ids["a_merged"])
            .values(merged_into_id=ids["a_sales"])
        )
    return ids


def _seen(db, actor) -> tuple[set[int], set[int], set[int] | None]:
    """Ids selected by ``visible_customers``, by ``manager_customer_ids`` less the merged
    ones, and by the reports' team ids less the merged ones (``None`` off SQLite)."""
    with db.transaction() as s:
        merged = set(s.scalars(select(Customer.id).where(Customer.merged_into_id.is_not(None))))
        visible = set(s.scalars(select(Customer.id).where(access.visible_customers(actor))))
        ids = set(s.scalars(access.manager_customer_ids(actor))) - merged
        team = report_filters._team_customer_ids(s, actor, None)
        reported = None if team is None else set(s.scalars(team)) - merged
    return visible, ids, reported


@pytest.mark.parametrize("team", [True, False], ids=["team", "no-team"])
def test_manager_visibility_and_report_ids_follow_one_rule(db, staff, monkeypatch, team):
    ids = _customers(db, staff)
    manager = SimpleNamespace(
        id=staff.manager.id,
        username=staff.manager.username,
        role=staff.manager.role,
        team_id=staff.team_a if team else None,
    )
    names = {v: k for k, v in ids.items()}

    visible, listed, reported = _seen(db, manager)
    want = {"a_sales", "a_manager", "b_manager"} if team else {"a_manager", "b_manager"}
    assert {names[i] for i in visible} == want
    assert listed == visible
    assert reported == (visible if db.dialect == "sqlite" else None)

    # a changed rule (own customers and unowned ones, no team) is followed by all three
    monkeypatch.setattr(
        access,
        "manager_sees",
        lambda actor: [Customer.owner_id == actor.id, Customer.owner_id.is_(None)],
    )
    visible, listed, reported = _seen(db, manager)
    assert {names[i] for i in visible} == {"a_manager", "b_manager", "lead"}
    assert listed == visible
    assert reported == (visible if db.dialect == "sqlite" else None)
