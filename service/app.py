"""`create_app(settings)`: the FastAPI application, its lifespan (models, store, pool) and middleware."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from fno_forecast import __version__
from fno_forecast.errors import FnoForecastError
from service import dashboard
from service.cache import LRUCache, response_cache
from service.catalog import Catalog, load_entry, open_initial_states
from service.deps import Services
from service.frontcache import PointCacheMiddleware
from service.hub import ForecastHub
from service.jobs import JobManager
from service.limits import LimitsMiddleware
from service.problems import PathRedactor, install_handlers
from service.routers import forecasts, health, models, point, telemetry
from service.settings import ServiceSettings
from service.store import ForecastStore
from service.telemetry import Telemetry, TelemetryMiddleware

log = logging.getLogger(__name__)

DESCRIPTION = (
    "Autoregressive Fourier-neural-operator forecasts. `GET /v1/forecast` answers point forecasts in "
    "Open-Meteo's vocabulary; `/v1/forecasts` are gridded forecast jobs (NetCDF, Zarr, PNG maps, NDJSON)."
)


def build_catalog(settings: ServiceSettings) -> Catalog:
    """Load every configured bundle (or the bundled default) with the configured initial states.

    A model that fails to load is reported on /ready instead of stopping the server.
    """
    from fno_forecast.bundle import default_bundle_path

    catalog = Catalog()
    try:
        states, source = open_initial_states(settings.data)
    except FnoForecastError as error:
        catalog.errors.append(str(error))
        return catalog
    for path in settings.models or [default_bundle_path()]:
        try:
            catalog.add(
                load_entry(path, initial_states=states, source=source, max_hours=settings.max_forecast_hours)
            )
        except FnoForecastError as error:
            catalog.errors.append(str(error))
            log.error("model %s not loaded: %s", path, error)
    if settings.default_model and settings.default_model in catalog.entries:
        catalog.default_id = settings.default_model
    return catalog


def path_redactor(settings: ServiceSettings) -> PathRedactor:
    """Paths in answers become relative to the folders the operator configured: the models folder and
    the folders holding each configured bundle and the initial states (so a bundle is named by its folder)."""
    folders = [settings.models_dir, *(path.parent for path in settings.models)]
    if settings.data is not None:
        folders.append(settings.data.parent)
    roots = {f.resolve() for f in folders if f is not None and len(f.resolve().parts) > 1}
    return PathRedactor(roots=tuple(sorted(roots, key=lambda f: -len(f.parts))))  # deepest first


def build_services(settings: ServiceSettings, telemetry: Telemetry) -> Services:
    store = ForecastStore(settings.store_dir)
    jobs = JobManager(
        workers=settings.workers, max_queue=settings.max_queue, on_finished=telemetry.observe_rollout
    )
    hub = ForecastHub(store=store, jobs=jobs, memory=LRUCache(settings.memory_forecasts))
    responses = response_cache(
        entries=settings.response_cache_entries, max_bytes=settings.response_cache_bytes
    )
    catalog = build_catalog(settings)
    telemetry.watch(
        gauges={
            "fno_rollout_queue_depth": ("Rollouts queued or running.", lambda: jobs.depth),
            "fno_models_loaded": ("Models the service answers for.", lambda: len(catalog.entries)),
        },
        counters={
            "fno_cache_hits_total": (
                "Cache hits by cache.",
                "cache",
                lambda: {"rollout": hub.memory.hits, "response": responses.hits},
            ),
            "fno_cache_misses_total": (
                "Cache misses by cache.",
                "cache",
                lambda: {"rollout": hub.memory.misses, "response": responses.misses},
            ),
            "fno_rollouts_total": (
                "Rollouts computed, and loaded back from the store.",
                "how",
                lambda: {"computed": hub.rollouts_computed, "store_load": hub.store_loads},
            ),
        },
    )
    return Services(settings, catalog, store, hub, telemetry, responses)


def create_app(settings: ServiceSettings) -> FastAPI:
    """The application. Models load in the lifespan; `/health` answers before they are ready."""
    app_telemetry = Telemetry()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = build_services(settings, app_telemetry)
        app.state.services = services
        try:
            yield
        finally:
            services.hub.jobs.shutdown()
            services.store.close()
            app.state.services = None

    app = FastAPI(title="fno-forecast", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.services = None
    app.state.redact_paths = path_redactor(settings)
    install_handlers(app)
    for module in (health, models, point, forecasts, telemetry):
        app.include_router(module.router)
    for module in (models, forecasts):
        app.include_router(module.admin_router)
    app.include_router(dashboard.router)
    # Outermost last: telemetry, limits, CORS, then the cached point path (so cached answers get CORS too).
    app.add_middleware(PointCacheMiddleware)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "If-None-Match"],
            expose_headers=["ETag", "Last-Modified", "Retry-After", "Location", "X-Map-Extent", "X-Plot-Box"],
        )
    app.add_middleware(
        LimitsMiddleware, max_query_length=settings.max_query_length, max_body_bytes=settings.max_body_bytes
    )
    app.add_middleware(TelemetryMiddleware, telemetry=app_telemetry)
    return app
