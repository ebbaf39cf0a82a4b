"""How much skill a dataset leaves to find: an upper bound on beating the climatology per lead.

The forecast: the climatology plus the damped anomaly of the truth's own initial state (per-point AR(1)
rates fitted on the training period, `fno_forecast.training.relaxation`), the anomaly then scaled per lead
and channel by the factor that is best on the scored period itself (an oracle no model has). Where this
scores barely under the climatology, no forecast built on the initial state's anomaly can beat the
climatology by more, and a model that ties it there is at the data's predictability limit.

    python -m benchmarks.predictability --data daily.nc --train-period 2015-01-01/2017-12-31 \\
        --score-period 2018-07-01/2018-12-31 --annual 3 --leads 1,3,5,10

Latitude-weighted RMSE over every init of the score period whose lead verifies inside it.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from fno_forecast.climatology import fit_climatology
from fno_forecast.data.channels import open_channels
from fno_forecast.data.grid import latitude_weights
from fno_forecast.data.timeaxis import select_period, times_to_hours
from fno_forecast.training.relaxation import fit_relaxation


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--train-period", required=True)
    parser.add_argument("--score-period", required=True)
    parser.add_argument("--annual", type=int, default=0, help="annual harmonics of the climatology")
    parser.add_argument("--diurnal", type=int, default=0, help="diurnal harmonics of the climatology")
    parser.add_argument("--leads", default="1", help="lead steps, comma-separated")
    args = parser.parse_args(argv)
    array = open_channels(args.data).array
    train, score = select_period(array, args.train_period), select_period(array, args.score_period)
    climatology = fit_climatology(train, annual=args.annual, diurnal=args.diurnal)
    keep = 1.0 - fit_relaxation(train, climatology).astype(np.float64)
    values = np.asarray(score.values, dtype=np.float64)
    clim = climatology.at_hours(times_to_hours(score["time"].values)).astype(np.float64)
    anomaly = values - clim
    weights = latitude_weights(score["lat"].values)[None, None, :, None]
    names = list(score["channel"].values)

    def rmse(error: np.ndarray) -> np.ndarray:
        return np.sqrt((weights * error**2).mean(axis=(0, 2, 3)))

    print("| lead (steps) | channel | climatology | oracle-shrunk damped anomaly | ratio | factor |")
    print("| ---: | --- | ---: | ---: | ---: | ---: |")
    for lead in (int(x) for x in args.leads.split(",")):
        inits = np.arange(len(values) - lead)
        forecast = keep[None] ** lead * anomaly[inits]
        truth = anomaly[inits + lead]
        factor = (weights * forecast * truth).sum(axis=(0, 2, 3)) / (weights * forecast**2).sum(
            axis=(0, 2, 3)
        )
        shrunk = rmse(factor[None, :, None, None] * forecast - truth)
        plain = rmse(truth)
        for c, name in enumerate(names):
            print(
                f"| {lead} | {name} | {plain[c]:.3f} | {shrunk[c]:.3f} | {shrunk[c] / plain[c]:.3f} "
                f"| {factor[c]:.2f} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
