"""Defaults that follow the data: every key the user did not set is chosen from the data, with a reason.

A key set in the TOML file or on the command line always wins (the bundled NCEP config sets them all and
keeps producing the same model); the rest is derived here from the facts of the data and the split:

- `model = "auto"`: SFNO on a global grid with both poles (equiangular), FNO otherwise.
- `climatology_annual`: one harmonic per whole year the training period covers, at most 3; none under a
  year (annual harmonics fitted on part of a cycle extrapolate: a 3-week fit of 3 annual harmonics swings by
  tens of kelvin a week later). A full year has seen every season once, enough for the 2 coefficients per
  point of one harmonic, and a periodic fit is then never evaluated at a phase it did not see. An explicit
  annual term on under a year of data is an error for the same reason. With two whole years or more the
  count is then cross-validated, leaving one year out at a time (`training.data_setup`,
  `climatology.annual_terms_by_year`): harmonics that only fit the years' own slow anomalies go.
- `climatology_diurnal`: 0 for daily or coarser steps (every time has the same hour) and under 2 days of
  data; otherwise half the steps per day, at most 4 (6-hourly: 2; hourly: 4). With neither term the
  climatology is the training mean (per hour of day when the step is sub-daily), valid at any time.
- `val_leads_hours`: 6, 24, 72, 120, 240 h rounded up to whole steps (1, 3, 6 steps when that gives fewer
  than 3 leads, e.g. monthly data), keeping those whose rollout fits the validation period; an explicit lead
  that does not fit is an error naming the longest that does.
- width: 32 up to 64 x 128 points, 64 above, and at least 8 per channel (rounded up to 16, at most 128).
- `batch_size`: a power of two near a 64th of the training windows, 4..32, and no more than the network's
  activations fit in `max_memory_gb` (`training.memory`: an estimate per sample from the width, layers
  and grid); `activation_checkpointing` on when a batch of the longest rollouts would not fit without it;
  `val_batch_size` the inference batch that fits, at most 64.
- curriculum: rollout lengths 2, 4, 8, ... up to the longest validation lead (at most 40 steps: a lead the
  rollouts never reach is where errors grow untrained); with a time budget the number of epochs and
  samples per epoch are sized to fill it (`plan_for_budget`, which drops the longest rollouts first).
- strides: at most ~128 validation inits and ~256 calibration inits, coprime with the steps per day so
  every hour of day is scored.
- `calibration_holdout`: the last 15% of the training steps, and at least enough for 32 inits of the
  longest validation lead, are held out of the network's training for the lead calibration; none when
  that would take over a third of the training period (the calibration's factors alone are then
  fitted in sample).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from fno_forecast.climatology import HOURS_PER_YEAR
from fno_forecast.data.schema import GridInfo
from fno_forecast.data.timeaxis import DEFAULT_LEADS_HOURS, detect_step, period_mask, times_to_hours
from fno_forecast.data.windows import window_starts
from fno_forecast.errors import ConfigError
from fno_forecast.models.stepper import stepper_in_channels
from fno_forecast.training.config import TrainConfig
from fno_forecast.training.memory import MemoryPlan, estimate_memory, plan_for_memory

DAYS_PER_YEAR = HOURS_PER_YEAR / 24.0
MAX_ROLLOUT_STEPS = 40  # the budget planner drops the longest rollouts first when they do not fit


@dataclass(frozen=True)
class Choice:
    """One derived (or checked) setting: the key, its value and why."""

    key: str
    value: Any
    why: str

    def to_dict(self) -> dict[str, Any]:
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return {"key": self.key, "value": value, "why": self.why}


@dataclass(frozen=True)
class DataFacts:
    """What the defaults depend on, measured on the split data."""

    times: np.ndarray
    train_period: str
    val_period: str
    step_hours: float
    step_months: int
    grid: GridInfo
    n_channels: int

    @property
    def train_times(self) -> np.ndarray:
        return self.times[period_mask(self.times, self.train_period)]

    @property
    def train_days(self) -> float:
        hours = times_to_hours(self.train_times)
        return float(hours[-1] - hours[0] + self.step_hours) / 24.0 if hours.size else 0.0

    @property
    def steps_per_day(self) -> float:
        return 24.0 / self.step_hours

    def windows(self, steps: int, *, period: str, use_history: bool) -> int:
        return int(window_starts(self.times, target_steps=steps, use_history=use_history, period=period).size)


def all_keys() -> frozenset[str]:
    return frozenset(f.name for f in fields(TrainConfig))


def has_both_poles(grid: GridInfo) -> bool:
    lat = np.asarray(grid.lat, dtype=np.float64)
    return bool(grid.is_global and abs(lat.max() - 90.0) < 1e-6 and abs(lat.min() + 90.0) < 1e-6)


def whole_years(days: float) -> int:
    """Whole years a span of `days` covers, allowing a day short of 365.2425: a calendar year (365 days)
    or twelve monthly means (their span counts the last month's step) covers every phase of the annual
    cycle."""
    return int(math.floor((days + 1.0) / DAYS_PER_YEAR))


def climatology_terms(facts: DataFacts) -> tuple[int, int, str, str]:
    """`(annual, diurnal, why annual, why diurnal)` from the span and step of the training period."""
    years = facts.train_days / DAYS_PER_YEAR
    annual = min(3, whole_years(facts.train_days))
    sub_daily = facts.step_hours < 24.0 - 1e-9
    diurnal = min(4, int(facts.steps_per_day // 2)) if sub_daily and facts.train_days >= 2.0 else 0
    span = f"{years:.1f} years" if annual >= 1 else f"{facts.train_days:.1f} days"
    why_annual = f"{span} of training data: " + (
        "under a full year, none (the fit would extrapolate to unseen seasons)"
        if annual == 0
        else "one per whole year covered, at most 3 (then cross-validated over the years)"
    )
    why_diurnal = f"step {facts.step_hours:g} h: " + (
        "daily or coarser, none" if not sub_daily else "half the steps per day, at most 4"
    )
    if annual == 0:
        why_diurnal += "; with no annual term the climatology is the training mean" + (
            " per hour of day" if diurnal else ""
        )
    return annual, diurnal, why_annual, why_diurnal


def check_climatology(config: TrainConfig, facts: DataFacts) -> None:
    """An explicit climatology that its data cannot support is a ConfigError."""
    if config.climatology_annual > 0 and whole_years(facts.train_days) < 1:
        raise ConfigError(
            f"climatology_annual = {config.climatology_annual}: the training period {facts.train_period} spans "
            f"{facts.train_days:.1f} days; annual harmonics need at least a year of data (set 0)"
        )
    if config.climatology_diurnal > 0 and facts.step_hours >= 24.0 - 1e-9:
        raise ConfigError(
            f"climatology_diurnal = {config.climatology_diurnal}: the data step is {facts.step_hours:g} h; "
            "diurnal harmonics need a sub-daily step (set 0)"
        )


def validation_leads(
    config: TrainConfig, facts: DataFacts, *, explicit: bool
) -> tuple[tuple[float, ...], str]:
    """Lead hours to validate at and why; ConfigError when an explicit lead cannot fit."""
    use_history = config.use_history

    def fits(steps: int) -> bool:
        return facts.windows(steps, period=facts.val_period, use_history=use_history) > 0

    longest = 0
    for steps in range(1, 4096):
        if not fits(steps):
            break
        longest = steps
    step = facts.step_hours
    if longest == 0:
        raise ConfigError(
            f"val_period {facts.val_period!r}: not even a 1-step rollout{' with history' if use_history else ''} "
            "fits in it; give a longer validation period"
        )
    if explicit:
        for hours in config.val_leads_hours:
            steps = int(round(hours / step))
            if steps > longest:
                raise ConfigError(
                    f"val_leads_hours: {hours:g} h ({steps} steps) does not fit the validation period "
                    f"{facts.val_period}; the longest lead that fits is {longest * step:g} h ({longest} steps)"
                )
        return tuple(config.val_leads_hours), "given"
    wanted = sorted({max(1, math.ceil(h / step - 1e-9)) for h in DEFAULT_LEADS_HOURS})
    if len(wanted) < 3:
        wanted = [1, 3, 6]
    kept = [s for s in wanted if s <= longest]
    dropped = [s for s in wanted if s > longest]
    if not kept:
        kept = [longest]
    why = f"default leads of {', '.join(f'{s * step:g}' for s in wanted)} h"
    if dropped:
        why += (
            f"; {', '.join(f'{s * step:g}' for s in dropped)} h left out: the validation period "
            f"{facts.val_period} fits rollouts of at most {longest * step:g} h"
        )
    return tuple(float(s * step) for s in kept), why


def hidden_width(grid: GridInfo, n_channels: int) -> tuple[int, str]:
    """The default hidden width for `grid` and `n_channels` channels, and why."""
    grid_width = 32 if grid.nlat * grid.nlon <= 64 * 128 else 64
    channel_width = min(128, 16 * math.ceil(8 * n_channels / 16))
    why = f"{grid.nlat} x {grid.nlon} grid ({grid_width}) and {n_channels} channel(s) (8 per channel: {channel_width})"
    return max(grid_width, channel_width), why


def _power_of_two(value: float, low: int, high: int) -> int:
    return int(min(high, max(low, 2 ** int(math.floor(math.log2(max(value, 1.0)))))))


def is_coprime_stride(stride: int, steps_per_day: float) -> bool:
    """Whether inits `stride` steps apart cycle through every hour of day (always, for daily or coarser
    or non-integer steps per day)."""
    per_day = int(round(steps_per_day))
    return per_day <= 1 or abs(steps_per_day - per_day) > 1e-9 or math.gcd(stride, per_day) == 1


def coprime_stride(n_inits: int, target: int, steps_per_day: float) -> int:
    stride = max(1, math.ceil(n_inits / target))
    while stride > 1 and not is_coprime_stride(stride, steps_per_day):
        stride += 1
    return stride


def memory_plan(config: TrainConfig, *, explicit: frozenset[str], facts: DataFacts, batch: int) -> MemoryPlan:
    """Batch sizes and activation checkpointing within `config.max_memory_gb` (`training.memory`);
    an explicit batch size is kept and only the other two follow it."""
    estimate = estimate_memory(
        model=config.model,
        config=config.model_config(),
        grid=facts.grid,
        in_channels=stepper_in_channels(
            facts.n_channels, use_history=config.use_history, use_climatology=config.use_climatology
        ),
        out_channels=facts.n_channels,
    )
    plan = plan_for_memory(
        estimate,
        max_memory_gb=config.max_memory_gb,
        batch_size=config.batch_size if "batch_size" in explicit else batch,
        longest_rollout=max(config.rollout_steps, default=1),
    )
    return dataclasses.replace(plan, batch_size=config.batch_size) if "batch_size" in explicit else plan


def derive_defaults(
    config: TrainConfig, *, explicit: frozenset[str], facts: DataFacts
) -> tuple[TrainConfig, tuple[Choice, ...]]:
    """The config with every non-explicit default chosen from `facts`, and the choices with reasons."""
    changes: dict[str, Any] = {}
    choices: list[Choice] = []

    def choose(key: str, value: Any, why: str) -> None:
        if key in explicit and key != "model":
            return
        changes[key] = value
        choices.append(Choice(key, value, why))

    if config.model == "auto":
        poles = has_both_poles(facts.grid)
        choose(
            "model",
            "sfno" if poles else "fno",
            "global grid with both poles: spherical harmonics fit it"
            if poles
            else "grid is not global with both poles (spherical harmonics need them): FNO",
        )
    annual, diurnal, why_annual, why_diurnal = climatology_terms(facts)
    choose("climatology_annual", annual, why_annual)
    choose("climatology_diurnal", diurnal, why_diurnal)
    leads, why = validation_leads(config, facts, explicit="val_leads_hours" in explicit)
    choose("val_leads_hours", leads, why)
    longest = max(int(round(h / facts.step_hours)) for h in leads)
    choose("hidden_channels", *hidden_width(facts.grid, facts.n_channels))
    n_train = facts.windows(1, period=facts.train_period, use_history=config.use_history)
    curriculum = []
    k = 2
    while k <= min(longest, MAX_ROLLOUT_STEPS):
        curriculum.append(k)
        k *= 2
    if longest > 1 and (not curriculum or curriculum[-1] < min(longest, MAX_ROLLOUT_STEPS)):
        curriculum.append(min(longest, MAX_ROLLOUT_STEPS))
    curriculum = [c for c in curriculum if facts.windows(c, period=facts.train_period, use_history=True) > 0]
    if not curriculum and config.stage1_epochs == 0:
        curriculum = [1]
    choose(
        "rollout_steps",
        tuple(curriculum),
        f"rollouts up to the longest validation lead ({longest} steps, at most {MAX_ROLLOUT_STEPS})",
    )
    by_windows = _power_of_two(n_train / 64, 4, 32)
    if not {"batch_size", "activation_checkpointing", "val_batch_size"} <= explicit:
        memory = memory_plan(
            dataclasses.replace(config, **changes), explicit=explicit, facts=facts, batch=by_windows
        )
        why = f"{n_train} training windows (about a 64th, 4..32)"
        if memory.batch_size < by_windows:
            why += f"; at most {memory.batch_size} by memory ({memory.why})"
        choose("batch_size", memory.batch_size, why)
        fits = "would not fit without it" if memory.activation_checkpointing else "fits"
        choose(
            "activation_checkpointing",
            memory.activation_checkpointing,
            f"a batch of the longest rollouts {fits} ({memory.why})",
        )
        choose(
            "val_batch_size",
            memory.val_batch_size,
            f"the inference batch that fits, at most 64 ({memory.why})",
        )
    n_val = facts.windows(longest, period=facts.val_period, use_history=config.use_history)
    choose(
        "val_init_stride",
        coprime_stride(n_val, 128, facts.steps_per_day),
        f"{n_val} validation inits: at most ~128 scored, a stride coprime with the steps per day",
    )
    holdout, why_holdout = calibration_holdout(facts, longest=longest)
    choose("calibration_holdout", holdout, why_holdout)
    fraction = config.calibration_holdout if "calibration_holdout" in explicit else holdout
    n_cal = (
        max(1, round(facts.train_times.size * fraction) - longest)
        if fraction
        else facts.windows(longest, period=facts.train_period, use_history=config.use_history)
    )
    choose(
        "calibration_init_stride",
        coprime_stride(n_cal, 256, facts.steps_per_day),
        f"{n_cal} inits for the lead calibration: at most ~256",
    )
    resolved = dataclasses.replace(config, **changes)
    check_climatology(resolved, facts)
    return resolved, tuple(choices)


HOLDOUT_FRACTION = 0.15
HOLDOUT_MIN_INITS = 32


def calibration_holdout(facts: DataFacts, *, longest: int) -> tuple[float, str]:
    """The fraction of training steps held out for the lead calibration, and why."""
    n = int(facts.train_times.size)
    wanted = max(math.ceil(HOLDOUT_FRACTION * n), longest + HOLDOUT_MIN_INITS)
    if n == 0 or wanted > n / 3:
        return 0.0, (
            f"{n} training steps: holding out {wanted} ({longest + HOLDOUT_MIN_INITS} at least, for "
            f"{HOLDOUT_MIN_INITS} inits of {longest} steps) would take over a third; none (the calibration's factors alone, in sample)"
        )
    fraction = round(wanted / n, 4)
    return fraction, (
        f"the last {wanted} of {n} training steps ({fraction:.1%}): the network never trains on them, the "
        f"lead calibration is fitted there"
    )


def data_facts(
    times: np.ndarray, *, train_period: str, val_period: str, grid: GridInfo, n_channels: int
) -> DataFacts:
    step_hours, step_months = detect_step(times)
    return DataFacts(times, train_period, val_period, float(step_hours), int(step_months), grid, n_channels)


def describe_choices(choices: list[Choice] | tuple[Choice, ...], corrections: dict[str, Any]) -> str:
    """The block `train` prints at the start: every derived value and every correction decision, with why."""
    lines = ["derived from the data (keys you set win; see `fno-forecast info` afterwards):"]
    for choice in choices:
        value = list(choice.value) if isinstance(choice.value, tuple) else choice.value
        lines.append(f"  {choice.key:<24} {value}  ({choice.why})")
    for name, decision in corrections.items():
        lines.append(f"  {name:<24} {'kept' if decision['kept'] else 'off'}  ({decision['why']})")
    return "\n".join(lines)
