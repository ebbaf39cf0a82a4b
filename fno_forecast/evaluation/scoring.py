"""Score a model bundle over a period: every init whose verifying times are in the data, at chosen leads.

Speed comes from batching: the inits of a chunk go through one rollout to the longest lead together, and
each requested lead is scored the moment the rollout reaches it (model, persistence and climatology on
the same inits), so no forecast is ever stored and no Python loop runs per init over xarray objects. The
data are read once per chunk of inits as one numpy window of `(inits + longest lead)` steps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from fno_forecast.bundle import Bundle, check_compatible
from fno_forecast.data.grid import latitude_weights
from fno_forecast.data.timeaxis import (
    DEFAULT_LEADS_HOURS,
    format_time,
    lead_steps,
    period_mask,
    times_to_hours,
)
from fno_forecast.errors import ConfigError, ForecastError
from fno_forecast.evaluation.baselines import BASELINES, baseline_forecast
from fno_forecast.evaluation.metrics import SkillAccumulator
from fno_forecast.evaluation.scorecard import Scorecard
from fno_forecast.forecast import bundle_rollout

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


def verifiable_inits(
    hours: np.ndarray, *, in_period: np.ndarray, steps: Sequence[int], step_hours: float, use_history: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Init indices inside the period whose verifying times (and previous step) exist in the data.

    Returns `(inits, verify (init, lead) indices, previous indices or None)`; times may have gaps.
    """

    # Calendar months differ in length, so a monthly step in hours (HOURS_PER_MONTH) lands days off the
    # verifying time after a few steps: match the nearest time within a quarter step there.
    tolerance = step_hours / 4.0 if step_hours >= 27 * 24 else 1e-6

    def lookup(target: np.ndarray) -> np.ndarray:
        right = np.clip(np.searchsorted(hours, target), 0, len(hours) - 1)
        left = np.clip(right - 1, 0, len(hours) - 1)
        index = np.where(np.abs(hours[left] - target) < np.abs(hours[right] - target), left, right)
        return np.where(np.abs(hours[index] - target) < tolerance, index, -1)

    candidates = np.flatnonzero(in_period)
    verify = lookup(hours[candidates, None] + np.asarray(steps, dtype=np.float64)[None, :] * step_hours)
    ok = (verify >= 0).all(axis=1)
    previous = None
    if use_history:
        previous = lookup(hours[candidates] - step_hours)
        ok &= previous >= 0
        previous = previous[ok]
    return candidates[ok], verify[ok], previous


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
) -> Evaluation:
    """Score `bundle` on a canonical array `(time, channel, lat, lon)` for inits within `period`.

    The array must hold the bundle's channels on its grid; it may extend past the period (the verifying
    times of late inits come from there). `map_lead` keeps the first init's fields at that lead (default:
    the middle lead) for a map panel. `on_progress(inits_done, inits_total)` reports each chunk.
    With `recent_anomaly` (and a bundle that has one) each init's climatology is corrected from the
    history before it, as `forecast` does; with `lead_calibration` the bundle's per-lead factors scale
    the anomalies, as `forecast` does. False for both scores the network and its climatology alone.
    """
    from fno_forecast.recent_anomaly import longest_window_steps, recent_anomaly_offsets

    if batch_size < 1:
        raise ConfigError(f"batch_size: expected >= 1, got {batch_size}")
    leads = tuple(sorted({float(v) for v in leads}))
    steps = [
        lead_steps(lead, step_hours=bundle.step_hours, name="lead", error=ForecastError) for lead in leads
    ]
    if map_lead is None:
        map_lead = leads[len(leads) // 2]
    elif float(map_lead) not in leads:
        raise ConfigError(f"map_lead={map_lead:g}: not one of the leads {list(leads)}")
    names = [str(n) for n in array["channel"].values]
    if names != list(bundle.schema.channel_names):
        raise ForecastError(
            f"evaluate: data channels {names} do not match the model's {list(bundle.schema.channel_names)}"
        )
    times = np.asarray(array["time"].values)
    hours = times_to_hours(times)
    use_history = bool(bundle.stepper.use_history)
    inits, verify, previous = verifiable_inits(
        hours,
        in_period=period_mask(times, period),
        steps=steps,
        step_hours=bundle.step_hours,
        use_history=use_history,
    )
    if inits.size == 0:
        raise ForecastError(
            f"evaluate: no init time in {period} has all its verifying times (up to {leads[-1]:g} h) in the data "
            f"({format_time(times[0])} .. {format_time(times[-1])})"
        )
    lat = np.asarray(array["lat"].values, dtype=np.float64)
    weights = latitude_weights(lat)
    accumulators = {
        s: SkillAccumulator(weights=weights, n_channels=len(names)) for s in ("model", *BASELINES)
    }
    map_fields = None
    device = next(iter(bundle.stepper.buffers())).device
    correction = bundle.recent_anomaly if recent_anomaly else None
    reach = longest_window_steps(correction, bundle.step_hours)
    for start in range(0, inits.size, batch_size):
        chunk = slice(start, min(start + batch_size, inits.size))
        needed = [inits[chunk], verify[chunk].ravel()] + ([previous[chunk]] if use_history else [])
        low = max(0, int(min(n.min() for n in needed)) - reach)
        high = int(max(n.max() for n in needed))
        window = np.asarray(array.isel(time=slice(low, high + 1)).values, dtype=np.float32)
        offset = None
        if correction is not None:
            offsets, _ = recent_anomaly_offsets(
                correction,
                climatology=bundle.climatology,
                block=window,
                block_hours=hours[low : high + 1],
                init_positions=inits[chunk] - low,
                step_hours=bundle.step_hours,
            )
            offset = torch.from_numpy(offsets).to(device)
        state = window[inits[chunk] - low]
        init_hours = hours[inits[chunk]]
        prev = torch.from_numpy(window[previous[chunk] - low]).to(device) if use_history else None
        wanted = dict(zip(steps, range(len(steps)), strict=True))
        with torch.inference_mode():
            produced = bundle_rollout(
                bundle,
                torch.from_numpy(state).to(device),
                time_hours=torch.from_numpy(init_hours).to(device),
                n_steps=max(steps),
                previous=prev,
                climatology_offset=offset,
                lead_calibration=lead_calibration,
            )
            for step, fields in enumerate(produced, start=1):
                if step not in wanted:
                    continue
                column = wanted[step]
                lead = leads[column]
                truth = window[verify[chunk, column] - low]
                valid_hours = init_hours + lead
                clim = bundle.climatology.at_hours(valid_hours)
                predicted = fields.float().cpu().numpy()
                accumulators["model"].add(lead, predicted, truth, clim)
                for name in BASELINES:
                    baseline = baseline_forecast(
                        name,
                        init_state=state,
                        lead_hours=lead,
                        valid_hours=valid_hours,
                        climatology=bundle.climatology,
                    )
                    accumulators[name].add(lead, baseline, truth, clim)
                if start == 0 and lead == float(map_lead):
                    map_fields = MapFields(
                        init_time=format_time(times[inits[0]]),
                        lead_hours=lead,
                        truth=truth[0].copy(),
                        forecast=predicted[0].copy(),
                        lat=lat,
                        lon=np.asarray(array["lon"].values, dtype=np.float64),
                    )
        if on_progress is not None:
            on_progress(chunk.stop, inits.size)
    card = Scorecard.from_results(
        model=model_label or str(bundle.path),
        data=data_label or str(array.attrs.get("source", "")),
        period=tuple(period.split("/", 1)),
        inits=int(inits.size),
        channels=names,
        results={name: acc.result() for name, acc in accumulators.items()},
        units={c.name: c.units for c in bundle.schema.channels},
    )
    return Evaluation(card=card, init_times=times[inits], map_fields=map_fields)


def score_bundle(
    bundle_path: str | Path,
    data_paths: Sequence[str | Path],
    *,
    period: str,
    leads: Sequence[float] = DEFAULT_LEADS,
    write: bool = False,
) -> dict[str, Any]:
    """Evaluate a bundle on data files over `period`; returns the skill card dict.

    With `write`, the card is stored in the bundle (`fno_forecast.bundle.update_skill_card`). Score on
    the validation period: the test period is for the final report only.
    """
    from fno_forecast.bundle import load_bundle, update_skill_card

    bundle = load_bundle(bundle_path)
    array = open_for_bundle(bundle, data_paths)
    result = evaluate_model(
        bundle, array, period=period, leads=leads, data_label=", ".join(map(str, data_paths))
    )
    skill = result.card.to_dict()
    if write:
        update_skill_card(bundle_path, skill)
    return skill
