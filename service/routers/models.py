"""Models: list, describe, and register a bundle from the configured models folder (admin)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from service.basemap import basemap
from service.catalog import MODEL_ID, load_entry
from service.deps import AdminRoute, ServicesDep
from service.problems import ApiError, not_found, parameter_error

router = APIRouter(prefix="/v1/models", tags=["models"])
admin_router = APIRouter(prefix="/v1/models", tags=["models"], route_class=AdminRoute)


class RegisterModel(BaseModel):
    path: str = Field(description="bundle folder, relative to the configured models folder (FNO_MODELS_DIR)")
    id: str | None = Field(default=None, description="model id; default from the bundle")


@router.get("", summary="Models served")
async def list_models(services: ServicesDep) -> dict:
    catalog = services.catalog
    return {
        "default": catalog.default_id,
        "models": [
            {
                "id": e.id,
                "sha256": e.sha256,
                "channels": list(e.schema.channel_names),
                "step_hours": e.step_hours,
            }
            for e in catalog.entries.values()
        ],
    }


@router.get(
    "/{model_id}", summary="A model: channels with units, grid, time step, training period, skill card"
)
async def describe_model(model_id: str, services: ServicesDep) -> dict:
    entry = services.catalog.entries.get(model_id)
    if entry is None:
        raise not_found(f"model {model_id!r}")
    return entry.describe()


@router.get(
    "/{model_id}/basemap",
    summary="Coastlines and borders over the model's grid (Natural Earth), as lines of [lon, lat]",
)
async def model_basemap(model_id: str, services: ServicesDep) -> dict:
    entry = services.catalog.entries.get(model_id)
    if entry is None:
        raise not_found(f"model {model_id!r}")
    lat, lon = np.asarray(entry.schema.grid.lat, float), np.asarray(entry.schema.grid.lon, float)
    half_lat = float(np.abs(np.diff(lat)).min()) / 2 if lat.size > 1 else 0.0
    half_lon = float(np.abs(np.diff(lon)).min()) / 2 if lon.size > 1 else 0.0
    extent = {
        "lon_min": float(lon.min()) - half_lon,
        "lon_max": float(lon.max()) + half_lon,
        "lat_min": max(-90.0, float(lat.min()) - half_lat),
        "lat_max": min(90.0, float(lat.max()) + half_lat),
    }
    return await run_in_threadpool(lambda: basemap(**extent))


def resolve_bundle_path(models_dir: Path, relative: str) -> Path:
    """`models_dir / relative`, refusing anything that resolves outside `models_dir`."""
    if not relative or relative.startswith(("/", "\\")) or "\x00" in relative:
        raise parameter_error("path", "must be a folder relative to the models folder")
    root = models_dir.resolve()
    target = (root / relative).resolve()
    if target != root and root not in target.parents:
        raise parameter_error("path", "escapes the models folder")
    if not target.is_dir():
        raise parameter_error("path", f"no bundle folder {relative!r} in the models folder")
    return target


def _resolved(models_dir: Path, relative: str) -> Path:
    """`resolve_bundle_path`, with what the file system refuses (a name too long, a loop) as a 422."""
    try:
        return resolve_bundle_path(models_dir, relative)
    except OSError as error:
        raise parameter_error("path", f"cannot be opened: {error.strerror or type(error).__name__}") from None


@admin_router.post("", status_code=201, summary="Register a bundle from the models folder (admin)")
async def register_model(body: RegisterModel, services: ServicesDep) -> JSONResponse:
    settings = services.settings
    if settings.models_dir is None:
        raise ApiError(403, "registering models is off: FNO_MODELS_DIR is not set")
    if body.id is not None and not MODEL_ID.match(body.id):
        raise parameter_error("id", "use 1-64 letters, digits, '_', '.', '-'")
    path = _resolved(settings.models_dir, body.path)
    catalog = services.catalog
    reference = catalog.get(None)
    if reference is None:
        raise ApiError(503, "no initial states loaded to pair the model with")
    try:
        entry = await run_in_threadpool(
            load_entry,
            path,
            initial_states=reference.initial_states,
            source=reference.source,
            max_hours=settings.max_forecast_hours,
            model_id=body.id,
        )
    except OSError as error:  # unreadable files inside the bundle folder
        reason = f"bundle {body.path!r} cannot be read: {error.strerror or type(error).__name__}"
        raise parameter_error("path", reason) from None
    existed = entry.id in catalog.entries
    catalog.add(entry)
    services.responses.clear()
    return JSONResponse(
        entry.describe(), status_code=200 if existed else 201, headers={"Location": f"/v1/models/{entry.id}"}
    )
