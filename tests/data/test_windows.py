"""Training windows: contents, periods, gaps, batched fetching, lazy path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from fno_forecast.data.timeaxis import times_to_hours
from fno_forecast.data.windows import WindowDataset, window_starts
from fno_forecast.errors import DataError


def _array(steps: int = 24, *, drop: tuple[int, ...] = ()) -> xr.DataArray:
    times = pd.date_range("2013-01-01", periods=steps, freq="6h").values
    values = np.arange(steps, dtype=np.float32)[:, None, None, None] + np.zeros((1, 2, 3, 4), np.float32)
    values[:, 1] *= -1
    keep = [i for i in range(steps) if i not in drop]
    return xr.DataArray(
        values[keep],
        dims=("time", "channel", "lat", "lon"),
        coords={"time": times[keep], "channel": ["a", "b"], "lat": [10.0, 0.0, -10.0], "lon": [0.0, 1, 2, 3]},
        name="state",
    )


def test_window_contents_and_shapes() -> None:
    array = _array()
    ds = WindowDataset(array, target_steps=3, use_history=True)
    assert len(ds) == 24 - 3 - 1 and ds.in_memory
    item = ds[0]
    assert item["state"].shape == (2, 3, 4) and item["targets"].shape == (3, 2, 3, 4)
    assert item["state"][0, 0, 0] == 1.0 and item["previous"][0, 0, 0] == 0.0
    assert item["targets"][:, 1, 0, 0].tolist() == [-2.0, -3.0, -4.0]
    assert item["time_hours"].dtype == torch.float64
    assert float(item["time_hours"]) == times_to_hours(array["time"].values[1:2])[0]
    assert "previous" not in WindowDataset(array, target_steps=1, use_history=False)[0]


def test_windows_do_not_straddle_gaps() -> None:
    array = _array(drop=(10,))
    starts = WindowDataset(array, target_steps=2, use_history=True).starts
    times = array["time"].values
    for t in starts:
        span = np.diff(times[t - 1 : t + 3]).astype("timedelta64[h]").astype(int)
        assert (span == 6).all()
    # Around the gap (index 10 in the array is 2013-01-03T12) no window may use both sides.
    assert set(starts.tolist()) == set(range(1, 8)) | set(range(11, 21))


def test_windows_split_by_period_keep_targets_inside() -> None:
    array = _array(steps=40)
    period = "2013-01-05/2013-01-08"  # indices 16..31
    ds = WindowDataset(array, target_steps=2, use_history=True, period=period)
    assert ds.starts.tolist() == list(range(16, 30))
    assert ds[0]["previous"][0, 0, 0] == 15.0  # the input before the period may be used
    with pytest.raises(DataError, match="no window of 2 step"):
        WindowDataset(array, target_steps=2, use_history=True, period="2013-01-20/2013-01-22")


def test_getitems_equals_getitem_and_lazy_path_equals_memory() -> None:
    array = _array()
    fast = WindowDataset(array, target_steps=2, use_history=True)
    lazy = WindowDataset(array.chunk({"time": 5}), target_steps=2, use_history=True, in_memory_limit_bytes=0)
    assert fast.in_memory and not lazy.in_memory
    indices = [5, 0, 17, 3]
    for got, k in zip(fast.__getitems__(indices), indices, strict=True):
        for key, value in fast[k].items():
            torch.testing.assert_close(got[key], value)
            torch.testing.assert_close(lazy[k][key], value)
    batch = fast.batch(indices)
    assert batch["state"].shape == (4, 2, 3, 4) and batch["time_hours"].shape == (4,)
    torch.testing.assert_close(batch["targets"][2], fast[17]["targets"])


def test_a_batch_of_some_targets_reads_those_steps_in_memory_and_streamed() -> None:
    array = _array()
    fast = WindowDataset(array, target_steps=6, use_history=True)
    lazy = WindowDataset(array.chunk({"time": 5}), target_steps=6, use_history=True, in_memory_limit_bytes=0)
    for ds in (fast, lazy):
        whole = ds.batch([4, 0, 9])
        some = ds.batch([4, 0, 9], targets=(1, 4, 6))
        assert some["targets"].shape == (3, 3, 2, 3, 4)
        torch.testing.assert_close(some["targets"], whole["targets"][:, [0, 3, 5]])
        for key in ("state", "previous", "time_hours"):
            torch.testing.assert_close(some[key], whole[key])
        assert some["targets"][0, :, 0, 0, 0].tolist() == [6.0, 9.0, 11.0]  # window 4: state at step 5
        with pytest.raises(IndexError, match="targets must lie in 1..6"):
            ds.batch([0], targets=(0, 2))


def test_dataloader_batches() -> None:
    ds = WindowDataset(_array(), target_steps=2, use_history=False)
    loader = torch.utils.data.DataLoader(ds, batch_size=8, shuffle=False)
    batch = next(iter(loader))
    assert batch["state"].shape == (8, 2, 3, 4) and batch["targets"].shape == (8, 2, 2, 3, 4)
    assert batch["time_hours"].dtype == torch.float64
    assert batch["state"][:, 0, 0, 0].tolist() == list(range(8))


def test_window_starts_too_short() -> None:
    times = pd.date_range("2013-01-01", periods=3, freq="6h").values
    assert window_starts(times, target_steps=3, use_history=False).size == 0
    assert window_starts(times, target_steps=2, use_history=False).tolist() == [0]


def test_loader_collate_matches_default_collate() -> None:
    ds = WindowDataset(_array(), target_steps=2, use_history=True)
    fast = next(iter(ds.loader(batch_size=6, shuffle=False)))
    slow = next(iter(torch.utils.data.DataLoader(ds, batch_size=6, shuffle=False)))
    assert fast.keys() == slow.keys()
    for key in fast:
        torch.testing.assert_close(fast[key], slow[key])
    assert fast["previous"][:, 0, 0, 0].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    with pytest.raises(IndexError):
        ds.batch([0, len(ds)])
