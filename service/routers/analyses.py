"""Upload an analysis (admin): checked against every model, then a new run for each model that can start."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from service.analyses import AnalysisRejected
from service.deps import AdminRoute, ServicesDep
from service.feeds import FolderFeed
from service.ingest import check_upload_name, receive_upload, upload_folder
from service.problems import ApiError, parameter_error

UPLOAD_PATH = "/v1/analyses"

admin_router = APIRouter(prefix=UPLOAD_PATH, tags=["analyses"], route_class=AdminRoute)


@admin_router.post("", status_code=201, summary="Upload an analysis file (NetCDF or GRIB body; admin)")
async def upload_analysis(
    request: Request,
    services: ServicesDep,
    name: Annotated[str | None, Query(description="the file's name, e.g. gfs-2026112900.nc")] = None,
) -> JSONResponse:
    problem = check_upload_name(name)
    if problem is not None:
        raise parameter_error("name", problem)
    settings = services.settings
    folder = upload_folder(settings.data, settings.store_dir)
    if folder is None:
        raise ApiError(
            409, "uploads need a watched data folder (FNO_DATA) when the store is on object storage"
        )
    temp = await receive_upload(request.stream(), folder=folder, name=name)
    feed = services.folder or FolderFeed(folder, services.live)
    try:
        times = await run_in_threadpool(feed.ingest_upload, temp, final=folder / name)
    except AnalysisRejected as error:
        raise ApiError(422, str(error), parameter="body") from None
    finally:
        temp.unlink(missing_ok=True)
    return JSONResponse(
        {"analysis": name, "new_times": times, "provenance": services.live.provenance},
        status_code=201 if times else 200,
    )
