"""Where analyses come from: the `--data` file, folder or glob, polled for files that appear, and uploads.

Files are expected to arrive atomically (written under a temporary name, then renamed), so a name that
appears is a complete file: names starting with `.` and names without an analysis suffix (`.tmp`,
`.part`) are never read. Polling is used rather than a watcher library: it works the same on every file
system (network mounts included), needs no thread of its own, and a test drives it by calling `poll()`.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

SUFFIXES = (".nc", ".nc4", ".netcdf", ".cdf", ".grib", ".grib2", ".grb", ".grb2", ".zarr")
UPLOAD_SUFFIXES = tuple(s for s in SUFFIXES if s != ".zarr")  # a Zarr store is a folder, not one body
UPLOAD_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
GLOB_CHARS = "*?["


def is_analysis_name(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(SUFFIXES)


def is_pattern(data: Path) -> bool:
    return any(char in str(data) for char in GLOB_CHARS)


def is_watched(data: Path | None) -> bool:
    """Whether `--data` names a folder or a glob (watched for new files) rather than one file or store."""
    if data is None:
        return False
    return is_pattern(data) or (data.is_dir() and data.suffix.lower() != ".zarr")


def list_sources(data: Path) -> list[Path]:
    """The analysis files `--data` names, by name: the file itself, a folder's analysis files (not
    recursing; a `.zarr` folder is one store), or a glob's matches."""
    if is_pattern(data):
        found = [Path(p) for p in glob.glob(str(data))]
    elif is_watched(data):
        found = list(data.iterdir())
    else:
        return [data]
    return sorted((p for p in found if is_analysis_name(p.name)), key=lambda p: p.name)


def _signature(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


class FolderPoller:
    """New or replaced analysis files under a folder or glob, one `poll()` at a time."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self._seen: dict[str, tuple[int, int]] = {}

    def mark_seen(self, paths: list[Path]) -> None:
        for path in paths:
            try:
                self._seen[str(path)] = _signature(path)
            except OSError:
                continue

    def poll(self) -> list[Path]:
        """Files that appeared (or were replaced) since the last poll, by name."""
        fresh = []
        for path in list_sources(self.data):
            try:
                signature = _signature(path)
            except OSError:  # renamed or removed between listing and looking
                continue
            if self._seen.get(str(path)) != signature:
                self._seen[str(path)] = signature
                fresh.append(path)
        return fresh


def upload_folder(data: Path | None, store_dir: Path | str) -> Path | None:
    """Where uploads go: the watched folder (so a restart reads them again), else the store's `analyses/`;
    None when there is neither (a store on object storage holds rollouts, not analyses)."""
    if data is not None and not is_pattern(data) and is_watched(data):
        return data
    return store_dir / "analyses" if isinstance(store_dir, Path) else None


def check_upload_name(name: str | None) -> str | None:
    """The problem with an upload's file name, None when it is fine."""
    if not name:
        return "give the file name, e.g. ?name=analysis-2026-11-29T00.nc"
    if not UPLOAD_NAME.match(name) or not name.lower().endswith(UPLOAD_SUFFIXES):
        return f"use letters, digits, '_', '.', '-' and one of the suffixes {list(UPLOAD_SUFFIXES)}"
    return None


async def receive_upload(chunks: AsyncIterator[bytes], *, folder: Path, name: str) -> Path:
    """Write an upload under a temporary name in `folder` (fsynced) and return it; `place` renames it.

    The temporary name starts with `.`, so the folder's poller never reads a half-written upload.
    """
    folder.mkdir(parents=True, exist_ok=True)
    temp = folder / f".{name}.{os.getpid()}.upload"
    try:
        with open(temp, "wb") as handle:
            async for chunk in chunks:
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return temp
