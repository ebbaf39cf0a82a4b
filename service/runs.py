"""`run`, a forecast's init time, as the API reads it and counts lead times from it.

The API writes times as `YYYY-MM-DDTHH:MM` (UTC, no zone suffix) with the library's
`fno_forecast.data.timeaxis.format_time`, and reads the same here, with or without a trailing `Z`.
Valid times are the run plus whole seconds of lead.
"""

from __future__ import annotations

import numpy as np


def run_time(text: str) -> np.datetime64:
    """The time a `run` names, to the minute; ValueError when it is not an ISO 8601 time."""
    value = np.datetime64(text.strip().removesuffix("Z"), "m")
    if np.isnat(value):  # numpy reads "" and "NaT" as not-a-time
        raise ValueError(f"{text!r} is not a time")
    return value


def valid_times(init: np.datetime64, lead_hours: np.ndarray | float) -> np.ndarray:
    """`init` plus each lead (hours, rounded to the second), as `datetime64[s]`."""
    offsets = np.round(np.asarray(lead_hours, dtype=np.float64) * 3600.0).astype("timedelta64[s]")
    return np.datetime64(init, "s") + offsets
