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
    assert np.isneginf(scores[model.excluded_columns([user]).indices]).all()  # training items
    solved, _ = fitted(data, "als").score_history(user, [10**6], [1.0])  # an unknown item
    known = fitted(data, "als").excluded_columns([user]).indices
    assert len(known) and np.isneginf(solved[known]).all()
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


def ndcg(scores: np.ndarray, columns: np.ndarray, relevant: list[set[int]]) -> float:
    """Mean NDCG@K of each row's top K (score columns) against its relevant item codes."""
    discounts = 1.0 / np.log2(np.arange(2, K + 2))
    top = columns[np.argsort(-scores, axis=1, kind="stable")[:, :K]]
    gains = np.array(
        [np.isin(row, list(wanted)) for row, wanted in zip(top, relevant, strict=True)]
    )
    ideal = np.array([discounts[: min(len(w), K)].sum() for w in relevant])
    return float(np.mean(gains @ discounts / ideal))


@pytest.mark.parametrize("family", ["als", "ease"])
def test_replay_folded_in_events_rank_about_as_well_as_trained_in(data, family) -> None:
    """The last events of up to 200 users: each user's last 2 items are what they did next (the
    relevant items), the 4 events before them are "recent". Trained-in: the model fitted with
    the recent events. Folded-in: fitted without them, the recent events folded in at request
    time. NDCG@10 of the next items, folded-in at least 0.95 of trained-in (printed, with the
    model that never sees the recent events)."""
    interactions, catalog = data
    ordered = interactions.sort_values(["event_at", "interaction_key"])
    position = ordered.groupby("user_id").cumcount(ascending=False)  # 0: the user's last
    counts = ordered.groupby("user_id")["user_id"].transform("size")
    chosen = np.sort(ordered.loc[counts >= 12, "user_id"].unique())[:200]
    mine = ordered["user_id"].isin(chosen)
    nexts = ordered[mine & (position < 2)]
    recent = ordered[mine & (position >= 2) & (position < 6)]
    trained_in = ordered[~(mine & (position < 2))]
    folded_base = trained_in.drop(recent.index)
    flat = {**SMALL, "family": family}
    full = families.from_flat(**flat, event_weights=WEIGHTS).fit(trained_in, catalog)
    base = families.from_flat(**flat, event_weights=WEIGHTS).fit(folded_base, catalog)
    relevant, with_recent, folded = [], [], []
    _, trained_scores = full.score_rows(chosen)
    for n, user in enumerate(chosen):
        own = recent[recent["user_id"] == user]
        known = set(trained_in.loc[trained_in["user_id"] == user, "item_id"].tolist())
        relevant.append(set(nexts.loc[nexts["user_id"] == user, "item_id"].tolist()) - known)
        types = own["event_type"].to_numpy(dtype=object)
        items = own["item_id"].to_numpy()
        scores, how = base.score_history(
            int(user), items, base.event_confidence(types),
            exclude_ids=items[base.excluded_events(types)],
        )  # fmt: skip
        assert how is not None
        folded.append(scores)
        with_recent.append(trained_scores[n])
    keep = [n for n, wanted in enumerate(relevant) if wanted]
    columns = full.rec_item_codes
    assert np.array_equal(columns, base.rec_item_codes)
    trained = ndcg(np.array(with_recent)[keep], columns, [relevant[n] for n in keep])
    got = ndcg(np.array(folded)[keep], columns, [relevant[n] for n in keep])
    _, stale_scores = base.score_rows(chosen[keep])  # without the recent events at all
    stale = ndcg(stale_scores, columns, [relevant[n] for n in keep])
    print(f"\n{family}: NDCG@{K} of {len(keep)} users' next items: trained-in {trained:.4f},"
          f" folded-in {got:.4f} ({got / trained:.3f}x), without them {stale:.4f}")  # fmt: skip
    assert got >= 0.95 * trained
