"""HTTP caching of forecast answers: ETags, 304 on a match.

Two kinds of ETag, so that a tag never stands for two different bodies: `content_etag` is strong, a hash
of the bytes sent; `meaning_etag` is weak (`W/"..."`), a hash of what determines the answer's meaning
(model sha256, run, normalised query) for answers whose bytes may differ (a JSON body's
`generationtime_ms`), and which can be checked before anything is computed.
"""

from __future__ import annotations

import hashlib
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
    """Whether an If-None-Match value names `etag` or is `*`, comparing weakly (RFC 9110 13.1.2): `W/"x"`
    and `"x"` match each other."""
    if not if_none_match:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag.removeprefix("W/") in tags


def matches(request: Request, etag: str) -> bool:
    """Whether the request's If-None-Match names `etag` (see `etag_matches`)."""
    return etag_matches(request.headers.get("if-none-match"), etag)


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
