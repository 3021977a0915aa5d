"""bench/synth_banks.py: six single-cycle banks modelled on instruments, not taken from the
shared banks; valid 8-bit cycles, the same bytes for the same seed, other bytes for another."""

import json

import numpy as np
import pytest
from conftest import load_bench
from miragen.corpus.dataset import load_dataset


def test_banks_are_valid_reproducible_8bit_cycles(tmp_path, capsys):
    sb = load_bench("synth_banks")
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    assert sb.main(["--out", str(a), "--scale", "0.2"]) == 0
    report = json.loads(capsys.readouterr().out)
    sizes = {f"synth_{k}": max(8, round(v * 0.2)) for k, v in sb.SIZES.items()}
    assert report["banks"] == sizes
    sb.main(["--out", str(b), "--scale", "0.2"])
    sb.main(["--out", str(c), "--scale", "0.2", "--seed", "1"])
    for bank, n in sizes.items():
        files = sorted((a / bank).glob("*.pcm"))
        assert len(files) == n
        data = [f.read_bytes() for f in files]
        keys = {sb.rotation_key(np.frombuffer(d, np.uint8)) for d in data}
        assert len(keys) == n  # each cycle once, wherever it starts
        u8 = np.frombuffer(b"".join(data), np.uint8)
        assert len(u8) == 256 * n and u8.min() >= 1  # 256 points, no 0x00 byte
        assert data == [(b / bank / f.name).read_bytes() for f in files]  # same seed: same bytes
        assert data != [(c / bank / f.name).read_bytes() for f in files]  # another seed: others
        ds = load_dataset(a / bank, "cycle")  # read as one class of single cycles
        assert sum(len(w) for w in ds.classes.values()) == n


def test_the_families_are_the_instruments_they_model():
    sb = load_bench("synth_banks")
    rng = np.random.default_rng(0)
    drawbars = {1, 2, 3, 4, 6, 8, 10, 12, 16}
    for _ in range(20):
        mag = np.abs(np.fft.rfft(sb.organ(rng)))
        assert set(np.nonzero(mag > 1e-6 * mag.max())[0].tolist()) <= drawbars
    pulses = [x for x in (sb.game(rng) for _ in range(60)) if len(np.unique(x)) == 2]
    assert pulses and all((np.mean(x > 0) * 32) % 1 == 0 for x in pulses)  # duty in 32nds
    u8 = sb.to_u8(sb.game(rng))
    assert sb.rotation_key(np.roll(u8, 77)) == sb.rotation_key(u8)


def test_a_folder_of_another_size_is_refused_not_mixed(tmp_path):
    sb = load_bench("synth_banks")
    sb.main(["--out", str(tmp_path), "--scale", "0.2"])
    with pytest.raises(SystemExit, match="files this run would not write"):
        sb.main(["--out", str(tmp_path), "--scale", "0.1"])


def test_the_filers_banks_keep_their_bytes_and_three_more_kinds_stand_beside_them(tmp_path, capsys):
    """The six banks the results name are pinned (seed 0, a fifth of the sizes: the same bytes
    as when they were run); ``--kinds more`` writes strings, brass and pluck, valid and distinct,
    and leaves the six alone."""
    import hashlib

    sb = load_bench("synth_banks")
    sb.main(["--out", str(tmp_path / "f"), "--scale", "0.2"])
    files = sorted((tmp_path / "f").glob("*/*.pcm"))
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()
    assert digest == "672a600b32a4d28925c6533186645450c4784fde7d3f1cc383e2396f7d660e42"
    capsys.readouterr()
    assert sb.main(["--out", str(tmp_path / "m"), "--kinds", "more", "--scale", "0.2"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["banks"] == {f"synth_{k}": max(8, round(v * 0.2)) for k, v in sb.MORE.items()}
    for bank, n in report["banks"].items():
        data = [f.read_bytes() for f in sorted((tmp_path / "m" / bank).glob("*.pcm"))]
        assert len(data) == n and all(len(d) == 256 and 0 not in d for d in data)
        assert len({sb.rotation_key(np.frombuffer(d, np.uint8)) for d in data}) == n
