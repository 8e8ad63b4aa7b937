"""JACK backend against a real jackd (dummy driver, private server, period 256).

The test clients (tests/jack_clients.py) are JACK-Client clients with Python
callbacks: a player feeding auralis-rt:in_* and a recorder reading out_*.  No
mocks.  Never asserts zero xruns (the dummy driver xruns on a loaded VM): a
comparison that depends on clean cycles is repeated when an xrun happened.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from engine.backends.jack import JackBackend, JackBackendError, port_latency_range
from engine.backends.jackd import PrivateJackServer
from tests.jack_clients import Player, Recorder, wait_until
from tests.jack_fixtures import JACK_PERIOD, JACK_RATE

CHANNELS = 2
ROOT = Path(__file__).resolve().parent.parent


def fn_address(ffi, fn) -> int:
    return int(ffi.cast("uintptr_t", fn))


@pytest.fixture(scope="module")
def rig(jack_server):
    """auralis-rt between a player and a recorder on the module's server."""
    backend = JackBackend(server=jack_server.name, channels=CHANNELS, lock_memory=False)
    backend.activate()
    player = Player(jack_server.name, CHANNELS)
    recorder = Recorder(jack_server.name, CHANNELS)
    for c in range(CHANNELS):
        backend.connect(f"tplayer:out_{c + 1}", backend.inports[c])
        backend.connect(backend.outports[c], f"trecorder:in_{c + 1}")
    yield backend, player, recorder
    player.close()
    recorder.close()
    backend.destroy()


def gain_delay(test_process_lib, delay: int, gain: float):
    """(fn, ctx) of the test-only gain-with-delay process function; ctx frees itself."""
    tffi, tlib = test_process_lib
    ctx = tffi.gc(tlib.tp_gain_delay_create(CHANNELS, delay, gain), tlib.tp_gain_delay_destroy)
    return fn_address(tffi, tlib.tp_gain_delay_process), fn_address(tffi, ctx), ctx


def play_and_record(backend, player, recorder, signal: np.ndarray, tail: int, attempts: int = 3):
    """Play `signal`, record len + tail frames from the same cycle on.

    Returns the recording aligned so index 0 is the frame the player started
    at.  Repeats (up to `attempts`) when an xrun or a missed cycle happened."""
    for attempt in range(attempts):
        xruns = backend.status().xruns
        player.gaps = recorder.gaps = 0
        needed = signal.shape[1] + tail
        recorder.record(needed, follow=player)
        player.play(signal)
        assert recorder.wait(10.0 + 4 * needed / JACK_RATE), "recording did not finish"
        clean = backend.status().xruns == xruns and player.gaps == 0 and recorder.gaps == 0
        if clean or attempt == attempts - 1:
            assert recorder.base_frame == player.start_frame
            return recorder.buffer, clean
    raise AssertionError("unreachable")


# -- audio through the ports ----------------------------------------------------

@pytest.mark.parametrize("delay", [0, 100, 300])
def test_audio_through_ports_equals_processed_signal_after_reported_latency(rig, test_process_lib, rng, delay):
    backend, player, recorder = rig
    fn, ctx, keep = gain_delay(test_process_lib, delay, 0.5)
    backend.set_process(fn, ctx, keep_alive=keep, latency_frames=delay)
    wait_until(lambda: backend.status().latency_frames == delay, 2.0)
    # The latency a downstream client sees on its input (JACK latency API).
    reported = port_latency_range(recorder.ports[0], "capture")
    assert reported == (delay, delay)

    signal = (0.25 * rng.standard_normal((CHANNELS, 12000))).astype(np.float32)
    recording, clean = play_and_record(backend, player, recorder, signal, tail=reported[0])
    lat = reported[0]
    expected = np.float32(0.5) * signal  # the same single-precision multiply
    assert np.array_equal(recording[:, lat:], expected), f"clean={clean}"
    assert not recording[:, :lat].any()


def test_freewheel_renders_bit_exact_and_reports_the_mode(rig, test_process_lib, rng):
    backend, player, recorder = rig
    fn, ctx, keep = gain_delay(test_process_lib, 77, 0.5)
    backend.set_process(fn, ctx, keep_alive=keep, latency_frames=77)
    backend.poll_events()
    backend.set_freewheel(True)
    try:
        assert wait_until(lambda: backend.status().freewheel, 3.0)
        assert "freewheel_on" in backend.poll_events()
        signal = (0.25 * rng.standard_normal((CHANNELS, 48000))).astype(np.float32)
        recording, _clean = play_and_record(backend, player, recorder, signal, tail=77, attempts=1)
    finally:
        backend.set_freewheel(False)
    assert np.array_equal(recording[:, 77:], np.float32(0.5) * signal)
    assert wait_until(lambda: not backend.status().freewheel, 3.0)


def test_buffer_size_change_is_reported_and_audio_stays_exact(rig, test_process_lib, rng):
    backend, player, recorder = rig
    fn, ctx, keep = gain_delay(test_process_lib, 100, 0.5)
    backend.set_process(fn, ctx, keep_alive=keep, latency_frames=100)
    backend.poll_events()
    try:
        backend.client.blocksize = 512
        assert wait_until(lambda: backend.status().period == 512, 3.0)
        assert "buffer_size" in backend.poll_events()
        signal = (0.25 * rng.standard_normal((CHANNELS, 12000))).astype(np.float32)
        recording, clean = play_and_record(backend, player, recorder, signal, tail=100)
        assert np.array_equal(recording[:, 100:], np.float32(0.5) * signal), f"clean={clean}"
    finally:
        backend.client.blocksize = JACK_PERIOD
    assert wait_until(lambda: backend.status().period == JACK_PERIOD, 3.0)


# -- latency ----------------------------------------------------------------------

def test_reported_latency_equals_measured_impulse_delay(rig, test_process_lib):
    backend, player, recorder = rig
    delay = 300  # deliberately not a multiple of the period
    fn, ctx, keep = gain_delay(test_process_lib, delay, 1.0)
    backend.set_process(fn, ctx, keep_alive=keep, latency_frames=delay)
    wait_until(lambda: port_latency_range(recorder.ports[0], "capture")[0] == delay, 2.0)

    # Capture side: what the recorder's input reports; playback side: what
    # the player's output reports (our input's playback latency + ours).
    capture = port_latency_range(recorder.ports[0], "capture")
    playback = port_latency_range(player.ports[0], "playback")
    ours_in = port_latency_range(backend.client.get_port_by_name(backend.inports[0]), "playback")
    ours_out = port_latency_range(backend.client.get_port_by_name(backend.outports[0]), "capture")
    assert capture == playback == ours_in == ours_out == (delay, delay)

    impulse = np.zeros((CHANNELS, 2048), np.float32)
    impulse[:, 5] = 1.0
    recording, clean = play_and_record(backend, player, recorder, impulse, tail=delay)
    measured = [int(np.flatnonzero(recording[c])[0]) - 5 for c in range(CHANNELS)]
    assert measured == [capture[0]] * CHANNELS, f"clean={clean}"


def test_latency_adds_to_upstream_and_downstream_latency_of_physical_ports(jack_server):
    """Connected to the dummy driver's ports, our ports report the driver's
    latency plus ours: the reported value covers our processing delay only;
    the period buffering belongs to the driver's ports."""
    backend = JackBackend("latcheck", server=jack_server.name, channels=1, lock_memory=False)
    try:
        backend.set_passthrough()
        backend.set_latency_frames(123)
        backend.activate()
        backend.autoconnect(["system:capture_1"], ["system:playback_1"])
        client = backend.client
        cap_sys = port_latency_range(client.get_port_by_name("system:capture_1"), "capture")
        play_sys = port_latency_range(client.get_port_by_name("system:playback_1"), "playback")
        assert wait_until(lambda: port_latency_range(client.get_port_by_name(backend.outports[0]), "capture")
                          == (cap_sys[0] + 123, cap_sys[1] + 123), 2.0)
        assert wait_until(lambda: port_latency_range(client.get_port_by_name(backend.inports[0]), "playback")
                          == (play_sys[0] + 123, play_sys[1] + 123), 2.0)
        backend.set_latency_frames(0)
        assert wait_until(lambda: port_latency_range(client.get_port_by_name(backend.outports[0]), "capture")
                          == cap_sys, 2.0)
    finally:
        backend.destroy()


# -- parameters and process swaps -------------------------------------------------

def test_parameter_published_from_python_is_audible_within_two_periods(rig, test_process_lib, rng):
    backend, player, recorder = rig
    tffi, tlib = test_process_lib
    fn, ctx, keep = gain_delay(test_process_lib, 0, 1.0)
    backend.set_process(fn, ctx, keep_alive=keep, latency_frames=0)
    signal = np.full((CHANNELS, 48000), 0.25, np.float32)
    for attempt in range(3):
        xruns = backend.status().xruns
        recorder.record(signal.shape[1])
        assert wait_until(lambda: recorder.base_frame is not None, 5.0)
        player.play(signal)
        assert wait_until(lambda: player.start_frame is not None, 5.0)
        time.sleep(0.2)
        published_at = backend.client.frame_time  # JACK's estimate of "now", in frames
        tlib.tp_gain_delay_set_gain(keep, 0.5)
        assert recorder.wait(10.0)
        tlib.tp_gain_delay_set_gain(keep, 1.0)
        out = recorder.buffer[0]
        changed = int(np.flatnonzero(out == np.float32(0.125))[0]) + recorder.base_frame
        if backend.status().xruns == xruns or attempt == 2:
            break
    assert 0 <= changed - published_at <= 2 * JACK_PERIOD


def test_process_swaps_release_what_the_audio_thread_no_longer_uses(rig, test_process_lib):
    backend, _player, _recorder = rig
    released = []

    class Owner:
        def __init__(self, i):
            self.i = i

        def __del__(self):
            released.append(self.i)

    for i in range(20):
        fn, ctx, keep = gain_delay(test_process_lib, 10, 1.0)
        backend.set_process(fn, ctx, keep_alive=(keep, Owner(i)), latency_frames=10)
        time.sleep(0.01)
    assert wait_until(lambda: (backend.collect(), len(released) >= 19)[1], 3.0)
    assert 19 not in released  # the running one is still held
    status = backend.status()
    assert status.process_running and status.process_swaps >= 1
    backend.clear_process()
    assert wait_until(lambda: not backend.status().process_running, 2.0)
    assert wait_until(lambda: (backend.collect(), 19 in released)[1], 2.0)


def test_silence_without_a_process_function(rig, rng):
    backend, player, recorder = rig
    backend.clear_process()
    signal = (0.25 * rng.standard_normal((CHANNELS, 4096))).astype(np.float32)
    recording, _ = play_and_record(backend, player, recorder, signal, tail=0, attempts=1)
    assert not recording.any()


# -- telemetry ---------------------------------------------------------------------

def test_dsp_load_percentiles_and_xruns_follow_a_known_cost(rig, test_process_lib):
    backend, _player, _recorder = rig
    tffi, tlib = test_process_lib
    spin = tffi.gc(tlib.tp_spin_create(CHANNELS), lambda p: None)
    period_us = 1e6 * JACK_PERIOD / JACK_RATE
    tlib.tp_spin_set(spin, 2_000_000, 0)  # 2 ms of a 5.33 ms period
    backend.set_process(fn_address(tffi, tlib.tp_spin_process), fn_address(tffi, spin), keep_alive=spin)
    time.sleep(0.1)
    backend.reset_stats()
    assert wait_until(lambda: backend.status().callbacks >= 60, 5.0)
    s = backend.status()
    # The spin is a lower bound on every callback's cost (preemption only adds).
    assert s.callback_us_p50 >= 2000 * (1 - 1 / 32)
    assert s.callback_us_p50 <= s.callback_us_p99 <= s.callback_us_max
    assert s.dsp_load >= 0.9 * 2000 / period_us
    assert s.period == JACK_PERIOD and s.sample_rate == JACK_RATE

    # One callback three periods long: the server reports an xrun to us.  (Wait for the
    # long callback itself first: the dummy driver also xruns by itself on a shared VM,
    # so a new xrun alone does not mean the long callback has run yet.)
    xruns = s.xruns
    tlib.tp_spin_set(spin, 0, 3 * int(period_us * 1000))
    assert wait_until(lambda: backend.status().callback_us_max >= 3 * period_us, 5.0)
    assert wait_until(lambda: backend.status().xruns > xruns, 5.0)

    backend.set_passthrough()
    time.sleep(0.1)
    backend.reset_stats()
    assert wait_until(lambda: backend.status().callbacks >= 50, 5.0)
    s = backend.status()
    assert 0 < s.callback_us_p50 < period_us
    assert s.callback_us_p50 <= s.callback_us_p99 <= s.callback_us_max
    assert 0.0 < s.dsp_load


# -- server loss --------------------------------------------------------------------

def test_killing_jackd_is_reported_and_reconnect_works():
    """SIGKILL the server under a running client (in a child process: see
    tests/jack_scenarios.py): no crash, a clear status, the control side keeps
    working, and reconnect() runs again once a server with that name is back."""
    result = subprocess.run([sys.executable, "-m", "tests.jack_scenarios", "kill"], cwd=ROOT,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"child exited with {result.returncode}: {result.stderr[-1500:]}"
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["ran_before"] and report["noticed"]
    gone = report["after_kill"]
    assert gone["state"] == "shut down" and gone["shutdown"]
    assert "JACK server" in gone["shutdown_reason"]  # the server's words, copied by the C callback
    assert report["reconnect_without_server"].startswith("JACK: cannot connect to server")
    assert report["state_without_server"] == "closed"
    back = report["after_reconnect"]
    assert report["ran_after"]
    assert back["state"] == "active" and not back["shutdown"] and back["shutdown_reason"] == ""
    assert back["process_running"] and back["latency_frames"] == 32
    assert report["out_capture_latency"] == [32, 32]


def test_realtime_hygiene_warns_once_and_runs_on():
    """A server without real-time scheduling (jackd -r): one warning, and the
    engine runs anyway; memory is locked where the process may (root here)."""
    result = subprocess.run([sys.executable, "-m", "tests.jack_scenarios", "hygiene"], cwd=ROOT,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-1500:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(report["warnings"]) == 1, report
    assert "real-time" in report["warnings"][0] and "SCHED_OTHER" in report["warnings"][0]
    assert report["ran"] and report["realtime"] is False
    assert report["memory_locked"] == report["may_lock_memory"]


def test_open_without_a_server_fails_with_one_clear_line():
    backend = JackBackend(server="auralis-no-such-server", lock_memory=False)
    try:
        with pytest.raises(JackBackendError, match=r"cannot connect to server 'auralis-no-such-server'.*jackd"):
            backend.open()
    finally:
        backend.destroy()


def test_private_server_stops_on_exception_and_names_missing_jackd(monkeypatch):
    with pytest.raises(RuntimeError, match="boom"):
        with PrivateJackServer(period=256) as server:
            pid = server.pid
            raise RuntimeError("boom")
    assert not server.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(RuntimeError, match="jackd not found on PATH; install JACK 2"):
        PrivateJackServer().start()


def test_private_server_dies_with_its_parent_process():
    code = ("import sys; from engine.backends.jackd import PrivateJackServer\n"
            "s = PrivateJackServer().start(); print(s.pid, flush=True); sys.stdin.read()")
    child = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    pid = int(child.stdout.readline())
    child.kill()  # SIGKILL: no atexit, no finally
    child.wait()
    assert wait_until(lambda: not Path(f"/proc/{pid}").exists() or
                      Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z", 5.0)


def test_bad_arguments_are_refused_with_one_line_messages():
    with pytest.raises(ValueError, match=r"JackBackend: channels = 0 is outside \[1, 64\]"):
        JackBackend(channels=0)
    with pytest.raises(ValueError, match="JackBackend: name = '' must be"):
        JackBackend(name="")
    with pytest.raises(ValueError, match="out_names"):
        JackBackend(out_names=["a", "a"])
    with pytest.raises(ValueError, match=r"period = 100 is not a power of two"):
        PrivateJackServer(period=100)
    backend = JackBackend(lock_memory=False)
    try:
        with pytest.raises(ValueError, match=r"set_latency_frames: frames = -1 is outside"):
            backend.set_latency_frames(-1)
        with pytest.raises(JackBackendError, match="not open"):
            backend.client
    finally:
        backend.destroy()


# -- real-time safety: the LD_PRELOAD checker ------------------------------------

def run_checked(rtcheck_library, test_process_lib_path, server: str, mode: str, seconds: float) -> dict:
    env = dict(os.environ, LD_PRELOAD=str(rtcheck_library), PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-m", "tests.jack_rtcheck_child", server, mode, str(seconds), str(test_process_lib_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_audio_thread_makes_no_allocation_lock_or_gil_call(jack_server, rtcheck_library, test_process_lib_path):
    """10 s with parameter changes every 10 ms, a process swap (new state, new
    latency) every 100 ms, status reads and collects: nothing on the JACK
    process thread allocates, frees, locks a mutex or takes the GIL -- neither
    inside our callback nor in libjack's cycle loop around it."""
    counts = run_checked(rtcheck_library, test_process_lib_path, jack_server.name, "clean", 10.0)
    assert counts["callbacks"] > 1000  # ~1875 cycles in 10 s at 256 / 48 kHz
    assert counts["publishes"] > 500 and counts["swaps"] > 50
    assert counts["inside"] == {k: 0 for k in counts["inside"]}, counts
    assert counts["outside"] == {k: 0 for k in counts["outside"]}, counts


def test_the_mastering_chain_in_the_callback_makes_no_allocation_lock_or_gil_call(jack_server, rtcheck_library,
                                                                                  test_process_lib_path):
    """10 s of the default preset's chain (graph executor) in the JACK callback while the
    control thread publishes parameter snapshots every 10 ms, reads the loudness meter and
    the telemetry, and swaps plans every 250 ms: no allocation, free, mutex or GIL on the
    JACK process thread."""
    counts = run_checked(rtcheck_library, test_process_lib_path, jack_server.name, "executor", 10.0)
    assert counts["callbacks"] > 1000
    assert counts["publishes"] > 500 and counts["swaps"] > 10, counts  # swaps: plans retired back to Python
    assert counts["inside"] == {k: 0 for k in counts["inside"]}, counts
    assert counts["outside"] == {k: 0 for k in counts["outside"]}, counts


def test_portaudio_callback_makes_no_allocation_lock_or_gil_call(jack_server, rtcheck_library,
                                                                 test_process_lib_path):
    """Our part of the PortAudio callback (de-interleave, process, interleave,
    telemetry) is as clean as the JACK one.  PortAudio's own code around it on
    the same thread is not ours to judge and is not asserted."""
    pytest.importorskip("sounddevice", reason="python-sounddevice not installed")
    counts = run_checked(rtcheck_library, test_process_lib_path, jack_server.name, "portaudio", 3.0)
    assert counts["callbacks"] > 300 and counts["swaps"] > 10
    assert counts["inside"] == {k: 0 for k in counts["inside"]}, counts


def test_checker_catches_a_process_function_that_allocates_and_locks(jack_server, rtcheck_library,
                                                                     test_process_lib_path):
    counts = run_checked(rtcheck_library, test_process_lib_path, jack_server.name, "bad", 1.0)
    n = counts["callbacks"]
    assert n > 50
    assert counts["inside"]["malloc"] >= n and counts["inside"]["free"] >= n
    assert counts["inside"]["pthread_mutex_lock"] >= n


def test_checker_catches_a_python_process_function(jack_server, rtcheck_library, test_process_lib_path):
    counts = run_checked(rtcheck_library, test_process_lib_path, jack_server.name, "python", 1.0)
    n = counts["callbacks"]
    assert n > 50
    # cffi takes the GIL with PyGILState_Ensure the first time on a thread and
    # with PyEval_RestoreThread afterwards: one of the two per callback.
    gil = counts["inside"]["PyGILState_Ensure"] + counts["inside"]["PyEval_RestoreThread"]
    assert gil >= n - 1


# -- the graph executor in the callback --------------------------------------------

def executor_through_ports(rig, make_executor, signal: np.ndarray) -> np.ndarray:
    """Run an executor (a fresh one from make_executor() per attempt) in the callback,
    play `signal` through it and return the recording (signal + latency frames).
    Repeats up to 3 times when an xrun or a missed cycle spoilt the take."""
    from rt_kernels._rt import ffi as rt_ffi, lib as rt_lib

    backend, player, recorder = rig
    for attempt in range(3):
        live = make_executor()
        lat = live.latency_frames
        backend.set_process(rt_ffi.cast("void *", rt_ffi.addressof(rt_lib, "rt_executor_process")),
                            live.c_executor, keep_alive=live, latency_frames=lat)
        wait_until(lambda: port_latency_range(recorder.ports[0], "capture") == (lat, lat), 2.0)
        recording, clean = play_and_record(backend, player, recorder, signal, tail=lat, attempts=1)
        backend.clear_process()
        wait_until(lambda: not backend.status().process_running, 2.0)
        if clean:
            break
    return recording


def test_executor_through_the_ports_equals_offline_processing(rig, rng):
    runtime = pytest.importorskip("graph.runtime", reason="the graph executor (issue 4) is not merged yet")
    import graph

    def chain():
        return graph.Graph(graph.Node("biquad", "low", type="low_shelf", freq_hz=120, gain_db=3),
                           graph.Node("delay", "look", delay_frames=96), graph.Node("gain", "out", gain_db=-2))

    live = runtime.Executor(chain(), channels=CHANNELS, sample_rate=JACK_RATE, max_block=512)
    offline = runtime.Executor(chain(), channels=CHANNELS, sample_rate=JACK_RATE, max_block=512)
    signal = (0.25 * rng.standard_normal((CHANNELS, 24000))).astype(np.float32)
    lat = live.latency_frames

    def fresh_live():
        live.reset()  # before it runs: the executor is not in the callback yet
        return live

    recording = executor_through_ports(rig, fresh_live, signal)
    recorder = rig[2]
    offline.reset()
    # The live executor ran on silence before the player started: with fixed
    # parameters and linear time-invariant nodes that leaves no trace.
    expected = offline.process(np.concatenate([signal, np.zeros((CHANNELS, lat), np.float32)], axis=1))
    assert wait_until(lambda: port_latency_range(recorder.ports[0], "capture") == (0, 0), 2.0)
    np.testing.assert_allclose(recording, expected, atol=1e-6, rtol=0)


LIVE_CHECK_PRESET = {
    "schema_version": 1, "name": "livecheck", "adaptive": False,
    "chain": [{"name": "input", "type": "gain", "params": {"gain_db": -3.0}},
              {"name": "eq", "type": "psy_eq", "params": {"band_05_db": 3.0, "band_18_db": -2.0}},
              {"name": "comp", "type": "compressor", "params": {"threshold_db": -30.0, "ratio": 3.0}},
              {"name": "width", "type": "stereo_width", "params": {"width_3": 1.3}},
              {"name": "limiter", "type": "limiter", "params": {"ceiling_db": -1.0, "true_peak": 1}}],
}


def test_live_preset_chain_through_the_ports_equals_engine_render(rig, rng, tmp_path):
    """What `auralis-rt host --preset P` plays equals `engine.render(signal, preset=P)`
    (a non-adaptive preset: live monitoring uses stored parameters)."""
    import json

    import engine
    from engine.live import live_executor

    preset = tmp_path / "livecheck.json"
    preset.write_text(json.dumps(LIVE_CHECK_PRESET))
    signal = (0.3 * rng.standard_normal((CHANNELS, 24000))).astype(np.float32)  # loud: compressor and limiter act
    expected = engine.render(np.ascontiguousarray(signal.T), JACK_RATE, preset=str(preset)).T
    recording = executor_through_ports(rig, lambda: live_executor(str(preset), CHANNELS, JACK_RATE)[0], signal)
    lat = recording.shape[1] - signal.shape[1]  # the recording holds signal + latency frames
    assert np.max(np.abs(expected)) > 0.5, "the chain should be doing real work here"
    np.testing.assert_allclose(recording[:, lat:], expected, atol=1e-6, rtol=0)


# -- CLI helpers (engine.backends) ---------------------------------------------------

def test_open_host_auto_starts_and_stops_a_private_server_and_run_host_writes_telemetry(tmp_path):
    """In a child process: libjack serves one server per process, and this
    process already has clients on the module's server."""
    status_json = tmp_path / "status.json"
    result = subprocess.run([sys.executable, "-m", "tests.jack_scenarios", "auto_host", str(status_json)], cwd=ROOT,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-1500:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["private_running"] and report["notes"]
    assert report["state"] == "active" and report["callbacks"] > 0
    assert report["in_1_connections"] == ["system:capture_1"]  # autoconnect to the physical ports
    assert report["private_running_after"] is False
    with pytest.raises(ProcessLookupError):
        os.kill(report["private_pid"], 0)
    written = json.loads(status_json.read_text())
    assert set(written) >= {"xruns", "dsp_load", "callback_us_p99", "latency_frames", "sample_rate", "period"}
    assert written["period"] == JACK_PERIOD and written["sample_rate"] == JACK_RATE


def test_open_host_jack_requires_a_running_server_and_list_devices_shows_ports(jack_server):
    from engine.backends import jack_server_running, list_devices, open_host

    with pytest.raises(JackBackendError, match="no server 'auralis-no-such-server' is running"):
        with open_host("jack", jack_server="auralis-no-such-server"):
            pass
    with pytest.raises(ValueError, match="backend = 'alsa' is not one of auto, jack, portaudio"):
        with open_host("alsa"):
            pass
    assert jack_server_running(jack_server.name)
    with open_host("jack", jack_server=jack_server.name, name="lister", channels=1, autoconnect=False,
                   lock_memory=False) as host:
        assert host.private_server is None
        names = [p["name"] for p in list_devices(jack_server.name)["jack"]]
        assert "lister:in_1" in names and "lister:out_1" in names and "system:playback_1" in names


# -- PortAudio backend through Debian's PortAudio JACK host API ---------------------

def test_portaudio_backend_through_the_jack_host_api(test_process_lib_path):
    """In a child process with its own private server (PortAudio's JACK host
    API binds to the server it finds at initialisation)."""
    pytest.importorskip("sounddevice", reason="python-sounddevice not installed")
    for attempt in range(2):
        result = subprocess.run([sys.executable, "-m", "tests.jack_scenarios", "portaudio", str(test_process_lib_path)],
                                cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True,
                                timeout=90)
        assert result.returncode == 0, result.stderr[-1500:]
        report = json.loads(result.stdout.strip().splitlines()[-1])
        if report["exact"] or report["status"]["xruns"] == 0 and report["gaps"] == 0:
            break
    assert any(d["host_api"] == "JACK Audio Connection Kit" for d in report["devices"])
    s = report["status"]
    assert s["host_api"] == "JACK Audio Connection Kit" and s["state"] == "running"
    assert s["sample_rate"] == JACK_RATE and s["period"] == JACK_PERIOD and s["callbacks"] > 0
    assert report["recorded"] and report["delay_frames"] >= 0
    # Bit-exact after the host API's own buffering delay, measured from the data.
    assert report["exact"], report


def run_portaudio_scenario(name: str) -> dict:
    """A PortAudio scenario in its own child process (PortAudio binds to the JACK
    server it finds at initialisation; after a server loss it is unusable for
    the process).  A hang shows as a timeout, an abort as return code -6 / 134."""
    pytest.importorskip("sounddevice", reason="python-sounddevice not installed")
    try:
        result = subprocess.run([sys.executable, "-m", "tests.jack_scenarios", name], cwd=ROOT,
                                env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True,
                                timeout=30)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"{name}: the child hung (PortAudio blocking on a dead JACK server?)") from exc
    assert result.returncode == 0, f"{name}: child exited with {result.returncode}: {result.stderr[-1500:]}"
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_portaudio_jack_server_killed_under_a_running_stream():
    """PortAudio 19.6 blocks ~10 min in Pa_CloseStream after its JACK server died
    and then aborts, as Pa_Terminate at exit does: the backend reports the loss,
    abandons the stream with one warning, refuses further PortAudio use with
    one line, and the child exits normally."""
    report = run_portaudio_scenario("portaudio_kill")
    assert report["ran_before"] and report["state_before"] == "running"
    assert report["noticed"]
    gone = report["after_kill"]
    assert gone["state"] == "host lost" and gone["shutdown"]
    assert gone["shutdown_reason"].startswith("the JACK server 'auralis-") and "went away" in gone["shutdown_reason"]
    assert "restart the process" in gone["shutdown_reason"]
    assert report["state_after_close"] == "host lost"
    assert len(report["warnings"]) == 1, report["warnings"]  # stop, close, stop: one warning
    assert report["warnings"][0].startswith("PortAudioHostLostWarning: PortAudioBackend.stop: the stream on "
                                            "'system' was abandoned: the JACK server")
    refusals = report["refusals"]
    assert set(refusals) == {"start", "open", "new_backend", "list", "rescan"}
    for label, message in refusals.items():
        assert "went away" in message and "restart the process" in message, (label, message)
        assert "\n" not in message
    assert refusals["start"].startswith("PortAudioBackend.start: ")
    assert refusals["list"].startswith("list_portaudio_devices: ")


def test_portaudio_rescans_for_a_server_started_later_and_reports_no_wrapped_latency():
    """sounddevice initialises PortAudio on import: a device list taken before the
    JACK server started stays stale until rescanned; open() rescans by itself.
    PortAudio's latency for a non-physical client's ports wraps to ~2**32
    frames: reported as NaN (null in JSON).  The server then dies with
    PortAudio idle but connected: the child must still exit normally."""
    report = run_portaudio_scenario("portaudio_rescan")
    jack_api = "JACK Audio Connection Kit"
    assert jack_api not in report["before_start"]
    assert jack_api not in report["stale"]  # PortAudio's list as of its initialisation
    assert report["opened"] == {"host_api": jack_api, "device": "system"} and report["ran"]
    assert report["rescan_while_open"].startswith("rescan_portaudio: close these streams first: PortAudioBackend(")
    assert jack_api in report["rescanned"]
    assert {"system", "tplayer", "trecorder"} <= set(report["names"])
    lat_in, lat_out = report["system_latency_s"]
    assert 0.0 <= lat_in <= 1.0 and 0.0 < lat_out <= 1.0  # the driver's ports: sane, reported as is
    assert report["client_latency_s"] == [None, None]
