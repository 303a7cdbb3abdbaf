"""Serving settings: recomart.toml [serve] (typed: recomart_core.settings.Serve), the API key
from the environment, and the connection bounds (serving.connections)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from recomart_core.settings import Serve

API_KEY_ENV = "RECOMART_API_KEY"  # set it to require the header below on every data endpoint
API_KEY_HEADER = "X-API-Key"
DEFAULTS = Serve()  # the one set of defaults: recomart_core.settings


@dataclass(frozen=True)
class ServeSettings:
    """How the API runs: the [serve] settings (defaults those of recomart_core.settings.Serve),
    the API key, and command-line overrides."""

    host: str = DEFAULTS.host
    port: int = DEFAULTS.port
    poll_seconds: float = DEFAULTS.poll_seconds  # 0 disables polling for a new champion
    max_k: int = DEFAULTS.max_k
    max_batch: int = DEFAULTS.max_batch
    precompute_max_users: int = DEFAULTS.precompute_max_users
    max_body_bytes: int = DEFAULTS.max_body_bytes
    body_timeout_seconds: float = DEFAULTS.body_timeout_seconds
    max_explain_k: int = DEFAULTS.max_explain_k
    limit_concurrency: int = DEFAULTS.limit_concurrency
    timeout_keep_alive: float = DEFAULTS.timeout_keep_alive
    # the connections (serving.connections)
    head_timeout_seconds: float = DEFAULTS.head_timeout_seconds
    max_head_bytes: int = DEFAULTS.max_head_bytes
    max_connections: int = DEFAULTS.max_connections
    max_connections_per_client: int = DEFAULTS.max_connections_per_client
    rules: str = DEFAULTS.rules  # the rule sets file, relative to the project home
    # POST /events: the spool's queue and rotation, the fresh events kept (serving.spool, holder)
    events_queue: int = DEFAULTS.events_queue
    events_rotate_bytes: int = DEFAULTS.events_rotate_bytes
    fresh_events_per_user: int = DEFAULTS.fresh_events_per_user
    fresh_users: int = DEFAULTS.fresh_users
    api_key: str | None = None

    @classmethod
    def from_config(cls, serve: Serve, **overrides: Any) -> ServeSettings:
        """[serve] (cfg.settings.serve), then $RECOMART_API_KEY, then explicit overrides (None
        ignored)."""
        known: dict[str, Any] = serve.model_dump()
        known["api_key"] = os.environ.get(API_KEY_ENV) or None
        known.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**known)
