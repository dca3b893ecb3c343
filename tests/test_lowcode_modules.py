"""Custom modules through the services, on SQLite and PostgreSQL: definition, records (create,
edit, search, filters, paging, archive, bulk, import, export, timeline), role permissions and
schema changes kept or refused with the count of affected records."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import func, select

from crm_core import activities
from crm_core import customers as customer_svc
from crm_core.errors import ConflictError, InvalidInput, NotFound, PermissionDenied
from crm_core.lowcode import modules as mod
from crm_core.lowcode import records as rec
from crm_core.lowcode.records import Condition, RecordFilter
from crm_core.models import AuditEntry, ModuleRecord, ModuleValue

PROJECT_FIELDS = [
    {"key": "title", "label_en": "Title", "label_zh": "名称", "field_type": "text", "required": True},
    {"key": "code", "label_en": "Code", "field_type": "text", "unique": True},
    {"key": "budget", "label_en": "Budget", "field_type": "money"},
    {"key": "seats", "label_en": "Seats", "field_type": "number"},
    {"key": "start", "label_en": "Start", "field_type": "date"},
    {"key": "kickoff", "label_en": "Kick-off", "field_type": "datetime"},
    {"key": "stage", "label_en": "Stage", "field_type": "choice", "choices": ["Plan", "Build", "Done"]},
    {"key": "tags", "label_en": "Tags", "field_type": "multi_choice", "choices": ["web", "app"]},
    {"key": "paid", "label_en": "Paid", "field_type": "yes_no"},
    {"key": "contact", "label_en": "Contact e-mail", "field_type": "email"},
    {"key": "phone", "label_en": "Phone", "field_type": "phone"},
    {"key": "notes", "label_en": "Notes", "field_type": "long_text"},
    {"key": "customer", "label_en": "Customer", "field_type": "customer"},
    {"key": "lead", "label_en": "Lead", "field_type": "user"},
]  # fmt: skip


def define_projects(db, staff, **extra):
    with db.transaction() as s:
        mod.define_module(
            s,
            actor=staff.admin,
            key="projects",
            name_en="Projects",
            name_zh="项目",
            fields=PROJECT_FIELDS,
            display_field="title",
            **extra,
        )


def customer(db, actor, name="Acme"):
    with db.transaction() as s:
        return customer_svc.create_customer(s, actor=actor, data={"name": name}).id


def create(db, actor, **data):
    with db.transaction() as s:
        return rec.create_record(s, actor=actor, module_key="projects", data=data).id


def names(db, actor, filters=None):
    with db.transaction() as s:
        page = rec.list_records(s, actor=actor, module_key="projects", filters=filters, limit=500)
        return sorted(r.display_name for r in page.items)


def test_define_module_and_create_record_with_every_type(db, staff):
    define_projects(db, staff)
    cid = customer(db, staff.sales1)
    rid = create(
        db,
        staff.sales1,
        title="  Website  relaunch ",
        code="P-1",
        budget="12,500.5",
        seats="3",
        start="2026年5月3日",
        kickoff="2026-05-04 09:30",
        stage="build",
        tags="app; web",
        paid="是",
        contact="Ops@Example.COM",
        phone="138 0013 8000",
        notes="long\ntext",
        customer=cid,
        lead=staff.sales1.id,
    )
    with db.transaction() as s:
        out = rec.get_record(s, actor=staff.sales1, module_key="projects", record_id=rid)
        assert out.display_name == "Website relaunch"
        assert out.data == {
            "title": "Website relaunch",
            "code": "P-1",
            "budget": "12500.50",
            "seats": 3,
            "start": "2026-05-03",
            "kickoff": "2026-05-04T09:30:00Z",
            "stage": "Build",
            "tags": ["web", "app"],
            "paid": True,
            "contact": "Ops@example.com",
            "phone": "+8613800138000",
            "notes": "long\ntext",
            "customer": cid,
            "lead": staff.sales1.id,
        }
        assert out.customer_id == cid
        # long text is not indexed, multi-choice has one row per choice
        keys = s.scalars(select(ModuleValue.field_key).where(ModuleValue.record_id == rid)).all()
        assert "notes" not in keys and keys.count("tags") == 2
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "module_record.create"))
        assert entry.entity_id == rid and entry.changes["title"] == [None, "Website relaunch"]
        module = mod.get_module(s, "projects")
        assert module.name_zh == "项目" and module.display_field == "title"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"code": "x"}, "title"),
        ({"title": "A", "seats": "many"}, "seats"),
        ({"title": "A", "stage": "Later"}, "stage"),
        ({"title": "A", "tags": "web, desktop"}, "tags"),
        ({"title": "A", "contact": "nope"}, "contact"),
        ({"title": "A", "phone": "12"}, "phone"),
        ({"title": "A", "start": "31/31/2026"}, "start"),
        ({"title": "A", "customer": 99999}, "customer"),
        ({"title": "A", "lead": 99999}, "lead"),
        ({"title": "A", "shoe": 1}, "shoe"),
    ],
)
def test_invalid_values_name_the_field_and_write_nothing(db, staff, data, field):
    define_projects(db, staff)
    with pytest.raises(InvalidInput) as err, db.transaction() as s:
        rec.create_record(s, actor=staff.admin, module_key="projects", data=data)
    assert field in err.value.errors
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(ModuleRecord)) == 0


def test_unique_field_refuses_a_second_record_case_insensitively(db, staff):
    define_projects(db, staff)
    first = create(db, staff.admin, title="A", code="P-1")
    with pytest.raises(InvalidInput) as err, db.transaction() as s:
        rec.create_record(
            s, actor=staff.admin, module_key="projects", data={"title": "B", "code": "p-1"}
        )
    assert f"record {first}" in err.value.errors["code"]
    with db.transaction() as s:  # editing the owner of the value keeps it
        rec.update_record(
            s, actor=staff.admin, module_key="projects", record_id=first, data={"title": "A2"}
        )
        rec.update_record(
            s, actor=staff.admin, module_key="projects", record_id=first, data={"code": "P-2"}
        )
    create(db, staff.admin, title="B", code="P-1")  # the old value is free again


def test_edit_search_filters_and_keyset_paging(db, staff):
    define_projects(db, staff)
    for i in range(7):
        create(db, staff.admin, title=f"Alpha {i}", seats=i, stage=["Plan", "Build"][i % 2],
               start=f"2026-01-0{i + 1}", tags=["web"] if i < 3 else ["web", "app"])  # fmt: skip
    create(db, staff.admin, title="Beta Ω", contact="beta@example.com")
    assert names(db, staff.admin, RecordFilter(query="beta@EXAMPLE")) == ["Beta Ω"]
    assert names(db, staff.admin, RecordFilter(query="alpha 3")) == ["Alpha 3"]
    build = RecordFilter(conditions=[Condition("stage", "eq", "build")])
    assert names(db, staff.admin, build) == ["Alpha 1", "Alpha 3", "Alpha 5"]
    both = RecordFilter(
        conditions=[Condition("stage", "eq", "Build"), Condition("seats", "gte", 3)]
    )
    assert names(db, staff.admin, both) == ["Alpha 3", "Alpha 5"]
    assert names(db, staff.admin, RecordFilter(conditions=[Condition("tags", "eq", "app")])) == [
        f"Alpha {i}" for i in range(3, 7)
    ]
    early = RecordFilter(conditions=[Condition("start", "lt", "2026-01-03")])
    assert names(db, staff.admin, early) == ["Alpha 0", "Alpha 1"]
    assert names(db, staff.admin, RecordFilter(conditions=[Condition("start", "empty")])) == [
        "Beta Ω"
    ]
    with pytest.raises(InvalidInput), db.transaction() as s:
        rec.list_records(s, actor=staff.admin, module_key="projects",
                         filters=RecordFilter(conditions=[Condition("seats", "eq", "x")]))  # fmt: skip
    # paging: 8 records, pages of 3, newest change first, nothing repeated or lost
    seen, cursor = [], None
    with db.transaction() as s:
        while True:
            page = rec.list_records(
                s, actor=staff.admin, module_key="projects", cursor=cursor, limit=3
            )
            seen += [r.display_name for r in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
    assert len(seen) == 8 and len(set(seen)) == 8 and seen[0] == "Beta Ω"
    # an edit with a stale version is refused
    with db.transaction() as s:
        rid = s.scalar(select(ModuleRecord.id).where(ModuleRecord.display_name == "Alpha 0"))
        rec.update_record(s, actor=staff.admin, module_key="projects", record_id=rid,
                          data={"title": "Alpha zero", "seats": ""}, expected_version=1)  # fmt: skip
    with pytest.raises(ConflictError), db.transaction() as s:
        rec.update_record(s, actor=staff.admin, module_key="projects", record_id=rid,
                          data={"title": "again"}, expected_version=1)  # fmt: skip
    with db.transaction() as s:
        out = rec.get_record(s, actor=staff.admin, module_key="projects", record_id=rid)
        assert out.display_name == "Alpha zero" and "seats" not in out.data and out.version == 2


def test_archive_restore_and_all_or_nothing_bulk(db, staff):
    define_projects(db, staff)
    ids = [create(db, staff.admin, title=f"P{i}") for i in range(3)]
    with db.transaction() as s:
        rec.archive_record(
            s, actor=staff.admin, module_key="projects", record_id=ids[0], reason="done"
        )
    assert names(db, staff.admin) == ["P1", "P2"]
    assert names(db, staff.admin, RecordFilter(archived=True)) == ["P0"]
    with pytest.raises(ConflictError), db.transaction() as s:
        rec.update_record(
            s, actor=staff.admin, module_key="projects", record_id=ids[0], data={"title": "x"}
        )
    # bulk archive including an archived record: refused, nothing changed
    with pytest.raises(InvalidInput) as err, db.transaction() as s:
        rec.bulk_action(
            s, actor=staff.admin, module_key="projects", record_ids=ids, action="archive"
        )
    assert f"record {ids[0]}" in str(err.value)
    assert names(db, staff.admin) == ["P1", "P2"]
    with db.transaction() as s:
        assert rec.bulk_action(s, actor=staff.admin, module_key="projects", record_ids=ids[1:],
                               action="update", values={"stage": "Done"}) == 2  # fmt: skip
        rec.restore_record(s, actor=staff.admin, module_key="projects", record_id=ids[0])
    done = RecordFilter(conditions=[Condition("stage", "eq", "Done")])
    assert names(db, staff.admin, done) == ["P1", "P2"]
    assert names(db, staff.admin) == ["P0", "P1", "P2"]
    with pytest.raises(PermissionDenied), db.transaction() as s:  # sales may not archive
        rec.bulk_action(
            s, actor=staff.sales1, module_key="projects", record_ids=ids, action="archive"
        )
    with db.transaction() as s:
        actions = s.scalars(
            select(AuditEntry.action).where(AuditEntry.entity_type == "module_record")
        )
        assert sorted(set(actions)) == [
            "module_record.archive", "module_record.create", "module_record.restore",
            "module_record.update",
        ]  # fmt: skip


def test_import_all_or_nothing_and_export_round_trip(db, staff):
    define_projects(db, staff)
    bad = pd.DataFrame(
        {"Title": ["One", "Two", None], "Code": ["C1", "C1", "C3"], "Seats": [1, "x", 2]}
    )
    with pytest.raises(InvalidInput) as err, db.transaction() as s:
        rec.import_records(s, actor=staff.admin, module_key="projects", frame=bad)
    assert set(err.value.errors) == {"row 3: code", "row 3: seats", "row 4: title"}
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(ModuleRecord)) == 0
    good = pd.DataFrame({"名称": ["One", "Two"], "code": ["C1", "C2"], "Stage": ["plan", "Done"],
                         "tags": ["web, app", ""]})  # fmt: skip
    with db.transaction() as s:
        ids = rec.import_records(s, actor=staff.admin, module_key="projects", frame=good)
    assert len(ids) == 2
    with db.transaction() as s:
        out = rec.export_records(s, actor=staff.admin, module_key="projects")
    assert list(out["title"]) == ["One", "Two"] and list(out["stage"]) == ["Plan", "Done"]
    assert list(out["tags"])[0] == "web, app"
    # the export reads back in (as a new module's import) once unique codes are changed
    out["code"] = ["D1", "D2"]
    with db.transaction() as s:
        again = rec.import_records(
            s, actor=staff.admin, module_key="projects", frame=out.drop(columns=["customer_id",
            "archived_at", "created_at", "updated_at"]))  # fmt: skip
    assert len(again) == 2 and names(db, staff.admin) == ["One", "One", "Two", "Two"]
    with pytest.raises(PermissionDenied), db.transaction() as s:
        rec.export_records(s, actor=staff.support, module_key="projects")


def test_role_permissions_and_sales_scope(db, staff):
    define_projects(
        db,
        staff,
        permissions={"read": ["manager", "sales", "analyst"], "create": ["sales"],
                     "edit": ["sales"], "archive": ["manager"]},
    )  # fmt: skip
    mine = customer(db, staff.sales1, "Mine")
    theirs = customer(db, staff.sales2, "Theirs")
    a = create(db, staff.sales1, title="Mine project", customer=mine)
    b = create(db, staff.sales2, title="Their project", customer=theirs)
    create(db, staff.sales2, title="Unlinked of sales2")
    assert names(db, staff.sales1) == ["Mine project"]
    assert names(db, staff.sales2) == ["Their project", "Unlinked of sales2"]
    assert names(db, staff.manager) == ["Mine project"]  # team A
    assert len(names(db, staff.analyst)) == 3 and len(names(db, staff.admin)) == 3
    for _actor, action in [
        (staff.support, lambda s: rec.list_records(s, actor=staff.support, module_key="projects")),
        (staff.manager, lambda s: rec.create_record(s, actor=staff.manager, module_key="projects",
                                                    data={"title": "x"})),
        (staff.analyst, lambda s: rec.update_record(s, actor=staff.analyst, module_key="projects",
                                                    record_id=a, data={"title": "x"})),
        (staff.sales1, lambda s: rec.archive_record(s, actor=staff.sales1, module_key="projects",
                                                    record_id=a)),
    ]:  # fmt: skip
        with pytest.raises(PermissionDenied), db.transaction() as s:
            action(s)
    with pytest.raises(NotFound), db.transaction() as s:  # another's record looks missing
        rec.update_record(
            s, actor=staff.sales1, module_key="projects", record_id=b, data={"title": "x"}
        )
    with pytest.raises(InvalidInput) as err, db.transaction() as s:  # nor may sales1 link to it
        rec.create_record(s, actor=staff.sales1, module_key="projects",
                          data={"title": "x", "customer": theirs})  # fmt: skip
    assert "customer" in err.value.errors
    with db.transaction() as s:
        rec.archive_record(s, actor=staff.manager, module_key="projects", record_id=a)
        assert [m.key for m in mod.list_modules(s, actor=staff.support)] == []
    with pytest.raises(PermissionDenied), db.transaction() as s:
        mod.define_module(s, actor=staff.manager, key="x", name_en="X")


def test_records_appear_in_the_linked_customers_timeline(db, staff):
    define_projects(db, staff)
    cid = customer(db, staff.sales1)
    create(db, staff.sales1, title="Rollout", customer=cid)
    with db.transaction() as s:
        items = activities.timeline(s, actor=staff.sales1, customer_id=cid)
        assert [(i.kind, i.title, i.detail) for i in items] == [("module", "Rollout", "Projects")]


def test_schema_changes_keep_data(db, staff):
    define_projects(db, staff)
    rid = create(db, staff.admin, title="A", seats=4, stage="Plan", code="X1")
    create(db, staff.admin, title="B", stage="Build")
    with db.transaction() as s:
        mod.add_field(s, actor=staff.admin, module_key="projects", key="site", label_en="Site",
                      field_type="text")  # fmt: skip
        mod.update_field(s, actor=staff.admin, module_key="projects", field_key="seats",
                         label_en="Head count", label_zh="人数")  # fmt: skip
        mod.update_field(s, actor=staff.admin, module_key="projects", field_key="stage",
                         rename_choices={"Plan": "Planning"})  # fmt: skip
        mod.update_field(s, actor=staff.admin, module_key="projects", field_key="stage",
                         choices=["Planning", "Build", "Done", "Hold"])  # fmt: skip
        mod.update_field(s, actor=staff.admin, module_key="projects", field_key="seats",
                         field_type="money")  # fmt: skip
        mod.retire_field(s, actor=staff.admin, module_key="projects", field_key="code")
    with db.transaction() as s:
        out = rec.get_record(s, actor=staff.admin, module_key="projects", record_id=rid)
        assert out.data == {"title": "A", "seats": "4.00", "stage": "Planning"}  # code hidden
        assert s.get(ModuleRecord, rid).data["code"] == "X1"  # but kept
        specs = {f.key: f for f in mod.field_specs(s, mod.get_module(s, "projects"))}
        assert specs["seats"].label("zh") == "人数" and "code" not in specs
    planning = RecordFilter(conditions=[Condition("stage", "eq", "Planning")])
    assert names(db, staff.admin, planning) == ["A"]
    assert names(db, staff.admin, RecordFilter(conditions=[Condition("seats", "eq", 4)])) == ["A"]
    with db.transaction() as s:
        mod.restore_field(s, actor=staff.admin, module_key="projects", field_key="code")
        assert (
            rec.get_record(s, actor=staff.admin, module_key="projects", record_id=rid).data["code"]
            == "X1"
        )
        audit = s.scalars(
            select(AuditEntry.action).where(AuditEntry.entity_type == "custom_module")
        )
        assert {"module.create", "module.field_add", "module.field_update"} <= set(audit)


@pytest.mark.parametrize(
    ("change", "field", "affected"),
    [
        ({"field_key": "seats", "required": True}, "required", 1),
        ({"field_key": "stage", "choices": ["Plan", "Done"]}, "choices", 1),
        ({"field_key": "title", "field_type": "number"}, "field_type", 3),
        ({"field_key": "code", "field_type": "date"}, "field_type", 1),
        ({"field_key": "site", "unique": True}, "unique", 2),
        ({"field_key": "customer", "field_type": "number"}, "field_type", 1),
    ],
)
def test_schema_changes_that_would_break_data_are_refused_with_counts(
    db, staff, change, field, affected
):
    define_projects(db, staff)
    with db.transaction() as s:
        mod.add_field(s, actor=staff.admin, module_key="projects", key="site", label_en="Site",
                      field_type="text")  # fmt: skip
    cid = customer(db, staff.admin)
    create(db, staff.admin, title="A", stage="Build", code="C-1", site="HZ", seats=1, customer=cid)
    create(db, staff.admin, title="B", stage="Plan", site="hz")
    create(db, staff.admin, title="C", seats=2)
    with pytest.raises(mod.SchemaChangeRefused) as err, db.transaction() as s:
        mod.update_field(s, actor=staff.admin, module_key="projects", **change)
    assert err.value.field == field and err.value.affected == affected
    assert str(affected) in str(err.value)
    with db.transaction() as s:  # nothing changed
        f = {x.key: x for x in mod.module_fields(s, mod.get_module(s, "projects"))}[
            change["field_key"]
        ]
        kinds = {d["key"]: d["field_type"] for d in PROJECT_FIELDS} | {"site": "text"}
        assert f.field_type == kinds[f.key] and f.required == (f.key == "title")
        assert f.unique == (f.key == "code") and len(f.choices) == (3 if f.key == "stage" else 0)


def test_adding_a_required_field_is_refused_while_records_exist(db, staff):
    define_projects(db, staff)
    create(db, staff.admin, title="A")
    with pytest.raises(mod.SchemaChangeRefused) as err, db.transaction() as s:
        mod.add_field(s, actor=staff.admin, module_key="projects", key="owner_note",
                      label_en="Note", field_type="text", required=True)  # fmt: skip
    assert err.value.affected == 1


def test_link_to_another_module(db, staff):
    define_projects(db, staff)
    with db.transaction() as s:
        mod.define_module(s, actor=staff.admin, key="site_visits", name_en="Site visits",
                          name_zh="现场拜访", fields=[
                              {"key": "when", "label_en": "When", "field_type": "datetime", "required": True},
                              {"key": "project", "label_en": "Project", "field_type": "module",
                               "link_module": "projects"},
                          ])  # fmt: skip
    pid = create(db, staff.admin, title="Tower")
    with db.transaction() as s:
        visit = rec.create_record(s, actor=staff.admin, module_key="site_visits",
                                  data={"when": "2026-02-03T10:00:00+08:00", "project": pid})  # fmt: skip
        assert visit.display_name == "2026-02-03T02:00:00Z"
    with pytest.raises(InvalidInput) as err, db.transaction() as s:
        rec.create_record(s, actor=staff.admin, module_key="site_visits",
                          data={"when": "2026-02-03", "project": pid + 100})  # fmt: skip
    assert "project" in err.value.errors
