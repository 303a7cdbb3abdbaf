"""Business rules through the API on the real pipeline's champion (POST /recommendations, the
GET shortcut's surface, /similar under rules, PATCH /items/{id}): the answers obey the rules,
checked against the warehouse's catalog and the model's own lists; bad rules are 422s."""

from __future__ import annotations

from collections import Counter

import duckdb
import pytest
from fastapi.testclient import TestClient

from models_ml import package
from recomart_core import config
from recomart_core.rulesets import load_rule_set
from serving.app import create_app
from serving.settings import ServeSettings

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`"),
]

RULES = load_rule_set(config.PROJECT_ROOT / "rules.toml")  # the project's own rule set file


@pytest.fixture(scope="module")
def cfg(pipeline_run: dict):
    return pipeline_run["cfg"]


@pytest.fixture(scope="module")
def client(cfg):
    with TestClient(create_app(cfg, ServeSettings(poll_seconds=0), rule_set=RULES)) as c:
        yield c


@pytest.fixture(scope="module")
def catalog(cfg) -> dict[str, dict]:
    with duckdb.connect(str(cfg.paths.warehouse), read_only=True) as con:
        rows = con.sql(
            "select item_id::varchar, category, price from marts.item_features"
        ).fetchall()
    return {item: {"category": category, "price": price} for item, category, price in rows}


@pytest.fixture(scope="module")
def user(cfg) -> str:
    """A user with a long history (the model path)."""
    model = package.load_local(cfg.paths.models)
    lengths = model.user_items.getnnz(axis=1)
    return str(model.users.decode(model.user_ids[[lengths.argmax()]])[0])


def test_a_request_with_filters_exclusions_a_pin_and_a_cap_obeys_them(
    client, catalog, user
) -> None:
    categories = Counter(c["category"] for c in catalog.values()).most_common(3)
    wanted = [categories[0][0], categories[1][0]]
    plain = client.get(f"/recommendations/{user}", params={"k": 20}).json()
    excluded = [plain["items"][0]["item_id"]]  # the model's first choice, excluded
    pin = next(
        item for item, c in catalog.items()
        if c["category"] == wanted[1] and c["price"] is not None and c["price"] <= 100
        and item not in excluded
    )  # fmt: skip
    body = {
        "user_id": user,
        "n": 8,
        "filters": {"categories": wanted, "price_max": 100},
        "exclude_item_ids": excluded,
        "pins": [{"item_id": pin, "position": 2}],
        "diversity": {"max_per_category": 4},
    }
    answer = client.post("/recommendations", json=body)
    assert answer.status_code == 200, answer.text
    out = answer.json()
    items = out["items"]
    assert len(items) == 8
    assert items[1]["item_id"] == pin and items[1]["reason"] == "pinned"
    for item in items:
        fact = catalog[item["item_id"]]
        assert fact["category"] in wanted and fact["price"] <= 100
        assert item["item_id"] not in excluded
    assert max(Counter(catalog[i["item_id"]]["category"] for i in items).values()) <= 4
    assert out["rule_set"] == {**RULES.describe(None), "surface": "home"}
    assert out["model_version"] == plain["model_version"]
    # the model's own order among what the rules let through
    others = [i["item_id"] for i in items if i["reason"] == "model"]
    scores = [i["score"] for i in items if i["reason"] == "model"]
    assert scores == sorted(scores, reverse=True) and len(others) == 7


def test_the_get_shortcut_without_rules_is_the_models_list(client, user, cfg) -> None:
    model = package.load_local(cfg.paths.models)
    out = client.get(f"/recommendations/{user}", params={"k": 10}).json()
    expected = [item for item, _ in model.recommend_items(user, 10)]
    assert [i["item_id"] for i in out["items"]] == expected
    assert {i["reason"] for i in out["items"]} == {"model"}
    assert out["rule_set"]["surface"] == "home" and out["rule_set"]["version"] == "1"
    # the same list through the rules engine (a filter that keeps everything)
    ruled = client.post(
        "/recommendations", json={"user_id": user, "n": 10, "filters": {"price_min": -1e12}}
    ).json()
    priced = [i["item_id"] for i in out["items"] if i["price"] is not None]
    assert [i["item_id"] for i in ruled["items"]][: len(priced)] == priced


def test_a_stock_change_applies_to_the_next_request(client, user) -> None:
    first = client.get(f"/recommendations/{user}", params={"surface": "product", "k": 5})
    assert first.status_code == 200, first.text
    top = first.json()["items"][0]["item_id"]
    patched = client.patch(f"/items/{top}", json={"in_stock": False})
    assert patched.status_code == 200 and patched.json()["in_stock"] is False
    after = client.get(f"/recommendations/{user}", params={"surface": "product", "k": 5}).json()
    assert top not in [i["item_id"] for i in after["items"]]
    # the home surface does not filter on stock: the item is still the model's choice there
    home = client.get(f"/recommendations/{user}", params={"k": 5}).json()
    assert top in [i["item_id"] for i in home["items"]]
    client.patch(f"/items/{top}", json={"in_stock": True})
    again = client.get(f"/recommendations/{user}", params={"surface": "product", "k": 5}).json()
    assert again["items"][0]["item_id"] == top
    assert client.patch("/items/no-such-item", json={"in_stock": False}).status_code == 404


def test_similar_items_under_the_product_surface_hold_its_category_cap(
    client, user, catalog
) -> None:
    item = client.get(f"/recommendations/{user}").json()["items"][0]["item_id"]
    out = client.get(f"/items/{item}/similar", params={"k": 12, "surface": "product"}).json()
    categories = Counter(catalog[i["item_id"]]["category"] for i in out["items"])
    assert len(out["items"]) == 12 and max(categories.values()) <= 3
    assert item not in [i["item_id"] for i in out["items"]]
    assert out["rule_set"]["surface"] == "product"


def test_bad_rules_are_422s_that_say_what_is_wrong(client, user) -> None:
    unknown = client.get(f"/recommendations/{user}", params={"surface": "checkout"})
    assert unknown.status_code == 422
    assert "unknown surface 'checkout'" in unknown.json()["message"]
    assert "basket, email, home, product" in unknown.json()["message"]
    attribute = client.post(
        "/recommendations", json={"user_id": user, "filters": {"attributes": {"colour": ["red"]}}}
    )
    assert attribute.status_code == 422 and "unknown item attribute 'colour'" in attribute.text
    typo = client.post("/recommendations", json={"user_id": user, "pinz": []})
    assert typo.status_code == 422 and "pinz" in typo.text
    bad = client.post("/recommendations", json={"user_id": user, "pins": [{"item_id": "1"}]})
    assert bad.status_code == 422 and "position" in bad.text
