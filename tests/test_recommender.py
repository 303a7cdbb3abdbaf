"""ALS recommender, popularity baseline and confidence matrix: real implicit, planted data.

Frames with integer ids fit with identity vocabularies (the shop id of code c is str(c));
the last tests fit on the shop's string ids through Vocabulary, as training does.
"""

import json

import numpy as np
import pandas as pd
import pytest
from synthetic_marts import SHOP_USERS, planted_interactions, shop_world

from models_ml import families, package
from models_ml.baselines import (
    PopularityRecommender,
    RecentPopularityRecommender,
    popularity_ranking,
)
from models_ml.coldstart import recent_popularity
from models_ml.evaluate import evaluate
from models_ml.ids import Vocabulary
from models_ml.matrix import Weighting, confidence_matrix
from models_ml.recommender import Recommender
from models_ml.split import Split, last_days
from recomart_core.schema import CATEGORY, EVENT, ITEM, QUANTITY, RATING, TIME, USER
from recomart_core.settings import Train

UNKNOWN_USER = 10**9
SMALL_MODEL = {"n_factors": 16, "iterations": 10, "regularization": 0.05, "alpha": 20.0}
EVENT_WEIGHTS = {"view": 1.0, "add_to_cart": 2.0, "purchase": 4.0}


@pytest.fixture(scope="module")
def split() -> Split:
    """300 users in 4 taste groups over 120 items, 8000 interactions over 184 days."""
    interactions, _ = planted_interactions(
        n_users=300, n_items=120, n_groups=4, n_interactions=8000, seed=3
    )
    return last_days(interactions, holdout_days=30)


@pytest.fixture(scope="module")
def als(split: Split) -> Recommender:
    model = families.from_flat(**SMALL_MODEL, event_weights=EVENT_WEIGHTS, seed=42)
    return model.fit(split.train)


def train_pairs(train: pd.DataFrame) -> set[tuple[int, int]]:
    return set(zip(train[USER].tolist(), train[ITEM].tolist(), strict=True))


def test_als_beats_popularity_on_planted_tastes(split: Split, als: Recommender) -> None:
    popularity = PopularityRecommender().fit(split.train)
    als_metrics = evaluate(als, split.train, split.test, k=10)
    pop_metrics = evaluate(popularity, split.train, split.test, k=10)
    assert als_metrics["n_users"] == pop_metrics["n_users"] > 150
    # On this data ALS scores about twice the popularity precision (0.09 vs 0.046).
    assert als_metrics["precision_at_10"] > 1.5 * pop_metrics["precision_at_10"]
    assert als_metrics["ndcg_at_10"] > 1.5 * pop_metrics["ndcg_at_10"]


def test_exclude_known_never_returns_a_train_item(split: Split, als: Recommender) -> None:
    seen = train_pairs(split.train)
    users = np.unique(split.train[USER])
    item_ids, scores = als.recommend_batch(users, k=10, exclude_known=True)
    assert item_ids.shape == scores.shape == (len(users), 10)
    recommended = {(u, i) for u, row in zip(users, item_ids, strict=True) for i in row}
    assert not recommended & seen
    assert (np.diff(scores, axis=1) <= 0).all()  # best first
    for user in users[:20]:
        items = [item for item, _ in als.recommend_items(str(user), 10, exclude_known=True)]
        assert all(isinstance(i, str) for i in items)
        assert len(items) == 10 and not {(int(user), int(i)) for i in items} & seen
    # Without the filter, known items do come back: the filter is what removes them.
    unfiltered, _ = als.recommend_batch(users, k=10, exclude_known=False)
    assert {(u, i) for u, row in zip(users, unfiltered, strict=True) for i in row} & seen


def test_unknown_user_gets_recent_popularity(split: Split, als: Recommender) -> None:
    ranked_ids, scores = recent_popularity(split.train, half_life_days=14.0)
    got = als.recommend_items(str(UNKNOWN_USER), 10)
    assert [item for item, _ in got] == ranked_ids[:10].astype(str).tolist()
    assert [score for _, score in got] == pytest.approx(scores[:10].tolist(), rel=1e-6)
    assert als.user_paths([UNKNOWN_USER]).tolist() == ["popular"]
    # The global-popularity baseline still ranks by plain counts.
    popularity = PopularityRecommender().fit(split.train)
    pop_ids, _ = popularity.recommend_batch([UNKNOWN_USER], 10)
    assert pop_ids[0].tolist() == popularity_ranking(split.train)[0][:10].tolist()


def test_recent_popularity_prefers_what_is_popular_now() -> None:
    # item 1: 3 interactions 60 days before the newest row; item 2: 2 interactions on the last day
    # half-life 14 days: item 1 scores 3 * 0.5 ** (60 / 14) = 0.1535; item 2 scores 2 * 1 = 2
    now = pd.Timestamp("2026-07-01")
    frame = pd.DataFrame(
        {
            USER: [1, 2, 3, 4, 5],
            ITEM: [1, 1, 1, 2, 2],
            TIME: [now - pd.Timedelta(days=60)] * 3 + [now, now],
        }
    )
    ids, scores = recent_popularity(frame, half_life_days=14.0)
    assert ids.tolist() == [2, 1]
    assert scores == pytest.approx([2.0, 3 * 0.5 ** (60 / 14)])
    ids, scores = recent_popularity(frame, half_life_days=0.0)  # no decay: plain counts
    assert ids.tolist() == [1, 2] and scores.tolist() == [3.0, 2.0]
    recent = RecentPopularityRecommender(14.0).fit(frame)
    assert recent.recommend_batch([UNKNOWN_USER], 2)[0].tolist() == [[2, 1]]


def test_save_and_load_give_identical_recommendations(
    split: Split, als: Recommender, tmp_path
) -> None:
    package.save_recommender(als, tmp_path / "model")
    loaded = package.load_recommender(tmp_path / "model")
    users = np.append(np.unique(split.train[USER]), UNKNOWN_USER)
    for exclude_known in (True, False):
        before = als.recommend_batch(users, 10, exclude_known)
        after = loaded.recommend_batch(users, 10, exclude_known)
        np.testing.assert_array_equal(before[0], after[0])
        np.testing.assert_array_equal(before[1], after[1])
    assert loaded.params() == als.params()


def test_same_seed_same_model(split: Split, als: Recommender) -> None:
    again = families.from_flat(**SMALL_MODEL, event_weights=EVENT_WEIGHTS, seed=42)
    users = np.unique(split.train[USER])
    np.testing.assert_array_equal(
        again.fit(split.train).recommend_batch(users, 10)[0], als.recommend_batch(users, 10)[0]
    )


def rows(*records: tuple[int, int, str, float]) -> pd.DataFrame:
    frame = pd.DataFrame(records, columns=[USER, ITEM, EVENT, RATING])
    frame[TIME] = pd.Timestamp("2026-06-01")
    return frame


def test_confidence_matrix_sums_duplicates_and_applies_event_weights() -> None:
    interactions = rows(
        (10, 100, "view", 5.0),  # 1 * 5/5 = 1.0
        (10, 100, "purchase", 2.5),  # 4 * 2.5/5 = 2.0 -> (10, 100) sums to 3.0
        (10, 300, "add_to_cart", 4.0),  # 2 * 4/5 = 1.6
        (20, 100, "view", 1.0),  # 1 * 1/5 = 0.2
        (20, 100, "view", 1.0),  # 0.2 again -> (20, 100) sums to 0.4
        (30, 200, "purchase", 5.0),  # 4 * 5/5 = 4.0
    )
    matrix, users, items = confidence_matrix(interactions, EVENT_WEIGHTS, alpha=10.0)
    assert users.ids.tolist() == [10, 20, 30]
    assert items.ids.tolist() == [100, 200, 300]
    assert matrix.dtype == np.float32 and matrix.nnz == 4
    # alpha = 10 times the summed weights; rows users 10, 20, 30; columns items 100, 200, 300
    expected = np.array([[30.0, 0.0, 16.0], [4.0, 0.0, 0.0], [0.0, 40.0, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(matrix.toarray(), expected, rtol=1e-6)
    assert users.index([30, 10, 99]).tolist() == [2, 0, -1]


def test_recency_halves_the_weight_every_half_life_before_the_users_last_event() -> None:
    interactions = rows(
        (10, 100, "view", 5.0), (10, 200, "view", 5.0), (20, 100, "purchase", 5.0),
        (20, 200, "view", 5.0),
    )  # fmt: skip
    # user 10: newest 2026-06-21, its other row 10 days older; user 20 active a year earlier:
    # newest 2025-06-21, its other row 20 days before that
    interactions[TIME] = pd.to_datetime(["2026-06-11", "2026-06-21", "2025-06-01", "2025-06-21"])
    weighting = Weighting(
        alpha=1.0, event_weights=EVENT_WEIGHTS, scheme="linear", recency_half_life_days=10.0
    )
    matrix, _, _ = confidence_matrix(interactions, weighting=weighting)
    # (10,100): 1 * 0.5; (10,200): 1 * 1; (20,100): 4 * 0.25 = 1; (20,200): 1 * 1. A decay from
    # the newest event of all (2026-06-21) would leave user 20 with weights of 2^-36.5
    np.testing.assert_allclose(matrix.toarray(), [[0.5, 1.0], [1.0, 1.0]], rtol=1e-6)


def test_returns_cancel_purchases_and_quantities_scale_by_log2() -> None:
    # user 10 buys 3 of item 100 and returns all 3; user 20 returns one of item 100 it never
    # bought here, and buys 7 of item 200; ratings are absent (an implicit-feedback log)
    interactions = rows(
        (10, 100, "purchase", np.nan), (10, 100, "return", np.nan), (10, 300, "view", np.nan),
        (20, 100, "return", np.nan), (20, 200, "purchase", np.nan),
    )  # fmt: skip
    interactions[QUANTITY] = [3.0, -3.0, np.nan, -1.0, 7.0]
    weights = {**EVENT_WEIGHTS, "return": -4.0}
    weighting = Weighting(alpha=1.0, event_weights=weights, scheme="linear", weight_by="quantity")
    matrix, _, _ = confidence_matrix(interactions, weighting=weighting)
    # (10,100): 4 * log2(4) - 4 * log2(4) = 0, as if never seen (no stored cell); (10,300): a view
    # without quantity, 1; (20,100): -4 * log2(2) = -4, a dislike; (20,200): 4 * log2(8) = 12
    np.testing.assert_allclose(matrix.toarray(), [[0.0, 0.0, 1.0], [-4.0, 12.0, 0.0]])
    assert matrix.nnz == 3
    # a missing rating counts as the top of the scale, on any scale: 4 * 10 / 10
    scaled = Weighting(alpha=1.0, event_weights=EVENT_WEIGHTS, scheme="linear", rating_max=10.0)
    one = rows((1, 1, "purchase", np.nan), (2, 1, "purchase", 5.0))
    np.testing.assert_allclose(
        confidence_matrix(one, weighting=scaled)[0].toarray(), [[4.0], [2.0]]
    )
    with pytest.raises(ValueError, match="a return's 0 or negative"):
        confidence_matrix(interactions, weighting=Weighting(event_weights={**weights, "return": 1}))


def test_bm25_weighting_follows_the_formula() -> None:
    # linear weights (alpha 1): user 10 has items 100 (1.0) and 200 (1.0); user 20 item 100 (4.0)
    interactions = rows((10, 100, "view", 5.0), (10, 200, "view", 5.0), (20, 100, "purchase", 5.0))
    weighting = Weighting(
        alpha=2.0, event_weights=EVENT_WEIGHTS, scheme="bm25", bm25_k1=1.0, bm25_b=0.5
    )
    matrix, _, _ = confidence_matrix(interactions, weighting=weighting)
    # N = 2 users; idf(100) = ln 2 - ln(1 + 2) = -0.405, idf(200) = ln 2 - ln(1 + 1) = 0:
    # every idf is <= 0 here, so every cell is the floor 1e-6 times alpha 2.
    np.testing.assert_allclose(matrix.data, [2e-6, 2e-6, 2e-6], rtol=1e-3)
    # A user-specific item: three users, item 300 only with user 30 -> idf = ln 3 - ln 2 = 0.405465
    more = rows(
        (10, 100, "view", 5.0), (20, 100, "view", 5.0), (30, 100, "view", 5.0),
        (30, 300, "view", 5.0),
    )  # fmt: skip
    matrix, _, items = confidence_matrix(more, weighting=weighting)
    # user 30: row sum 2, mean row sum 4/3, length norm 0.5 + 0.5 * 2 / (4/3) = 1.25
    # cell (30, 300): x = 1: 1 * (1 + 1) / (1 * 1.25 + 1) * 0.405465 = 0.360413; alpha 2: 0.720826
    assert items.ids.tolist() == [100, 300]
    assert matrix[2, 1] == pytest.approx(0.720826, rel=1e-5)


def test_confidence_matrix_rejects_an_event_without_weight() -> None:
    with pytest.raises(ValueError, match="refund"):
        confidence_matrix(rows((1, 1, "refund", 3.0)), EVENT_WEIGHTS, alpha=1.0)


def test_popularity_excludes_known_items_and_pads() -> None:
    # counts: item 7 x3, item 8 x2, item 9 x1 -> ranking 7, 8, 9
    interactions = rows(
        (1, 7, "view", 3.0),
        (2, 7, "view", 3.0),
        (3, 7, "view", 3.0),
        (1, 8, "view", 3.0),
        (2, 8, "view", 3.0),
        (3, 9, "view", 3.0),
    )
    popularity = PopularityRecommender().fit(interactions)
    item_ids, scores = popularity.recommend_batch([1, 3, UNKNOWN_USER], k=4)
    # user 1 knows 7 and 8; user 3 knows 7 and 9; the unknown user knows nothing
    assert item_ids.tolist() == [[9, -1, -1, -1], [8, -1, -1, -1], [7, 8, 9, -1]]
    assert scores.tolist() == [
        [1.0, -np.inf, -np.inf, -np.inf],
        [2.0, -np.inf, -np.inf, -np.inf],
        [3.0, 2.0, 1.0, -np.inf],
    ]
    kept, _ = popularity.recommend_batch([1], k=2, exclude_known=False)
    assert kept.tolist() == [[7, 8]]


def test_als_pads_when_few_items_are_left() -> None:
    # User 1 knows 3 of 4 items: one recommendation, then padding.
    interactions = rows(
        (1, 1, "view", 4.0),
        (1, 2, "view", 4.0),
        (1, 3, "view", 4.0),
        (2, 3, "view", 4.0),
        (2, 4, "view", 4.0),
    )
    model = families.from_flat(n_factors=2, iterations=3).fit(interactions)
    item_ids, scores = model.recommend_batch([1], k=5)
    assert item_ids.tolist() == [[4, -1, -1, -1, -1]]
    assert np.isfinite(scores[0, 0]) and np.isneginf(scores[0, 1:]).all()
    assert [item for item, _ in model.recommend_items("1", 5)] == ["4"]


# ------------------------------------------------------------------ the shop's string ids
@pytest.fixture(scope="module")
def shop() -> dict:
    """synthetic_marts.shop_world (users "007" and "7", SKUs "85123A" and "85123" in different
    taste groups), encoded to codes with vocabularies as read_marts does, and a model on it."""
    rows, catalog = shop_world()
    sku_group = dict(zip(catalog[ITEM], catalog[CATEGORY], strict=True))
    users, items = Vocabulary.from_ids(rows[USER]), Vocabulary.from_ids(catalog[ITEM])
    coded = rows.assign(**{USER: users.encode(rows[USER]), ITEM: items.encode(rows[ITEM])})
    coded_catalog = catalog.assign(**{ITEM: items.encode(catalog[ITEM])})
    model = families.from_flat(n_factors=4, iterations=10, seed=3, few_interactions=0)
    model.fit(coded, coded_catalog, users, items)
    return {"rows": rows, "model": model, "sku_group": sku_group}


def test_007_and_7_are_different_users_with_their_own_recommendations(shop: dict) -> None:
    model, rows, group = shop["model"], shop["rows"], shop["sku_group"]
    assert {"85123A", "85123"} <= set(group) and group["85123A"] != group["85123"]
    got = {user: model.recommend_items(user, 5) for user in SHOP_USERS}
    for user, want in zip(SHOP_USERS, ("group_0", "group_1"), strict=True):
        items = [item for item, _ in got[user]]
        history = set(rows.loc[rows[USER] == user, ITEM])
        assert len(items) == 5 and not set(items) & history
        # every recommendation is a SKU string of the user's own taste group
        assert all(isinstance(i, str) and group[i] == want for i in items), (user, items)
        assert model.user_path(user) == "model"
    assert [i for i, _ in got["007"]] != [i for i, _ in got["7"]]
    assert all(i.endswith("A") for i, _ in got["007"])
    assert not any(i.endswith("A") for i, _ in got["7"])
    # the codes of "007" and "7" differ, and their batch rows decode to the same lists
    codes = model.users.encode(list(SHOP_USERS))
    assert codes[0] != codes[1] and (codes >= 0).all()
    batch_items, _ = model.recommend_batch(codes, 5)
    assert model.items.decode(batch_items).tolist() == [[i for i, _ in got[u]] for u in SHOP_USERS]
    # an id the shop never used is an unknown user: the cold-start list, not user 7's
    assert model.user_path("07") == "popular"
    assert model.recommend_items("07", 5) == model.recommend_items("nobody", 5)


def test_sku_ids_come_back_as_strings_from_every_shop_id_method(shop: dict, tmp_path) -> None:
    model, group = shop["model"], shop["sku_group"]
    similar = model.similar_items("85123A", 5)
    assert len(similar) == 5 and "85123A" not in [i for i, _ in similar]
    assert all(group[i] == "group_0" for i, _ in similar)
    assert model.item_category("85123A") == "group_0" and model.item_category("85123") == "group_1"
    assert model.is_cold_item("85123A") is False
    item, _ = model.recommend_items("7", 1)[0]
    why = model.explain("7", item, n=3)
    assert (why["user_id"], why["item_id"], why["path"]) == ("7", item, "model")
    drivers = [c["item_id"] for c in why["contributions"]]
    assert drivers and all(group[d] == "group_1" for d in drivers)
    ids, scores = model.recommend_ids(["007", "no such user"], 200)
    assert ids.dtype == object and ids.shape == scores.shape == (2, 200)
    assert ids[0, -1] is None and np.isneginf(scores[0, -1])  # padding past the 80 items
    with pytest.raises(KeyError):
        model.similar_items("85123a")  # ids are case-sensitive text
    with pytest.raises(TypeError):
        model.recommend_batch(["007"], 5)  # the batch methods take codes, not shop ids
    # saved and loaded: the vocabularies travel with the model
    package.save_recommender(model, tmp_path / "model")
    loaded = package.load_recommender(tmp_path / "model")
    assert loaded.users == model.users and loaded.items == model.items
    for user in SHOP_USERS:
        assert loaded.recommend_items(user, 5) == model.recommend_items(user, 5)
    assert loaded.similar_items("85123A", 5) == similar


def test_fit_refuses_codes_missing_from_the_vocabulary(split: Split) -> None:
    too_small = Vocabulary.identity(split.train[USER].unique()[:10])
    with pytest.raises(ValueError, match="not in the user vocabulary"):
        families.from_flat(**SMALL_MODEL).fit(split.train, users=too_small)


def test_load_refuses_an_older_model_format(als: Recommender, tmp_path) -> None:
    directory = package.save_recommender(als, tmp_path / "old")
    meta = json.loads((directory / "params.json").read_text())
    (directory / "params.json").write_text(json.dumps({**meta, "format_version": 2}))
    with pytest.raises(ValueError, match="retrain"):
        package.load_recommender(directory)


def test_the_recommender_has_one_set_of_defaults_the_settings() -> None:
    """Built without arguments, the recommender is the one [train]'s defaults describe
    (recomart_core.settings), and so is its confidence weighting."""
    defaults = Train()
    built = families.from_flat()
    assert built.params() == families.build(defaults).params()
    params = built.params()
    assert params["settings"] == {"factors": 16, "iterations": 15, "regularization": 0.2}
    assert params["common"]["event_weights"] == defaults.event_weights
    assert params["common"]["recent_half_life_days"] == defaults.cold_start.recent_half_life_days
    weighting = Weighting()
    assert (weighting.alpha, weighting.scheme, weighting.recency_half_life_days) == (
        defaults.alpha, defaults.weighting, defaults.recency_half_life_days,
    )  # fmt: skip
    assert built.common.weighting == weighting
    # a loaded configuration's values reach the recommender
    changed = Train(als={"factors": 3}, cold_start={"few_interactions": 7})
    params = families.build(changed, rating_max=10.0).params()
    common = params["common"]
    assert (params["settings"]["factors"], common["few_interactions"], common["rating_max"]) == (
        3, 7, 10.0,
    )  # fmt: skip
