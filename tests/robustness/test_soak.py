"""A bounded soak: concurrent clients on a real server over loopback; no 5xx, no dropped connection,
bounded memory."""

from __future__ import annotations

import pytest

from tests.fixtures.bundle import write_initial_states
from tests.robustness.soakload import INIT_STEPS, run_soak


@pytest.mark.slow
def test_soak_mixed_load_holds(live_server, tmp_path) -> None:
    init = write_initial_states(tmp_path / "init.nc", n_steps=INIT_STEPS)
    server = live_server(workers=2, max_queue=8, initial_states=init)
    result = run_soak(server.url, pid=server.pid, clients=8, seconds=25.0, warmup_s=8.0)
    print("\n" + result.summary())
    assert not result.server_errors, result.server_errors[:5]
    assert not result.connection_errors, result.connection_errors[:5]
    assert not result.unexpected, result.unexpected[:5]
    assert result.kinds["cached"] > 200 and result.new_rollouts > 5 and result.kinds["bad"] > 20
    assert result.rss_growth < 0.10, result.summary()
