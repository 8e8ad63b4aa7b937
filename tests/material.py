"""Programme-like test material synthesized in the tests: drums, bass, tones, noise."""

import numpy as np
from scipy import signal


def _pink(rng, frames):
    white = rng.standard_normal(frames)
    spectrum = np.fft.rfft(white)
    f = np.arange(spectrum.size, dtype=np.float64)
    f[0] = 1.0
    return np.fft.irfft(spectrum / np.sqrt(f), frames)


def _env(frames, fs, decay_s):
    return np.exp(-np.arange(frames) / (decay_s * fs))


def mono_part(kind: str, fs: int, seconds: float, rng) -> np.ndarray:
    n = int(fs * seconds)
    t = np.arange(n) / fs
    out = np.zeros(n)
    if kind == "drums":
        beat = int(0.5 * fs)
        for start in range(0, n, beat):
            k = min(beat, n - start)
            sweep = np.sin(2 * np.pi * np.cumsum(np.linspace(150, 45, k)) / fs)
            out[start:start + k] += 0.9 * sweep * _env(k, fs, 0.12)
            snare_at = start + beat // 2
            if snare_at < n:
                m = min(beat // 2, n - snare_at)
                out[snare_at:snare_at + m] += 0.5 * rng.standard_normal(m) * _env(m, fs, 0.05)
        hats = signal.sosfilt(signal.butter(4, 7000, "high", fs=fs, output="sos"), rng.standard_normal(n))
        gate = (np.arange(n) % (beat // 4)) < int(0.02 * fs)
        out += 0.15 * hats * gate
    elif kind == "bass":
        notes = [55.0, 55.0, 73.4, 65.4]
        step = int(0.5 * fs)
        for i, start in enumerate(range(0, n, step)):
            k = min(step, n - start)
            f0 = notes[i % len(notes)]
            tt = np.arange(k) / fs
            out[start:start + k] = (np.sin(2 * np.pi * f0 * tt) + 0.3 * np.sin(4 * np.pi * f0 * tt)) * _env(k, fs, 0.4)
    elif kind == "tones":
        out = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6, 440.0)) / 4
        out *= 0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t)
    elif kind == "noise":
        out = _pink(rng, n)
        out /= np.max(np.abs(out))
    else:
        raise ValueError(kind)
    return out


def programme(kind: str, fs: int, seconds: float, channels: int, peak_dbfs: float, seed: int = 0) -> np.ndarray:
    """(frames, channels) float32 scaled to a given sample peak.  'mix' sums every part
    with a stereo image (parts panned, noise decorrelated)."""
    rng = np.random.default_rng(seed)
    kinds = ("drums", "bass", "tones", "noise") if kind == "mix" else (kind,)
    frames = int(fs * seconds)
    out = np.zeros((frames, channels))
    pans = {"drums": 0.0, "bass": 0.0, "tones": -0.4, "noise": 0.5}
    for part in kinds:
        mono = mono_part(part, fs, seconds, rng)
        if channels == 1:
            out[:, 0] += mono
        else:
            p = pans[part]
            out[:, 0] += mono * np.sqrt((1 - p) / 2)
            out[:, 1] += (mono if part != "noise" else mono_part(part, fs, seconds, rng)) * np.sqrt((1 + p) / 2)
    out *= 10 ** (peak_dbfs / 20) / np.max(np.abs(out))
    return out.astype(np.float32)
