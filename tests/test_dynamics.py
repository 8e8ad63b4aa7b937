"""Compressor and soft clipper against references written here (textbook formulas, numpy)."""

import math

import numpy as np
import pytest

from rt_kernels._ffi import channel_pointers, ffi, lib
from rt_kernels.dynamics import Compressor, SoftClipper
from tests.conftest import BLOCK_SIZES, in_blocks, noise, subnormal_count

FS = 48000


def textbook_gr_db(x_db, threshold_db, ratio, knee_db):
    """Gain reduction (dB, >= 0) of the soft-knee static curve, Giannoulis et al. 2012 (textbook form)."""
    x = np.asarray(x_db, dtype=np.float64)
    t, w = threshold_db, knee_db
    over = x - t
    y = np.where(2 * over < -w, x, t + over / ratio)
    if w > 0:
        in_knee = 2 * np.abs(over) <= w
        y = np.where(in_knee, x + (1 / ratio - 1) * (over + w / 2) ** 2 / (2 * w), y)
    return x - y


def square(amplitudes, frames, period=48):
    """One channel per amplitude: a square wave, so |x| is the same on every sample."""
    sign = np.where((np.arange(frames) // (period // 2)) % 2 == 0, 1.0, -1.0)
    return (np.asarray(amplitudes, dtype=np.float64)[:, None] * sign[None, :]).astype(np.float32)


def sine(amplitudes, frames, freq=1000.0, fs=FS):
    t = np.arange(frames) / fs
    return (np.asarray(amplitudes, dtype=np.float64)[:, None] * np.sin(2 * np.pi * freq * t)[None, :]).astype(np.float32)


def measured_gr_db(x, y):
    """Gain reduction per sample (dB, >= 0 when the output is quieter) from output / input."""
    return -20 * np.log10(np.abs(y.astype(np.float64)) / np.abs(x.astype(np.float64)))


LEVELS_DB = np.linspace(-60.0, 0.0, 20)
CURVES = [  # threshold_db, ratio, knee_db
    (-20.0, 4.0, 0.0),
    (-20.0, 4.0, 10.0),
    (-30.0, 2.0, 6.0),
    (-10.0, 10.0, 12.0),
    (-24.0, 1.5, 0.0),
    (-40.0, 100.0, 20.0),
]
CURVE_IDS = [f"T{t:g}-R{r:g}-W{w:g}" for t, r, w in CURVES]


# --- compressor: static curve -------------------------------------------------------------

@pytest.mark.parametrize("curve", CURVES, ids=CURVE_IDS)
def test_static_curve_peak_detector_steady_squares(curve):
    threshold, ratio, knee = curve
    # 20 levels side by side as 20 unlinked channels; |x| is constant, so after the
    # smoother settles the gain reduction is the static curve exactly.
    x = square(10 ** (LEVELS_DB / 20), FS // 2)
    comp = Compressor(len(LEVELS_DB), FS, threshold_db=threshold, ratio=ratio, knee_db=knee,
                      attack_ms=2.0, release_ms=50.0, link="none")
    y = comp.process(x)
    gr = measured_gr_db(x[:, -480:], y[:, -480:])
    expected = textbook_gr_db(LEVELS_DB, threshold, ratio, knee)
    np.testing.assert_allclose(gr, np.repeat(expected[:, None], 480, axis=1), atol=0.1, rtol=0)
    assert expected.max() > 5.0, "the levels must reach well into compression"
    # Stricter than the 0.1 dB: the curve is exact to float32 resolution (a
    # half-ulp of the input and of the output is 5.2e-7 dB each), so the kernel's inline
    # log/exp must not cost measurable accuracy.
    assert np.max(np.abs(gr - expected[:, None])) < 3e-6
    np.testing.assert_allclose(comp.gain_reduction_db(), expected, atol=3e-6)


@pytest.mark.parametrize("curve", CURVES, ids=CURVE_IDS)
def test_static_curve_peak_detector_sines_at_their_peaks(curve):
    threshold, ratio, knee = curve
    # 1 kHz at 48 kHz puts a sample on every crest (frame 12 of 48).  Instant attack:
    # the gain reduction at a crest is the static curve at the sine's peak level.
    x = sine(10 ** (LEVELS_DB / 20), FS // 4)
    comp = Compressor(len(LEVELS_DB), FS, threshold_db=threshold, ratio=ratio, knee_db=knee,
                      attack_ms=0.0, release_ms=500.0, link="none")
    y = comp.process(x)
    crests = np.arange(FS // 8 + 12, FS // 4, 48)
    gr = measured_gr_db(x[:, crests], y[:, crests])
    expected = textbook_gr_db(LEVELS_DB, threshold, ratio, knee)
    np.testing.assert_allclose(gr, np.repeat(expected[:, None], crests.size, axis=1), atol=0.1, rtol=0)


@pytest.mark.parametrize("curve", CURVES[:4], ids=CURVE_IDS[:4])
def test_rms_detector_reads_a_sines_rms_level(curve):
    threshold, ratio, knee = curve
    x = sine(10 ** (LEVELS_DB / 20), FS)
    comp = Compressor(len(LEVELS_DB), FS, threshold_db=threshold, ratio=ratio, knee_db=knee,
                      attack_ms=5.0, release_ms=100.0, detector="rms", rms_ms=50.0, link="none")
    y = comp.process(x)
    tail = slice(FS // 2, FS)
    rms = lambda v: np.sqrt(np.mean(v[:, tail].astype(np.float64) ** 2, axis=1))
    gr = -20 * np.log10(rms(y) / rms(x))
    rms_level_db = LEVELS_DB + 20 * np.log10(np.sqrt(0.5))  # a sine's RMS is 3.01 dB below its peak
    np.testing.assert_allclose(gr, textbook_gr_db(rms_level_db, threshold, ratio, knee), atol=0.1, rtol=0)
    # ... and not its peak level: the two readings differ by more than the tolerance here.
    peak_reading = textbook_gr_db(LEVELS_DB, threshold, ratio, knee)
    assert np.max(np.abs(peak_reading - textbook_gr_db(rms_level_db, threshold, ratio, knee))) > 1.0


# --- compressor: ballistics ----------------------------------------------------------------

def time_to_fraction(trajectory, start, end, fraction=1 - 1 / math.e):
    """Seconds from the step until the trajectory first covers `fraction` of start -> end,
    with linear interpolation between samples.  Sample k after the step is at time (k+1)/fs:
    a one-pole smoother's first output after a step already includes one update."""
    target = start + fraction * (end - start)
    covered = (trajectory - target) * np.sign(end - start) >= 0
    k = int(np.argmax(covered))
    assert covered[k], "the trajectory never got there"
    before = trajectory[k - 1] if k > 0 else start
    frac = (target - before) / (trajectory[k] - before)
    return (k + frac) / FS


@pytest.mark.parametrize("attack_ms, release_ms", [(1.0, 50.0), (5.0, 100.0), (20.0, 300.0), (50.0, 1000.0)])
@pytest.mark.parametrize("knee_db", [0.0, 6.0])
def test_attack_and_release_time_constants(attack_ms, release_ms, knee_db):
    # Time constant as in the paper: a = exp(-1/(tau fs)) is a one-pole smoother whose
    # step response covers 1 - 1/e (63.2 %) of the change after tau.  The detector
    # smooths the gain reduction in dB, so we measure on the dB trajectory: from 0 to
    # the static value after a step up (attack), and back to 0 after a step down (release).
    quiet, loud = 10 ** (-50 / 20), 10 ** (-6 / 20)
    pre, hold, post = FS // 10, int(FS * (10 * attack_ms / 1000 + 0.05)), int(FS * 8 * release_ms / 1000)
    amp = np.concatenate([np.full(pre, quiet), np.full(hold, loud), np.full(post, quiet)])
    x = square([1.0], amp.size) * amp.astype(np.float32)
    comp = Compressor(1, FS, threshold_db=-20.0, ratio=4.0, knee_db=knee_db,
                      attack_ms=attack_ms, release_ms=release_ms)
    gr = measured_gr_db(x, comp.process(x))[0]
    full = float(textbook_gr_db(-6.0, -20.0, 4.0, knee_db))
    assert gr[:pre] == pytest.approx(np.zeros(pre), abs=1e-4)
    assert gr[pre + hold - 1] == pytest.approx(full, abs=0.01), "attack did not settle"
    attack_s = time_to_fraction(gr[pre:pre + hold], 0.0, full)
    release_s = time_to_fraction(gr[pre + hold:], full, 0.0)
    assert attack_s == pytest.approx(attack_ms / 1000, rel=0.10)
    assert release_s == pytest.approx(release_ms / 1000, rel=0.10)


def test_gain_changes_sample_by_sample_not_per_block():
    # The predecessor applied one gain per chunk.  During an attack every sample must get
    # a new gain, whatever block size the caller uses.
    x = square([0.5], 4096)
    comp = Compressor(1, FS, threshold_db=-30.0, ratio=4.0, knee_db=0.0, attack_ms=20.0, release_ms=200.0)
    gr = measured_gr_db(x, in_blocks(comp.process, x, 512))[0]
    steps = np.diff(gr[:1000])
    assert np.all(steps > 0), "the gain reduction must rise on every sample during the attack"


# --- compressor: stereo link ---------------------------------------------------------------

def _loud_left_quiet_right(frames=FS // 2):
    return np.concatenate([square([0.5], frames), square([0.01], frames)])  # -6 dBFS, -40 dBFS


def _settled_gr(comp, x):
    y = comp.process(x)
    return measured_gr_db(x[:, -100:], y[:, -100:]).mean(axis=1), y


@pytest.mark.parametrize("link, level_db", [("max", 20 * math.log10(0.5)),
                                            ("mean", 20 * math.log10((0.5 + 0.01) / 2))])
def test_linked_modes_reduce_both_channels_equally(link, level_db):
    x = _loud_left_quiet_right()
    comp = Compressor(2, FS, threshold_db=-20.0, ratio=4.0, knee_db=0.0, attack_ms=1.0, release_ms=50.0, link=link)
    gr, y = _settled_gr(comp, x)
    expected = float(textbook_gr_db(level_db, -20.0, 4.0, 0.0))
    np.testing.assert_allclose(gr, [expected, expected], atol=0.01)
    np.testing.assert_allclose(comp.gain_reduction_db(), [expected, expected], atol=0.01)


def test_unlinked_channels_are_independent():
    x = _loud_left_quiet_right()
    comp = Compressor(2, FS, threshold_db=-20.0, ratio=4.0, knee_db=0.0, attack_ms=1.0, release_ms=50.0, link="none")
    gr, y = _settled_gr(comp, x)
    assert gr[0] == pytest.approx(float(textbook_gr_db(20 * math.log10(0.5), -20.0, 4.0, 0.0)), abs=0.01)
    assert np.array_equal(y[1], x[1]), "a channel below threshold passes unchanged when unlinked"
    np.testing.assert_allclose(comp.gain_reduction_db(), [gr[0], 0.0], atol=0.01)


def test_mean_link_in_rms_mode_averages_the_channels_rms_values():
    a, b = 0.5, 0.1
    x = sine([a, b], FS)
    comp = Compressor(2, FS, threshold_db=-30.0, ratio=3.0, knee_db=0.0, attack_ms=5.0, release_ms=100.0,
                      detector="rms", rms_ms=50.0, link="mean")
    y = comp.process(x)
    tail = slice(FS // 2, FS)
    rms = lambda v: np.sqrt(np.mean(v[:, tail].astype(np.float64) ** 2, axis=1))
    gr = -20 * np.log10(rms(y) / rms(x))
    expected = float(textbook_gr_db(20 * math.log10((a + b) / 2 / math.sqrt(2)), -30.0, 3.0, 0.0))
    np.testing.assert_allclose(gr, [expected, expected], atol=0.1)


# --- compressor: makeup and metering -------------------------------------------------------

def test_auto_makeup_restores_full_scale_and_makeup_db_trims():
    threshold, ratio, knee = -20.0, 4.0, 6.0
    auto = float(textbook_gr_db(0.0, threshold, ratio, knee))  # 15 dB: the curve's reduction at 0 dBFS
    levels = np.array([0.0, -6.0, -40.0])
    x = square(10 ** (levels / 20), FS // 2)
    for trim in (0.0, 2.0):
        comp = Compressor(3, FS, threshold_db=threshold, ratio=ratio, knee_db=knee, attack_ms=1.0,
                          release_ms=50.0, link="none", auto_makeup=True, makeup_db=trim)
        assert comp.makeup_total_db == pytest.approx(auto + trim, abs=1e-9)
        y = comp.process(x)
        gain_db = 20 * np.log10(np.abs(y[:, -1].astype(np.float64)) / np.abs(x[:, -1]))
        expected = auto + trim - textbook_gr_db(levels, threshold, ratio, knee)
        np.testing.assert_allclose(gain_db, expected, atol=0.01)
        assert gain_db[0] == pytest.approx(trim, abs=0.01), "0 dBFS in -> 0 dBFS + trim out"


def test_makeup_change_ramps_without_a_jump():
    x = square([0.01], FS // 10)  # below threshold: output = input * makeup
    comp = Compressor(1, FS, threshold_db=-20.0, makeup_db=0.0)
    comp.process(x)
    comp.set(makeup_db=12.0)
    gain_db = 20 * np.log10(np.abs(comp.process(x)[0].astype(np.float64)) / 0.01)
    ramp = round(0.020 * FS)
    assert gain_db[0] < 0.1, "the first sample after the change must not jump"
    assert np.all(np.diff(gain_db[:ramp]) > 0)
    np.testing.assert_allclose(gain_db[ramp:], 12.0, atol=1e-4)


def test_meter_equals_measured_gain_reduction():
    x = np.concatenate([square([0.9], FS // 4), square([0.2], FS // 4)])
    comp = Compressor(2, FS, threshold_db=-24.0, ratio=3.0, knee_db=4.0, attack_ms=10.0,
                      release_ms=80.0, link="none")
    x = np.ascontiguousarray(x[:, :3000])
    y = comp.process(x)  # mid-attack: the meter follows the trajectory
    measured = measured_gr_db(x, y)
    np.testing.assert_allclose(comp.gain_reduction_db(), measured[:, -1], atol=1e-4)
    np.testing.assert_allclose(comp.take_max_gain_reduction_db(), measured.max(axis=1), atol=1e-4)
    # Now the level drops: the max since the take is the first value of this stretch.
    quiet = square([0.05, 0.05], 2000)
    y = comp.process(quiet)
    measured = measured_gr_db(quiet, y)
    np.testing.assert_allclose(comp.gain_reduction_db(), measured[:, -1], atol=1e-4)
    np.testing.assert_allclose(comp.take_max_gain_reduction_db(), measured.max(axis=1), atol=1e-4)
    assert np.all(measured[:, 0] > measured[:, -1]), "releasing"
    comp.reset()
    assert np.array_equal(comp.take_max_gain_reduction_db(), [0.0, 0.0])


# --- compressor: convention ----------------------------------------------------------------

COMPRESSOR_SETUPS = [
    dict(link="none"), dict(link="max"), dict(link="mean"),
    dict(link="none", detector="rms"), dict(link="max", detector="rms"), dict(link="mean", detector="rms"),
]
SETUP_IDS = [f"{s['link']}-{s.get('detector', 'peak')}" for s in COMPRESSOR_SETUPS]


def _program(rng, frames=20000):
    # Noise with level jumps, so attack and release both run across block boundaries.
    env = np.repeat(10 ** (rng.uniform(-40, 0, frames // 500 + 1) / 20), 500)[None, :frames]
    return (noise(rng, 2, frames, 1.0) * env).astype(np.float32)


@pytest.mark.parametrize("setup", COMPRESSOR_SETUPS, ids=SETUP_IDS)
def test_compressor_block_size_invariance_is_bit_exact(setup, rng):
    x = _program(rng)
    kwargs = dict(threshold_db=-25.0, ratio=5.0, knee_db=6.0, attack_ms=3.0, release_ms=60.0, **setup)
    whole = Compressor(2, FS, **kwargs).process(x)
    for size in BLOCK_SIZES:
        assert np.array_equal(whole, in_blocks(Compressor(2, FS, **kwargs).process, x, size)), size


@pytest.mark.parametrize("frames", (0, 1, 7, 64))
def test_compressor_frames_out_equal_frames_in(frames, rng):
    comp = Compressor(2, FS)
    assert comp.process(noise(rng, 2, frames)).shape == (2, frames)


@pytest.mark.parametrize("setup", COMPRESSOR_SETUPS, ids=SETUP_IDS)
def test_no_subnormals_after_long_silence_following_loud_signal(setup, rng):
    loud = noise(rng, 2, FS, 0.7)
    silence = np.zeros((2, 10 * FS), dtype=np.float32)
    comp = Compressor(2, FS, threshold_db=-30.0, ratio=8.0, attack_ms=1.0, release_ms=100.0, **setup)
    assert comp.process(loud).size
    assert comp.take_max_gain_reduction_db().max() > 10.0
    y = in_blocks(comp.process, silence, 4096)
    assert subnormal_count(y) == 0
    # The envelope reached exactly zero (flushed), it did not linger in subnormals.
    assert np.array_equal(comp.gain_reduction_db(), [0.0, 0.0])
    tail = noise(rng, 2, 64, 1e-3)  # after it, a quiet signal passes bit for bit
    assert np.array_equal(comp.process(tail), tail)


def test_random_parameter_changes_while_processing(rng):
    # pluginval-style: every block gets new random parameters (link and detector
    # included); the output stays finite, free of subnormals, and below the input
    # level plus the largest makeup.
    x = _program(rng, 64 * 400)
    comp = Compressor(2, FS)
    out = []
    for i in range(0, x.shape[1], 64):
        comp.set(threshold_db=rng.uniform(-100, 20), ratio=rng.uniform(1, 1000), knee_db=rng.uniform(0, 48),
                 attack_ms=rng.choice([0.0, rng.uniform(0, 2000)]), release_ms=rng.choice([0.0, rng.uniform(0, 10000)]),
                 makeup_db=rng.uniform(-48, 12), auto_makeup=bool(rng.integers(2)),
                 detector=str(rng.choice(["peak", "rms"])), rms_ms=rng.uniform(0.1, 2000),
                 link=str(rng.choice(["none", "max", "mean"])))
        out.append(comp.process(np.ascontiguousarray(x[:, i:i + 64])))
    y = np.concatenate(out, axis=1)
    assert np.all(np.isfinite(y)) and subnormal_count(y) == 0
    assert np.all(np.isfinite(comp.gain_reduction_db()))
    # Gain never exceeds the largest makeup in play (12 dB + the largest auto makeup, 120 * (1 - 1/1000) dB).
    assert np.all(np.abs(y) <= np.abs(x) * 10 ** ((12 + 120) / 20) + 1e-30)


def test_nan_sample_in_c_does_not_poison_the_envelope(rng):
    # The facade refuses non-finite audio; below it, the C kernel reads a NaN as silence
    # and an Inf as +200 dB, so its state stays finite.
    x = _program(rng, 4000)
    with_nan = x.copy()
    with_nan[0, 1000] = np.nan
    zeroed = x.copy()
    zeroed[0, 1000] = 0.0
    outputs = []
    for block in (with_nan, zeroed):
        comp = Compressor(2, FS, threshold_db=-25.0, detector="rms", link="none")
        out = np.empty_like(block)
        lib.rt_compressor_process(comp._state, channel_pointers(block), channel_pointers(out), block.shape[1])
        outputs.append(out)
    assert np.isnan(outputs[0][0, 1000])
    assert np.array_equal(outputs[0][:, 1001:], outputs[1][:, 1001:])


def test_latency_is_zero():
    assert Compressor(2, FS).latency_frames == 0
    assert SoftClipper(2).latency_frames == 0


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(threshold_db=float("nan")), ValueError, r"Compressor: threshold_db = nan is outside \[-100, 20\] dBFS"),
    (dict(ratio=float("inf")), ValueError, r"Compressor: ratio = inf is outside \[1, 1000\]"),
    (dict(ratio=0.5), ValueError, r"Compressor: ratio = 0.5 is outside \[1, 1000\]"),
    (dict(knee_db=-1.0), ValueError, r"Compressor: knee_db = -1.0 is outside \[0, 48\] dB"),
    (dict(attack_ms=float("-inf")), ValueError, r"Compressor: attack_ms = -inf is outside"),
    (dict(release_ms=float("nan")), ValueError, r"Compressor: release_ms = nan is outside \[0, 10000\] ms"),
    (dict(makeup_db=float("inf")), ValueError, r"Compressor: makeup_db = inf is outside \[-48, 48\] dB"),
    (dict(rms_ms=0.0), ValueError, r"Compressor: rms_ms = 0.0 is outside \[0.1, 2000\] ms"),
    (dict(detector="vca"), ValueError, r"Compressor: detector = 'vca' is not one of 'peak', 'rms'"),
    (dict(link="left"), ValueError, r"Compressor: link = 'left' is not one of 'none', 'max', 'mean'"),
    (dict(auto_makeup=1), TypeError, r"Compressor: auto_makeup must be True or False, got int 1"),
    (dict(ratio="4"), TypeError, r"Compressor: ratio must be a number, got str '4'"),
])
def test_compressor_refuses_bad_parameters(kwargs, error, message):
    with pytest.raises(error, match=message):
        Compressor(2, FS, **kwargs)


def test_refused_set_changes_nothing(rng):
    x = _program(rng, 4000)
    reference = Compressor(2, FS, ratio=4.0).process(x)
    comp = Compressor(2, FS, ratio=4.0)
    with pytest.raises(ValueError, match=r"Compressor.set: ratio = nan is outside"):
        comp.set(threshold_db=-40.0, ratio=float("nan"))  # all or nothing: the threshold is not applied either
    with pytest.raises(TypeError, match=r"Compressor.set: unknown parameter 'treshold_db'"):
        comp.set(treshold_db=-40.0)
    assert comp.threshold_db == -20.0 and comp.ratio == 4.0
    assert np.array_equal(comp.process(x), reference)
    # The C setters guard themselves too: a non-finite value is refused, never stored.
    assert lib.rt_compressor_set_ratio(comp._state, float("nan")) == -1
    assert lib.rt_compressor_set_attack_ms(comp._state, float("inf")) == -1
    assert lib.rt_compressor_set_knee_db(comp._state, -0.5) == -1
    params = ffi.new("rt_compressor_params *")
    lib.rt_compressor_get_params(comp._state, params)
    assert (params.ratio, params.attack_ms, params.knee_db) == (4.0, 10.0, 6.0)


def test_set_applies_parameters(rng):
    x = square([0.5], FS // 4)
    comp = Compressor(1, FS, threshold_db=-10.0, ratio=2.0, knee_db=0.0, attack_ms=1.0)
    comp.process(x)
    comp.set(threshold_db=-30.0, ratio=6.0)
    y = comp.process(x)
    gr = measured_gr_db(x[:, -10:], y[:, -10:])
    np.testing.assert_allclose(gr, float(textbook_gr_db(20 * math.log10(0.5), -30.0, 6.0, 0.0)), atol=0.01)
    assert comp.params["ratio"] == 6.0


def test_compressor_refuses_non_finite_audio():
    x = np.zeros((2, 16), dtype=np.float32)
    x[1, 5] = np.inf
    with pytest.raises(ValueError, match=r"Compressor.process: block holds non-finite samples \(first at channel 1, frame 5"):
        Compressor(2, FS).process(x)


# --- soft clipper --------------------------------------------------------------------------

CLIPPERS = [(-1.0, 6.0), (0.0, 3.0), (-0.1, 0.5), (-6.0, 12.0), (-3.0, 0.1)]
CLIPPER_IDS = [f"C{c:g}-K{k:g}" for c, k in CLIPPERS]


def reference_clip(x, ceiling_db, knee_db):
    """The documented curve, computed here in float64."""
    c = 10 ** (ceiling_db / 20)
    t = c * 10 ** (-knee_db / 20)
    a = np.abs(x)
    return np.where(a <= t, x, np.sign(x) * (t + (c - t) * np.tanh((a - t) / (c - t))))


@pytest.mark.parametrize("ceiling_db, knee_db", CLIPPERS, ids=CLIPPER_IDS)
def test_soft_clipper_output_never_exceeds_the_ceiling(ceiling_db, knee_db, rng):
    ceiling = 10 ** (ceiling_db / 20)
    overs = sine([ceiling * 10.0, ceiling * 100.0], FS // 10, freq=997.0)  # +20 dB, +40 dB
    squares = np.concatenate([square([1.0], 4800), square([ceiling], 4800)])  # full scale, and at the ceiling
    hot = noise(rng, 2, 48000, 30.0)
    extremes = np.array([[np.finfo(np.float32).max, -np.finfo(np.float32).max, 1e30, -1e-30]], dtype=np.float32)
    clip = SoftClipper(2, ceiling_db=ceiling_db, knee_db=knee_db)
    for x in (overs, squares, hot, np.repeat(extremes, 2, axis=0)):
        y = clip.process(x).astype(np.float64)
        assert np.max(np.abs(y)) <= ceiling
    y = clip.process(overs)
    np.testing.assert_allclose(y, reference_clip(overs.astype(np.float64), ceiling_db, knee_db), atol=1e-6)


@pytest.mark.parametrize("ceiling_db, knee_db", CLIPPERS, ids=CLIPPER_IDS)
def test_soft_clipper_is_identity_below_the_knee(ceiling_db, knee_db, rng):
    knee = 10 ** ((ceiling_db - knee_db) / 20)
    x = np.clip(noise(rng, 2, 20000, knee / 2), -knee, knee)
    x = x[:, np.all(np.abs(x) <= knee, axis=0)]  # float32 rounding of the clip bound
    x = np.ascontiguousarray(x)
    assert np.array_equal(SoftClipper(2, ceiling_db, knee_db).process(x), x)


@pytest.mark.parametrize("ceiling_db, knee_db", CLIPPERS, ids=CLIPPER_IDS)
def test_soft_clipper_first_derivative_is_continuous(ceiling_db, knee_db):
    clip = SoftClipper(1, ceiling_db, knee_db)
    t, c = clip.knee_linear, 10 ** (ceiling_db / 20)
    assert t == pytest.approx(10 ** ((ceiling_db - knee_db) / 20), rel=1e-12)
    # One-sided difference quotients at the knee, from the double-precision curve.
    h = 1e-6 * c
    left = (clip.curve(t) - clip.curve(t - h)) / h
    right = (clip.curve(t + h) - clip.curve(t)) / h
    assert left == pytest.approx(1.0, abs=1e-6) and right == pytest.approx(1.0, abs=1e-3)
    # No kink anywhere: on a fine grid from 0 to 4 C (through the knee), the slope of
    # the float32 output between neighbouring intervals changes by a small amount only.
    grid = np.linspace(0.0, 4 * c, 40001)
    y = clip.process(grid.astype(np.float32)[None, :])[0].astype(np.float64)
    slope = np.diff(y) / np.diff(grid.astype(np.float32).astype(np.float64))
    assert np.max(np.abs(np.diff(slope))) < 0.01
    assert np.all(slope >= -1e-3) and slope[0] == pytest.approx(1.0, abs=1e-3)
    # A hard clipper at the same ceiling would fail the test above (the check can fail).
    hard = np.minimum(grid, c)
    assert np.max(np.abs(np.diff(np.diff(hard) / np.diff(grid)))) > 0.5


def test_soft_clipper_is_odd(rng):
    x = noise(rng, 2, 20000, 2.0)
    clip = SoftClipper(2, -1.0, 6.0)
    assert np.array_equal(clip.process(-x), -clip.process(x))


@pytest.mark.parametrize("size", BLOCK_SIZES)
def test_soft_clipper_block_size_invariance(size, rng):
    x = noise(rng, 2, 10000, 1.5)
    assert np.array_equal(SoftClipper(2).process(x), in_blocks(SoftClipper(2).process, x, size))


@pytest.mark.parametrize("frames", (0, 1, 7, 64))
def test_soft_clipper_frames_out_equal_frames_in(frames, rng):
    y = SoftClipper(2).process(noise(rng, 2, frames, 3.0))
    assert y.shape == (2, frames) and subnormal_count(y) == 0


def test_soft_clipper_set_and_validation():
    clip = SoftClipper(1, -1.0, 6.0)
    clip.set(ceiling_db=-6.0)
    assert np.max(np.abs(clip.process(square([1.0], 480)))) <= 10 ** (-6 / 20)
    assert (clip.ceiling_db, clip.knee_db) == (-6.0, 6.0)
    with pytest.raises(ValueError, match=r"SoftClipper: ceiling_db = nan is outside \[-60, 0\] dBFS"):
        SoftClipper(1, ceiling_db=float("nan"))
    with pytest.raises(ValueError, match=r"SoftClipper: knee_db = 0.0 is outside \[0.1, 24\] dB"):
        SoftClipper(1, knee_db=0.0)
    with pytest.raises(ValueError, match=r"SoftClipper.set: knee_db = inf is outside"):
        clip.set(knee_db=float("inf"))
    assert clip.knee_db == 6.0
    assert lib.rt_soft_clipper_set_params(clip._state, float("nan"), 6.0) == -1
    assert clip.ceiling_linear == pytest.approx(10 ** (-6 / 20), rel=1e-7)
