"""The cached point path: answer a repeated GET /v1/forecast from the rendered-response cache in plain ASGI.

The route renders each answer once and stores it under the query string; this middleware sends that
stored answer (or a 304 when the client's If-None-Match names its ETag) without routing, validation or
dependency resolution, which is what makes cached point forecasts cost little more than a constant.
A miss falls through to the route, which is also what documents the parameters in OpenAPI.
"""

from __future__ import annotations

from typing import Any

from service.cache import RenderedResponse
from service.conditional import etag_matches, rendered_headers

POINT_PATH = "/v1/forecast"


def _headers(rendered: RenderedResponse, max_age: int, *, full: bool) -> list[tuple[bytes, bytes]]:
    headers = rendered_headers(rendered, max_age=max_age, full=full)
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]


class PointCacheMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != POINT_PATH or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        services = getattr(scope["app"].state, "services", None)
        rendered = None
        if services is not None:
            key = (services.catalog.default_id or "", scope["query_string"])
            rendered = services.responses.get(key)
        if rendered is None:
            await self.app(scope, receive, send)
            return
        scope["route_template"] = POINT_PATH
        max_age = services.settings.cache_max_age_s
        if _matches(scope, rendered.etag):
            headers = _headers(rendered, max_age, full=False)
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        headers = _headers(rendered, max_age, full=True) + [
            (b"content-type", rendered.media_type.encode()),
            (b"content-length", str(len(rendered.body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": rendered.body})


def _matches(scope: dict[str, Any], etag: str) -> bool:
    header = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"if-none-match"), None)
    return etag_matches(header, etag)
