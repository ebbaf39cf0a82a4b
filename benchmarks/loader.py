"""Training-loader throughput on the NCEP data: WindowDataset + DataLoader against a plain tensor index.

The ceiling is a loop that indexes one in-memory tensor with a shuffled batch of indices (state and
targets), doing no other work; the loader is what the trainer uses: `WindowDataset` over the training
period and a torch `DataLoader` with `batch_size` and `shuffle=True`. Prints samples/s for both and the
ratio (the target is >= 0.7).

    PYTHONPATH=. python benchmarks/loader.py [PATH] [--batch-size 32] [--rollout-steps 1] [--history] [--epochs 5]

With `--store STORE` (a chunked Zarr store, e.g. from `data/make_big_store.py`) it measures the streamed
path instead: random batches of windows read from the store by `WindowDataset.batches` with `--workers`
DataLoader processes, cold (the store's pages dropped from the page cache first, with
`posix_fadvise(DONTNEED)` on its files only) and warm (the same batches again), against the same windows
held in memory (over the first `--memory-steps` steps, which must fit); and the peak resident memory.

    PYTHONPATH=. python benchmarks/loader.py --store big.zarr --batch-size 16 --batches 24 --workers 1
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from fno_forecast.data.windows import WindowDataset

TRAIN_PERIOD = "2013-01-01/2014-06-30"


def _default_path() -> Path:
    shared = os.environ.get("FNO_SHARED_DATA")
    root = Path(shared) if shared else Path(__file__).resolve().parents[2] / "shared" / "data"
    return root / "ncep_air_2013-2014.nc"


def loader_rate(dataset: WindowDataset, *, batch_size: int, epochs: int) -> float:
    """Samples per second through a shuffling DataLoader (best of `epochs` passes)."""
    import torch

    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=True, drop_last=True, collate_fn=dataset.collate
    )
    best = 0.0
    for _ in range(epochs):
        start, n = time.perf_counter(), 0
        for batch in loader:
            n += batch["state"].shape[0]
        best = max(best, n / (time.perf_counter() - start))
    return best


def ceiling_rate(
    data: torch.Tensor,
    *,
    n_windows: int,
    rollout_steps: int,
    history: bool,
    batch_size: int,
    epochs: int,
    gather: str,
) -> float:
    """Samples per second of a shuffled index into the in-memory tensor (best of `epochs` passes).

    `gather="index"`: the plain index `data[rows]` for the states, `data[rows + k]` for the targets (and
    `data[rows - 1]` for the previous states with `history`).
    `gather="index_select"`: one `index_select` for states and targets together, the least work any
    loader can do (what `WindowDataset` itself does).
    """
    import torch

    h = int(history)
    steps = torch.arange(1, rollout_steps + 1)
    frames = torch.arange(-h, rollout_steps + 1)
    best = 0.0
    for _ in range(epochs):
        start, n = time.perf_counter(), 0
        order = torch.randperm(n_windows)
        for k in range(0, n_windows - batch_size + 1, batch_size):
            rows = order[k : k + batch_size] + h
            if gather == "index":
                state, _ = data[rows], data[rows[:, None] + steps[None, :]]
                if history:
                    _ = data[rows - 1]
            else:
                block = data.index_select(0, (rows[:, None] + frames[None, :]).reshape(-1))
                state = block.view(batch_size, rollout_steps + 1 + h, *data.shape[1:])
            n += state.shape[0]
        best = max(best, n / (time.perf_counter() - start))
    return best


def drop_from_page_cache(store: Path) -> int:
    """Ask the kernel to drop the cached pages of every file under `store`; returns the bytes covered."""
    total = 0
    for file in store.rglob("*"):
        if file.is_file():
            fd = os.open(file, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                total += file.stat().st_size
            finally:
                os.close(fd)
    return total


def peak_rss_mb() -> tuple[float, float]:
    """Peak resident memory (MB) of this process and of its largest finished child (a loader worker)."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, child


def stream_rows(args: argparse.Namespace) -> None:
    """Streamed reads from a chunked store, cold and warm, against the same windows in memory."""
    import numpy as np
    import torch

    from fno_forecast.data.channels import open_channels
    from fno_forecast.data.windows import WindowDataset

    torch.set_num_threads(1)
    channels = open_channels(args.store)
    array = channels.array
    frame_mb = 4 * int(np.prod(array.shape[1:])) / 1e6
    streamed = WindowDataset(
        array, target_steps=args.rollout_steps, use_history=args.history, in_memory_limit_bytes=0
    )
    rng = np.random.default_rng(0)
    plan = [rng.integers(0, len(streamed), args.batch_size).tolist() for _ in range(args.batches)]
    frames_per_batch = args.batch_size * (args.rollout_steps + 1 + int(args.history))
    rows = []
    dropped = drop_from_page_cache(Path(args.store))
    for label in ("cold", "warm"):
        start = time.perf_counter()
        for _ in streamed.batches(plan, workers=args.workers, prefetch=2):
            pass
        seconds = time.perf_counter() - start
        rows.append((f"streamed, {args.workers} worker(s), {label}", seconds))
    subset = array.isel(time=slice(0, args.memory_steps))
    memory = WindowDataset(subset, target_steps=args.rollout_steps, use_history=args.history)
    small_plan = [rng.integers(0, len(memory), args.batch_size).tolist() for _ in range(args.batches)]
    start = time.perf_counter()
    for _ in memory.batches(small_plan):
        pass
    rows.append((f"in memory ({args.memory_steps} steps)", time.perf_counter() - start))
    gb = array.shape[0] * frame_mb / 1e3
    print(f"store: {args.store} {tuple(array.shape)}, {gb:.2f} GB as float32, {dropped / 1e9:.2f} GB on disk")
    print(
        f"batch {args.batch_size} windows x {args.rollout_steps + 1 + int(args.history)} frames of {frame_mb:.2f} MB"
    )
    for label, seconds in rows:
        rate = args.batches * args.batch_size / seconds
        mbps = args.batches * frames_per_batch * frame_mb / seconds
        print(f"{label:<36} {rate:9.1f} samples/s  {mbps:8.0f} MB/s of frames")
    own, child = peak_rss_mb()
    print(f"peak RSS: this process {own:.0f} MB, largest loader worker {child:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=_default_path())
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rollout-steps", type=int, default=1)
    parser.add_argument("--history", action="store_true")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--store", type=Path, default=None, help="measure streaming from this Zarr store")
    parser.add_argument("--batches", type=int, default=24, help="with --store: batches per pass")
    parser.add_argument("--workers", type=int, default=1, help="with --store: DataLoader worker processes")
    parser.add_argument("--memory-steps", type=int, default=256, help="with --store: steps held in memory")
    args = parser.parse_args()
    if args.store is not None:
        stream_rows(args)
        return

    import torch

    from fno_forecast.data.channels import open_channels
    from fno_forecast.data.windows import WindowDataset

    torch.set_num_threads(1)
    array = open_channels(args.path).array
    start = time.perf_counter()
    dataset = WindowDataset(
        array, target_steps=args.rollout_steps, use_history=args.history, period=TRAIN_PERIOD
    )
    build_s = time.perf_counter() - start
    data = torch.from_numpy(array.values)
    shape = {"n_windows": len(dataset), "rollout_steps": args.rollout_steps, "batch_size": args.batch_size}
    shape["history"] = args.history
    loader = plain = tight = 0.0
    # Rounds alternate the three so that load from other processes hits each alike; the best is kept.
    for _ in range(args.epochs):
        loader = max(loader, loader_rate(dataset, batch_size=args.batch_size, epochs=1))
        plain = max(plain, ceiling_rate(data, **shape, epochs=1, gather="index"))
        tight = max(tight, ceiling_rate(data, **shape, epochs=1, gather="index_select"))
    print(
        f"data: {args.path} {tuple(array.shape)}; {len(dataset)} training windows (built in {build_s:.2f} s)"
    )
    print(f"batch {args.batch_size}, rollout_steps {args.rollout_steps}, history {args.history}")
    print(f"WindowDataset + DataLoader:       {loader:10.0f} samples/s")
    print(
        f"plain index data[rows] (ceiling): {plain:10.0f} samples/s   ratio {loader / plain:.2f} (target >= 0.7)"
    )
    print(f"single index_select (tightest):   {tight:10.0f} samples/s   ratio {loader / tight:.2f}")


if __name__ == "__main__":
    main()
