"""The service's Prometheus metrics (`prometheus_client`), in a registry of its own per app.

`Telemetry` holds the request and rollout series; `watch` adds the readings taken at scrape time (queue
depth, cache hits and misses, rollouts computed and loaded, models loaded). `TelemetryMiddleware` (plain
ASGI, cheap) times every request by route template, so `/v1/forecasts/{fid}` is one series however many
ids are asked for. Nothing is global: two apps in one process (tests) count separately.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
ROLLOUT_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

Reading = Callable[[], float]
LabelledReading = Callable[[], Mapping[str, float]]


class _Readings(Collector):
    """Gauges and counters whose values live elsewhere (the job table, the caches), read at each scrape."""

    def __init__(
        self,
        gauges: dict[str, tuple[str, Reading]],
        counters: dict[str, tuple[str, str, LabelledReading]],
    ) -> None:
        self.gauges = gauges
        self.counters = counters

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        for name, (help_text, read) in self.gauges.items():
            yield GaugeMetricFamily(name, help_text, value=read())
        for name, (help_text, label, read_labelled) in self.counters.items():
            family = CounterMetricFamily(name, help_text, labels=[label])
            for value_label, value in sorted(read_labelled().items()):
                family.add_metric([value_label], value)
            yield family


class Telemetry:
    """The metrics of one app: request counts and latency by route, rollout times and failures."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "fno_http_requests_total",
            "HTTP requests by route, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "fno_http_request_duration_seconds",
            "Request latency by route.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.rollout = Histogram(
            "fno_rollout_seconds",
            "Wall time of each rollout (or store load).",
            buckets=ROLLOUT_BUCKETS,
            registry=self.registry,
        )
        self.rollout_failures = Counter(
            "fno_rollout_failures_total", "Rollouts that raised.", registry=self.registry
        )
        self._readings: _Readings | None = None

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def observe_rollout(self, seconds: float, ok: bool) -> None:
        if ok:
            self.rollout.observe(seconds)
        else:
            self.rollout_failures.inc()

    def watch(
        self,
        *,
        gauges: dict[str, tuple[str, Reading]],
        counters: dict[str, tuple[str, str, LabelledReading]],
    ) -> None:
        """Read `gauges` (`name: (help, read)`) and labelled `counters` (`name: (help, label, read)`) at
        each scrape; replaces what an earlier lifespan of the app watched."""
        if self._readings is not None:
            self.registry.unregister(self._readings)
        self._readings = _Readings(gauges, counters)
        self.registry.register(self._readings)

    def render(self) -> bytes:
        """The text exposition of every metric of this app."""
        return generate_latest(self.registry)


class TelemetryMiddleware:
    """Pure ASGI middleware: counts and times HTTP requests by route template."""

    def __init__(self, app: Any, *, telemetry: Telemetry) -> None:
        self.app = app
        self.telemetry = telemetry

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
            self.telemetry.observe_request(template, scope["method"], status, time.perf_counter() - start)
