"""Serving above precompute_max_users: lists scored per request equal the model's own.

A small model fitted on recomart.bench.synthetic_model's generated shop (UUID user ids, SKU-like
item ids, a fifth of the users with at most 3 items: the blend path, cold catalog items), served
twice: every list precomputed, and every list scored per request (precompute_max_users = 0).
Both must give what Recommender.recommend_items gives (per request exactly,
precomputed up to float32 rounding), for known users, users with few interactions, unknown
users and a user the vocabulary knows but the matrix does not (and similar items equal the
model's similar_items); the per-request ServingModel
holds nothing per user but numpy arrays. The synthetic builder registers a champion that the
real loader serves.
"""

from __future__ import annotations

import numpy as np
import pytest

from models_ml import families
from models_ml.ids import Vocabulary
from recomart.bench import synthetic_model
from recomart_core.schema import ITEM
from serving.snapshot import ModelInfo, ServingModel

SPEC = synthetic_model.Spec(n_users=1_500, n_items=300, n_interactions=20_000, factors=8)
NOBODY_WITH_FACTORS = "zz-in-the-vocabulary-without-rows"
INFO = ModelInfo(name="m", version="1", alias="champion", run_id=None, trained_at=None,
                 data_cutoff=None, holdout_cutoff=None)  # fmt: skip


@pytest.fixture(scope="module", params=["default", "no cold items"])
def world(request):
    rows, catalog, user_names, item_names = synthetic_model.interactions(SPEC)
    users = Vocabulary(np.append(user_names, NOBODY_WITH_FACTORS))  # still sorted: "zz" > hex
    options = {"cold_items": False, "category_weight": 0.3} if request.param != "default" else {}
    model = families.from_flat(n_factors=SPEC.factors, iterations=3, seed=1, **options).fit(
        rows, catalog, users=users, items=Vocabulary(item_names)
    )
    items = catalog.assign(**{ITEM: model.items.decode(catalog[ITEM])})
    return {
        "model": model,
        "per_request": ServingModel(model, items, INFO, max_k=50, precompute_max_users=0),
        "precomputed": ServingModel(model, items, INFO, max_k=50, precompute_max_users=10**6),
    }


def test_the_generated_shop_looks_like_one(world) -> None:
    model = world["model"]
    paths = model.user_paths(model.user_ids)
    assert 0.1 < (paths == "blend").mean() < 0.35  # few-interaction users exist
    assert (paths == "model").mean() > 0.5
    assert not model._is_warm.all()  # some catalog items were never interacted with
    assert (model.user_items.data < 0).any()  # returns: negative cells, still "known" items
    names = model.users.decode(model.user_ids[:3])
    assert all(len(n) == 36 and n.count("-") == 4 for n in names)  # UUIDs


def users(model, n: int = 60) -> list[str]:
    """n users of each path, two unknown ones, and one without factors."""
    paths = model.user_paths(model.user_ids)
    rng = np.random.default_rng(0)
    chosen = []
    for path in ("model", "blend"):
        codes = model.user_ids[paths == path]
        chosen += model.users.decode(rng.choice(codes, n, replace=False)).tolist()
    return [*chosen, "nobody", "", NOBODY_WITH_FACTORS]


@pytest.mark.parametrize("exclude_known", [True, False])
def test_per_request_lists_equal_the_models_and_the_precomputed(world, exclude_known) -> None:
    model, live, pre = world["model"], world["per_request"], world["precomputed"]
    assert not live.precomputed and pre.precomputed
    for user in users(model):
        for k in (1, 10, 50):
            expected = model.recommend_items(user, k, exclude_known)
            got = live.recommend(user, k, exclude_known)
            assert [(i["item_id"], i["score"]) for i in got["items"]] == expected, (user, k)
            # precomputed lists come from one product over many users: same items, scores
            # equal up to float32 rounding
            other = pre.recommend(user, k, exclude_known)
            assert {**got, "items": None} == {**other, "items": None}
            assert [i["item_id"] for i in got["items"]] == [i["item_id"] for i in other["items"]]
            assert [i["score"] for i in got["items"]] == pytest.approx(
                [i["score"] for i in other["items"]], rel=1e-5
            )
            assert got["strategy"] == model.user_path(user) or (
                user == NOBODY_WITH_FACTORS and got["strategy"] == "popular"
            )


def test_known_items_are_excluded_per_request(world) -> None:
    model, live = world["model"], world["per_request"]
    for user in users(model, 20)[:40]:
        row = int(np.searchsorted(model.user_ids, model.users.code(user)))
        history = set(model.items.decode(model.item_ids[model.user_items[row].indices]))
        listed = {i["item_id"] for i in live.recommend(user, 50)["items"]}
        assert history and not listed & history
        with_known = {i["item_id"] for i in live.recommend(user, 50, exclude_known=False)["items"]}
        assert with_known & history or len(history) > 50


def test_similar_items_equal_the_models(world) -> None:
    model, live = world["model"], world["per_request"]
    cold = [i for i in live._item_codes if model.is_cold_item(i)]
    assert cold
    for item in [*list(live._item_codes)[:150], *cold]:
        for k in (1, 10, 400):  # 400: more than every item
            expected = model.similar_items(item, k)
            got = live.similar(item, k)
            assert [(i["item_id"], i["score"]) for i in got] == expected, (item, k)
            assert all(i["title"] for i in got)
    with pytest.raises(KeyError):
        live.similar("no-such-item", 5)


def test_nothing_per_user_but_numpy_arrays(world) -> None:
    """Per-user state at 500K users is arrays, never dicts, lists or sets of Python objects."""
    live = world["per_request"]
    n_users = live.n_users

    def sized(value) -> int:
        return len(value) if isinstance(value, dict | list | set | tuple) else 0

    for holder in (live, live.model):
        for name, value in vars(holder).items():
            assert sized(value) < n_users, f"{type(holder).__name__}.{name}: {type(value)}"
    assert live._paths.dtype == np.int8


def test_unknown_and_vocabulary_only_users_get_the_popular_list(world) -> None:
    live = world["per_request"]
    assert live.user_row("nobody") == -1 and live.user_row(NOBODY_WITH_FACTORS) == -1
    a, b = live.recommend("nobody", 10), live.recommend(NOBODY_WITH_FACTORS, 10)
    assert a["strategy"] == b["strategy"] == "popular" and a["items"] == b["items"]
    known = live.user_ids[5]
    assert live.user_row(known) == 5


@pytest.mark.e2e
def test_synthetic_champion_is_served_by_the_real_loader(tmp_path) -> None:
    from dataclasses import replace

    from recomart_core import config
    from serving.loader import RegistrySource

    spec = synthetic_model.Spec(n_users=400, n_items=80, n_interactions=4_000, factors=4)
    cfg = config.load()
    name = cfg.settings.train.model_name
    built = synthetic_model.build(tmp_path / "home", spec, name, k=10)
    assert built["users"] == 400 and built["version"] == "1"
    assert synthetic_model.build(tmp_path / "home", spec, name, k=10) == built  # reused
    home_cfg = replace(cfg, paths=replace(cfg.paths, mlflow=tmp_path / "home/data/mlflow"))
    source = RegistrySource(home_cfg)
    try:
        served = source.load(source.champion_version(), max_k=20, precompute_max_users=100)
    finally:
        source.close()
    assert served.n_users == 400 and not served.precomputed
    user = served.user_ids[0]
    body = served.recommend(user, 5)
    assert len(body["items"]) == 5 and all(i["title"] for i in body["items"])
