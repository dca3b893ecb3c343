"""The DataFrame API of the de-duplication engine: ``find_duplicates`` and friends."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_core.dedupe import (
    DEFAULT_AUTO_MERGE_THRESHOLD,
    DEFAULT_REVIEW_THRESHOLD,
    DedupeSettings,
    MatchModel,
    blocking_keys,
    find_duplicates,
    score_candidates,
    train_model,
)
from crm_core.errors import InvalidInput

CUSTOMERS = pd.DataFrame(
    [
        (1, "王伟", "华为技术有限公司", "wangwei@163.com", "138 0013 8000", "北京", "建国路88号"),
        (2, "王偉", "華為技術", "WangWei@163.com", "+86 13800138000", "北京市", "建国路 88 号"),
        (3, "Wang Wei", None, None, "138-0013-8000", "Beijing", None),
        (4, "李娜", "腾讯科技有限公司", "lina@qq.com", "13900001111", "深圳", "深南大道1号"),
        (5, "Bill Smith", "Acme Inc", "bill.smith+crm@gmail.com", "+1 650 253 0000",
         "New York", "12 Main St."),
        (6, "William Smith", "ACME Corporation", "billsmith@gmail.com", "+1 (650) 253-0000",
         "New York", "12 Main Street"),
        (7, "张三", "阿里巴巴", "zs@alibaba.com", "13711112222", "杭州", "文三路1号"),
        (8, "王伟", "小米科技", "ww2@qq.com", "13611112222", "深圳", "科技路9号"),
        (9, "Jane Doe", None, "jane@example.com", None, "London", None),
    ],
    columns=["id", "name", "company", "email", "phone", "city", "address"],
)  # fmt: skip


@pytest.fixture(scope="module")
def result():
    return find_duplicates(CUSTOMERS, id_column="id")


def _clusters(result) -> set[frozenset]:
    return {frozenset(g["id"]) for _, g in result.clusters.groupby("cluster_id")}


def test_pairs_contract(result) -> None:
    pairs = result.pairs
    assert list(pairs.columns) == ["left_id", "right_id", "score"]
    assert pairs["score"].between(0, 1).all()
    assert (pairs["score"] >= DEFAULT_REVIEW_THRESHOLD).all()
    assert pairs["score"].is_monotonic_decreasing
    assert not (pairs["left_id"] == pairs["right_id"]).any()
    assert not pairs.duplicated(["left_id", "right_id"]).any()


def test_clusters_hold_every_id_once(result) -> None:
    clusters = result.clusters
    assert list(clusters.columns) == ["id", "cluster_id"]
    assert sorted(clusters["id"]) == sorted(CUSTOMERS["id"])
    assert clusters["id"].is_unique


def test_finds_the_duplicates_and_keeps_the_others_apart(result) -> None:
    clusters = _clusters(result)
    assert frozenset({1, 2, 3}) in clusters
    assert frozenset({5, 6}) in clusters
    for alone in (4, 7, 8, 9):
        assert frozenset({alone}) in clusters


def test_paired_records_share_a_cluster(result) -> None:
    cluster_of = result.clusters.set_index("id")["cluster_id"]
    for row in result.pairs.itertuples():
        assert cluster_of[row.left_id] == cluster_of[row.right_id]


def test_thresholds_are_documented_defaults(result) -> None:
    settings = result.settings
    assert settings.review_threshold == DEFAULT_REVIEW_THRESHOLD
    assert settings.auto_merge_threshold == DEFAULT_AUTO_MERGE_THRESHOLD
    assert DEFAULT_REVIEW_THRESHOLD < DEFAULT_AUTO_MERGE_THRESHOLD
    auto = result.auto_merge_pairs
    assert (auto["score"] >= DEFAULT_AUTO_MERGE_THRESHOLD).all()
    assert len(auto) + len(result.review_pairs) == len(result.pairs)


def test_a_higher_review_threshold_reports_fewer_pairs(result) -> None:
    settings = DedupeSettings(review_threshold=0.9999, auto_merge_threshold=0.99999)
    strict = find_duplicates(CUSTOMERS, settings=settings)
    assert len(strict.pairs) <= len(result.pairs)
    assert (strict.pairs["score"] >= 0.9999).all()


@pytest.mark.parametrize(
    "columns",
    [["id", "name"], ["id", "phone"], ["id", "email", "city"], ["id"], ["id", "other"]],
)
def test_missing_columns_are_fine(columns: list[str]) -> None:
    df = CUSTOMERS.assign(other=1)[columns]
    result = find_duplicates(df)
    assert sorted(result.clusters["id"]) == sorted(df["id"])
    assert list(result.pairs.columns) == ["left_id", "right_id", "score"]
    if columns == ["id", "phone"]:
        assert {frozenset({1, 2, 3}), frozenset({5, 6})} <= _clusters(result)
    if columns in (["id"], ["id", "other"]):
        assert result.pairs.empty
        assert result.clusters["cluster_id"].is_unique


def test_other_columns_are_ignored(result) -> None:
    noisy = CUSTOMERS.assign(notes=["x"] * len(CUSTOMERS), amount=range(len(CUSTOMERS)))
    again = find_duplicates(noisy)
    pd.testing.assert_frame_equal(again.pairs, result.pairs)


def test_ids_of_any_type_and_any_index() -> None:
    df = CUSTOMERS.rename(columns={"id": "customer_id"})
    df["customer_id"] = [f"c-{i}" for i in df["customer_id"]]
    df.index = range(100, 100 + len(df))
    result = find_duplicates(df, id_column="customer_id")
    assert set(result.clusters["id"]) == set(df["customer_id"])
    assert frozenset({"c-5", "c-6"}) in _clusters(result)


def test_empty_and_single_row_frames() -> None:
    empty = find_duplicates(CUSTOMERS.iloc[:0])
    assert empty.pairs.empty and empty.clusters.empty
    one = find_duplicates(CUSTOMERS.iloc[:1])
    assert one.pairs.empty and one.clusters["id"].tolist() == [1]


def test_bad_ids_are_refused() -> None:
    with pytest.raises(InvalidInput, match="no 'key' column"):
        find_duplicates(CUSTOMERS, id_column="key")
    with pytest.raises(InvalidInput, match="not unique"):
        find_duplicates(pd.concat([CUSTOMERS, CUSTOMERS.iloc[:1]]))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"review_threshold": 1.5},
        {"review_threshold": 0.9, "auto_merge_threshold": 0.5},
        {"block_cap": 1},
    ],
)
def test_settings_are_validated(kwargs: dict) -> None:
    with pytest.raises(InvalidInput):
        DedupeSettings(**kwargs)


def test_decided_not_duplicates_are_never_proposed() -> None:
    labels = pd.DataFrame({"left_id": [5], "right_id": [6], "is_duplicate": [False]})
    result = find_duplicates(CUSTOMERS, labels=labels)
    pairs = set(zip(result.pairs["left_id"], result.pairs["right_id"], strict=True))
    assert (5, 6) not in pairs and (6, 5) not in pairs
    cluster_of = result.clusters.set_index("id")["cluster_id"]
    assert cluster_of[5] != cluster_of[6]


def test_decided_duplicates_are_joined() -> None:
    labels = pd.DataFrame({"left_id": [7], "right_id": [9], "is_duplicate": [True]})
    result = find_duplicates(CUSTOMERS, labels=labels)
    cluster_of = result.clusters.set_index("id")["cluster_id"]
    assert cluster_of[7] == cluster_of[9]


def test_chunked_scoring_gives_the_same_result(result) -> None:
    small = find_duplicates(CUSTOMERS, settings=DedupeSettings(chunk_size=2))
    pd.testing.assert_frame_equal(small.pairs, result.pairs)
    pd.testing.assert_frame_equal(small.clusters, result.clusters)


def test_score_candidates_ranks_the_duplicate_first(result) -> None:
    scored = score_candidates(
        {"name": "王 伟", "phone": "+86 138-0013-8000", "city": "北京"},
        CUSTOMERS,
        result.model,
    )
    assert list(scored.columns) == [
        "id", "score", "name", "company", "email", "phone", "city", "address",
    ]  # fmt: skip
    assert scored["score"].is_monotonic_decreasing
    assert set(scored["id"].head(3)) == {1, 2, 3}
    assert scored.set_index("id").loc[1, "phone"] == 2
    assert scored.set_index("id").loc[7, "score"] < 0.5


def test_score_candidates_with_no_candidates(result) -> None:
    scored = score_candidates({"name": "x"}, CUSTOMERS.iloc[:0], result.model)
    assert scored.empty


def test_the_model_is_reusable(result) -> None:
    model = MatchModel.from_dict(result.model.to_dict())
    again = find_duplicates(CUSTOMERS, model=model)
    pd.testing.assert_frame_equal(again.clusters, result.clusters)


def test_blocking_keys_meet_for_duplicates() -> None:
    first = set(blocking_keys(CUSTOMERS.iloc[0].to_dict()))
    third = set(blocking_keys(CUSTOMERS.iloc[2].to_dict()))
    assert first & third
    assert all(":" in key for key in first)


def test_generated_customers_are_deduplicated_well() -> None:
    datagen = pytest.importorskip("crm_core.datagen")
    customers = datagen.generate(3_000, seed=7, history=False).customers
    df = customers.rename(columns={"street": "address"})
    result = find_duplicates(df)
    truth = df.set_index("id")["truth_cluster"]
    found = result.clusters.set_index("id")["cluster_id"]

    def pairs(labels: pd.Series) -> set[tuple]:
        out = set()
        for ids in labels.groupby(labels).groups.values():
            ids = sorted(ids)
            out.update((a, b) for i, a in enumerate(ids) for b in ids[i + 1 :])
        return out

    true_pairs, found_pairs = pairs(truth), pairs(found)
    hits = len(true_pairs & found_pairs)
    precision = hits / max(len(found_pairs), 1)
    recall = hits / max(len(true_pairs), 1)
    assert precision > 0.95 and recall > 0.9, (precision, recall)
    assert np.isfinite(result.stats["seconds_total"])


def test_train_model_gives_the_model_find_duplicates_uses(result) -> None:
    model = train_model(CUSTOMERS)
    assert model.to_dict() == result.model.to_dict()
    again = find_duplicates(CUSTOMERS, model=model)
    pd.testing.assert_frame_equal(again.clusters, result.clusters)


def test_worker_processes_give_the_same_result(result, monkeypatch) -> None:
    from crm_core.dedupe import frame

    monkeypatch.setattr(frame, "PARALLEL_MIN_DISTINCT", 1)
    forked = find_duplicates(CUSTOMERS, settings=DedupeSettings(processes=2))
    pd.testing.assert_frame_equal(forked.pairs, result.pairs)
    pd.testing.assert_frame_equal(forked.clusters, result.clusters)
