"""The epoch plan fills a time budget: sized from numbers, no clock involved."""

from __future__ import annotations

import pytest
import torch

from fno_forecast.training.budget import (
    MAX_EPOCHS_PER_STAGE,
    USABLE_FRACTION,
    EpochPlan,
    SampleCost,
    calibration_plan,
    fit_sample_cost,
    initial_plan,
    kept_inits,
    plan_for_budget,
    replan_rollouts,
    thinned_stride,
)
from fno_forecast.training.config import TrainConfig


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


class _Windows:
    """Window counts per rollout length, as `WindowCache.train(k)` gives them, and of the validation
    period and the held-out tail (None: no tail)."""

    def __init__(self, n: int, *, validation: int = 0, holdout: int | None = None) -> None:
        self.n, self.validation_count, self.holdout_count = n, validation, holdout

    def train(self, steps: int) -> range:
        return range(self.n - steps)

    def validation(self, steps: int) -> range:
        return range(self.validation_count)

    def holdout(self, steps: int) -> range | None:
        return None if self.holdout_count is None else range(self.holdout_count)


def test_stage_two_is_replanned_from_the_cost_stage_one_measured() -> None:
    """A probe timed at an idle moment planned too little (or too much): stage 2 is re-sized to what is
    left of the budget at the real cost per sample-step, and a slower machine gets fewer samples."""
    config = TrainConfig(rollout_steps=(2,), rollout_samples_per_epoch=16, batch_size=8)
    common = dict(validation_s=3.0, budget_s=300.0, windows=_Windows(2000), curriculum=(2, 4, 8))
    fast, why = replan_rollouts(config, cost=SampleCost(0.0, 0.001), remaining_s=200.0, **common)
    assert fast.rollout_steps[:3] == (2, 4, 8) and fast.rollout_samples_per_epoch == 0
    assert why.key == "stage 2 plan" and "200 s left" in why.why
    share = 200.0 - (1 - USABLE_FRACTION) * 300.0 - 3.0
    used = sum(min(2000 - k, 2000) * k * 0.001 + 3.0 for k in fast.rollout_steps)
    assert 0.6 * share < used <= share + 1e-6  # fills what is left, within it
    slow, _ = replan_rollouts(config, cost=SampleCost(0.0, 0.05), remaining_s=200.0, **common)
    assert 0 < slow.rollout_samples_per_epoch < 2000
    assert sum(slow.rollout_steps) * slow.rollout_samples_per_epoch * 0.05 <= share
    spent, _ = replan_rollouts(config, cost=SampleCost(0.0, 0.01), remaining_s=40.0, **common)
    assert spent.rollout_steps == () and spent.total_epochs == spent.stage1_epochs


def test_the_cost_per_sample_is_told_from_the_cost_per_step() -> None:
    """Epochs of two rollout lengths separate what a sample costs once (optimiser, data, Python) from
    what each of its steps costs; one-step epochs alone put it all on the step, as before."""
    cost = fit_sample_cost([(1, 400, 400 * (0.008 + 0.002)), (2, 396, 396 * (0.008 + 2 * 0.002))])
    assert cost.per_sample == pytest.approx(0.008) and cost.per_step == pytest.approx(0.002)
    assert "per sample +" in cost.describe()
    alone = fit_sample_cost([(1, 400, 4.0), (1, 400, 4.4)])
    assert alone.per_sample == 0.0 and alone.per_step == pytest.approx(8.4 / 800)
    falling = fit_sample_cost([(1, 100, 1.0), (4, 100, 0.5)])  # a negative intercept: through the origin
    assert falling.per_sample == 0.0 and falling.per_step > 0


def test_stage_two_is_replanned_again_after_its_first_epoch() -> None:
    """Planned at stage 1's cost per sample-step, a small-batch stage 2 (mostly per-batch overhead)
    ended far inside its budget; re-planned with the cost split, it keeps its first epoch and fills the
    rest of what is left."""
    config = TrainConfig(stage1_epochs=10, rollout_steps=(2, 4, 6, 6), batch_size=4)
    cost = SampleCost(0.009, 0.001)  # a one-step sample 10 ms: 1 ms of it the step
    common = dict(validation_s=1.0, budget_s=300.0, windows=_Windows(286), curriculum=(4, 6))
    planned, why = replan_rollouts(config, cost=cost, remaining_s=150.0, done=(2,), **common)
    assert planned.rollout_steps[:3] == (2, 4, 6) and len(planned.rollout_steps) > len(config.rollout_steps)
    assert "first epoch (K=2)" in why.why and "per sample +" in why.why
    share = 150.0 - (1 - USABLE_FRACTION) * 300.0 - 1.0
    used = sum((286 - k) * (0.009 + k * 0.001) + 1.0 for k in planned.rollout_steps[1:])
    assert 0.8 * share < used <= share + 1e-6
    at_step_cost, _ = replan_rollouts(
        config, cost=SampleCost(0.0, 0.01), remaining_s=150.0, done=(2,), **common
    )
    assert len(at_step_cost.rollout_steps) < len(planned.rollout_steps)  # what stage 1 alone would plan
    cheap, _ = replan_rollouts(config, cost=SampleCost(0.0, 1e-6), remaining_s=150.0, done=(2,), **common)
    assert len(cheap.rollout_steps) == MAX_EPOCHS_PER_STAGE and cheap.rollout_steps[0] == 2


class _Probe(torch.nn.Module):
    """A stepper stand-in for the timing probe: one weight, a std buffer, 6-hourly steps."""

    step_hours = 6.0

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(1))
        self.register_buffer("std", torch.ones(1, 1, 1, 1))

    def forward(self, state: torch.Tensor, *, time_hours: torch.Tensor, previous: object) -> torch.Tensor:
        return state * self.weight


class _SplitWindows(_Windows):
    def validation(self, steps: int) -> range:
        return range(1000)


def test_a_validation_pass_that_would_eat_the_budget_validates_fewer_inits() -> None:
    batch = {
        "state": torch.zeros(4, 1, 2, 2),
        "targets": torch.zeros(4, 1, 1, 2, 2),
        "time_hours": torch.zeros(4),
    }
    ticks = iter(range(10_000))
    common = dict(
        stepper=_Probe(),
        batch=batch,
        windows=_SplitWindows(2000),
        lead_steps=(1, 4, 40),
        budget_s=300.0,
    )
    config = TrainConfig(val_init_stride=7, rollout_steps=(2, 4))
    # the clock advances 1 s a reading: 0.25 s per sample-step, a 40-step init ~3.3 s to validate
    kept, why = initial_plan(config, clock=lambda: float(next(ticks)), thin_validation=False, **common)
    assert kept.val_init_stride == 7 and "validation every" not in why.why
    thinned, why = initial_plan(config, clock=lambda: float(next(ticks)), thin_validation=True, **common)
    n_val = 1000 // thinned.val_init_stride + 1
    assert thinned.val_init_stride > 7 and n_val >= 16  # at least 16 inits stay
    assert n_val <= 17  # thinned to the minimum: even 16 inits take 53 s here, over 4% of the budget
    assert thinned.val_init_stride % 2 and thinned.val_init_stride % 4  # coprime with 4 steps a day
    assert "validation every" in why.why


def test_thinning_keeps_enough_inits_when_the_coprime_stride_would_leave_too_few() -> None:
    """84 six-hourly validation inits and a pass far over its share: stride 6 is made coprime (7), which
    leaves 13 inits, under the 16 kept; the largest coprime stride keeping 16 (5: 17 inits) is taken
    instead of none (a 121 x 240 grid then validated all 85 inits, 11 minutes a pass, in 3 minutes)."""
    batch = {
        "state": torch.zeros(4, 1, 2, 2),
        "targets": torch.zeros(4, 1, 1, 2, 2),
        "time_hours": torch.zeros(4),
    }

    class Windows(_SplitWindows):
        def validation(self, steps: int) -> range:
            return range(84)

    ticks = iter(range(10_000))
    common = dict(stepper=_Probe(), batch=batch, windows=Windows(2000), lead_steps=(1, 40), budget_s=180.0)
    thinned, why = initial_plan(
        TrainConfig(rollout_steps=(2,)), clock=lambda: float(next(ticks)), thin_validation=True, **common
    )
    assert thinned.val_init_stride == 5 and 84 // 5 + 1 >= 16
    assert "validation every 5th init" in why.why


def test_the_lead_calibration_is_thinned_to_the_budget_left_at_the_measured_cost() -> None:
    """161 six-hourly calibration inits at 15 s each (a 121 x 240 grid of 14 channels): fitted whole,
    40 minutes after a short budget; thinned to what the allowance holds, coprime with 4 steps a day."""
    config = TrainConfig(calibration_init_stride=1)
    common = dict(n_inits=161, seconds_per_init=15.0, steps_per_day=4.0)
    fitted, choice = calibration_plan(config, allowance_s=300.0, **common)
    stride = fitted.calibration_init_stride
    assert choice is not None and choice.value == stride
    assert kept_inits(161, stride) * 15.0 <= 300.0 and kept_inits(161, stride) >= 16
    assert stride % 2 == 1 and "over it" not in choice.why


def test_the_lead_calibration_keeps_its_least_inits_and_says_the_budget_is_overrun() -> None:
    config = TrainConfig(calibration_init_stride=1)
    fitted, choice = calibration_plan(
        config, n_inits=161, seconds_per_init=15.0, allowance_s=60.0, steps_per_day=4.0
    )
    assert choice is not None
    kept = kept_inits(161, fitted.calibration_init_stride)
    assert 16 <= kept <= 20 and "at least 16: over it" in choice.why


def test_a_calibration_that_fits_its_allowance_is_left_as_derived() -> None:
    config = TrainConfig(calibration_init_stride=3)
    fitted, choice = calibration_plan(
        config, n_inits=161, seconds_per_init=1.0, allowance_s=60.0, steps_per_day=4.0
    )
    assert choice is None and fitted.calibration_init_stride == 3
    # a smaller set than the least it keeps is never thinned
    fitted, choice = calibration_plan(
        config, n_inits=12, seconds_per_init=60.0, allowance_s=1.0, steps_per_day=4.0
    )
    assert choice is None and fitted.calibration_init_stride == 3


def test_thinned_stride_never_goes_below_the_stride_it_starts_from() -> None:
    assert thinned_stride(1000, wanted=500, minimum=16, steps_per_day=4.0, at_least=7) == 7
    assert thinned_stride(84, wanted=16, minimum=16, steps_per_day=4.0) == 5  # 7 would keep 12
    assert kept_inits(84, 5) == 17 and kept_inits(0, 3) == 0


def _planner(*, derived_cal_stride: bool, holdout: int | None = 300):
    from fno_forecast.training.run_plan import RunPlanner

    return RunPlanner(
        windows=_Windows(1040, validation=100, holdout=holdout),  # type: ignore[arg-type]
        lead_steps=(1, 40),
        world_size=1,
        steps_per_day=4.0,
        curriculum=(),
        derived_val_stride=False,
        derived_cal_stride=derived_cal_stride,
    )


def test_training_stops_early_enough_for_what_follows_it_to_fit_the_budget() -> None:
    """A validation pass of 100 inits in 10 s: 0.1 s an init. After training the run validates (10 s),
    runs the skill guard (about one pass, 10 s) and fits the lead calibration: 300 held-out inits at the
    config's stride 1 (30 s), 16 where the budget may thin them (1.6 s), none without a calibration."""
    config = TrainConfig(calibration_init_stride=1)
    explicit = _planner(derived_cal_stride=False)
    assert explicit.after_training_s(config, validation_s=10.0) == pytest.approx(50.0)
    assert _planner(derived_cal_stride=True).after_training_s(config, validation_s=10.0) == pytest.approx(
        21.6
    )
    off = TrainConfig(lead_calibration=False)
    assert explicit.after_training_s(off, validation_s=10.0) == pytest.approx(20.0)
    stride = TrainConfig(calibration_init_stride=3)  # every 3rd of 300: 100 inits
    assert explicit.after_training_s(stride, validation_s=10.0) == pytest.approx(30.0)
    assert explicit.after_training_s(config, validation_s=0.0) == 0.0  # nothing measured yet
    # without a held-out tail the calibration fits on the network's own windows (1000)
    no_tail = _planner(derived_cal_stride=False, holdout=None)
    assert no_tail.after_training_s(config, validation_s=10.0) == pytest.approx(120.0)
    # a 90 s budget: training stops once 40 s are gone, not at 80 s (its one validation pass kept before)
    assert not explicit.stops_training(config, elapsed_s=39.0, validation_s=10.0, budget_s=90.0)
    assert explicit.stops_training(config, elapsed_s=41.0, validation_s=10.0, budget_s=90.0)
    assert explicit.reserved_s == pytest.approx(50.0)
