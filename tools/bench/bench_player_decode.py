"""Player decoding: file -> float32 stereo at 48 kHz through TrackReader, vs pedalboard.

`python -m tools.bench --only player_decode --seconds 30`.  Files: a 44.1 kHz stereo FLAC
(PCM_16) and MP3 (libsndfile's LAME encoder, VBR), and a 48 kHz FLAC for the same-rate
case, `--seconds` long, written into a temporary directory.  Ours: open_track(path, 48000)
read in 4096-frame blocks to the end (decode, NaN check, soxr VHQ streaming resampler when
the rates differ).  Peer, same files, same run: pedalboard's
`AudioFile(path).resampled_to(48000)` (its WindowedSinc32 resampler) read in 4096-frame
blocks, or `AudioFile(path)` for the same-rate file.  Every timing includes opening the
file.  Unit: ns per output frame (stereo); "x real time" = audio seconds per wall second.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from pedalboard.io import AudioFile

from engine.player import decode
from engine.player.decode import open_track
from tools.bench.common import Row, median_seconds, per_unit_ns

RATE = 48000
BLOCK = 4096
UNIT = "ns per output frame (stereo)"


def _programme(seconds: float, rate: int) -> np.ndarray:
    frames = int(seconds * rate)
    t = np.arange(frames) / rate
    rng = np.random.default_rng(11)
    x = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * 554.37 * t)], axis=1)
    return (x + 0.05 * rng.standard_normal(x.shape)).astype(np.float32)


def _ours(path: Path) -> int:
    frames = 0
    with open_track(path, RATE) as track:
        while (n := track.read(BLOCK).shape[0]):
            frames += n
    return frames


def _peer(path: Path, resample: bool) -> int:
    frames = 0
    with AudioFile(str(path)) as source:
        reader = source.resampled_to(RATE) if resample else source
        while (n := reader.read(BLOCK).shape[1]):
            frames += n
    return frames


def _ours_at(quality: str, path: Path) -> int:
    saved = decode.RESAMPLER_QUALITY
    decode.RESAMPLER_QUALITY = quality
    try:
        return _ours(path)
    finally:
        decode.RESAMPLER_QUALITY = saved


def run(opts) -> list[Row]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_player_decode.") as tmp:
        tmp = Path(tmp)
        files = {
            "FLAC 44.1k -> 48k": (tmp / "in44.flac", 44100, "FLAC", "PCM_16", True),
            "MP3 44.1k -> 48k": (tmp / "in44.mp3", 44100, "MP3", "MPEG_LAYER_III", True),
            "FLAC 48k, same rate": (tmp / "in48.flac", 48000, "FLAC", "PCM_16", False),
        }
        for path, rate, fmt, subtype, _ in files.values():
            sf.write(path, _programme(opts.seconds, rate), rate, format=fmt, subtype=subtype)
        for name, (path, rate, fmt, _, resample) in files.items():
            ours_frames, peer_frames = _ours(path), _peer(path, resample)
            ours_s = median_seconds(lambda: _ours(path), opts.repeats)
            peer_s = median_seconds(lambda: _peer(path, resample), opts.repeats)
            audio_s = ours_frames / RATE
            print(f"  {name}: ours {audio_s / ours_s:7.0f}x real time ({ours_frames} frames), "
                  f"pedalboard {peer_frames / RATE / peer_s:7.0f}x real time ({peer_frames} frames)")
            rows.append(Row(f"player decode: {name}", UNIT, per_unit_ns(ours_s, ours_frames),
                            "pedalboard AudioFile" + (".resampled_to" if resample else ""),
                            per_unit_ns(peer_s, peer_frames)))
        # What the VHQ choice costs: the FLAC case again with soxr at HQ.
        path = files["FLAC 44.1k -> 48k"][0]
        hq_frames = _ours_at("HQ", path)
        hq_s = median_seconds(lambda: _ours_at("HQ", path), opts.repeats)
        print(f"  FLAC 44.1k -> 48k with soxr HQ instead of VHQ: {hq_frames / RATE / hq_s:7.0f}x real time")
        rows.append(Row("player decode: FLAC 44.1k -> 48k, soxr HQ", UNIT, per_unit_ns(hq_s, hq_frames),
                        "pedalboard AudioFile.resampled_to", rows[0].peer_ns))
    return rows
