"""The JACK backend: a C process callback on a JACK client, controlled from Python.

The audio thread runs only C (``csrc/jack_host.c``): it reads the port buffers,
calls the published process function ``uint32_t fn(void *ctx, const float
*const *in, float *const *out, uint32_t frames)`` and writes the outputs; with
no function published it writes silence.  Python never runs on a JACK thread.

JACK-Client opens the client and registers its ports (control side: listing,
connecting, autoconnect); the C glue installs its callbacks on that same client
before activation.  Typical use::

    backend = JackBackend("auralis-rt", server=name, channels=2)
    backend.open()
    backend.set_process(fn_pointer, ctx_pointer, keep_alive=owner, latency_frames=lat)
    backend.activate()
    backend.autoconnect()
    ... backend.status() ...
    backend.close()

To run the graph executor (``graph.runtime.Executor``)::

    from rt_kernels._rt import ffi as rt_ffi, lib as rt_lib
    backend.set_process(rt_ffi.cast("void *", rt_ffi.addressof(rt_lib, "rt_executor_process")),
                        executor.c_executor, keep_alive=executor,
                        latency_frames=executor.latency_frames)
"""

from __future__ import annotations

import dataclasses
import os
import resource
import threading
import time
import warnings
from dataclasses import dataclass
from typing import Any, Iterable

from engine.backends.jackd import no_start_server

try:
    import jack
except ImportError as exc:  # pragma: no cover - JACK-Client is a dependency
    raise ImportError("engine.backends.jack needs JACK-Client (pip install JACK-Client) and libjack") from exc

try:
    from engine.backends._jack_rt import ffi, lib
except ImportError as exc:  # pragma: no cover - only without a build
    raise ImportError(
        "engine.backends: the JACK glue is not built; install the package with `pip install -e .` "
        "(or run `python engine/backends/jack_build.py`)"
    ) from exc

__all__ = ["JackBackend", "JackStatus", "ProcessHost", "JackBackendError", "RealtimeHygieneWarning", "port_latency_range"]

no_start_server()

_SCHED_NAMES = {0: "SCHED_OTHER", 1: "SCHED_FIFO", 2: "SCHED_RR", 3: "SCHED_BATCH", 5: "SCHED_IDLE"}
_CAP_IPC_LOCK = 14


class JackBackendError(RuntimeError):
    """A JACK operation failed (no server, bad port, closed client)."""


class RealtimeHygieneWarning(RuntimeWarning):
    """Memory could not be locked or the process thread has no real-time priority."""


_hygiene_lock = threading.Lock()
_memory_locked: bool | None = None   # None: not tried yet
_warned_realtime = False


@dataclass(frozen=True)
class JackStatus:
    """One lock-free snapshot of the backend.  Times in microseconds."""

    state: str                   # "closed", "open", "active", "shut down"
    server: str                  # server name ("default" if not given)
    client_name: str
    xruns: int
    callbacks: int
    frames: int
    dsp_load: float              # callback time / period: rises at once, decays over ~0.5 s
    callback_us_last: float
    callback_us_p50: float       # from a histogram with 1/32-octave buckets (<= 3.2 % high)
    callback_us_p99: float
    callback_us_max: float
    period: int                  # frames per JACK cycle
    sample_rate: int
    latency_frames: int          # what our ports report on top of up/downstream latency
    freewheel: bool
    shutdown: bool
    shutdown_reason: str
    process_running: bool        # a process function (not silence) is running
    process_swaps: int
    short_blocks: int            # the process function returned fewer frames than asked
    buffer_size_changes: int
    sample_rate_changes: int
    realtime: bool | None        # the process thread runs SCHED_FIFO/RR (None: unknown)
    memory_locked: bool

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _client_pointer(client: "jack.Client"):
    # JACK-Client keeps its jack_client_t* in `_ptr` (a cdata of its own ABI-mode
    # ffi); hand the same address to our API-mode module.
    return ffi.cast("jack_client_t *", int(jack._ffi.cast("uintptr_t", client._ptr)))


def _port_pointer(port: "jack.Port"):
    return ffi.cast("jack_port_t *", int(jack._ffi.cast("uintptr_t", port._ptr)))


def port_latency_range(port: "jack.Port", mode: str) -> tuple[int, int]:
    """(min, max) latency in frames of any port; mode "capture" or "playback".

    JACK-Client does not wrap jack_port_get_latency_range; this does."""
    if mode not in ("capture", "playback"):
        raise ValueError(f"port_latency_range: mode = {mode!r} is not 'capture' or 'playback'")
    lo, hi = ffi.new("uint32_t *"), ffi.new("uint32_t *")
    lib.rt_jack_port_latency_range(_port_pointer(port), 0 if mode == "capture" else 1, lo, hi)
    return int(lo[0]), int(hi[0])


def _can_lock_memory() -> tuple[bool, str]:
    soft, _hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    if soft == resource.RLIM_INFINITY:
        return True, ""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:") and int(line.split()[1], 16) >> _CAP_IPC_LOCK & 1:
                    return True, ""
    except OSError:
        pass
    # Locking under a finite limit would make later allocations fail once the
    # limit is reached (MCL_FUTURE), which is worse than page faults.
    return False, f"RLIMIT_MEMLOCK is {soft // 1024} KiB and the process lacks CAP_IPC_LOCK"


def _lock_memory_once() -> bool:
    global _memory_locked
    with _hygiene_lock:
        if _memory_locked is None:
            allowed, why = _can_lock_memory()
            if allowed:
                err = lib.rt_jack_lock_memory()
                _memory_locked = err == 0
                why = os.strerror(err) if err else ""
            else:
                _memory_locked = False
            if not _memory_locked:
                _warn_once(f"memory is not locked ({why}); page faults on the audio thread may cause xruns. "
                           "Allow memlock for your user (e.g. the audio group, limits.d: @audio - memlock unlimited).")
        return _memory_locked


def _warn_once(message: str) -> None:
    global _warned_realtime
    if not _warned_realtime:
        _warned_realtime = True
        warnings.warn(f"auralis-rt real-time hygiene: {message}", RealtimeHygieneWarning, stacklevel=3)


class ProcessHost:
    """The C host core shared by the JACK and PortAudio backends: publishing the
    process function (with keep-alive bookkeeping), latency, telemetry reset.

    Subclasses set ``_n_in``/``_n_out`` and implement ``_running()``,
    ``_latency_changed()`` and ``destroy()`` (also run on ``with`` exit and collection)."""

    def destroy(self) -> None:  # pragma: no cover - every backend defines it
        raise NotImplementedError

    def __exit__(self, *exc) -> None:
        self.destroy()

    def __del__(self):
        try:
            self.destroy()
        except Exception:
            pass

    def _init_host(self, n_in: int, n_out: int, retire_capacity: int) -> None:
        self._n_in, self._n_out = n_in, n_out
        self._lock = threading.RLock()
        self._host = lib.rt_jack_host_create(n_in, n_out, retire_capacity)
        if self._host == ffi.NULL:
            raise MemoryError(f"{type(self).__name__}: cannot allocate the host state")
        self._token = 0
        self._keep: dict[int, Any] = {}
        self._latency_frames = 0
        self._passthrough_channels = ffi.new("uint32_t *", min(n_in, n_out))

    def _running(self) -> bool:
        raise NotImplementedError

    def _latency_changed(self) -> None:
        pass

    def _free_host(self) -> None:
        if self._host is not None:
            lib.rt_jack_host_destroy(self._host)
            self._host = None
            self._keep.clear()

    def _read_stats(self):
        s = ffi.new("rt_jack_stats *")
        for _ in range(10):
            if lib.rt_jack_host_read_stats(self._host, s) == 0:
                break
            time.sleep(0.0005)
        return s

    # -- the process function -------------------------------------------
    def set_process(self, fn, ctx=None, *, keep_alive: Any = None, latency_frames: int | None = None) -> None:
        """Publish the C process function ``fn`` with its context pointer ``ctx``.

        ``fn`` is a cffi ``void *`` / function pointer (or an integer address)
        of type ``uint32_t (*)(void *, const float *const *, float *const *,
        uint32_t)``; None means silence.  ``keep_alive`` is held until the audio
        thread has stopped using this pair (the owner of ``ctx``).
        ``latency_frames``, if given, is reported on the ports right away."""
        with self._lock:
            self._require_host()
            fn_ptr = ffi.cast("rt_process_fn", fn if fn is not None else 0)
            ctx_ptr = ffi.cast("void *", ctx if ctx is not None else 0)
            self._collect_locked()
            self._token += 1
            displaced = ffi.new("uint64_t *")
            if lib.rt_jack_host_set_process(self._host, fn_ptr, ctx_ptr, self._token, displaced) != 0:
                raise MemoryError("set_process: cannot allocate the process record")
            self._keep[self._token] = (fn, ctx, keep_alive)
            self._keep.pop(int(displaced[0]), None)
            if latency_frames is not None:
                self.set_latency_frames(latency_frames)

    def set_executor(self, executor) -> None:
        """Run a ``graph.runtime.Executor`` in the callback and report its latency.

        The executor's channel count must equal the number of input and output ports."""
        from rt_kernels._rt import ffi as rt_ffi, lib as rt_lib

        if executor.channels != self._n_in or executor.channels != self._n_out:
            raise ValueError(f"{type(self).__name__}.set_executor: executor has {executor.channels} channels, "
                             f"the backend {self._n_in} inputs and {self._n_out} outputs")
        self.set_process(rt_ffi.cast("void *", rt_ffi.addressof(rt_lib, "rt_executor_process")),
                         executor.c_executor, keep_alive=executor, latency_frames=executor.latency_frames)

    def set_passthrough(self) -> None:
        """Inputs straight to outputs (min(inputs, outputs) channels), latency 0."""
        self.set_process(ffi.addressof(lib, "rt_jack_passthrough"), self._passthrough_channels,
                         keep_alive=self._passthrough_channels, latency_frames=0)

    def clear_process(self) -> None:
        """Silence on the outputs."""
        self.set_process(None, None, latency_frames=0)

    def collect(self) -> int:
        """Release what the audio thread has stopped using; returns how many."""
        with self._lock:
            return self._collect_locked()

    def _collect_locked(self) -> int:
        n = 0
        while self._host is not None:
            token = lib.rt_jack_host_collect(self._host)
            if token == 0:
                return n
            self._keep.pop(int(token), None)
            n += 1
        return n

    def set_latency_frames(self, frames: int) -> None:
        """The delay our process adds, reported on our ports (JACK latency API)."""
        if isinstance(frames, bool) or not isinstance(frames, int) or not 0 <= frames <= 1 << 24:
            raise ValueError(f"{type(self).__name__}.set_latency_frames: frames = {frames!r} is outside [0, 16777216]")
        with self._lock:
            self._require_host()
            self._latency_frames = frames
            lib.rt_jack_host_set_latency(self._host, frames)
            self._latency_changed()

    def reset_stats(self, timeout_s: float = 1.0) -> bool:
        """Clear callbacks, frames, cost histogram, max and DSP load (xruns stay).

        The audio thread clears them at its next cycle; this waits up to
        ``timeout_s`` for that and returns whether it happened."""
        with self._lock:
            self._require_host()
            lib.rt_jack_host_reset_stats(self._host)
            deadline = time.monotonic() + timeout_s
            while not lib.rt_jack_host_reset_done(self._host):
                if time.monotonic() >= deadline or not self._running():
                    return False
                time.sleep(0.002)
            return True

    def _require_host(self) -> None:
        if self._host is None:
            raise JackBackendError(f"{type(self).__name__}: already destroyed")


class JackBackend(ProcessHost):
    """A JACK client whose process callback is C.

    Parameters
    ----------
    name : client name (default ``auralis-rt``; JACK may append a suffix if taken).
    server : JACK server name (None: ``$JACK_DEFAULT_SERVER`` or ``default``).
    channels : number of input and output ports (``in_1..N`` / ``out_1..N``).
    in_names, out_names : explicit port names instead (their lengths set the counts).
    lock_memory : mlockall(MCL_CURRENT | MCL_FUTURE) on activate where permitted;
        where not, one RealtimeHygieneWarning per process and the engine runs on.

    One server per process: libjack (JACK 2) binds its process-wide state to
    the first server it talks to; while any client of this process is open, a
    client opened with another ``server`` name ends up on the first server
    (and opening one on a server that died meanwhile can crash in libjack).
    Close every client before switching servers.
    """

    def __init__(self, name: str = "auralis-rt", *, server: str | None = None, channels: int = 2,
                 in_names: Iterable[str] | None = None, out_names: Iterable[str] | None = None,
                 lock_memory: bool = True, retire_capacity: int = 64):
        if not isinstance(name, str) or not name or len(name) > 63:
            raise ValueError(f"JackBackend: name = {name!r} must be a non-empty string of at most 63 characters")
        if not isinstance(channels, int) or not 1 <= channels <= 64:
            raise ValueError(f"JackBackend: channels = {channels!r} is outside [1, 64]")
        self.name = name
        self.server = server
        self.in_names = list(in_names) if in_names is not None else [f"in_{i + 1}" for i in range(channels)]
        self.out_names = list(out_names) if out_names is not None else [f"out_{i + 1}" for i in range(channels)]
        for label, names in (("in_names", self.in_names), ("out_names", self.out_names)):
            if len(names) > 64 or len(set(names)) != len(names) or not all(isinstance(n, str) and n for n in names):
                raise ValueError(f"JackBackend: {label} = {names!r} must be at most 64 distinct non-empty names")
        self.lock_memory = lock_memory
        self._init_host(len(self.in_names), len(self.out_names), retire_capacity)
        self._client: jack.Client | None = None
        self._inports: list[jack.Port] = []
        self._outports: list[jack.Port] = []
        self._active = False
        self._connections: list[tuple[str, str]] = []
        self._realtime: bool | None = None

    # -- lifecycle -------------------------------------------------------
    def open(self) -> "JackBackend":
        """Open the client, register the ports, install the C callbacks (not yet active)."""
        with self._lock:
            if self._client is not None:
                return self
            try:
                client = jack.Client(self.name, no_start_server=True, servername=self.server)
            except jack.JackError as exc:
                raise JackBackendError(
                    f"JACK: cannot connect to server {self.server or os.environ.get('JACK_DEFAULT_SERVER', 'default')!r} "
                    f"as {self.name!r} ({exc}); is jackd running?"
                ) from None
            try:
                inports = [client.inports.register(n) for n in self.in_names]
                outports = [client.outports.register(n) for n in self.out_names]
                ins = ffi.new("jack_port_t *[]", [_port_pointer(p) for p in inports] or [ffi.NULL])
                outs = ffi.new("jack_port_t *[]", [_port_pointer(p) for p in outports] or [ffi.NULL])
                rc = lib.rt_jack_host_attach(self._host, _client_pointer(client), ins, outs)
                if rc != 0:
                    raise JackBackendError(f"JACK: installing the C callbacks failed ({-rc} calls refused)")
            except BaseException:
                client.close()
                lib.rt_jack_host_detach(self._host)
                raise
            self._client, self._inports, self._outports = client, inports, outports
            return self

    def activate(self) -> "JackBackend":
        """Start processing.  Locks memory and checks the thread's priority (once per process)."""
        with self._lock:
            self.open()
            if self._active:
                return self
            if self.lock_memory:
                _lock_memory_once()
            try:
                self._client.activate()
            except jack.JackError as exc:
                raise JackBackendError(f"JACK: cannot activate {self.client_name!r}: {exc}") from None
            self._active = True
            self._check_realtime()
            # Ask for the latency again now that our ports take part in the graph.
            lib.rt_jack_recompute_latencies(_client_pointer(self._client))
            return self

    def _check_realtime(self) -> None:
        policy, prio = ffi.new("int *"), ffi.new("int *")
        if lib.rt_jack_thread_policy(_client_pointer(self._client), policy, prio) != 0:
            self._realtime = None
            return
        self._realtime = policy[0] in (1, 2)
        if not self._realtime:
            why = ("the server runs without real-time scheduling (start jackd with -R)"
                   if not self._client.realtime else "the process thread did not get real-time priority")
            _warn_once(f"{why}; the JACK process thread runs {_SCHED_NAMES.get(policy[0], policy[0])}, "
                       "so other load may cause xruns. Allow rtprio for your user (e.g. the audio group).")

    def deactivate(self) -> None:
        with self._lock:
            if self._client is not None and self._active:
                self._client.deactivate(ignore_errors=True)
            self._active = False

    def close(self) -> None:
        """Deactivate and close the client (also after the server went away).  The
        published process function is kept and runs again after open/reconnect."""
        with self._lock:
            if self._client is None:
                return
            if self._active and not self.shut_down:
                self._client.deactivate(ignore_errors=True)
            self._active = False
            self._client.close()
            self._client = None
            self._inports, self._outports = [], []
            lib.rt_jack_host_detach(self._host)
            self._collect_locked()

    def reconnect(self, server: str | None = None, *, timeout_s: float = 0.0,
                  activate: bool = True) -> "JackBackend":
        """Close, then open (and activate) again, e.g. after the server went away.

        ``server`` switches to another server name.  Retries for ``timeout_s``
        seconds while no server answers.  Connections made through this object
        are restored where both ports exist."""
        with self._lock:
            self.close()
            if server is not None:
                self.server = server
            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    self.open()
                    break
                except JackBackendError:
                    if time.monotonic() >= deadline:
                        raise
                    time.sleep(0.2)
            if activate:
                self.activate()
                for source, destination in list(self._connections):
                    try:
                        self._client.connect(source, destination)
                    except jack.JackError:
                        pass
            return self

    def destroy(self) -> None:
        """Close and free the C state; the object cannot be used afterwards."""
        with self._lock:
            self.close()
            self._free_host()

    def __enter__(self) -> "JackBackend":
        return self.activate()

    def _running(self) -> bool:
        return self._client is not None and self._active

    def _latency_changed(self) -> None:
        if self._client is not None and self._active and not self.shut_down:
            lib.rt_jack_recompute_latencies(_client_pointer(self._client))

    # -- control-side JACK operations (JACK-Client) ------------------------
    @property
    def client(self) -> "jack.Client":
        if self._client is None:
            raise JackBackendError("JackBackend: the client is not open (call open() or reconnect())")
        return self._client

    @property
    def client_name(self) -> str:
        return self._client.name if self._client is not None else self.name

    @property
    def inports(self) -> list[str]:
        return [p.name for p in self._inports]

    @property
    def outports(self) -> list[str]:
        return [p.name for p in self._outports]

    def ports(self, pattern: str = "", **kwargs) -> list[str]:
        """Names of the server's ports (JACK-Client get_ports filters: is_audio, is_input, is_physical, ...)."""
        return [p.name for p in self.client.get_ports(pattern, **kwargs)]

    def connect(self, source: str, destination: str) -> None:
        with self._lock:
            try:
                self.client.connect(source, destination)
            except jack.JackError as exc:
                raise JackBackendError(f"JACK: cannot connect {source} -> {destination}: {exc}") from None
            if (source, destination) not in self._connections:
                self._connections.append((source, destination))

    def disconnect(self, source: str, destination: str) -> None:
        with self._lock:
            try:
                self.client.disconnect(source, destination)
            except jack.JackError as exc:
                raise JackBackendError(f"JACK: cannot disconnect {source} -> {destination}: {exc}") from None
            if (source, destination) in self._connections:
                self._connections.remove((source, destination))

    def autoconnect(self, inputs: Iterable[str] | None = None, outputs: Iterable[str] | None = None) -> list[tuple[str, str]]:
        """Connect sources to in_1..N and out_1..N to destinations, pairwise.

        Defaults: the physical capture ports and the physical playback ports.
        Returns the connections made."""
        with self._lock:
            client = self.client
            if inputs is None:
                inputs = self.ports(is_audio=True, is_output=True, is_physical=True)
            if outputs is None:
                outputs = self.ports(is_audio=True, is_input=True, is_physical=True)
            made = list(zip(list(inputs), self.inports)) + list(zip(self.outports, list(outputs)))
            for source, destination in made:
                if destination not in [p.name for p in client.get_all_connections(source)]:
                    self.connect(source, destination)
                elif (source, destination) not in self._connections:
                    self._connections.append((source, destination))
            return made

    def set_freewheel(self, on: bool) -> None:
        """Freewheel: JACK runs cycles as fast as the clients finish (faster than real time)."""
        self.client.set_freewheel(bool(on))

    # -- telemetry --------------------------------------------------------
    @property
    def shut_down(self) -> bool:
        s = ffi.new("rt_jack_stats *")
        lib.rt_jack_host_read_stats(self._host, s)
        return bool(s.shut_down)

    def shutdown_reason(self) -> str:
        buf = ffi.new("char[256]")
        lib.rt_jack_host_shutdown_reason(self._host, buf, 256)
        return ffi.string(buf).decode("utf-8", "replace")

    def status(self) -> JackStatus:
        """A lock-free snapshot: the audio thread is never blocked by this."""
        with self._lock:
            self._require_host()
            s = self._read_stats()
            shut = bool(s.shut_down)
            if self._client is None:
                state = "closed"
            elif shut:
                state = "shut down"
            else:
                state = "active" if self._active else "open"
            return JackStatus(
                state=state, server=self.server or os.environ.get("JACK_DEFAULT_SERVER", "default"),
                client_name=self.client_name, xruns=int(s.xruns), callbacks=int(s.callbacks),
                frames=int(s.frames), dsp_load=float(s.dsp_load),
                callback_us_last=s.cost_ns_last / 1e3, callback_us_p50=s.cost_ns_p50 / 1e3,
                callback_us_p99=s.cost_ns_p99 / 1e3, callback_us_max=s.cost_ns_max / 1e3,
                period=int(s.period_frames), sample_rate=int(s.sample_rate),
                latency_frames=int(s.latency_frames), freewheel=bool(s.freewheel), shutdown=shut,
                shutdown_reason=self.shutdown_reason() if shut else "",
                process_running=bool(s.has_process), process_swaps=int(s.process_swaps),
                short_blocks=int(s.short_blocks), buffer_size_changes=int(s.buffer_size_changes),
                sample_rate_changes=int(s.sample_rate_changes), realtime=self._realtime,
                memory_locked=bool(_memory_locked),
            )

    def poll_events(self) -> list[str]:
        """Control thread: what changed since the last call -- "buffer_size", "sample_rate",
        "shutdown", "freewheel_on" / "freewheel_off".  The C callbacks only set
        flags; reacting (e.g. a new executor for a new sample rate, then
        set_executor) happens here, off the audio thread."""
        s = self.status()
        seen = getattr(self, "_seen", None) or (s.buffer_size_changes, s.sample_rate_changes, False, False)
        events = []
        if s.buffer_size_changes != seen[0]:
            events.append("buffer_size")
        if s.sample_rate_changes != seen[1]:
            events.append("sample_rate")
        if s.shutdown and not seen[2]:
            events.append("shutdown")
        if s.freewheel != seen[3]:
            events.append("freewheel_on" if s.freewheel else "freewheel_off")
        self._seen = (s.buffer_size_changes, s.sample_rate_changes, s.shutdown, s.freewheel)
        return events

    def __repr__(self) -> str:
        return f"JackBackend(name={self.name!r}, server={self.server!r}, ports={len(self.in_names)}x{len(self.out_names)})"

