"""Browser-test set-up: headless Debian chromium driven by Playwright, and a real uvicorn server.

Both skip with a reason where absent; `scripts/install-browser.sh VENV` installs them. Playwright never
downloads a browser here: it drives `/usr/bin/chromium` (override with `FNO_CHROMIUM`).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> Path:
    return Path(os.environ.get("FNO_CHROMIUM", "/usr/bin/chromium"))


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """A headless chromium `playwright.sync_api.Browser`; skips where chromium or playwright are absent."""
    path = chromium_path()
    if not path.is_file() and shutil.which(str(path)) is None:
        pytest.skip(f"chromium not found at {path} (run scripts/install-browser.sh, or set FNO_CHROMIUM)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (run scripts/install-browser.sh)"
    )
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(path), args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


@contextmanager
def live_server(app: Any, *, startup_timeout_s: float = 60.0) -> Iterator[str]:
    """Serve `app` with uvicorn on a free loopback port in a thread; yields the base URL.

    The socket is bound here and handed to uvicorn, so no other process can take the port in between.
    """
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout_s
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn stopped during start-up (see the log above)")
        if time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start within {startup_timeout_s:g} s")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
