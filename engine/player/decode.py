"""One track, decoded, downmixed and resampled for the engine (runs on the decoder thread).

    with open_track("song.flac", sample_rate=48000) as track:
        while (block := track.read(4096)).shape[0]:
            ...                     # float32 (frames, 2), C-contiguous, at 48 kHz

Reading.  Files are opened with engine.audio_io.AudioReader: libsndfile for WAV, FLAC,
AIFF, OGG/Vorbis, OPUS and MP3, ffmpeg streamed through a pipe for everything else
(M4A/AAC/WMA, ...).  libsndfile files are read with sf_readf_float directly: soundfile's
own read() seeks back to "where it is" after every read, and in libsndfile 1.2.2 that
seek re-primes the MP3 decoder, which corrupts the samples (mono MP3s for every read
size; stereo for reads that are not multiples of 1152 frames).  Read directly, every
block size gives exactly what one whole-file read gives.

Channels.  Mono plays as stereo with L = R = the mono samples, bit for bit (no level
change, predecessor defect ENG-01).  Stereo is untouched.  More channels are folded down
per ITU-R BS.775 (see downmix_matrix): centre and surrounds at -3 dB, LFE dropped.  The
layout is taken from the channel count (WAV channel masks are not read): WAV/SMPTE order
for WAV, FLAC, AIFF, MP3 and whatever ffmpeg decodes, Vorbis order (L C R ...) for Ogg
Vorbis and Opus, which libsndfile returns as stored.  The fold-down is not normalised: a
5.1 mix keeps its front level, and in-phase full-scale content in several channels can
exceed 0 dBFS.  Float carries such overs losslessly to the mastering chain's limiter; pass
normalize_downmix=True to scale the matrix so that no output can exceed the largest input.

Resampling.  Only when the file's rate differs from the engine's (same rate: the samples
are untouched).  soxr's streaming resampler at quality "VHQ": its error on a 997 Hz sine,
44.1 -> 48 kHz, is -151 dB, the float32 floor (HQ: -134 dB), for ~1.4x HQ's cost, still
over 1000x real time for stereo here.  Measured and tested: ResampleStream fed in chunks
of any size (1, 7, 256, 4096 frames ...) gives the same samples, bit for bit, as the whole
file fed at once, which is what decode_offline() does; so streaming == offline exactly.
Output length of a whole file: floor(n * out / in + 1/2) frames (soxr's, verified).

Seeking.  seek(frame) counts engine-rate frames.  Same rate: the file is positioned at
exactly that frame.  For MP3 and Ogg (Vorbis/Opus) the decoder is started 9216 frames
earlier and the lead-in dropped, because libsndfile's MP3 seek alone gives a few hundred
to a few thousand wrong samples after the landing point; with the lead-in the samples
equal a continuous decode (stereo MP3 and Vorbis bit for bit; Opus and mono MP3 within
3e-7, i.e. -130 dBFS).  M4A/AAC/WMA (ffmpeg): restarted and decoded from the start up to the frame
(exact; costs the decode time of the skipped audio, ~750x real time here).
Resampled: the resampler restarts at a source frame that falls exactly on an engine-rate
frame (a multiple of in/gcd(in, out) frames), at least max(1024, in/20) source frames
before the target, and the output before the target is dropped.  The landing error is
therefore zero frames, and the samples equal decode_offline()[frame:] bit for bit for
44.1/22.05 <-> 48 kHz (within 1e-7 for 96k/8k -> 48k; ratios with a tiny gcd such as
44056 -> 48000 use soxr's irrational mode, within 1e-5).
"""

from __future__ import annotations

import math
import operator
import os
from collections import deque
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from engine.audio_io import AudioInputError, AudioReader, AudioReadError, check_finite

RESAMPLER_QUALITY = "VHQ"
# Source frames decoded and dropped before a seek target, per libsndfile format, so the
# decoder state at the target equals that of a continuous decode (MP3 bit reservoir and
# overlap, Opus/Vorbis pre-roll of 80 ms and more).  Lossless formats seek exactly.
CODEC_SEEK_PREROLL_FRAMES = {"MP3": 9216, "OGG": 9216}
# Smallest source read (frames): fewer Python round trips when the caller reads small blocks.
_MIN_SOURCE_READ = 2048
_FFMPEG_BLOCK = 8192

_G = 1.0 / math.sqrt(2.0)  # -3 dB
# Gain of each channel role into (left, right), ITU-R BS.775 fold-down to 2/0.
_ROLE_GAINS = {
    "M": (1.0, 1.0), "L": (1.0, 0.0), "R": (0.0, 1.0), "C": (_G, _G), "LFE": (0.0, 0.0),
    "Ls": (_G, 0.0), "Rs": (0.0, _G),      # side (or only) surrounds
    "Lb": (_G, 0.0), "Rb": (0.0, _G),      # back surrounds of 7.1: like the sides
    "Cs": (0.5, 0.5),                      # back centre of 6.1: split -3 dB into Ls/Rs, then -3 dB
}
# Channel roles by count.  WAV/SMPTE order (WAV, FLAC, AIFF, MP3, ffmpeg output):
# 3 = L R C, 4 = quad L R Ls Rs, 5 = 5.0, 6 = 5.1, 7 = 6.1 (back centre), 8 = 7.1.
LAYOUTS_WAV = {
    1: ("M",), 2: ("L", "R"), 3: ("L", "R", "C"), 4: ("L", "R", "Ls", "Rs"),
    5: ("L", "R", "C", "Ls", "Rs"), 6: ("L", "R", "C", "LFE", "Ls", "Rs"),
    7: ("L", "R", "C", "LFE", "Cs", "Ls", "Rs"), 8: ("L", "R", "C", "LFE", "Lb", "Rb", "Ls", "Rs"),
}
# Vorbis I channel order (Ogg Vorbis and Opus mapping family 1).
LAYOUTS_VORBIS = {
    1: ("M",), 2: ("L", "R"), 3: ("L", "C", "R"), 4: ("L", "R", "Ls", "Rs"),
    5: ("L", "C", "R", "Ls", "Rs"), 6: ("L", "C", "R", "Ls", "Rs", "LFE"),
    7: ("L", "C", "R", "Ls", "Rs", "Cs", "LFE"), 8: ("L", "C", "R", "Ls", "Rs", "Lb", "Rb", "LFE"),
}
_ORDERS = {"wav": LAYOUTS_WAV, "vorbis": LAYOUTS_VORBIS}


class TrackError(Exception):
    """A track that cannot be played: one line naming the file ("track song.flac: ...")."""


def downmix_matrix(source_channels: int, channels: int, *, order: str = "wav",
                   normalize: bool = False) -> np.ndarray:
    """Gains (source_channels, channels): output[:, j] = sum_i input[:, i] * M[i, j].

    channels == 2: mono -> L = R = mono (gain 1); stereo unchanged; 3 to 8 channels per
    ITU-R BS.775 (L' = L + 0.707 C + 0.707 Ls, LFE dropped; 6.1's back centre goes to
    both sides at 0.5; 7.1's back surrounds go to their side at 0.707 like the side
    surrounds).  channels == 1: the mean of that stereo fold-down (mono stays mono).
    channels == source_channels (> 2): the identity, reordered to WAV order.
    `order` is the file's channel order, "wav" or "vorbis".  normalize=True scales the
    whole matrix so that no output's gains sum (in magnitude) above 1: no overs, at the
    cost of level (5.1 -> 2.0: -7.7 dB).
    """
    layouts = _ORDERS.get(order)
    if layouts is None:
        raise ValueError(f"downmix: channel order {order!r} is not one of {', '.join(_ORDERS)}")
    if source_channels < 1 or channels < 1:
        raise ValueError(f"downmix: channel counts must be >= 1 (got {source_channels} -> {channels})")
    if source_channels == channels and channels <= 2:
        matrix = np.eye(channels)
    elif source_channels not in layouts:
        raise ValueError(f"downmix: no layout known for {source_channels} channels (1 to 8 are)")
    elif channels == source_channels:
        wav_roles = LAYOUTS_WAV[channels]
        matrix = np.zeros((channels, channels))
        for i, role in enumerate(layouts[source_channels]):
            matrix[i, wav_roles.index(role)] = 1.0
    elif channels in (1, 2):
        stereo = np.array([_ROLE_GAINS[role] for role in layouts[source_channels]], dtype=np.float64)
        matrix = stereo if channels == 2 else stereo.mean(axis=1, keepdims=True)
    else:
        raise ValueError(f"downmix: no rule from {source_channels} to {channels} channels "
                         f"(the engine plays 1, 2 or the file's own count)")
    if normalize:
        peak_gain = np.abs(matrix).sum(axis=0).max()
        if peak_gain > 1.0:
            matrix = matrix / peak_gain
    return matrix


class _Downmix:
    """Applies a downmix matrix the same way whatever the block size (bit-reproducible).

    Each output channel is a fixed sequence of float64 multiply-adds over the inputs
    with a non-zero gain (no BLAS, whose summation order may depend on the block shape),
    rounded once to float32.  A gain of exactly 1 from a single input is a plain copy.
    """

    def __init__(self, matrix: np.ndarray):
        self.channels = matrix.shape[1]
        self.identity = matrix.shape[0] == matrix.shape[1] and np.array_equal(matrix, np.eye(matrix.shape[0]))
        self.terms = [[(i, float(g)) for i, g in enumerate(matrix[:, j]) if g != 0.0]
                      for j in range(self.channels)]

    def __call__(self, block: np.ndarray) -> np.ndarray:
        if self.identity:
            return block
        out = np.empty((block.shape[0], self.channels), np.float32)
        for j, terms in enumerate(self.terms):
            if not terms:
                out[:, j] = 0.0
            elif len(terms) == 1 and terms[0][1] == 1.0:
                out[:, j] = block[:, terms[0][0]]
            else:
                acc = np.zeros(block.shape[0], np.float64)
                for i, gain in terms:
                    acc += block[:, i].astype(np.float64) * gain
                out[:, j] = acc
        return out


def _resampled_length(frames: int, source_rate: int, rate: int) -> int:
    """soxr's output length for a whole input: floor(frames * rate / source_rate + 1/2)."""
    return (2 * frames * rate + source_rate) // (2 * source_rate)


def _reason(path: str, exc: AudioInputError) -> str:
    """AudioReader's message without its leading "path: "."""
    text = str(exc)
    return text[len(path) + 2:] if text.startswith(path + ": ") else text


class _SndfileSource:
    """Source-rate float32 frames from libsndfile, read with sf_readf_float (see module doc)."""

    def __init__(self, track_label: str, reader: AudioReader):
        self._label = track_label
        self._reader = reader
        self._sf = reader._sf
        self.channels = reader.info.channels
        self.frames = reader.info.frames
        self._preroll = CODEC_SEEK_PREROLL_FRAMES.get(reader.info.format, 0)
        self.position = 0
        self.at_end = False

    def _read_raw(self, frames: int) -> np.ndarray:
        try:
            block = self._reader.read_raw(frames)
        except AudioReadError as exc:
            raise TrackError(f"{self._label}: read failed after {self.position} frames ({exc.reason})") from None
        if block.shape[0] < frames:
            self.at_end = True
        return block

    def read(self, frames: int) -> np.ndarray:
        block = self._read_raw(frames)
        try:
            check_finite(self._reader.path, block, self.position)
        except AudioInputError as exc:
            raise TrackError(f"{self._label}: {_reason(self._reader.path, exc)}") from None
        self.position += block.shape[0]
        return block

    @property
    def missing_frames(self) -> int:
        """Frames the header announced that the decoder did not deliver (at the end)."""
        return max(0, self.frames - self.position) if self.at_end else 0

    def seek(self, frame: int) -> None:
        frame = min(frame, self.frames)
        start = max(0, frame - self._preroll)
        try:
            self._sf.seek(start)
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise TrackError(f"{self._label}: cannot seek to frame {start} ({exc})") from None
        self.position = start
        self.at_end = False
        while self.position < frame:  # the decoder's lead-in: decoded, never played
            got = self._read_raw(min(frame - self.position, 65536)).shape[0]
            self.position += got
            if got == 0:
                break


class _FfmpegSource:
    """Source-rate float32 frames from AudioReader's ffmpeg pipe; seek restarts the decode."""

    def __init__(self, track_label: str, path: str, reader: AudioReader):
        self._label = track_label
        self._path = path
        self._reader = reader
        self.channels = reader.info.channels
        self.frames = None
        self._start()

    def _start(self) -> None:
        self._blocks = self._reader.blocks(_FFMPEG_BLOCK)
        self._pending = np.empty((0, self.channels), np.float32)
        self.position = 0
        self.at_end = False

    def read(self, frames: int) -> np.ndarray:
        parts, have = [], 0
        while have < frames and not self.at_end:
            if self._pending.shape[0] == 0:
                try:
                    self._pending = next(self._blocks)
                except StopIteration:
                    self.at_end = True
                    break
                except AudioInputError as exc:
                    raise TrackError(f"{self._label}: {_reason(self._path, exc)}") from None
            take = min(frames - have, self._pending.shape[0])
            parts.append(self._pending[:take])
            self._pending = self._pending[take:]
            have += take
        self.position += have
        if not parts:
            return np.empty((0, self.channels), np.float32)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def seek(self, frame: int) -> None:
        self._reader.close()
        try:
            self._reader = AudioReader(self._path)
        except AudioInputError as exc:
            raise TrackError(f"{self._label}: {_reason(self._path, exc)}") from None
        self._start()
        while self.position < frame and not self.at_end:
            self.read(min(frame - self.position, 1 << 16))

    def close(self) -> None:
        self._reader.close()


class TrackReader:
    """A decoded track at the engine's rate and channel count.  Not thread-safe: one
    reader belongs to one decoder thread.  Use as a context manager.

    Attributes: path, source_rate, source_channels, source_frames (None for ffmpeg
    streams), format ("FLAC", "MP3", "ffmpeg:aac", ...), sample_rate and channels (the
    engine's), frames and position (engine-rate frames, see `frames`).
    """

    def __init__(self, path, sample_rate: int, channels: int = 2, *, start_frame: int = 0,
                 normalize_downmix: bool = False):
        self.path = os.fspath(path) if not isinstance(path, str) else path
        self._label = f"track {self.path}"
        sample_rate, channels = operator.index(sample_rate), operator.index(channels)
        if sample_rate <= 0 or channels <= 0:
            raise ValueError(f"{self._label}: engine rate {sample_rate} Hz / {channels} channels must be positive")
        self.sample_rate = sample_rate
        self.channels = channels
        self._closed = True
        try:
            reader = AudioReader(self.path)
        except AudioInputError as exc:
            raise TrackError(f"{self._label}: {_reason(self.path, exc)}") from None
        info = reader.info
        if info.sample_rate <= 0 or info.channels <= 0:
            # ffprobe "finds" a stream with 0 channels at 0 Hz in an empty .flac file.
            reader.close()
            raise TrackError(f"{self._label}: not a readable audio file ({info.format} stream with "
                             f"{info.channels} channels at {info.sample_rate} Hz)")
        self.source_rate = info.sample_rate
        self.source_channels = info.channels
        self.source_frames = info.frames
        self.format = info.format
        order = "wav"  # also what ffmpeg outputs, whatever the container stores
        if reader._sf is not None:
            if info.format == "OGG" and reader._sf.subtype in ("VORBIS", "OPUS"):
                order = "vorbis"
            self._source = _SndfileSource(self._label, reader)
        else:
            self._source = _FfmpegSource(self._label, self.path, reader)
        self._reader_to_close = reader
        self._closed = False
        try:
            matrix = downmix_matrix(self.source_channels, channels, order=order, normalize=normalize_downmix)
        except ValueError as exc:
            self.close()
            raise TrackError(f"{self._label}: {self.source_channels} channels cannot be played on "
                             f"{channels} ({str(exc).removeprefix('downmix: ')})") from None
        self._downmix = _Downmix(matrix)
        self._resampler = None
        if self.source_rate != sample_rate:
            self._resampler = soxr.ResampleStream(self.source_rate, sample_rate, channels,
                                                  dtype="float32", quality=RESAMPLER_QUALITY)
        self._pending: deque[np.ndarray] = deque()
        self._pending_frames = 0
        self._drop = 0            # resampler output frames to drop (seek alignment)
        self._exhausted = False   # the source and the resampler are both drained
        self.position = 0
        if start_frame:
            try:
                self.seek(start_frame)
            except BaseException:
                self.close()
                raise

    @property
    def frames(self) -> int | None:
        """Output frames at the engine rate for the whole track, None when unknown.

        Same rate: the file's frame count — exact for WAV/FLAC/AIFF/OGG/OPUS, and for MP3
        libsndfile's figure (exact for files with a LAME/Xing header, which gapless
        encoders write; an estimate otherwise).  Resampled: floor(n * rate / source_rate
        + 1/2) of that, which is exactly what soxr yields.  None for ffmpeg streams.
        read() never pads or trims to this number: it yields what the decoder yields.
        """
        n = self.source_frames
        if n is None or self._resampler is None:
            return n
        return _resampled_length(n, self.source_rate, self.sample_rate)

    @property
    def missing_source_frames(self) -> int:
        """Source frames the file's header announced but its decoder did not deliver.

        0 while reading and for complete files; > 0 once read() has reached a premature
        end (a truncated or damaged file: libsndfile stops quietly where a lossy stream
        breaks off).  The player can report it; FLAC's lost sync is raised as a
        TrackError instead, and a cut WAV announces the length it really holds.  For an
        MP3 without a LAME/Xing header the length is libsndfile's estimate, whose error
        shows up here too.  Always 0 for ffmpeg streams (no header length).
        """
        return getattr(self._source, "missing_frames", 0)

    @property
    def duration_s(self) -> float | None:
        frames = self.frames
        return None if frames is None else frames / self.sample_rate

    def read(self, max_frames: int) -> np.ndarray:
        """Up to max_frames frames: float32 (n, channels), C-contiguous.

        n == max_frames except for the last block; shape (0, channels) once the track is
        over.  Raises TrackError for a read failure or a NaN/Inf sample (naming the frame).
        """
        max_frames = operator.index(max_frames)
        if max_frames < 1:
            raise ValueError(f"{self._label}: read needs max_frames >= 1 (got {max_frames})")
        if self._closed:
            raise ValueError(f"{self._label}: read after close")
        while self._pending_frames < max_frames and not self._exhausted:
            self._fill(max_frames - self._pending_frames)
        return self._take(max_frames)

    def seek(self, frame: int) -> None:
        """Continue from engine-rate `frame` (clamped to the end when the length is known)."""
        frame = operator.index(frame)
        if frame < 0:
            raise ValueError(f"{self._label}: cannot seek to frame {frame}")
        if self._closed:
            raise ValueError(f"{self._label}: seek after close")
        total = self.frames
        if total is not None:
            frame = min(frame, total)
        self._pending.clear()
        self._pending_frames = 0
        self._exhausted = False
        if self._resampler is None:
            self._source.seek(frame)
            self._drop = 0
        else:
            # Restart on a source frame that is also an exact engine-rate frame, far
            # enough before the target to fill the resampler's filter, and drop the output
            # up to the target: no fractional landing error, no start-up transient.
            src, out = self.source_rate, self.sample_rate
            grid = math.gcd(src, out)
            src_step, out_step = src // grid, out // grid
            lead_in = max(1024, src // 20)
            steps = max(0, (frame * src - lead_in * out) // (src_step * out))
            self._source.seek(steps * src_step)
            self._resampler.clear()
            self._drop = frame - steps * out_step
        self.position = frame

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if isinstance(self._source, _FfmpegSource):
                self._source.close()
            self._reader_to_close.close()

    def __enter__(self) -> "TrackReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _fill(self, need: int) -> None:
        """Decode enough source for about `need` more output frames into the pending queue."""
        source = self._source
        if self._resampler is None:
            block = source.read(max(need, _MIN_SOURCE_READ))
            if block.shape[0] == 0:
                self._exhausted = True
                self._check_not_empty()
                return
            out = self._downmix(block)
        else:
            want = -(-need * self.source_rate // self.sample_rate) + 16
            block = source.read(max(want, _MIN_SOURCE_READ))
            last = source.at_end
            if last and block.shape[0] == 0:
                self._check_not_empty()
            out = self._resampler.resample_chunk(self._downmix(block), last=last)
            if last:
                self._exhausted = True
            if self._drop and out.shape[0]:
                dropped = min(self._drop, out.shape[0])
                out = out[dropped:]
                self._drop -= dropped
        if out.shape[0]:
            self._pending.append(out)
            self._pending_frames += out.shape[0]

    def _check_not_empty(self) -> None:
        if self.position == 0 and self._pending_frames == 0 and self._source.position == 0:
            raise TrackError(f"{self._label}: holds no audio frames")

    def _take(self, max_frames: int) -> np.ndarray:
        parts, need = [], max_frames
        while need and self._pending:
            head = self._pending[0]
            if head.shape[0] <= need:
                parts.append(self._pending.popleft())
                need -= head.shape[0]
            else:
                parts.append(head[:need])
                self._pending[0] = head[need:]
                need = 0
        if not parts:
            return np.empty((0, self.channels), np.float32)
        out = parts[0] if len(parts) == 1 else np.concatenate(parts)
        out = np.ascontiguousarray(out, dtype=np.float32)
        self._pending_frames -= out.shape[0]
        self.position += out.shape[0]
        return out


def open_track(path, sample_rate: int, channels: int = 2, *, start_frame: int = 0,
               normalize_downmix: bool = False) -> TrackReader:
    """Open `path` for playback at `sample_rate` Hz with `channels` channels (TrackError if unplayable)."""
    return TrackReader(path, sample_rate, channels, start_frame=start_frame,
                       normalize_downmix=normalize_downmix)


def decode_offline(path, sample_rate: int, channels: int = 2, *, normalize_downmix: bool = False) -> np.ndarray:
    """The whole track as TrackReader yields it, computed in one go (the reference for tests).

    Same decoder and downmix, then a fresh soxr ResampleStream (same quality) fed the
    whole file in one call with last=True, which equals soxr.resample() on the whole file.
    Returns float32 (frames, channels), C-contiguous.
    """
    with TrackReader(path, sample_rate, channels, normalize_downmix=normalize_downmix) as track:
        blocks = []
        while (block := track._source.read(1 << 16)).shape[0]:
            blocks.append(track._downmix(block))
        if not blocks:
            raise TrackError(f"track {track.path}: holds no audio frames")
        whole = np.concatenate(blocks) if len(blocks) > 1 else blocks[0]
        if track.source_rate != sample_rate:
            stream = soxr.ResampleStream(track.source_rate, sample_rate, channels, dtype="float32",
                                         quality=RESAMPLER_QUALITY)
            whole = stream.resample_chunk(np.ascontiguousarray(whole), last=True)
        return np.ascontiguousarray(whole, dtype=np.float32)
