"""GET /metrics: the app's Prometheus metrics (see `service.telemetry`)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from service.deps import ServicesDep

router = APIRouter(tags=["metrics"])


@router.get("/metrics", summary="Prometheus text exposition")
async def prometheus_metrics(services: ServicesDep) -> Response:
    telemetry = services.telemetry
    return Response(telemetry.render(), media_type=telemetry.content_type)
