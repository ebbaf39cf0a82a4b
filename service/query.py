"""Resolving what a forecast request names (model, run, horizon, channels), shared by the forecast routes.

Every problem is a 422 naming the parameter (the point route passes its own 400 `error`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from fno_forecast.data.timeaxis import format_time
from service.catalog import Catalog, ModelEntry
from service.problems import ApiError, parameter_error
from service.runs import run_time

DEFAULT_HOURS = 168


def resolve_model(catalog: Catalog, models: str | None, *, parameter: str = "models") -> ModelEntry:
    entry = catalog.get(models.strip() if models else None)
    if entry is None:
        if not catalog.entries:
            raise ApiError(503, "no model is loaded")
        raise parameter_error(parameter, f"unknown model {models!r}; available: {sorted(catalog.entries)}")
    return entry


def resolve_run(
    entry: ModelEntry,
    run: str | None,
    *,
    parameter: str = "run",
    error: Callable[[str, str], ApiError] = parameter_error,
) -> str:
    if not entry.runs:
        raise ApiError(503, f"model {entry.id!r} has no initial states")
    if run is None or not run.strip():
        return format_time(entry.runs[-1])
    try:
        wanted = run_time(run)
    except ValueError:
        raise error(parameter, f"{run!r} is not an ISO 8601 time (e.g. 2014-02-28T18:00)") from None
    index = int(np.searchsorted(np.asarray(entry.runs), wanted))
    if index >= len(entry.runs) or entry.runs[index] != wanted:
        raise error(
            parameter,
            f"no run at {format_time(wanted)}; runs go from {format_time(entry.runs[0])} to "
            f"{format_time(entry.runs[-1])} every {entry.step_hours:g} h",
        )
    return format_time(wanted)


def resolve_hours(
    entry: ModelEntry,
    forecast_hours: int | None,
    forecast_days: int | None,
    *,
    parameter: str = "forecast_hours",
) -> int:
    if forecast_hours is not None and forecast_days is not None:
        raise parameter_error("forecast_days", "give forecast_hours or forecast_days, not both")
    if forecast_days is not None:
        hours, parameter = forecast_days * 24, "forecast_days"
    else:
        hours = DEFAULT_HOURS if forecast_hours is None else forecast_hours
    if hours < 1:
        raise parameter_error(parameter, "must be at least 1 hour")
    if hours > entry.max_hours:
        raise parameter_error(parameter, f"{hours} h is beyond the model maximum of {entry.max_hours} h")
    step = entry.step_hours
    return int(math.ceil(hours / step) * step)


def resolve_variables(
    entry: ModelEntry, names: str | list[str] | None, *, parameter: str = "hourly"
) -> tuple[str, ...]:
    available = entry.schema.channel_names
    if names is None or (isinstance(names, str) and not names.strip()):
        return tuple(available)
    wanted = [n.strip() for n in names.split(",")] if isinstance(names, str) else [n.strip() for n in names]
    unknown = [n for n in wanted if n not in available]
    if unknown or not wanted:
        raise parameter_error(parameter, f"unknown variable(s) {unknown}; available: {list(available)}")
    return tuple(dict.fromkeys(wanted))
