"""The forecast cycle as clients see it: runs of a model, the event stream, and the running scorecard."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from service.deps import CatalogDep, ServicesDep
from service.events import event_stream, resume_id
from service.problems import redactor
from service.query import resolve_model

router = APIRouter(prefix="/v1", tags=["runs"])


@router.get("/runs", summary="A model's runs with their state, and the latest")
async def list_runs(
    request: Request,
    services: ServicesDep,
    catalog: CatalogDep,
    model: Annotated[str | None, Query(description="model id; default the default model")] = None,
) -> dict:
    entry = resolve_model(catalog, model, parameter="model")
    body = services.live.describe(entry)
    redact = redactor(request)
    for row in body["runs"]:
        if "error" in row:
            row["error"] = redact(row["error"])
    return body


@router.get(
    "/events",
    summary="Server-Sent Events: `event: run` for each new run, `event: verification` for each scoring",
    response_class=StreamingResponse,
)
async def events(
    request: Request,
    services: ServicesDep,
    last_event_id: Annotated[str | None, Header(description="resume after this event id")] = None,
) -> StreamingResponse:
    log = services.live.events
    stream = event_stream(
        log,
        after=resume_id(last_event_id, log),
        keepalive_s=services.settings.keepalive_s,
        disconnected=request.is_disconnected,
    )
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream, media_type="text/event-stream", headers=headers)


@router.get("/verification", summary="Running scorecard: RMSE and ACC per lead over recent runs, and per run")
async def verification(
    services: ServicesDep,
    catalog: CatalogDep,
    model: Annotated[str | None, Query(description="model id; default the default model")] = None,
    runs: Annotated[
        int | None, Query(ge=1, le=10000, description="runs combined per lead (default setting)")
    ] = None,
) -> dict:
    entry = resolve_model(catalog, model, parameter="model")
    last = runs or services.settings.verification_runs
    card = services.live.verifier.scorecard(entry.id, last=last)
    return {
        "model": entry.id,
        "model_sha256": entry.sha256,
        "metrics": {"rmse": "latitude-weighted RMSE", "acc": "latitude-weighted anomaly correlation"},
        "systems": ["model", "persistence", "climatology"],
        "last_runs": last,
        "provenance": services.live.provenance,
        **card,
    }
