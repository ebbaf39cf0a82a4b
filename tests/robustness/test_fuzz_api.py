"""A small budget of `scripts/fuzz-api.sh`: the API fuzzed from its own OpenAPI schema, no 5xx, JSON errors."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.robustness.liveserver import REPO_ROOT

pytest.importorskip("schemathesis", reason="schemathesis is not installed (pip install schemathesis)")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("curl") is None, reason="the fuzz script needs curl")
def test_fuzzing_the_schema_finds_no_server_error_and_no_bare_error_body() -> None:
    env = {**os.environ, "PYTHON": sys.executable}
    result = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "fuzz-api.sh"), "5", "20"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    tested = re.search(r"Tested:\s+(\d+)", output)
    generated = re.search(r"(\d+) generated", output)
    assert tested and int(tested.group(1)) >= 13, output[-3000:]  # every operation of the schema
    assert generated and int(generated.group(1)) >= 100, output[-3000:]
    print(f"schemathesis: {tested.group(1)} operations, {generated.group(1)} cases, 0 failures")
