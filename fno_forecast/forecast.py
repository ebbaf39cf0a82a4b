"""Forecasts from a model bundle: the one function the CLI and the HTTP service both call.

`forecast(bundle, initial_state, lead_hours)` takes a dataset as a user has it (variables with
time/lat/lon[/level]), converts it through the data layer to the canonical channels, checks it against
the bundle's schema, picks the init time(s), rolls all inits out together in one batch, and returns a CF
dataset with dims `([init_time,] lead_time, [level,] lat, lon)`. `forecast_steps` yields the same
forecast lead by lead as it is produced, for progress reporting and streaming.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
import xarray as xr

from fno_forecast import __version__
from fno_forecast.bundle import Bundle, check_compatible
from fno_forecast.data.timeaxis import calendar_of, format_time, lead_steps, period_hours, times_to_hours
from fno_forecast.errors import ForecastError
from fno_forecast.forecast_dataset import fields_to_dataset, finish_forecast

InitTimes = str | Sequence[Any] | None
OnStep = Callable[[int, int, float], None]
OnFields = Callable[[float, np.ndarray], None]


@dataclass(frozen=True)
class PreparedForecast:
    """Canonical inputs of a rollout: `state` and `previous` `(B, C, H, W)` float32 at `init_hours` (B,)."""

    state: np.ndarray
    previous: np.ndarray | None
    init_times: np.ndarray
    init_hours: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    n_steps: int
    step_hours: float
    climatology_offset: np.ndarray | None = None
    offset_days: tuple[float, ...] = ()


def _canonical(bundle: Bundle, initial_state: xr.Dataset) -> xr.DataArray:
    """The initial state as the canonical `(time, channel, lat, lon)` array of the bundle's channels.

    Goes through the data layer (coordinate names, level units, ensemble members, lat order), keeps the
    bundle's variables and levels, and checks grid and channels against the bundle (BundleError).
    """
    from fno_forecast.data.channels import to_channels
    from fno_forecast.data.coords import choose_member, drop_singletons, normalize_coords

    if not isinstance(initial_state, xr.Dataset):
        raise ForecastError(f"initial_state: expected an xarray Dataset, got {type(initial_state).__name__}")
    where = str(initial_state.attrs.get("source") or "initial_state")
    notes: list[str] = []
    dataset = normalize_coords(initial_state, path=where, notes=notes)
    dataset, _ = choose_member(dataset, member=bundle.schema.member, path=where, notes=notes)
    dataset = drop_singletons(dataset)
    variables = list(dict.fromkeys(c.variable for c in bundle.schema.channels))
    missing = [v for v in variables if v not in dataset.data_vars]
    if missing:
        present = sorted(map(str, dataset.data_vars))
        raise ForecastError(f"{where}: the model needs variable(s) {missing}; the data has {present}")
    dataset = dataset[variables]
    levels = sorted({c.level for c in bundle.schema.channels if c.level is not None})
    if levels:
        if "level" not in dataset.dims:
            raise ForecastError(f"{where}: the model needs levels {levels} but the data has no level dim")
        present = np.asarray(dataset["level"].values, dtype=np.float64)
        absent = [lv for lv in levels if not np.isclose(present, lv).any()]
        if absent:
            raise ForecastError(f"{where}: levels {absent} absent; levels present: {present.tolist()}")
        dataset = dataset.sel(level=levels, method="nearest")
    dataset.attrs = {"source_paths": where}
    several = dataset.sizes["time"] > 1
    channels = to_channels(dataset, step_hours=bundle.step_hours if several else None, require_regular=False)
    order = [
        channels.schema.channel_names.index(n)
        for n in bundle.schema.channel_names
        if n in channels.schema.channel_names
    ]
    schema = replace(
        channels.schema,
        channels=tuple(channels.schema.channels[i] for i in order),
        step_hours=channels.schema.step_hours if several else bundle.step_hours,
    )
    check_compatible(bundle, schema)
    return channels.array.isel(channel=order)


def _requested_hours(init_times: InitTimes, *, calendar: str) -> tuple[float, float] | np.ndarray:
    """An inclusive (low, high) range for `"A/B"`, else the exact hours of each requested time."""
    if isinstance(init_times, str):
        if "/" in init_times:
            return period_hours(init_times, calendar=calendar)
        init_times = [init_times]
    hours = []
    for value in init_times:
        try:
            moment = (
                np.datetime64(value, "s") if isinstance(value, str | dt.datetime | np.datetime64) else value
            )
        except ValueError as error:
            raise ForecastError(f"init_time {value!r}: not an ISO date-time ({error})") from None
        if isinstance(moment, np.datetime64):
            hours.append(period_hours((moment, moment), calendar=calendar)[0])
        else:
            hours.append(float(times_to_hours(np.asarray([moment]))[0]))
    return np.asarray(hours, dtype=np.float64)


def select_inits(
    times: np.ndarray, *, init_times: InitTimes, step_hours: float, use_history: bool
) -> np.ndarray:
    """Indices into `times` of the init times; each has its previous step when `use_history`.

    `init_times=None` picks the latest complete time. Raises ForecastError naming the times available.
    """
    hours = times_to_hours(times)
    complete = np.ones(len(hours), dtype=bool)
    if use_history:
        complete &= np.isin(np.round(hours - step_hours, 6), np.round(hours, 6))
    span = f"{format_time(times[0])} .. {format_time(times[-1])}" if len(times) else "no times"
    if init_times is None:
        if not complete.any():
            raise ForecastError(
                f"initial_state: no complete init time in {span}; the model uses history and needs two "
                f"consecutive {step_hours:g}-hourly steps"
            )
        return np.array([np.flatnonzero(complete)[-1]])
    wanted = _requested_hours(init_times, calendar=calendar_of(times))
    if isinstance(wanted, tuple):
        chosen = np.flatnonzero((hours >= wanted[0]) & (hours <= wanted[1]))
        if chosen.size == 0:
            raise ForecastError(f"init_time {init_times}: no time steps in that range (data covers {span})")
    else:
        matches = np.isclose(wanted[:, None], hours[None, :], atol=1e-6)
        absent = [
            str(init_times if isinstance(init_times, str) else init_times[i])
            for i in np.flatnonzero(~matches.any(axis=1))
        ]
        if absent:
            raise ForecastError(
                f"init_time {', '.join(absent)}: not in the initial state (data covers {span})"
            )
        chosen = matches.argmax(axis=1)
    incomplete = [format_time(times[i]) for i in chosen if not complete[i]]
    if incomplete:
        raise ForecastError(
            f"init_time {', '.join(incomplete)}: the model uses history and the step {step_hours:g} h "
            "before is not in the initial state"
        )
    return chosen


def prepare(
    bundle: Bundle, initial_state: xr.Dataset, lead_hours: float, *, init_times: InitTimes = None
) -> PreparedForecast:
    """Convert, check and select: everything before the rollout."""
    n_steps = lead_steps(lead_hours, step_hours=bundle.step_hours, name="lead_hours", error=ForecastError)
    array = _canonical(bundle, initial_state)
    times = np.asarray(array["time"].values)
    use_history = bool(bundle.stepper.use_history)
    chosen = select_inits(times, init_times=init_times, step_hours=bundle.step_hours, use_history=use_history)
    hours = times_to_hours(times)
    state = np.asarray(array.isel(time=chosen).values, dtype=np.float32)
    previous = None
    if use_history:
        before = [int(np.argmin(np.abs(hours - (hours[i] - bundle.step_hours)))) for i in chosen]
        previous = np.asarray(array.isel(time=before).values, dtype=np.float32)
    for name, values in (("state", state), ("previous step", previous)):
        if values is not None and not np.isfinite(values).all():
            bad = np.argwhere(~np.isfinite(values))[0]
            raise ForecastError(
                f"initial_state: the {name} at {format_time(times[chosen[bad[0]]])} has NaN or Inf values "
                f"in channel {bundle.schema.channel_names[bad[1]]}"
            )
    offset, offset_days = _climatology_offset(bundle, array, chosen)
    return PreparedForecast(
        state=state,
        previous=previous,
        init_times=times[chosen],
        init_hours=hours[chosen],
        lat=np.asarray(array["lat"].values),
        lon=np.asarray(array["lon"].values),
        n_steps=n_steps,
        step_hours=bundle.step_hours,
        climatology_offset=offset,
        offset_days=offset_days,
    )


def _climatology_offset(
    bundle: Bundle, array: xr.DataArray, chosen: np.ndarray
) -> tuple[np.ndarray | None, tuple[float, ...]]:
    """The recent-anomaly offsets of the chosen inits from the history before them (None without one)."""
    from fno_forecast.recent_anomaly import offsets_at

    correction = bundle.recent_anomaly
    if correction is None:
        return None, ()
    offsets, used = offsets_at(
        correction,
        climatology=bundle.climatology,
        array=array,
        positions=chosen,
        step_hours=bundle.step_hours,
    )
    return offsets, tuple(used)


def bundle_rollout(
    bundle: Bundle,
    state: torch.Tensor,
    *,
    time_hours: torch.Tensor,
    n_steps: int,
    previous: torch.Tensor | None = None,
    climatology_offset: torch.Tensor | None = None,
    lead_calibration: bool = True,
) -> Iterator[torch.Tensor]:
    """A bundle's forecast states `(B, C, H, W)` step by step: its stepper rolled out from `state` (valid
    at `time_hours`), then its per-lead calibration applied to what is yielded (unless turned off)."""
    from fno_forecast.lead_calibration import calibrate
    from fno_forecast.rollout import rollout

    calibration = bundle.lead_calibration if lead_calibration else None
    steps = rollout(
        bundle.stepper,
        state,
        time_hours=time_hours,
        step_hours=bundle.step_hours,
        n_steps=n_steps,
        previous=previous,
        climatology_offset=climatology_offset,
    )
    return calibrate(
        steps,
        stepper=bundle.stepper,
        state=state,
        time_hours=time_hours,
        calibration=calibration,
        climatology_offset=climatology_offset,
        previous=previous,
    )


def rollout_fields(bundle: Bundle, prepared: PreparedForecast) -> Iterator[tuple[float, np.ndarray]]:
    """Yield `(lead_hours, fields (B, C, H, W) float32)` for each step; ForecastError names a bad step."""
    device = next(iter(bundle.stepper.buffers())).device
    with torch.inference_mode():
        offset = prepared.climatology_offset
        steps = bundle_rollout(
            bundle,
            torch.from_numpy(prepared.state).to(device),
            time_hours=torch.from_numpy(prepared.init_hours.astype(np.float64)).to(device),
            n_steps=prepared.n_steps,
            previous=None if prepared.previous is None else torch.from_numpy(prepared.previous).to(device),
            climatology_offset=None if offset is None else torch.from_numpy(offset).to(device),
        )
        for step, fields in enumerate(steps, start=1):
            yield step * prepared.step_hours, fields.float().cpu().numpy()


def forecast_steps(
    bundle: Bundle, initial_state: xr.Dataset, lead_hours: float, *, init_times: InitTimes = None
) -> Iterator[tuple[float, xr.Dataset]]:
    """Yield `(lead_hours, dataset)` for each model step as it is produced.

    Each dataset holds that lead's fields with dims `([init_time,] [level,] lat, lon)` and the coordinates
    `init_time`, `lead_time` and `valid_time` (scalars where single). The input is checked before the
    first step is run, so a bad request fails before any work.
    """
    prepared = prepare(bundle, initial_state, lead_hours, init_times=init_times)
    yield from _dataset_steps(bundle, prepared, initial_state)


def _dataset_steps(
    bundle: Bundle, prepared: PreparedForecast, initial_state: xr.Dataset, on_fields: OnFields | None = None
) -> Iterator[tuple[float, xr.Dataset]]:
    for lead, fields in rollout_fields(bundle, prepared):
        if on_fields is not None:
            on_fields(lead, fields)
        yield (
            lead,
            fields_to_dataset(
                fields,
                lead_hours=lead,
                init_times=prepared.init_times,
                lat=prepared.lat,
                lon=prepared.lon,
                schema=bundle.schema,
                source=initial_state,
            ),
        )


def forecast(
    bundle: Bundle,
    initial_state: xr.Dataset,
    lead_hours: float,
    *,
    init_times: InitTimes = None,
    on_step: OnStep | None = None,
    on_fields: OnFields | None = None,
) -> xr.Dataset:
    """Roll `bundle` out from `initial_state` to `lead_hours`; every step is a `lead_time` of the result.

    `init_times`: None (the latest complete time), an ISO time, `"START/END"` (every time in it) or a list
    of times; several inits are rolled out as one batch and the result gains an `init_time` dim.
    `on_step(step, n_steps, lead_hours)` is called after each step, and `on_fields(lead_hours, fields)`
    with its canonical fields `(init, channel, lat, lon)` float32 in the bundle's channel order, north to
    south (the HTTP service streams and slices these without reading the CF dataset back). Raises
    ForecastError (bad lead or init, NaN/Inf naming the step), BundleError (channels or grid that do not
    match the model), DataError (an initial state the data layer cannot read).
    """
    pieces: list[xr.Dataset] = []
    prepared = prepare(bundle, initial_state, lead_hours, init_times=init_times)
    steps = _dataset_steps(bundle, prepared, initial_state, on_fields)
    for index, (lead, piece) in enumerate(steps, start=1):
        pieces.append(piece)
        if on_step is not None:
            on_step(index, prepared.n_steps, lead)
    result = finish_forecast(pieces, bundle=bundle, initial_state=initial_state, version=__version__)
    if prepared.offset_days:
        # How many days of history set each init's climatology correction (0: none was available).
        result.attrs["recent_anomaly_days"] = ",".join(f"{d:g}" for d in prepared.offset_days)
    return result
