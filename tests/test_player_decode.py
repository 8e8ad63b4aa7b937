"""Track decoding for the player: formats, bit-exactness, streaming == offline resampling,
mono/5.1 channel handling, seeking, and unplayable files.  Real files written with
soundfile (and ffmpeg for M4A and the multichannel Ogg)."""

import math
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf
import soxr

from engine.player.decode import (
    RESAMPLER_QUALITY, TrackError, decode_offline, downmix_matrix, open_track,
)

G = 1 / math.sqrt(2)
needs_ffmpeg = pytest.mark.skipif(not shutil.which("ffmpeg"), reason="ffmpeg not installed")


def signal(frames, channels=2, fs=48000, seed=0):
    """Tones (a different one per channel) plus a little noise, peak about 0.5."""
    t = np.arange(frames) / fs
    rng = np.random.default_rng(seed)
    x = np.stack([0.4 * np.sin(2 * np.pi * (330 + 220 * c) * t) for c in range(channels)], axis=1)
    return (x + 0.05 * rng.standard_normal(x.shape)).astype(np.float32)


def write(path, x, fs, subtype=None, fmt=None):
    sf.write(path, x, fs, subtype=subtype, format=fmt)
    return path


def read_all(track, block):
    parts = []
    while True:
        b = track.read(block)
        assert b.dtype == np.float32 and b.flags.c_contiguous and b.ndim == 2
        assert b.shape[1] == track.channels and b.shape[0] <= block
        if b.shape[0] == 0:
            break
        parts.append(b)
    # Every block is full except the last.
    assert all(p.shape[0] == block for p in parts[:-1])
    return np.concatenate(parts) if parts else np.empty((0, track.channels), np.float32)


def m4a_from(tmp_path, x, fs, name="in.m4a"):
    wav = write(tmp_path / (name + ".wav"), x, fs, "PCM_16")
    out = tmp_path / name
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(wav), "-c:a", "aac", "-b:a", "192k", str(out)], check=True)
    return out


LOSSY = {"ogg": ("OGG", "VORBIS"), "opus": ("OGG", "OPUS"), "mp3": ("MP3", "MPEG_LAYER_III")}


@pytest.mark.parametrize("ext", ["wav", "flac", "aiff", "ogg", "opus", "mp3", pytest.param("m4a", marks=needs_ffmpeg)])
def test_every_format_opens_and_reads_at_its_level(tmp_path, ext):
    fs = 48000
    x = signal(fs // 2, fs=fs)
    if ext == "m4a":
        path = m4a_from(tmp_path, x, fs)
    else:
        fmt, subtype = LOSSY.get(ext, (ext.upper(), "PCM_24"))
        path = write(tmp_path / f"in.{ext}", x, fs, subtype, fmt)
    with open_track(path, fs) as track:
        assert (track.source_rate, track.source_channels, track.sample_rate, track.channels) == (fs, 2, fs, 2)
        y = read_all(track, 1000)
        if ext == "m4a":
            assert track.frames is None and track.format == "ffmpeg:aac"
        else:
            assert track.frames == y.shape[0]  # the announced length is what read() yields
        assert track.position == y.shape[0]
        assert track.read(10).shape == (0, 2)  # stays at the end
    assert abs(y.shape[0] - x.shape[0]) < 4096
    middle = y[4096:-4096].astype(np.float64)
    expected = np.sqrt(np.mean(x[4096:-4096].astype(np.float64) ** 2, axis=0))
    np.testing.assert_allclose(np.sqrt(np.mean(middle ** 2, axis=0)), expected, rtol=0.06)
    assert np.array_equal(y, decode_offline(path, fs))


@pytest.mark.parametrize("ext, channels, fs", [
    ("wav", 2, 48000), ("flac", 2, 44100), ("mp3", 2, 44100), ("mp3", 1, 44100), ("mp3", 1, 48000),
    ("ogg", 2, 44100), ("opus", 1, 48000),
])
@pytest.mark.parametrize("block", [7, 1000, 4096])
def test_same_rate_output_is_bit_exact_against_soundfile(tmp_path, ext, channels, fs, block):
    x = signal(fs, channels, fs)
    fmt, subtype = LOSSY.get(ext, (ext.upper(), "FLOAT" if ext == "wav" else "PCM_24"))
    path = write(tmp_path / f"in.{ext}", x, fs, subtype, fmt)
    reference = sf.read(path, dtype="float32", always_2d=True)[0]  # one whole-file read
    with open_track(path, fs, channels) as track:
        y = read_all(track, block)
    # Mono MP3 read block by block through soundfile.read() is garbage in libsndfile
    # 1.2.2 (it seeks after every read); the player must give the whole-read samples.
    assert np.array_equal(y, reference)


def test_streaming_resampling_equals_the_offline_reference_for_any_chunk_size(tmp_path):
    fs_in, fs = 44100, 48000
    x = signal(fs_in // 2 + 123, 2, fs_in)
    path = write(tmp_path / "in.flac", x, fs_in, "PCM_24")
    offline = decode_offline(path, fs)
    # The offline reference is soxr on the whole file, computed independently here.
    whole = sf.read(path, dtype="float32", always_2d=True)[0]
    assert np.array_equal(offline, soxr.resample(whole, fs_in, fs, quality=RESAMPLER_QUALITY))
    assert offline.shape[0] == math.floor(whole.shape[0] * fs / fs_in + 0.5)
    for block in (1, 7, 256, 4096):
        with open_track(path, fs) as track:
            assert track.frames == offline.shape[0]
            y = read_all(track, block)
        assert np.array_equal(y, offline), f"chunk size {block}"


@pytest.mark.parametrize("fs_in", [44100, 96000, 22050])
def test_mono_plays_as_stereo_without_level_change(tmp_path, fs_in):
    mono = signal(fs_in // 4, 1, fs_in)
    path = write(tmp_path / "mono.wav", mono, fs_in, "FLOAT")
    with open_track(path, 48000) as track:
        assert track.source_channels == 1 and track.channels == 2
        y = read_all(track, 999)
    assert np.array_equal(y[:, 0], y[:, 1])
    if fs_in == 48000:
        assert np.array_equal(y[:, 0], mono[:, 0])
    expected = soxr.resample(mono[:, 0], fs_in, 48000, quality=RESAMPLER_QUALITY)
    np.testing.assert_allclose(y[:, 0], expected, rtol=0, atol=1e-6)


def test_mono_at_the_engine_rate_is_copied_bit_for_bit(tmp_path):
    mono = signal(24000, 1, 48000)
    path = write(tmp_path / "mono.wav", mono, 48000, "FLOAT")
    with open_track(path, 48000) as track:
        y = read_all(track, 512)
    assert np.array_equal(y, np.repeat(mono, 2, axis=1))


def test_five_one_folds_down_per_bs775(tmp_path):
    # Constant levels per channel (L R C LFE Ls Rs), different signs, so every gain shows.
    levels = np.array([0.10, -0.20, 0.30, 0.90, 0.05, -0.07], np.float32)
    x = np.tile(levels, (2000, 1))
    path = write(tmp_path / "surround.wav", x, 48000, "FLOAT")
    with open_track(path, 48000) as track:
        y = read_all(track, 300)
    left = 0.10 + G * 0.30 + G * 0.05          # L + C/sqrt2 + Ls/sqrt2, LFE dropped
    right = -0.20 + G * 0.30 + G * -0.07
    np.testing.assert_allclose(y[:, 0], left, rtol=0, atol=1e-7)
    np.testing.assert_allclose(y[:, 1], right, rtol=0, atol=1e-7)


@needs_ffmpeg
def test_ogg_vorbis_five_one_is_read_in_vorbis_channel_order(tmp_path):
    """ffmpeg stores a 5.1 WAV in Vorbis order (L C R Ls Rs LFE); libsndfile returns that
    order as is, so the fold-down must use the Vorbis layout to put C in the middle."""
    fs = 48000
    t = np.arange(fs) / fs
    freqs = [300, 500, 700, 90, 1100, 1300]                       # L R C LFE Ls Rs (WAV order)
    x = np.stack([0.2 * np.sin(2 * np.pi * f * t) for f in freqs], axis=1).astype(np.float32)
    wav = write(tmp_path / "s.wav", x, fs, "FLOAT")
    ogg = tmp_path / "s.ogg"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(wav), "-c:a", "libvorbis", "-q:a", "8", str(ogg)], check=True)
    with open_track(ogg, fs) as track:
        y = read_all(track, 4096)[4800:4800 + 24000].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))[:, None], axis=0)) / (np.hanning(len(y)).sum() / 2)

    def level(freq, channel):
        return spectrum[int(round(freq * len(y) / fs)), channel]

    expected = {  # amplitude of each source tone in (L', R')
        300: (0.2, 0), 500: (0, 0.2), 700: (0.2 * G, 0.2 * G), 90: (0, 0), 1100: (0.2 * G, 0), 1300: (0, 0.2 * G),
    }
    for freq, (want_l, want_r) in expected.items():
        for channel, want in enumerate((want_l, want_r)):
            assert level(freq, channel) == pytest.approx(want, abs=0.01), f"{freq} Hz, channel {channel}"


@pytest.mark.parametrize("source_channels, order, rows", [
    (3, "wav", [(1, 0), (0, 1), (G, G)]),
    (3, "vorbis", [(1, 0), (G, G), (0, 1)]),
    (4, "wav", [(1, 0), (0, 1), (G, 0), (0, G)]),
    (5, "wav", [(1, 0), (0, 1), (G, G), (G, 0), (0, G)]),
    (6, "vorbis", [(1, 0), (G, G), (0, 1), (G, 0), (0, G), (0, 0)]),
    (7, "wav", [(1, 0), (0, 1), (G, G), (0, 0), (0.5, 0.5), (G, 0), (0, G)]),
    (8, "wav", [(1, 0), (0, 1), (G, G), (0, 0), (G, 0), (0, G), (G, 0), (0, G)]),
    (8, "vorbis", [(1, 0), (G, G), (0, 1), (G, 0), (0, G), (G, 0), (0, G), (0, 0)]),
])
def test_downmix_tables(source_channels, order, rows):
    np.testing.assert_allclose(downmix_matrix(source_channels, 2, order=order), rows, atol=1e-15)


def test_downmix_other_targets_and_normalisation():
    assert np.array_equal(downmix_matrix(1, 2), [[1, 1]])
    assert np.array_equal(downmix_matrix(2, 2), np.eye(2))
    np.testing.assert_allclose(downmix_matrix(2, 1), [[0.5], [0.5]])
    np.testing.assert_allclose(np.arange(6) @ downmix_matrix(6, 6, order="vorbis"),
                               [0, 2, 1, 5, 3, 4])  # Vorbis L C R Ls Rs LFE -> WAV L R C LFE Ls Rs
    normal = downmix_matrix(6, 2, normalize=True)
    assert np.abs(normal).sum(axis=0).max() == pytest.approx(1.0)
    np.testing.assert_allclose(normal, downmix_matrix(6, 2) / (1 + 2 * G))  # -7.7 dB, balance kept
    with pytest.raises(ValueError, match="no layout known for 9 channels"):
        downmix_matrix(9, 2)
    with pytest.raises(ValueError, match="no rule from 6 to 4 channels"):
        downmix_matrix(6, 4)


def test_full_scale_five_one_overs_are_documented_and_normalize_prevents_them(tmp_path):
    x = np.tile(np.array([1, 1, 1, 1, 1, 1], np.float32), (1000, 1))
    path = write(tmp_path / "loud.wav", x, 48000, "FLOAT")
    with open_track(path, 48000) as track:
        plain = read_all(track, 1000)
    with open_track(path, 48000, normalize_downmix=True) as track:
        safe = read_all(track, 1000)
    assert plain.max() == pytest.approx(1 + 2 * G, abs=1e-6)   # +7.7 dB over full scale
    assert safe.max() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("ext, channels, fs, atol", [
    ("wav", 2, 48000, 0.0), ("flac", 2, 44100, 0.0), ("aiff", 1, 48000, 0.0),
    ("mp3", 2, 44100, 0.0), ("ogg", 2, 44100, 0.0), ("mp3", 1, 44100, 3e-7), ("opus", 2, 48000, 3e-7),
])
def test_seek_lands_exactly_at_the_same_rate(tmp_path, ext, channels, fs, atol):
    x = signal(fs * 2, channels, fs, seed=3)
    fmt, subtype = LOSSY.get(ext, (ext.upper(), "PCM_24"))
    path = write(tmp_path / f"in.{ext}", x, fs, subtype, fmt)
    reference = sf.read(path, dtype="float32", always_2d=True)[0]  # continuous decode
    with open_track(path, fs, channels) as track:
        for frame in (fs + 777, 5, 23456, 0, reference.shape[0] - 1000):
            track.seek(frame)
            assert track.position == frame
            y = track.read(1000)
            assert y.shape[0] == 1000
            np.testing.assert_allclose(y, reference[frame:frame + 1000], rtol=0, atol=atol,
                                       err_msg=f"seek to {frame}")
        track.seek(10 ** 9)                              # past the end: at the end
        assert track.read(100).shape == (0, channels)
        with pytest.raises(ValueError, match="cannot seek to frame -1"):
            track.seek(-1)
    with open_track(path, fs, channels, start_frame=4321) as track:
        assert np.array_equal(track.read(512), reference[4321:4321 + 512]) or atol
        assert track.position == 4321 + 512


@needs_ffmpeg
def test_seek_in_an_ffmpeg_stream_lands_exactly(tmp_path):
    path = m4a_from(tmp_path, signal(44100, 2, 44100), 44100)
    reference = decode_offline(path, 44100)
    with open_track(path, 44100) as track:
        for frame in (30000, 1234):
            track.seek(frame)
            assert np.array_equal(track.read(2048), reference[frame:frame + 2048])


def best_lag(y, reference, frame, span=3):
    """The integer offset (frames) at which y best matches the reference around `frame`."""
    errors = {lag: np.abs(y - reference[frame + lag:frame + lag + len(y)]).max()
              for lag in range(-span, span + 1)
              if frame + lag >= 0 and frame + lag + len(y) <= len(reference)}
    return min(errors, key=errors.get)


@pytest.mark.parametrize("fs_in, atol", [(44100, 0.0), (22050, 0.0), (96000, 2e-7), (8000, 2e-7), (44056, 2e-5)])
def test_seek_in_a_resampled_track_lands_on_the_frame(tmp_path, fs_in, atol):
    fs = 48000
    path = write(tmp_path / "in.wav", signal(fs_in, 2, fs_in, seed=5), fs_in, "FLOAT")
    offline = decode_offline(path, fs)
    with open_track(path, fs) as track:
        for frame in (12345, 0, 100, 40001, offline.shape[0] - 700):
            track.seek(frame)
            assert track.position == frame
            y = read_all(track, 4096)
            assert y.shape[0] == offline.shape[0] - frame   # the rest of the track, no more, no less
            assert best_lag(y[:600], offline, frame) == 0  # landing error: 0 frames
            np.testing.assert_allclose(y, offline[frame:], rtol=0, atol=atol, err_msg=f"seek to {frame}")


def test_missing_empty_corrupt_and_directory_are_track_errors(tmp_path):
    empty = tmp_path / "empty.flac"
    empty.write_bytes(b"")
    corrupt = tmp_path / "corrupt.flac"
    corrupt.write_bytes(b"fLaC" + bytes(range(256)) * 20)
    cases = {
        tmp_path / "missing.wav": "no such file",
        empty: "not a readable audio file",
        corrupt: "cannot be read as audio",
        tmp_path: "is a directory",
    }
    for path, reason in cases.items():
        with pytest.raises(TrackError) as info:
            open_track(path, 48000)
        message = str(info.value)
        assert "\n" not in message
        assert message.startswith(f"track {path}: ") and reason in message


@pytest.mark.parametrize("ext", ["wav", "flac", "mp3"])
def test_a_truncated_file_plays_what_it_holds_and_says_so(tmp_path, ext):
    x = signal(48000, 2, 48000)
    fmt, subtype = LOSSY.get(ext, (ext.upper(), "PCM_16"))
    path = write(tmp_path / f"cut.{ext}", x, 48000, subtype, fmt)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    track = open_track(path, 48000)
    announced = track.frames
    try:
        y = read_all(track, 4096)
    except TrackError as exc:  # FLAC: libsndfile reports the lost sync
        assert ext == "flac"
        assert str(exc).startswith(f"track {path}: read failed after ") and "\n" not in str(exc)
        return
    finally:
        track.close()
    assert 20000 < y.shape[0] < 30000
    if ext == "wav":  # libsndfile takes the length from the data actually present
        assert announced == y.shape[0] and track.missing_source_frames == 0
        np.testing.assert_allclose(y, x[:y.shape[0]], atol=2 ** -15)
    else:             # the MP3 header still announces the whole length: say what is missing
        assert ext == "mp3" and announced > 40000
        assert track.missing_source_frames == announced - y.shape[0]


def test_a_file_with_zero_frames_is_a_track_error(tmp_path):
    path = write(tmp_path / "silence.wav", np.zeros((0, 2), np.float32), 48000, "FLOAT")
    with pytest.raises(TrackError, match=r"silence.wav: holds no audio frames"):
        open_track(path, 48000)


@pytest.mark.parametrize("fs_in", [48000, 44100])
def test_nan_is_refused_at_read_naming_the_frame(tmp_path, fs_in):
    x = signal(8000, 2, fs_in)
    x[5432, 1] = np.nan
    path = write(tmp_path / "nan.wav", x, fs_in, "FLOAT")
    with open_track(path, 48000) as track:  # opening succeeds: the sample is not read yet
        with pytest.raises(TrackError) as info:
            read_all(track, 1024)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"track {path}: non-finite sample (nan) at frame 5432, channel 2")
    with pytest.raises(TrackError, match="at frame 5432"):
        decode_offline(path, 48000)


def test_too_many_channels_is_a_track_error(tmp_path):
    path = write(tmp_path / "nine.wav", np.zeros((100, 9), np.float32), 48000, "FLOAT")
    with pytest.raises(TrackError, match=r"nine.wav: 9 channels cannot be played on 2 \(no layout known"):
        open_track(path, 48000)


def test_bad_arguments_are_value_errors(tmp_path):
    path = write(tmp_path / "a.wav", signal(1000), 48000, "FLOAT")
    with pytest.raises(ValueError, match="must be positive"):
        open_track(path, 0)
    track = open_track(path, 48000)
    with pytest.raises(ValueError, match="max_frames >= 1"):
        track.read(0)
    track.close()
    track.close()
    with pytest.raises(ValueError, match="read after close"):
        track.read(10)
