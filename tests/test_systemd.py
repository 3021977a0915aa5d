"""systemd/miragen.service and miragen-web.service: `systemd-analyze verify` passes and the
security exposure is ≤ 2.0."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "systemd" / "miragen.service"
UNITS = ["miragen.service", "miragen-web.service"]

NO_ANALYZE = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze not installed (Debian/Ubuntu: apt-get install systemd)",
)


def _unit_here(tmp_path: Path, name: str = "miragen.service") -> Path:
    """The unit with ExecStart pointing at this venv's miragen (verify checks the binary exists)."""
    miragen = Path(sys.executable).with_name("miragen")
    if not miragen.exists():
        pytest.skip(f"{miragen} not found (install the package: pip install -e .)")
    text = (ROOT / "systemd" / name).read_text()
    text = text.replace("/opt/miragen/venv/bin/miragen", str(miragen))
    out = tmp_path / name
    out.write_text(text)
    return out


@NO_ANALYZE
@pytest.mark.parametrize("name", UNITS)
def test_unit_verifies(tmp_path, name):
    unit = _unit_here(tmp_path, name)
    r = subprocess.run(
        ["systemd-analyze", "verify", str(unit)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    problems = [line for line in (r.stdout + r.stderr).splitlines() if name in line]
    assert r.returncode == 0 and not problems, r.stdout + r.stderr


@NO_ANALYZE
@pytest.mark.parametrize("name", UNITS)
def test_unit_exposure_at_most_2(tmp_path, name):
    unit = _unit_here(tmp_path, name)
    r = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(unit)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    m = re.search(
        rf"Overall exposure level for {re.escape(name)}:\s*([0-9.]+)", r.stdout + r.stderr
    )
    assert m, r.stdout + r.stderr
    assert float(m.group(1)) <= 2.0, r.stdout


def test_unit_has_the_required_settings():
    text = UNIT.read_text()
    keys = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            k, v = line.split("=", 1)
            keys.setdefault(k.strip(), []).append(v.strip())
    assert (
        keys["Type"] == ["notify"]
        and keys["Restart"] == ["on-failure"]
        and keys["User"] == ["miragen"]
    )
    assert set(keys["SupplementaryGroups"][0].split()) == {"dialout", "audio", "video"}
    assert keys["StateDirectory"] == ["miragen"] and keys["ProtectSystem"] == ["strict"]
    assert int(keys["WatchdogSec"][0]) >= 10 and keys["DevicePolicy"] == ["closed"]
    allowed = " ".join(keys["DeviceAllow"])
    for dev in ("char-ttyTHS", "char-ttyUSB", "char-ttyACM", "char-alsa", "char-nvhost*"):
        assert dev in allowed


@pytest.mark.parametrize("script", ["install.sh", "install-jetson.sh", "uninstall.sh"])
def test_deploy_scripts_parse_and_explain_themselves(script):
    path = ROOT / "deploy" / script
    assert path.stat().st_mode & 0o111, f"{script} is not executable"
    r = subprocess.run(
        ["bash", "-n", str(path)], check=False, capture_output=True, text=True, timeout=30
    )
    assert r.returncode == 0, r.stderr
    r = subprocess.run(
        ["bash", str(path), "--help"], check=False, capture_output=True, text=True, timeout=30
    )
    assert r.returncode == 0 and "sudo" in r.stdout
    r = subprocess.run(
        ["bash", str(path), "--no-such-option"],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 2 and "unknown option" in r.stderr


def test_example_config_is_valid(cli):
    r = cli("config", "check", str(ROOT / "deploy" / "miragen.toml"))
    assert r.returncode == 0, r.stderr
