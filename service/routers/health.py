"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from service.problems import redactor

router = APIRouter(tags=["health"])


@router.get("/health", summary="The process is alive")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready", summary="Models are loaded and forecasts can be served")
async def ready(request: Request) -> JSONResponse:
    services = getattr(request.app.state, "services", None)
    if services is None:
        return JSONResponse({"status": "starting", "models": []}, status_code=503)
    catalog, redact = services.catalog, redactor(request)
    problem = services.store.problem
    body = {
        "status": "ready" if catalog.ready else "no models",
        "models": sorted(catalog.entries),
        "default_model": catalog.default_id,
        "errors": [redact(error) for error in catalog.errors],
        "store": {"writable": services.store.writable, "problem": problem and redact(problem)},
        "provenance": services.live.provenance,
        "analyses": {
            "sources": len(services.live.analyses.sources),
            "times": len(services.live.analyses.times),
        },
    }
    if services.folder is not None:
        body["refused_analyses"] = [redact(reason) for reason in services.folder.refused.values()]
    if services.replay is not None:
        body["replay"] = services.replay.describe() | {"every_s": services.settings.replay_every_s}
    return JSONResponse(body, status_code=200 if catalog.ready else 503)
