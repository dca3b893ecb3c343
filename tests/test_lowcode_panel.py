"""Custom modules and the report builder through NiceGUI's ``User`` fixture: an admin defines a
module in the panel, records are created, searched, filtered, archived, imported and exported
there; roles see only what they may."""

from __future__ import annotations

import asyncio

from nicegui import ui
from nicegui.elements.upload_files import SmallFileUpload
from nicegui.testing import User
from panel_fixtures import *  # noqa: F403  (the panel and ui_user fixtures)
from panel_fixtures import Panel, login

from crm_core.lowcode import modules as mod
from crm_core.lowcode import records as rec


def table_names(user: User) -> list[str]:
    table = next(iter(user.find(marker="record-table").elements))
    return sorted(row["display_name"] for row in table.rows)


async def eventually(probe, expected, tries: int = 60) -> None:
    for _ in range(tries):
        if probe() == expected:
            return
        await asyncio.sleep(0.05)
    assert probe() == expected


def define(panel: Panel) -> None:
    with panel.db.transaction() as s:
        mod.define_module(
            s, actor=panel.staff.admin, key="visits", name_en="Site visits", name_zh="现场拜访",
            fields=[
                {"key": "title", "label_en": "Title", "field_type": "text", "required": True},
                {"key": "rating", "label_en": "Rating", "field_type": "choice",
                 "choices": ["good", "bad"]},
                {"key": "customer", "label_en": "Customer", "field_type": "customer"},
            ],
        )  # fmt: skip


async def test_admin_defines_a_module_in_the_panel(ui_user: User, panel: Panel) -> None:
    await login(ui_user, "admin")
    await ui_user.open("/modules")
    await ui_user.should_see(marker="define-module")
    ui_user.find(marker="module-key").type("projects")
    ui_user.find(marker="module-name-en").type("Projects")
    ui_user.find(marker="module-name-zh").type("项目")
    ui_user.find(marker="new-field-key").type("title")
    ui_user.find(marker="new-field-label").type("Title")
    ui_user.find(marker="new-field-required").click()
    ui_user.find(marker="add-field").click()
    await ui_user.should_see(marker="pending-title")
    ui_user.find(marker="new-field-key").type("budget")
    with ui_user:
        next(iter(ui_user.find(marker="new-field-type").elements)).value = "money"
    ui_user.find(marker="add-field").click()
    ui_user.find(marker="create-module").click()
    await ui_user.should_see(marker="record-table", retries=30)
    with panel.db.transaction() as s:
        module = mod.get_module(s, "projects")
        specs = mod.field_specs(s, module)
        assert module.name_zh == "项目" and module.display_field == "title"
        assert [(f.key, f.field_type, f.required) for f in specs] == [
            ("title", "text", True), ("budget", "money", False),
        ]  # fmt: skip
    # a record through the generated form: validation first, then saved
    ui_user.find(marker="new-record").click()
    await ui_user.should_see(marker="record-form")
    ui_user.find(marker="field-budget").type("lots")
    ui_user.find(marker="save-record").click()
    await ui_user.should_see("is required", marker="error-title")
    await ui_user.should_see("is not a number", marker="error-budget")
    ui_user.find(marker="field-budget").clear().type("1200")
    ui_user.find(marker="field-title").type("Tower")
    ui_user.find(marker="save-record").click()
    await eventually(lambda: table_names(ui_user), ["Tower"])
    with panel.db.transaction() as s:
        page = rec.list_records(s, actor=panel.staff.admin, module_key="projects")
        assert [r.data for r in page.items] == [{"title": "Tower", "budget": "1200.00"}]


async def test_records_search_filter_archive_import_export(ui_user: User, panel: Panel) -> None:
    define(panel)
    cid = panel.customer(panel.staff.sales1, name="Acme")
    with panel.db.transaction() as s:
        for title, rating in [("North depot", "good"), ("South depot", "bad"), ("Office", "good")]:
            rec.create_record(s, actor=panel.staff.sales1, module_key="visits",
                              data={"title": title, "rating": rating, "customer": cid})  # fmt: skip
    await login(ui_user, "manager")
    await ui_user.open("/modules/visits")
    await ui_user.should_see("Site visits")
    assert table_names(ui_user) == ["North depot", "Office", "South depot"]
    ui_user.find(marker="record-search").type("depot").trigger("keydown.enter")
    await eventually(lambda: table_names(ui_user), ["North depot", "South depot"])
    ui_user.find(marker="record-search").clear()
    with ui_user:
        next(iter(ui_user.find(marker="record-filter-field").elements)).value = "rating"
    ui_user.find(marker="record-filter-value").type("good")
    ui_user.find(marker="record-apply").click()
    await eventually(lambda: table_names(ui_user), ["North depot", "Office"])
    # bulk archive of the selection
    table = next(iter(ui_user.find(marker="record-table").elements))
    with ui_user:
        table.selected = [r for r in table.rows if r["display_name"] == "Office"]
    ui_user.find(marker="bulk-archive").click()
    await eventually(lambda: table_names(ui_user), ["North depot"])
    ui_user.find(marker="record-archived").click()
    await eventually(lambda: table_names(ui_user), ["Office"])
    # export, then import two new rows as CSV
    ui_user.find(marker="export-records").click()
    csv = (await ui_user.download.next(timeout=30)).content.decode("utf-8-sig")
    assert csv.splitlines()[0].startswith("id,display_name,title,rating,customer")
    upload = next(iter(ui_user.find(marker="import-records").elements))
    data = f"Title,Rating,Customer\nDepot 9,good,{cid}\nDepot 10,bad,{cid}\n".encode()
    await upload.handle_uploads([SmallFileUpload("visits.csv", "text/csv", data)])

    def stored() -> list[str]:
        with panel.db.transaction() as s:
            page = rec.list_records(s, actor=panel.staff.admin, module_key="visits", limit=50)
            return sorted(r.display_name for r in page.items)

    await eventually(stored, ["Depot 10", "Depot 9", "North depot", "South depot"])


async def test_roles_see_only_their_modules_and_records(ui_user: User, panel: Panel) -> None:
    define(panel)
    mine = panel.customer(panel.staff.sales1, name="Mine")
    theirs = panel.customer(panel.staff.sales2, name="Theirs")
    with panel.db.transaction() as s:
        for actor, cid, title in [(panel.staff.sales1, mine, "Mine visit"),
                                  (panel.staff.sales2, theirs, "Their visit")]:  # fmt: skip
            rec.create_record(s, actor=actor, module_key="visits",
                              data={"title": title, "customer": cid})  # fmt: skip
    await login(ui_user, "sales1")
    await ui_user.open("/modules")
    await ui_user.should_see(marker="module-visits")
    await ui_user.should_not_see(marker="define-module")
    await ui_user.open("/modules/visits")
    await ui_user.should_see(marker="record-table")
    assert table_names(ui_user) == ["Mine visit"]
    await ui_user.should_not_see(marker="bulk-archive")  # sales may not archive by default
    assert ui.table  # noqa: S101  (the grid is a NiceGUI table)


def choose(user: User, marker: str, value: object) -> None:
    with user:
        for element in user.find(marker=marker).elements:
            element.value = value


async def test_report_builder_preview_save_pin_export(ui_user: User, panel: Panel) -> None:
    import io

    import pandas as pd

    define(panel)
    cid = panel.customer(panel.staff.sales1, name="Acme")
    with panel.db.transaction() as s:
        for title, rating in [("A", "good"), ("B", "bad"), ("C", "good")]:
            rec.create_record(s, actor=panel.staff.sales1, module_key="visits",
                              data={"title": title, "rating": rating, "customer": cid})  # fmt: skip
    await login(ui_user, "manager")
    await ui_user.open("/reports/builder")
    await ui_user.should_see(marker="builder")
    choose(ui_user, "rb-source", "module:visits")
    choose(ui_user, "rb-group1", "rating")
    choose(ui_user, "rb-chart", "pie")
    ui_user.find(marker="rb-preview").click()
    await ui_user.should_see(marker="rb-chart-view")
    figure = next(iter(ui_user.find(marker="rb-chart-view").elements)).figure
    assert list(figure.data[0].labels) == ["bad", "good"] and list(figure.data[0].values) == [1, 2]
    ui_user.find(marker="rb-name").type("Visits by rating")
    ui_user.find(marker="rb-save").click()
    await ui_user.should_see("Visits by rating", marker="rb-saved")
    with panel.db.transaction() as s:
        from crm_core.lowcode import report_builder as rb

        (report,) = rb.list_reports(s, actor=panel.staff.manager)
    choose(ui_user, f"pin-{report.id}", "shared")
    ui_user.find(marker=f"xlsx-{report.id}").click()
    workbook = (await ui_user.download.next(timeout=30)).content
    assert pd.read_excel(io.BytesIO(workbook))["value"].sum() == 3.0
    await ui_user.open("/reports/pinned")
    await ui_user.should_see(marker=f"pinned-{report.id}")
    with panel.db.transaction() as s:
        assert [r.name for r in rb.dashboard_reports(s, actor=panel.staff.sales2)] == [
            "Visits by rating"
        ]


async def test_support_may_not_open_the_report_builder(ui_user: User, panel: Panel) -> None:
    await login(ui_user, "support")
    await ui_user.should_not_see(marker="menu-reports-builder")
    await ui_user.should_see(marker="menu-modules")
    for path in ("/reports/builder", "/reports/pinned"):
        assert (await ui_user.http_client.get(path)).status_code == 403


async def test_layout_editor_changes_the_customer_and_module_forms(
    ui_user: User, panel: Panel
) -> None:
    define(panel)
    cid = panel.customer(panel.staff.sales1, name="Acme", notes="secret note")
    await login(ui_user, "admin")
    await ui_user.open("/layouts/customer")
    await ui_user.should_see(marker="layout-editor")
    choose(ui_user, "layout-hidden-notes", ["sales"])
    ui_user.find(marker="layout-help-city").type("Where the head office is")
    ui_user.find(marker="save-layout").click()
    await ui_user.should_see("Layout saved.")
    await ui_user.open(f"/customers/{cid}")
    await ui_user.should_see(marker="field-notes")  # admins still see it
    await ui_user.open("/layouts/module:visits")
    ui_user.find(marker="add-section").click()
    ui_user.find(marker="section-title-en-1").clear().type("Assessment")
    choose(ui_user, "section-order-1", -1)  # before Details
    choose(ui_user, "layout-section-rating", 1)
    choose(ui_user, "layout-hidden-customer", ["sales"])
    ui_user.find(marker="save-layout").click()
    await ui_user.should_see("Layout saved.")
    with panel.db.transaction() as s:
        from crm_core.lowcode import layouts

        view = layouts.resolve_layout(s, actor=panel.staff.sales1, entity="module:visits")
        assert [(x.title_en, [f.key for f in x.fields]) for x in view.sections] == [
            ("Assessment", ["rating"]), ("Details", ["title"]),
        ]  # fmt: skip
    ui_user.find(marker="logout").click()
    await login(ui_user, "sales1")
    await ui_user.open(f"/customers/{cid}")
    await ui_user.should_see(marker="field-city")
    await ui_user.should_not_see(marker="field-notes")
    await ui_user.open("/modules/visits")
    ui_user.find(marker="new-record").click()
    await ui_user.should_see(marker="field-rating")
    await ui_user.should_not_see(marker="field-customer")


def form_fields(user: User, marker: str) -> list[str]:
    """The field keys inside an element, in the order the page shows them."""
    (element,) = user.find(marker=marker).elements
    return [
        m.removeprefix("field-")
        for e in element.descendants()
        for m in e._markers
        if m.startswith("field-")
    ]


async def test_customer_page_renders_the_stored_layout_like_module_pages(
    ui_user: User, panel: Panel
) -> None:
    from crm_core.lowcode import layouts

    cid = panel.customer(
        panel.staff.sales1, name="Acme", city="Hangzhou", notes="secret note", industry="Retail"
    )
    with panel.db.transaction() as s:
        layouts.save_layout(
            s, actor=panel.staff.admin, entity="customer",
            sections=[
                {"title_en": "Identity", "title_zh": "身份", "columns": 1,
                 "fields": ["phones", "name"]},
                {"title_en": "Business", "columns": 3,
                 "fields": ["industry", "notes", "city", "company_name"]},
            ],
            help={"city": "Where the head office is"}, hidden={"notes": ["sales"]},
        )  # fmt: skip
    await login(ui_user, "sales1")
    await ui_user.open(f"/customers/{cid}")
    await ui_user.should_see("Identity", marker="section-0")
    await ui_user.should_see("Business", marker="section-1")
    await ui_user.should_see("More", marker="section-2")  # fields the layout does not place
    assert form_fields(ui_user, "section-0-columns-1") == ["phones", "name"]
    assert form_fields(ui_user, "section-1-columns-3") == ["industry", "city", "company_name"]
    await ui_user.should_not_see(marker="field-notes")
    await ui_user.should_not_see("secret note")
    (city,) = ui_user.find(marker="field-city").elements
    assert city.props["hint"] == "Where the head office is" and city.value == "Hangzhou"
    # the form still saves through the customer service
    ui_user.find(marker="field-city").clear().type("Ningbo")
    ui_user.find(marker="save").click()
    await ui_user.should_see("Saved.")
    with panel.db.transaction() as s:
        from crm_core.models import Customer

        row = s.get(Customer, cid)
        assert (row.city, row.notes) == ("Ningbo", "secret note")
    ui_user.find(marker="logout").click()
    await login(ui_user, "admin")
    await ui_user.open(f"/customers/{cid}")
    await ui_user.should_see(marker="section-1-columns-3")
    assert form_fields(ui_user, "section-1-columns-3") == [
        "industry", "notes", "city", "company_name",
    ]  # fmt: skip
    (notes,) = ui_user.find(marker="field-notes").elements
    assert notes.value == "secret note"


async def test_link_fields_pick_from_a_search(ui_user: User, panel: Panel) -> None:
    mine = panel.customer(panel.staff.sales1, name="Acme Mine", city="Hangzhou")
    theirs = panel.customer(panel.staff.sales2, name="Acme Theirs")
    with panel.db.transaction() as s:
        mod.define_module(
            s, actor=panel.staff.admin, key="sites", name_en="Sites",
            fields=[{"key": "name", "label_en": "Name", "field_type": "text"}],
        )  # fmt: skip
        mod.define_module(
            s, actor=panel.staff.admin, key="jobs", name_en="Jobs",
            fields=[
                {"key": "title", "label_en": "Title", "field_type": "text", "required": True},
                {"key": "customer", "label_en": "Customer", "field_type": "customer"},
                {"key": "engineer", "label_en": "Engineer", "field_type": "user"},
                {"key": "site", "label_en": "Site", "field_type": "module",
                 "link_module": "sites"},
            ],
        )  # fmt: skip
        harbour = rec.create_record(
            s, actor=panel.staff.sales1, module_key="sites", data={"name": "Harbour gate"}
        ).id
        rec.create_record(s, actor=panel.staff.sales1, module_key="sites", data={"name": "Depot"})
    await login(ui_user, "sales1")
    await ui_user.open("/modules/jobs")
    ui_user.find(marker="new-record").click()
    await ui_user.should_see(marker="record-form")
    (customer,) = ui_user.find(marker="field-customer").elements
    assert isinstance(customer, ui.select)
    ui_user.find(marker="field-customer").trigger("inputValue", "acme")
    assert [k for k in customer.options if k != ""] == [mine]  # not the other rep's customer
    assert customer.options[mine].startswith("Acme Mine")
    choose(ui_user, "field-customer", mine)
    ui_user.find(marker="field-engineer").trigger("inputValue", "sales2")
    (engineer,) = ui_user.find(marker="field-engineer").elements
    assert [k for k in engineer.options if k != ""] == [panel.staff.sales2.id]
    choose(ui_user, "field-engineer", panel.staff.sales2.id)
    ui_user.find(marker="field-site").trigger("inputValue", "harb")
    (site,) = ui_user.find(marker="field-site").elements
    assert list(site.options.values())[1:] == [f"Harbour gate (#{harbour})"]
    choose(ui_user, "field-site", harbour)
    ui_user.find(marker="field-title").type("Fix the gate")
    ui_user.find(marker="save-record").click()
    await eventually(lambda: table_names(ui_user), ["Fix the gate"])
    with panel.db.transaction() as s:
        (saved,) = rec.list_records(s, actor=panel.staff.admin, module_key="jobs").items
        assert saved.data == {"title": "Fix the gate", "customer": mine,
                              "engineer": panel.staff.sales2.id, "site": harbour}  # fmt: skip
        assert saved.customer_id == mine and theirs != mine
    # the record opens with the linked records' names, not their ids
    ui_user.find(marker="record-table").trigger("rowClick", [{}, {"id": saved.id}])
    await ui_user.should_see(marker="record-form")
    (customer,) = ui_user.find(marker="field-customer").elements
    assert customer.value == mine and customer.options[mine].startswith("Acme Mine")
    (site,) = ui_user.find(marker="field-site").elements
    assert site.options[harbour] == f"Harbour gate (#{harbour})"


def table_cells(user: User, key: str) -> dict[str, str]:
    """Each row's ``key`` column as the list shows it, by the row's name."""
    table = next(iter(user.find(marker="record-table").elements))
    return {row["display_name"]: row[key] for row in table.rows}


async def test_the_list_shows_linked_names_not_ids(ui_user: User, panel: Panel) -> None:
    mine = panel.customer(panel.staff.sales1, name="Acme Mine")
    theirs = panel.customer(panel.staff.sales2, name="Acme Theirs")
    with panel.db.transaction() as s:
        mod.define_module(
            s, actor=panel.staff.admin, key="sites", name_en="Sites",
            fields=[{"key": "name", "label_en": "Name", "field_type": "text"}],
        )  # fmt: skip
        mod.define_module(
            s, actor=panel.staff.admin, key="jobs", name_en="Jobs",
            fields=[
                {"key": "title", "label_en": "Title", "field_type": "text", "required": True},
                {"key": "customer", "label_en": "Customer", "field_type": "customer"},
                {"key": "referrer", "label_en": "Referred by", "field_type": "customer"},
                {"key": "engineer", "label_en": "Engineer", "field_type": "user"},
                {"key": "site", "label_en": "Site", "field_type": "module",
                 "link_module": "sites"},
            ],
        )  # fmt: skip
        gate = rec.create_record(
            s, actor=panel.staff.sales1, module_key="sites", data={"name": "Harbour gate"}
        ).id
        # the admin notes that another rep's customer referred sales1's customer
        rec.create_record(
            s, actor=panel.staff.admin, module_key="jobs",
            data={"title": "Referred job", "customer": mine, "referrer": theirs,
                  "engineer": panel.staff.sales2.id, "site": gate},
        )  # fmt: skip
        rec.create_record(
            s, actor=panel.staff.sales1, module_key="jobs",
            data={"title": "Own job", "customer": mine, "referrer": mine},
        )  # fmt: skip
    await login(ui_user, "sales1")
    await ui_user.open("/modules/jobs")
    await ui_user.should_see(marker="record-table")
    assert table_cells(ui_user, "customer") == {
        "Referred job": f"Acme Mine (#{mine})", "Own job": f"Acme Mine (#{mine})",
    }  # fmt: skip
    assert table_cells(ui_user, "referrer") == {
        "Referred job": f"#{theirs}",  # not sales1's customer: its number only
        "Own job": f"Acme Mine (#{mine})",
    }  # fmt: skip
    assert table_cells(ui_user, "engineer")["Referred job"] == "sales2 (sales2)"
    assert table_cells(ui_user, "site")["Referred job"] == f"Harbour gate (#{gate})"
    await ui_user.should_not_see("Acme Theirs")
    ui_user.find(marker="logout").click()
    await login(ui_user, "admin")
    await ui_user.open("/modules/jobs")
    await ui_user.should_see(marker="record-table")
    assert table_cells(ui_user, "referrer")["Referred job"] == f"Acme Theirs (#{theirs})"


async def test_layout_editor_sets_columns_and_order_per_section(
    ui_user: User, panel: Panel
) -> None:
    from crm_core.lowcode import layouts

    with panel.db.transaction() as s:
        mod.define_module(
            s, actor=panel.staff.admin, key="visits", name_en="Site visits",
            fields=[
                {"key": "title", "label_en": "Title", "field_type": "text", "required": True},
                {"key": "rating", "label_en": "Rating", "field_type": "choice",
                 "choices": ["good", "bad"]},
                {"key": "visited", "label_en": "Visited on", "field_type": "date"},
                {"key": "cost", "label_en": "Cost", "field_type": "money"},
                {"key": "notes", "label_en": "Notes", "field_type": "long_text"},
            ],
        )  # fmt: skip
    await login(ui_user, "admin")
    await ui_user.open("/layouts/module:visits")
    await ui_user.should_see(marker="layout-sections")
    # no layout yet: one section holds every field
    (details,) = ui_user.find(marker="section-title-en-0").elements
    assert details.value == "Details"
    ui_user.find(marker="add-section").click()
    await ui_user.should_see(marker="section-row-1")
    ui_user.find(marker="add-section").click()
    await ui_user.should_see(marker="section-row-2")
    ui_user.find(marker="section-title-en-0").clear().type("Basics")
    ui_user.find(marker="section-title-zh-0").clear().type("基本信息")
    choose(ui_user, "section-columns-0", 1)
    ui_user.find(marker="section-title-en-1").clear().type("Money")
    choose(ui_user, "section-columns-1", 3)
    choose(ui_user, "section-order-1", -1)  # Money comes first
    (rating_section,) = ui_user.find(marker="layout-section-rating").elements
    assert list(rating_section.options.values()) == ["Money", "Basics", "Section 3"]
    for key in ("cost", "visited", "rating"):
        choose(ui_user, f"layout-section-{key}", 1)
    choose(ui_user, "layout-order-rating", 0)  # first within its section
    choose(ui_user, "layout-section-notes", 2)
    ui_user.find(marker="section-remove-2").click()  # its field moves to the first section
    await ui_user.should_not_see(marker="section-row-2")
    assert list(rating_section.options.values()) == ["Money", "Basics"]
    (notes_section,) = ui_user.find(marker="layout-section-notes").elements
    assert notes_section.value == 1  # Money, the first section now
    choose(ui_user, "layout-section-notes", 0)
    ui_user.find(marker="layout-help-cost").type("Before tax")
    choose(ui_user, "layout-hidden-cost", ["sales"])
    ui_user.find(marker="save-layout").click()
    await ui_user.should_see("Layout saved.")
    with panel.db.transaction() as s:
        stored = layouts.stored_layout(s, "module:visits")
    assert stored["sections"] == [
        {"title_en": "Money", "title_zh": None, "columns": 3,
         "fields": ["rating", "visited", "cost"]},
        {"title_en": "Basics", "title_zh": "基本信息", "columns": 1,
         "fields": ["title", "notes"]},
    ]  # fmt: skip
    assert stored["help"] == {"cost": "Before tax"} and stored["hidden"] == {"cost": ["sales"]}
    # the editor opens on what is stored
    await ui_user.open("/layouts/module:visits")
    await ui_user.should_see(marker="layout-sections")
    columns = [next(iter(ui_user.find(marker=f"section-columns-{n}").elements)).value
               for n in (0, 1)]  # fmt: skip
    assert columns == [3, 1]
    await ui_user.should_not_see(marker="section-row-2")
    # the record page renders the two sections in their order and columns
    await ui_user.open("/modules/visits")
    ui_user.find(marker="new-record").click()
    await ui_user.should_see(marker="record-form")
    await ui_user.should_see("Money", marker="section-0")
    await ui_user.should_see("Basics", marker="section-1")
    assert form_fields(ui_user, "section-0-columns-3") == ["rating", "visited", "cost"]
    assert form_fields(ui_user, "section-1-columns-1") == ["title", "notes"]
    (cost,) = ui_user.find(marker="field-cost").elements
    assert cost.props["hint"] == "Before tax"
    # a section needs a title
    await ui_user.open("/layouts/module:visits")
    ui_user.find(marker="section-title-en-1").clear()
    ui_user.find(marker="save-layout").click()
    await ui_user.should_see("Give every section a title.")
    # a sales user gets the sections without the field hidden from them
    ui_user.find(marker="logout").click()
    await login(ui_user, "sales1")
    await ui_user.open("/modules/visits")
    ui_user.find(marker="new-record").click()
    await ui_user.should_see(marker="record-form")
    assert form_fields(ui_user, "section-0-columns-3") == ["rating", "visited"]
