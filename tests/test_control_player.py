"""Transport commands on a real Player (engine.player): its stream driven by a
real-time paced thread in front of the probe chain, files written with soundfile,
levels measured at the output."""

from __future__ import annotations

import collections
import math
import threading
import time

import numpy as np
import pytest
import soundfile as sf
from pythonosc.udp_client import SimpleUDPClient

from engine.control import Dispatcher, Session
from engine.control.osc import OscServer
from engine.live import live_executor
from engine.player.events import PlayerState
from engine.player.player import Player
from graph.nodes import NODE_TYPES
from presets import load_preset
from tests.control_rig import BLOCK, RATE, tone, write_probe_preset


class Playing:
    """A Player in front of the probe chain, its stream processed by a paced thread."""

    def __init__(self, preset_path):
        preset = load_preset(preset_path, node_types=NODE_TYPES)
        self.executor, _ = live_executor(preset, 2, RATE, max_block=1024)
        self.player = Player(self.executor)
        self.session = Session(self.executor, preset, player=self.player)
        self.dispatcher = Dispatcher(self.session)
        self._out = collections.deque(maxlen=400)
        self._lock = threading.Lock()
        self.blocks = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        t = time.monotonic()
        while not self._stop.is_set():
            out = self.player.stream.process(BLOCK)
            with self._lock:
                self._out.append(out[0].copy())
                self.blocks += 1
            t += BLOCK / RATE
            time.sleep(max(0.0, t - time.monotonic()))

    def settle(self, seconds):
        target = self.blocks + math.ceil(seconds * RATE / BLOCK)
        deadline = time.monotonic() + 10 + seconds
        while self.blocks < target:
            assert time.monotonic() < deadline
            time.sleep(0.005)

    def level_db(self, seconds=0.05):
        n = math.ceil(seconds * RATE / BLOCK)
        with self._lock:
            x = np.concatenate(list(self._out)[-n:]).astype(np.float64)
        return 20 * math.log10(max(float(np.sqrt(np.mean(x * x))), 1e-12))

    def run(self, line):
        reply = self.dispatcher.execute(line)
        assert reply.ok, f"{line!r}: {reply.text}"
        return reply

    def close(self):
        self.player.close()
        self._stop.set()
        self._thread.join()


@pytest.fixture
def files(tmp_path):
    paths = []
    for name, level in (("loud", -20.0), ("soft", -32.0)):
        p = tmp_path / f"{name}.wav"
        sf.write(p, tone(2.0, level).T, RATE, subtype="FLOAT")
        paths.append(str(p))
    return paths


@pytest.fixture
def rig(tmp_path):
    r = Playing(write_probe_preset(tmp_path))
    yield r
    r.close()


def sine_rms(peak_db):
    return peak_db - 10 * math.log10(2)


def wait_state(rig, state, timeout_s=5.0):
    deadline = time.monotonic() + timeout_s
    while rig.player.state is not state:
        assert time.monotonic() < deadline, f"state {rig.player.state}, wanted {state}"
        time.sleep(0.01)


def test_transport_commands_play_the_queue_through_the_chain(rig, files):
    loud, soft = files
    assert rig.run(f"queue add {loud} {soft}").text == "queue: added 2 tracks (2 in all)"
    listing = rig.run("queue").text.splitlines()
    assert listing[0].endswith(f"1  loud.wav  ({loud})") and listing[-1] == "repeat off"
    assert rig.run("play").text.startswith("play: ")
    wait_state(rig, PlayerState.PLAYING)
    rig.settle(0.3)
    assert rig.level_db() == pytest.approx(sine_rms(-20.0), abs=0.05)
    rig.run("set input.gain_db -6")  # the chain's parameters work the same while a player runs
    rig.settle(0.1)
    assert rig.level_db() == pytest.approx(sine_rms(-26.0), abs=0.05)
    rig.run("undo")
    assert "2/2 soft.wav" in rig.run("next").text
    rig.settle(0.3)
    assert rig.level_db() == pytest.approx(sine_rms(-32.0), abs=0.05)
    assert "1/2 loud.wav" in rig.run("prev").text
    rig.settle(0.3)
    assert rig.level_db() == pytest.approx(sine_rms(-20.0), abs=0.05)
    rig.run("pause")
    wait_state(rig, PlayerState.PAUSED)
    rig.settle(0.1)
    assert rig.level_db() < -120
    rig.run("resume")
    wait_state(rig, PlayerState.PLAYING)
    reply = rig.run("seek 1.5")
    assert reply.value == 1.5
    assert 1.5 <= rig.player.position()[2] < 1.9
    before = rig.player.position()[2]
    rig.run("seek -1s")
    assert rig.player.position()[2] == pytest.approx(before - 1.0, abs=0.15)
    assert "stopped" in rig.run("stop").text
    status = rig.run("status")
    assert "player: stopped" in status.text and status.value["player"] == "stopped"


@pytest.mark.parametrize("line, message", [
    ("play 3", "play: 3 is outside [1, 2] (the queue has 2 tracks)"),
    ("play x", "play: 'x' is not a queue position (1, 2, ...)"),
    ("seek 1:75", "seek: '1:75' has minutes or seconds of 60 or more"),
    ("seek soon", "seek: 'soon' is not a time (e.g. 42, 42s, 1500ms, 1:23)"),
    ("queue add /no/such.wav", "queue add: /no/such.wav: no such file"),
    ("queue remove 7", "queue remove: 7 is outside [1, 2]"),
    ("queue repeat twice", "queue repeat: expected queue repeat off|one|all"),
    ("queue frob", "queue: 'frob' is not list, add, remove, move, clear, shuffle, unshuffle or repeat"),
    ("pause now", "pause: takes no arguments"),
])
def test_transport_refusals(rig, files, line, message):
    rig.run(f"queue add {files[0]} {files[1]}")
    assert (lambda r: (r.ok, r.text))(rig.dispatcher.execute(line)) == (False, message)


def test_seek_beyond_the_track_is_refused_by_the_player_in_one_line(rig, files):
    rig.run(f"queue add {files[0]}")
    assert not rig.dispatcher.execute("seek 1").ok  # stopped: nothing to seek in
    rig.run("play")
    wait_state(rig, PlayerState.PLAYING)
    reply = rig.dispatcher.execute("seek 5")
    assert not reply.ok and reply.text.startswith("seek: 5 s is outside [0, 2.000) s of loud.wav")
    assert rig.player.state is PlayerState.PLAYING


def test_queue_editing(rig, files):
    loud, soft = files
    rig.run(f"queue add {loud} {soft} {loud}")
    rig.run("queue move 3 1")
    rig.run("queue remove 2")
    assert rig.run("queue").value == [loud, soft]
    rig.run("queue repeat all")
    assert rig.player.queue.repeat == "all"
    rig.run("queue clear")
    assert rig.run("queue").text == "the queue is empty (repeat all)"


def test_osc_transport(rig, files):
    server = OscServer(rig.dispatcher, 0).start()
    client = SimpleUDPClient(*server.address)
    try:
        rig.run(f"queue add {files[0]} {files[1]}")
        client.send_message("/transport/play", [])
        wait_state(rig, PlayerState.PLAYING)
        # Each step waits until the player has got there: engine.player stays at LOADING
        # when a seek is followed by next, or next by pause, before the new position is
        # heard (reported to the player's owner; not the control layer's to work around).
        client.send_message("/transport/seek", 1.25)
        client.send_message("/cmd", "status")
        assert client.receive(5.0)  # all earlier messages were handled before this reply
        assert rig.player.position()[2] >= 1.25
        wait_state(rig, PlayerState.PLAYING)
        client.send_message("/transport/next", [])
        client.send_message("/cmd", "status")
        assert client.receive(5.0)
        assert rig.player.position()[0].title == "soft.wav"
        wait_state(rig, PlayerState.PLAYING)
        client.send_message("/transport/pause", [])
        wait_state(rig, PlayerState.PAUSED)
        client.send_message("/transport/pause", [])  # pause is not a toggle: still paused
        client.send_message("/transport/resume", [])
        wait_state(rig, PlayerState.PLAYING)
        client.send_message("/transport/stop", [])
        wait_state(rig, PlayerState.STOPPED)
        assert server.errors == 0
    finally:
        server.close()
