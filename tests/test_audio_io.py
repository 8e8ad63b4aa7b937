"""Streaming file input and atomic output with real files (soundfile, ffmpeg)."""

import os
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from engine.audio_io import AtomicWriter, AudioInputError, AudioOutputError, AudioReader, read_all

FS = 44100


def tone(frames=FS, channels=2, fs=FS, level=0.5):
    t = np.arange(frames) / fs
    x = np.stack([level * np.sin(2 * np.pi * (440 + 110 * c) * t) for c in range(channels)], axis=1)
    return x.astype(np.float32)


@pytest.mark.parametrize("channels", [2, 1])
@pytest.mark.parametrize("ext, subtype, atol", [
    ("wav", "FLOAT", 0.0), ("wav", "PCM_24", 2 ** -23), ("flac", "PCM_16", 2 ** -15),
    ("aiff", "PCM_24", 2 ** -23), ("ogg", "VORBIS", None), ("opus", "OPUS", None), ("mp3", "MPEG_LAYER_III", None),
])
def test_reads_libsndfile_formats_in_blocks(tmp_path, ext, subtype, atol, channels):
    x = tone(frames=48000, fs=48000, channels=channels)
    path = tmp_path / f"in.{ext}"
    fmt = {"opus": "OGG", "mp3": "MP3"}.get(ext, ext.upper())
    sf.write(path, x, 48000, subtype=subtype, format=fmt)
    with AudioReader(path) as reader:
        assert (reader.info.sample_rate, reader.info.channels) == (48000, channels)
        blocks = list(reader.blocks(1000))
    assert all(b.dtype == np.float32 and b.shape == (1000, channels) for b in blocks[:-1])
    y = np.concatenate(blocks)
    # Block reads give what one whole read gives (soundfile's read() re-seeks after every
    # read, which restarts libsndfile's MP3 decoder: wrong samples for mono MP3s).
    assert np.array_equal(y, sf.read(path, dtype="float32", always_2d=True)[0])
    if atol is not None:  # lossless: every frame back, exactly or within the format's LSB
        assert y.shape == x.shape
        np.testing.assert_allclose(y, x, atol=atol)
    else:  # lossy: the codec may pad, but the tone is there at its level
        assert abs(y.shape[0] - x.shape[0]) < 4096
        middle = y[4096:-4096].astype(np.float64)  # codecs pad and fade at the ends
        assert np.sqrt(np.mean(middle ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.05)


@pytest.mark.skipif(not shutil.which("ffmpeg"), reason="ffmpeg not installed")
def test_reads_m4a_through_an_ffmpeg_pipe(tmp_path):
    wav, m4a = tmp_path / "in.wav", tmp_path / "in.m4a"
    sf.write(wav, tone(), FS, subtype="PCM_16")
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(wav), "-c:a", "aac", "-b:a", "192k", str(m4a)], check=True)
    with AudioReader(m4a) as reader:
        assert reader.info.format == "ffmpeg:aac"
        assert (reader.info.sample_rate, reader.info.channels, reader.info.frames) == (FS, 2, None)
        y = np.concatenate(list(reader.blocks(4096)))
    assert abs(y.shape[0] - FS) < 4096
    assert np.sqrt(np.mean(y[4096:-4096].astype(np.float64) ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.05)


def test_missing_file(tmp_path):
    with pytest.raises(AudioInputError, match=r"nope.wav: no such file"):
        AudioReader(tmp_path / "nope.wav")


def test_directory(tmp_path):
    with pytest.raises(AudioInputError, match=r"is a directory"):
        AudioReader(tmp_path)


def test_corrupt_file(tmp_path):
    path = tmp_path / "bad.wav"
    path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + os.urandom(2000))
    with pytest.raises(AudioInputError, match=r"bad.wav: cannot be read as audio"):
        AudioReader(path)


def test_empty_file_and_zero_frames(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(AudioInputError, match=r"empty.wav: cannot be read as audio"):
        AudioReader(empty)
    silent = tmp_path / "zero.wav"
    sf.write(silent, np.zeros((0, 2), np.float32), FS)
    with pytest.raises(AudioInputError, match=r"zero.wav: holds no audio frames"):
        AudioReader(silent)


@pytest.mark.parametrize("bad", (np.nan, np.inf))
def test_non_finite_samples_are_refused_with_their_position(tmp_path, bad):
    x = tone()
    x[30000, 1] = bad
    path = tmp_path / "nan.wav"
    sf.write(path, x, FS, subtype="FLOAT")
    with AudioReader(path) as reader, pytest.raises(AudioInputError, match=r"nan.wav: non-finite sample .* at frame 30000, channel 2"):
        for _ in reader.blocks(4096):
            pass


@pytest.mark.parametrize("subtype, lsb", [("PCM_16", 2 ** -15), ("PCM_24", 2 ** -23), ("FLOAT", 0.0)])
def test_writer_round_trip(tmp_path, subtype, lsb):
    x = tone()
    path = tmp_path / "out.wav"
    with AtomicWriter(path, FS, 2, subtype) as w:
        for i in range(0, len(x), 10000):
            w.write(x[i:i + 10000])
        w.commit()
    y, fs = read_all(path)
    assert fs == FS and y.shape == x.shape and sf.info(path).subtype == subtype
    np.testing.assert_allclose(y, x, atol=1.5 * lsb if subtype == "PCM_16" else lsb)  # dither: +-1 LSB


@pytest.mark.parametrize("subtype", ("PCM_16", "PCM_24", "FLOAT"))
def test_background_writer_writes_the_same_file(tmp_path, subtype):
    x = tone()
    paths = []
    for background in (False, True):
        path = tmp_path / f"out{int(background)}.wav"
        with AtomicWriter(path, FS, 2, subtype, background=background) as w:
            for i in range(0, len(x), 7000):
                w.write(x[i:i + 7000])
            w.commit()
        assert w.frames_written == len(x)
        paths.append(path)
    assert paths[0].read_bytes() == paths[1].read_bytes()


def test_background_writer_reports_a_failure_and_leaves_nothing(tmp_path):
    target = tmp_path / "out.wav"
    with pytest.raises(AudioOutputError, match=r"out.wav: write failed"):
        with AtomicWriter(target, FS, 2, "PCM_24", background=True) as w:
            w.write(tone()[:1000])
            w.write(np.zeros((1000, 3), np.float32))  # wrong channel count: fails on the writer's thread
            for _ in range(5):
                w.write(tone()[:1000])
            w.commit()
    assert list(tmp_path.iterdir()) == []


def test_pcm24_rounds_to_nearest_even_and_clips(tmp_path):
    lsb = 2.0 ** -23
    ties = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 1e-3, 0.49999997], np.float64) * lsb
    overs = np.array([1.0, -1.0, 1.0 - lsb / 2, 1.2, -1.2, -1.0 - lsb], np.float64)
    x = np.concatenate([ties, overs]).astype(np.float32)[:, None]
    path = tmp_path / "q.wav"
    with AtomicWriter(path, FS, 1, "PCM_24") as w:
        w.write(x)
        w.commit()
    got = sf.read(path, dtype="int32")[0] >> 8
    expected = np.clip(np.round(x.astype(np.float64) * 2.0 ** 23), -2 ** 23, 2 ** 23 - 1)  # numpy: half to even
    assert got.tolist() == expected[:, 0].astype(np.int64).tolist()
    assert got[:5].tolist() == [0, 2, 2, 0, -2] and got[7:].tolist() == [2 ** 23 - 1, -2 ** 23, 2 ** 23 - 1,
                                                                          2 ** 23 - 1, -2 ** 23, -2 ** 23]


@pytest.mark.parametrize("level_lsb", (0.25, 0.5))
def test_pcm16_dither_is_tpdf(tmp_path, level_lsb):
    x = np.full((200000, 1), level_lsb / 32768, np.float32)  # below 1 LSB: plain rounding loses it
    path = tmp_path / "d.wav"
    with AtomicWriter(path, FS, 1, "PCM_16") as w:
        w.write(x)
        w.commit()
    y = sf.read(path, dtype="int16")[0].astype(np.float64)
    assert set(np.unique(y)) <= {-1.0, 0.0, 1.0}
    assert np.mean(y) == pytest.approx(level_lsb, abs=0.01)  # dither keeps the level on average
    # TPDF: total error power 1/12 + 1/6 = 1/4 LSB^2 whatever the signal (RPDF would vary with it).
    assert np.var(y) == pytest.approx(0.25, abs=0.01)


def test_failed_render_leaves_no_file_and_keeps_the_old_one(tmp_path):
    target = tmp_path / "out.wav"
    target.write_bytes(b"precious")
    with pytest.raises(RuntimeError):
        with AtomicWriter(target, FS, 2, "PCM_24") as w:
            w.write(tone())
            raise RuntimeError("render failed")
    assert target.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.wav"]


def test_writer_refusals(tmp_path):
    with pytest.raises(AudioOutputError, match=r"out.mp3: output must end in .wav or .flac"):
        AtomicWriter(tmp_path / "out.mp3", FS, 2)
    with pytest.raises(AudioOutputError, match=r"FLAC cannot hold FLOAT"):
        AtomicWriter(tmp_path / "out.flac", FS, 2, "FLOAT")
    with pytest.raises(AudioOutputError, match=r"subtype 'PCM_8' is not one of PCM_16, PCM_24, FLOAT"):
        AtomicWriter(tmp_path / "out.wav", FS, 2, "PCM_8")
    with pytest.raises(AudioOutputError, match=r"directory .*missing does not exist"):
        AtomicWriter(tmp_path / "missing" / "out.wav", FS, 2)
    assert list(tmp_path.iterdir()) == []
