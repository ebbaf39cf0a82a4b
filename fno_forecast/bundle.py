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
                     prior (`fno_forecast.models.linear_spectral`); `model.json` says which (`stepper.prior`)
```

FourCastNet shipped its statistics apart from its weights, and its most common issues are users getting
wrong forecasts from a mismatch. Here the statistics, the climatology and the schema travel with the
weights, `load_bundle` refuses metadata that disagrees with the arrays, and `check_compatible` refuses
data whose channels or grid differ from the training data.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fno_forecast import __version__
from fno_forecast.climatology import Climatology
from fno_forecast.data.schema import DataSchema
from fno_forecast.errors import BundleError, ConfigError
from fno_forecast.lead_calibration import LeadCalibration
from fno_forecast.models.conservation import ConservationSpec
from fno_forecast.models.linear_spectral import ANALYSES
from fno_forecast.models.linear_spectral import ARRAY_NAMES as SPECTRAL_ARRAYS
from fno_forecast.models.registry import build_network, model_config_from_dict, tensor_state_dict
from fno_forecast.models.stepper import PRIORS, Stepper, build_stepper, stepper_in_channels
from fno_forecast.output import write_bytes_atomic
from fno_forecast.recent_anomaly import RecentAnomalyCorrection

BUNDLE_FORMAT = "fno-forecast-bundle"
BUNDLE_VERSION = 1
METADATA_FILE = "model.json"
WEIGHTS_FILE = "weights.safetensors"
ARRAYS_FILE = "arrays.safetensors"
REQUIRED_KEYS = ("format", "format_version", "model", "stepper", "schema", "climatology", "arrays")


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
) -> Path:
    """Write a bundle to `directory`. `metadata` needs `model` ({name, config}) and `schema` (to_dict).

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


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The `model.json` of a bundle directory, checked for the required keys."""
    path = Path(path)
    meta_path = path / METADATA_FILE
    if not meta_path.is_file():
        raise BundleError(f"{path}: not a model bundle (no {METADATA_FILE})")
    try:
        metadata = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BundleError(f"{meta_path}: not valid JSON ({error})") from error
    if not isinstance(metadata, dict) or metadata.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{meta_path}: not an {BUNDLE_FORMAT} file")
    missing = [key for key in REQUIRED_KEYS if key not in metadata]
    if missing:
        raise BundleError(f"{meta_path}: missing key(s) {', '.join(missing)}")
    if metadata["format_version"] > BUNDLE_VERSION:
        raise BundleError(
            f"{meta_path}: format_version {metadata['format_version']} is newer than this package"
        )
    return metadata


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


@dataclass(frozen=True)
class _Description:
    """What `model.json` says a bundle holds, parsed and checked before any array is read."""

    schema: DataSchema
    model_name: str
    model_config: Any
    use_history: bool
    use_climatology: bool
    use_relaxation: bool
    annual: int
    diurnal: int
    prior: str = "none"  # one of models.stepper.PRIORS
    spectral_degrees: int = 0
    spectral_order: int = 0
    spectral_analysis: str = "quadrature"  # the analysis of bundles written before it was recorded
    conservation: ConservationSpec | None = None  # bundles written before it hold no law

    def prior_shapes(self) -> dict[str, tuple[int, ...]]:
        """The arrays of the stepper's prior and the shapes the metadata implies."""
        channels, nlat, nlon = len(self.schema.channels), self.schema.grid.nlat, self.schema.grid.nlon
        if self.prior == "damped":
            return {"relaxation": (channels, nlat, nlon)}
        if self.prior == "linear_spectral":
            degrees, width = self.spectral_degrees, len(self.schema.channels) * self.spectral_degrees
            return {
                "spectral_maps": (degrees, self.spectral_order * width, width, 2),
                "spectral_intercepts": (degrees, width, 2),
                "spectral_reference": (channels, nlat, nlon),
            }
        return {}


def _describe(path: Path, metadata: dict[str, Any]) -> _Description:
    try:
        name = metadata["model"]["name"]
        config_values = dict(metadata["model"]["config"])
        if name == "fno":
            # Bundles written before FFT-friendly padding existed padded to neuraloperator's exact sizes.
            config_values.setdefault("fft_padding", False)
        options = metadata["stepper"]
        relaxation = bool(options.get("relaxation", False))
        prior = str(options.get("prior", "damped" if relaxation else "none"))
        if prior not in PRIORS or relaxation != (prior == "damped"):
            raise ValueError(f"stepper prior {prior!r} (relaxation {relaxation}); known: {', '.join(PRIORS)}")
        spectral = prior == "linear_spectral"
        analysis = str(options.get("spectral_analysis", "quadrature"))
        if analysis not in ANALYSES:
            raise ValueError(f"stepper spectral_analysis {analysis!r}; known: {', '.join(ANALYSES)}")
        schema = DataSchema.from_dict(metadata["schema"])
        return _Description(
            schema=schema,
            model_name=name,
            model_config=model_config_from_dict(name, config_values),
            use_history=bool(options["use_history"]),
            use_climatology=bool(options["use_climatology"]),
            use_relaxation=relaxation,
            annual=int(metadata["climatology"]["annual"]),
            diurnal=int(metadata["climatology"]["diurnal"]),
            prior=prior,
            spectral_degrees=int(options["spectral_degrees"]) if spectral else 0,
            spectral_order=int(options["spectral_order"]) if spectral else 0,
            spectral_analysis=analysis,
            conservation=(
                ConservationSpec.from_dict(options["conservation"], schema.channel_names)
                if "conservation" in options
                else None
            ),
        )
    except (KeyError, TypeError, ValueError, ConfigError) as error:
        raise BundleError(f"{path / METADATA_FILE}: invalid metadata ({error})") from error


def _read_tensors(
    path: Path, metadata: dict[str, Any], described: _Description
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
    described = _describe(path, metadata)
    schema = described.schema
    corrections = {
        key: _corrections_entry(
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
            ("lead_calibration", "factors", LeadCalibration.from_dict),
        )
    }
    arrays, weights = _read_tensors(path, metadata, described)
    climatology = Climatology(
        arrays["climatology"].numpy(), annual=described.annual, diurnal=described.diurnal
    )
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


def _corrections_entry(
    metadata: dict[str, Any],
    key: str,
    *,
    values_name: str,
    parse: Callable[[dict[str, Any]], RecentAnomalyCorrection | LeadCalibration],
    use_climatology: bool,
    n_channels: int,
    meta_path: Path,
) -> Any:
    """Parse the optional `recent_anomaly` / `lead_calibration` entry; BundleError when it is unusable."""
    values = metadata.get(key)
    if values is None:
        return None
    try:
        entry = parse(values)
    except (KeyError, TypeError, ValueError) as error:
        raise BundleError(f"{meta_path}: invalid {key} ({error})") from error
    if entry.n_channels != n_channels:
        raise BundleError(
            f"{meta_path}: {key} has {values_name} for {entry.n_channels} channels, the schema has {n_channels}"
        )
    if not use_climatology:
        raise BundleError(f"{meta_path}: {key} needs a stepper with a climatology")
    return entry


def update_skill_card(path: str | Path, skill: dict[str, Any]) -> None:
    """Replace the bundle's skill card (written by evaluation) atomically; weights are untouched."""
    path = Path(path)
    metadata = read_metadata(path)
    metadata["skill_card"] = skill
    write_bytes_atomic(path / METADATA_FILE, (json.dumps(metadata, indent=2) + "\n").encode())


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
