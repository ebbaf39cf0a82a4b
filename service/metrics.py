"""Prometheus metrics in the text exposition format (0.0.4), written without a client library.

`Metrics` holds counters and histograms; `MetricsMiddleware` (plain ASGI, cheap) times every request by
route template, so `/v1/forecasts/{forecast_id}` is one series however many ids are asked for.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable
from typing import Any

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
ROLLOUT_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class Histogram:
    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.total = 0.0
        self.n = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value
        self.n += 1

    def lines(self, name: str, labels: str) -> list[str]:
        sep = "," if labels else ""
        out, running = [], 0
        for bound, count in zip((*self.buckets, float("inf")), self.counts, strict=True):
            running += count
            le = "+Inf" if bound == float("inf") else repr(bound)
            out.append(f'{name}_bucket{{{labels}{sep}le="{le}"}} {running}')
        brace = f"{{{labels}}}" if labels else ""
        out.append(f"{name}_sum{brace} {self.total:.6f}")
        out.append(f"{name}_count{brace} {self.n}")
        return out


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    """Counters and histograms of the service. Gauges are read at scrape time from `gauges`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = {}
        self.latency: dict[str, Histogram] = {}
        self.rollout = Histogram(ROLLOUT_BUCKETS)
        self.rollout_failures = 0
        self.gauges: dict[str, tuple[str, Callable[[], float]]] = {}
        self.counters: dict[str, tuple[str, str, Callable[[], dict[str, float]]]] = {}

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        with self._lock:
            key = (route, method, status)
            self.requests[key] = self.requests.get(key, 0) + 1
            hist = self.latency.get(route)
            if hist is None:
                hist = self.latency[route] = Histogram(LATENCY_BUCKETS)
            hist.observe(seconds)

    def observe_rollout(self, seconds: float, ok: bool) -> None:
        with self._lock:
            if ok:
                self.rollout.observe(seconds)
            else:
                self.rollout_failures += 1

    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            lines += [
                "# HELP fno_http_requests_total HTTP requests by route, method and status.",
                "# TYPE fno_http_requests_total counter",
            ]
            for (route, method, status), n in sorted(self.requests.items()):
                lines.append(
                    f'fno_http_requests_total{{route="{_escape(route)}",method="{method}",status="{status}"}} {n}'
                )
            lines += [
                "# HELP fno_http_request_duration_seconds Request latency by route.",
                "# TYPE fno_http_request_duration_seconds histogram",
            ]
            for route, hist in sorted(self.latency.items()):
                lines += hist.lines("fno_http_request_duration_seconds", f'route="{_escape(route)}"')
            lines += [
                "# HELP fno_rollout_seconds Wall time of each rollout (or store load).",
                "# TYPE fno_rollout_seconds histogram",
            ]
            lines += self.rollout.lines("fno_rollout_seconds", "")
            lines += [
                "# HELP fno_rollout_failures_total Rollouts that raised.",
                "# TYPE fno_rollout_failures_total counter",
                f"fno_rollout_failures_total {self.rollout_failures}",
            ]
        for name, (help_text, label_name, read) in sorted(self.counters.items()):
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} counter"]
            for label, value in sorted(read().items()):
                lines.append(f'{name}{{{label_name}="{_escape(label)}"}} {value:g}')
        for name, (help_text, read) in sorted(self.gauges.items()):
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {read():g}"]
        return "\n".join(lines) + "\n"


class MetricsMiddleware:
    """Pure ASGI middleware: counts and times HTTP requests by route template."""

    def __init__(self, app: Any, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or scope.get("route_template") or "unmatched"
            self.metrics.observe_request(template, scope["method"], status, time.perf_counter() - start)
