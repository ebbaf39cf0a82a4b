"""HTTP caching of forecast answers: strong ETags from what determines the bytes, 304 on a match."""

from __future__ import annotations

import hashlib
from email.utils import formatdate

from fastapi import Request, Response

from service.cache import RenderedResponse


def make_etag(*parts: object) -> str:
    """A quoted strong ETag from `parts` (model sha256, run, the normalised query...)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:32]
    return f'"{digest}"'


def http_date(epoch_seconds: float) -> str:
    return formatdate(epoch_seconds, usegmt=True)


def matches(request: Request, etag: str) -> bool:
    """Whether the request's If-None-Match names `etag` (or is `*`); weak tags compare by their value."""
    header = request.headers.get("if-none-match")
    if not header:
        return False
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag in tags


def caching_headers(*, etag: str, last_modified: str | None, max_age: int) -> dict[str, str]:
    headers = {"ETag": etag, "Cache-Control": f"public, max-age={max_age}"}
    if last_modified:
        headers["Last-Modified"] = last_modified
    return headers


def not_modified(etag: str, *, last_modified: str | None, max_age: int) -> Response:
    return Response(
        status_code=304, headers=caching_headers(etag=etag, last_modified=last_modified, max_age=max_age)
    )


def send(request: Request, rendered: RenderedResponse, *, max_age: int) -> Response:
    """A cached rendering as a 200, or a 304 when the client already holds it."""
    if matches(request, rendered.etag):
        return not_modified(rendered.etag, last_modified=rendered.last_modified, max_age=max_age)
    headers = caching_headers(etag=rendered.etag, last_modified=rendered.last_modified, max_age=max_age)
    headers.update(rendered.extra_headers)
    return Response(rendered.body, media_type=rendered.media_type, headers=headers)
