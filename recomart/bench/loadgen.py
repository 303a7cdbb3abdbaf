"""A fixed-rate HTTP/1.1 load generator (asyncio, keep-alive), in the spirit of wrk2.

Open model: request i is due at start + i / rate, whether or not earlier ones have answered, and
its latency counts from that due time (so a stalled server shows as latency, not as a slower
rate: no coordinated omission). `concurrency` keep-alive connections carry the requests; a due
request waits for a free connection, and that wait is part of its latency. Errors: any status but
200, a broken connection or a timeout.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

TIMEOUT_SECONDS = 5.0


@dataclass
class LoadResult:
    rate: float
    concurrency: int
    duration_seconds: float
    requests: int
    errors: int
    latencies_ms: np.ndarray  # of the successful requests, from their due time
    service_ms: np.ndarray  # of the successful requests, from the write of the request

    def summary(self) -> dict:
        lat = self.latencies_ms
        pct = (lambda q: float(np.percentile(lat, q))) if len(lat) else (lambda q: float("nan"))
        return {
            "target_rps": self.rate,
            "concurrency": self.concurrency,
            "duration_seconds": round(self.duration_seconds, 2),
            "requests": self.requests,
            "achieved_rps": round(self.requests / self.duration_seconds, 1),
            "errors": self.errors,
            "p50_ms": round(pct(50), 3),
            "p95_ms": round(pct(95), 3),
            "p99_ms": round(pct(99), 3),
            "max_ms": round(float(lat.max()), 3) if len(lat) else float("nan"),
            # from the request's write to its answer: without the generator's own lateness
            "service_p50_ms": round(float(np.percentile(self.service_ms, 50)), 3)
            if len(self.service_ms)
            else float("nan"),
            "service_p99_ms": round(float(np.percentile(self.service_ms, 99)), 3)
            if len(self.service_ms)
            else float("nan"),
        }


async def _connect(host: str, port: int):
    return await asyncio.open_connection(host, port)


async def _request(conn, host: str, path: str) -> int:
    reader, writer = conn
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    for line in lines[1:]:
        if line[:15].lower() == "content-length:":
            length = int(line[15:].strip())
    if length:
        await reader.readexactly(length)
    return status


async def _run(
    host: str,
    port: int,
    paths: Callable[[int], str],
    rate: float,
    duration: float,
    concurrency: int,
) -> LoadResult:
    idle: asyncio.Queue = asyncio.Queue()
    for _ in range(concurrency):
        idle.put_nowait(await _connect(host, port))
    n = int(rate * duration)
    latencies = np.full(n, np.nan)
    service = np.full(n, np.nan)
    errors = 0

    async def one(i: int, due: float) -> None:
        nonlocal errors
        conn = await idle.get()
        try:
            sent = time.perf_counter()
            status = await asyncio.wait_for(_request(conn, host, paths(i)), TIMEOUT_SECONDS)
            if status == 200:
                done = time.perf_counter()
                latencies[i] = (done - due) * 1000
                service[i] = (done - sent) * 1000
            else:
                errors += 1
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
            errors += 1
            conn[1].close()
            conn = await _connect(host, port)
        idle.put_nowait(conn)

    tasks = []
    start = time.perf_counter() + 0.05
    for i in range(n):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    while not idle.empty():
        idle.get_nowait()[1].close()
    ok = ~np.isnan(latencies)
    return LoadResult(rate, concurrency, elapsed, n, errors, latencies[ok], service[ok])


def run(
    host: str,
    port: int,
    paths: Callable[[int], str],
    rate: float,
    duration: float,
    concurrency: int,
) -> LoadResult:
    """Send rate * duration GETs of paths(i) at a fixed rate over `concurrency` connections."""
    return asyncio.run(_run(host, port, paths, rate, duration, concurrency))
