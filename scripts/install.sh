#!/usr/bin/env bash
# One install recipe for the README, CI and the Dockerfile.
#   scripts/install.sh [VENV_DIR]   (default .venv; VENV_DIR=system installs into the current Python)
# Extras come from FNO_EXTRAS (default "dev,grib"); FNO_EDITABLE=0 installs a regular (non-editable) copy. pip, not uv or poetry: those ignore a local torch
# wheel and download a multi-GB CUDA build. The torch pin in pyproject.toml (<2.14) resolves to a CPU
# wheel where one is on disk and to PyPI's CUDA build on a GPU machine; TORCH_INDEX_URL picks another.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${1:-.venv}"
extras="${FNO_EXTRAS:-dev,grib}"
stamp_src=$(cat pyproject.toml scripts/install.sh | sha256sum | cut -c1-16)
if [ "$venv" = system ]; then
  py=python3
else
  if [ -f "$venv/.installed" ] && [ "$(cat "$venv/.installed")" = "$stamp_src-$extras" ]; then
    exit 0
  fi
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  py="$venv/bin/python"
fi
"$py" -m pip install -q --upgrade pip
if [ -n "${TORCH_INDEX_URL:-}" ]; then
  "$py" -m pip install -q "torch>=2.4,<2.14" --index-url "$TORCH_INDEX_URL"
fi
case ",$extras," in *,dev,*)
  # The dev extra's openmeteo-requests needs niquests -> urllib3-future, whose wheel overwrites urllib3
  # at every interpreter start (breaking requests and schemathesis); its sdist built with
  # URLLIB3_NO_OVERRIDE=1 installs beside urllib3 instead, and niquests uses it from there.
  URLLIB3_NO_OVERRIDE=1 "$py" -m pip install -q --no-binary urllib3-future "urllib3-future>=2.13.903,<3"
esac
if [ "${FNO_EDITABLE:-1}" = 1 ]; then
  "$py" -m pip install -q -e ".[${extras}]"
else
  "$py" -m pip install -q ".[${extras}]"
fi
"$py" -c "from neuralop.models import FNO, SFNO" # neuraloperator drops SFNO silently without torch-harmonics
[ "$venv" = system ] || echo "$stamp_src-$extras" > "$venv/.installed"
