"""The API's front door (ASGI middleware), before any route reads a byte of a body:

- a body larger than [serve] max_body_bytes is refused with 413: by its Content-Length before it
  is read, or as soon as a chunked body passes the limit;
- a body that does not arrive within [serve] body_timeout_seconds (a client sending less than
  its Content-Length) gets 408 and the connection is freed;
- with an API key set, a request for a protected route without the right key gets 401 before
  its body is read;
- admin routes (/admin/...) need the key when one is set, and otherwise answer loopback
  clients only (403).
"""

from __future__ import annotations

import asyncio
import secrets

import orjson
from fastapi import HTTPException

from models_ml.serving.settings import API_KEY_HEADER, ServeSettings

OPEN = ("/health", "/metrics", "/docs", "/redoc", "/openapi.json")  # no key needed
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def key_ok(settings: ServeSettings, key: str | None) -> bool:
    """Whether key is the configured API key (always true when none is configured)."""
    if not settings.api_key:
        return True
    return bool(key) and secrets.compare_digest(key.encode(), settings.api_key.encode())


class _TooLarge(HTTPException):
    """Raised from receive: FastAPI's body reading lets an HTTPException through as is."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")


class Guard:
    """ASGI middleware applying the module's rules."""

    def __init__(self, app, settings: ServeSettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        path = scope.get("path", "")
        refusal = self._refusal(scope, headers, path)
        if refusal:
            await _problem(send, *refusal)
            return
        limit, timeout = self.settings.max_body_bytes, self.settings.body_timeout_seconds
        received = 0
        started = False

        async def bounded_receive():
            nonlocal received
            try:
                message = await asyncio.wait_for(receive(), timeout)
            except TimeoutError:
                raise _SlowBody(timeout) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge(limit)
            return message

        async def tracking_send(message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, bounded_receive, tracking_send)
        except (_TooLarge, _SlowBody) as exc:  # raised outside a route's own body reading
            if not started:
                await _problem(send, exc.status_code, exc.detail)

    def _refusal(self, scope, headers: dict[str, str], path: str) -> tuple[int, str] | None:
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                return 400, "invalid Content-Length"
            if int(length) > self.settings.max_body_bytes:
                return 413, f"request body larger than {self.settings.max_body_bytes} bytes"
        protected = not path.startswith(OPEN)
        if protected and not key_ok(self.settings, headers.get(API_KEY_HEADER.lower())):
            return 401, f"missing or wrong {API_KEY_HEADER} header"
        if path.startswith("/admin/") and not self.settings.api_key:
            client = (scope.get("client") or ("", 0))[0]
            if client not in LOOPBACK:
                return 403, "admin routes answer loopback clients only (or set an API key)"
        return None


class _SlowBody(HTTPException):
    def __init__(self, timeout: float) -> None:
        super().__init__(408, f"request body not received within {timeout:g} s")


async def _problem(send, status: int, message: str) -> None:
    body = orjson.dumps({"detail": message})  # schemas.Problem, as HTTPException answers
    await send({
        "type": "http.response.start", "status": status,
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()), (b"connection", b"close")],
    })  # fmt: skip
    await send({"type": "http.response.body", "body": body})
