"""The CI-sized retraining suite: defaults only on a tiny hourly set, scored after its validation period.

The budget is timed by a clock the test controls (a fixed tick per reading), so the plan and where the
run stops do not depend on the machine's speed.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.retrain_suite import format_table, goal_met, prepare, run_case, tiny_cases, versus_better


class TickingClock:
    def __init__(self, tick: float) -> None:
        self.now, self.tick = 0.0, tick

    def __call__(self) -> float:
        self.now += self.tick
        return self.now


def test_tiny_hourly_retrain_beats_persistence_after_its_validation_period(tmp_path: Path) -> None:
    case = tiny_cases()[0]
    data = prepare(case, tmp_path)
    result = run_case(case, data, tmp_path / "run", minutes=0.05, clock=TickingClock(0.005))
    assert result["model"] == "fno" and result["step_hours"] == 1.0
    leads = [row["lead_hours"] for row in result["rows"]]
    assert leads == [6, 24]
    for row in result["rows"]:
        assert row["model"] < row["persistence"], row
    assert goal_met([{"model": 1.0, "persistence": 2.0, "climatology": 1.5}])
    assert not goal_met([{"model": 1.6, "persistence": 2.0, "climatology": 1.5}])
    for row in result["rows"]:  # the paired interval of the model less persistence is drawn
        low, high = row["versus"]["persistence"]["ci95"]
        assert low <= row["versus"]["persistence"]["difference"] <= high
    table = format_table([result])
    assert "| hourly-tiny | 8x12 | 1 h | 1 | fno |" in table
    assert all(f"| {versus_better(row)} |" in table for row in result["rows"])
