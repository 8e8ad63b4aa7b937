"""Stereo width and correlation meter against independent float64 references (scipy.signal
butter/sosfilt/sosfreqz/lfilter), plus the kernel-convention checks."""

import math

import numpy as np
import pytest
from scipy import signal

from rt_kernels._ffi import channel_pointers, ffi, lib
from rt_kernels.stereo import CorrelationMeter, StereoWidth
from tests.conftest import BLOCK_SIZES, in_blocks, noise, subnormal_count

FS = 48000


# ---------------------------------------------------------------- references

def lr4(kind: str, f: float, fs: float) -> np.ndarray:
    """Linkwitz-Riley 4th order: a 2nd-order Butterworth run twice (scipy design)."""
    sos = signal.butter(2, f, btype=kind, fs=fs, output="sos")
    return np.vstack([sos, sos])


def lr8(kind: str, f: float, fs: float) -> np.ndarray:
    sos = signal.butter(4, f, btype=kind, fs=fs, output="sos")
    return np.vstack([sos, sos])


def lr_allpass(v: np.ndarray, f: float, fs: float, design=lr4) -> np.ndarray:
    """The all-pass of a crossover, written as low + high (not as an all-pass section)."""
    return signal.sosfilt(design("low", f, fs), v) + signal.sosfilt(design("high", f, fs), v)


def reference_width(x: np.ndarray, fs: float, crossovers, widths, mono_bass_hz=None) -> np.ndarray:
    """The documented formulation, straightforwardly: split S by an LR4 tree, compensate
    each band with the all-passes of the crossovers above it, weight, sum; M through all
    the all-passes; optional LR8 mono bass; L = M' + S', R = M' - S'."""
    x = x.astype(np.float64)
    m, s = 0.5 * (x[0] + x[1]), 0.5 * (x[0] - x[1])
    bands, rest = [], s
    for f in crossovers:
        bands.append(signal.sosfilt(lr4("low", f, fs), rest))
        rest = signal.sosfilt(lr4("high", f, fs), rest)
    bands.append(rest)
    side = np.zeros_like(s)
    for k, band in enumerate(bands):
        for f in crossovers[k + 1:]:
            band = lr_allpass(band, f, fs)
        side += widths[k] * band
    for f in crossovers:
        m = lr_allpass(m, f, fs)
    if mono_bass_hz is not None:
        side = signal.sosfilt(lr8("high", mono_bass_hz, fs), side)
        m = lr_allpass(m, mono_bass_hz, fs, lr8)
    return np.stack([m + side, m - side])


def db_error(actual: np.ndarray, reference: np.ndarray) -> float:
    err = np.sqrt(np.mean((actual.astype(np.float64) - reference) ** 2))
    return 20 * np.log10(err / np.sqrt(np.mean(reference ** 2)))


def side_impulse(frames: int) -> np.ndarray:
    x = np.zeros((2, frames), dtype=np.float32)
    x[0, 0], x[1, 0] = 1.0, -1.0  # M = 0, S = unit impulse
    return x


def tone(freq: float, frames: int, fs: float = FS, amp: float = 0.25) -> np.ndarray:
    return amp * np.sin(2 * np.pi * freq * np.arange(frames) / fs)


def stereo(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.stack([left, right]).astype(np.float32))


def rms_db(v: np.ndarray) -> float:
    return 10 * np.log10(np.mean(np.asarray(v, dtype=np.float64) ** 2))


def mid_side(y: np.ndarray):
    y = y.astype(np.float64)
    return 0.5 * (y[0] + y[1]), 0.5 * (y[0] - y[1])


# ---------------------------------------------------------------- crossovers

def test_lr4_two_band_split_matches_scipy_and_sums_flat():
    fs, fc, n = FS, 1000.0, 1 << 16
    freqs = np.fft.rfftfreq(n, 1 / fs)
    band = (freqs >= 20) & (freqs <= 0.45 * fs)
    responses = {}
    for name, widths in (("low", (1.0, 0.0)), ("high", (0.0, 1.0)), ("sum", (1.0, 1.0))):
        kernel = StereoWidth(fs, crossover_hz=(fc,), widths=widths)
        y = kernel.process(side_impulse(n))
        _, side = mid_side(y)
        assert np.max(np.abs(side[-n // 8:])) < 1e-9, "impulse response did not decay inside the window"
        responses[name] = np.fft.rfft(side)
    for name in ("low", "high"):
        _, expected = signal.sosfreqz(lr4(name, fc, fs), worN=freqs, fs=fs)
        realized = np.abs(responses[name][band])
        expected = np.abs(expected[band])
        audible = expected > 1e-3
        np.testing.assert_array_less(np.abs(20 * np.log10(realized[audible] / expected[audible])), 0.01)
        np.testing.assert_array_less(np.abs(realized[~audible] - expected[~audible]), 1e-5)
        # -6 dB at the crossover: the defining property of an LR crossover
        _, at_fc = signal.sosfreqz(lr4(name, fc, fs), worN=[fc], fs=fs)
        assert 20 * np.log10(abs(at_fc[0])) == pytest.approx(-6.02, abs=0.01)
    flat = 20 * np.log10(np.abs(responses["sum"][band]))
    assert np.max(np.abs(flat)) < 0.01


def test_four_band_responses_match_scipy_and_sum_flat():
    fs, n = FS, 1 << 17
    xo = (120.0, 1000.0, 6000.0)
    freqs = np.fft.rfftfreq(n, 1 / fs)
    sel = (freqs >= 20) & (freqs <= 0.45 * fs)
    f = freqs[sel]

    def h(sos):
        return signal.sosfreqz(sos, worN=f, fs=fs)[1]

    ap = [h(lr4("low", c, fs)) + h(lr4("high", c, fs)) for c in xo]
    expected = [h(lr4("low", xo[0], fs)) * ap[1] * ap[2],
                h(lr4("high", xo[0], fs)) * h(lr4("low", xo[1], fs)) * ap[2],
                h(lr4("high", xo[0], fs)) * h(lr4("high", xo[1], fs)) * h(lr4("low", xo[2], fs)),
                h(lr4("high", xo[0], fs)) * h(lr4("high", xo[1], fs)) * h(lr4("high", xo[2], fs))]
    total = np.zeros(f.size, complex)
    for b in range(4):
        widths = [0.0] * 4
        widths[b] = 1.0
        _, side = mid_side(StereoWidth(fs, crossover_hz=xo, widths=widths).process(side_impulse(n)))
        realized = np.fft.rfft(side)[sel]
        total += realized
        err = np.abs(realized - expected[b])  # complex: magnitude and phase
        assert np.max(err) < 1e-5, f"band {b}"
    assert np.max(np.abs(20 * np.log10(np.abs(total)))) < 0.01


# ---------------------------------------------------------------- width

CONFIGS = [
    ((), (1.6,), None),
    ((700.0,), (0.3, 1.8), None),
    ((200.0, 3000.0), (0.0, 1.3, 2.0), None),
    ((150.0, 900.0, 5000.0), (0.5, 1.0, 1.5, 0.8), None),
    ((250.0, 4000.0), (1.2, 0.7, 1.9), 120.0),
    ((), (1.0,), 80.0),
]


@pytest.mark.parametrize("fs", (44100, 48000, 96000))
@pytest.mark.parametrize("config", CONFIGS, ids=[f"{len(c[0]) + 1}band" + ("-monobass" if c[2] else "")
                                                  for c in CONFIGS])
def test_width_matches_independent_scipy_reference(config, fs, rng):
    crossovers, widths, mono = config
    x = noise(rng, 2, fs // 2)
    x[1] = (0.5 * x[0] + 0.5 * x[1]).astype(np.float32)  # partly correlated, like music
    kernel = StereoWidth(fs, crossover_hz=crossovers, widths=widths, mono_bass_hz=mono)
    y = kernel.process(x)
    ref = reference_width(x, fs, crossovers, widths, mono)
    for ch in range(2):
        assert db_error(y[ch], ref[ch]) < -100.0, f"channel {ch}"


def test_all_widths_one_is_a_flat_allpass_identical_on_both_channels():
    n = 1 << 17
    kernel = StereoWidth(FS, crossover_hz=(100.0, 800.0, 5000.0))
    assert kernel.widths == (1.0, 1.0, 1.0, 1.0) and kernel.mono_bass_hz is None
    x = np.zeros((2, n), dtype=np.float32)
    x[0, 0] = 1.0  # impulse in L only: any leak into R would be a stereo-image change
    y = kernel.process(x).astype(np.float64)
    spectrum = np.fft.rfft(y[0])
    freqs = np.fft.rfftfreq(n, 1 / FS)
    sel = (freqs >= 10) & (freqs <= 0.49 * FS)
    assert np.max(np.abs(20 * np.log10(np.abs(spectrum[sel])))) < 0.01
    assert np.max(np.abs(y[1])) < 1e-6  # R stays silent (up to float rounding)
    # and it is a real all-pass, not a copy: the phase turns at the crossovers
    assert not np.allclose(y[0][:1000], x[0][:1000].astype(np.float64), atol=1e-3)


def test_width_zero_everywhere_gives_identical_channels(rng):
    x = noise(rng, 2, 20000)
    for mono in (None, 100.0):
        y = StereoWidth(FS, crossover_hz=(300.0, 3000.0), widths=(0, 0, 0), mono_bass_hz=mono).process(x)
        assert np.array_equal(y[0], y[1])
        assert rms_db(y[0]) > rms_db(x[0]) - 10  # the mid is still there


def test_width_two_boosts_side_by_6db_and_keeps_mid():
    n = FS
    kernel = StereoWidth(FS, crossover_hz=(200.0, 2000.0), widths=(2.0, 2.0, 2.0))
    side_in, mid_in = tone(90.0, n) + tone(1000.0, n) + tone(7000.0, n), tone(440.0, n)
    y = kernel.process(stereo(mid_in + side_in, mid_in - side_in))
    mid_out, side_out = mid_side(y)
    settled = slice(n // 2, n)
    assert rms_db(side_out[settled]) - rms_db(side_in[settled]) == pytest.approx(20 * math.log10(2), abs=0.01)
    assert rms_db(mid_out[settled]) - rms_db(mid_in[settled]) == pytest.approx(0.0, abs=0.01)


def test_width_of_one_band_only_changes_that_band():
    n, xo, widths = FS, (300.0, 3000.0), (1.0, 0.25, 1.0)
    kernel = StereoWidth(FS, crossover_hz=xo, widths=widths)
    for freq in (60.0, 1000.0, 12000.0):
        # expected side gain from the band responses (scipy), including the overlap of the skirts
        h = lambda sos: signal.sosfreqz(sos, worN=[freq], fs=FS)[1][0]
        ap_high = h(lr4("low", xo[1], FS)) + h(lr4("high", xo[1], FS))
        bands = (h(lr4("low", xo[0], FS)) * ap_high,
                 h(lr4("high", xo[0], FS)) * h(lr4("low", xo[1], FS)),
                 h(lr4("high", xo[0], FS)) * h(lr4("high", xo[1], FS)))
        expected_db = 20 * math.log10(abs(sum(w * b for w, b in zip(widths, bands))))
        kernel.reset()
        side_in = tone(freq, n)
        _, side_out = mid_side(kernel.process(stereo(side_in, -side_in)))
        assert rms_db(side_out[n // 2:]) - rms_db(side_in[n // 2:]) == pytest.approx(expected_db, abs=0.01)
        if freq == 1000.0:
            assert expected_db < -10.0  # the middle band really is narrowed


def test_mono_bass_removes_side_below_its_frequency():
    n, fm = 2 * FS, 120.0
    kernel = StereoWidth(FS, crossover_hz=(500.0,), mono_bass_hz=fm)
    for freq, check in ((fm / 2, lambda d: d < -30.0), (fm / 4, lambda d: d < -60.0),
                        (fm * 4, lambda d: abs(d) < 0.1)):
        kernel.reset()
        side_in, mid_in = tone(freq, n), tone(freq + 1.0, n)  # whole cycles in the window
        mid_out, side_out = mid_side(kernel.process(stereo(mid_in + side_in, mid_in - side_in)))
        settled = slice(n // 2, n)
        side_db = rms_db(side_out[settled]) - rms_db(side_in[settled])
        assert check(side_db), f"side at {freq} Hz: {side_db:.1f} dB"
        assert rms_db(mid_out[settled]) - rms_db(mid_in[settled]) == pytest.approx(0.0, abs=0.01)


def test_mono_bass_fades_in_and_out_and_reset_removes_it(rng):
    ramp = round(20e-3 * FS)
    kernel = StereoWidth(FS, crossover_hz=(500.0,))
    assert kernel.mono_bass_amount == 0.0
    kernel.set_mono_bass(120.0)
    kernel.process(np.zeros((2, ramp // 4), dtype=np.float32))
    assert kernel.mono_bass_amount == pytest.approx(0.25, abs=1e-9)
    kernel.process(np.zeros((2, ramp), dtype=np.float32))
    assert kernel.mono_bass_amount == 1.0
    kernel.set_mono_bass(None)
    assert kernel.mono_bass_hz is None
    kernel.process(np.zeros((2, ramp + 1), dtype=np.float32))
    assert kernel.mono_bass_amount == 0.0
    # off but still in the path: the side below 120 Hz is back at full level (an all-pass)
    n = FS
    side_in = tone(60.0, n)
    _, side_out = mid_side(kernel.process(stereo(side_in, -side_in)))
    assert rms_db(side_out[n // 2:]) - rms_db(side_in[n // 2:]) == pytest.approx(0.0, abs=0.01)
    # reset takes the switched-off stage out: same as never having had it
    kernel.reset()
    x = noise(rng, 2, 5000)
    assert np.array_equal(kernel.process(x), StereoWidth(FS, crossover_hz=(500.0,)).process(x))


@pytest.mark.parametrize("ramp_ms, clicks", ((20.0, False), (0.0, True)))
def test_turning_mono_bass_off_does_not_click(ramp_ms, clicks):
    """The largest sample-to-sample step right after the switch is no larger than in the
    steady state that follows it (an abrupt switch, ramp_ms=0, is shown to fail this)."""
    n = FS
    t = np.arange(n) / FS
    side, mid = 0.25 * np.sin(2 * np.pi * 60 * t), 0.25 * np.sin(2 * np.pi * 45 * t + 0.3)
    x = stereo(mid + side, mid - side)
    kernel = StereoWidth(FS, crossover_hz=(500.0,), mono_bass_hz=120.0, ramp_ms=ramp_ms)
    first = kernel.process(np.ascontiguousarray(x[:, : n // 2]))
    kernel.set_mono_bass(None)
    y = np.concatenate([first, kernel.process(np.ascontiguousarray(x[:, n // 2:]))], axis=1)
    step = np.abs(np.diff(y.astype(np.float64), axis=1))
    at_switch = step[:, n // 2 - 1: n // 2 + 2000].max()
    settled = step[:, n // 2 + 5000:].max()
    assert (at_switch > 3 * settled) == clicks, (at_switch, settled)


def test_width_change_ramps_per_sample_and_lands_exactly():
    ramp_ms = 10.0
    ramp = round(ramp_ms * 1e-3 * FS)
    kernel = StereoWidth(FS, crossover_hz=(500.0,), ramp_ms=ramp_ms)
    kernel.set_widths((0.0, 2.0))
    assert kernel.widths == (0.0, 2.0) and kernel.current_widths == (1.0, 1.0)
    kernel.process(np.zeros((2, ramp // 2), dtype=np.float32))
    np.testing.assert_allclose(kernel.current_widths, (0.5, 1.5), atol=1e-9)
    kernel.process(np.zeros((2, ramp), dtype=np.float32))
    assert kernel.current_widths == (0.0, 2.0)


def test_crossover_and_mono_bass_changes_take_effect(rng):
    x = noise(rng, 2, 10000)
    moved = StereoWidth(FS, crossover_hz=(200.0, 2000.0), widths=(0.2, 1.0, 1.7))
    moved.set_crossovers((500.0, 5000.0))
    moved.set_mono_bass(90.0)
    moved.reset()
    fresh = StereoWidth(FS, crossover_hz=(500.0, 5000.0), widths=(0.2, 1.0, 1.7), mono_bass_hz=90.0)
    assert np.array_equal(moved.process(x), fresh.process(x))
    assert moved.crossover_hz == (500.0, 5000.0) and moved.mono_bass_hz == 90.0
    moved.set_mono_bass(None)
    assert moved.mono_bass_hz is None and moved.mono_bass_amount == 1.0  # fading out from here


def test_in_place_processing_equals_out_of_place(rng):
    x = noise(rng, 2, 3000)
    expected = StereoWidth(FS, crossover_hz=(400.0,), widths=(0.5, 1.5), mono_bass_hz=100.0).process(x)
    kernel = StereoWidth(FS, crossover_hz=(400.0,), widths=(0.5, 1.5), mono_bass_hz=100.0)
    buf = x.copy()
    ptrs = channel_pointers(buf)
    assert lib.rt_stereo_width_process(kernel._state, ptrs, ptrs, buf.shape[1]) == buf.shape[1]
    assert np.array_equal(buf, expected)


def test_latency_is_zero():
    assert StereoWidth(FS).latency_frames == 0
    assert CorrelationMeter(FS).latency_frames == 0


# ---------------------------------------------------------------- kernel convention

@pytest.mark.parametrize("size", BLOCK_SIZES)
def test_width_block_size_invariance_is_bit_exact(size, rng):
    x = np.zeros((2, 40000), dtype=np.float32)
    x[:, :12000] = noise(rng, 2, 12000)  # then silence: the decay crosses the state floor

    def make():
        k = StereoWidth(FS, crossover_hz=(150.0, 1200.0, 6000.0), mono_bass_hz=90.0, ramp_ms=50.0)
        k.set_widths((0.0, 0.6, 1.4, 2.0))  # ramping during the run
        k.set_mono_bass(None)  # and fading the mono bass out
        return k

    whole = make().process(x)
    assert np.count_nonzero((whole != 0) & (np.abs(whole) < 1e-29)) > 0, "the tail should reach the floor"
    assert np.array_equal(whole, in_blocks(make().process, x, size))


@pytest.mark.parametrize("frames", (0, 1, 7, 64))
def test_frames_out_equal_frames_in(frames, rng):
    kernel = StereoWidth(FS, crossover_hz=(300.0, 3000.0), widths=(0.5, 1.0, 1.5), mono_bass_hz=100.0)
    assert kernel.process(noise(rng, 2, frames)).shape == (2, frames)
    meter = CorrelationMeter(FS)
    assert meter.process(noise(rng, 2, frames)) == frames


def test_width_rings_out_without_subnormals_even_without_ftz():
    """Called straight through C (the facade turns FTZ/DAZ on; an audio thread might not)."""
    kernel = StereoWidth(FS, crossover_hz=(40.0, 400.0, 15000.0), widths=(2.0, 0.3, 1.7, 2.0), mono_bass_hz=30.0)
    x = np.zeros((2, 20 * FS + 3), dtype=np.float32)
    x[0, 0], x[1, 0] = 1.0, -0.3
    y = np.empty_like(x)
    for i in range(0, x.shape[1], 4096):
        a, b = np.ascontiguousarray(x[:, i:i + 4096]), np.empty((2, min(4096, x.shape[1] - i)), np.float32)
        lib.rt_stereo_width_process(kernel._state, channel_pointers(a), channel_pointers(b), a.shape[1])
        y[:, i:i + a.shape[1]] = b
    assert np.max(np.abs(y[:, :FS // 10])) > 1e-3
    assert subnormal_count(y) == 0
    assert np.all(y[:, -FS:] == 0), "20 s after an impulse the filters must have settled on exactly 0"


# ---------------------------------------------------------------- correlation meter

def reference_correlation(x: np.ndarray, fs: float, window_ms: float) -> float:
    a = 1 - math.exp(-1 / (window_ms * 1e-3 * fs))
    x = x.astype(np.float64)

    def avg(v):
        return signal.lfilter([a], [1, -(1 - a)], v)[-1]

    return avg(x[0] * x[1]) / math.sqrt(avg(x[0] ** 2) * avg(x[1] ** 2))


def test_correlation_of_identical_inverted_and_independent_signals(rng):
    x = noise(rng, 2, FS)
    cases = ((x[0], x[0], 1.0, 1e-12), (x[0], -x[0], -1.0, 1e-12), (x[0], x[1], 0.0, 0.05))
    for left, right, expected, tol in cases:
        meter = CorrelationMeter(FS, window_ms=1000.0)
        meter.process(stereo(left, right))
        assert meter.value() == pytest.approx(expected, abs=tol)


@pytest.mark.parametrize("window_ms", (10.0, 300.0, 3000.0))
def test_correlation_matches_reference_exponential_average(window_ms, rng):
    x = noise(rng, 2, FS)
    mixed = stereo(x[0], 0.6 * x[0] + 0.8 * x[1])  # r = 0.6 in expectation
    meter = CorrelationMeter(FS, window_ms=window_ms)
    assert meter.coefficient == pytest.approx(1 - math.exp(-1e3 / (window_ms * FS)), rel=1e-12)
    meter.process(mixed)
    assert meter.value() == pytest.approx(reference_correlation(mixed, FS, window_ms), abs=1e-9)
    if window_ms >= 300:
        assert meter.value() == pytest.approx(0.6, abs=0.05)


def test_correlation_follows_a_change_within_its_window(rng):
    x = noise(rng, 2, FS)
    meter = CorrelationMeter(FS, window_ms=50.0)
    meter.process(stereo(x[0], x[0]))
    assert meter.value() == pytest.approx(1.0, abs=1e-12)
    meter.process(stereo(x[1][: FS // 2], -x[1][: FS // 2]))  # 10 time constants later
    assert meter.value() < -0.999


def test_correlation_of_silence_is_zero_never_nan(rng):
    meter = CorrelationMeter(FS, window_ms=10.0)
    assert meter.value() == 0.0
    meter.process(np.zeros((2, 1000), dtype=np.float32))
    assert meter.value() == 0.0
    one_sided = stereo(noise(rng, 1, 1000)[0], np.zeros(1000))
    meter.process(one_sided)
    assert meter.value() == 0.0
    # a channel below the state floor (here -400 dBFS against 0 dBFS) counts as silent
    meter.reset()
    meter.process(stereo(np.full(1000, 1e-20), np.ones(1000)))
    assert meter.value() == 0.0
    meter.reset()
    meter.process(noise(rng, 2, FS))
    assert meter.value() != 0.0
    meter.process(np.zeros((2, 2 * FS), dtype=np.float32))  # states decay below the floor
    assert meter.value() == 0.0


@pytest.mark.parametrize("size", BLOCK_SIZES)
def test_correlation_block_size_invariance_is_bit_exact(size, rng):
    x = noise(rng, 2, 12000)
    x[1] = (0.3 * x[0] + x[1]).astype(np.float32)
    whole, split = CorrelationMeter(FS, window_ms=20.0), CorrelationMeter(FS, window_ms=20.0)
    whole.process(x)
    in_blocks(lambda b: (split.process(b), b)[1], x, size)
    assert whole.value() == split.value()


def test_correlation_stays_in_range_for_extreme_input(rng):
    meter = CorrelationMeter(FS, window_ms=1.0)
    big = np.full((2, 100), 3e38, dtype=np.float32)
    tiny = np.full((2, 100), 1e-38, dtype=np.float32)
    for block in (big, tiny, noise(rng, 2, 100, level=1e-20)):
        meter.process(block)
        v = meter.value()
        assert math.isfinite(v) and -1.0 <= v <= 1.0


# ---------------------------------------------------------------- validation

@pytest.mark.parametrize("make, error, message", [
    (lambda: StereoWidth(FS, channels=1), ValueError, r"StereoWidth: channels = 1; .*stereo"),
    (lambda: StereoWidth(FS, channels=6), ValueError, r"StereoWidth: channels = 6; .*stereo"),
    (lambda: StereoWidth(FS, crossover_hz=(2000.0, 200.0)), ValueError,
     r"crossover_hz\[1\] = 200.0 is not above crossover_hz\[0\] = 2000.0"),
    (lambda: StereoWidth(FS, crossover_hz=(100.0, 200.0, 400.0, 800.0)), ValueError,
     r"crossover_hz has 4 frequencies; at most 3"),
    (lambda: StereoWidth(FS, crossover_hz=(30000.0,)), ValueError,
     r"StereoWidth: crossover_hz\[0\] = 30000.0 is outside \[20, 21600\] Hz"),
    (lambda: StereoWidth(FS, crossover_hz=(float("nan"),)), ValueError, r"crossover_hz\[0\] = nan"),
    (lambda: StereoWidth(FS, crossover_hz=500.0), TypeError, r"crossover_hz must be a sequence"),
    (lambda: StereoWidth(FS, crossover_hz=(500.0,), widths=(1.0,)), ValueError,
     r"widths has 1 values; this instance has 2 bands"),
    (lambda: StereoWidth(FS, crossover_hz=(500.0,), widths=(1.0, 2.5)), ValueError,
     r"widths\[1\] = 2.5 is outside \[0, 2\]"),
    (lambda: StereoWidth(FS, mono_bass_hz=5.0), ValueError, r"mono_bass_hz = 5.0 is outside \[20, 1000\] Hz"),
    (lambda: StereoWidth(FS, ramp_ms=-1.0), ValueError, r"ramp_ms = -1.0 is outside"),
    (lambda: StereoWidth(1000.0), ValueError, r"sample_rate = 1000.0 is outside"),
    (lambda: CorrelationMeter(FS, channels=1), ValueError, r"CorrelationMeter: channels = 1; .*stereo"),
    (lambda: CorrelationMeter(FS, window_ms=0.0), ValueError, r"window_ms = 0.0 is outside \[1, 60000\] ms"),
])
def test_constructor_validation(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_setter_and_block_validation(rng):
    kernel = StereoWidth(FS, crossover_hz=(300.0, 3000.0), widths=(0.5, 1.0, 1.5))
    with pytest.raises(ValueError, match=r"StereoWidth.set_width: width = nan is outside \[0, 2\]"):
        kernel.set_width(0, float("nan"))
    with pytest.raises(ValueError, match=r"StereoWidth.set_width: band = 3 is outside \[0, 2\]"):
        kernel.set_width(3, 1.0)
    with pytest.raises(ValueError, match=r"set_widths: widths\[2\] = -0.1 is outside"):
        kernel.set_widths((1.0, 1.0, -0.1))
    with pytest.raises(ValueError, match=r"set_crossovers: crossover_hz has 1 frequencies; .* needs 2"):
        kernel.set_crossovers((500.0,))
    with pytest.raises(ValueError, match=r"set_mono_bass: mono_bass_hz = inf is outside"):
        kernel.set_mono_bass(float("inf"))
    assert kernel.widths == (0.5, 1.0, 1.5), "a refused set_widths must change nothing"
    assert kernel.crossover_hz == (300.0, 3000.0) and kernel.mono_bass_hz is None
    with pytest.raises(ValueError, match=r"StereoWidth.process: block has 1 channels .* stereo \(2, frames\)"):
        kernel.process(noise(rng, 1, 64))
    with pytest.raises(TypeError, match=r"StereoWidth.process: block has dtype float64"):
        kernel.process(np.zeros((2, 64)))
    bad = noise(rng, 2, 64)
    bad[1, 5] = np.inf
    with pytest.raises(ValueError, match=r"non-finite samples \(first at channel 1, frame 5"):
        kernel.process(bad)
    meter = CorrelationMeter(FS)
    with pytest.raises(ValueError, match=r"CorrelationMeter.process: block has 3 channels"):
        meter.process(noise(rng, 3, 64))


def test_c_setters_refuse_and_never_store_bad_values():
    kernel = StereoWidth(FS, crossover_hz=(300.0, 3000.0), widths=(0.5, 1.0, 1.5), ramp_ms=0.0)
    st = kernel._state
    for bad in (float("nan"), float("inf"), -0.5, 2.5):
        assert lib.rt_stereo_width_set_width(st, 0, bad) == -1
    assert lib.rt_stereo_width_set_width(st, 3, 1.0) == -1
    assert kernel.widths == (0.5, 1.0, 1.5)
    for freqs in ((3000.0, 300.0), (300.0, float("nan")), (300.0, 24000.0)):
        assert lib.rt_stereo_width_set_crossovers(st, ffi.new("double[]", freqs), 2) == -1
    assert lib.rt_stereo_width_set_crossovers(st, ffi.new("double[]", [300.0]), 1) == -1
    assert lib.rt_stereo_width_set_mono_bass(st, float("nan")) == -1
    assert lib.rt_stereo_width_set_mono_bass(st, 30000.0) == -1
    # nothing was half-applied: still the original filter
    x = noise(np.random.default_rng(1), 2, 4000)
    ref = StereoWidth(FS, crossover_hz=(300.0, 3000.0), widths=(0.5, 1.0, 1.5), ramp_ms=0.0)
    assert np.array_equal(kernel.process(x), ref.process(x))
    assert lib.rt_stereo_width_create(1, FS, 1, ffi.NULL, 0.0) == ffi.NULL
    assert lib.rt_stereo_width_create(2, FS, 5, ffi.new("double[]", [1.0, 2, 3, 4]), 0.0) == ffi.NULL
    assert lib.rt_correlation_create(1, FS, 300.0) == ffi.NULL
