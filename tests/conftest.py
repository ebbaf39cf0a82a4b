"""Shared test set-up. Fixtures live in `tests/fixtures/`, one module per area."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = [
    "tests.fixtures.data",
    "tests.fixtures.bundle",
]

REPO_ROOT = Path(__file__).resolve().parents[1]


def _shared_data_dir() -> Path:
    env = os.environ.get("FNO_SHARED_DATA")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only real data folder (`../shared/data` or `$FNO_SHARED_DATA`); skips where absent."""
    path = _shared_data_dir()
    if not (path / "SOURCES.md").is_file():
        pytest.skip(f"real data not found at {path} (set FNO_SHARED_DATA to the shared data folder)")
    return path


@pytest.fixture(scope="session")
def ncep_nc(shared_data: Path) -> Path:
    path = shared_data / "ncep_air_2013-2014.nc"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    return path
