"""The rules engine (models_ml.rules) on a fitted model: without rules it lists what the model
lists; with random rule sets no list breaks a rule (a property test over 10,000 requests,
checked against the interactions and the catalog directly, not through the engine's masks);
exclude_bought's window; purchases survive the model package."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from synthetic_marts import planted_interactions

from models_ml import families, package
from models_ml.matrix import excluded_pairs
from models_ml.recommender import Recommender
from models_ml.rules import ItemTable, rank
from recomart_core.rulesets import (
    NO_RULES,
    Boost,
    Diversity,
    Filters,
    Pin,
    Rules,
    RuleSet,
    RuleSetError,
    load_rule_set,
)
from recomart_core.schema import CATEGORY, EVENT, ITEM, PRICE, TIME, USER

SMALL = {"n_factors": 16, "iterations": 8, "regularization": 0.05, "alpha": 20.0, "seed": 7}
WEIGHTS = {"view": 1.0, "add_to_cart": 2.0, "purchase": 4.0}
K = 10


@pytest.fixture(scope="module")
def world() -> dict:
    interactions, catalog = planted_interactions(
        n_users=200, n_items=90, n_groups=4, n_interactions=5000, seed=5
    )
    rng = np.random.default_rng(1)
    catalog["brand"] = rng.choice(["acme", "globex", "initech"], len(catalog))
    model = families.from_flat(**SMALL, event_weights=WEIGHTS).fit(interactions, catalog)
    shop = catalog.assign(**{ITEM: catalog[ITEM].astype(str)})
    table = ItemTable(
        model.items.decode(model.rec_item_codes).tolist(), shop, vectors=model.rec_item_vectors,
        popularity=model.rec_popularity,
    )  # fmt: skip
    return {"interactions": interactions, "catalog": shop, "model": model, "table": table}


@pytest.mark.parametrize("family", ["als", "ease", "itemknn", "popularity"])
@pytest.mark.parametrize("repeat_weight", [0.0, 0.4])
def test_without_rules_the_list_is_the_models_own(world, family, repeat_weight) -> None:
    interactions, catalog = world["interactions"], world["catalog"]
    flat = {**SMALL, "family": family, "repeat_weight": repeat_weight}
    if repeat_weight:
        flat["repeatable_events"] = ["view", "add_to_cart"]
    model = families.from_flat(**flat, event_weights=WEIGHTS).fit(
        interactions, catalog.assign(**{ITEM: catalog[ITEM].astype(np.int64)})
    )
    users = np.concatenate([model.user_ids[:60], [10**9]])  # and one unknown user
    expected, expected_scores = model.recommend_batch(users, K)
    _, scores = model.score_rows(users)
    table = ItemTable(
        model.items.decode(model.rec_item_codes).tolist(), popularity=model.rec_popularity
    )
    lists = rank(scores, table, NO_RULES, K)
    for row, ranked in enumerate(lists):
        got = model.rec_item_codes[ranked.columns]
        np.testing.assert_allclose(ranked.scores, expected_scores[row], rtol=1e-5)
        # the same items; an order may differ only between equal scores
        assert sorted(got.tolist()) == sorted(expected[row].tolist()) or np.allclose(
            np.sort(ranked.scores), np.sort(expected_scores[row])
        )
        assert set(ranked.reasons) == {"model"}


# ------------------------------------------------------------------- random rule sets
names = st.sampled_from(["group_0", "group_1", "group_2", "group_3", "nothing"])
filters = st.builds(
    Filters,
    categories=st.none() | st.lists(names, min_size=1, max_size=3),
    exclude_categories=st.lists(names, max_size=2),
    price_min=st.none() | st.floats(0, 60),
    price_max=st.none() | st.floats(5, 200),
    in_stock=st.booleans(),
    attributes=st.dictionaries(
        st.just("brand"), st.lists(st.sampled_from(["acme", "globex", "x"]), min_size=1)
    ),
)


@st.composite
def requests(draw, item_ids: list[str], user_ids: list[str]):
    items = st.sampled_from(item_ids)
    positions = draw(st.lists(st.integers(1, 15), max_size=4, unique=True))
    rules = Rules(
        filters=draw(filters),
        exclude_item_ids=draw(st.lists(items, max_size=8)),
        exclude_bought=draw(st.sampled_from(["never", "always", "window"])),
        bought_window_days=draw(st.floats(1, 120)),
        pins=[Pin(item_id=draw(items), position=p) for p in positions],
        boosts=draw(
            st.lists(st.builds(Boost, when=filters, multiplier=st.floats(0.1, 10)), max_size=2)
        ),
        diversity=Diversity(
            max_per_category=draw(st.none() | st.integers(1, 4)),
            mmr_weight=draw(st.none() | st.floats(0, 1)),
        ),
    )
    out_of_stock = draw(st.lists(items, max_size=20))
    return draw(st.sampled_from(user_ids)), draw(st.integers(1, 20)), rules, out_of_stock


def _passes(item: dict, f: Filters, in_stock: bool) -> bool:
    """The filters written out per item, independent of ItemTable's masks."""
    if f.categories is not None and item[CATEGORY] not in f.categories:
        return False
    if item[CATEGORY] in f.exclude_categories:
        return False
    if f.price_min is not None and not item[PRICE] >= f.price_min:
        return False
    if f.price_max is not None and not item[PRICE] <= f.price_max:
        return False
    if f.in_stock and not in_stock:
        return False
    return all(item[name] in values for name, values in f.attributes.items())


@pytest.fixture(scope="module")
def facts(world) -> dict:
    """Per user, from the interactions themselves: the items exclude_known leaves out and the
    last purchase of each bought item (seconds); per item, its catalog row."""
    interactions = world["interactions"]
    shop = interactions.assign(**{USER: interactions[USER].astype(str),
                                  ITEM: interactions[ITEM].astype(str)})  # fmt: skip
    known = excluded_pairs(shop).groupby(USER)[ITEM].agg(set).to_dict()
    bought = shop[shop[EVENT] == "purchase"].groupby([USER, ITEM])[TIME].max()
    seconds = (bought - pd.Timestamp("1970-01-01")).dt.total_seconds()
    purchases: dict[str, dict[str, float]] = {}
    for (user, item), when in seconds.items():
        purchases.setdefault(user, {})[item] = when
    items = world["catalog"].set_index(ITEM).to_dict("index")
    return {"known": known, "purchases": purchases, "items": items}


@settings(
    max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_no_list_breaks_a_rule(world, facts, data) -> None:
    model: Recommender = world["model"]
    table: ItemTable = world["table"]
    user_ids = [*model.users.decode(model.user_ids[:40]).tolist(), "somebody new"]
    user, n, rules, out_of_stock = data.draw(requests(table.item_ids.tolist(), user_ids))
    table.reset_stock()
    for item in out_of_stock:
        table.set_stock(item, False)
    now = world["interactions"][TIME].max().timestamp()
    code = model.users.code(user)
    _, scores = model.score_rows([code])
    ranked = rank(
        scores, table, rules, n,
        bought=model.purchase_times([code]), now=now,
    )[0]  # fmt: skip
    listed = table.item_ids[ranked.columns].tolist()

    known = facts["known"].get(user, set())
    bought = facts["purchases"].get(user, {})
    if rules.exclude_bought == "never":
        bought = {}
    elif rules.exclude_bought == "window":
        since = now - rules.bought_window_days * 86400
        bought = {item: when for item, when in bought.items() if when >= since}
    items = facts["items"]
    stock = dict(zip(table.item_ids.tolist(), table.in_stock.tolist(), strict=True))

    def eligible(item: str) -> bool:
        return (
            item not in known
            and item not in bought
            and item not in rules.exclude_item_ids
            and _passes(items[item], rules.filters, stock[item])
        )

    assert len(listed) == len(set(listed)) <= n
    assert all(eligible(item) for item in listed), (rules, listed)
    cap = rules.diversity.max_per_category
    if cap is not None:
        counts = pd.Series([items[i][CATEGORY] for i in listed]).value_counts()
        assert max(counts, default=0) <= cap
    # pins in place: each pin that obeys the rules (and the cap among the pins before it)
    placed: dict[int, str] = {}
    for pin in sorted(rules.pins, key=lambda p: p.position):
        category = items[pin.item_id][CATEGORY]
        if pin.position > n or not eligible(pin.item_id) or pin.item_id in placed.values():
            continue
        same = sum(items[i][CATEGORY] == category for i in placed.values())
        if cap is not None and same >= cap:
            continue
        placed[pin.position] = pin.item_id
    for position, item in placed.items():
        if len(listed) == n:  # a full list: every pin at its position
            assert listed[position - 1] == item, (position, item, listed)
        else:  # a short one: the pins listed, in the order of their positions
            assert item in listed
    at = [listed.index(item) for _, item in sorted(placed.items())]
    assert at == sorted(at)
    # n items whenever n items satisfy the rules
    pool = pd.Series([items[i][CATEGORY] for i in table.item_ids.tolist() if eligible(i)])
    feasible = len(pool) if cap is None else int(np.minimum(pool.value_counts(), cap).sum())
    assert len(listed) == min(n, feasible), (len(listed), n, feasible, rules)


def test_exclude_bought_window_counts_back_from_now(world) -> None:
    model: Recommender = world["model"]
    interactions = world["interactions"]
    table: ItemTable = world["table"]
    table.reset_stock()
    bought = interactions[interactions[EVENT] == "purchase"]
    user = int(bought[USER].value_counts().index[0])
    last = bought[bought[USER] == user].groupby(ITEM)[TIME].max().sort_values()
    newest_item, newest = str(last.index[-1]), last.iloc[-1].timestamp()
    code = model.users.code(str(user))
    _, scores = model.score_rows([code], exclude_known=False)
    pin = [Pin(item_id=newest_item, position=1)]  # listed first unless the rule leaves it out
    times = model.purchase_times([code])
    assert times.nnz == last.size

    def first(window: float, now: float) -> str:
        rules = Rules(exclude_bought="window", bought_window_days=window, pins=pin)
        ranked = rank(scores, table, rules, 5, bought=times, now=now)[0]
        return str(table.item_ids[ranked.columns[0]])

    ten_days_later = newest + 10 * 86400
    assert first(30, ten_days_later) != newest_item  # bought 10 days before now: left out
    assert first(5, ten_days_later) == newest_item  # outside a 5-day window: may come back
    always = Rules(exclude_bought="always", pins=pin)
    ranked = rank(scores, table, always, 5, bought=times)[0]
    assert newest_item not in table.item_ids[ranked.columns].tolist()


def test_purchases_survive_the_package(world, tmp_path) -> None:
    model: Recommender = world["model"]
    package.save_recommender(model, tmp_path)
    loaded = package.load_recommender(tmp_path)
    users = model.user_ids[:50]
    before, after = model.purchase_times(users), loaded.purchase_times(users)
    assert before.nnz > 0 and (before != after).nnz == 0


def test_a_filter_on_an_attribute_the_catalog_lacks_names_what_it_has(world) -> None:
    table: ItemTable = world["table"]
    with pytest.raises(ValueError, match=r"unknown item attribute 'colour'.*brand.*category"):
        table.mask(Filters(attributes={"colour": ["red"]}))


def test_rule_set_file_surfaces_and_errors(tmp_path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(
        'name = "shop"\nversion = "3"\ndefault_surface = "home"\n'
        '[surfaces.home]\nexclude_bought = "always"\n'
        "[surfaces.product.diversity]\nmax_per_category = 2\n"
    )
    rule_set = load_rule_set(path)
    assert (rule_set.name, rule_set.version, len(rule_set.digest)) == ("shop", "3", 12)
    assert rule_set.surface(None).exclude_bought == "always"
    assert rule_set.surface("product").diversity.max_per_category == 2
    # a request's own fields replace the surface's, the others stay
    mine = Rules(exclude_item_ids=["a"]).over(rule_set.surface("home"))
    assert (mine.exclude_item_ids, mine.exclude_bought) == (["a"], "always")
    # filters and diversity field by field: the request's price cap keeps the surface's stock
    basket = Rules(filters=Filters(in_stock=True), diversity=Diversity(max_per_category=2))
    mine = Rules(filters=Filters(price_max=50), diversity=Diversity(mmr_weight=0.5)).over(basket)
    assert (mine.filters.in_stock, mine.filters.price_max) == (True, 50)
    assert (mine.diversity.max_per_category, mine.diversity.mmr_weight) == (2, 0.5)
    with pytest.raises(KeyError, match=r"unknown surface 'email'.*home, product"):
        rule_set.surface("email")
    path.write_text('name = "shop"\nversion = "3"\n[surfaces.home]\nexclude_bougt = "always"\n')
    with pytest.raises(RuleSetError, match=r"rules.toml.*exclude_bougt"):
        load_rule_set(path)
    assert load_rule_set(tmp_path / "absent.toml").name == "none"
    assert RuleSet(name="x", version="1").surface(None).empty


def test_the_openapi_schema_documents_every_rule_field_with_an_example() -> None:
    from recomart_core import config
    from serving.app import create_app

    spec = create_app(config.load()).openapi()
    body = spec["paths"]["/recommendations"]["post"]["requestBody"]["content"]
    root = body["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    schemas = spec["components"]["schemas"]
    seen, todo, missing = set(), [root], []
    while todo:
        name = todo.pop()
        seen.add(name)
        for field, prop in schemas[name]["properties"].items():
            if not prop.get("description") or "examples" not in prop:
                missing.append(f"{name}.{field}")
            refs = [v for k, v in _walk(prop) if k == "$ref"]
            todo += [r.rsplit("/", 1)[1] for r in refs if r.rsplit("/", 1)[1] not in seen]
    assert not missing, missing


def _walk(node):
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


@settings(
    max_examples=1_000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_rules_over_the_precomputed_lists_give_what_scoring_every_item_gives(
    served_pair, data
) -> None:
    precomputed, scored = served_pair
    users = [*precomputed.user_ids[:40].tolist(), "somebody new"]
    items = precomputed.table.item_ids.tolist()
    user, n, rules, out_of_stock = data.draw(requests(items, users))
    for served in served_pair:
        served.table.reset_stock()
        for item in out_of_stock:
            served.table.set_stock(item, False)
    now = 1.8e9
    fast = precomputed.recommend_with_rules(user, n, rules, now=now)
    full = scored.recommend_with_rules(user, n, rules, now=now)
    assert [(i["item_id"], i["reason"]) for i in fast["items"]] == [
        (i["item_id"], i["reason"]) for i in full["items"]
    ]
    np.testing.assert_allclose(
        [i["score"] for i in fast["items"]], [i["score"] for i in full["items"]], rtol=1e-5
    )
    assert fast["strategy"] == full["strategy"]


@pytest.fixture(scope="module")
def served_pair(world):
    from serving.snapshot import ModelInfo, ServingModel

    info = ModelInfo("m", "1", "champion", None, None, None, None)
    model, catalog = world["model"], world["catalog"]
    return (
        # lists of 60 precomputed (of 90 items): rules often run out of them, and MMR's
        # candidates (4 n + 16) fit in them for n up to 11
        ServingModel(model, catalog, info, max_k=60, precompute_max_users=10**6),
        ServingModel(model, catalog, info, max_k=60, precompute_max_users=0),
    )


def test_light_rules_are_answered_from_the_precomputed_list(served_pair) -> None:
    precomputed, _ = served_pair
    precomputed.table.reset_stock()
    user = precomputed.user_ids[0]
    row = precomputed.user_row(user)
    code = precomputed.model.users.code(user)
    light = Rules(exclude_item_ids=["1", "2"], diversity=Diversity(max_per_category=5))
    assert precomputed._from_precomputed(row, code, 10, light, True, None, None) is not None
    varied = Rules(diversity=Diversity(mmr_weight=0.5))  # 4 x 10 + 16 = 56 candidates of 60
    assert precomputed._from_precomputed(row, code, 10, varied, True, None, None) is not None
    boosted = Rules(boosts=[Boost(when=Filters(price_max=10.0), multiplier=2.0)])
    assert precomputed._from_precomputed(row, code, 10, boosted, True, None, None) is None
