"""What `auralis-rt host`, `auralis-rt repl` (and `play`) run once the engine is up:
the OSC server and control upkeep around them, then ``--script FILE``, then the REPL
(stdin is a terminal) or the commands on stdin (it is not).

    session = Session(executor, preset, backend=host.backend, player=player)
    dispatcher = Dispatcher(session)
    with control_services(session, dispatcher, osc_port=9000):
        status = interact(session, dispatcher, script="setup.txt")
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from typing import Callable, Iterator

from engine.control.commands import Dispatcher
from engine.control.script import open_script, run_script, stdin_lines
from engine.control.session import Session

__all__ = ["ControlSetupError", "Housekeeper", "control_services", "interact", "SCRIPT_FAILED"]

SCRIPT_FAILED = 1


class ControlSetupError(RuntimeError):
    """The control side cannot start as asked (OSC port taken, script unreadable)."""


class Housekeeper:
    """Calls ``session.housekeeping()`` every ``interval_s`` on its own thread (the
    REPL's main thread is blocked in the prompt): frees what the audio thread retired,
    rebuilds the chain on a new JACK sample rate, notices a server that went away."""

    def __init__(self, session: Session, interval_s: float = 0.5):
        self.session = session
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failed = False

    def start(self) -> "Housekeeper":
        self._thread = threading.Thread(target=self._run, name="auralis-control-upkeep", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                with self.session.lock:
                    self.session.housekeeping()
            except Exception as exc:  # reported once; the control thread goes on
                if not self._failed:
                    self._failed = True
                    self.session.notices.append(f"upkeep: {type(exc).__name__}: {exc}")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None


@contextlib.contextmanager
def control_services(session: Session, dispatcher: Dispatcher, *, osc_port: int | None = None,
                     osc_bind: str = "127.0.0.1", housekeeping: bool = True,
                     print_fn: Callable[[str], None] = lambda text: print(text, flush=True)) -> Iterator[object]:
    """The OSC server (only when ``osc_port`` is given) and the upkeep thread, stopped
    (and the session's offline driver with them) on exit.  Yields the OscServer or None."""
    osc = None
    keeper = None
    try:
        if osc_port is not None:
            from engine.control.osc import OscServer

            try:
                osc = OscServer(dispatcher, osc_port, osc_bind)
            except OSError as exc:
                raise ControlSetupError(f"--osc-port {osc_port}: cannot listen on {osc_bind}:{osc_port} "
                                        f"({exc.strerror or exc})") from None
            except OverflowError:
                raise ControlSetupError(f"--osc-port {osc_port}: not a UDP port (0..65535)") from None
            osc.start()
            host, port = osc.address
            print_fn(f"OSC: listening on udp://{host}:{port}")
        if housekeeping:
            keeper = Housekeeper(session).start()
        yield osc
    finally:
        if keeper is not None:
            keeper.stop()
        if osc is not None:
            osc.close()
        session.close()


def _read_script(path: str):
    try:
        return open_script(path)
    except OSError as exc:
        raise ControlSetupError(f"--script {path}: cannot be read ({exc.strerror or exc})") from None


def interact(session: Session, dispatcher: Dispatcher, *, script: str | None = None, repl: bool = True,
             stdin_is_tty: bool | None = None, duration_s: float | None = None,
             out: Callable[[str], None] | None = None, err: Callable[[str], None] | None = None,
             repl_factory: Callable[[Dispatcher], object] | None = None) -> int | None:
    """Run ``script`` (stops at its first failing line: returns SCRIPT_FAILED), then
    the REPL when ``repl`` and stdin is a terminal, or stdin's commands when it is not
    (then, with ``duration_s``, keep running until that many seconds since the call).
    Returns the exit status, or None when ``repl`` is False and nothing stopped the
    run (the caller goes on, e.g. `host --no-repl`'s status loop)."""
    err = err or (lambda text: print(text, file=sys.stderr, flush=True))
    started = time.monotonic()
    stop = lambda: session.stop_requested.is_set() or bool(session.server_gone)  # noqa: E731
    if script is not None:
        result = run_script(dispatcher, _read_script(script), script, out=out, err=err, should_stop=stop)
        if not result.ok:
            return SCRIPT_FAILED
        if result.quit:
            return 0
    if not repl:
        return None
    tty = sys.stdin.isatty() if stdin_is_tty is None else stdin_is_tty
    if tty:
        from engine.control.repl import Repl

        repl_obj = repl_factory(dispatcher) if repl_factory else Repl(dispatcher)
        return repl_obj.run()
    result = run_script(dispatcher, stdin_lines(), "<stdin>", out=out, err=err, should_stop=stop)
    if not result.ok:
        return SCRIPT_FAILED
    if duration_s is not None and not result.quit:
        remaining = duration_s - (time.monotonic() - started)
        while remaining > 0 and not stop():
            session.stop_requested.wait(min(remaining, 0.5))
            remaining = duration_s - (time.monotonic() - started)
    return 0


def resolve_preset(name_or_path: str):
    """A preset by name (user presets first, then shipped) or path, validated against
    the node types; PresetError (one line per problem) otherwise."""
    from graph.nodes import NODE_TYPES
    from presets import store

    return store.load(name_or_path, node_types=NODE_TYPES)
