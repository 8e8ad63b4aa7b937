"""Streaming audio file input and atomic output for offline rendering.

Reading: every format libsndfile reads (WAV, FLAC, AIFF, OGG/Vorbis, OPUS, MP3, ...) through
soundfile, block by block; anything else (M4A/AAC/WMA, ...) through ffmpeg streamed as
float32 over a pipe (never a temporary 16-bit file).  Each block is checked for non-finite
samples: offline paths refuse them (ARCHITECTURE invariant 3, predecessor defect ENG-09).

Writing: WAV or FLAC at PCM_16 (TPDF dither, 1 LSB peak each of two uniform sources),
PCM_24 (rounded) or FLOAT (WAV only), into a temporary file beside the target that is
renamed over it only when the whole render succeeded; on any error or Ctrl-C the
temporary file is removed and an existing target is left untouched.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf
from soundfile import _ffi as _sf_ffi, _snd as _sf_lib  # sf_readf_float: see AudioReader.read_raw

from rt_kernels._validate import first_non_finite

SUBTYPES = ("PCM_16", "PCM_24", "FLOAT")
WRITE_FORMATS = {".wav": "WAV", ".flac": "FLAC"}


class AudioInputError(Exception):
    """An input that cannot be read as audio, is empty, or holds non-finite samples."""


class AudioReadError(AudioInputError):
    """The decoder failed part-way (``reason``: libsndfile's words, e.g. a lost sync)."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: read failed ({reason})")
        self.reason = reason


class AudioOutputError(Exception):
    """An output that cannot be written (bad path, format or subtype)."""


@dataclass(frozen=True)
class AudioInfo:
    path: str
    sample_rate: int
    channels: int
    frames: int | None  # None when the decoder cannot tell in advance (ffmpeg streams)
    format: str         # "WAV", "FLAC", ... or "ffmpeg:<codec>"

    @property
    def duration_s(self) -> float | None:
        return None if self.frames is None else self.frames / self.sample_rate


def check_finite(path: str, block: np.ndarray, first_frame: int) -> None:
    """AudioInputError naming the first non-finite sample of a (frames, channels) block
    that starts at ``first_frame`` of the file."""
    bad = first_non_finite(block)
    if bad is not None:
        frame, channel = bad
        raise AudioInputError(
            f"{path}: non-finite sample ({block[frame, channel]}) at frame {first_frame + frame}, "
            f"channel {channel + 1}; refusing to process it"
        )


class AudioReader:
    """Reads a file in blocks of float32 frames x channels.  Use as a context manager."""

    def __init__(self, path: str | os.PathLike):
        self.path = str(path)
        p = Path(self.path)
        if not p.exists():
            raise AudioInputError(f"{self.path}: no such file")
        if p.is_dir():
            raise AudioInputError(f"{self.path}: is a directory, not an audio file")
        self._sf: sf.SoundFile | None = None
        self._proc: subprocess.Popen | None = None
        try:
            self._sf = sf.SoundFile(self.path)
        except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
            self.info = self._probe_ffmpeg(str(exc))
        else:
            self.info = AudioInfo(self.path, self._sf.samplerate, self._sf.channels,
                                  self._sf.frames, self._sf.format)
        if self.info.frames == 0:
            self.close()
            raise AudioInputError(f"{self.path}: holds no audio frames")

    def _probe_ffmpeg(self, sndfile_error: str) -> AudioInfo:
        if not shutil.which("ffprobe") or not shutil.which("ffmpeg"):
            raise AudioInputError(f"{self.path}: not readable by libsndfile ({sndfile_error}) and ffmpeg is not installed")
        probe = subprocess.run(
            ["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
             "stream=codec_name,sample_rate,channels", "-of", "json", self.path],
            capture_output=True, text=True, timeout=60)
        streams = json.loads(probe.stdout or "{}").get("streams", []) if probe.returncode == 0 else []
        if not streams:
            raise AudioInputError(f"{self.path}: cannot be read as audio (not a format libsndfile or ffmpeg knows, "
                                  f"or the file is corrupt)")
        stream = streams[0]
        return AudioInfo(self.path, int(stream["sample_rate"]), int(stream["channels"]), None,
                         f"ffmpeg:{stream.get('codec_name', '?')}")

    def read_raw(self, frames: int) -> np.ndarray:
        """Up to ``frames`` float32 frames (frames, channels) from libsndfile, not checked
        for finiteness; fewer only at the end.  Calls sf_readf_float directly: soundfile's
        read() seeks back to the current position after every read, and in libsndfile
        1.2.2 that seek restarts the MP3 decoder (wrong samples for mono MP3s at any read
        size, for stereo ones at sizes that are not multiples of 1152).  Read directly,
        any block size gives what one whole-file read gives."""
        if self._sf is None:
            raise AudioInputError(f"{self.path}: read_raw needs a libsndfile source (this one is decoded by ffmpeg)")
        block = np.empty((frames, self.info.channels), np.float32)
        got = _sf_lib.sf_readf_float(self._sf._file, _sf_ffi.cast("float *", block.ctypes.data), frames)
        if got < frames and _sf_lib.sf_error(self._sf._file):
            message = _sf_ffi.string(_sf_lib.sf_strerror(self._sf._file)).decode(errors="replace")
            raise AudioReadError(self.path, message)
        return block[:max(got, 0)]

    def blocks(self, block_frames: int) -> Iterator[np.ndarray]:
        """Yield float32 arrays shaped (frames, channels); the last may be shorter."""
        if self._sf is None:
            yield from self._ffmpeg_blocks(block_frames)
            return
        done = 0
        while True:
            try:
                block = self.read_raw(block_frames)
            except AudioReadError as exc:
                raise AudioInputError(f"{self.path}: read failed after {done} frames ({exc.reason})") from None
            if block.shape[0] == 0:
                break
            check_finite(self.path, block, done)
            done += block.shape[0]
            yield block
            if block.shape[0] < block_frames:
                break
        if done == 0:
            raise AudioInputError(f"{self.path}: holds no audio frames")

    def _ffmpeg_blocks(self, block_frames: int) -> Iterator[np.ndarray]:
        channels = self.info.channels
        self._proc = subprocess.Popen(
            ["ffmpeg", "-nostdin", "-v", "error", "-i", self.path, "-map", "0:a:0", "-f", "f32le",
             "-acodec", "pcm_f32le", "-ac", str(channels), "-ar", str(self.info.sample_rate), "pipe:1"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        frame_bytes = 4 * channels
        done = 0
        assert self._proc.stdout is not None
        while True:
            raw = self._proc.stdout.read(block_frames * frame_bytes)
            if not raw:
                break
            usable = len(raw) - len(raw) % frame_bytes
            block = np.frombuffer(raw[:usable], dtype="<f4").astype(np.float32).reshape(-1, channels)
            check_finite(self.path, block, done)
            done += block.shape[0]
            yield block
        err = self._proc.stderr.read().decode(errors="replace").strip() if self._proc.stderr else ""
        if self._proc.wait() != 0:
            raise AudioInputError(f"{self.path}: ffmpeg failed after {done} frames ({err.splitlines()[-1] if err else 'no message'})")
        if done == 0:
            raise AudioInputError(f"{self.path}: holds no audio frames")

    def close(self) -> None:
        if self._sf is not None:
            self._sf.close()
            self._sf = None
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait()
            for stream in (self._proc.stdout, self._proc.stderr):
                if stream:
                    stream.close()
            self._proc = None

    def __enter__(self) -> "AudioReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_all(path: str | os.PathLike, block_frames: int = 65536) -> tuple[np.ndarray, int]:
    """The whole file as float32 (frames, channels) and its sample rate (for tests and analysis)."""
    with AudioReader(path) as reader:
        blocks = list(reader.blocks(block_frames))
        return np.concatenate(blocks, axis=0), reader.info.sample_rate


def check_output(path: Path, subtype: str) -> tuple[str, Path]:
    """Refuse, in one line, an output that cannot be written as asked; returns the
    libsndfile format and the directory the file will be written in."""
    fmt = WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise AudioOutputError(f"{path}: output must end in {' or '.join(WRITE_FORMATS)}")
    if subtype not in SUBTYPES:
        raise AudioOutputError(f"{path}: subtype {subtype!r} is not one of {', '.join(SUBTYPES)}")
    if fmt == "FLAC" and subtype == "FLOAT":
        raise AudioOutputError(f"{path}: FLAC cannot hold FLOAT samples; use PCM_16 or PCM_24")
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise AudioOutputError(f"{path}: directory {directory} does not exist")
    if not os.access(directory, os.W_OK):
        raise AudioOutputError(f"{path}: directory {directory} is not writable")
    if path.is_dir():
        raise AudioOutputError(f"{path}: is a directory")
    return fmt, directory


class AtomicWriter:
    """Writes a WAV/FLAC file through a temporary file that replaces the target on commit().

    Use as a context manager: leaving the block without commit() (an exception, Ctrl-C)
    deletes the temporary file and leaves any existing target as it was.
    """

    def __init__(self, path: str | os.PathLike, sample_rate: int, channels: int, subtype: str = "PCM_24",
                 dither_seed: int = 0, background: bool = False):
        """``background``: quantise and write on a thread of the writer's own (at most two
        blocks queued), so encoding overlaps the caller's work; write() keeps a reference
        to each block, which must not change afterwards.  An error on that thread is
        raised by the next write() or by commit()."""
        self.path = Path(path)
        fmt, directory = check_output(self.path, subtype)
        self.subtype = subtype
        self.channels = channels
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".partial", dir=directory)
        os.close(fd)
        self._tmp = Path(tmp)
        self._rng = np.random.default_rng(dither_seed)
        try:
            self._sf = sf.SoundFile(self._tmp, "w", samplerate=sample_rate, channels=channels,
                                    subtype=subtype, format=fmt)
        except Exception as exc:
            self._tmp.unlink(missing_ok=True)
            raise AudioOutputError(f"{self.path}: cannot open for writing ({exc})") from exc
        self.frames_written = 0
        self._done = False
        self._queue: queue.Queue | None = None
        self._failed: BaseException | None = None
        if background:
            self._queue = queue.Queue(maxsize=2)
            self._thread = threading.Thread(target=self._drain, name=f"write {self.path.name}", daemon=True)
            self._thread.start()

    def write(self, block: np.ndarray) -> None:
        """Write float32 (frames, channels) samples (nominal range [-1, 1))."""
        if self._queue is None:
            self._encode(block)
        else:
            self._raise_failure()
            self._queue.put(block)
        self.frames_written += block.shape[0]

    def _encode(self, block: np.ndarray) -> None:
        if self.subtype == "PCM_16":
            noise = self._rng.random(block.shape) - self._rng.random(block.shape)  # TPDF, +-1 LSB
            data = np.clip(np.round(block.astype(np.float64) * 32768.0 + noise), -32768, 32767).astype(np.int16)
        elif self.subtype == "PCM_24":
            # In float32, exactly as in float64: scaling by 2^23 is exact, and rounding to
            # an integer is exact below 2^24 (above, every float32 already is one).
            scaled = np.multiply(block, np.float32(8388608.0), dtype=np.float32)
            np.rint(scaled, out=scaled)
            np.clip(scaled, -8388608.0, 8388607.0, out=scaled)
            data = scaled.astype(np.int32)
            data <<= 8
        else:
            data = np.ascontiguousarray(block, dtype=np.float32)
        self._sf.write(data)

    def _drain(self) -> None:
        while True:
            block = self._queue.get()
            if block is None:
                return
            if self._failed is None:
                try:
                    self._encode(block)
                except BaseException as exc:  # kept for the caller's thread; the queue still drains
                    self._failed = exc

    def _stop(self) -> None:
        if self._queue is not None:
            self._queue.put(None)
            self._thread.join()
            self._queue = None

    def _raise_failure(self) -> None:
        if self._failed is not None:
            raise AudioOutputError(f"{self.path}: write failed ({self._failed})") from self._failed

    def commit(self) -> None:
        self._stop()
        self._raise_failure()
        self._sf.close()
        os.replace(self._tmp, self.path)
        self._done = True

    def abort(self) -> None:
        if not self._done:
            self._stop()
            self._sf.close()
            self._tmp.unlink(missing_ok=True)
            self._done = True

    def __enter__(self) -> "AtomicWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None or not self._done:
            self.abort()
