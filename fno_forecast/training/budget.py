"""Size the epoch plan to a time budget, from a measured cost per sample-step.

With `--max-minutes` and no explicit epoch keys, the plan is chosen to fill the budget instead of
stopping when a fixed number of epochs is done: half of the usable time for one-step training (stage 1),
half for the rollout curriculum (stage 2). An epoch costs `samples * K * seconds_per_sample_step` plus one
validation; when the data allows more than one full pass in a stage's share, the stage gets more epochs
(stage 2 repeats its longest rollout), otherwise its epochs are capped at the samples that fit. The plan
is a pure function of its numbers, so tests drive it without timing anything, and it is written into the
resolved config (and the checkpoint), so a resumed run keeps the plan it started with.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch

from fno_forecast.models.stepper import Stepper
from fno_forecast.training.config import TrainConfig
from fno_forecast.training.data_setup import WindowCache
from fno_forecast.training.defaults import Choice, coprime_stride, is_coprime_stride

VALIDATION_SHARE = 0.04  # at most this fraction of the budget per validation pass, when its inits may thin
MIN_VALIDATION_INITS = 16
USABLE_FRACTION = 0.85  # the rest: the final validation, the lead calibration, the skill guard, the bundle
MAX_EPOCHS_PER_STAGE = 40


@dataclass(frozen=True)
class EpochPlan:
    stage1_epochs: int
    samples_per_epoch: int  # 0 = all windows
    rollout_steps: tuple[int, ...]
    rollout_samples_per_epoch: int  # 0 = all windows

    def describe(self) -> str:
        cap1 = self.samples_per_epoch or "all"
        cap2 = self.rollout_samples_per_epoch or "all"
        return (
            f"{self.stage1_epochs} one-step epoch(s) of {cap1} samples, rollout epochs "
            f"K={list(self.rollout_steps)} of {cap2} samples"
        )


def plan_for_budget(
    *,
    budget_s: float,
    seconds_per_sample_step: float,
    validation_s: float,
    windows: Callable[[int], int],
    curriculum: tuple[int, ...],
    batch_size: int,
) -> EpochPlan:
    """An epoch plan whose estimated time fills `USABLE_FRACTION` of `budget_s`.

    `windows(K)` is the number of training windows of K steps; `curriculum` the rollout lengths, shortest
    first (empty: one-step training only); `validation_s` the estimated time of one validation pass.
    """
    tau = max(seconds_per_sample_step, 1e-9)
    usable = USABLE_FRACTION * budget_s - validation_s  # the final validation of the best weights
    share1 = usable * (0.5 if curriculum else 1.0)
    share2 = usable - share1
    epochs1, cap1 = _stage(share1, windows(1), steps=1, tau=tau, validation_s=validation_s, batch=batch_size)
    if not curriculum:
        return EpochPlan(epochs1, cap1, (), 0)
    steps, cap2 = plan_rollouts(
        share_s=share2,
        seconds_per_sample_step=tau,
        validation_s=validation_s,
        windows=windows,
        curriculum=curriculum,
        batch_size=batch_size,
    )
    return EpochPlan(epochs1, cap1, steps, cap2)


def plan_rollouts(
    *,
    share_s: float,
    seconds_per_sample_step: float,
    validation_s: float,
    windows: Callable[[int], int],
    curriculum: tuple[int, ...],
    batch_size: int,
    seconds_per_sample: float = 0.0,
    max_epochs: int = MAX_EPOCHS_PER_STAGE,
) -> tuple[tuple[int, ...], int]:
    """`(rollout_steps, samples per rollout epoch or 0 for all)` that fill `share_s` seconds of stage 2.

    A sample of K steps costs `seconds_per_sample + K * seconds_per_sample_step` (the first is what does
    not grow with K: the optimiser step, the data, Python, shared by a batch's samples). Also how stage 2
    is re-planned once training has measured both (data, the optimiser and whatever else shares the
    machine included), so a budget is filled, not left idle.
    """
    tau = max(seconds_per_sample_step, 1e-9)
    overhead = max(seconds_per_sample, 0.0)
    steps = list(curriculum)
    if not steps:
        return (), 0
    per_pass = sum(windows(k) * (overhead + k * tau) + validation_s for k in steps)
    if per_pass <= share_s:
        longest = steps[-1]
        extra_cost = windows(longest) * (overhead + longest * tau) + validation_s
        while len(steps) < max_epochs and per_pass + extra_cost <= share_s:
            steps.append(longest)
            per_pass += extra_cost
        return tuple(steps), 0

    # Not even one full pass: cap every rollout epoch at the samples that fit (at least one batch).
    def fitting(steps: list[int]) -> int:
        sample_time = share_s - len(steps) * validation_s
        return int(sample_time / sum(overhead + k * tau for k in steps)) if sample_time > 0 else 0

    cap2 = fitting(steps)
    while cap2 < batch_size and len(steps) > 1:
        steps.pop()  # drop the longest rollouts first: a few short ones teach more than one long one
        cap2 = fitting(steps)
    return tuple(steps), max(cap2, batch_size)


def _stage(
    share: float, n_windows: int, *, steps: int, tau: float, validation_s: float, batch: int
) -> tuple[int, int]:
    """`(epochs, samples per epoch or 0 for all)` that fill `share` seconds."""
    full = n_windows * steps * tau + validation_s
    if full <= share:
        return min(MAX_EPOCHS_PER_STAGE, max(1, int(share // full))), 0
    cap = int(max(share - validation_s, 0.0) / (steps * tau))
    return 1, max(batch, min(cap, n_windows))


def _per_sample_seconds(
    stepper: torch.nn.Module,
    batch: dict[str, torch.Tensor],
    *,
    clock: Callable[[], float],
    repeats: int,
    backward: bool,
) -> float:
    """The fastest of `repeats` timed steps (the first warms up and is not counted) of a copy of
    `stepper` on `batch`, per sample: forward and backward in training mode, or forward alone in
    inference mode. The RNG state is restored, so the run that follows is the same whether or not it
    was planned."""
    probe: Any = copy.deepcopy(stepper)
    probe.train(backward)
    rng = torch.get_rng_state()
    timings = []
    with torch.inference_mode(not backward):
        for _ in range(max(repeats, 2)):
            start = clock()
            out = probe(batch["state"], time_hours=batch["time_hours"], previous=batch.get("previous"))
            if backward:
                ((out - batch["targets"][:, 0]) / probe.std).pow(2).mean().backward()
            timings.append(clock() - start)
    torch.set_rng_state(rng)
    return min(timings[1:]) / max(batch["state"].shape[0], 1)


def seconds_per_sample_step(
    stepper: torch.nn.Module, batch: dict[str, torch.Tensor], *, clock: Callable[[], float], repeats: int = 3
) -> float:
    """Seconds of one forward and backward step per sample, timed by `clock` on a copy of `stepper`."""
    return _per_sample_seconds(stepper, batch, clock=clock, repeats=repeats, backward=True)


def seconds_per_inference_step(
    stepper: torch.nn.Module, batch: dict[str, torch.Tensor], *, clock: Callable[[], float], repeats: int = 3
) -> float:
    """Seconds of one forward step per sample in inference mode (what validation, the lead calibration
    and the skill guard run). Measured, not taken as a fraction of the training step: on a 121 x 240
    grid of 14 channels it was half of it, not the third once assumed, and a validation planned at 133 s
    took 257."""
    return _per_sample_seconds(stepper, batch, clock=clock, repeats=repeats, backward=False)


def thinned_stride(total: int, *, wanted: int, minimum: int, steps_per_day: float, at_least: int = 1) -> int:
    """The stride (at least `at_least`) that keeps about `wanted` of `total` inits in time order, coprime
    with the steps per day, and never fewer than `minimum` inits where a larger stride than `at_least`
    would: made coprime, the stride may leave too few (84 six-hourly inits and 16 wanted: 6 becomes 7,
    13 inits), so the largest coprime one below it that keeps enough is taken (5: 17 inits)."""
    stride = max(at_least, coprime_stride(total, max(wanted, minimum), steps_per_day))
    while stride > at_least and (
        kept_inits(total, stride) < minimum or not is_coprime_stride(stride, steps_per_day)
    ):
        stride -= 1
    return stride


def kept_inits(total: int, stride: int) -> int:
    """How many of `total` inits every `stride`-th one keeps (the first always)."""
    return -(-total // max(stride, 1)) if total > 0 else 0


MIN_CALIBRATION_INITS = 16  # four blocks of four for its cross-fitted errors


def calibration_plan(
    config: TrainConfig,
    *,
    n_inits: int,
    seconds_per_init: float,
    allowance_s: float,
    steps_per_day: float,
) -> tuple[TrainConfig, Choice | None]:
    """The lead calibration's init stride sized so that its fit takes about `allowance_s`, at the
    `seconds_per_init` the validation passes measured (each init is one rollout of the longest lead), and
    why; `None` when the derived stride already fits. Never fewer than `MIN_CALIBRATION_INITS` inits: a
    calibration from too few would trust noise, so a budget too small for them is overrun, and said so.
    Without this a 121 x 240 grid of 14 channels fitted its 161 inits (about 20 minutes) after a
    3-minute budget."""
    stride = config.calibration_init_stride
    needed = kept_inits(n_inits, stride) * seconds_per_init
    if needed <= allowance_s or n_inits <= MIN_CALIBRATION_INITS:
        return config, None
    wanted = int(allowance_s / max(seconds_per_init, 1e-9))
    thinned = thinned_stride(
        n_inits, wanted=wanted, minimum=MIN_CALIBRATION_INITS, steps_per_day=steps_per_day, at_least=stride
    )
    kept = kept_inits(n_inits, thinned)
    over = "" if kept * seconds_per_init <= allowance_s else f", at least {MIN_CALIBRATION_INITS}: over it"
    why = (
        f"{kept} of {n_inits} inits at a measured {seconds_per_init:.1f} s each for the "
        f"{max(allowance_s, 0.0):.0f} s of the budget left to it{over}"
    )
    return replace(config, calibration_init_stride=thinned), Choice("calibration_init_stride", thinned, why)


def initial_plan(
    config: TrainConfig,
    *,
    stepper: Stepper,
    batch: dict[str, torch.Tensor],
    windows: WindowCache,
    lead_steps: tuple[int, ...],
    budget_s: float,
    clock: Callable[[], float],
    thin_validation: bool = False,
) -> tuple[TrainConfig, Choice]:
    """The config with its epoch plan sized to `budget_s` from a timed probe on `batch`, and why.

    With `thin_validation` (a derived `val_init_stride`), a validation pass that would take more than
    `VALIDATION_SHARE` of the budget validates every n-th init instead (at least `MIN_VALIDATION_INITS`):
    a 5-minute budget on a busy machine otherwise spends most of itself validating and trains nothing.
    """
    tau = seconds_per_sample_step(stepper, batch, clock=clock)
    longest = max(lead_steps)
    total = len(windows.validation(longest))
    per_init = longest * seconds_per_inference_step(stepper, batch, clock=clock)
    thinned = ""
    if thin_validation and kept_inits(total, config.val_init_stride) * per_init > VALIDATION_SHARE * budget_s:
        stride = thinned_stride(
            total,
            wanted=int(VALIDATION_SHARE * budget_s / max(per_init, 1e-9)),
            minimum=MIN_VALIDATION_INITS,
            steps_per_day=24.0 / stepper.step_hours,
            at_least=config.val_init_stride,
        )
        if kept_inits(total, stride) >= MIN_VALIDATION_INITS and stride > config.val_init_stride:
            config = replace(config, val_init_stride=stride)
            thinned = f"; validation every {stride}th init to keep a pass near {VALIDATION_SHARE:.0%} of it"
    validation_s = kept_inits(total, config.val_init_stride) * per_init
    plan = plan_for_budget(
        budget_s=budget_s,
        seconds_per_sample_step=tau,
        validation_s=validation_s,
        windows=lambda k: len(windows.train(k)),
        curriculum=tuple(config.rollout_steps),
        batch_size=config.batch_size,
    )
    planned = replace(
        config,
        stage1_epochs=plan.stage1_epochs,
        samples_per_epoch=plan.samples_per_epoch,
        rollout_steps=plan.rollout_steps,
        rollout_samples_per_epoch=plan.rollout_samples_per_epoch,
    )
    # the passes every run makes: the prior's validation, one per epoch and the skill guard's
    floor = ""
    if 3 * validation_s > budget_s:
        floor = (
            f"; the budget is under this grid's least run, three validation passes of ~{validation_s:.0f} s"
            f" (the prior's, an epoch's, the skill guard's): it will be overrun"
        )
    why = (
        f"fills {USABLE_FRACTION:.0%} of the {budget_s / 60:g}-minute budget at a measured "
        f"{tau * 1e3:.2f} ms per sample-step (validation ~{validation_s:.0f} s{thinned}{floor})"
    )
    return planned, Choice("epoch plan", plan.describe(), why)


@dataclass(frozen=True)
class SampleCost:
    """Seconds a training sample of K steps costs: `per_sample + K * per_step`."""

    per_sample: float
    per_step: float

    def describe(self) -> str:
        if self.per_sample == 0.0:
            return f"{self.per_step * 1e3:.2f} ms per sample-step"
        return f"{self.per_sample * 1e3:.2f} ms per sample + {self.per_step * 1e3:.2f} ms per step"


def fit_sample_cost(epochs: list[tuple[int, int, float]]) -> SampleCost:
    """The cost model from measured epochs `(K, samples, seconds)`: a least-squares line in K through the
    seconds per sample when epochs of two or more K were timed (both terms at least 0), else all of the
    cost per sample-step (what one-step epochs alone can tell)."""
    rows = [(k, seconds / samples) for k, samples, seconds in epochs if samples > 0]
    if not rows:
        return SampleCost(0.0, 1e-9)
    if len({k for k, _ in rows}) < 2:
        steps = sum(k * samples for k, samples, _ in epochs)
        return SampleCost(0.0, sum(seconds for _, _, seconds in epochs) / max(steps, 1))
    k = torch.tensor([r[0] for r in rows], dtype=torch.float64)
    t = torch.tensor([r[1] for r in rows], dtype=torch.float64)
    slope = float(((k - k.mean()) * (t - t.mean())).sum() / ((k - k.mean()) ** 2).sum())
    intercept = float(t.mean() - slope * k.mean())
    if slope <= 0 or intercept < 0:  # timing noise: a line through the origin (the cautious plan)
        return SampleCost(0.0, max(float((k * t).sum() / (k * k).sum()), 1e-9))
    return SampleCost(intercept, slope)


def replan_rollouts(
    config: TrainConfig,
    *,
    cost: SampleCost,
    validation_s: float,
    remaining_s: float,
    budget_s: float,
    windows: WindowCache,
    curriculum: tuple[int, ...],
    done: tuple[int, ...] = (),
) -> tuple[TrainConfig, Choice]:
    """Stage 2's epochs after the `done` ones re-sized to the `remaining_s` of the budget at the `cost`
    training has measured (data, the optimiser and whatever else shares the machine included), and why:
    a probe timed at a busy or an idle moment no longer leaves the budget idle or overruns it. Once after
    stage 1, and again after stage 2's first epoch, whose K tells the cost per sample from the cost per
    step (a batch of 4 one-step samples is mostly optimiser and Python, which a rollout does not repeat
    per step: planned at stage 1's cost per sample-step, a monthly set's stage 2 ended with 2 of its 5
    minutes unused)."""
    share = remaining_s - (1.0 - USABLE_FRACTION) * budget_s - validation_s
    steps, cap = (), config.rollout_samples_per_epoch if done else 0
    if share > 0:
        steps, cap = plan_rollouts(
            share_s=share,
            seconds_per_sample_step=cost.per_step,
            seconds_per_sample=cost.per_sample,
            validation_s=validation_s,
            windows=lambda k: len(windows.train(k)),
            curriculum=curriculum,
            batch_size=config.batch_size,
            max_epochs=MAX_EPOCHS_PER_STAGE - len(done),  # the stage's cap counts the epochs done
        )
    after = f"stage 2's first epoch (K={done[0]})" if done else "stage 1"
    why = (
        f"re-planned after {after} for the {remaining_s:.0f} s left, at its measured "
        f"{cost.describe()} and {validation_s:.0f} s per validation"
    )
    steps = done + steps
    plan = f"rollout epochs K={list(steps)} of {cap or 'all'} samples"
    return replace(config, rollout_steps=steps, rollout_samples_per_epoch=cap), Choice(
        "stage 2 plan", plan, why
    )
