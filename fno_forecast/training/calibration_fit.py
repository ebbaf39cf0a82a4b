"""Fit the lead calibration of a trained stepper as it will be applied: out of sample, corrections on.

The network never trains on the training period's held-out tail (`data_setup.split_holdout`), so the
calibration fitted there sees the network's out-of-sample errors, not the smaller errors of windows it
has learned. Each init is rolled out with the recent-anomaly offset that a served forecast from it would
use (computed from the steps before it, `fno_forecast.recent_anomaly.recent_anomaly_offsets`). Per lead
and channel the weights of `fno_forecast.lead_calibration` are fitted by ridge least squares (pulled
toward the plain forecast) on blocks of consecutive inits, each scored with the weights fitted on the
others, and so is the shrunk forecast (the factor `a`, at most 1, and the offset's weight alone); those
cross-fitted errors compete with the held-out errors of the plain forecast, the prior, persistence and
the reference (the climatology with the offset; without an offset, the climatology), which fit nothing,
and the lowest wins (the blend is then refitted on all inits).
The recent-anomaly offset was kept by its own cross-validation on a third or more of the training
period (`fno_forecast.recent_anomaly`), where the tail holds a few independent values of its window's
mean anomaly (21 days on NCEP): the blend may re-weigh it, with a ridge toward its own fit (`OFFSET_RIDGE`), but no candidate
drops it. Free to move (its weight bounded alone) and with the climatology without the offset among the
candidates, the fit followed the tail's weather: on the tail before the NCEP winter fold (2013-11-07..
12-31, where the last week's anomaly reversed) the offset's weight went to -2, its bound, at 66-162 h and
the climatology was picked from 168 h, and in the fold, where the offset helped, the model lost to the
climatology and the linear baseline at 120 h. With `calibration_offset = false` its weight stays 0.
With `calibration_linear`, the linear AR candidate is fitted on the network's own period (its latest
`MAX_LINEAR_FIT_VALUES` values at most, so a store bigger than memory is not read once more in full)
and kept where it fits the bundle (`MAX_LINEAR_VALUES`); the held-out inits are as new to it as to the
network.
Neighbouring inits share their weather, so the blocks are runs of consecutive inits, not
alternating ones. Without a held-out tail (a training period too short to spare one, or
`calibration_holdout = 0`) the blend fits the factor `a` alone, on the network's own windows, with
alternating blocks, and the calibration says so (`held_out = false`): weights on the prior fitted in
sample trust errors the network has learned away (on a 6-day hourly set they made the 24 h forecast 25%
worse than persistence), while the single factor mostly corrects the prior's damping, which a short
training period barely changes. Persistence and the climatology may still be picked there: the network
looks better in sample than it is, so a lead it loses in sample it loses out of sample too.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import xarray as xr

from fno_forecast.data.stats import frame_bytes
from fno_forecast.data.timeaxis import period_mask
from fno_forecast.data.windows import WindowDataset
from fno_forecast.lead_calibration import (
    CHOICES,
    PREDICTORS,
    RANGES,
    LeadCalibration,
    Predictors,
    has_prior,
    weight_rows,
)
from fno_forecast.linear_ar import DEFAULT_COMPONENTS, LinearAR, fit_linear_ar
from fno_forecast.models.stepper import Stepper
from fno_forecast.recent_anomaly import offsets_at
from fno_forecast.rollout import rollout_windows
from fno_forecast.training.config import TrainConfig
from fno_forecast.training.data_setup import TrainingData, WindowCache

RIDGE = 1e-3  # pulls the blend toward the plain forecast, relative to the mean anomaly power
# pulls the offset's weight toward 0 (the weight of its own fit), relative to the same power: the offset
# moves where its re-weighing lowers the error by a good part of the forecast's anomaly power (the
# 1-day offset of an hourly set at 1-24 h), not where a small offset follows a few weeks' weather. Scored
# on the NCEP held-out folds and the hourly, daily and monthly sets of `benchmarks.retrain_suite` from
# their calibration sums, 0.5 and 1 held on all five, 2 lost the hourly gain, 0.3 the NCEP winter's
OFFSET_RIDGE = 0.5
BLOCKS = 4  # blocks of consecutive inits for the cross-fitted error of the blend
# float32 bytes of one batch of calibration windows, at most: the fit reads every step of each window (it
# is fitted per step), 41 frames of a 10-day 6-hourly window, 1.1 GB in a batch of 16 on 121 x 240 x 14
BATCH_BYTES = 512 * 2**20
# The linear AR candidate: components times grid values kept in the bundle (16 MB of float32), and the
# training values it is fitted on (the latest of the network's period, read in chunks by `fit_linear_ar`)
MAX_LINEAR_VALUES = 4_000_000
MAX_LINEAR_FIT_VALUES = 200_000_000
P = len(PREDICTORS)
OffsetsFor = Callable[[list[int]], torch.Tensor | None]


def _unit(name: str, sign: float = 1.0) -> torch.Tensor:
    weights = torch.zeros(P, dtype=torch.float64)
    weights[PREDICTORS.index(name)] = sign
    return weights


def solve_blend(gram: torch.Tensor, *, active: torch.Tensor) -> torch.Tensor:
    """Weights `(..., P)` minimising the error whose sums are `gram (..., P + 1, P + 1)` (products of the
    predictors' and the observed anomaly, the observed last), over the `active (P,)` predictors only,
    with a ridge toward the plain forecast (`RIDGE`, and `OFFSET_RIDGE` on the offset's weight); each
    weight clamped to its `RANGES`."""
    mask = active.to(gram.dtype)
    outer = mask[:, None] * mask[None, :]
    matrix = gram[..., :P, :P] * outer
    rhs = gram[..., :P, P] * mask
    power = (torch.diagonal(matrix, dim1=-2, dim2=-1) * mask).sum(-1) / mask.sum()
    ridge = (RIDGE * power).clamp(min=1e-30)
    eye = torch.eye(P, dtype=gram.dtype, device=gram.device)
    matrix = matrix + ridge[..., None, None] * eye * mask + eye * (1.0 - mask)
    offset = PREDICTORS.index("offset")
    matrix[..., offset, offset] += OFFSET_RIDGE * power * mask[offset]
    rhs = rhs + ridge[..., None] * _unit("network").to(gram.device) * mask
    weights = torch.linalg.solve(matrix, rhs)
    low = torch.tensor([RANGES[n][0] for n in PREDICTORS], dtype=gram.dtype, device=gram.device)
    high = torch.tensor([RANGES[n][1] for n in PREDICTORS], dtype=gram.dtype, device=gram.device)
    return torch.maximum(torch.minimum(weights, high), low)


def blend_error(weights: torch.Tensor, gram: torch.Tensor) -> torch.Tensor:
    """The weighted squared error of the blend `weights (..., P)` on the sums `gram (..., P + 1, P + 1)`."""
    matrix, rhs, observed = gram[..., :P, :P], gram[..., :P, P], gram[..., P, P]
    quadratic = torch.einsum("...i,...ij,...j->...", weights, matrix, weights)
    return observed - 2.0 * (weights * rhs).sum(-1) + quadratic


@torch.no_grad()
def fit_lead_calibration(
    stepper: Stepper,
    dataset: WindowDataset,
    *,
    n_steps: int,
    lat_weights: torch.Tensor,
    init_stride: int,
    batch_size: int,
    device: torch.device,
    period: str,
    held_out: bool = False,
    offsets_for: OffsetsFor | None = None,
    use_prior: bool = True,
    linear: LinearAR | None = None,
    reweigh_offset: bool = True,
) -> LeadCalibration | None:
    """Fit and pick the weights on windows of at least `n_steps` steps (see the module docstring); None
    without a climatology or windows. `use_prior = False` fits the factor alone (the prior's anomaly is
    then not even computed). `offsets_for(window_indices)` gives the recent-anomaly offsets `(B, C, H,
    W)` that a served forecast from those windows' inits would use (or None). `linear` is the linear AR
    predictor (held-out fits only). `reweigh_offset = False` leaves the offset's weight at 0."""
    if not stepper.use_climatology or len(dataset) == 0:
        return None
    was_training = stepper.training
    stepper.eval()
    indices = np.arange(0, len(dataset), max(1, init_stride))
    # Per block, lead step and channel: weighted sums of the products of the predictors and the observed.
    gram = torch.zeros(BLOCKS, n_steps, stepper.n_channels, P + 1, P + 1, dtype=torch.float64, device=device)
    weights = lat_weights.to(device).double()
    with_prior = use_prior and has_prior(stepper)
    linear = linear if held_out else None
    predictors, first, seen, saw_offset = None, 0, 0, False
    for batch, step, predicted in rollout_windows(
        stepper,
        dataset,
        indices=indices,
        n_steps=n_steps,
        batch_size=batch_size,
        device=device,
        offsets_for=offsets_for,
    ):
        if step == 1:  # a new batch of inits
            first, seen = seen, seen + int(batch["state"].shape[0])
            saw_offset = saw_offset or "climatology_offset" in batch
            predictors = Predictors(
                stepper,
                batch["state"],
                time_hours=batch["time_hours"],
                previous=batch.get("previous"),
                climatology_offset=batch.get("climatology_offset"),
                linear=linear,
            )
        assert predictors is not None  # set with the batch
        reference = predictors.reference(step)
        skipped = {"prior"} if not with_prior else set()
        if predictors.offset is None or not reweigh_offset:
            skipped.add("offset")  # zeros, or not re-weighed: its sums stay zero
        if linear is None:
            skipped.add("linear")
        columns = [
            None
            if name in skipped
            else predictors.anomaly(name, step, forecast=predicted, reference=reference).double()
            for name in PREDICTORS
        ]
        columns.append((batch["targets"][:, step - 1] - reference).double())
        position = first + torch.arange(predicted.shape[0], device=device)
        block = position * BLOCKS // len(indices) if held_out else position % BLOCKS
        # each product once, summed over the grid per init, then added to its init's block
        for i, x in enumerate(columns):
            for j in range(i, P + 1):
                y = columns[j]
                if x is not None and y is not None:
                    per_init = (weights * x * y).sum(dim=(2, 3))  # (B, C)
                    gram[:, step - 1, :, i, j] += torch.zeros_like(gram[:, 0, :, 0, 0]).index_add_(
                        0, block, per_init
                    )
    stepper.train(was_training)
    gram = gram + torch.triu(gram, diagonal=1).transpose(-1, -2)
    # Persistence's anomaly is the damped prior's undamped (but for the climatology's change over the
    # lead): both in one fit are near collinear and the fit unstable, so it is a predictor of its own
    # only beside the linear spectral prior or without a prior. It stays a candidate on its own everywhere.
    # The linear AR is a candidate on its own only, never in the blend: in the blend, fitted on the 55
    # held-out days before a winter, it was weighed 0.44 at 120 h and the forecast lost 0.45 K to the
    # climatology in the winter itself (`python -m benchmarks.held_out_folds --calibration-linear` at
    # commit 5073511, the 2014-01..03 fold).
    with_persistence = held_out and (stepper.spectral_prior is not None or not has_prior(stepper))
    active = torch.tensor(
        [True, with_prior, with_persistence, held_out and saw_offset and reweigh_offset, False],
        dtype=torch.bool,
        device=device,
    )
    return _pick(
        gram,
        active=active,
        saw_offset=saw_offset,
        period=period,
        inits=int(len(indices)),
        held_out=held_out,
        linear=linear,
    )


def _shrink_mask(active: torch.Tensor) -> torch.Tensor:
    """The shrunk forecast's predictors: the network's anomaly and, where the blend has it, the offset."""
    names = ("network", "offset")
    return torch.tensor([n in names for n in PREDICTORS], device=active.device) & active


def _shrunk(gram: torch.Tensor, *, active: torch.Tensor) -> torch.Tensor:
    """The network's anomaly shrunk toward the reference by one fitted factor in [0, 1] (with the
    offset's weight where `active` has it): what an ensemble mean does where skill fades, with one or two
    numbers per lead instead of the blend's four, so it holds out where the blend overfits."""
    weights = solve_blend(gram, active=active)
    index = PREDICTORS.index("network")
    weights[..., index] = weights[..., index].clamp(max=1.0)
    return weights


def _pick(
    gram: torch.Tensor,
    *,
    active: torch.Tensor,
    saw_offset: bool,
    period: str,
    inits: int,
    held_out: bool,
    linear: LinearAR | None = None,
) -> LeadCalibration:
    """Per lead and channel, the lowest held-out error of `CHOICES`: the blend and the shrunk forecast
    cross-fitted on the blocks of `gram (BLOCKS, K, C, P + 1, P + 1)`, the others as they are (ties go to the earlier in `CHOICES`).
    Only a candidate that beats the plain forecast in every block may replace it: a change must hold
    throughout the held-out weather, not in most of it (with a lower total alone, on 38 monthly inits the
    climatology took the network's 6-month temperature, which the network beats by 4% on the following
    three years: `python -m benchmarks.retrain_suite --only monthly` at d00ce50 and after).
    Where the inits had a recent-anomaly offset the climatology without it is no candidate (the module
    docstring says why); without one the climatology is the reference."""
    fixed = {
        "plain": _unit("network"),
        "prior": _unit("prior"),  # the model's own prior without the network
        "persistence": _unit("persistence"),
        "climatology": torch.zeros(P, dtype=torch.float64),  # a candidate only without an offset
        "reference": torch.zeros(P, dtype=torch.float64),  # the climatology with the offset
        "linear": _unit("linear"),  # the linear AR alone
    }
    fixed = {name: w.to(gram.device) for name, w in fixed.items()}
    total = gram.sum(0)
    left_out = solve_blend(total[None] - gram, active=active)  # fitted without each block in turn
    per_block = {name: blend_error(w, gram) for name, w in fixed.items()}  # (BLOCKS, K, C)
    per_block["blend"] = blend_error(left_out, gram)
    shrink = _shrink_mask(active)
    per_block["shrunk"] = blend_error(_shrunk(total[None] - gram, active=shrink), gram)
    plain = per_block.pop("plain")
    empty = gram[..., P, P] <= 0.0  # (BLOCKS, K, C): a block without inits (fewer inits than blocks)
    errors = {"plain": plain.sum(0)}
    for name, values in per_block.items():  # a candidate counts only where it wins every block
        held = ((values < plain) | empty).all(0)
        errors[name] = torch.where(held, values.sum(0), torch.full_like(errors["plain"], float("inf")))
    usable = {"prior": bool(active[PREDICTORS.index("prior")]), "linear": linear is not None}
    usable["climatology"] = not saw_offset  # with one, the climatology without it drops the offset
    for name, ok in usable.items():  # no prior beyond persistence, no linear AR, or not computed
        if not ok:
            errors[name] = torch.full_like(errors["plain"], float("inf"))
    table = torch.stack([errors[name] for name in CHOICES], dim=-1)  # (K, C, choice); plain first wins ties
    choice = table.argmin(dim=-1)
    blend = solve_blend(total, active=active)
    chosen = blend.clone()
    shrunk = _shrunk(total, active=shrink)
    for index, name in enumerate(CHOICES):
        if name == "shrunk":
            chosen[choice == index] = shrunk[choice == index]
        elif name != "blend":
            chosen[choice == index] = fixed[name]
    plain_error = errors["plain"].clamp(min=1e-12)
    best = table.gather(-1, choice[..., None])[..., 0]
    changed = choice != CHOICES.index("plain")
    values = chosen.cpu().numpy()
    counts = {name: int((choice == i).sum()) for i, name in enumerate(CHOICES)}
    uses_linear = bool((values[..., PREDICTORS.index("linear")] != 0.0).any())
    return LeadCalibration(
        factors=weight_rows(values[..., 0]),
        prior_weights=weight_rows(values[..., 1]),
        persistence_weights=weight_rows(values[..., 2]),
        offset_weights=weight_rows(values[..., 3]),
        linear_weights=weight_rows(values[..., PREDICTORS.index("linear")]) if uses_linear else (),
        linear=linear if uses_linear else None,
        fitted_on=period,
        inits=inits,
        kept=int(changed.sum()),
        held_out_gain=float(((plain_error - best) / plain_error)[changed].sum())
        if bool(changed.any())
        else 0.0,
        held_out=held_out,
        picked=tuple((name, n) for name, n in counts.items() if n),
    )


def offsets_reader(data: TrainingData, dataset: WindowDataset) -> Callable[[list[int]], torch.Tensor | None]:
    """`offsets_for(window_indices)`: the recent-anomaly offsets of those windows' inits, read from the
    steps before each init (read in bounded blocks, `recent_anomaly.offsets_at`, so a streamed store stays streamed)."""
    correction = data.recent_anomaly
    starts = dataset.starts

    def offsets_for(indices: list[int]) -> torch.Tensor | None:
        if correction is None or not indices:
            return None
        offsets, _ = offsets_at(
            correction,
            climatology=data.climatology,
            array=data.array,
            positions=starts[np.asarray(indices, dtype=np.int64)],
            step_hours=data.step_hours,
        )
        return torch.from_numpy(offsets)

    return offsets_for


def calibration_batch(val_batch_size: int, *, dataset: WindowDataset, array: xr.DataArray) -> int:
    """The validation batch, fewer where its windows' frames would pass `BATCH_BYTES` (at least one)."""
    window = frame_bytes(array) * (dataset.target_steps + 1 + int(dataset.use_history))
    return max(1, min(val_batch_size, BATCH_BYTES // window))


def calibration_windows(windows: WindowCache, steps: int) -> tuple[WindowDataset, bool]:
    """The windows the lead calibration is fitted on and whether they are held out: the training
    period's held-out tail, else the network's own windows."""
    dataset = windows.holdout(steps)
    return (windows.train(steps), False) if dataset is None else (dataset, True)


def linear_predictor(data: TrainingData) -> LinearAR | None:
    """The linear AR on principal components fitted on the network's period, for the calibration; None
    where the data hold too little of it or where the bundle could not hold even one component per
    `MAX_LINEAR_VALUES`."""
    period = data.network_period or data.train_period
    steps = np.flatnonzero(period_mask(data.array["time"].values, period))
    points = int(np.prod(data.array.shape[1:]))
    components = min(DEFAULT_COMPONENTS, MAX_LINEAR_VALUES // points)
    if steps.size < 2 or components < 1:
        return None
    steps = steps[-max(2, MAX_LINEAR_FIT_VALUES // points) :]
    return fit_linear_ar(
        data.array.isel(time=steps), data.climatology, step_hours=data.step_hours, n_components=components
    )


def fit_calibration(
    stepper: Stepper,
    *,
    data: TrainingData,
    windows: WindowCache,
    config: TrainConfig,
    lead_steps: tuple[int, ...],
    lat_weights: torch.Tensor,
    device: torch.device,
) -> LeadCalibration | None:
    """The trained stepper's lead calibration, fitted on the held-out tail (factors alone without one)."""
    if not config.lead_calibration:
        return None
    steps = max(lead_steps)
    dataset, held_out = calibration_windows(windows, steps)
    return fit_lead_calibration(
        stepper,
        dataset,
        n_steps=steps,
        lat_weights=lat_weights,
        init_stride=config.calibration_init_stride,
        batch_size=calibration_batch(config.val_batch_size, dataset=dataset, array=data.array),
        device=device,
        period=data.holdout_period if held_out else data.network_period or data.train_period,
        held_out=held_out,
        use_prior=held_out,
        offsets_for=offsets_reader(data, dataset) if held_out and data.recent_anomaly is not None else None,
        linear=linear_predictor(data) if held_out and config.calibration_linear else None,
        reweigh_offset=config.calibration_offset,
    )
