"""Load on the cached point-forecast path versus a bare FastAPI endpoint (the framework's ceiling here).

Starts each server in a child process on 127.0.0.1 (a free port), warms the forecast once, then drives it
from many concurrent keep-alive clients for a bounded time and request count, and prints requests/s and
p50/p99 latency for both, in one run:

    python benchmarks/api_load.py --model PATH [--data PATH] [--clients 32] [--seconds 5]

Without --model it serves the bundled default model with the bundled initial states.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import socket
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def serve_ours(port: int, model: str | None, data: str | None, store: str) -> None:
    import uvicorn

    from service.app import create_app
    from service.settings import ServiceSettings

    settings = ServiceSettings(models=[model] if model else [], data=data, store_dir=store)
    uvicorn.run(create_app(settings), host=HOST, port=port, log_level="warning", access_log=False)


def serve_bare(port: int) -> None:
    import uvicorn
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/const")
    async def const() -> dict[str, str]:
        return {"status": "ok"}

    uvicorn.run(app, host=HOST, port=port, log_level="warning", access_log=False)


def wait_ready(url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"server at {url} did not become ready in {timeout:.0f} s")


async def client(port: int, path: str, deadline: float, budget: list[int], latencies: list[float]) -> None:
    reader, writer = await asyncio.open_connection(HOST, port)
    request = f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: keep-alive\r\n\r\n".encode()
    try:
        while time.perf_counter() < deadline and budget[0] > 0:
            budget[0] -= 1
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise SystemExit(f"unexpected answer: {head[:80]!r}")
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
    finally:
        writer.close()


async def drive(port: int, path: str, *, clients: int, seconds: float, max_requests: int) -> dict[str, float]:
    latencies: list[float] = []
    budget = [max_requests]
    start = time.perf_counter()
    deadline = start + seconds
    await asyncio.gather(*(client(port, path, deadline, budget, latencies) for _ in range(clients)))
    elapsed = time.perf_counter() - start
    ms = np.asarray(latencies) * 1000.0
    return {
        "requests": len(ms),
        "rps": len(ms) / elapsed,
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
    }


def measure(
    target, args: tuple, ready: str, path: str, options: argparse.Namespace, warm: str | None
) -> dict:
    context = multiprocessing.get_context("spawn")
    process = context.Process(target=target, args=args, daemon=True)
    process.start()
    try:
        wait_ready(ready)
        if warm:
            with urllib.request.urlopen(warm, timeout=300) as response:
                response.read()
        port = args[0]
        asyncio.run(drive(port, path, clients=options.clients, seconds=1.0, max_requests=2000))  # warm-up
        return asyncio.run(
            drive(
                port,
                path,
                clients=options.clients,
                seconds=options.seconds,
                max_requests=options.max_requests,
            )
        )
    finally:
        process.terminate()
        process.join(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="bundle directory (default: the bundled model)")
    parser.add_argument("--data", default=None, help="initial states (default: the bundled NCEP steps)")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--max-requests", type=int, default=50000)
    options = parser.parse_args()

    with tempfile.TemporaryDirectory() as store:
        port = free_port()
        base = f"http://{HOST}:{port}"
        ours_args = (port, options.model, options.data, str(Path(store) / "store"))
        context = multiprocessing.get_context("spawn")
        probe = context.Process(target=serve_ours, args=ours_args, daemon=True)
        probe.start()
        try:
            wait_ready(f"{base}/ready")
            with urllib.request.urlopen(f"{base}/v1/models", timeout=10) as response:
                model_id = json.load(response)["default"]
            with urllib.request.urlopen(f"{base}/v1/models/{model_id}", timeout=10) as response:
                grid = json.load(response)["grid"]
        finally:
            probe.terminate()
            probe.join(10)
        lat = round((grid["lat_min"] + grid["lat_max"]) / 2, 2)
        lon = round((grid["lon_min"] + grid["lon_max"]) / 2 - 360.0, 2)
        path = f"/v1/forecast?latitude={lat}&longitude={lon}&forecast_hours=24"
        ours = measure(serve_ours, ours_args, f"{base}/ready", path, options, warm=base + path)
    bare_port = free_port()
    bare = measure(serve_bare, (bare_port,), f"http://{HOST}:{bare_port}/const", "/const", options, warm=None)

    print(
        f"{options.clients} concurrent keep-alive clients, {options.seconds:g} s per endpoint, one uvicorn worker"
    )
    print(f"{'endpoint':<44} {'requests':>9} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for name, row in (
        (f"cached point forecast {path[:22]}...", ours),
        ("bare FastAPI constant /const", bare),
    ):
        print(
            f"{name:<44} {row['requests']:>9d} {row['rps']:>9.0f} {row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f}"
        )
    print(f"ours / ceiling: {ours['rps'] / bare['rps']:.2f} (target >= 0.50)")


if __name__ == "__main__":
    main()
