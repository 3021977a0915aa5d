"""``--tile-cycle`` of ``miragen deliver`` (SysEx and --disk) and ``miragen disk write``: a single
cycle fills the wavesample instead of leaving 0x80 padding behind it."""

from __future__ import annotations

import json

import numpy as np
from miragen.mirage import disk, params


def _cycle(tmp_path):
    cyc = bytes(
        np.clip(np.round(128 + 100 * np.sin(2 * np.pi * np.arange(256) / 256)), 1, 255).astype(
            np.uint8
        )
    )
    path = tmp_path / "cycle.pcm"
    path.write_bytes(cyc)
    return cyc, path


def _wavesample(image: bytes, sound: str, number: int) -> bytes:
    ws = params.parse_sound_params(disk.read_param_block(image, sound)).wavesample(number)
    return disk.wavesample_bytes(disk.read_wave(image, sound), ws)


def test_deliver_tile_cycle_sysex_and_disk(cli, tmp_path):
    cyc, path = _cycle(tmp_path)
    r = cli("deliver", str(path), "--sim", "--verify", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["pages"] == 1, (
        r.stderr
    )  # without the flag: as given
    r = cli("deliver", str(path), "--sim", "--verify", "--json", "--tile-cycle")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["ok"] and out["verified"] and out["pages"] == 8  # deliver.cycle_pages
    conf = tmp_path / "m.toml"
    conf.write_text("[deliver]\ncycle_pages = 3\n")
    r = cli("deliver", str(path), "--sim", "--json", "--tile-cycle", "--config", str(conf))
    assert json.loads(r.stdout)["pages"] == 3
    img = tmp_path / "t.img"
    r = cli("deliver", str(path), "--disk", str(img), "--wavesample", "2", "--tile-cycle", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["report"]["unused"] == 0
    assert _wavesample(img.read_bytes(), "lower1", 2) == cyc * 32
    # a byte-for-byte cycle that is not whole pages is resampled to whole pages (one here), then
    # tiled: no 0x80 padding repeated (tests/test_disk_hardening.py checks the seams)
    (tmp_path / "odd.pcm").write_bytes(cyc[:200])
    r = cli("deliver", str(tmp_path / "odd.pcm"), "--sim", "--tile-cycle", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["pages"] == 8, r.stderr
    # with --keep-bytes (disk write) it is refused instead, with the reason, no traceback
    tpl = tmp_path / "tpl.img"
    assert cli("disk", "template", "--synthetic", str(tpl)).returncode == 0
    r = cli(
        "disk",
        "write",
        "--template",
        str(tpl),
        "-o",
        str(tmp_path / "o.img"),
        "--tile-cycle",
        "--keep-bytes",
        f"lower1:1={tmp_path / 'odd.pcm'}",
    )
    assert (
        r.returncode == 2 and b"whole 256-byte pages" in r.stderr and b"Traceback" not in r.stderr
    )


def test_disk_write_tile_cycle(cli, tmp_path):
    cyc, path = _cycle(tmp_path)
    tpl = tmp_path / "tpl.img"
    assert cli("disk", "template", "--synthetic", str(tpl)).returncode == 0
    out = tmp_path / "out.img"
    r = cli(
        "disk",
        "write",
        "--template",
        str(tpl),
        "-o",
        str(out),
        f"upper1:3={path}",
        "--tile-cycle",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    assert _wavesample(out.read_bytes(), "upper1", 3) == cyc * 32
    r = cli("disk", "write", "--template", str(tpl), "-o", str(out), f"upper1:3={path}", "--json")
    assert _wavesample(out.read_bytes(), "upper1", 3) == cyc + b"\x80" * (
        31 * 256
    )  # without it: padded
