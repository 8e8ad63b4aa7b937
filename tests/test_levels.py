"""Gain, mix, crossfade, channel layout, DC blocker and level meter kernels."""

import numpy as np
import pytest

import rt_kernels as rk
from tests.conftest import BLOCK_SIZES, in_blocks, noise, subnormal_count

FS = 48000


def rms_db(x: np.ndarray) -> float:
    return 20 * np.log10(np.sqrt(np.mean(np.asarray(x, dtype=np.float64) ** 2)))


# ---- gain -------------------------------------------------------------------------------

def test_gain_ramps_linearly_and_lands_exactly_on_target():
    g = rk.Gain(1, FS, gain_db=0.0, ramp_ms=10.0)  # 480 frames
    g.set_gain_db(-6.0)
    y = g.process(np.ones((1, 1000), dtype=np.float32))[0].astype(np.float64)
    target = 10 ** (-6 / 20)
    expected_ramp = 1.0 + (target - 1.0) * np.arange(1, 481) / 480
    np.testing.assert_allclose(y[:480], expected_ramp, rtol=0, atol=2e-7)
    assert np.all(y[480:] == np.float32(target))
    assert g.gain_db == pytest.approx(-6.0, abs=1e-12)


def test_gain_change_has_no_step_larger_than_the_ramp_allows():
    g = rk.Gain(1, FS, gain_db=0.0, ramp_ms=20.0)
    g.set_gain_db(-40.0)
    y = g.process(np.ones((1, 2000), dtype=np.float32))[0]
    assert np.max(np.abs(np.diff(y))) < 1.0 / 960 + 1e-6  # full change spread over 960 frames


def test_gain_without_ramp_is_exact_from_the_first_sample(rng):
    g = rk.Gain(2, FS, gain_db=6.0, ramp_ms=0.0)
    x = noise(rng, 2, 100)
    y = g.process(x)
    assert np.array_equal(y, (x.astype(np.float64) * 10 ** (6 / 20)).astype(np.float32))


# ---- mix and crossfade ---------------------------------------------------------------------

def test_mix_extremes_are_bit_exact(rng):
    dry, wet = noise(rng, 2, 500), noise(rng, 2, 500)
    assert np.array_equal(rk.Mix(2, FS, wet=0.0).process(dry, wet), dry)
    assert np.array_equal(rk.Mix(2, FS, wet=1.0).process(dry, wet), wet)


def test_mix_half_is_the_mean(rng):
    dry, wet = noise(rng, 2, 500), noise(rng, 2, 500)
    out = rk.Mix(2, FS, wet=0.5).process(dry, wet)
    np.testing.assert_allclose(out, (dry.astype(np.float64) + wet) / 2, atol=1e-7)


def test_crossfade_is_equal_power_and_ends_on_b_exactly(rng):
    xf = rk.Crossfade(1, FS)
    a, b = noise(rng, 1, 3000), noise(rng, 1, 3000)
    assert np.array_equal(xf.process(a[:, :1000], b[:, :1000]), a[:, :1000])
    frames = xf.start(0.02)  # 960 frames
    assert frames == 960
    # Power law: with a = 1 and b = 0, then a = 0 and b = 1, the squared gains sum to 1.
    ones, zeros = np.ones((1, 960), np.float32), np.zeros((1, 960), np.float32)
    probe = rk.Crossfade(1, FS)
    probe.start(0.02)
    ga = probe.process(ones, zeros)[0].astype(np.float64)
    probe2 = rk.Crossfade(1, FS)
    probe2.start(0.02)
    gb = probe2.process(zeros, ones)[0].astype(np.float64)
    np.testing.assert_allclose(ga ** 2 + gb ** 2, 1.0, atol=1e-6)
    assert np.all(np.diff(ga) < 0) and np.all(np.diff(gb) > 0)
    out = xf.process(a[:, 1000:], b[:, 1000:])
    assert xf.position == 1.0
    assert np.array_equal(out[:, 960:], b[:, 1960:])


# ---- channel layout (ENG-01) -----------------------------------------------------------------

def test_mono_to_stereo_returns_stereo_unchanged(rng):
    stereo = noise(rng, 2, 256)
    assert np.array_equal(rk.mono_to_stereo(stereo), stereo)


def test_mono_to_stereo_duplicates_mono(rng):
    mono = noise(rng, 1, 256)
    out = rk.mono_to_stereo(mono)
    assert out.shape == (2, 256)
    assert np.array_equal(out[0], mono[0]) and np.array_equal(out[1], mono[0])


@pytest.mark.parametrize("channels", (3, 4, 6))
def test_mono_to_stereo_refuses_other_channel_counts(channels, rng):
    with pytest.raises(ValueError, match=rf"mono_to_stereo: block has {channels} channels; expected 1"):
        rk.mono_to_stereo(noise(rng, channels, 16))


def test_stereo_to_mono_and_mid_side(rng):
    x = noise(rng, 2, 1000)
    xd = x.astype(np.float64)
    np.testing.assert_allclose(rk.stereo_to_mono(x)[0], xd.mean(axis=0), atol=1e-7)
    ms = rk.ms_encode(x)
    np.testing.assert_allclose(ms[0], (xd[0] + xd[1]) / 2, atol=1e-7)
    np.testing.assert_allclose(ms[1], (xd[0] - xd[1]) / 2, atol=1e-7)
    np.testing.assert_allclose(rk.ms_decode(ms), x, atol=2e-7)


# ---- DC blocker --------------------------------------------------------------------------------

def test_dc_blocker_removes_offset_and_passes_audio():
    t = np.arange(2 * FS) / FS
    tone = 0.25 * np.sin(2 * np.pi * 1000 * t)
    x = (tone + 0.5).astype(np.float32)[None, :]
    y = rk.DcBlocker(1, FS, cutoff_hz=5.0).process(x)[0].astype(np.float64)
    tail = y[FS:]  # after one second the DC has decayed (time constant ~32 ms)
    assert abs(np.mean(tail)) < 1e-4
    assert rms_db(tail) == pytest.approx(rms_db(tone[FS:]), abs=0.01)


# ---- level meter ---------------------------------------------------------------------------------

def test_meter_reads_peak_and_rms_of_a_sine():
    meter = rk.LevelMeter(2, FS, window_ms=100.0)  # 4800 frames = 10 periods of 100 Hz
    t = np.arange(FS) / FS
    x = np.stack([0.5 * np.sin(2 * np.pi * 100 * t), 0.1 * np.sin(2 * np.pi * 100 * t + 0.3)]).astype(np.float32)
    assert meter.process(x) == FS
    expected_rms = np.sqrt(np.mean(x[:, -meter.window_frames:].astype(np.float64) ** 2, axis=1))
    np.testing.assert_allclose(meter.rms(), expected_rms, rtol=1e-9)
    np.testing.assert_allclose(meter.rms_dbfs(), 20 * np.log10([0.5, 0.1]) - 3.0103, atol=0.001)
    np.testing.assert_allclose(meter.peak(), np.abs(x).max(axis=1))
    meter.clear_peak()
    assert np.all(meter.peak() == 0)


def test_meter_window_forgets_old_signal():
    meter = rk.LevelMeter(1, FS, window_ms=50.0)
    meter.process(np.ones((1, FS), np.float32))
    meter.process(np.zeros((1, 2400), np.float32))
    assert meter.rms()[0] == 0.0
    assert meter.peak()[0] == 1.0


# ---- invariants common to every kernel -------------------------------------------------------------

def one_input_kernels():
    return {
        "biquad": lambda: rk.BiquadCascade([rk.Section("peaking", 1000, 2.0, 6.0)], 2, FS),
        "gain": lambda: _ramping(rk.Gain(2, FS, gain_db=0.0, ramp_ms=5.0)),
        "dc_blocker": lambda: rk.DcBlocker(2, FS),
    }


def _ramping(gain):
    gain.set_gain_db(-12.0)
    return gain


def _in_blocks2(process, a, b, size):
    return np.concatenate([process(np.ascontiguousarray(a[:, i:i + size]), np.ascontiguousarray(b[:, i:i + size]))
                           for i in range(0, a.shape[1], size)], axis=1)


def _mix():
    m = rk.Mix(2, FS, wet=0.0, ramp_ms=5.0)
    m.set_wet(0.7)
    return m


def _xfade():
    x = rk.Crossfade(2, FS)
    x.start(0.05)
    return x


@pytest.mark.parametrize("name", sorted(one_input_kernels()))
@pytest.mark.parametrize("size", BLOCK_SIZES)
def test_one_input_kernels_are_block_size_invariant(name, size, rng):
    x = noise(rng, 2, 9000)
    make = one_input_kernels()[name]
    assert np.array_equal(make().process(x), in_blocks(make().process, x, size))


@pytest.mark.parametrize("make", (_mix, _xfade), ids=("mix", "crossfade"))
@pytest.mark.parametrize("size", BLOCK_SIZES)
def test_two_input_kernels_are_block_size_invariant(make, size, rng):
    a, b = noise(rng, 2, 9000), noise(rng, 2, 9000)
    assert np.array_equal(make().process(a, b), _in_blocks2(make().process, a, b, size))


@pytest.mark.parametrize("size", BLOCK_SIZES)
def test_meter_is_block_size_invariant(size, rng):
    x = noise(rng, 2, 30000)
    whole, split = rk.LevelMeter(2, FS, 100.0), rk.LevelMeter(2, FS, 100.0)
    whole.process(x)
    for i in range(0, x.shape[1], size):
        split.process(np.ascontiguousarray(x[:, i:i + size]))
    assert np.array_equal(whole.rms(), split.rms()) and np.array_equal(whole.peak(), split.peak())


@pytest.mark.parametrize("frames", (0, 1, 7, 64))
def test_frames_out_equal_frames_in_for_every_kernel(frames, rng):
    x, y = noise(rng, 2, frames), noise(rng, 2, frames)
    for make in one_input_kernels().values():
        assert make().process(x).shape == (2, frames)
    assert _mix().process(x, y).shape == (2, frames)
    assert _xfade().process(x, y).shape == (2, frames)
    assert rk.LevelMeter(2, FS).process(x) == frames
    assert rk.mono_to_stereo(x[:1]).shape == (2, frames)
    assert rk.stereo_to_mono(x).shape == (1, frames)
    assert rk.ms_encode(x).shape == rk.ms_decode(x).shape == (2, frames)


def test_dc_blocker_decays_to_exact_zero():
    d = rk.DcBlocker(1, FS, cutoff_hz=20.0)
    x = np.zeros((1, 10 * FS), np.float32)
    x[0, 0] = 1.0
    y = d.process(x)
    assert subnormal_count(y) == 0
    assert np.all(y[0, -FS:] == 0.0)
