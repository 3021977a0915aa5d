"""The package's shape, checked on every run: layers and no circles (import-linter, contracts in
pyproject.toml; docs/architecture.md explains them)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept():
    exe = Path(sys.executable).parent / "lint-imports"
    r = subprocess.run(
        [str(exe), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "2 kept, 0 broken" in r.stdout, r.stdout[-2000:]


def test_ruff_rules_and_format_are_kept():
    """pyproject's ruff rules (100 columns included) and `ruff format` hold everywhere."""
    exe = Path(sys.executable).parent / "ruff"
    paths = ["daemon", "tests", "bench"]
    check = subprocess.run(
        [str(exe), "check", *paths],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert check.returncode == 0, check.stdout[-4000:]
    fmt = subprocess.run(
        [str(exe), "format", "--check", *paths],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert fmt.returncode == 0, fmt.stdout[-4000:]
