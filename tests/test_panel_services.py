"""Services behind the web panel: log-in sessions, saved filters and bulk actions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from conftest import PASSWORD
from sqlalchemy import select

from crm_core import bulk_actions, saved_filters, sessions
from crm_core import customers as svc
from crm_core import users as user_service
from crm_core.customers import CustomerFilter
from crm_core.errors import InvalidInput, NotFound, PermissionDenied
from crm_core.models import AuditEntry, Customer, LoginSession

T0 = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)


def _login(db, username="sales1", password=PASSWORD, now=T0, address="10.0.0.1"):
    with db.transaction() as s:
        return sessions.login(s, username=username, password=password, address=address, now=now)


# ---------------------------------------------------------------- sessions


def test_login_gives_a_token_and_stores_only_its_hash(db, staff):
    outcome = _login(db)
    assert outcome.ok and outcome.token and outcome.user_id == staff.sales1.id
    with db.transaction() as s:
        row = s.scalar(select(LoginSession))
        assert row.token_hash != outcome.token and len(row.token_hash) == 64
        assert outcome.token not in str(s.scalars(select(AuditEntry.detail)).all())
        user = sessions.resolve(s, token=outcome.token, now=T0 + timedelta(minutes=1))
        assert user is not None and user.username == "sales1"


def test_wrong_password_opens_no_session_and_is_audited(db, staff):
    outcome = _login(db, password="wrong-password-1")
    assert not outcome.ok and outcome.token is None and outcome.reason == "invalid"
    with db.transaction() as s:
        assert s.scalar(select(LoginSession)) is None
        actions = s.scalars(select(AuditEntry.action)).all()
        assert "auth.login_failed" in actions


def test_repeated_failures_slow_down_but_never_lock_for_good(db, staff):
    for i in range(5):
        assert not _login(db, password="nope-nope-nope", now=T0 + timedelta(seconds=i)).ok
    throttled = _login(db, now=T0 + timedelta(seconds=4, milliseconds=500))
    assert not throttled.ok and throttled.reason == "throttled" and throttled.retry_after > 0
    later = _login(db, now=T0 + timedelta(minutes=20))
    assert later.ok


def test_idle_session_expires_and_activity_keeps_it_alive(db, staff, monkeypatch):
    monkeypatch.setenv("CRM_SESSION_IDLE_MINUTES", "30")
    token = _login(db).token
    with db.transaction() as s:
        # activity every 20 minutes keeps it alive past 30 minutes
        assert sessions.resolve(s, token=token, now=T0 + timedelta(minutes=20))
        assert sessions.resolve(s, token=token, now=T0 + timedelta(minutes=40))
    with db.transaction() as s:
        assert sessions.resolve(s, token=token, now=T0 + timedelta(minutes=71)) is None
    with db.transaction() as s:
        row = s.scalar(select(LoginSession))
        assert row.end_reason == "idle" and row.ended_at is not None
        # an ended session never comes back
        assert sessions.resolve(s, token=token, now=T0 + timedelta(minutes=72)) is None
        assert "auth.session_idle" in s.scalars(select(AuditEntry.action)).all()


def test_absolute_lifetime_ends_even_an_active_session(db, staff, monkeypatch):
    monkeypatch.setenv("CRM_SESSION_MAX_HOURS", "2")
    token = _login(db).token
    with db.transaction() as s:
        for minutes in range(10, 120, 10):
            assert sessions.resolve(s, token=token, now=T0 + timedelta(minutes=minutes))
        assert sessions.resolve(s, token=token, now=T0 + timedelta(minutes=121)) is None
        assert s.scalar(select(LoginSession.end_reason)) == "expired"


def test_logout_ends_the_session_on_the_server(db, staff):
    token = _login(db).token
    with db.transaction() as s:
        assert sessions.end_session(s, token=token)
    with db.transaction() as s:
        assert sessions.resolve(s, token=token) is None
        assert not sessions.end_session(s, token=token)
        assert s.scalar(select(LoginSession.end_reason)) == "logout"


def test_deactivation_and_password_reset_revoke_sessions(db, staff):
    now = datetime.now(UTC)
    token1 = _login(db, now=now).token
    with db.transaction() as s:
        user_service.update_user(s, actor=staff.admin, user_id=staff.sales1.id, active=False)
    with db.transaction() as s:
        assert sessions.resolve(s, token=token1) is None
    token2 = _login(db, username="sales2", now=now).token
    with db.transaction() as s:
        user_service.set_password(
            s, actor=staff.admin, user_id=staff.sales2.id, password="another-long-pass"
        )
    with db.transaction() as s:
        assert sessions.resolve(s, token=token2) is None


def test_unknown_or_empty_token_resolves_to_nobody(db, staff):
    with db.transaction() as s:
        assert sessions.resolve(s, token=None) is None
        assert sessions.resolve(s, token="forged-token") is None


def test_end_user_sessions_needs_admin(db, staff):
    _login(db, now=datetime.now(UTC))
    with db.transaction() as s, pytest.raises(PermissionDenied):
        sessions.end_user_sessions(s, actor=staff.sales2, user_id=staff.sales1.id)
    with db.transaction() as s:
        assert sessions.end_user_sessions(s, actor=staff.admin, user_id=staff.sales1.id) == 1
        assert sessions.live_sessions(s, user_id=staff.sales1.id) == []


# ---------------------------------------------------------------- saved filters


def test_saved_filters_round_trip_and_stay_private(db, staff):
    flt = CustomerFilter(
        query="wang", lifecycle_stage="lead", created_from=datetime(2024, 1, 1, tzinfo=UTC)
    )
    with db.transaction() as s:
        row = saved_filters.save_filter(s, actor=staff.sales1, name="My leads", filters=flt)
        fid = row.id
    with db.transaction() as s:
        assert [f.name for f in saved_filters.list_filters(s, actor=staff.sales1)] == ["My leads"]
        assert saved_filters.list_filters(s, actor=staff.sales2) == []
        assert saved_filters.get_filter(s, actor=staff.sales1, filter_id=fid) == flt
        with pytest.raises(NotFound):
            saved_filters.get_filter(s, actor=staff.sales2, filter_id=fid)
        with pytest.raises(NotFound):
            saved_filters.delete_filter(s, actor=staff.sales2, filter_id=fid)
    with db.transaction() as s:
        # saving under the same name overwrites
        saved_filters.save_filter(s, actor=staff.sales1, name="My leads", filters={"city": "杭州"})
    with db.transaction() as s:
        assert saved_filters.get_filter(s, actor=staff.sales1, filter_id=fid) == CustomerFilter(
            city="杭州"
        )
        saved_filters.delete_filter(s, actor=staff.sales1, filter_id=fid)
    with db.transaction() as s:
        assert saved_filters.list_filters(s, actor=staff.sales1) == []


@pytest.mark.parametrize(
    ("name", "filters", "field"),
    [
        ("", {}, "name"),
        ("x", {"shoe_size": 1}, "filters"),
        ("x", {"owner_id": "abc"}, "owner_id"),
        ("x", {"created_from": "yesterday"}, "created_from"),
    ],
)
def test_saved_filter_validation_names_the_field(db, staff, name, filters, field):
    with db.transaction() as s, pytest.raises(InvalidInput) as err:
        saved_filters.save_filter(s, actor=staff.sales1, name=name, filters=filters)
    assert err.value.field == field


# ---------------------------------------------------------------- bulk actions


def _customers(db, actor, n, **data):
    ids = []
    with db.transaction() as s:
        for i in range(n):
            ids.append(svc.create_customer(s, actor=actor, data={"name": f"C{i}", **data}).id)
    return ids


def _audit_count(db, action):
    with db.transaction() as s:
        return len(s.scalars(select(AuditEntry).where(AuditEntry.action == action)).all())


def test_bulk_tag_and_stage_audit_every_record(db, staff):
    ids = _customers(db, staff.sales1, 3, tags=["old"])
    before = _audit_count(db, "customer.update")
    with db.transaction() as s:
        result = bulk_actions.apply_bulk(
            s, actor=staff.sales1, action="tag", customer_ids=ids, value="hot"
        )
    assert (result.selected, result.changed) == (3, 3)
    with db.transaction() as s:
        result = bulk_actions.apply_bulk(
            s, actor=staff.sales1, action="change_stage", customer_ids=ids, value="prospect"
        )
    assert result.changed == 3
    with db.transaction() as s:
        for cid in ids:
            out = svc.get_customer(s, actor=staff.sales1, customer_id=cid)
            assert out.tags == ["hot", "old"] and out.lifecycle_stage == "prospect"
        sources = s.scalars(
            select(AuditEntry.source).where(AuditEntry.action == "customer.update")
        ).all()
        assert sources.count("bulk") == 6
    assert _audit_count(db, "customer.update") == before + 6


def test_bulk_is_all_or_nothing(db, staff):
    mine = _customers(db, staff.sales1, 2)
    theirs = _customers(db, staff.sales2, 1, lifecycle_stage="customer")
    with pytest.raises(NotFound) as err, db.transaction() as s:
        bulk_actions.apply_bulk(
            s, actor=staff.sales1, action="tag", customer_ids=[*mine, *theirs], value="hot"
        )
    assert f"customer {theirs[0]}" in str(err.value)
    with db.transaction() as s:
        assert all(not s.get(Customer, cid).tags for cid in mine)


def test_bulk_respects_role_rights(db, staff):
    ids = _customers(db, staff.manager, 2)
    with db.transaction() as s, pytest.raises(PermissionDenied):
        bulk_actions.apply_bulk(
            s, actor=staff.sales1, action="archive", customer_ids=ids, reason="gone"
        )
    with db.transaction() as s, pytest.raises(PermissionDenied):
        bulk_actions.apply_bulk(s, actor=staff.analyst, action="tag", customer_ids=ids, value="x")
    with db.transaction() as s, pytest.raises(PermissionDenied):
        # a manager may only assign within the own team
        bulk_actions.apply_bulk(
            s, actor=staff.manager, action="assign_owner", customer_ids=ids, value=staff.sales2.id
        )
    with db.transaction() as s:
        result = bulk_actions.apply_bulk(
            s, actor=staff.manager, action="assign_owner", customer_ids=ids, value=staff.sales1.id
        )
        assert result.changed == 2
    with db.transaction() as s:
        assert {s.get(Customer, cid).owner_id for cid in ids} == {staff.sales1.id}


def test_bulk_archive_needs_a_reason_and_archives_all(db, staff):
    ids = _customers(db, staff.manager, 3)
    with db.transaction() as s, pytest.raises(InvalidInput) as err:
        bulk_actions.apply_bulk(s, actor=staff.manager, action="archive", customer_ids=ids)
    assert err.value.field == "reason"
    with db.transaction() as s:
        bulk_actions.apply_bulk(
            s, actor=staff.manager, action="archive", customer_ids=ids, reason="moved away"
        )
    with db.transaction() as s:
        page = svc.list_customers(s, actor=staff.manager, filters=CustomerFilter(archived=True))
        assert sorted(c.id for c in page.items) == sorted(ids)
        assert {c.archive_reason for c in page.items} == {"moved away"}
    assert _audit_count(db, "customer.archive") == 3


@pytest.mark.parametrize(
    ("action", "ids", "field"),
    [("explode", [1], "action"), ("tag", [], "customer_ids"), ("tag", ["x"], "customer_ids")],
)
def test_bulk_rejects_bad_requests(db, staff, action, ids, field):
    with db.transaction() as s, pytest.raises(InvalidInput) as err:
        bulk_actions.apply_bulk(s, actor=staff.admin, action=action, customer_ids=ids, value="t")
    assert err.value.field == field


# ---------------------------------------------------------------- service additions for the panel


def test_customer_names_only_visible_and_masked_for_analysts(db, staff):
    mine = _customers(db, staff.sales1, 1, name="王小明")[0]
    theirs = _customers(db, staff.sales2, 1, name="Other", lifecycle_stage="customer")[0]
    with db.transaction() as s:
        assert svc.customer_names(s, actor=staff.sales1, customer_ids=[mine, theirs]) == {
            mine: "王小明"
        }
        assert svc.customer_names(s, actor=staff.analyst, customer_ids=[mine]) == {mine: "王**"}


def test_pipeline_board_counts_and_sums_per_stage(db, staff):
    from decimal import Decimal

    from crm_core import activities

    cid = _customers(db, staff.sales1, 1)[0]
    other = _customers(db, staff.sales2, 1, lifecycle_stage="customer")[0]
    with db.transaction() as s:
        activities.create_deal(s, actor=staff.sales1, customer_id=cid, title="A", amount="100")
        activities.create_deal(s, actor=staff.sales1, customer_id=cid, title="B", amount="50.5")
        activities.create_deal(
            s, actor=staff.sales1, customer_id=cid, title="C", amount="7", stage="proposal"
        )
        activities.create_deal(s, actor=staff.sales2, customer_id=other, title="X", amount="9")
    with db.transaction() as s:
        board = {c.stage.key: c for c in activities.pipeline_board(s, actor=staff.sales1)}
        assert board["new"].count == 2 and board["new"].amounts == {"CNY": Decimal("150.50")}
        assert [d.title for d in board["new"].deals] == ["B", "A"]
        assert board["proposal"].count == 1 and board["won"].count == 0
        full = {c.stage.key: c for c in activities.pipeline_board(s, actor=staff.admin)}
        assert full["new"].count == 3
        with pytest.raises(PermissionDenied):
            activities.pipeline_board(s, actor=staff.support)
