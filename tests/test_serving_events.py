"""POST /events on the real pipeline's champion (issue 29): a visitor's views of one category's
items turn their next list towards that category, checked against the warehouse's catalog; the
spool holds the events once the app stops."""

from __future__ import annotations

from collections import Counter

import duckdb
import orjson
import pytest
from fastapi.testclient import TestClient

from recomart_core import config
from serving.app import create_app
from serving.settings import ServeSettings

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`"),
]
K = 20


def test_a_visitors_views_lean_their_list_to_the_category(pipeline_run: dict) -> None:
    cfg: config.Config = pipeline_run["cfg"]
    with duckdb.connect(str(cfg.paths.warehouse), read_only=True) as con:
        catalog = dict(
            con.sql("select item_id::varchar, category from marts.item_features").fetchall()
        )
    app = create_app(cfg, ServeSettings(poll_seconds=0))
    with TestClient(app) as client:
        before = client.get("/recommendations/visitor-e2e", params={"k": K}).json()
        assert before["strategy"] == "popular"
        shares = Counter(catalog[i["item_id"]] for i in before["items"])
        category = min(set(catalog.values()), key=lambda c: (shares[c], c))  # least listed
        viewed = [item for item, c in sorted(catalog.items()) if c == category][:8]
        events = [{"session_id": "visitor-e2e", "item_id": i, "event_type": "view"} for i in viewed]
        assert client.post("/events", json=events).json() == {"accepted": len(viewed)}
        after = client.get("/recommendations/visitor-e2e", params={"k": K}).json()
    if after["family"] == "popularity":  # the baseline does not depend on the user
        assert after["fold_in"] is None
        return
    assert after["fold_in"] is not None and after["fresh_events"] == len(viewed)
    listed = [i["item_id"] for i in after["items"]]
    assert not set(listed) & set(viewed)
    share = sum(catalog[i] == category for i in listed) / len(listed)
    print(
        f"\n{after['family']} ({after['fold_in']}): {category}"
        f" {shares[category]} of {K} before, share {share:.2f} after"
    )
    assert share >= shares[category] / K + 0.25, (category, share, after["family"])
    lines = [
        orjson.loads(line)
        for path in cfg.paths.events.glob("*.jsonl")
        for line in path.read_bytes().splitlines()
    ]
    assert [line["item_id"] for line in lines if line["session_id"] == "visitor-e2e"] == viewed
