"""The recommendation API on the real pipeline's champion: answers, bad input, faults, fuzzing.

In process through FastAPI's TestClient (the ASGI app itself), and as a real `recomart serve`
on 127.0.0.1 for what only a separate process shows: serving while another process holds the
warehouse write lock, and a new champion picked up by polling with requests in flight.

Ids are the shop's strings: the pipeline's marts hold integer ids (their decimal text is the id),
and a second home trained on synthetic_marts.shop_world serves ids like "007", "7", "85123A".
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import duckdb
import mlflow
import numpy as np
import orjson
import pytest
import schemathesis
from conftest import SCHEMA_CHECKS, config_for, with_code_under_test
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from mlflow.tracking import MlflowClient
from synthetic_marts import SHOP_USERS, shop_world, write_marts

from models_ml import package
from models_ml.recommender import Recommender
from models_ml.registry import CHAMPION, promote
from models_ml.tracking import tracking_uri
from models_ml.train import run_training
from recomart_core import config
from serving.app import create_app
from serving.holder import ModelHolder
from serving.loader import RegistrySource
from serving.settings import API_KEY_HEADER, ServeSettings

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`"),
]

NO_POLL = ServeSettings(poll_seconds=0)
FUZZ_EXAMPLES = 30  # per operation and generation mode: the whole fuzz takes seconds


@pytest.fixture(scope="module")
def cfg(pipeline_run: dict):
    return pipeline_run["cfg"]


@pytest.fixture(scope="module")
def client(cfg):
    with TestClient(create_app(cfg, NO_POLL)) as c:
        yield c


@pytest.fixture(scope="module")
def model(cfg) -> Recommender:
    """The champion's local copy that training installed: an independent way to the answers."""
    return package.load_local(cfg.paths.models)


@pytest.fixture(scope="module")
def catalog(cfg) -> dict[str, tuple]:
    with duckdb.connect(str(cfg.paths.warehouse), read_only=True) as con:
        rows = con.sql("select item_id::varchar, title, category, price from marts.item_features")
        return {r[0]: r[1:] for r in rows.fetchall()}


def champion_version(cfg) -> str:
    client = MlflowClient(tracking_uri(cfg.paths.mlflow))
    return str(client.get_model_version_by_alias(cfg.settings.train.model_name, CHAMPION).version)


def users_by_path(model: Recommender, path: str) -> list[str]:
    """Shop ids of the model's users served by path."""
    paths = model.user_paths(model.user_ids)
    return model.users.decode(model.user_ids[paths == path]).tolist()


def history(model: Recommender, user: str) -> set[str]:
    """The shop ids of the items user (a shop id) had in the training matrix."""
    row = int(np.searchsorted(model.user_ids, model.users.encode([user])[0]))
    return set(model.items.decode(model.item_ids[model.user_items[row].indices]))


# ------------------------------------------------------------------------------ answers
def test_health_and_model_describe_the_registry_champion(client, cfg) -> None:
    version = champion_version(cfg)
    assert client.get("/health").json() == {"status": "ready", "model_version": version}
    info = client.get("/model").json()
    run = MlflowClient(tracking_uri(cfg.paths.mlflow)).get_run(info["run_id"])
    assert (info["name"], info["version"], info["alias"]) == (
        cfg.settings.train.model_name, version, CHAMPION,
    )  # fmt: skip
    assert (info["family"], info["family_title"]) == ("als", "ALS (implicit)")
    assert info["data_cutoff"] == run.data.tags["snapshot_time"]
    assert info["holdout_cutoff"] == run.data.params["holdout_cutoff"]
    assert info["metrics"]["model_ndcg_at_10"] == pytest.approx(
        run.data.metrics["model_ndcg_at_10"]
    )
    started = datetime.fromtimestamp(run.info.start_time / 1000, UTC)
    assert info["trained_at"] == started.isoformat(timespec="seconds")
    assert info["item_metadata"] == "model artifact"
    assert "POST /admin/reload" in info["reload"]


def test_recommendations_are_the_models_with_catalog_metadata(client, model, catalog) -> None:
    users = users_by_path(model, "model")[:5] + users_by_path(model, "blend")[:3]
    for user in users:
        body = client.get(f"/recommendations/{user}", params={"k": 7}).json()
        expected = model.recommend_items(user, 7)
        assert [i["item_id"] for i in body["items"]] == [item for item, _ in expected]
        assert [i["score"] for i in body["items"]] == pytest.approx([s for _, s in expected])
        assert [i["rank"] for i in body["items"]] == list(range(1, 8))
        assert body["strategy"] == model.user_path(user)
        assert body["cold_start"] == (body["strategy"] != "model")
        assert body["family"] == model.family == "als"
        for item in body["items"]:
            title, category, price = catalog[item["item_id"]]
            assert (item["title"], item["category"]) == (title, category)
            assert item["price"] == pytest.approx(price)
    known = history(model, users[0])
    kept = client.get(f"/recommendations/{users[0]}", params={"k": 100, "exclude_known": False})
    assert known & {i["item_id"] for i in kept.json()["items"]}
    excluded = client.get(f"/recommendations/{users[0]}", params={"k": 100}).json()["items"]
    assert not known & {i["item_id"] for i in excluded}


def test_unknown_user_gets_the_cold_start_list_marked_as_such(client, model) -> None:
    unknown = "no-such-user-12345"
    body = client.get(f"/recommendations/{unknown}", params={"k": 5}).json()
    assert body["strategy"] == "popular" and body["cold_start"] is True
    assert "recent popularity" in body["strategy_description"]
    assert [i["item_id"] for i in body["items"]] == [
        i for i, _ in model.recommend_items(unknown, 5)
    ]


def test_explain_names_the_users_items_that_drove_each_one(client, model) -> None:
    user = users_by_path(model, "model")[0]
    liked = history(model, user)
    body = client.get(f"/recommendations/{user}", params={"k": 3, "explain": True}).json()
    for item in body["items"]:
        drivers = item["because"]
        assert drivers and {d["item_id"] for d in drivers} <= liked
        why = model.explain(user, item["item_id"], n=3)
        assert [d["item_id"] for d in drivers] == [c["item_id"] for c in why["contributions"]]
        assert all(d["title"] for d in drivers)
    plain = client.get(f"/recommendations/{user}", params={"k": 3}).json()
    assert [i["item_id"] for i in plain["items"]] == [i["item_id"] for i in body["items"]]
    # explanations cost a solve per item: k is bounded for them ([serve] max_explain_k)
    too_many = client.get(f"/recommendations/{user}", params={"k": 21, "explain": True})
    assert too_many.status_code == 422 and "explain=true allows k up to 20" in too_many.text
    assert client.get(f"/recommendations/{user}", params={"k": 21}).status_code == 200


def test_similar_items_and_an_unknown_item(client, model) -> None:
    item = model.items.decode(model.item_ids[:1])[0]
    body = client.get(f"/items/{item}/similar", params={"k": 4}).json()
    expected = model.similar_items(item, 4)
    assert body["item_id"] == item
    assert body["similarity"] == model.similarity_text == "the cosine of the items' learned factors"
    assert [i["item_id"] for i in body["items"]] == [i for i, _ in expected]
    assert all(i["title"] for i in body["items"])
    missing = client.get("/items/no-such-item/similar")
    assert missing.status_code == 404 and "unknown" in missing.json()["detail"]


def test_batch_equals_single_calls_and_is_bounded(client, model) -> None:
    users = [*model.users.decode(model.user_ids[:4]).tolist(), "no-such-user"]
    body = client.post("/recommendations/batch", json={"user_ids": users, "k": 3}).json()
    assert [r["user_id"] for r in body["results"]] == users
    for result in body["results"]:
        single = client.get(f"/recommendations/{result['user_id']}", params={"k": 3}).json()
        assert result["items"] == single["items"]
    too_many = [str(i) for i in range(501)]
    too_many = client.post("/recommendations/batch", json={"user_ids": too_many})
    assert too_many.status_code == 422 and "user_ids" in too_many.json()["message"]
    assert client.post("/recommendations/batch", json={"user_ids": []}).status_code == 422
    for bad in ([""], ["x" * 257], ["a\tb"], [7]):  # ids are text: 1..256 characters
        response = client.post("/recommendations/batch", json={"user_ids": bad})
        assert response.status_code == 422, bad


@pytest.mark.parametrize(
    ("path", "where"),
    [
        ("/recommendations/1?k=0", "query k"),
        ("/recommendations/1?k=101", "query k"),
        ("/recommendations/1?k=ten", "query k"),
        ("/recommendations/1?explain=maybe", "query explain"),
        (f"/recommendations/{'u' * 257}", "path user_id"),  # 1..256 characters
        ("/recommendations/a%01b", "path user_id"),  # no control characters
        ("/recommendations/a%0Ab", "path user_id"),
        ("/recommendations/%7F", "path user_id"),
        ("/recommendations/%C2%85", "path user_id"),  # U+0085, a C1 control character
        (f"/items/{'9' * 257}/similar", "path item_id"),
        ("/items/85123%00/similar", "path item_id"),
        ("/items/1/similar?k=1000", "query k"),
    ],
)
def test_bad_input_is_a_422_that_says_what_is_wrong(client, path: str, where: str) -> None:
    response = client.get(path)
    assert response.status_code == 422
    assert response.json()["message"].startswith(where)


def test_metrics_count_requests_errors_latency_and_the_model_version(client, cfg) -> None:
    client.get("/recommendations/1")
    client.get("/recommendations/1?k=0")
    text = client.get("/metrics").text
    version = champion_version(cfg)
    assert 'recomart_http_requests_total{method="GET",route="/recommendations/{user_id}",' \
           'status="422"}' in text  # fmt: skip
    assert 'recomart_http_request_duration_seconds_bucket{route="/recommendations/{user_id}",' \
           'le="+Inf"}' in text  # fmt: skip
    assert f"recomart_model_version {version}" in text
    assert "recomart_model_loaded 1" in text and "recomart_http_errors_total" in text
    assert '/recommendations/1"' not in text  # route templates only, never raw paths


def test_api_key_when_configured(cfg) -> None:
    with TestClient(create_app(cfg, replace(NO_POLL, api_key="s3cret"))) as c:
        assert c.get("/recommendations/1").status_code == 401
        assert c.get("/recommendations/1", headers={API_KEY_HEADER: "nope"}).status_code == 401
        assert c.get("/recommendations/1", headers={API_KEY_HEADER: "s3cret"}).status_code == 200
        assert c.get("/model").status_code == 401
        assert c.get("/health").status_code == 200 and c.get("/metrics").status_code == 200
        assert c.get("/docs").status_code == 200


def test_without_a_model_the_service_starts_not_ready_and_says_run_make_train(
    cfg, tmp_path: Path
) -> None:
    empty = replace(cfg, paths=replace(cfg.paths, mlflow=tmp_path / "mlflow"))
    with TestClient(create_app(empty, NO_POLL)) as c:
        health = c.get("/health")
        assert health.status_code == 503 and health.json()["status"] == "not ready"
        for response in (
            c.get("/recommendations/1"),
            c.get("/items/1/similar"),
            c.get("/model"),
            c.post("/recommendations/batch", json={"user_ids": [1]}),
        ):
            assert response.status_code == 503
            assert "make train" in response.json()["detail"]
        assert c.get("/metrics").status_code == 200
        assert "recomart_model_loaded 0" in c.get("/metrics").text
    assert not (tmp_path / "mlflow").exists()  # the service never creates a tracking store


def test_openapi_schema_fuzzed_never_a_500(cfg) -> None:
    holder = ModelHolder(RegistrySource(cfg), NO_POLL)
    assert holder.refresh()
    app = create_app(cfg, NO_POLL, holder)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 10
    checks = SCHEMA_CHECKS
    seen: dict[int, int] = {}
    for operation in operations:
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=FUZZ_EXAMPLES, deadline=None, database=None, derandomize=True,
                suppress_health_check=list(HealthCheck),
            )  # fmt: skip
            def fuzz(case) -> None:
                response = case.call()
                seen[response.status_code] = seen.get(response.status_code, 0) + 1
                assert response.status_code < 500, response.text
                case.validate_response(response, checks=checks)

            try:
                fuzz()
            except Unsatisfiable:  # no invalid request exists (no parameters, no body)
                assert mode == schemathesis.GenerationMode.NEGATIVE
    # oversized bodies: refused with the documented 413, never a 500
    batch = next(op for op in operations if op.path == "/recommendations/batch")
    huge = batch.Case(body={"user_ids": ["u" * 1000] * 2000})  # about 2 MB, limit 1 MB
    response = huge.call()
    assert response.status_code == 413
    huge.validate_response(response, checks=checks)
    holder.stop()
    assert seen.get(200) and seen.get(422)  # both valid and invalid requests were made


# ------------------------------------------------------------ the shop's string ids
@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A home whose marts hold shop_world's string ids, trained and promoted by run_training
    (the real MLflow registry), and a client of the API over its champion."""
    home = tmp_path_factory.mktemp("shop_home")
    toml = (Path(__file__).resolve().parent.parent / "recomart.toml").read_text()
    (home / "recomart.toml").write_text(toml.replace("factors = 16", "factors = 4"))
    shop_cfg = config_for(home, home / "recomart.toml")
    interactions, catalog = shop_world()
    write_marts(shop_cfg.paths.warehouse, interactions, catalog)
    summary = run_training(shop_cfg)
    assert summary["promotion"]["promote"], summary["promotion"]
    config.load.cache_clear()
    model = package.load_local(shop_cfg.paths.models)
    group = dict(zip(catalog["item_id"], catalog["category"], strict=True))
    with TestClient(create_app(shop_cfg, NO_POLL)) as c:
        yield {"client": c, "model": model, "group": group, "catalog": catalog}


def test_007_and_7_are_different_users(shop: dict) -> None:
    client, model, group = shop["client"], shop["model"], shop["group"]
    bodies = {u: client.get(f"/recommendations/{u}", params={"k": 5}).json() for u in SHOP_USERS}
    for user, taste in zip(SHOP_USERS, ("group_0", "group_1"), strict=True):
        body = bodies[user]
        assert body["user_id"] == user and body["strategy"] == "model"
        items = [i["item_id"] for i in body["items"]]
        assert items == [i for i, _ in model.recommend_items(user, 5)]
        assert all(group[i] == taste for i in items), (user, items)
    assert all(i["item_id"].endswith("A") for i in bodies["007"]["items"])
    assert not any(i["item_id"].endswith("A") for i in bodies["7"]["items"])
    # "07" is nobody: the popular list, not user 7's
    unknown = client.get("/recommendations/07", params={"k": 5}).json()
    assert unknown["strategy"] == "popular" and unknown["user_id"] == "07"
    assert [i["item_id"] for i in unknown["items"]] == [
        i for i, _ in model.recommend_items("nobody", 5)
    ]
    batch = client.post("/recommendations/batch", json={"user_ids": ["7", "007"], "k": 5}).json()
    assert [r["items"] for r in batch["results"]] == [bodies["7"]["items"], bodies["007"]["items"]]
    why = client.get("/recommendations/7", params={"k": 2, "explain": True}).json()
    drivers = [d["item_id"] for item in why["items"] for d in item["because"]]
    assert drivers and all(group[d] == "group_1" for d in drivers)


def test_sku_item_ids_in_paths_and_answers(shop: dict) -> None:
    client, model, group = shop["client"], shop["model"], shop["group"]
    titles = dict(zip(shop["catalog"]["item_id"], shop["catalog"]["title"], strict=True))
    body = client.get("/items/85123A/similar", params={"k": 4})
    assert body.status_code == 200
    body = body.json()
    assert body["item_id"] == "85123A" and len(body["items"]) == 4
    assert [i["item_id"] for i in body["items"]] == [i for i, _ in model.similar_items("85123A", 4)]
    for item in body["items"]:
        assert group[item["item_id"]] == "group_0"
        assert item["title"] == titles[item["item_id"]]  # items.parquet keyed by the SKU
    other = client.get("/items/85123/similar", params={"k": 4}).json()
    assert all(group[i["item_id"]] == "group_1" for i in other["items"])
    assert client.get("/items/85123a/similar").status_code == 404  # ids are case-sensitive
    assert client.get(f"/recommendations/{'7' * 256}").status_code == 200  # 256: the longest
    assert client.get(f"/recommendations/{'7' * 257}").status_code == 422
    assert client.get("/recommendations/7%1F").status_code == 422


# ------------------------------------------------------------------ repeat behaviour
@pytest.fixture(scope="module")
def repeat_shop(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A home trained on shop_world with views and carts repeatable and repeat_weight 0.5 (the
    model the registry serves), a client of the API over it, and what user "007" had: the
    items they bought (never recommended again) and those they only viewed or carted."""
    home = tmp_path_factory.mktemp("repeat_home")
    toml = (Path(__file__).resolve().parent.parent / "recomart.toml").read_text()
    for line, value in (
        ("factors = 16", "factors = 4"),
        ("repeatable_events = []", 'repeatable_events = ["view", "add_to_cart"]'),
        ("repeat_weight = 0.0", "repeat_weight = 0.5"),
    ):
        toml, n = re.subn(rf"(?m)^{re.escape(line)}(?=\s)", value, toml)
        assert n == 1, line  # the [train] line
    (home / "recomart.toml").write_text(toml)
    repeat_cfg = config_for(home, home / "recomart.toml")
    assert repeat_cfg.settings.train.repeatable_events == ["view", "add_to_cart"]
    interactions, catalog = shop_world()
    write_marts(repeat_cfg.paths.warehouse, interactions, catalog)
    summary = run_training(repeat_cfg)
    if not summary["promotion"]["promote"]:  # the API serves the champion: make it one
        client = MlflowClient(tracking_uri(repeat_cfg.paths.mlflow))
        promote(client, repeat_cfg.settings.train.model_name, summary["model_version"])
    config.load.cache_clear()
    with duckdb.connect(str(repeat_cfg.paths.warehouse), read_only=True) as con:
        had = con.execute(
            "select item_id, bool_or(event_type = 'purchase') from marts.interactions"
            " where user_id = '007' group by 1"
        ).fetchall()
    with TestClient(create_app(repeat_cfg, NO_POLL)) as c:
        yield {
            "client": c,
            "model": package.load_local(repeat_cfg.paths.models),
            "bought": {item for item, bought in had if bought},
            "repeatable": {item for item, bought in had if not bought},
        }


def test_a_repeatable_known_item_comes_back_and_a_bought_one_does_not(repeat_shop: dict) -> None:
    client, model = repeat_shop["client"], repeat_shop["model"]
    bought, repeatable = repeat_shop["bought"], repeat_shop["repeatable"]
    assert bought and repeatable  # "007" viewed or carted some items and bought others
    k = 20
    body = client.get("/recommendations/007", params={"k": k}).json()
    assert body["strategy"] == "model" and body["exclude_known"] is True
    assert body["strategy_description"] == (
        "collaborative filtering (ALS (implicit)), blended with the user's own items that may"
        " come back (repeat_weight 0.5)"
    )
    items = [i["item_id"] for i in body["items"]]
    assert items == [i for i, _ in model.recommend_items("007", k)]
    assert not set(items) & bought  # never recommended again
    assert set(items) & repeatable  # may come back, and does (repeat_weight 0.5)
    # the user's best repeat item leads: its blend is at least 0.5, any other item's at most
    # 0.5 (scaled learned scores are at most 1)
    assert items[0] in repeatable
    # explain=true shows the repeat part of a repeat item's score, none for a new item
    why = client.get("/recommendations/007", params={"k": k, "explain": True}).json()
    parts = {i["item_id"]: i["repeat"] for i in why["items"]}
    assert parts[items[0]]["score"] > 0 and parts[items[0]]["weight"] == 0.5
    new = [i for i in items if i not in repeatable]
    assert new and all(parts[i]["score"] == 0 for i in new)
    # the batch endpoint follows the same rule; exclude_known=false leaves out nothing
    batch = client.post("/recommendations/batch", json={"user_ids": ["007"], "k": k}).json()
    assert [i["item_id"] for i in batch["results"][0]["items"]] == items
    everything = client.get("/recommendations/007", params={"k": 80, "exclude_known": False}).json()
    assert {i["item_id"] for i in everything["items"]} >= bought
    # the documentation says what exclude_known excludes
    schema = client.get("/openapi.json").json()
    query = schema["paths"]["/recommendations/{user_id}"]["get"]["parameters"]
    described = next(p for p in query if p["name"] == "exclude_known")["description"]
    assert "[train] repeatable_events" in described


# ------------------------------------------------------------- a real server process
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, orjson.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, orjson.loads(e.read())


def top(model: Recommender, user: str, k: int = 10) -> list[str]:
    """The item ids of user's top k as model (a package read independently) ranks them."""
    return [item for item, _ in model.recommend_items(user, k)]


def _wait_for(condition, seconds: float = 30) -> None:
    """Until condition() holds or seconds have passed (the caller asserts what it needs)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not condition():
        time.sleep(0.1)


def register_a_changed_copy(cfg, version: str, where: Path) -> tuple[str, Path, Path]:
    """Register a new version of cfg's model: version's package with its item factors in
    reverse order (a valid model that ranks other items first), logged by a run of its own in
    an experiment whose artifacts live under where. Returns (the new version, the old version's
    package, the new version's package), both downloaded under where."""
    client = MlflowClient(tracking_uri(cfg.paths.mlflow))
    name = cfg.settings.train.model_name
    old_root = Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=client.get_model_version_download_uri(name, version),
            dst_path=str(where / "old"),
            tracking_uri=client.tracking_uri,
        )
    )
    new_root = where / "new"
    shutil.copytree(old_root, new_root)
    changed = package.pyfunc_package_dir(new_root)
    scorer = package.load_scorer(changed, package.read_params(changed))
    reversed_items = replace(scorer, item_factors=np.ascontiguousarray(scorer.item_factors[::-1]))
    package.save_scorer(reversed_items, changed / package.MODEL_FILE)
    experiment = client.create_experiment(
        "hot-swap", artifact_location=(where / "artifacts").as_uri()
    )
    run = client.create_run(experiment)
    client.log_artifacts(run.info.run_id, str(new_root), "model")
    client.set_terminated(run.info.run_id)
    registered = client.create_model_version(
        name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id
    )
    return str(registered.version), package.pyfunc_package_dir(old_root), changed


@pytest.fixture()
def second_home(pipeline_run: dict, tmp_path: Path):
    """A copy of the pipeline's home (config, warehouse, MLflow store) that tests may change."""
    src = pipeline_run["home"]
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(src / "recomart.toml", home / "recomart.toml")
    cfg = config_for(home, home / "recomart.toml")
    shutil.copytree(pipeline_run["cfg"].paths.mlflow, cfg.paths.mlflow)
    cfg.paths.warehouse.parent.mkdir(parents=True)
    shutil.copy(pipeline_run["cfg"].paths.warehouse, cfg.paths.warehouse)
    return home, cfg


def test_real_server_with_the_warehouse_locked_picks_up_a_new_champion(
    second_home, tmp_path: Path
) -> None:
    home, cfg = second_home
    env = {**os.environ, "RECOMART_HOME": str(home), "RECOMART_CONFIG": str(home / "recomart.toml")}
    env = with_code_under_test(env)  # the server runs in another directory
    env.pop("RECOMART_API_KEY", None)
    locker = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); print('locked', flush=True);"
         " time.sleep(600)", str(cfg.paths.warehouse)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    port = _free_port()
    server = None
    try:
        assert locker.stdout.readline().strip() == "locked"
        with pytest.raises(duckdb.IOException):  # the lock is real: not even a reader gets in
            duckdb.connect(str(cfg.paths.warehouse), read_only=True)
        workdir = tmp_path / "cwd"
        workdir.mkdir()
        server = subprocess.Popen(
            [sys.executable, "-m", "recomart.cli", "serve", "--port", str(port),
             "--poll-seconds", "0.5", "--no-access-log"],
            env=env, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert server.poll() is None, server.stderr.read()
            try:
                if _get(f"{base}/health")[0] == 200:
                    break
            except OSError:
                time.sleep(0.2)
        status, body = _get(f"{base}/recommendations/1?k=5")
        assert status == 200 and all(i["title"] for i in body["items"])
        old = _get(f"{base}/model")[1]["version"]

        # requests in flight while a new champion is promoted and swapped in: a version that
        # recommends other items, so that each answer shows which model made it
        new, old_dir, new_dir = register_a_changed_copy(cfg, old, tmp_path / "versions")
        old_model, new_model = package.load_recommender(old_dir), package.load_recommender(new_dir)
        user = next(
            u for u in users_by_path(old_model, "model") if top(old_model, u) != top(new_model, u)
        )
        expected = {old: top(old_model, user), new: top(new_model, user)}  # computed here
        answers: list[tuple[int, int, str, list[str]]] = []  # (client, status, version, items)
        stop = threading.Event()

        def hammer(me: int) -> None:
            while not stop.is_set():
                try:
                    code, payload = _get(f"{base}/recommendations/{quote(user)}?k=10")
                except Exception as exc:  # an unreadable answer is an answer: asserted below
                    code, payload = -1, {"model_version": repr(exc)}
                items = [i["item_id"] for i in payload.get("items", [])]
                answers.append((me, code, payload.get("model_version", ""), items))

        def answered_by(version: str) -> int:
            return sum(1 for answer in answers if answer[2] == version)

        threads = [threading.Thread(target=hammer, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        try:
            _wait_for(lambda: answered_by(old) >= 20)
            client = MlflowClient(tracking_uri(cfg.paths.mlflow))
            client.set_registered_model_alias(cfg.settings.train.model_name, CHAMPION, new)
            _wait_for(lambda: _get(f"{base}/model")[1]["version"] == new)
            _wait_for(lambda: answered_by(new) >= 20)
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert _get(f"{base}/model")[1]["version"] == new
        assert answers and {code for _, code, _, _ in answers} == {200}, answers[-3:]
        # answered by both versions, and by nothing else (no version half there)
        assert {v for _, _, v, _ in answers} == {old, new}
        assert answered_by(old) >= 20 and answered_by(new) >= 20
        # every answer is its version's list for the user, as that version's package says
        wrong = [(v, items) for _, _, v, items in answers if items != expected[v]]
        assert not wrong, f"{len(wrong)} answers not their version's: {wrong[:2]}, {expected}"
        for me in range(len(threads)):  # each client: the old version until the swap, then new
            seen = [v for who, _, v, _ in answers if who == me]
            assert seen == sorted(seen, key=lambda v: v == new), me
        assert not list(workdir.iterdir())  # nothing written where it ran (no stray mlflow.db)
    finally:
        for proc in (server, locker):
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=15)
