"""Comparisons, the match model and clustering of the de-duplication engine."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_core.dedupe.api import find_duplicates
from crm_core.dedupe.cluster import cluster_pairs, connected_components
from crm_core.dedupe.frame import normalize_frame
from crm_core.dedupe.model import (
    DEFAULT_M,
    DEFAULT_U,
    MatchModel,
    estimate_prior,
    fit_em,
    fit_model,
)
from crm_core.dedupe.scoring import (
    COMPARISONS,
    FIELD_LEVELS,
    compare,
    field_levels,
    prepare,
    site_level,
)

RECORDS = [
    {"name": "王伟", "company": "华为技术有限公司", "email": "wangwei@163.com",
     "phone": "13800138000", "city": "北京", "address": "建国路88号"},
    {"name": "王偉", "company": "華為技術", "email": "WangWei@163.com",
     "phone": "+86 138 0013 8000", "city": "北京市", "address": "北京市朝阳区建国路 88 号"},
    {"name": "Wang Wei", "company": None, "email": None,
     "phone": "138-0013-8000", "city": "Beijing", "address": None},
    {"name": "王玮", "company": "华为", "email": "wangwie@163.com",
     "phone": "13800138001", "city": "北京", "address": "建国路88号A座"},
    {"name": "田浩", "company": "腾讯科技有限公司", "email": "tianhao@qq.com",
     "phone": "13911112222", "city": "深圳", "address": "深南大道1号"},
    {"name": "王先生", "company": None, "email": None, "phone": None, "city": "北京",
     "address": None},
    {"name": "Bill Smith", "company": "Acme Inc", "email": "bill.smith+crm@gmail.com",
     "phone": "+1 650 253 0000", "city": "New York", "address": "12 Main St."},
    {"name": "William Smith", "company": "ACME Corporation", "email": "billsmith@gmail.com",
     "phone": "+1 (650) 253-0000", "city": "New York", "address": "12 Main Street"},
    {"name": "N. Vargas", "company": "Juniper Ltd", "email": None, "phone": None,
     "city": "London", "address": "248 Kelly St"},
    {"name": "Nicholas Vargas", "company": "Juniper Limited", "email": None, "phone": None,
     "city": "London", "address": "248 Kelly Street"},
    {"name": "Cheryl Chvez", "company": None, "email": None, "phone": None, "city": None,
     "address": None},
    {"name": "Cheryl Chavez", "company": None, "email": None, "phone": None, "city": None,
     "address": None},
]  # fmt: skip


@pytest.fixture(scope="module")
def prep():
    return prepare(normalize_frame(pd.DataFrame(RECORDS)))


def _levels(prep, a: int, b: int) -> dict[str, int]:
    levels = field_levels(prep, np.array([a]), np.array([b]))
    return {k: int(v[0]) for k, v in levels.items()}


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (0, 1, {"name": 4, "company": 3, "email": 2, "phone": 2, "city": 1, "address": 3}),
        (0, 2, {"name": 3, "company": -1, "email": -1, "phone": 2, "city": 1, "address": -1}),
        (0, 3, {"name": 3, "email": 1, "phone": 1, "city": 1, "address": 2}),
        (0, 4, {"name": 0, "company": 0, "email": 0, "phone": 0, "city": 0, "address": 0}),
        (0, 5, {"name": 1, "company": -1, "email": -1, "phone": -1, "city": 1}),
        (6, 7, {"name": 3, "company": 3, "email": 2, "phone": 2, "city": 1, "address": 3}),
        (8, 9, {"name": 1, "company": 3, "address": 3}),
        (10, 11, {"name": 2}),
    ],
)
def test_field_levels(prep, a: int, b: int, expected: dict[str, int]) -> None:
    levels = _levels(prep, a, b)
    assert {k: levels[k] for k in expected} == expected


def test_levels_are_within_their_tables(prep) -> None:
    n = prep.n
    a, b = np.triu_indices(n, k=1)
    for name, levels in field_levels(prep, a, b).items():
        assert levels.min() >= -1
        assert levels.max() < len(FIELD_LEVELS[name])
    gamma = compare(prep, a, b)
    for j, comparison in enumerate(COMPARISONS):
        assert gamma[:, j].max() < len(comparison.levels)


def test_comparisons_are_symmetric(prep) -> None:
    a, b = np.triu_indices(prep.n, k=1)
    np.testing.assert_array_equal(compare(prep, a, b), compare(prep, b, a))


def test_a_record_compared_with_itself_agrees_on_everything_it_has(prep) -> None:
    rows = np.arange(prep.n)
    levels = field_levels(prep, rows, rows)
    for name, values in levels.items():
        present = prep.codes[{"name": "name_key"}.get(name, name)] >= 0
        assert (values[present] == len(FIELD_LEVELS[name]) - 1).all(), name
        assert (values[~present] == -1).all(), name


@pytest.mark.parametrize(
    ("left", "right", "level"),
    [
        ("客户1", "客户2", 0),
        ("客户12", "客户13", 0),
        ("王伟A", "王伟B", 0),
        ("Store 12", "Store 13", 0),
        ("John Smith 2", "John Smith 3", 0),
        ("王伟", "王伟 David", 1),
        ("王伟A", "王伟", 1),
        ("王伟", "Wang Wei", 3),
        ("王伟", "Wei Wang", 3),
        ("王偉", "Wang Wei", 3),
        ("王伟", "王偉", 4),
        ("王伟", "王伟 Wei Wang", 4),
        ("Jiali Chen (陈嘉丽)", "陈嘉丽", 4),
        ("客户 12", "客户12", 4),
    ],
)
def test_name_levels(left: str, right: str, level: int) -> None:
    prep = prepare(normalize_frame(pd.DataFrame({"name": [left, right]})))
    assert int(field_levels(prep, np.array([0]), np.array([1]))["name"][0]) == level


def test_names_differing_in_digits_or_letters_are_not_duplicates() -> None:
    """Numbered records of a small file (客户1, 客户2 …, with numbered phones and e-mails)
    are not proposed, while the real spellings of one person are."""
    rows = [
        (i, f"客户{i}", f"1390000{i:04d}", f"c{i}@example.com", f"公司{i}", f"城市{i % 7}")
        for i in range(40)
    ]
    rows += [
        (100, "王伟A", None, None, "星辰科技", "北京"),
        (101, "王伟B", None, None, "星辰科技", "北京"),
        (102, "李小红", "13700000001", "lxh@example.com", "明德贸易", "上海"),
        (103, "Li Xiaohong", "137 0000 0001", None, "明德贸易有限公司", "上海"),
        (104, "張偉", "13600000009", None, None, "广州"),
        (105, "Wei Zhang", "+86 136 0000 0009", None, None, "Guangzhou"),
    ]
    frame = pd.DataFrame(rows, columns=["id", "name", "phone", "email", "company", "city"])
    pairs = find_duplicates(frame, id_column="id").pairs
    found = {(int(a), int(b)) for a, b in zip(pairs["left_id"], pairs["right_id"], strict=True)}
    assert found == {(102, 103), (104, 105)}


@pytest.mark.parametrize(
    ("company", "address", "city", "site"),
    [
        (3, 3, 1, 4),
        (-1, 2, -1, 3),
        (3, 0, 1, 2),
        (0, 0, 1, 1),
        (0, 0, 0, 0),
        (-1, -1, -1, -1),
        (2, 2, 0, 4),
    ],
)
def test_site_level(company: int, address: int, city: int, site: int) -> None:
    assert site_level(np.array([company]), np.array([address]), np.array([city]))[0] == site


def _default_model(prior: float = 1e-4) -> MatchModel:
    return MatchModel(m=dict(DEFAULT_M), u=dict(DEFAULT_U), prior=prior)


def test_identical_records_score_highest(prep) -> None:
    model = _default_model()
    rows = np.arange(prep.n)
    a, b = np.triu_indices(prep.n, k=1)
    same = model.probability(compare(prep, rows, rows))
    others = model.probability(compare(prep, a, b))
    for i in rows:
        involved = (a == i) | (b == i)
        assert same[i] >= others[involved].max()


def test_scores_are_symmetric_probabilities(prep) -> None:
    model = _default_model()
    a, b = np.triu_indices(prep.n, k=1)
    forward = model.probability(compare(prep, a, b))
    backward = model.probability(compare(prep, b, a))
    np.testing.assert_allclose(forward, backward)
    assert ((forward >= 0) & (forward <= 1)).all()


def test_more_agreement_never_lowers_the_score() -> None:
    model = _default_model()
    base = np.array([[0, 0, 0, 0]], np.int8)
    weight = model.match_weight(base)[0]
    for j, comparison in enumerate(COMPARISONS):
        for level in range(1, len(comparison.levels)):
            better = base.copy()
            better[0, j] = level
            assert model.match_weight(better)[0] >= weight, (comparison.field, level)


def test_missing_fields_carry_no_evidence() -> None:
    model = _default_model(prior=0.25)
    gamma = np.full((1, len(COMPARISONS)), -1, np.int8)
    assert model.probability(gamma)[0] == pytest.approx(0.25, rel=1e-5)


def test_common_values_weigh_less_than_rare_ones() -> None:
    model = _default_model()
    gamma = np.array([[4, -1, -1, -1]], np.int8)
    freq_common = np.array([[0.01, 0, 0, 0]], np.float32)
    freq_rare = np.array([[0.000001, 0, 0, 0]], np.float32)
    assert model.match_weight(gamma, freq_common)[0] < model.match_weight(gamma, freq_rare)[0]


def _candidate_u() -> dict[str, list[float]]:
    """``u`` among candidate pairs: they agree more often than random pairs."""
    out = {}
    for c in COMPARISONS:
        u = np.asarray(DEFAULT_U[c.field])
        u = np.r_[u[:1] * 0.6, u[1:] + u[0] * 0.4 / (len(u) - 1)]
        out[c.field] = (u / u.sum()).tolist()
    return out


def _synthetic(n_pairs: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Comparison matrix drawn from known m/u with 20 % matches, and the truth."""
    truth = rng.random(n_pairs) < 0.2
    gamma = np.empty((n_pairs, len(COMPARISONS)), np.int8)
    candidate_u = _candidate_u()
    for j, c in enumerate(COMPARISONS):
        m, u = np.asarray(DEFAULT_M[c.field]), np.asarray(candidate_u[c.field])
        gamma[truth, j] = rng.choice(len(m), truth.sum(), p=m / m.sum())
        gamma[~truth, j] = rng.choice(len(u), (~truth).sum(), p=u)
    return gamma, truth


def test_em_recovers_a_separating_model_without_labels() -> None:
    rng = np.random.default_rng(1)
    gamma, truth = _synthetic(20_000, rng)
    oracle = MatchModel(m=dict(DEFAULT_M), u=_candidate_u(), prior=0.2)
    best = ((oracle.probability(gamma) >= 0.5) == truth).mean()
    start = {c.field: list(DEFAULT_U[c.field]) for c in COMPARISONS}
    model = fit_em(gamma, start, learn_u=True, prior=0.5)
    learned = ((model.probability(gamma) >= 0.5) == truth).mean()
    assert learned >= best - 0.01
    assert model.prior == pytest.approx(0.2, abs=0.03)


def test_labels_refine_m() -> None:
    rng = np.random.default_rng(2)
    gamma, truth = _synthetic(5_000, rng)
    u = {c.field: list(DEFAULT_U[c.field]) for c in COMPARISONS}
    decided = gamma[truth][:500]
    decided[:, 0] = 1  # stewards keep confirming duplicates whose names only look similar
    plain = fit_model(gamma, u, total_pairs=1e8)
    refined = fit_model(
        gamma, u, total_pairs=1e8, label_gamma=decided, decisions=np.ones(len(decided))
    )
    assert refined.m["name"][1] > plain.m["name"][1]


def test_prior_counts_expected_matches_over_all_pairs() -> None:
    model = _default_model(prior=0.5)
    gamma = np.array([[4, 2, 2, 4]] * 10 + [[0, 0, 0, 0]] * 90, np.int8)
    prior = estimate_prior(model, gamma, pairs_represented=100, total_pairs=1_000_000)
    assert prior == pytest.approx(10 / 1_000_000, rel=0.05)


def test_model_round_trips_through_a_dict() -> None:
    model = _default_model()
    again = MatchModel.from_dict(model.to_dict())
    gamma = np.array([[4, -1, 2, 3], [0, 0, 0, 0]], np.int8)
    np.testing.assert_allclose(model.match_weight(gamma), again.match_weight(gamma))


def test_weights_table_lists_every_level() -> None:
    table = _default_model().weights()
    assert list(table.columns) == ["field", "level", "description", "m", "u", "bayes_factor"]
    assert len(table) == sum(len(c.levels) for c in COMPARISONS)


# -- clustering ---------------------------------------------------------------------------


def test_connected_components() -> None:
    labels = connected_components(7, np.array([0, 1, 4, 5]), np.array([1, 2, 5, 6]))
    assert labels.tolist() == [0, 0, 0, 3, 4, 4, 4]


def _cluster_sets(labels: np.ndarray) -> set[frozenset[int]]:
    groups: dict[int, set[int]] = {}
    for i, label in enumerate(labels.tolist()):
        groups.setdefault(label, set()).add(i)
    return {frozenset(g) for g in groups.values()}


def test_clusters_join_pairs_above_the_threshold() -> None:
    labels = cluster_pairs(
        5, np.array([0, 1, 3]), np.array([1, 2, 4]), np.array([0.9, 0.95, 0.5]), threshold=0.8
    )
    assert _cluster_sets(labels) == {frozenset({0, 1, 2}), frozenset({3}), frozenset({4})}
    assert labels.tolist() == [0, 0, 0, 1, 2]  # numbered in order of first member


def test_chain_guard_splits_records_that_clearly_differ() -> None:
    # 0-1-2-3-4 is a chain of strong links, but 0 and 4 (and 0 and 3) are clearly different.
    left, right = np.array([0, 1, 2, 3]), np.array([1, 2, 3, 4])
    prob = np.array([0.99, 0.98, 0.97, 0.999])
    clearly_different = {(0, 3), (0, 4), (1, 4)}

    def rescore(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        out = np.full(len(a), 0.5)
        for i, pair in enumerate(zip(a.tolist(), b.tolist(), strict=True)):
            if tuple(sorted(pair)) in clearly_different:
                out[i] = 0.001
            for k, link in enumerate(zip(left.tolist(), right.tolist(), strict=True)):
                if tuple(sorted(pair)) == link:
                    out[i] = prob[k]
        return out

    plain = cluster_pairs(5, left, right, prob, threshold=0.8)
    assert len(_cluster_sets(plain)) == 1
    guarded = cluster_pairs(5, left, right, prob, threshold=0.8, rescore=rescore, min_link=0.01)
    groups = _cluster_sets(guarded)
    assert len(groups) >= 2
    for group in groups:
        for a, b in clearly_different:
            assert not {a, b} <= group


def test_cluster_size_is_capped_cutting_the_weakest_links() -> None:
    n = 30
    left, right = np.arange(n - 1), np.arange(1, n)
    prob = np.full(n - 1, 0.99)
    prob[14] = 0.81  # the weakest link, in the middle
    labels = cluster_pairs(n, left, right, prob, threshold=0.8, max_cluster_size=15)
    groups = _cluster_sets(labels)
    assert max(len(g) for g in groups) <= 15
    assert frozenset(range(15)) in groups
