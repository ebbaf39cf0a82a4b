"""PNG plots of forecast skill: score curves with 95% interval bands against lead, and truth/forecast/error maps.

Matplotlib runs on the Agg backend (no display); the figure objects are closed after writing. Files are
written atomically through a temporary file in the same folder.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from fno_forecast.data.grid import weighted_rmse_2d
from fno_forecast.evaluation.baselines import system_label
from fno_forecast.evaluation.scorecard import Scorecard

STYLES: dict[str, dict[str, str]] = {
    "model": {"color": "tab:blue", "marker": "o"},
    "persistence": {"color": "tab:orange", "marker": "s"},
    "climatology": {"color": "tab:green", "marker": "^"},
    "prior": {"color": "tab:gray", "marker": "v", "linestyle": ":"},
    "prior_recent": {"color": "tab:brown", "marker": "<", "linestyle": ":"},
    "prior_calibrated": {"color": "tab:pink", "marker": ">", "linestyle": ":"},
    "prior_recent_calibrated": {"color": "tab:purple", "marker": "D", "linestyle": ":"},
    "linear_ar": {"color": "tab:red", "marker": "x", "linestyle": "--"},
    "linear_spectral": {"color": "tab:olive", "marker": "+", "linestyle": "--"},
}


def _figure(nrows: int, ncols: int, size: tuple[float, float]):
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, layout="constrained")
    axes = figure.subplots(nrows, ncols, squeeze=False)
    return figure, axes


def _save(figure, path: Path) -> Path:
    from fno_forecast.output import write_bytes_atomic

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    return write_bytes_atomic(path, buffer.getvalue())


def _curve(ax, card: Scorecard, leads: np.ndarray, y: np.ndarray, *, variable: str, metric: str, system: str):
    """One system's curve, with its 95% interval as a band where the card has intervals."""
    style = STYLES.get(system, {"marker": "."})
    line = ax.plot(leads, y, label=system_label(system), **style)[0]
    bounds = card.interval_series(variable=variable, metric=metric, system=system)
    if any(b is not None for b in bounds):
        low = np.array([np.nan if b is None else b[0] for b in bounds], dtype=float)
        high = np.array([np.nan if b is None else b[1] for b in bounds], dtype=float)
        ax.fill_between(leads, low, high, color=line.get_color(), alpha=0.15, linewidth=0)


def plot_skill_curves(card: Scorecard, directory: str | Path) -> list[Path]:
    """One PNG per variable, `skill_{variable}.png`: RMSE and ACC against lead for every system."""
    out: list[Path] = []
    leads = np.asarray(card.leads, dtype=float)
    for variable in card.variables:
        units = card.units.get(variable, "")
        figure, axes = _figure(1, 2, (10.0, 4.0))
        for ax, metric, ylabel in (
            (axes[0, 0], "rmse", f"latitude-weighted RMSE ({units})" if units else "latitude-weighted RMSE"),
            (axes[0, 1], "acc", "anomaly correlation (ACC)"),
        ):
            for system in card.systems:
                values = card.series(variable=variable, metric=metric, system=system)
                y = np.array([np.nan if v is None else v for v in values], dtype=float)
                if np.isfinite(y).any():
                    _curve(ax, card, leads, y, variable=variable, metric=metric, system=system)
                elif metric == "acc" and system == "climatology":
                    ax.plot([], [], " ", label="climatology: ACC undefined (no anomaly)")
            ax.set_xlabel("lead time (hours)")
            ax.set_ylabel(ylabel)
            ax.set_xticks(leads)
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize="small")
        axes[0, 0].set_ylim(bottom=0.0)
        axes[0, 1].set_ylim(top=1.0)
        inside = ", verifying inside" if card.protocol.get("verify_inside") else ""
        figure.suptitle(
            f"{variable}: {card.inits} inits, {card.period[0]} .. {card.period[1]}{inside} (bands: 95% intervals)"
        )
        out.append(_save(figure, Path(directory) / f"skill_{variable}.png"))
    return out


def plot_map_panel(
    *,
    truth: np.ndarray,
    forecast: np.ndarray,
    lat: np.ndarray,
    lon: np.ndarray,
    variable: str,
    units: str,
    init_time: str,
    lead_hours: float,
    path: str | Path,
) -> Path:
    """Truth, forecast and forecast-minus-truth maps `(lat, lon)` side by side, one shared colour scale."""
    truth = np.asarray(truth, dtype=float)
    forecast = np.asarray(forecast, dtype=float)
    if truth.shape != forecast.shape or truth.shape != (len(lat), len(lon)):
        raise ValueError(
            f"plot_map_panel: truth {truth.shape} and forecast {forecast.shape} must be (lat, lon) = "
            f"({len(lat)}, {len(lon)})"
        )
    figure, axes = _figure(1, 3, (15.0, 4.2))
    low = float(np.nanmin([truth.min(), forecast.min()]))
    high = float(np.nanmax([truth.max(), forecast.max()]))
    error = forecast - truth
    span = float(np.nanmax(np.abs(error))) or 1.0
    unit_text = f" ({units})" if units else ""
    panels = (
        (truth, "truth", "viridis", low, high, f"{variable}{unit_text}"),
        (forecast, "forecast", "viridis", low, high, f"{variable}{unit_text}"),
        (error, "forecast - truth", "RdBu_r", -span, span, f"error{unit_text}"),
    )
    for ax, (field, title, cmap, vmin, vmax, label) in zip(axes[0], panels, strict=True):
        mesh = ax.pcolormesh(lon, lat, field, cmap=cmap, vmin=vmin, vmax=vmax, shading="nearest")
        ax.set_title(title)
        ax.set_xlabel("longitude (degrees east)")
        ax.set_ylabel("latitude (degrees north)")
        ax.set_aspect("equal")
        figure.colorbar(mesh, ax=ax, label=label, shrink=0.8)
    rmse = weighted_rmse_2d(error, lat)
    figure.suptitle(
        f"{variable}, init {init_time}, lead {lead_hours:g} h (lat-weighted RMSE {rmse:.2f}{units and ' ' + units})"
    )
    return _save(figure, Path(path))
