"""A real `fno-forecast serve` process on a free loopback port, for fault, fuzz and soak tests.

The server runs the tiny test bundle (`tests.fixtures.bundle`) over synthetic initial states, in its own
process group so that a test can SIGKILL it like a crashed host would. Only 127.0.0.1 is ever bound.

    python -m tests.robustness.liveserver prepare DIR   # writes DIR/models/tiny and DIR/init.nc
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HOST = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def run_times(n_steps: int) -> tuple[str, ...]:
    """The runs `write_initial_states(n_steps=...)` offers that have a previous step: T06 onwards."""
    start = np.datetime64("2013-01-01T00:00")
    return tuple(str(start + np.timedelta64(6 * i, "h")) for i in range(1, n_steps))


def prepare_assets(directory: Path, *, n_steps: int = 6) -> tuple[Path, Path]:
    """The tiny bundle at `directory/models/tiny` and `n_steps` initial states at `directory/init.nc`."""
    from tests.fixtures.bundle import build_tiny_bundle, write_initial_states

    directory = Path(directory)
    bundle = directory / "models" / "tiny"
    if not (bundle / "model.json").is_file():
        build_tiny_bundle(bundle)
    init = directory / "init.nc"
    if not init.is_file():
        write_initial_states(init, n_steps=n_steps)
    return bundle, init


def read_rss_kib(pid: int) -> int:
    """Resident set size of process `pid` in KiB, from /proc/PID/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/status has no VmRSS line")


@dataclass
class LiveServer:
    """`fno-forecast serve` in a child process; `url` is `http://127.0.0.1:PORT`."""

    bundle: Path
    initial_states: Path
    store_dir: Path
    log_path: Path
    port: int = field(default_factory=free_port)
    workers: int = 2
    max_queue: int = 8
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, *, timeout_s: float = 120.0) -> LiveServer:
        """Start the server and wait until /ready answers 200 (raises with the log's tail otherwise)."""
        env = {
            **os.environ,
            "FNO_STORE_DIR": str(self.store_dir),
            "FNO_MODELS_DIR": str(self.bundle.parent),
            "FNO_MAX_QUEUE": str(self.max_queue),
            "PYTHONUNBUFFERED": "1",
            **self.env,
        }
        command = [
            sys.executable,
            "-m",
            "fno_forecast",
            "serve",
            "--model",
            str(self.bundle),
            "--data",
            str(self.initial_states),
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
        ]
        log = open(self.log_path, "ab")  # noqa: SIM115 (the child keeps writing after this returns)
        self.process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/ready", timeout=5) as response:
                    if response.status == 200:
                        return self
            except (OSError, urllib.error.HTTPError):
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server not ready in {timeout_s:.0f} s:\n{self.log_tail()}")

    @property
    def pid(self) -> int:
        assert self.process is not None, "server not started"
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL the server, as a power cut or the OOM killer would."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM (graceful), then SIGKILL after 15 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_tail(self, n_chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n_chars:]
        except OSError:
            return "(no log)"

    def get_json(self, path: str, *, timeout_s: float = 30.0) -> tuple[int, dict]:
        return request_json(f"{self.url}{path}", timeout_s=timeout_s)

    def post_json(self, path: str, body: dict, *, timeout_s: float = 30.0) -> tuple[int, dict]:
        return request_json(f"{self.url}{path}", body=body, timeout_s=timeout_s)


def request_json(url: str, *, body: dict | None = None, timeout_s: float = 30.0) -> tuple[int, dict]:
    """(status, JSON body) of a GET, or a POST when `body` is given; 4xx/5xx are returned, not raised."""
    data = None if body is None else json.dumps(body).encode()
    headers = {} if body is None else {"Content-Type": "application/json"}
    request = urllib.request.Request(
        url, data=data, headers=headers, method="GET" if body is None else "POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "prepare":
        print("usage: python -m tests.robustness.liveserver prepare DIR", file=sys.stderr)
        return 2
    bundle, init = prepare_assets(Path(argv[1]))
    print(f"{bundle}\n{init}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
