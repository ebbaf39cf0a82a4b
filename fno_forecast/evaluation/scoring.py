"""Score a model bundle over a period: every init in it, at chosen leads, against every baseline.

The protocol (which inits at which leads, `--verify-inside`) is `fno_forecast.evaluation.selection`; the
systems (the model, its prior without the network, persistence, climatology, the linear baseline) are run
chunk by chunk in `fno_forecast.evaluation.runner`; the card with its intervals and protocol is built in
`fno_forecast.evaluation.protocol`. Speed comes from batching: the inits of a chunk go through one
rollout to the longest lead together, each lead is scored the moment the rollout reaches it, and no
forecast is ever stored. `evaluate_paths` is the one path from data files to a card (the CLI and
`score_bundle` use it); rolling-origin folds are scored by `score_fold`.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from fno_forecast.bundle import Bundle, check_compatible
from fno_forecast.data.grid import latitude_weights
from fno_forecast.data.timeaxis import (
    DEFAULT_LEADS_HOURS,
    format_time,
    lead_steps,
    parse_period,
    period_mask,
    times_to_hours,
)
from fno_forecast.errors import ConfigError, ForecastError
from fno_forecast.evaluation.bootstrap import BootstrapConfig
from fno_forecast.evaluation.folds import in_sample_note
from fno_forecast.evaluation.metrics import SkillAccumulator
from fno_forecast.evaluation.prior import RolloutSystem, prior_systems
from fno_forecast.evaluation.protocol import build_card
from fno_forecast.evaluation.runner import (
    Plan,
    chunk_offsets,
    read_chunk,
    score_references,
    score_rollouts,
    system_names,
)
from fno_forecast.evaluation.scorecard import Scorecard
from fno_forecast.evaluation.selection import select_inits, verifiable_inits
from fno_forecast.linear_ar import LinearAR, fit_linear_ar
from fno_forecast.models.linear_spectral import LinearSpectral, fit_linear_spectral

__all__ = [
    "Evaluation",
    "MapFields",
    "evaluate_model",
    "open_for_bundle",
    "parse_leads",
    "score_bundle",
    "verifiable_inits",
]

DEFAULT_LEADS: tuple[float, ...] = DEFAULT_LEADS_HOURS
Progress = Callable[[int, int], None]


def parse_leads(text: str) -> tuple[float, ...]:
    """`"6,24,72"` -> `(6.0, 24.0, 72.0)`, sorted and unique; ConfigError naming `--leads`."""
    try:
        leads = sorted({float(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise ConfigError(f"--leads {text!r}: expected comma-separated hours, e.g. 6,24,72") from None
    if not leads or leads[0] <= 0:
        raise ConfigError(f"--leads {text!r}: expected positive hours")
    return tuple(leads)


@dataclass(frozen=True)
class MapFields:
    """Truth and forecast `(channel, lat, lon)` of one init and lead, for the map panel."""

    init_time: str
    lead_hours: float
    truth: np.ndarray
    forecast: np.ndarray
    lat: np.ndarray
    lon: np.ndarray


@dataclass(frozen=True)
class Evaluation:
    """A score card, the init times scored, and the fields of the map panel (None if not kept)."""

    card: Scorecard
    init_times: np.ndarray
    map_fields: MapFields | None


def open_for_bundle(bundle: Bundle, paths: Sequence[str | Path]) -> xr.DataArray:
    """Open data files as the canonical array of the bundle's channels, in its order; checks the schema."""
    from fno_forecast.data.channels import open_channels

    variables = list(dict.fromkeys(c.variable for c in bundle.schema.channels))
    levels = sorted({c.level for c in bundle.schema.channels if c.level is not None}) or None
    channels = open_channels(
        [str(p) for p in paths], variables=variables, levels=levels, step_hours=bundle.step_hours
    )
    check_compatible(bundle, channels.schema)
    return channels.array


def _resolve_leads(
    bundle: Bundle, leads: Sequence[float], map_lead: float | None
) -> tuple[tuple[float, ...], float]:
    leads = tuple(sorted({float(v) for v in leads}))
    for lead in leads:
        lead_steps(lead, step_hours=bundle.step_hours, name="lead", error=ForecastError)
    if map_lead is None:
        return leads, leads[len(leads) // 2]
    if float(map_lead) not in leads:
        raise ConfigError(f"map_lead={map_lead:g}: not one of the leads {list(leads)}")
    return leads, float(map_lead)


def _fit_linear(
    bundle: Bundle, array: xr.DataArray, *, period: str, fit_period: str | None
) -> tuple[LinearAR | None, LinearSpectral | None]:
    """The linear baselines fitted on `fit_period` (default: the bundle's training period), cut to end
    before the scored period starts so they never see it; None where the data hold too little of it
    (and the spectral one only on a global grid with both poles)."""
    fit_period = fit_period or (bundle.metadata.get("training") or {}).get("train_period")
    if not fit_period:
        return None, None
    times = np.asarray(array["time"].values)
    start, _ = parse_period(period)
    mask = period_mask(times, fit_period) & (times.astype("datetime64[s]") < start)
    if mask.sum() < 2:
        return None, None
    train = array.isel(time=np.flatnonzero(mask))  # read in chunks by the fits
    return (
        fit_linear_ar(train, bundle.climatology, step_hours=bundle.step_hours),
        fit_linear_spectral(train, bundle.climatology, step_hours=bundle.step_hours),
    )


def _plan(
    bundle: Bundle,
    array: xr.DataArray,
    *,
    period: str,
    leads: tuple[float, ...],
    verify_inside: bool,
    model: RolloutSystem,
    explain: bool,
    history_days: float | None,
    linear_fit_period: str | None,
    init_stride: int = 1,
) -> Plan:
    names = [str(n) for n in array["channel"].values]
    if names != list(bundle.schema.channel_names):
        raise ForecastError(
            f"evaluate: data channels {names} do not match the model's {list(bundle.schema.channel_names)}"
        )
    if history_days is not None and history_days <= 0:
        raise ConfigError(f"history_days: expected > 0 days, got {history_days:g}")
    times = np.asarray(array["time"].values)
    hours = times_to_hours(times)
    steps = tuple(
        lead_steps(lead, step_hours=bundle.step_hours, name="lead", error=ForecastError) for lead in leads
    )
    selection = select_inits(
        hours,
        in_period=period_mask(times, period),
        steps=steps,
        step_hours=bundle.step_hours,
        use_history=bool(bundle.stepper.use_history),
        verify_inside=verify_inside,
        init_stride=init_stride,
    )
    if selection.inits.size == 0:
        where = "in the period" if verify_inside else "in the data"
        raise ForecastError(
            f"evaluate: no init time in {period} has its verifying times (up to {leads[-1]:g} h) {where} "
            f"({format_time(times[0])} .. {format_time(times[-1])})"
        )
    linear, spectral = (
        _fit_linear(bundle, array, period=period, fit_period=linear_fit_period) if explain else (None, None)
    )
    return Plan(
        bundle=bundle,
        array=array,
        hours=hours,
        leads=leads,
        steps=steps,
        selection=selection,
        rollouts=(model, *(prior_systems(bundle) if explain else ())),
        linear=linear,
        spectral=spectral,
        history_steps=None
        if history_days is None
        else max(1, round(history_days * 24.0 / bundle.step_hours)),
        init_stride=init_stride,
    )


def _run(plan: Plan, *, batch_size: int, map_lead: float, on_progress: Progress | None):
    """Score every chunk; returns the accumulators, the recent-anomaly windows used, the map fields."""
    lat = np.asarray(plan.array["lat"].values, dtype=np.float64)
    weights = latitude_weights(lat)
    n_channels = plan.array.sizes["channel"]
    accumulators = {s: SkillAccumulator(weights=weights, n_channels=n_channels) for s in system_names(plan)}
    used: Counter[float] = Counter()
    map_fields = None
    total = plan.selection.inits.size
    for start in range(0, total, batch_size):
        chunk = read_chunk(plan, slice(start, min(start + batch_size, total)))
        offsets = chunk_offsets(plan, chunk, used)
        keep = map_lead if start == 0 and chunk.verify[0, plan.leads.index(map_lead)] >= 0 else None
        kept = score_rollouts(plan, chunk, accumulators, offsets=offsets, keep=keep)
        score_references(plan, chunk, accumulators)
        if kept is not None:
            column = plan.leads.index(map_lead)
            map_fields = MapFields(
                init_time=format_time(plan.array["time"].values[plan.selection.inits[0]]),
                lead_hours=map_lead,
                truth=chunk.window[chunk.verify[0, column]].copy(),
                forecast=kept[0].copy(),
                lat=lat,
                lon=np.asarray(plan.array["lon"].values, dtype=np.float64),
            )
        if on_progress is not None:
            on_progress(min(start + batch_size, total), total)
    return accumulators, used, map_fields


def evaluate_model(
    bundle: Bundle,
    array: xr.DataArray,
    *,
    period: str,
    leads: Sequence[float] = DEFAULT_LEADS,
    batch_size: int = 32,
    map_lead: float | None = None,
    model_label: str | None = None,
    data_label: str | None = None,
    on_progress: Progress | None = None,
    recent_anomaly: bool = True,
    lead_calibration: bool = True,
    verify_inside: bool = False,
    history_days: float | None = None,
    explain: bool = True,
    linear_fit_period: str | None = None,
    bootstrap: BootstrapConfig | None = BootstrapConfig(),
    init_stride: int = 1,
) -> Evaluation:
    """Score `bundle` on a canonical array `(time, channel, lat, lon)` for inits within `period`.

    The array must hold the bundle's channels on its grid; it may extend past the period (the verifying
    times of late inits come from there unless `verify_inside`, which scores a lead of an init only when
    it verifies inside the period). `map_lead` keeps the first init's fields at that lead (default: the
    middle lead) for a map panel. `on_progress(inits_done, inits_total)` reports each chunk.
    With `recent_anomaly` (and a bundle that has one) each init's climatology is corrected from the
    history before it (only `history_days` of it when given, as a forecast served from that much
    history), as `forecast` does; with `lead_calibration` the bundle's per-lead factors scale the
    anomalies, as `forecast` does. False for both scores the network and its climatology alone.
    With `explain`, the bundle's prior without the network (with and without each correction) and the
    linear baseline (fitted on `linear_fit_period`, default the training period, before `period`) are
    scored too. With `bootstrap`, every score gets a 95% interval and every comparison a paired one.
    `init_stride` scores one init in that many, in time order.
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size: expected >= 1, got {batch_size}")
    if init_stride < 1:
        raise ConfigError(f"init_stride: expected >= 1, got {init_stride}")
    leads, map_lead = _resolve_leads(bundle, leads, map_lead)
    flags = {
        "recent_anomaly": recent_anomaly and bundle.recent_anomaly is not None,
        "lead_calibration": lead_calibration and bundle.lead_calibration is not None,
    }
    model = RolloutSystem("model", bundle.stepper, **flags)
    plan = _plan(
        bundle,
        array,
        period=period,
        leads=leads,
        verify_inside=verify_inside,
        model=model,
        explain=explain,
        history_days=history_days,
        linear_fit_period=linear_fit_period,
        init_stride=init_stride,
    )
    accumulators, used, map_fields = _run(
        plan, batch_size=batch_size, map_lead=map_lead, on_progress=on_progress
    )
    card = build_card(
        plan,
        accumulators,
        period=period,
        verify_inside=verify_inside,
        scored_with={**flags, "history_days": history_days},
        windows_used=used,
        bootstrap=bootstrap,
        labels=(model_label or str(bundle.path), data_label or str(array.attrs.get("source", ""))),
    )
    return Evaluation(
        card=card, init_times=plan.array["time"].values[plan.selection.inits], map_fields=map_fields
    )


def score_fold(bundle: Bundle, array: xr.DataArray, *, fold: str, **options: Any) -> Scorecard:
    """The card of one rolling-origin fold (`fno_forecast.evaluation.folds`): verifying inside it, its
    linear baseline fitted before it, and a note when the bundle was fitted on it (in-sample)."""
    options = {k: v for k, v in options.items() if k not in ("verify_inside", "map_lead")}
    card = evaluate_model(bundle, array, period=fold, verify_inside=True, **options).card
    note = in_sample_note(bundle, fold)
    if note is None:
        return card
    protocol = {**card.protocol, "notes": [*card.protocol.get("notes", ()), note], "in_sample": True}
    return dataclasses.replace(card, protocol=protocol)


def evaluate_paths(
    bundle: Bundle,
    data_paths: Sequence[str | Path],
    *,
    period: str,
    folds: Sequence[str] = (),
    **options: Any,
) -> Evaluation:
    """Score a loaded bundle on data files over `period`, and on each fold period into `card.folds`.

    `options` are those of `evaluate_model`; the folds share them (each verifying inside itself).
    """
    array = open_for_bundle(bundle, data_paths)
    options.setdefault("data_label", ", ".join(map(str, data_paths)))
    result = evaluate_model(bundle, array, period=period, **options)
    if not folds:
        return result
    cards = tuple(score_fold(bundle, array, fold=fold, **options) for fold in folds)
    return dataclasses.replace(result, card=dataclasses.replace(result.card, folds=cards))


def score_bundle(
    bundle_path: str | Path,
    data_paths: Sequence[str | Path],
    *,
    period: str,
    leads: Sequence[float] = DEFAULT_LEADS,
    write: bool = False,
    **options: Any,
) -> dict[str, Any]:
    """Evaluate a bundle on data files over `period`; returns the skill card dict.

    With `write`, the card is stored in the bundle (`fno_forecast.bundle.update_skill_card`). Score on
    the validation period: the test period is for the final report only. `options` are passed to
    `evaluate_paths` (`folds`, `verify_inside`, `explain`, `bootstrap`, ...).
    """
    from fno_forecast.bundle import load_bundle
    from fno_forecast.bundle_metadata import update_skill_card

    result = evaluate_paths(load_bundle(bundle_path), data_paths, period=period, leads=leads, **options)
    skill = result.card.to_dict()
    if write:
        update_skill_card(bundle_path, skill)
    return skill
