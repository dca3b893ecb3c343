"""crm_notebooks: user-bound connection, frames shaped for the user, widgets driven through
their callbacks (as a person clicking would)."""

from __future__ import annotations

import pytest
from reports_dataset import NOW, build
from sqlalchemy import update

import crm_notebooks as crm
from crm_core.db import forget_databases
from crm_core.errors import NotFound, PermissionDenied
from crm_core.models import User
from crm_core.users import get_system_user


@pytest.fixture
def data(db, staff):
    yield build(db, staff)
    forget_databases()


def test_connect_binds_a_user_and_applies_masking(db, staff, data):
    ctx = crm.connect(db.url, user="analyst")
    assert ctx.user.username == "analyst" and ctx.user.role == "analyst"
    df = crm.customers_frame(ctx)
    names = dict(zip(df["id"], df["name"], strict=True))
    assert names[data.ids["c1"]] == "王**" and names[data.ids["c2"]] == "A**** S****"
    assert len(df) == 5  # archived c6 is not in the live list
    assert set(crm.customers_frame(ctx, archived=True)["id"]) == {data.ids["c6"]}


def test_sales_user_frames_cover_own_customers_only(db, staff, data):
    ctx = crm.connect(db.url, user="sales1")
    customers = crm.customers_frame(ctx)
    assert set(customers["id"]) == {data.ids["c1"], data.ids["c2"], data.ids["c5"]}
    assert customers.set_index("id").loc[data.ids["c1"], "name"] == "王小明"
    orders = crm.orders_frame(ctx)
    assert set(orders["customer_id"]) == {data.ids["c1"], data.ids["c2"]}
    assert orders["total"].sum() == 3300.0
    assert len(crm.deals_frame(ctx)) == 3
    assert len(crm.tickets_frame(ctx)) == 2
    assert len(crm.interactions_frame(ctx, province="浙江")) == 3
    timeline = crm.timeline_frame(ctx, data.ids["c1"])
    assert {"order", "deal", "ticket", "interaction", "task"} <= set(timeline["kind"])
    with pytest.raises(NotFound):
        crm.timeline_frame(ctx, data.ids["c3"])  # sales2's customer


def test_connect_refuses_unknown_inactive_and_system_users(db, staff, data):
    with pytest.raises(NotFound):
        crm.connect(db.url, user="nobody")
    with db.transaction() as s:
        s.execute(update(User).where(User.username == "sales2").values(active=False))
        get_system_user(s)
    with pytest.raises(PermissionDenied):
        crm.connect(db.url, user="sales2")
    with pytest.raises(PermissionDenied):
        crm.connect(db.url, user="system")


def test_connect_by_role_name_picks_an_account_of_that_role(db, staff, data):
    with db.transaction() as s:
        s.execute(update(User).where(User.username == "manager").values(username="wang.li"))
    ctx = crm.connect(db.url, user="manager")
    assert ctx.user.username == "wang.li" and ctx.user.role == "manager"


def test_customer_explorer_search_and_detail(db, staff, data):
    explorer = crm.CustomerExplorer(crm.connect(db.url, user="analyst"))
    assert len(explorer.results) == 5
    explorer.city.value = "杭州"
    explorer.search_button.click()
    assert list(explorer.results["id"]) == [data.ids["c1"]]
    assert "王**" in explorer.table.value and "王小明" not in explorer.table.value
    explorer.pick.value = data.ids["c1"]  # opening the profile, as a person picking it
    assert explorer.profile is not None and explorer.profile.field_mode == "masked"
    assert "Call back about renewal" in explorer.detail.value
    assert set(explorer.timeline["kind"]) >= {"order", "interaction"}
    explorer.city.value = ""
    explorer.lifecycle.value = "lead"
    explorer.search_button.click()
    assert list(explorer.results["id"]) == [data.ids["c5"]]


def test_customer_explorer_tag_and_text_search(db, staff, data):
    explorer = crm.CustomerExplorer(crm.connect(db.url, user="admin"))
    explorer.tag.value = "vip"
    explorer.search_button.click()
    assert set(explorer.results["id"]) == {data.ids["c1"], data.ids["c3"]}
    explorer.tag.value = ""
    explorer.query.value = "Alice"
    explorer.search_button.click()
    assert list(explorer.results["id"]) == [data.ids["c2"]]


def test_dashboard_redraws_when_a_filter_changes(db, staff, data):
    dash = crm.Dashboard(crm.connect(db.url, user="admin"), now=NOW)
    assert dash.results["revenue"].frame["revenue"].sum() == 3720.0
    assert "4,000.00" in dash.kpis.value  # won amount of every deal
    first_figure = dash.results["revenue"].figure
    dash.owner.value = staff.sales1.id  # a person choosing an owner in the dropdown
    assert dash.results["revenue"].frame["revenue"].sum() == 3300.0
    assert dash.results["revenue"].figure is not first_figure
    assert "Deals</b>: 3" in dash.kpis.value
    dash.owner.value = 0
    dash.province.value = "广东"
    assert [label for label, _ in dash.city.options][1:] == ["广州", "深圳"]
    assert dash.results["revenue"].frame["revenue"].sum() == 300.0 + 80.0 + 40.0
    dash.city.value = "广州"
    assert dash.results["revenue"].frame["revenue"].sum() == 80.0
    assert dash.filters().city == "广州"


def test_dashboard_in_chinese_for_a_sales_user(db, staff, data):
    dash = crm.Dashboard(crm.connect(db.url, user="sales2"), locale="zh", now=NOW)
    assert dash.results["funnel"].figure.layout.title.text == "销售漏斗"
    assert dash.results["funnel"].frame["deals"].sum() == 3  # sales2's deals only
    assert [label for label, _ in dash.owner.options][0] == "全部"
