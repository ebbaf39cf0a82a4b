"""GET|HEAD /v1/forecast: point forecasts as Open-Meteo answers them, computed once and cached per request.

The query is parsed into a `ForecastRequest` (`service.om_request`), whose canonical form is the key of
the rendered-response cache, so parameters that do not change the answer add no entry.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from service.cache import RenderedResponse
from service.conditional import http_date, matches, meaning_etag, not_modified, send
from service.deps import CatalogDep, ForecastFnDep, Services, ServicesDep
from service.engine import ForecastFunction, RolloutData
from service.hub import run_key
from service.jobs import QueueFull
from service.om_flatbuffers import render_flatbuffers
from service.om_params import QueryParams, om_error, openapi_parameters
from service.om_request import ForecastRequest, parse_request
from service.om_series import answer_location, read_analysis, rollout_hours
from service.pointjson import render_csv, render_json
from service.points import OutsideDomain, PointWeights, point_weights
from service.problems import ApiError

router = APIRouter(prefix="/v1", tags=["point forecasts"])

MEDIA = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "flatbuffers": "application/octet-stream",
}


def too_busy(error: QueueFull) -> ApiError:
    return ApiError(429, str(error), headers={"Retry-After": str(error.retry_after)})


def location_weights(request: ForecastRequest) -> list[PointWeights]:
    method = "bilinear" if request.cell_selection == "bilinear" else "nearest"  # no land-sea mask
    weights = []
    for location in request.locations:
        try:
            weights.append(
                point_weights(request.entry.schema.grid, location.latitude, location.longitude, method=method)
            )
        except OutsideDomain as error:
            raise om_error(error.parameter, str(error)) from None
    return weights


async def _rollout(
    services: Services, request: ForecastRequest, forecast_fn: ForecastFunction
) -> RolloutData | None:
    hours = rollout_hours(request.entry, request)
    if hours <= 0:
        return None
    try:
        return await services.hub.get(
            request.entry, run_key(request.entry, request.run, hours), forecast_fn=forecast_fn
        )
    except QueueFull as error:
        raise too_busy(error) from None


def render(request: ForecastRequest, answers: list, generation_ms: float) -> bytes:
    if request.format == "csv":
        return render_csv(request, answers)
    if request.format == "flatbuffers":
        return render_flatbuffers(request, answers, generation_ms=generation_ms)
    return render_json(request, answers, generation_ms=generation_ms)


@router.get(
    "/forecast",
    summary="Point forecast (Open-Meteo's /v1/forecast)",
    openapi_extra={"parameters": openapi_parameters()},
)
async def point_forecast(
    request: Request, services: ServicesDep, catalog: CatalogDep, forecast_fn: ForecastFnDep
) -> Response:
    settings = services.settings
    started = time.perf_counter()
    items = request.query_params.multi_items()
    if request.method == "POST":  # Open-Meteo takes the same parameters as a form (openmeteo-requests' POST)
        items += [(k, v) for k, v in (await request.form()).multi_items() if isinstance(v, str)]
    parsed = parse_request(QueryParams(items), catalog, max_locations=settings.max_locations)
    key = parsed.cache_key()
    rendered = services.responses.get(key)
    if rendered is None:
        weights = location_weights(parsed)
        etag = meaning_etag(parsed.entry.sha256, parsed.run, repr(parsed.cache_key()))
        if matches(request, etag):
            return not_modified(etag, last_modified=None, max_age=settings.cache_max_age_s)
        data = await _rollout(services, parsed, forecast_fn)
        analysis = await run_in_threadpool(read_analysis, parsed.entry, parsed)
        answers = [
            answer_location(parsed, location, w, analysis, data)
            for location, w in zip(parsed.locations, weights, strict=True)
        ]
        body = render(parsed, answers, (time.perf_counter() - started) * 1000.0)
        computed = data.computed_at if data is not None else time.time()
        rendered = RenderedResponse(
            body, MEDIA[parsed.format], etag, http_date(computed), parsed.run, parsed.entry.sha256
        )
        services.responses.put(key, rendered)
    return send(request, rendered, max_age=settings.cache_max_age_s)  # the server sends no body to HEAD


router.add_api_route("/forecast", point_forecast, methods=["HEAD", "POST"], include_in_schema=False)
