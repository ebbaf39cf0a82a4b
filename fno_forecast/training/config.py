"""Training configuration: one flat TOML file plus command-line overrides, loaded strictly.

Every key is a field of `TrainConfig`; an unknown key is a `ConfigError` naming it (a typo must not
silently train the wrong model). Overrides come as `key=value` strings whose values are parsed as TOML
(`lr=3e-4`, `rollout_steps=[2,4,8]`, `model="sfno"`), falling back to a bare string.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

from fno_forecast.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 reads TOML with the tomli backport
    import tomli as tomllib
from fno_forecast.models.conservation import LAWS
from fno_forecast.models.registry import MODEL_CONFIGS, FNOConfig, SFNOConfig, model_config_from_dict

MODEL_KEYS = {
    "fno": tuple(f.name for f in fields(FNOConfig)),
    "sfno": tuple(f.name for f in fields(SFNOConfig)),
}


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs besides the data path and output folder."""

    # data
    variables: tuple[str, ...] = ()
    levels: tuple[float, ...] = ()
    train_period: str = ""
    val_period: str = ""
    val_fraction: float = 0.15
    # model: the flat TOML keys of FNOConfig/SFNOConfig, with their defaults taken from FNOConfig
    model: Literal["auto", "fno", "sfno"] = "auto"  # auto: SFNO on a global grid with both poles, else FNO
    hidden_channels: int = FNOConfig.hidden_channels
    n_layers: int = FNOConfig.n_layers
    n_modes_lat: int = FNOConfig.n_modes_lat
    n_modes_lon: int = FNOConfig.n_modes_lon
    domain_padding: float = FNOConfig.domain_padding
    fft_padding: bool = FNOConfig.fft_padding
    factorization: Literal["dense", "tucker"] = FNOConfig.factorization
    rank: float = FNOConfig.rank
    lifting_channel_ratio: float = FNOConfig.lifting_channel_ratio
    projection_channel_ratio: float = FNOConfig.projection_channel_ratio
    # stepper inputs
    use_history: bool = True
    use_climatology: bool = True
    relaxation: bool = True  # false: never the damped-anomaly prior
    # the stepper's prior (the network learns what it misses): auto = the damped-anomaly prior where it beats
    # persistence, or on a global grid with both poles whichever of it and the linear spectral dynamics does
    # better on the training period's held-out last third (`training.prior_check`)
    prior: Literal["auto", "damped", "linear_spectral", "none"] = "auto"
    # conservation laws the stepper holds each step (`models.conservation`): auto = those the training
    # data obey (`training.conservation_check`), or any of "mass", "angular_momentum", "energy"; [] none
    conservation: tuple[str, ...] = ("auto",)
    recent_anomaly: bool = True  # fit the out-of-sample climatology correction (needs use_climatology)
    lead_calibration: bool = True  # fit per-lead anomaly factors on training rollouts (needs use_climatology)
    calibration_init_stride: int = 12
    # the last fraction of the training period's steps that the network does not train on: the lead
    # calibration is fitted there, out of sample (0: none held out; the factors alone, fitted in sample)
    calibration_holdout: float = 0.15
    # the linear AR on principal components, fitted on the network's period, as a candidate of the held-out
    # lead calibration (`fno_forecast.lead_calibration`); off by default: on NCEP it was picked where the
    # held-out tail favoured it and lost up to 0.16 K in the following season (`benchmarks.held_out_folds`)
    calibration_linear: bool = False
    # the held-out lead calibration may re-weigh the recent-anomaly offset, held toward its own fit by
    # a ridge (`calibration_fit.OFFSET_RIDGE`); false leaves the offset's weight at 0. On: the hourly
    # row of `benchmarks.retrain_suite` needs it, and the NCEP held-out folds gain (README, skill section)
    calibration_offset: bool = True
    climatology_annual: int = 3
    climatology_diurnal: int = 2
    # optimisation
    batch_size: int = 16
    lr: float = 1e-3
    min_lr_ratio: float = 0.02
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    grad_clip: float = 1.0
    # Gaussian noise added to the initial (and previous) state of every training window, in units of each
    # channel's one-step tendency std (the size of a step's change, so hourly and monthly data get noise
    # in proportion); the targets stay clean, so the network learns to pull a state that is off the data
    # back toward it (Sanchez-Gonzalez et al. 2020): what a long rollout feeds it after its own errors
    input_noise: float = 0.0
    channel_weights: tuple[float, ...] = ()
    variable_weights: tuple[str, ...] = ()  # "VARIABLE=FACTOR" entries; unnamed variables weigh 1
    level_weighting: Literal["none", "pressure"] = "none"  # pressure: level / mean level (GraphCast)
    # stage 1 (one step) and stage 2 (rollout curriculum: one entry of K steps per stage-2 epoch)
    stage1_epochs: int = 4
    samples_per_epoch: int = 0
    rollout_steps: tuple[int, ...] = (2, 4, 8)
    rollout_lr: float = 3e-4
    rollout_samples_per_epoch: int = 0
    activation_checkpointing: bool = False
    # the network's share of memory in training (weights x 4 and one batch's activations); unless set, the
    # batch sizes and activation checkpointing are derived to fit it (`training.memory`)
    max_memory_gb: float = 3.0
    # streaming: windows whose span exceeds max_in_memory_gb are read from the (lazy) store batch by batch,
    # by loader_workers processes (-1: none for in-memory windows, else half the cores, at most 4) that
    # each keep prefetch_batches batches ready
    max_in_memory_gb: float = 4.0
    # a training period over fit_sample_gb (float32) is fitted (statistics, climatology, prior, corrections)
    # on day-long runs of it spread evenly over it, that much of it (`fno_forecast.data.fit_sample`)
    fit_sample_gb: float = 1.5
    loader_workers: int = -1
    prefetch_batches: int = 2
    # validation
    val_leads_hours: tuple[float, ...] = ()  # empty: 6, 24, 72, 120, 240 h rounded up to whole data steps
    val_init_stride: int = 1
    val_batch_size: int = 64
    # run
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compile: bool = False
    bf16: bool = True
    checkpoint_every_steps: int = 0
    num_threads: int = 0
    max_minutes: float = 0.0  # a time budget that ends the run cleanly; 0 = none; --max-minutes overrides

    def __post_init__(self) -> None:
        if self.model != "auto" and self.model not in MODEL_CONFIGS:
            raise ConfigError(f"model: unknown model {self.model!r}; known: auto, {', '.join(MODEL_CONFIGS)}")
        unknown = [law for law in self.conservation if law != "auto" and law not in LAWS]
        if unknown or ("auto" in self.conservation and len(self.conservation) > 1):
            raise ConfigError(
                f'conservation: expected ["auto"], [] or laws among {", ".join(LAWS)}; got {list(self.conservation)}'
            )
        positive = (
            "batch_size",
            "n_layers",
            "val_batch_size",
            "val_init_stride",
            "calibration_init_stride",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: expected >= 1, got {getattr(self, name)}")
        non_negative = (
            "stage1_epochs",
            "warmup_steps",
            "checkpoint_every_steps",
            "rollout_samples_per_epoch",
            "samples_per_epoch",
            "num_threads",
            "climatology_annual",
            "climatology_diurnal",
            "weight_decay",
            "grad_clip",
            "input_noise",
            "max_minutes",
            "max_in_memory_gb",
        )
        for name in non_negative:
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}: expected >= 0, got {getattr(self, name)}")
        for name in ("lr", "rollout_lr", "max_memory_gb", "fit_sample_gb"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name}: expected > 0, got {getattr(self, name)}")
        if not 0 < self.min_lr_ratio <= 1:
            raise ConfigError(f"min_lr_ratio: expected in (0, 1], got {self.min_lr_ratio}")
        if not 0 <= self.calibration_holdout <= 0.5:
            raise ConfigError(f"calibration_holdout: expected in [0, 0.5], got {self.calibration_holdout}")
        if not 0 < self.val_fraction < 1:
            raise ConfigError(f"val_fraction: expected in (0, 1), got {self.val_fraction}")
        if any(k < 1 for k in self.rollout_steps):
            raise ConfigError(f"rollout_steps: every entry must be >= 1, got {list(self.rollout_steps)}")
        if self.stage1_epochs + len(self.rollout_steps) == 0:
            raise ConfigError("stage1_epochs, rollout_steps: at least one epoch must be configured")
        if any(h <= 0 for h in self.val_leads_hours):
            raise ConfigError(f"val_leads_hours: expected positive hours, got {list(self.val_leads_hours)}")
        if any(w < 0 for w in self.channel_weights):
            raise ConfigError(
                f"channel_weights: expected non-negative weights, got {list(self.channel_weights)}"
            )
        if self.loader_workers < -1 or self.prefetch_batches < 1:
            raise ConfigError(
                f"loader_workers >= -1 and prefetch_batches >= 1, got {self.loader_workers}, {self.prefetch_batches}"
            )
        self.variable_weight_map()  # validates the entries
        if self.level_weighting not in ("none", "pressure"):
            raise ConfigError(f"level_weighting: expected none or pressure, got {self.level_weighting!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"device: expected auto, cpu or cuda, got {self.device!r}")
        if self.relaxation and not self.use_climatology:
            raise ConfigError("relaxation: relaxation toward climatology needs use_climatology = true")
        if self.prior not in ("auto", "damped", "linear_spectral", "none"):
            raise ConfigError(f"prior: expected auto, damped, linear_spectral or none, got {self.prior!r}")
        if self.prior == "damped" and not self.relaxation:
            raise ConfigError("prior = damped needs relaxation = true")
        self.model_config()  # validates the model keys

    def variable_weight_map(self) -> dict[str, float]:
        """`variable_weights` as {variable: factor}; ConfigError for an entry that is not VAR=FACTOR >= 0."""
        out: dict[str, float] = {}
        for entry in self.variable_weights:
            name, sep, value = entry.partition("=")
            try:
                factor = float(value) if sep and name.strip() else -1.0
            except ValueError:
                factor = -1.0
            if factor < 0:
                raise ConfigError(f"variable_weights: expected VARIABLE=FACTOR (factor >= 0), got {entry!r}")
            out[name.strip()] = factor
        return out

    def model_config(self) -> FNOConfig | SFNOConfig:
        """The typed model config (an unresolved `auto` is checked as FNO, whose keys include SFNO's)."""
        name = "fno" if self.model == "auto" else self.model
        return model_config_from_dict(name, {k: getattr(self, k) for k in MODEL_KEYS[name]})

    @property
    def total_epochs(self) -> int:
        return self.stage1_epochs + len(self.rollout_steps)

    def epoch_plan(self, epoch: int) -> tuple[int, int]:
        """`(stage, rollout_steps)` of a 0-based epoch: stage 1 is one step, stage 2 the curriculum."""
        if epoch < self.stage1_epochs:
            return 1, 1
        return 2, self.rollout_steps[epoch - self.stage1_epochs]

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def to_toml(self) -> str:
        """The resolved config as flat TOML (what `--print-config` shows)."""
        return "".join(f"{key} = {json.dumps(value)}\n" for key, value in self.to_dict().items())


def _coerce(name: str, value: Any, annotation: str) -> Any:
    if "tuple" in annotation:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{name}: expected a list, got {value!r}")
        kind = float if "float" in annotation else int if "int" in annotation else str
        try:
            return tuple(kind(v) for v in value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name}: expected a list of {kind.__name__}, got {value!r}") from None
    if annotation == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{name}: expected true or false, got {value!r}")
        return value
    if annotation in ("int", "float"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{name}: expected a number, got {value!r}")
        if annotation == "int" and value != int(value):
            raise ConfigError(f"{name}: expected an integer, got {value!r}")
        return int(value) if annotation == "int" else float(value)
    if not isinstance(value, str):
        raise ConfigError(f"{name}: expected a string, got {value!r}")
    return value


def parse_override(text: str) -> tuple[str, Any]:
    """`key=value` -> (key, value parsed as TOML, else the bare string)."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected key=value")
    key, raw = (part.strip() for part in text.split("=", 1))
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def build_config(values: dict[str, Any], *, source: str = "config") -> TrainConfig:
    """A validated `TrainConfig` from a flat dict; unknown keys raise `ConfigError` naming them."""
    known = {f.name: str(f.type) for f in fields(TrainConfig)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {', '.join(unknown)}")
    typed = {name: _coerce(name, value, known[name]) for name, value in values.items()}
    return TrainConfig(**typed)


def load_config_and_keys(
    path: str | Path | None = None, *, overrides: dict[str, Any] | None = None
) -> tuple[TrainConfig, frozenset[str]]:
    """`load_config` plus the keys the file and the overrides set: those win over derived defaults."""
    values: dict[str, Any] = {}
    source = "config"
    if path is not None:
        path = Path(path)
        source = str(path)
        try:
            values = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{path}: not valid TOML ({error})") from None
        nested = [key for key, value in values.items() if isinstance(value, dict)]
        if nested:
            raise ConfigError(f"{path}: the config is flat; tables are not allowed ({', '.join(nested)})")
    config = build_config(values, source=source)
    if overrides:
        unknown = sorted(set(overrides) - {f.name for f in fields(TrainConfig)})
        if unknown:
            raise ConfigError(f"override: unknown key(s) {', '.join(unknown)}")
        merged = {**config.to_dict(), **overrides}
        config = build_config(merged, source="override")
    return config, frozenset(values) | frozenset(overrides or ())


def load_config(path: str | Path | None = None, *, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Read a flat TOML file (or the defaults when `path` is None) and apply overrides on top."""
    return load_config_and_keys(path, overrides=overrides)[0]
