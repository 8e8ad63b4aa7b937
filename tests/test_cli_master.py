"""`auralis-rt master` and `analyze`: results and every error path (status, message, no file left)."""

import json
import os
import subprocess
import sys

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf

from tests.conftest import cli_command
from tests.material import programme
from tests.references import true_peak_8x_db


def run(*args, timeout=300):
    return subprocess.run(cli_command(*args), capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def song(tmp_path):
    path = tmp_path / "song.wav"
    sf.write(path, programme("mix", 44100, 6.0, 2, -8.0), 44100, subtype="PCM_24")
    return path


def test_master_writes_the_target_and_reports_json(song, tmp_path):
    out = tmp_path / "mastered.flac"
    r = run("master", str(song), str(out), "--json", "--subtype", "PCM_24")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    y, fs = sf.read(out, dtype="float32")
    assert fs == 44100 and y.shape == sf.read(song)[0].shape
    assert pyloudnorm.Meter(fs).integrated_loudness(y.astype(np.float64)) == pytest.approx(-14.0, abs=0.5)
    assert true_peak_8x_db(y.T) <= -1.0 + 1e-3
    for side in ("input", "output"):
        assert {"integrated_lufs", "loudness_range_lu", "true_peak_dbtp", "sample_peak_dbfs", "max_momentary_lufs",
                "max_short_term_lufs", "duration_s", "sample_rate", "channels"} <= set(report[side])
    assert report["parameters"]["limiter"]["ceiling_db"] <= -1.0
    assert report["output"]["integrated_lufs"] == pytest.approx(-14.0, abs=0.5)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_master_options(song, tmp_path):
    out = tmp_path / "m.wav"
    r = run("master", str(song), str(out), "--preset", "gentle", "--target-lufs", "-18", "--ceiling-dbtp", "-2",
            "--subtype", "PCM_16", "--block-size", "64", "--json")
    assert r.returncode == 0, r.stderr
    y, fs = sf.read(out, dtype="float32")
    assert sf.info(out).subtype == "PCM_16"
    assert pyloudnorm.Meter(fs).integrated_loudness(y.astype(np.float64)) == pytest.approx(-18.0, abs=0.5)
    assert true_peak_8x_db(y.T) <= -2.0 + 0.01  # PCM_16 dither adds up to 1 LSB


def test_analyze_json(song):
    r = run("analyze", str(song), "--json")
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout)
    y, fs = sf.read(song)
    assert m["integrated_lufs"] == pytest.approx(pyloudnorm.Meter(fs).integrated_loudness(y), abs=0.1)
    assert m["sample_rate"] == 44100 and m["channels"] == 2 and m["duration_s"] == pytest.approx(6.0)


def test_analyze_silence_says_why(tmp_path):
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros((48000, 2), np.float32), 48000)
    r = run("analyze", str(path), "--json")
    assert r.returncode == 0
    m = json.loads(r.stdout)
    assert m["integrated_lufs"] is None and "silence" in m["notes"]


def assert_refused(r, status, message, out):
    assert r.returncode == status, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert message in lines[0], lines[0]
    assert not out.exists()
    assert [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")] == []


def test_missing_input(tmp_path):
    out = tmp_path / "o.wav"
    assert_refused(run("master", str(tmp_path / "nope.wav"), str(out)), 3, "nope.wav: no such file", out)


def test_corrupt_input(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF" + os.urandom(3000))
    out = tmp_path / "o.wav"
    assert_refused(run("master", str(bad), str(out)), 3, "bad.wav: cannot be read as audio", out)


def test_empty_input(tmp_path):
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros((0, 2), np.float32), 44100)
    out = tmp_path / "o.wav"
    assert_refused(run("master", str(empty), str(out)), 3, "empty.wav: holds no audio frames", out)


def test_nan_input(tmp_path):
    path = tmp_path / "nan.wav"
    audio = programme("tones", 44100, 2.0, 2, -6.0)
    audio[50000, 0] = np.nan
    sf.write(path, audio, 44100, subtype="FLOAT")
    out = tmp_path / "o.wav"
    assert_refused(run("master", str(path), str(out)), 3, "non-finite sample (nan) at frame 50000, channel 1", out)


def test_invalid_preset(song, tmp_path):
    preset = tmp_path / "bad.json"
    data = json.loads((__import__("presets").models.SHIPPED_DIR / "warm.json").read_text())
    data["chain"][2]["params"]["threshold_db"] = 40.0
    preset.write_text(json.dumps(data))
    out = tmp_path / "o.wav"
    assert_refused(run("master", str(song), str(out), "--preset", str(preset)), 2,
                   "preset bad.json: chain[2].params.threshold_db = 40.0 is outside [-100, 20] dB", out)
    assert_refused(run("master", str(song), str(out), "--preset", "nosuch"), 2, "preset nosuch: no such preset", out)


def test_nan_in_preset_file(song, tmp_path):
    preset = tmp_path / "nan.json"
    text = (__import__("presets").models.SHIPPED_DIR / "warm.json").read_text().replace('"integrated_lufs": -13.0',
                                                                                         '"integrated_lufs": NaN')
    preset.write_text(text)
    out = tmp_path / "o.wav"
    assert_refused(run("master", str(song), str(out), "--preset", str(preset)), 2,
                   "preset nan.json: NaN is not allowed in a preset", out)


def test_bad_arguments(song, tmp_path):
    out = tmp_path / "o.wav"
    r = run("master", str(song), str(out), "--target-lufs", "nan")
    assert r.returncode == 2 and "not a finite number" in r.stderr and not out.exists()
    r = run("master", str(song), str(out), "--intensity", "1.5")
    assert r.returncode == 2 and "1.5 is outside [0, 1]" in r.stderr and not out.exists()


def test_unwritable_output(song, tmp_path):
    out = tmp_path / "missing_dir" / "o.wav"
    r = run("master", str(song), str(out))
    assert r.returncode == 2 and "does not exist" in r.stderr
    assert not out.parent.exists()
    out2 = tmp_path / "o.mp3"
    assert_refused(run("master", str(song), str(out2)), 2, "output must end in .wav or .flac", out2)


def test_existing_output_survives_a_failed_render(tmp_path):
    bad = tmp_path / "nan.wav"
    audio = programme("tones", 44100, 2.0, 2, -6.0)
    audio[80000, 1] = np.inf
    sf.write(bad, audio, 44100, subtype="FLOAT")
    out = tmp_path / "keep.wav"
    out.write_bytes(b"earlier master")
    r = run("master", str(bad), str(out))
    assert r.returncode == 3
    assert out.read_bytes() == b"earlier master"


def _peak_rss_mb(code: str, *args) -> float:
    probe = code + "\nimport resource; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    r = subprocess.run([sys.executable, "-c", probe, *map(str, args)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return int(r.stdout.strip().splitlines()[-1]) / 1024.0


def test_memory_does_not_grow_with_the_input_length(tmp_path):
    baseline = _peak_rss_mb("import engine.mastering, graph, numpy, soundfile")
    extra = {}
    for seconds in (10, 150):
        src = tmp_path / f"in{seconds}.wav"
        with sf.SoundFile(src, "w", 44100, 2, subtype="PCM_16") as f:
            block = programme("mix", 44100, 10.0, 2, -6.0)
            for _ in range(seconds // 10):
                f.write(block)
        extra[seconds] = _peak_rss_mb("import sys; from engine.mastering import master; "
                                      "master(sys.argv[1], sys.argv[2], progress=False)",
                                      src, tmp_path / f"out{seconds}.wav") - baseline
    print(f"extra peak RSS over the imported stack: {extra} MB")
    assert extra[150] < 100.0, extra
    assert extra[150] - extra[10] < 20.0, extra  # 15x the audio, about the same memory
