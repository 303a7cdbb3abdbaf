"""The API's limits (serving.guard, [serve]): body size and time, the key checked
before a body is read, admin routes, bounded explanations, uvicorn's own settings. The app is
the real one, over a store with no model (routes then answer 503), driven at the ASGI level so
a test can see whether a body was read at all. (Regressions of the hostile-input review.)"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
from conftest import config_for, small_config

from serving.app import create_app
from serving.connections import BoundedProtocol
from serving.server import uvicorn_config
from serving.settings import API_KEY_HEADER, ServeSettings

LIMITS = ServeSettings(poll_seconds=0, max_body_bytes=2048, body_timeout_seconds=0.3)


@pytest.fixture
def cfg(tmp_path: Path):
    return config_for(tmp_path, small_config(tmp_path))  # no MLflow store: no model


def call(app, method: str, path: str, headers: dict, chunks: list[bytes], client="127.0.0.1",
         stall: bool = False) -> tuple[int, dict, int]:  # fmt: skip
    """One request through the ASGI app: (status, JSON body, body chunks the app read).
    stall: the client says more is coming after its chunks, and never sends it."""
    read = 0
    sent: list[dict] = []

    async def receive():
        nonlocal read
        if read < len(chunks):
            read += 1
            more = stall or read < len(chunks)
            return {"type": "http.request", "body": chunks[read - 1], "more_body": more}
        await asyncio.sleep(3600)  # a client that never sends the rest

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http", "method": method, "path": path, "raw_path": path.encode(),
        "query_string": b"", "root_path": "", "scheme": "http", "http_version": "1.1",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": (client, 5000), "server": ("127.0.0.1", 8000),
    }  # fmt: skip

    async def run():
        async with app.router.lifespan_context(app):
            await app(scope, receive, send)

    asyncio.run(run())
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], orjson.loads(body) if body else {}, read


def test_a_body_over_the_limit_is_refused_before_it_is_read(cfg) -> None:
    app = create_app(cfg, LIMITS)
    headers = {"content-type": "application/json", "content-length": str(52 * 1024 * 1024)}
    status, body, read = call(app, "POST", "/recommendations/batch", headers, [b"{" * 4096])
    assert (status, read) == (413, 0) and "larger than 2048 bytes" in body["detail"]
    # a chunked body (no Content-Length) is cut off as soon as it passes the limit
    chunks = [b'{"user_ids": ["' + b"x" * 1000] * 10
    status, _, read = call(app, "POST", "/recommendations/batch", {}, chunks)
    assert status == 413 and read == 3  # 3 x 1014 bytes > 2048


def test_without_the_key_nothing_of_the_body_is_read(cfg) -> None:
    app = create_app(cfg, replace(LIMITS, api_key="s3cret"))
    headers = {"content-length": "100"}
    status, body, read = call(app, "POST", "/recommendations/batch", headers, [b"x" * 100])
    assert (status, read) == (401, 0) and API_KEY_HEADER in body["detail"]
    status, _, _ = call(app, "GET", "/health", {}, [])
    assert status == 503  # open without a key (no model here)


def test_a_body_slower_than_the_timeout_frees_the_connection(cfg) -> None:
    app = create_app(cfg, LIMITS)
    headers = {"content-type": "application/json", "content-length": "100"}
    status, body, _ = call(
        app, "POST", "/recommendations/batch", headers, [b'{"user_ids"'], stall=True
    )
    assert status == 408 and "0.3 s" in body["detail"]


def test_admin_routes_answer_loopback_only_without_a_key(cfg) -> None:
    app = create_app(cfg, LIMITS)
    status, body, _ = call(app, "POST", "/admin/reload", {}, [], client="203.0.113.9")
    assert status == 403 and "loopback" in body["detail"]
    status, body, _ = call(app, "POST", "/admin/reload", {}, [], client="127.0.0.1")
    assert status == 200 and body["reloaded"] is False  # no model to load here
    keyed = create_app(cfg, replace(LIMITS, api_key="s3cret"))
    status, _, _ = call(keyed, "POST", "/admin/reload", {}, [], client="203.0.113.9")
    assert status == 401
    status, _, _ = call(keyed, "POST", "/admin/reload", {API_KEY_HEADER: "s3cret"}, [],
                        client="203.0.113.9")  # fmt: skip
    assert status == 200


def test_uvicorn_runs_with_deliberate_limits(cfg) -> None:
    settings = replace(LIMITS, limit_concurrency=64, timeout_keep_alive=3.0)
    server = uvicorn_config(create_app(cfg, settings), settings)
    # requests in flight are bounded by the Guard, where idle connections do not count
    assert (server.limit_concurrency, server.timeout_keep_alive) == (None, 3.0)
    assert issubclass(server.http, BoundedProtocol) and server.http.settings is settings
    assert server.ws == "none" and server.h11_max_incomplete_event_size == 16 * 1024
