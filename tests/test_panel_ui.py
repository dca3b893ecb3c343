"""The web panel through NiceGUI's ``User`` fixture: what each role sees and is refused,
log-in, sessions, list, search, filters, saved filters, bulk actions, editing, conflicts,
archive and restore, pipeline, tickets, tasks, admin and the language switch."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from nicegui import ui
from nicegui.testing import User
from panel_fixtures import *  # noqa: F403  (the panel and ui_user fixtures)
from panel_fixtures import Panel, grid_names, grid_rows, login
from sqlalchemy import select, update

from crm_core import activities
from crm_core import customers as svc
from crm_core.models import AuditEntry, Customer, Deal, LoginSession, Task, Ticket
from crm_core.models import User as UserRow


def choose(user: User, marker: str, value: object) -> None:
    """Pick a value in a select/input as a person would (fires its change handlers)."""
    with user:
        for element in user.find(marker=marker).elements:
            element.value = value


async def settle() -> None:
    """Let background refreshes (fire-and-forget in NiceGUI) run before the next step."""
    for _ in range(10):
        await asyncio.sleep(0)


async def eventually(probe, expected, tries: int = 30) -> None:
    """Wait for a background refresh: ``probe()`` must return ``expected`` soon."""
    for _ in range(tries):
        if probe() == expected:
            return
        await asyncio.sleep(0.05)
    assert probe() == expected


def tick(user: User, ids: list[int]) -> None:
    """Tick rows in the grid as a person would (AG Grid sends one rowSelected per row)."""
    for row_id in ids:
        user.find(ui.aggrid).trigger("rowSelected", {"id": row_id, "selected": True})


def stage_of(user: User, deal_id: int) -> str:
    """The marker of the board column that shows the deal card."""
    card = next(iter(user.find(marker=f"deal-{deal_id}").elements))
    with user:
        for parent in card.ancestors():
            for marker in parent._markers:
                if marker.startswith("stage-"):
                    return marker
    return ""


def audit_actions(panel: Panel) -> list[str]:
    with panel.db.transaction() as s:
        return list(s.scalars(select(AuditEntry.action)))


# ---------------------------------------------------------------- log-in, sessions, log-out


async def test_pages_need_a_login(ui_user: User, panel: Panel) -> None:
    for path in ("/customers", "/customers/1", "/archive", "/pipeline", "/admin/users"):
        response = await ui_user.http_client.get(path)
        assert response.status_code == 303 and response.headers["location"].startswith("/login")
    await ui_user.open("/customers")  # follows the redirect
    await ui_user.should_see(marker="login-button")
    api = await ui_user.http_client.get("/_nicegui/client/x/upload/1")
    assert api.status_code in (401, 303)


async def test_wrong_password_is_refused_and_audited(ui_user: User, panel: Panel) -> None:
    await ui_user.open("/login")
    ui_user.find(marker="username").type("sales1")
    ui_user.find(marker="password").type("wrong-password")
    ui_user.find(marker="login-button").click()
    await ui_user.should_see("Wrong username or password.")
    await ui_user.should_not_see(marker="customer-grid")
    assert "auth.login_failed" in audit_actions(panel)


async def test_repeated_failures_are_throttled(ui_user: User, panel: Panel) -> None:
    await ui_user.open("/login")
    for _ in range(6):
        ui_user.find(marker="password").type("wrong-password")
        ui_user.find(marker="username").clear()
        ui_user.find(marker="username").type("sales1")
        ui_user.find(marker="login-button").click()
    await ui_user.should_see("Too many failed attempts")
    # even the right password waits now
    ui_user.find(marker="password").type("correct-horse-battery")
    ui_user.find(marker="login-button").click()
    await ui_user.should_see("Too many failed attempts")
    assert "auth.login_throttled" in audit_actions(panel)


async def test_logout_ends_the_session_on_the_server(ui_user: User, panel: Panel) -> None:
    await login(ui_user, "sales1")
    ui_user.find(marker="logout").click()
    await ui_user.should_see(marker="login-button")
    with panel.db.transaction() as s:
        assert s.scalar(select(LoginSession.end_reason)) == "logout"
    response = await ui_user.http_client.get("/customers")
    assert response.status_code == 303


async def test_idle_session_expires(ui_user: User, panel: Panel) -> None:
    await login(ui_user, "sales1")
    with panel.db.transaction() as s:
        s.execute(update(LoginSession).values(last_seen_at=datetime.now(UTC) - timedelta(hours=1)))
    await ui_user.open("/customers")
    await ui_user.should_see(marker="login-button")
    with panel.db.transaction() as s:
        assert s.scalar(select(LoginSession.end_reason)) == "idle"


async def test_action_after_expiry_sends_to_login(ui_user: User, panel: Panel) -> None:
    cid = panel.customer(panel.staff.sales1, name="Ann")
    await login(ui_user, "sales1")
    await ui_user.open(f"/customers/{cid}")
    with panel.db.transaction() as s:
        s.execute(update(LoginSession).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    ui_user.find(marker="field-city").type("Hangzhou")
    ui_user.find(marker="save").click()
    await ui_user.should_see(marker="login-button", retries=20)
    with panel.db.transaction() as s:
        assert s.get(Customer, cid).city is None


async def test_login_goes_to_next_but_only_locally(ui_user: User, panel: Panel) -> None:
    await ui_user.open("/login?next=//evil.example/x")
    ui_user.find(marker="username").type("admin")
    ui_user.find(marker="password").type("correct-horse-battery")
    ui_user.find(marker="login-button").click()
    await ui_user.should_see(marker="customer-grid", retries=30)


# ---------------------------------------------------------------- roles: menu and refusals

MENU = {
    "admin": {"customers", "archive", "pipeline", "tickets", "tasks", "admin-users", "admin-audit"},
    "manager": {"customers", "archive", "pipeline", "tickets", "tasks"},
    "sales1": {"customers", "archive", "pipeline", "tasks"},
    "support": {"customers", "archive", "tickets", "tasks"},
    "steward": {"customers", "archive", "tasks"},
    "analyst": {"customers", "archive"},
}
ALL_MENU = set().union(*MENU.values()) | {"admin-teams", "admin-fields"}
PATHS = {
    "pipeline": "/pipeline",
    "tickets": "/tickets",
    "tasks": "/tasks",
    "admin-users": "/admin/users",
    "admin-teams": "/admin/teams",
    "admin-fields": "/admin/fields",
    "admin-audit": "/admin/audit",
}


@pytest.mark.parametrize("username", list(MENU))
async def test_menu_shows_only_what_the_role_may_use(
    ui_user: User, panel: Panel, username: str
) -> None:
    await login(ui_user, username)
    for item in ALL_MENU:
        if item in MENU[username] or (username == "admin" and item.startswith("admin")):
            await ui_user.should_see(marker=f"menu-{item}")
        else:
            await ui_user.should_not_see(marker=f"menu-{item}")
    # the server refuses what the menu hides
    for item, path in PATHS.items():
        response = await ui_user.http_client.get(path)
        allowed = item in MENU[username] or (username == "admin" and item.startswith("admin"))
        assert (response.status_code == 200) == allowed, (username, path, response.status_code)
        if not allowed:
            assert response.status_code == 403


async def test_sales_cannot_open_another_sales_customer(ui_user: User, panel: Panel) -> None:
    other = panel.customer(panel.staff.sales2, name="Secret Co", lifecycle_stage="customer")
    await login(ui_user, "sales1")
    await ui_user.open(f"/customers/{other}")
    await ui_user.should_see(marker="not-found")
    await ui_user.should_not_see("Secret Co")


async def test_analyst_sees_masked_read_only_profile(ui_user: User, panel: Panel) -> None:
    cid = panel.customer(panel.staff.admin, name="王小明", phones=["13800138000"])
    await login(ui_user, "analyst")
    assert grid_names(ui_user) == ["王**"]
    await ui_user.open(f"/customers/{cid}")
    await ui_user.should_see("王**")
    await ui_user.should_not_see("王小明")
    await ui_user.should_not_see(marker="save")
    await ui_user.should_not_see(marker="archive-button")


async def test_support_sees_contact_fields_only(ui_user: User, panel: Panel) -> None:
    cid = panel.customer(panel.staff.admin, name="Ann", notes="private note", industry="Retail")
    await login(ui_user, "support")
    await ui_user.open(f"/customers/{cid}")
    await ui_user.should_see(marker="field-phones")
    await ui_user.should_not_see(marker="field-notes")
    await ui_user.should_not_see("private note")
    await ui_user.should_see(marker="quick-actions")


# ---------------------------------------------------------------- list, search, filters, paging


async def test_quick_search_by_pinyin_phone_and_email(ui_user: User, panel: Panel) -> None:
    admin = panel.staff.admin
    panel.customer(admin, name="王伟", phones=["138 0013 8000"])
    panel.customer(admin, name="Alice Smith", emails=["alice@example.com"], company_name="Acme")
    panel.customer(admin, name="Bob Jones")
    await login(ui_user, "admin")
    assert len(grid_names(ui_user)) == 3
    for query, expected in [
        ("wangwei", ["王伟"]),
        ("+86 138-0013-8000", ["王伟"]),
        ("alice@example", ["Alice Smith"]),
        ("acme", ["Alice Smith"]),
    ]:
        ui_user.find(marker="search").clear()
        ui_user.find(marker="search").type(query).trigger("keydown.enter")
        assert grid_names(ui_user) == expected, query


async def test_filters_and_keyset_paging(ui_user: User, panel: Panel) -> None:
    with panel.db.transaction() as s:
        for i in range(55):
            svc.create_customer(
                s,
                actor=panel.staff.admin,
                data={"name": f"Cust {i:02d}", "city": "Hangzhou" if i % 5 == 0 else "Beijing"},
            )
    await login(ui_user, "admin")
    assert len(grid_rows(ui_user)) == 50
    await ui_user.should_see("Page 1")
    ui_user.find(marker="next-page").click()
    await ui_user.should_see("Page 2")
    assert len(grid_rows(ui_user)) == 5
    ui_user.find(marker="prev-page").click()
    assert len(grid_rows(ui_user)) == 50
    ui_user.find(marker="filter-city").type("Hangzhou")
    ui_user.find(marker="apply-filters").click()
    assert len(grid_rows(ui_user)) == 11
    assert {r["city"] for r in grid_rows(ui_user)} == {"Hangzhou"}


async def test_saved_filters_per_user(ui_user: User, panel: Panel) -> None:
    panel.customer(panel.staff.sales1, name="Lead One")
    panel.customer(panel.staff.sales1, name="Cust Two", lifecycle_stage="customer")
    await login(ui_user, "sales1")
    choose(ui_user, "filter-stage", "customer")
    ui_user.find(marker="apply-filters").click()
    assert grid_names(ui_user) == ["Cust Two"]
    ui_user.find(marker="save-name").type("Real customers")
    ui_user.find(marker="save-filter").click()
    await ui_user.should_see("Filter saved.")
    await ui_user.open("/customers")
    assert sorted(grid_names(ui_user)) == ["Cust Two", "Lead One"]
    saved = next(iter(ui_user.find(marker="saved-filters").elements))
    assert list(saved.options.values()) == ["Real customers"]
    choose(ui_user, "saved-filters", next(iter(saved.options)))
    assert grid_names(ui_user) == ["Cust Two"]


async def test_archived_filter_finds_archived_customers(ui_user: User, panel: Panel) -> None:
    cid = panel.customer(panel.staff.admin, name="Gone Ltd")
    panel.customer(panel.staff.admin, name="Here Ltd")
    with panel.db.transaction() as s:
        svc.archive_customer(s, actor=panel.staff.admin, customer_id=cid, reason="closed")
    await login(ui_user, "admin")
    assert grid_names(ui_user) == ["Here Ltd"]
    ui_user.find(marker="filter-archived").click()
    ui_user.find(marker="apply-filters").click()
    assert grid_names(ui_user) == ["Gone Ltd"]


async def test_open_customer_from_the_grid(ui_user: User, panel: Panel) -> None:
    cid = panel.customer(panel.staff.admin, name="Clickable")
    await login(ui_user, "admin")
    ui_user.find(ui.aggrid).trigger("cellClicked", cid)
    await ui_user.should_see(marker="profile", retries=20)
    await ui_user.should_see("Clickable")


# ---------------------------------------------------------------- bulk actions


async def test_bulk_tag_and_archive(ui_user: User, panel: Panel) -> None:
    ids = [panel.customer(panel.staff.manager, name=f"B{i}") for i in range(3)]
    await login(ui_user, "manager")
    tick(ui_user, ids[:2])
    await ui_user.should_see("2 selected")
    choose(ui_user, "bulk-action", "tag")
    ui_user.find(marker="bulk-value").type("vip-2030")
    ui_user.find(marker="bulk-apply").click()
    await ui_user.should_see("2 of 2 customers changed.")
    with panel.db.transaction() as s:
        tagged = {
            c.id for c in s.scalars(select(Customer)) if "vip-2030" in [t.name for t in c.tags]
        }
        assert tagged == set(ids[:2])
    tick(ui_user, ids)
    choose(ui_user, "bulk-action", "archive")
    ui_user.find(marker="bulk-reason").type("duplicate import")
    ui_user.find(marker="bulk-apply").click()
    await ui_user.should_see("3 of 3 customers changed.")
    assert grid_names(ui_user) == []


async def test_bulk_within_rights_is_all_or_nothing(ui_user: User, panel: Panel) -> None:
    mine = panel.customer(panel.staff.sales1, name="Mine")
    await login(ui_user, "sales1")
    # sales may tag and change stage but not archive or reassign
    bulk = next(iter(ui_user.find(marker="bulk-action").elements))
    assert set(bulk.options) == {"tag", "change_stage"}
    theirs = panel.customer(panel.staff.sales2, name="Theirs", lifecycle_stage="customer")
    tick(ui_user, [mine, theirs])  # a forged selection
    choose(ui_user, "bulk-action", "change_stage")
    choose(ui_user, "bulk-stage", "prospect")
    ui_user.find(marker="bulk-apply").click()
    await ui_user.should_see(f"customer {theirs}")
    with panel.db.transaction() as s:
        assert s.get(Customer, mine).lifecycle_stage == "lead"


# ---------------------------------------------------------------- customer page


async def test_edit_with_validation_errors_beside_fields(ui_user: User, panel: Panel) -> None:
    cid = panel.customer(panel.staff.sales1, name="Ann")
    await login(ui_user, "sales1")
    await ui_user.open(f"/customers/{cid}")
    ui_user.find(marker="field-emails").type("not-an-email")
    ui_user.find(marker="field-phones").type("12345")
    ui_user.find(marker="save").click()
    with ui_user.scope(marker="error-emails"):
        pass
    error_email = next(iter(ui_user.find(marker="error-emails").elements))
    error_phone = next(iter(ui_user.find(marker="error-phones").elements))
    assert error_email.text and error_phone.text
    with panel.db.transaction() as s:
        assert s.get(Customer, cid).email is None
    ui_user.find(marker="field-emails").clear()
    ui_user.find(marker="field-emails").type("ann@example.com")
    ui_user.find(marker="field-phones").clear()
    ui_user.find(marker="field-city").type("杭州")
    ui_user.find(marker="save").click()
    await ui_user.should_see("Saved.")
    with panel.db.transaction() as s:
        row = s.get(Customer, cid)
        assert (row.email, row.city) == ("ann@example.com", "杭州")
    assert "customer.update" in audit_actions(panel)


async def test_custom_fields_rendered_by_type_and_validated(ui_user: User, panel: Panel) -> None:
    from crm_core.customfields import define_field

    with panel.db.transaction() as s:
        define_field(
            s, actor=panel.staff.admin, key="plan", label_en="Plan", field_type="choice",
            choices=["Basic", "Pro"],
        )  # fmt: skip
        define_field(s, actor=panel.staff.admin, key="seats", label_en="Seats", field_type="number")
    cid = panel.customer(panel.staff.admin, name="Acme", kind="company")
    await login(ui_user, "admin")
    await ui_user.open(f"/customers/{cid}")
    plan = next(iter(ui_user.find(marker="field-custom.plan").elements))
    assert isinstance(plan, ui.select) and "Pro" in plan.options
    ui_user.find(marker="field-custom.seats").type("many")
    ui_user.find(marker="save").click()
    await ui_user.should_see(marker="error-custom.seats")
    error = next(iter(ui_user.find(marker="error-custom.seats").elements))
    assert "not a number" in error.text
    ui_user.find(marker="field-custom.seats").clear()
    ui_user.find(marker="field-custom.seats").type("12")
    choose(ui_user, "field-custom.plan", "Pro")
    ui_user.find(marker="save").click()
    await ui_user.should_see("Saved.")
    with panel.db.transaction() as s:
        assert s.get(Customer, cid).custom == {"plan": "Pro", "seats": 12}


async def test_stale_edit_shows_conflict_with_both_values(ui_user: User, panel: Panel) -> None:
    cid = panel.customer(panel.staff.sales1, name="Ann", city="Beijing")
    await login(ui_user, "sales1")
    await ui_user.open(f"/customers/{cid}")
    with panel.db.transaction() as s:  # a colleague saves first
        svc.update_customer(
            s, actor=panel.staff.admin, customer_id=cid, expected_version=1,
            changes={"city": "Shanghai"},
        )  # fmt: skip
    ui_user.find(marker="field-city").clear()
    ui_user.find(marker="field-city").type("Hangzhou")
    ui_user.find(marker="save").click()
    await ui_user.should_see("Someone else changed this customer while you were editing.")
    await ui_user.should_see(marker="theirs-city", content="Shanghai")
    await ui_user.should_see(marker="yours-city", content="Hangzhou")
    with panel.db.transaction() as s:
        assert s.get(Customer, cid).city == "Shanghai"  # nothing overwritten silently
    ui_user.find(marker="keep-mine").click()
    await ui_user.should_see("Saved.")
    with panel.db.transaction() as s:
        assert s.get(Customer, cid).city == "Hangzhou"


async def test_timeline_and_quick_actions(ui_user: User, panel: Panel) -> None:
    cid = panel.customer(panel.staff.sales1, name="Ann")
    with panel.db.transaction() as s:
        activities.create_deal(s, actor=panel.staff.sales1, customer_id=cid, title="Big deal")
    await login(ui_user, "sales1")
    await ui_user.open(f"/customers/{cid}")
    await ui_user.should_see("Big deal")
    ui_user.find(marker="interaction-subject").type("Called about renewal")
    ui_user.find(marker="log-interaction").click()
    await ui_user.should_see("Called about renewal")
    ui_user.find(marker="task-title").type("Send the quote")
    ui_user.find(marker="add-task").click()
    await ui_user.should_see("Send the quote")
    ui_user.find(marker="ticket-subject").type("Invoice wrong")
    ui_user.find(marker="add-ticket").click()
    await ui_user.should_see("Invoice wrong")
    with panel.db.transaction() as s:
        assert s.scalar(select(Task.title)) == "Send the quote"
        assert s.scalar(select(Ticket.subject)) == "Invoice wrong"


async def test_long_timeline_shows_newest_first_and_more_on_demand(
    ui_user: User, panel: Panel
) -> None:
    cid = panel.customer(panel.staff.sales1, name="Busy")
    now = datetime.now(UTC)
    with panel.db.transaction() as s:
        for i in range(35):
            activities.log_interaction(
                s, actor=panel.staff.sales1, customer_id=cid, kind="note",
                subject=f"Note {i:02d}", occurred_at=now - timedelta(hours=i),
            )  # fmt: skip
    await login(ui_user, "sales1")
    await ui_user.open(f"/customers/{cid}")
    await ui_user.should_see("Note 00")
    await ui_user.should_see("Note 29")
    await ui_user.should_not_see("Note 30")
    ui_user.find(marker="timeline-more").click()
    await ui_user.should_see("Note 34")
    await ui_user.should_not_see(marker="timeline-more")


async def test_company_page_lists_contacts(ui_user: User, panel: Panel) -> None:
    company = panel.customer(panel.staff.admin, name="Acme Ltd", kind="company")
    panel.customer(panel.staff.admin, name="Ann Contact", company_id=company, position="CFO")
    await login(ui_user, "admin")
    await ui_user.open(f"/customers/{company}")
    with ui_user.scope(marker="contacts"):
        await ui_user.should_see("Ann Contact")
        await ui_user.should_see("CFO")


async def test_user_text_is_never_rendered_as_html(ui_user: User, panel: Panel) -> None:
    cid = panel.customer(panel.staff.admin, name="<img src=x onerror=alert(1)>")
    await login(ui_user, "admin")
    grid = next(iter(ui_user.find(ui.aggrid).elements))
    assert grid.props.get("html-columns", []) == []
    await ui_user.open(f"/customers/{cid}")
    await ui_user.should_see("<img src=x onerror=alert(1)>")  # shown as text
    await ui_user.should_not_see(kind=ui.html)
    await ui_user.should_not_see(kind=ui.markdown)


# ---------------------------------------------------------------- archive and restore


async def test_archive_from_page_and_restore_from_archive_view(ui_user: User, panel: Panel) -> None:
    cid = panel.customer(panel.staff.manager, name="Old Client")
    with panel.db.transaction() as s:
        activities.log_interaction(
            s, actor=panel.staff.manager, customer_id=cid, kind="call", subject="First call"
        )
    await login(ui_user, "manager")
    await ui_user.open(f"/customers/{cid}")
    ui_user.find(marker="archive-button").click()
    ui_user.find(marker="confirm-archive").click()
    await ui_user.should_see(marker="archive-error", content="reason is required")
    ui_user.find(marker="archive-reason").type("Moved abroad")
    ui_user.find(marker="confirm-archive").click()
    await ui_user.should_see(marker="archived-banner", retries=20)
    await ui_user.should_see("Reason: Moved abroad")
    await ui_user.open("/customers")
    assert grid_names(ui_user) == []
    await ui_user.open("/archive")
    with ui_user.scope(marker=f"archived-{cid}"):
        await ui_user.should_see("Old Client")
        await ui_user.should_see("Reason: Moved abroad")
        await ui_user.should_see("by manager")
    ui_user.find(marker=f"restore-{cid}").click()
    await ui_user.should_see("Old Client restored.")
    await ui_user.open(f"/customers/{cid}")
    await ui_user.should_see("First call")  # history intact
    await ui_user.should_not_see(marker="archived-banner")
    assert {"customer.archive", "customer.restore"} <= set(audit_actions(panel))


async def test_sales_may_not_archive(ui_user: User, panel: Panel) -> None:
    cid = panel.customer(panel.staff.sales1, name="Mine")
    await login(ui_user, "sales1")
    await ui_user.open(f"/customers/{cid}")
    await ui_user.should_not_see(marker="archive-button")


# ---------------------------------------------------------------- pipeline, tickets, tasks


async def test_pipeline_move_and_lose_with_reason(ui_user: User, panel: Panel) -> None:
    cid = panel.customer(panel.staff.sales1, name="Buyer")
    with panel.db.transaction() as s:
        deal = activities.create_deal(
            s, actor=panel.staff.sales1, customer_id=cid, title="Deal A", amount="1234.5"
        )
        deal_id = deal.id
    await login(ui_user, "sales1")
    await ui_user.open("/pipeline")
    with ui_user.scope(marker="stage-new"):
        await ui_user.should_see("Deal A")
    await ui_user.should_see(marker="stage-total-new", content="1 deals · CN¥1,234.50")
    choose(ui_user, f"move-{deal_id}", "proposal")
    await ui_user.should_see("Deal moved.")
    await eventually(lambda: stage_of(ui_user, deal_id), "stage-proposal")
    await settle()
    choose(ui_user, f"move-{deal_id}", "lost")
    ui_user.find(marker="lost-reason").type("Too expensive")
    ui_user.find(marker="confirm-lost").click()
    await ui_user.should_see("Lost: Too expensive", retries=20)
    with panel.db.transaction() as s:
        row = s.get(Deal, deal_id)
        assert (row.stage, row.status, row.lost_reason) == ("lost", "lost", "Too expensive")
        moves = s.scalars(select(AuditEntry).where(AuditEntry.action == "deal.move")).all()
        assert len(moves) == 2


async def test_support_works_the_ticket_queue(ui_user: User, panel: Panel) -> None:
    cid = panel.customer(panel.staff.admin, name="Complainer")
    with panel.db.transaction() as s:
        t = activities.create_ticket(
            s, actor=panel.staff.admin, customer_id=cid, kind="complaint", subject="Late delivery"
        )
        tid = t.id
    await login(ui_user, "support")
    await ui_user.open("/tickets")
    with ui_user.scope(marker=f"ticket-{tid}"):
        await ui_user.should_see("Late delivery")
        await ui_user.should_see("Complainer")
    choose(ui_user, f"assign-{tid}", panel.staff.support.id)
    await ui_user.should_see("Ticket assigned.")
    await settle()
    ui_user.find(marker=f"reply-{tid}").type("Sorry, shipping today")
    ui_user.find(marker=f"add-note-{tid}").click()
    await ui_user.should_see("Reply noted.")
    await settle()
    choose(ui_user, f"score-{tid}", 4)
    ui_user.find(marker=f"close-{tid}").click()
    await ui_user.should_see("Ticket closed.")
    with panel.db.transaction() as s:
        row = s.get(Ticket, tid)
        assert (row.status, row.satisfaction, row.assignee_id) == (
            "closed",
            4,
            panel.staff.support.id,
        )


async def test_tasks_overdue_first_done_and_reschedule(ui_user: User, panel: Panel) -> None:
    now = datetime.now(UTC)
    with panel.db.transaction() as s:
        later = activities.create_task(
            s, actor=panel.staff.sales1, title="Later", due_at=now + timedelta(days=3)
        ).id
        late = activities.create_task(
            s, actor=panel.staff.sales1, title="Late", due_at=now - timedelta(days=2)
        ).id
    await login(ui_user, "sales1")
    await ui_user.open("/tasks")
    cards = [
        e
        for e in ui_user.find(kind=ui.card).elements
        if any(m.startswith("task-") for m in e._markers)
    ]
    order = [
        next(m for m in c._markers if m.startswith("task-"))
        for c in sorted(cards, key=lambda c: c.id)
    ]
    assert order == [f"task-{late}", f"task-{later}"]
    await ui_user.should_see(marker=f"overdue-{late}")
    await ui_user.should_not_see(marker=f"overdue-{later}")
    ui_user.find(marker=f"reschedule-date-{late}").type(
        (now + timedelta(days=7)).date().isoformat()
    )
    ui_user.find(marker=f"reschedule-{late}").click()
    await ui_user.should_see("Task rescheduled.")
    await settle()
    await ui_user.should_not_see(marker=f"overdue-{late}")
    ui_user.find(marker=f"done-{later}").click()
    await ui_user.should_see("Task done.")
    await ui_user.should_not_see(marker=f"task-{later}")


# ---------------------------------------------------------------- admin


async def test_admin_creates_user_and_reads_the_audit_log(ui_user: User, panel: Panel) -> None:
    await login(ui_user, "admin")
    await ui_user.open("/admin/users")
    ui_user.find(marker="new-username").type("newbie")
    choose(ui_user, "new-role", "support")
    ui_user.find(marker="create-user").click()
    await ui_user.should_see("User created.")
    await ui_user.should_see(marker="generated-password", content="shown once")
    with panel.db.transaction() as s:
        assert s.scalar(select(UserRow.role).where(UserRow.username == "newbie")) == "support"
    await ui_user.should_see(marker="active-newbie")
    ui_user.find(marker="active-newbie").click()
    await ui_user.should_see("Saved.")
    with panel.db.transaction() as s:
        assert s.scalar(select(UserRow.active).where(UserRow.username == "newbie")) is False
    await ui_user.open("/admin/audit")
    ui_user.find(marker="audit-action").type("user.update")
    ui_user.find(marker="audit-show").click()
    await ui_user.should_see("active: true → false")


async def test_admin_defines_custom_field_and_team(ui_user: User, panel: Panel) -> None:
    await login(ui_user, "admin")
    await ui_user.open("/admin/fields")
    ui_user.find(marker="field-key").type("plan")
    ui_user.find(marker="field-label").type("Plan")
    choose(ui_user, "field-type", "choice")
    ui_user.find(marker="field-choices").type("Basic, Pro")
    ui_user.find(marker="add-field").click()
    await ui_user.should_see("Field added.")
    await ui_user.should_see(marker="def-plan")
    await ui_user.open("/admin/teams")
    ui_user.find(marker="team-name").type("Team C")
    ui_user.find(marker="create-team").click()
    await ui_user.should_see("Team C")


# ---------------------------------------------------------------- language


async def test_language_switch_is_remembered_per_user(ui_user: User, panel: Panel) -> None:
    panel.customer(panel.staff.sales1, name="Ann")
    await login(ui_user, "sales1")
    await ui_user.should_see("Customers")
    choose(ui_user, "language", "zh")
    await ui_user.should_see("客户", retries=20)
    await ui_user.should_see(marker="page-title", content="客户")
    with panel.db.transaction() as s:
        assert s.scalar(select(UserRow.locale).where(UserRow.username == "sales1")) == "zh"
    ui_user.find(marker="logout").click()
    await ui_user.should_see(marker="login-button")
    await login(ui_user, "sales1")
    await ui_user.should_see(marker="page-title", content="客户")
    rows = grid_rows(ui_user)
    assert rows[0]["stage"] == "线索"
