"""Forecast evaluation: metrics, baselines, score cards and plots."""
