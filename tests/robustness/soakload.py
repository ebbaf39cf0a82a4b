"""A bounded soak load on a live server: concurrent keep-alive clients mixing cached points, new rollouts
(distinct runs and horizons) and bad requests, with latency, status and server-RSS accounting.

Used by `tests/robustness/test_soak.py` (short) and `benchmarks/soak.py` (long, printed figures); the server
must serve `INIT_STEPS` initial states (`liveserver.prepare_assets(..., n_steps=INIT_STEPS)`).
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx
import numpy as np

from tests.robustness.liveserver import read_rss_kib, run_times

INIT_STEPS = 40  # initial states the soak server gets: 39 runs x 64 horizons = 2496 distinct rollouts
CACHED = (
    "/v1/forecast?latitude=40&longitude=-120&forecast_hours=24",
    "/v1/forecast?latitude=45,35&longitude=-120,-110&forecast_hours=24&hourly=air",
    "/v1/forecast?latitude=42.5&longitude=-110&forecast_hours=24&format=csv",
    "/v1/forecast?latitude=38&longitude=-125&forecast_hours=24&cell_selection=nearest&timeformat=unixtime",
)
BAD_GETS = (
    "/v1/forecast?latitude=100&longitude=0",
    "/v1/forecast?latitude=40&longitude=-120&hourly=rainbow",
    "/v1/forecast?latitude=abc&longitude=1",
    "/v1/forecast?latitude=40&longitude=-120&forecast_hours=100000",
    "/v1/forecast?latitude=40&longitude=-120&run=1999-01-01T00:00",
    "/v1/forecast?latitude=" + ",".join(["40"] * 1001) + "&longitude=" + ",".join(["240"] * 1001),
    "/v1/forecasts/..%2F..%2Findex.sqlite",
    "/v1/forecasts/0123456789abcdef01234567/data",
    "/v1/models/nope",
    "/v1/nothing",
)
# mix of request kinds, by weight
MIX = (("cached", 0.7), ("new_run", 0.1), ("bad", 0.2))


@dataclass
class SoakResult:
    """What a soak run saw; latencies in seconds, per kind, after the warm-up only."""

    seconds: float
    statuses: Counter = field(default_factory=Counter)
    kinds: Counter = field(default_factory=Counter)
    latencies: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k, _ in MIX})
    server_errors: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    connection_errors: list[str] = field(default_factory=list)
    rss_start_kib: int = 0
    rss_end_kib: int = 0
    new_rollouts: int = 0

    @property
    def requests(self) -> int:
        return sum(self.kinds.values())

    @property
    def rss_growth(self) -> float:
        return (self.rss_end_kib - self.rss_start_kib) / max(self.rss_start_kib, 1)

    def percentile_ms(self, kind: str, q: float) -> float:
        values = self.latencies[kind]
        return float(np.percentile(values, q) * 1000.0) if values else float("nan")

    def summary(self) -> str:
        lines = [
            f"requests {self.requests} in {self.seconds:.0f} s ({self.requests / self.seconds:.0f}/s): "
            + ", ".join(f"{k} {n}" for k, n in sorted(self.kinds.items()))
            + f" (new rollouts computed {self.new_rollouts})",
            "statuses " + ", ".join(f"{s}: {n}" for s, n in sorted(self.statuses.items())),
            f"server errors {len(self.server_errors)}, unexpected statuses {len(self.unexpected)}, "
            f"connection errors {len(self.connection_errors)}",
        ]
        for kind in self.latencies:
            lines.append(
                f"{kind:8s} p50 {self.percentile_ms(kind, 50):8.1f} ms  p99 {self.percentile_ms(kind, 99):8.1f} ms"
            )
        lines.append(
            f"server RSS {self.rss_start_kib / 1024:.1f} MiB after warm-up -> {self.rss_end_kib / 1024:.1f} MiB "
            f"({100 * self.rss_growth:+.1f}%)"
        )
        return "\n".join(lines)


class _NewRuns:
    """Distinct (run, horizon) pairs, each computed once: every one is a fresh rollout. A pair refused with
    429 (queue full) is asked for again later."""

    def __init__(self, max_hours: int) -> None:
        pairs = list(itertools.product(run_times(INIT_STEPS), range(6, max_hours + 1, 6)))
        random.Random(0).shuffle(pairs)
        self._paths = [
            f"/v1/forecast?latitude=41&longitude=-115&forecast_hours={hours}&run={run}"
            for run, hours in pairs
        ]
        self._lock = threading.Lock()

    def next_path(self) -> str | None:
        with self._lock:
            return self._paths.pop() if self._paths else None

    def refused(self, path: str) -> None:
        with self._lock:
            self._paths.insert(0, path)


def _request(
    client: httpx.Client, kind: str, rng: random.Random, new_runs: _NewRuns
) -> tuple[str, httpx.Response]:
    if kind == "cached":
        return kind, client.get(rng.choice(CACHED))
    if kind == "new_run":
        path = new_runs.next_path()
        if path is not None:
            response = client.get(path)
            if response.status_code == 429:
                new_runs.refused(path)
            return kind, response
        kind = "cached"
        return kind, client.get(rng.choice(CACHED))
    if rng.random() < 0.2:
        return kind, client.post("/v1/forecasts", json={"forecast_hours": -1, "variables": ["rain"]})
    return kind, client.get(rng.choice(BAD_GETS))


def _expected(kind: str, status: int) -> bool:
    if kind == "cached":
        return status in (200, 304)
    if kind == "new_run":
        return status in (200, 429)
    return 400 <= status < 500 and status != 429


def run_soak(
    base_url: str,
    *,
    pid: int,
    clients: int = 8,
    seconds: float = 25.0,
    warmup_s: float = 8.0,
    max_hours: int = 384,
    timeout_s: float = 120.0,
) -> SoakResult:
    """Drive the server at `base_url` (process `pid`) for `warmup_s + seconds`; measure after the warm-up."""
    with httpx.Client(base_url=base_url, timeout=timeout_s) as warm:
        for path in CACHED:  # computed once before the clock starts
            warm.get(path).raise_for_status()
    result = SoakResult(seconds=seconds)
    new_runs = _NewRuns(max_hours)
    lock = threading.Lock()
    started = time.monotonic()
    measuring_from = started + warmup_s
    stop_at = measuring_from + seconds
    kinds, weights = zip(*MIX, strict=True)

    def client_loop(index: int) -> None:
        rng = random.Random(index)
        with httpx.Client(base_url=base_url, timeout=timeout_s) as client:
            while (now := time.monotonic()) < stop_at:
                kind = rng.choices(kinds, weights)[0]
                try:
                    kind, response = _request(client, kind, rng, new_runs)
                except httpx.TransportError as error:
                    with lock:
                        result.connection_errors.append(f"{kind}: {type(error).__name__}: {error}")
                    continue
                elapsed = time.monotonic() - now
                with lock:
                    result.kinds[kind] += 1
                    result.statuses[response.status_code] += 1
                    if kind == "new_run" and response.status_code == 200:
                        result.new_rollouts += 1
                    if now >= measuring_from and response.status_code != 429:
                        result.latencies[kind].append(elapsed)
                    if response.status_code >= 500:
                        result.server_errors.append(
                            f"{response.request.url}: {response.status_code} {response.text[:200]}"
                        )
                    elif not _expected(kind, response.status_code):
                        result.unexpected.append(f"{kind} {response.request.url}: {response.status_code}")

    threads = [threading.Thread(target=client_loop, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(max(0.0, measuring_from - time.monotonic()))
    result.rss_start_kib = read_rss_kib(pid)
    for thread in threads:
        thread.join(timeout=seconds + timeout_s + 30)
    result.rss_end_kib = read_rss_kib(pid)
    return result
