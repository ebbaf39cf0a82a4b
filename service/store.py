"""The on-disk forecast store: one NetCDF file per computed rollout, indexed in SQLite.

Rollouts are keyed by `RunKey` (model sha256, run, horizon) and survive a restart; forecast resources
(POST /v1/forecasts) are rows naming a rollout plus the variables and bounding box asked for. File names are
derived from hex digests, never from user input, so nothing can escape the store folder.

Crash safety. A rollout file is written to a temporary name, fsynced and renamed before its index row is
committed, so a process killed at any point leaves either a complete indexed file, a complete file without
a row (computed again when asked), or a temporary file. On opening, the store deletes temporary files left
by processes that no longer run and index rows whose file is gone; nothing but an indexed complete file is
ever served. Forecast resources whose rollout never finished keep their row: the first GET of such a
resource after a restart computes the rollout again (status `queued`/`running`, then `completed`).

Degraded mode. When the folder cannot be created or the index cannot be opened (a path that is a file, a
read-only or full disk, a corrupt index), the store logs one error and keeps its index in memory; when a
rollout file cannot be written (`StoreWriteError`), the service answers from memory and logs a warning.
Requests are answered either way; only persistence across restarts is lost.

Object storage. `open_store` opens this store for a folder and `service.objectstore.ObjectForecastStore`
(the same methods, the index as JSON objects) for a URL such as `s3://bucket/prefix`. Both hold the leases
through which several replicas on one store compute each rollout once (`service.lease`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# netCDF-C (under netCDF4 and xarray) is not thread-safe, and xarray's own locks do not cover closing files
# from another thread: two rollout workers writing or reading NetCDF at once crashed the server with a
# segfault in libnetcdf under the soak test. Every NetCDF open/read/write of the service holds this lock;
# it is process-wide because the C library's state is.
NETCDF_LOCK = threading.RLock()

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rollouts (
    key TEXT PRIMARY KEY, model_id TEXT NOT NULL, model_sha256 TEXT NOT NULL, run TEXT NOT NULL,
    hours INTEGER NOT NULL, file TEXT NOT NULL, computed_at REAL NOT NULL, seconds REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS forecasts (
    id TEXT PRIMARY KEY, rollout_key TEXT NOT NULL, model_id TEXT NOT NULL, model_sha256 TEXT NOT NULL,
    run TEXT NOT NULL, hours INTEGER NOT NULL, variables TEXT NOT NULL, bbox TEXT, created_at REAL NOT NULL
);
"""


@dataclass(frozen=True)
class RunKey:
    """What identifies one rollout: the model (by content), the init time and the horizon in hours."""

    model_id: str
    model_sha256: str
    run: str
    hours: int

    @property
    def digest(self) -> str:
        text = f"{self.model_sha256}|{self.run}|{self.hours}"
        return hashlib.sha256(text.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class RolloutRecord:
    key: RunKey
    path: Path
    computed_at: float
    seconds: float


@dataclass(frozen=True)
class ForecastRecord:
    """A forecast resource: a rollout plus the subset (variables, bbox) a client asked for."""

    id: str
    key: RunKey
    variables: tuple[str, ...]
    bbox: tuple[float, float, float, float] | None
    created_at: float


def forecast_id(key: RunKey, variables: tuple[str, ...], bbox: tuple[float, ...] | None) -> str:
    text = json.dumps([key.digest, list(variables), None if bbox is None else list(bbox)])
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def is_valid_id(text: str) -> bool:
    return len(text) == 24 and all(c in "0123456789abcdef" for c in text)


class StoreWriteError(RuntimeError):
    """The store could not write a rollout file or an index row (full or read-only disk, ...)."""


def process_alive(pid: int) -> bool:
    """Whether process `pid` of this machine runs (this process counts as not: its leftovers are stale)."""
    if pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _temp_owner_alive(name: str) -> bool:
    """Whether the process that named a temporary file `.{digest}.{pid}.{thread}.tmp.nc` still runs."""
    parts = name.split(".")
    return process_alive(int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else -1)


def _filesystem(protocol: str) -> Any:
    import fsspec

    return fsspec.filesystem(protocol)


def open_store(location: str | Path, *, storage_options: Mapping[str, Any] | None = None) -> Any:
    """The forecast store at `location`: an object-storage URL (`s3://bucket/prefix`, through fsspec) or a
    local folder. Both answer the same methods (`ForecastStore`'s) and both hold the leases several
    replicas on one store take (`service.lease`): `fs` and `lease_root` say where."""
    from fno_forecast.data.remote import is_url
    from service.objectstore import ObjectForecastStore

    if is_url(str(location)):
        return ObjectForecastStore(str(location), storage_options=storage_options)
    return ForecastStore(Path(location))


class ForecastStore:
    """Files under `root/rollouts/`, index in `root/index.sqlite`. Thread-safe (one lock, short queries)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.files = self.root / "rollouts"
        self._lock = threading.Lock()
        self.problem: str | None = None
        self.fs = _filesystem("file")
        self.lease_root = str(self.root.resolve() / "leases")
        try:
            self.files.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.root / "index.sqlite", check_same_thread=False)
            with self._lock, self._db:
                self._db.executescript(_SCHEMA)
            self._recover()
        except (OSError, sqlite3.Error) as error:
            self.problem = f"forecast store {self.root}: {error}"
            log.error("%s; forecasts are computed and served but not stored", self.problem)
            self._db = sqlite3.connect(":memory:", check_same_thread=False)
            self._db.executescript(_SCHEMA)
            self.fs, self.lease_root = _filesystem("memory"), f"/fno-leases-{uuid.uuid4().hex}"

    @property
    def writable(self) -> bool:
        return self.problem is None

    def _recover(self) -> None:
        """Delete temporary files of dead processes and index rows whose file is missing."""
        removed = 0
        for temp in self.files.glob(".*.tmp.nc"):
            if not _temp_owner_alive(temp.name):
                temp.unlink(missing_ok=True)
                removed += 1
        with self._lock, self._db:
            rows = self._db.execute("SELECT key, file FROM rollouts").fetchall()
            missing = [(key,) for key, name in rows if not (self.files / name).is_file()]
            self._db.executemany("DELETE FROM rollouts WHERE key = ?", missing)
        if removed or missing:
            log.warning(
                "forecast store %s: removed %d unfinished temporary file(s) and %d index row(s) without a file",
                self.root,
                removed,
                len(missing),
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- rollouts -------------------------------------------------------------------------------------------
    def rollout(self, key: RunKey) -> RolloutRecord | None:
        with self._lock:
            row = self._db.execute(
                "SELECT file, computed_at, seconds FROM rollouts WHERE key = ?", (key.digest,)
            ).fetchone()
        if row is None:
            return None
        path = self.files / row[0]
        if not path.is_file():
            return None
        return RolloutRecord(key, path, float(row[1]), float(row[2]))

    def covering(self, key: RunKey) -> RolloutRecord | None:
        """The shortest stored rollout of the same model and run that is at least as long as `key`'s."""
        with self._lock:
            rows = self._db.execute(
                "SELECT model_id, hours, file, computed_at, seconds FROM rollouts "
                "WHERE model_sha256 = ? AND run = ? AND hours >= ? ORDER BY hours",
                (key.model_sha256, key.run, key.hours),
            ).fetchall()
        for model_id, hours, name, computed_at, seconds in rows:
            path = self.files / name
            if path.is_file():
                found = RunKey(model_id, key.model_sha256, key.run, int(hours))
                return RolloutRecord(found, path, float(computed_at), float(seconds))
        return None

    def local_file(self, record: RolloutRecord) -> Path:
        """The rollout's file on local disk: here, where it is stored. FileNotFoundError when it is gone."""
        if not record.path.is_file():
            raise FileNotFoundError(record.path)
        return record.path

    def put_rollout(self, key: RunKey, write: Callable[[Path], None], *, seconds: float) -> RolloutRecord:
        """Write a rollout atomically with `write(temp_path)` (which must fsync or close its file), then index it.

        Raises `StoreWriteError` naming the file when the disk refuses (full, read-only, no folder).
        """
        name = f"{key.digest}.nc"
        final = self.files / name
        if self.problem is not None:
            raise StoreWriteError(self.problem)
        temp = self.files / f".{key.digest}.{os.getpid()}.{threading.get_ident()}.tmp.nc"
        try:
            with NETCDF_LOCK:
                write(temp)
            with open(temp, "rb+") as handle:
                os.fsync(handle.fileno())
            os.replace(temp, final)
            computed_at = time.time()
            with self._lock, self._db:
                self._db.execute(
                    "INSERT OR REPLACE INTO rollouts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        key.digest,
                        key.model_id,
                        key.model_sha256,
                        key.run,
                        key.hours,
                        name,
                        computed_at,
                        seconds,
                    ),
                )
        except (
            OSError,
            sqlite3.Error,
            RuntimeError,
            ValueError,
        ) as error:  # netCDF reports a full disk as RuntimeError
            raise StoreWriteError(f"forecast store: cannot write {final}: {error}") from error
        finally:
            temp.unlink(missing_ok=True)
        return RolloutRecord(key, final, computed_at, seconds)

    def delete_rollout(self, key: RunKey) -> None:
        with self._lock, self._db:
            self._db.execute("DELETE FROM rollouts WHERE key = ?", (key.digest,))
        (self.files / f"{key.digest}.nc").unlink(missing_ok=True)

    def delete_run(self, model_sha256: str, run: str) -> int:
        """Remove every stored rollout of one model's run (any horizon); returns how many."""
        with self._lock, self._db:
            rows = self._db.execute(
                "SELECT key, file FROM rollouts WHERE model_sha256 = ? AND run = ?", (model_sha256, run)
            ).fetchall()
            self._db.executemany("DELETE FROM rollouts WHERE key = ?", [(key,) for key, _ in rows])
        for _, name in rows:
            (self.files / name).unlink(missing_ok=True)
        return len(rows)

    # -- forecast resources ---------------------------------------------------------------------------------
    def add_forecast(self, record: ForecastRecord) -> None:
        """Index a forecast resource; `StoreWriteError` when the index refuses the row (full disk, ...)."""
        key = record.key
        try:
            self._insert_forecast(record, key)
        except sqlite3.Error as error:
            raise StoreWriteError(
                f"forecast store {self.root}: cannot record forecast {record.id}: {error}"
            ) from error

    def _insert_forecast(self, record: ForecastRecord, key: RunKey) -> None:
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR IGNORE INTO forecasts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.id,
                    key.digest,
                    key.model_id,
                    key.model_sha256,
                    key.run,
                    key.hours,
                    json.dumps(list(record.variables)),
                    None if record.bbox is None else json.dumps(list(record.bbox)),
                    record.created_at,
                ),
            )

    def forecast(self, forecast_id: str) -> ForecastRecord | None:
        if not is_valid_id(forecast_id):
            return None
        with self._lock:
            row = self._db.execute(
                "SELECT model_id, model_sha256, run, hours, variables, bbox, created_at FROM forecasts "
                "WHERE id = ?",
                (forecast_id,),
            ).fetchone()
        if row is None:
            return None
        key = RunKey(row[0], row[1], row[2], int(row[3]))
        bbox: Any = None if row[5] is None else tuple(float(v) for v in json.loads(row[5]))
        return ForecastRecord(forecast_id, key, tuple(json.loads(row[4])), bbox, float(row[6]))

    def delete_forecast(self, forecast_id: str) -> ForecastRecord | None:
        """Remove a forecast resource; its rollout goes too when no other resource uses it."""
        record = self.forecast(forecast_id)
        if record is None:
            return None
        with self._lock, self._db:
            self._db.execute("DELETE FROM forecasts WHERE id = ?", (forecast_id,))
            others = self._db.execute(
                "SELECT COUNT(*) FROM forecasts WHERE rollout_key = ?", (record.key.digest,)
            ).fetchone()[0]
        if others == 0:
            self.delete_rollout(record.key)
        return record
