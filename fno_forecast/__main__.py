"""`python -m fno_forecast ...` (also what torchrun runs)."""

from __future__ import annotations

from fno_forecast.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
