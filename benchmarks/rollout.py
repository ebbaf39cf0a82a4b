"""Rollout speed: milliseconds per model step and per 10-day forecast, FLOPs per step, and the fraction
of this machine's measured matmul FLOP/s that a step reaches.

Two rows by default: a model bundle (the bundled default model, or `--model PATH`) on its own grid, and a
FourCastNet-size problem (721 x 1440 global 0.25 degree grid, 20 channels) with an FNO of `--fcn-width`
hidden channels, timed for real. FourCastNet's AFNO is 768 wide; such an FNO does not fit a small CPU
machine's memory, so its FLOPs are counted on fake tensors (shapes only, no memory, no compute) and its time is
estimated from the FLOP rate the timed row reached.

FLOPs are counted with `torch.utils.flop_counter.FlopCounterMode` (matmuls, convolutions, einsum), plus an
estimate for the FFTs it does not count (5 N log2 N real FLOPs per complex transform of N points).

    python benchmarks/rollout.py [--model PATH] [--fcn-width 256] [--fcn-layers 4] [--steps 3]

With `--ten-day`, a timed 10-day rollout (40 six-hourly steps) instead, on a global grid with both poles
(`--grid 721x1440`, `--channels 20`) of the default FNO and the default SFNO that `fno-forecast train`
would build for that grid (width and modes from the data, random weights: only the time matters), in
fp32 and under bf16 autocast, on `--device`: seconds per step, seconds per 10 days and peak memory
(`torch.cuda.max_memory_allocated` on a GPU, the process's peak RSS on a CPU). `benchmarks/gpu_check.sh`
runs it; a tiny grid (`--grid 33x64 --channels 4 --steps 4 --device cpu`) checks the path anywhere.

    python benchmarks/rollout.py --ten-day --device cuda [--grid 721x1440] [--channels 20] [--steps 40]
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

STEPS_PER_10_DAYS_6H = 40
FCN_GRID = (721, 1440)
FCN_CHANNELS = 20


@dataclass(frozen=True)
class Row:
    name: str
    grid: str
    params: int
    flops: float
    wall_ms: float
    cpu_ms: float
    steps_10d: int
    estimated: bool = False


def matmul_flops_per_s(*, size: int = 2048, repeats: int = 5) -> float:
    """Measured float32 matmul rate of this machine (best of `repeats`), in FLOP/s."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 / best


def fft_flops(network: torch.nn.Module, inputs: torch.Tensor) -> float:
    """FLOPs of the FFTs a forward pass runs (FlopCounterMode does not count them)."""
    total = 0.0

    def count(op_name: str):
        def hook(module, args, output):
            nonlocal total
            x = args[0]
            points = x.shape[-1] * x.shape[-2]
            transforms = x.shape[0] * x.shape[1]
            # one forward real FFT of the input, one inverse real FFT of the output, ~2.5 N log2 N each
            total += 2 * 2.5 * transforms * points * math.log2(max(points, 2))

        return hook

    from neuralop.layers.spectral_convolution import SpectralConv

    handles = [
        m.register_forward_hook(count(type(m).__name__))
        for m in network.modules()
        if isinstance(m, SpectralConv)
    ]
    try:
        with torch.inference_mode():
            network(inputs)
    finally:
        for handle in handles:
            handle.remove()
    return total


def count_flops(build, state_shape: tuple[int, ...], *, fake: bool = True) -> tuple[float, int]:
    """(FLOPs, parameters) of one step of the Stepper that `build()` makes.

    FlopCounterMode's count (matmuls, convolutions) plus the FFT estimate. With `fake`, on fake tensors:
    they carry shapes only, so counting costs neither the memory nor the compute of a step.
    """
    from contextlib import nullcontext

    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.utils.flop_counter import FlopCounterMode

    with FakeTensorMode(allow_non_fake_inputs=True) if fake else nullcontext():
        stepper = build()
        state = torch.zeros(state_shape)
        hours = torch.tensor([385000.0], dtype=torch.float64)
        counter = FlopCounterMode(display=False)
        with torch.inference_mode(), counter:
            stepper(state, time_hours=hours)
        inputs = stepper.network_inputs(state, time_hours=hours, previous=None)
        flops = float(counter.get_total_flops()) + fft_flops(stepper.network, inputs)
        params = sum(p.numel() for p in stepper.parameters())
    return flops, params


def time_steps(
    stepper, state: torch.Tensor, hours: torch.Tensor, *, steps: int, warm_up: bool = True
) -> tuple[float, float]:
    """(wall ms, process CPU ms) per step over `steps` rollout steps, after one warm-up step if asked."""
    from fno_forecast.rollout import rollout

    with torch.inference_mode():
        if warm_up:
            next(rollout(stepper, state, time_hours=hours, step_hours=stepper.step_hours, n_steps=1))
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in rollout(stepper, state, time_hours=hours, step_hours=stepper.step_hours, n_steps=steps):
            pass
        return 1e3 * (time.perf_counter() - wall) / steps, 1e3 * (time.process_time() - cpu) / steps


def fcn_stepper(*, width: int, layers: int, modes: tuple[int, int]):
    """A Stepper with an FNO on the 721 x 1440 global grid, 20 channels, random statistics (CPU)."""
    from fno_forecast.models.registry import FNOConfig
    from fno_forecast.models.stepper import build_stepper

    lat = np.linspace(90.0, -90.0, FCN_GRID[0])
    lon = np.arange(FCN_GRID[1]) * 0.25
    config = FNOConfig(hidden_channels=width, n_layers=layers, n_modes_lat=modes[0], n_modes_lon=modes[1])
    stepper = build_stepper(
        model_name="fno",
        model_config=config,
        grid_lat=lat,
        grid_lon=lon,
        step_hours=6.0,
        mean=np.zeros(FCN_CHANNELS, dtype=np.float32),
        std=np.ones(FCN_CHANNELS, dtype=np.float32),
        tendency_std=np.ones(FCN_CHANNELS, dtype=np.float32),
        use_history=False,
    )
    return stepper.eval()


def bench_bundle(path: Path, *, steps: int) -> Row:
    from fno_forecast.bundle import load_bundle

    bundle = load_bundle(path)
    schema = bundle.schema
    mean = bundle.stepper.mean.reshape(1, -1, 1, 1)
    state = mean.expand(1, -1, schema.grid.nlat, schema.grid.nlon).contiguous()
    hours = torch.tensor([385000.0], dtype=torch.float64)
    flops, params = count_flops(lambda: bundle.stepper, tuple(state.shape), fake=False)
    wall, cpu = time_steps(bundle.stepper, state, hours, steps=steps)
    return Row(
        name=f"bundle {path.name or path}",
        grid=f"{schema.grid.nlat}x{schema.grid.nlon}x{len(schema.channels)}",
        params=params,
        flops=flops,
        wall_ms=wall,
        cpu_ms=cpu,
        steps_10d=int(round(240 / bundle.step_hours)),
    )


def bench_fcn(*, width: int, layers: int, modes: tuple[int, int], steps: int, timed: bool) -> Row:
    """FourCastNet-size FNO: FLOPs counted on fake tensors; with `timed`, `steps` real CPU steps.

    One step of this size takes minutes on a small CPU, so there is no warm-up step.
    """
    shape = (1, FCN_CHANNELS, *FCN_GRID)
    flops, params = count_flops(lambda: fcn_stepper(width=width, layers=layers, modes=modes), shape)
    wall = cpu = float("nan")
    if timed:
        stepper = fcn_stepper(width=width, layers=layers, modes=modes)
        hours = torch.tensor([385000.0], dtype=torch.float64)
        wall, cpu = time_steps(stepper, torch.zeros(shape), hours, steps=steps, warm_up=False)
    return Row(
        name=f"FNO width {width}, {layers} layers, modes {modes[0]}x{modes[1]}",
        grid=f"{FCN_GRID[0]}x{FCN_GRID[1]}x{FCN_CHANNELS}",
        params=params,
        flops=flops,
        wall_ms=wall,
        cpu_ms=cpu,
        steps_10d=STEPS_PER_10_DAYS_6H,
        estimated=not timed,
    )


def print_table(rows: list[Row], *, peak: float) -> None:
    print(f"measured float32 matmul rate: {peak / 1e9:.1f} GFLOP/s on {torch.get_num_threads()} threads\n")
    header = f"{'model':<44} {'grid':>13} {'params':>9} {'GFLOP/step':>11} {'ms/step':>10} {'CPU ms/step':>12} {'s/10 days':>10} {'% matmul':>9}"
    print(header)
    print("-" * len(header))
    for row in rows:
        wall = row.wall_ms
        mark = ""
        if row.estimated:
            wall = np.nan
            timed = [r for r in rows if not r.estimated and r.grid == row.grid]
            if timed:
                rate = timed[0].flops / (timed[0].wall_ms / 1e3)
                wall = 1e3 * row.flops / rate
                mark = " (est.)"
        achieved = row.flops / (wall / 1e3) / peak if wall == wall else np.nan
        print(
            f"{row.name:<44} {row.grid:>13} {row.params / 1e6:>8.3f}M {row.flops / 1e9:>11.2f} "
            f"{wall:>10.1f} {row.cpu_ms:>12.1f} {wall * row.steps_10d / 1e3:>10.2f} {100 * achieved:>8.1f}%{mark}"
        )


def default_stepper(model: str, *, nlat: int, nlon: int, channels: int):
    """The stepper `fno-forecast train` would build for `model` on a global nlat x nlon grid with poles
    (width from `training.defaults`, modes from the grid), with random weights and unit statistics."""
    from fno_forecast.data.schema import GridInfo
    from fno_forecast.models.registry import FNOConfig, SFNOConfig, resolve_defaults
    from fno_forecast.models.stepper import build_stepper
    from fno_forecast.training.defaults import hidden_width

    lat, lon = np.linspace(90.0, -90.0, nlat), np.arange(nlon) * (360.0 / nlon)
    grid = GridInfo.from_arrays(lat, lon)
    width, _ = hidden_width(grid, channels)
    config = resolve_defaults((SFNOConfig if model == "sfno" else FNOConfig)(hidden_channels=width), grid)
    stepper = build_stepper(
        model_name=model,
        model_config=config,
        grid_lat=lat,
        grid_lon=lon,
        step_hours=6.0,
        mean=np.zeros(channels, dtype=np.float32),
        std=np.ones(channels, dtype=np.float32),
        tendency_std=np.full(
            channels, 0.01, dtype=np.float32
        ),  # small steps: the random rollout stays finite
        use_history=False,
    )
    return stepper.eval(), config


def ten_day_rows(*, grid: tuple[int, int], channels: int, steps: int, device: str, models: list[str]) -> None:
    """Time a `steps`-step rollout (after one warm-up step) of each model in fp32 and bf16; print a table."""
    import resource

    from fno_forecast.rollout import rollout

    dev = torch.device(device)
    cuda = dev.type == "cuda"
    name = torch.cuda.get_device_name(dev) if cuda else f"CPU, {torch.get_num_threads()} threads"
    print(f"{steps}-step rollout on {grid[0]} x {grid[1]} x {channels}, batch 1, {name}")
    header = (
        f"{'model':<40} {'precision':>9} {'params':>9} {'s/step':>9} {'s/10 days':>10} {'peak memory':>16}"
    )
    print(header)
    print("-" * len(header))
    for model in models:
        stepper, config = default_stepper(model, nlat=grid[0], nlon=grid[1], channels=channels)
        stepper = stepper.to(dev)
        params = sum(p.numel() for p in stepper.parameters())
        label = f"{model} width {config.hidden_channels}, modes {config.n_modes_lat}x{config.n_modes_lon}"
        state = torch.randn(1, channels, *grid, device=dev)
        hours = torch.tensor([385000.0], dtype=torch.float64, device=dev)
        for precision in ("fp32", "bf16"):
            autocast = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=precision == "bf16")
            with torch.inference_mode(), autocast:
                if cuda:
                    torch.cuda.synchronize(dev)
                    torch.cuda.reset_peak_memory_stats(dev)
                next(rollout(stepper, state, time_hours=hours, step_hours=6.0, n_steps=1))
                if cuda:
                    torch.cuda.synchronize(dev)
                start = time.perf_counter()
                for _ in rollout(stepper, state, time_hours=hours, step_hours=6.0, n_steps=steps):
                    pass
                if cuda:
                    torch.cuda.synchronize(dev)
                per_step = (time.perf_counter() - start) / steps
            if cuda:
                peak = f"{torch.cuda.max_memory_allocated(dev) / 2**30:.2f} GiB GPU"
            else:
                peak = f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB RSS"
            print(
                f"{label:<40} {precision:>9} {params / 1e6:>8.2f}M {per_step:>9.4f} "
                f"{per_step * STEPS_PER_10_DAYS_6H:>10.2f} {peak:>16}"
            )
        del stepper, state
        if cuda:
            torch.cuda.empty_cache()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model bundle (default: the bundled default model)")
    parser.add_argument(
        "--steps", type=int, default=None, help="timed steps after a warm-up (bundle: 5; --ten-day: 40)"
    )
    parser.add_argument("--fcn-width", type=int, default=256, help="hidden width of the timed 721x1440 FNO")
    parser.add_argument("--fcn-layers", type=int, default=4, help="FNO blocks of the 721x1440 FNO")
    parser.add_argument("--fcn-modes", default="32,64", help="Fourier modes lat,lon of the 721x1440 FNO")
    parser.add_argument("--fcn-steps", type=int, default=1, help="timed steps of the 721x1440 FNO")
    parser.add_argument("--skip-fcn", action="store_true", help="only the bundle row")
    parser.add_argument("--ten-day", action="store_true", help="a timed 10-day rollout of FNO and SFNO")
    parser.add_argument("--grid", default="721x1440", help="with --ten-day: NLATxNLON, both poles")
    parser.add_argument("--channels", type=int, default=FCN_CHANNELS, help="with --ten-day: channels")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--models", default="fno,sfno", help="with --ten-day: models, comma separated")
    args = parser.parse_args()
    if args.ten_day:
        nlat, nlon = (int(v) for v in args.grid.lower().split("x"))
        ten_day_rows(
            grid=(nlat, nlon),
            channels=args.channels,
            steps=args.steps or STEPS_PER_10_DAYS_6H,
            device=args.device,
            models=args.models.split(","),
        )
        return

    from fno_forecast.bundle import default_bundle_path

    rows: list[Row] = []
    model = Path(args.model) if args.model else default_bundle_path()
    if (model / "model.json").is_file():
        rows.append(bench_bundle(model, steps=args.steps or 5))
    else:
        print(f"no model bundle at {model}; pass --model PATH for the bundle row")
    if not args.skip_fcn:
        modes = tuple(int(v) for v in args.fcn_modes.split(","))
        rows.append(
            bench_fcn(
                width=args.fcn_width, layers=args.fcn_layers, modes=modes, steps=args.fcn_steps, timed=True
            )
        )
        if args.fcn_width != 768:
            rows.append(bench_fcn(width=768, layers=args.fcn_layers, modes=modes, steps=0, timed=False))
    print_table(rows, peak=matmul_flops_per_s())


if __name__ == "__main__":
    main()
