"""Request caps checked before routing: query-string length (414) and body size (413), as plain ASGI."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


async def _reject(send: Any, status: int, reason: str, parameter: str) -> None:
    body = json.dumps({"error": True, "reason": reason, "parameter": parameter}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _BodyTooLarge(Exception):
    pass


class LimitsMiddleware:
    def __init__(
        self,
        app: Any,
        *,
        max_query_length: int,
        max_body_bytes: int,
        path_limits: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self.max_query_length = max_query_length
        self.max_body_bytes = max_body_bytes
        self.path_limits = dict(path_limits or {})  # larger bodies where a route takes files (uploads)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"")
        if len(query) > self.max_query_length:
            reason = f"query string is {len(query)} bytes; the limit is {self.max_query_length}"
            await _reject(send, 414, reason, "query")
            return
        limit = self.path_limits.get(scope.get("path", ""), self.max_body_bytes)
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                reason = f"request body is {int(value)} bytes; the limit is {limit}"
                await _reject(send, 413, reason, "body")
                return
        received = 0
        started = exceeded = False
        reason = f"request body exceeds {limit} bytes"

        async def counting_receive() -> dict[str, Any]:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: dict[str, Any]) -> None:
            # The framework turns an exception raised while reading the body into its own 400; once the
            # body went over the limit, that answer is replaced by the 413 (chunked bodies have no length).
            nonlocal started
            if exceeded:
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await _reject(send, 413, reason, "body")
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except _BodyTooLarge:
            if not started:
                await _reject(send, 413, reason, "body")
