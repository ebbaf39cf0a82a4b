"""The cached point path: answer a repeated GET/HEAD /v1/forecast from the rendered-response cache in plain ASGI.

The route renders each answer once and stores it under the parsed request's canonical key
(`ForecastRequest.cache_key`); this middleware parses the query the same way and sends the stored
answer (or a 304 when the client's If-None-Match names its ETag) without routing or dependency
resolution. A query that does not parse, or a miss, falls through to the route, which answers errors
and is what documents the parameters in OpenAPI.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from service.cache import RenderedResponse
from service.conditional import etag_matches, rendered_headers
from service.om_params import QueryParams
from service.om_request import parse_request
from service.problems import ApiError

POINT_PATH = "/v1/forecast"


def _headers(rendered: RenderedResponse, max_age: int, *, full: bool) -> list[tuple[bytes, bytes]]:
    headers = rendered_headers(rendered, max_age=max_age, full=full)
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]


def cached_answer(services: Any, query_string: bytes) -> RenderedResponse | None:
    """The stored answer to this query, or None (a miss, or a query the route must answer with an error)."""
    items = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    try:
        parsed = parse_request(
            QueryParams(items), services.catalog, max_locations=services.settings.max_locations
        )
    except ApiError:
        return None
    return services.responses.get(parsed.cache_key())


class PointCacheMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != POINT_PATH or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        services = getattr(scope["app"].state, "services", None)
        rendered = None if services is None else cached_answer(services, scope["query_string"])
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
        body = b"" if scope["method"] == "HEAD" else rendered.body
        await send({"type": "http.response.body", "body": body})


def _matches(scope: dict[str, Any], etag: str) -> bool:
    header = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"if-none-match"), None)
    return etag_matches(header, etag)
