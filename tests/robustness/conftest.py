"""Robustness test set-up: the service fixtures (tiny bundle over synthetic initial states) and live servers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.robustness.liveserver import LiveServer
from tests.service.conftest import (  # noqa: F401 (fixtures shared with the service tests)
    client,
    counting,
    initial_states_nc,
    service_settings,
)


@pytest.fixture()
def live_server(
    tmp_path: Path,
    tiny_bundle: Path,
    initial_states_nc: Path,  # noqa: F811
) -> Iterator[Callable[..., LiveServer]]:
    """A factory of started `fno-forecast serve` processes on loopback; every one is stopped afterwards."""
    started: list[LiveServer] = []

    def start(*, store_dir: Path | None = None, initial_states: Path | None = None, **options) -> LiveServer:
        server = LiveServer(
            bundle=tiny_bundle,
            initial_states=initial_states or initial_states_nc,
            store_dir=store_dir or tmp_path / "store",
            log_path=tmp_path / f"server-{len(started)}.log",
            **options,
        )
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()
