"""Node types of the mastering kernels (graph/kernel_nodes.py, rt_kernels/csrc/mastering_nodes.c):
executor output against the kernel facades, live parameters, refusals, latency, meters."""

import threading

import numpy as np
import pytest
from scipy import signal

import graph
from graph import Chain, Executor, Graph, Node, Parallel
from rt_kernels._ffi import lib
from rt_kernels.dynamics import Compressor, SoftClipper
from rt_kernels.limiter import Limiter
from rt_kernels.loudness import measure
from rt_kernels.psy_eq import BAND_CENTRES_HZ, PsychoacousticEQ
from rt_kernels.stereo import CorrelationMeter, StereoWidth
from tests.conftest import BLOCK_SIZES, in_blocks, subnormal_count

FS = 48000


def _noise(frames, channels=2, level=0.25, seed=1):
    return (level * np.random.default_rng(seed).standard_normal((channels, frames))).astype(np.float32)


def _run_split(ex, x, at, params, facade_step=None):
    """Executor: schedule params at frame `at`, process all of x; the facade twin is done by the caller."""
    ex.schedule(at, params)
    return ex.process(x)


def _facade_split(fac, x, at, change):
    a = fac.process(np.ascontiguousarray(x[:, :at]))
    change(fac)
    return np.concatenate([a, fac.process(np.ascontiguousarray(x[:, at:]))], axis=1)


# ---- compressor ---------------------------------------------------------------------------------

def test_compressor_matches_facade_and_threshold_change_lowers_level():
    x = _noise(FS // 2, level=0.3)
    kw = dict(ratio=6.0, knee_db=4.0, attack_ms=2.0, release_ms=80.0, makeup_db=1.5, link="mean",
              detector="rms", rms_ms=5.0)
    ex = Executor(Graph(Node("compressor", "c", threshold_db=-10.0, **kw)), 2, FS, max_block=256)
    y = _run_split(ex, x, 12000, {"c.threshold_db": -30.0, "c.auto_makeup": True})
    ref = _facade_split(Compressor(2, FS, threshold_db=-10.0, **kw), x, 12000,
                        lambda f: f.set(threshold_db=-30.0, auto_makeup=True))
    assert np.array_equal(y, ref)
    ex2 = Executor(Graph(Node("compressor", "c", threshold_db=-10.0, **kw)), 2, FS, max_block=256)
    a = ex2.process(np.ascontiguousarray(x[:, :12000]))
    ex2.publish({"c.threshold_db": -40.0})
    b = ex2.process(np.ascontiguousarray(x[:, 12000:]))
    lvl = lambda s: np.sqrt(np.mean(s.astype(np.float64) ** 2))
    assert lvl(b[:, 4800:]) < lvl(a[:, 4800:]) * 10 ** (-6 / 20)   # 30 dB lower threshold at ratio 6


def test_compressor_refusals_are_one_line_and_not_applied():
    ex = Executor(Graph(Node("compressor", "c")), 2, FS)
    for params, match in [({"c.ratio": 0.5}, r"c\.ratio = 0\.5 is outside \[1, 1000\]"),
                          ({"c.threshold_db": float("nan")}, r"c\.threshold_db = nan is outside"),
                          ({"c.link": "left"}, r"c\.link = 'left' is not one of max, mean, none"),
                          ({"c.ratio": 2.0, "c.knee_db": 60.0}, r"c\.knee_db = 60\.0 is outside \[0, 48\]")]:
        with pytest.raises(ValueError, match=match) as e:
            ex.publish(params)
        assert "\n" not in str(e.value)
    x = _noise(4096)
    assert np.array_equal(ex.process(x), Compressor(2, FS).process(x))   # nothing was applied
    assert ex.graph.nodes["c"].values["ratio"] == 4.0


# ---- limiter ------------------------------------------------------------------------------------

@pytest.mark.parametrize("true_peak", [0, 1])
def test_limiter_matches_facade(true_peak):
    x = _noise(FS // 2, level=0.6)
    ex = Executor(Graph(Node("limiter", "l", ceiling_db=-3.0, release_ms=30.0, lookahead_ms=2.0,
                             true_peak=true_peak)), 2, FS, max_block=512)
    fac = Limiter(2, FS, ceiling_db=-3.0, lookahead_ms=2.0, release_ms=30.0, true_peak=bool(true_peak))
    assert ex.latency_frames == fac.latency_frames > 0
    y = _run_split(ex, x, 9000, {"l.release_ms": 200.0, "l.auto_release": 1})
    ref = _facade_split(fac, x, 9000, lambda f: (f.set_release_ms(200.0), f.set_auto_release(True)))
    assert np.array_equal(y, ref)
    assert np.abs(y).max() <= 10 ** (-3 / 20)


def test_limiter_latency_aligns_a_parallel_dry_path():
    x = np.zeros((2, 8192), np.float32)
    clicks = [100, 1000, 5000]
    x[:, clicks] = 0.25                                   # below the ceiling: the limiter passes them exactly
    g = Graph(Parallel(Chain(Node("limiter", "l", true_peak=1)), Chain()))
    ex = Executor(g, 2, FS, max_block=256)
    lat = ex.latency_frames
    assert lat == Limiter(2, FS, true_peak=True).latency_frames
    y = np.concatenate([ex.process(x), ex.process(np.zeros((2, lat), np.float32))], axis=1)
    expected = np.zeros_like(y)
    expected[:, [c + lat for c in clicks]] = 0.5          # both paths land on the same frame
    assert np.array_equal(y, expected)


def test_limiter_ceiling_ramp_and_option_refusal():
    with pytest.raises(ValueError, match=r"l\.lookahead_ms = 20\.0 is outside \[0\.5, 10\] ms"):
        Executor(Graph(Node("limiter", "l", lookahead_ms=20.0)), 2, FS)
    ex = Executor(Graph(Node("limiter", "l")), 2, FS)
    with pytest.raises(ValueError, match="has no live parameter 'lookahead_ms'.*fixed at creation"):
        ex.publish({"l.lookahead_ms": 5.0})
    x = _noise(FS // 2, level=0.5)
    ex.process(np.ascontiguousarray(x[:, :4800]))
    ex.publish({"l.ceiling_db": -12.0})
    y = ex.process(np.ascontiguousarray(x[:, 4800:]))
    assert np.abs(y[:, 4800:]).max() <= 10 ** (-12 / 20)


# ---- psy_eq -------------------------------------------------------------------------------------

GAINS = np.array([((i * 7) % 11) - 5.0 for i in range(25)])   # +-5 dB, every band different


def test_psy_eq_matches_facade_with_one_25_band_snapshot():
    x = _noise(FS // 2, level=0.1)
    start = {f"band_{i:02d}_db": 2.0 for i in range(1, 26)}
    ex = Executor(Graph(Node("psy_eq", "eq", ramp_ms=10.0, **start)), 2, FS, max_block=512)
    y = _run_split(ex, x, 7777, {f"eq.band_{i + 1:02d}_db": g for i, g in enumerate(GAINS)})
    fac = PsychoacousticEQ(2, FS, gains_db=[2.0] * 25, ramp_ms=10.0)
    ref = _facade_split(fac, x, 7777, lambda f: f.set_gains_db(GAINS))
    assert np.array_equal(y, ref)


def test_psy_eq_snapshot_realizes_the_commanded_response():
    # independent check: sines at three band centres come out at the commanded gain (+-0.5 dB)
    ex = Executor(Graph(Node("psy_eq", "eq")), 1, FS, max_block=512)
    ex.publish({f"eq.band_{i + 1:02d}_db": g for i, g in enumerate(GAINS)})
    t = np.arange(FS) / FS
    for band in (4, 12, 20):
        f = BAND_CENTRES_HZ[band]
        x = (0.1 * np.sin(2 * np.pi * f * t)).astype(np.float32)[None, :]
        y = ex.process(x)[0, FS // 2:].astype(np.float64)
        gain_db = 20 * np.log10(np.sqrt(np.mean(y ** 2)) / (0.1 / np.sqrt(2)))
        assert gain_db == pytest.approx(GAINS[band], abs=0.5)


def test_psy_eq_refuses_out_of_range_bands():
    ex = Executor(Graph(Node("psy_eq", "eq")), 2, FS)
    with pytest.raises(ValueError, match=r"eq\.band_07_db = 13\.0 is outside \[-12, 12\] dB"):
        ex.publish({"eq.band_01_db": 3.0, "eq.band_07_db": 13.0})
    assert ex.graph.nodes["eq"].values["band_01_db"] == 0.0
    x = _noise(2048)
    assert np.array_equal(ex.process(x), PsychoacousticEQ(2, FS).process(x))
    state = lib.rt_node_state(ex.graph.nodes["eq"].c_node)
    ops = lib.rt_psy_eq_node_ops()
    assert ops.set_param(state, 0, float("nan")) == -1 and ops.set_param(state, 25, 1.0) == -1


# ---- stereo_width -------------------------------------------------------------------------------

SW = dict(crossover_1_hz=300.0, crossover_2_hz=3000.0, crossover_3_hz=9000.0,
          width_1=0.5, width_2=1.3, width_3=1.8, width_4=0.2, mono_bass_hz=90.0)


def test_stereo_width_matches_facade_with_live_changes():
    x = _noise(FS // 2)
    ex = Executor(Graph(Node("stereo_width", "w", bands=4, **SW)), 2, FS, max_block=512)
    y = _run_split(ex, x, 6000, {"w.crossover_1_hz": 500.0, "w.crossover_2_hz": 6000.0,
                                 "w.width_2": 0.0, "w.mono_bass_hz": 0.0})
    fac = StereoWidth(FS, crossover_hz=(300.0, 3000.0, 9000.0), widths=(0.5, 1.3, 1.8, 0.2), mono_bass_hz=90.0)

    def change(f):
        f.set_crossovers((500.0, 6000.0, 9000.0))
        f.set_width(1, 0.0)
        f.set_mono_bass(None)
    assert np.array_equal(y, _facade_split(fac, x, 6000, change))


def test_stereo_width_default_bands_and_refusals():
    x = _noise(8192)
    ex = Executor(Graph(Node("stereo_width", "w")), 2, FS)
    assert np.array_equal(ex.process(x), StereoWidth(FS, crossover_hz=(250.0, 4000.0)).process(x))
    for params, match in [({"w.crossover_1_hz": 5000.0}, r"crossover_2_hz = 4000 Hz is not above crossover_1_hz = 5000"),
                          ({"w.mono_bass_hz": 10.0}, r"mono_bass_hz = 10 Hz is below 20 Hz; use 0 \(off\)"),
                          ({"w.width_1": 2.5}, r"w\.width_1 = 2\.5 is outside \[0, 2\]"),
                          ({"w.width_1": float("nan")}, r"w\.width_1 = nan is outside")]:
        with pytest.raises(ValueError, match=match) as e:
            ex.publish(params)
        assert "\n" not in str(e.value)
    assert ex.graph.nodes["w"].values["crossover_1_hz"] == 250.0 and ex.graph.nodes["w"].values["mono_bass_hz"] == 0.0
    fac = StereoWidth(FS, crossover_hz=(250.0, 4000.0))
    fac.process(x)
    assert np.array_equal(ex.process(x), fac.process(x))               # nothing refused reached the kernel
    with pytest.raises(ValueError, match=r"^stereo_width: channels = 1; this node takes stereo \(2 channels\) only$"):
        Executor(Graph(Node("stereo_width", "w")), 1, FS)
    with pytest.raises(ValueError, match="crossover_3_hz = 10000 Hz is not above crossover_2_hz = 12000"):
        Executor(Graph(Node("stereo_width", "w", crossover_2_hz=12000.0)), 2, FS)


def test_stereo_width_c_adapter_refuses_non_increasing_crossovers():
    x = _noise(4096)
    ex = Executor(Graph(Node("stereo_width", "w", bands=3)), 2, FS)
    state = lib.rt_node_state(ex.graph.nodes["w"].c_node)
    ops = lib.rt_stereo_width_node_ops()
    assert ops.set_param(state, 1, 200.0) == -1          # below crossover_1 = 250: refused, not applied
    assert ops.set_param(state, 7, 10.0) == -1           # mono bass in (0, 20)
    assert ops.set_param(state, 3, float("inf")) == -1
    assert np.array_equal(ex.process(x), StereoWidth(FS, crossover_hz=(250.0, 4000.0)).process(x))
    assert ops.set_param(state, 0, 100.0) == 0           # completes an increasing set: applies (100, 200)
    fac = StereoWidth(FS, crossover_hz=(250.0, 4000.0))
    fac.process(x)
    fac.set_crossovers((100.0, 200.0))
    assert np.array_equal(ex.process(x), fac.process(x))


# ---- soft_clipper -------------------------------------------------------------------------------

def test_soft_clipper_matches_facade():
    x = _noise(FS // 4, level=0.8)
    ex = Executor(Graph(Node("soft_clipper", "s", ceiling_db=-2.0, knee_db=3.0)), 2, FS)
    assert np.array_equal(ex.process(x), SoftClipper(2, ceiling_db=-2.0, knee_db=3.0).process(x))
    with pytest.raises(ValueError, match=r"s\.knee_db = 0\.0 is outside \[0\.1, 24\] dB"):
        ex.publish({"s.knee_db": 0.0})
    ex.publish({"s.ceiling_db": -6.0})
    y = ex.process(x)
    assert np.abs(y[:, 960:]).max() <= 10 ** (-6 / 20)   # after the 20 ms ramp


# ---- meters -------------------------------------------------------------------------------------

def test_loudness_meter_passes_through_and_reads_while_running():
    x = _noise(5 * FS, level=0.1, seed=3)
    ex = Executor(Graph(Node("loudness_meter", "lm")), 2, FS, max_block=512)
    out = []
    readings = []

    def audio():
        for i in range(0, x.shape[1], 480):
            out.append(ex.process(np.ascontiguousarray(x[:, i:i + 480])))

    t = threading.Thread(target=audio)
    t.start()
    while t.is_alive():
        readings.append(graph.read_loudness(ex, "lm").frames)
    t.join()
    assert np.array_equal(np.concatenate(out, axis=1), x)
    assert readings == sorted(readings) and all(r % 480 == 0 for r in readings)
    got, ref = graph.read_loudness(ex, "lm"), measure(x, FS)
    assert got == ref
    assert got.true_peak_dbtp is not None and np.isfinite(got.integrated_lufs)
    with pytest.raises(ValueError, match="read_loudness: no node 'nope'"):
        graph.read_loudness(ex, "nope")


def test_loudness_meter_in_place_and_without_true_peak():
    x = _noise(FS, channels=1, level=0.2)
    ex = Executor(Graph(Node("gain", "g"), Node("loudness_meter", "lm", true_peak=0)), 1, FS)
    assert np.array_equal(ex.process(x), x)
    v = graph.read_loudness(ex, "lm")
    assert v.true_peak_dbtp is None and v == measure(x, FS, true_peak=False)
    with pytest.raises(ValueError, match="read_loudness: node 'g' is a gain, not a loudness_meter"):
        graph.read_loudness(ex, "g")
    with pytest.raises(ValueError, match=r"^loudness_meter: channels = 3 has no default BS\.1770 layout; "
                                         r"this node takes 1, 2, 5, 6 channels"):
        Executor(Graph(Node("loudness_meter", "lm")), 3, FS)


def test_correlation_meter_passes_through_and_matches_facade():
    x = _noise(FS // 2)
    x[1] = 0.5 * x[0] + 0.5 * x[1]
    ex = Executor(Graph(Node("correlation_meter", "cm", window_ms=100.0)), 2, FS, max_block=128)
    assert np.array_equal(ex.process(x), x)
    fac = CorrelationMeter(FS, window_ms=100.0)
    fac.process(x)
    assert graph.read_correlation(ex, "cm") == fac.value()
    assert 0.5 < fac.value() < 0.9
    with pytest.raises(ValueError, match="correlation_meter: channels = 1"):
        Executor(Graph(Node("correlation_meter", "cm")), 1, FS)


# ---- a full chain -------------------------------------------------------------------------------

def _chain():
    return Graph(Node("gain", "pre", gain_db=6.0), Node("psy_eq", "eq", band_05_db=4.0, band_20_db=-3.0),
                 Node("compressor", "comp", threshold_db=-18.0, ratio=3.0),
                 Node("stereo_width", "sw", width_2=1.4, mono_bass_hz=120.0),
                 Node("gain", "trim", gain_db=-1.0), Node("limiter", "lim", true_peak=1, ceiling_db=-1.0))


def test_full_chain_is_block_size_invariant():
    x = _noise(FS // 2, level=0.3, seed=7)
    snapshot = {"eq.band_10_db": 6.0, "eq.band_11_db": -6.0, "comp.threshold_db": -24.0,
                "sw.crossover_1_hz": 180.0, "sw.width_3": 0.7, "lim.ceiling_db": -2.0, "trim.gain_db": 0.5}
    ref = None
    for size in (*BLOCK_SIZES, x.shape[1]):
        ex = Executor(_chain(), 2, FS, max_block=512)
        ex.schedule(9001, snapshot)
        y = in_blocks(ex.process, x, size)
        if ref is None:
            ref = y
            assert subnormal_count(y) == 0 and np.abs(y).max() <= 10 ** (-1 / 20)
        else:
            assert np.array_equal(y, ref), size
    for n in (0, 1, 7, 64):
        assert Executor(_chain(), 2, FS).process(np.zeros((2, n), np.float32)).shape == (2, n)


# ---- DC blocker (grid-flushed state) ------------------------------------------------------------

def test_dc_blocker_grid_flush_invariance_pairing_and_reference():
    from rt_kernels.levels import DcBlocker
    x = np.zeros((3, FS), np.float32)
    x[:, :2000] = _noise(2000, channels=1, level=0.5, seed=5)[0]   # the same signal in all three channels
    x[:, 3000:3100] = 0.7                                           # then a step, then a long exact decay
    ref = DcBlocker(3, FS, cutoff_hz=20.0).process(x)
    for size in BLOCK_SIZES:
        assert np.array_equal(in_blocks(DcBlocker(3, FS, cutoff_hz=20.0).process, x, size), ref), size
    assert np.array_equal(ref[0], ref[1]) and np.array_equal(ref[0], ref[2])   # paired path == single path
    assert subnormal_count(ref) == 0 and np.all(ref[:, -FS // 4:] == 0.0)
    r = np.exp(-2 * np.pi * 20.0 / FS)
    expected = signal.lfilter([(1 + r) / 2, -(1 + r) / 2], [1.0, -r], x[0].astype(np.float64))
    np.testing.assert_allclose(ref[0], expected, atol=1e-6)


# ---- the audio path stays allocation- and lock-free with these nodes ---------------------------

RT_BODY = r"""
import graph
from graph import Executor, Graph, Node

g = Graph(Node("psy_eq", "eq"), Node("compressor", "c"), Node("stereo_width", "w", bands=4),
          Node("soft_clipper", "s"), Node("limiter", "l", true_peak=1), Node("loudness_meter", "lm"),
          Node("correlation_meter", "cm"))
ex = Executor(g, 2, 48000, max_block=64)
x = (0.3 * np.random.default_rng(0).standard_normal((2, 256))).astype(np.float32)

def control():
    i = 0
    while not stop.is_set():
        p = {f"eq.band_{b:02d}_db": float((i + b) % 9 - 4) for b in range(1, 26)}
        p.update({"c.threshold_db": -10.0 - i % 20, "c.detector": i % 2, "c.rms_ms": 5.0 + i % 7,
                  "w.crossover_1_hz": 200.0 + i % 50, "w.crossover_2_hz": 3000.0 + i % 500,
                  "w.width_2": (i % 20) / 10, "w.mono_bass_hz": 0.0 if i % 2 else 100.0,
                  "s.ceiling_db": -1.0 - i % 3, "l.ceiling_db": -1.0 - i % 4, "l.auto_release": i % 2})
        ex.publish(p)
        graph.read_loudness(ex, "lm"); graph.read_correlation(ex, "cm")
        i += 1
        time.sleep(0.0005)
"""


def test_mastering_nodes_never_allocate_or_lock_on_the_audio_path(tmp_path):
    import shutil

    from tests.rt_probe import run_probed
    if shutil.which("gcc") is None:
        pytest.skip("needs gcc to build the probe")
    calls, audio_hits, control_hits, guarded = run_probed(tmp_path, RT_BODY, seconds=0.7)
    assert calls > 50 and guarded == 0 and control_hits > 0
    assert audio_hits == 0
