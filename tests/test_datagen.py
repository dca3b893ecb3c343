"""The seeded demo data generator: determinism, shape, realism and referential integrity."""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import phonenumbers
import pytest

from crm_core.datagen import COLUMNS, DemoData, generate, main, write_sample
from crm_core.normalize import has_cjk, normalize_email, normalize_phone

END = date(2026, 11, 1)
SAMPLE = Path(__file__).resolve().parents[1] / "datasets" / "sample"


@cache
def _data(n: int = 3000, seed: int = 11) -> DemoData:
    return generate(n, seed=seed)


def _email_key(email: str) -> str:
    local, _, domain = normalize_email(email).lower().rpartition("@")
    return f"{local.split('+')[0].replace('.', '')}@{domain}"


def test_same_arguments_give_identical_frames() -> None:
    first = generate(400, seed=5)
    second = generate(400, seed=5)
    for name, frame in first.frames().items():
        pd.testing.assert_frame_equal(frame, second.frames()[name], obj=name)


def test_different_seeds_give_different_data() -> None:
    a = generate(400, seed=5, history=False).customers
    b = generate(400, seed=6, history=False).customers
    assert not a["name"].equals(b["name"])
    assert not a["phone"].equals(b["phone"])


def test_history_flag_does_not_change_customers() -> None:
    with_history = generate(400, seed=5)
    without = generate(400, seed=5, history=False)
    pd.testing.assert_frame_equal(with_history.customers, without.customers)


def test_frames_have_the_documented_columns() -> None:
    data = _data()
    for name, frame in data.frames().items():
        assert tuple(frame.columns) == COLUMNS[name], name
        assert frame["id"].tolist() == list(range(1, len(frame) + 1)), name
        assert len(frame) > 0, name
    customers = data.customers
    assert len(customers) == 3000
    assert str(customers["birthday"].dtype) == "date32[day][pyarrow]"
    assert str(customers["created_at"].dtype) == "datetime64[us, UTC]"
    assert str(customers["owner_id"].dtype) == "Int64"
    assert pd.api.types.is_string_dtype(customers["name"])


def test_empty_history_frames_keep_their_columns() -> None:
    data = generate(50, seed=1, history=False)
    assert len(data.customers) == 50
    for name in ("interactions", "deals", "orders", "payments", "contracts", "tickets", "tasks"):
        frame = data.frames()[name]
        assert frame.empty
        assert tuple(frame.columns) == COLUMNS[name]
        assert frame.dtypes.equals(_data().frames()[name].dtypes)


def test_tiny_and_duplicate_free_runs() -> None:
    assert generate(0).customers.empty
    one = generate(1, seed=3)
    assert len(one.customers) == 1
    clean = generate(200, seed=3, duplicate_rate=0.0, history=False).customers
    assert clean["truth_cluster"].is_unique


def test_values_come_from_the_documented_vocabularies() -> None:
    c = _data().customers
    assert set(c["kind"]) == {"person", "company"}
    assert set(c["lifecycle_stage"]) == {
        "lead",
        "prospect",
        "customer",
        "vip",
        "dormant",
        "churned",
    }
    assert set(c["value_tier"]) == {"A", "B", "C"}
    assert set(c["size"].dropna()) <= {"1-10", "11-50", "51-200", "201-1000", "1000+"}
    assert set(c["source"]) <= {
        "website", "referral", "trade_show", "cold_call", "wechat", "social", "partner", "ads",
    }  # fmt: skip
    assert set(c["country"]) == {"CN", "US", "GB", "AU", "CA", "SG"}
    assert 0.07 < (c["kind"] == "company").mean() < 0.14
    tags = {t for value in c["tags"] for t in value.split(";") if t}
    assert "wechat" in tags and "key_account" in tags
    users = _data().users
    roles = users["role"].value_counts()
    assert roles["admin"] == 1 and roles["support"] == 2 and 6 <= roles["sales"] <= 10
    assert roles["data_steward"] == 1 and roles["analyst"] == 1 and 2 <= roles["manager"] <= 3
    assert users["username"].map(str.isascii).all() and users["username"].is_unique


def test_about_half_the_customers_are_chinese() -> None:
    c = _data().customers
    share = c["name"].map(has_cjk).mean()
    assert 0.4 <= share <= 0.6
    chinese = c[c["country"] == "CN"]
    persons = chinese[(chinese["kind"] == "person") & chinese["name"].map(has_cjk)]
    surnames = persons["name"].str[0].value_counts(normalize=True)
    assert set(surnames.index[:5]) & {"王", "李", "张", "刘", "陈"}
    assert (persons["name"].str.len() == 2).mean() > 0.2  # many two-character names
    companies = chinese.loc[chinese["kind"] == "company", "name"]
    assert companies.str.contains("有限公司|集团").mean() > 0.8
    english = c[(c["country"] != "CN") & (c["kind"] == "company")]["name"]
    assert (
        english.str.contains(r"Ltd|Limited|Inc|LLC|Co\.|Corp|PLC|LLP|Pte", regex=True).mean() > 0.8
    )


def test_every_phone_is_valid_and_in_its_country() -> None:
    c = _data().customers
    assert c["phone"].notna().mean() > 0.85
    assert c["phone2"].notna().mean() < 0.3
    for column in ("phone", "phone2"):
        rows = c[c[column].notna()]
        for raw, country in zip(rows[column], rows["country"], strict=True):
            e164 = normalize_phone(raw, region="CN")
            region = phonenumbers.region_code_for_number(phonenumbers.parse(e164))
            assert region == country, (raw, country, e164)
            assert normalize_phone(raw, region=country) == e164
    assert c["phone"].str.len().max() <= 20
    assert c["phone"].str.contains(" ").any() and c["phone"].str.contains("-").any()


def test_every_email_is_valid() -> None:
    c = _data().customers
    assert c["email"].notna().mean() > 0.8
    for email in c["email"].dropna():
        assert normalize_email(email)


def test_birthdays_and_timestamps_are_in_range() -> None:
    c = _data().customers
    birthdays = c["birthday"].dropna()
    assert 0.3 < c["birthday"].notna().mean() < 0.7
    assert birthdays.max() <= min(END, date.today())
    assert birthdays.min() >= date(END.year - 75, 1, 1)
    assert c.loc[c["kind"] == "company", "birthday"].isna().all()
    start = pd.Timestamp(datetime(END.year - 4, END.month, END.day, tzinfo=UTC))
    end = pd.Timestamp(datetime(END.year, END.month, END.day, tzinfo=UTC))
    assert c["created_at"].min() >= start and c["created_at"].max() < end
    assert c["created_at"].dt.year.nunique() >= 4
    data = _data()
    for name, column in [
        ("interactions", "occurred_at"),
        ("deals", "created_at"),
        ("orders", "ordered_at"),
        ("payments", "paid_at"),
        ("tickets", "created_at"),
        ("loyalty", "occurred_at"),
    ]:
        values = data.frames()[name][column]
        assert values.min() >= start and values.max() < end, name
    created = c.set_index("id")["created_at"]
    i = data.interactions
    assert (i["occurred_at"].to_numpy() >= created.loc[i["customer_id"]].to_numpy()).all()


def test_planted_duplicates_share_a_cluster_and_differ_from_their_original() -> None:
    c = _data().customers.set_index("id", drop=False)
    sizes = c.groupby("truth_cluster")["id"].transform("size")
    copies = c[c["id"] != c["truth_cluster"]]
    assert 0.05 < len(copies) / len(c) < 0.15
    assert set(sizes[sizes > 1].unique()) <= {2, 3}
    assert (c.groupby("truth_cluster")["id"].min() == c.groupby("truth_cluster").size().index).all()
    fields = ["name", "company", "phone", "phone2", "email", "city", "district", "street",
              "postcode", "birthday", "position"]  # fmt: skip
    same_phone_and_email = 0
    for _, copy in copies.iterrows():
        original = c.loc[copy["truth_cluster"]]
        assert copy["created_at"] > original["created_at"]
        assert copy["kind"] == original["kind"] and copy["country"] == original["country"]
        differs = [f for f in fields if not _same(copy[f], original[f])]
        assert differs, copy["id"]
        phone_same = _same_phone(copy["phone"], original["phone"])
        email_same = _same_email(copy["email"], original["email"])
        same_phone_and_email += phone_same and email_same
        # a person would still call it the same record: a contact detail or the address matches
        address_same = (
            copy["street"] == original["street"] or copy["postcode"] == original["postcode"]
        )
        assert phone_same or email_same or address_same or copy["city"] == original["city"]
    assert same_phone_and_email < 0.6 * len(copies)


def test_duplicates_use_the_expected_kinds_of_variation() -> None:
    c = generate(6000, seed=21, history=False).customers.set_index("id", drop=False)
    copies = c[c["id"] != c["truth_cluster"]]
    originals = c.loc[copies["truth_cluster"]]
    names = copies["name"].to_numpy()
    before = originals["name"].to_numpy()
    assert any(", " in n and ", " not in o for n, o in zip(names, before, strict=True))
    assert any(has_cjk(o) and not has_cjk(n) for n, o in zip(names, before, strict=True))
    assert any(n.startswith(("Bill ", "Bob ", "Mike ", "Liz ", "Jim ")) for n in names)
    emails = copies["email"].dropna()
    assert emails.str.contains(r"\+").any() and (emails != emails.str.lower()).any()
    phone_restyled = [
        a != b and _same_phone(a, b)
        for a, b in zip(copies["phone"], originals["phone"], strict=True)
        if isinstance(a, str) and isinstance(b, str)
    ]
    assert sum(phone_restyled) > 0.1 * len(copies)


def test_phones_and_emails_do_not_leak_across_clusters() -> None:
    c = _data().customers
    phones = c["phone"].dropna().map(lambda p: normalize_phone(p, region="CN"))
    clusters = c.loc[phones.index, "truth_cluster"]
    assert (pd.DataFrame({"k": phones, "c": clusters}).groupby("k")["c"].nunique() == 1).all()
    emails = c["email"].dropna().map(_email_key)
    clusters = c.loc[emails.index, "truth_cluster"]
    assert (pd.DataFrame({"k": emails, "c": clusters}).groupby("k")["c"].nunique() == 1).all()


def test_foreign_keys_are_consistent() -> None:
    data = _data()
    customer_ids = set(data.customers["id"])
    user_ids = set(data.users["id"])
    team_ids = set(data.teams["id"])
    for name in ("interactions", "deals", "orders", "contracts", "tickets", "tasks", "loyalty"):
        assert set(data.frames()[name]["customer_id"]) <= customer_ids, name
    assert set(data.payments["order_id"]) <= set(data.orders["id"])
    for frame, column in [
        (data.customers, "owner_id"),
        (data.interactions, "user_id"),
        (data.deals, "owner_id"),
        (data.tickets, "assignee_id"),
        (data.tasks, "assignee_id"),
    ]:
        assert set(frame[column].dropna()) <= user_ids, column
    assert set(data.users["team_id"].dropna()) <= team_ids
    c = data.customers.set_index("id")
    refs = c["company_ref"].dropna()
    assert len(refs) > 0
    assert (c.loc[refs.to_numpy(), "kind"] == "company").all()
    assert (refs.to_numpy() < refs.index.to_numpy()).all()  # companies are loaded first
    assert (c.loc[c["kind"] == "company", "company_ref"].isna()).all()
    owners = data.users.set_index("id")["role"]
    assert (owners.loc[c["owner_id"].dropna().unique()] == "sales").all()


def test_history_is_plausible() -> None:
    data = _data()
    c = data.customers.set_index("id")
    deals = data.deals
    assert set(deals["stage"]) == {"new", "qualified", "proposal", "negotiation", "won", "lost"}
    won = deals["status"] == "won"
    assert (deals.loc[won, "stage"] == "won").all()
    assert deals.loc[deals["status"] == "open", "closed_at"].isna().all()
    assert (
        deals["closed_at"].dropna() >= deals.loc[deals["closed_at"].notna(), "created_at"]
    ).all()
    assert deals["lost_reason"].notna().eq(deals["status"] == "lost").all()
    orders = data.orders
    assert orders["number"].is_unique
    leads = c.index[c["lifecycle_stage"].isin(["lead", "prospect"])]
    assert not orders["customer_id"].isin(leads).any()
    assert 1.2 < len(orders) / len(c) < 2.8
    expected = c.loc[orders["customer_id"], "country"].map(
        lambda x: "CNY" if x == "CN" else "GBP" if x == "GB" else "USD"
    )
    assert (orders["currency"].to_numpy() == expected.to_numpy()).all()
    for frame, column in [(orders, "total"), (data.payments, "amount"), (deals, "amount")]:
        assert np.allclose(frame[column], frame[column].round(2)), column
    paid = data.payments.groupby("order_id")["amount"].sum()
    totals = orders.set_index("id")["total"]
    completed = orders.loc[orders["status"] == "completed", "id"]
    assert np.allclose(paid.loc[completed], totals.loc[completed])
    tickets = data.tickets
    assert set(tickets["kind"]) == {"feedback", "complaint", "request"}
    closed = tickets["status"] == "closed"
    assert tickets.loc[~closed, "satisfaction"].isna().all()
    assert tickets.loc[closed, "satisfaction"].between(1, 5).all()
    assert tickets.loc[tickets["status"].isin(["resolved", "closed"]), "resolved_at"].notna().all()
    end = pd.Timestamp(datetime(END.year, END.month, END.day, tzinfo=UTC))
    tasks = data.tasks
    overdue = tasks["done_at"].isna() & (tasks["due_at"] < end)
    assert 0 < overdue.mean() < 0.5 and tasks["done_at"].notna().mean() > 0.4
    contracts = data.contracts
    assert (contracts["end_date"] > contracts["start_date"]).all()
    soon = contracts["end_date"].between(END, date(END.year + 1, 2, 1))
    assert soon.any()
    assert set(data.interactions["kind"]) == {"call", "email", "meeting", "visit", "chat", "note"}


def test_loyalty_balances_never_go_negative() -> None:
    loyalty = _data().loyalty.sort_values(["customer_id", "occurred_at", "id"])
    assert (loyalty["points"] < 0).any() and (loyalty["points"] > 0).any()
    running = loyalty.groupby("customer_id")["points"].cumsum()
    assert (running >= 0).all()


def test_scaling_smoke_twenty_thousand_rows() -> None:
    started = datetime.now(UTC)
    data = generate(20_000, seed=2)
    seconds = (datetime.now(UTC) - started).total_seconds()
    c = data.customers
    assert len(c) == 20_000 and c["id"].is_unique
    assert c["truth_cluster"].nunique() < 20_000
    assert len(data.interactions) > 20_000 and len(data.orders) > 20_000
    assert seconds < 120


def test_write_sample_and_command_line(tmp_path: Path) -> None:
    data = generate(120, seed=4)
    write_sample(data, tmp_path / "a")
    for name, frame in data.frames().items():
        back = pd.read_csv(tmp_path / "a" / f"{name}.csv", encoding="utf-8")
        assert list(back.columns) == list(COLUMNS[name])
        assert len(back) == len(frame)
    main(["--customers", "120", "--seed", "4", "--out", str(tmp_path / "b")])
    for name in COLUMNS:
        assert (tmp_path / "a" / f"{name}.csv").read_bytes() == (
            tmp_path / "b" / f"{name}.csv"
        ).read_bytes()


def test_shipped_sample_is_small_and_complete() -> None:
    if not SAMPLE.exists():
        pytest.skip("datasets/sample not generated")
    total = sum(p.stat().st_size for p in SAMPLE.glob("*.csv"))
    assert total < 1_000_000
    customers = pd.read_csv(SAMPLE / "customers.csv")
    assert len(customers) == 500
    for name in COLUMNS:
        assert list(pd.read_csv(SAMPLE / f"{name}.csv", nrows=1).columns) == list(COLUMNS[name])


def _same(a: object, b: object) -> bool:
    if pd.isna(a) and pd.isna(b):
        return True
    if pd.isna(a) or pd.isna(b):
        return False
    return a == b


def _same_phone(a: object, b: object) -> bool:
    if not isinstance(a, str) or not isinstance(b, str):
        return False
    return normalize_phone(a, region="CN") == normalize_phone(b, region="CN")


def _same_email(a: object, b: object) -> bool:
    if not isinstance(a, str) or not isinstance(b, str):
        return False
    return normalize_email(a).lower() == normalize_email(b).lower()
