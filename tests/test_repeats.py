"""Repeat behaviour ([train] repeatable_events, repeat_half_life_days, repeat_weight): which known
items may come back, how strongly, the repeat baseline, the model's blend, evaluation and the
package, on frames small enough to work out by hand (the arithmetic is written beside each value).

Event weights here: view 1, add_to_cart 2, purchase 4, return -4. Item ids are int64 codes (the
shop id of code c is str(c)).
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from models_ml import families, package
from models_ml.baselines import PopularityRecommender, RepeatRecommender
from models_ml.evaluate import evaluate_many, relevant_items
from models_ml.families import Scorer
from models_ml.matrix import excluded_pairs, repeat_scores
from models_ml.recommender import Recommender
from recomart_core.schema import EVENT, ITEM, RATING, TIME, USER

WEIGHTS = {"view": 1.0, "add_to_cart": 2.0, "purchase": 4.0, "return": -4.0}
T0 = pd.Timestamp("2026-06-30")
VIEWS_CARTS = ["view", "add_to_cart"]
ALL_THREE = ["view", "add_to_cart", "purchase"]


def rows(*records: tuple[int, int, str, float]) -> pd.DataFrame:
    """(user, item, event, days before T0) -> interaction rows."""
    users, items, events, ages = zip(*records, strict=True)
    return pd.DataFrame(
        {
            USER: np.array(users, dtype=np.int64),
            ITEM: np.array(items, dtype=np.int64),
            EVENT: list(events),
            RATING: np.nan,
            TIME: [T0 - pd.Timedelta(days=a) for a in ages],
        }
    )


# User 1 had items 10..15; users 2 and 3 make items 20, 21, 22 popular.
HISTORY = rows(
    (1, 10, "view", 60), (1, 10, "view", 30),  # only viewed, twice
    (1, 11, "purchase", 5),  # bought
    (1, 12, "add_to_cart", 30),  # only carted
    (1, 13, "view", 40), (1, 13, "purchase", 10),  # viewed, then bought
    (1, 14, "purchase", 20), (1, 14, "return", 15),  # bought and returned
    (1, 15, "purchase", 0),  # bought on user 1's newest day (T0)
    (2, 20, "view", 3), (2, 21, "view", 3), (2, 22, "view", 3),
    (3, 20, "view", 1), (3, 21, "view", 1), (3, 10, "view", 1),
    (2, 20, "view", 2), (3, 20, "purchase", 0),
)  # fmt: skip
ITEMS = {10, 11, 12, 13, 14, 15, 20, 21, 22}
# What each policy never recommends to user 1 again
EXCLUDED = {
    (): {10, 11, 12, 13, 14, 15},  # the default: every item the user had
    ("view",): {11, 12, 13, 14, 15},  # 10 may come back
    ("view", "add_to_cart"): {11, 13, 14, 15},  # 10 and 12
    ("view", "add_to_cart", "purchase"): {14},  # a returned item never comes back
}


def user_pairs(frame: pd.DataFrame, user: int) -> set[int]:
    return set(frame.loc[frame[USER] == user, ITEM].tolist())


@pytest.mark.parametrize("repeatable", list(EXCLUDED))
def test_each_policy_excludes_exactly_its_pairs_everywhere(repeatable: tuple[str, ...]) -> None:
    assert user_pairs(excluded_pairs(HISTORY, repeatable), 1) == EXCLUDED[repeatable]
    allowed = {10, 11, 12, 13, 14, 15} - EXCLUDED[repeatable]
    # every recommender follows the rule: all 9 items asked for, nothing excluded comes back,
    # everything else does (the catalog is small enough for the whole list)
    popularity = PopularityRecommender(repeatable=repeatable).fit(HISTORY)
    repeat = RepeatRecommender(30.0, repeatable, WEIGHTS).fit(HISTORY)
    lists = {"popularity": popularity, "repeat": repeat}
    for few in (0, 100):  # the "model" path and the few-interactions "blend" path
        for weight in (0.0, 0.5):
            model = families.from_flat(
                n_factors=2, iterations=3, event_weights=WEIGHTS, few_interactions=few,
                repeatable_events=repeatable, repeat_weight=weight, recency_half_life_days=0,
            ).fit(HISTORY)  # fmt: skip
            assert model.user_paths([1]).tolist() == ["model" if few == 0 else "blend"]
            lists[f"model few={few} w={weight}"] = model
    for name, recommender in lists.items():
        ids, _ = recommender.recommend_batch([1], 9)
        listed = set(ids[0].tolist()) - {-1}
        assert not listed & EXCLUDED[repeatable], name
        assert listed >= allowed | {20, 21, 22}, name
        everything, _ = recommender.recommend_batch([1], 9, exclude_known=False)
        assert set(everything[0].tolist()) - {-1} == ITEMS, name  # nothing left out


def test_a_bought_and_returned_item_is_excluded_by_default_too() -> None:
    """Before the repeat policy the model excluded the stored cells of its matrix, where a
    purchase cancelled by its return is no cell: item 14 came back. It never does now."""
    model = families.from_flat(
        n_factors=2, iterations=3, event_weights=WEIGHTS, few_interactions=0,
        recency_half_life_days=0,
    ).fit(HISTORY)  # fmt: skip
    row = int(np.searchsorted(model.user_ids, 1))
    assert 14 not in model.item_ids[model.user_items[row].indices]  # 4 - 4 = 0: no cell
    ids, _ = model.recommend_batch([1], 9)
    assert set(ids[0].tolist()) - {-1} == {20, 21, 22}


def test_repeat_scores_decay_from_the_users_newest_event() -> None:
    users, items, scores = repeat_scores(HISTORY, VIEWS_CARTS, WEIGHTS, half_life_days=30.0)
    got = {(int(u), int(i)): float(s) for u, i, s in zip(users, items, scores, strict=True)}
    assert got == pytest.approx(
        {
            # user 1's newest event is at T0 (the purchase of 15): ages count from there
            (1, 10): 1 * 0.5 ** (60 / 30) + 1 * 0.5 ** (30 / 30),  # 0.25 + 0.5 = 0.75
            (1, 12): 2 * 0.5 ** (30 / 30),  # 1.0
            # 13 (bought) and 11, 14, 15 are excluded: no score
            # user 2's newest event is 2 days before T0: ages 1, 1, 1, 0
            (2, 20): 1 * 0.5 ** (1 / 30) + 1 * 0.5 ** (0 / 30),  # 0.97716 + 1 = 1.97716
            (2, 21): 1 * 0.5 ** (1 / 30),  # 0.97716
            (2, 22): 1 * 0.5 ** (1 / 30),
            # user 3 bought 20 (not repeatable): only 21 and 10, 1 day before T0
            (3, 21): 0.5 ** (1 / 30),
            (3, 10): 0.5 ** (1 / 30),
        }
    )
    # a shorter half-life weighs the older view less: 0.5 ** 6 + 0.5 ** 3 = 0.140625
    users, items, scores = repeat_scores(HISTORY, VIEWS_CARTS, WEIGHTS, half_life_days=10.0)
    assert float(scores[(users == 1) & (items == 10)][0]) == pytest.approx(0.140625)
    # nothing repeatable: nothing to score
    assert all(len(a) == 0 for a in repeat_scores(HISTORY, [], WEIGHTS, 30.0))


def test_the_repeat_baseline_lists_own_items_by_score_then_fills_with_popularity() -> None:
    repeat = RepeatRecommender(30.0, VIEWS_CARTS, WEIGHTS).fit(HISTORY)
    ids, scores = repeat.recommend_batch([1, 2, 99], 5)
    # popularity (rows per item, returns not counted, ties by id): 20 (4), 10 (3), 13 (2),
    # 21 (2), then 11, 12, 14, 15, 22 (1 each)
    # user 1: 12 (1.0) before 10 (0.75); then 20, 21, 22 (10 is listed, 11, 13, 14, 15 excluded)
    assert ids[0].tolist() == [12, 10, 20, 21, 22]
    # scores: the top count (4) + repeat score, then the fill items' counts
    assert scores[0].tolist() == pytest.approx([4 + 1.0, 4 + 0.75, 4, 2, 1])
    # user 2: 20 (1.97716), then 21 and 22 tie (0.97716): the lower id first; then the most
    # popular items user 2 does not have: 10 (3 rows) and 13 (2)
    assert ids[1].tolist() == [20, 21, 22, 10, 13]
    # an unknown user gets popularity
    assert ids[2].tolist() == [20, 10, 13, 21, 11]
    # with nothing repeatable the repeat baseline is popularity, lists and scores
    plain = RepeatRecommender(30.0, [], WEIGHTS).fit(HISTORY)
    popularity = PopularityRecommender().fit(HISTORY)
    for got, expected in zip(
        plain.recommend_batch([1, 2, 3, 99], 6),
        popularity.recommend_batch([1, 2, 3, 99], 6),
        strict=True,
    ):
        np.testing.assert_array_equal(got, expected)


# --------------------------------------------------------------------------- the model's blend
def hand_model(family: str, weight: float) -> Recommender:
    """A model on HISTORY whose learned scores for user 1 are, over items (10, 11, 12, 13, 14,
    15, 20, 21, 22): (1, 5, -1, 0, 0, 0, 4, 2, 0.5): one factor (ALS) or the row of item 11 in
    W (an item-item family: x_u @ W is x_u,11 times that row, a positive multiple, which the
    blend's scaling cancels)."""
    model = families.from_flat(
        n_factors=1, iterations=2, event_weights=WEIGHTS, few_interactions=0,
        repeatable_events=VIEWS_CARTS, repeat_weight=weight, recency_half_life_days=0,
    ).fit(HISTORY)  # fmt: skip
    assert model.item_ids.tolist() == [10, 11, 12, 13, 14, 15, 20, 21, 22]
    learned = np.array([1, 5, -1, 0, 0, 0, 4, 2, 0.5], dtype=np.float32)
    state = model.state()
    n_users, n_items = len(model.user_ids), len(model.item_ids)
    if family == "als":
        users = np.zeros((n_users, 1), dtype=np.float32)
        users[0] = 1.0  # user 1 is row 0
        scorer = Scorer("als", users, learned[:, None])
    else:
        weights = np.zeros((n_items, n_items), dtype=np.float32)
        weights[1] = learned  # item 11's row
        empty = np.zeros((n_users, 0), dtype=np.float32)
        scorer = Scorer("ease", empty, np.zeros((n_items, 0), dtype=np.float32), weights)
    return families.load_state(
        replace(state, scorer=scorer, params={**state.params, "family": family, "settings": {}})
    )


@pytest.mark.parametrize("family", ["als", "ease"])
def test_the_blend_mixes_scaled_learned_and_repeat_scores(family: str) -> None:
    # user 1 may be recommended 10, 12 (repeat scores 0.75 and 1.0: scaled 0.75 and 1) and the
    # items they never had, 20, 21, 22; the best learned score among those is 4 (item 20).
    # w = 0.6: blend = 0.4 * learned / 4 + 0.6 * repeat / 1.0
    #   10: 0.4 * 0.25 + 0.6 * 0.75 = 0.55     12: 0.4 * -0.25 + 0.6 * 1 = 0.5
    #   20: 0.4 * 1 = 0.4    21: 0.4 * 0.5 = 0.2    22: 0.4 * 0.125 = 0.05
    model = hand_model(family, 0.6)
    ids, scores = model.recommend_batch([1], 5)
    assert ids[0].tolist() == [10, 12, 20, 21, 22]
    assert scores[0].tolist() == pytest.approx([0.55, 0.5, 0.4, 0.2, 0.05], abs=1e-6)
    # k = 2: the learned top 2 are 20 and 21, yet the repeat items win (the candidates)
    assert model.recommend_batch([1], 2)[0][0].tolist() == [10, 12]
    # w = 0: the learned order; min-max scaling instead of / best would rank 12 (lowest) last
    assert hand_model(family, 0.0).recommend_batch([1], 5)[0][0].tolist() == [20, 21, 10, 22, 12]
    # exclude_known=False: 11 (learned 5) is the best now: blend = 0.4 * learned / 5 + ...
    #   10: 0.08 + 0.45 = 0.53   12: -0.08 + 0.6 = 0.52   11: 0.4   20: 0.32   21: 0.16
    ids, scores = model.recommend_batch([1], 5, exclude_known=False)
    assert ids[0].tolist() == [10, 12, 11, 20, 21]
    assert scores[0].tolist() == pytest.approx([0.53, 0.52, 0.4, 0.32, 0.16], abs=1e-6)
    # w = 1: the repeat items by repeat score, then the learned order (ties of the blend)
    assert model.with_repeat_weight(1.0).recommend_batch([1], 4)[0][0].tolist() == [12, 10, 20, 21]
    # explain reports the repeat part of a score
    why = model.explain("1", "10")
    assert why["repeat"] == pytest.approx(
        {"weight": 0.6, "score": 0.75, "scaled": 0.75, "contribution": 0.45}
    )
    assert "repeat" not in hand_model(family, 0.0).explain("1", "10")
    # an unknown user still gets the cold-start list
    unknown = model.recommend_batch([99], 3)[0][0].tolist()
    assert unknown == model.recommend_batch([99], 3, exclude_known=False)[0][0].tolist()


def test_with_repeat_weight_shares_the_fit_and_changes_only_the_weight() -> None:
    model = hand_model("als", 0.0)
    before = model.recommend_batch([1, 2, 3], 4)
    twin = model.with_repeat_weight(0.6)
    assert twin.repeat_weight == 0.6 and model.repeat_weight == 0.0
    assert twin._prepared() is model._prepared()  # nothing prepared depends on the weight
    assert twin.user_items is model.user_items
    assert twin.recommend_batch([1], 2)[0][0].tolist() == [10, 12]
    for got, expected in zip(model.recommend_batch([1, 2, 3], 4), before, strict=True):
        np.testing.assert_array_equal(got, expected)  # the original is untouched
    fresh = hand_model("als", 0.6)
    for got, expected in zip(
        twin.recommend_batch([1, 2, 3], 4), fresh.recommend_batch([1, 2, 3], 4), strict=True
    ):
        np.testing.assert_array_equal(got, expected)
    assert twin.params() == fresh.params()
    with pytest.raises(ValueError, match=r"0\.\.1"):
        model.with_repeat_weight(1.5)


# ------------------------------------------------------------------------------ evaluation
def test_a_re_viewed_test_item_is_relevant_only_when_views_are_repeatable() -> None:
    # test period: user 1 views 10 again (only viewed in train), views 13 again (bought in
    # train) and views 22 (new to them)
    test = rows((1, 10, "view", -1), (1, 13, "view", -1), (1, 22, "view", -2))
    for repeatable, expected in (
        ((), [22]),  # known items never relevant
        (("view",), [10, 22]),  # 13 was bought: purchases are not repeatable
        (("add_to_cart",), [22]),  # 10 was viewed: views are not repeatable
        (ALL_THREE, [10, 13, 22]),
    ):
        users, relevant = relevant_items(HISTORY, test, repeatable=repeatable)
        assert users.tolist() == [1]
        assert relevant[0].tolist() == expected, repeatable
    # a log without event types holds views (as the confidence matrix reads it)
    users, relevant = relevant_items(HISTORY.drop(columns=EVENT), test, repeatable=["view"])
    assert relevant[0].tolist() == [10, 13, 22]  # train holds views only: nothing excluded
    # the recommenders score under the same policy (relevant: 10 and 22)
    scores = evaluate_many(
        {
            "repeat": RepeatRecommender(30.0, ["view"], WEIGHTS).fit(HISTORY),
            "popularity": PopularityRecommender(repeatable=["view"]).fit(HISTORY),
        },
        HISTORY, test, k=3, repeatable=["view"],
    )  # fmt: skip
    # repeat: user 1's own items: 10 only (12 was carted, not repeatable): [10, 20, 21]
    # NDCG@3 = (1 / log2 2) / (1 / log2 2 + 1 / log2 3) = 1 / 1.63093 = 0.61315
    assert scores["repeat"].metrics["ndcg_at_3"] == pytest.approx(1 / (1 + 1 / np.log2(3)))
    # popularity: 20, 10, 21 (10 may come back): hit at rank 2 = (1 / log2 3) / 1.63093
    assert scores["popularity"].metrics["ndcg_at_3"] == pytest.approx(
        (1 / np.log2(3)) / (1 + 1 / np.log2(3))
    )


# ------------------------------------------------------------------------------ the package
def test_the_package_keeps_the_policy_and_its_matrices(tmp_path) -> None:
    model = hand_model("als", 0.6)
    directory = package.save_recommender(model, tmp_path / "pkg")
    assert (directory / package.REPEATS_FILE).is_file()
    loaded = package.load_recommender(directory)
    params = loaded.params()["common"]
    assert params["repeatable_events"] == VIEWS_CARTS
    assert (params["repeat_weight"], params["repeat_half_life_days"]) == (0.6, 30.0)
    saved, back = model.state(), loaded.state()
    assert (back.excluded != saved.excluded).nnz == 0 and back.excluded.dtype == bool
    np.testing.assert_allclose(back.repeats.toarray(), saved.repeats.toarray())
    assert back.repeats[0].toarray().ravel().tolist() == pytest.approx(
        [0.75, 0, 1.0, 0, 0, 0, 0, 0, 0]  # user 1: items 10 and 12
    )
    for got, expected in zip(
        loaded.recommend_batch([1, 2, 3], 5), model.recommend_batch([1, 2, 3], 5), strict=True
    ):
        np.testing.assert_array_equal(got, expected)

    # a package saved before the repeat policy (format 4: no repeats.npz, no repeat params)
    # loads with the defaults: nothing repeats, every stored cell of its matrix is excluded
    (directory / package.REPEATS_FILE).unlink()
    meta = json.loads((directory / package.PARAMS_FILE).read_text())
    flat = {**meta["common"], "family": meta["family"], **loaded.flat_settings()}
    for key in ("repeatable_events", "repeat_weight", "repeat_half_life_days"):
        del flat[key]
    (directory / package.PARAMS_FILE).write_text(json.dumps({"format_version": 4, "params": flat}))
    old = package.load_recommender(directory)
    assert (old.repeatable_events, old.repeat_weight) == ([], 0.0)
    ids, _ = old.recommend_batch([1], 9)
    # user 1's cells: 10, 11, 12, 13, 15 (14 was bought and returned: no cell, so it may come
    # back, as it did when that package was trained)
    assert set(ids[0].tolist()) - {-1} == {14, 20, 21, 22}
