"""Per-lead calibration of forecast anomalies: model output statistics fitted out of sample.

A deterministic forecast trained on the mean squared error is still not the conditional mean at every
lead: at some leads its anomalies are too weak, at long leads too strong for the skill they have, and
at some leads the model's own prior (damped anomaly persistence, the linear spectral dynamics, or
persistence where the model has no prior) still knows something the network lost. Model output statistics (MOS) have corrected this since
the 1970s. Per lead step `k` and channel `c`, two weights minimise the latitude-weighted squared error of

    forecast'_k = reference_k + a[k, c] * (forecast_k - reference_k) + b[k, c] * prior_k

where the reference is the stepper's climatology plus the recent-anomaly offset (the correction as a
served forecast applies it) and `prior_k` is the prior's anomaly forecast from the initial state
(`(1 - r)^k * (state - reference_0)` with the stepper's relaxation rates r; the linear spectral prior
rolled out alongside, `Stepper.prior_step` k times, less `reference_k`; else `state - reference_k`).
So `a` shrinks the network's anomalies toward the climatology and `b` blends in the prior. The weights
are fitted on inits that the network never trained on (the training period's held-out tail,
`fno_forecast.training.data_setup`), and a lead and channel keeps its weights only where fitting them
on the earlier half of those inits beats the plain forecast on the later half and the other way round. The autoregressive
state is never changed: only what the rollout yields is. Leads beyond the fitted ones use the last row.
`fno-forecast info MODEL` prints them; they are a few hundred numbers in `model.json`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from fno_forecast.data.windows import WindowDataset
from fno_forecast.models.stepper import Stepper
from fno_forecast.rollout import rollout_windows

FACTOR_RANGE = (0.0, 2.0)
PRIOR_RANGE = (-1.0, 2.0)
RIDGE = 1e-3  # pulls the fit toward the plain forecast (a = 1, b = 0) relative to the anomaly power


def _rows(values: Any) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(float(x) for x in row) for row in values)


@dataclass(frozen=True)
class LeadCalibration:
    """`factors[k][c]` (a) and `prior_weights[k][c]` (b) for lead step k + 1 and channel c, fitted on
    `inits` inits of `fitted_on`; `held_out` says whether the network never trained on them."""

    factors: tuple[tuple[float, ...], ...]
    fitted_on: str
    inits: int
    kept: int = -1  # lead/channel pairs kept by the cross-fitted check (-1: fitted before it existed)
    held_out_gain: float = 0.0
    prior_weights: tuple[tuple[float, ...], ...] = ()  # empty: no prior term (bundles before it existed)
    held_out: bool = False

    def __post_init__(self) -> None:
        if not self.factors or len({len(row) for row in self.factors}) != 1:
            raise ValueError("lead_calibration: factors must be a non-empty list of equal-length rows")
        for name, rows, (low, high) in (
            ("factors", self.factors, FACTOR_RANGE),
            ("prior_weights", self.prior_weights, PRIOR_RANGE),
        ):
            if not all(low <= x <= high for row in rows for x in row):
                raise ValueError(f"lead_calibration: {name} must lie in [{low}, {high}]")
        if self.prior_weights and [len(r) for r in self.prior_weights] != [len(r) for r in self.factors]:
            raise ValueError("lead_calibration: prior_weights must have the shape of factors")

    def to_dict(self) -> dict[str, Any]:
        return {
            "factors": [list(f) for f in self.factors],
            "prior_weights": [list(f) for f in self.prior_weights],
            "fitted_on": self.fitted_on,
            "inits": self.inits,
            "kept": self.kept,
            "held_out_gain": self.held_out_gain,
            "held_out": self.held_out,
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> LeadCalibration:
        return cls(
            factors=_rows(values["factors"]),
            prior_weights=_rows(values.get("prior_weights", ())),
            fitted_on=str(values["fitted_on"]),
            inits=int(values["inits"]),
            kept=int(values.get("kept", -1)),
            held_out_gain=float(values.get("held_out_gain", 0.0)),
            held_out=bool(values.get("held_out", False)),
        )

    @property
    def n_channels(self) -> int:
        return len(self.factors[0])

    def tensor(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """`(steps, channel)` float32 factors a."""
        return torch.tensor(self.factors, dtype=torch.float32, device=device)

    def prior_tensor(self, device: torch.device | str = "cpu") -> torch.Tensor | None:
        """`(steps, channel)` float32 prior weights b, or None when the calibration has none."""
        if not self.prior_weights:
            return None
        return torch.tensor(self.prior_weights, dtype=torch.float32, device=device)


class PriorForecast:
    """The prior's anomaly forecasts from one batch of inits, asked for lead step after lead step (1, 2,
    ... in order): damped anomaly persistence in closed form, the linear spectral prior rolled out
    alongside the network (`Stepper.prior_step`), persistence where the stepper has no prior."""

    def __init__(
        self,
        stepper: Stepper,
        state: torch.Tensor,
        *,
        time_hours: torch.Tensor,
        reference_now: torch.Tensor,
        previous: torch.Tensor | None = None,
        climatology_offset: torch.Tensor | None = None,
    ) -> None:
        self._stepper, self._state, self._reference_now = stepper, state, reference_now
        self._hours, self._offset = time_hours.to(torch.float64), climatology_offset
        self._now, self._before, self._steps = state, previous, 0

    def anomaly(self, step: int, *, reference_then: torch.Tensor) -> torch.Tensor:
        """The prior's anomaly about `reference_then` (the reference at lead step `step`)."""
        stepper = self._stepper
        if stepper.spectral_prior is not None:
            if step < self._steps:
                raise ValueError(f"PriorForecast: step {step} asked after step {self._steps}")
            while self._steps < step:
                following = stepper.prior_step(
                    self._now,
                    time_hours=self._hours + self._steps * stepper.step_hours,
                    previous=self._before,
                    climatology_offset=self._offset,
                )
                self._before, self._now, self._steps = self._now, following, self._steps + 1
            return self._now - reference_then
        if stepper.relaxation is not None:
            return (1.0 - stepper.relaxation) ** step * (self._state - self._reference_now)
        return self._state - reference_then


def calibrate(
    steps: Iterator[torch.Tensor],
    *,
    stepper: Stepper,
    state: torch.Tensor,
    time_hours: torch.Tensor,
    factors: torch.Tensor | None,
    prior_weights: torch.Tensor | None = None,
    climatology_offset: torch.Tensor | None = None,
    previous: torch.Tensor | None = None,
) -> Iterator[torch.Tensor]:
    """What a rollout from `state` yields, recalibrated lead by lead (see the module docstring).

    `steps` is a `fno_forecast.rollout.rollout` started from `state` at `time_hours`; `factors` and
    `prior_weights` `(K, C)`, the last row used beyond K. Without factors the steps pass through
    unchanged. The rollout's own state is untouched. `previous` is the state one step before `state`
    where the rollout had it (an order-2 linear spectral prior uses it).
    """
    hours = time_hours.to(torch.float64)
    prior = None
    if factors is not None and prior_weights is not None:
        prior = PriorForecast(
            stepper,
            state,
            time_hours=hours,
            reference_now=stepper.climatology_at(hours, offset=climatology_offset),
            previous=previous,
            climatology_offset=climatology_offset,
        )
    for step, following in enumerate(steps, start=1):
        if factors is None:
            yield following
            continue
        row = min(step, factors.shape[0]) - 1
        reference = stepper.climatology_at(hours + step * stepper.step_hours, offset=climatology_offset)
        out = reference + factors[row].view(1, -1, 1, 1) * (following - reference)
        if prior_weights is not None and prior is not None:
            out = out + prior_weights[row].view(1, -1, 1, 1) * prior.anomaly(step, reference_then=reference)
        yield out


def _solve(sums: torch.Tensor) -> torch.Tensor:
    """Weights `(..., 2)` minimising the error of the sums `(..., 6)`: nn, np, pp, no, po, oo."""
    nn_, np_, pp, no, po = (sums[..., i] for i in range(5))
    ridge = RIDGE * (nn_ + pp) / 2
    a11, a12, a22 = nn_ + ridge, np_, pp + ridge
    r1, r2 = no + ridge, po
    det = (a11 * a22 - a12 * a12).clamp(min=1e-30)
    a = (r1 * a22 - r2 * a12) / det
    b = (a11 * r2 - a12 * r1) / det
    return torch.stack([a.clamp(*FACTOR_RANGE), b.clamp(*PRIOR_RANGE)], dim=-1)


def _error(weights: torch.Tensor, sums: torch.Tensor) -> torch.Tensor:
    a, b = weights[..., 0], weights[..., 1]
    nn_, np_, pp, no, po, oo = (sums[..., i] for i in range(6))
    return oo - 2 * a * no - 2 * b * po + a * a * nn_ + 2 * a * b * np_ + b * b * pp


OffsetsFor = Callable[[list[int]], torch.Tensor | None]


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
) -> LeadCalibration | None:
    """Fit the weights on windows of at least `n_steps` steps; None without a climatology or windows.

    `offsets_for(window_indices)` gives the recent-anomaly offsets `(B, C, H, W)` that a served forecast
    from those windows' inits would use (or None), so the fit sees the corrections it is applied with.
    """
    if not stepper.use_climatology or len(dataset) == 0:
        return None
    was_training = stepper.training
    stepper.eval()
    indices = np.arange(0, len(dataset), max(1, init_stride))
    # Per half (earlier and later inits), lead step and channel: weighted sums of the products of the
    # network's anomaly n, the prior's anomaly p and the observed anomaly o.
    sums = torch.zeros(2, n_steps, stepper.n_channels, 6, dtype=torch.float64, device=device)
    weights = lat_weights.to(device).double()
    offset, prior, first, seen = None, None, 0, 0
    for batch, step, predicted in rollout_windows(
        stepper,
        dataset,
        indices=indices,
        n_steps=n_steps,
        batch_size=batch_size,
        device=device,
        offsets_for=offsets_for,
    ):
        hours = batch["time_hours"].double()
        if step == 1:  # a new batch of inits
            first = seen
            seen += int(hours.shape[0])
            offset = batch.get("climatology_offset")
            prior = PriorForecast(
                stepper,
                batch["state"],
                time_hours=hours,
                reference_now=stepper.climatology_at(hours, offset=offset),
                previous=batch.get("previous"),
                climatology_offset=offset,
            )
        reference = stepper.climatology_at(hours + step * stepper.step_hours, offset=offset)
        n = (predicted - reference).double()
        assert prior is not None  # set with the batch
        # without the prior's term (b = 0) its anomaly is not even computed: its sums stay zero
        p = prior.anomaly(step, reference_then=reference).double() if use_prior else torch.zeros_like(n)
        o = (batch["targets"][:, step - 1] - reference).double()
        # held out: the earlier and the later half of the inits (neighbouring inits share their weather,
        # so alternating ones would check the fit on almost the same cases); in sample: alternating inits
        position = first + torch.arange(n.shape[0], device=n.device)
        half = (position >= len(indices) // 2).long() if held_out else position % 2
        for h in (0, 1):
            pick = half == h
            for i, (x, y) in enumerate(((n, n), (n, p), (p, p), (n, o), (p, o), (o, o))):
                sums[h, step - 1, :, i] += (weights * x[pick] * y[pick]).sum(dim=(0, 2, 3))
    stepper.train(was_training)
    plain = torch.zeros_like(sums[0, ..., :2])
    plain[..., 0] = 1.0
    fitted = _solve(sums)  # (half, step, channel, 2)
    crossed = _error(fitted[1], sums[0]) + _error(fitted[0], sums[1])
    baseline = _error(plain, sums[0]) + _error(plain, sums[1])
    helps = crossed < baseline
    chosen = torch.where(helps[..., None], _solve(sums.sum(0)), plain).cpu().numpy()
    gain = (
        float(((baseline - crossed) / baseline.clamp(min=1e-12))[helps].sum()) if bool(helps.any()) else 0.0
    )
    return LeadCalibration(
        factors=_rows(chosen[..., 0]),
        prior_weights=_rows(chosen[..., 1]),
        fitted_on=period,
        inits=int(len(indices)),
        kept=int(helps.sum().item()),
        held_out_gain=gain,
        held_out=held_out,
    )
