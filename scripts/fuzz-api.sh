#!/usr/bin/env bash
# Fuzz the HTTP API from its own OpenAPI schema (schemathesis) against a live server on 127.0.0.1.
#
#   scripts/fuzz-api.sh [MAX_EXAMPLES] [MAX_SECONDS]      (defaults 25 examples per operation, 300 s)
#
# Serves the tiny test bundle over synthetic initial states from a temporary folder (admin routes on, so
# they are fuzzed past the token check), runs schemathesis with the checks `not_a_server_error` and
# `error_body_is_json_with_reason` (tests/robustness/fuzz_checks.py), prints the summary and exits with
# schemathesis' status: 0 when no operation answered 5xx or a non-JSON error. Needs `pip install schemathesis`.
set -euo pipefail

MAX_EXAMPLES="${1:-25}"
MAX_SECONDS="${2:-300}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python}"
cd "$ROOT"

WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

mapfile -t ASSETS < <("$PYTHON" -m tests.robustness.liveserver prepare "$WORK")
BUNDLE="${ASSETS[0]}"
INIT="${ASSETS[1]}"
PORT="$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
TOKEN="fuzz-token"

FNO_STORE_DIR="$WORK/store" FNO_MODELS_DIR="$(dirname "$BUNDLE")" FNO_ADMIN_TOKEN="$TOKEN" FNO_MAX_QUEUE=64 \
    "$PYTHON" -m fno_forecast serve --model "$BUNDLE" --data "$INIT" --host 127.0.0.1 --port "$PORT" \
    >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

for _ in $(seq 1 600); do
    if curl -fsS "http://127.0.0.1:$PORT/ready" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then cat "$WORK/server.log"; exit 1; fi
    sleep 0.2
done

# One finished forecast, so that half the GETs on /v1/forecasts/{fid}/... reach a real resource.
FUZZ_FORECAST_ID="$(curl -fsS -X POST -H 'Content-Type: application/json' -d '{"forecast_hours": 12}' \
    "http://127.0.0.1:$PORT/v1/forecasts" | "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["id"])')"
export FUZZ_FORECAST_ID FUZZ_MODEL_ID="$(basename "$BUNDLE")"

set +e
# From the temporary folder, so that schemathesis' own cache (.schemathesis/) stays out of the repository.
# /v1/events is a Server-Sent Events stream that never ends by design: each case would wait out the
# request timeout, so it is left to tests/service/test_live_events.py.
(cd "$WORK" && PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" SCHEMATHESIS_HOOKS=tests.robustness.fuzz_checks \
    "$PYTHON" -m schemathesis.cli run \
    "http://127.0.0.1:$PORT/openapi.json" \
    --checks not_a_server_error,error_body_is_json_with_reason --exclude-path /v1/events \
    --max-examples "$MAX_EXAMPLES" --max-time "$MAX_SECONDS" \
    --phases examples,coverage,fuzzing --workers 1 --seed 1 --no-color \
    --header "Authorization: Bearer $TOKEN" \
    --request-timeout 60 --generation-database none --suppress-health-check all)
STATUS=$?
set -e
if grep -q "Traceback" "$WORK/server.log"; then
    echo "--- server log has tracebacks:"
    grep -n -A 30 "Traceback" "$WORK/server.log" | head -120
    STATUS=1
fi
exit "$STATUS"
