"""Command scripts: ``--script FILE``, or commands on stdin when it is not a terminal.

One command per line, the same commands as the REPL.  Blank lines and lines starting
with ``#`` are skipped.  A script STOPS at the first line that fails (the error is
reported as ``FILE:LINE: message`` and the command exits with status 1), so a later
line never runs on top of a change that did not happen.  A line starting with ``-``
(as in make) may fail: its error is reported and the script goes on.  ``quit`` ends
the script and the host.
"""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass
from typing import Callable, Iterable

from engine.control.commands import Dispatcher

__all__ = ["ScriptResult", "run_script", "open_script", "stdin_lines"]


@dataclass(frozen=True)
class ScriptResult:
    ok: bool
    commands: int                 # command lines executed
    failures: int                 # failed lines (the last one stopped the script unless it was a "-" line)
    failed_line: int | None       # line number that stopped the script
    message: str                  # "FILE:LINE: error" when it stopped on an error
    quit: bool                    # the script said quit


def run_script(dispatcher: Dispatcher, lines: Iterable[str], name: str, *,
               out: Callable[[str], None] | None = None, err: Callable[[str], None] | None = None,
               should_stop: Callable[[], bool] | None = None) -> ScriptResult:
    """Execute ``lines`` (from a file named ``name``) one by one.

    ``out`` receives the text of successful replies, ``err`` one line per failure
    (``name:LINE: message``).  Stops at the first failure that is not a ``-`` line,
    at ``quit``, or when ``should_stop()`` (checked between lines) says so."""
    out = out or (lambda text: print(text, flush=True))
    err = err or (lambda text: print(text, file=sys.stderr, flush=True))
    commands = failures = 0
    number = 0
    for number, raw in enumerate(lines, 1):
        if should_stop is not None and should_stop():
            break
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        may_fail = text.startswith("-")
        if may_fail:
            text = text[1:].lstrip()
        reply = dispatcher.execute(text, source="script")
        commands += 1
        if not reply.ok:
            failures += 1
            message = f"{name}:{number}: {reply.text}"
            err(message)
            if not may_fail:
                return ScriptResult(False, commands, failures, number, message, False)
            continue
        if reply.text:
            out(reply.text)
        if reply.quit:
            return ScriptResult(True, commands, failures, None, "", True)
    return ScriptResult(True, commands, failures, None, "", False)


def open_script(path: str) -> Iterable[str]:
    """The lines of a script file (UTF-8; undecodable bytes become U+FFFD, so such a
    line fails with its number instead of the whole file being refused).  OSError
    (missing, unreadable) is raised before any line runs."""
    with open(path, "rb") as f:
        data = f.read()
    return data.decode("utf-8", errors="replace").splitlines()


def stdin_lines() -> Iterable[str]:
    """Lines of stdin as they arrive (UTF-8, undecodable bytes as U+FFFD)."""
    stream = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace") \
        if hasattr(sys.stdin, "buffer") else sys.stdin
    for line in stream:
        yield line
