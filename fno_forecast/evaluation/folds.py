"""Scores of a bundle on rolling-origin folds: skill in every season, not only in one validation period.

Each fold is a period scored with every verifying time inside it, and its linear baseline is fitted on
the training period up to the fold's start only (the rolling origin: fit through 2013-12, score
2014-01..03; fit through 2014-03, score 2014-04..06). The bundle itself is what it is: when a fold lies
inside the period its network, prior and corrections were fitted on, the fold's card says so, because
its scores are then in-sample for the model (and not for the linear baseline). Retraining a model per
fold is training's job; `fno_forecast.evaluation.scoring.evaluate_paths` scores whatever bundle it is
given on its folds, with the helpers here.
"""

from __future__ import annotations

from fno_forecast.bundle import Bundle
from fno_forecast.data.timeaxis import parse_period
from fno_forecast.errors import ConfigError, DataError


def parse_folds(text: str) -> tuple[str, ...]:
    """`"2014-01-01/2014-03-31,2014-04-01/2014-06-30"` -> the periods; ConfigError naming `--folds`."""
    folds = tuple(part.strip() for part in text.split(",") if part.strip())
    if not folds:
        raise ConfigError(f"--folds {text!r}: expected comma-separated START/END periods")
    for fold in folds:
        try:
            parse_period(fold)
        except DataError as error:
            raise ConfigError(f"--folds: {error}") from None
    return folds


def overlaps(first: str, second: str) -> bool:
    """Whether two START/END periods share any time."""
    a, b = parse_period(first), parse_period(second)
    return bool(a[0] <= b[1] and b[0] <= a[1])


def in_sample_note(bundle: Bundle, fold: str) -> str | None:
    """A note for a fold inside the bundle's training period (its scores are in-sample), else None."""
    trained = (bundle.metadata.get("training") or {}).get("train_period")
    if not trained or not overlaps(trained, fold):
        return None
    return (
        f"in-sample for the model: this fold lies in the bundle's training period {trained} (its network, "
        "prior, climatology and corrections were fitted on it); the linear baseline is fitted before the fold"
    )
