"""Training throughput (samples/s): our one-step training step against neuraloperator's own Trainer.

Both sides train the same FNO config (width, modes, layers, 12.5% domain padding, same input channels)
on the same NCEP windows with the same batch size and AdamW. neuraloperator's `Trainer.train` gets what it
expects: a DataLoader of dicts `{"x": inputs, "y": target}` (inputs precomputed once, so it does less
work per step than we do) and its default `LpLoss(d=2)`; its own `epoch_train_time` is the figure. Ours
is `Trainer.update` over the batches of `epoch_batches`, timed the same way (one epoch over
`--samples` windows, after a warm-up).

The baseline network is neuraloperator's FNO as neuraloperator builds it: its `DomainPadding` pads the
25 x 53 grid to 31 x 67, and its own `SpectralConv` and kernel-1 `Conv1d` layers. Ours has the same
weights and computes the same function, but pads to FFT-friendly 32 x 72 (`fno_forecast.models.padding`)
and runs the spectral and kernel-1 convolutions as plain matrix products (`fno_forecast.models.fast_layers`).
A third row runs neuraloperator's Trainer on our network, so the table shows how much of the gap is the
network's implementation and how much the training loop.

    python benchmarks/train_throughput.py --data ../shared/data/ncep_air_2013-2014.nc --samples 320

On the sphere (`--sphere 33x64,121x240`, no data needed): an SFNO and an FNO of the same width (`--hidden`)
and the grid's default modes, one training step (forward, backward, AdamW) on random fields of
`--sphere-channels` channels, and the share of that step spent in the transforms: spherical-harmonic
transforms (torch-harmonics' `RealSHT` and its inverse, as the SFNO's layers build them) or 2-D real FFTs,
timed alone (forward and backward, one pair per layer, on `(batch, hidden, lat, lon)`) and divided by the
step time. Under each SFNO row: the step with neuraloperator's own `SphericalConv` against the project's
`TruncatedSphericalConv` (`models.fast_spherical`), run alternately on the same weights.

    python benchmarks/train_throughput.py --sphere 33x64,121x240 --batch-size 16
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="NCEP file (the FNO-against-neuraloperator rows)")
    parser.add_argument("--sphere", help="global grids NLATxNLON, comma separated: SFNO against FNO rows")
    parser.add_argument("--sphere-channels", type=int, default=3)
    parser.add_argument("--samples", type=int, default=320)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--padding", type=float, default=0.125, help="domain padding fraction per side")
    parser.add_argument("--warmup-batches", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2, help="alternate ours/theirs this many times")
    parser.add_argument(
        "--ddp-processes",
        type=int,
        default=2,
        help="also time ours under torchrun with this many gloo processes sharing the cores (0: skip); "
        "the global batch stays --batch-size",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


def build_ours(args: argparse.Namespace, out: Path, *, batch_size: int = 0, threads: int = 0):  # noqa: ANN201
    from fno_forecast.training.config import load_config
    from fno_forecast.training.loop import Trainer

    config = load_config(
        None,
        overrides={
            "train_period": "2013-01-01/2014-06-30",
            "val_period": "2014-07-01/2014-09-30",
            "hidden_channels": args.hidden,
            "n_modes_lat": 12,
            "n_modes_lon": 24,
            "domain_padding": args.padding,
            "batch_size": batch_size or args.batch_size,
            "warmup_steps": 0,
            "num_threads": threads,
        },
    )
    return Trainer(config, data_path=args.data, out_dir=out, quiet=True)


def time_ours(trainer, args: argparse.Namespace) -> float:  # noqa: ANN001
    """Samples per second of our training step; under torchrun, of all ranks together."""
    from fno_forecast.training import distributed
    from fno_forecast.training.schedule import epoch_batches

    info = trainer.dist
    dataset = trainer.windows.train(1)
    batches = epoch_batches(
        n_windows=len(dataset),
        epoch=0,
        seed=0,
        batch_size=trainer.config.batch_size,
        rank=info.rank,
        world_size=info.world_size,
        cap=args.samples,
    )
    for batch in batches[: args.warmup_batches]:
        trainer.update(dataset.batch(batch), 1)
    distributed.barrier(info)
    start = time.perf_counter()
    for batch in batches:
        trainer.update(dataset.batch(batch), 1)
    distributed.barrier(info)
    totals = torch.tensor([float(sum(len(b) for b in batches)), time.perf_counter() - start])
    distributed.all_reduce_sum(totals, info)
    return float(totals[0] / (totals[1] / info.world_size))


def time_ours_ddp(args: argparse.Namespace) -> float:
    """Run this script under torchrun (gloo, cores shared out) and read back the samples/s it prints."""
    import os
    import subprocess
    import sys

    n = args.ddp_processes
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={n}",
        __file__,
        "--worker",
        f"--data={args.data}",
        f"--samples={args.samples}",
        f"--batch-size={args.batch_size}",
        f"--hidden={args.hidden}",
        f"--padding={args.padding}",
        f"--warmup-batches={args.warmup_batches}",
        f"--ddp-processes={n}",
    ]
    threads = max(1, (os.cpu_count() or n) // n)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("ddp-samples-per-s ")]
    return float(lines[-1].split()[1])


def worker(args: argparse.Namespace) -> None:
    import os

    from fno_forecast.training import distributed

    n = args.ddp_processes
    threads = max(1, (os.cpu_count() or n) // n)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = build_ours(args, Path(tmp), batch_size=max(1, args.batch_size // n), threads=threads)
        result = max(time_ours(trainer, args) for _ in range(2))
        if trainer.dist.is_main:
            print(f"ddp-samples-per-s {result:.3f}", flush=True)
        distributed.shutdown(trainer.dist)


def build_theirs(trainer, args: argparse.Namespace, *, stock: bool):  # noqa: ANN001, ANN201
    """neuraloperator's Trainer on the same network config, fed precomputed inputs and targets.

    `stock`: neuraloperator's own padding and layers; else the network our Trainer trains.
    """
    from neuralop.training import Trainer as NeuralopTrainer
    from torch.utils.data import DataLoader, Dataset

    from fno_forecast.models.registry import build_network

    stepper = trainer.stepper
    dataset = trainer.windows.train(1)
    indices = list(range(min(args.samples, len(dataset))))
    batch = dataset.batch(indices)
    with torch.no_grad():
        x = stepper.network_inputs(
            batch["state"], time_hours=batch["time_hours"], previous=batch.get("previous")
        )
        y = (batch["targets"][:, 0] - batch["state"]) / stepper.tendency_std

    class Pairs(Dataset):
        def __len__(self) -> int:
            return x.shape[0]

        def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
            return {"x": x[i], "y": y[i]}

    loader = DataLoader(Pairs(), batch_size=args.batch_size, shuffle=True, drop_last=True)
    torch.manual_seed(0)
    network = build_network(
        trainer.config.model,
        replace(trainer.model_config, fft_padding=not stock),
        in_channels=x.shape[1],
        out_channels=y.shape[1],
        grid=trainer.data.channels.schema.grid,
        fast_layers=not stock,
    )
    optimizer = torch.optim.AdamW(network.parameters(), lr=1e-3, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=10)
    runner = NeuralopTrainer(model=network, n_epochs=1, device="cpu", verbose=False)
    return runner, loader, optimizer, scheduler


def time_theirs(parts, args: argparse.Namespace) -> float:  # noqa: ANN001
    runner, loader, optimizer, scheduler = parts
    metrics = runner.train(train_loader=loader, test_loaders={}, optimizer=optimizer, scheduler=scheduler)
    n = len(loader) * args.batch_size
    return n / metrics["epoch_train_time"]


def _seconds(run, *, repeats: int) -> float:  # noqa: ANN001
    """Best wall time of `repeats` calls of `run` after one warm-up call."""
    run()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def _train_step(network: torch.nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    torch.nn.functional.mse_loss(network(x), x).backward()
    optimizer.step()


def _sht_pair(forward: torch.nn.Module, inverse: torch.nn.Module, hidden: torch.Tensor) -> None:
    inverse(forward(hidden)).sum().backward()


def _fft_pair(hidden: torch.Tensor) -> None:
    torch.fft.irfft2(
        torch.fft.rfft2(hidden, norm="ortho"), s=hidden.shape[-2:], norm="ortho"
    ).sum().backward()


def sphere_rows(args: argparse.Namespace) -> None:
    """SFNO against FNO at the same grid and width: samples/s and the share of a step in the transforms."""
    from functools import partial

    import numpy as np
    from torch_harmonics import InverseRealSHT, RealSHT

    from fno_forecast.data.schema import GridInfo
    from fno_forecast.models.fast_layers import use_pointwise_convs
    from fno_forecast.models.registry import FNOConfig, SFNOConfig, build_network, resolve_defaults

    batch, channels, repeats = args.batch_size, args.sphere_channels, max(2, args.repeats)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {batch}, hidden {args.hidden}"
    )
    for text in args.sphere.split(","):
        nlat, nlon = (int(v) for v in text.lower().split("x"))
        grid = GridInfo(lat=tuple(np.linspace(90.0, -90.0, nlat)), lon=tuple(np.arange(nlon) * 360.0 / nlon))
        x = torch.randn(batch, channels, nlat, nlon)
        hidden = torch.randn(batch, args.hidden, nlat, nlon, requires_grad=True)
        for name, config in (
            ("sfno", SFNOConfig(hidden_channels=args.hidden)),
            ("fno", FNOConfig(hidden_channels=args.hidden)),
        ):
            resolved = resolve_defaults(config, grid)
            network = build_network(name, config, in_channels=channels, out_channels=channels, grid=grid)
            optimizer = torch.optim.AdamW(network.parameters(), lr=1e-4)
            if name == "sfno":  # the transforms neuralop's SphericalConv builds: (lat modes, lon modes // 2)
                modes = {"lmax": resolved.n_modes_lat, "mmax": resolved.n_modes_lon // 2}
                forward, inverse = RealSHT(nlat, nlon, **modes), InverseRealSHT(nlat, nlon, **modes)
                pair = partial(_sht_pair, forward, inverse, hidden)
            else:
                pair = partial(_fft_pair, hidden)
            step_s = _seconds(partial(_train_step, network, optimizer, x), repeats=repeats)
            pair_s = _seconds(pair, repeats=repeats)
            share = pair_s * resolved.n_layers / step_s
            print(
                f"{name:5s} {nlat} x {nlon}, width {args.hidden}, modes {resolved.n_modes_lat} x "
                f"{resolved.n_modes_lon}: {batch / step_s:8.1f} samples/s, {1000 * step_s:8.1f} ms per step, "
                f"transforms {share:5.1%} of the step ({resolved.n_layers} layers, the library's transforms)"
            )
            if name == "sfno":
                # side by side, alternating, best of each: neuraloperator's SphericalConv against
                # `models.fast_spherical`'s (the same network otherwise, kernel-1 convolutions included)
                stock = build_network(
                    name, config, in_channels=channels, out_channels=channels, grid=grid, fast_layers=False
                )
                use_pointwise_convs(stock)
                stock.load_state_dict(network.state_dict())
                stock_optimizer = torch.optim.AdamW(stock.parameters(), lr=1e-4)
                with torch.no_grad():
                    error = float((stock(x) - network(x)).abs().max() / stock(x).abs().max())
                library, ours = float("inf"), step_s
                for _ in range(2):
                    library = min(
                        library, _seconds(partial(_train_step, stock, stock_optimizer, x), repeats=repeats)
                    )
                    ours = min(ours, _seconds(partial(_train_step, network, optimizer, x), repeats=repeats))
                print(
                    f"      SFNO step with neuraloperator's SphericalConv {1000 * library:8.1f} ms, with "
                    f"TruncatedSphericalConv {1000 * ours:8.1f} ms ({library / ours:.2f}x; outputs differ by "
                    f"{error:.1e} relative)"
                )


def main() -> None:
    args = parse_args()
    if args.worker:
        worker(args)
        return
    if args.sphere:
        sphere_rows(args)
        return
    if not args.data:
        raise SystemExit("train_throughput: give --data (NCEP rows) or --sphere (SFNO against FNO rows)")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch_size}, hidden {args.hidden}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        trainer = build_ours(args, Path(tmp))
        theirs = build_theirs(trainer, args, stock=True)
        theirs_fast = build_theirs(trainer, args, stock=False)
        time_theirs(theirs, args)  # warm-up epochs
        time_theirs(theirs_fast, args)
        runs: dict[str, list[float]] = {"ours": [], "neuralop": [], "neuralop-ours-net": []}
        for _ in range(args.repeats):
            runs["ours"].append(time_ours(trainer, args))
            runs["neuralop"].append(time_theirs(theirs, args))
            runs["neuralop-ours-net"].append(time_theirs(theirs_fast, args))
            if args.ddp_processes > 1:
                runs.setdefault("ours-ddp", []).append(time_ours_ddp(args))
    best = {name: max(values) for name, values in runs.items()}
    labels = {
        "ours": "ours (fno-forecast Trainer and network)",
        "neuralop": "neuralop Trainer, neuralop's own FNO",
        "neuralop-ours-net": "neuralop Trainer, our network",
        "ours-ddp": f"ours, torchrun {args.ddp_processes} gloo processes, same cores",
    }
    for name, values in runs.items():
        print(f"{labels[name]:52s} {best[name]:8.1f} samples/s   runs {[round(v, 1) for v in values]}")
    print(f"ratio ours / neuralop Trainer                       {best['ours'] / best['neuralop']:8.2f}x")
    print(
        f"ratio ours / neuralop Trainer on our network        {best['ours'] / best['neuralop-ours-net']:8.2f}x"
    )
    if "ours-ddp" in best:
        print(
            f"ratio ours (torchrun) / neuralop Trainer            {best['ours-ddp'] / best['neuralop']:8.2f}x"
        )


if __name__ == "__main__":
    main()
