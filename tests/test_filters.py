"""Biquad kernels against an independent float64 cookbook reference (scipy.signal.sosfilt)."""

import numpy as np
import pytest
from scipy import signal

import rt_kernels as rk
from tests.conftest import BLOCK_SIZES, FLT_MIN, in_blocks, noise, subnormal_count
from tests.cookbook import rbj, response

RATES = (44100, 48000, 96000)

# (kind, f0, q, gain_db, slope): each filter type, plus low-frequency cases where a
# float32 filter state would be far off the -100 dB bar.
CASES = [
    ("peaking", 1000.0, 1.4, 6.0, None),
    ("peaking", 60.0, 0.7, -9.0, None),
    ("low_shelf", 120.0, 0.7071, 4.5, None),
    ("low_shelf", 200.0, 0.7071, -6.0, 1.0),
    ("high_shelf", 6000.0, 0.7071, 3.0, None),
    ("high_shelf", 8000.0, 0.7071, -4.0, 0.5),
    ("low_pass", 2000.0, 0.7071, 0.0, None),
    ("high_pass", 30.0, 0.7071, 0.0, None),
    ("band_pass", 1500.0, 2.0, 0.0, None),
    ("notch", 3000.0, 4.0, 0.0, None),
    ("all_pass", 800.0, 0.9, 0.0, None),
]
IDS = [f"{c[0]}-{c[1]:g}Hz" + ("-slope" if c[4] else "") for c in CASES]


def make_section(kind, f0, q, gain_db, slope):
    return rk.Section(kind, f0, q=q, gain_db=gain_db, shelf_slope=slope)


def db_error(actual: np.ndarray, reference: np.ndarray) -> float:
    err = np.sqrt(np.mean((actual.astype(np.float64) - reference) ** 2))
    return 20 * np.log10(err / np.sqrt(np.mean(reference ** 2)))


@pytest.mark.parametrize("fs", RATES)
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_filter_matches_float64_reference(case, fs, rng):
    x = noise(rng, 2, fs)  # one second of stereo noise
    kernel = rk.BiquadCascade([make_section(*case)], channels=2, sample_rate=fs)
    y = kernel.process(x)
    sos = rbj(case[0], fs, case[1], case[2], case[3], case[4])[None, :]
    ref = signal.sosfilt(sos, x.astype(np.float64), axis=1)
    assert db_error(y, ref) < -100.0


@pytest.mark.parametrize("fs", RATES)
@pytest.mark.parametrize("count", (2, 5, len(CASES)))
def test_cascade_matches_float64_reference(fs, count, rng):
    x = noise(rng, 3, fs // 2)
    cases = CASES[:count]
    kernel = rk.BiquadCascade([make_section(*c) for c in cases], channels=3, sample_rate=fs)
    sos = np.stack([rbj(c[0], fs, c[1], c[2], c[3], c[4]) for c in cases])
    ref = signal.sosfilt(sos, x.astype(np.float64), axis=1)
    assert db_error(kernel.process(x), ref) < -100.0


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_c_coefficients_equal_the_cookbook(case):
    fs = 48000
    ours = make_section(*case).coefficients(fs)
    ref = rbj(case[0], fs, case[1], case[2], case[3], case[4])
    np.testing.assert_allclose(ours, np.delete(ref, 3), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("fs", RATES)
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_magnitude_response_at_20_frequencies(case, fs):
    kernel = rk.BiquadCascade([make_section(*case)], channels=1, sample_rate=fs)
    impulse = np.zeros((1, 4 * fs), dtype=np.float32)
    impulse[0, 0] = 1.0
    h = kernel.process(impulse)[0].astype(np.float64)
    assert np.all(np.abs(h[-fs // 10:]) < 1e-9), "impulse response did not decay inside the window"
    freqs = np.geomspace(20.0, 0.45 * fs, 20)
    n = np.arange(h.size)
    realized = np.array([np.abs(np.sum(h * np.exp(-2j * np.pi * f * n / fs))) for f in freqs])
    expected = np.abs(response(rbj(case[0], fs, case[1], case[2], case[3], case[4]), freqs, fs))
    audible = expected > 1e-3  # compare in dB where the response is above -60 dB
    np.testing.assert_array_less(np.abs(20 * np.log10(realized[audible] / expected[audible])), 0.01)
    np.testing.assert_array_less(np.abs(realized[~audible] - expected[~audible]), 1e-5)


@pytest.mark.parametrize("count", (1, 3, 4))  # a lone section, a pair plus a lone one, two pairs
@pytest.mark.parametrize("size", BLOCK_SIZES)
def test_block_size_invariance_is_bit_exact(size, count, rng):
    sections = [make_section(*c) for c in CASES[:count]]
    x = noise(rng, 2, 20000)
    whole = rk.BiquadCascade(sections, 2, 48000).process(x)
    split = in_blocks(rk.BiquadCascade(sections, 2, 48000).process, x, size)
    assert np.array_equal(whole, split)


@pytest.mark.parametrize("frames", (0, 1, 7, 64))
def test_frames_out_equal_frames_in(frames, rng):
    kernel = rk.BiquadCascade([make_section(*CASES[0])], 2, 48000)
    assert kernel.process(noise(rng, 2, frames)).shape == (2, frames)


def test_resonant_filter_rings_out_without_subnormals():
    fs = 48000
    kernel = rk.BiquadCascade([rk.Section("peaking", 1000.0, q=50.0, gain_db=24.0),
                               rk.Section("band_pass", 1000.0, q=40.0)], 2, fs)
    x = np.zeros((2, 10 * fs + 1), dtype=np.float32)
    x[:, 0] = 1.0
    y = np.concatenate([kernel.process(np.ascontiguousarray(x[:, i:i + 4096]))
                        for i in range(0, x.shape[1], 4096)], axis=1)
    assert np.max(np.abs(y[:, :fs // 10])) > 1e-3, "the filter should ring"
    assert subnormal_count(y) == 0
    state = kernel.state_snapshot()
    # Every state value is zero or a normal float32: none would be subnormal once narrowed.
    assert np.all((state == 0) | (np.abs(state) >= FLT_MIN)), state[(state != 0) & (np.abs(state) < FLT_MIN)]
    assert np.all(state == 0), "10 s of silence after an impulse must leave no residue"


def test_section_change_takes_effect_and_keeps_running(rng):
    fs = 48000
    kernel = rk.BiquadCascade([rk.Section("peaking", 1000.0, q=1.0, gain_db=0.0)], 1, fs)
    t = np.arange(fs) / fs
    tone = (0.1 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)[None, :]
    before = kernel.process(tone)
    kernel.set_section(0, rk.Section("peaking", 1000.0, q=1.0, gain_db=12.0))
    after = kernel.process(tone)
    rms = lambda v: np.sqrt(np.mean(v[0, fs // 2:].astype(np.float64) ** 2))
    assert 20 * np.log10(rms(after) / rms(before)) == pytest.approx(12.0, abs=0.01)
    assert kernel.sections[0].gain_db == 12.0
