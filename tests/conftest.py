"""Shared fixtures: the real audio in ../shared/data, temp folders, the CLI runner."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MIRAGEN_SHARED_DATA", ROOT.parent / "shared" / "data"))


def load_bench(script: str):
    """``bench/SCRIPT.py`` as a module (bench/ is no package), registered in ``sys.modules`` as
    ``bench_SCRIPT`` so that what it defines can be looked up by module name."""
    name = f"bench_{script}"
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{script}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, mod)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; tests that need it skip with a clear reason when it is absent."""
    if not (SHARED_DATA / "akwf").is_dir():
        pytest.skip(f"real audio not found at {SHARED_DATA} (set MIRAGEN_SHARED_DATA)")
    return SHARED_DATA


def run_cli(
    *args: str,
    input: bytes | None = None,
    timeout: float = 300,
    env: dict | None = None,
    cwd: str | Path | None = None,
) -> subprocess.CompletedProcess:
    """Run the real ``miragen`` command in a subprocess."""
    full_env = dict(os.environ)
    full_env.setdefault("PYTHONUNBUFFERED", "1")
    if env:
        full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "miragen", *args],
        input=input,
        capture_output=True,
        timeout=timeout,
        env=full_env,
        cwd=cwd,
    )


@pytest.fixture
def cli():
    return run_cli
