"""Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from service.deps import ServicesDep

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=PlainTextResponse, summary="Prometheus text exposition")
async def metrics(services: ServicesDep) -> PlainTextResponse:
    return PlainTextResponse(services.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
