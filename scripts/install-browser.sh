#!/usr/bin/env bash
# Install what the dashboard's browser test (tests/e2e/) needs: Debian's chromium and Playwright's
# Python package. Playwright drives /usr/bin/chromium; it never downloads a browser of its own.
#
# Usage: scripts/install-browser.sh [VENV]     (VENV defaults to .venv; run as root or with sudo for apt)
# Idempotent: each step is skipped when already done, so a second run takes about a second.
set -euo pipefail

venv="${1:-.venv}"
python="$venv/bin/python"
if [[ ! -x "$python" ]]; then
    echo "install-browser: no Python at $python (give the virtual environment as the first argument)" >&2
    exit 2
fi

if [[ -x /usr/bin/chromium ]]; then
    echo "install-browser: chromium present ($(/usr/bin/chromium --version 2>/dev/null || echo unknown version))"
else
    sudo=""
    if [[ "$(id -u)" -ne 0 ]]; then
        command -v sudo >/dev/null || { echo "install-browser: need root or sudo for apt-get" >&2; exit 2; }
        sudo="sudo"
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium
fi

if "$python" -c "import playwright.sync_api" 2>/dev/null; then
    echo "install-browser: playwright present in $venv"
else
    "$python" -m pip install --quiet "playwright>=1.45"
fi

"$python" - <<'PY'
from playwright.sync_api import sync_playwright

with sync_playwright() as p:
    browser = p.chromium.launch(
        executable_path="/usr/bin/chromium",
        args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
    )
    print(f"install-browser: chromium {browser.version} starts under playwright")
    browser.close()
PY
