"""What the trainer reads: channels, the train/validation split, statistics and climatology.

Statistics, the climatology, the stepper's prior (`training.prior_check`) and the recent-anomaly
correction come from the training period only. With no periods given, the last `val_fraction` of the time steps validate and
everything before trains. Test periods are never touched because only windows wholly inside a period
are used (`WindowDataset(period=...)`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

import numpy as np
import xarray as xr

from fno_forecast.climatology import Climatology, annual_terms_by_year, fit_climatology, term_gains
from fno_forecast.data.channels import Channels, open_channels
from fno_forecast.data.fit_sample import FitSample, draw_fit_sample
from fno_forecast.data.stats import ChannelStats, compute_stats
from fno_forecast.data.timeaxis import lead_steps_for, parse_period, select_period
from fno_forecast.data.windows import DEFAULT_IN_MEMORY_LIMIT, WindowDataset
from fno_forecast.errors import ConfigError, DataError
from fno_forecast.models.conservation import ConservationSpec
from fno_forecast.models.linear_spectral import LinearSpectral
from fno_forecast.models.registry import FNOConfig, SFNOConfig
from fno_forecast.models.stepper import Stepper, build_stepper
from fno_forecast.recent_anomaly import (
    RecentAnomalyCorrection,
    fit_recent_anomaly_correction,
    fit_settings,
    window_text,
)
from fno_forecast.training.config import TrainConfig
from fno_forecast.training.conservation_check import decide_conservation
from fno_forecast.training.defaults import Choice, all_keys, data_facts, derive_defaults
from fno_forecast.training.prior_check import decide_prior
from fno_forecast.training.relaxation import fit_relaxation


def _iso(value: Any) -> str:
    return str(np.datetime_as_string(np.datetime64(value, "s"), unit="s"))


def resolve_periods(times: np.ndarray, config: TrainConfig) -> tuple[str, str]:
    """`(train_period, val_period)` as `START/END` strings; the defaults split off the last fraction."""
    train, val = config.train_period, config.val_period
    for name, text in (("train_period", train), ("val_period", val)):
        if text:
            try:
                parse_period(text)
            except DataError as error:
                raise ConfigError(f"{name}: {error.reason}") from None
    if train and val:
        return train, val
    if len(times) < 4:
        raise ConfigError(f"train_period, val_period: {len(times)} time steps are too few to split")
    if val:
        start, _ = parse_period(val)
        before = times[times < start]
        if before.size < 2:
            raise ConfigError(f"val_period {val!r}: no training time steps before it; give train_period")
        return f"{_iso(times[0])}/{_iso(before[-1])}", val
    if train:
        _, end = parse_period(train)
        after = times[times > end]
        if after.size < 2:
            raise ConfigError(
                f"train_period {train!r}: no time steps after it to validate on; give val_period"
            )
        return train, f"{_iso(after[0])}/{_iso(after[-1])}"
    split = int(round(len(times) * (1.0 - config.val_fraction)))
    split = min(max(split, 2), len(times) - 2)
    return f"{_iso(times[0])}/{_iso(times[split - 1])}", f"{_iso(times[split])}/{_iso(times[-1])}"


@dataclass(frozen=True)
class TrainingData:
    """The canonical array (loaded into memory), its split, statistics and climatology.

    `config` is the resolved config (defaults derived from the data, `training.defaults`); `choices` says
    what was derived and why, `corrections` which of the prior and corrections were kept and why.
    """

    channels: Channels
    array: xr.DataArray
    train_period: str
    val_period: str
    stats: ChannelStats
    climatology: Climatology
    relaxation: np.ndarray | None
    recent_anomaly: RecentAnomalyCorrection | None = None
    config: TrainConfig | None = None
    choices: tuple[Choice, ...] = ()
    corrections: dict[str, dict[str, Any]] = field(default_factory=dict)
    holdout_period: str = ""  # the training period's tail the network never trains on ("" for none)
    network_period: str = ""  # the rest of the training period: the network's windows
    spectral_prior: LinearSpectral | None = None  # the stepper's prior when it is the linear spectral one
    conservation: ConservationSpec | None = None  # the laws the stepper holds (`training.conservation_check`)

    @property
    def step_hours(self) -> float:
        return float(self.channels.schema.step_hours)

    def lead_steps(self, leads_hours: tuple[float, ...]) -> tuple[int, ...]:
        return lead_steps_for(leads_hours, step_hours=self.step_hours)

    def stepper(self, config: TrainConfig, model_config: FNOConfig | SFNOConfig) -> Stepper:
        """A new stepper on this data: its statistics, and the prior and laws the setup kept."""
        grid = self.channels.schema.grid
        return build_stepper(
            model_name=config.model,
            model_config=model_config,
            grid_lat=grid.lat,
            grid_lon=grid.lon,
            step_hours=self.step_hours,
            mean=self.stats.mean,
            std=self.stats.std,
            tendency_std=self.stats.tendency_std,
            use_history=config.use_history,
            climatology=self.climatology if config.use_climatology else None,
            relaxation=self.relaxation,
            spectral_prior=None if self.spectral_prior is None else self.spectral_prior.packed(),
            conservation=self.conservation,
        )


def load_training_data(
    path: str, config: TrainConfig, *, explicit: frozenset[str] | None = None
) -> TrainingData:
    """Open `path` with the data layer, split it, derive the defaults the config leaves open (all keys
    are explicit when `explicit` is None), and fit statistics and climatology on the training part."""
    channels = open_channels(
        path,
        variables=list(config.variables) or None,
        levels=list(config.levels) or None,
    )
    array = channels.array
    train_period, val_period = resolve_periods(array["time"].values, config)
    train_array = select_period(array, train_period)
    select_period(array, val_period)  # a DataError when validation holds no data
    facts = data_facts(
        array["time"].values,
        train_period=train_period,
        val_period=val_period,
        grid=channels.schema.grid,
        n_channels=len(channels.schema.channels),
    )
    config, choices = derive_defaults(
        config, explicit=all_keys() if explicit is None else explicit, facts=facts
    )
    sample = draw_fit_sample(
        train_array,
        budget_bytes=int(config.fit_sample_gb * 2**30),
        steps_per_day=facts.steps_per_day,
        in_memory_bytes=int(config.max_in_memory_gb * 2**30),
    )
    fit_array = sample.array  # what the fits below read: the training period, or a sample of a long one
    choices = (
        *choices,
        Choice("fit_sample_gb", config.fit_sample_gb, f"setup fits read {sample.describe()}"),
    )
    config, dropped = drop_unexplained_terms(config, fit_array, explicit=explicit)
    choices = tuple(c for c in choices if c.key not in {d.key for d in dropped}) + dropped
    stats = compute_stats(fit_array)  # each fit streams in blocks of bounded memory (`block_steps`)
    climatology = fit_climatology(
        fit_array, annual=config.climatology_annual, diurnal=config.climatology_diurnal
    )
    if config.channel_weights and len(config.channel_weights) != len(channels.schema.channels):
        raise ConfigError(
            f"channel_weights: {len(config.channel_weights)} weights for {len(channels.schema.channels)} "
            f"channels ({', '.join(channels.schema.channel_names)})"
        )
    prior = decide_prior(
        config,
        train_array,
        climatology,
        step_hours=facts.step_hours,
        explicit=explicit,
        fit_array=None if sample.whole else fit_array,
    )
    config, corrections = prior.config, {prior.name: prior.decision}
    relaxation = fit_relaxation(fit_array, climatology) if config.relaxation else None
    recent = None
    if config.recent_anomaly and config.use_climatology and channels.schema.step_hours:
        recent, corrections["recent_anomaly"] = _decide_recent_anomaly(
            config,
            train_array,
            climatology,
            step_hours=facts.step_hours,
            schema_step_hours=float(channels.schema.step_hours),
            sample=sample,
        )
    conservation, conservation_choice = decide_conservation(config.conservation, fit_array, channels.schema)
    choices = (*choices, conservation_choice)
    network_period, holdout_period = split_holdout(train_array["time"].values, config.calibration_holdout)
    return TrainingData(
        channels,
        array,
        train_period,
        val_period,
        stats,
        climatology,
        relaxation,
        recent,
        config,
        choices,
        corrections,
        holdout_period=holdout_period,
        network_period=network_period or train_period,
        spectral_prior=prior.spectral,
        conservation=conservation,
    )


def split_holdout(times: np.ndarray, fraction: float) -> tuple[str, str]:
    """`(network_period, holdout_period)`: the last `fraction` of the training steps held out, or
    `("", "")` when that leaves either part under two steps."""
    n = len(times)
    k = int(round(n * fraction))
    if k < 2 or n - k < 2:
        return "", ""
    return f"{_iso(times[0])}/{_iso(times[n - k - 1])}", f"{_iso(times[n - k])}/{_iso(times[-1])}"


MIN_TERM_GAIN = 0.05
MAX_HELDOUT_STEPS = 2048  # the recent-anomaly fit's held-out tail when the training period is sampled


def drop_unexplained_terms(
    config: TrainConfig, train_array: xr.DataArray, *, explicit: frozenset[str] | None
) -> tuple[TrainConfig, tuple[Choice, ...]]:
    """Drop derived annual or diurnal harmonics that remove under 5% of the residual variance (no such
    cycle in the data), and cross-validate a derived annual count over whole years where there are two
    or more (`climatology.annual_terms_by_year`); explicit ones stay. Returns the config and the
    changed choices with reasons."""
    keys = all_keys() if explicit is None else explicit
    annual, diurnal = config.climatology_annual, config.climatology_diurnal
    derive_annual = annual > 0 and "climatology_annual" not in keys
    derive_diurnal = diurnal > 0 and "climatology_diurnal" not in keys
    if not (derive_annual or derive_diurnal):
        return config, ()
    gains = dict(
        zip(("annual", "diurnal"), term_gains(train_array, annual=annual, diurnal=diurnal), strict=True)
    )
    changes: dict[str, int] = {}
    choices = []
    for name, derive in (("diurnal", derive_diurnal), ("annual", derive_annual)):
        key, gain = f"climatology_{name}", gains[name]
        if not derive:
            continue
        value = getattr(config, key)
        why = f"{value} {name} harmonic(s), removing {gain:.1%} of the residual variance"
        if gain < MIN_TERM_GAIN:
            value = 0
            why = f"no {name} cycle in the data: its harmonics remove {gain:.1%} of the residual variance (< 5%)"
        elif name == "annual":
            best, errors = annual_terms_by_year(
                train_array, max_annual=value, diurnal=changes.get("climatology_diurnal", diurnal)
            )
            if errors:
                scores = "/".join(f"{e:.4f}" for e in errors)
                why = (
                    f"{best} annual harmonic(s), the count of 1..{value} that holds out best with each "
                    f"year left out (errors {scores}, variance units); {value} remove {gain:.1%} of the "
                    "residual variance"
                )
                value = best
        changes[key] = value
        choices.insert(0, Choice(key, value, why))  # annual first, as before
    return replace(config, **changes), tuple(choices)


class WindowCache:
    """Window datasets by (period, steps), built once: stage 2 asks for a new rollout length each epoch."""

    def __init__(
        self,
        data: TrainingData,
        *,
        use_history: bool,
        in_memory_limit_bytes: int = DEFAULT_IN_MEMORY_LIMIT,
    ) -> None:
        self._data = data
        self._use_history = use_history
        self._limit = int(in_memory_limit_bytes)
        self._get = cache(self._build)

    def _build(self, period: str, steps: int) -> WindowDataset:
        return WindowDataset(
            self._data.array,
            target_steps=steps,
            use_history=self._use_history,
            period=period,
            in_memory_limit_bytes=self._limit,
        )

    def train(self, steps: int) -> WindowDataset:
        """The network's windows: the training period less its held-out tail."""
        return self._get(self._data.network_period or self._data.train_period, steps)

    def holdout(self, steps: int) -> WindowDataset | None:
        """Windows of the held-out tail (None without one, or when no window of `steps` fits it)."""
        if not self._data.holdout_period:
            return None
        try:
            return self._get(self._data.holdout_period, steps)
        except DataError:
            return None

    def validation(self, steps: int) -> WindowDataset:
        return self._get(self._data.val_period, steps)


def _decide_recent_anomaly(
    config: TrainConfig,
    train_array: xr.DataArray,
    climatology: Climatology,
    *,
    step_hours: float,
    schema_step_hours: float,
    sample: FitSample,
) -> tuple[RecentAnomalyCorrection | None, dict[str, Any]]:
    """Fit the recent-anomaly correction out of sample; kept only where a window beats the climatology."""
    windows, target = fit_settings(
        times=train_array["time"].values,
        annual=climatology.annual,
        step_hours=step_hours,
        lead_steps=lead_steps_for(config.val_leads_hours, step_hours=step_hours),
    )
    recent = fit_recent_anomaly_correction(
        train_array,
        climatology,
        step_hours=schema_step_hours,
        window_days=windows,
        target_hours=target,
        # a long period sampled for the fits: the climatology refit on the sample, the held-out tail bounded
        fit_array=None if sample.whole else sample.array,
        max_heldout_steps=0 if sample.whole else MAX_HELDOUT_STEPS,
    )
    if recent is None:
        return None, {
            "kept": False,
            "why": "training period too short to hold out a third for the fit, or its held-out steps are "
            "not evenly spaced",
        }
    if not recent.ranked_windows():
        return None, {
            "kept": False,
            "why": f"no window beat the climatology on the held-out {recent.held_out}",
        }
    best = recent.ranked_windows()[0]
    return recent, {
        "kept": True,
        "why": f"{window_text(recent.window_days[best])} window: held-out RMSE {recent.heldout_rmse[best]:.3f} "
        f"vs climatology {recent.climatology_rmse:.3f} on {recent.held_out}",
    }
