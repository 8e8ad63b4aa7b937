"""The player: files through the C stream and an executor into real JACK ports
(a private jackd in a child process, tests/player_scenarios.py), compared with
independent offline references; and the command/state machinery under load."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine.live import live_executor
from engine.player.decode import decode_offline
from engine.player.events import PlayerState
from engine.player.player import Player
from graph import Executor, Graph

RATE = 48000
FADE = 240            # 5 ms at 48 kHz: the player's default fade
PRESET = "gentle"
ROOT = Path(__file__).resolve().parent.parent


def noise(seconds: float, rate: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = (0.25 * rng.standard_normal((int(seconds * rate), 2))).astype(np.float32)
    x[0] = (0.5, -0.5)  # a non-zero first frame: alignment by the first sound
    return x


def ramp(frames: int, start: int = 0, total: int | None = None) -> np.ndarray:
    """No zero sample, a distinct value per frame: every frame is identifiable."""
    total = total or frames
    i = np.arange(start, start + frames, dtype=np.float64) + 1
    return np.stack([0.4 * i / total, -0.8 * i / total], axis=1).astype(np.float32)


def fade_table(n: int = FADE) -> np.ndarray:
    i = np.arange(n, dtype=np.float64)
    return (0.5 - 0.5 * np.cos(np.pi * (i + 0.5) / n)).astype(np.float32)


def heard(recording: np.ndarray) -> np.ndarray:
    """The frames that were not silence, as (frames, channels)."""
    return recording[:, recording[0] != 0].T


# -- the JACK scenarios (one child process, one private server) --------------------------

GAPLESS = {"a.wav": (0.5, 48000, {"input.gain_db": -2.0}),
           "b.flac": (0.37, 44100, {"input.gain_db": 1.5, "comp.threshold_db": -30.0}),
           "c.wav": (0.61, 48000, {"input.gain_db": -6.0})}


@pytest.fixture(scope="module")
def played(tmp_path_factory):
    if shutil.which("jackd") is None:
        pytest.skip("jackd is not installed")
    d = tmp_path_factory.mktemp("player")
    for k, (name, (seconds, rate, _)) in enumerate(GAPLESS.items()):
        sf.write(d / name, noise(seconds, rate, k), rate, subtype="FLOAT" if name.endswith("wav") else "PCM_24")
    sf.write(d / "ramp.wav", ramp(72000), RATE, subtype="FLOAT")
    sf.write(d / "u1.wav", ramp(28800, 0, 57600), RATE, subtype="FLOAT")
    sf.write(d / "u2.wav", ramp(28800, 28800, 57600), RATE, subtype="FLOAT")
    sf.write(d / "good1.wav", ramp(20000, 0, 40000), RATE, subtype="FLOAT")
    sf.write(d / "good2.wav", ramp(20000, 20000, 40000), RATE, subtype="FLOAT")
    (d / "bad.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt " + bytes(range(200)))
    scenarios = [
        {"name": "gapless", "preset": PRESET, "paths": [str(d / n) for n in GAPLESS],
         "params": {n: p for n, (_, _, p) in GAPLESS.items()}, "record_s": 3.0},
        {"name": "pause", "paths": [str(d / "ramp.wav")], "record_s": 2.6,
         "actions": [{"do": "pause", "after_s": 0.4, "hold_s": 0.3}]},
        {"name": "seek", "paths": [str(d / "ramp.wav")], "record_s": 2.0,
         "actions": [{"do": "seek", "after_s": 0.3, "frame": 50000}]},
        {"name": "underrun", "paths": [str(d / "u1.wav"), str(d / "u2.wav")], "ring_seconds": 0.1,
         "slow_params_s": {"u2.wav": 0.5}, "record_s": 2.5},
        {"name": "corrupt", "paths": [str(d / "good1.wav"), str(d / "bad.wav"), str(d / "missing.wav"),
                                      str(d / "good2.wav")], "record_s": 1.8},
    ]
    spec = d / "spec.json"
    spec.write_text(json.dumps({"out": str(d), "scenarios": scenarios}))
    r = subprocess.run([sys.executable, "-m", "tests.player_scenarios", str(spec)], capture_output=True, text=True,
                       timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads(r.stdout.strip().splitlines()[-1])
    return report, d


def scenario(played, name):
    report, d = played
    result = report[name]
    assert "error" not in result, result.get("error")
    assert result["ended"] and result["recorded"], result
    return result, np.load(d / f"{name}.npy"), d


def kinds(result) -> list[tuple[str, str | None]]:
    return [(e["kind"], e["track"]) for e in result["events"] if e["kind"] not in ("state", "queue")]


def test_three_files_back_to_back_equal_the_offline_render_seam_by_seam(played):
    result, rec, d = scenario(played, "gapless")
    decoded = [decode_offline(d / name, RATE) for name in GAPLESS]      # b.flac resampled 44.1 -> 48 kHz
    lengths = [x.shape[0] for x in decoded]

    def render(shift_second_switch: int = 0) -> np.ndarray:
        ex, _ = live_executor(PRESET, 2, RATE)
        parts = []
        whole = np.ascontiguousarray(np.concatenate(decoded).T)
        starts = np.cumsum([0] + lengths[:-1])
        starts[1] += shift_second_switch
        bounds = list(starts) + [whole.shape[1]]
        for k, (_, _, params) in enumerate(GAPLESS.values()):
            ex.publish(params)                                          # lands exactly at the next frame
            parts.append(ex.process(np.ascontiguousarray(whole[:, bounds[k]:bounds[k + 1]])))
        parts.append(ex.process(np.zeros((2, ex.latency_frames + 1000), np.float32)))
        return np.concatenate(parts, axis=1)

    ref = render()
    start = int(np.flatnonzero(rec[0])[0]) - int(np.flatnonzero(ref[0])[0])
    assert start >= 0 and not rec[:, :start].any()
    got = rec[:, start:start + ref.shape[1]]
    assert got.shape == ref.shape, f"recording too short: {got.shape} vs {ref.shape}"
    seams = np.cumsum(lengths) + result["latency_frames"]
    for k, seam in enumerate(seams[:-1]):
        window = slice(seam - 512, seam + 512)
        assert np.array_equal(got[:, window], ref[:, window]), f"seam {k + 1} at output frame {seam}"
    assert np.array_equal(got, ref), f"first difference at {np.flatnonzero((got != ref).any(axis=0))[:1]}"
    # The comparison can tell a parameter switch one frame late.
    assert not np.array_equal(got, render(shift_second_switch=1))
    assert result["param_blocks_applied"] == 3
    assert kinds(result) == [("track", "a.wav"), ("track", "b.flac"), ("track", "c.wav"), ("end", None)]
    assert result["state"] == "stopped" and result["underruns"] == [0, 0]
    assert result["clean"], "xruns on every attempt (the comparison still held)"


def test_no_snapshot_or_event_is_left_behind_after_close(played):
    for name in ("gapless", "seek", "corrupt"):
        result, _, _ = scenario(played, name)
        assert result["in_flight_after_close"] == 1, name   # only the running plan
        assert result["events_after_close"] == len(result["events"])


def test_pause_and_resume_lose_no_sample(played):
    result, rec, d = scenario(played, "pause")
    signal = ramp(72000)
    h = heard(rec)
    assert h.shape == signal.shape                                     # every frame, once
    p = int(np.flatnonzero((h != signal).any(axis=1))[0])              # where the pause fade began
    expect = signal.copy()
    expect[p:p + FADE] *= fade_table()[::-1, None]
    expect[p + FADE:p + 2 * FADE] *= fade_table()[:, None]
    assert np.array_equal(h, expect)
    pause = result["actions"][0]
    assert pause["state_paused"] == "paused"
    assert abs(p - pause["at_frame"]) < 4 * 256                        # the fade starts where the command found it
    silent = rec.shape[1] - np.count_nonzero(rec[0])
    assert silent > 0.25 * RATE                                        # the held time is silence


def test_seek_lands_on_the_requested_frame_with_fades(played):
    result, rec, d = scenario(played, "seek")
    signal = ramp(72000)
    h = heard(rec)
    q = int(np.flatnonzero((h != signal[:h.shape[0]]).any(axis=1))[0])   # the fade-out begins
    target = 50000
    expect = np.concatenate([signal[:q + FADE], signal[target:]])
    expect[q:q + FADE] *= fade_table()[::-1, None]
    expect[q + FADE:q + 2 * FADE] *= fade_table()[:, None]
    assert h.shape == expect.shape, "the seek did not land on frame 50000"
    assert np.array_equal(h, expect)
    seek = result["actions"][0]
    assert seek["position_after"] == target                            # reported at once
    assert abs(q - seek["at_frame"]) < 4 * 256
    assert kinds(result) == [("track", "ramp.wav"), ("end", None)]


def test_underruns_are_counted_and_playback_resumes_where_it_stopped(played):
    result, rec, d = scenario(played, "underrun")
    events, frames = result["underruns"]
    assert events >= 1 and frames > 0.2 * RATE                        # the decoder stalled 0.5 s
    assert any(e["kind"] == "underrun" for e in result["events"])
    signal = ramp(57600, 0, 57600)
    h = heard(rec)
    assert h.shape == signal.shape                                     # nothing lost
    r = int(np.flatnonzero((h != signal).any(axis=1))[0])
    expect = signal.copy()
    expect[r:r + FADE] *= fade_table()[:, None]                        # recovery fades in
    assert np.array_equal(h, expect)


def test_a_corrupt_and_a_missing_file_are_skipped_with_error_events(played):
    result, rec, d = scenario(played, "corrupt")
    assert kinds(result) == [("track", "good1.wav"), ("error", "bad.wav"), ("error", "missing.wav"),
                             ("track", "good2.wav"), ("end", None)]
    errors = [e["message"] for e in result["events"] if e["kind"] == "error"]
    assert "bad.wav" in errors[0] and "missing.wav" in errors[1] and all("skipped" in m for m in errors)
    # The good files still join sample-exactly across the skipped ones.
    assert np.array_equal(heard(rec), ramp(40000))
    assert result["state"] == "stopped"


# -- in-process: an audio thread driving the stream from Python (C call, GIL released) -----

class AudioThread:
    """Calls the stream's process function every ~period in real time."""

    def __init__(self, player: Player, period: int = 256):
        self.player, self.period = player, period
        self.out: list[np.ndarray] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        t = time.monotonic()
        while not self._stop.is_set():
            self.out.append(self.player.stream.process(self.period))
            t += self.period / RATE
            time.sleep(max(0.0, t - time.monotonic()))

    def stop(self) -> np.ndarray:
        self._stop.set()
        self._thread.join()
        return np.concatenate(self.out, axis=1)


@pytest.fixture
def short_files(tmp_path):
    paths = []
    for k in range(4):
        p = tmp_path / f"s{k}.wav"
        sf.write(p, noise(0.3, RATE, 10 + k), RATE, subtype="FLOAT")
        paths.append(str(p))
    return paths


def test_commands_from_many_threads_neither_deadlock_nor_lose_events(short_files):
    player = Player(Executor(Graph(), 2, RATE, max_block=256))
    audio = AudioThread(player)
    seen = []
    lock = threading.Lock()

    def listener(e):
        with lock:
            seen.append(e)
        if e.kind == "track" and e.seq % 3 == 0:
            player.toggle_pause()   # a listener may command the player

    player.subscribe(listener)
    player.queue.add(*short_files)
    player.queue.repeat = "all"
    errors = []

    def hammer(seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            for _ in range(40):
                cmd = rng.integers(8)
                if cmd == 0:
                    player.play(int(rng.integers(4)))
                elif cmd == 1:
                    player.pause()
                elif cmd == 2:
                    player.resume()
                elif cmd == 3:
                    player.next()
                elif cmd == 4:
                    player.previous()
                elif cmd == 5:
                    try:
                        player.seek(float(rng.uniform(0, 0.25)))
                    except ValueError as exc:   # stopped: nothing to seek in
                        assert "nothing is playing" in str(exc)
                elif cmd == 6:
                    player.toggle_pause()
                else:
                    player.position()
                time.sleep(float(rng.uniform(0, 0.004)))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(s,)) for s in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a command deadlocked"
    assert not errors, errors
    player.play(0)
    player.resume()
    assert player.events.flush(10)
    final = player.state
    assert final in (PlayerState.PLAYING, PlayerState.LOADING)
    player.close()
    audio.stop()
    with lock:
        events = list(seen)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))    # none lost, in order
    states = [e for e in events if e.kind == "state"]
    for before, after in zip(states, states[1:]):                       # a consistent chain of transitions
        assert after.data["previous"] == before.state.value
    assert states[-1].state is PlayerState.STOPPED                      # close() stops
    assert not player._thread.is_alive()


def test_seek_refuses_bad_positions_with_one_line(short_files):
    player = Player(Executor(Graph(), 2, RATE, max_block=256))
    audio = AudioThread(player)
    try:
        with pytest.raises(ValueError, match="nothing is playing"):
            player.seek(0.1)
        player.queue.add(short_files[0])
        with pytest.raises(ValueError, match="not a finite time"):
            player.seek(float("nan"))
        with pytest.raises(ValueError, match="one of them"):
            player.seek()
        player.play()
        with pytest.raises(ValueError, match=r"Player.seek: 5 s is outside \[0, 0.300\) s of s0.wav"):
            player.seek(5)
        with pytest.raises(ValueError, match="before the start"):
            player.seek(frame=-1)
        player.seek(frame=100)
        assert player.position()[1] >= 100
    finally:
        player.close()
        audio.stop()
    with pytest.raises(RuntimeError, match="closed"):
        player.play()


def test_play_on_an_empty_queue_and_all_broken_files(tmp_path):
    player = Player(Executor(Graph(), 2, RATE, max_block=256))
    audio = AudioThread(player)
    seen = []
    player.subscribe(seen.append)
    try:
        with pytest.raises(ValueError, match="the queue is empty"):
            player.play()
        player.queue.add(str(tmp_path / "none1.wav"), str(tmp_path / "none2.flac"))
        player.play()
        assert player.events.flush(5)
        assert player.state is PlayerState.ERROR
        assert [e.kind for e in seen if e.kind != "state"] == ["error", "error", "end"]
    finally:
        player.close()
        audio.stop()


def test_crossfade_mixes_equal_power_and_keeps_the_length(tmp_path):
    a, b = noise(0.4, RATE, 1), noise(0.3, RATE, 2)
    sf.write(tmp_path / "a.wav", a, RATE, subtype="FLOAT")
    sf.write(tmp_path / "b.wav", b, RATE, subtype="FLOAT")
    player = Player(Executor(Graph(), 2, RATE, max_block=256), crossfade_s=0.05)
    player.queue.add(str(tmp_path / "a.wav"), str(tmp_path / "b.wav"))
    done = threading.Event()
    player.subscribe(lambda e: e.kind == "end" and done.set())
    audio = AudioThread(player)
    player.play()
    assert done.wait(10)
    y = audio.stop()
    player.close()
    x = 2400
    t = (np.arange(x) + 0.5) / x
    mix = (a[-x:] * np.cos(0.5 * np.pi * t)[:, None] + b[:x] * np.sin(0.5 * np.pi * t)[:, None]).astype(np.float32)
    expect = np.concatenate([a[:-x], mix, b[x:]])
    start = int(np.flatnonzero(y[0])[0])
    np.testing.assert_array_equal(y[:, start:start + expect.shape[0]], expect.T)
    assert not y[:, start + expect.shape[0]:].any()
