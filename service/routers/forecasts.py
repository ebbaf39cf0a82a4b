"""Gridded forecast resources: create (POST), status, data (NetCDF/Zarr), map (PNG), stream (NDJSON), delete."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field, model_validator

from service.cache import RenderedResponse
from service.catalog import ModelEntry
from service.conditional import content_etag, http_date, send
from service.deps import AdminRoute, CatalogDep, ForecastFnDep, Services, ServicesDep
from service.engine import RolloutData
from service.gridded import BBox, map_png, netcdf_bytes, stream_line, zarr_zip_bytes
from service.hub import run_key
from service.jobs import Job, QueueFull
from service.problems import ApiError, PathRedactor, not_found, parameter_error, redactor
from service.query import resolve_hours, resolve_model, resolve_run, resolve_variables
from service.routers.point import too_busy
from service.runs import run_time, valid_times
from service.store import ForecastRecord, forecast_id

router = APIRouter(prefix="/v1/forecasts", tags=["gridded forecasts"])
admin_router = APIRouter(prefix="/v1/forecasts", tags=["gridded forecasts"], route_class=AdminRoute)


class BBoxBody(BaseModel):
    south: float = Field(ge=-90, le=90)
    west: float = Field(ge=-360, le=360)
    north: float = Field(ge=-90, le=90)
    east: float = Field(ge=-360, le=360)

    @model_validator(mode="after")
    def _ordered(self) -> BBoxBody:
        if self.south > self.north:
            raise ValueError("south must not exceed north")
        return self


class ForecastRequest(BaseModel):
    model: str | None = Field(default=None, description="model id; default the default model")
    run: str | None = Field(default=None, description="init time; default the latest")
    forecast_hours: int = Field(default=168, ge=1)
    variables: list[str] | None = Field(default=None, description="default all channels")
    bbox: BBoxBody | None = None


def _links(fid: str) -> dict[str, str]:
    base = f"/v1/forecasts/{fid}"
    return {
        "self": base,
        "netcdf": f"{base}/data?format=netcdf",
        "zarr": f"{base}/data?format=zarr",
        "map": f"{base}/map.png",
        "stream": f"{base}/stream",
    }


def _bbox(record: ForecastRecord) -> BBox | None:
    return None if record.bbox is None else BBox(*record.bbox)


def _status(services: Services, record: ForecastRecord) -> tuple[str, int, int, float | None]:
    """(status, steps done, total steps, computed_at) without starting anything."""
    job = services.hub.jobs.get(record.key)
    if job is not None:
        return job.status, job.steps_done, job.total_steps, None
    data = services.hub.memory.peek(record.key)
    if data is not None:
        return "completed", len(data.lead_hours), len(data.lead_hours), data.computed_at
    stored = services.store.rollout(record.key)
    if stored is not None:
        return "completed", -1, -1, stored.computed_at
    if record.key in services.hub.jobs.failures:
        return "failed", 0, 0, None
    return "missing", 0, 0, None


def _entry(catalog: CatalogDep, record: ForecastRecord) -> ModelEntry:
    entry = catalog.entries.get(record.key.model_id)
    if entry is None or entry.sha256 != record.key.model_sha256:
        raise ApiError(410, f"forecast {record.id}: its model {record.key.model_id!r} is no longer served")
    return entry


def _record(services: Services, fid: str) -> ForecastRecord:
    record = services.store.forecast(fid)
    if record is None:
        raise not_found(f"forecast {fid!r}")
    return record


def _start(services: Services, entry: ModelEntry, record: ForecastRecord, forecast_fn: ForecastFnDep) -> None:
    try:
        services.hub.obtain(entry, record.key, forecast_fn=forecast_fn, exact=True)
    except QueueFull as error:
        raise too_busy(error) from None


def _describe(services: Services, record: ForecastRecord, redact: PathRedactor) -> dict:
    status, done, total, computed_at = _status(services, record)
    body = {
        "id": record.id,
        "status": status,
        "model": record.key.model_id,
        "model_sha256": record.key.model_sha256,
        "run": record.key.run,
        "forecast_hours": record.key.hours,
        "variables": list(record.variables),
        "bbox": None
        if record.bbox is None
        else dict(zip(("south", "west", "north", "east"), record.bbox, strict=True)),
        "progress": {"steps_done": done, "total_steps": total} if done >= 0 else {"steps_done": None},
        "computed_at": None if computed_at is None else http_date(computed_at),
        "links": _links(record.id),
    }
    if status == "failed":
        body["error"] = redact(services.hub.jobs.failures.get(record.key, "rollout failed"))
    return body


@router.post("", summary="Request a gridded forecast: 202 while it computes, 200 when it exists")
async def create_forecast(
    request: Request,
    body: ForecastRequest,
    services: ServicesDep,
    catalog: CatalogDep,
    forecast_fn: ForecastFnDep,
) -> JSONResponse:
    entry = resolve_model(catalog, body.model, parameter="model")
    variables = resolve_variables(entry, body.variables, parameter="variables")
    hours = resolve_hours(entry, body.forecast_hours, None)
    run = resolve_run(entry, body.run)
    bbox = (
        None if body.bbox is None else BBox(body.bbox.south, body.bbox.west, body.bbox.north, body.bbox.east)
    )
    if bbox is not None:
        grid = entry.schema.grid
        if not (bbox.lat_mask(np.asarray(grid.lat)).any() and bbox.lon_mask(np.asarray(grid.lon)).any()):
            raise parameter_error("bbox", "contains no grid point of the model domain")
    key = run_key(entry, run, hours)
    fid = forecast_id(key, variables, None if bbox is None else bbox.as_tuple())
    record = ForecastRecord(fid, key, variables, None if bbox is None else bbox.as_tuple(), time.time())
    status, *_ = _status(services, record)
    if status == "completed" and services.store.forecast(fid) is not None:
        return JSONResponse(
            _describe(services, record, redactor(request)),
            status_code=200,
            headers={"Location": _links(fid)["self"]},
        )
    if status in ("missing", "failed"):
        _start(services, entry, record, forecast_fn)
    services.store.add_forecast(record)
    return JSONResponse(
        _describe(services, record, redactor(request)),
        status_code=202,
        headers={"Location": _links(fid)["self"]},
    )


@router.get("/{fid}", summary="Status, progress in steps, links")
async def forecast_status(
    request: Request, fid: str, services: ServicesDep, catalog: CatalogDep, forecast_fn: ForecastFnDep
) -> dict:
    record = _record(services, fid)
    status, *_ = _status(services, record)
    if status == "missing":  # lost in a restart before it finished: compute again
        _start(services, _entry(catalog, record), record, forecast_fn)
    return _describe(services, record, redactor(request))


async def _data(
    services: Services, catalog: CatalogDep, record: ForecastRecord, forecast_fn: ForecastFnDep
) -> RolloutData:
    entry = _entry(catalog, record)
    try:
        return await services.hub.get(entry, record.key, forecast_fn=forecast_fn, exact=True)
    except QueueFull as error:
        raise too_busy(error) from None


async def _cached(
    request: Request,
    services: Services,
    cache_parts: tuple,
    media_type: str,
    data: RolloutData,
    render: Callable[[], bytes | tuple[bytes, dict[str, str]]],
) -> Response:
    """Render once per `cache_parts` (off the event loop) and answer from the cache with an ETag of the
    bytes; `render` may also return headers that travel with its body (the map's plot geometry)."""
    cache_key = ("rendered", "\x1f".join(map(str, cache_parts)).encode())
    rendered = services.responses.get(cache_key)
    if rendered is None:
        body = await run_in_threadpool(render)
        body, extra = body if isinstance(body, tuple) else (body, {})
        rendered = RenderedResponse(
            body,
            media_type,
            content_etag(body),
            http_date(data.computed_at),
            data.key.run,
            data.key.model_sha256,
            extra_headers=tuple(extra.items()),
        )
        services.responses.put(cache_key, rendered)
    return send(request, rendered, max_age=services.settings.cache_max_age_s)


@router.get("/{fid}/data", summary="The forecast as CF NetCDF, or Zarr zipped")
async def forecast_data(
    request: Request,
    fid: str,
    services: ServicesDep,
    catalog: CatalogDep,
    forecast_fn: ForecastFnDep,
    format: Annotated[str, Query(pattern="^(netcdf|zarr)$", description="netcdf or zarr (a zip)")] = "netcdf",
) -> Response:
    record = _record(services, fid)
    data = await _data(services, catalog, record, forecast_fn)
    if data.path is None:
        problem = services.store.problem or "its file could not be written"
        raise ApiError(
            503, f"forecast {fid}: no download, the rollout is not stored ({problem}); map and stream work"
        )
    path, bbox, schema = data.path, _bbox(record), _entry(catalog, record).schema
    if format == "zarr":
        render = lambda: zarr_zip_bytes(path, record.variables, bbox, schema=schema)  # noqa: E731
        media = "application/zip"
    else:
        render = lambda: netcdf_bytes(path, record.variables, bbox, schema=schema)  # noqa: E731
        media = "application/x-netcdf"
    response = await _cached(
        request, services, (data.key.model_sha256, data.key.run, fid, format), media, data, render
    )
    if response.status_code == 200:
        suffix = "zarr.zip" if format == "zarr" else "nc"
        response.headers["Content-Disposition"] = f'attachment; filename="forecast-{fid}.{suffix}"'
    return response


@router.get("/{fid}/map.png", summary="A map of one variable at one lead time (PNG)")
async def forecast_map(
    request: Request,
    fid: str,
    services: ServicesDep,
    catalog: CatalogDep,
    forecast_fn: ForecastFnDep,
    variable: Annotated[str | None, Query(description="default the first variable")] = None,
    lead_hours: Annotated[float | None, Query(description="default the first lead time")] = None,
    temperature_unit: Annotated[
        Literal["native", "celsius"], Query(description="celsius: a channel in kelvin drawn in °C")
    ] = "native",
) -> Response:
    record = _record(services, fid)
    name = variable or record.variables[0]
    if name not in record.variables:
        raise parameter_error(
            "variable", f"{name!r} is not in this forecast; it has {list(record.variables)}"
        )
    data = await _data(services, catalog, record, forecast_fn)
    lead = float(data.lead_hours[0]) if lead_hours is None else lead_hours
    matches_ = np.flatnonzero(np.isclose(data.lead_hours, lead))
    if matches_.size == 0:
        raise parameter_error(
            "lead_hours",
            f"{lead:g} is not a lead time; leads are {data.lead_hours[0]:g}.."
            f"{data.lead_hours[-1]:g} every {data.lead_hours[0]:g} h",
        )
    index = int(matches_[0])
    celsius = temperature_unit == "celsius"
    render = lambda: map_png(data, variable=name, lead_index=index, bbox=_bbox(record), celsius=celsius)  # noqa: E731
    return await _cached(
        request,
        services,
        (data.key.model_sha256, data.key.run, fid, "png", name, index, celsius),
        "image/png",
        data,
        render,
    )


@router.get("/{fid}/stream", summary="NDJSON, one line per lead time as the rollout produces it")
async def forecast_stream(
    request: Request, fid: str, services: ServicesDep, catalog: CatalogDep, forecast_fn: ForecastFnDep
) -> StreamingResponse:
    record = _record(services, fid)
    entry = _entry(catalog, record)
    try:
        found = services.hub.obtain(entry, record.key, forecast_fn=forecast_fn, exact=True)
    except QueueFull as error:
        raise too_busy(error) from None
    grid = entry.schema.grid
    lat, lon = np.asarray(grid.lat), np.asarray(grid.lon)
    channels = entry.schema.channel_names
    redact = redactor(request)
    init = run_time(record.key.run)

    def line(lead: float, fields: np.ndarray) -> bytes:
        return stream_line(
            lead_hours=lead,
            valid_time=valid_times(init, lead),
            fields=fields,
            data_channels=channels,
            variables=record.variables,
            lat=lat,
            lon=lon,
            bbox=_bbox(record),
        )

    async def lines() -> AsyncIterator[bytes]:
        try:
            async for item in produced():
                yield item
        except Exception as error:  # the status line is sent already: report the failure in-band
            yield json.dumps({"error": True, "reason": redact(str(error))}).encode() + b"\n"

    async def produced() -> AsyncIterator[bytes]:
        sent = 0
        if isinstance(found, Job):
            job = found
            while not job.future.done() or sent < len(job.produced):
                if sent < len(job.produced):
                    lead, fields = job.produced[sent]
                    sent += 1
                    yield line(lead, fields)
                else:
                    await asyncio.sleep(0.02)
            data = await asyncio.wrap_future(job.future)
        else:
            data = found
        for k in range(sent, len(data.lead_hours)):
            yield line(float(data.lead_hours[k]), data.values[k])

    return StreamingResponse(lines(), media_type="application/x-ndjson")


@admin_router.delete("/{fid}", status_code=204, summary="Delete a forecast and its stored rollout (admin)")
async def delete_forecast(fid: str, services: ServicesDep) -> Response:
    record = services.store.delete_forecast(fid)
    if record is None:
        raise not_found(f"forecast {fid!r}")
    if services.store.rollout(record.key) is None:
        services.hub.memory.discard_where(lambda key, _value: key == record.key)
    services.responses.clear()
    return Response(status_code=204)
