"""The compressor's per-ISA paths and its fast log2/exp2, against float64 references.

The kernel picks a vector path at create time (rt_cpu_level: baseline SSE2, x86-64-v3 or
x86-64-v4; AURALIS_RT_ISA caps it).  The paths compute the same formulas and differ only
where v3/v4 fuse a multiply-add (one rounding instead of two): about 1e-15 relative on
dB values, so the float32 outputs agree to within 1 ulp (in practice they are equal) and
the meters to within 1e-9 dB.  Its log2/exp2 are polynomials (errors below 1.5e-8 dB and
1e-9 dB), checked here per sample against the textbook formulas evaluated in float64
with numpy's log10/power: every output within 1 float32 ulp of the reference.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rt_kernels._ffi import channel_pointers, lib
from rt_kernels.dynamics import Compressor
from tests.conftest import in_blocks

FS = 48000
ROOT = Path(__file__).resolve().parents[1]


def textbook_gr_db(x_db, threshold_db, ratio, knee_db):
    """Gain reduction (dB, >= 0) of the soft-knee static curve, Giannoulis et al. 2012."""
    x = np.asarray(x_db, dtype=np.float64)
    over = x - threshold_db
    y = np.where(2 * over < -knee_db, x, threshold_db + over / ratio)
    if knee_db > 0:
        in_knee = 2 * np.abs(over) <= knee_db
        y = np.where(in_knee, x + (1 / ratio - 1) * (over + knee_db / 2) ** 2 / (2 * knee_db), y)
    return x - y


def assert_within_one_ulp(actual, expected):
    """Float32 `actual` against float64 `expected`: at most one float32 step apart."""
    actual = np.asarray(actual, dtype=np.float64)
    step = np.spacing(np.abs(expected).astype(np.float32)).astype(np.float64)
    err = np.abs(actual - expected)
    worst = int(np.argmax(err - step))
    assert np.all(err <= step), (f"sample {worst}: {actual.flat[worst]!r} vs {expected.flat[worst]!r} "
                                 f"({err.flat[worst] / step.flat[worst]:.2f} ulp)")


# --- the ISA paths against each other ------------------------------------------------------

CASES = [  # (name, channels, keyword arguments)
    *[(f"{det}-{link}-{n}ch", n, dict(detector=det, link=link))
      for det in ("peak", "rms") for link in ("none", "max", "mean") for n in (1, 2, 3)],
    ("peak-max-hard-knee-fast", 2, dict(link="max", knee_db=0.0, attack_ms=0.0, release_ms=5.0)),
    ("rms-none-slow-attack", 2, dict(detector="rms", link="none", attack_ms=300.0, release_ms=20.0)),
]


def _program(frames=24000, channels=3):
    rng = np.random.default_rng(11)
    env = np.repeat(10 ** (rng.uniform(-50.0, 6.0, frames // 480 + 1) / 20), 480)[:frames]
    return (0.5 * rng.standard_normal((channels, frames)) * env).astype(np.float32)


def render_cases() -> dict:
    """Every case rendered whole and in blocks of 7 and 65 frames, with a makeup change
    (a 20 ms ramp) halfway, plus the meters at the end.  Run in this process and in
    children capped with AURALIS_RT_ISA."""
    x = _program()
    half = x.shape[1] // 2
    out = {"level": np.array(lib.rt_cpu_level())}
    for name, channels, extra in CASES:
        kwargs = dict(threshold_db=-24.0, ratio=4.0, knee_db=6.0, attack_ms=3.0, release_ms=80.0, rms_ms=5.0)
        kwargs.update(extra)
        block = np.ascontiguousarray(x[:channels])
        for size in (None, 7, 65):
            comp = Compressor(channels, FS, **kwargs)

            def run(b, comp=comp, size=size):
                return comp.process(b) if size is None else in_blocks(comp.process, b, size)
            first = run(np.ascontiguousarray(block[:, :half]))
            comp.set(makeup_db=4.0)
            second = run(np.ascontiguousarray(block[:, half:]))
            out[f"{name}/{size}"] = np.concatenate([first, second], axis=1)
            out[f"{name}/{size}/meters"] = np.concatenate([comp.gain_reduction_db(),
                                                           comp.take_max_gain_reduction_db()])
    return out


def render_in_child(isa: str, tmp_path) -> dict:
    path = tmp_path / f"{isa}.npz"
    code = ("import sys, numpy as np; from tests.test_compressor_isa import render_cases; "
            "np.savez(sys.argv[1], **{k.replace('/', '|'): v for k, v in render_cases().items()})")
    env = dict(os.environ, AURALIS_RT_ISA=isa)
    subprocess.run([sys.executable, "-c", code, str(path)], cwd=ROOT, env=env, check=True, timeout=300)
    with np.load(path) as data:
        return {k.replace("|", "/"): data[k] for k in data.files}


@pytest.fixture(scope="module")
def default_render():
    return render_cases()


@pytest.mark.parametrize("isa", ["base", "v3"])
def test_capped_isa_path_matches_the_default_path(isa, default_render, tmp_path):
    capped = render_in_child(isa, tmp_path)
    assert int(capped["level"]) <= {"base": 0, "v3": 3}[isa], "the cap did not take"
    for name, _, _ in CASES:
        # Block-size invariance holds on the capped path too (bit for bit) ...
        for size in (7, 65):
            assert np.array_equal(capped[f"{name}/None"], capped[f"{name}/{size}"]), (isa, name, size)
            assert np.array_equal(capped[f"{name}/None/meters"], capped[f"{name}/{size}/meters"]), (isa, name, size)
        # ... and it agrees with the machine's best path: 1 float32 ulp, meters 1e-9 dB.
        assert_within_one_ulp(capped[f"{name}/None"], default_render[f"{name}/None"].astype(np.float64))
        np.testing.assert_allclose(capped[f"{name}/None/meters"], default_render[f"{name}/None/meters"],
                                   rtol=0, atol=1e-9, err_msg=f"{isa} {name}")


@pytest.mark.parametrize("link", ["none", "max"])
@pytest.mark.parametrize("detector", ["peak", "rms"])
def test_both_smoother_loops_give_the_same_bits(detector, link):
    # The smoother has a branch-free loop and one with a real branch, picked per 256-frame
    # chunk from how often attack and release alternated in the previous chunk.  Whole,
    # the choice adapts (steady tones: branches; loud noise under a peak detector:
    # branch-free); in blocks of 7 frames there is never enough to go on and the
    # branch-free loop runs throughout.  The output must not notice.
    rng = np.random.default_rng(8)
    t = np.arange(3 * FS) / FS
    tone = 0.5 * np.sin(2 * np.pi * 110 * t) * (1 + 0.9 * np.sin(2 * np.pi * 0.7 * t))
    hiss = np.where((t % 0.5) < 0.25, 0.8, 0.0) * rng.standard_normal(t.size)
    x = np.stack([tone + hiss, tone - 0.5 * hiss]).astype(np.float32)
    kwargs = dict(threshold_db=-20.0, ratio=4.0, knee_db=3.0, attack_ms=5.0, release_ms=50.0, detector=detector,
                  link=link)
    whole = Compressor(2, FS, **kwargs)
    blocks = Compressor(2, FS, **kwargs)
    assert np.array_equal(whole.process(x), in_blocks(blocks.process, x, 7))
    assert np.array_equal(whole.gain_reduction_db(), blocks.gain_reduction_db())
    assert np.array_equal(whole.take_max_gain_reduction_db(), blocks.take_max_gain_reduction_db())


# --- accuracy of the fast log2/exp2: per sample against float64 textbook formulas ---------

CURVES = [  # threshold_db, ratio, knee_db, makeup_db
    (-20.0, 4.0, 0.0, 0.0),
    (-30.0, 2.0, 6.0, 3.0),
    (-10.0, 10.0, 12.0, -6.0),
    (-60.0, 1000.0, 48.0, 40.0),
    (0.0, 1.5, 24.0, 0.0),
]


@pytest.mark.parametrize("curve", CURVES, ids=[f"T{t:g}-R{r:g}-W{w:g}-M{m:g}" for t, r, w, m in CURVES])
def test_static_curve_per_sample_within_one_ulp_of_the_textbook(curve):
    # Attack and release 0: y_L = x_L exactly, so every sample's gain is the static curve
    # of its own |x|.  Levels sweep -140..+20 dBFS (through every knee), signs alternate.
    threshold, ratio, knee, makeup = curve
    frames = 40000
    levels_db = np.linspace(-140.0, 20.0, frames)
    x = ((10 ** (levels_db / 20)) * np.where(np.arange(frames) % 2, -1.0, 1.0)).astype(np.float32)[None, :]
    comp = Compressor(1, FS, threshold_db=threshold, ratio=ratio, knee_db=knee, attack_ms=0.0, release_ms=0.0,
                      makeup_db=makeup)
    y = comp.process(x)
    x64 = x[0].astype(np.float64)
    gr = textbook_gr_db(20 * np.log10(np.abs(x64)), threshold, ratio, knee)
    assert_within_one_ulp(y[0], x64 * 10 ** ((makeup - gr) / 20))


def reference_compressor(x, threshold, ratio, knee, attack_ms, release_ms, detector, rms_ms, makeup_db):
    """One unlinked channel in float64, straight from the paper's equations."""
    def coef(ms):
        return np.exp(-1.0 / (ms * 1e-3 * FS)) if ms > 0 else 0.0
    aa, ar, am = coef(attack_ms), coef(release_ms), coef(rms_ms)
    x64 = x.astype(np.float64)
    if detector == "rms":
        ms, level_db = 0.0, np.empty_like(x64)
        for n, v in enumerate(x64):
            ms = am * ms + (1 - am) * v * v
            level_db[n] = 10 * np.log10(ms) if ms > 0 else -1e4
    else:
        with np.errstate(divide="ignore"):
            level_db = np.maximum(20 * np.log10(np.abs(x64)), -1e4)
    x_l = textbook_gr_db(level_db, threshold, ratio, knee)
    y_l, env = np.empty_like(x_l), 0.0
    for n, v in enumerate(x_l):
        env = aa * env + (1 - aa) * v if v > env else ar * env + (1 - ar) * v
        y_l[n] = env
    return x64 * 10 ** ((makeup_db - y_l) / 20)


@pytest.mark.parametrize("detector", ["peak", "rms"])
def test_dynamic_output_per_sample_within_one_ulp_of_a_float64_reference(detector):
    # Attack, release and the RMS one-pole running: the whole signal path against the
    # paper's equations in float64 (noise whose level jumps across the threshold).
    rng = np.random.default_rng(3)
    frames = 24000
    env = np.repeat(10 ** (rng.uniform(-60.0, 0.0, frames // 600 + 1) / 20), 600)[:frames]
    x = (0.7 * rng.standard_normal(frames) * env).astype(np.float32)
    params = dict(threshold=-30.0, ratio=3.0, knee=8.0, attack_ms=2.0, release_ms=60.0, detector=detector,
                  rms_ms=4.0, makeup_db=5.0)
    comp = Compressor(1, FS, threshold_db=-30.0, ratio=3.0, knee_db=8.0, attack_ms=2.0, release_ms=60.0,
                      detector=detector, rms_ms=4.0, makeup_db=5.0)
    y = comp.process(x[None, :])
    assert_within_one_ulp(y[0], reference_compressor(x, **params))


# --- non-finite samples below the facade, every detector and link ---------------------------

@pytest.mark.parametrize("detector", ["peak", "rms"])
@pytest.mark.parametrize("link", ["none", "max", "mean"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_sample_in_c_reads_as_silence_or_full_clamp(detector, link, bad):
    # The facade refuses non-finite audio; below it the kernel reads NaN as silence and
    # +-Inf as +200 dB, so the envelope stays finite, nothing else turns non-finite, and
    # (NaN) the rest of the output is what a zero sample would have given.
    x = _program(4000, 2)
    with_bad, zeroed = x.copy(), x.copy()
    with_bad[0, 1000] = bad
    zeroed[0, 1000] = 0.0
    outputs, meters = [], []
    for block in (with_bad, zeroed):
        comp = Compressor(2, FS, threshold_db=-25.0, detector=detector, link=link, rms_ms=2.0, release_ms=20.0)
        out = np.empty_like(block)
        lib.rt_compressor_process(comp._state, channel_pointers(block), channel_pointers(out), block.shape[1])
        outputs.append(out)
        meters.append(comp.gain_reduction_db())
    assert np.all(np.isfinite(meters[0]))
    rest = np.ones(x.shape, dtype=bool)
    rest[0, 1000] = False
    assert np.all(np.isfinite(outputs[0][rest]))
    if np.isnan(bad):
        assert np.array_equal(outputs[0][rest], outputs[1][rest])
    else:
        # +200 dB in channel 0's detector: its gain is lower just after than with a zero there.
        assert abs(outputs[0][0, 1001]) < abs(outputs[1][0, 1001])
