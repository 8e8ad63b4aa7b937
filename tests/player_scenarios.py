"""Player scenarios against a private jackd, in a child process of the tests
(``python -m tests.player_scenarios SPEC.json``; libjack binds a process to one server).

One server, one JackBackend running the Player's C stream, one JACK-Client recorder on
the backend's outputs.  Each scenario of the spec plays files through a fresh Player,
records by JACK frame time, saves the recording as ``<out>/<name>.npy`` and reports
events and counters; the last stdout line is the JSON report.  A scenario that sees an
xrun or a missed recorder cycle is played again (up to 3 times): the dummy driver xruns
spontaneously on a loaded machine, and a skipped cycle would shift the recording.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from engine.backends.jack import JackBackend
from engine.backends.jackd import PrivateJackServer
from engine.player.player import Player
from graph import Executor, Graph
from tests.jack_clients import Recorder, wait_until

RATE, PERIOD = 48000, 256


class Events:
    """Collects a player's events as plain dicts."""

    def __init__(self, player: Player):
        self.items: list[dict] = []
        player.subscribe(self._on)

    def _on(self, e) -> None:
        self.items.append({"seq": e.seq, "kind": e.kind, "state": e.state.value,
                           "track": None if e.track is None else Path(e.track.path).name,
                           "message": e.message, "data": {k: v for k, v in e.data.items()
                                                          if isinstance(v, (int, float, str, type(None)))}})

    def count(self, kind: str) -> int:
        return sum(1 for e in self.items if e["kind"] == kind)


def make_executor(spec: dict):
    if spec.get("preset"):
        from engine.live import live_executor

        return live_executor(spec["preset"], 2, RATE)[0]
    return Executor(Graph(), 2, RATE, max_block=256)


def track_params_for(spec: dict):
    params = spec.get("params")
    slow = spec.get("slow_params_s", {})
    if not params and not slow:
        return None

    def lookup(track):
        name = Path(track.path).name
        if name in slow:  # a slow decoder thread (e.g. a stalled disk): the ring runs dry
            time.sleep(slow[name])
        return (params or {}).get(name, {})

    return lookup


def run(backend: JackBackend, recorder: Recorder, spec: dict, out: Path) -> dict:
    for attempt in range(3):
        executor = make_executor(spec)
        player = Player(executor, ring_seconds=spec.get("ring_seconds", 2.0), fade_ms=spec.get("fade_ms", 5.0),
                        track_params=track_params_for(spec))
        events = Events(player)
        player.attach(backend)
        player.queue.add(*spec["paths"])
        xruns = backend.status().xruns
        recorder.gaps = 0
        recorder.record(int(spec["record_s"] * RATE))
        time.sleep(0.05)
        player.play()
        actions = []
        for action in spec.get("actions", []):
            # Wait until the named track is heard, then until `after_s` more has played.
            assert wait_until(lambda: any(e["kind"] == "track" for e in events.items), 10.0)
            wait_until(lambda: player.position()[1] >= action["after_s"] * RATE, 10.0, step_s=0.002)
            before = player.position()
            if action["do"] == "pause":
                player.pause()
                time.sleep(action["hold_s"])
                actions.append({"do": "pause", "at_frame": before[1], "state_paused": player.state.value})
                player.resume()
            elif action["do"] == "seek":
                player.seek(frame=action["frame"])
                actions.append({"do": "seek", "at_frame": before[1], "position_after": player.position()[1]})
        ended = wait_until(lambda: events.count("end") > 0, 30.0)
        recorded = recorder.wait(30.0)
        clean = backend.status().xruns == xruns and recorder.gaps == 0
        report = {"attempt": attempt, "clean": clean, "ended": ended, "recorded": recorded,
                  "events": events.items, "actions": actions, "underruns": list(player.underruns),
                  "state": player.state.value, "latency_frames": executor.latency_frames,
                  "param_blocks_applied": executor.telemetry().param_blocks}
        player.close()
        executor.collect()
        report["in_flight_after_close"] = executor.in_flight
        report["events_after_close"] = len(events.items)
        if clean or attempt == 2:
            np.save(out / f"{spec['name']}.npy", recorder.buffer)
            return report
    raise AssertionError("unreachable")


def main(spec_path: str) -> dict:
    spec = json.loads(Path(spec_path).read_text())
    out = Path(spec["out"])
    results = {}
    with PrivateJackServer(rate=RATE, period=PERIOD) as server:
        backend = JackBackend("auralis-rt", server=server.name, channels=2, lock_memory=False)
        backend.activate()
        recorder = Recorder(server.name, 2)
        for c in range(2):
            backend.connect(backend.outports[c], f"trecorder:in_{c + 1}")
        try:
            for scenario in spec["scenarios"]:
                try:
                    results[scenario["name"]] = run(backend, recorder, scenario, out)
                except Exception:
                    results[scenario["name"]] = {"error": traceback.format_exc()}
        finally:
            recorder.close()
            backend.destroy()
    return results


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
