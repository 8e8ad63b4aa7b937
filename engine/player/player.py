"""Player: a decoder thread feeding the C stream in front of an Executor, a queue,
transport commands and events.

    executor, _ = live_executor("gentle", 2, 48000)
    player = Player(executor, track_params=lambda t: {"input.gain_db": -2.0})
    player.attach(backend)                  # backend.set_process(rt_stream_process, stream, ...)
    player.queue.add("a.flac", "b.mp3")
    player.subscribe(print)                 # PlayerEvent on the bus's own thread
    player.play(); player.seek(30.0); player.pause(); player.resume(); player.next()
    track, frame, seconds = player.position()
    player.close()

Threads.  Every command (play, pause, seek, next, ...) is carried out by the decoder
thread, one at a time in arrival order; the caller waits until it is done (a seek's
range error is raised in the caller).  So commands from many threads cannot interleave
half-way, and the state machine only ever moves from the decoder thread.  Listeners run
on the EventBus's dispatcher thread, never under a lock, never on the audio thread, and
may call any command.  The audio thread runs rt_stream_process (C) only.

Timing.  Tracks are written back to back into the ring; a track-start marker carries
the track's prepared parameter snapshot, applied by the audio thread exactly before the
track's first frame, wherever pauses and underruns put it in executor time.  With
crossfade_s = 0 the seam is sample-exact; with crossfade_s > 0 the last crossfade_s of a
track and the first of the next are mixed (equal power) here, on the decoder thread, and
the next track's marker sits where the mix begins.

Pre-decoding.  The following track is opened and written while the current one still
plays (up to ring_seconds ahead), but never more than one track ahead of what the audio
thread has come to (heard, or stands at waiting for data): queue changes (edits, repeat,
shuffle) apply from the track after the next one, and to the next one too if made
before the current track's last ring_seconds.  A track removed from the queue after it
was decoded ahead still plays, followed by what followed it.  (A track in mid-queue
much shorter than the time to open the next file, a few ms, therefore underruns once:
the audio thread plays it, runs dry, and fades in on the next track.)
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from engine.player.decode import TrackError, open_track
from engine.player.events import EventBus, PlayerEvent, PlayerState, StateMachine
from engine.player.queue import PlayQueue, Track
from engine.player.stream import Stream

FIRST_CHUNK_FRAMES = 1024   # first write after a start: small, so sound starts quickly
CHUNK_FRAMES = 8192         # later writes
POLL_S = 0.005              # decoder thread's wait when there is nothing to do or no room
COMMAND_TIMEOUT_S = 20.0


@dataclass
class _Entry:
    """A track as written into the ring from one start (play, seek, gapless advance)."""

    token: int
    track: Track
    start_frame: int                # the track's frame at the marker
    frames: int | None              # track length at the engine rate (None: unknown)
    snapshot: Any = None            # PreparedSnapshot riding on the marker (prepared when it is pushed)
    reader: Any = None              # TrackReader while this is the track being written
    tail: np.ndarray | None = None  # frames held back for a crossfade into the next track
    errors: list = field(default_factory=list)  # (track, message) of files skipped before it
    eof: bool = False               # decoded to the end; the next track waits until this one is reached
    position: int | None = None     # stream position of its marker, once pushed


@dataclass
class _Command:
    name: str
    args: tuple
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None


class PlayerClosed(RuntimeError):
    pass


class Player:
    """Plays a queue of files through ``executor`` (a graph Executor the stream feeds).

    ``crossfade_s``: equal-power crossfade between consecutive tracks (0 = gapless,
    sample-exact).  ``ring_seconds``: decoded audio buffered ahead of the audio thread.
    ``fade_ms``: pause/resume/seek/stop fades.  ``track_params``: ``callable(track) ->
    {"node.param": value}`` for per-track parameters (applied at the track's first frame).
    """

    def __init__(self, executor, *, crossfade_s: float = 0.0, ring_seconds: float = 2.0, fade_ms: float = 5.0,
                 track_params: Callable[[Track], Mapping[str, Any]] | None = None):
        where = "Player"
        for name, value, lo, hi in (("crossfade_s", crossfade_s, 0.0, 30.0), ("ring_seconds", ring_seconds, 0.05, 60.0),
                                    ("fade_ms", fade_ms, 0.0, 100.0)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or not lo <= value <= hi:
                raise ValueError(f"{where}: {name} = {value!r} is outside [{lo:g}, {hi:g}]")
        if track_params is not None and not callable(track_params):
            raise TypeError(f"{where}: track_params must be callable(track) -> dict, got {type(track_params).__name__}")
        self.executor = executor
        self.sample_rate = int(round(executor.sample_rate))
        self.channels = executor.channels
        self.crossfade_frames = int(round(crossfade_s * self.sample_rate))
        ring_frames = int(round(ring_seconds * self.sample_rate))
        self.stream = Stream(self.channels, capacity_frames=max(ring_frames, 2 * CHUNK_FRAMES),
                             max_block=executor.max_block, fade_frames=int(round(fade_ms * 1e-3 * self.sample_rate)),
                             executor=executor)
        self._ring_target = min(ring_frames, self.stream.capacity_frames)
        self.track_params = track_params
        self.queue = PlayQueue()
        self._bus = EventBus()
        self._sm = StateMachine(self._bus)
        self._cv = threading.Condition()
        self._commands: deque[_Command] = deque()
        self._closed = False
        # Decoder-thread state.
        self._entries: dict[int, _Entry] = {}
        self._write: _Entry | None = None      # entry being written
        self._started: _Entry | None = None    # entry of the last start, until it is heard
        self._actions: deque = deque()         # ("mark", entry) / ("frames", array) / ("end",) waiting for room
        self._next_token = 1
        self._heard_token = 0
        self._seeks_issued = 0
        self._seek_position = 0                # write position at the last seek
        self._end_marked = False
        self._deferred: list = []              # errors found ahead of the audio, reported at their place
        self._end_errors: list = []
        self._underruns_reported = 0
        self._queue_version = self.queue.version
        self._first_chunk = False
        self._thread = threading.Thread(target=self._run, name="player-decoder", daemon=True)
        self._thread.start()

    # -- audio side hook-up ----------------------------------------------------------
    @property
    def process_fn(self):
        """``rt_stream_process`` for ``backend.set_process(process_fn, process_ctx, ...)``."""
        return self.stream.process_fn

    @property
    def process_ctx(self):
        return self.stream.process_ctx

    def attach(self, backend) -> None:
        """Run this player in ``backend``'s callback (JackBackend / PortAudioBackend),
        reporting the executor's latency on its ports."""
        backend.set_process(self.process_fn, self.process_ctx, keep_alive=self,
                            latency_frames=self.executor.latency_frames)

    # -- state and events ------------------------------------------------------------
    @property
    def state(self) -> PlayerState:
        return self._sm.state

    def subscribe(self, listener: Callable[[PlayerEvent], None]) -> Callable[[], None]:
        """``listener(event)`` for every event from now on, on the event thread; returns the unsubscribe."""
        return self._bus.subscribe(listener)

    @property
    def events(self) -> EventBus:
        return self._bus

    @property
    def underruns(self) -> tuple[int, int]:
        """(events, frames): times the ring ran dry while playing, and the silent frames output."""
        st = self.stream.status()
        return st.underrun_events, st.underrun_frames

    def position(self) -> tuple[Track | None, int, float]:
        """(track, frame in the track at the engine rate, seconds) of what the chain
        outputs now: the frame entering it minus the latency of the plan it runs
        (Executor.running_latency_frames), so a lookahead limiter does not put the
        display ahead of the sound.

        Not before the frame the track was started from (its first frame, a seek's
        target): during the first latency frames of a track the output still carries
        the end of what played before, which is not reported.  Paused, the position
        stays latency frames before the frame that resumes (the chain's tail leaves
        the output while the input stands still) and moves on from there: it never
        jumps.  After a start or seek that is not audible yet: the target.  Stopped:
        the queue's current track at 0."""
        st = self.stream.status()
        started = self._started
        if self._sm.state is PlayerState.STOPPED or self._sm.state is PlayerState.ERROR:
            return self.queue.current, 0, 0.0
        if started is not None and st.token < started.token:
            return started.track, started.start_frame, started.start_frame / self.sample_rate
        entry = self._entries.get(st.token)
        if entry is None:
            return self.queue.current, 0, 0.0
        frame = max(entry.start_frame, st.frame_in_track - self.executor.running_latency_frames)
        if entry.frames is not None:
            frame = min(frame, entry.frames)
        return entry.track, frame, frame / self.sample_rate

    # -- commands (any thread) -------------------------------------------------------
    def play(self, index: int | None = None) -> None:
        """Start the queue's track at ``index`` (play order), or: resume when paused,
        start the current (else first) track when stopped, nothing when playing."""
        if index is not None and (isinstance(index, bool) or not isinstance(index, int)):
            raise TypeError(f"Player.play: index must be an int, got {type(index).__name__}")
        self._call("play", index)

    def pause(self) -> None:
        self._call("pause")

    def resume(self) -> None:
        self._call("resume")

    def toggle_pause(self) -> None:
        self._call("toggle")

    def stop(self) -> None:
        self._call("stop")

    def next(self) -> None:
        """The track after the current one (end of queue: stop, "end" event)."""
        self._call("next")

    def previous(self) -> None:
        """The track before the current one (at the first track: restart it)."""
        self._call("previous")

    def seek(self, seconds: float | None = None, *, frame: int | None = None) -> None:
        """Continue the current track at ``seconds`` or engine-rate ``frame``, with a short fade."""
        if (seconds is None) == (frame is None):
            raise ValueError("Player.seek: give seconds or frame (one of them)")
        if frame is not None:
            if isinstance(frame, bool) or not isinstance(frame, (int, np.integer)):
                raise TypeError(f"Player.seek: frame must be an int, got {type(frame).__name__}")
            target = int(frame)
            shown = f"frame {target}"
        else:
            if isinstance(seconds, bool) or not isinstance(seconds, (int, float, np.floating, np.integer)):
                raise TypeError(f"Player.seek: seconds must be a number, got {type(seconds).__name__}")
            if not math.isfinite(seconds):
                raise ValueError(f"Player.seek: {seconds} s is not a finite time")
            target = int(round(float(seconds) * self.sample_rate))
            shown = f"{float(seconds):g} s"
        if target < 0:
            raise ValueError(f"Player.seek: {shown} is before the start of the track")
        self._call("seek", target, shown)

    def close(self) -> None:
        """Stop, join the decoder thread, return queued snapshots, stop the event thread.

        A backend that still runs the stream outputs silence until it is given
        another process function or closed."""
        with self._cv:
            if self._closed:
                return
        try:
            self._call("close")
        except PlayerClosed:
            pass
        self._thread.join(COMMAND_TIMEOUT_S)
        self._bus.close(5.0)

    def __enter__(self) -> "Player":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _call(self, name: str, *args):
        cmd = _Command(name, args)
        with self._cv:
            if self._closed:
                raise PlayerClosed(f"Player.{name}: the player is closed")
            if name == "close":
                self._closed = True
            self._commands.append(cmd)
            self._cv.notify()
        if threading.current_thread() is self._thread:
            raise RuntimeError(f"Player.{name}: called from the decoder thread")
        if not cmd.done.wait(COMMAND_TIMEOUT_S):
            raise RuntimeError(f"Player.{name}: the decoder thread did not answer within {COMMAND_TIMEOUT_S:g} s")
        if cmd.error is not None:
            raise cmd.error
        return cmd.result

    # -- the decoder thread ------------------------------------------------------------
    def _run(self) -> None:
        try:
            while True:
                with self._cv:
                    if not self._commands:
                        self._cv.wait(0.0 if self._has_work() else POLL_S)
                    cmd = self._commands.popleft() if self._commands else None
                if cmd is not None:
                    if cmd.name == "close":
                        self._shutdown()
                        cmd.done.set()
                        return
                    try:
                        cmd.result = self._execute(cmd)
                    except Exception as exc:  # handed to the caller's thread
                        cmd.error = exc
                    cmd.done.set()
                    continue
                try:
                    self._produce()
                    self._poll()
                except Exception as exc:  # a bug must not leave the queue half-played in silence
                    self._stop_stream()
                    self._to(PlayerState.ERROR, message=f"internal error: {type(exc).__name__}: {exc}")
                    self._emit("error", message=f"player: internal error: {type(exc).__name__}: {exc}; stopped")
        finally:
            with self._cv:
                self._closed = True
                pending = list(self._commands)
                self._commands.clear()
            for cmd in pending:
                cmd.error = PlayerClosed(f"Player.{cmd.name}: the player is closed")
                cmd.done.set()

    def _buffered(self) -> int:
        return self.stream.capacity_frames - self.stream.writable

    def _has_work(self) -> bool:
        """Something to write and room for it (else the loop waits POLL_S)."""
        if self._actions:
            return self.stream.writable > 0
        w = self._write
        if w is None or w.reader is None:
            return False
        # Cheap, under the command lock: an entry reached but not yet heard waits one POLL_S.
        return self._heard_token >= w.token if w.eof else self._buffered() < self._ring_target

    def _execute(self, cmd: _Command):
        state = self._sm.state
        name = cmd.name
        if name == "play":
            (index,) = cmd.args
            if index is not None:
                track = self.queue.select(index)
                self._start(track, 0, fade_in=False, paused=False)
            elif state is PlayerState.PAUSED:
                self._resume()
            elif state in (PlayerState.STOPPED, PlayerState.ERROR):
                track = self.queue.current or self.queue.advance(auto=False)
                if track is None:
                    raise ValueError("Player.play: the queue is empty")
                self._start(track, 0, fade_in=False, paused=False)
        elif name == "pause":
            if state in (PlayerState.PLAYING, PlayerState.LOADING):
                self.stream.set_playing(False)
                self._sm.transition(PlayerState.PAUSED, track=self.queue.current)
        elif name == "resume":
            if state is PlayerState.PAUSED:
                self._resume()
        elif name == "toggle":
            if state is PlayerState.PAUSED:
                self._resume()
            elif state in (PlayerState.PLAYING, PlayerState.LOADING):
                self.stream.set_playing(False)
                self._sm.transition(PlayerState.PAUSED, track=self.queue.current)
        elif name == "stop":
            self._stop_stream()
            self._to(PlayerState.STOPPED)
        elif name in ("next", "previous"):
            track = self.queue.advance(auto=False) if name == "next" else self.queue.previous()
            if track is None:
                self._stop_stream()
                self._to(PlayerState.STOPPED)
                self._emit("end", message="end of queue")
            else:
                self._start(track, 0, fade_in=False, paused=state is PlayerState.PAUSED)
        elif name == "seek":
            target, shown = cmd.args
            entry = self._entries.get(self.stream.status().token)
            if self._started is not None and (entry is None or entry.token < self._started.token):
                entry = self._started
            if entry is None or state in (PlayerState.STOPPED, PlayerState.ERROR):
                raise ValueError(f"Player.seek: nothing is playing (state {state.value})")
            if entry.frames is not None and target >= entry.frames:
                raise ValueError(f"Player.seek: {shown} is outside [0, {entry.frames / self.sample_rate:.3f}) s "
                                 f"of {entry.track.title}")
            self._start(entry.track, target, fade_in=True, paused=state is PlayerState.PAUSED,
                        reader=entry.reader if entry is self._write else None)
        else:
            raise ValueError(f"Player: unknown command {name!r}")
        self._queue_version = self.queue.version
        return None

    def _resume(self) -> None:
        self.stream.set_playing(True)
        started = self._started
        heard = started is None or self.stream.status().token >= started.token
        self._sm.transition(PlayerState.PLAYING if heard else PlayerState.LOADING, track=self.queue.current)

    def _to(self, state: PlayerState, **kw) -> None:
        """Transition, going through LOADING where the table requires it."""
        if state is not self._sm.state and not self._sm.can(state) and self._sm.can(PlayerState.LOADING):
            self._sm.transition(PlayerState.LOADING)
        self._sm.transition(state, **kw)

    def _emit(self, kind: str, **fields) -> None:
        self._bus.emit(kind, self._sm.state, **fields)

    def _close_write(self) -> None:
        if self._write is not None and self._write.reader is not None:
            self._write.reader.close()
            self._write.reader = None
        self._write = None

    def _seek_stream(self, fade_in: bool) -> None:
        self._seek_position = self.stream.write_position
        self.stream.seek(fade_in=fade_in)
        self._seeks_issued += 1

    def _stop_stream(self) -> None:
        """Silence: fade out, skip everything written, write nothing more."""
        self.stream.set_playing(False)
        self._seek_stream(False)
        self._close_write()
        self._actions.clear()
        self._entries.clear()
        self._started = None
        self._end_marked = False
        self._deferred, self._end_errors = [], []

    def _open(self, track: Track, frame: int, reader=None, *, defer: bool = False):
        """(track, reader) of the first playable track from `track` on.  The others get
        "error" events, at once, or (defer: found while pre-decoding) when the audio
        reaches the place where they would have played."""
        tried = 0
        while track is not None and tried <= len(self.queue):
            tried += 1
            try:
                if reader is not None:
                    reader.seek(frame)
                    return track, reader
                return track, open_track(track.path, self.sample_rate, self.channels, start_frame=frame)
            except TrackError as exc:
                self._error(track, f"{exc}; skipped", defer)
                if reader is not None:
                    reader.close()
                reader = None
                frame = 0
                track = self._following(track, skip=True)
        return None, None

    def _start(self, track: Track, frame: int, *, fade_in: bool, paused: bool, reader=None) -> None:
        """Play `track` from `frame`: skip what the ring holds (with a fade) and write anew."""
        if reader is not None:
            self._write.reader = None  # handed over, not closed
        self._close_write()
        self._actions.clear()
        self._seek_stream(fade_in)
        self._end_marked = False
        self._entries = {}
        self._deferred, self._end_errors = [], []
        self.stream.set_playing(not paused)
        if not paused:
            self._to(PlayerState.LOADING, track=track)
        track, reader = self._open(track, frame, reader)
        if track is None:
            self._stop_stream()
            self._to(PlayerState.ERROR, message="no track of the queue could be played")
            self._emit("end", message="end of queue")
            return
        if track != self.queue.current and track in self.queue.tracks():
            self.queue.select(self.queue.index_of(track))
        entry = self._new_entry(track, frame if reader is not None else 0, reader)
        self._started = entry
        self._first_chunk = True

    def _error(self, track: Track, message: str, defer: bool) -> None:
        if defer:
            self._deferred.append((track, message))
        else:
            self._emit("error", track=track, message=message)

    def _new_entry(self, track: Track, frame: int, reader) -> _Entry:
        entry = _Entry(self._next_token, track, frame, reader.frames, None, reader)
        entry.errors, self._deferred = self._deferred, []
        self._next_token += 1
        self._entries[entry.token] = entry
        self._write = entry
        self._actions.append(("mark", entry))
        return entry

    def _snapshot(self, entry: _Entry):
        if self.track_params is None:
            return None
        try:
            params = self.track_params(entry.track)
            return self.executor.prepare(params) if params else None
        except Exception as exc:  # the track still plays, with the parameters in force
            entry.errors.append((entry.track, f"track {entry.track.path}: parameters refused ({exc})"))
            return None

    def _following(self, track: Track, *, skip: bool = False) -> Track | None:
        """What plays after `track` (`skip`: after a failed track, which repeat "one"
        must not retry).  The queue's rule, also for a track removed from the queue
        while it plays or is decoded ahead; one it no longer knows (cleared) is
        followed by what follows the current track."""
        q = self.queue
        try:
            return q.peek_following(track, auto=not skip)
        except ValueError:
            return q.peek_following(auto=False) if q.current is not None else None

    # -- writing ---------------------------------------------------------------------------
    def _produce(self) -> None:
        """Push waiting actions into the ring; then decode one chunk if below the target
        (one chunk per loop turn, so commands wait at most one decode)."""
        while self._actions:
            if not self._push(self._actions[0]):
                return
            self._actions.popleft()
        w = self._write
        if w is None or w.reader is None:
            return
        if w.eof:
            if self._reached(w):   # one track ahead of what the audio thread has come to, no more
                self._advance(w)
        elif self._buffered() < self._ring_target:
            self._decode(w)
        while self._actions and self._push(self._actions[0]):
            self._actions.popleft()

    def _push(self, action) -> bool:
        kind = action[0]
        if kind == "frames":
            block = action[1]
            n = self.stream.write(block)
            if n < block.shape[0]:
                self._actions[0] = ("frames", block[n:])
                return False
            return True
        if kind == "mark":
            # Prepared only once the marker surely fits: a snapshot handed to the stream
            # always comes back to the executor (applied, dropped by a seek, or drained).
            e = action[1]
            if self.stream.marker_room == 0:
                return False
            e.snapshot = self._snapshot(e)
            e.position = self.stream.write_position
            if not self.stream.mark_track(e.token, e.start_frame, e.snapshot):
                raise RuntimeError("Player: the stream refused a marker it had room for")
            return True
        return self.stream.mark_end()

    def _reached(self, w: _Entry) -> bool:
        """Whether the audio thread has come to `w`'s first frame: heard it, or stands
        at it waiting for data.  It starts (after a seek, or when it ran dry) only once a
        whole process call's worth is in the ring or the end is marked, so when all that
        is left of `w` is shorter than that (a tiny track, a seek into a track's last
        period), what follows `w` must be written before `w` can be heard."""
        if self._heard_token >= w.token:
            return True
        if w.position is None:
            return False
        st = self.stream.status()
        return st.seeks == self._seeks_issued and st.read_position >= w.position

    def _decode(self, w: _Entry) -> None:
        size = FIRST_CHUNK_FRAMES if self._first_chunk else CHUNK_FRAMES
        self._first_chunk = False
        try:
            block = w.reader.read(size)
        except TrackError as exc:  # reported where the audio is cut short
            self._error(w.track, f"{exc}; skipped", True)
            block = np.empty((0, self.channels), np.float32)
        if block.shape[0]:
            x = self.crossfade_frames
            if x:
                joined = block if w.tail is None else np.concatenate([w.tail, block])
                w.tail = joined[-x:].copy()
                block = joined[:-x]
            if block.shape[0]:
                self._actions.append(("frames", np.ascontiguousarray(block)))
            return
        w.eof = True

    def _advance(self, w: _Entry) -> None:
        """`w` is written out: on to the following track (gapless / crossfaded) or the end."""
        w.reader.close()
        w.reader = None
        tail = w.tail
        w.tail = None
        track, reader = self._open(self._following(w.track), 0, defer=True)
        if track is None:
            if tail is not None and tail.shape[0]:
                self._actions.append(("frames", tail))
            self._actions.append(("end",))
            self._end_marked = True
            self._end_errors, self._deferred = self._deferred, []
            self._write = None
            return
        if tail is None or not tail.shape[0]:
            self._new_entry(track, 0, reader)
            return
        try:
            head = reader.read(tail.shape[0])
        except TrackError as exc:
            self._error(track, f"{exc}; skipped", True)
            head = np.empty((0, self.channels), np.float32)
        k = min(tail.shape[0], head.shape[0])
        if tail.shape[0] > k:  # the next track is shorter than the crossfade
            self._actions.append(("frames", np.ascontiguousarray(tail[:tail.shape[0] - k])))
        entry = self._new_entry(track, 0, reader)
        t = (np.arange(k) + 0.5) / max(k, 1)
        gain_out = np.cos(0.5 * np.pi * t)[:, None]
        gain_in = np.sin(0.5 * np.pi * t)[:, None]
        mixed = (tail[tail.shape[0] - k:] * gain_out + head[:k] * gain_in).astype(np.float32)
        if mixed.shape[0]:
            self._actions.append(("frames", mixed))
        rest = head[k:]
        if self.crossfade_frames and rest.shape[0]:
            entry.tail = rest[-self.crossfade_frames:].copy()
            rest = rest[:-self.crossfade_frames]
        if rest.shape[0]:
            self._actions.append(("frames", np.ascontiguousarray(rest)))

    # -- what the audio thread did ------------------------------------------------------------
    def _poll(self) -> None:
        st = self.stream.status()
        if st.seeks == self._seeks_issued:
            if st.token != self._heard_token:
                self._heard(st.token)
            if self._end_marked and st.state == "ended" and self._write is None and not self._actions:
                self._ended(st)
        if st.underrun_events > self._underruns_reported:
            self._underruns_reported = st.underrun_events
            self._emit("underrun", data={"events": st.underrun_events, "frames": st.underrun_frames})
        if self.queue.version != self._queue_version:
            self._queue_version = self.queue.version
            self._emit("queue", data={"version": self._queue_version})
        self.executor.collect()

    def _heard(self, token: int) -> None:
        """The audio thread has passed the marker of `token`, and of every entry before it
        since the last poll (a track shorter than a poll interval is passed unseen): each
        is reported in order, its snapshot recorded as applied."""
        previous, self._heard_token = self._heard_token, token
        passed = [(t, self._entries[t]) for t in sorted(self._entries) if previous < t <= token]
        for old in [t for t in self._entries if t < token]:
            if self._entries[old] is not self._write:
                del self._entries[old]
        for t, entry in passed:
            self._report_heard(t, entry)
        if self._started is not None and token >= self._started.token:
            self._started = None

    def _report_heard(self, token: int, entry: _Entry) -> None:
        for track, message in entry.errors:
            self._emit("error", track=track, message=message)
        entry.errors = []
        if entry.snapshot is not None:
            self.executor.applied(entry.snapshot)
        if entry.track != self.queue.current and entry.track in self.queue.tracks():
            self.queue.select(self.queue.index_of(entry.track))
            self._queue_version = self.queue.version
        if self._sm.state is PlayerState.LOADING:
            self._sm.transition(PlayerState.PLAYING, track=entry.track)
        if entry.start_frame == 0:
            self._emit("track", track=entry.track,
                       message=f"{entry.track.title}",
                       data={"index": self._index_of(entry.track), "queue_length": len(self.queue),
                             "frames": entry.frames, "sample_rate": self.sample_rate, "token": token})

    def _index_of(self, track: Track) -> int | None:
        try:
            return self.queue.index_of(track)
        except ValueError:
            return None

    def _ended(self, st) -> None:
        self._end_marked = False
        played = st.read_position > self._seek_position
        self._entries.clear()
        self._started = None
        self.stream.set_playing(False)
        if self.queue.peek_following() is None:  # no current track: play() starts the queue over
            self.queue.advance(auto=True)
        self._queue_version = self.queue.version
        for track, message in self._end_errors:
            self._emit("error", track=track, message=message)
        self._end_errors = []
        if played:
            self._to(PlayerState.STOPPED)
        else:
            self._to(PlayerState.ERROR, message="no track of the queue could be played")
        self._emit("end", message="end of queue")

    def _shutdown(self) -> None:
        self._stop_stream()
        if self._sm.state is not PlayerState.STOPPED:
            self._to(PlayerState.STOPPED)
        # An audio thread running the stream carries out the seek and drops the queued
        # markers (their snapshots go back to the executor) itself.  If none advances
        # the stream, they are dropped here.
        before = self.stream.status().frames_out
        for _ in range(50):
            if self.stream.status().seeks == self._seeks_issued:
                break
            threading.Event().wait(0.01)
        st = self.stream.status()
        if st.seeks != self._seeks_issued and st.frames_out == before:
            self.stream.drain()
        self.executor.collect()
