"""Typed errors. The CLI prints `str(error)` on one line and exits 2; the service answers 4xx.

Every message names what was wrong: the file, the variable, the parameter or the config key.
"""

from __future__ import annotations

from pathlib import Path


class FnoForecastError(Exception):
    """Base class of every error this package raises on purpose."""


class DataError(FnoForecastError):
    """A data source cannot be used as given. The message starts with the file it concerns."""

    def __init__(self, path: str | Path | None, message: str) -> None:
        self.path = None if path is None else str(path)
        self.reason = message
        super().__init__(f"{self.path}: {message}" if self.path else message)


class ConfigError(FnoForecastError):
    """A configuration value or key is invalid; the message names the key."""


class BundleError(FnoForecastError):
    """A model bundle is missing, corrupt, or does not match the data it is given."""


class ForecastError(FnoForecastError):
    """A forecast cannot be made (no such init time, a rollout that blew up, ...)."""
