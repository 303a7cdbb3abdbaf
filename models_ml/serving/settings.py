"""Serving settings: recomart.toml [serve], the API key from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

API_KEY_ENV = "RECOMART_API_KEY"  # set it to require the header below on every data endpoint
API_KEY_HEADER = "X-API-Key"


@dataclass(frozen=True)
class ServeSettings:
    """How the API runs. Defaults are those of recomart.toml [serve]."""

    host: str = "127.0.0.1"
    port: int = 8000
    poll_seconds: float = 10.0  # registry polling period for a new champion; 0 disables it
    max_k: int = 100
    max_batch: int = 500
    precompute_max_users: int = 100_000
    api_key: str | None = None

    @classmethod
    def from_config(cls, serve: dict[str, Any], **overrides: Any) -> ServeSettings:
        """[serve] values, then $RECOMART_API_KEY, then explicit overrides (None ignored)."""
        known = {k: v for k, v in serve.items() if k in cls.__dataclass_fields__}
        known["api_key"] = os.environ.get(API_KEY_ENV) or None
        known.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**known)
