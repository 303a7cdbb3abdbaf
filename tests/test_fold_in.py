"""Fresh events folded into a fitted model without retraining (Recommender.score_history):
a user's own training history folded in reproduces their trained scores (ALS's least-squares
user step closely, EASE's and item-kNN's x_u @ W exactly); events alone move a visitor's list
towards what they did; BPR says it takes the mean of item factors; fresh purchases are left
out."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic_marts import planted_interactions

from models_ml import families
from models_ml.ids import UNKNOWN
from models_ml.recommender import MEAN_FACTORS, MODEL, ROW, ROW_AND_SOLVED, SOLVED
from recomart_core.schema import CATEGORY, ITEM

SMALL = {"n_factors": 16, "iterations": 10, "regularization": 0.05, "alpha": 20.0, "seed": 7}
WEIGHTS = {"view": 1.0, "add_to_cart": 2.0, "purchase": 4.0, "return": -4.0}
K = 10


@pytest.fixture(scope="module")
def data():
    return planted_interactions(n_users=300, n_items=120, n_groups=4, n_interactions=8000, seed=3)


def fitted(data, family: str):
    interactions, catalog = data
    return families.from_flat(**SMALL, family=family, event_weights=WEIGHTS).fit(
        interactions, catalog
    )


def model_users(model, n: int = 40) -> np.ndarray:
    users = model.user_ids
    return users[model.user_paths(users) == MODEL][:n]


@pytest.mark.parametrize(("family", "how"), [("als", SOLVED), ("ease", ROW), ("itemknn", ROW),
                                             ("hybrid", ROW_AND_SOLVED)])  # fmt: skip
def test_folding_in_the_training_history_gives_the_trained_scores(data, family, how) -> None:
    model = fitted(data, family)
    users = model_users(model)
    _, trained = model.score_rows(users, exclude_known=False)
    rows = model.user_items[model._users.index(users)]
    overlaps, cosines = [], []
    for n in range(len(users)):
        history = rows[n]
        folded, got = model.score_history(
            UNKNOWN, model.item_ids[history.indices], history.data, exclude_known=False
        )
        assert got == how
        if how == ROW:  # x_u @ W of the same row: the same numbers
            np.testing.assert_allclose(folded, trained[n], rtol=1e-4, atol=1e-5)
        a, b = folded.astype(np.float64), trained[n].astype(np.float64)
        cosines.append(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
        top = lambda s: set(np.argsort(-s, kind="stable")[:K].tolist())  # noqa: E731
        overlaps.append(len(top(a) & top(b)))
    # the hybrid's EASE part is exact, its ALS part re-solved: close on average
    worst = np.mean(cosines) if family == "hybrid" else min(cosines)
    assert worst > 0.99, (family, cosines)
    assert np.mean(overlaps) >= 9, (family, overlaps)


def test_events_alone_lean_a_visitor_to_what_they_did(data) -> None:
    model = fitted(data, "als")
    _, catalog = data
    category = dict(zip(catalog[ITEM].tolist(), catalog[CATEGORY].tolist(), strict=True))
    groups = sorted(set(category.values()))
    popular, how = model.score_history(UNKNOWN, [], [])
    assert how is None  # no events: the cold-start scores (recent popularity)
    for group in groups:
        items = [item for item, c in category.items() if c == group][:5]
        views = ["view"] * len(items)
        weights = model.event_confidence(views)
        np.testing.assert_allclose(weights, SMALL["alpha"] * WEIGHTS["view"])
        assert model.excluded_events(views).all()  # nothing repeatable: views are known
        scores, how = model.score_history(UNKNOWN, items, weights, exclude_ids=items)
        assert how == SOLVED
        top = model.rec_item_codes[np.argsort(-scores, kind="stable")[:K]]
        share = np.mean([category[int(code)] == group for code in top])
        assert share >= 0.8, (group, share)  # the planted taste is 0.85 within a group
        assert not set(top.tolist()) & set(items)  # what they viewed is known: left out
        assert not np.allclose(scores, popular)


def test_bpr_says_it_takes_the_mean_of_item_factors(data) -> None:
    model = fitted(data, "bpr")
    items = model.item_ids[:3]
    scores, how = model.score_history(UNKNOWN, items, model.event_confidence(["view"] * 3))
    assert how == MEAN_FACTORS
    rows = np.searchsorted(model.item_ids, items)  # item_ids are sorted codes
    factors = model._model.item_factors[rows].mean(axis=0)
    factors[-1] = 1.0
    np.testing.assert_allclose(
        scores[np.isfinite(scores)],
        (model.rec_item_vectors @ factors.astype(np.float32))[np.isfinite(scores)],
        rtol=1e-5,
    )


def test_fresh_purchases_are_left_out_and_returns_weigh_negative(data) -> None:
    model = fitted(data, "ease")
    user = model_users(model, 1)[0]
    scores, _ = model.score_history(user, [], [])
    best = model.rec_item_codes[np.argsort(-scores, kind="stable")[:3]]
    repeating = families.from_flat(
        **SMALL, family="ease", event_weights=WEIGHTS, repeatable_events=["view", "purchase"]
    )
    assert repeating.excluded_events(["view", "purchase", "return"]).tolist() == [
        False, True, True,
    ]  # fmt: skip
    bought, _ = model.score_history(
        user, best[:1], model.event_confidence(["purchase"]), exclude_ids=best[:1]
    )
    column = int(np.flatnonzero(model.rec_item_codes == best[0])[0])
    assert bought[column] == -np.inf and np.isfinite(scores[column])
    assert model.event_confidence(["return"])[0] == SMALL["alpha"] * WEIGHTS["return"]
