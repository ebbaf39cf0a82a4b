"""Request dependencies (`Annotated[..., Depends(...)]`), overridable in tests with `dependency_overrides`."""

from __future__ import annotations

import hmac
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from service.cache import LRUCache, RenderedResponse
from service.catalog import Catalog
from service.engine import ForecastFunction, library_forecast
from service.hub import ForecastHub
from service.metrics import Metrics
from service.problems import ApiError
from service.settings import ServiceSettings
from service.store import ForecastStore


@dataclass(frozen=True)
class Services:
    """What the lifespan builds and the routes use; lives on `app.state.services`."""

    settings: ServiceSettings
    catalog: Catalog
    store: ForecastStore
    hub: ForecastHub
    metrics: Metrics
    responses: LRUCache[Hashable, RenderedResponse]


async def get_services(request: Request) -> Services:
    services = getattr(request.app.state, "services", None)
    if services is None:
        raise ApiError(503, "the service is starting; models are not loaded yet")
    return services


async def get_settings(request: Request) -> ServiceSettings:
    return request.app.state.settings


async def get_catalog(services: Annotated[Services, Depends(get_services)]) -> Catalog:
    return services.catalog


async def get_forecast_function() -> ForecastFunction:
    """The function rollouts run (tests override it to gate or count rollouts)."""
    return library_forecast


async def require_admin(
    request: Request, settings: Annotated[ServiceSettings, Depends(get_settings)]
) -> None:
    """Admin routes need `Authorization: Bearer $FNO_ADMIN_TOKEN`; with no token configured they are off (403)."""
    token = settings.admin_token
    if token is None:
        raise ApiError(403, "admin routes are off: the server has no FNO_ADMIN_TOKEN set")
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise ApiError(
            401,
            "admin route: send Authorization: Bearer <FNO_ADMIN_TOKEN>",
            headers={"WWW-Authenticate": "Bearer"},
        )


ServicesDep = Annotated[Services, Depends(get_services)]
SettingsDep = Annotated[ServiceSettings, Depends(get_settings)]
CatalogDep = Annotated[Catalog, Depends(get_catalog)]
ForecastFnDep = Annotated[ForecastFunction, Depends(get_forecast_function)]
AdminDep = Annotated[None, Depends(require_admin)]
