"""Where audio runs: the JACK backend (C callback), the private jackd, and the
helpers the CLI (`auralis-rt host / devices / demo`) is built from.

    with open_host("auto", channels=2) as host:        # private jackd if none runs
        host.backend.set_executor(executor)            # or set_process(fn, ctx, ...)
        final = run_host(host, duration_s=10, status_json="status.json")

Nothing here imports JACK at module import time, so `import engine.backends`
works on a machine without libjack.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

__all__ = ["Host", "open_host", "run_host", "jack_server_running", "list_devices", "status_line",
           "final_telemetry", "run_demo"]

BACKENDS = ("auto", "jack", "portaudio")


@dataclass
class Host:
    """What open_host() yields: the running backend and, if we started one, the private server."""

    kind: str                       # "jack" or "portaudio"
    backend: Any                    # JackBackend or PortAudioBackend
    private_server: Any = None      # PrivateJackServer or None
    notes: list[str] = field(default_factory=list)

    @property
    def server_name(self) -> str:
        return self.backend.server or os.environ.get("JACK_DEFAULT_SERVER", "default")


def jack_server_running(server: str | None = None) -> bool:
    """True if a JACK server of that name (default: $JACK_DEFAULT_SERVER or "default") answers.
    Uses `jack_wait -c`, so libjack prints nothing when there is none."""
    tool = shutil.which("jack_wait")
    if tool is None:
        return False
    cmd = [tool, "-c"] + (["-s", server] if server else [])
    env = dict(os.environ, JACK_NO_START_SERVER="1")
    try:
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.strip() == "running"


@contextlib.contextmanager
def open_host(backend: str = "auto", *, jack_server: str | None = None, name: str = "auralis-rt",
              channels: int = 2, connect_in: list[str] | None = None, connect_out: list[str] | None = None,
              autoconnect: bool = True, rate: int = 48000, period: int = 256,
              lock_memory: bool = True, device: int | str | None = None) -> Iterator[Host]:
    """Open and activate a backend; close it (and stop a private server) on exit,
    also on Ctrl-C or an exception.

    backend "auto": the named/default JACK server if it runs, else a private
    jackd (dummy driver, unique name, ``rate``/``period``).  "jack": the server
    must run.  "portaudio": a duplex PortAudio stream on ``device`` (index or
    name; None: the default device) at ``rate`` with block size ``period``.
    connect_in / connect_out: port names wired pairwise to in_* / from out_*;
    if not given and ``autoconnect``, the physical ports are used.
    """
    if backend not in BACKENDS:
        raise ValueError(f"open_host: backend = {backend!r} is not one of {', '.join(BACKENDS)}")
    if backend == "portaudio":
        from engine.backends.portaudio import PortAudioBackend

        pa = PortAudioBackend(device, channels=channels, sample_rate=rate, blocksize=period, lock_memory=lock_memory)
        try:
            pa.start()
            yield Host("portaudio", pa)
        finally:
            pa.destroy()
        return
    from engine.backends.jack import JackBackend, JackBackendError
    from engine.backends.jackd import PrivateJackServer

    with contextlib.ExitStack() as stack:
        private = None
        notes = []
        if not jack_server_running(jack_server):
            if backend == "jack":
                raise JackBackendError(f"JACK: no server {jack_server or 'default'!r} is running "
                                       "(start jackd, or use --backend auto for a private one)")
            private = stack.enter_context(PrivateJackServer(rate=rate, period=period))
            jack_server = private.name
            notes.append(f"started a private JACK server {private.name!r} (dummy driver, {rate} Hz, "
                         f"{period} frames); it stops on exit")
        jb = JackBackend(name, server=jack_server, channels=channels, lock_memory=lock_memory)
        stack.callback(jb.destroy)
        jb.activate()
        if connect_in or connect_out:
            jb.autoconnect(connect_in or [], connect_out or [])
        elif autoconnect:
            jb.autoconnect()
        yield Host("jack", jb, private, notes)


def final_telemetry(status) -> dict:
    """The fields `auralis-rt host --status-json` writes."""
    return {"xruns": status.xruns, "dsp_load": status.dsp_load, "callback_us_p99": status.callback_us_p99,
            "callback_us_max": status.callback_us_max, "latency_frames": status.latency_frames,
            "sample_rate": status.sample_rate, "period": status.period, "callbacks": status.callbacks,
            "shutdown": getattr(status, "shutdown", False), "shutdown_reason": getattr(status, "shutdown_reason", "")}


def status_line(status, meters: str = "") -> str:
    """One line for live monitoring."""
    state = status.state if not getattr(status, "shutdown", False) else f"server gone: {status.shutdown_reason}"
    return (f"[{state}] {status.sample_rate} Hz x {status.period}  dsp {100 * status.dsp_load:5.1f} %  "
            f"cb p50 {status.callback_us_p50:6.1f} us  p99 {status.callback_us_p99:6.1f} us  "
            f"max {status.callback_us_max:7.1f} us  xruns {status.xruns}  lat {status.latency_frames}"
            + (f"  {meters}" if meters else ""))


def run_host(host: Host, *, duration_s: float | None = None, status_json: str | Path | None = None,
             interval_s: float = 1.0, on_tick: Callable[[Any], None] | None = None,
             should_stop: Callable[[], bool] | None = None) -> Any:
    """The control loop of `auralis-rt host --no-repl`: every ``interval_s``
    collect retired objects and call ``on_tick(status)``; stop after
    ``duration_s`` (None: until Ctrl-C or ``should_stop()``) or when the server
    goes away.  Writes the final telemetry to ``status_json`` (atomically) and
    returns the final JackStatus."""
    backend = host.backend
    start = time.monotonic()
    try:
        while True:
            remaining = None if duration_s is None else duration_s - (time.monotonic() - start)
            if remaining is not None and remaining <= 0:
                break
            time.sleep(interval_s if remaining is None else max(0.0, min(interval_s, remaining)))
            backend.collect()
            status = backend.status()
            if on_tick is not None:
                on_tick(status)
            if getattr(status, "shutdown", False) or (should_stop is not None and should_stop()):
                break
    except KeyboardInterrupt:
        pass
    status = backend.status()
    if status_json is not None:
        path = Path(status_json)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(final_telemetry(status), indent=2) + "\n")
        os.replace(tmp, path)
    return status


def list_devices(jack_server: str | None = None) -> dict[str, list[dict]]:
    """For `auralis-rt devices`: JACK ports (if a server runs) and PortAudio
    devices (if python-sounddevice and libportaudio are there)."""
    result: dict[str, list[dict]] = {"jack": [], "portaudio": []}
    if jack_server_running(jack_server):
        import jack

        client = jack.Client("auralis-rt-devices", servername=jack_server, no_start_server=True)
        try:
            for port in client.get_ports():
                result["jack"].append({"name": port.name, "audio": port.is_audio,
                                       "direction": "input" if port.is_input else "output",
                                       "physical": port.is_physical})
        finally:
            client.close()
    from engine.backends.portaudio import PortAudioError, list_portaudio_devices

    try:
        result["portaudio"] = list_portaudio_devices(rescan=True)  # current, not as of import
    except PortAudioError:
        pass
    return result


def run_demo(*, seconds: float = 5.0, executor_factory: Callable[[int, float], Any] | None = None,
             channels: int = 2, print_fn: Callable[[str], None] = print,
             meters_fn: Callable[[Any], str] | None = None) -> Any:
    """`auralis-rt demo`: a private jackd, the engine, a synthesized source
    client playing into in_* and meters printed once per second.

    executor_factory(channels, sample_rate) builds the chain; None runs a
    pass-through.  meters_fn(executor) gives the meter text for each line (default:
    the output peak from the executor's telemetry).  Returns the final status."""
    import jack
    import numpy as np

    with open_host("auto", channels=channels, autoconnect=False) as host:
        for note in host.notes:
            print_fn(note)
        backend = host.backend
        rate = backend.status().sample_rate
        executor = executor_factory(channels, float(rate)) if executor_factory else None
        if executor is not None:
            backend.set_executor(executor)
        else:
            backend.set_passthrough()
        source = _DemoSource(host.server_name, channels, rate, jack, np)
        try:
            for c in range(channels):
                backend.connect(source.port_names[c], backend.inports[c])
            sinks = backend.ports(is_audio=True, is_input=True, is_physical=True)
            backend.autoconnect([], sinks)

            def tick(status):
                meters = ""
                if executor is not None and meters_fn is not None:
                    meters = meters_fn(executor)
                elif executor is not None:
                    t = executor.telemetry()
                    peak = 20 * np.log10(max(t.peak_hold, 1e-9))
                    meters = f"out peak {peak:6.1f} dBFS"
                    executor.clear_peaks()
                print_fn(status_line(status, meters))

            return run_host(host, duration_s=seconds, on_tick=tick)
        finally:
            source.close()


class _DemoSource:
    """A JACK-Client client (its own Python callback thread, not the engine's)
    playing a synthesized loop: a chord with a slow tremolo and soft noise."""

    def __init__(self, server: str, channels: int, rate: int, jack, np):
        seconds = 4
        t = np.arange(seconds * rate) / rate
        tone = sum(np.sin(2 * np.pi * f * t) for f in (110.0, 220.0, 277.18, 329.63)) / 4
        tone *= 0.5 + 0.5 * np.sin(2 * np.pi * 0.5 * t) ** 2
        rng = np.random.default_rng(1)
        self.loop = np.stack([(0.3 * tone + 0.02 * rng.standard_normal(t.size)).astype(np.float32)
                              for _ in range(channels)])
        self.pos = 0
        self.client = jack.Client("auralis-demo-source", servername=server, no_start_server=True)
        self.ports = [self.client.outports.register(f"out_{c + 1}") for c in range(channels)]
        self.port_names = [p.name for p in self.ports]
        self.client.set_process_callback(self._process)
        self.client.activate()

    def _process(self, frames: int) -> None:
        n = self.loop.shape[1]
        end = self.pos + frames
        for c, port in enumerate(self.ports):
            buf = port.get_array()
            if end <= n:
                buf[:] = self.loop[c, self.pos:end]
            else:
                k = n - self.pos
                buf[:k] = self.loop[c, self.pos:]
                buf[k:] = self.loop[c, :frames - k]
        self.pos = end % n

    def close(self) -> None:
        self.client.deactivate()
        self.client.close()
