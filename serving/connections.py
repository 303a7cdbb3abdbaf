"""The API's connections, bounded before any request reaches the app: uvicorn's httptools
protocol (uvicorn.protocols.http.httptools_impl.HttpToolsProtocol, uvicorn 0.54) with a head
deadline, a head size limit and a registry of open connections per client address.

- A request head (request line and headers) must be complete within head_timeout_seconds: from
  the moment the connection opens, and on a keep-alive connection from the first byte of the
  next request (the wait for that byte is uvicorn's timeout_keep_alive). Otherwise the
  connection closes, with 408 when part of a head had come.
- A head larger than max_head_bytes gets 431 and the connection closes (what httptools holds
  of an unfinished head is at most that plus one read).
- At most max_connections_per_client connections per client address, and max_connections in
  all. A connection beyond either bound first evicts the oldest idle connection (one with no
  request being answered: silent, between requests, or still sending its head) of the same
  client, or for the total of any client; when every one is busy, the new connection gets 503
  and is closed.

Idle connections are therefore never what refuses a request: the requests in flight are bounded
separately ([serve] limit_concurrency, serving.guard), and /health is exempt from
that bound.
"""

from __future__ import annotations

import asyncio
import logging
from typing import ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from serving.settings import ServeSettings

log = logging.getLogger("recomart.serving")


class Registry:
    """The open connections by client address, oldest admitted first."""

    def __init__(self, max_connections: int, max_per_client: int) -> None:
        self.max_connections = max_connections
        self.max_per_client = max_per_client
        self.by_client: dict[str, dict[BoundedProtocol, None]] = {}
        self.count = 0
        self.evicted = 0  # idle connections closed to admit another
        self.refused = 0  # new connections closed because every other one was busy

    def admit(self, conn: BoundedProtocol) -> bool:
        """Register conn, evicting an idle connection when a bound is reached; False (conn not
        registered) when every connection that could make room is busy."""
        mine = self.by_client.get(conn.address, {})
        if len(mine) >= self.max_per_client and not self._evict(mine):
            return False
        if self.count >= self.max_connections and not self._evict(
            c for client in self.by_client.values() for c in client
        ):
            return False
        self.by_client.setdefault(conn.address, {})[conn] = None
        self.count += 1
        return True

    def discard(self, conn: BoundedProtocol) -> None:
        mine = self.by_client.get(conn.address)
        if mine is not None and conn in mine:
            del mine[conn]
            self.count -= 1
            if not mine:
                del self.by_client[conn.address]

    def _evict(self, candidates) -> bool:
        """Close the idle candidate idle for the longest; False when none is idle."""
        idle = [c for c in candidates if not c.busy]
        if not idle:
            return False
        oldest = min(idle, key=lambda c: c.idle_since)
        self.discard(oldest)
        oldest.transport.close()
        self.evicted += 1
        return True


class BoundedProtocol(HttpToolsProtocol):
    """HttpToolsProtocol with the module's bounds; protocol_class() binds settings and a
    registry (one per server)."""

    settings: ClassVar[ServeSettings]
    registry: ClassVar[Registry]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.address = ""
        self.idle_since = 0.0  # when the connection opened, or its last response ended
        self._head_timer: asyncio.TimerHandle | None = None
        self._in_head = False  # between a head's first byte and its end
        self._head_number = 0
        self._head_bytes = 0

    @property
    def busy(self) -> bool:
        """A request is being answered (or waits, pipelined) on this connection."""
        return bool(self.pipeline) or (self.cycle is not None and not self.cycle.response_complete)

    # -------------------------------------------------------------------- asyncio.Protocol
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.address = self.client[0] if self.client else ""
        self.idle_since = self.loop.time()
        if not self.registry.admit(self):
            self.registry.refused += 1
            log.warning("refused a connection from %s: its connections are all busy",
                        self.address)  # fmt: skip
            self._answer_and_close(503, "too many connections from this client")
            return
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        self.registry.discard(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # a read counts toward the head's size when it continues a head begun before it and
        # does not end it (a read that begins a head is not counted: one read at most)
        continuing = self._head_number if self._in_head else None
        super().data_received(data)
        if self._in_head and continuing == self._head_number:
            self._head_bytes += len(data)
            limit = self.settings.max_head_bytes
            if self._head_bytes > limit and not self.transport.is_closing():
                self._answer_and_close(431, f"request head larger than {limit} bytes")

    # -------------------------------------------------------------------- parser callbacks
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head, self._head_bytes = True, 0
        self._head_number += 1
        if self._head_timer is None:  # a keep-alive connection: from the head's first byte
            self._arm_head_timer()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._cancel_head_timer()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self.idle_since = self.loop.time()

    # -------------------------------------------------------------------- the head deadline
    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.settings.head_timeout_seconds, self._head_late)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_late(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self.busy:
            return
        if self._in_head:
            timeout = self.settings.head_timeout_seconds
            self._answer_and_close(408, f"request head not received within {timeout:g} s")
        else:  # nothing was sent at all
            self.transport.close()

    def _answer_and_close(self, status: int, message: str) -> None:
        """A plain-text answer written before (or instead of) any request, then close."""
        reason = {408: "Request Timeout", 431: "Request Header Fields Too Large",
                  503: "Service Unavailable"}[status]  # fmt: skip
        body = message.encode()
        self.transport.write(
            f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
            + body
        )
        self.transport.close()


def protocol_class(settings: ServeSettings) -> type[BoundedProtocol]:
    """A BoundedProtocol class with its own registry, for one uvicorn server (uvicorn.Config's
    http=)."""
    registry = Registry(settings.max_connections, settings.max_connections_per_client)
    attributes = {"settings": settings, "registry": registry}
    return type("BoundedHttpToolsProtocol", (BoundedProtocol,), attributes)
