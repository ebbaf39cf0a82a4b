"""Soak the service: a real `fno-forecast serve` on 127.0.0.1 driven by concurrent keep-alive clients mixing
cached point forecasts, new rollouts (distinct runs and horizons) and bad requests, for a bounded time.

Prints requests, status counts, errors, p50/p99 latency per kind and the server's RSS after the warm-up and
at the end (from /proc/PID/status):

    python -m benchmarks.soak [--seconds 120] [--warmup 15] [--clients 16] [--workers 2]

Serves the tiny test bundle over synthetic initial states, built in a temporary folder (run it from the
repository root with `-m`: the server helpers live in `tests/robustness/`).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from tests.robustness.liveserver import LiveServer, prepare_assets
from tests.robustness.soakload import INIT_STEPS, run_soak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="measured time after the warm-up")
    parser.add_argument(
        "--warmup", type=float, default=15.0, help="seconds of the same load before measuring"
    )
    parser.add_argument("--clients", type=int, default=16, help="concurrent keep-alive clients")
    parser.add_argument("--workers", type=int, default=2, help="rollout worker threads of the server")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bundle, init = prepare_assets(Path(tmp), n_steps=INIT_STEPS)
        server = LiveServer(
            bundle=bundle,
            initial_states=init,
            store_dir=Path(tmp) / "store",
            log_path=Path(tmp) / "server.log",
            workers=args.workers,
        ).start()
        try:
            result = run_soak(
                server.url, pid=server.pid, clients=args.clients, seconds=args.seconds, warmup_s=args.warmup
            )
        finally:
            server.stop()
        print(
            f"soak: {args.clients} clients, {args.warmup:.0f} s warm-up + {args.seconds:.0f} s, "
            f"server workers {args.workers}"
        )
        print(result.summary())
        for line in (result.server_errors + result.connection_errors + result.unexpected)[:10]:
            print("  ", line)
        failed = result.server_errors or result.connection_errors or result.unexpected
        return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
