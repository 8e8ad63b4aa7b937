"""BS.1770-4 / EBU R 128 loudness meter (rt_kernels/loudness.py, csrc/loudness.c).

References are independent of the code under test: the numbers of BS.1770-4 and EBU
Tech 3341/3342 typed in here, test signals synthesized here, scipy for the K-weighting
of an exact (list-of-blocks) BS.1770 reference, and pyloudnorm.
"""

import dataclasses
import sys
import threading

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf
from scipy import signal

from rt_kernels._ffi import channel_pointers, ffi, lib
from engine.audio_io import AudioReader
from rt_kernels.loudness import LAYOUTS, LoudnessMeter, k_weighting, measure
from tests.conftest import BLOCK_SIZES, noise

FS = 48000

# ITU-R BS.1770-4, Annex 1, Tables 1 and 2 (48 kHz).
BS1770_SHELF = dict(b0=1.53512485958697, b1=-2.69169618940638, b2=1.19839281085285,
                    a1=-1.69065929318241, a2=0.73248077421585)
BS1770_HIGHPASS = dict(b0=1.0, b1=-2.0, b2=1.0, a1=-1.99004745483398, a2=0.99007225036621)


# ---------------------------------------------------------------- signals and references

def tone(level_dbfs: float, seconds: float, fs: int = FS, freq: float = 1000.0, channels: int = 2,
         start: int = 0) -> np.ndarray:
    """A sine of peak level `level_dbfs` on every channel (EBU Tech 3341 style)."""
    n = np.arange(start, start + int(round(seconds * fs)))
    x = 10 ** (level_dbfs / 20) * np.sin(2 * np.pi * freq * n / fs)
    return np.tile(x.astype(np.float32), (channels, 1))


def sequence(*parts, fs: int = FS, channels: int = 2) -> np.ndarray:
    """Tones (level_dbfs, seconds) back to back, phase-continuous; None = silence."""
    pieces, start = [], 0
    for level, seconds in parts:
        frames = int(round(seconds * fs))
        if level is None:
            pieces.append(np.zeros((channels, frames), np.float32))
        else:
            pieces.append(tone(level, seconds, fs, channels=channels, start=start))
        start += frames
    return np.ascontiguousarray(np.concatenate(pieces, axis=1))


def pink(rng, channels: int, frames: int, fs: int) -> np.ndarray:
    spectrum = rng.standard_normal((channels, frames // 2 + 1)) + 1j * rng.standard_normal((channels, frames // 2 + 1))
    f = np.fft.rfftfreq(frames, 1 / fs)
    spectrum[:, 1:] /= np.sqrt(f[1:])
    spectrum[:, 0] = 0
    x = np.fft.irfft(spectrum, frames, axis=1)
    return x / np.max(np.abs(x))


def programme(rng, fs: int, seconds: float, channels: int = 2) -> np.ndarray:
    """Noise whose level jumps every 0.7 s between -50 and -10 dBFS (exercises both gates)."""
    frames = int(seconds * fs)
    x = rng.standard_normal((channels, frames))
    segment = int(0.7 * fs)
    levels = rng.uniform(-50, -10, frames // segment + 1)
    return (x * np.repeat(10 ** (levels / 20), segment)[:frames]).astype(np.float32)


def exact_reference(x: np.ndarray, weights) -> tuple[float, float]:
    """BS.1770-4 integrated loudness and EBU Tech 3342 LRA at 48 kHz, the textbook way:
    the standard's coefficient table, every block kept in a list, sorted for percentiles."""
    sos = np.array([[BS1770_SHELF[k] for k in ("b0", "b1", "b2")] + [1.0, BS1770_SHELF["a1"], BS1770_SHELF["a2"]],
                    [BS1770_HIGHPASS[k] for k in ("b0", "b1", "b2")] + [1.0, BS1770_HIGHPASS["a1"],
                                                                        BS1770_HIGHPASS["a2"]]])
    y = signal.sosfilt(sos, x.astype(np.float64), axis=1)
    power = np.asarray(weights, float) @ (y * y)
    c = np.concatenate([[0.0], np.cumsum(power)])
    hop = FS // 10

    def blocks(length_hops):
        ends = np.arange(length_hops * hop, power.size + 1, hop)
        return (c[ends] - c[ends - length_hops * hop]) / (length_hops * hop)

    def lufs(z):
        return -0.691 + 10 * np.log10(z)

    z = blocks(4)
    z = z[lufs(z) > -70]
    gate = lufs(np.mean(z)) - 10
    integrated = lufs(np.mean(z[lufs(z) > gate]))
    s = blocks(30)
    s = s[lufs(s) > -70]
    gate = lufs(np.mean(s)) - 20
    values = np.sort(lufs(s[lufs(s) > gate]))
    n = values.size
    lra = values[int(round((n - 1) * 0.95))] - values[int(round((n - 1) * 0.10))]
    return integrated, lra


def run_in_blocks(meter: LoudnessMeter, x: np.ndarray, size: int) -> None:
    for i in range(0, x.shape[1], size):
        assert meter.process(np.ascontiguousarray(x[:, i:i + size])) == min(size, x.shape[1] - i)


# ---------------------------------------------------------------- K-weighting

def test_k_weighting_equals_the_bs1770_table_at_48k():
    sos = k_weighting(48000)
    table = [[BS1770_SHELF[k] for k in ("b0", "b1", "b2", "a1", "a2")],
             [BS1770_HIGHPASS[k] for k in ("b0", "b1", "b2", "a1", "a2")]]
    np.testing.assert_allclose(sos[:, [0, 1, 2, 4, 5]], table, rtol=0, atol=1e-9)
    assert np.all(sos[:, 3] == 1.0)


@pytest.mark.parametrize("fs", [8000, 22050, 32000, 44100, 88200, 96000, 192000, 384000])
def test_k_weighting_is_the_bilinear_transform_of_the_analog_prototypes(fs):
    # Analog prototypes (parameters that reproduce BS.1770's 48 kHz table), transformed by
    # scipy with the corner pre-warped to the rate.
    f0, gain_db, q, vb_exp = 1681.974450955533, 3.999843853973347, 0.7071752369554196, 0.4996667741545416
    w0 = 2 * fs * np.tan(np.pi * f0 / fs)
    vh = 10 ** (gain_db / 20)
    shelf = signal.bilinear([vh, vh ** vb_exp * w0 / q, w0 * w0], [1, w0 / q, w0 * w0], fs)
    f0, q = 38.13547087602444, 0.5003270373238773
    k48 = np.tan(np.pi * f0 / 48000)
    passband_gain = 1 + k48 / q + k48 * k48  # BS.1770's numerator is exactly (1, -2, 1) at 48 kHz
    w0 = 2 * fs * np.tan(np.pi * f0 / fs)
    highpass = signal.bilinear([passband_gain, 0, 0], [1, w0 / q, w0 * w0], fs)
    expected = np.array([np.concatenate([b, a]) for b, a in (shelf, highpass)])
    np.testing.assert_allclose(k_weighting(fs), expected, rtol=1e-9, atol=1e-12)


# Largest deviation from the 48 kHz response below 0.45 fs.  Below 22.05 kHz the shelf's
# corner (1.7 kHz) nears Nyquist and the bilinear transform's warping shows (documented).
RATE_TOLERANCE_DB = {8000: 0.25, 16000: 0.07, 22050: 0.035, 32000: 0.015, 44100: 0.005, 96000: 0.01,
                     192000: 0.01, 384000: 0.01}


@pytest.mark.parametrize("fs", list(RATE_TOLERANCE_DB))
def test_k_weighting_response_does_not_depend_on_the_rate(fs):
    freqs = np.array([20.0, 40.0, 100.0, 500.0, 997.0, 1500.0, 3000.0, 6000.0, 10000.0, 16000.0])
    freqs = freqs[freqs < 0.45 * fs]

    def db(sos, rate):
        return 20 * np.log10(np.abs(signal.sosfreqz(sos, freqs, fs=rate)[1]))

    np.testing.assert_allclose(db(k_weighting(fs), fs), db(k_weighting(48000), 48000), atol=RATE_TOLERANCE_DB[fs])


@pytest.mark.parametrize("fs", [22050, 44100, 48000, 96000, 192000])
def test_full_scale_997_hz_sine_in_one_channel_reads_minus_3_01(fs):
    # BS.1770-4: a 0 dBFS 1 kHz sine on one front channel reads -3.01 LKFS.
    values = measure(tone(0.0, 5.0, fs, freq=997.0, channels=1), fs)
    assert values.integrated_lufs == pytest.approx(-3.01, abs=0.03)


# ---------------------------------------------------------------- EBU Tech 3341

TECH_3341 = {
    "case1: -23 dBFS 20 s": ([(-23.0, 20.0)], -23.0),
    "case2: -33 dBFS 20 s": ([(-33.0, 20.0)], -33.0),
    "case3: -36/-23/-36 dBFS": ([(-36.0, 10.0), (-23.0, 60.0), (-36.0, 10.0)], -23.0),
    "case4: -72/-36/-23/-36/-72 dBFS": ([(-72.0, 10.0), (-36.0, 10.0), (-23.0, 60.0), (-36.0, 10.0),
                                         (-72.0, 10.0)], -23.0),
    "case5: -26/-20/-26 dBFS (20.1 s)": ([(-26.0, 20.0), (-20.0, 20.1), (-26.0, 20.0)], -23.0),
}


@pytest.mark.parametrize("case", TECH_3341, ids=list(TECH_3341))
def test_tech_3341_integrated(case):
    parts, expected = TECH_3341[case]
    values = measure(sequence(*parts), FS)
    assert values.integrated_lufs == pytest.approx(expected, abs=0.1)
    if len(parts) == 1:  # cases 1 and 2: momentary and short-term too
        assert values.momentary_lufs == pytest.approx(expected, abs=0.1)
        assert values.short_term_lufs == pytest.approx(expected, abs=0.1)
        assert values.max_momentary_lufs == pytest.approx(expected, abs=0.1)
        assert values.max_short_term_lufs == pytest.approx(expected, abs=0.1)


@pytest.mark.parametrize("layout", ["5.0", "5.1"])
def test_tech_3341_case6_five_channels(layout):
    # 1 kHz: L and R at -28 dBFS, C at -24 dBFS, Ls and Rs at -30 dBFS, 20 s -> -23 LUFS.
    levels = {"L": -28.0, "R": -28.0, "C": -24.0, "Ls": -30.0, "Rs": -30.0, "LFE": None}
    order = ["L", "R", "C", "Ls", "Rs"] if layout == "5.0" else ["L", "R", "C", "LFE", "Ls", "Rs"]
    x = np.concatenate([tone(levels[c], 20.0, channels=1) if levels[c] is not None
                        else np.zeros((1, 20 * FS), np.float32) for c in order])
    values = measure(np.ascontiguousarray(x), FS, layout=layout)
    assert values.integrated_lufs == pytest.approx(-23.0, abs=0.1)


def test_tech_3341_case9_short_term_constant_after_3_s():
    # Reconstructed: 1.34 s at -20 dBFS and 1.66 s at -30 dBFS, five times (period = 3 s).
    x = sequence(*[(-20.0, 1.34), (-30.0, 1.66)] * 5)
    meter = LoudnessMeter(2, FS)
    hop = FS // 10
    readings = []
    for i in range(0, x.shape[1], hop):
        meter.process(np.ascontiguousarray(x[:, i:i + hop]))
        if i + hop >= 3 * FS:
            readings.append(meter.snapshot().short_term_lufs)
    assert len(readings) > 100
    np.testing.assert_allclose(readings, -23.0, atol=0.1)


def test_tech_3341_case12_momentary_constant_after_1_s():
    # Reconstructed: 0.18 s at -20 dBFS and 0.22 s at -30 dBFS, 25 times (period = 400 ms).
    x = sequence(*[(-20.0, 0.18), (-30.0, 0.22)] * 25)
    meter = LoudnessMeter(2, FS)
    step = FS // 100  # a reading every 10 ms
    readings = []
    for i in range(0, x.shape[1], step):
        meter.process(np.ascontiguousarray(x[:, i:i + step]))
        if i + step >= FS:
            readings.append(meter.snapshot().momentary_lufs)
    np.testing.assert_allclose(readings, -23.0, atol=0.1)


@pytest.mark.parametrize("burst_s, field", [(3.0, "max_short_term_lufs"), (0.4, "max_momentary_lufs")],
                         ids=["case10-style max S (3 s bursts)", "case13-style max M (0.4 s bursts)"])
def test_tech_3341_max_of_bursts_at_any_offset(burst_s, field):
    # Reconstructed: a -23 dBFS burst after silence whose length is not on any 10/100 ms grid.
    for k in range(20):
        lead = 0.5 + k * 0.0637
        x = sequence((None, lead), (-23.0, burst_s), (None, 1.0))
        assert getattr(measure(x, FS), field) == pytest.approx(-23.0, abs=0.1), f"offset {lead:.4f} s"


# ---------------------------------------------------------------- EBU Tech 3342

TECH_3342 = {
    "case1: -20/-30 dBFS -> 10 LU": ([(-20.0, 20.0), (-30.0, 20.0)], 10.0),
    "case2: -20/-15 dBFS -> 5 LU": ([(-20.0, 20.0), (-15.0, 20.0)], 5.0),
    "case3: -40/-20 dBFS -> 20 LU": ([(-40.0, 20.0), (-20.0, 20.0)], 20.0),
    "case4: -50/-35/-20/-35/-50 dBFS -> 15 LU": ([(-50.0, 20.0), (-35.0, 20.0), (-20.0, 20.0), (-35.0, 20.0),
                                                  (-50.0, 20.0)], 15.0),
}


@pytest.mark.parametrize("case", TECH_3342, ids=list(TECH_3342))
def test_tech_3342_loudness_range(case):
    parts, expected = TECH_3342[case]
    assert measure(sequence(*parts), FS).loudness_range_lu == pytest.approx(expected, abs=1.0)


def test_histograms_match_an_exact_list_of_blocks_reference(rng):
    # The bounded-memory histograms against every block kept and sorted.
    x = programme(rng, FS, 60.0)
    values = measure(x, FS)
    integrated, lra = exact_reference(x, [1.0, 1.0])
    assert values.integrated_lufs == pytest.approx(integrated, abs=0.01)
    assert values.loudness_range_lu == pytest.approx(lra, abs=0.02)
    assert lra > 5.0, "the programme should have a real loudness range"


# ---------------------------------------------------------------- pyloudnorm cross-check

def _signals(rng, fs):
    frames = 12 * fs  # a whole number of 100 ms hops, so pyloudnorm's block count is exact
    t = np.arange(frames) / fs
    tones = sum(a * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
                for f, a in [(60, 0.2), (250, 0.15), (1000, 0.1), (4000, 0.08), (12000, 0.05)])
    gated = np.concatenate([0.2 * rng.standard_normal((2, frames // 2)),
                            0.002 * rng.standard_normal((2, frames - frames // 2))], axis=1)
    return {
        "white": 0.1 * rng.standard_normal((2, frames)),
        "pink": 0.3 * pink(rng, 2, frames, fs),
        "multitone": np.stack([tones, 0.7 * tones]),
        "white-with-gated-quiet-half": gated,
    }


@pytest.mark.parametrize("fs", [44100, 48000, 96000])
def test_integrated_agrees_with_pyloudnorm(fs, rng):
    for name, x in _signals(rng, fs).items():
        x32 = x.astype(np.float32)
        ours = measure(x32, fs).integrated_lufs
        theirs = pyloudnorm.Meter(fs).integrated_loudness(x32.T.astype(np.float64))
        assert ours == pytest.approx(theirs, abs=0.1), name


# ---------------------------------------------------------------- channel weights

def test_surround_channel_reads_1_5_db_above_a_front_channel():
    def only(channel):
        x = np.zeros((6, 10 * FS), np.float32)
        x[channel] = tone(-20.0, 10.0, channels=1)[0]
        return measure(x, FS)  # default for 6 channels: 5.1, L R C LFE Ls Rs

    left, ls, rs, lfe = only(0), only(4), only(5), only(3)
    assert ls.integrated_lufs - left.integrated_lufs == pytest.approx(10 * np.log10(1.41), abs=0.001)
    assert rs.integrated_lufs == ls.integrated_lufs
    assert lfe.integrated_lufs == -np.inf, "the LFE is not part of the loudness"
    assert lfe.sample_peak_dbfs == pytest.approx(-20.0, abs=0.01), "but its peak is still metered"


def test_explicit_weights():
    x = tone(-20.0, 5.0, channels=2)
    x[1] = 0.0
    base = measure(x, FS).integrated_lufs
    assert measure(x, FS, weights=[2.0, 1.0]).integrated_lufs - base == pytest.approx(10 * np.log10(2), abs=1e-6)
    assert measure(x, FS, weights=[0.0, 1.0]).integrated_lufs == -np.inf
    assert LoudnessMeter(5, FS).weights == LAYOUTS["5.0"]


# ---------------------------------------------------------------- streaming behaviour

def _assert_same(a, b):
    assert a == b, "\n".join(f"{k}: {getattr(a, k)} != {getattr(b, k)}" for k in a.__dataclass_fields__
                             if getattr(a, k) != getattr(b, k))


@pytest.mark.parametrize("size", BLOCK_SIZES + (4410, 100000))
def test_every_value_is_bit_identical_for_any_block_size(size, rng):
    fs = 8000 if size == 1 else 44100  # block size 1 through Python: keep it short
    x = programme(rng, fs, 4.5)
    whole = LoudnessMeter(2, fs)
    whole.process(x)
    split = LoudnessMeter(2, fs)
    run_in_blocks(split, x, size)
    a, b = whole.snapshot(), split.snapshot()
    assert a.loudness_range_lu > 0 and np.isfinite(a.integrated_lufs)
    _assert_same(a, b)


@pytest.mark.parametrize("size", (7, 64, 4096))
def test_block_size_invariance_with_surround_channels(size, rng):
    # 5.1: two channel pairs, one odd channel and the unfiltered LFE take different paths.
    x = programme(rng, 22050, 4.0, channels=6)
    whole = measure(x, 22050)
    split = LoudnessMeter(6, 22050)
    run_in_blocks(split, x, size)
    _assert_same(whole, split.snapshot())


def test_mono_and_stereo_paths_agree(rng):
    x = programme(rng, FS, 4.0, channels=1)
    mono = measure(x, FS)
    stereo = measure(np.ascontiguousarray(np.concatenate([x, x])), FS)
    for name in ("integrated_lufs", "momentary_lufs", "short_term_lufs", "max_momentary_lufs"):
        assert getattr(stereo, name) - getattr(mono, name) == pytest.approx(10 * np.log10(2), abs=1e-9), name
    assert stereo.loudness_range_lu == pytest.approx(mono.loudness_range_lu, abs=0.011)  # 0.01 LU bins


def test_random_block_sizes_and_snapshots_along_the_way(rng):
    x = programme(rng, FS, 5.0)
    whole = LoudnessMeter(2, FS)
    whole.process(x)
    meter, i = LoudnessMeter(2, FS), 0
    while i < x.shape[1]:
        n = int(rng.integers(0, 3000))
        assert meter.process(np.ascontiguousarray(x[:, i:i + n])) == min(n, x.shape[1] - i)
        meter.snapshot()
        i += n
    _assert_same(whole.snapshot(), meter.snapshot())


def test_values_appear_when_their_first_window_is_complete():
    meter = LoudnessMeter(2, FS)
    meter.process(tone(-23.0, 0.39))
    early = meter.snapshot()
    assert early.integrated_lufs == -np.inf, "no 400 ms gating block yet"
    assert early.momentary_lufs < -23.1, "the missing part of the window counts as silence"
    meter.process(tone(-23.0, 2.6, start=int(0.39 * FS)))
    v = meter.snapshot()
    assert v.integrated_lufs == pytest.approx(-23.0, abs=0.1)
    assert v.loudness_range_lu == 0.0, "no 3 s block yet"
    meter.process(tone(-23.0, 1.0, start=int(2.99 * FS)))
    assert meter.snapshot().loudness_range_lu == pytest.approx(0.0, abs=0.01)
    assert meter.snapshot().short_term_lufs == pytest.approx(-23.0, abs=0.1)


def test_louder_than_full_scale_float_signals():
    # +50 dBFS (amplitude 316): above the histogram's top bin, still exact.
    v = measure(tone(50.0, 5.0), FS)
    assert v.integrated_lufs == pytest.approx(50.0, abs=0.1)
    assert v.sample_peak_dbfs == pytest.approx(50.0, abs=0.001)


@pytest.mark.parametrize("frames", (0, 1, 7, 64))
def test_frames_in_equal_frames_reported(frames, rng):
    meter = LoudnessMeter(2, FS)
    assert meter.latency_frames == 0
    assert meter.process(noise(rng, 2, frames)) == frames
    assert meter.snapshot().frames == frames
    assert meter.process(noise(rng, 2, 0)) == 0
    assert meter.snapshot().frames == frames


def test_reset_starts_a_new_measurement(rng):
    meter = LoudnessMeter(2, FS)
    meter.process(tone(-10.0, 5.0))
    meter.reset()
    meter.process(tone(-30.0, 5.0))
    fresh = LoudnessMeter(2, FS)
    fresh.process(tone(-30.0, 5.0))
    _assert_same(meter.snapshot(), fresh.snapshot())


def test_snapshot_is_consistent_while_another_thread_processes():
    # The sample peak grows with every frame, so each snapshot's frame count fixes the
    # peak it must show: a torn read (values from two different publications) fails.
    frames = 60 * FS
    ramp = (np.arange(1, frames + 1) / frames).astype(np.float32)
    x = np.ascontiguousarray(np.stack([ramp, -ramp]))
    meter = LoudnessMeter(2, FS)
    seen, done = [], threading.Event()

    def read():
        while not done.is_set():
            seen.append(meter.snapshot())

    # Switch threads every 0.1 ms (default 5 ms) so the reader sees several publications
    # however fast the meter runs (the whole input takes only a few ms).
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)
    reader = threading.Thread(target=read)
    reader.start()
    try:
        # Process at least 2 s, then until the reader has seen several publications (how
        # soon depends on the scheduler; the signal is long enough for a loaded machine).
        for i in range(0, frames, 64):
            assert meter.process(np.ascontiguousarray(x[:, i:i + 64])) == 64
            if i >= 2 * FS and len({v.frames for v in seen[-200:]}) > 3:
                break
    finally:
        done.set()
        reader.join()
        sys.setswitchinterval(interval)
    assert len({v.frames for v in seen}) > 3, "the reader should have seen several publications"
    for v in seen:
        expected = 20 * np.log10(float(ramp[v.frames - 1])) if v.frames else -np.inf
        # (one block, 64 frames, moves the peak by > 1e-3 dB; 1e-9 only absorbs log10 rounding)
        assert v.sample_peak_dbfs == pytest.approx(expected, abs=1e-9)
        assert v.channel_sample_peak_dbfs == pytest.approx((expected, expected), abs=1e-9)
        assert not any(np.isnan(getattr(v, k)) for k in ("momentary_lufs", "short_term_lufs", "integrated_lufs"))


# ---------------------------------------------------------------- silence, NaN, peaks

def test_silence_reads_minus_infinity_never_nan():
    v = measure(np.zeros((2, 10 * FS), np.float32), FS)
    for name in ("momentary_lufs", "short_term_lufs", "integrated_lufs", "integrated_gate_lufs",
                 "max_momentary_lufs", "max_short_term_lufs", "sample_peak_dbfs", "true_peak_dbtp"):
        assert getattr(v, name) == -np.inf, name
    assert v.loudness_range_lu == 0.0
    # Below the absolute gate: momentary is measured, integrated is not.
    quiet = measure(tone(-80.0, 5.0), FS)
    assert quiet.momentary_lufs == pytest.approx(-80.0, abs=0.1)
    assert quiet.integrated_lufs == -np.inf and quiet.loudness_range_lu == 0.0


def test_filter_history_decays_to_exact_zero():
    # An impulse, then silence: the K-filter state is flushed (never subnormal), so the
    # windows that no longer contain the impulse read exactly -inf, not -600 LUFS.
    x = np.zeros((2, 5 * FS), np.float32)
    x[:, 0] = 1.0
    v = measure(x, FS)
    assert v.momentary_lufs == -np.inf
    assert v.short_term_lufs == -np.inf
    assert np.isfinite(v.max_momentary_lufs)


def test_non_finite_input_from_c_is_dropped_and_counted():
    # The facade refuses NaN; the audio thread calls C directly, where NaN must not stick.
    weights = ffi.new("double[]", [1.0, 1.0])
    st = ffi.gc(lib.rt_loudness_create(2, FS, weights, 1), lib.rt_loudness_destroy)
    x = tone(-23.0, 10.0)
    x[0, FS] = np.nan
    x[1, 2 * FS] = np.inf
    assert lib.rt_loudness_process(st, channel_pointers(x), x.shape[1]) == x.shape[1]
    v = ffi.new("rt_loudness_values *")
    lib.rt_loudness_snapshot(st, v)
    assert v.nonfinite_ticks == 2
    assert v.momentary_lufs == pytest.approx(-23.0, abs=0.1)
    assert v.integrated_lufs == pytest.approx(-23.0, abs=0.1)
    assert v.sample_peak_dbfs == pytest.approx(-23.0, abs=0.01)
    assert v.true_peak_dbtp == pytest.approx(-23.0, abs=0.1), "holds its last finite reading"
    for name in ("short_term_lufs", "loudness_range_lu", "max_momentary_lufs", "max_short_term_lufs"):
        assert not np.isnan(getattr(v, name)), name


@pytest.mark.parametrize("fs", [44100, 48000, 96000])
def test_true_peak_of_a_quarter_rate_sine_at_45_degrees(fs):
    # x[n] = A sin(pi n / 2 + pi / 4): every sample is +-A/sqrt(2), the true peak is A.
    n = np.arange(2 * fs)
    a = 0.5
    x = (a * np.sin(np.pi * n / 2 + np.pi / 4)).astype(np.float32)
    v = measure(np.stack([x, 0.5 * x]), fs)
    assert v.sample_peak_dbfs == pytest.approx(20 * np.log10(a / np.sqrt(2)), abs=0.001)
    assert -0.4 <= v.true_peak_dbtp - 20 * np.log10(a) <= 0.2
    assert v.channel_true_peak_dbtp[1] == pytest.approx(v.channel_true_peak_dbtp[0] - 20 * np.log10(2), abs=0.01)
    assert v.true_peak_factor == (4 if fs < 96000 else 2)


def test_without_true_peak_everything_else_is_identical(rng):
    x = programme(rng, FS, 4.0)
    with_tp, without = measure(x, FS), measure(x, FS, true_peak=False)
    assert without.true_peak_dbtp is None and without.channel_true_peak_dbtp is None
    assert without.true_peak_factor == 0 and with_tp.true_peak_factor == 4
    assert dataclasses.replace(with_tp, true_peak_dbtp=None, channel_true_peak_dbtp=None, true_peak_factor=0) == without


# ---------------------------------------------------------------- files

def test_streamed_file_equals_measure_for_any_read_size(tmp_path, rng):
    x = programme(rng, 44100, 4.0)
    path = tmp_path / "programme.wav"
    sf.write(path, x.T, 44100, subtype="FLOAT")
    expected = measure(x, 44100)
    for block in (1000, 65536):
        meter = LoudnessMeter(2, 44100)
        with AudioReader(path) as reader:
            for frames in reader.blocks(block):
                meter.process(np.ascontiguousarray(frames.T))
        _assert_same(meter.snapshot(), expected)


# ---------------------------------------------------------------- validation

@pytest.mark.parametrize("kwargs, error, match", [
    (dict(channels=0), ValueError, r"LoudnessMeter: channels = 0 is outside \[1, 64\]"),
    (dict(channels=65), ValueError, r"LoudnessMeter: channels = 65 is outside \[1, 64\]"),
    (dict(sample_rate=7999), ValueError, r"LoudnessMeter: sample_rate = 7999.0 is outside \[8000, 384000\] Hz"),
    (dict(sample_rate=float("nan")), ValueError, r"LoudnessMeter: sample_rate = nan"),
    (dict(layout="7.1"), ValueError, r"LoudnessMeter: layout = '7.1' is not one of mono, stereo, 5.0, 5.1"),
    (dict(layout="5.1"), ValueError, r"LoudnessMeter: layout = '5.1' has 6 channels, not 2"),
    (dict(weights=[1.0]), ValueError, r"LoudnessMeter: weights has 1 entries for 2 channels"),
    (dict(weights=[1.0, -1.0]), ValueError, r"LoudnessMeter: weights\[1\] = -1.0 is outside \[0, 16\]"),
    (dict(weights=[1.0, float("inf")]), ValueError, r"LoudnessMeter: weights\[1\] = inf is outside"),
    (dict(weights=[0.0, 0.0]), ValueError, r"LoudnessMeter: weights = \[0.0, 0.0\] are all 0"),
    (dict(weights="11"), TypeError, r"LoudnessMeter: weights must be a sequence of numbers"),
    (dict(weights=[1.0, 1.0], layout="stereo"), ValueError, r"LoudnessMeter: give layout or weights, not both"),
    (dict(channels=4), ValueError, r"LoudnessMeter: channels = 4 has no default layout"),
    (dict(true_peak="yes"), TypeError, r"LoudnessMeter: true_peak must be True or False, got 'yes'"),
])
def test_constructor_errors(kwargs, error, match):
    args = dict(channels=2, sample_rate=FS) | kwargs
    with pytest.raises(error, match=match):
        LoudnessMeter(**args)


def test_process_and_measure_errors():
    meter = LoudnessMeter(2, FS)
    with pytest.raises(TypeError, match=r"LoudnessMeter.process: block has dtype float64"):
        meter.process(np.zeros((2, 10)))
    with pytest.raises(ValueError, match=r"LoudnessMeter.process: block has 1 channels; expected 2"):
        meter.process(np.zeros((1, 10), np.float32))
    bad = np.zeros((2, 10), np.float32)
    bad[1, 3] = np.nan
    with pytest.raises(ValueError, match=r"non-finite samples \(first at channel 1, frame 3"):
        meter.process(bad)
    assert meter.snapshot().frames == 0, "a refused block is not metered"
    with pytest.raises(ValueError, match=r"measure: audio has shape \(10,\)"):
        measure(np.zeros(10, np.float32), FS)
    with pytest.raises(ValueError, match=r"k_weighting: sample_rate = 1000.0 is outside"):
        k_weighting(1000)


def test_c_create_refuses_bad_arguments():
    ok = ffi.new("double[]", [1.0, 1.0])
    assert ffi.gc(lib.rt_loudness_create(2, FS, ok, 1), lib.rt_loudness_destroy) != ffi.NULL
    assert lib.rt_loudness_create(0, FS, ok, 1) == ffi.NULL
    assert lib.rt_loudness_create(2, 7999.0, ok, 1) == ffi.NULL
    assert lib.rt_loudness_create(2, float("nan"), ok, 1) == ffi.NULL
    assert lib.rt_loudness_create(2, FS, ffi.NULL, 1) == ffi.NULL
    assert lib.rt_loudness_create(2, FS, ffi.new("double[]", [0.0, 0.0]), 1) == ffi.NULL
    assert lib.rt_loudness_create(2, FS, ffi.new("double[]", [1.0, float("nan")]), 1) == ffi.NULL


@pytest.mark.parametrize("channel,frame,value", [(3, 5000, np.nan), (0, 17, np.inf), (5, 44099, -np.inf),
                                                 (1, 40, np.nan)])
def test_measure_refuses_non_finite_samples_in_any_channel(channel, frame, value):
    """measure() checks finiteness in the metering pass itself: every channel (the LFE, with
    weight 0, too), any position (vector body and scalar tail), with audio_block's message."""
    x = noise(np.random.default_rng(3), 6, FS)
    x[channel, frame] = value
    with pytest.raises(ValueError, match=rf"measure: audio holds non-finite samples \(first at channel "
                                         rf"{channel}, frame {frame}"):
        measure(x, FS)
    # the C flag itself, per call
    meter = LoudnessMeter(6, FS)
    meter.process(np.ascontiguousarray(x[:, :frame]))
    assert lib.rt_loudness_saw_nonfinite(meter._state) == 0
    with pytest.raises(ValueError):
        meter.process(x)  # the facade refuses it before C sees it
    assert lib.rt_loudness_saw_nonfinite(meter._state) == 0
    lib.rt_loudness_process(meter._state, channel_pointers(x), x.shape[1])
    assert lib.rt_loudness_saw_nonfinite(meter._state) == 1
