"""Psychoacoustic EQ: band table, analysis, masking/targets, the C cascade and the
offline linear-phase mode, each against references computed here (DFTs of impulse
responses, analytic noise spectra, cookbook coefficients)."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rt_kernels.psy_eq import (
    BAND_CENTRES_HZ,
    BAND_EDGES_HZ,
    BAND_Q,
    BANDS,
    BandAnalyzer,
    PsychoacousticEQ,
    adaptive_gains_db,
    analyze_bands,
    linear_phase_eq,
    linear_phase_fir,
)
from scipy import signal

from tests.conftest import BLOCK_SIZES, in_blocks, noise, subnormal_count
from tests.cookbook import rbj

RATES = (44100, 48000)
# Zwicker & Terhardt's critical-band edges from 20 Hz, plus 15.5-20 kHz.
ZWICKER_EDGES = [20, 100, 200, 300, 400, 510, 630, 770, 920, 1080, 1270, 1480, 1720, 2000,
                 2320, 2700, 3150, 3700, 4400, 5300, 6400, 7700, 9500, 12000, 15500, 20000]


def response_db_at(h: np.ndarray, freqs: np.ndarray, fs: float) -> np.ndarray:
    """|DFT| in dB of an impulse response at arbitrary frequencies."""
    n = np.arange(h.size)
    return np.array([20 * np.log10(abs(np.sum(h * np.exp(-2j * np.pi * f * n / fs)))) for f in freqs])


def impulse_response(eq: PsychoacousticEQ, frames: int) -> np.ndarray:
    impulse = np.zeros((1, frames), dtype=np.float32)
    impulse[0, 0] = 1.0
    eq.reset()
    return eq.process(impulse)[0].astype(np.float64)


def realized_centre_db(eq: PsychoacousticEQ, fs: float) -> np.ndarray:
    h = impulse_response(eq, fs // 2)
    assert np.max(np.abs(h[-fs // 20:])) < 1e-7, "impulse response did not decay inside half a second"
    return response_db_at(h, BAND_CENTRES_HZ[: eq.active_bands], fs)


def white(rng, fs, seconds, sigma, channels=2):
    return (sigma * rng.standard_normal((channels, int(fs * seconds)))).astype(np.float32)


def pink(rng, fs, seconds, scale):
    """Noise whose one-sided PSD is scale**2 * (2 / fs) * (1000 / f): shaped in the frequency domain."""
    w = rng.standard_normal(int(fs * seconds))
    f = np.fft.rfftfreq(w.size, 1 / fs)
    shape = np.zeros_like(f)
    shape[1:] = np.sqrt(1000.0 / f[1:])
    return (scale * np.fft.irfft(np.fft.rfft(w) * shape, w.size))[None, :].astype(np.float32)


# --- band table -------------------------------------------------------------------

def test_band_table_is_zwicker_from_20_hz():
    assert BAND_EDGES_HZ.size == BANDS + 1 == 26
    np.testing.assert_array_equal(BAND_EDGES_HZ, ZWICKER_EDGES)
    assert BAND_EDGES_HZ[0] == 20.0 and BAND_EDGES_HZ[-1] <= 20000.0
    assert np.all(np.diff(BAND_EDGES_HZ) > 0)
    assert np.all(BAND_CENTRES_HZ > 0)
    assert np.all((BAND_CENTRES_HZ > BAND_EDGES_HZ[:-1]) & (BAND_CENTRES_HZ < BAND_EDGES_HZ[1:]))
    np.testing.assert_allclose(BAND_CENTRES_HZ, np.sqrt(BAND_EDGES_HZ[:-1] * BAND_EDGES_HZ[1:]))


@pytest.mark.parametrize("fs, active", [(44100, 25), (48000, 25), (96000, 25), (32000, 24), (22050, 22), (8000, 17)])
def test_bands_below_nyquist_are_active(fs, active):
    eq = PsychoacousticEQ(1, fs)
    assert eq.active_bands == active
    assert BAND_EDGES_HZ[active] < fs / 2 and (active == BANDS or BAND_EDGES_HZ[active + 1] >= fs / 2)


# --- the minimum-phase cascade ------------------------------------------------------

@pytest.mark.parametrize("fs", RATES)
def test_random_commands_are_realized_at_band_centres(fs):
    rng = np.random.default_rng(fs)
    eq = PsychoacousticEQ(1, fs)
    worst = 0.0
    for _ in range(100):
        command = rng.uniform(-12, 12, BANDS)
        eq.set_gains_db(command, immediate=True)
        worst = max(worst, np.max(np.abs(realized_centre_db(eq, fs) - command)))
    assert worst < 0.5


EXTREMES = {
    "all+12": np.full(BANDS, 12.0),
    "all-12": np.full(BANDS, -12.0),
    "alternating+-12": np.where(np.arange(BANDS) % 2 == 0, 12.0, -12.0),
    "alternating-+12": np.where(np.arange(BANDS) % 2 == 0, -12.0, 12.0),
    "single+12": np.where(np.arange(BANDS) == 12, 12.0, 0.0),
    "step": np.where(np.arange(BANDS) < 12, -12.0, 12.0),
}


@pytest.mark.parametrize("fs", RATES)
@pytest.mark.parametrize("name", EXTREMES)
def test_extreme_commands_are_realized(fs, name):
    command = EXTREMES[name]
    eq = PsychoacousticEQ(1, fs, command)
    np.testing.assert_allclose(realized_centre_db(eq, fs), command, atol=0.5)


def test_zero_command_is_transparent(rng):
    eq = PsychoacousticEQ(2, 48000)
    x = noise(rng, 2, 4096)
    np.testing.assert_array_equal(eq.process(x), x)


@pytest.mark.parametrize("fs", (8000, 32000))
def test_low_rates_realize_active_bands_and_ignore_the_rest(fs):
    eq = PsychoacousticEQ(1, fs)
    command = np.random.default_rng(3).uniform(-12, 12, BANDS)
    eq.set_gains_db(command)
    n = eq.active_bands
    np.testing.assert_allclose(realized_centre_db(eq, fs), command[:n], atol=0.5)
    np.testing.assert_array_equal(eq.section_gains_db()[n:], 0.0)


def test_sections_are_cookbook_peaking_filters_on_the_bands():
    fs = 44100
    eq = PsychoacousticEQ(1, fs, np.random.default_rng(5).uniform(-12, 12, BANDS))
    section_gains = eq.section_gains_db()
    reference = np.stack([rbj("peaking", fs, f0, q, g) for f0, q, g in zip(BAND_CENTRES_HZ, BAND_Q, section_gains)])
    np.testing.assert_allclose(eq.sos(), reference, rtol=1e-12, atol=1e-14)
    # Q puts the half-gain points on the band edges (analog prototype): fc / bandwidth.
    np.testing.assert_allclose(BAND_Q, BAND_CENTRES_HZ / np.diff(BAND_EDGES_HZ))


def test_minimum_phase_zero_latency():
    eq = PsychoacousticEQ(1, 48000, EXTREMES["alternating+-12"])
    assert eq.latency_frames == 0
    zeros = np.concatenate([np.roots(row[:3]) for row in eq.sos()])
    poles = np.concatenate([np.roots(row[3:]) for row in eq.sos()])
    assert np.all(np.abs(zeros) < 1) and np.all(np.abs(poles) < 1)


@pytest.mark.parametrize("size", BLOCK_SIZES)
def test_block_size_invariance(size, rng):
    eq = PsychoacousticEQ(2, 44100, rng.uniform(-12, 12, BANDS))
    x = noise(rng, 2, 9000)
    whole = eq.process(x)
    eq.reset()
    assert np.array_equal(in_blocks(eq.process, x, size), whole)


def test_gain_change_between_blocks_is_glitch_free_and_finite(rng):
    eq = PsychoacousticEQ(2, 44100)
    x = noise(rng, 2, 44100)
    out = []
    for i in range(0, x.shape[1], 512):
        eq.set_gains_db(rng.uniform(-12, 12, BANDS))
        out.append(eq.process(np.ascontiguousarray(x[:, i:i + 512])))
    y = np.concatenate(out, axis=1)
    assert np.all(np.isfinite(y)) and np.max(np.abs(y)) < 40 * np.max(np.abs(x))


def test_gain_ramp_reaches_the_solved_gains_linearly():
    fs, command = 48000, EXTREMES["alternating+-12"]
    solved = PsychoacousticEQ(1, fs, command).section_gains_db()
    eq = PsychoacousticEQ(1, fs, ramp_ms=20.0)
    eq.set_gains_db(command)
    assert eq.ramp_frames_left == 960
    x = np.zeros((1, 480), dtype=np.float32)
    eq.process(x)
    np.testing.assert_allclose(eq.section_gains_db(), 0.5 * solved, atol=1e-12)  # halfway, linear in dB
    eq.process(x)
    assert eq.ramp_frames_left == 0
    np.testing.assert_array_equal(eq.section_gains_db(), solved)
    np.testing.assert_allclose(realized_centre_db(eq, fs), command, atol=0.5)


def test_gain_ramp_avoids_the_click_of_a_coefficient_jump():
    fs = 48000
    x = (0.5 * np.sin(2 * np.pi * 200 * np.arange(fs) / fs))[None, :].astype(np.float32)
    roughness = {}
    for ramp_ms in (0.0, 20.0):
        eq = PsychoacousticEQ(1, fs, ramp_ms=ramp_ms)
        before = eq.process(np.ascontiguousarray(x[:, :10000]))
        eq.set_gains_db(EXTREMES["alternating+-12"])
        after = eq.process(np.ascontiguousarray(x[:, 10000:]))
        curvature = np.abs(np.diff(np.concatenate([before, after], axis=1)[0].astype(np.float64), 2))
        # worst second difference around the change, relative to the settled output's
        roughness[ramp_ms] = curvature[9990:12000].max() / curvature[20000:].max()
    assert roughness[0.0] > 5.0  # the jump clicks (so this measure can see a click)
    assert roughness[20.0] < 2.5


@pytest.mark.parametrize("size", BLOCK_SIZES)
def test_block_size_invariance_with_gain_ramps(size, rng):
    x = noise(rng, 2, 6000)
    commands = [rng.uniform(-12, 12, BANDS) for _ in range(3)]
    changes = (0, 1000, 1500, 6000)  # gains change at these absolute frames

    def run(block):
        eq = PsychoacousticEQ(2, 44100, ramp_ms=15.0)
        pieces = []
        for command, start, stop in zip(commands, changes, changes[1:]):
            eq.set_gains_db(command)
            pieces.append(in_blocks(eq.process, np.ascontiguousarray(x[:, start:stop]), block))
        return np.concatenate(pieces, axis=1)

    assert np.array_equal(run(size), run(x.shape[1]))


ROOT = Path(__file__).resolve().parents[1]
ISA_CHILD = r"""
import json, sys
import numpy as np
from rt_kernels._ffi import lib
from rt_kernels.psy_eq import PsychoacousticEQ

job = json.loads(sys.argv[1])
x = np.load(job["input"])
out = {"level": np.array(lib.rt_cpu_level())}
for size in job["sizes"]:
    eq = PsychoacousticEQ(2, 44100, job["commands"][0], ramp_ms=15.0)
    pieces = []
    for command, start, stop in zip(job["commands"], job["changes"], job["changes"][1:]):
        if start:
            eq.set_gains_db(command)  # a ramp runs from here
        for i in range(start, stop, size):
            pieces.append(eq.process(np.ascontiguousarray(x[:, i:min(i + size, stop)])))
    out[str(size)] = np.concatenate(pieces, axis=1)
np.savez(job["output"], **out)
"""


def test_every_instruction_set_agrees_with_the_baseline(tmp_path):
    """AURALIS_RT_ISA caps the path the cascade picks at create.  Over noise, with nonzero
    band gains and gain ramps, every path is bit-exact across block splits and within
    float32 rounding of the baseline (the arithmetic differs only by fused multiply-adds):
    -140 dB, 1e-6 of the peak."""
    rng = np.random.default_rng(3)
    x = noise(rng, 2, 16000)
    np.save(tmp_path / "x.npy", x)
    commands = [rng.uniform(-12, 12, BANDS).tolist() for _ in range(3)]
    runs = {}
    for name in ("base", "v3", "v4"):
        job = {"input": str(tmp_path / "x.npy"), "output": str(tmp_path / f"{name}.npz"), "commands": commands,
               "changes": [0, 3000, 3500, x.shape[1]], "sizes": [*BLOCK_SIZES, x.shape[1]]}
        subprocess.run([sys.executable, "-c", ISA_CHILD, json.dumps(job)], cwd=ROOT, check=True,
                       env={**os.environ, "AURALIS_RT_ISA": name})
        data = dict(np.load(tmp_path / f"{name}.npz"))
        runs.setdefault(int(data["level"]), data)
    assert 0 in runs, "AURALIS_RT_ISA=base did not select the baseline path"
    base = runs[0][str(x.shape[1])].astype(np.float64)
    for level, data in runs.items():
        whole = data[str(x.shape[1])]
        for size in BLOCK_SIZES:
            assert np.array_equal(data[str(size)], whole), f"level {level}, blocks of {size}"
        if level:
            err = np.sqrt(np.mean((whole - base) ** 2)) / np.sqrt(np.mean(base ** 2))
            assert err < 10 ** (-140 / 20), f"level {level}"
            assert np.max(np.abs(whole - base)) <= 1e-6 * np.max(np.abs(base)), f"level {level}"


def test_c_interface_refuses_bad_commands_and_keeps_the_old_ones():
    from rt_kernels._ffi import ffi, lib
    assert lib.rt_psy_eq_create(2, 44100, -1.0) == ffi.NULL
    assert lib.rt_psy_eq_create(0, 44100, 0.0) == ffi.NULL
    state = ffi.gc(lib.rt_psy_eq_create(1, 44100, 0.0), lib.rt_psy_eq_destroy)
    good = ffi.new("double[]", [6.0] * BANDS)
    assert lib.rt_psy_eq_set_gains_db(state, good) == 0
    kept = ffi.new("double[]", BANDS)
    lib.rt_psy_eq_section_gains_db(state, kept)
    for bad_value in (math.nan, math.inf, 12.01):
        bad = ffi.new("double[]", [6.0] * BANDS)
        bad[7] = bad_value
        assert lib.rt_psy_eq_set_gains_db(state, bad) == -1
        now = ffi.new("double[]", BANDS)
        lib.rt_psy_eq_section_gains_db(state, now)
        assert list(now) == list(kept)


@pytest.mark.parametrize("frames", (0, 1, 7, 64))
def test_frames_out_equal_frames_in(frames, rng):
    eq = PsychoacousticEQ(2, 48000, rng.uniform(-12, 12, BANDS))
    y = eq.process(noise(rng, 2, frames))
    assert y.shape == (2, frames) and y.dtype == np.float32


def test_no_subnormals_as_the_tail_decays(rng):
    eq = PsychoacousticEQ(2, 44100, EXTREMES["alternating+-12"])
    x = np.zeros((2, 5 * 44100), dtype=np.float32)
    x[:, :2000] = noise(rng, 2, 2000)
    y = eq.process(x)
    assert subnormal_count(y) == 0
    assert np.all(y[:, -1000:] == 0.0)  # the state was flushed, not left decaying forever


def test_parameter_validation_messages():
    with pytest.raises(ValueError, match=r"PsychoacousticEQ: sample_rate = 4000.0 is outside \[8000, 384000\] Hz"):
        PsychoacousticEQ(2, 4000)
    with pytest.raises(ValueError, match=r"PsychoacousticEQ: channels = 0 is outside"):
        PsychoacousticEQ(0, 48000)
    with pytest.raises(ValueError, match=r"PsychoacousticEQ: ramp_ms = -1.0 is outside \[0, 5000\] ms"):
        PsychoacousticEQ(2, 48000, ramp_ms=-1.0)
    eq = PsychoacousticEQ(2, 48000)
    good = np.zeros(BANDS)
    with pytest.raises(ValueError, match=r"set_gains_db: gains_db has 24 values; expected 25"):
        eq.set_gains_db(good[:24])
    bad = good.copy()
    bad[3] = 12.5
    with pytest.raises(ValueError, match=r"set_gains_db: gains_db\[3\] = 12.5 is outside \[-12, 12\] dB"):
        eq.set_gains_db(bad)
    bad[3] = math.nan
    with pytest.raises(ValueError, match=r"gains_db\[3\] = nan is outside"):
        eq.set_gains_db(bad)
    with pytest.raises(TypeError, match=r"gains_db must be a sequence of 25 numbers"):
        eq.set_gains_db(3.0)
    np.testing.assert_array_equal(eq.gains_db, good)  # nothing bad was stored
    with pytest.raises(TypeError, match=r"PsychoacousticEQ.process: block has dtype float64"):
        eq.process(np.zeros((2, 8)))
    with pytest.raises(ValueError, match=r"non-finite samples \(first at channel 1, frame 2"):
        x = np.zeros((2, 8), dtype=np.float32)
        x[1, 2] = np.inf
        eq.process(x)


# --- analysis -----------------------------------------------------------------------

@pytest.mark.parametrize("fs", RATES)
def test_white_noise_reads_as_its_flat_true_density(fs):
    sigma = 0.1
    a = analyze_bands(white(np.random.default_rng(1), fs, 8, sigma), fs)
    true_db = 10 * np.log10(2 * sigma ** 2 / fs)  # one-sided PSD of white noise
    np.testing.assert_allclose(a.band_psd_db, true_db, atol=0.5)


@pytest.mark.parametrize("fs", RATES)
def test_pink_noise_reads_minus_3_db_per_octave(fs):
    scale = 0.05
    a = analyze_bands(pink(np.random.default_rng(2), fs, 8, scale), fs)
    lo, hi = BAND_EDGES_HZ[:-1], BAND_EDGES_HZ[1:]
    expected = scale ** 2 * (2 / fs) * 1000 * np.log(hi / lo) / (hi - lo)  # mean of c/f over each band
    np.testing.assert_allclose(a.band_psd_db, 10 * np.log10(expected), atol=0.5)
    slope = np.polyfit(np.log2(BAND_CENTRES_HZ), a.band_psd_db, 1)[0]
    assert slope == pytest.approx(-3.01, abs=0.1)


@pytest.mark.parametrize("fs, channels", [(44100, 2), (48000, 1), (8000, 3)])
def test_c_analysis_equals_scipy_welch_band_means(fs, channels, rng):
    x = noise(rng, channels, 3 * fs + 1234)
    a = analyze_bands(x, fs)
    nfft = 1 << int(np.ceil(np.log2(fs / 4)))
    freqs, psd = signal.welch(x.astype(np.float64), fs=fs, window="hann", nperseg=nfft, noverlap=nfft // 2,
                              detrend=False, scaling="density", axis=-1)
    psd = psd.mean(axis=0)
    expected = np.zeros(BANDS)
    for b in range(a.active_bands):
        expected[b] = psd[(freqs >= BAND_EDGES_HZ[b]) & (freqs < BAND_EDGES_HZ[b + 1])].mean()
    np.testing.assert_allclose(a.band_psd, expected, rtol=1e-9, atol=0)
    assert a.mean_square == pytest.approx(np.mean(x.astype(np.float64) ** 2), rel=1e-12)


@pytest.mark.parametrize("size", BLOCK_SIZES)
def test_streaming_analysis_is_block_size_invariant(size, rng):
    x = noise(rng, 2, 40000)
    whole = BandAnalyzer(2, 44100)
    whole.process(x)
    pieces = BandAnalyzer(2, 44100)
    assert in_blocks(lambda b: np.zeros((1, pieces.process(b))), x, size).shape[1] == x.shape[1]
    assert np.array_equal(pieces.result().band_psd, whole.result().band_psd)
    assert pieces.result().mean_square == whole.result().mean_square


@pytest.mark.parametrize("frames", (0, 1, 7, 64))
def test_analyzer_reads_every_frame(frames, rng):
    analyzer = BandAnalyzer(2, 48000)
    assert analyzer.process(noise(rng, 2, frames)) == frames
    with pytest.raises(ValueError, match=rf"BandAnalyzer.result: the input has {frames} frames"):
        analyzer.result()


def test_a_sine_band_power_is_its_mean_square():
    fs, amplitude = 48000, 0.5
    t = np.arange(3 * fs) / fs
    x = (amplitude * np.sin(2 * np.pi * 997.0 * t))[None, :].astype(np.float32)
    a = analyze_bands(x, fs)
    band = np.searchsorted(BAND_EDGES_HZ, 997.0) - 1
    # An uncompensated Hann window would read 4.3 dB low (ENG-07).
    assert 10 * np.log10(a.band_power[band] / (amplitude ** 2 / 2)) == pytest.approx(0.0, abs=0.1)


def test_silence_gives_zero_gains():
    fs = 44100
    for x in (np.zeros((2, fs), np.float32), white(np.random.default_rng(0), fs, 1, 1e-7)):
        a = analyze_bands(x, fs)
        assert a.silent
        gains = adaptive_gains_db(a)
        assert np.array_equal(gains, np.zeros(BANDS))
    np.testing.assert_array_equal(adaptive_gains_db(np.zeros(BANDS), fs), np.zeros(BANDS))


def test_non_finite_analysis_input_is_refused():
    x = np.zeros((2, 4096), dtype=np.float32)
    x[1, 100] = np.nan
    with pytest.raises(ValueError, match=r"analyze_bands: audio holds non-finite samples \(first at channel 1, frame 100"):
        analyze_bands(x, 44100)
    power = np.ones(BANDS)
    power[3] = np.nan
    with pytest.raises(ValueError, match=r"adaptive_gains_db: band_power\[3\] = nan is outside"):
        adaptive_gains_db(power, 44100)
    power[3] = np.inf
    with pytest.raises(ValueError, match=r"band_power\[3\] = inf"):
        adaptive_gains_db(power, 44100)
    power[3] = -1.0
    with pytest.raises(ValueError, match=r"band_power\[3\] = -1.0 is outside \[0, inf\]"):
        adaptive_gains_db(power, 44100)
    with pytest.raises(ValueError, match=r"analyze_bands: audio has 100 frames; the analysis needs at least 16384 "
                                         r"\(one FFT segment at 44100 Hz\)"):
        analyze_bands(np.zeros((1, 100), np.float32), 44100)
    with pytest.raises(TypeError, match=r"analyze_bands: audio has dtype float64"):
        analyze_bands(np.zeros((1, 100)), 44100)
    with pytest.raises(ValueError, match=r"target = 'loud' is not one of flat, warm, bright"):
        adaptive_gains_db(np.ones(BANDS), 44100, target="loud")
    with pytest.raises(ValueError, match=r"sample_rate is required"):
        adaptive_gains_db(np.ones(BANDS))


def test_gains_are_always_finite_and_clipped():
    rng = np.random.default_rng(9)
    for trial in range(300):
        power = 10.0 ** rng.uniform(-40, 10, BANDS)
        power[rng.random(BANDS) < 0.2] = 0.0
        if trial % 50 == 0:
            power[:] = 0.0
            power[trial % BANDS] = 1e-300
        gains = adaptive_gains_db(power, 48000, target=("flat", "warm", "bright")[trial % 3],
                                  masking=bool(trial % 2))
        assert np.all(np.isfinite(gains)) and np.all(np.abs(gains) <= 12.0)


def test_pink_noise_needs_no_correction_toward_flat_and_tilts_toward_warm_or_bright():
    fs = 44100
    a = analyze_bands(pink(np.random.default_rng(4), fs, 8, 0.05), fs)
    assert np.max(np.abs(adaptive_gains_db(a, target="flat"))) < 0.5
    mid = slice(6, 22)  # away from the clip limits and the table ends
    octaves = np.log2(BAND_CENTRES_HZ[mid])
    assert np.polyfit(octaves, adaptive_gains_db(a, target="warm")[mid], 1)[0] == pytest.approx(-1.5, abs=0.2)
    assert np.polyfit(octaves, adaptive_gains_db(a, target="bright")[mid], 1)[0] == pytest.approx(1.5, abs=0.2)
    # White noise is +3 dB/octave against the flat (pink) target: the EQ tilts it down.
    gains = adaptive_gains_db(analyze_bands(white(np.random.default_rng(4), fs, 4, 0.1), fs))
    assert np.polyfit(octaves, gains[mid], 1)[0] == pytest.approx(-3.0, abs=0.4)


def test_custom_target_offsets_move_the_gains():
    fs = 44100
    lo, hi = BAND_EDGES_HZ[:-1], BAND_EDGES_HZ[1:]
    pink_power = np.log(hi / lo)
    np.testing.assert_allclose(adaptive_gains_db(pink_power, fs, target=np.zeros(BANDS)), 0.0, atol=1e-12)
    offsets = np.zeros(BANDS)
    offsets[0:3] = 6.0  # a bass lift in the target
    gains = adaptive_gains_db(pink_power, fs, target=offsets, masking=False)
    total_ratio = (pink_power * 10 ** (offsets / 10)).sum() / pink_power.sum()  # level matching
    np.testing.assert_allclose(gains, offsets - 10 * np.log10(total_ratio), atol=1e-9)
    with pytest.raises(ValueError, match=r"target\[2\] = 30.0 is outside \[-24, 24\] dB"):
        adaptive_gains_db(pink_power, fs, target=np.where(np.arange(BANDS) == 2, 30.0, 0.0))


def test_masking_keeps_the_eq_from_chasing_a_masked_dip():
    fs = 44100
    lo, hi = BAND_EDGES_HZ[:-1], BAND_EDGES_HZ[1:]
    power = np.log(hi / lo)  # flat (pink) spectrum
    power[12] *= 10 ** (-8 / 10)  # an 8 dB dip in one band
    plain = adaptive_gains_db(power, fs, masking=False)
    masked = adaptive_gains_db(power, fs, masking=True)
    assert plain[12] == pytest.approx(8.0, abs=0.2)
    assert 0.5 < masked[12] < plain[12] - 2.0
    assert np.argmax(masked) == 12


# --- offline linear-phase mode ----------------------------------------------------------

@pytest.mark.parametrize("fs", RATES)
def test_linear_phase_fir_realizes_the_command_with_reported_latency(fs):
    command = np.random.default_rng(fs + 1).uniform(-12, 12, BANDS)
    fir = linear_phase_fir(command, fs)
    assert fir.size % 2 == 1
    np.testing.assert_allclose(fir, fir[::-1], atol=1e-15)  # symmetric: linear phase
    np.testing.assert_allclose(response_db_at(fir, BAND_CENTRES_HZ, fs), command, atol=0.5)

    at = fir.size
    x = np.zeros((1, 3 * fir.size), dtype=np.float32)
    x[0, at] = 1.0
    y, latency = linear_phase_eq(x, fs, command)
    assert latency == (fir.size - 1) // 2 and y.shape == x.shape
    np.testing.assert_allclose(y[0, at - latency:at + latency + 1], fir, atol=1e-6)  # aligned with the input
    late, same = linear_phase_eq(x, fs, command, compensate_latency=False)
    assert same == latency and late.shape == x.shape
    np.testing.assert_allclose(late[0, at:at + fir.size], fir, atol=1e-6)  # `latency` frames late
