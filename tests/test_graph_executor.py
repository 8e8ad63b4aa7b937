"""The graph executor (rt_kernels/csrc/executor.c + graph/): plans, latency, snapshots,
scheduling, hot swap, bypass, intensity, the non-finite guard and validation.

References are computed here with numpy/scipy, never with the code under test."""

import threading
import time

import numpy as np
import pytest
from scipy import signal

from graph import Chain, Executor, Graph, Node, Parallel
from rt_kernels._ffi import channel_pointers, ffi, lib
from tests.conftest import BLOCK_SIZES, in_blocks, noise, subnormal_count
from tests.cookbook import rbj

FS = 48000


def shifted(x: np.ndarray, frames: int) -> np.ndarray:
    """x delayed by `frames` (zeros in front), same length."""
    y = np.zeros_like(x)
    if frames < x.shape[1]:
        y[:, frames:] = x[:, : x.shape[1] - frames]
    return y


def db(v):
    return 10 ** (v / 20)


def fixed_graph():
    """Series and parallel, biquads, gains, delays, a DC blocker; latency 160."""
    return Graph(
        Node("dc_blocker", "dc"),
        Node("biquad", "low", type="low_shelf", freq_hz=120.0, gain_db=3.0),
        Parallel(
            Chain(Node("delay", "la", delay_frames=96), Node("biquad", "pk", freq_hz=2500.0, q=1.5, gain_db=-4.0)),
            Chain(Node("gain", "par", gain_db=-9.0)),
            Chain(),
        ),
        Node("delay", "tail", delay_frames=64),
        Node("gain", "out", gain_db=-6.0),
    )


# -- the plan computes what the kernels compute ----------------------------------

def test_series_chain_matches_scipy_reference(rng):
    x = noise(rng, 2, FS // 4)
    g = Graph(Node("biquad", "a", type="peaking", freq_hz=800.0, q=1.2, gain_db=6.0),
              Node("biquad", "b", type="high_shelf", freq_hz=6000.0, gain_db=-3.0),
              Node("gain", "g", gain_db=-6.0))
    y = Executor(g, 2, FS, max_block=256).process(x)
    sos = np.stack([rbj("peaking", FS, 800.0, 1.2, 6.0), rbj("high_shelf", FS, 6000.0, 0.7071067811865476, -3.0)])
    ref = signal.sosfilt(sos, x.astype(np.float64), axis=1) * db(-6.0)
    err = np.sqrt(np.mean((y - ref) ** 2)) / np.sqrt(np.mean(ref ** 2))
    assert 20 * np.log10(err) < -100


def test_parallel_dry_path_around_delay_stays_aligned(rng):
    x = noise(rng, 2, 5000)
    g = Graph(Parallel(Chain(Node("delay", "d", delay_frames=50), Node("gain", "g", gain_db=-6.0)), Chain()))
    ex = Executor(g, 2, FS, max_block=64)
    assert ex.latency_frames == 50
    y = ex.process(x)
    ref = shifted(x, 50).astype(np.float64) * (1 + db(-6.0))
    np.testing.assert_allclose(y, ref, rtol=0, atol=2e-7)


def test_latency_sums_series_and_takes_max_over_branches():
    ex = Executor(fixed_graph(), 2, FS)
    assert ex.latency_frames == 96 + 64 == ex.running_latency_frames or ex.latency_frames == 160
    ex.process(np.zeros((2, 1), np.float32))
    assert ex.running_latency_frames == 160
    assert ex.telemetry().latency_frames == 160


def test_click_track_keeps_click_positions_after_trimming_latency():
    frames = 20000
    x = np.zeros((2, frames), np.float32)
    clicks = np.arange(500, frames - 2000, 1733)
    x[:, clicks] = 0.9
    g = Graph(Parallel(Chain(Node("delay", "look", delay_frames=211), Node("gain", "g", gain_db=-3.0)),
                       Chain(Node("biquad", "lp", type="low_pass", freq_hz=8000.0))),
              Node("delay", "more", delay_frames=33))
    ex = Executor(g, 2, FS, max_block=128)
    lat = ex.latency_frames
    assert lat == 244
    y = ex.process(np.concatenate([x, np.zeros((2, lat), np.float32)], axis=1))[:, lat:]
    assert y.shape == x.shape
    found = signal.find_peaks(np.abs(y[0]), height=0.3)[0]
    np.testing.assert_array_equal(found, clicks)


# -- block-size invariance ---------------------------------------------------------

@pytest.mark.parametrize("max_block, intensity, bypass", [(64, 1.0, False), (4096, 1.0, False), (64, 0.5, True)])
def test_block_sizes_give_bit_identical_output(rng, max_block, intensity, bypass):
    x = noise(rng, 2, 9000)

    def make():
        g = fixed_graph()
        ex = Executor(g, 2, FS, max_block=max_block, intensity=intensity)
        if bypass:  # a bypass crossfade of one node and a steady bypass of another
            ex.publish({"pk.bypass": True})
            lib.rt_node_init_param(g.nodes["low"].c_node, lib.RT_PARAM_BYPASS, 1.0)
        return ex

    whole = make().process(x)
    for size in BLOCK_SIZES:
        assert np.array_equal(in_blocks(make().process, x, size), whole), size
    assert subnormal_count(whole) == 0


@pytest.mark.parametrize("frames", [0, 1, 7, 64])
def test_frames_out_equal_frames_in(frames, rng):
    ex = Executor(fixed_graph(), 2, FS, max_block=64)
    assert ex.process(noise(rng, 2, frames)).shape == (2, frames)


def test_delay_kernel_matches_shift_for_any_block_split(rng):
    x = noise(rng, 3, 3000)
    for size in BLOCK_SIZES:
        d = lib.rt_delay_create(3, 1000, 777)
        d = ffi.gc(d, lib.rt_delay_destroy)

        def run(block):
            out = np.empty_like(block)
            lib.rt_delay_process(d, channel_pointers(block), channel_pointers(out), block.shape[1])
            return out

        assert np.array_equal(in_blocks(run, x, size), shifted(x, 777))
    assert lib.rt_delay_set_frames(d, 1001) == -1 and lib.rt_delay_latency(d) == 777


# -- parameter snapshots --------------------------------------------------------------

def test_scheduled_snapshot_applies_at_the_exact_frame(rng):
    x = noise(rng, 2, 6000) + 0.5
    g = Graph(Node("gain", "a", ramp_ms=0.0), Node("gain", "b", ramp_ms=0.0))
    ex = Executor(g, 2, FS, max_block=64)
    ex.schedule(1234, {"a.gain_db": -6.0, "b.gain_db": 2.0})
    ex.schedule(4321, {"a.gain_db": 0.0, "b.gain_db": 0.0})
    y = in_blocks(ex.process, x, 100)
    changed = np.flatnonzero(np.any(y != x, axis=0))
    assert changed[0] == 1234 and changed[-1] == 4320
    ref = (x[:, 1234:4321].astype(np.float64) * np.float32(db(-6.0))).astype(np.float32) * db(2.0)
    np.testing.assert_allclose(y[:, 1234:4321], ref, rtol=1e-6)
    assert ex.telemetry().late_param_blocks == 0
    assert ex.collect() == 2 and ex.retired["param_blocks"] == 2


def test_scheduled_ramp_start_is_block_size_invariant(rng):
    x = noise(rng, 1, 5000)
    outs = []
    for size in (1, 7, 64, 65, 4096):
        ex = Executor(Graph(Node("biquad", "eq", freq_hz=1000.0)), 1, FS, max_block=64)
        ex.schedule(777, {"eq.gain_db": 9.0, "eq.freq_hz": 3000.0})
        outs.append(in_blocks(ex.process, x, size))
    for y in outs[1:]:
        assert np.array_equal(y, outs[0])
    assert np.array_equal(outs[0][:, :777], x[:, :777])  # 0 dB peaking is the identity until then


def _run_concurrently(ex, x, block, publisher, seconds=1.0):
    """Process x repeatedly on this thread while `publisher(stop)` runs on another."""
    stop = threading.Event()
    t = threading.Thread(target=publisher, args=(stop,))
    outs = []
    t.start()
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline or not outs:
            outs.append(ex.process(np.ascontiguousarray(x[:, :block])))
            x = np.roll(x, -block, axis=1)
    finally:
        stop.set()
        t.join()
    return outs


def test_coupled_instant_gains_are_never_seen_apart(rng):
    """g and 1/g published together: the output always equals the input."""
    g = Graph(Node("gain", "a", ramp_ms=0.0), Node("biquad", "mid", freq_hz=500.0), Node("gain", "b", ramp_ms=0.0))
    ex = Executor(g, 2, FS, max_block=64)
    x = noise(rng, 2, 4096) + 0.1
    published = []

    def publisher(stop):
        r = np.random.default_rng(1)
        while not stop.is_set():
            v = float(r.uniform(-24, 24))
            ex.publish({"a.gain_db": v, "b.gain_db": -v})
            published.append(v)
            time.sleep(float(r.uniform(0, 0.002)))

    outs = _run_concurrently(ex, x, 97, publisher)
    y = np.concatenate(outs, axis=1)
    xin = x[:, np.arange(y.shape[1]) % x.shape[1]]  # block i was x rolled by -97 * i
    assert len(published) > 50
    np.testing.assert_allclose(y, xin, rtol=1e-6, atol=0)
    assert ex.collect() >= 0 and ex.retired["param_blocks"] + ex.in_flight - 1 == len(published)


def test_coupled_ramped_gains_ramp_together(rng):
    """With the kernel's linear ramps, aligned ramps of g and 1/g multiply to >= 1
    (Cauchy-Schwarz); one gain moving a block before the other drops below 1."""
    g = Graph(Node("gain", "a", ramp_ms=3.0), Node("gain", "b", ramp_ms=3.0))
    ex = Executor(g, 1, FS, max_block=64)
    x = np.ones((1, 4096), np.float32)

    def publisher(stop):
        r = np.random.default_rng(2)
        while not stop.is_set():
            v = float(r.uniform(-12, 12))
            ex.publish({"a.gain_db": v, "b.gain_db": -v})
            time.sleep(float(r.uniform(0, 0.003)))

    y = np.concatenate(_run_concurrently(ex, x, 61, publisher), axis=1)
    assert y.min() >= 1 - 1e-6
    assert y.max() > 1.01  # the ramps did run
    assert y.max() <= (1 + db(24)) ** 2 / (4 * db(24)) + 1e-6


def test_random_graphs_with_concurrent_changes_stay_clean(rng):
    """Random series/parallel graphs; a second thread publishes random parameters and
    swaps graphs while this one processes: no NaN/Inf/subnormal, nothing guarded."""
    r = np.random.default_rng(7)

    def random_element(depth, names):
        kind = r.choice(["biquad", "gain", "delay", "dc_blocker", "parallel" if depth < 2 else "gain"])
        name = f"n{len(names)}"
        names.append(name)
        if kind == "parallel":
            return Parallel(*[Chain(*[random_element(depth + 1, names) for _ in range(r.integers(0, 3))])
                              for _ in range(r.integers(2, 4))])
        if kind == "biquad":
            return Node("biquad", name, type=str(r.choice(["peaking", "low_shelf", "high_shelf"])),
                        freq_hz=float(r.uniform(40, 15000)), gain_db=float(r.uniform(-12, 12)))
        if kind == "gain":
            return Node("gain", name, gain_db=float(r.uniform(-20, 6)))
        if kind == "delay":
            return Node("delay", name, delay_frames=int(r.integers(0, 300)))
        return Node("dc_blocker", name)

    def random_graph():
        names = []
        return Graph(*[random_element(0, names) for _ in range(r.integers(1, 6))])

    ex = Executor(random_graph(), 2, FS, max_block=128)
    x = noise(rng, 2, 8192, level=0.3)
    x[:, ::997] = 0  # some exact zeros and a decaying tail
    x[:, 4000:] *= np.float32(1e-25)

    def publisher(stop):
        pr = np.random.default_rng(3)
        while not stop.is_set():
            nodes = [n for n in ex.graph.nodes.values()]
            params = {}
            for n in pr.choice(nodes, size=min(3, len(nodes)), replace=False) if nodes else []:
                if n.type.name == "biquad":
                    params[f"{n.name}.gain_db"] = float(pr.uniform(-24, 24))
                    params[f"{n.name}.freq_hz"] = float(pr.uniform(20, 20000))
                    params[f"{n.name}.q"] = float(pr.uniform(0.1, 10))
                elif n.type.name == "gain":
                    params[f"{n.name}.gain_db"] = float(pr.uniform(-120, 12))
                params[f"{n.name}.bypass"] = bool(pr.random() < 0.3)
            params["intensity"] = float(pr.uniform(0, 1))
            ex.publish(params)
            if pr.random() < 0.1:
                ex.swap(random_graph())
            ex.telemetry()
            time.sleep(0.0005)

    outs = _run_concurrently(ex, x, 256, publisher, seconds=1.5)
    y = np.concatenate(outs, axis=1)
    assert np.isfinite(y).all()
    assert subnormal_count(y) == 0
    tel = ex.telemetry()
    assert tel.nonfinite_blocks == 0 and tel.plan_swaps > 1 and tel.param_blocks > 30
    ex.process(np.zeros((2, 1), np.float32))
    ex.collect()
    assert ex.in_flight == 1  # only the running plan is still out


# -- plan swap --------------------------------------------------------------------

def test_swap_keeps_surviving_node_state_and_retires_old_plans(rng):
    x = np.zeros((1, 6000), np.float32)
    x[0, 0] = 1.0  # an impulse into a resonant low-pass: it rings for thousands of frames

    def ringing():
        return Node("biquad", "res", type="low_pass", freq_hz=300.0, q=30.0)

    ref = Executor(Graph(ringing()), 1, FS, max_block=64).process(x)
    res = ringing()
    ex = Executor(Graph(res), 1, FS, max_block=64)
    y = [ex.process(x[:, :1000])]
    for i, start in enumerate(range(1000, 6000, 1000)):
        # add and remove other nodes around the survivor; 0 dB gain and a 0-frame delay are exact
        extra = [Node("gain", f"g{i}"), Node("delay", f"d{i}")]
        ex.swap(Graph(extra[0], res) if i % 2 else Graph(res, *extra))
        y.append(ex.process(x[:, start:start + 1000]))
    assert np.array_equal(np.concatenate(y, axis=1), ref)
    assert np.abs(ref[0, 5000:]).max() > 1e-3  # it was still ringing at the last swap
    ex.collect()
    assert ex.retired["plans"] == 5 and ex.in_flight == 1
    assert ex.telemetry().plan_swaps == 6


def test_swap_published_twice_before_the_audio_thread_runs_frees_the_first():
    ex = Executor(Graph(), 1, FS)
    ex.swap(Graph(Node("gain", "a")))
    ex.swap(Graph(Node("gain", "b")))  # the first plan was never picked up
    ex.process(np.zeros((1, 8), np.float32))
    ex.collect()
    # the constructor's empty plan and the first swap were displaced without running
    assert ex.in_flight == 1 and ex.retired["plans"] == 2


def test_compensation_delay_survives_swap_with_same_structure(rng):
    x = noise(rng, 1, 4000)

    def graph(d, extra):
        return Graph(Parallel(Chain(d), Chain()), *extra)

    d = Node("delay", "d", delay_frames=300)
    ex = Executor(graph(d, []), 1, FS, max_block=64)
    a = ex.process(x[:, :2000])
    ex.swap(graph(d, [Node("gain", "unity")]))
    b = ex.process(x[:, 2000:])
    assert np.array_equal(np.concatenate([a, b], axis=1), shifted(x, 300) * np.float32(2))


# -- bypass and intensity -------------------------------------------------------------

def test_bypass_is_click_free():
    t = np.arange(FS // 2) / FS
    x = (0.25 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)[None, :]
    ex = Executor(Graph(Node("biquad", "boost", freq_hz=1000.0, q=2.0, gain_db=12.0)), 1, FS, max_block=64,
                  bypass_fade_ms=10.0)
    y = [ex.process(x[:, :6012])]          # switch on a peak of the sine
    ex.publish({"boost.bypass": True})
    y.append(ex.process(x[:, 6012:12012]))
    ex.publish({"boost.bypass": False})
    y.append(ex.process(x[:, 12012:]))
    y = np.concatenate(y, axis=1)
    steady_step = np.abs(np.diff(y[0, 3000:5900])).max()   # largest step of the boosted sine
    assert np.abs(np.diff(y[0])).max() < 1.05 * steady_step
    # with the bypass settled the output is the input, exactly
    assert np.array_equal(y[:, 9000:12000], x[:, 9000:12000])
    # and a hard switch would have stepped far more
    assert np.abs(y[0, 6011] - x[0, 6012]) > 2 * steady_step


def test_bypass_is_latency_compensated(rng):
    x = noise(rng, 2, 4000)
    g = Graph(Node("gain", "pre", gain_db=-6.0), Node("delay", "look", delay_frames=123, bypass=True),
              Node("gain", "post", gain_db=6.0))
    ex = Executor(g, 2, FS, max_block=64)
    assert ex.latency_frames == 123
    y = ex.process(x)
    ref = (x.astype(np.float64) * db(-6.0)).astype(np.float32)
    ref = (shifted(ref, 123).astype(np.float64) * db(6.0)).astype(np.float32)
    assert np.array_equal(y, ref)


@pytest.mark.parametrize("size", [1, 64, 1000])
def test_intensity_zero_returns_delayed_input_bit_for_bit(rng, size):
    x = noise(rng, 2, 6000)
    x[:, 100] = -0.0
    ex = Executor(fixed_graph(), 2, FS, max_block=256, intensity=0.0)
    y = in_blocks(ex.process, x, size)
    expected = shifted(x, 160)
    assert np.array_equal(y.view(np.uint32), expected.view(np.uint32))


def test_intensity_blends_dry_and_wet(rng):
    x = noise(rng, 2, 3000)
    wet = Executor(fixed_graph(), 2, FS).process(x)
    ex = Executor(fixed_graph(), 2, FS, intensity=0.25, intensity_ramp_ms=0.0)
    ref = 0.75 * shifted(x, 160).astype(np.float64) + 0.25 * wet
    np.testing.assert_allclose(ex.process(x), ref, atol=1e-6)


def test_intensity_ramps_smoothly_to_zero(rng):
    t = np.arange(24000) / FS
    x = (0.5 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)[None, :]
    ex = Executor(Graph(Node("gain", "g", gain_db=-20.0)), 1, FS, intensity_ramp_ms=20.0)
    y = [ex.process(x[:, :5000])]
    ex.publish({"intensity": 0.0})
    y.append(ex.process(x[:, 5000:]))
    y = np.concatenate(y, axis=1)
    assert np.abs(np.diff(y[0])).max() < 1.2 * np.abs(np.diff(x[0])).max()
    assert np.array_equal(y[:, 7000:], x[:, 7000:])


# -- the live-path guard ------------------------------------------------------------

def test_nonfinite_output_is_silenced_counted_and_state_reset(rng):
    ex = Executor(Graph(Node("biquad", "eq", type="low_pass", freq_hz=2000.0), Node("gain", "hot", gain_db=48.0)),
                  1, FS, max_block=64)
    x = noise(rng, 1, 640)
    x[0, 600] = 3e37  # finite, but * 251 overflows float32
    y = ex.process(x)
    assert np.isfinite(y).all()
    assert np.all(y[:, 576:640] == 0) and np.all(y[:, :576] != 0)
    assert ex.telemetry().nonfinite_blocks >= 1
    # the biquad's history was cleared: the next block starts from rest
    fresh = Executor(Graph(Node("biquad", "eq", type="low_pass", freq_hz=2000.0), Node("gain", "hot", gain_db=48.0)),
                     1, FS, max_block=64)
    z = noise(rng, 1, 64)
    after = ex.process(z)
    assert np.array_equal(after, fresh.process(z))


def test_nan_input_on_the_c_path_never_reaches_the_output(rng):
    ex = Executor(Graph(Node("biquad", "eq", type="peaking", freq_hz=500.0, gain_db=6.0)), 2, FS, max_block=32)
    x = noise(rng, 2, 128)
    x[1, 40] = np.nan
    out = np.empty_like(x)
    lib.rt_executor_process(ex.c_executor, channel_pointers(x), channel_pointers(out), 128)
    assert np.isfinite(out).all() and np.all(out[:, 32:64] == 0)
    assert ex.telemetry().nonfinite_blocks == 1
    y = ex.process(noise(rng, 2, 256))
    assert np.isfinite(y).all() and np.abs(y).max() > 0


# -- telemetry ----------------------------------------------------------------------

def test_node_process_standalone_matches_the_executor(rng):
    x = noise(rng, 2, 3000)
    node = Node("biquad", "eq", type="peaking", freq_hz=700.0, gain_db=5.0)
    y = Executor(Graph(Node("biquad", "eq", type="peaking", freq_hz=700.0, gain_db=5.0)), 2, FS, max_block=64).process(x)
    Executor(Graph(node), 2, FS, max_block=64)  # binds it
    out = np.empty_like(x)
    lib.rt_node_process(node.c_node, channel_pointers(x), channel_pointers(out), x.shape[1])
    assert np.array_equal(out, y)


def test_telemetry_reports_peaks_costs_and_frames(rng):
    x = noise(rng, 2, 1000)
    x[1, 500] = 0.9
    ex = Executor(Graph(Node("gain", "half", gain_db=-6.0), Node("dc_blocker", "dc")), 2, FS, max_block=1000)
    y = ex.process(x)
    t = ex.telemetry()
    assert t.frames == 1000 and t.blocks == 1
    assert t.node("half").peak_hold == pytest.approx(np.abs(x).max() * db(-6.0), rel=1e-6)
    assert t.peak_hold == pytest.approx(np.abs(y).max())
    assert t.node("dc").cost_ns_total > 0 and t.node("dc").frames == 1000
    assert t.dsp_load > 0
    ex.clear_peaks()
    ex.process(np.zeros((2, 10), np.float32))
    assert ex.telemetry().node("half").peak_hold == 0.0


# -- validation ---------------------------------------------------------------------

def test_validation_refuses_and_applies_nothing(rng):
    g = Graph(Node("biquad", "eq", type="high_shelf", freq_hz=5000.0, gain_db=2.0), Node("gain", "out"))
    ex = Executor(g, 2, FS)
    x = noise(rng, 2, 512)
    before = Executor(Graph(Node("biquad", "eq", type="high_shelf", freq_hz=5000.0, gain_db=2.0),
                            Node("gain", "out")), 2, FS).process(x)
    cases = [
        ({"eq.gain_db": 30.0, "out.gain_db": -3.0}, ValueError, r"eq\.gain_db = 30\.0 is outside \[-24, 24\] dB"),
        ({"out.gain_db": -3.0, "eq.gain_db": float("nan")}, ValueError, r"eq\.gain_db = nan is outside"),
        ({"eq.freq_hz": float("inf")}, ValueError, r"eq\.freq_hz = inf is outside \[10, 24000\) Hz"),
        ({"eq.freq_hz": 24000.0}, ValueError, r"eq\.freq_hz = 24000\.0 is outside \[10, 24000\) Hz"),
        ({"nope.gain_db": 1.0}, ValueError, r"nope\.gain_db names no node of the running graph \(nodes: eq, out\)"),
        ({"eq.volume": 1.0}, ValueError, r"eq\.volume: biquad has no live parameter 'volume'"),
        ({"out.ramp_ms": 5.0}, ValueError, r"ramp_ms is fixed at creation"),
        ({"eq.type": "bell"}, ValueError, r"eq\.type = 'bell' is not one of peaking, low_shelf"),
        ({"eq.gain_db": "3"}, TypeError, r"eq\.gain_db must be a number, got str"),
        ({"intensity": 1.5}, ValueError, r"intensity = 1\.5 is outside \[0, 1\]"),
        ({"eq.shelf_slope": 2.0, "eq.gain_db": 24.0}, ValueError, r"eq: .*has no stable design"),
        ({"gain_db": 1.0}, ValueError, r"'gain_db' is not 'node\.param' or 'intensity'"),
    ]
    for params, exc, match in cases:
        with pytest.raises(exc, match=match):
            ex.publish(params)
        with pytest.raises(exc, match=match):
            ex.schedule(10, params)
    assert ex.in_flight == 1  # no snapshot left the control side
    assert g.nodes["out"].values["gain_db"] == 0.0
    assert np.array_equal(ex.process(x), before)


def test_graph_and_node_construction_errors():
    with pytest.raises(ValueError, match=r"type = 'reverb' is not one of"):
        Node("reverb", "r")
    with pytest.raises(ValueError, match=r"gain has no parameter 'freq_hz'"):
        Node("gain", "g", freq_hz=3.0)
    with pytest.raises(ValueError, match=r"two nodes are named 'a'"):
        Graph(Node("gain", "a"), Node("gain", "a"))
    n = Node("gain", "a")
    with pytest.raises(ValueError, match=r"node 'a' appears twice"):
        Graph(n, Parallel(n, Chain()))
    with pytest.raises(ValueError, match=r"Node d: d\.delay_frames = 2\.5 must be a whole number"):
        Executor(Graph(Node("delay", "d", delay_frames=2.5)), 1, FS)
    with pytest.raises(ValueError, match=r"Node e: e\.freq_hz = 30000\.0 is outside \[10, 22050\) Hz"):
        Executor(Graph(Node("biquad", "e", freq_hz=30000.0)), 1, 44100)
    with pytest.raises(ValueError, match=r"plan latency 500 frames exceeds max_latency_frames = 100"):
        Executor(Graph(Node("delay", "d", delay_frames=500)), 1, FS, max_latency_frames=100)
    ex = Executor(Graph(), 1, FS)
    with pytest.raises(TypeError, match=r"dtype float64"):
        ex.process(np.zeros((1, 4)))
    with pytest.raises(ValueError, match=r"has 2 channels; expected 1"):
        ex.process(np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match=r"non-finite samples \(first at channel 0, frame 2"):
        ex.process(np.array([[0, 0, np.inf]], np.float32))


def test_publish_refuses_when_nobody_processes():
    ex = Executor(Graph(Node("gain", "g")), 1, FS, queue_capacity=8)
    for i in range(6):
        ex.publish({"g.gain_db": -float(i)})
    with pytest.raises(RuntimeError, match=r"waiting for the audio thread .*is process\(\) running"):
        ex.publish({"g.gain_db": -1.0})
    ex.process(np.zeros((1, 4), np.float32))
    ex.publish({"g.gain_db": -1.0})
    assert ex.retired["param_blocks"] == 6


# -- more node types and ownership -------------------------------------------------------

def test_eq_cascade_node_matches_scipy_and_validates_bands(rng):
    from graph import eq_node_type
    eq_node_type(3)
    x = noise(rng, 2, FS // 4)
    bands = [("low_shelf", 100.0, 0.7071067811865476, 3.0), ("peaking", 1000.0, 2.0, -4.0),
             ("high_shelf", 8000.0, 0.7071067811865476, 2.0)]
    values = {f"b{i}_{k}": v for i, b in enumerate(bands, 1) for k, v in zip(("type", "freq_hz", "q", "gain_db"), b)}
    ex = Executor(Graph(Node("eq3", "eq", **values)), 2, FS)
    sos = np.stack([rbj(t, FS, f, q, g) for t, f, q, g in bands])
    ref = signal.sosfilt(sos, x.astype(np.float64), axis=1)
    err = np.sqrt(np.mean((ex.process(x) - ref) ** 2)) / np.sqrt(np.mean(ref ** 2))
    assert 20 * np.log10(err) < -100
    with pytest.raises(ValueError, match=r"eq\.b2_gain_db = 30\.0 is outside \[-24, 24\] dB"):
        ex.publish({"eq.b2_gain_db": 30.0})
    with pytest.raises(ValueError, match=r"eq: band b3: .*no stable design"):
        ex.publish({"eq.b3_shelf_slope": 2.0, "eq.b3_gain_db": 24.0})


def test_a_node_runs_in_one_executor_only():
    n = Node("gain", "g")
    first = Executor(Graph(n), 1, FS)
    other = Executor(Graph(), 1, FS)
    with pytest.raises(ValueError, match=r"Node g: already runs in another Executor"):
        other.swap(Graph(n))
    first.swap(Graph(n))  # its own executor may keep using it


def test_telemetry_snapshots_are_consistent_while_processing(rng):
    """Read from a second thread: within one snapshot every node has processed
    exactly the executor's frame count (a torn read would mix blocks)."""
    ex = Executor(Graph(Node("biquad", "a", gain_db=3.0), Node("gain", "b"), Node("dc_blocker", "c")),
                  2, FS, max_block=32)
    x = noise(rng, 2, 1000)
    snapshots = []

    def reader(stop):
        while not stop.is_set():
            snapshots.append(ex.telemetry())

    _run_concurrently(ex, x, 1000, reader, seconds=0.5)
    assert len(snapshots) > 100
    for t in snapshots:
        if t.nodes:
            assert all(n.frames == t.frames for n in t.nodes), t
    frames = [t.frames for t in snapshots]
    assert frames == sorted(frames)


def test_prepared_snapshot_applies_exactly_where_the_audio_side_applies_it():
    """Executor.prepare + rt_executor_apply_now: the player's track-boundary path.  The
    snapshot lands on the first frame after the call, whatever executor time that is,
    and comes back through collect() (as does a dropped one)."""
    ex = Executor(Graph(Node("gain", "g", ramp_ms=0.0)), 1, 48000, max_block=64)
    ones = np.ones((1, 1000), np.float32)
    ex.process(ones[:, :333])
    snap = ex.prepare({"g.gain_db": -6.0})
    dropped = ex.prepare({"g.gain_db": 12.0})
    assert ex.in_flight == 3            # the plan and two prepared snapshots
    assert ex.process(ones[:, :100])[0, -1] == 1.0    # nothing applied yet
    lib.rt_executor_apply_now(ex.c_executor, snap.pointer)
    lib.rt_executor_drop(ex.c_executor, dropped.pointer)
    y = ex.process(ones)[0]
    np.testing.assert_array_equal(y, np.float32(10 ** (-6 / 20)))
    assert ex.graph.nodes["g"].values["gain_db"] == 0.0   # values follow applied(), not prepare()
    ex.applied(snap)
    assert ex.graph.nodes["g"].values["gain_db"] == -6.0
    assert ex.collect() == 2 and ex.in_flight == 1
    assert snap.values == {"g.gain_db": -6.0}
