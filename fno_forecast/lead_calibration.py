"""Per-lead calibration of forecast anomalies: model output statistics fitted out of sample.

A deterministic forecast trained on the mean squared error is still not the conditional mean at every
lead: at some leads its anomalies are too weak, at long leads too strong for the skill they have, at
some leads the model's own prior (damped anomaly persistence, the linear spectral dynamics) or plain
persistence still knows something the network lost, and at the longest ones nothing beats the
climatology. Model output statistics (MOS) have corrected this since the 1970s, with persistence and
the climatology among their predictors. Per lead step `k` and channel `c`, five weights minimise the
latitude-weighted squared error of

    forecast'_k = reference_k + a (forecast_k - reference_k) + b prior_k + c (state - reference_k) + d offset
                  + e (linear_k - reference_k)

where the reference is the stepper's climatology plus the recent-anomaly offset (the correction as a
served forecast applies it), `prior_k` is the prior's anomaly forecast from the initial state
(`(1 - r)^k * (state - reference_0)` with the stepper's relaxation rates r; the linear spectral prior
rolled out alongside, `Stepper.prior_step` k times, less `reference_k`; persistence, `state -
reference_k`, where the stepper has no prior, and then `b` is not fitted), `state - reference_k` is
persistence's anomaly, `offset` the recent-anomaly offset (so `d = -1` undoes it) and `linear_k` the
linear autoregression on principal components (`fno_forecast.linear_ar`, fitted on the network's own
training period and stored in the bundle with the weights; where it is not, `e` is 0). The plain
forecast is `a = 1`, the rest 0; the prior alone is `b = 1`; persistence is `c = 1`; the climatology is
all 0 but `d = -1`; the reference (the climatology with the offset) is all 0; the linear AR is `e = 1`.
The linear AR is the baseline the score card holds the model against, and at the leads where the
network's skill has faded it may know as much as the network or more. The fit offers it on its own
(`e = 1`), not inside the blend, whose five weights fitted on a few weeks of held-out inits would
overfit (`fno_forecast.training.calibration_fit`).
`fno_forecast.training.calibration_fit` fits the weights on inits that the network never trained on and
picks, per lead and channel, whichever of the plain forecast, the prior, persistence, the reference,
the linear AR, the fitted blend and the shrunk forecast (only `a`, at most 1, and `d` fitted: the
network's anomaly damped toward the reference as an ensemble mean is where skill fades) has the lowest
held-out error. Its `d` is held toward 0, the offset's own fit, by a ridge, and it never picks the
climatology without the offset where there is one (older bundles may hold both). The autoregressive
state is never changed: only what the rollout yields is. Leads beyond the fitted ones use the last row. `fno-forecast
info MODEL` prints the weights; they are a few hundred numbers in `model.json`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from fno_forecast.linear_ar import LinearAR, LinearARForecast
from fno_forecast.models.stepper import Stepper

PREDICTORS = ("network", "prior", "persistence", "offset", "linear")
RANGES = {"network": (0.0, 2.0), "prior": (-1.0, 2.0), "persistence": (-1.0, 2.0), "offset": (-2.0, 1.0)}
RANGES["linear"] = (-1.0, 2.0)
FIELDS = {"network": "factors", "prior": "prior_weights", "persistence": "persistence_weights"}
FIELDS.update(offset="offset_weights", linear="linear_weights")
CHOICES = ("plain", "shrunk", "blend", "prior", "persistence", "climatology", "reference", "linear")


def weight_rows(values: Any) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(float(x) for x in row) for row in values)


@dataclass(frozen=True)
class LeadCalibration:
    """Weights `[k][c]` for lead step k + 1 and channel c: `factors` (a, the network's anomaly),
    `prior_weights` (b), `persistence_weights` (c), `offset_weights` (d), `linear_weights` (e); an empty
    tuple is all zeros (a bundle from before that term). Fitted on `inits` inits of `fitted_on`; `held_out`
    says whether the network never trained on them; `picked` counts the lead/channel pairs that took each
    of `CHOICES`. `linear` is the linear AR the weights `e` multiply (its arrays live in the bundle's
    arrays file, `model.json` says what it was fitted on); applying weights with an `e` not 0 needs it
    (reading them, as `fno-forecast info` does, does not)."""

    factors: tuple[tuple[float, ...], ...]
    fitted_on: str
    inits: int
    kept: int = -1  # lead/channel pairs that are not the plain forecast (-1: fitted before the check)
    held_out_gain: float = 0.0
    prior_weights: tuple[tuple[float, ...], ...] = ()
    held_out: bool = False
    persistence_weights: tuple[tuple[float, ...], ...] = ()
    offset_weights: tuple[tuple[float, ...], ...] = ()
    picked: tuple[tuple[str, int], ...] = ()
    linear_weights: tuple[tuple[float, ...], ...] = ()
    linear: LinearAR | None = dataclasses.field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.factors or len({len(row) for row in self.factors}) != 1:
            raise ValueError("lead_calibration: factors must be a non-empty list of equal-length rows")
        shape = [len(row) for row in self.factors]
        for predictor, field in FIELDS.items():
            rows = getattr(self, field)
            low, high = RANGES[predictor]
            if not all(low <= x <= high for row in rows for x in row):
                raise ValueError(f"lead_calibration: {field} must lie in [{low}, {high}]")
            if rows and [len(r) for r in rows] != shape:
                raise ValueError(f"lead_calibration: {field} must have the shape of factors")
        unknown = {name for name, _ in self.picked} - set(CHOICES)
        if unknown:
            raise ValueError(f"lead_calibration: picked names {sorted(unknown)}, not one of {CHOICES}")

    def to_dict(self) -> dict[str, Any]:
        values: dict[str, Any] = {field: [list(r) for r in getattr(self, field)] for field in FIELDS.values()}
        values.update(
            fitted_on=self.fitted_on,
            inits=self.inits,
            kept=self.kept,
            held_out_gain=self.held_out_gain,
            held_out=self.held_out,
            picked=dict(self.picked),
        )
        if self.linear is not None:
            values["linear"] = {
                "fitted_on": self.linear.fitted_on,
                "components": self.linear.n_components,
                "pairs": self.linear.pairs,
            }
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, linear: LinearAR | None = None) -> LeadCalibration:
        """Read `to_dict`'s output back; `linear` is the linear AR read from the bundle's arrays."""
        return cls(
            factors=weight_rows(values["factors"]),
            linear_weights=weight_rows(values.get("linear_weights", ())),
            linear=linear,
            prior_weights=weight_rows(values.get("prior_weights", ())),
            persistence_weights=weight_rows(values.get("persistence_weights", ())),
            offset_weights=weight_rows(values.get("offset_weights", ())),
            fitted_on=str(values["fitted_on"]),
            inits=int(values["inits"]),
            kept=int(values.get("kept", -1)),
            held_out_gain=float(values.get("held_out_gain", 0.0)),
            held_out=bool(values.get("held_out", False)),
            picked=tuple((str(k), int(v)) for k, v in dict(values.get("picked", {})).items()),
        )

    @property
    def uses_linear(self) -> bool:
        """Whether any weight of the linear AR is not 0."""
        return any(x != 0.0 for row in self.linear_weights for x in row)

    @property
    def n_channels(self) -> int:
        return len(self.factors[0])

    def weights(self, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """`{predictor: (steps, channel) float32}` for the predictors with any non-zero weight."""
        if self.uses_linear and self.linear is None:
            raise ValueError("lead_calibration: linear_weights are not 0 but the linear AR is missing")
        out = {}
        for predictor, field in FIELDS.items():
            rows = getattr(self, field)
            if predictor == "network" or any(x != 0.0 for row in rows for x in row):
                out[predictor] = torch.tensor(rows, dtype=torch.float32, device=device)
        return out


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


def has_prior(stepper: Stepper) -> bool:
    """Whether the stepper has a prior beyond persistence (without one, the prior's anomaly is
    persistence's, and the calibration fits persistence's weight instead)."""
    return stepper.spectral_prior is not None or stepper.relaxation is not None


class Predictors:
    """The anomalies the weights multiply, for one batch of inits, lead step after lead step."""

    def __init__(
        self,
        stepper: Stepper,
        state: torch.Tensor,
        *,
        time_hours: torch.Tensor,
        previous: torch.Tensor | None = None,
        climatology_offset: torch.Tensor | None = None,
        linear: LinearAR | None = None,
    ) -> None:
        self.stepper, self.state, self.offset = stepper, state, climatology_offset
        self.hours = time_hours.to(torch.float64)
        self.linear = linear
        self._linear: LinearARForecast | None = None  # started when first asked for
        self.prior = PriorForecast(
            stepper,
            state,
            time_hours=self.hours,
            reference_now=stepper.climatology_at(self.hours, offset=climatology_offset),
            previous=previous,
            climatology_offset=climatology_offset,
        )

    def reference(self, step: int) -> torch.Tensor:
        """The climatology plus the offset at lead step `step`."""
        return self.stepper.climatology_at(self.hours + step * self.stepper.step_hours, offset=self.offset)

    def anomaly(
        self, name: str, step: int, *, forecast: torch.Tensor, reference: torch.Tensor
    ) -> torch.Tensor:
        """Predictor `name`'s anomaly at lead step `step` (zeros for the offset when there is none)."""
        if name == "network":
            return forecast - reference
        if name == "prior":
            return self.prior.anomaly(step, reference_then=reference)
        if name == "persistence":
            return self.state - reference
        if name == "offset":
            return torch.zeros_like(reference) if self.offset is None else self.offset.expand_as(reference)
        if name == "linear":
            return self._linear_anomaly(step, like=reference)
        raise ValueError(f"Predictors: unknown predictor {name!r}, not one of {PREDICTORS}")

    def _linear_anomaly(self, step: int, *, like: torch.Tensor) -> torch.Tensor:
        """The linear AR's forecast at lead step `step` less the reference (steps asked in order)."""
        if self.linear is None:
            raise ValueError("Predictors: the linear AR's anomaly needs a linear AR")
        if self._linear is None:
            start = self.state - self.stepper.climatology_at(self.hours)
            self._linear = LinearARForecast(self.linear, start)
        if step != self._linear.steps + 1:
            raise ValueError(f"Predictors: linear AR step {step} asked after step {self._linear.steps}")
        anomaly = self._linear.next().to(like.dtype)
        return anomaly if self.offset is None else anomaly - self.offset


def calibrate(
    steps: Iterator[torch.Tensor],
    *,
    stepper: Stepper,
    state: torch.Tensor,
    time_hours: torch.Tensor,
    calibration: LeadCalibration | None,
    climatology_offset: torch.Tensor | None = None,
    previous: torch.Tensor | None = None,
) -> Iterator[torch.Tensor]:
    """What a rollout from `state` yields, recalibrated lead by lead (see the module docstring).

    `steps` is a `fno_forecast.rollout.rollout` started from `state` at `time_hours`. Without a
    calibration the steps pass through unchanged. The rollout's own state is untouched. `previous` is the
    state one step before `state` where the rollout had it (an order-2 linear spectral prior uses it).
    """
    if calibration is None:
        yield from steps
        return
    weights = calibration.weights(state.device)
    predictors = Predictors(
        stepper,
        state,
        time_hours=time_hours,
        previous=previous,
        climatology_offset=climatology_offset,
        linear=calibration.linear,
    )
    for step, following in enumerate(steps, start=1):
        reference = predictors.reference(step)
        out = reference
        for name, rows in weights.items():
            weight = rows[min(step, rows.shape[0]) - 1].view(1, -1, 1, 1)
            out = out + weight * predictors.anomaly(name, step, forecast=following, reference=reference)
        yield out
