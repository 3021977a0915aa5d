"""Mirage disk images (FORMAT.md §2-3): geometry, parsing, writing, the synthetic template."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from miragen.errors import FormatError
from miragen.mirage import disk as D
from miragen.mirage import params as P
from miragen.mirage import sysex as sx


@pytest.fixture(scope="module")
def template() -> bytes:
    return D.synthetic_template()


def _random_image(seed: int, *, with_template_blocks: bool = True) -> bytes:
    """A full-size image of random bytes whose control blocks are the synthetic ones."""
    import random

    rnd = random.Random(seed)
    img = bytearray(rnd.randbytes(D.SIZE))
    if with_template_blocks:
        tpl = D.synthetic_template()
        for s in D.SOUNDS:
            off = D.param_offset(s) + P.CONTROL_OFFSET
            img[off : off + 8 * P.CONTROL_SIZE] = tpl[off : off + 8 * P.CONTROL_SIZE]
    img[:2] = b"\x00\x00"
    return bytes(img)


# ----------------------------------------------------------------- geometry


def test_geometry_table_from_format_md():
    assert D.SIZE == 450560 and D.TRACK_SIZE == 5632
    expected = {
        "lower1": (0x02C00, 0x03000),
        "upper1": (0x14A00, 0x14E00),
        "lower2": (0x26800, 0x26C00),
        "upper2": (0x38600, 0x38A00),
        "lower3": (0x4A400, 0x4A800),
        "upper3": (0x5C200, 0x5C600),
    }
    for s, (param, wave) in expected.items():
        assert D.param_offset(s) == param
        assert D.wave_offset(s, 0) == wave
        assert D.wave_runs(s)[0][1] == wave
    assert D.config_offset() == 0x10600
    assert D.sector_offset(3, 5) == 3 * 5632 + 5120


@pytest.mark.parametrize("sound", D.SOUNDS)
def test_wave_runs_match_formula(sound):
    f = D.SOUND_TRACKS[sound]
    seen = set()
    for k0, off, n in D.wave_runs(sound):
        for k in (k0, k0 + n - 1):
            assert D.wave_offset(sound, k) == off + (k - k0)
            if k < 4096:
                assert off + (k - k0) == f * 5632 + 1024 + k
            else:
                j = k - 4096
                assert off + (k - k0) == f * 5632 + 5632 * (1 + j // 5120) + j % 5120
        seen.update(range(off, off + n))
    assert len(seen) == 65536
    # never sector 5 of any track, never the parameter sector
    for off in seen:
        assert off % 5632 < 5120
        assert off // 5632 != f or off % 5632 >= 1024


def test_areas_do_not_overlap_os_or_config():
    owned = set()
    for s in D.SOUNDS:
        for _k, off, n in D.wave_runs(s):
            r = set(range(off, off + n))
            assert not (r & owned)
            owned |= r
        p = set(range(D.param_offset(s), D.param_offset(s) + 1024))
        assert not (p & owned)
        owned |= p
    for off, n in D.os_regions() + [(D.config_offset(), 512)]:
        assert not (set(range(off, off + n)) & owned)


def test_read_wave_memory_order():
    img = bytearray(D.SIZE)
    for s in D.SOUNDS:
        for k in (0, 1, 4095, 4096, 4097, 9215, 9216, 65535):
            img[D.wave_offset(s, k)] = (k * 7 + D.SOUNDS.index(s)) % 255 + 1
    for s in D.SOUNDS:
        w = D.read_wave(bytes(img), s)
        for k in (0, 1, 4095, 4096, 4097, 9215, 9216, 65535):
            assert w[k] == (k * 7 + D.SOUNDS.index(s)) % 255 + 1


# ----------------------------------------------------------------- parsing


def test_parse_positions_by_hand():
    img = bytearray(D.SIZE)
    img[:4] = b"\x7e\x10\x00\x01"  # an all-zero OS area is refused as implausible
    po = D.param_offset("upper2")
    img[po] = 0xA3
    cb = po + 1 + 24 * 2  # wavesample 3
    img[cb + 8] = 1  # loop on
    img[cb + 9] = 0x11
    img[cb + 10] = 0x22
    img[cb + 11] = 0x33
    img[cb + 12] = 0x44
    img[cb + 13] = 0x55
    img[cb + 14] = 0x66
    img[cb + 15] = 10  # start
    img[cb + 16] = 20  # end (inclusive)
    img[cb + 17] = 12
    img[cb + 18] = 19
    img[cb + 19] = 0x80
    img[cb + 20] = 1
    pp = po + 481 + 36 * 3  # program 4
    img[pp + 4] = 32  # osc mix ×4 → 8
    img[pp + 6] = 100  # cutoff ×2 → 50
    img[pp + 10] = 2  # initial wavesample (0-based)
    img[pp + 22] = 31  # amp attack
    img[pp + 27] = 12  # amp attack velocity ×4 → 3
    for k in range(10 * 256, 21 * 256):
        img[D.wave_offset("upper2", k)] = 0x42
    info = D.parse(bytes(img)).info()
    assert set(info) == {"size", "sounds"} and info["size"] == D.SIZE
    assert list(info["sounds"]) == ["lower1", "upper1", "lower2", "upper2", "lower3", "upper3"]
    s = info["sounds"]["upper2"]
    ws = s["wavesamples"][2]
    assert ws == {
        "number": 3,
        "used": True,
        "start_page": 10,
        "end_page": 20,
        "loop_start_page": 12,
        "loop_end_page": 19,
        "loop_end_fine": 0x80,
        "loop_on": 1,
        "coarse_tune": 0x11,
        "fine_tune": 0x22,
        "top_key": 0x66,
        "relative_amplitude": 0x33,
        "relative_filter": 0x44,
        "max_filter": 0x55,
        "free_run": 1,
    }
    prog = s["programs"][3]
    assert prog["number"] == 4 and prog["osc_mix"] == 32 and prog["panel"]["osc_mix"] == 8
    assert prog["filter_cutoff"] == 100 and prog["panel"]["filter_cutoff"] == 50
    assert prog["initial_wavesample"] == 2 and prog["panel"]["initial_wavesample"] == 3
    assert prog["amp_attack"] == 31 and prog["panel"]["amp_attack_velocity"] == 3
    assert "lfo_freq" in prog and "lfo_freq" not in prog["panel"]
    assert s["param_sha256"] == hashlib.sha256(bytes(img[po : po + 625])).hexdigest()
    wave = D.read_wave(bytes(img), "upper2")
    assert s["wave_sha256"] == hashlib.sha256(wave).hexdigest()
    # unused: end page below start page
    assert s["wavesamples"][0]["used"] is True  # start 0, end 0: one page
    samples = D.training_samples(bytes(img), "disk")
    assert ("disk-upper2-ws3", b"\x42" * (11 * 256)) in samples
    # 6 sounds × 8 blocks all zero → start 0 end 0: used, one page each
    assert len(samples) == 48


def test_unused_wavesample_and_training_samples(template):
    img = bytearray(template)
    cb = D.param_offset("lower1") + 1 + 24 * 4  # ws 5
    img[cb + 15], img[cb + 16] = 9, 8  # end < start → unused
    info = D.parse(bytes(img)).info()
    assert info["sounds"]["lower1"]["wavesamples"][4]["used"] is False
    names = [n for n, _ in D.training_samples(bytes(img), "x")]
    assert len(names) == 47 and "x-lower1-ws5" not in names
    assert all(len(b) == 32 * 256 for _, b in D.training_samples(bytes(img), "x"))


def test_reader_accepts_zero_bytes():
    img = bytearray(D.synthetic_template())
    img[D.wave_offset("lower1", 5)] = 0
    assert D.read_wave(bytes(img), "lower1")[5] == 0
    assert D.training_samples(bytes(img), "z")[0][1][5] == 0


def test_wrong_size_and_ede():
    with pytest.raises(FormatError, match="450,559"):
        D.parse(bytes(D.SIZE - 1))
    with pytest.raises(FormatError, match="EDE"):
        D.parse(b"\x0d\x0a" + bytes(D.SIZE))
    with pytest.raises(FormatError, match="EDE"):
        D.parse(b"\x0d\x0a" + bytes(D.SIZE - 2))


# ----------------------------------------------------------------- synthetic template


def test_synthetic_template(template):
    assert len(template) == D.SIZE and D.is_synthetic(template)
    disk = D.parse(template)
    info = disk.info()
    assert info["synthetic"] is True and "does not boot" in info["note"]
    for s in D.SOUNDS:
        ws = info["sounds"][s]["wavesamples"]
        assert [(w["start_page"], w["end_page"]) for w in ws] == [
            (32 * i, 32 * i + 31) for i in range(8)
        ]
        assert all(w["used"] for w in ws)
        assert D.read_wave(template, s) == b"\x80" * 65536
    # the OS area holds nothing but the marker
    assert template[len(D.SYNTHETIC_MARKER) : 2 * 5632] == bytes(2 * 5632 - len(D.SYNTHETIC_MARKER))
    assert not D.is_synthetic(_random_image(1))


# ----------------------------------------------------------------- writing


def _outside_writable_equal(a: bytes, b: bytes) -> bool:
    mask = bytearray(b"\x01" * D.SIZE)
    for off, n in D.writable_ranges():
        mask[off : off + n] = bytes(n)
    return all(x == y for x, y, m in zip(a, b, mask) if m)


@settings(max_examples=12, deadline=None)
@given(
    st.sampled_from(D.SOUNDS),
    st.integers(1, 8),
    st.integers(1, 32 * 256).flatmap(
        lambda n: st.binary(min_size=n, max_size=n).map(lambda b: bytes(x or 1 for x in b))
    ),
    st.integers(0, 3),
)
def test_write_read_round_trip(sound, number, data, seed):
    img = _random_image(seed)
    out, report = D.write_wavesample(img, sound, number, data)
    assert len(out) == D.SIZE
    wave = D.read_wave(out, sound)
    start = 32 * (number - 1) * 256
    assert wave[start : start + len(data)] == data
    assert wave[start + len(data) : start + 32 * 256] == b"\x80" * (32 * 256 - len(data))
    assert report["unused"] == 32 * 256 - len(data) and report["capacity"] == 8192
    # everything outside this wavesample's pages is unchanged
    old = D.read_wave(img, sound)
    assert wave[:start] == old[:start] and wave[start + 8192 :] == old[start + 8192 :]
    changed = [i for i in range(D.SIZE) if out[i] != img[i]]
    allowed = {D.wave_offset(sound, k) for k in range(start, start + 8192)}
    assert set(changed) <= allowed
    ws = D.training_samples(out, "t")
    assert (f"t-{sound}-ws{number}", data + b"\x80" * (8192 - len(data))) in ws


def test_write_wave_area_and_program_only_touch_their_bytes(template):
    img = _random_image(7)
    data = bytes((i % 255) + 1 for i in range(40000))
    out, rep = D.write_wave_area(img, "upper3", data)
    assert D.read_wave(out, "upper3") == data + b"\x80" * (65536 - 40000)
    assert rep["unused"] == 65536 - 40000
    out = D.set_program_field(out, "lower2", 2, "filter_cutoff", 77)
    assert D.parse(out).info()["sounds"]["lower2"]["programs"][1]["filter_cutoff"] == 77
    assert _outside_writable_equal(img, out)
    # parameter block: only the one byte changed
    po = D.param_offset("lower2")
    diff = [i for i in range(po, po + 1024) if out[i] != img[i]]
    assert diff == [po + 481 + 36 + 6]


def test_write_refusals(template):
    with pytest.raises(FormatError, match="0x00"):
        D.write_wavesample(template, "lower1", 1, b"\x80\x00")
    with pytest.raises(FormatError, match="do not fit"):
        D.write_wavesample(template, "lower1", 1, b"\x80" * (8192 + 1))
    with pytest.raises(FormatError, match="at most"):
        D.write_wave_area(template, "lower1", b"\x80" * 65537)
    with pytest.raises(FormatError, match="0x00"):
        D.write_wave_area(template, "lower1", b"\x00")
    with pytest.raises(FormatError, match="unknown sound"):
        D.write_wave_area(template, "middle1", b"\x80")
    with pytest.raises(FormatError, match="450,560"):
        D.write_wavesample(template[:-1], "lower1", 1, b"\x80")
    with pytest.raises(FormatError, match="unknown program field"):
        D.set_program_field(template, "lower1", 1, "wobble", 3)
    with pytest.raises(FormatError, match="1..4"):
        D.set_program_field(template, "lower1", 5, "osc_mix", 3)
    img = bytearray(template)
    cb = D.param_offset("lower1") + 1
    img[cb + 15], img[cb + 16] = 5, 4
    with pytest.raises(FormatError, match="unused"):
        D.write_wavesample(bytes(img), "lower1", 1, b"\x80")


def test_loop_warning(template):
    img = bytearray(template)
    cb = D.param_offset("lower1") + 1
    img[cb + 8] = 1  # loop on; loop end page 31
    _, rep = D.write_wavesample(bytes(img), "lower1", 1, b"\x90" * 512)
    assert rep["warnings"] and "loop end page 31" in rep["warnings"][0]


def test_program_dump_matches_disk_block(template):
    """The 625-byte block on disk is the program dump payload."""
    block = D.read_param_block(template, "upper1")
    m = sx.decode(sx.encode_program_dump(block, upper=True))
    assert m.data == block
    assert m.fields["wavesamples"] == D.parse(template).info()["sounds"]["upper1"]["wavesamples"]


# ----------------------------------------------------------------- parameter block codec


@settings(max_examples=40, deadline=None)
@given(
    st.binary(min_size=625, max_size=625),
    st.integers(1, 4),
    st.sampled_from(sorted(P.PROGRAM_FIELDS)),
    st.integers(0, 255),
)
def test_params_parse_and_set_round_trip(block, program, name, value):
    sp = P.parse_sound_params(block)
    assert sp.revision == block[0]
    for w in sp.wavesamples:
        base = 1 + 24 * (w.number - 1)
        d = w.to_dict()
        for f, off in P.CONTROL_FIELDS.items():
            assert d[f] == block[base + off]
        assert d["used"] == (block[base + 16] >= block[base + 15])
    for p in sp.programs:
        d = p.to_dict()
        for f, (off, scale) in P.PROGRAM_FIELDS.items():
            assert d[f] == block[481 + 36 * (p.number - 1) + off]
            if scale and f != "initial_wavesample":
                assert d["panel"][f] == d[f] // scale
    new = P.set_program_field(block, program, name, value)
    diff = [i for i in range(625) if new[i] != block[i]]
    assert diff in ([], [481 + 36 * (program - 1) + P.PROGRAM_FIELDS[name][0]])
    assert P.parse_sound_params(new).programs[program - 1].stored()[name] == value


def test_params_wrong_size():
    with pytest.raises(FormatError, match="625"):
        P.parse_sound_params(bytes(624))
