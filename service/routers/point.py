"""GET /v1/forecast: point forecasts in Open-Meteo's vocabulary, computed once and cached per ETag."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from service.cache import RenderedResponse
from service.conditional import http_date, matches, meaning_etag, not_modified, send
from service.deps import CatalogDep, ForecastFnDep, ServicesDep
from service.hub import run_key
from service.jobs import QueueFull
from service.pointjson import render_csv, render_json
from service.points import OutsideDomain, point_weights
from service.problems import ApiError, parameter_error
from service.query import (
    PointQuery,
    choice,
    parse_locations,
    resolve_hours,
    resolve_model,
    resolve_run,
    resolve_variables,
)

router = APIRouter(prefix="/v1", tags=["point forecasts"])

MEDIA = {"json": "application/json", "csv": "text/csv; charset=utf-8"}


def too_busy(error: QueueFull) -> ApiError:
    return ApiError(429, str(error), headers={"Retry-After": str(error.retry_after)})


@router.get("/forecast", summary="Point forecast (Open-Meteo style)")
async def point_forecast(
    request: Request,
    services: ServicesDep,
    catalog: CatalogDep,
    forecast_fn: ForecastFnDep,
    latitude: Annotated[
        str | None, Query(description="degrees north; comma list for several locations")
    ] = None,
    longitude: Annotated[str | None, Query(description="degrees east in any convention (-100 = 260)")] = None,
    hourly: Annotated[str | None, Query(description="comma list of variables; default all")] = None,
    forecast_hours: Annotated[int | None, Query(description="horizon in hours (default 168)")] = None,
    forecast_days: Annotated[int | None, Query(description="horizon in days")] = None,
    models: Annotated[str | None, Query(description="model id; default the default model")] = None,
    run: Annotated[str | None, Query(description="init time, e.g. 2014-02-28T18:00; default latest")] = None,
    timeformat: Annotated[str | None, Query(description="iso8601 or unixtime")] = None,
    format: Annotated[str | None, Query(description="json or csv")] = None,
    cell_selection: Annotated[str | None, Query(description="bilinear (default) or nearest")] = None,
) -> Response:
    settings = services.settings
    cache_key = (catalog.default_id or "", request.scope["query_string"])
    rendered = services.responses.get(cache_key)
    if rendered is not None:
        return send(request, rendered, max_age=settings.cache_max_age_s)

    started = time.perf_counter()
    entry = resolve_model(catalog, models)
    query = PointQuery(
        entry=entry,
        locations=parse_locations(latitude, longitude, limit=settings.max_locations),
        variables=resolve_variables(entry, hourly),
        hours=resolve_hours(entry, forecast_hours, forecast_days),
        run=resolve_run(entry, run),
        timeformat=choice("timeformat", timeformat, ("iso8601", "unixtime"), "iso8601"),  # type: ignore[arg-type]
        format=choice("format", format, ("json", "csv"), "json"),  # type: ignore[arg-type]
        cell_selection=choice("cell_selection", cell_selection, ("bilinear", "nearest"), "bilinear"),  # type: ignore[arg-type]
    )
    weights = []
    for lat, lon in query.locations:
        try:
            weights.append(point_weights(entry.schema.grid, lat, lon, method=query.cell_selection))
        except OutsideDomain as error:
            raise parameter_error(error.parameter, str(error)) from None
    etag = meaning_etag(entry.sha256, query.run, query.normalised())
    if matches(request, etag):
        return not_modified(etag, last_modified=None, max_age=settings.cache_max_age_s)
    key = run_key(entry, query.run, query.hours)
    try:
        data = await services.hub.get(entry, key, forecast_fn=forecast_fn)
    except QueueFull as error:
        raise too_busy(error) from None
    if query.format == "csv":
        body = render_csv(data, query, weights)
    else:
        body = render_json(data, query, weights, generation_ms=(time.perf_counter() - started) * 1000.0)
    rendered = RenderedResponse(
        body, MEDIA[query.format], etag, http_date(data.computed_at), query.run, entry.sha256
    )
    services.responses.put(cache_key, rendered)
    return send(request, rendered, max_age=settings.cache_max_age_s)
