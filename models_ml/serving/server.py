"""Run the API with uvicorn (`recomart serve`, `make serve`)."""

from __future__ import annotations

import uvicorn
from threadpoolctl import threadpool_limits

from models_ml.serving.app import create_app
from models_ml.serving.settings import ServeSettings
from recomart.core import config


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
    app = create_app(cfg, settings)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level="info",
        access_log=access_log,
        timeout_graceful_shutdown=10,
    )
