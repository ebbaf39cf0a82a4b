"""Schemathesis checks of the service's own contract, loaded with `SCHEMATHESIS_HOOKS=tests.robustness.fuzz_checks`.

Beyond schemathesis' `not_a_server_error`: every error answer (4xx) must be a JSON object whose `reason`
names the problem in words, the shape every route and middleware of the service promises.
"""

from __future__ import annotations

import json

import schemathesis


@schemathesis.check
def error_body_is_json_with_reason(ctx, response, case) -> bool | None:
    """A 4xx/5xx answer is a JSON object with a non-empty `reason` string."""
    if response.status_code < 400:
        return None
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        raise AssertionError(
            f"{response.status_code} answer is not JSON: {response.content[:120]!r}"
        ) from None
    reason = body.get("reason") if isinstance(body, dict) else None
    if not isinstance(reason, str) or not reason.strip():
        raise AssertionError(f"{response.status_code} answer names no reason: {body!r:.200}")
    return None
