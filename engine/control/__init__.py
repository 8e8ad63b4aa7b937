"""The control thread: one command layer used by the REPL, scripts and OSC.

Every parameter change goes through the graph's atomic publish; nothing else touches
the engine's state.

    session.py   Session: what commands act on (executor, backend, player, preset,
                 undo/redo, A/B); ControlError
    units.py     values as typed: -18dB, 25ms, 1.2kHz, 80%, 4:1, on/off
    commands.py  the typed commands and Dispatcher.execute(line) -> Reply
    repl.py      the prompt_toolkit REPL (completion, history, meter toolbar)
    script.py    command scripts (--script FILE, stdin)
    osc.py       the OSC server thread (--osc-port)
    driver.py    OfflineDriver: an executor fed by a Python thread (auralis-rt repl)
    run.py       what `auralis-rt host` and `auralis-rt repl` run: REPL, script or OSC
"""

from engine.control.commands import Dispatcher, Reply
from engine.control.session import ControlError, Session

__all__ = ["Dispatcher", "Reply", "ControlError", "Session"]
