"""The epoch plan fills a time budget: sized from numbers, no clock involved."""

from __future__ import annotations

from fno_forecast.training.budget import USABLE_FRACTION, EpochPlan, plan_for_budget


def _estimate(plan: EpochPlan, *, tau: float, validation_s: float, windows) -> float:
    n1 = plan.samples_per_epoch or windows(1)
    total = plan.stage1_epochs * (n1 * tau + validation_s)
    for k in plan.rollout_steps:
        n = plan.rollout_samples_per_epoch or windows(k)
        total += min(n, windows(k)) * k * tau + validation_s
    return total + validation_s


def test_a_long_budget_adds_epochs_instead_of_stopping_early() -> None:
    windows = lambda k: 1000 - k  # noqa: E731
    plan = plan_for_budget(
        budget_s=600,
        seconds_per_sample_step=0.01,
        validation_s=2.0,
        windows=windows,
        curriculum=(2, 4),
        batch_size=8,
    )
    assert plan.stage1_epochs > 1 and plan.samples_per_epoch == 0
    assert plan.rollout_steps[:2] == (2, 4) and set(plan.rollout_steps[2:]) <= {4}
    used = _estimate(plan, tau=0.01, validation_s=2.0, windows=windows)
    assert 0.6 * 600 < used <= USABLE_FRACTION * 600 + 1e-6


def test_a_short_budget_caps_samples_and_keeps_within_it() -> None:
    windows = lambda k: 5000  # noqa: E731
    plan = plan_for_budget(
        budget_s=60,
        seconds_per_sample_step=0.01,
        validation_s=1.0,
        windows=windows,
        curriculum=(2, 4, 8),
        batch_size=8,
    )
    assert plan.stage1_epochs == 1 and 0 < plan.samples_per_epoch < 5000
    assert 0 < plan.rollout_samples_per_epoch < 5000
    used = _estimate(plan, tau=0.01, validation_s=1.0, windows=windows)
    assert 0.6 * 60 < used <= USABLE_FRACTION * 60 + 1e-6


def test_a_tiny_budget_still_trains_one_batch_per_epoch() -> None:
    plan = plan_for_budget(
        budget_s=1,
        seconds_per_sample_step=0.1,
        validation_s=1.0,
        windows=lambda k: 100,
        curriculum=(2, 4),
        batch_size=4,
    )
    assert plan.samples_per_epoch >= 4 and plan.rollout_steps == (2,) and plan.rollout_samples_per_epoch == 4
