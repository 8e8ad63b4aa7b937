"""The loudness meter's instruction-set paths (csrc/loudness.c): the baseline K-weighting
(two biquads in direct form, the reference) and the vector paths (the same filter in
blocks of eight frames, x86-64-v3 and x86-64-v4), and the true-peak entry point the meter
uses (rt_true_peak_process_bounded).

Each path runs in its own interpreter (AURALIS_RT_ISA caps the level, read once per
process).  The vector paths must give the same bits as each other, agree with the
baseline to far below anything audible (1e-9 LU), be exact against scipy's filtering of
the same samples, and, like the baseline, give the same bits for any block split.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import signal

from rt_kernels._ffi import channel_pointers, ffi, lib
from rt_kernels.loudness import k_weighting

ROOT = Path(__file__).resolve().parents[1]
LEVELS = {"base": 0, "v3": 3, "v4": 4}
FIELDS = ("integrated_lufs", "integrated_gate_lufs", "momentary_lufs", "short_term_lufs", "max_momentary_lufs",
          "max_short_term_lufs", "loudness_range_lu")

# Runs in a child interpreter: measures fixed signals whole and in pieces, prints JSON
# (floats as hex, so nothing is lost on the way).
CHILD = r"""
import json, sys
import numpy as np
from rt_kernels._ffi import lib
from rt_kernels.loudness import LoudnessMeter, measure

def programme(seed, fs, seconds, channels):
    rng = np.random.default_rng(seed)
    frames = int(seconds * fs)
    x = rng.standard_normal((channels, frames))
    segment = int(0.7 * fs)
    levels = rng.uniform(-50, -10, frames // segment + 1)
    return (x * np.repeat(10 ** (levels / 20), segment)[:frames]).astype(np.float32)

def low_end(fs, seconds):
    # 20 Hz at -6 dBFS over a DC offset, a little 1 kHz: the K-filter's high-pass works hard
    n = np.arange(int(seconds * fs))
    x = 0.25 + 0.5 * np.sin(2 * np.pi * 20 * n / fs) + 0.01 * np.sin(2 * np.pi * 1000 * n / fs)
    return np.stack([x, -0.5 * x]).astype(np.float32)

def values(v):
    out = {k: float(getattr(v, k)).hex() for k in FIELDS}
    out["sample_peak"] = [float(p).hex() for p in v.channel_sample_peak_dbfs]
    out["true_peak"] = [float(p).hex() for p in v.channel_true_peak_dbtp]
    return out

FIELDS = %(fields)r
signals = {
    "stereo 44.1k": (programme(1, 44100, 12.0, 2), 44100),
    "5.1 48k": (programme(2, 48000, 8.0, 6), 48000),
    "mono 22.05k": (programme(3, 22050, 8.0, 1), 22050),
    "low end 48k": (low_end(48000, 6.0), 48000),
    "stereo 96k": (programme(5, 96000, 4.0, 2), 96000),  # ticks longer than the scratch
}
result = {"level": int(lib.rt_cpu_level()), "signals": {}}
rng = np.random.default_rng(4)
for name, (x, fs) in signals.items():
    whole = values(measure(x, fs))
    splits = {}
    for size in (1, 7, 65, 4096, "random"):
        if size == 1 and x.shape[1] > 50000:
            x1 = np.ascontiguousarray(x[:, :50000])  # one frame at a time through Python: keep it short
            ref = values(measure(x1, fs))
        else:
            x1, ref = x, whole
        meter = LoudnessMeter(x.shape[0], fs)
        i = 0
        while i < x1.shape[1]:
            n = int(rng.integers(0, 3000)) if size == "random" else size
            meter.process(np.ascontiguousarray(x1[:, i:i + n]))
            i += n
        splits[str(size)] = values(meter.snapshot()) == ref
    result["signals"][name] = {"whole": whole, "split_identical": splits}
print(json.dumps(result))
""" % {"fields": FIELDS}


def run_level(isa: str) -> dict:
    env = dict(os.environ, AURALIS_RT_ISA=isa)
    out = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def paths() -> dict:
    """Results per level this machine has (a cap above the machine runs its best level)."""
    best = lib.rt_cpu_level()
    return {isa: run_level(isa) for isa, level in LEVELS.items() if level <= best}


def test_each_path_runs_the_level_asked_for(paths):
    for isa, result in paths.items():
        assert result["level"] == LEVELS[isa]


def test_every_path_gives_the_same_bits_for_any_block_split(paths):
    for isa, result in paths.items():
        for name, r in result["signals"].items():
            assert all(r["split_identical"].values()), (isa, name, r["split_identical"])


def test_the_vector_paths_give_the_same_bits(paths):
    if "v4" not in paths:
        pytest.skip("this machine has no x86-64-v4")
    assert paths["v3"]["signals"] == paths["v4"]["signals"]


def test_vector_and_baseline_paths_agree_far_below_audibility(paths):
    if len(paths) < 2:
        pytest.skip("this machine has only the baseline path")
    base = paths["base"]["signals"]
    best = paths[max(paths, key=LEVELS.get)]["signals"]
    for name in base:
        a, b = base[name]["whole"], best[name]["whole"]
        for field in FIELDS:
            va, vb = float.fromhex(a[field]), float.fromhex(b[field])
            assert np.isfinite(va) or va == vb, (name, field)
            assert vb == pytest.approx(va, abs=1e-9), (name, field)
        # The sample peak does not go through any filter: the same on every path.  The true
        # peak's interpolation filter is fused multiply-add on the vector paths and not on
        # the baseline: float32 rounding apart, the same.
        assert a["sample_peak"] == b["sample_peak"], name
        for ha, hb in zip(a["true_peak"], b["true_peak"], strict=True):  # dBTP per channel
            tpa, tpb = float.fromhex(ha), float.fromhex(hb)
            assert tpa == tpb or abs(tpa - tpb) < 1e-5, (name, tpa, tpb)


def _k_weighted_momentary(x: np.ndarray, fs: int) -> float:
    """The last 400 ms of x, K-weighted by scipy from the meter's own coefficients, in LUFS."""
    y = signal.sosfilt(k_weighting(fs), x.astype(np.float64), axis=1)
    window = int(round(0.4 * fs))
    return -0.691 + 10 * np.log10(np.sum(np.mean(y[:, -window:] ** 2, axis=1)))


@pytest.mark.parametrize("isa", list(LEVELS))
def test_each_path_is_the_k_filter_to_far_below_audibility(isa):
    """Momentary loudness (the exact energy of the last 400 ms, no histogram) of material
    that stresses the high-pass (DC, 20 Hz) and of noise, against scipy's filtering."""
    if LEVELS[isa] > lib.rt_cpu_level():
        pytest.skip(f"this machine has no {isa}")
    code = r"""
import json, numpy as np
from rt_kernels.loudness import measure
fs = 48000
n = np.arange(5 * fs)
low = (0.25 + 0.5 * np.sin(2 * np.pi * 20 * n / fs) + 0.01 * np.sin(2 * np.pi * 1000 * n / fs)).astype(np.float32)
noise = (0.1 * np.random.default_rng(5).standard_normal((2, 5 * fs))).astype(np.float32)
print(json.dumps([measure(np.stack([low, -0.5 * low]), fs).momentary_lufs, measure(noise, fs).momentary_lufs]))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=dict(os.environ, AURALIS_RT_ISA=isa),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    low_lufs, noise_lufs = json.loads(out.stdout)
    fs = 48000
    n = np.arange(5 * fs)
    low = (0.25 + 0.5 * np.sin(2 * np.pi * 20 * n / fs) + 0.01 * np.sin(2 * np.pi * 1000 * n / fs)).astype(np.float32)
    noise = (0.1 * np.random.default_rng(5).standard_normal((2, 5 * fs))).astype(np.float32)
    assert low_lufs == pytest.approx(_k_weighted_momentary(np.stack([low, -0.5 * low]), fs), abs=1e-7)
    assert noise_lufs == pytest.approx(_k_weighted_momentary(noise, fs), abs=1e-7)


# ---------------------------------------------------------------- true peak, bounded


def _tp(channels, fs, factor):
    return ffi.gc(lib.rt_true_peak_create_factor(channels, fs, factor), lib.rt_true_peak_destroy)


def _maxima(st, channels):
    return [lib.rt_true_peak_max(st, ch) for ch in range(channels)]


@pytest.mark.parametrize("factor", [1, 2, 4, 8])
def test_bounded_true_peak_equals_process_bit_for_bit(factor, rng):
    """rt_true_peak_process_bounded with exact, loose and useless bounds, on segments of
    every length (shorter and longer than the history), NaN included: the same maxima as
    rt_true_peak_process after every call, and the same history (the refined envelope of
    what follows is identical)."""
    fs, channels = 44100, 3
    frames = 40000
    level = np.repeat(10 ** (rng.uniform(-40, 0, frames // 500 + 1) / 20), 500)[:frames]
    x = (rng.standard_normal((channels, frames)) * level).astype(np.float32)
    x[1, 12345] = np.nan
    x[2, 23456] = np.inf
    ref, bounded = _tp(channels, fs, factor), _tp(channels, fs, factor)
    bound = ffi.new("float[]", channels)
    i = 0
    while i < frames:
        n = int(rng.choice([1, 5, 30, 31, 32, 64, 441, 1000]))
        seg = np.ascontiguousarray(x[:, i:i + n])
        with np.errstate(invalid="ignore"):
            m = np.nanmax(np.abs(seg), axis=1) if seg.shape[1] else np.zeros(channels)
        kind = rng.integers(0, 3)
        for ch in range(channels):
            bound[ch] = float(m[ch]) if kind == 0 else float(m[ch]) * 1.5 if kind == 1 else np.nan
        assert lib.rt_true_peak_process(ref, channel_pointers(seg), seg.shape[1]) == seg.shape[1]
        assert lib.rt_true_peak_process_bounded(bounded, channel_pointers(seg), seg.shape[1], bound) == seg.shape[1]
        assert _maxima(bounded, channels) == _maxima(ref, channels)
        i += n
    assert all(np.isfinite(_maxima(ref, 1)))
    tail = (0.9 * rng.standard_normal((channels, 3000))).astype(np.float32)
    env_ref = np.zeros_like(tail)
    env_bounded = np.zeros_like(tail)
    lib.rt_true_peak_envelope_refined(ref, channel_pointers(tail), channel_pointers(env_ref), tail.shape[1])
    lib.rt_true_peak_envelope_refined(bounded, channel_pointers(tail), channel_pointers(env_bounded), tail.shape[1])
    np.testing.assert_array_equal(env_bounded, env_ref)


def test_bounded_true_peak_skips_what_cannot_raise_the_maximum():
    """A bound that lies (says 0 where the signal is loud) is skipped: the proof that the
    bound is used at all (the other test cannot tell skipping from computing)."""
    st = _tp(1, 48000, 4)
    loud = np.ascontiguousarray((0.5 * np.sin(np.arange(4800) * 0.3)).astype(np.float32)[None, :])
    lib.rt_true_peak_process(st, channel_pointers(loud), loud.shape[1])
    quiet = np.zeros((1, 100), np.float32)  # so that the history cannot raise the maximum either
    lib.rt_true_peak_process(st, channel_pointers(quiet), quiet.shape[1])
    before = lib.rt_true_peak_max(st, 0)
    louder = np.ascontiguousarray(2 * loud[:, :480])
    bound = ffi.new("float[]", [0.0])
    lib.rt_true_peak_process_bounded(st, channel_pointers(louder), louder.shape[1], bound)
    assert lib.rt_true_peak_max(st, 0) == before, "the bound says nothing here can raise the maximum"
    bound[0] = 1.0
    lib.rt_true_peak_process_bounded(st, channel_pointers(louder), louder.shape[1], bound)
    assert lib.rt_true_peak_max(st, 0) > before
