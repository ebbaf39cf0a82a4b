"""The forecast cycle's latency: from an analysis fed in to its run computed, stored and made the latest.

Replays the bundled NCEP states (the bundled model) in-process, one analysis per tick, and prints for each
the seconds from the tick to the run's `completed`, the time of the first point answer from the new run,
and the running scorecard (latitude-weighted RMSE per lead over the runs verified so far):

    python benchmarks/live_cycle.py [--steps 6]
"""

from __future__ import annotations

import argparse
import tempfile
import time

from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import ServiceSettings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6, help="analyses to replay after the warm-up")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as store:
        settings = ServiceSettings(replay="bundled", replay_every_s=3600, store_dir=store)
        with TestClient(create_app(settings)) as client:
            feed = client.app.state.services.replay
            for _ in range(args.steps):
                started = time.perf_counter()
                if not feed.tick():
                    break
                while (body := client.get("/v1/runs").json())["runs"][-1]["status"] != "completed":
                    time.sleep(0.01)
                seconds = time.perf_counter() - started
                print(
                    f"run {body['latest']} (+{body['forecast_hours']} h): completed {seconds:.2f} s after arrival"
                )
            started = time.perf_counter()
            point = client.get("/v1/forecast", params={"latitude": 40, "longitude": -100, "hourly": "air"})
            print(
                f"first point answer from run {point.json()['run']}: {1000 * (time.perf_counter() - started):.1f} ms"
            )
            card = client.get("/v1/verification").json()
            for row in card["per_lead"]:
                rmse = {system: values["air"] for system, values in row["rmse"].items()}
                print(f"+{row['lead_hours']:g} h over {row['runs']} run(s): RMSE {rmse}")


if __name__ == "__main__":
    main()
