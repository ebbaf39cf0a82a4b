"""The forecast store on S3 (moto on 127.0.0.1): the same answers as the local store, its index as objects."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from service.objectstore import ObjectForecastStore
from service.store import ForecastRecord, ForecastStore, RunKey, forecast_id, open_store
from tests.service.conftest import BUCKET, s3_options

s3fs = pytest.importorskip("s3fs", reason="s3fs (the cloud extra) writes s3:// stores")

SHA = "ab" * 32
SHORT, LONG = (RunKey("m", SHA, "2013-01-02T06:00", hours) for hours in (12, 48))


def _write(text: str):
    return lambda path: Path(path).write_text(text)


@pytest.fixture()
def stores(s3_endpoint: str) -> Iterator[Callable[[str], ObjectForecastStore]]:
    """Opens stores on the test's S3 server and closes them after the test (each has a cache folder)."""
    opened: list[ObjectForecastStore] = []

    def open_one(url: str) -> ObjectForecastStore:
        opened.append(ObjectForecastStore(url, storage_options=s3_options(s3_endpoint)))
        return opened[-1]

    yield open_one
    for store in opened:
        store.close()
    assert not any(store._cache.exists() for store in opened)


@pytest.fixture()
def url(s3_endpoint: str, request: pytest.FixtureRequest) -> str:
    return f"s3://{BUCKET}/{request.node.name}"


def test_open_store_picks_by_location(url: str, s3_endpoint: str, tmp_path: Path) -> None:
    remote = open_store(url, storage_options=s3_options(s3_endpoint))
    local = open_store(tmp_path / "store")
    try:
        assert isinstance(remote, ObjectForecastStore) and remote.writable
        assert isinstance(local, ForecastStore) and local.writable
    finally:
        remote.close()
        local.close()


def test_rollouts_and_forecasts_survive_reopening_from_another_client(
    url: str, stores: Callable[[str], ObjectForecastStore]
) -> None:
    store = stores(url)
    store.put_rollout(SHORT, _write("short"), seconds=1.0)
    written = store.put_rollout(LONG, _write("long"), seconds=2.5)
    fid = forecast_id(SHORT, ("air",), (30.0, 230.0, 50.0, 250.0))
    store.add_forecast(ForecastRecord(fid, SHORT, ("air",), (30.0, 230.0, 50.0, 250.0), time.time()))
    store.close()

    again = stores(url)  # another replica
    found = again.rollout(LONG)
    assert (
        found is not None and found.computed_at == pytest.approx(written.computed_at) and found.seconds == 2.5
    )
    assert again.local_file(found).read_text() == "long"  # downloaded into its cache
    covering = again.covering(RunKey("m", SHA, "2013-01-02T06:00", 24))
    assert covering is not None and covering.key == LONG  # the shortest stored rollout at least as long
    assert again.covering(RunKey("m", SHA, "2013-01-02T06:00", 72)) is None
    assert again.covering(RunKey("m", SHA, "2013-01-02T12:00", 6)) is None
    record = again.forecast(fid)
    assert record is not None and record.key == SHORT and record.bbox == (30.0, 230.0, 50.0, 250.0)
    for hostile in ("../store.json", "x" * 24, fid.upper(), ""):
        assert again.forecast(hostile) is None


def test_deleting_the_last_forecast_of_a_rollout_removes_it_and_retention_removes_a_run(
    url: str, s3_endpoint: str, stores: Callable[[str], ObjectForecastStore]
) -> None:
    store = stores(url)
    store.put_rollout(SHORT, _write("x"), seconds=0.1)
    store.put_rollout(LONG, _write("y"), seconds=0.1)
    ids = [forecast_id(SHORT, (v,), None) for v in ("air", "z500")]
    for fid, variable in zip(ids, ("air", "z500"), strict=True):
        store.add_forecast(ForecastRecord(fid, SHORT, (variable,), None, time.time()))
    assert store.delete_forecast(ids[0]) is not None and store.rollout(SHORT) is not None  # still used
    assert store.delete_forecast(ids[1]) is not None and store.rollout(SHORT) is None
    assert store.forecast(ids[1]) is None and store.delete_forecast(ids[1]) is None
    assert store.delete_run(SHA, "2013-01-02T06:00") == 1
    assert store.rollout(LONG) is None
    listed = s3fs.S3FileSystem(**s3_options(s3_endpoint)).find(f"{BUCKET}/{url.rsplit('/', 1)[-1]}")
    assert [p.rsplit("/", 1)[-1] for p in listed] == ["store.json"]  # nothing left but the store's marker
