"""Model bundles: everything a forecast needs, in three files that never need unpickling.

```
model.json           metadata: model name + config, channel schema, grid, step, stepper options,
                     training data and periods, package version, array shapes, skill card and the
                     recent-anomaly correction of the climatology (`fno_forecast.recent_anomaly`)
                     and the per-lead calibration factors (`fno_forecast.lead_calibration`)
weights.safetensors  the network's state dict
arrays.safetensors   mean, std, tendency_std (channel,) and climatology (terms, channel, lat, lon), and
                     the stepper's prior: relaxation (channel, lat, lon) for damped anomaly persistence,
                     or spectral_maps, spectral_intercepts, spectral_reference for the linear spectral
                     prior (`fno_forecast.models.linear_spectral`); `model.json` says which (`stepper.prior`);
                     and linear_ar_components, linear_ar_scale, linear_ar_transition where the lead
                     calibration uses the linear AR (`fno_forecast.linear_ar`)
```

FourCastNet shipped its statistics apart from its weights, and its most common issues are users getting
wrong forecasts from a mismatch. Here the statistics, the climatology and the schema travel with the
weights, `load_bundle` refuses metadata that disagrees with the arrays, and `check_compatible` refuses
data whose channels or grid differ from the training data.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fno_forecast import __version__
from fno_forecast.bundle_metadata import (
    BUNDLE_FORMAT,
    BUNDLE_VERSION,
    METADATA_FILE,
    BundleDescription,
    corrections_entry,
    describe_bundle,
    read_metadata,
)
from fno_forecast.climatology import Climatology
from fno_forecast.data.schema import DataSchema
from fno_forecast.errors import BundleError, ConfigError
from fno_forecast.lead_calibration import LeadCalibration
from fno_forecast.linear_ar import ARRAY_NAMES as LINEAR_ARRAYS
from fno_forecast.linear_ar import LinearAR
from fno_forecast.models.linear_spectral import ARRAY_NAMES as SPECTRAL_ARRAYS
from fno_forecast.models.registry import build_network, tensor_state_dict
from fno_forecast.models.stepper import Stepper, build_stepper, stepper_in_channels
from fno_forecast.output import write_bytes_atomic
from fno_forecast.recent_anomaly import RecentAnomalyCorrection

WEIGHTS_FILE = "weights.safetensors"
ARRAYS_FILE = "arrays.safetensors"


@dataclass(frozen=True)
class Bundle:
    """A loaded model bundle. `stepper` is in eval mode on the requested device."""

    stepper: Stepper
    metadata: dict[str, Any]
    schema: DataSchema
    climatology: Climatology
    sha256: str
    path: Path
    recent_anomaly: RecentAnomalyCorrection | None = None  # the climatology correction fitted in training
    lead_calibration: LeadCalibration | None = None  # per-lead factors for the forecast anomalies

    @property
    def step_hours(self) -> float:
        return self.schema.step_hours

    @property
    def skill_card(self) -> dict[str, Any] | None:
        return self.metadata.get("skill_card")


def default_bundle_path() -> Path:
    """The model directory shipped inside the package (`fno_forecast/default_model`)."""
    return Path(__file__).resolve().parent / "default_model"


def save_bundle(
    directory: str | Path,
    *,
    stepper: Stepper,
    metadata: dict[str, Any],
    climatology: Climatology,
    linear: LinearAR | None = None,
) -> Path:
    """Write a bundle to `directory`. `metadata` needs `model` ({name, config}) and `schema` (to_dict);
    `linear` is the lead calibration's linear AR (`metadata["lead_calibration"]["linear"]` describes it).

    Other keys (`training`, `skill_card`, ...) are stored as given. Array shapes and stepper options are
    filled in from the stepper itself, so the metadata cannot disagree with the weights it describes.
    """
    from safetensors.torch import save

    directory = Path(directory)
    for key in ("model", "schema"):
        if key not in metadata:
            raise BundleError(f"save_bundle: metadata needs the key {key!r}")
    arrays = {
        "mean": stepper.mean.detach().reshape(-1).cpu().contiguous(),
        "std": stepper.std.detach().reshape(-1).cpu().contiguous(),
        "tendency_std": stepper.tendency_std.detach().reshape(-1).cpu().contiguous(),
        "climatology": torch.from_numpy(np.ascontiguousarray(climatology.coefficients, dtype=np.float32)),
    }
    if stepper.relaxation is not None:
        arrays["relaxation"] = (
            stepper.relaxation.detach().reshape(stepper.relaxation.shape[1:]).cpu().contiguous()
        )
    if linear is not None:
        arrays.update({f"linear_ar_{k}": torch.from_numpy(v) for k, v in linear.arrays().items()})
    prior_options: dict[str, Any] = {"prior": stepper.prior}
    if stepper.spectral_prior is not None:
        arrays.update({f"spectral_{k}": v for k, v in stepper.spectral_prior.arrays().items()})
        prior_options.update(
            spectral_degrees=stepper.spectral_prior.degrees,
            spectral_order=stepper.spectral_prior.order,
            spectral_analysis=stepper.spectral_prior.analysis,
        )
    if stepper.conservation is not None:
        names = [c["name"] for c in metadata["schema"]["channels"]]
        prior_options["conservation"] = stepper.conservation.spec.to_dict(names)
    weights = {
        k: v.detach().cpu().contiguous().clone() for k, v in tensor_state_dict(stepper.network).items()
    }
    full = {
        "skill_card": None,
        **metadata,
        "format": BUNDLE_FORMAT,
        "format_version": BUNDLE_VERSION,
        "package_version": __version__,
        "stepper": {
            "use_history": stepper.use_history,
            "use_climatology": stepper.use_climatology,
            "relaxation": stepper.relaxation is not None,
            **prior_options,
        },
        "climatology": {"annual": climatology.annual, "diurnal": climatology.diurnal},
        "arrays": {name: list(value.shape) for name, value in arrays.items()},
    }
    write_bytes_atomic(directory / WEIGHTS_FILE, save(weights))
    write_bytes_atomic(directory / ARRAYS_FILE, save(arrays))
    write_bytes_atomic(directory / METADATA_FILE, (json.dumps(full, indent=2) + "\n").encode())
    return directory


def _sha256(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for file in paths:
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _check_weight_shapes(expected: dict, weights: dict, *, path: Path) -> None:
    """Refuse weights whose names or shapes differ from the network the metadata describes."""
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    if missing or unexpected:
        raise BundleError(
            f"{path}: weights do not match the model in metadata (missing {missing[:3]}, unexpected "
            f"{unexpected[:3]})"
        )
    for key, tensor in expected.items():
        if tuple(tensor.shape) != tuple(weights[key].shape):
            raise BundleError(
                f"{path}: weight {key!r} has shape {tuple(weights[key].shape)}, the model in metadata "
                f"needs {tuple(tensor.shape)}"
            )


def _linear_entry(metadata: dict[str, Any]) -> Any:
    """What `model.json` says of the lead calibration's linear AR (None without one)."""
    return (metadata.get("lead_calibration") or {}).get("linear")


def _linear_shapes(metadata: dict[str, Any], *, n_points: int, path: Path) -> dict[str, tuple[int, ...]]:
    """The lead calibration's linear AR arrays and the shapes its metadata implies (none without it)."""
    entry = _linear_entry(metadata)
    if not entry:
        return {}
    try:
        k = int(entry["components"])
    except (KeyError, TypeError, ValueError) as error:
        raise BundleError(f"{path / METADATA_FILE}: invalid lead_calibration linear ({error})") from error
    shapes = {"components": (k, n_points), "scale": (n_points,), "transition": (k + 1, k)}
    return {f"linear_ar_{name}": shapes[name] for name in LINEAR_ARRAYS}


def _read_tensors(
    path: Path, metadata: dict[str, Any], described: BundleDescription
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """The arrays and weights files, each array's shape checked against the metadata and the schema, and
    the weights' shapes against the network the metadata describes, built on the meta device (metadata
    that lies, a huge width say, allocates nothing)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    schema = described.schema
    n_channels, nlat, nlon = len(schema.channels), schema.grid.nlat, schema.grid.nlon
    n_terms = 1 + 2 * described.annual + 2 * described.diurnal
    expected = {
        "mean": (n_channels,),
        "std": (n_channels,),
        "tendency_std": (n_channels,),
        "climatology": (n_terms, n_channels, nlat, nlon),
    }
    expected.update(described.prior_shapes())
    expected.update(_linear_shapes(metadata, n_points=n_channels * nlat * nlon, path=path))
    try:
        arrays = load_file(str(path / ARRAYS_FILE))
        weights = load_file(str(path / WEIGHTS_FILE))
    except (FileNotFoundError, SafetensorError, OSError) as error:
        raise BundleError(f"{path}: cannot read bundle arrays or weights ({error})") from error
    for key, shape in expected.items():
        if key not in arrays:
            raise BundleError(f"{path / ARRAYS_FILE}: missing array {key!r}")
        if tuple(arrays[key].shape) != shape or list(shape) != list(metadata["arrays"].get(key, [])):
            raise BundleError(
                f"{path / ARRAYS_FILE}: array {key!r} has shape {tuple(arrays[key].shape)}, metadata says "
                f"{metadata['arrays'].get(key)} and the schema implies {shape}"
            )
    in_channels = stepper_in_channels(
        n_channels, use_history=described.use_history, use_climatology=described.use_climatology
    )
    try:
        with torch.device("meta"):
            skeleton = build_network(
                described.model_name,
                described.model_config,
                in_channels=in_channels,
                out_channels=n_channels,
                grid=schema.grid,
            )
        _check_weight_shapes(tensor_state_dict(skeleton), weights, path=path / WEIGHTS_FILE)
    except (RuntimeError, ConfigError) as error:
        raise BundleError(
            f"{path / WEIGHTS_FILE}: weights do not match the model in metadata ({error})"
        ) from error
    return arrays, weights


def load_bundle(path: str | Path, *, device: str | torch.device = "cpu") -> Bundle:
    """Load a bundle directory. Raises `BundleError` on missing files or metadata that lies about shapes."""
    path = Path(path)
    metadata = read_metadata(path)
    described = describe_bundle(path, metadata)
    schema = described.schema
    arrays, weights = _read_tensors(path, metadata, described)
    climatology = Climatology(
        arrays["climatology"].numpy(), annual=described.annual, diurnal=described.diurnal
    )
    linear_entry = _linear_entry(metadata)
    linear = (
        None
        if not linear_entry
        else LinearAR.from_arrays(
            {name: arrays[f"linear_ar_{name}"].numpy() for name in LINEAR_ARRAYS},
            climatology=climatology,
            fitted_on=str(linear_entry.get("fitted_on", "")),
            pairs=int(linear_entry.get("pairs", 0)),
        )
    )
    corrections = {
        key: corrections_entry(
            metadata,
            key,
            values_name=values_name,
            parse=parse,
            use_climatology=described.use_climatology,
            n_channels=len(schema.channels),
            meta_path=path / METADATA_FILE,
        )
        for key, values_name, parse in (
            ("recent_anomaly", "coefficients", RecentAnomalyCorrection.from_dict),
            ("lead_calibration", "factors", functools.partial(LeadCalibration.from_dict, linear=linear)),
        )
    }
    calibration = corrections["lead_calibration"]
    if calibration is not None and calibration.uses_linear and calibration.linear is None:
        raise BundleError(f"{path / METADATA_FILE}: lead_calibration weighs a linear AR it does not describe")
    try:
        stepper = build_stepper(
            model_name=described.model_name,
            model_config=described.model_config,
            grid_lat=np.asarray(schema.grid.lat),
            grid_lon=np.asarray(schema.grid.lon),
            step_hours=schema.step_hours,
            mean=arrays["mean"].numpy(),
            std=arrays["std"].numpy(),
            tendency_std=arrays["tendency_std"].numpy(),
            use_history=described.use_history,
            climatology=climatology if described.use_climatology else None,
            relaxation=arrays["relaxation"].numpy() if described.use_relaxation else None,
            spectral_prior=(
                {name: arrays[f"spectral_{name}"].numpy() for name in SPECTRAL_ARRAYS}
                | {"analysis": described.spectral_analysis}
                if described.prior == "linear_spectral"
                else None
            ),
            conservation=described.conservation,
        )
    except ValueError as error:  # arrays of the right shapes that still do not make a stepper
        raise BundleError(f"{path / ARRAYS_FILE}: {error}") from error
    try:
        stepper.network.load_state_dict(weights, strict=True)
    except RuntimeError as error:
        raise BundleError(
            f"{path / WEIGHTS_FILE}: weights do not match the model in metadata ({error})"
        ) from error
    stepper.to(device).eval()
    sha = _sha256([path / WEIGHTS_FILE, path / ARRAYS_FILE])
    return Bundle(
        stepper,
        metadata,
        schema,
        climatology,
        sha,
        path,
        corrections["recent_anomaly"],
        corrections["lead_calibration"],
    )


def check_compatible(bundle: Bundle, schema: DataSchema) -> None:
    """Raise `BundleError` naming the first mismatch between the bundle's schema and the data's."""
    ours, theirs = bundle.schema, schema
    if ours.channel_names != theirs.channel_names:
        raise BundleError(
            f"{bundle.path}: model channels {list(ours.channel_names)} do not match data channels "
            f"{list(theirs.channel_names)}"
        )
    if (ours.grid.nlat, ours.grid.nlon) != (theirs.grid.nlat, theirs.grid.nlon):
        raise BundleError(
            f"{bundle.path}: model grid {ours.grid.nlat}x{ours.grid.nlon} (lat x lon) does not match data "
            f"grid {theirs.grid.nlat}x{theirs.grid.nlon}"
        )
    for axis in ("lat", "lon"):
        a, b = np.asarray(getattr(ours.grid, axis)), np.asarray(getattr(theirs.grid, axis))
        if not np.allclose(a, b, atol=1e-4):
            raise BundleError(
                f"{bundle.path}: model {axis} {a[0]:g}..{a[-1]:g} does not match data {axis} {b[0]:g}..{b[-1]:g}"
            )
    if abs(ours.step_hours - theirs.step_hours) > 1e-6:
        raise BundleError(
            f"{bundle.path}: model time step {ours.step_hours:g} h does not match data step {theirs.step_hours:g} h"
        )
