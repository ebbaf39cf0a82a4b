"""HTTP errors of the service and the handlers that turn them (and library errors) into JSON 4xx answers.

Bodies follow Open-Meteo's shape, `{"error": true, "reason": ...}`, plus `parameter` naming the query or
body field at fault, so that no bad input ever becomes a 500.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from fno_forecast.errors import FnoForecastError
from service.store import StoreWriteError

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error answered with `status` and a JSON body; `parameter` names the input at fault."""

    def __init__(
        self,
        status: int,
        reason: str,
        *,
        parameter: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.parameter = parameter
        self.headers = headers or {}


# An absolute POSIX or Windows path: starts a token, runs to whitespace or a quote; trailing punctuation
# (`/a/b: reason`, `'/a/b',`) is not part of it.
_ABSOLUTE_PATH = re.compile(r"""(?<![\w.~/\\-])(?:/|[A-Za-z]:\\)[^\s'"`<>|]*[^\s'"`<>|:,;.)\]]""")


@dataclass(frozen=True)
class PathRedactor:
    """Rewrites the host's filesystem paths in text meant for clients (error bodies, /ready, model cards).

    A path under one of `roots` becomes relative to it (the models folder: what an admin names when
    registering a bundle); any other absolute path becomes its last component. `roots` are tried in
    order. Logs keep the full paths.
    """

    roots: tuple[Path, ...] = ()

    def __call__(self, text: str) -> str:
        return _ABSOLUTE_PATH.sub(self._public, text)

    def _public(self, match: re.Match[str]) -> str:
        text = match.group(0)
        if not text.startswith("/"):
            return PureWindowsPath(text).name or "(a folder)"
        path = Path(text)
        for root in self.roots:
            for base in dict.fromkeys((root, root.resolve())):
                if path.is_relative_to(base) and path != base:
                    return path.relative_to(base).as_posix()
        return path.name or "(a folder)"


def parameter_error(parameter: str, reason: str) -> ApiError:
    """A 422 naming `parameter`."""
    return ApiError(422, f"parameter {parameter!r}: {reason}", parameter=parameter)


def not_found(what: str) -> ApiError:
    return ApiError(404, f"{what} not found")


def _body(reason: str, parameter: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"error": True, "reason": reason}
    if parameter is not None:
        body["parameter"] = parameter
    return body


def redactor(request: Request) -> PathRedactor:
    """The app's `PathRedactor` (set by `create_app`)."""
    return getattr(request.app.state, "redact_paths", PathRedactor())


async def _api_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiError)
    body = _body(redactor(request)(error.reason), error.parameter)
    return JSONResponse(body, status_code=error.status, headers=error.headers)


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    first = error.errors()[0] if error.errors() else {"loc": (), "msg": "invalid request"}
    loc = [str(p) for p in first.get("loc", ()) if p not in ("query", "body", "path", "header")]
    parameter = ".".join(loc) or "request"
    reason = redactor(request)(f"parameter {parameter!r}: {first.get('msg')}")
    return JSONResponse(_body(reason, parameter), status_code=422)


async def _library_error(request: Request, error: Exception) -> JSONResponse:
    """Library errors reaching a route come from what the request asked for: 422 with the library's words."""
    return JSONResponse(_body(redactor(request)(str(error)), None), status_code=422)


async def _store_error(request: Request, error: Exception) -> JSONResponse:
    """The store refused a write (full or read-only disk): 503, the request may succeed later."""
    log.error("%s %s: %s", request.method, request.url.path, error)
    body = _body(redactor(request)(str(error)), None)
    return JSONResponse(body, status_code=503, headers={"Retry-After": "60"})


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    """The framework's own answers (unknown path 404, wrong method 405) in the same JSON shape."""
    assert isinstance(error, HTTPException)
    reason = f"{request.method} {request.url.path}: {redactor(request)(str(error.detail))}"
    return JSONResponse(_body(reason, None), status_code=error.status_code, headers=error.headers)


async def _unexpected_error(request: Request, error: Exception) -> JSONResponse:
    """Last resort: a bug still answers JSON naming the failing route, and the traceback goes to the log."""
    log.error("%s %s failed", request.method, request.url.path, exc_info=error)
    reason = f"internal error answering {request.method} {request.url.path} ({type(error).__name__})"
    return JSONResponse(_body(reason, None), status_code=500)


def install_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(FnoForecastError, _library_error)
    app.add_exception_handler(StoreWriteError, _store_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
