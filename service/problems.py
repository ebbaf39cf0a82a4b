"""HTTP errors of the service and the handlers that turn them (and library errors) into JSON 4xx answers.

Bodies follow Open-Meteo's shape, `{"error": true, "reason": ...}`, plus `parameter` naming the query or
body field at fault, so that no bad input ever becomes a 500.
"""

from __future__ import annotations

import logging
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


async def _api_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiError)
    return JSONResponse(_body(error.reason, error.parameter), status_code=error.status, headers=error.headers)


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    first = error.errors()[0] if error.errors() else {"loc": (), "msg": "invalid request"}
    loc = [str(p) for p in first.get("loc", ()) if p not in ("query", "body", "path", "header")]
    parameter = ".".join(loc) or "request"
    return JSONResponse(_body(f"parameter {parameter!r}: {first.get('msg')}", parameter), status_code=422)


async def _library_error(request: Request, error: Exception) -> JSONResponse:
    """Library errors reaching a route come from what the request asked for: 422 with the library's words."""
    return JSONResponse(_body(str(error), None), status_code=422)


async def _store_error(request: Request, error: Exception) -> JSONResponse:
    """The store refused a write (full or read-only disk): 503, the request may succeed later."""
    log.error("%s %s: %s", request.method, request.url.path, error)
    return JSONResponse(_body(str(error), None), status_code=503, headers={"Retry-After": "60"})


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    """The framework's own answers (unknown path 404, wrong method 405) in the same JSON shape."""
    assert isinstance(error, HTTPException)
    reason = f"{request.method} {request.url.path}: {error.detail}"
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
