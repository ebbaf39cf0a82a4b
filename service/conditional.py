"""HTTP conditional requests, in one place: ETags, If-None-Match, and the caching headers sent with them.

Two kinds of ETag, so that a tag never stands for two different bodies: `content_etag` is strong, a hash
of the bytes sent; `meaning_etag` is weak (`W/"..."`), a hash of what determines the answer's meaning
(model sha256, run, normalised query) for answers whose bytes may differ (a JSON body's
`generationtime_ms`), and which can be checked before anything is computed. If-None-Match compares
weakly (RFC 9110 13.1.2) and honours `*`, for forecasts, the cached point path and the dashboard alike.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from email.utils import formatdate

from fastapi import Request, Response

from service.cache import RenderedResponse


def meaning_etag(*parts: object) -> str:
    """A weak ETag from `parts` (model sha256, run, the normalised query...)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:32]
    return f'W/"{digest}"'


def content_etag(body: bytes) -> str:
    """A strong ETag of `body`'s bytes."""
    return f'"{hashlib.sha256(body).hexdigest()[:32]}"'


def http_date(epoch_seconds: float) -> str:
    return formatdate(epoch_seconds, usegmt=True)


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an If-None-Match value names `etag` or is `*`, comparing weakly: `W/"x"` and `"x"` match."""
    if not if_none_match:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag.removeprefix("W/") in tags


def matches(request: Request, etag: str) -> bool:
    """Whether the request's If-None-Match names `etag` (see `etag_matches`)."""
    return etag_matches(request.headers.get("if-none-match"), etag)


def public_cache_control(max_age: int) -> str:
    return f"public, max-age={max_age}"


def caching_headers(*, etag: str, last_modified: str | None, cache_control: str) -> dict[str, str]:
    """ETag, Cache-Control and (when known) Last-Modified: what a 200 and its 304 both carry."""
    headers = {"ETag": etag, "Cache-Control": cache_control}
    if last_modified:
        headers["Last-Modified"] = last_modified
    return headers


def rendered_headers(rendered: RenderedResponse, *, max_age: int, full: bool) -> dict[str, str]:
    """The headers of a cached rendering: caching headers, plus (`full`, for a 200) the headers that
    travel with its body (a map's plot geometry)."""
    headers = caching_headers(
        etag=rendered.etag,
        last_modified=rendered.last_modified,
        cache_control=public_cache_control(max_age),
    )
    return headers | dict(rendered.extra_headers) if full else headers


def not_modified(etag: str, *, last_modified: str | None, max_age: int) -> Response:
    headers = caching_headers(
        etag=etag, last_modified=last_modified, cache_control=public_cache_control(max_age)
    )
    return Response(status_code=304, headers=headers)


def conditional_response(
    if_none_match: str | None, body: bytes, *, media_type: str, headers: Mapping[str, str]
) -> Response:
    """A 200 with `body`, or a 304 with the same headers when If-None-Match names `headers["ETag"]`."""
    if etag_matches(if_none_match, headers["ETag"]):
        return Response(status_code=304, headers=dict(headers))
    return Response(body, media_type=media_type, headers=dict(headers))


def send(request: Request, rendered: RenderedResponse, *, max_age: int) -> Response:
    """A cached rendering as a 200, or a 304 when the client already holds it."""
    if matches(request, rendered.etag):
        return Response(status_code=304, headers=rendered_headers(rendered, max_age=max_age, full=False))
    headers = rendered_headers(rendered, max_age=max_age, full=True)
    return Response(rendered.body, media_type=rendered.media_type, headers=headers)
