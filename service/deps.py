"""Request dependencies (`Annotated[..., Depends(...)]`), overridable in tests with `dependency_overrides`."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute

from service.cache import LRUCache, RenderedResponse
from service.catalog import Catalog
from service.engine import ForecastFunction, library_forecast
from service.feeds import FolderFeed, ReplayFeed
from service.hub import ForecastHub
from service.live import LiveRuns
from service.objectstore import ObjectForecastStore
from service.problems import ApiError
from service.settings import ServiceSettings
from service.store import ForecastStore
from service.telemetry import Telemetry


@dataclass(frozen=True)
class Services:
    """What the lifespan builds and the routes use; lives on `app.state.services`."""

    settings: ServiceSettings
    catalog: Catalog
    store: ForecastStore | ObjectForecastStore
    hub: ForecastHub
    telemetry: Telemetry
    responses: LRUCache[Hashable, RenderedResponse]
    live: LiveRuns
    folder: FolderFeed | None = None  # the watched --data folder or glob
    replay: ReplayFeed | None = None


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


def require_admin(request: Request) -> None:
    """Admin routes need `Authorization: Bearer $FNO_ADMIN_TOKEN`; with no token configured they are off (403)."""
    token = request.app.state.settings.admin_token
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


class AdminRoute(APIRoute):
    """A route for admins (`APIRouter(route_class=AdminRoute)`): the bearer token is checked before the
    request body is read or parsed, so nobody without it learns how the body is validated."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()

        async def checked(request: Request) -> Response:
            require_admin(request)
            return await handler(request)

        return checked


ServicesDep = Annotated[Services, Depends(get_services)]
SettingsDep = Annotated[ServiceSettings, Depends(get_settings)]
CatalogDep = Annotated[Catalog, Depends(get_catalog)]
ForecastFnDep = Annotated[ForecastFunction, Depends(get_forecast_function)]
