"""Run the API with uvicorn (`recomart serve`, `make serve`)."""

from __future__ import annotations

import uvicorn
from threadpoolctl import threadpool_limits

from recomart_core import config
from serving.app import create_app
from serving.connections import protocol_class
from serving.settings import ServeSettings


def run(
    cfg: config.Config,
    host: str | None = None,
    port: int | None = None,
    poll_seconds: float | None = None,
    access_log: bool = True,
) -> None:
    """Serve cfg's champion on host:port ([serve] defaults: 127.0.0.1:8000) until interrupted."""
    settings = ServeSettings.from_config(
        cfg.settings.serve, host=host, port=port, poll_seconds=poll_seconds
    )
    threadpool_limits(1, "blas")  # the whole process: no BLAS thread pool per request
    uvicorn.Server(uvicorn_config(create_app(cfg, settings), settings, access_log)).run()


def uvicorn_config(app, settings: ServeSettings, access_log: bool = True) -> uvicorn.Config:
    """uvicorn's settings, chosen deliberately (README "Serving"): connections are bounded by
    serving.connections (a request head within head_timeout_seconds and
    max_head_bytes, max_connections in all and max_connections_per_client, idle ones evicted
    first), idle keep-alive connections close after timeout_keep_alive; requests in flight
    (limit_concurrency), bodies in size and time, are bounded by the app
    (serving.guard). No WebSocket upgrades: the API has no WebSocket route."""
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=protocol_class(settings),
        ws="none",
        log_level="info",
        access_log=access_log,
        timeout_graceful_shutdown=10,
        timeout_keep_alive=settings.timeout_keep_alive,
        limit_concurrency=None,  # uvicorn's counts idle connections too: the Guard's does not
        h11_max_incomplete_event_size=settings.max_head_bytes,  # were h11 the protocol
    )
