"""Scenarios that run in a child process of the tests (``python -m tests.jack_scenarios NAME``).

libjack (JACK 2) keeps process-wide globals for the first server it talks to:
while a process has a client open, a client opened "on another server" lands
on the first one, and opening one on a server that died can crash inside
libjack.  A real auralis-rt process talks to one server; the test process
already has clients on the module's server, so scenarios that need their own
server run here, alone, and report JSON on their last stdout line.  A crash shows up
as a negative return code in the test.
"""

from __future__ import annotations

import json
import sys
import time

import jack

from engine.backends.jack import JackBackend, JackBackendError, port_latency_range
from engine.backends.jackd import PrivateJackServer


def wait_until(predicate, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


def kill_and_reconnect() -> dict:
    report: dict = {}
    with PrivateJackServer(rate=48000, period=256) as server:
        backend = JackBackend("survivor", server=server.name, channels=2, lock_memory=False)
        backend.set_passthrough()
        backend.set_latency_frames(64)
        backend.activate()
        report["ran_before"] = wait_until(lambda: backend.status().callbacks > 10, 5.0)

        server.kill()  # SIGKILL: the server vanishes mid-cycle
        report["noticed"] = wait_until(lambda: backend.status().shutdown, 5.0)
        report["after_kill"] = backend.status().as_dict()
        # The control side keeps working while the server is gone.
        backend.set_passthrough()
        backend.set_latency_frames(32)
        backend.collect()
        try:
            backend.reconnect()
            report["reconnect_without_server"] = "no error"
        except JackBackendError as exc:
            report["reconnect_without_server"] = str(exc)
        report["state_without_server"] = backend.status().state

        server.start()  # the same name: "a server is back"
        backend.reconnect(timeout_s=5.0)
        report["ran_after"] = wait_until(lambda: backend.status().callbacks > 10, 5.0)
        report["after_reconnect"] = backend.status().as_dict()
        probe = jack.Client("probe", servername=server.name, no_start_server=True)
        report["out_capture_latency"] = port_latency_range(probe.get_port_by_name(backend.outports[0]), "capture")
        probe.close()
        backend.destroy()
    return report


def hygiene() -> dict:
    import warnings

    from engine.backends import jack as jack_backend

    report: dict = {"may_lock_memory": jack_backend._can_lock_memory()[0]}
    with PrivateJackServer(rate=48000, period=256, realtime=False) as server, \
            warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        backends = [JackBackend(f"hyg{i}", server=server.name, channels=1) for i in range(2)]
        for b in backends:
            b.set_passthrough()
            b.activate()
        report["ran"] = all(wait_until(lambda b=b: b.status().callbacks > 10, 5.0) for b in backends)
        status = backends[0].status()
        report["realtime"] = status.realtime
        report["memory_locked"] = status.memory_locked
        report["warnings"] = [str(w.message) for w in caught if issubclass(w.category, jack_backend.RealtimeHygieneWarning)]
        for b in backends:
            b.destroy()
    return report


def auto_host(status_json: str) -> dict:
    from engine.backends import open_host, run_host

    with open_host("auto", jack_server="auralis-no-such-server", channels=2, lock_memory=False) as host:
        server = host.private_server
        report = {"private_running": bool(server and server.running), "private_pid": server.pid,
                  "notes": host.notes}
        host.backend.set_passthrough()
        final = run_host(host, duration_s=0.5, status_json=status_json, interval_s=0.1)
        report.update(state=final.state, callbacks=final.callbacks)
        report["in_1_connections"] = [p.name for p in host.backend.client.get_all_connections(host.backend.inports[0])]
    report["private_running_after"] = server.running
    return report


def portaudio(lib_path: str) -> dict:
    """PortAudioBackend on Debian's PortAudio JACK host API against a private
    server: a player feeds PortAudio:in_*, a recorder reads PortAudio:out_*."""
    import os

    import numpy as np

    from tests.jack_clients import Player, Recorder
    from tests.jack_fixtures import load_test_process_lib

    tffi, tlib = load_test_process_lib(lib_path)
    report: dict = {}
    with PrivateJackServer(rate=48000, period=256) as server:
        os.environ["JACK_DEFAULT_SERVER"] = server.name  # before PortAudio initialises
        from engine.backends.portaudio import PortAudioBackend, list_portaudio_devices, terminate_portaudio

        report["devices"] = list_portaudio_devices()
        backend = PortAudioBackend(device="system", channels=2, sample_rate=48000, blocksize=256, lock_memory=False)
        ctx = tffi.gc(tlib.tp_gain_delay_create(2, 0, 0.5), tlib.tp_gain_delay_destroy)
        backend.set_process(int(tffi.cast("uintptr_t", tlib.tp_gain_delay_process)), int(tffi.cast("uintptr_t", ctx)),
                            keep_alive=ctx)
        backend.start()
        player, recorder = Player(server.name, 2), Recorder(server.name, 2)
        probe = jack.Client("probe", servername=server.name, no_start_server=True)
        for c in range(2):
            for p in probe.get_all_connections(f"PortAudio:in_{c}"):
                probe.disconnect(p.name, f"PortAudio:in_{c}")
            probe.connect(f"tplayer:out_{c + 1}", f"PortAudio:in_{c}")
            probe.connect(f"PortAudio:out_{c}", f"trecorder:in_{c + 1}")
        rng = np.random.default_rng(7)
        signal = (0.25 * rng.standard_normal((2, 12000))).astype(np.float32)
        signal[:, 0] = 1.0  # marks the start
        recorder.record(signal.shape[1] + 4096, follow=player)
        player.play(signal)
        report["recorded"] = recorder.wait(20.0)
        rec = recorder.buffer
        delay = int(np.flatnonzero(rec[0])[0]) if rec[0].any() else -1
        report["delay_frames"] = delay
        aligned = rec[:, delay:delay + signal.shape[1]] if delay >= 0 else rec[:, :0]
        report["exact"] = bool(aligned.shape == signal.shape and np.array_equal(aligned, np.float32(0.5) * signal))
        report["gaps"] = player.gaps + recorder.gaps
        status = backend.status()
        report["status"] = status.as_dict()
        probe.close()
        player.close()
        recorder.close()
        backend.destroy()
        terminate_portaudio()  # while its JACK server still runs
    return report


def portaudio_kill() -> dict:
    """SIGKILL the JACK server under a running PortAudioBackend stream.  Unprotected,
    PortAudio 19.6 blocks ~10 min in Pa_CloseStream and then aborts (exit 134),
    as Pa_Terminate in sounddevice's exit handler does: the test checks this
    child exits 0 well within its timeout."""
    import os
    import warnings

    report: dict = {}
    server = PrivateJackServer(rate=48000, period=256).start()
    os.environ["JACK_DEFAULT_SERVER"] = server.name
    from engine.backends import portaudio as pa

    backend = pa.PortAudioBackend(device="system", channels=2, sample_rate=48000, blocksize=256, lock_memory=False)
    backend.set_passthrough()
    backend.start()
    report["ran_before"] = wait_until(lambda: backend.status().callbacks > 10, 5.0)
    report["state_before"] = backend.status().state
    server.kill()
    report["noticed"] = wait_until(lambda: backend.status().shutdown, 5.0)
    report["after_kill"] = backend.status().as_dict()
    backend.set_passthrough()  # the control side keeps working
    backend.collect()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.monotonic()
        backend.stop()
        backend.close()
        backend.stop()
        report["stop_close_s"] = time.monotonic() - t0
    report["warnings"] = [f"{w.category.__name__}: {w.message}" for w in caught]
    report["state_after_close"] = backend.status().state
    refusals = {}
    for label, call in (("start", backend.start), ("open", backend.open),
                        ("new_backend", lambda: pa.PortAudioBackend(device="system", lock_memory=False).start()),
                        ("list", pa.list_portaudio_devices), ("rescan", pa.rescan_portaudio)):
        try:
            call()
            refusals[label] = "no error"
        except pa.PortAudioError as exc:
            refusals[label] = str(exc)
    report["refusals"] = refusals
    pa.terminate_portaudio()  # leaves PortAudio alone
    backend.destroy()
    server.stop()
    return report  # then the interpreter exits: sounddevice's exit handler must not abort


def portaudio_rescan() -> dict:
    """PortAudio initialised before a JACK server starts: the list is stale until a
    rescan; open() rescans by itself.  PortAudio's latencies for a non-physical
    client's ports.  Then the server dies with PortAudio idle: exit must not abort."""
    import math
    import os

    from tests.jack_clients import Player, Recorder

    server = PrivateJackServer(rate=48000, period=256)
    os.environ["JACK_DEFAULT_SERVER"] = server.name  # not running yet
    from engine.backends import portaudio as pa

    def apis(devices):
        return sorted({d["host_api"] for d in devices})

    report: dict = {"before_start": apis(pa.list_portaudio_devices())}
    server.start()
    player, recorder = Player(server.name, 2), Recorder(server.name, 2)
    report["stale"] = apis(pa.list_portaudio_devices())
    backend = pa.PortAudioBackend(device="system", channels=2, lock_memory=False)
    backend.start()  # "system" is not in the stale list: open() rescans
    report["opened"] = {"host_api": backend.status().host_api, "device": backend.status().device}
    report["ran"] = wait_until(lambda: backend.status().callbacks > 10, 5.0)
    report["system_latency_s"] = list(backend.status().stream_latency_s)
    try:
        pa.rescan_portaudio()
        report["rescan_while_open"] = "no error"
    except pa.PortAudioError as exc:
        report["rescan_while_open"] = str(exc)
    backend.destroy()
    devices = pa.list_portaudio_devices(rescan=True)
    report["rescanned"] = apis(devices)
    report["names"] = [d["name"] for d in devices]
    # PortAudio's JACK devices are clients: tplayer has outputs (PortAudio inputs), trecorder inputs.
    client = pa.PortAudioBackend(device=("tplayer", "trecorder"), channels=2, lock_memory=False)
    client.start()
    report["client_latency_s"] = [None if math.isnan(x) else x for x in client.status().stream_latency_s]
    client.destroy()
    player.close()
    recorder.close()
    server.kill()  # PortAudio idle but still connected: its termination at exit would abort
    return report


if __name__ == "__main__":
    scenarios = {"kill": kill_and_reconnect, "hygiene": hygiene, "auto_host": auto_host, "portaudio": portaudio,
                 "portaudio_kill": portaudio_kill, "portaudio_rescan": portaudio_rescan}
    print(json.dumps(scenarios[sys.argv[1]](*sys.argv[2:])))
