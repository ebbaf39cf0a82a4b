"""What a training run writes into its bundle's `model.json` besides the arrays: the model, the schema,
where the data came from, the resolved config, the derived choices, and which corrections were kept.

`fno_forecast.bundle.save_bundle` adds the format, the stepper options and the array shapes from the
stepper itself; this module says what only the training run knows.
"""

from __future__ import annotations

from typing import Any

from fno_forecast.lead_calibration import LeadCalibration
from fno_forecast.models.registry import model_config_to_dict
from fno_forecast.training.checkpoint import Progress
from fno_forecast.training.config import TrainConfig
from fno_forecast.training.data_setup import TrainingData
from fno_forecast.training.defaults import Choice
from fno_forecast.training.validation import ValidationResult


def training_metadata(
    *,
    config: TrainConfig,
    model_config: Any,
    data: TrainingData,
    data_path: str,
    choices: tuple[Choice, ...] | list[Choice],
    best: ValidationResult | None,
    progress: Progress,
    stopped: bool,
    calibration: LeadCalibration | None,
) -> dict[str, Any]:
    """The metadata `save_bundle` stores for a model trained with `config` on `data`."""
    from fno_forecast import __version__

    channels = data.channels
    corrections = dict(data.corrections)
    if calibration is not None:
        kept = calibration.kept
        total = len(calibration.factors) * calibration.n_channels
        where = (
            "held-out inits the network never trained on"
            if calibration.held_out
            else "the network's own training inits (no held-out tail: in sample, a blend of the factor alone)"
        )
        picked = ", ".join(f"{name} {n}" for name, n in calibration.picked)
        corrections["lead_calibration"] = {
            "kept": kept > 0,
            "why": f"{kept} of {total} lead/channel pairs differ from the plain forecast ({picked}), the "
            f"lowest error on {where}, {calibration.fitted_on} (the blend cross-fitted on 4 blocks of consecutive inits)",
        }
    metadata: dict[str, Any] = {
        "model": {"name": config.model, "config": model_config_to_dict(model_config)},
        "schema": channels.schema.to_dict(),
        "training": {
            "data": {
                "paths": list(channels.paths) or [data_path],
                "format": channels.source_format,
                "time": channels.time.to_dict(),
            },
            "train_period": data.train_period,
            "val_period": data.val_period,
            "config": config.to_dict(),
            "best_epoch": progress.best_epoch + 1,
            "epochs_done": progress.epoch,
            "global_step": progress.global_step,
            "stopped_by_budget": stopped,
            "val_rmse": None if best is None else best.rmse,
            "val_inits": None if best is None else best.n_inits,
            "package_version": __version__,
            "choices": [choice.to_dict() for choice in choices],
            "corrections": corrections,
        },
    }
    if data.recent_anomaly is not None:
        metadata["recent_anomaly"] = data.recent_anomaly.to_dict()
    if calibration is not None:
        metadata["lead_calibration"] = calibration.to_dict()
    return metadata
