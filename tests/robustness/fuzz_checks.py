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


@schemathesis.hook
def flatmap_path_parameters(ctx, path_parameters):
    """Half the GETs name resources that exist (`FUZZ_FORECAST_ID`, `FUZZ_MODEL_ID`), to reach past the 404s."""
    import os

    from hypothesis import strategies as st

    if not path_parameters or ctx.operation is None or ctx.operation.method.upper() != "GET":
        return st.just(path_parameters)
    known = {"fid": os.environ.get("FUZZ_FORECAST_ID"), "model_id": os.environ.get("FUZZ_MODEL_ID")}
    real = {k: known[k] if known.get(k) else v for k, v in path_parameters.items()}
    return st.sampled_from([path_parameters, real])
