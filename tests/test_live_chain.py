"""The live chain built from a preset, with its meter (run offline here; through JACK in
the backend tests)."""

import numpy as np
import pytest

from engine.live import METER_NODE, live_executor, meter_text
from graph import read_loudness


def tone(level_dbfs: float, fs: int, seconds: float, channels: int) -> np.ndarray:
    t = np.arange(int(fs * seconds)) / fs
    x = (10 ** (level_dbfs / 20) * np.sin(2 * np.pi * 997 * t)).astype(np.float32)
    return np.ascontiguousarray(np.stack([x] * channels))


def test_transparent_chain_passes_a_quiet_tone_and_meters_it():
    ex, notes = live_executor("transparent", 2, 48000)
    x = tone(-20.0, 48000, 4.0, 2)
    y = ex.process(x)
    lat = ex.latency_frames
    assert np.array_equal(y[:, lat:], x[:, :-lat])  # far below the ceiling: untouched, only delayed
    v = read_loudness(ex, METER_NODE)
    # A stereo 997 Hz sine at -20 dBFS peak reads -20 LUFS (BS.1770: sine peak 0 dBFS in both channels = -0.0 LUFS)
    assert v.short_term_lufs == pytest.approx(-20.0, abs=0.1)
    assert "S  -20.0 LUFS" in meter_text(ex)


def test_limiter_holds_the_preset_ceiling_live():
    ex, _ = live_executor("adaptive", 2, 48000)
    y = ex.process(tone(6.0, 48000, 2.0, 2))  # +6 dBFS overs
    assert np.max(np.abs(y)) <= 10 ** (-1.0 / 20) + 1e-6


def test_mono_host_leaves_the_width_stage_out():
    ex, notes = live_executor("warm", 1, 44100)
    assert notes == ["width: skipped, the input is mono"]
    assert ex.process(tone(-12.0, 44100, 0.5, 1)).shape == (1, 22050)
