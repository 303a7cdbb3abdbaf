"""Cold start, explain and similar_items: real implicit on planted taste groups (= categories).

The frames hold integer ids, so the model's vocabularies are identity ones: the shop id of item
10001 is "10001", and the shop-id methods take and return those strings.
"""

import numpy as np
import pandas as pd
import pytest
from synthetic_marts import planted_interactions

from models_ml import families, package
from models_ml.coldstart import cold_item_groups, impute_item_factors, price_bands
from models_ml.recommender import Recommender
from recomart_core.schema import CATEGORY, EVENT, ITEM, RATING, TIME, USER

COLD_A, COLD_B = 10_001, 10_002  # catalog items nobody interacted with
NEW_USER = 20_001  # two interactions only


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    interactions, catalog = planted_interactions(
        n_users=300, n_items=120, n_groups=4, n_interactions=8000, seed=7
    )
    # Two cold catalog items: one in group_0, one in group_1, both at group_0's median price.
    price = float(catalog.loc[catalog[CATEGORY] == "group_0", "price"].median())
    cold = pd.DataFrame(
        {ITEM: [COLD_A, COLD_B], "title": "new", CATEGORY: ["group_0", "group_1"], "price": price}
    )
    catalog = pd.concat([catalog, cold], ignore_index=True)
    # A new user with two group_2 interactions.
    g2 = catalog.loc[catalog[CATEGORY] == "group_2", ITEM].to_numpy()[:2]
    new = interactions.iloc[:2].copy()
    new[USER], new[ITEM], new[EVENT], new[RATING] = NEW_USER, g2, "view", 5.0
    new[TIME] = interactions[TIME].max()
    return pd.concat([interactions, new], ignore_index=True), catalog


@pytest.fixture(scope="module")
def model(data) -> Recommender:
    interactions, catalog = data
    return families.from_flat(n_factors=16, iterations=10, seed=1).fit(interactions, catalog)


def categories(catalog: pd.DataFrame, items) -> list[str]:
    """Category of each item, given as code or shop id (its decimal text)."""
    lookup = catalog.set_index(ITEM)[CATEGORY]
    return [lookup[int(i)] for i in items]


def shop(ids) -> set[str]:
    return {str(i) for i in ids}


def test_few_interactions_blend_favours_the_users_categories(data, model) -> None:
    interactions, catalog = data
    assert model.user_paths([NEW_USER]).tolist() == ["blend"]
    assert model.user_path(str(NEW_USER)) == "blend"
    blended = [i for i, _ in model.recommend_items(str(NEW_USER), 10)]
    share = categories(catalog, blended).count("group_2") / 10
    plain = families.from_flat(n_factors=16, iterations=10, seed=1, few_interactions=0).fit(
        interactions, catalog
    )
    assert plain.user_paths([NEW_USER]).tolist() == ["model"]
    plain_share = categories(catalog, [i for i, _ in plain.recommend_items(str(NEW_USER), 10)])
    assert share >= 0.8 and share >= plain_share.count("group_2") / 10


def test_an_item_without_interactions_is_recommended_through_catalog_similarity(
    data, model
) -> None:
    interactions, catalog = data
    assert COLD_A in model.recommendable_item_ids and COLD_B in model.recommendable_item_ids
    # group_0 fans: users with most of their interactions in group_0
    cats = interactions.merge(catalog[[ITEM]], on=ITEM)[[USER, CATEGORY]]
    share = cats.assign(g0=cats[CATEGORY] == "group_0").groupby(USER)["g0"].mean()
    fans = share[share > 0.8].index.to_numpy()
    assert len(fans) > 20
    n = len(model.item_ids)
    item_ids, _ = model.recommend_batch(fans, n)
    rank_a = np.argmax(item_ids == COLD_A, axis=1)
    rank_b = np.argmax(item_ids == COLD_B, axis=1)
    # the group_0 cold item ranks above the group_1 one for nearly every group_0 fan
    assert (rank_a < rank_b).mean() > 0.9
    # ... and reaches some top-20 lists
    assert (rank_a < 20).any()
    why = model.explain(str(fans[0]), str(COLD_A))
    assert why["is_cold_item"] and why["category"] == "group_0"
    assert model.is_cold_item(str(COLD_A)) and not model.is_cold_item(str(model.item_ids[0]))
    liked = shop(interactions.loc[interactions[USER] == fans[0], ITEM])
    assert why["similar_liked_items"] and set(why["similar_liked_items"]) <= liked
    similar = [i for i, _ in model.similar_items(str(COLD_A), 10)]
    assert categories(catalog, similar).count("group_0") >= 8


def test_explain_lists_the_users_items_that_drove_the_score(data, model) -> None:
    interactions, _ = data
    user = int(interactions[USER].value_counts().index[0])
    item, _ = model.recommend_items(str(user), 1)[0]
    why = model.explain(str(user), item, n=1000)
    mine = shop(interactions.loc[interactions[USER] == user, ITEM])
    contributors = [c["item_id"] for c in why["contributions"]]
    assert why["path"] == "model" and not why["is_cold_item"]
    assert set(contributors) <= mine and len(contributors) > 0
    # contributions are sorted and add up to the explained score
    values = [c["contribution"] for c in why["contributions"]]
    assert values == sorted(values, reverse=True)
    # every one of the user's items is listed (n=1000): their sum is the score, negative
    # contributions included (the positive ones alone add up to more)
    assert len(values) == len(mine) and min(values) < 0
    assert sum(values) == pytest.approx(why["score"], rel=1e-4)
    assert sum(v for v in values if v > 0) > why["score"] * (1 + 1e-3)
    # an unknown user is explained by recent popularity
    assert model.explain("99999999", item)["path"] == "popular"


def test_similar_items_stay_in_the_taste_group(data, model) -> None:
    interactions, catalog = data
    group_3 = catalog.loc[catalog[CATEGORY] == "group_3", ITEM]
    counts = interactions.loc[interactions[ITEM].isin(group_3), ITEM].value_counts()
    item = str(counts.index[0])  # the best-known group_3 item
    similar = model.similar_items(item, 10)
    assert len(similar) == 10 and item not in [i for i, _ in similar]
    # 30 of the 121 other items are group_3: chance would put 2.5 of 10 there
    assert categories(catalog, [i for i, _ in similar]).count("group_3") >= 5
    with pytest.raises(KeyError):
        model.similar_items("123456789")


def test_save_and_load_keep_cold_start(data, model, tmp_path) -> None:
    package.save_recommender(model, tmp_path / "m")
    loaded = package.load_recommender(tmp_path / "m")
    users = np.array([NEW_USER, 99_999_999, *model.user_ids[:20]])
    np.testing.assert_array_equal(
        loaded.recommend_batch(users, 10)[0], model.recommend_batch(users, 10)[0]
    )
    assert loaded.similar_items(str(COLD_A), 5) == model.similar_items(str(COLD_A), 5)


def test_price_bands_and_factor_imputation_by_hand() -> None:
    # quantile edges of [1, 2, 3, 4] for 2 bands: the median 2.5 -> bands 0, 0, 1, 1; NaN -> -1
    assert price_bands(np.array([1.0, 2.0, 3.0, 4.0, np.nan]), 2).tolist() == [0, 0, 1, 1, -1]
    factors = np.array([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0], [9.0, 9.0], [9.0, 9.0]])
    warm = np.array([True, True, True, False, False])
    cats = np.array([0, 0, 1, 0, 1])
    bands = np.array([0, 0, 0, 0, 1])
    out = impute_item_factors(factors, warm, cats, bands, shrink=0.5)
    # item 3 (cat 0, band 0): 0.5 * mean(items 0, 1) = 0.5 * (2, 0) = (1, 0)
    # item 4 (cat 1, band 1): no warm item in (1, 1): 0.5 * mean of category 1 = (0, 1)
    np.testing.assert_allclose(out, [[1, 0], [3, 0], [0, 2], [1, 0], [0, 1]])


def test_cold_item_groups_grow_with_the_warm_items_not_the_cold_ones() -> None:
    """A million cold catalog items beside a thousand warm ones: the averaging matrix holds two
    cells per warm item (its pair and its category), whatever the cold items (an explicit
    cold x warm matrix took 24 GB on the 1M-product catalog benchmark)."""
    rng = np.random.default_rng(0)
    n = 1_000_000
    warm = np.zeros(n, dtype=bool)
    warm[:1000] = True
    cold, group, averages = cold_item_groups(warm, rng.integers(0, 4, n), rng.integers(0, 5, n))
    assert len(cold) == n - 1000 and averages.nnz == 2000
    assert (group >= 0).all()  # every group here has warm items
    np.testing.assert_allclose(np.asarray(averages.sum(axis=1)).ravel()[np.unique(group)], 1.0)
