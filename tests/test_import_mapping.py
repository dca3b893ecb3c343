"""Column mapping: headers in English and Chinese, custom fields, saved mappings; cleaning."""

from __future__ import annotations

import pytest

from crm_core.customfields import define_field
from crm_core.errors import InvalidInput, NotFound, PermissionDenied
from crm_core.importing import cleaning
from crm_core.importing.mapping import (
    check_mapping,
    guess_mapping,
    guess_target,
    list_mappings,
    load_mapping,
    save_mapping,
)


@pytest.mark.parametrize(
    ("header", "target"),
    [
        ("姓名", "name"),
        ("客户名称", "name"),
        ("手机", "phone"),
        ("手机号码", "phone"),
        ("电话", "phone"),
        ("邮箱", "email"),
        ("电子邮件", "email"),
        ("公司", "company_name"),
        ("职位", "position"),
        ("地址", "street"),
        ("城市", "city"),
        ("省份", "province"),
        ("生日", "birthday"),
        ("出生日期", "birthday"),
        ("行业", "industry"),
        ("来源", "source"),
        ("标签", "tags"),
        ("备注", "notes"),
        ("客户手机号", "phone"),
        ("Full Name", "name"),
        ("E-mail Address", "email"),
        ("Work Email", "email"),
        ("Job Title", "position"),
        ("Date of Birth", "birthday"),
        ("ZIP code", "postcode"),
        ("lifecycle_stage", "lifecycle_stage"),
        ("External ID", "external_id"),
        ("id", "id"),
        ("Favourite colour", None),
    ],
)
def test_guess_target(header, target):
    assert guess_target(header) == target


def test_single_value_targets_go_to_the_first_column_only():
    mapping = guess_mapping(["姓名", "手机", "电话", "联系人", "邮箱"])
    assert mapping == {
        "姓名": "name",
        "手机": "phone",
        "电话": "phone",
        "联系人": None,
        "邮箱": "email",
    }


def test_check_mapping_refuses_unknown_targets_and_needs_a_name():
    with pytest.raises(InvalidInput, match="not a customer field"):
        check_mapping({"a": "shoe_size", "n": "name"}, ["a", "n"])
    with pytest.raises(InvalidInput, match="customer name"):
        check_mapping({"a": "email"}, ["a"])
    with pytest.raises(InvalidInput, match="both fill 'city'"):
        check_mapping({"n": "name", "a": "city", "b": "city"}, ["n", "a", "b"])
    # columns absent from the file and ignored ones drop out
    assert check_mapping({"n": "name", "x": "city", "y": "ignore"}, ["n", "y"]) == {"n": "name"}


def test_custom_fields_are_guessed_by_key_and_labels(db, staff):
    with db.transaction() as s:
        define_field(
            s,
            actor=staff.admin,
            key="vip_level",
            label_en="VIP level",
            label_zh="会员等级",
            field_type="choice",
            choices=["Gold", "Silver"],
        )
        mapping = guess_mapping(["姓名", "会员等级", "VIP Level", "vip_level"], s)
        assert mapping["会员等级"] == "custom.vip_level"
        with pytest.raises(InvalidInput, match="not a defined custom field"):
            check_mapping({"姓名": "name", "x": "custom.nope"}, ["姓名", "x"], s)


def test_saved_mappings_are_reused_and_audited(db, staff):
    with db.transaction() as s:
        save_mapping(
            s,
            actor=staff.steward,
            name="展会名单",
            columns={"姓名": "name", "手机": "phone", "杂项": None},
            mode="create",
            match_key="phone",
        )
    with db.transaction() as s:
        save_mapping(s, actor=staff.steward, name="展会名单", columns={"姓名": "name"})
    with db.transaction() as s:
        saved = load_mapping(s, actor=staff.steward, name="展会名单")
        assert saved.columns == {"姓名": "name"} and saved.mode is None
        assert [m.name for m in list_mappings(s, actor=staff.admin)] == ["展会名单"]
        with pytest.raises(NotFound):
            load_mapping(s, actor=staff.steward, name="other")
        with pytest.raises(PermissionDenied):
            save_mapping(s, actor=staff.sales1, name="x", columns={"a": "name"})
        from sqlalchemy import select

        from crm_core.models import AuditEntry

        actions = s.scalars(
            select(AuditEntry.action).where(AuditEntry.entity_type == "import_mapping")
        )
        assert list(actions) == ["import_mapping.save", "import_mapping.save"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1.38001E+10", "13800100000"),
        ("13800138000.0", "13800138000"),
        ("1.5E+3", "1500"),
        ("A-1001", "A-1001"),
        ("12.5", "12.5"),
    ],
)
def test_excel_mangled_numbers_are_repaired(raw, expected):
    assert cleaning.fix_number_text(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1990年5月3日", "1990-05-03"),
        ("32996", "1990-05-03"),  # an Excel serial day number
        ("03-May-1990", "1990-05-03"),
        ("1990-05-03 00:00:00", "1990-05-03"),
        ("not a date", "not a date"),  # left for the validator to refuse
    ],
)
def test_dates(raw, expected):
    assert cleaning.clean_date(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["1990-05-03", "0001-01-01", "9999-12-31", "2024-02-29", "2023-02-29", "1990-13-01",
     "1990-00-10", "0000-01-01", "1990-5-3", "1990-05-03x", "１９９０-05-03", "1990-05-3 "],
)  # fmt: skip
def test_iso_dates_read_without_strptime_as_parse_date_reads_them(raw):
    from unittest import mock

    with mock.patch.object(cleaning, "_ISO_DATE", mock.Mock(match=lambda _: None)):
        the_long_way = cleaning.clean_date(raw)  # parse_date, then clean_date's fallbacks
    assert cleaning.clean_date(raw) == the_long_way


def test_row_to_customer_data_cleans_choices_lists_and_blanks():
    columns = [(0, "name"), (1, "phone"), (2, "phone"), (3, "tags"), (4, "lifecycle_stage"),
               (5, "kind"), (6, "city"), (7, "owner"), (8, "custom.plan")]  # fmt: skip
    values = ["  王伟 ", "138 0013 8000", "010-65529988；13912345678", "重点、展会", "潜在客户",
              "公司", "   ", "Sales1", "pro"]  # fmt: skip
    raw = cleaning.row_values(values, columns)
    data, errors = cleaning.to_customer_data(raw, owners={"sales1": 7})
    assert errors == {}
    assert data == {
        "name": "王伟",
        "phones": ["138 0013 8000", "010-65529988", "13912345678"],
        "tags": ["重点", "展会"],
        "lifecycle_stage": "prospect",
        "kind": "company",
        "owner_id": 7,
        "custom": {"plan": "pro"},
    }  # the blank city is missing, not an empty value
    _, errors = cleaning.to_customer_data({"owner": "nobody"}, owners={})
    assert "owner_id" in errors
