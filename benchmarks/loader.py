"""Training-loader throughput on the NCEP data: WindowDataset + DataLoader against a plain tensor index.

The ceiling is a loop that indexes one in-memory tensor with a shuffled batch of indices (state and
targets), doing no other work; the loader is what the trainer uses: `WindowDataset` over the training
period and a torch `DataLoader` with `batch_size` and `shuffle=True`. Prints samples/s for both and the
ratio (the target is >= 0.7).

    PYTHONPATH=. python benchmarks/loader.py [PATH] [--batch-size 32] [--rollout-steps 1] [--history] [--epochs 5]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=_default_path())
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rollout-steps", type=int, default=1)
    parser.add_argument("--history", action="store_true")
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()

    import torch

    from fno_forecast.data.channels import open_channels
    from fno_forecast.data.windows import WindowDataset

    torch.set_num_threads(1)
    array = open_channels(args.path).array
    start = time.perf_counter()
    dataset = WindowDataset(
        array, rollout_steps=args.rollout_steps, use_history=args.history, period=TRAIN_PERIOD
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
