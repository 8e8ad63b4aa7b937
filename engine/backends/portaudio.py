"""The PortAudio backend: the same C host core as JACK, behind a PortAudio callback.

python-sounddevice opens the stream (device listing, selection, sample rate,
block size) and is handed a C function pointer as the callback, as
python-rtmixer does: ``rt_host_pa_callback`` with our host state as userdata.
Python never runs in the callback.  PortAudio's under/overflow flags count as
xruns.  Debian's libportaudio2 includes the JACK host API (it shows up when a
JACK server is reachable at initialisation: set ``JACK_DEFAULT_SERVER`` before
the first sounddevice call to choose one).

    backend = PortAudioBackend(device="system", channels=2, sample_rate=48000, blocksize=256)
    backend.set_executor(executor)
    backend.start()
    ... backend.status() ...
    backend.close()

PortAudio 19.6's JACK host API cannot survive its server (handled here):

* When the JACK server dies under a stream, Pa_StopStream / Pa_AbortStream /
  Pa_CloseStream wait ~10 minutes and Pa_CloseStream / Pa_Terminate then abort
  the process (``pa_jack.c: Assertion `err == 0' failed``) -- Pa_Terminate does
  so even with no stream open, e.g. in python-sounddevice's exit handler.  The
  backend notices (the stream went inactive without being stopped, or the
  server no longer answers ``jack_wait``), reports ``state == "host lost"``
  with ``shutdown_reason``, *abandons* the stream (no PortAudio call touches it
  again; its C state is deliberately never freed), warns once from
  stop()/close(), refuses open()/start() with one line, and keeps
  sounddevice's exit handler off PortAudio.  Restart the process to use
  PortAudio again.
* PortAudio enumerates devices only when initialised (python-sounddevice does
  so on import): rescan_portaudio() / list_portaudio_devices(rescan=True)
  re-initialise it (no stream may be open), and open() rescans once when the
  device is not found.
* Its stream latencies for ports of non-physical JACK clients wrap
  (~2**32 - 256 frames, a day): status() reports NaN for anything outside
  [0, 60] s.
"""

from __future__ import annotations

import atexit
import dataclasses
import math
import os
import warnings
import weakref
from dataclasses import dataclass
from typing import Any

from engine.backends.jack import ProcessHost, _lock_memory_once, ffi, lib
from engine.backends.jackd import no_start_server

__all__ = ["PortAudioBackend", "PortAudioStatus", "PortAudioError", "PortAudioHostLostWarning",
           "list_portaudio_devices", "rescan_portaudio", "terminate_portaudio"]

no_start_server()  # PortAudio's JACK host API uses libjack too

JACK_API_NAME = "JACK Audio Connection Kit"
MAX_SANE_LATENCY_S = 60.0


class PortAudioError(RuntimeError):
    """No PortAudio, the stream could not be opened, or PortAudio is unusable."""


class PortAudioHostLostWarning(RuntimeWarning):
    """The JACK server went away under PortAudio; the stream was abandoned."""


# Process-wide PortAudio state (python-sounddevice holds the library).
_jack_server = ""         # the server PortAudio's JACK host API connected to at (re)initialisation
_lost = ""                # why PortAudio must not be called again in this process ("" if usable)
_backends: "weakref.WeakSet[PortAudioBackend]" = weakref.WeakSet()
_abandoned: list = []     # streams, host states and keep-alives of abandoned streams: never freed


def _sounddevice():
    global _jack_server
    try:
        import sounddevice
    except (ImportError, OSError) as exc:
        raise PortAudioError(f"PortAudio backend: python-sounddevice / libportaudio2 not available ({exc})") from None
    if not _jack_server:
        # sounddevice initialised PortAudio on import, under this environment
        # (if another module imported it earlier, this is our best guess).
        _jack_server = os.environ.get("JACK_DEFAULT_SERVER", "default")
        # atexit runs last-in first-out: this runs before sounddevice's own
        # handler (registered on its import), which calls Pa_Terminate.
        atexit.register(_at_exit)
    return sounddevice


def _jack_api_present(sd) -> bool:
    return bool(sd._initialized) and any(h["name"] == JACK_API_NAME for h in sd.query_hostapis())


def _jack_server_gone(sd) -> bool:
    """PortAudio's JACK host API is connected to a server that no longer answers."""
    from engine.backends import jack_server_running

    return _jack_api_present(sd) and not jack_server_running(_jack_server)


def _mark_lost(sd, reason: str) -> None:
    """From now on nothing calls PortAudio: not us, not sounddevice's exit handler."""
    global _lost
    if not _lost:
        _lost = (f"{reason}; PortAudio 19.6 can neither stop, close nor terminate after that "
                 "(it blocks ~10 min or aborts the process): restart the process to use PortAudio again")
    sd._last_callback = None
    sd._initialized = 0


def _refuse_if_lost(where: str) -> None:
    if _lost:
        raise PortAudioError(f"{where}: {_lost}")


def _open_streams() -> list["PortAudioBackend"]:
    return [b for b in list(_backends) if b._stream is not None]


def _sane_latency(seconds: float) -> float:
    # PortAudio 19.6's JACK host API reads the deprecated jack_port_get_latency,
    # which wraps below zero (2**32 - period frames) on ports of non-physical clients.
    seconds = float(seconds)
    return seconds if 0.0 <= seconds <= MAX_SANE_LATENCY_S else math.nan


def _at_exit() -> None:
    try:
        import sounddevice as sd
    except (ImportError, OSError):
        return
    for backend in _open_streams():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                backend.close()
        except Exception:
            pass
    if not _lost and _jack_server_gone(sd):
        _mark_lost(sd, f"the JACK server {_jack_server!r} of PortAudio's JACK host API went away")
    if _lost:
        _mark_lost(sd, _lost)


def list_portaudio_devices(rescan: bool = False) -> list[dict]:
    """Every device PortAudio sees: index, name, host API, channel counts, default rate.

    PortAudio's list is the one of its last initialisation; ``rescan=True``
    re-initialises it first when no stream is open (see rescan_portaudio)."""
    sd = _sounddevice()
    _refuse_if_lost("list_portaudio_devices")
    if rescan and not _open_streams():
        rescan_portaudio()
    return [{"index": i, "name": d["name"], "host_api": sd.query_hostapis(d["hostapi"])["name"],
             "inputs": d["max_input_channels"], "outputs": d["max_output_channels"],
             "default_sample_rate": d["default_samplerate"]} for i, d in enumerate(sd.query_devices())]


def rescan_portaudio() -> None:
    """Re-initialise PortAudio so its host APIs and devices are current (a JACK
    server started since, or ``$JACK_DEFAULT_SERVER`` changed).  Refused while
    a stream is open (Pa_Terminate would close it) or after a host loss."""
    global _jack_server
    sd = _sounddevice()
    _refuse_if_lost("rescan_portaudio")
    still = _open_streams()
    if still:
        raise PortAudioError(f"rescan_portaudio: close these streams first: {', '.join(map(repr, still))}")
    if _jack_server_gone(sd):
        _mark_lost(sd, f"the JACK server {_jack_server!r} of PortAudio's JACK host API went away")
        raise PortAudioError(f"rescan_portaudio: {_lost}")
    while sd._initialized:
        sd._terminate()
    _jack_server = os.environ.get("JACK_DEFAULT_SERVER", "default")
    sd._initialize()


def terminate_portaudio() -> None:
    """Shut PortAudio down now (python-sounddevice would at exit).  Refused while
    a stream is open.  If the JACK server of PortAudio's JACK host API is gone,
    PortAudio is left alone (its termination would abort the process)."""
    sd = _sounddevice()
    if _lost:
        return
    still = _open_streams()
    if still:
        raise PortAudioError(f"terminate_portaudio: close these streams first: {', '.join(map(repr, still))}")
    if _jack_server_gone(sd):
        _mark_lost(sd, f"the JACK server {_jack_server!r} of PortAudio's JACK host API went away")
        return
    while sd._initialized:
        sd._terminate()


@dataclass(frozen=True)
class PortAudioStatus:
    """One lock-free snapshot.  Times in microseconds."""

    state: str                  # "closed", "stopped", "running", "host lost"
    device: str
    host_api: str
    xruns: int                  # callbacks flagged with input/output under/overflow
    callbacks: int
    frames: int
    dsp_load: float
    callback_us_last: float
    callback_us_p50: float
    callback_us_p99: float
    callback_us_max: float
    period: int                 # block size
    sample_rate: int
    latency_frames: int         # the process function's latency (as published)
    stream_latency_s: tuple[float, float]  # PortAudio's input / output latency (NaN: PortAudio's is absurd)
    process_running: bool
    process_swaps: int
    short_blocks: int
    memory_locked: bool
    shutdown: bool              # the host (JACK server) went away under the stream
    shutdown_reason: str

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class PortAudioBackend(ProcessHost):
    """A duplex PortAudio stream whose callback is C.

    device : index or (sub)name as python-sounddevice accepts it (None: default).
    channels : inputs and outputs.  sample_rate (Hz), blocksize (frames, fixed).
    latency : PortAudio's suggested latency ("low", "high" or seconds).
    """

    def __init__(self, device: int | str | None = None, *, channels: int = 2, sample_rate: int = 48000,
                 blocksize: int = 256, latency: str | float = "low", lock_memory: bool = True,
                 retire_capacity: int = 64):
        if not isinstance(channels, int) or not 1 <= channels <= 64:
            raise ValueError(f"PortAudioBackend: channels = {channels!r} is outside [1, 64]")
        if not isinstance(sample_rate, int) or not 8000 <= sample_rate <= 384000:
            raise ValueError(f"PortAudioBackend: sample_rate = {sample_rate!r} is outside [8000, 384000] Hz")
        if not isinstance(blocksize, int) or not 16 <= blocksize <= 8192:
            raise ValueError(f"PortAudioBackend: blocksize = {blocksize!r} is outside [16, 8192] frames")
        self.device, self.channels, self.sample_rate, self.blocksize = device, channels, sample_rate, blocksize
        self.latency = latency
        self.lock_memory = lock_memory
        self._init_host(channels, channels, retire_capacity)
        self._stream = None
        self._started = False     # start() called and not stop()ped: inactive then means "host lost"
        self._lost = ""           # why this backend's stream was abandoned
        self._warned = False
        self._memory_locked = False
        self._device_name = ""
        self._host_api = ""
        _backends.add(self)

    def open(self) -> "PortAudioBackend":
        with self._lock:
            self._refuse_locked("open")
            if self._stream is not None:
                return self
            sd = _sounddevice()
            if lib.rt_host_pa_prepare(self._host, self.sample_rate, self.blocksize) != 0:
                raise MemoryError("PortAudioBackend: cannot allocate the callback's scratch buffers")
            try:
                stream = self._open_stream(sd)
            except ValueError:
                # No such device: PortAudio's list may predate it (a JACK server
                # started since it was initialised).  Rescan once if nothing is open.
                if _open_streams():
                    raise PortAudioError(self._open_error("no matching device")) from None
                rescan_portaudio()
                try:
                    stream = self._open_stream(sd)
                except ValueError as exc:
                    raise PortAudioError(self._open_error(f"{exc} (after a rescan)")) from None
            self._stream = stream
            index = stream.device[1] if isinstance(stream.device, tuple) else stream.device
            info = sd.query_devices(index)
            self._device_name = info["name"]
            self._host_api = sd.query_hostapis(info["hostapi"])["name"]
            return self

    def _open_error(self, why) -> str:
        return (f"PortAudio: cannot open device {self.device!r} with {self.channels} channels "
                f"at {self.sample_rate} Hz, block {self.blocksize}: {why}")

    def _open_stream(self, sd):
        try:
            return sd._StreamBase(
                kind="duplex", samplerate=self.sample_rate, blocksize=self.blocksize, device=self.device,
                channels=self.channels, dtype="float32", latency=self.latency,
                callback=ffi.cast("void *", ffi.addressof(lib, "rt_host_pa_callback")),
                userdata=ffi.cast("void *", self._host))
        except sd.PortAudioError as exc:
            raise PortAudioError(self._open_error(exc)) from None
        except ValueError as exc:
            if "matching" in str(exc):
                raise
            raise PortAudioError(self._open_error(exc)) from None

    def start(self) -> "PortAudioBackend":
        with self._lock:
            self._refuse_locked("start")
            self.open()
            if self.lock_memory:
                self._memory_locked = _lock_memory_once()
            if not self._stream.active:
                self._stream.start()
            self._started = True
            return self

    # -- host loss ------------------------------------------------------------
    def _refuse_locked(self, where: str) -> None:
        self._require_host()
        if self._lost or self._check_lost_locked(probe_server=False):
            raise PortAudioError(f"PortAudioBackend.{where}: {self._lost}")
        _refuse_if_lost(f"PortAudioBackend.{where}")

    def _check_lost_locked(self, probe_server: bool) -> str:
        """"" or why the stream's host is gone; abandons the stream if so.

        Only for PortAudio's JACK host API (the one known not to survive its
        host).  Cheap unless ``probe_server`` (runs ``jack_wait``)."""
        if self._lost or self._stream is None or self._host_api != JACK_API_NAME:
            return self._lost
        sd = _sounddevice()
        reason = ""
        if _lost:
            reason = _lost
        elif self._started and not self._stream.active and not self._stream.stopped:
            # PortAudio's JACK shutdown callback marks the stream inactive; our
            # callback never ends a stream itself (it always returns paContinue).
            reason = f"the JACK server {_jack_server!r} went away under the running stream"
        elif probe_server and _jack_server_gone(sd):
            reason = f"the JACK server {_jack_server!r} went away"
        if reason:
            _mark_lost(sd, reason)
            self._lost = _lost
            _abandoned.append(self._stream)  # never closed, never collected
            self._stream = None
            self._started = False
        return self._lost

    def _warn_lost_locked(self, where: str) -> None:
        if not self._warned:
            self._warned = True
            warnings.warn(f"PortAudioBackend.{where}: the stream on {self._device_name!r} was abandoned: {self._lost}",
                          PortAudioHostLostWarning, stacklevel=3)

    def stop(self) -> None:
        with self._lock:
            if self._stream is not None and self._check_lost_locked(probe_server=self._stream.active) == "":
                if self._stream.active:
                    self._stream.stop()
                self._started = False
            if self._lost:
                self._warn_lost_locked("stop")

    def close(self) -> None:
        """Stop and close the stream (the published process function is kept)."""
        with self._lock:
            if self._stream is not None and self._check_lost_locked(probe_server=True) == "":
                self._stream.close(ignore_errors=True)
                self._stream = None
                self._started = False
            if self._lost:
                self._warn_lost_locked("close")
            self._collect_locked()

    def destroy(self) -> None:
        with self._lock:
            if self._host is None:
                return
            self.close()
            if self._lost:
                # PortAudio may still hold our host state as callback userdata:
                # keep it (and what the process function uses) for the process's life.
                _abandoned.append((self._host, dict(self._keep)))
                self._host = None
                self._keep.clear()
            else:
                self._free_host()

    def __enter__(self) -> "PortAudioBackend":
        return self.start()

    def _running(self) -> bool:
        return self._stream is not None and self._stream.active

    def status(self) -> PortAudioStatus:
        with self._lock:
            self._require_host()
            s = self._read_stats()
            lost = self._check_lost_locked(probe_server=False)
            if lost:
                state, lat = "host lost", (math.nan, math.nan)
            elif self._stream is None:
                state, lat = "closed", (0.0, 0.0)
            else:
                state = "running" if self._stream.active else "stopped"
                lat = tuple(_sane_latency(x) for x in self._stream.latency)
            return PortAudioStatus(
                state=state, device=self._device_name, host_api=self._host_api, xruns=int(s.xruns),
                callbacks=int(s.callbacks), frames=int(s.frames), dsp_load=float(s.dsp_load),
                callback_us_last=s.cost_ns_last / 1e3, callback_us_p50=s.cost_ns_p50 / 1e3,
                callback_us_p99=s.cost_ns_p99 / 1e3, callback_us_max=s.cost_ns_max / 1e3,
                period=int(s.period_frames), sample_rate=int(s.sample_rate), latency_frames=int(s.latency_frames),
                stream_latency_s=lat, process_running=bool(s.has_process), process_swaps=int(s.process_swaps),
                short_blocks=int(s.short_blocks), memory_locked=self._memory_locked,
                shutdown=bool(lost), shutdown_reason=lost)

    def __repr__(self) -> str:
        return (f"PortAudioBackend(device={self.device!r}, channels={self.channels}, "
                f"sample_rate={self.sample_rate}, blocksize={self.blocksize})")
