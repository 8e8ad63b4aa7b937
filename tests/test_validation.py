"""Every validation error of the rt_kernels facade, with its message (predecessor defect ENG-10)."""

import numpy as np
import pytest

import rt_kernels as rk

FS = 48000


@pytest.fixture
def eq():
    return rk.BiquadCascade([rk.Section("peaking", 1000.0, 1.0, 3.0)], channels=2, sample_rate=FS)


def test_float64_audio_is_refused_not_truncated(eq):
    with pytest.raises(TypeError, match=r"BiquadCascade.process: block has dtype float64; kernels take float32"):
        eq.process(np.zeros((2, 16)))


def test_integer_audio_is_refused(eq):
    with pytest.raises(TypeError, match=r"dtype int16"):
        eq.process(np.zeros((2, 16), dtype=np.int16))


def test_non_array_is_refused(eq):
    with pytest.raises(TypeError, match=r"block must be a numpy array, got list"):
        eq.process([[0.0] * 4] * 2)


def test_wrong_rank_is_refused(eq):
    with pytest.raises(ValueError, match=r"shape \(16,\); expected planar \(channels, frames\)"):
        eq.process(np.zeros(16, np.float32))


def test_wrong_channel_count_is_refused(eq):
    with pytest.raises(ValueError, match=r"block has 1 channels; expected 2"):
        eq.process(np.zeros((1, 16), np.float32))


def test_zero_channels_is_refused(eq):
    with pytest.raises(ValueError, match=r"block has no channels"):
        eq.process(np.zeros((0, 16), np.float32))


def test_non_contiguous_is_refused(eq):
    interleaved = np.zeros((16, 2), np.float32)
    with pytest.raises(ValueError, match=r"not C-contiguous"):
        eq.process(interleaved.T)


@pytest.mark.parametrize("bad", (np.nan, np.inf, -np.inf))
def test_non_finite_audio_is_refused_with_its_position(eq, bad):
    x = np.zeros((2, 100), np.float32)
    x[1, 42] = bad
    with pytest.raises(ValueError, match=rf"non-finite samples \(first at channel 1, frame 42: np.float32\({bad}\)\)"):
        eq.process(x)


@pytest.mark.parametrize("rate", (0, 4000, 7999.9, 384001, 1e9, float("nan"), float("inf")))
def test_sample_rate_outside_range_is_refused(rate):
    with pytest.raises(ValueError, match=r"Gain: sample_rate = .* is outside \[8000, 384000\] Hz"):
        rk.Gain(2, rate)


def test_sample_rate_of_wrong_type_is_refused():
    with pytest.raises(TypeError, match=r"Gain: sample_rate must be a number, got str '48000'"):
        rk.Gain(2, "48000")


@pytest.mark.parametrize("channels", (0, 65, -1))
def test_channel_count_outside_range_is_refused(channels):
    with pytest.raises(ValueError, match=rf"DcBlocker: channels = {channels} is outside \[1, 64\]"):
        rk.DcBlocker(channels, FS)


def test_channel_count_of_wrong_type_is_refused():
    with pytest.raises(TypeError, match=r"channels must be an int, got float 2.0"):
        rk.DcBlocker(2.0, FS)


@pytest.mark.parametrize("freq, message", [
    (24000.0, r"freq_hz = 24000.0 is outside \(0, 24000\) Hz"),
    (0.0, r"freq_hz = 0.0 is outside \(0, 24000\)"),
    (float("nan"), r"freq_hz = nan is outside"),
])
def test_filter_frequency_must_be_below_nyquist(freq, message):
    with pytest.raises(ValueError, match=rf"BiquadCascade section 0: {message}"):
        rk.BiquadCascade([rk.Section("low_pass", freq)], 1, FS)


@pytest.mark.parametrize("q", (0.0, -1.0, 1000.0, float("inf")))
def test_filter_q_range(q):
    with pytest.raises(ValueError, match=r"q = .* is outside \[0.025, 100\]"):
        rk.BiquadCascade([rk.Section("band_pass", 1000.0, q=q)], 1, FS)


def test_filter_gain_range():
    with pytest.raises(ValueError, match=r"gain_db = 60.0 is outside \[-48, 48\] dB"):
        rk.BiquadCascade([rk.Section("peaking", 1000.0, gain_db=60.0)], 1, FS)


def test_gain_on_a_filter_without_gain_is_refused():
    with pytest.raises(ValueError, match=r"gain_db = 6.0 has no effect on a low_pass section"):
        rk.BiquadCascade([rk.Section("low_pass", 1000.0, gain_db=6.0)], 1, FS)


def test_shelf_slope_only_on_shelves():
    with pytest.raises(ValueError, match=r"shelf_slope applies to low_shelf and high_shelf only, not peaking"):
        rk.BiquadCascade([rk.Section("peaking", 1000.0, gain_db=3.0, shelf_slope=1.0)], 1, FS)


def test_shelf_slope_too_steep_for_gain():
    with pytest.raises(ValueError, match=r"shelf_slope = 2.0 is too steep for gain_db = 24.0"):
        rk.BiquadCascade([rk.Section("low_shelf", 200.0, gain_db=24.0, shelf_slope=2.0)], 1, FS)


def test_unknown_filter_type():
    with pytest.raises(ValueError, match=r"type = 'lowpass' is not one of peaking, low_shelf"):
        rk.BiquadCascade([rk.Section("lowpass", 1000.0)], 1, FS)


def test_empty_cascade():
    with pytest.raises(ValueError, match=r"sections is empty"):
        rk.BiquadCascade([], 1, FS)


def test_section_index_range(eq):
    with pytest.raises(ValueError, match=r"index = 3 is outside \[0, 0\]"):
        eq.set_section(3, rk.Section("notch", 1000.0))


def test_refused_parameter_is_never_applied(eq):
    before = eq.sections[0]
    with pytest.raises(ValueError):
        eq.set_section(0, rk.Section("peaking", 1000.0, gain_db=float("nan")))
    assert eq.sections[0] == before
    np.testing.assert_array_equal(before.coefficients(FS), rk.Section("peaking", 1000.0, 1.0, 3.0).coefficients(FS))


@pytest.mark.parametrize("value", (49.0, -121.0, float("nan"), float("-inf")))
def test_gain_db_range(value):
    g = rk.Gain(1, FS, gain_db=-3.0)
    with pytest.raises(ValueError, match=r"Gain.set_gain_db: gain_db = .* is outside \[-120, 48\] dB"):
        g.set_gain_db(value)
    assert g.target_db == pytest.approx(-3.0)


def test_gain_parameter_must_be_a_number():
    with pytest.raises(TypeError, match=r"gain_db must be a number, got str '-6'"):
        rk.Gain(1, FS, gain_db="-6")


def test_mix_amount_range_and_shapes():
    with pytest.raises(ValueError, match=r"Mix.set_wet: wet = 1.5 is outside \[0, 1\]"):
        rk.Mix(2, FS).set_wet(1.5)
    with pytest.raises(ValueError, match=r"Mix.process: dry has shape \(2, 10\) but wet has \(2, 11\)"):
        rk.Mix(2, FS).process(np.zeros((2, 10), np.float32), np.zeros((2, 11), np.float32))


def test_crossfade_length_range():
    with pytest.raises(ValueError, match=r"Crossfade.start: length_s = -1.0 is outside \[0, 60\] s"):
        rk.Crossfade(2, FS).start(-1.0)


def test_stereo_only_functions_refuse_mono():
    with pytest.raises(ValueError, match=r"ms_encode: block has 1 channels; expected 2"):
        rk.ms_encode(np.zeros((1, 8), np.float32))


def test_meter_window_range():
    with pytest.raises(ValueError, match=r"LevelMeter: window_ms = 0.0 is outside \[1, 60000\] ms"):
        rk.LevelMeter(1, FS, window_ms=0.0)


def test_dc_blocker_cutoff_range():
    with pytest.raises(ValueError, match=r"DcBlocker: cutoff_hz = 500.0 is outside \[0.1, 200\] Hz"):
        rk.DcBlocker(1, FS, cutoff_hz=500.0)
