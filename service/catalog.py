"""The models the service answers for, each with its initial states and the runs (init times) they offer."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath
from typing import Any

import numpy as np
import xarray as xr

from fno_forecast.data.timeaxis import format_time
from fno_forecast.errors import BundleError
from service.om_variables import describe_mapping

MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class ModelEntry:
    """A loaded bundle plus the initial states it forecasts from. `runs` ascending."""

    id: str
    bundle: Any
    initial_states: xr.Dataset
    runs: tuple[np.datetime64, ...]
    max_hours: int
    source: str

    @property
    def schema(self) -> Any:
        return self.bundle.schema

    @property
    def sha256(self) -> str:
        return str(self.bundle.sha256)

    @property
    def step_hours(self) -> float:
        return float(self.bundle.schema.step_hours)

    def describe(self) -> dict[str, Any]:
        """The GET /v1/models/{id} body."""
        meta = self.bundle.metadata
        schema = self.schema
        return {
            "id": self.id,
            "sha256": self.sha256,
            "architecture": meta.get("model", {}).get("name"),
            "channels": [
                {
                    "name": c.name,
                    "variable": c.variable,
                    "level": c.level,
                    "units": c.units,
                    "long_name": c.long_name,
                }
                for c in schema.channels
            ],
            "grid": schema.grid.summary(),
            "openmeteo_variables": describe_mapping(schema),
            "elevation": "no surface height in the bundle: answers give 0 m, or the request's elevation",
            "step_hours": schema.step_hours,
            "max_forecast_hours": self.max_hours,
            "training": _public_training(meta.get("training")),
            "skill_card": _public_skill_card(meta.get("skill_card")),
            "initial_states": self.source,
            "runs": {
                "count": len(self.runs),
                "first": format_time(self.runs[0]) if self.runs else None,
                "latest": format_time(self.runs[-1]) if self.runs else None,
            },
        }


def file_names(text: str) -> str:
    """`text` with each comma-separated path or URL cut to its last part (`../data/a.nc` -> `a.nc`)."""
    parts = [part.strip() for part in text.split(",")]
    return ", ".join(PureWindowsPath(p).name if "/" in p or "\\" in p else p for p in parts)


def _public_training(training: Any) -> Any:
    """The bundle's training record with its data files named by file name only (no host paths)."""
    if not isinstance(training, dict) or not isinstance(training.get("data"), dict):
        return training
    data = dict(training["data"])
    if isinstance(data.get("paths"), list):
        data["paths"] = [file_names(str(p)) for p in data["paths"]]
    return {**training, "data": data}


def _public_skill_card(card: Any) -> Any:
    """The skill card with its `model` and `data` labels (a bundle folder, data files by default) cut to
    file names."""
    if not isinstance(card, dict):
        return card
    return card | {k: file_names(card[k]) for k in ("model", "data") if isinstance(card.get(k), str)}


def model_id_for(path: Path, metadata: dict[str, Any], *, default_path: Path) -> str:
    """`metadata["id"]` when given, `default` for the bundled model, else the bundle folder's name."""
    given = metadata.get("id")
    if isinstance(given, str) and MODEL_ID.match(given):
        return given
    if path.resolve() == default_path.resolve():
        return "default"
    name = path.resolve().name
    if name == "model" and path.resolve().parent.name:
        name = path.resolve().parent.name
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "-", name).strip("-.") or "model"
    return cleaned[:64]


def answerable_runs(times: np.ndarray, *, step_hours: float, use_history: bool) -> tuple[np.datetime64, ...]:
    """The init times a forecast can start from: all of them, or those whose previous step is there too."""
    times = np.sort(times)
    if not use_history:
        return tuple(times)
    previous = times - np.timedelta64(int(round(step_hours * 60)), "m")
    return tuple(times[np.isin(previous, times)])


def load_entry(
    path: Path,
    *,
    initial_states: xr.Dataset,
    source: str,
    max_hours: int,
    model_id: str | None = None,
    bundle: Any = None,
) -> ModelEntry:
    """Load a bundle from `path` (unless given, loaded) and pair it with `initial_states` (whose times are
    the runs)."""
    from fno_forecast.bundle import default_bundle_path, load_bundle

    bundle = load_bundle(path) if bundle is None else bundle
    if "time" not in initial_states.dims:
        raise BundleError(f"{source}: initial states have no time dimension")
    runs = answerable_runs(
        np.asarray(initial_states["time"].values).astype("datetime64[m]"),
        step_hours=float(bundle.schema.step_hours),
        use_history=bool(bundle.stepper.use_history),
    )
    model_max = bundle.metadata.get("max_forecast_hours")
    limit = min(max_hours, int(model_max)) if isinstance(model_max, int | float) else max_hours
    mid = model_id or model_id_for(Path(path), bundle.metadata, default_path=default_bundle_path())
    return ModelEntry(mid, bundle, initial_states, runs, limit, source)


@dataclass
class Catalog:
    """Models by id; `default_id` answers requests that name none. Mutated by POST /v1/models and, as
    analyses arrive and runs complete, by `service.live.LiveRuns` (which replaces whole entries)."""

    entries: dict[str, ModelEntry] = field(default_factory=dict)
    default_id: str | None = None
    errors: list[str] = field(default_factory=list)

    def add(self, entry: ModelEntry) -> None:
        self.entries[entry.id] = entry
        if self.default_id is None:
            self.default_id = entry.id

    def get(self, model_id: str | None) -> ModelEntry | None:
        key = model_id or self.default_id
        return None if key is None else self.entries.get(key)

    @property
    def ready(self) -> bool:
        return bool(self.entries)
