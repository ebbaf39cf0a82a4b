"""`model.json`, a bundle's metadata: read, checked for its keys and version, and parsed into what the
bundle holds (`BundleDescription`) before any array is read (`fno_forecast.bundle` reads the arrays and
weights against it); the skill card is rewritten here too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fno_forecast.data.schema import DataSchema
from fno_forecast.errors import BundleError, ConfigError
from fno_forecast.lead_calibration import LeadCalibration
from fno_forecast.models.conservation import ConservationSpec
from fno_forecast.models.linear_spectral import ANALYSES
from fno_forecast.models.registry import model_config_from_dict
from fno_forecast.models.stepper import PRIORS
from fno_forecast.output import write_bytes_atomic
from fno_forecast.recent_anomaly import RecentAnomalyCorrection

BUNDLE_FORMAT = "fno-forecast-bundle"
BUNDLE_VERSION = 1
METADATA_FILE = "model.json"
REQUIRED_KEYS = ("format", "format_version", "model", "stepper", "schema", "climatology", "arrays")


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


@dataclass(frozen=True)
class BundleDescription:
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


def describe_bundle(path: Path, metadata: dict[str, Any]) -> BundleDescription:
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
        return BundleDescription(
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


def corrections_entry(
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
