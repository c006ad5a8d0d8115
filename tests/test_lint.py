# SPDX-License-Identifier: Apache-2.0
"""Linters as tests (like ament_flake8/ament_pep257 in ROS packages): ruff, licence headers."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_clean() -> None:
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed")
    proc = subprocess.run([ruff, "check", "src", "tests", "launch"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_every_python_file_has_a_licence_header() -> None:
    missing = []
    for path in [*ROOT.glob("src/**/*.py"), *ROOT.glob("tests/**/*.py"), *ROOT.glob("launch/*.py")]:
        head = path.read_text().splitlines()[:3]
        if not any("SPDX-License-Identifier" in line for line in head):
            missing.append(str(path.relative_to(ROOT)))
    assert not missing, f"files without an SPDX licence header: {missing}"
