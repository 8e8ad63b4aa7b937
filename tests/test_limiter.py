"""Lookahead brick-wall limiter: the ceiling on adversarial signals (sample peak exactly;
true peak measured independently with scipy's 8x resample_poly), exact delay, release
time constants, block-size invariance."""

import numpy as np
import pytest

from rt_kernels._ffi import channel_pointers, ffi, lib
from rt_kernels.limiter import Limiter
from tests.conftest import BLOCK_SIZES, in_blocks, noise, subnormal_count
from tests.references import true_peak_8x_db

RATES = (44100, 48000, 96000)


def true_peak_db(y, edge=64):
    """8x-oversampled peak (tests/references.py), ignoring `edge` frames at both ends."""
    return true_peak_8x_db(y, edge)


def adversarial(kind, fs, rng, seconds=0.5):
    n = np.arange(int(fs * seconds))
    if kind == "square":        # full scale, period 100 frames
        s = np.where((n // 50) % 2 == 0, 1.0, -1.0)
    elif kind == "square_nyquist":  # full scale, alternating every frame
        s = np.where(n % 2 == 0, 1.0, -1.0)
    elif kind == "spikes":      # single-sample spikes, full scale and +20 dB, isolated and paired
        s = np.zeros(n.size)
        s[::977] = 1.0
        s[5::977] = -10.0
        s[400::1231] = 10.0
        s[401::1231] = -10.0
    elif kind == "sine_over_20db":
        s = 10.0 * np.sin(2 * np.pi * 997.0 / fs * n + 0.3)
    elif kind == "quarter_rate_over":  # fs/4 at 45 degrees, +12 dB: true peak 3 dB over its samples
        s = 4.0 * np.sin(np.pi / 2 * n + np.pi / 4)
    elif kind == "clipped_noise":
        s = np.clip(1.0 * rng.standard_normal(n.size), -1.0, 1.0)
    elif kind == "noise_over_20db":
        s = 2.5 * rng.standard_normal(n.size)
    else:
        raise ValueError(kind)
    other = np.roll(s, 3) * 0.7
    return np.ascontiguousarray(np.stack([s, other]).astype(np.float32))


KINDS = ["square", "square_nyquist", "spikes", "sine_over_20db", "quarter_rate_over", "clipped_noise",
         "noise_over_20db"]


@pytest.mark.parametrize("fs", RATES)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("ceiling_db", [-0.3, -6.0])
def test_sample_peak_never_exceeds_the_ceiling(fs, kind, ceiling_db, rng):
    x = adversarial(kind, fs, rng)
    lim = Limiter(2, fs, ceiling_db=ceiling_db)
    y = lim.process(x)
    assert np.abs(y.astype(np.float64)).max() <= 10 ** (ceiling_db / 20)
    assert lim.clamp_count == 0  # the gain path alone held it; the safety stage never acted
    assert lim.max_gain_reduction_db > 0.0


@pytest.mark.parametrize("fs", RATES)
@pytest.mark.parametrize("kind", KINDS)
def test_true_peak_mode_holds_the_ceiling_for_true_peaks(fs, kind, rng):
    ceiling_db = -1.0
    x = adversarial(kind, fs, rng)
    lim = Limiter(2, fs, ceiling_db=ceiling_db, true_peak=True)
    y = lim.process(x)
    assert np.abs(y.astype(np.float64)).max() <= 10 ** (ceiling_db / 20)
    assert true_peak_db(y) <= ceiling_db + 0.1
    assert lim.clamp_count == 0


@pytest.mark.parametrize("fs", RATES)
def test_sample_peak_mode_lets_inter_sample_peaks_through(fs, rng):
    # The reason true-peak mode exists: the same clipped noise, sample-peak limited,
    # has a true peak well above the ceiling (so the test above can fail).
    y = Limiter(2, fs, ceiling_db=-1.0).process(adversarial("clipped_noise", fs, rng))
    assert true_peak_db(y) > -1.0 + 0.5


@pytest.mark.parametrize("true_peak", [False, True])
@pytest.mark.parametrize("fs,lookahead_ms", [(44100, 0.5), (48000, 1.5), (96000, 10.0), (8000, 0.5)])
def test_latency_equals_the_measured_delay_and_output_is_exact(fs, lookahead_ms, true_peak, rng):
    lim = Limiter(2, fs, ceiling_db=-1.0, lookahead_ms=lookahead_ms, true_peak=true_peak)
    expected = round(lookahead_ms * fs / 1000) + (33 if true_peak else 0)
    assert lim.latency_frames == expected
    assert lim.lookahead_frames == round(lookahead_ms * fs / 1000)
    x = np.zeros((2, 4000), np.float32)
    x[:, 100] = 0.5
    x[:, 1000:3000] = noise(rng, 2, 2000, level=0.05)  # stays far below the ceiling
    y = lim.process(x)
    assert int(np.argmax(np.abs(y[0]))) - 100 == expected
    d = expected
    assert np.array_equal(y[:, d:], x[:, :-d])  # bit-exact delay when nothing needs limiting
    assert np.all(y[:, :d] == 0)
    assert lim.max_gain_reduction_db == 0.0


@pytest.mark.parametrize("true_peak", [False, True])
def test_output_is_the_delayed_input_times_a_gain_at_most_one(true_peak, rng):
    fs = 48000
    x = adversarial("noise_over_20db", fs, rng, seconds=0.2)
    lim = Limiter(2, fs, ceiling_db=-3.0, true_peak=true_peak)
    y, gain = lim.process_with_gain(x)
    d = lim.latency_frames
    xd = x[:, :-d].astype(np.float64)
    yd = y[:, d:].astype(np.float64)
    nz = np.abs(xd) > 1e-3
    ratio = yd[nz] / xd[nz]
    assert np.all(ratio >= 0) and np.all(ratio <= 1)
    # one gain for both channels (stereo link), equal to the reported per-frame gain
    g = np.broadcast_to(gain[d:], xd.shape)[nz]
    np.testing.assert_allclose(ratio, g, rtol=2e-7, atol=0)


def applied_gain(y, x, latency):
    """The gain on each output frame, read from the signal itself (NaN where x is 0)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return y[0, latency:].astype(np.float64) / x[0, :-latency]


def recovery_time_constant_ms(gain, start, fs):
    """Fit 1 - g(t) = a * exp(-t / tau) where 1 - g is between 70 % and 10 % of its start."""
    gr = 1.0 - gain[start:]
    top = gr[0]
    idx = np.nonzero((gr < 0.7 * top) & (gr > 0.1 * top))[0]
    slope = np.polyfit(idx / fs, np.log(gr[idx]), 1)[0]
    return -1000.0 / slope


def burst_then_quiet(fs, burst_frames, quiet_frames, level=0.1):
    """A +6 dB-over tone burst, then a quiet DC that lets us read the gain as y / x."""
    n = np.arange(burst_frames)
    burst = 2.0 * np.sin(2 * np.pi * 1000.0 / fs * n)
    x = np.concatenate([burst, np.full(quiet_frames, level)])
    return np.ascontiguousarray(np.stack([x, x]).astype(np.float32))


@pytest.mark.parametrize("fs", RATES)
@pytest.mark.parametrize("release_ms", [20.0, 50.0, 300.0])
def test_release_recovers_with_the_set_time_constant(fs, release_ms):
    lim = Limiter(2, fs, ceiling_db=-1.0, release_ms=release_ms)
    burst = fs // 10
    x = burst_then_quiet(fs, burst, int(fs * release_ms / 1000 * 6))
    y = lim.process(x)
    d = lim.latency_frames
    gain = applied_gain(y, x, d)
    start = burst + lim.lookahead_frames + 1  # last burst frame has left the hold and the average
    tau = recovery_time_constant_ms(gain, start, fs)
    assert tau == pytest.approx(release_ms, rel=0.10)
    assert gain[-1] > 0.99


def test_auto_release_is_fast_after_a_spike_and_slow_after_sustained_limiting():
    fs, release_ms = 48000, 200.0
    # isolated spike: recovers at about release_ms / 4
    lim = Limiter(1, fs, ceiling_db=-1.0, release_ms=release_ms, auto_release=True)
    x = np.full((1, fs), 0.1, np.float32)
    x[0, 100] = 2.0
    y = lim.process(x)
    d = lim.latency_frames
    gain = applied_gain(y, x, d)
    tau_spike = recovery_time_constant_ms(gain, 100 + lim.lookahead_frames + 1, fs)
    assert tau_spike == pytest.approx(release_ms / 4, rel=0.15)
    # two seconds of limiting: the release slows to about release_ms
    lim = Limiter(1, fs, ceiling_db=-1.0, release_ms=release_ms, auto_release=True)
    burst = 2 * fs
    x = burst_then_quiet(fs, burst, fs)[:1].copy()
    y = lim.process(x)
    gain = applied_gain(y, x, d)
    tau_sustained = recovery_time_constant_ms(gain, burst + lim.lookahead_frames + 1, fs)
    assert tau_sustained == pytest.approx(release_ms, rel=0.15)
    # without auto release both recover at release_ms
    lim = Limiter(1, fs, ceiling_db=-1.0, release_ms=release_ms)
    x = np.full((1, fs), 0.1, np.float32)
    x[0, 100] = 2.0
    y = lim.process(x)
    gain = applied_gain(y, x, d)
    assert recovery_time_constant_ms(gain, 100 + lim.lookahead_frames + 1, fs) == pytest.approx(release_ms, rel=0.1)


@pytest.mark.parametrize("true_peak", [False, True])
@pytest.mark.parametrize("auto_release", [False, True])
def test_block_size_invariance(true_peak, auto_release, rng):
    fs = 44100
    x = np.concatenate([adversarial("noise_over_20db", fs, rng, seconds=0.1), noise(rng, 2, 6000, 0.1),
                        adversarial("spikes", fs, rng, seconds=0.1)], axis=1)
    x = np.ascontiguousarray(x)
    whole = Limiter(2, fs, ceiling_db=-2.0, true_peak=true_peak, auto_release=auto_release)
    expected, expected_gain = whole.process_with_gain(x)
    for size in BLOCK_SIZES:
        lim = Limiter(2, fs, ceiling_db=-2.0, true_peak=true_peak, auto_release=auto_release)
        gains = []

        def run(block):
            out, g = lim.process_with_gain(block)
            gains.append(g)
            return out

        got = in_blocks(run, x, size)
        assert np.array_equal(got, expected), size
        assert np.array_equal(np.concatenate(gains), expected_gain), size


def test_in_place_processing_matches(rng):
    fs = 48000
    x = adversarial("clipped_noise", fs, rng, seconds=0.1)
    expected = Limiter(2, fs, ceiling_db=-4.0, true_peak=True).process(x)
    lim = Limiter(2, fs, ceiling_db=-4.0, true_peak=True)
    buf = x.copy()
    ptrs = channel_pointers(buf)
    assert lib.rt_limiter_process(lim._state, ptrs, ptrs, buf.shape[1]) == buf.shape[1]
    assert np.array_equal(buf, expected)


@pytest.mark.parametrize("frames", [0, 1, 7, 64])
@pytest.mark.parametrize("true_peak", [False, True])
def test_frames_out_equal_frames_in(frames, true_peak, rng):
    lim = Limiter(2, 44100, true_peak=true_peak)
    x = noise(rng, 2, frames, level=2.0)
    assert lim.process(x).shape == (2, frames)
    out, gain = lim.process_with_gain(x)
    assert out.shape == (2, frames) and gain.shape == (frames,)


@pytest.mark.parametrize("true_peak", [False, True])
def test_no_subnormal_output(true_peak, rng):
    x = np.concatenate([noise(rng, 2, 4000, level=3.0), noise(rng, 2, 4000, level=1e-36),
                        np.zeros((2, 44100), np.float32)], axis=1)
    lim = Limiter(2, 44100, ceiling_db=-1.0, auto_release=True, true_peak=true_peak)
    y, gain = lim.process_with_gain(np.ascontiguousarray(x))
    assert subnormal_count(y) == 0 and subnormal_count(gain) == 0


def test_gain_reduction_meter():
    fs = 48000
    lim = Limiter(2, fs, ceiling_db=-1.0, release_ms=10.0)
    n = np.arange(fs // 2)
    tone = (10 ** (5 / 20) * np.sin(2 * np.pi * 1000 / fs * n)).astype(np.float32)  # peak +5 dBFS
    lim.process(np.ascontiguousarray(np.stack([tone, tone])))
    assert lim.max_gain_reduction_db == pytest.approx(6.0, abs=0.05)
    assert 0.0 < lim.gain_reduction_db <= 6.0 + 0.05
    lim.process(np.zeros((2, fs // 2), np.float32))
    assert lim.gain_reduction_db < 1e-6
    lim.clear_meter()
    assert lim.max_gain_reduction_db < 1e-6


def test_parameter_changes_keep_the_ceiling(rng):
    fs = 48000
    lim = Limiter(2, fs, ceiling_db=-0.3)
    x = adversarial("noise_over_20db", fs, rng, seconds=0.2)
    lim.process(x)
    lim.set_ceiling_db(-12.0)  # lowered while loud audio sits in the delay line
    y = lim.process(x)
    assert np.abs(y.astype(np.float64)).max() <= 10 ** (-12 / 20)
    assert lim.clamp_count > 0  # the safety stage caught the samples already in flight
    lim.set_lookahead_ms(5.0)
    assert lim.latency_frames == 240 and lim.lookahead_ms == 5.0
    lim.set_release_ms(100.0)
    lim.set_auto_release(True)
    assert np.abs(lim.process(x).astype(np.float64)).max() <= 10 ** (-12 / 20)


def test_non_finite_samples_reaching_c_are_silenced_and_counted():
    lim = Limiter(2, 48000)
    x = np.full((2, 64), 0.5, np.float32)
    x[0, 3] = np.nan
    x[1, 9] = np.inf
    out = np.empty_like(x)
    lib.rt_limiter_process(lim._state, channel_pointers(x), channel_pointers(out), 64)
    assert np.all(np.isfinite(out))
    assert lib.rt_limiter_nonfinite_count(lim._state) == 2


def test_validation_errors():
    with pytest.raises(ValueError, match=r"Limiter: lookahead_ms = 0.2 is outside \[0.5, 10\] ms"):
        Limiter(2, 48000, lookahead_ms=0.2)
    with pytest.raises(ValueError, match=r"Limiter: ceiling_db = 1.0 is outside \[-60, 0\] dBFS"):
        Limiter(2, 48000, ceiling_db=1.0)
    with pytest.raises(ValueError, match=r"Limiter: release_ms = nan is outside \[1, 5000\] ms"):
        Limiter(2, 48000, release_ms=float("nan"))
    with pytest.raises(TypeError, match="Limiter: true_peak must be a bool, got int 1"):
        Limiter(2, 48000, true_peak=1)
    with pytest.raises(ValueError, match=r"Limiter: sample_rate = 4000.0 is outside"):
        Limiter(2, 4000)
    lim = Limiter(2, 48000)
    with pytest.raises(ValueError, match=r"Limiter.set_lookahead_ms: lookahead_ms = 11.0 is outside \[0.5, 10\] ms"):
        lim.set_lookahead_ms(11.0)
    with pytest.raises(ValueError, match=r"Limiter.set_ceiling_db: ceiling_db = inf is outside"):
        lim.set_ceiling_db(float("inf"))
    with pytest.raises(ValueError, match=r"Limiter.set_release_ms: release_ms = 0.5 is outside"):
        lim.set_release_ms(0.5)
    with pytest.raises(TypeError, match="Limiter.process: block has dtype float64"):
        lim.process(np.zeros((2, 8)))
    bad = np.zeros((2, 8), np.float32)
    bad[0, 2] = np.inf
    with pytest.raises(ValueError, match="Limiter.process_with_gain: block holds non-finite samples"):
        lim.process_with_gain(bad)
    assert lim.lookahead_ms == 1.5 and lim.ceiling_db == -0.3 and lim.release_ms == 50.0
    # the C setters refuse out-of-range values themselves, leaving the state unchanged
    assert lib.rt_limiter_set_lookahead_ms(lim._state, 20.0) == -1
    assert lib.rt_limiter_set_ceiling_db(lim._state, float("nan")) == -1
    assert lib.rt_limiter_create(2, 48000.0, 1.5, 3.0, 50.0, 0, 0) == ffi.NULL


@pytest.mark.parametrize("true_peak", [False, True])
def test_random_parameter_changes_between_blocks_keep_the_ceiling(true_peak, rng):
    fs = 44100
    lim = Limiter(2, fs, ceiling_db=-1.0, true_peak=true_peak)
    x = adversarial("noise_over_20db", fs, rng, seconds=0.5)
    pos = 0
    while pos < x.shape[1]:
        size = int(rng.integers(1, 2000))
        ceiling_db = float(rng.uniform(-20.0, 0.0))
        lim.set_ceiling_db(ceiling_db)
        lim.set_release_ms(float(rng.uniform(1.0, 500.0)))
        lim.set_auto_release(bool(rng.integers(0, 2)))
        y = lim.process(np.ascontiguousarray(x[:, pos:pos + size]))
        assert np.abs(y.astype(np.float64)).max() <= 10 ** (ceiling_db / 20)
        assert np.all(np.isfinite(y)) and subnormal_count(y) == 0
        pos += size


def test_extreme_input_levels():
    # Near FLT_MAX and tiny values in one block: the gain is never NaN, the output never
    # above the ceiling and never subnormal.
    x = np.zeros((2, 3000), np.float32)
    x[:, 500] = 3.0e38
    x[:, 501] = -3.0e38
    x[:, 600:900] = 1e-37
    lim = Limiter(2, 48000, ceiling_db=-0.3)
    y, gain = lim.process_with_gain(x)
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(gain))
    assert np.abs(y.astype(np.float64)).max() <= 10 ** (-0.3 / 20)
    assert subnormal_count(y) == 0 and subnormal_count(gain) == 0


# ---- the gain computer against an independent model of its documented arithmetic ----

def _float_at_or_below(v):
    f = np.float32(v)
    return f if float(f) <= v else np.nextafter(f, np.float32(0))


def reference_sample_peak_limiter(x, fs, ceiling_db, lookahead_ms, release_ms, auto_release):
    """limiter.h's recursion, frame by frame in Python floats (IEEE doubles, the same
    operations in the same order), sample-peak mode: every frame taken one at a time (no
    unity runs, no deque), so it checks that the C kernel's shortcuts change nothing."""
    import math
    cf = _float_at_or_below(10 ** (ceiling_db / 20))
    cfd = float(cf)
    d_frames = max(1, int(math.floor(lookahead_ms * 0.001 * fs + 0.5)))
    hold, box_len, cell = d_frames + 1, d_frames + 1, 64
    q_one = 2 ** 40
    rate = lambda ms: 1.0 - math.exp(-1000.0 / (ms * fs))
    rate_slow, rate_fast, rd = rate(release_ms), rate(release_ms / 4.0), rate(500.0)
    rise = [-math.expm1(k * math.log1p(-rd)) for k in range(cell + 1)]
    decay = [math.exp(k * math.log1p(-rd)) for k in range(cell + 1)]
    box_scale = 1.0 / (box_len * float(q_one))
    frames = x.shape[1]
    d = np.abs(x).max(axis=0)
    r = [((cfd / float(v)) * (1.0 - 1e-12)) if v > cf else 1.0 for v in d]
    u, density, n_lim, n_rec, pos = 0.0, 0.0, 0, 0, 0
    box = [q_one] * box_len
    box_sum = q_one * box_len

    def set_rate():
        rho = rate_fast + (rate_slow - rate_fast) * density if auto_release else rate_slow
        return rho, 1.0 - rho, max(rho * 2.0 ** -30, 2.0 ** -50)

    rho, keep, kappa = set_rate()
    gain = np.empty(frames)
    for t in range(frames):
        h = min([1.0] + [r[s] for s in range(max(0, t - hold + 1), t + 1) if r[s] < 1.0])
        v = 1.0 - h if h < 1.0 else 0.0
        un = u * keep + (v * rho - kappa)
        u = un if un > v else v
        if v > 0.0:
            n_lim += 1
        elif u <= 0.001:
            n_rec += 1
        q = int((1.0 - u) * float(q_one))
        box_sum += q - box[t % box_len]
        box[t % box_len] = q
        g = float(box_sum) * box_scale
        r_delayed = r[t - d_frames] if t >= d_frames else 1.0
        gain[t] = g if g < r_delayed else r_delayed
        pos += 1
        if pos == cell:
            if n_lim:
                density += (1.0 - density) * rise[n_lim]
            if n_rec:
                density = density * decay[n_rec]
                density = 0.0 if density < 1e-30 else density
            n_lim = n_rec = pos = 0
            rho, keep, kappa = set_rate()
    delayed = np.concatenate([np.zeros((x.shape[0], d_frames), np.float32), x[:, :-d_frames]], axis=1)
    y = (delayed.astype(np.float64) * gain).astype(np.float32)
    over = np.abs(y) > cf
    y[over] = np.copysign(cf, delayed[over])
    y[np.abs(y) < np.finfo(np.float32).tiny] = 0.0
    return y, gain


@pytest.mark.parametrize("auto_release", [False, True])
@pytest.mark.parametrize("fs,lookahead_ms,release_ms", [(44100, 1.5, 50.0), (48000, 0.5, 3.0), (8000, 2.0, 300.0)])
def test_sample_peak_gain_is_the_documented_recursion_bit_for_bit(fs, lookahead_ms, release_ms, auto_release, rng):
    # bursts over the ceiling, full recoveries to unity in between, and a recovery cut short
    parts = [noise(rng, 2, 300, 0.1), adversarial("noise_over_20db", fs, rng, seconds=0.02),
             noise(rng, 2, int(fs * release_ms / 1000 * 40), 0.1), adversarial("spikes", fs, rng, seconds=0.05),
             noise(rng, 2, 500, 0.3), adversarial("sine_over_20db", fs, rng, seconds=0.02), noise(rng, 2, 3000, 0.2)]
    x = np.ascontiguousarray(np.concatenate(parts, axis=1))
    lim = Limiter(2, fs, ceiling_db=-1.0, lookahead_ms=lookahead_ms, release_ms=release_ms, auto_release=auto_release)
    y, gain = lim.process_with_gain(x)
    y_ref, gain_ref = reference_sample_peak_limiter(x, fs, -1.0, lookahead_ms, release_ms, auto_release)
    assert np.array_equal(gain, gain_ref.astype(np.float32))
    assert np.array_equal(y, y_ref)
    assert np.any(gain < 0.5) and np.sum(gain == 1.0) > x.shape[1] // 4  # limited hard, and at unity


# ---- the vector paths against the baseline build (AURALIS_RT_ISA=base in a child process) ----

_ISA_CHILD = r"""
import sys, numpy as np
sys.path.insert(0, sys.argv[1])
from rt_kernels._ffi import lib
from rt_kernels.limiter import Limiter
data = np.load(sys.argv[2])
out = {"level": np.array(lib.rt_cpu_level())}
for tp in (False, True):
    for auto in (False, True):
        lim = Limiter(2, 48000, ceiling_db=-1.0, true_peak=tp, auto_release=auto)
        y, g = lim.process_with_gain(data["x"])
        out[f"y_{int(tp)}{int(auto)}"], out[f"g_{int(tp)}{int(auto)}"] = y, g
np.savez(sys.argv[3], **out)
"""


def _run_isa(isa, x, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path
    src, dst = tmp_path / "x.npz", tmp_path / f"out_{isa}.npz"
    np.savez(src, x=x)
    env = dict(os.environ, AURALIS_RT_ISA=isa)
    root = str(Path(__file__).resolve().parents[1])
    subprocess.run([sys.executable, "-c", _ISA_CHILD, root, str(src), str(dst)], env=env, check=True, timeout=120)
    return dict(np.load(dst))


def test_baseline_build_matches_the_vector_build(tmp_path, rng):
    fs = 48000
    t = np.arange(fs // 2) / fs
    programme = 0.3 * np.sin(2 * np.pi * 220 * t) + noise(rng, 2, t.size, 0.05)
    x = np.ascontiguousarray(np.concatenate([programme, adversarial("clipped_noise", fs, rng, seconds=0.2),
                                             adversarial("quarter_rate_over", fs, rng, seconds=0.1),
                                             noise(rng, 2, fs // 4, 0.1)], axis=1).astype(np.float32))
    base, best = _run_isa("base", x, tmp_path), _run_isa("v4", x, tmp_path)
    assert int(base["level"]) == 0
    for key in ("00", "01", "10", "11"):
        y_base, y_best = base["y_" + key], best["y_" + key]
        assert np.all(np.abs(y_base) <= 10 ** (-1 / 20)) and np.all(np.abs(y_best) <= 10 ** (-1 / 20))
        if key[0] == "0":
            # sample peak: the same arithmetic on every path (no FMA anywhere), bit for bit
            assert np.array_equal(y_base, y_best) and np.array_equal(base["g_" + key], best["g_" + key]), key
        else:
            # true peak: the detector's FIR rounds differently with FMA (float32, ~1e-7): gains
            # agree to a few float32 ulps, and both hold the ceiling for true peaks
            np.testing.assert_allclose(base["g_" + key], best["g_" + key], rtol=2e-6, atol=0)
            np.testing.assert_allclose(y_base, y_best, rtol=0, atol=2e-6)
            assert true_peak_db(y_base) <= -1.0 + 0.1 and true_peak_db(y_best) <= -1.0 + 0.1


@pytest.mark.parametrize("fs", RATES)
def test_true_peak_mode_catches_sparse_inter_sample_overs(fs, rng):
    # A quiet programme whose samples never reach the ceiling, with short fs/4 bursts at 45
    # degrees (samples at 0.707 of their peak) whose inter-sample peaks do: the detector
    # computes its filter only around them, and the output's true peak still stays at the
    # ceiling.
    t = np.arange(fs) / fs
    s = 0.2 * np.sin(2 * np.pi * 220 * t) + 0.02 * rng.standard_normal(t.size)
    slot = t.size // 12
    for start in np.arange(12) * slot + rng.integers(0, slot - 300, 12):  # one burst per slot
        n = np.arange(int(rng.integers(4, 300)))
        s[start:start + n.size] += 0.65 * np.sin(np.pi / 2 * n + np.pi / 4)
    x = np.ascontiguousarray(np.stack([s, np.roll(s, 7)]).astype(np.float32))
    ceiling_db = -2.0
    assert np.abs(x).max() < 10 ** (ceiling_db / 20) < 10 ** (true_peak_db(x) / 20)
    lim = Limiter(2, fs, ceiling_db=ceiling_db, true_peak=True, auto_release=True)
    y, gain = lim.process_with_gain(x)
    assert true_peak_db(y) <= ceiling_db + 0.1
    assert lim.max_gain_reduction_db > 0.5 and np.mean(gain > 0.99) > 0.5
