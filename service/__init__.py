"""The HTTP service: point and grid forecasts over FastAPI. Calls the library, never the reverse.

Build an app with `service.app.create_app(settings)`; `fno-forecast serve` does it from the command line.
"""
