"""Loudness measurement of audio or files: the keys `auralis-rt analyze --json` prints."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Iterable

import numpy as np

from engine.audio_io import AudioReader
from rt_kernels.loudness import LoudnessMeter

READ_BLOCK_FRAMES = 65536


@dataclass(frozen=True)
class Measurement:
    """BS.1770-4 / EBU R128 values of a whole signal.

    Loudness values are -inf for a signal that never passes the gates (silence), never
    NaN; in JSON they become null, with the reason in ``notes``.
    """

    integrated_lufs: float
    loudness_range_lu: float
    true_peak_dbtp: float
    sample_peak_dbfs: float
    max_momentary_lufs: float
    max_short_term_lufs: float
    duration_s: float
    sample_rate: int
    channels: int

    @property
    def silent(self) -> bool:
        return not math.isfinite(self.integrated_lufs)

    def to_json(self) -> dict:
        out = {}
        for key, value in asdict(self).items():
            out[key] = value if not isinstance(value, float) or math.isfinite(value) else None
        if self.silent:
            out["notes"] = "no 400 ms block passes the -70 LUFS absolute gate (silence): loudness is undefined"
        return out


def _from_meter(meter: LoudnessMeter, frames: int, sample_rate: int, channels: int) -> Measurement:
    v = meter.snapshot()
    return Measurement(
        integrated_lufs=v.integrated_lufs, loudness_range_lu=v.loudness_range_lu,
        true_peak_dbtp=v.true_peak_dbtp if v.true_peak_dbtp is not None else -math.inf,
        sample_peak_dbfs=v.sample_peak_dbfs, max_momentary_lufs=v.max_momentary_lufs,
        max_short_term_lufs=v.max_short_term_lufs, duration_s=frames / sample_rate,
        sample_rate=int(sample_rate), channels=channels)


def measure_blocks(blocks: Iterable[np.ndarray], sample_rate: int, channels: int) -> Measurement:
    """Measure (frames, channels) float32 blocks as one signal."""
    meter = LoudnessMeter(channels, sample_rate, true_peak=True)
    frames = 0
    for block in blocks:
        meter.process(np.ascontiguousarray(block.T, dtype=np.float32))
        frames += block.shape[0]
    return _from_meter(meter, frames, sample_rate, channels)


def measure(audio: np.ndarray, sample_rate: float) -> Measurement:
    """Measure a float32 (frames, channels) array (or a 1-D mono array)."""
    audio = np.asarray(audio)
    if audio.ndim == 1:
        audio = audio[:, None]
    if audio.ndim != 2:
        raise ValueError(f"measure: audio has shape {audio.shape}; expected (frames, channels)")
    if audio.dtype != np.float32:
        raise TypeError(f"measure: audio has dtype {audio.dtype}; expected float32")
    return measure_blocks([audio], int(sample_rate), audio.shape[1])


def measure_file(path) -> Measurement:
    """Measure a file, streamed (memory does not grow with its length)."""
    with AudioReader(path) as reader:
        info = reader.info
        return measure_blocks(reader.blocks(READ_BLOCK_FRAMES), info.sample_rate, info.channels)
