"""Service settings, read from keyword arguments or `FNO_*` environment variables (pydantic-settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from fno_forecast.errors import ConfigError


class ServiceSettings(BaseSettings):
    """Everything the service is configured by. `FNO_MODELS='["a","b"]'` sets a list from the environment."""

    model_config = SettingsConfigDict(env_prefix="FNO_", frozen=True, extra="forbid")

    models: list[Path] = Field(default_factory=list, description="bundle directories; empty = bundled model")
    default_model: str | None = Field(default=None, description="model id served when none is asked for")
    data: Path | None = Field(
        default=None,
        description="initial states: a file, or a folder or glob watched for new ones; none = NCEP",
    )
    poll_interval_s: float = Field(default=5.0, gt=0, description="how often a data folder is polled")
    run_hours: int = Field(
        default=192,
        ge=1,
        description="horizon each new run is computed for (8 days: a 7-day answer anywhere)",
    )
    retain_runs: int = Field(default=0, ge=0, description="runs kept per model, newest first; 0 = all")
    event_log_size: int = Field(default=1000, ge=1, description="events kept for Last-Event-ID resume")
    keepalive_s: float = Field(default=15.0, gt=0, description="seconds of silence before an SSE keep-alive")
    verification_runs: int = Field(default=20, ge=1, description="runs the scorecard combines by default")
    max_upload_bytes: int = Field(default=1 << 30, ge=1024, description="largest POST /v1/analyses body")
    replay: Path | None = Field(default=None, description="replay this file's analyses one step at a time")
    replay_every_s: float = Field(default=10.0, gt=0, description="seconds between replayed analyses")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=2, ge=1, le=64, description="rollout worker threads")
    max_queue: int = Field(default=8, ge=1, description="rollouts queued or running before 429")
    store_dir: Path | str = Field(
        default=Path("forecast_store"),
        description="forecast store: a folder (NetCDF files + SQLite index) or a URL (s3://bucket/prefix)",
    )
    store_options: dict[str, Any] = Field(
        default_factory=dict,
        description='fsspec options of a store URL, e.g. {"endpoint_url": "http://127.0.0.1:9000"}',
    )
    lease_s: float = Field(
        default=120.0, gt=0, description="how long a replica's claim on a rollout holds unless renewed"
    )
    lease_poll_s: float = Field(
        default=1.0, gt=0, description="how often a replica looks whether another one stored a rollout"
    )
    models_dir: Path | None = Field(default=None, description="where POST /v1/models may register bundles")
    admin_token: str | None = Field(default=None, description="bearer token for admin routes; unset = off")
    cors_origins: list[str] = Field(default_factory=list)
    memory_forecasts: int = Field(default=16, ge=1, description="rollouts kept in the memory LRU")
    response_cache_entries: int = Field(default=4096, ge=0, description="rendered responses kept")
    response_cache_bytes: int = Field(
        default=256 * 2**20, ge=0, description="bytes of rendered responses kept"
    )
    cache_max_age_s: int = Field(default=3600, ge=0)
    max_forecast_hours: int = Field(default=384, ge=1, description="cap on horizons (16 days)")
    max_locations: int = Field(default=1000, ge=1)
    max_query_length: int = Field(default=32768, ge=256, description="bytes; 1000 locations fit")
    max_body_bytes: int = Field(default=65536, ge=1024)

    @field_validator("store_dir", mode="before")
    @classmethod
    def _url_or_folder(cls, value: Any) -> Any:
        """A URL stays text (a Path would fold `s3://` to `s3:/`); anything else is a folder."""
        from fno_forecast.data.remote import is_url

        return value if is_url(value) else Path(value)

    @field_validator("admin_token")
    @classmethod
    def _empty_token_is_off(cls, value: str | None) -> str | None:
        return value or None

    @classmethod
    def from_overrides(cls, **values: Any) -> ServiceSettings:
        """Build settings from keyword values over the environment; a bad value is a ConfigError naming it."""
        try:
            return cls(**values)
        except ValidationError as error:
            first = error.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "settings"
            raise ConfigError(f"service setting {field!r} (FNO_{field.upper()}): {first['msg']}") from None
