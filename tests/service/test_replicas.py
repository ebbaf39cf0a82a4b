"""Replicas on one S3 store: each rollout is computed once, served by all, and survives either's death.

The S3 store is moto's server on 127.0.0.1 (a free port), started here. Most replicas are applications in
this process, each with its own state, forecast function (counting its rollouts) and s3fs client; one test
runs a replica as a real uvicorn server in a process of its own and kills it mid-run. Lease expiry runs on
a clock the test moves: a replica waiting for another's rollout calls `hub.sleep` between looks, and the
test's sleep advances that clock only where the test says so.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service.lease import LeaseBook, owner_id
from service.settings import ServiceSettings
from tests.fixtures.bundle import write_initial_states
from tests.service.conftest import BUCKET, CountingForecast, make_client, s3_options
from tests.service.test_live_ingest import drop, steps, wait_for_run

s3fs = pytest.importorskip("s3fs", reason="s3fs (the cloud extra) writes s3:// stores")

REPO = Path(__file__).resolve().parents[2]
POINT = {"latitude": 40, "longitude": -120, "hourly": "air", "forecast_hours": 24}
LEASE_S = 60.0


class Clock:
    """Seconds since the epoch that move only when the test moves them."""

    def __init__(self, now: float = 1.8e9) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def analyses_nc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_initial_states(tmp_path_factory.mktemp("analyses") / "all.nc", n_steps=7)


@pytest.fixture()
def replica_settings(
    service_settings: ServiceSettings, s3_endpoint: str, request: pytest.FixtureRequest
) -> ServiceSettings:
    prefix = request.node.name.replace("[", "-").replace("]", "")
    return ServiceSettings.from_overrides(
        **service_settings.model_dump(exclude={"store_dir", "store_options", "lease_poll_s", "lease_s"}),
        store_dir=f"s3://{BUCKET}/{prefix}",
        store_options=s3_options(s3_endpoint),
        lease_s=LEASE_S,
        lease_poll_s=0.01,
    )


class Replica:
    """One application on the shared store, with its own counting forecast function."""

    def __init__(self, settings: ServiceSettings, clock: Clock) -> None:
        self.counting = CountingForecast()
        self.client = make_client(settings, self.counting)
        self.client.__enter__()
        self.services = self.client.app.state.services
        self.services.hub.leases.clock = clock
        self.looks = 0
        self.services.hub.sleep = self._look_again

    def _look_again(self, seconds: float) -> None:
        self.looks += 1
        time.sleep(seconds)

    def get(self, **params: str) -> dict:
        answer = self.client.get("/v1/forecast", params=POINT | params)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def stop(self) -> None:
        self.client.__exit__(None, None, None)


@pytest.fixture()
def clock() -> Clock:
    return Clock()


@pytest.fixture()
def replicas(replica_settings: ServiceSettings, clock: Clock) -> Iterator[tuple[Replica, Replica]]:
    pair = (Replica(replica_settings, clock), Replica(replica_settings, clock))
    try:
        yield pair
    finally:
        for replica in pair:
            replica.counting.gate.set()  # a "killed" replica's worker finishes before the S3 server stops
        for replica in pair:
            if replica.client.app.state.services is not None:
                replica.stop()


def wait_until(condition, *, what: str, within_s: float = 60) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.01)


def test_a_run_computed_by_one_replica_is_served_by_the_other(replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    first = a.get(run="2013-01-02T06:00")
    second = b.get(run="2013-01-02T06:00")
    assert second["hourly"] == first["hourly"]
    assert (a.counting.calls, b.counting.calls) == (1, 0)
    assert (a.services.hub.rollouts_computed, b.services.hub.store_loads) == (1, 1)
    assert a.services.store is not b.services.store and a.services.store.root == b.services.store.root
    assert a.services.store.writable and b.services.store.writable


def test_concurrent_requests_on_both_replicas_compute_once(replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    a.counting.gate.clear()
    b.counting.gate.clear()
    answers: dict[str, dict] = {}
    threads = [
        threading.Thread(target=lambda r=r, n=n: answers.__setitem__(n, r.get(run="2013-01-02T06:00")))
        for r, n in ((a, "a"), (b, "b"))
    ]
    for thread in threads:
        thread.start()
    wait_until(lambda: a.counting.started.is_set() or b.counting.started.is_set(), what="a rollout started")
    computing, waiting = (a, b) if a.counting.started.is_set() else (b, a)
    wait_until(lambda: waiting.looks >= 3, what="the other replica waits for the lease")
    computing.counting.gate.set()
    waiting.counting.gate.set()
    for thread in threads:
        thread.join(timeout=120)
    assert answers["a"]["hourly"] == answers["b"]["hourly"]
    assert (computing.counting.calls, waiting.counting.calls) == (1, 0)
    assert waiting.services.hub.store_loads == 1 and waiting.services.hub.leases.taken_over == 0


@pytest.mark.parametrize("killed", [0, 1])
def test_a_replica_stopping_mid_run_loses_nothing(
    replicas: tuple[Replica, Replica], clock: Clock, killed: int
) -> None:
    dying, survivor = replicas[killed], replicas[1 - killed]
    before = dying.get(run="2013-01-02T00:00")  # stored before the death
    dying.counting.gate.clear()
    dying.counting.started.clear()
    thread = threading.Thread(target=lambda: dying.client.get("/v1/forecast", params=POINT), daemon=True)
    thread.start()
    wait_until(dying.counting.started.is_set, what="the dying replica computes")
    # The replica stops mid-run: its worker never returns, renews nor releases the lease, as when its
    # process is killed or hangs (TestClient cannot kill an app with a request in flight; the fixture
    # lets the worker go once the test is over).

    def expire_later(seconds: float) -> None:
        survivor.looks += 1
        if survivor.looks == 5:  # the survivor waited while the lease held, then time passes
            clock.now += LEASE_S + 1
        time.sleep(seconds)

    survivor.services.hub.sleep = expire_later
    latest = survivor.get()
    assert survivor.looks >= 5 and survivor.services.hub.leases.taken_over == 1
    assert (dying.counting.calls, survivor.counting.calls) == (2, 1)
    assert latest["hourly"]["time"][0] == "2013-01-02T06:00"
    assert survivor.get(run="2013-01-02T00:00")["hourly"] == before["hourly"]
    assert survivor.counting.calls == 1  # the earlier run came from the store
    dying.counting.gate.set()  # the stuck worker finishes (its answer goes nowhere) before the teardown
    thread.join(timeout=120)
    assert not thread.is_alive()


def test_replicas_following_one_data_folder_compute_each_new_run_once(
    replica_settings: ServiceSettings, clock: Clock, tmp_path: Path, analyses_nc: Path
) -> None:
    folder = tmp_path / "incoming"
    folder.mkdir()
    drop(folder, "first.nc", steps(analyses_nc, 0, 6))
    settings = replica_settings.model_copy(update={"data": folder, "poll_interval_s": 3600.0})
    pair = [Replica(settings, clock), Replica(settings, clock)]
    try:
        drop(folder, "second.nc", steps(analyses_nc, 6, 7))
        for replica in pair:
            replica.services.folder.tick()
        for replica in pair:
            wait_for_run(replica.client, "2013-01-02T12:00")
        assert sum(r.counting.calls for r in pair) == 1
        for replica in pair:  # each announces the run, whoever computed it
            events = [e.data for e in replica.services.live.events.since(0)]
            done = [
                e for e in events if e.get("run") == "2013-01-02T12:00" and e.get("status") == "completed"
            ]
            assert len(done) == 1
        assert pair[0].get()["hourly"] == pair[1].get()["hourly"]
    finally:
        for replica in pair:
            replica.stop()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_killing_a_replica_process_mid_run_loses_nothing(
    replica_settings: ServiceSettings, tmp_path: Path, s3_endpoint: str
) -> None:
    """A real uvicorn replica in its own process takes a rollout's lease and is killed (SIGKILL) mid-run;
    a replica on the same machine takes the lease over at once (its holder's process is gone), long
    before the lease would expire, computes the rollout and serves it."""
    httpx = pytest.importorskip("httpx")
    started, port = tmp_path / "started", _free_port()
    scratch = tmp_path / "scratch"  # the killed process cannot remove its store cache: keep it in here
    scratch.mkdir()
    env = os.environ | {
        "TMPDIR": str(scratch),
        "FNO_MODELS": json.dumps([str(m) for m in replica_settings.models]),
        "FNO_DATA": str(replica_settings.data),
        "FNO_STORE_DIR": str(replica_settings.store_dir),
        "FNO_STORE_OPTIONS": json.dumps(s3_options(s3_endpoint)),
        "FNO_LEASE_S": "86400",  # a day: only the holder's death can free it within the test
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(REPO),
    }
    command = [sys.executable, "-m", "tests.service.replica_process", str(started), str(port)]
    process = subprocess.Popen(command, env=env, cwd=REPO)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(httpx, f"{base}/ready"), what="the replica process serves", within_s=180)
        request = threading.Thread(target=lambda: _answers(httpx, f"{base}/v1/forecast", POINT), daemon=True)
        request.start()
        wait_until(started.exists, what="the replica process computes")
    finally:
        process.kill()
        process.wait(timeout=60)
    survivor = Replica(replica_settings, Clock(now=time.time()))
    try:
        holder = survivor.services.hub.leases
        answer = survivor.get()
        assert answer["hourly"]["time"][0] == "2013-01-02T06:00"
        assert survivor.counting.calls == 1 and holder.taken_over == 1
    finally:
        survivor.stop()


def _answers(httpx: Any, url: str, params: dict | None = None) -> bool:
    try:
        return httpx.get(url, params=params, timeout=300).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.parametrize("where", ["local", "s3"])
def test_a_lease_is_taken_by_one_and_over_only_after_it_expires(
    where: str, tmp_path: Path, s3_endpoint: str, clock: Clock, request: pytest.FixtureRequest
) -> None:
    if where == "s3":
        fs = s3fs.S3FileSystem(**s3_options(s3_endpoint))
        root = f"{BUCKET}/{request.node.name.replace('[', '-').replace(']', '')}/leases"
    else:
        fs = pytest.importorskip("fsspec").filesystem("file")
        root = str(tmp_path / "leases")
    one, two = (LeaseBook(fs, root, owner=name, seconds=10, clock=clock) for name in ("one", "two"))
    held = one.acquire("k")
    assert held is not None and two.acquire("k") is None and two.holder("k") == "one"
    clock.now += 8
    renewed = one.renew(held)
    assert renewed is not None and renewed.generation == 2
    clock.now += 8  # past the first expiry, within the renewed one
    assert two.acquire("k") is None
    clock.now += 3
    taken = two.acquire("k")
    assert taken is not None and taken.generation == 3 and two.taken_over == 1
    assert one.renew(renewed) is None  # lost: the next generation is two's
    one.release("k")  # not one's any more: left alone
    assert one.holder("k") == "two"
    two.release("k")
    assert one.holder("k") is None and one.acquire("k").generation == 1


def test_a_lease_of_an_ended_process_on_this_machine_is_taken_at_once(tmp_path: Path, clock: Clock) -> None:
    """A replica restarted after a crash does not wait for the lease its old process left."""
    fs = pytest.importorskip("fsspec").filesystem("file")
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead = LeaseBook(
        fs, str(tmp_path), owner=f"{socket.gethostname()}/{ended.stdout.strip()}/old", seconds=60, clock=clock
    )
    alive = LeaseBook(
        fs, str(tmp_path), owner=f"{socket.gethostname()}/{os.getpid()}/other", seconds=60, clock=clock
    )
    assert dead.acquire("k") is not None
    assert alive.acquire("j") is not None
    fresh = LeaseBook(fs, str(tmp_path), owner=owner_id(), seconds=60, clock=clock)
    assert fresh.acquire("j") is None  # this process still runs: its lease holds until it expires
    taken = fresh.acquire("k")
    assert taken is not None and taken.generation == 2 and fresh.taken_over == 1


def test_an_unreachable_bucket_degrades_to_memory_and_still_answers(
    replica_settings: ServiceSettings, clock: Clock
) -> None:
    settings = replica_settings.model_copy(update={"store_dir": "s3://no-such-bucket/runs"})
    replica = Replica(settings, clock)
    try:
        health = replica.client.get("/ready").json()
        assert health["store"]["writable"] is False and "bucket does not exist" in health["store"]["problem"]
        first = replica.get(run="2013-01-02T06:00")
        assert replica.get(run="2013-01-02T06:00") == first and replica.counting.calls == 1
    finally:
        replica.stop()
