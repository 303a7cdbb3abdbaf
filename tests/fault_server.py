"""A catalog API on 127.0.0.1 that misbehaves on purpose, scripted per test (stdlib only).

Requests are answered like the real catalog API (recomart.demo.catalog_api.route over
`products`) unless a fault is queued: each queued fault answers exactly one request, in order;
`always`, when set, answers every request once the queue is empty. Every request is recorded
(path, headers, time).

    with FaultServer(products) as server:
        server.queue(Fault.status(503), Fault.status(503))
        load_catalog(cfg, base_url=server.url)
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from recomart.demo import catalog_api


@dataclass(frozen=True)
class Fault:
    """How to (mis)answer one request."""

    kind: str  # ok | status | hang | malformed | drop | first_page | truncate | shift
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @staticmethod
    def ok() -> Fault:
        """Answer normally (to let a fault hit a later request)."""
        return Fault("ok")

    @staticmethod
    def status_code(status: int, **headers: str) -> Fault:
        """An error status with a JSON body and the given headers (e.g. Retry-After="1")."""
        return Fault(
            "status", status=status, headers={k.replace("_", "-"): v for k, v in headers.items()}
        )

    @staticmethod
    def hang(seconds: float = 30.0) -> Fault:
        """Accept the request, then say nothing for `seconds` (until the server stops)."""
        return Fault("hang", seconds=seconds)

    @staticmethod
    def malformed() -> Fault:
        """200 with a body that is not JSON (a list cut short)."""
        return Fault("malformed")

    @staticmethod
    def drop() -> Fault:
        """200 announcing the full body, half of it sent, then the connection closed."""
        return Fault("drop")

    @staticmethod
    def truncate() -> Fault:
        """The page cut to half its products, as if the listing ended early."""
        return Fault("truncate")

    @staticmethod
    def shift() -> Fault:
        """The page from one product earlier, as if a product were added while paging."""
        return Fault("shift")

    @staticmethod
    def first_page() -> Fault:
        """The right page size, but always the first page: a server that ignores `offset`."""
        return Fault("first_page")


@dataclass(frozen=True)
class Request:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    at: float  # time.monotonic() when the request arrived


class FaultServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, products: list[dict[str, Any]]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.products = products
        self.faults: deque[Fault] = deque()
        self.always: Fault | None = None
        self.send_total = True  # the X-Total-Count header (the public Fake Store API has none)
        self.requests: list[Request] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(
            target=self.serve_forever, args=(0.02,), name="fault-api", daemon=True
        )  # a short poll interval: shutdown() waits for one

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def queue(self, *faults: Fault) -> None:
        with self._lock:
            self.faults.extend(faults)

    def next_fault(self, request: Request) -> Fault | None:
        with self._lock:
            self.requests.append(request)
            return self.faults.popleft() if self.faults else self.always

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()  # wakes hanging handlers
        self.shutdown()
        self.server_close()
        self._thread.join()


class _Handler(BaseHTTPRequestHandler):
    server: FaultServer

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        request = Request(url.path, parse_qs(url.query), dict(self.headers), time.monotonic())
        fault = self.server.next_fault(request)
        kind = fault.kind if fault else None
        if kind == "hang":
            self.server.stopping.wait(fault.seconds)
            self.close_connection = True
            return
        if kind == "status":
            self._send(fault.status, json.dumps({"error": "scripted"}).encode(), fault.headers)
            return
        if kind == "malformed":
            self._send(200, b'[{"id": 1, "title": "Prod')
            return
        target = self.path
        limit = request.query.get("limit", ["100"])[0]
        offset = int(request.query.get("offset", ["0"])[0])
        if kind == "first_page":
            target = f"{url.path}?limit={limit}&offset=0"
        elif kind == "shift":
            target = f"{url.path}?limit={limit}&offset={max(offset - 1, 0)}"
        try:
            response = catalog_api.route(catalog_api.Catalog(self.server.products), target)
        except catalog_api.ApiError as error:
            self._send(error.status, json.dumps({"error": error.message}).encode())
            return
        payload = response.payload
        if kind == "truncate":
            payload = payload[: len(payload) // 2]
        body = json.dumps(payload).encode()
        headers = {}
        if self.server.send_total and response.total is not None:
            headers[catalog_api.TOTAL_COUNT_HEADER] = str(response.total)
        if kind == "drop":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self._send(200, body, headers)

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass
