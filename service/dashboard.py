"""The built-in dashboard: one static page (HTML, CSS, plain JavaScript) shipped inside the package.

`GET /` answers the page and `GET /static/{name}` its assets (stylesheet, chart, skill-card and
map-geometry scripts, main script, and the vendored chart library uPlot in `static/vendor/`, MIT licence
beside it). Nothing is built and nothing is fetched from outside: the page talks only to this service's own `/v1/...` routes, with relative URLs so that it
keeps working behind a reverse proxy that mounts the service under a prefix. A Content-Security-Policy
header makes the browser refuse anything else (scripts, styles, images or API calls from other origins).

Include it in an app with one line: `app.include_router(dashboard.router)`.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import HTMLResponse, Response

from service.conditional import caching_headers, conditional_response, content_etag
from service.problems import not_found

STATIC_PACKAGE = "service"
STATIC_FOLDER = "static"

# The assets the page may load, and their media types. A fixed table rather than a file-system lookup:
# no request path ever reaches the file system, so there is nothing to traverse.
ASSETS: dict[str, str] = {
    "app.css": "text/css; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "chart.js": "text/javascript; charset=utf-8",
    "skill.js": "text/javascript; charset=utf-8",
    "mapgeometry.js": "text/javascript; charset=utf-8",
    "basemap.js": "text/javascript; charset=utf-8",
    "scorecard.js": "text/javascript; charset=utf-8",
    "vendor/uPlot.iife.min.js": "text/javascript; charset=utf-8",
    "vendor/uPlot.min.css": "text/css; charset=utf-8",
}

# blob: for the map image, which the page fetches itself to read its geometry headers.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'"
)

# Short: a new release of the page shows within minutes, and If-None-Match keeps re-checks cheap.
ASSET_CACHE_CONTROL = "public, max-age=300"

router = APIRouter(tags=["dashboard"])


@lru_cache(maxsize=len(ASSETS) + 1)  # the page and its assets
def read_asset(name: str) -> bytes:
    """The bytes of `static/<name>` from the installed package (works from a wheel or a source tree)."""
    return resources.files(STATIC_PACKAGE).joinpath(STATIC_FOLDER, *name.split("/")).read_bytes()


@lru_cache(maxsize=len(ASSETS) + 1)  # the page and its assets
def asset_etag(name: str) -> str:
    """A strong ETag of an asset's bytes."""
    return content_etag(read_asset(name))


def _security_headers() -> dict[str, str]:
    return {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def dashboard_page() -> HTMLResponse:
    """The dashboard page: map, lead-time slider, point chart and skill card of the default model."""
    headers = _security_headers() | {"Cache-Control": "no-cache"}
    return HTMLResponse(read_asset("index.html"), headers=headers)


@router.get("/static/{name:path}", include_in_schema=False)
def dashboard_asset(name: str, if_none_match: Annotated[str | None, Header()] = None) -> Response:
    """One of the page's assets (see ASSETS), 304 when `If-None-Match` holds its ETag; else 404."""
    media_type = ASSETS.get(name)
    if media_type is None:
        raise not_found(f"static file {name!r}")
    caching = caching_headers(etag=asset_etag(name), last_modified=None, cache_control=ASSET_CACHE_CONTROL)
    headers = _security_headers() | caching
    return conditional_response(if_none_match, read_asset(name), media_type=media_type, headers=headers)
