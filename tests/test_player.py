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
from graph import Executor, Graph, Node

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


def cut_short_then_next(recording: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """For a track `a` left early for `b`: (frames of a heard, what was heard, what should
    have been: a from its start faded out where it was left, then b whole at full level)."""
    h = heard(recording)
    m = h.shape[0] - b.shape[0]
    expect = np.concatenate([a[:m], b])
    expect[m - FADE:m] *= fade_table()[::-1, None]
    return m, h, expect


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
    # The fade starts about where the command found the stream (loose: threads run late on a loaded machine).
    assert 0 <= p - pause["at_frame"] < 0.25 * RATE
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
    assert target <= seek["position_after"] < target + 0.25 * RATE      # reported at once
    assert 0 <= q - seek["at_frame"] < 0.25 * RATE
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


@pytest.mark.skipif(not shutil.which("jackd"), reason="jackd is not installed")
def test_the_players_callback_makes_no_allocation_lock_or_gil_call(tmp_path, rtcheck_library):
    """3 s of the stream + default mastering chain in the JACK callback while the control
    side seeks, pauses, resumes, skips, and tracks change gaplessly with a parameter
    snapshot each: nothing on the JACK process thread allocates, frees, locks or takes
    the GIL (LD_PRELOAD checker, tests/csrc/rtcheck.c)."""
    import os

    for k in range(3):
        sf.write(tmp_path / f"t{k}.wav", noise(0.35, RATE, 20 + k), RATE, subtype="FLOAT")
    env = dict(os.environ, LD_PRELOAD=str(rtcheck_library), PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "tests.player_scenarios", "rtcheck", str(tmp_path), "3"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    counts = json.loads(r.stdout.strip().splitlines()[-1])
    assert counts["callbacks"] > 300 and counts["commands"] > 30
    assert counts["param_blocks"] > 10, counts          # snapshots applied on the audio thread
    assert counts["inside"] == {k: 0 for k in counts["inside"]}, counts
    assert counts["outside"] == {k: 0 for k in counts["outside"]}, counts


# -- in-process: an audio thread driving the stream from Python (C call, GIL released) -----

class AudioThread:
    """Calls the stream's process function every ~period in real time.

    ``hold()`` parks it between two calls (returns once no call is under way),
    ``step(n)`` then runs exactly n calls, and ``release()`` lets it run on: commands
    given while it is held all land within one audio period, as they can with a real
    backend, so a test need not race the clock."""

    def __init__(self, player: Player, period: int = 256):
        self.player, self.period = player, period
        self.out: list[np.ndarray] = []
        self.blocks = 0
        self._cv = threading.Condition()
        self._budget: int | None = None   # calls left before parking (None: run freely)
        self._parked = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        t = time.monotonic()
        while not self._stop.is_set():
            with self._cv:
                if self._budget == 0:
                    self._parked = True
                    self._cv.notify_all()
                    self._cv.wait_for(lambda: self._budget != 0 or self._stop.is_set())
                    self._parked = False
                    t = time.monotonic()   # no catching up on the time held
                    continue
            self.out.append(self.player.stream.process(self.period))
            with self._cv:
                self.blocks += 1
                if self._budget:
                    self._budget -= 1
                self._cv.notify_all()
            t += self.period / RATE
            time.sleep(max(0.0, t - time.monotonic()))

    def hold(self) -> None:
        with self._cv:
            self._budget = 0
            assert self._cv.wait_for(lambda: self._parked, 10), "the audio thread did not park"

    def step(self, n: int) -> None:
        """Held: run exactly n calls, then park again."""
        with self._cv:
            assert self._budget == 0, "step() needs hold() first"
            target = self.blocks + n
            self._budget = n
            self._cv.notify_all()
            assert self._cv.wait_for(lambda: self._parked and self.blocks >= target, 10), f"{n} blocks did not run"

    def release(self) -> None:
        with self._cv:
            self._budget = None
            self._cv.notify_all()

    def wait_blocks(self, n: int) -> None:
        """Until n more calls have run (running freely)."""
        with self._cv:
            target = self.blocks + n
            assert self._cv.wait_for(lambda: self.blocks >= target, 10), f"{n} blocks did not run"

    def stop(self) -> np.ndarray:
        self._stop.set()
        self.release()
        self._thread.join()
        return np.concatenate(self.out, axis=1)


class EventLog:
    """A player's events, in order; ``wait(predicate)`` blocks until one matches."""

    def __init__(self, player: Player):
        self.events: list = []
        self._cv = threading.Condition()
        player.subscribe(self._on)

    def _on(self, e) -> None:
        with self._cv:
            self.events.append(e)
            self._cv.notify_all()

    def wait(self, predicate, timeout_s: float = 10.0):
        """The first event logged since subscribing that matches (waits up to timeout_s)."""
        with self._cv:
            found = self._cv.wait_for(lambda: next((e for e in self.events if predicate(e)), None), timeout_s)
        assert found is not None, f"no such event; got {[(e.kind, e.state.value) for e in self.events]}"
        return found

    def track_events(self) -> list[tuple[str, str]]:
        with self._cv:
            return [(e.track.title, e.state.value) for e in self.events if e.kind == "track"]

    def states(self) -> list:
        with self._cv:
            return [e for e in self.events if e.kind == "state"]


@pytest.fixture
def short_files(tmp_path):
    paths = []
    for k in range(4):
        p = tmp_path / f"s{k}.wav"
        sf.write(p, noise(0.3, RATE, 10 + k), RATE, subtype="FLOAT")
        paths.append(str(p))
    return paths


def write_tracks(directory: Path, **tracks: np.ndarray) -> list[str]:
    """name=(frames, 2) float32 -> name.wav files; returns their paths in order."""
    paths = []
    for name, x in tracks.items():
        sf.write(directory / f"{name}.wav", x, RATE, subtype="FLOAT")
        paths.append(str(directory / f"{name}.wav"))
    return paths


def wait_for(predicate, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


def is_track(title: str):
    return lambda e: e.kind == "track" and e.track.title == title


def played_out(player: Player, log: EventLog) -> None:
    """The queue plays to its end: the player gets there from PLAYING, never from LOADING."""
    log.wait(lambda e: e.kind == "end")
    assert player.events.flush(5)
    assert player.state is PlayerState.STOPPED
    assert log.states()[-1].data["previous"] == "playing"


def test_commands_from_many_threads_neither_deadlock_nor_lose_events_and_the_state_follows(tmp_path):
    """Six threads (and a listener) command the player at random -- play, pause, resume,
    stop, next, previous, seek, seek+next and next+pause+resume back to back, repeat
    changes -- over a queue with a track shorter than a period and a corrupt file.  Then
    the state must be what the last command left: paused or stopped stays so (and
    silent); playing or loading plays the queue out to STOPPED, reached from PLAYING;
    and the same after last commands given within one audio period."""
    paths = write_tracks(tmp_path, s0=noise(0.2, RATE, 10), s1=noise(0.2, RATE, 11), tiny=noise(100 / RATE, RATE, 12),
                         s2=noise(0.2, RATE, 13), s3=noise(0.2, RATE, 14))
    (tmp_path / "bad.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt " + bytes(range(200)))
    paths.insert(3, str(tmp_path / "bad.wav"))                   # s0 s1 tiny bad s2 s3
    player = Player(Executor(Graph(), 2, RATE, max_block=256))
    audio = AudioThread(player)
    seen = []
    lock = threading.Lock()
    storm = threading.Event()
    storm.set()

    def listener(e):
        with lock:
            seen.append(e)
        if storm.is_set() and e.kind == "track" and e.seq % 3 == 0:
            player.toggle_pause()   # a listener may command the player

    player.subscribe(listener)
    player.queue.add(*paths)
    player.queue.repeat = "all"
    errors = []

    def hammer(seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            for _ in range(80):
                cmd = rng.integers(13)
                if cmd == 0:
                    player.play(int(rng.integers(len(paths))))
                elif cmd == 1:
                    player.pause()
                elif cmd == 2:
                    player.resume()
                elif cmd == 3:
                    player.next()
                elif cmd == 4:
                    player.previous()
                elif cmd in (5, 6):
                    try:
                        player.seek(float(rng.uniform(0, 0.19)))
                        if cmd == 6:
                            player.next()
                    except ValueError as exc:   # stopped, or beyond the tiny track
                        assert "nothing is playing" in str(exc) or "is outside" in str(exc)
                elif cmd == 7:
                    player.next()
                    player.pause()
                    player.resume()
                elif cmd == 8:
                    player.toggle_pause()
                elif cmd == 9:
                    player.stop()
                elif cmd == 10:
                    player.queue.repeat = ("off", "one", "all")[int(rng.integers(3))]
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
    storm.clear()
    assert player.events.flush(10)          # a listener's toggle under way has returned
    player.queue.repeat = "off"

    def mark() -> int:
        with lock:
            return seen[-1].seq if seen else 0

    def since(m: int, kind: str) -> list:
        with lock:
            return [e for e in seen if e.seq > m and e.kind == kind]

    def holds(state: PlayerState) -> None:
        """The last command left `state`, and it stays, in silence."""
        assert player.events.flush(10)
        m = mark()
        assert player.state is state
        audio.wait_blocks(12)
        assert player.events.flush(10)
        assert player.state is state and not since(m, "state")
        assert not np.concatenate(audio.out[-4:], axis=1).any()

    def plays_out(m: int) -> None:
        """The queue plays to its end: STOPPED, reached from PLAYING (never LOADING while it played)."""
        assert wait_for(lambda: since(m, "end"), 10), f"the queue did not play out ({player.state.value})"
        assert player.events.flush(10)
        assert player.state is PlayerState.STOPPED
        assert since(m, "state")[-1].data["previous"] == "playing"

    try:
        m = mark()
        left = player.state                 # what the storm's last command left
        assert left is not PlayerState.ERROR
        if left is PlayerState.PAUSED:
            holds(left)
            player.resume()
        elif left is PlayerState.STOPPED:
            holds(left)
            player.play()
        plays_out(m)
        # Last commands given within one audio period (the audio thread held meanwhile).
        m = mark()
        audio.hold()
        player.play(4)
        player.seek(0.1)
        player.next()
        audio.release()
        plays_out(m)
        audio.hold()
        player.play(4)
        player.next()
        player.pause()
        audio.release()
        holds(PlayerState.PAUSED)
        m = mark()
        player.resume()
        plays_out(m)
        audio.hold()
        player.play(0)
        player.stop()
        audio.release()
        holds(PlayerState.STOPPED)
        m = mark()
        player.play(2)                      # the tiny track from a standing start
        plays_out(m)
        player.play(5)
        player.pause()
        holds(PlayerState.PAUSED)
        m = mark()
        player.next()                       # paused at the last track: the end
        assert player.events.flush(10) and since(m, "end")
        holds(PlayerState.STOPPED)
    finally:
        player.close()
        audio.stop()
    with lock:
        events = list(seen)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))    # none lost, in order
    states = [e for e in events if e.kind == "state"]
    for before, after in zip(states, states[1:]):                       # a consistent chain of transitions
        assert after.data["previous"] == before.state.value
    assert states[-1].state is PlayerState.STOPPED                      # close() stops
    assert all(e.state in (PlayerState.PLAYING, PlayerState.PAUSED) for e in events if e.kind == "track")
    assert any(e.kind == "error" and e.track.title == "bad.wav" for e in events)
    assert not player._thread.is_alive()


def test_seek_then_next_within_one_period_plays_the_next_track_and_stops_at_the_end(tmp_path):
    """Regression: the two seeks reach the audio thread together and are carried out as one
    jump; the player stayed LOADING for good (and never saw the end) while b played."""
    a, b = noise(0.5, RATE, 31), noise(0.25, RATE, 32)
    player = Player(Executor(Graph(), 2, RATE, max_block=256))
    log = EventLog(player)
    player.queue.add(*write_tracks(tmp_path, a=a, b=b))
    audio = AudioThread(player)
    try:
        player.play()
        log.wait(is_track("a.wav"))
        audio.hold()
        player.seek(0.3)
        player.next()
        audio.release()
        assert log.wait(is_track("b.wav")).state is PlayerState.PLAYING
        played_out(player, log)
    finally:
        player.close()
        y = audio.stop()
    # What is heard: a from its start, faded out where the seek found it, then b from its
    # first frame at full level (the seek's target was never played).
    m, h, expect = cut_short_then_next(y, a, b)
    assert m > FADE and np.array_equal(h, expect)


@pytest.mark.parametrize("blocks_paused", [0, 8])
def test_next_then_pause_before_the_track_is_heard_then_resume_reaches_playing_and_stopped(tmp_path, blocks_paused):
    """Regression: next, then pause before the new track is heard (0: before the audio
    thread even sees the next; 8: it jumps while paused), then resume."""
    a, b = noise(0.5, RATE, 33), noise(0.25, RATE, 34)
    player = Player(Executor(Graph(), 2, RATE, max_block=256))
    log = EventLog(player)
    player.queue.add(*write_tracks(tmp_path, a=a, b=b))
    audio = AudioThread(player)
    try:
        player.play()
        log.wait(is_track("a.wav"))
        audio.hold()
        player.next()
        player.pause()
        assert player.state is PlayerState.PAUSED
        if blocks_paused:
            audio.release()
            audio.wait_blocks(blocks_paused)
            assert player.state is PlayerState.PAUSED and not audio.out[-1].any()   # held silent
        player.resume()
        audio.release()
        assert log.wait(is_track("b.wav")).state is PlayerState.PLAYING
        played_out(player, log)
    finally:
        player.close()
        y = audio.stop()
    _, h, expect = cut_short_then_next(y, a, b)
    assert np.array_equal(h, expect)


def test_tracks_shorter_than_a_period_play_and_the_queue_ends(tmp_path):
    """A track (or what is left of one) shorter than a process call: the audio thread
    waits for a call's worth before it starts, so the decoder must not wait for that
    track to be heard before it writes what follows (it did: LOADING for good, silent)."""
    tiny, a, b = noise(100 / RATE, RATE, 35), noise(0.2, RATE, 36), noise(0.2, RATE, 37)
    paths = write_tracks(tmp_path, tiny=tiny, a=a, b=b)
    for queue, order in (([paths[0]], ["tiny.wav"]),
                         ([paths[0], paths[1]], ["tiny.wav", "a.wav"]),
                         ([paths[1], paths[0], paths[2]], ["a.wav", "tiny.wav", "b.wav"])):
        player = Player(Executor(Graph(), 2, RATE, max_block=256))
        log = EventLog(player)
        player.queue.add(*queue)
        audio = AudioThread(player)
        try:
            player.play()
            played_out(player, log)
        finally:
            player.close()
            y = audio.stop()
        assert log.track_events() == [(t, "playing") for t in order]
        if order[0] == "tiny.wav":   # from a standing start nothing is lost (mid-queue: see the docstring of Player)
            assert np.array_equal(heard(y), np.concatenate([tiny, a][:len(order)]))


def test_a_seek_into_the_last_period_of_a_track_while_paused_plays_it_out(tmp_path):
    a = ramp(24000)
    player = Player(Executor(Graph(), 2, RATE, max_block=256))
    log = EventLog(player)
    player.queue.add(*write_tracks(tmp_path, a=a))
    audio = AudioThread(player)
    try:
        player.play()
        log.wait(is_track("a.wav"))
        player.pause()
        player.seek(frame=a.shape[0] - 100)
        audio.wait_blocks(4)                    # the jump happens while paused
        assert player.state is PlayerState.PAUSED
        before = len(audio.out)
        player.resume()
        played_out(player, log)
    finally:
        player.close()
        y = audio.stop()
    tail = heard(np.concatenate(audio.out[before:], axis=1))
    assert np.array_equal(tail, a[-100:] * fade_table()[:100, None])   # the seek's fade-in, cut short by the end


def test_removing_the_track_decoded_ahead_plays_the_one_after_it_next(tmp_path):
    """b is already in the ring when it is removed: it still plays (Player docstring),
    and then c, not the current track a again."""
    player = Player(Executor(Graph(), 2, RATE, max_block=256))
    log = EventLog(player)
    player.queue.add(*write_tracks(tmp_path, a=noise(0.3, RATE, 38), b=noise(0.1, RATE, 39), c=noise(0.1, RATE, 40)))
    audio = AudioThread(player)
    try:
        player.play()
        log.wait(is_track("a.wav"))
        # b is decoded ahead (a is shorter than the ring) once a is heard
        assert wait_for(lambda: any(e.track.title == "b.wav" for e in list(player._entries.values())))
        player.queue.remove(1)
        played_out(player, log)
    finally:
        player.close()
        audio.stop()
    assert [t for t, _ in log.track_events()] == ["a.wav", "b.wav", "c.wav"]


def test_position_is_what_comes_out_of_the_chain_now(tmp_path):
    """position() = the track frame entering the chain minus the chain's latency (a
    300-frame delay here), never before the track's start."""
    a = ramp(24000)
    ex = Executor(Graph(Node("delay", "d", delay_frames=300)), 2, RATE, max_block=256)
    player = Player(ex)
    player.queue.add(*write_tracks(tmp_path, a=a))
    audio = AudioThread(player)
    try:
        audio.hold()
        player.play()
        assert wait_for(lambda: player.stream.write_position >= 1024)   # the first chunk is in the ring
        audio.step(1)
        assert player.position()[:2] == (player.queue.current, 0)      # 256 frames in, none out yet
        audio.step(3)
        y = np.concatenate(audio.out, axis=1)
        last = int(round(float(y[0, -1]) * a.shape[0] / 0.4)) - 1      # the ramp frame output last
        assert last == 1024 - 1 - 300
        track, frame, seconds = player.position()
        assert frame == last + 1 and seconds == frame / RATE
    finally:
        audio.release()
        player.close()
        audio.stop()


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


def test_repeat_one_loops_gaplessly_and_removing_the_playing_track_lets_it_finish(tmp_path):
    a, b, c = noise(0.3, RATE, 5), noise(0.25, RATE, 6), noise(0.2, RATE, 7)
    for name, x in (("a", a), ("b", b), ("c", c)):
        sf.write(tmp_path / f"{name}.wav", x, RATE, subtype="FLOAT")
    player = Player(Executor(Graph(), 2, RATE, max_block=256))
    seen = []
    player.subscribe(lambda e: seen.append((e.kind, e.track.title if e.track else None)))
    player.queue.add(*(str(tmp_path / f"{n}.wav") for n in "abc"))
    audio = AudioThread(player)
    player.queue.repeat = "one"
    player.play(1)
    time.sleep(0.6)
    player.queue.repeat = "off"
    player.queue.remove(1)               # b is playing: it finishes, then c (which took its place)
    done = threading.Event()
    player.subscribe(lambda e: e.kind == "end" and done.set())
    assert done.wait(10)
    y = audio.stop()
    player.close()
    tracks = [t for k, t in seen if k == "track"]
    assert tracks[0] == "b.wav" and tracks[-1] == "c.wav" and set(tracks[:-1]) == {"b.wav"}
    assert 3 <= len(tracks) <= 5         # b for 0.6 s, plus at most the one copy decoded ahead
    start = int(np.flatnonzero(y[0])[0])
    expect = np.concatenate([b] * (len(tracks) - 1) + [c])
    np.testing.assert_array_equal(y[:, start:start + expect.shape[0]], expect.T)
    assert not y[:, start + expect.shape[0]:].any()


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


# -- the command line ----------------------------------------------------------------------

def play_command(*args):
    """This checkout's command line (an installed `auralis-rt` may be another version)."""
    return [sys.executable, "-m", "engine", "play", *args]


def clean_env():
    import os

    env = dict(os.environ)
    env.pop("JACK_DEFAULT_SERVER", None)
    return env


@pytest.mark.skipif(not shutil.which("jackd"), reason="jackd is not installed")
def test_cli_play_plays_the_queue_reports_the_bad_file_and_stops_its_server(tmp_path):
    import re

    sf.write(tmp_path / "one.wav", noise(0.6, RATE, 1), RATE, subtype="FLOAT")
    sf.write(tmp_path / "three.flac", noise(0.4, 44100, 3), 44100)
    (tmp_path / "two.wav").write_bytes(b"not audio" * 50)
    r = subprocess.run(play_command(str(tmp_path / "one.wav"), str(tmp_path / "two.wav"), str(tmp_path / "three.flac"),
                                    "--no-repl", "--preset", "transparent"),
                       capture_output=True, text=True, timeout=120, env=clean_env(), cwd=ROOT)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    tracks = [line for line in lines if line.startswith(("track ", "error: "))]
    assert tracks[0] == f"track 1/3 {tmp_path / 'one.wav'} (0:00.6)"
    assert tracks[1].startswith(f"error: track {tmp_path / 'two.wav'}: ") and tracks[1].endswith("; skipped")
    assert tracks[2] == f"track 3/3 {tmp_path / 'three.flac'} (0:00.4)"
    assert lines[-1].startswith("done: 2 track(s) played, 1 error(s), 0 underrun(s)")
    name = re.search(r"private JACK server '([^']+)'", r.stdout).group(1)
    assert subprocess.run(["pgrep", "-f", f"jackd -n {name}"], capture_output=True).returncode == 1


def test_cli_play_refuses_a_bad_preset_and_says_when_nothing_could_play(tmp_path):
    r = subprocess.run(play_command(str(tmp_path / "x.wav"), "--no-repl", "--preset", "nosuch"),
                       capture_output=True, text=True, timeout=60, env=clean_env(), cwd=ROOT)
    assert r.returncode == 2 and "preset nosuch: no such preset" in r.stderr
    if shutil.which("jackd"):
        r = subprocess.run(play_command(str(tmp_path / "x.wav"), "--no-repl", "--quiet"),
                           capture_output=True, text=True, timeout=60, env=clean_env(), cwd=ROOT)
        assert r.returncode == 3, r.stderr
        assert r.stderr.strip().splitlines()[-1] == "auralis-rt play: no file could be played"
        assert f"error: track {tmp_path / 'x.wav'}:" in r.stdout
