"""Automation in the panel (NiceGUI ``User`` fixture): rule list and switch, editor preview
and validation, run log, the notification bell, retention settings and the consent ledger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from nicegui import ui
from nicegui.testing import User
from panel_fixtures import *  # noqa: F403  (the panel and ui_user fixtures)
from panel_fixtures import Panel, login
from sqlalchemy import select

from crm_core import automation as auto
from crm_core import privacy, users
from crm_core.models import AutomationRule, ConsentEvent, RetentionPolicy


def _set(user: User, marker: str, value: object) -> None:
    with user:
        for element in user.find(marker=marker).elements:
            element.value = value


async def test_rules_are_admin_only(ui_user: User, panel: Panel) -> None:
    await login(ui_user, "sales1")
    await ui_user.should_not_see(marker="menu-automation")
    for path in ("/automation", "/automation/runs", "/automation/retention"):
        response = await ui_user.http_client.get(path)
        assert response.status_code == 403, path


async def test_admin_switches_a_rule_off(ui_user: User, panel: Panel) -> None:
    await login(ui_user, "admin")
    await ui_user.open("/automation")
    await ui_user.should_see("Birthday reminder")
    _set(ui_user, "rule-birthday_reminder-enabled", False)
    await ui_user.should_see("Rule switched off.")
    with panel.db.transaction() as s:
        rule = s.scalar(select(AutomationRule).where(AutomationRule.key == "birthday_reminder"))
        assert rule.enabled is False


async def test_editor_previews_matches_and_shows_errors(ui_user: User, panel: Panel) -> None:
    panel.customer(panel.staff.sales1, name="Hangzhou One", city="杭州")
    panel.customer(panel.staff.sales1, name="Shanghai One", city="上海")
    await login(ui_user, "admin")
    await ui_user.open("/automation")
    ui_user.find(marker="rule-new").click()
    await ui_user.should_see(marker="rule-editor")
    _set(ui_user, "rule-name", "Tag Hangzhou")
    _set(ui_user, "rule-conditions", '[{"op": "eq", "field": "city", "value": "杭州"}]')
    _set(ui_user, "rule-actions", '[{"type": "add_tag", "tag": "hz"}]')
    ui_user.find(marker="rule-preview-button").click()
    await ui_user.should_see("1 record(s) would match now.")
    await ui_user.should_see("Hangzhou One")
    _set(ui_user, "rule-actions", '[{"type": "archive"}]')
    ui_user.find(marker="rule-save").click()
    await ui_user.should_see("actions[0].reason")
    _set(ui_user, "rule-actions", '[{"type": "add_tag", "tag": "hz"}]')
    ui_user.find(marker="rule-save").click()
    await ui_user.should_see("Rule saved.")
    with panel.db.transaction() as s:
        assert s.scalar(select(AutomationRule).where(AutomationRule.name == "Tag Hangzhou"))


async def test_bell_counts_unread_notifications_and_run_log_lists_runs(
    ui_user: User, panel: Panel
) -> None:
    staff = panel.staff
    with panel.db.transaction() as s:
        for rule in auto.list_rules(s, actor=staff.admin):
            auto.set_enabled(s, actor=staff.admin, rule_id=rule.id, enabled=False)
        auto.create_rule(
            s,
            actor=staff.admin,
            data={
                "name": "Tell the owner about leads",
                "conditions": [{"op": "eq", "field": "lifecycle_stage", "value": "lead"}],
                "actions": [{"type": "notify", "to": "owner", "title": "New lead {name}"}],
            },
        )
    panel.customer(staff.sales1, name="Lead Ltd")
    auto.run_due(panel.db, now=datetime.now(UTC) + timedelta(days=1), deliver=False)
    await login(ui_user, "sales1")
    await ui_user.should_see(marker="notification-count")
    ui_user.find(marker="notification-bell").click()
    await ui_user.should_see("New lead Lead Ltd")  # the bell's menu
    ui_user.find(marker="notifications-all").click()
    await ui_user.should_see(marker="notifications-read-all")
    await ui_user.should_see("New lead Lead Ltd")  # the list
    ui_user.find(marker="notifications-read-all").click()
    await ui_user.should_not_see(marker="notification-count", retries=20)
    ui_user.find(marker="logout").click()
    await login(ui_user, "admin")
    await ui_user.open("/automation/runs")
    await ui_user.should_see(marker="run-log")
    rows = next(iter(ui_user.find(ui.table).elements)).rows
    assert [(r["rule"], r["matched"]) for r in rows] == [("Tell the owner about leads", 1)]


async def test_a_chinese_reader_sees_notification_titles_in_chinese(
    ui_user: User, panel: Panel
) -> None:
    staff = panel.staff
    now = datetime(2031, 3, 3, 9, 0, tzinfo=UTC)  # birthdays of 10 March are 7 days ahead
    with panel.db.transaction() as s:
        for rule in auto.list_rules(s, actor=staff.admin):
            auto.set_enabled(
                s, actor=staff.admin, rule_id=rule.id, enabled=rule.key == "birthday_reminder"
            )
        users.set_locale(s, actor=staff.sales1, locale="zh")
    panel.customer(staff.sales1, name="Li Na", birthday="1990-03-10")
    auto.run_due(panel.db, now=now, deliver=False)
    await login(ui_user, "sales1")
    ui_user.find(marker="notification-bell").click()
    await ui_user.should_see("Li Na 的生日还有 7 天")  # the bell's menu
    await ui_user.should_see("全部通知")
    await ui_user.open("/notifications")
    await ui_user.should_see(marker="notifications-read-all")
    await ui_user.should_see("Li Na 的生日还有 7 天")
    await ui_user.should_not_see("Birthday of Li Na in 7 days")


async def test_retention_policy_and_consent_are_recorded(ui_user: User, panel: Panel) -> None:
    cid = panel.customer(panel.staff.sales1, name="Consenting Co")
    await login(ui_user, "admin")
    await ui_user.open("/automation/retention")
    _set(ui_user, "policy-days", 1095)
    ui_user.find(marker="policy-save").click()
    await ui_user.should_see("Policy saved.")
    await ui_user.open(f"/customers/{cid}/consent")
    _set(ui_user, "consent-channel", "web form")
    _set(ui_user, "consent-version", "v2")
    ui_user.find(marker="consent-given").click()
    await ui_user.should_see("Consent recorded.")
    with panel.db.transaction() as s:
        policy = s.scalar(select(RetentionPolicy))
        assert (policy.purpose, policy.period_days) == ("marketing", 1095)
        event = s.scalar(select(ConsentEvent))
        assert (event.granted, event.channel, event.text_version) == (True, "web form", "v2")
        assert privacy.current_consent(s, actor=panel.staff.admin, customer_id=cid) == {
            "marketing": True
        }


async def test_the_customer_page_leads_to_that_customers_consent_ledger(
    ui_user: User, panel: Panel
) -> None:
    cid = panel.customer(panel.staff.sales1, name="Ledger Ltd")
    other = panel.customer(panel.staff.sales1, name="Other Ltd")
    with panel.db.transaction() as s:
        for customer_id, channel in ((cid, "web form"), (other, "phone call")):
            privacy.record_consent(
                s,
                actor=panel.staff.sales1,
                customer_id=customer_id,
                purpose="marketing",
                granted=True,
                channel=channel,
                text_version="v3",
            )
    await login(ui_user, "sales1")
    await ui_user.open(f"/customers/{cid}")
    await ui_user.should_see("Ledger Ltd")
    ui_user.find(marker="consent-link").click()
    await ui_user.should_see(marker="consent-ledger")
    await ui_user.should_see("web form")
    await ui_user.should_not_see("phone call")
    ui_user.find("Back to the customer").click()
    await ui_user.should_see(marker="customer-name")
