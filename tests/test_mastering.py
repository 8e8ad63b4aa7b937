"""Mastering: loudness and ceiling targets met (checked with pyloudnorm and an independent
8x true peak), intensity 0 bit-exact, block-size invariance, alignment, adaptive choices."""

import math

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf

import engine
from engine.mastering.render import MasterReport
from presets import PresetError
from tests.material import programme
from tests.references import true_peak_8x_db


def lufs(audio: np.ndarray, fs: int) -> float:
    return pyloudnorm.Meter(fs).integrated_loudness(audio.astype(np.float64))


CASES = [  # kind, fs, channels, input peak dBFS, preset
    ("mix", 44100, 2, -12.0, "adaptive"),
    ("mix", 48000, 2, -0.1, "adaptive"),
    ("drums", 48000, 2, -3.0, "punchy"),
    ("bass", 44100, 1, -20.0, "warm"),
    ("tones", 96000, 2, -6.0, "gentle"),
    ("noise", 44100, 2, -30.0, "bright"),
    ("mix", 96000, 1, -1.0, "live"),
    ("mix", 48000, 2, -18.0, "transparent"),
]


@pytest.mark.parametrize("kind, fs, channels, peak, preset", CASES,
                         ids=[f"{c[0]}-{c[1]}-{c[2]}ch-{c[3]:g}dB-{c[4]}" for c in CASES])
def test_output_meets_loudness_target_and_true_peak_ceiling(kind, fs, channels, peak, preset):
    audio = programme(kind, fs, 8.0, channels, peak)
    reports: list[MasterReport] = []
    out = engine.render(audio, fs, preset=preset, report=reports)
    report = reports[0]
    assert out.shape == audio.shape and out.dtype == np.float32
    assert np.isfinite(out).all()
    target = report.target_lufs
    assert lufs(out, fs) == pytest.approx(target, abs=0.5), report.notes
    assert true_peak_8x_db(out.T) <= report.ceiling_dbtp, "true peak above the ceiling"
    assert report.output.integrated_lufs == pytest.approx(lufs(out, fs), abs=0.1)


@pytest.mark.parametrize("target, ceiling", [(-18.0, -1.0), (-10.0, -0.5), (-23.0, -3.0)])
def test_targets_from_arguments(target, ceiling):
    audio = programme("mix", 44100, 8.0, 2, -6.0, seed=3)
    out = engine.render(audio, 44100, target_lufs=target, ceiling_dbtp=ceiling)
    assert lufs(out, 44100) == pytest.approx(target, abs=0.5)
    assert true_peak_8x_db(out.T) <= ceiling


def test_intensity_zero_returns_the_input_bit_for_bit():
    audio = programme("mix", 48000, 4.0, 2, -3.0, seed=4)
    out = engine.render(audio, 48000, intensity=0.0)
    assert out.tobytes() == audio.tobytes()


@pytest.mark.parametrize("block_size", (7, 64, 65, 4096, 1 << 20))
def test_block_size_does_not_change_the_result(block_size):
    audio = programme("mix", 44100, 3.0, 2, -6.0, seed=5)
    reference = engine.render(audio, 44100, block_size=512)
    assert np.array_equal(engine.render(audio, 44100, block_size=block_size), reference)


def test_clicks_stay_at_their_sample_positions():
    fs = 48000
    audio = programme("tones", fs, 4.0, 2, -30.0, seed=6)
    clicks = [fs // 2, fs + 123, 2 * fs + 7, 3 * fs + 4001]
    audio[clicks, :] = 0.5
    out = engine.render(audio, fs, preset="transparent")
    residual = np.abs(out[:, 0])
    found = sorted(np.argsort(residual)[-len(clicks):])
    assert found == clicks


def test_silence_is_reported_not_forced():
    audio = np.zeros((48000 * 3, 2), np.float32)
    reports = []
    out = engine.render(audio, 48000, report=reports)
    assert np.all(out == 0)
    assert any("silent" in note for note in reports[0].notes)
    assert math.isinf(reports[0].output.integrated_lufs) and not reports[0].target_met


def test_mono_stays_mono_and_width_is_skipped():
    audio = programme("mix", 44100, 4.0, 1, -6.0)
    reports = []
    out = engine.render(audio, 44100, report=reports)
    assert out.shape == audio.shape
    assert "width" not in reports[0].parameters
    assert any("width: skipped" in n for n in reports[0].notes)


def test_multichannel_is_refused():
    with pytest.raises(Exception, match=r"has 6 channels; mastering takes mono or stereo"):
        engine.render(np.zeros((4800, 6), np.float32), 48000)


def test_non_finite_input_is_refused():
    audio = programme("tones", 44100, 1.0, 2, -6.0)
    audio[1000, 1] = np.nan
    with pytest.raises(ValueError, match=r"non-finite sample at frame 1000, channel 2"):
        engine.render(audio, 44100)


def test_float64_is_refused():
    with pytest.raises(TypeError, match=r"dtype float64; expected float32"):
        engine.render(np.zeros((4800, 2)), 48000)


def test_adaptive_choices_follow_the_input():
    fs = 44100
    quiet = programme("mix", fs, 6.0, 2, -30.0, seed=8)
    loud = programme("mix", fs, 6.0, 2, -1.0, seed=8)
    rq, rl = [], []
    engine.render(quiet, fs, report=rq)
    engine.render(loud, fs, report=rl)
    # The input stage brings both to the preset's reference level: about 29 dB apart.
    assert rq[0].parameters["input"]["gain_db"] - rl[0].parameters["input"]["gain_db"] == pytest.approx(29.0, abs=0.5)
    # A dull input gets its highs lifted by the EQ.
    dull = programme("bass", fs, 6.0, 2, -6.0)
    rd = []
    engine.render(dull, fs, report=rd)
    eq = rd[0].parameters["eq"]
    assert eq["band_20_db"] > 1.0


def test_overrides_are_validated_like_the_preset():
    audio = programme("tones", 44100, 1.0, 2, -6.0)
    with pytest.raises(PresetError, match=r"chain\[2\]\.params\.ratio = 0\.5 is outside \[1, 1000\]"):
        engine.render(audio, 44100, comp__ratio=0.5)
    with pytest.raises(PresetError, match=r"override nope__x: preset adaptive has no node 'nope'"):
        engine.render(audio, 44100, nope__x=1)


def test_measure_returns_the_documented_keys():
    audio = programme("mix", 48000, 5.0, 2, -6.0)
    m = engine.measure(audio, 48000)
    keys = {"integrated_lufs", "loudness_range_lu", "true_peak_dbtp", "sample_peak_dbfs", "max_momentary_lufs",
            "max_short_term_lufs", "duration_s", "sample_rate", "channels"}
    assert keys <= set(m.to_json())
    assert m.integrated_lufs == pytest.approx(lufs(audio, 48000), abs=0.1)
    assert m.sample_peak_dbfs == pytest.approx(-6.0, abs=1e-4)
    assert (m.duration_s, m.sample_rate, m.channels) == (5.0, 48000, 2)


def _width_only(**params):
    from presets import Preset

    return Preset.model_validate({"schema_version": 2, "name": "width_only", "adaptive": False,
                                  "chain": [{"name": "width", "type": "stereo_width", "params": params}]})


def test_a_neutral_width_stage_leaves_the_signal_untouched():
    """Unity width in every band: no crossover all-pass smearing the phase of the master."""
    audio = programme("mix", 44100, 2.0, 2, -6.0, seed=8)
    reports = []
    out = engine.render(audio, 44100, preset=_width_only(width_1=1.0, width_2=1.0, width_3=1.0), report=reports)
    assert np.array_equal(out, audio)
    assert "width" not in reports[0].parameters
    assert any("width: every band at width 1" in n for n in reports[0].notes)


def test_one_width_for_every_band_scales_the_side_only():
    audio = programme("mix", 44100, 2.0, 2, -6.0, seed=8).astype(np.float64)
    reports = []
    out = engine.render(audio.astype(np.float32), 44100, preset=_width_only(width_1=1.4, width_2=1.4, width_3=1.4),
                        report=reports).astype(np.float64)
    mid_in, side_in = audio.sum(1) / 2, (audio[:, 0] - audio[:, 1]) / 2
    mid_out, side_out = out.sum(1) / 2, (out[:, 0] - out[:, 1]) / 2
    # sample by sample, no phase shift: float32 rounding only
    assert np.max(np.abs(mid_out - mid_in)) < 1e-6
    assert np.max(np.abs(side_out - 1.4 * side_in)) < 1e-6
    assert reports[0].parameters["width"]["bands"] == 1


def test_different_widths_keep_the_crossovers():
    audio = programme("mix", 44100, 2.0, 2, -6.0, seed=8)
    reports = []
    engine.render(audio, 44100, preset=_width_only(width_1=0.5, width_2=1.0, width_3=1.5), report=reports)
    assert reports[0].parameters["width"].get("bands", 3) == 3


@pytest.mark.parametrize("seed", (5, 9))
def test_the_loudness_solve_replays_the_first_stages_exactly(seed, monkeypatch, tmp_path):
    """Passes after the first replay what the chain before the loudness stage produced;
    the result is bit for bit what rendering the whole chain every pass gives."""
    from engine.mastering.chain import ChainPlan

    audio = programme("mix", 44100, 3.0, 2, -6.0, seed=seed)
    reports = []
    replayed = engine.render(audio, 44100, report=reports)
    src = tmp_path / "in.wav"
    sf.write(src, audio, 44100, subtype="FLOAT")
    engine.master(src, tmp_path / "out.wav", subtype="FLOAT", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav", "out.wav"]  # no cache left behind
    monkeypatch.setattr(ChainPlan, "split_at_loudness", lambda self, gain=None: None)
    again = []
    whole = engine.render(audio, 44100, report=again)
    assert reports[0].passes >= 2 and reports[0].loudness_gain_db == again[0].loudness_gain_db
    assert np.array_equal(replayed, whole)
    assert np.array_equal(sf.read(tmp_path / "out.wav", dtype="float32")[0], whole)


def test_a_live_chain_keeps_its_width_stage_for_later_changes():
    from engine.mastering.chain import plan_chain
    from engine.mastering.render import resolve_preset

    preset = resolve_preset("adaptive")
    live = plan_chain(preset, 2, 48000, None, preset.target.ceiling_dbtp)
    offline = plan_chain(preset, 2, 48000, None, preset.target.ceiling_dbtp, fixed=True)
    assert "width" in live.graph().nodes and "width" not in offline.graph().nodes
