"""POST /events (issue 29): events are validated (422), spooled to disk (serving.spool: every
accepted event a line of a .jsonl file once the app stops, a full queue a 503 that accepts
none) and folded into the user's next list without retraining: a visitor's views of one
category's items turn the popular list into that category's, a known user's purchase leaves
their list; fuzzed events and the lists that fold them in are never a 500 and match the
OpenAPI schema. A small model fitted here, served through the real ModelHolder and app."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import orjson
import pytest
import schemathesis
from conftest import SCHEMA_CHECKS, config_for, small_config
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from synthetic_marts import planted_interactions

from models_ml import families
from recomart_core.schema import ITEM
from serving.app import create_app
from serving.holder import FixedSource, ModelHolder
from serving.settings import ServeSettings
from serving.snapshot import ModelInfo, ServingModel
from serving.spool import DONE_SUFFIX, FIELDS, OPEN_SUFFIX, Spool, SpoolFull, wait_written

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")

SMALL = {"n_factors": 16, "iterations": 10, "regularization": 0.05, "alpha": 20.0, "seed": 7}
WEIGHTS = {"view": 1.0, "add_to_cart": 2.0, "purchase": 4.0, "return": -4.0}
INFO = ModelInfo(name="m", version="1", alias="champion", run_id=None, trained_at=None,
                 data_cutoff=None, holdout_cutoff=None)  # fmt: skip
K = 10


@pytest.fixture(scope="module")
def served() -> ServingModel:
    interactions, catalog = planted_interactions(
        n_users=300, n_items=120, n_groups=4, n_interactions=8000, seed=3
    )
    model = families.from_flat(**SMALL, event_weights=WEIGHTS).fit(interactions, catalog)
    items = catalog.assign(**{ITEM: catalog[ITEM].astype(str)})
    return ServingModel(model, items, INFO, max_k=50)


def app_for(tmp_path: Path, served: ServingModel, spool: Spool | None = None, **limits):
    cfg = config_for(tmp_path, small_config(tmp_path))
    settings = ServeSettings(poll_seconds=0, **limits)
    holder = ModelHolder(FixedSource(served), settings)
    return create_app(cfg, settings, holder, spool=spool), cfg


def spooled(folder: Path) -> list[dict]:
    return [
        orjson.loads(line)
        for path in sorted(folder.glob(f"*{DONE_SUFFIX}"))
        for line in path.read_bytes().splitlines()
    ]


def category_share(body: dict, category: str) -> float:
    return sum(item["category"] == category for item in body["items"]) / len(body["items"])


def test_a_visitors_views_turn_their_list_to_that_category(tmp_path, served) -> None:
    app, _ = app_for(tmp_path, served)
    groups = sorted({served.item(i)["category"] for i in served.table.item_ids.tolist()})
    with TestClient(app) as client:
        for n, group in enumerate(groups):
            who = f"visitor-{n}"
            before = client.get(f"/recommendations/{who}", params={"k": K}).json()
            assert before["strategy"] == "popular" and before["fold_in"] is None
            viewed = [
                i for i in served.table.item_ids.tolist() if served.item(i)["category"] == group
            ][:5]
            events = [{"session_id": who, "item_id": i, "event_type": "view"} for i in viewed]
            answer = client.post("/events", json=events)
            assert answer.status_code == 202 and answer.json() == {"accepted": 5}
            after = client.get(f"/recommendations/{who}", params={"k": K}).json()
            assert after["fold_in"] == "solved" and after["fresh_events"] == 5
            assert after["strategy"] == "model" and after["cold_start"] is True
            listed = [item["item_id"] for item in after["items"]]
            assert len(listed) == K and not set(listed) & set(viewed)  # views are known
            assert listed != [item["item_id"] for item in before["items"]]
            # the planted taste is 0.85 within a group; the popular list is every group's
            assert category_share(after, group) >= 0.8, after
            assert category_share(after, group) >= category_share(before, group) + 0.3
            # the rules path (POST) by session_id folds in the same events
            posted = client.post("/recommendations", json={"session_id": who, "n": K}).json()
            assert [item["item_id"] for item in posted["items"]] == listed


def test_a_known_users_purchase_leaves_their_list(tmp_path, served) -> None:
    app, _ = app_for(tmp_path, served)
    user = served.user_ids[0]
    with TestClient(app) as client:
        before = client.get(f"/recommendations/{user}", params={"k": K}).json()
        top = before["items"][0]["item_id"]
        event = {"user_id": user, "item_id": top, "event_type": "purchase"}
        assert client.post("/events", json=event).status_code == 202
        after = client.get(f"/recommendations/{user}", params={"k": K}).json()
        assert after["fold_in"] == "solved" and after["fresh_events"] == 1
        assert top not in [item["item_id"] for item in after["items"]]
        batch = client.post("/recommendations/batch", json={"user_ids": [user], "k": K}).json()
        assert batch["results"][0]["items"] == after["items"]


@pytest.mark.parametrize(
    "body",
    [
        {"item_id": "1", "event_type": "view"},  # nobody
        {"user_id": "u", "item_id": "1", "event_type": "click"},  # not our name
        {"user_id": "u", "item_id": "1", "event_type": "view", "timestamp": "2026-12-07T10:00"},
        {"user_id": "u", "item_id": "1", "event_type": "view", "position": 0},
        {"user_id": "u", "item_id": "1", "event_type": "view", "colour": "red"},
        {"user_id": "u\x00", "item_id": "1", "event_type": "view"},
        [],
        [{"user_id": "u", "item_id": "1", "event_type": "view"}] * 4,  # over max_batch 3
    ],
)
def test_bad_events_are_422_and_none_is_accepted(tmp_path, served, body) -> None:
    app, cfg = app_for(tmp_path, served, max_batch=3)
    with TestClient(app) as client:
        answer = client.post("/events", json=body)
        assert answer.status_code == 422, answer.text
        assert answer.json()["message"]
    assert spooled(cfg.paths.events) == []


def test_the_spool_holds_every_accepted_event_after_close(tmp_path, served) -> None:
    app, cfg = app_for(tmp_path, served)
    sent = [
        {"user_id": "u1", "item_id": "7", "event_type": "view", "request_id": "r1", "position": 2},
        [
            {"session_id": "s1", "item_id": str(i), "event_type": "add_to_cart"}
            for i in range(1, 5)
        ],
        {"user_id": "u1", "item_id": "7", "event_type": "return",
         "timestamp": "2026-12-07T10:00:00+01:00"},
    ]  # fmt: skip
    with TestClient(app) as client:
        for body in sent:
            assert client.post("/events", json=body).status_code == 202
        spool = app.state.spool
        assert spool.path is not None and spool.path.name.endswith(OPEN_SUFFIX)
    lines = spooled(cfg.paths.events)
    assert list(cfg.paths.events.glob(f"*{OPEN_SUFFIX}")) == []  # renamed on close
    assert len(lines) == 6 and all(tuple(line) == FIELDS for line in lines)
    assert lines[0]["request_id"] == "r1" and lines[0]["position"] == 2
    assert [line["session_id"] for line in lines[1:5]] == ["s1"] * 4
    assert lines[5]["timestamp"] == "2026-12-07T09:00:00+00:00"  # in UTC
    assert lines[5]["event_type"] == "return" and lines[5]["received_at"].endswith("+00:00")


def test_a_full_queue_answers_503_and_loses_nothing_accepted(tmp_path, served) -> None:
    cfg = config_for(tmp_path, small_config(tmp_path))
    spool = Spool(cfg.paths.events, queue_batches=2)
    app, _ = app_for(tmp_path, served, spool=spool)
    event = {"user_id": "u1", "item_id": "7", "event_type": "view"}
    accepted, refused = 0, []
    with TestClient(app) as client:
        with spool.paused():  # the writer waits: the queue fills
            for _ in range(5):
                answer = client.post("/events", json=[event, event])
                if answer.status_code == 202:
                    accepted += answer.json()["accepted"]
                else:
                    refused.append(answer)
        assert refused and {a.status_code for a in refused} == {503}
        assert refused[0].headers["retry-after"] == "1"
        # a refused request was not folded in either
        assert app.state.holder.fresh.get("u1").item_ids == ("7",) * accepted
    assert len(spooled(cfg.paths.events)) == accepted


def test_fuzzed_events_and_the_lists_that_fold_them_in_match_the_schema(tmp_path, served) -> None:
    app, cfg = app_for(tmp_path, served, max_batch=5)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    checks = SCHEMA_CHECKS
    seen: dict[int, int] = {}
    with TestClient(app):
        events = schema["/events"]["POST"]
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):

            @given(case=events.as_strategy(generation_mode=mode))
            @settings(
                max_examples=40, deadline=None, database=None, derandomize=True,
                suppress_health_check=list(HealthCheck),
            )  # fmt: skip
            def fuzz(case) -> None:
                response = case.call()
                seen[response.status_code] = seen.get(response.status_code, 0) + 1
                case.validate_response(response, checks=checks)

            fuzz()
        # every id with fresh events gets a list that matches the schema
        fresh = app.state.holder.fresh
        ids = list(fresh._events)[:20]
        assert ids
        listing = schema["/recommendations/{user_id}"]["GET"]
        for who in ids:
            case = listing.Case(path_parameters={"user_id": who}, query={"k": 5})
            response = case.call()
            case.validate_response(response, checks=checks)
            assert response.json()["fresh_events"] == len(fresh.get(who))
    assert seen.get(202) and seen.get(422)
    assert len(spooled(cfg.paths.events)) >= seen[202]


def test_fresh_events_survive_a_model_swap(tmp_path, served) -> None:
    cfg = config_for(tmp_path, small_config(tmp_path))
    settings = ServeSettings(poll_seconds=0)
    source = FixedSource(served)
    holder = ModelHolder(source, settings)
    app = create_app(cfg, settings, holder)
    event = {"session_id": "s-swap", "item_id": served.table.item_ids[0], "event_type": "view"}
    with TestClient(app) as client:
        assert client.post("/events", json=[event, event]).status_code == 202
        before = client.get("/recommendations/s-swap").json()
        source.served = ServingModel(
            served.model.with_repeat_weight(0.0), None, dataclasses.replace(INFO, version="2")
        )
        assert holder.refresh()  # the swap
        after = client.get("/recommendations/s-swap").json()
    assert (before["model_version"], after["model_version"]) == ("1", "2")
    assert after["fresh_events"] == 2 and after["fold_in"] == "solved"
    assert [i["item_id"] for i in after["items"]] == [i["item_id"] for i in before["items"]]


def test_the_spool_rotates_and_keeps_the_order(tmp_path) -> None:
    spool = Spool(tmp_path / "events", rotate_bytes=300)
    sent = [
        {"user_id": f"u{n}", "item_id": "7", "event_type": "view", "timestamp": "t"}
        for n in range(12)
    ]
    for event in sent:
        spool.put([event])
        assert wait_written(spool, int(event["user_id"][1:]) + 1)  # one round each
    spool.close()
    assert len(spool.files) > 2 and spool.path is None
    names = sorted(path.name for path in (tmp_path / "events").iterdir())
    assert names == sorted(path.name for path in spool.files)  # nothing left .open
    assert [line["user_id"] for line in spooled(tmp_path / "events")] == [
        e["user_id"] for e in sent
    ]
    with pytest.raises(SpoolFull):  # closed: refused, never dropped silently
        spool.put([sent[0]])
