"""`create_app(settings)`: the FastAPI application, its lifespan (models, store, pool) and middleware."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from fno_forecast import __version__
from fno_forecast.errors import FnoForecastError
from service import dashboard
from service.analyses import AnalysisRejected, AnalysisSet
from service.cache import LRUCache, response_cache
from service.catalog import Catalog, load_entry
from service.deps import Services, get_forecast_function
from service.events import EventLog
from service.feeds import FolderFeed, ProvenanceMiddleware, ReplayFeed, run_every, startup_sources
from service.frontcache import PointCacheMiddleware
from service.hub import ForecastHub
from service.ingest import is_watched, list_sources
from service.jobs import JobManager
from service.lease import LeaseBook, owner_id
from service.limits import LimitsMiddleware
from service.live import LiveRuns
from service.problems import PathRedactor, install_handlers
from service.routers import analyses, forecasts, health, models, point, runs, telemetry
from service.routers.analyses import UPLOAD_PATH
from service.settings import ServiceSettings
from service.store import open_store
from service.telemetry import Telemetry, TelemetryMiddleware
from service.verification import Verifier

log = logging.getLogger(__name__)
DESCRIPTION = (
    "Autoregressive Fourier-neural-operator forecasts. `GET /v1/forecast` answers point forecasts in "
    "Open-Meteo's vocabulary; `/v1/forecasts` are gridded forecast jobs (NetCDF, Zarr, PNG maps, NDJSON)."
)


def load_models(settings: ServiceSettings) -> Catalog:
    """Load every configured bundle (or the bundled default), with no initial states yet.

    A model that fails to load is reported on /ready instead of stopping the server.
    """
    from fno_forecast.bundle import default_bundle_path

    catalog = Catalog()
    for path in settings.models or [default_bundle_path()]:
        try:
            catalog.add(
                load_entry(
                    path,
                    initial_states=AnalysisSet().dataset(),
                    source="",
                    max_hours=settings.max_forecast_hours,
                )
            )
        except FnoForecastError as error:
            catalog.errors.append(str(error))
            log.error("model %s not loaded: %s", path, error)
    if settings.default_model and settings.default_model in catalog.entries:
        catalog.default_id = settings.default_model
    return catalog


def feed_startup(settings: ServiceSettings, live: LiveRuns) -> ReplayFeed | None:
    """Read the initial states (the replay's first steps, or every `--data` source) into the catalog; a
    source that does not fit the models is reported on /ready."""
    catalog = live.catalog
    replay = None
    if settings.replay is not None:
        replay = ReplayFeed(str(settings.replay), live)
        problems, label = [replay.warm_up()], f"replay of {replay.name}"
    else:
        sources, label = startup_sources(settings.data)
        problems = [live.ingest_logged(source, name=name, startup=True) for source, name in sources]
    catalog.errors.extend(problem for problem in problems if problem)
    for model_id, entry in list(catalog.entries.items()):
        catalog.entries[model_id] = replace(entry, source=label)
    return replay


def path_redactor(settings: ServiceSettings) -> PathRedactor:
    """Paths in answers become relative to the folders the operator configured: the models folder and
    the folders holding each configured bundle and the initial states (so a bundle is named by its folder)."""
    folders = [settings.models_dir, *(path.parent for path in settings.models)]
    if settings.data is not None:
        folders.append(settings.data.parent)
    roots = {f.resolve() for f in folders if f is not None and len(f.resolve().parts) > 1}
    return PathRedactor(roots=tuple(sorted(roots, key=lambda f: -len(f.parts))))  # deepest first


def build_services(settings: ServiceSettings, telemetry: Telemetry) -> Services:
    store = open_store(settings.store_dir, storage_options=settings.store_options)
    jobs = JobManager(
        workers=settings.workers, max_queue=settings.max_queue, on_finished=telemetry.observe_rollout
    )
    leases = LeaseBook(store.fs, store.lease_root, owner=owner_id(), seconds=settings.lease_s)
    hub = ForecastHub(
        store=store,
        jobs=jobs,
        memory=LRUCache(settings.memory_forecasts),
        leases=leases,
        poll_s=settings.lease_poll_s,
    )
    responses = response_cache(
        entries=settings.response_cache_entries, max_bytes=settings.response_cache_bytes
    )
    catalog = load_models(settings)
    events = EventLog(keep=settings.event_log_size)
    provenance = "replay" if settings.replay is not None else "live"
    live = LiveRuns(
        catalog=catalog,
        analyses=AnalysisSet(),
        hub=hub,
        events=events,
        verifier=Verifier(),
        responses=responses,
        retain_runs=settings.retain_runs,
        run_hours=settings.run_hours,
        provenance=provenance,
    )
    try:
        replay = feed_startup(settings, live)
    except (FnoForecastError, AnalysisRejected) as error:
        catalog.errors.append(str(error))
        log.error("initial states not loaded: %s", error)
        replay = None
    folder = (
        FolderFeed(settings.data, live) if settings.replay is None and is_watched(settings.data) else None
    )
    if folder is not None:
        folder.poller.mark_seen(list_sources(settings.data))
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
    return Services(settings, catalog, store, hub, telemetry, responses, live, folder, replay)


def create_app(settings: ServiceSettings) -> FastAPI:
    """The application. Models load in the lifespan; `/health` answers before they are ready."""
    app_telemetry = Telemetry()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = build_services(settings, app_telemetry)
        app.state.services = services
        forecast_dependency = app.dependency_overrides.get(get_forecast_function, get_forecast_function)
        services.live.forecast_fn = await forecast_dependency()
        tasks = []
        if services.folder is not None:
            tasks.append(asyncio.create_task(run_every(settings.poll_interval_s, services.folder.tick)))
        if services.replay is not None:
            tasks.append(asyncio.create_task(run_every(settings.replay_every_s, services.replay.tick)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            services.hub.jobs.shutdown()
            services.store.close()
            app.state.services = None

    app = FastAPI(title="fno-forecast", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.services = None
    app.state.redact_paths = path_redactor(settings)
    install_handlers(app)
    for module in (health, models, point, forecasts, runs, telemetry):
        app.include_router(module.router)
    for module in (models, forecasts, analyses):
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
        LimitsMiddleware,
        max_query_length=settings.max_query_length,
        max_body_bytes=settings.max_body_bytes,
        path_limits={UPLOAD_PATH: settings.max_upload_bytes},
    )
    app.add_middleware(TelemetryMiddleware, telemetry=app_telemetry)
    app.add_middleware(ProvenanceMiddleware, provenance="replay" if settings.replay is not None else "live")
    return app
