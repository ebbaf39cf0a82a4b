"""Initial states a forecast can start from when the user gives none.

`hvsampledata` ships 20 real 6-hourly NCEP/NCAR Reanalysis 1 steps of near-surface air temperature
(2014-02-24T00 .. 2014-02-28T18, 2.5 degrees over North America) inside the wheel, so the default model
can forecast out of the box, offline.
"""

from __future__ import annotations

import xarray as xr

from fno_forecast.errors import DataError

DEFAULT_SOURCE = "NCEP/NCAR Reanalysis 1 air temperature (NOAA PSL), sample shipped by hvsampledata"


def default_initial_states() -> xr.Dataset:
    """The 20 NCEP steps of `hvsampledata.air_temperature`, loaded into memory, `air` in K (float32).

    The dataset keeps the source attributes (units `degK`, CF coordinates); `attrs["source"]` names it.
    """
    try:
        import hvsampledata
    except ImportError as error:  # an install without the sample package
        raise DataError("hvsampledata", f"the default initial states need the package ({error})") from error
    try:
        dataset = hvsampledata.air_temperature("xarray")
    except (OSError, ValueError) as error:
        raise DataError(
            "hvsampledata", f"cannot open the bundled air_temperature sample ({error})"
        ) from error
    dataset = dataset.load()
    dataset["air"] = dataset["air"].astype("float32")
    dataset.attrs["source"] = DEFAULT_SOURCE
    return dataset
