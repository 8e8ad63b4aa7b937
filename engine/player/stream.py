"""The C stream source (rt_kernels/csrc/stream_source.c) seen from Python.

A lock-free ring of interleaved float32 frames between one producer thread (the
player's decoder) and the audio thread, in front of an optional graph Executor:

    stream = Stream(2, capacity_frames=96000, executor=executor)
    backend.set_process(stream.process_fn, stream.process_ctx, keep_alive=stream)
    stream.seek(fade_in=False)                  # producer: skip what is there
    stream.mark_track(token=1, snapshot=executor.prepare({...}))
    stream.write(frames)                        # (frames, channels) float32; returns frames taken
    stream.set_playing(True)                    # any thread
    stream.status().read_position               # lock-free (seqlock)

Threads: ``write``, ``mark_*``, ``seek`` belong to ONE producer thread;
``set_playing`` and ``status`` to any thread; ``process`` (offline tests) stands
in for the audio thread; ``drain`` only while no audio thread runs the stream.
Every C call releases the GIL (cffi), so ``write`` never stalls the audio thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rt_kernels import _validate as check
from rt_kernels._ffi import channel_pointers, denormals_off, ffi, lib

STATES = {int(lib.RT_STREAM_LOADING): "loading", int(lib.RT_STREAM_RUNNING): "running",
          int(lib.RT_STREAM_STARVED): "starved", int(lib.RT_STREAM_ENDED): "ended"}


@dataclass(frozen=True)
class StreamStatus:
    """The audio thread's view at the end of its last process call (positions in frames)."""

    read_position: int      # frames taken from the ring since creation
    write_position: int     # frames the producer had written
    token: int              # token of the last track marker passed (0: none)
    marker_position: int    # its stream position
    track_frame: int        # the track's frame at marker_position
    underrun_events: int    # times the ring ran dry while playing
    underrun_frames: int    # frames of silence output while starved and playing
    markers_passed: int
    markers_dropped: int    # skipped by seeks
    seeks: int              # seeks carried out
    frames_out: int         # frames produced
    frames_played: int      # of those, frames taken from the ring
    state: str              # loading / running / starved / ended
    fade_position: int      # 0 (silent) .. fade_frames (full level), while running
    playing: bool
    seek_pending: bool

    @property
    def frame_in_track(self) -> int:
        """The current track's frame at the read position."""
        return self.track_frame + (self.read_position - self.marker_position)

    @property
    def buffered_frames(self) -> int:
        return self.write_position - self.read_position


class Stream:
    """An ``rt_stream``.  ``channels``: interleaved frame width (= the executor's
    channels).  ``capacity_frames``: ring size (rounded up to a power of two).
    ``max_block``: largest chunk handed to the executor.  ``marker_capacity``:
    markers in flight.  ``fade_frames``: pause/seek/underrun-recovery fade length.
    ``executor``: a graph Executor the stream feeds (None: ring straight to the output)."""

    def __init__(self, channels: int, *, capacity_frames: int, max_block: int = 1024, marker_capacity: int = 256,
                 fade_frames: int = 240, executor: Any = None):
        where = "Stream"
        self.channels = check.channels(where, channels)
        check.count(where, "capacity_frames", capacity_frames, 1, 1 << 26)
        self.max_block = check.count(where, "max_block", max_block, 1, 1 << 20)
        check.count(where, "marker_capacity", marker_capacity, 1, 1 << 16)
        self.fade_frames = check.count(where, "fade_frames", fade_frames, 0, 1 << 20)
        if executor is not None and executor.channels != self.channels:
            raise ValueError(f"{where}: the executor has {executor.channels} channels, the stream {self.channels}")
        self.executor = executor
        s = lib.rt_stream_create(self.channels, capacity_frames, self.max_block, marker_capacity, self.fade_frames,
                                 executor.c_executor if executor is not None else ffi.NULL)
        if s == ffi.NULL:
            raise MemoryError("Stream: rt_stream_create failed")
        self._s = ffi.gc(s, lib.rt_stream_destroy)
        self.capacity_frames = int(lib.rt_stream_capacity(s))
        self._status = ffi.new("rt_stream_status *")

    # -- for backends ------------------------------------------------------------
    @property
    def process_fn(self):
        """``rt_stream_process`` as a ``void *`` for ``backend.set_process``."""
        return ffi.cast("void *", ffi.addressof(lib, "rt_stream_process"))

    @property
    def process_ctx(self):
        """The ``rt_stream *`` (keep this Stream alive while a backend runs it)."""
        return self._s

    # -- producer (one thread) -----------------------------------------------------
    def write(self, frames: np.ndarray) -> int:
        """Copy up to ``len(frames)`` interleaved frames (shape (frames, channels),
        float32, C-contiguous) into the ring; returns how many it took (0 when full)."""
        if not isinstance(frames, np.ndarray) or frames.dtype != np.float32:
            raise TypeError(f"Stream.write: frames must be a float32 ndarray, got "
                            f"{getattr(frames, 'dtype', type(frames).__name__)}")
        if frames.ndim != 2 or frames.shape[1] != self.channels or not frames.flags.c_contiguous:
            raise ValueError(f"Stream.write: frames must be C-contiguous (frames, {self.channels}), "
                             f"got shape {frames.shape}")
        if frames.shape[0] == 0:
            return 0
        n = min(frames.shape[0], 1 << 30)
        return int(lib.rt_stream_write(self._s, ffi.from_buffer("float[]", frames), n))

    @property
    def writable(self) -> int:
        """Free room in frames."""
        return int(lib.rt_stream_writable(self._s))

    @property
    def write_position(self) -> int:
        return int(lib.rt_stream_write_position(self._s))

    @property
    def nonfinite_samples(self) -> int:
        """Samples that were NaN/Inf on write (stored as 0)."""
        return int(lib.rt_stream_nonfinite_samples(self._s))

    @property
    def marker_room(self) -> int:
        """Free marker slots (only grows until this thread marks again)."""
        return int(lib.rt_stream_marker_room(self._s))

    def mark_track(self, token: int, track_frame: int = 0, snapshot: Any = None) -> bool:
        """Track ``token`` starts at the write position, whose frame is the track's
        ``track_frame``; ``snapshot`` (Executor.prepare) is applied right before that
        frame.  False when the marker ring is full (try again once the audio thread
        has played on)."""
        block = ffi.NULL
        if snapshot is not None:
            if self.executor is None:
                raise ValueError("Stream.mark_track: a parameter snapshot needs a stream with an executor")
            block = snapshot.pointer
        return lib.rt_stream_mark(self._s, lib.RT_STREAM_MARK_TRACK, token, track_frame, block) == 0

    def mark_end(self) -> bool:
        """The stream ends at the write position.  False when the marker ring is full."""
        return lib.rt_stream_mark(self._s, lib.RT_STREAM_MARK_END, 0, 0, ffi.NULL) == 0

    def seek(self, fade_in: bool) -> None:
        """Skip everything written so far (the audio thread fades out, jumps, fades in
        if ``fade_in``).  Then write what is to be played from here on."""
        lib.rt_stream_seek(self._s, bool(fade_in))

    # -- control (any thread) ------------------------------------------------------
    def set_playing(self, playing: bool) -> None:
        lib.rt_stream_set_playing(self._s, bool(playing))

    def status(self) -> StreamStatus:
        if lib.rt_stream_read_status(self._s, self._status) != 0:
            raise RuntimeError("Stream.status: no consistent snapshot (the audio thread kept writing)")
        t = self._status
        return StreamStatus(int(t.read_position), int(t.write_position), int(t.token), int(t.marker_position),
                            int(t.track_frame), int(t.underrun_events), int(t.underrun_frames),
                            int(t.markers_passed), int(t.markers_dropped), int(t.seeks), int(t.frames_out),
                            int(t.frames_played), STATES.get(int(t.state), "?"), int(t.fade_position),
                            bool(t.playing), bool(t.seek_pending))

    def drain(self) -> int:
        """Not while an audio thread runs the stream: drop the markers still queued
        (their snapshots go back to the executor's collect()).  Returns how many."""
        n = int(lib.rt_stream_drain(self._s))
        if self.executor is not None:
            self.executor.collect()
        return n

    # -- offline (tests): stands in for the audio thread ------------------------------
    def process(self, frames: int) -> np.ndarray:
        """Run the audio side for ``frames`` frames; returns (channels, frames) float32."""
        frames = check.count("Stream.process", "frames", frames, 0, 1 << 26)
        out = np.empty((self.channels, frames), np.float32)
        with denormals_off():
            lib.rt_stream_process(self._s, ffi.NULL, channel_pointers(out), frames)
        return out
