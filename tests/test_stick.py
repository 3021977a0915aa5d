"""The Gotek's USB stick (app/stick.py, `miragen stick`), in a temporary folder standing in for
the stick: FF.CFG and IMG.CFG written and a user's own kept, names FlashFloppy lists in
delivery order, the index, at most N of Miragen's images, never half an image."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from miragen.app import disk as disk_app
from miragen.app import stick
from miragen.mirage import disk


def _image(n: int) -> bytes:
    return bytes([1 + n % 250]) * disk.SIZE


def _deliver(root: Path, n: int, label: str, keep: int = 0, cls: str = "bass") -> dict:
    about = disk_app.describe(
        "lower1", 1 + n % 8, f"out/{label}/gen-{n:04d}.pcm", request=label, cls=cls, by="test"
    )
    return stick.deliver(root, _image(n), label=label, keep=keep, about=about)


def _index(root: Path) -> list[dict]:
    return json.loads((root / stick.INDEX_JSON).read_text())["images"]


# ------------------------------------------------------------------------------ prepare


def test_prepare_writes_both_files(tmp_path):
    res = stick.prepare(tmp_path)
    assert res["ok"] and res["check"]["writable"] and res["check"]["images_fit"] >= 1
    assert (tmp_path / "FF.CFG").read_text() == stick.FF_CFG
    assert (tmp_path / "IMG.CFG").read_text() == stick.IMG_CFG
    opts = stick.cfg_options(stick.FF_CFG)
    assert opts["interface"] == "shugart" and opts["host"] == "unspecified"
    assert opts["nav-mode"] == "native" and opts["folder-sort"] == "always"
    assert opts["sort-priority"] == "files"
    assert stick.has_mirage_section((tmp_path / "IMG.CFG").read_text())
    # every option line of Miragen's FF.CFG is explained by a comment just above it
    groups = stick.cfg_groups(stick.FF_CFG)
    assert all(comments for comments, _ in groups)
    assert sorted(n for _, opts_ in groups for n, _ in opts_) == sorted(opts)
    again = stick.prepare(tmp_path)  # a second run changes nothing
    assert again["ok"] and all(d.startswith("kept") for d in again["done"])
    assert (tmp_path / "FF.CFG").read_text() == stick.FF_CFG


def test_prepare_keeps_an_existing_ff_cfg_and_merges_only_when_asked(tmp_path):
    mine = "# my Gotek\ninterface = ibmpc\ndisplay-type = oled-128x32\n"
    (tmp_path / "FF.CFG").write_text(mine)
    (tmp_path / "IMG.CFG").write_text("[::819200]\ncyls = 80\n")
    res = stick.prepare(tmp_path)
    assert res["ok"]
    assert (tmp_path / "FF.CFG").read_text() == mine  # never overwritten
    assert (tmp_path / "IMG.CFG").read_text() == "[::819200]\ncyls = 80\n"
    text = "\n".join(res["warnings"])
    assert "interface = ibmpc where Miragen's sets interface = shugart: kept yours" in text
    assert "--merge" in text and "nav-mode" in text and "[::450560]" in text

    res = stick.prepare(tmp_path, merge=True)
    merged = (tmp_path / "FF.CFG").read_text()
    assert merged.startswith(mine)  # the user's lines first, as they were
    opts = stick.cfg_options(merged)
    assert opts["interface"] == "ibmpc" and opts["display-type"] == "oled-128x32"  # theirs
    assert opts["nav-mode"] == "native" and opts["folder-sort"] == "always"  # added
    assert merged.count("interface") == 1
    img = (tmp_path / "IMG.CFG").read_text()
    assert img.startswith("[::819200]") and stick.has_mirage_section(img)
    assert any("added" in d for d in res["done"])


def test_prepare_writes_into_ff_folder_when_it_exists(tmp_path):
    (tmp_path / "FF").mkdir()
    (tmp_path / "FF.CFG").write_text("interface = jc\n")  # ignored by FlashFloppy now
    res = stick.prepare(tmp_path)
    assert (tmp_path / "FF" / "FF.CFG").read_text() == stick.FF_CFG
    assert stick.has_mirage_section((tmp_path / "FF" / "IMG.CFG").read_text())
    assert not (tmp_path / "IMG.CFG").exists()
    assert any("is ignored by FlashFloppy" in w for w in res["warnings"])
    _deliver(tmp_path, 1, "pad")  # the delivery's IMG.CFG check looks in FF/ too
    assert not (tmp_path / "IMG.CFG").exists()


def test_check_refuses_a_missing_stick_and_reads_proc_mounts(tmp_path):
    with pytest.raises(Exception, match="does not exist"):
        stick.check(tmp_path / "nope")
    mounts = (
        "/dev/root / ext4 rw 0 0\n"
        "/dev/sda1 /media/my\\040gotek vfat rw,nosuid,fmask=0022 0 0\n"
        "/dev/sdb1 /media/ro vfat ro 0 0\n"
    )
    assert stick.mount_of(Path("/media/my gotek/sub"), mounts)[:2] == ("/media/my gotek", "vfat")
    assert stick.mount_of(Path("/home/x"), mounts)[:2] == ("/", "ext4")
    assert "ro" in stick.mount_of(Path("/media/ro"), mounts)[2]
    warn = stick.mount_warnings(Path("/home/x"), ("/", "ext4", ["rw"]))
    assert any("FAT" in w for w in warn) and any("not a mount point" in w for w in warn)
    assert stick.mount_warnings(Path("/media/g"), ("/media/g", "vfat", ["rw"])) == []


# ------------------------------------------------------------------------------ names, index


def test_names_sort_in_delivery_order(tmp_path):
    labels = ["zeta", "Alpha", "bass-01", "0099-old", "pad 7!", "", "a" * 80, "B", "kick"]
    names = [_deliver(tmp_path, n, lab)["file"] for n, lab in enumerate(labels)]
    assert names[0] == "0001-zeta.img" and names[3] == "0004-old.img"
    assert names[4] == "0005-pad-7.img" and names[5] == "0006-sound.img"
    assert len(names[6]) <= 4 + 1 + 40 + 4
    assert sorted(names, key=stick.ff_sort_key) == names
    listed = stick.listing(tmp_path)
    assert [r["file"] for r in listed["images"]] == names
    assert [r["slot"] for r in listed["images"]] == list(range(len(names)))
    # dot files (the temp names, the lock) and the index are never listed by FlashFloppy
    assert not any(n.startswith(".") or n.startswith("MIRAGEN") for n, *_ in listed["images"])


def test_names_past_9999_are_renumbered_in_order(tmp_path):
    index = {"format": stick.INDEX_FORMAT, "images": []}
    for seq in (9998, 9999):
        name = f"{seq}-old{seq}.img"
        (tmp_path / name).write_bytes(_image(seq))
        index["images"].append(stick.entry(name, seq, _image(seq), {}))
    stick.write_index(tmp_path, index)
    res = _deliver(tmp_path, 3, "new")
    assert res["file"] == "0003-new.img"
    assert [e["file"] for e in _index(tmp_path)] == [
        "0001-old9998.img",
        "0002-old9999.img",
        "0003-new.img",
    ]
    assert (tmp_path / "0001-old9998.img").read_bytes() == _image(9998)


def test_index_is_right_after_several_deliveries(tmp_path):
    for n, (label, cls) in enumerate([("bass-01", "bass"), ("pad-02", "pad"), ("kit", "")]):
        _deliver(tmp_path, n, label, cls=cls)
    images = _index(tmp_path)
    assert [e["file"] for e in images] == ["0001-bass-01.img", "0002-pad-02.img", "0003-kit.img"]
    assert [e["seq"] for e in images] == [1, 2, 3]
    first = images[0]
    assert first["request"] == "bass-01" and first["class"] == "bass" and first["by"] == "test"
    assert first["contents"] == [
        {"sound": "lower1", "wavesample": 1, "source": "out/bass-01/gen-0000.pcm", "class": "bass"}
    ]
    assert first["template"] == "synthetic" and first["bytes"] == disk.SIZE
    assert stick.unchanged(tmp_path / first["file"], first)
    assert first["date"][:2] == "20"
    text = (tmp_path / stick.INDEX_TXT).read_text()
    lines = [ln for ln in text.splitlines() if ln.startswith("00")]
    assert [ln.split()[1] for ln in lines] == [e["file"] for e in images]
    assert "lower1 ws1: gen-0000.pcm (bass)" in lines[0] and "pad-02" in lines[1]


def test_concurrent_deliveries_get_distinct_names(tmp_path):
    names: list[str] = []
    errors: list[BaseException] = []

    def run(k: int) -> None:
        try:
            for j in range(3):
                names.append(_deliver(tmp_path, 10 * k + j, f"t{k}")["file"])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(names)) == 12
    assert sorted(e["seq"] for e in _index(tmp_path)) == list(range(1, 13))


# ------------------------------------------------------------------------------ keep N


def test_keep_n_removes_only_miragens_oldest(tmp_path):
    (tmp_path / "masos.img").write_bytes(_image(99))  # the user's boot disk
    (tmp_path / "0000-boot.img").write_bytes(_image(98))  # numbered, but not Miragen's
    (tmp_path / "notes.txt").write_text("mine")
    removed = []
    for n in range(5):
        removed += _deliver(tmp_path, n, f"s{n}", keep=3)["removed"]
    assert removed == ["0001-s0.img", "0002-s1.img"]
    assert [e["file"] for e in _index(tmp_path)] == ["0003-s2.img", "0004-s3.img", "0005-s4.img"]
    assert (tmp_path / "masos.img").exists() and (tmp_path / "0000-boot.img").exists()
    assert (tmp_path / "notes.txt").read_text() == "mine"

    # the Mirage saved onto the oldest: it is kept, marked, no longer counted
    changed = tmp_path / "0003-s2.img"
    changed.write_bytes(b"\x02" + _image(2)[1:])
    res = _deliver(tmp_path, 5, "s5", keep=3)
    assert res["removed"] == [] and any(
        "changed since Miragen wrote it" in w for w in res["warnings"]
    )
    assert changed.exists()
    res = _deliver(tmp_path, 6, "s6", keep=3)
    assert res["removed"] == ["0004-s3.img"]
    files = [e["file"] for e in _index(tmp_path)]
    assert files == ["0003-s2.img", "0005-s4.img", "0006-s5.img", "0007-s6.img"]

    # an image the user deleted drops out of the index; keep = 0 keeps every image
    (tmp_path / "0005-s4.img").unlink()
    res = _deliver(tmp_path, 7, "s7", keep=0)
    assert res["removed"] == [] and "0005-s4.img" not in [e["file"] for e in _index(tmp_path)]
    rows = {r["file"]: r for r in stick.listing(tmp_path, verify=True)["images"]}
    assert rows["0003-s2.img"]["note"].startswith("changed")
    assert rows["0007-s6.img"]["note"] == "verified"
    assert rows["masos.img"]["miragen"] is False and rows["0000-boot.img"]["slot"] == 0


# ------------------------------------------------------------------------------ interrupted


def test_a_write_cut_mid_way_leaves_no_half_image(tmp_path, monkeypatch):
    _deliver(tmp_path, 0, "first")
    real = stick._write_all

    def cut(fh, data, chunk=1 << 16):
        real(fh, data[: len(data) // 2], chunk)
        raise OSError(5, "Input/output error")  # the stick pulled out

    monkeypatch.setattr(stick, "_write_all", cut)
    with pytest.raises(OSError):
        _deliver(tmp_path, 1, "second")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert [n for n in names if n.endswith(".img")] == ["0001-first.img"]
    assert not [n for n in names if n.endswith(".part")]  # the temp file went with the error
    assert [e["file"] for e in _index(tmp_path)] == ["0001-first.img"]

    # through publish (the CLI's and the daemon's path): the image is written, the stick not
    out = tmp_path / "out" / "req.img"
    pub = disk_app.publish(_image(3), out, stick=str(tmp_path), stick_keep=5)
    assert not pub["ok"] and "cannot copy to the USB stick" in pub["error"]
    assert out.read_bytes() == _image(3)
    monkeypatch.setattr(stick, "_write_all", real)
    pub = disk_app.publish(_image(3), out, stick=str(tmp_path), stick_keep=5)
    assert pub["ok"] and pub["usb_stick"] == str(tmp_path / "0002-req.img")


def test_a_pulled_stick_leaves_a_temp_file_the_next_delivery_removes(tmp_path):
    own = tmp_path / ".0002-bass.img.k3j9x_2a.part"
    own.write_bytes(_image(1)[:1000])  # a copy cut short (what write_atomic leaves at worst)
    own_cfg = tmp_path / ".MIRAGEN.JSON.abcdefgh.part"
    own_cfg.write_text("{")
    foreign = tmp_path / "song.img.part"
    foreign.write_bytes(b"x")
    found = stick.check(tmp_path)
    assert sorted(found.leftovers) == sorted([own.name, own_cfg.name])
    assert found.foreign_leftovers == [foreign.name]
    res = stick.prepare(tmp_path)
    assert own.exists() and any("--clean" in w for w in res["warnings"])
    assert any("not Miragen's: left alone" in w for w in res["warnings"])
    res = stick.prepare(tmp_path, clean_up=True)
    assert not own.exists() and not own_cfg.exists() and foreign.exists()
    own.write_bytes(b"half")
    res = _deliver(tmp_path, 2, "bass")
    assert res["cleaned"] == [own.name] and not own.exists() and foreign.exists()
    assert stick.listing(tmp_path)["images"][0]["file"] == "0001-bass.img"


# ------------------------------------------------------------------------------ the CLI


def test_stick_cli_prepare_list_check(cli, tmp_path):
    r = cli("stick", "prepare", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "wrote" in r.stdout.decode() and (tmp_path / "FF.CFG").exists()
    for n, label in enumerate(["bass-01", "pad-02"]):
        _deliver(tmp_path, n, label)
    (tmp_path / "masos.img").write_bytes(_image(9))
    r = cli("stick", "list", str(tmp_path))
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode().splitlines()
    assert "3 images in the Gotek's order, 2 written by Miragen" in out[0]
    assert out[1].split()[:3] == ["slot", "file", "date"]
    assert out[2].split()[:2] == ["000", "0001-bass-01.img"] and "bass-01" in out[2]
    assert "lower1 ws1: gen-0000.pcm (bass)" in out[2]
    assert out[3].split()[:2] == ["001", "0002-pad-02.img"]
    assert out[4].split()[:2] == ["002", "masos.img"] and "(not Miragen's)" in out[4]
    r = cli("stick", "list", str(tmp_path), "--json", "--verify")
    rows = json.loads(r.stdout)["images"]
    assert r.returncode == 0 and [x["note"] for x in rows[:2]] == ["verified", "verified"]
    conf = tmp_path.parent / "m.toml"
    conf.write_text(f'[paths]\nusb_stick = "{tmp_path}"\n')
    r = cli("stick", "check", "--config", str(conf), "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["writable"] is True
    r = cli("stick", "list", str(tmp_path / "missing"))
    assert r.returncode == 2 and b"does not exist" in r.stderr
