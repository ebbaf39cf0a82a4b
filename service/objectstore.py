"""The forecast store on object storage (`s3://bucket/prefix`, any fsspec URL): files and index as objects.

Object storage has no database and no rename, so the index is objects too, one small JSON manifest each,
found by key or listed by prefix (layout under the store's root):

    rollouts/{digest}.nc                      a rollout's NetCDF file
    index/rollouts/{run digest}/{digest}.json  its manifest: key, file, computed_at, seconds
    index/forecasts/{id}.json                  a forecast resource (rollout key, variables, bbox)
    index/uses/{digest}/{id}                   which resources use a rollout (removed with the last one)
    leases/{digest}/{generation}.json          who computes a rollout now (`service.lease`)

Crash safety comes from the order of writes, each object written whole by one PUT: the rollout file
first, then its manifest, so a manifest names a complete file; a replica killed before the manifest
leaves a file nobody serves, rewritten by whoever computes the rollout next. Several replicas share all of
it: what one computed, another finds by its manifest and reads (through a local copy, since the NetCDF
library reads local files). The interface is `service.store.ForecastStore`'s, so the service does not
know which it has. When the store cannot be reached at start, the service logs one error and keeps its
index in memory (an fsspec memory filesystem), as the local store does with an unusable folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from service.store import (
    NETCDF_LOCK,
    ForecastRecord,
    RolloutRecord,
    RunKey,
    StoreWriteError,
    is_valid_id,
)

log = logging.getLogger(__name__)


def run_digest(model_sha256: str, run: str) -> str:
    """The folder of one model's run in the index: every horizon computed for it is listed there."""
    return hashlib.sha256(f"{model_sha256}|{run}".encode()).hexdigest()[:24]


class ObjectForecastStore:
    """Rollouts and their index as objects under `url` (fsspec), read through a local cache folder."""

    def __init__(self, url: str, *, storage_options: Mapping[str, Any] | None = None) -> None:
        import fsspec

        self.root = url.rstrip("/")
        self.problem: str | None = None
        self._cache = Path(tempfile.mkdtemp(prefix="fno-store-cache-"))
        try:
            self.fs, self.base = fsspec.core.url_to_fs(self.root, **dict(storage_options or {}))
            # Reach the store now, not on the first request: a missing bucket or no right to write shows here.
            self.fs.pipe_file(f"{self.base.rstrip('/')}/store.json", json.dumps({"layout": 1}).encode())
        except (OSError, ValueError, TypeError, ImportError) as error:
            self.problem = f"forecast store {self.root}: {type(error).__name__}: {error}"
            log.error("%s; forecasts are computed and served but not stored", self.problem)
            self.fs = fsspec.filesystem("memory")
            self.base = f"/fno-store-{uuid.uuid4().hex}"
        self.base = self.base.rstrip("/")
        self.lease_root = f"{self.base}/leases"

    @property
    def writable(self) -> bool:
        return self.problem is None

    def close(self) -> None:
        shutil.rmtree(self._cache, ignore_errors=True)

    # -- paths --------------------------------------------------------------------------------------------
    def _data(self, digest: str) -> str:
        return f"{self.base}/rollouts/{digest}.nc"

    def _manifest(self, key: RunKey) -> str:
        return f"{self.base}/index/rollouts/{run_digest(key.model_sha256, key.run)}/{key.digest}.json"

    def _read_json(self, path: str) -> dict[str, Any] | None:
        try:
            body = json.loads(self.fs.cat_file(path))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:
            log.warning("forecast store %s: index object unreadable (%s)", self.root, error)
            return None
        return body if isinstance(body, dict) else None

    def _record(self, body: dict[str, Any]) -> RolloutRecord:
        key = RunKey(body["model_id"], body["model_sha256"], body["run"], int(body["hours"]))
        return RolloutRecord(
            key, self._cache / f"{key.digest}.nc", float(body["computed_at"]), float(body["seconds"])
        )

    # -- rollouts -------------------------------------------------------------------------------------------
    def rollout(self, key: RunKey) -> RolloutRecord | None:
        body = self._read_json(self._manifest(key))
        return None if body is None else self._record(body)

    def covering(self, key: RunKey) -> RolloutRecord | None:
        """The shortest stored rollout of the same model and run that is at least as long as `key`'s."""
        folder = f"{self.base}/index/rollouts/{run_digest(key.model_sha256, key.run)}"
        try:
            names = self.fs.ls(folder, detail=False, refresh=True)
        except FileNotFoundError:
            return None
        records = [self._read_json(str(name)) for name in names]
        found = [self._record(body) for body in records if body is not None]
        longer = sorted((r for r in found if r.key.hours >= key.hours), key=lambda r: r.key.hours)
        return longer[0] if longer else None

    def local_file(self, record: RolloutRecord) -> Path:
        """The rollout's file on local disk, downloaded into the cache folder the first time.

        FileNotFoundError when the store has lost it (the caller computes it again)."""
        if not record.path.is_file():
            temp = self._cache / f".{record.key.digest}.{threading.get_ident()}.part"
            try:
                self.fs.get_file(self._data(record.key.digest), str(temp))
                temp.replace(record.path)
            finally:
                temp.unlink(missing_ok=True)
        return record.path

    def put_rollout(self, key: RunKey, write: Callable[[Path], None], *, seconds: float) -> RolloutRecord:
        """Write the rollout's file with `write(temp_path)`, upload it, then its manifest.

        Raises `StoreWriteError` naming the object when the store refuses."""
        if self.problem is not None:
            raise StoreWriteError(self.problem)
        local = self._cache / f"{key.digest}.nc"
        temp = self._cache / f".{key.digest}.{threading.get_ident()}.tmp.nc"
        computed_at = time.time()
        manifest = {
            "model_id": key.model_id,
            "model_sha256": key.model_sha256,
            "run": key.run,
            "hours": key.hours,
            "file": f"rollouts/{key.digest}.nc",
            "computed_at": computed_at,
            "seconds": seconds,
        }
        try:
            with NETCDF_LOCK:
                write(temp)
            self.fs.put_file(str(temp), self._data(key.digest))
            self.fs.pipe_file(self._manifest(key), json.dumps(manifest).encode())
            temp.replace(local)
        except (OSError, RuntimeError, ValueError) as error:  # netCDF reports a full disk as RuntimeError
            raise StoreWriteError(
                f"forecast store: cannot write {self._data(key.digest)}: {error}"
            ) from error
        finally:
            temp.unlink(missing_ok=True)
        return RolloutRecord(key, local, computed_at, seconds)

    def _remove(self, *paths: str) -> None:
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm_file(path)

    def delete_rollout(self, key: RunKey) -> None:
        self._remove(
            self._manifest(key), self._data(key.digest)
        )  # the manifest first: nothing names a lost file
        (self._cache / f"{key.digest}.nc").unlink(missing_ok=True)

    def delete_run(self, model_sha256: str, run: str) -> int:
        """Remove every stored rollout of one model's run (any horizon); returns how many."""
        folder = f"{self.base}/index/rollouts/{run_digest(model_sha256, run)}"
        try:
            names = self.fs.ls(folder, detail=False, refresh=True)
        except FileNotFoundError:
            return 0
        bodies = [self._read_json(str(name)) for name in names]
        records = [self._record(body) for body in bodies if body is not None]
        for record in records:
            self.delete_rollout(record.key)
        return len(records)

    # -- forecast resources ---------------------------------------------------------------------------------
    def _forecast_path(self, forecast_id: str) -> str:
        return f"{self.base}/index/forecasts/{forecast_id}.json"

    def add_forecast(self, record: ForecastRecord) -> None:
        """Index a forecast resource; `StoreWriteError` when the store refuses the object."""
        key = record.key
        body = {
            "model_id": key.model_id,
            "model_sha256": key.model_sha256,
            "run": key.run,
            "hours": key.hours,
            "variables": list(record.variables),
            "bbox": None if record.bbox is None else list(record.bbox),
            "created_at": record.created_at,
        }
        try:
            self.fs.pipe_file(f"{self.base}/index/uses/{key.digest}/{record.id}", b"")
            self.fs.pipe_file(self._forecast_path(record.id), json.dumps(body).encode())
        except OSError as error:
            raise StoreWriteError(
                f"forecast store {self.root}: cannot record forecast {record.id}: {error}"
            ) from error

    def forecast(self, forecast_id: str) -> ForecastRecord | None:
        if not is_valid_id(forecast_id):
            return None
        body = self._read_json(self._forecast_path(forecast_id))
        if body is None:
            return None
        key = RunKey(body["model_id"], body["model_sha256"], body["run"], int(body["hours"]))
        bbox = None if body["bbox"] is None else tuple(float(v) for v in body["bbox"])
        return ForecastRecord(forecast_id, key, tuple(body["variables"]), bbox, float(body["created_at"]))

    def delete_forecast(self, forecast_id: str) -> ForecastRecord | None:
        """Remove a forecast resource; its rollout goes too when no other resource uses it."""
        record = self.forecast(forecast_id)
        if record is None:
            return None
        uses = f"{self.base}/index/uses/{record.key.digest}"
        self._remove(self._forecast_path(forecast_id), f"{uses}/{forecast_id}")
        try:
            others = self.fs.ls(uses, detail=False, refresh=True)
        except FileNotFoundError:
            others = []
        if not others:
            self.delete_rollout(record.key)
        return record
