"""Offline rendering: a file (or an array) through the same C executor the live backends run.

The executor delays its output by the plan's latency.  Rendering drops that many frames
from the start of the output and feeds as many frames of silence after the input, so
the result is aligned with the input and exactly as long (predecessor defects ENG-04,
ENG-08).  Memory stays bounded: one block in flight whatever the file length.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from typing import Callable, Iterable, Iterator, Protocol

import numpy as np


class BlockProcessor(Protocol):
    """What rendering needs of an executor (graph.runtime.Executor is one)."""

    channels: int

    @property
    def latency_frames(self) -> int: ...

    def process(self, block: np.ndarray) -> np.ndarray: ...


def render_blocks(processor: BlockProcessor, blocks: Iterable[np.ndarray],
                  emit: Callable[[np.ndarray], None], flush_block: int = 65536) -> int:
    """Push (frames, channels) float32 blocks through `processor`; `emit` receives the
    aligned output in (frames, channels) pieces.  Returns the frame count, which is the
    same going in and coming out."""
    latency = processor.latency_frames
    to_drop = latency
    frames_in = 0
    frames_out = 0

    def take(out_planar: np.ndarray, owed: int | None = None) -> None:
        nonlocal to_drop, frames_out
        out = out_planar.T
        if to_drop:
            skip = min(to_drop, out.shape[0])
            out, to_drop = out[skip:], to_drop - skip
        if owed is not None:
            out = out[:owed]
        if out.shape[0]:
            emit(out)
            frames_out += out.shape[0]

    for block in blocks:
        if block.shape[0] == 0:
            continue
        frames_in += block.shape[0]
        take(processor.process(np.ascontiguousarray(block.T, dtype=np.float32)))
    # Flush: the last `latency` frames of output are still inside the executor.
    while frames_out < frames_in:
        owed = frames_in - frames_out
        pad = min(flush_block, max(owed + to_drop, 1))
        take(processor.process(np.zeros((processor.channels, pad), np.float32)), owed=owed)
    if frames_out != frames_in:  # a broken invariant, never a user error
        raise RuntimeError(f"render produced {frames_out} frames for {frames_in} in")
    return frames_out


def render_array(processor: BlockProcessor, audio: np.ndarray, block_size: int) -> np.ndarray:
    """(frames, channels) float32 in, the same shape out, processed in blocks of `block_size`."""
    pieces: list[np.ndarray] = []
    blocks = (audio[i:i + block_size] for i in range(0, audio.shape[0], block_size))
    render_blocks(processor, blocks, lambda out: pieces.append(np.array(out, dtype=np.float32)))
    if not pieces:
        return np.zeros_like(audio, dtype=np.float32)
    return np.ascontiguousarray(np.concatenate(pieces, axis=0))


def prefetched(blocks: Iterable[np.ndarray], depth: int = 2) -> Iterator[np.ndarray]:
    """The same blocks, produced `depth` ahead on a thread (decoding in libsndfile releases
    the GIL, so reading overlaps the caller's processing).  An exception in the producer
    is raised here at the point it happened; closing this generator early stops the
    producer and closes `blocks`."""
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        source = iter(blocks)
        try:
            for block in source:
                while not stop.is_set():
                    try:
                        ready.put((block, None), timeout=0.05)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            ready.put((done, None))
        except BaseException as exc:  # handed to the consumer, raised there
            ready.put((done, exc))
        finally:
            close = getattr(source, "close", None)
            if close:
                close()

    thread = threading.Thread(target=produce, name="prefetch", daemon=True)
    thread.start()
    try:
        while True:
            block, exc = ready.get()
            if block is done:
                if exc is not None:
                    raise exc
                return
            yield block
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                ready.get(timeout=0.05)
            except queue.Empty:
                pass
        thread.join()


class Progress:
    """A one-line progress display on a terminal (silent otherwise)."""

    def __init__(self, label: str, total_frames: int | None, sample_rate: int, stream=None):
        self.stream = stream or sys.stderr
        self.enabled = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.label, self.total, self.rate = label, total_frames, sample_rate
        self.done = 0
        self._last = 0.0

    def advance(self, frames: int) -> None:
        self.done += frames
        now = time.monotonic()
        if self.enabled and now - self._last > 0.1:
            self._last = now
            seconds = self.done / self.rate
            if self.total:
                fraction = min(1.0, self.done / self.total)
                bar = "#" * int(30 * fraction)
                self.stream.write(f"\r{self.label} [{bar:<30s}] {100 * fraction:5.1f}% {seconds:7.1f} s")
            else:
                self.stream.write(f"\r{self.label} {seconds:7.1f} s")
            self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r" + " " * 70 + "\r")
            self.stream.flush()
