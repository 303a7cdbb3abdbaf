"""Prometheus metrics in the text exposition format (0.0.4), kept in process memory.

recomart_http_requests_total{method,route,status}   counter
recomart_http_errors_total{route,status}            counter: responses with status >= 500
recomart_http_request_duration_seconds{route}       histogram (buckets below)
recomart_model_loaded                                1 when a model serves, else 0
recomart_model_version                               the served registry version (0: none)
recomart_model_info{name,version,run_id}            1 for the served model
recomart_model_reloads_total                        champions loaded since start

`route` is the route template (/recommendations/{user_id}), never the raw path, so the number of
series stays bounded whatever the clients send ("unmatched" for unknown paths).
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.errors: dict[tuple[str, int], int] = defaultdict(int)
        self.buckets: dict[str, list[int]] = {}
        self.sums: dict[str, float] = defaultdict(float)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(method, route, status)] += 1
            if status >= 500:
                self.errors[(route, status)] += 1
            counts = self.buckets.setdefault(route, [0] * (len(BUCKETS) + 1))
            counts[bisect.bisect_left(BUCKETS, seconds)] += 1
            self.sums[route] += seconds

    def render(self, model_info: dict[str, str] | None, reloads: int) -> str:
        """The exposition text; model_info: {name, version, run_id} of the served model."""
        lines = [
            "# HELP recomart_http_requests_total HTTP requests answered.",
            "# TYPE recomart_http_requests_total counter",
        ]
        with self._lock:
            requests = sorted(self.requests.items())
            errors = sorted(self.errors.items())
            buckets = {route: list(c) for route, c in sorted(self.buckets.items())}
            sums = dict(self.sums)
        for (method, route, status), n in requests:
            labels = f'method="{method}",route="{_esc(route)}",status="{status}"'
            lines.append(f"recomart_http_requests_total{{{labels}}} {n}")
        lines += [
            "# HELP recomart_http_errors_total HTTP responses with a 5xx status.",
            "# TYPE recomart_http_errors_total counter",
        ]
        for (route, status), n in errors:
            lines.append(
                f'recomart_http_errors_total{{route="{_esc(route)}",status="{status}"}} {n}'
            )
        lines += [
            "# HELP recomart_http_request_duration_seconds Time to answer, in the server.",
            "# TYPE recomart_http_request_duration_seconds histogram",
        ]
        for route, counts in buckets.items():
            cumulative = 0
            r = _esc(route)
            for bound, count in zip((*BUCKETS, float("inf")), counts, strict=True):
                cumulative += count
                le = "+Inf" if bound == float("inf") else repr(bound)
                lines.append(
                    f'recomart_http_request_duration_seconds_bucket{{route="{r}",le="{le}"}} '
                    f"{cumulative}"
                )
            lines.append(f'recomart_http_request_duration_seconds_sum{{route="{r}"}} {sums[route]}')
            lines.append(
                f'recomart_http_request_duration_seconds_count{{route="{r}"}} {cumulative}'
            )
        version = model_info["version"] if model_info else "0"
        lines += [
            "# HELP recomart_model_loaded 1 when a model is loaded and serving.",
            "# TYPE recomart_model_loaded gauge",
            f"recomart_model_loaded {1 if model_info else 0}",
            "# HELP recomart_model_version Registry version of the served model (0: none).",
            "# TYPE recomart_model_version gauge",
            f"recomart_model_version {version if version.isdigit() else 0}",
            "# HELP recomart_model_info The served model.",
            "# TYPE recomart_model_info gauge",
        ]
        if model_info:
            labels = ",".join(f'{k}="{_esc(str(v))}"' for k, v in model_info.items())
            lines.append(f"recomart_model_info{{{labels}}} 1")
        lines += [
            "# HELP recomart_model_reloads_total Champion models loaded since the start.",
            "# TYPE recomart_model_reloads_total counter",
            f"recomart_model_reloads_total {reloads}",
        ]
        return "\n".join(lines) + "\n"


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
