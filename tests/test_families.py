"""The model families behind one recommender (models_ml.families): real implicit, real numpy
solves, planted data. Each family must learn the planted tastes, serve, explain, save and load
through the same recommender and package as ALS; EASE's weights must satisfy the equations
that define them, and match the direct inverse when two fits share one (shared_inverses); the
hybrid's scale is measured on the items a user can be recommended."""

import numpy as np
import pandas as pd
import pytest
from scipy.sparse import csr_matrix
from scipy.sparse import random as sparse_random
from synthetic_marts import planted_interactions

from models_ml import families, package
from models_ml.baselines import PopularityRecommender
from models_ml.evaluate import evaluate
from models_ml.families import (
    Shape,
    ease_dtype,
    ease_inverse,
    ease_weights,
    fit_seconds,
    gram,
    shared_inverses,
    spd_inverse,
    spread,
)
from models_ml.recommender import Recommender
from models_ml.split import Split, last_days
from recomart.bench.own_data import long_tail_ratings
from recomart_core.schema import ITEM, USER
from recomart_core.settings import Train

COLD = [10_001, 10_002]  # catalog items nobody interacted with
SMALL = {
    "n_factors": 16,
    "iterations": 10,
    "regularization": 0.05,
    "alpha": 20.0,
    "ease_l2": 50.0,
    "bpr_factors": 16,
    "bpr_iterations": 50,
    "knn_neighbours": 30,
    "seed": 42,
}


def ease_settings(flat: dict) -> families.EASE.Settings:
    """EASE's settings from flat params (ease_l2, ease_dropout, ...)."""
    return families.EASE.settings_from_flat(flat)


@pytest.fixture(scope="module")
def data() -> tuple[Split, object]:
    """300 users in 4 taste groups over 120 items, 8000 interactions; two more catalog items
    nobody touched (cold), each like an existing item."""
    interactions, catalog = planted_interactions(
        n_users=300, n_items=120, n_groups=4, n_interactions=8000, seed=3
    )
    cold = catalog.iloc[:2].assign(**{ITEM: COLD})
    return last_days(interactions, holdout_days=30), pd.concat([catalog, cold], ignore_index=True)


@pytest.fixture(scope="module")
def models(data) -> dict[str, Recommender]:
    split, catalog = data
    return {
        family: families.from_flat(**SMALL, family=family).fit(split.train, catalog)
        for family in families.learned()
    }


def test_every_family_learns_the_planted_tastes(data, models) -> None:
    split, _ = data
    popular = evaluate(PopularityRecommender().fit(split.train), split.train, split.test, 10)
    for family, model in models.items():
        scores = evaluate(model, split.train, split.test, 10)
        assert scores["n_users"] == popular["n_users"] > 150
        assert scores["ndcg_at_10"] > 1.3 * popular["ndcg_at_10"], (family, scores)


def test_every_family_saves_loads_serves_and_explains(data, models, tmp_path) -> None:
    split, _ = data
    users = np.array([*split.train[USER].unique()[:30], 10**9])  # the last one unknown
    for family, model in models.items():
        loaded = package.load_recommender(package.save_recommender(model, tmp_path / family))
        assert loaded.family == family
        ids, scores = model.recommend_batch(users, 10)
        loaded_ids, loaded_scores = loaded.recommend_batch(users, 10)
        np.testing.assert_array_equal(ids, loaded_ids)
        np.testing.assert_allclose(scores, loaded_scores, rtol=1e-6)
        item = model.items.decode(ids[:1, 0])[0]
        assert loaded.similar_items(item, 5) == model.similar_items(item, 5)
        assert len(model.similar_items(item, 5)) == 5
        user = model.users.decode(users[:1])[0]
        why = model.explain(user, item, n=500)
        assert why["path"] == "model" and why["score"] != 0
        if family != "bpr":  # BPR's score does not split by the user's items
            total = sum(c["contribution"] for c in why["contributions"])
            assert total == pytest.approx(why["score"], rel=1e-3), family


def test_item_item_contributions_are_the_users_rows_of_w(data, models) -> None:
    """explain splits an EASE score exactly: x_ui * W[i, j] over the user's items i."""
    model = models["ease"]
    user_row, item_row = 0, 5
    liked = model.user_items[user_row]
    weights = model._model.item_weights
    expected = float(liked.data @ weights[liked.indices, item_row])
    user = model.users.decode(model.user_ids[:1])[0]
    item = model.items.decode(model.item_ids[item_row : item_row + 1])[0]
    assert model.explain(user, item, n=1000)["score"] == pytest.approx(expected, rel=1e-5)


def test_cold_catalog_items_get_weights_from_their_category(data, models) -> None:
    cold = COLD
    for family in ("ease", "itemknn", "hybrid", "als"):
        model = models[family]
        name = model.items.decode(np.array(cold[:1]))[0]
        assert model.is_cold_item(name)
        similar = model.similar_items(name, 3)
        assert len(similar) == 3, family  # imputed from its category and price band


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_ease_weights_satisfy_their_defining_equations(dropout: float) -> None:
    """EASE (zero diagonal): for each column j, (G + L) W_j - G_j is zero off the diagonal
    (the Lagrange multiplier of diag(W) = 0 sits on it) and W_jj = 0. DLAE: (G + L) W = G."""
    x = sparse_random(200, 40, density=0.15, random_state=1, format="csr")
    gram = (x.T @ x).toarray()
    penalty = 7.0 + dropout / (1 - dropout) * np.diag(gram)
    params = {"ease_l2": 7.0, "ease_dropout": dropout, "ease_max_items": 1000}
    constrained = ease_weights(x, ease_settings({**params, "ease_zero_diagonal": True})).astype(
        np.float64
    )
    residual = (gram + np.diag(penalty)) @ constrained - gram
    off_diagonal = residual - np.diag(np.diag(residual))
    assert np.abs(np.diag(constrained)).max() == 0.0
    assert np.abs(off_diagonal).max() < 1e-4 * np.abs(gram).max()
    assert np.abs(np.diag(residual)).min() > 1e-3  # the constraint binds
    free = ease_weights(x, ease_settings({**params, "ease_zero_diagonal": False})).astype(
        np.float64
    )
    np.testing.assert_allclose((gram + np.diag(penalty)) @ free, gram, atol=1e-4)


def test_ease_refuses_a_catalog_above_its_memory_bound() -> None:
    x = csr_matrix(np.eye(30, dtype=np.float32))
    params = {"ease_l2": 1.0, "ease_dropout": 0.0, "ease_zero_diagonal": True}
    with pytest.raises(ValueError, match=r"30 x 30 .*max_items = 20.*'als' or 'itemknn'"):
        ease_weights(x, ease_settings({**params, "ease_max_items": 20}))


def test_item_knn_keeps_k_neighbours_per_item() -> None:
    x = sparse_random(300, 60, density=0.2, random_state=2, format="csr", dtype=np.float32)
    p = {"knn_similarity": "bm25", "knn_neighbours": 7}
    scorer = families.from_flat(family="itemknn", alpha=1.0, **p).fit_scorer(x, None)
    assert scorer.item_weights.shape == (60, 60)
    assert np.diff(scorer.item_weights.indptr).max() <= 7


def test_the_hybrid_weight_moves_it_from_ease_to_als(data) -> None:
    """hybrid_weight 0 ranks as EASE alone, 1 as ALS alone (same parameters)."""
    split, _ = data
    users = split.train[USER].unique()[:50]
    common = {**SMALL, "weighting": "linear", "few_interactions": 0}

    def top(family: str, **extra) -> np.ndarray:
        model = families.from_flat(**common, family=family, **extra).fit(split.train)
        return model.recommend_batch(users, 10)[0]

    np.testing.assert_array_equal(top("hybrid", hybrid_weight=0.0), top("ease"))
    np.testing.assert_array_equal(top("hybrid", hybrid_weight=1.0), top("als"))


def test_the_family_comes_from_the_train_settings() -> None:
    train = Train(family="ease", ease={"l2": 123.0, "zero_diagonal": False})
    model = families.build(train)
    params = model.params()
    assert (params["family"], params["settings"]["l2"], params["settings"]["zero_diagonal"]) == (
        "ease",
        123.0,
        False,
    )
    with pytest.raises(ValueError, match="family must be one of"):
        families.from_flat(family="svd")


# ----------------------------------------------- EASE as cheap as it can be, the hybrid's scale


def direct_ease(x, l2: float, dropout: float, zero_diagonal: bool) -> np.ndarray:
    """W from the formulas of the module docstring with numpy's general inverse, float64."""
    gram = (x.T @ x).toarray()
    penalty = l2 + dropout / (1 - dropout) * np.diag(gram)
    inverse = np.linalg.inv(gram + np.diag(penalty))
    n = gram.shape[0]
    if zero_diagonal:
        weights = np.eye(n) - inverse / np.diag(inverse)[None, :]
        weights[np.diag_indices(n)] = 0.0
        return weights
    return np.eye(n) - inverse * penalty[None, :]


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_the_shared_inverse_gives_the_direct_inverses_weights_for_both_diagonals(dropout) -> None:
    """Inside shared_inverses, the second diagonal variant of the same matrix and penalty reuses
    the first's inverse (one factorisation), and both equal the direct formula; a new penalty
    replaces the kept inverse (one at a time), and nothing is kept after the block."""
    x = sparse_random(400, 60, density=0.1, random_state=4, format="csr")
    p = {"ease_l2": 3.0, "ease_dropout": dropout, "ease_max_items": 1000}
    scale = np.abs(direct_ease(x, 3.0, dropout, False)).max()
    with shared_inverses() as cache:
        for zero_diagonal in (True, False):
            weights = ease_weights(x, ease_settings({**p, "ease_zero_diagonal": zero_diagonal}))
            assert weights.dtype == np.float32
            expected = direct_ease(x, 3.0, dropout, zero_diagonal)
            np.testing.assert_allclose(weights, expected, atol=2e-6 * scale)
        assert (cache.misses, cache.hits) == (1, 1)
        ease_weights(x, ease_settings({**p, "ease_l2": 4.0, "ease_zero_diagonal": True}))
        assert (cache.misses, cache.hits) == (2, 1) and cache.key[1] == 4.0
    assert cache.value is None


def test_the_cholesky_inverse_is_the_inverse_in_float64_and_float32() -> None:
    x = sparse_random(300, 80, density=0.1, random_state=6, format="csr")
    matrix = (x.T @ x).toarray() + 2.0 * np.eye(80)
    expected = np.linalg.inv(matrix)
    np.testing.assert_allclose(spd_inverse(matrix.copy()), expected, rtol=1e-9, atol=1e-12)
    single = spd_inverse(matrix.astype(np.float32))
    assert single.dtype == np.float32
    np.testing.assert_allclose(single, expected, atol=1e-5 * np.abs(expected).max())
    np.testing.assert_array_equal(single, single.T)  # both triangles filled
    with pytest.raises(np.linalg.LinAlgError):
        spd_inverse(-np.eye(3))


def test_ease_is_float32_only_while_the_condition_bound_allows_it() -> None:
    """Gershgorin's bound (largest row sum of |X|'|X| + max L) / min L against 1e5."""
    x = csr_matrix(np.ones((10, 4)))  # every row sum of X'X is 40
    assert ease_dtype(x, np.full(4, 1.0)) is np.float32  # (40 + 1) / 1
    assert ease_dtype(x, np.full(4, 4e-4)) is np.float64  # 40 / 4e-4 = 1e5 + 1
    assert ease_dtype(x, np.array([1.0, 1.0, 1.0, 1e-5])) is np.float64


def test_the_gram_matrix_is_the_same_by_either_route() -> None:
    x = sparse_random(50, 300, density=0.05, random_state=7, format="csr")  # few users: dense
    np.testing.assert_allclose(gram(x), (x.T @ x).toarray(), rtol=1e-12)
    many = sparse_random(3000, 40, density=0.01, random_state=8, format="csr")  # sparse route
    np.testing.assert_allclose(gram(many, np.float32), (many.T @ many).toarray(), rtol=1e-6)


def test_the_hybrids_scale_is_measured_on_the_items_that_can_be_recommended() -> None:
    """Each part is divided by the standard deviation of its scores over the cells of items the
    user does not have: EASE scores a known item high, and counting it would shrink EASE's part."""
    x = sparse_random(200, 50, density=0.2, random_state=9, format="csr", dtype=np.float32)
    x.data[:] = 1.0
    p = {
        **families.from_flat(**SMALL).params(), "ease_l2": 5.0, "ease_zero_diagonal": False,
        "hybrid_weight": 0.4, "weighting": "linear",
    }  # fmt: skip
    scorer = families.from_flat(**{**p, "family": "hybrid", "alpha": 1.0}).fit_scorer(x, None)
    ease = ease_weights(x, ease_settings(p)).astype(np.float64)
    known = x.toarray() > 0
    history = (x.toarray() @ ease)[~known].std()
    factors = (scorer.user_factors @ scorer.item_factors.T)[~known].std()
    np.testing.assert_allclose(scorer.item_weights, ease * 0.6 / history, rtol=1e-4, atol=1e-7)
    assert scorer.factor_scale == pytest.approx(0.4 / factors, rel=1e-4)
    everything = (x.toarray() @ ease).std()
    assert abs(everything / history - 1) > 0.05  # the known cells would have changed it
    assert spread(np.array([[1.0, 5.0, 3.0]]), csr_matrix([[0, 1, 0]])) == pytest.approx(1.0)


def test_the_cost_estimate_grows_with_what_each_family_works_on() -> None:
    """fit_seconds: EASE ~ items^3, its other diagonal nearly free, ALS ~ factors^2."""
    small, large = Shape(500, 2000, 50_000, 10**7), Shape(500, 8000, 50_000, 10**7)
    ease, als = families.EASE.Settings(), families.ALS.Settings()
    assert fit_seconds("ease", large, ease) > 20 * fit_seconds("ease", small, ease)  # 4^3 = 64
    assert fit_seconds("ease", large, ease, shared=True) < 0.1 * fit_seconds("ease", large, ease)
    wide = families.ALS.Settings(factors=128)
    assert fit_seconds("als", large, wide) > 2 * fit_seconds("als", large, als)
    hybrid = fit_seconds("hybrid", large, families.Hybrid.Settings())
    assert hybrid > fit_seconds("ease", large, ease) and hybrid > fit_seconds("als", large, als)


def test_float32_ease_ranks_as_float64_on_a_long_tail_file() -> None:
    """Within the condition bound EASE runs in float32: on a long-tail file it recommends the
    same top 10 as the float64 inverse to (almost) every user."""
    ratings, _ = long_tail_ratings(n_users=300, n_items=1500, n_ratings=15_000, seed=3)
    rows = ratings.rename(columns={"userId": USER, "movieId": ITEM, "rating": "rating"})
    users = rows[USER].to_numpy() - 1
    x = csr_matrix((np.ones(len(rows)), (users, rows[ITEM].to_numpy() - 1)), shape=(300, 1500))
    penalty = np.full(1500, 20.0)
    assert ease_dtype(x, penalty) is np.float32
    single = ease_inverse(x, 20.0, 0.0)[0]
    double = ease_inverse(x, 20.0, 0.0, np.float64)[0]
    assert single.dtype == np.float32 and double.dtype == np.float64
    dense = x.toarray()
    known = dense > 0

    def top10(inverse: np.ndarray) -> np.ndarray:
        weights = -inverse / np.diag(inverse)[None, :]
        np.fill_diagonal(weights, 0.0)
        scores = np.where(known, -np.inf, dense @ weights)
        return np.argsort(-scores, axis=1, kind="stable")[:, :10]

    same = (top10(single.astype(np.float64)) == top10(double)).all(axis=1).mean()
    assert same >= 0.99
