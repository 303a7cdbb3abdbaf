"""The API's front door (ASGI middleware), before any route reads a byte of a body:

- a body larger than [serve] max_body_bytes is refused with 413: by its Content-Length before it
  is read, or as soon as a chunked body passes the limit;
- a body that has not all arrived within [serve] body_timeout_seconds of the request head (a
  deadline for the whole body, however steadily its bytes trickle) gets 408;
- a response sent before the whole body was read closes the connection (its unread rest is
  never waited for);
- more than [serve] limit_concurrency requests in flight: 503 (Retry-After: 1), except for
  /health, which always answers; idle connections do not count (their bounds:
  serving.connections);
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

from serving.settings import API_KEY_HEADER, ServeSettings

OPEN = ("/health", "/metrics", "/docs", "/redoc", "/openapi.json")  # no key needed
ALWAYS = "/health"  # answered beyond limit_concurrency too
LOOPBACK = {"127.0.0.1", "::1", "localhost"}
CLOSE = (b"connection", b"close")


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
        self.in_flight = 0  # requests being answered (one event loop: no lock needed)

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
        limit = self.settings.limit_concurrency
        if self.in_flight >= limit and path != ALWAYS:
            message = f"more than {limit} requests in flight: retry in a moment"
            await _problem(send, 503, message, [(b"retry-after", b"1")])
            return
        self.in_flight += 1
        try:
            await self._bounded(scope, headers, receive, send)
        finally:
            self.in_flight -= 1

    async def _bounded(self, scope, headers: dict[str, str], receive, send) -> None:
        """The app, its body bounded in size and by one deadline; a response started before
        the body has all arrived closes the connection."""
        limit, timeout = self.settings.max_body_bytes, self.settings.body_timeout_seconds
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        received = 0
        started = False
        complete = not _has_body(headers)

        async def bounded_receive():
            nonlocal received, complete
            if complete:  # the body is in: what comes next is a disconnect, whenever it comes
                message = await receive()
            else:
                try:
                    message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0))
                except TimeoutError:
                    raise _SlowBody(timeout) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge(limit)
                complete = not message.get("more_body", False)
            else:
                complete = True  # the client is gone
            return message

        async def tracking_send(message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if not complete:
                    message = {**message, "headers": [*message.get("headers", ()), CLOSE]}
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


def _has_body(headers: dict[str, str]) -> bool:
    """Whether the request head announces a body (a Content-Length above 0, or chunks)."""
    return headers.get("content-length", "0") not in ("", "0") or "transfer-encoding" in headers


async def _problem(send, status: int, message: str, extra: list | None = None) -> None:
    body = orjson.dumps({"detail": message})  # schemas.Problem, as HTTPException answers
    await send({
        "type": "http.response.start", "status": status,
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()), CLOSE, *(extra or [])],
    })  # fmt: skip
    await send({"type": "http.response.body", "body": body})
