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
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from engine.backends.jack import ProcessHost, _lock_memory_once, ffi, lib
from engine.backends.jackd import no_start_server

__all__ = ["PortAudioBackend", "PortAudioStatus", "PortAudioError", "list_portaudio_devices", "terminate_portaudio"]

no_start_server()  # PortAudio's JACK host API uses libjack too


class PortAudioError(RuntimeError):
    """No PortAudio, or the stream could not be opened."""


def _sounddevice():
    try:
        import sounddevice
    except (ImportError, OSError) as exc:
        raise PortAudioError(f"PortAudio backend: python-sounddevice / libportaudio2 not available ({exc})") from None
    return sounddevice


def list_portaudio_devices() -> list[dict]:
    """Every device PortAudio sees: index, name, host API, channel counts, default rate."""
    sd = _sounddevice()
    return [{"index": i, "name": d["name"], "host_api": sd.query_hostapis(d["hostapi"])["name"],
             "inputs": d["max_input_channels"], "outputs": d["max_output_channels"],
             "default_sample_rate": d["default_samplerate"]} for i, d in enumerate(sd.query_devices())]


def terminate_portaudio() -> None:
    """Shut PortAudio down now (python-sounddevice would at exit).  Call it before
    stopping a JACK server that PortAudio's JACK host API is connected to: its
    termination asserts if the server is already gone."""
    sd = _sounddevice()
    if getattr(sd, "_initialized", 0):
        while sd._initialized:
            sd._terminate()


@dataclass(frozen=True)
class PortAudioStatus:
    """One lock-free snapshot.  Times in microseconds."""

    state: str                  # "closed", "stopped", "running"
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
    stream_latency_s: tuple[float, float]  # PortAudio's input / output latency
    process_running: bool
    process_swaps: int
    short_blocks: int
    memory_locked: bool

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
        self._memory_locked = False
        self._device_name = ""
        self._host_api = ""

    def open(self) -> "PortAudioBackend":
        with self._lock:
            if self._stream is not None:
                return self
            sd = _sounddevice()
            if lib.rt_host_pa_prepare(self._host, self.sample_rate, self.blocksize) != 0:
                raise MemoryError("PortAudioBackend: cannot allocate the callback's scratch buffers")
            try:
                stream = sd._StreamBase(
                    kind="duplex", samplerate=self.sample_rate, blocksize=self.blocksize, device=self.device,
                    channels=self.channels, dtype="float32", latency=self.latency,
                    callback=ffi.cast("void *", ffi.addressof(lib, "rt_host_pa_callback")),
                    userdata=ffi.cast("void *", self._host))
            except (sd.PortAudioError, ValueError) as exc:
                raise PortAudioError(f"PortAudio: cannot open device {self.device!r} with {self.channels} channels "
                                     f"at {self.sample_rate} Hz, block {self.blocksize}: {exc}") from None
            self._stream = stream
            index = stream.device[1] if isinstance(stream.device, tuple) else stream.device
            info = sd.query_devices(index)
            self._device_name = info["name"]
            self._host_api = sd.query_hostapis(info["hostapi"])["name"]
            return self

    def start(self) -> "PortAudioBackend":
        with self._lock:
            self.open()
            if self.lock_memory:
                self._memory_locked = _lock_memory_once()
            if not self._stream.active:
                self._stream.start()
            return self

    def stop(self) -> None:
        with self._lock:
            if self._stream is not None and self._stream.active:
                self._stream.stop()

    def close(self) -> None:
        """Stop and close the stream (the published process function is kept)."""
        with self._lock:
            if self._stream is not None:
                self._stream.close(ignore_errors=True)
                self._stream = None
            self._collect_locked()

    def destroy(self) -> None:
        with self._lock:
            self.close()
            self._free_host()

    def __enter__(self) -> "PortAudioBackend":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.destroy()

    def __del__(self):
        try:
            self.destroy()
        except Exception:
            pass

    def _running(self) -> bool:
        return self._stream is not None and self._stream.active

    def status(self) -> PortAudioStatus:
        with self._lock:
            self._require_host()
            s = self._read_stats()
            if self._stream is None:
                state, lat = "closed", (0.0, 0.0)
            else:
                state = "running" if self._stream.active else "stopped"
                lat = tuple(float(x) for x in self._stream.latency)
            return PortAudioStatus(
                state=state, device=self._device_name, host_api=self._host_api, xruns=int(s.xruns),
                callbacks=int(s.callbacks), frames=int(s.frames), dsp_load=float(s.dsp_load),
                callback_us_last=s.cost_ns_last / 1e3, callback_us_p50=s.cost_ns_p50 / 1e3,
                callback_us_p99=s.cost_ns_p99 / 1e3, callback_us_max=s.cost_ns_max / 1e3,
                period=int(s.period_frames), sample_rate=int(s.sample_rate), latency_frames=int(s.latency_frames),
                stream_latency_s=lat, process_running=bool(s.has_process), process_swaps=int(s.process_swaps),
                short_blocks=int(s.short_blocks), memory_locked=self._memory_locked)

    def __repr__(self) -> str:
        return (f"PortAudioBackend(device={self.device!r}, channels={self.channels}, "
                f"sample_rate={self.sample_rate}, blocksize={self.blocksize})")
