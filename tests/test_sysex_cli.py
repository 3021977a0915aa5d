"""``miragen sysex …`` end to end, and malformed .syx files → clear errors, no traceback."""

from __future__ import annotations

import json

import pytest
from miragen.cli import main
from miragen.mirage import disk as D
from miragen.mirage import sysex as sx


def test_encode_decode_files(tmp_path, capsys):
    pcm = tmp_path / "w.pcm"
    data = bytes(range(1, 256)) * 4  # 1,020 bytes → 4 pages
    pcm.write_bytes(data)
    img = tmp_path / "t.img"
    img.write_bytes(D.synthetic_template())
    assert main(["sysex", "encode", "wavesample", str(pcm), "-o", str(tmp_path / "w.syx")]) == 0
    assert (
        main(["sysex", "encode", "program", str(img), "upper2", "-o", str(tmp_path / "p.syx")]) == 0
    )
    assert main(["sysex", "encode", "keys", "play-seq", "0x03", "-o", str(tmp_path / "k.syx")]) == 0
    w = (tmp_path / "w.syx").read_bytes()
    assert len(w) == 8 + 512 * 4
    assert sx.decode(w).data == data + b"\x80" * 4
    p = (tmp_path / "p.syx").read_bytes()
    assert p[3] == 0x15 and sx.decode(p).data == D.read_param_block(img.read_bytes(), "upper2")
    assert (tmp_path / "k.syx").read_bytes() == bytes.fromhex("F00F0101150 37FF7".replace(" ", ""))
    both = tmp_path / "all.syx"
    both.write_bytes(w + p + (tmp_path / "k.syx").read_bytes())
    capsys.readouterr()
    assert main(["sysex", "decode", str(both), "--json"]) == 0
    objs = json.loads(capsys.readouterr().out)
    assert [o["kind"] for o in objs] == ["wavesample_dump", "program_dump", "keys", "summary"]
    assert objs[-1]["messages"] == 3 and objs[-1]["skipped_bytes"] == 0
    assert objs[0]["pages"] == 4 and objs[1]["half"] == "upper"
    assert main(["sysex", "decode", str(both)]) == 0
    assert "wavesample_dump" in capsys.readouterr().out
    # the hex-text form of .syx
    txt = tmp_path / "k.txt.syx"
    txt.write_text((tmp_path / "k.syx").read_bytes().hex(" ").upper())
    assert main(["sysex", "decode", str(txt), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["codes"] == [0x15, 3]


def test_wavesample_too_long_refused(tmp_path, capsys):
    pcm = tmp_path / "long.pcm"
    pcm.write_bytes(b"\x90" * (255 * 256 + 1))
    assert main(["sysex", "encode", "wavesample", str(pcm), "-o", str(tmp_path / "x.syx")]) == 2
    assert "65,280" in capsys.readouterr().err
    assert not (tmp_path / "x.syx").exists()


def _corrupt(kind: str) -> bytes:
    good = sx.encode_wavesample_dump(b"\x81" * 512)
    b = bytearray(good)
    if kind == "truncated":
        return bytes(b[:700])
    if kind == "checksum":
        b[-2] ^= 0x01
    elif kind == "highbit":
        b[40] = 0x88
    elif kind == "missing_f7":
        return bytes(b[:-1]) + sx.encode_ack()
    elif kind == "manufacturer":
        b[1] = 0x43
    elif kind == "wrong_size":
        return bytes(b[:600]) + b"\x00\xf7"
    elif kind == "empty":
        return b""
    return bytes(b)


@pytest.mark.parametrize(
    "kind,needle",
    [
        ("truncated", "no F7"),
        ("checksum", "checksum"),
        ("highbit", "0x88"),
        ("missing_f7", "F0 inside"),
        ("manufacturer", "manufacturer"),
        ("wrong_size", "bytes long"),
        ("empty", "empty"),
    ],
)
def test_malformed_syx_no_traceback(tmp_path, cli, kind, needle):
    f = tmp_path / f"{kind}.syx"
    f.write_bytes(_corrupt(kind))
    r = cli("sysex", "decode", str(f))
    err = r.stderr.decode()
    assert r.returncode == 2, err
    assert needle in err and "Traceback" not in err
