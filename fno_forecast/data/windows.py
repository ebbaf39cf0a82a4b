"""Training windows: the state at t, optionally the state at t-1, and the targets t+1..t+K.

A window belongs to a period when its state and all its targets lie inside it (the previous state, an
input only, may lie just before). A window never straddles a gap in the time axis: every step inside it,
the previous one included, is exactly one data step. When the span the windows need fits in
`in_memory_limit_bytes`, it is read once into one float32 tensor and a batch is one indexing operation
(`__getitems__`, which a torch DataLoader with `batch_size` calls with the whole batch); otherwise each
window is read from the (lazy) array on demand: a batch reads the distinct frames its windows need in one
read, and `batches(plan, workers=N)` reads batches ahead in DataLoader worker processes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
import xarray as xr
from torch.utils.data import DataLoader, Dataset, default_collate

from fno_forecast.data.stats import frame_bytes
from fno_forecast.data.timeaxis import consecutive, detect_step, period_mask, times_to_hours
from fno_forecast.errors import DataError

DEFAULT_IN_MEMORY_LIMIT = 4 * 2**30


def read_steps(array: xr.DataArray, steps: np.ndarray) -> np.ndarray:
    """`array`'s sorted distinct time `steps` as one float32 array `(len(steps), channel, lat, lon)`, each
    run of consecutive steps read as one slice: a lazy store's fancy index would hold every chunk it
    touches at once, and reading the whole span between scattered steps reads what nobody needs."""
    steps = np.asarray(steps, dtype=np.int64)
    out = np.empty((steps.size, *(array.sizes[d] for d in ("channel", "lat", "lon"))), dtype=np.float32)
    for run in np.split(np.arange(steps.size), np.flatnonzero(np.diff(steps) != 1) + 1):
        if run.size:
            first, last = int(steps[run[0]]), int(steps[run[-1]])
            out[run[0] : run[-1] + 1] = array.isel(time=slice(first, last + 1)).values
    return out


def window_starts(
    times: np.ndarray, *, target_steps: int, use_history: bool, period: str | tuple[Any, Any] | None = None
) -> np.ndarray:
    """Indices t of the valid windows (state at t) over a time axis, as int64."""
    n = len(times)
    if n < target_steps + 1 + int(use_history):
        return np.zeros(0, dtype=np.int64)
    step_hours, step_months = detect_step(times)
    linked = consecutive(times, step_hours=step_hours, step_months=step_months).astype(np.int64)
    # broken[j] = number of non-consecutive links among links 0..j-1 (prefix sums).
    broken = np.concatenate([[0], np.cumsum(1 - linked)])
    first = 1 if use_history else 0
    t = np.arange(first, n - target_steps)
    lo = t - first
    hi = t + target_steps
    ok = broken[hi] - broken[lo] == 0
    if period is not None:
        inside = period_mask(times, period).astype(np.int64)
        count = np.concatenate([[0], np.cumsum(inside)])
        ok &= count[hi + 1] - count[t] == target_steps + 1
    return t[ok].astype(np.int64)


class WindowDataset(Dataset):
    """Windows over a canonical array `(time, channel, lat, lon)` for training and validation.

    Each item is a dict of tensors in physical units: `state (C, H, W)` float32, `previous (C, H, W)`
    float32 (only with `use_history`), `targets (K, C, H, W)` float32 with K = `target_steps`, and
    `time_hours` (float64 scalar, hours since 1970-01-01 of the state's valid time).
    """

    def __init__(
        self,
        array: xr.DataArray,
        *,
        target_steps: int,
        use_history: bool,
        in_memory_limit_bytes: int = DEFAULT_IN_MEMORY_LIMIT,
        period: str | tuple[Any, Any] | None = None,
    ) -> None:
        if tuple(array.dims) != ("time", "channel", "lat", "lon"):
            raise ValueError(f"WindowDataset.array: dims must be (time, channel, lat, lon), got {array.dims}")
        if target_steps < 1:
            raise ValueError(f"WindowDataset.target_steps must be >= 1, got {target_steps}")
        self.target_steps = int(target_steps)
        self.use_history = bool(use_history)
        times = array["time"].values
        self._hours = times_to_hours(times)
        starts = window_starts(
            times, target_steps=self.target_steps, use_history=self.use_history, period=period
        )
        if starts.size == 0:
            where = f" in period {period!r}" if period is not None else ""
            raise DataError(
                array.attrs.get("source"),
                f"no window of {self.target_steps} step(s){' with history' if use_history else ''} "
                f"fits{where} ({len(times)} time steps, gaps excluded)",
            )
        self._history = int(self.use_history)
        lo = int(starts[0]) - self._history
        hi = int(starts[-1]) + self.target_steps + 1
        self.in_memory = (hi - lo) * frame_bytes(array) <= in_memory_limit_bytes
        self._offset = lo if self.in_memory else 0
        self._starts = starts
        self._array = array
        self._data: torch.Tensor | None = None
        if self.in_memory:
            values = np.asarray(array.isel(time=slice(lo, hi)).values, dtype=np.float32)
            self._data = torch.from_numpy(np.ascontiguousarray(values))
            self._array = array.isel(time=slice(0, 0))
        self._frames = torch.arange(-self._history, self.target_steps + 1)
        self._frame_rows = (
            np.arange(-self._history, self.target_steps + 1, dtype=np.int64)[None, :] - self._offset
        )
        self._n_frames = self._history + self.target_steps + 1

    @property
    def starts(self) -> np.ndarray:
        """Time indices (into the array given) of each window's state."""
        return self._starts.copy()

    def __len__(self) -> int:
        return int(self._starts.size)

    def _check(self, index: int) -> int:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"WindowDataset index {index} out of range for {n} windows")
        return int(self._starts[index])

    def _read(self, t: int) -> torch.Tensor:
        """Frames t-h..t+K as `(h+1+K, C, H, W)`."""
        if self._data is not None:
            return self._data[t - self._offset - self._history : t - self._offset + self.target_steps + 1]
        block = self._array.isel(time=slice(t - self._history, t + self.target_steps + 1)).values
        return torch.from_numpy(np.ascontiguousarray(block, dtype=np.float32))

    def _item(self, frames: torch.Tensor, t: int) -> dict[str, torch.Tensor]:
        h = self._history
        item = {
            "state": frames[h],
            "targets": frames[h + 1 :],
            "time_hours": torch.tensor(self._hours[t], dtype=torch.float64),
        }
        if self.use_history:
            item["previous"] = frames[0]
        return item

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        """One window; a list or tensor of indices gives a collated batch (see `batch`)."""
        if not isinstance(index, (int, np.integer)):
            return self.batch(index)
        t = self._check(int(index))
        return self._item(self._read(t), t)

    def __getitems__(self, indices: list[int]) -> WindowBatch:
        """A batch of windows, gathered in one indexing operation from the in-memory tensor.

        The result is a list of per-window dicts (so torch's default collate works) that also carries
        the collated batch; `WindowDataset.collate` returns that directly instead of stacking again.
        """
        batch = self.batch(indices)
        return WindowBatch(batch)

    @staticmethod
    def collate(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """`collate_fn` for a DataLoader: a batch from `__getitems__` as is, anything else stacked."""
        if isinstance(items, WindowBatch):
            return items.batch
        return default_collate(items)

    def loader(self, *, batch_size: int, shuffle: bool, **kwargs: Any) -> DataLoader:
        """A DataLoader over the windows that fetches each batch in one indexing operation."""
        return DataLoader(self, batch_size=batch_size, shuffle=shuffle, collate_fn=self.collate, **kwargs)

    def batches(
        self, plan: Sequence[Sequence[int]], *, workers: int = 0, prefetch: int = 2
    ) -> Iterator[dict[str, torch.Tensor]]:
        """The collated batches of `plan` (lists of window indices) in order.

        With `workers` > 0, DataLoader worker processes read them ahead (`prefetch` batches each) while
        the caller computes: what a streamed dataset needs. Each worker reads with dask's synchronous
        scheduler and one torch thread, so N workers use N cores.
        """
        if workers <= 0:
            for indices in plan:
                yield self.batch(indices)
            return
        loader = DataLoader(
            self,
            batch_sampler=[list(b) for b in plan],
            collate_fn=self.collate,
            num_workers=workers,
            prefetch_factor=max(1, prefetch),
            worker_init_fn=_init_reader,
        )
        yield from loader

    def batch(self, indices: Any, *, targets: Sequence[int] | None = None) -> dict[str, torch.Tensor]:
        """A collated batch: `state (B, C, H, W)`, `targets (B, K, C, H, W)`, `time_hours (B,)` float64,
        and `previous (B, C, H, W)` with `use_history`. Negative indices count from the end. `targets`
        (steps 1..K) reads only those targets, in that order (what a score at a few leads needs of a
        long window).

        Index arithmetic runs in numpy (about a microsecond per operation on small arrays, where a torch
        call costs several), and the frames come out of one `index_select` (about 2.5x faster than
        advanced indexing with a 2-D index); state, targets and previous are views of that block.
        """
        index = np.asarray(indices, dtype=np.int64)
        try:
            ts = self._starts[index]
        except IndexError:
            raise IndexError(f"WindowDataset indices out of range for {len(self)} windows") from None
        frame_rows, n_frames, n_targets = self._frame_rows, self._n_frames, self.target_steps
        if targets is not None:
            picked = np.asarray(targets, dtype=np.int64)
            if picked.size == 0 or picked.min() < 1 or picked.max() > self.target_steps:
                raise IndexError(
                    f"WindowDataset targets must lie in 1..{self.target_steps}, got {list(targets)}"
                )
            frame_rows = frame_rows[:, np.concatenate([np.arange(self._history + 1), self._history + picked])]
            n_frames, n_targets = frame_rows.shape[1], picked.size
        rows = (ts[:, None] + frame_rows).ravel()
        if self._data is not None:
            frames = self._data.index_select(0, torch.from_numpy(rows))
        else:
            # Streamed: one read of the distinct frames the batch needs (windows overlap in time), then a
            # gather; a read per window would fetch the same storage chunks again for each window.
            needed, inverse = np.unique(rows, return_inverse=True)
            block = np.asarray(self._array.isel(time=needed).values, dtype=np.float32)
            frames = torch.from_numpy(np.ascontiguousarray(block))[torch.from_numpy(inverse.ravel())]
        frames = frames.view(len(ts), n_frames, *frames.shape[1:])
        h = self._history
        out = {
            "state": frames.select(1, h),
            "targets": frames.narrow(1, h + 1, n_targets),
            "time_hours": torch.from_numpy(self._hours[ts]),
        }
        if self.use_history:
            out["previous"] = frames.select(1, 0)
        return out


def _init_reader(worker_id: int) -> None:
    """A DataLoader worker: one torch thread, dask's synchronous scheduler (no thread pool per worker)."""
    import dask

    torch.set_num_threads(1)
    dask.config.set(scheduler="synchronous")


class WindowBatch(Sequence):
    """The windows of a batch as a sequence of per-window dicts (made on access), carrying the
    collated `batch` dict that `WindowDataset.collate` hands on without stacking again."""

    def __init__(self, batch: dict[str, torch.Tensor]) -> None:
        self.batch = batch
        self._size = int(batch["state"].shape[0])

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:  # type: ignore[override]
        if not -self._size <= index < self._size:
            raise IndexError(index)
        return {key: value[index] for key, value in self.batch.items()}
