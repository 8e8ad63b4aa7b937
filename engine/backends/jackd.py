"""A private JACK server (jackd, dummy driver) for the embedded default and tests.

    with PrivateJackServer(rate=48000, period=256) as server:
        backend = JackBackend(server=server.name)

The server gets a unique name, so it never collides with a user's server or
another test run.  It is stopped when the ``with`` block ends, at interpreter
exit (atexit), on Ctrl-C (KeyboardInterrupt unwinds through ``with``), and —
because the child is started with PR_SET_PDEATHSIG — even when this process is
killed outright.  ``JACK_NO_START_SERVER=1`` is set in this process, so libjack
never tries to start a server of its own (on ALSA, with a screen of errors).
"""

from __future__ import annotations

import atexit
import ctypes
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import uuid
import weakref
from pathlib import Path

__all__ = ["PrivateJackServer", "JackdError", "JackdNotFound", "no_start_server", "reclaim_stale_server_slots"]

_PR_SET_PDEATHSIG = 1

# JACK 2's shared registry (common/shm.{h,c}): a header with MAX_SERVERS = 8
# server slots {pid_t pid; char name[...]}, guarded by a System V semaphore.
_REGISTRY = Path("/dev/shm/jack-shm-registry")
_REGISTRY_MAGIC = 0x4A41434B  # "JACK"
_REGISTRY_SEM_KEY = 0x282929
_MAX_SERVERS = 8
_SERVERS_OFFSET = 24
_SEM_UNDO = 0x1000


class JackdError(RuntimeError):
    """jackd could not be started or did not come up."""


class JackdNotFound(JackdError):
    """The jackd (or jack_wait) executable is not installed."""


def no_start_server() -> None:
    """Set JACK_NO_START_SERVER=1 for this process (libjack reads it at every client open)."""
    os.environ["JACK_NO_START_SERVER"] = "1"


no_start_server()

_live: "weakref.WeakSet[PrivateJackServer]" = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for server in list(_live):
        server.stop()


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except Exception:
        pass


class _SemBuf(ctypes.Structure):
    _fields_ = [("sem_num", ctypes.c_ushort), ("sem_op", ctypes.c_short), ("sem_flg", ctypes.c_short)]


def reclaim_stale_server_slots() -> list[str]:
    """Free the registry slots of JACK servers whose process is gone.

    jackd reclaims a dead server's slot only when a server of the *same name*
    starts; a server killed outright (SIGKILL, OOM, a crash) under a unique
    name keeps its slot, and after 8 of them no jackd can start on the machine
    ("Too many servers already active").  This clears such slots under the
    registry's own semaphore.  Returns the names reclaimed; never raises."""
    import mmap
    import struct

    if not _REGISTRY.exists():
        return []
    libc = ctypes.CDLL(None, use_errno=True)
    semid = libc.semget(_REGISTRY_SEM_KEY, 0, 0)
    if semid < 0:
        return []
    reclaimed: list[str] = []
    lock, unlock = _SemBuf(0, -1, _SEM_UNDO), _SemBuf(0, 1, _SEM_UNDO)
    if libc.semop(semid, ctypes.byref(lock), 1) != 0:
        return []
    try:
        with open(_REGISTRY, "r+b") as f, mmap.mmap(f.fileno(), 0) as mem:
            magic, = struct.unpack_from("<I", mem, 0)
            hdr_len, = struct.unpack_from("<i", mem, 16)
            stride = (hdr_len - _SERVERS_OFFSET) // _MAX_SERVERS
            if magic != _REGISTRY_MAGIC or stride < 8:
                return []
            for i in range(_MAX_SERVERS):
                off = _SERVERS_OFFSET + i * stride
                pid, = struct.unpack_from("<i", mem, off)
                if pid <= 0:
                    continue
                try:
                    os.kill(pid, 0)
                    continue  # alive (or someone else's)
                except PermissionError:
                    continue
                except ProcessLookupError:
                    pass
                reclaimed.append(bytes(mem[off + 4:off + stride]).split(b"\0")[0].decode(errors="replace"))
                mem[off:off + stride] = bytes(stride)
    except (OSError, ValueError):
        pass
    finally:
        libc.semop(semid, ctypes.byref(unlock), 1)
    return reclaimed


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise JackdNotFound(
            f"{tool} not found on PATH; install JACK 2 "
            "(Debian/Ubuntu: apt-get install --no-install-recommends jackd2)"
        )
    return path


class PrivateJackServer:
    """A jackd process with the dummy driver under a unique server name.

    Parameters: ``rate`` (Hz), ``period`` (frames per cycle), ``name`` (default:
    ``auralis-<pid>-<random>``), ``realtime`` (jackd ``-R``, else ``-r``; a server
    without real-time permission falls back by itself), ``inputs`` / ``outputs``
    (dummy capture/playback ports), ``timeout_s`` for coming up.
    """

    def __init__(self, *, rate: int = 48000, period: int = 256, name: str | None = None,
                 realtime: bool = True, inputs: int = 2, outputs: int = 2, timeout_s: float = 10.0):
        if not 8000 <= int(rate) <= 384000:
            raise ValueError(f"PrivateJackServer: rate = {rate} is outside [8000, 384000] Hz")
        if not 16 <= int(period) <= 8192 or int(period) & (int(period) - 1):
            raise ValueError(f"PrivateJackServer: period = {period} is not a power of two in [16, 8192] frames")
        self.rate = int(rate)
        self.period = int(period)
        self.name = name or f"auralis-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.realtime = realtime
        self.inputs = int(inputs)
        self.outputs = int(outputs)
        self.timeout_s = float(timeout_s)
        self._proc: subprocess.Popen | None = None
        self._log: Path | None = None
        self._lock = threading.RLock()

    # -- lifecycle -------------------------------------------------------
    def start(self) -> "PrivateJackServer":
        """Start jackd and wait (jack_wait -w) until clients can connect."""
        with self._lock:
            if self.running:
                return self
            jackd = _require("jackd")
            jack_wait = _require("jack_wait")
            reclaim_stale_server_slots()  # else 8 killed servers block every jackd here
            env = dict(os.environ, JACK_NO_START_SERVER="1", JACK_DEFAULT_SERVER=self.name)
            fd, log = tempfile.mkstemp(prefix=f"jackd-{self.name}-", suffix=".log")
            self._log = Path(log)
            cmd = [jackd, "-n", self.name, "-R" if self.realtime else "-r", "-d", "dummy",
                   "-r", str(self.rate), "-p", str(self.period),
                   "-C", str(self.inputs), "-P", str(self.outputs)]
            try:
                # Own session: a Ctrl-C in the terminal reaches us, not jackd, so we
                # close our clients first and then stop the server in order.
                self._proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=fd, stderr=fd,
                                              start_new_session=True, preexec_fn=_die_with_parent)
            finally:
                os.close(fd)
            _live.add(self)
            try:
                self._wait_ready(jack_wait, env)
            except BaseException:  # includes KeyboardInterrupt while waiting
                self.stop()
                raise
            return self

    def _wait_ready(self, jack_wait: str, env: dict) -> None:
        try:
            result = subprocess.run([jack_wait, "-s", self.name, "-w", "-t", str(max(1, round(self.timeout_s)))],
                                    env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                    timeout=self.timeout_s + 5)
            ready = result.returncode == 0 and ("available" in result.stdout or "running" in result.stdout)
        except subprocess.TimeoutExpired:
            ready = False
        if not ready or self._proc.poll() is not None:
            code = self._proc.poll()
            state = f"exited with status {code}" if code is not None else f"not ready after {self.timeout_s:g} s"
            raise JackdError(f"jackd -n {self.name} -d dummy {state}: {self.log_tail()}")

    def stop(self, timeout_s: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout_s``.  Idempotent; never raises."""
        with self._lock:
            proc, self._proc = self._proc, None
            _live.discard(self)
            if proc is not None and proc.poll() is None:
                try:
                    proc.terminate()
                    proc.wait(timeout_s)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                except (OSError, KeyboardInterrupt):
                    proc.kill()
            if proc is not None:
                # A server that died without cleaning up (killed, crashed) leaves
                # its registry slot and its files; the name is ours alone.
                reclaim_stale_server_slots()
                for leftover in [*Path("/dev/shm").glob(f"jack_{self.name}_*"),
                                 *Path("/dev/shm").glob(f"jack_sem.*_{self.name}_*")]:
                    try:
                        leftover.unlink()
                    except OSError:
                        pass
            if self._log is not None:
                try:
                    self._log.unlink()
                except OSError:
                    pass
                self._log = None

    def kill(self) -> None:
        """SIGKILL the server (tests: a server that dies under a running client)."""
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                self._proc.kill()
                self._proc.wait()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self._log.read_text(errors="replace") if self._log else ""
        except OSError:
            text = ""
        tail = [line.strip() for line in text.strip().splitlines()[-lines:] if line.strip()]
        return " | ".join(tail) or "(no output)"

    def __enter__(self) -> "PrivateJackServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"PrivateJackServer(name={self.name!r}, rate={self.rate}, period={self.period}, {state})"
