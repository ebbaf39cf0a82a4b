"""One router per resource: health, models, point forecasts, forecast jobs, telemetry (Prometheus)."""
