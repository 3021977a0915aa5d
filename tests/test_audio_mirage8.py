"""The Mirage 8-bit rules (property tests) and the resampler."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from miragen.audio.mirage8 import (
    COARSE_LEVELS,
    SILENCE_PEAK,
    check_mirage8,
    pad_to_pages,
    prepare,
    to_mirage8,
)
from miragen.audio.resample import ratio, resample
from miragen.errors import FormatError, InputError

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

floats = st.floats(-1.0, 1.0, allow_nan=False, allow_infinity=False, width=32)
signals = arrays(np.float32, st.integers(1, 3000), elements=floats)


def _freq(y: np.ndarray, rate: float) -> float:
    """Frequency of the strongest component, refined by parabolic interpolation."""
    w = np.hanning(len(y))
    mag = np.abs(np.fft.rfft(y * w, 8 * len(y)))
    k = int(np.argmax(mag[1:-1])) + 1
    a, b, c = np.log(mag[k - 1 : k + 2] + 1e-30)
    k = k + 0.5 * (a - c) / (a - 2 * b + c)
    return k * rate / (8 * len(y))


# --------------------------------------------------------------------------- properties


@FAST
@given(x=signals, dither=st.sampled_from(["tpdf", "none"]), seed=st.integers(0, 2**32 - 1))
def test_to_mirage8_never_zero_and_in_range(x, dither, seed):
    u = to_mirage8(x, dither=dither, rng=np.random.default_rng(seed))
    assert u.dtype == np.uint8 and len(u) == len(x)
    assert u.min() >= 1


@FAST
@given(
    x=arrays(np.float32, st.integers(1, 9000), elements=floats),
    rate=st.sampled_from([8000, 22050, 29411, 44100, 48000]),
    max_pages=st.integers(1, 40),
    dither=st.sampled_from(["tpdf", "none"]),
)
def test_prepare_whole_pages_no_zero_within_limit(x, rate, max_pages, dither):
    max_bytes = max_pages * 256
    p = prepare(x, rate, max_bytes=max_bytes, dither=dither)
    check_mirage8(p.data, max_bytes=max_bytes)  # whole pages, ≥ 1 page, no 0x00, ≤ limit
    assert len(p.data) % 256 == 0 and 0 < len(p.data) <= max_bytes
    assert 0x00 not in p.data
    expected = len(resample(x, rate, 29411)) if rate != 29411 else len(x)
    assert p.samples == min(max(expected, 1), max_bytes)
    assert len(p.data) == -(-p.samples // 256) * 256
    assert p.cut == (expected > max_bytes)
    assert all(b == 0x80 for b in p.data[p.samples :])  # padding is the centre line


@FAST
@given(
    f=st.floats(20.0, 3000.0),
    phase=st.floats(0, 6.28),
    n=st.integers(300, 6000),
    dither=st.sampled_from(["tpdf", "none"]),
)
def test_no_wraparound_full_scale_sine_keeps_its_sign_pattern(f, phase, n, dither):
    x = np.sin(2 * np.pi * f * np.arange(n) / 29411 + phase)
    u = to_mirage8(x, dither=dither).astype(int) - 128
    y = x - x.mean()
    y = y / np.max(np.abs(y))
    big = np.abs(y) > 0.05
    assert np.all(np.sign(u[big]) == np.sign(y[big]))
    assert np.max(np.abs(u - 126 * y)) <= 2  # nothing folds over at the peaks


@FAST
@given(x=arrays(np.float64, st.integers(2, 2000), elements=st.floats(-1, 1, allow_nan=False)))
def test_quantiser_is_monotonic_without_dither(x):
    u = to_mirage8(x, dither="none")
    order = np.argsort(x, kind="stable")
    assert np.all(np.diff(u[order].astype(int)) >= 0)


@FAST
@given(
    f=st.floats(0.02, 0.4),
    rates=st.sampled_from(
        [
            (44100, 29411),
            (48000, 29411),
            (96000, 29411),
            (192000, 29411),
            (22050, 29411),
            (8000, 29411),
            (29411, 44100),
            (11025, 29411),
        ]
    ),
)
def test_resampling_keeps_a_sines_frequency(f, rates):
    src, dst = rates
    hz = f * min(src, dst)  # below both Nyquist frequencies (≤ 0.4 × the lower rate)
    n = int(0.25 * src)
    x = np.sin(2 * np.pi * hz * np.arange(n) / src)
    y = resample(x, src, dst)
    assert len(y) == pytest.approx(n * dst / src, abs=1.5)
    assert _freq(y, dst) == pytest.approx(hz, rel=2e-4, abs=0.5)
    mid = y[len(y) // 4 : 3 * len(y) // 4]
    assert np.sqrt(2 * np.mean(mid**2)) == pytest.approx(1.0, abs=0.02)  # passband gain


# --------------------------------------------------------------------------- resampler


@pytest.mark.parametrize(
    "src,tone", [(44100, 20000.0), (44100, 16500.0), (96000, 30000.0), (192000, 80000.0)]
)
def test_content_above_new_nyquist_is_attenuated(src, tone):
    x = np.sin(2 * np.pi * tone * np.arange(src // 4) / src)
    y = resample(x, src, 29411)
    mid = y[len(y) // 4 : 3 * len(y) // 4]
    assert 20 * np.log10(np.sqrt(2 * np.mean(mid**2)) + 1e-12) < -60


def test_resample_identity_and_shapes():
    x = np.linspace(-1, 1, 100)
    assert np.array_equal(resample(x, 29411, 29411), x.astype(np.float32))
    assert resample(np.zeros(0), 44100, 29411).shape == (0,)
    assert resample(np.ones(1), 44100, 29411).dtype == np.float32
    with pytest.raises(ValueError):
        resample(np.zeros((2, 2)), 44100, 29411)
    with pytest.raises(ValueError):
        ratio(0, 29411)
    up, down = ratio(44100, 29411)
    assert abs(up / down / (29411 / 44100) - 1) < 1e-6
    assert ratio(44100, 22050) == (1, 2)


def test_resample_is_aligned_no_delay():
    n = 4000
    x = np.zeros(n)
    x[2000] = 1.0
    y = resample(x, 44100, 29411)
    assert abs(int(np.argmax(y)) - 2000 * 29411 / 44100) <= 1


# --------------------------------------------------------------------------- quantiser


def test_full_scale_reaches_1_and_255_but_never_0():
    x = np.sin(2 * np.pi * np.arange(256) / 256)
    u = to_mirage8(x, dither="none")
    assert u.min() == 1 and u.max() == 255
    u = to_mirage8(np.concatenate([-np.ones(10), np.ones(10)]), dither="none")
    assert set(u.tolist()) == {1, 255}


def test_dc_removed_and_peak_normalised():
    x = 0.3 + 0.01 * np.sin(2 * np.pi * np.arange(1000) / 100)
    u = to_mirage8(x, dither="none").astype(int)
    assert abs(u.mean() - 128) < 0.6
    assert u.max() == 255 and u.min() == 1


def test_silence_and_near_silence_stay_flat():
    for x in (
        np.zeros(500),
        np.full(500, 0.7),
        0.5 + 1e-6 * np.random.default_rng(0).standard_normal(500),
    ):
        for dither in ("tpdf", "none"):
            assert np.all(to_mirage8(x, dither=dither) == 0x80)
    p = prepare(np.zeros(1000), 44100)
    assert p.silent and set(p.data) == {0x80} and any("silent" in w for w in p.warnings)
    quiet = (
        SILENCE_PEAK * 3 * np.sin(2 * np.pi * np.arange(1000) / 50)
    )  # quiet but real: normalised
    assert to_mirage8(quiet, dither="none").max() == 255


def test_dither_is_tpdf_and_reproducible():
    # sets the peak; the rest is 0.25 − mean, with sub-LSB detail (so it is not a coarse signal)
    x = np.full(20000, 0.25) + 1e-7 * np.arange(20000)
    x[0] = 1.0
    a = to_mirage8(x, dither="tpdf", rng=np.random.default_rng(5)).astype(int)
    b = to_mirage8(x, dither="tpdf", rng=np.random.default_rng(5)).astype(int)
    assert np.array_equal(a, b)
    assert np.array_equal(to_mirage8(x), to_mirage8(x))  # default: fixed seed
    body = a[1:]
    assert 1 < len(set(body.tolist())) <= 3  # ±1 LSB around the true value
    none = to_mirage8(x, dither="none").astype(int)[1:]
    assert len(set(none.tolist())) == 1
    with pytest.raises(ValueError):
        to_mirage8(x, dither="rectangular")


def test_a_coarse_signal_keeps_its_levels_undithered():
    """A 4-bit stepped table (16 levels, 8 samples each) keeps one code per level under the
    default TPDF dither: dithering it would only turn its flat steps into hiss."""
    rng = np.random.default_rng(1)
    table = np.repeat(rng.integers(0, 16, 32), 8) / 7.5 - 1.0
    u8 = to_mirage8(table, rng=np.random.default_rng(2)).astype(int)
    assert len(set(u8.tolist())) == len(set(table.tolist()))
    assert np.array_equal(u8, to_mirage8(table, dither="none").astype(int))
    assert np.all(np.diff(u8.reshape(32, 8), axis=1) == 0)  # every step flat
    # one value more than COARSE_LEVELS: dithered again
    fine = np.linspace(-1.0, 1.0, COARSE_LEVELS + 1).repeat(4)
    assert not np.array_equal(to_mirage8(fine), to_mirage8(fine, dither="none"))


def test_pad_to_pages():
    assert len(pad_to_pages(np.ones(1, np.uint8))) == 256
    assert len(pad_to_pages(b"\x01" * 256)) == 256
    p = pad_to_pages(np.full(300, 7, np.uint8))
    assert len(p) == 512 and p[299] == 7 and np.all(p[300:] == 0x80)
    assert len(pad_to_pages(np.zeros(0, np.uint8))) == 0


def test_check_mirage8_rules():
    check_mirage8(b"\x80" * 256)
    check_mirage8(b"\x01" * 65536)
    for bad, why in [(b"", "empty"), (b"\x80" * 255, "whole number"), (b"\x80" * 65792, "limit")]:
        with pytest.raises(FormatError, match=why):
            check_mirage8(bad)
    with pytest.raises(FormatError) as ei:
        check_mirage8(b"\x80" * 100 + b"\x00" + b"\x80" * 155)
    assert ei.value.offset == 100


def test_long_input_is_cut_with_fade_and_warning():
    x = np.sin(2 * np.pi * 440 * np.arange(100000) / 29411)
    p = prepare(x, 29411, max_bytes=4096, dither="none", fade_ms=10)
    assert p.cut and len(p.data) == 4096 and p.samples == 4096
    assert any("cut" in w and "fade-out" in w for w in p.warnings)
    u = np.frombuffer(p.data, np.uint8).astype(int) - 128
    assert abs(u[-1]) <= 1  # faded to the centre line
    assert np.max(np.abs(u[-20:])) < 0.1 * np.max(np.abs(u[:-400]))
    assert np.max(np.abs(u[:-400])) >= 126


def test_strict_refuses_long_input():
    x = np.zeros(70000)
    x[::7] = 0.5
    with pytest.raises(InputError, match="too long") as ei:
        prepare(x, 29411, strict=True, source="long.wav")
    assert ei.value.path == "long.wav"
    assert not prepare(x[:65536], 29411, strict=True).cut  # exactly the limit is fine


def test_prepare_bad_input():
    with pytest.raises(InputError, match="0 samples"):
        prepare(np.zeros(0), 29411)
    with pytest.raises(InputError, match="NaN"):
        prepare(np.array([0.0, np.nan]), 29411)
    with pytest.raises(InputError, match="below one"):
        prepare(np.ones(10), 29411, max_bytes=100)
    stereo = np.stack([np.sin(np.arange(600) / 10), np.sin(np.arange(600) / 10)], axis=1)
    assert len(prepare(stereo, 29411).data) == 768


def test_prepare_resamples_to_target_rate():
    x = np.sin(2 * np.pi * 1000 * np.arange(44100) / 44100)
    p = prepare(x, 44100, target_rate=29411, max_bytes=65536, dither="none")
    assert p.samples == 29411 and p.rate == 29411
    y = np.frombuffer(p.data, np.uint8)[: p.samples].astype(float) - 128
    assert _freq(y, 29411) == pytest.approx(1000, rel=1e-4)
