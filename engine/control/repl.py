"""The interactive prompt (prompt_toolkit): Tab completion of commands, node and
parameter names, values, presets and JACK ports; history across sessions in the XDG
state dir; a bottom toolbar with live meters refreshed 5 times a second (``meter on``).

Every line goes to the same ``Dispatcher.execute`` as scripts and OSC.  Nothing a user
types ends the REPL: Ctrl-C clears the line (or interrupts a ``sleep``), Ctrl-D or
``quit`` leaves it; the caller then closes the host.
"""

from __future__ import annotations

import asyncio
import os
import shlex
from pathlib import Path
from typing import Callable, Iterable

from prompt_toolkit import PromptSession, print_formatted_text
from prompt_toolkit.application import run_in_terminal
from prompt_toolkit.completion import Completer, Completion
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.history import FileHistory, History, InMemoryHistory

from engine.control.commands import Dispatcher, Reply, meter_line

__all__ = ["Repl", "CommandCompleter", "BoundedFileHistory", "history_path", "TOOLBAR_REFRESH_S"]

TOOLBAR_REFRESH_S = 0.2
NOTICE_POLL_S = 0.2   # how soon a notice (new track, skipped file) shows above the prompt
HISTORY_ENTRIES = 10_000


def history_path() -> Path:
    """$XDG_STATE_HOME/auralis-rt/history (~/.local/state/auralis-rt/history)."""
    import platformdirs

    return platformdirs.user_state_path("auralis-rt") / "history"


class BoundedFileHistory(FileHistory):
    """prompt_toolkit's FileHistory that keeps the last ``limit`` entries: when the
    file holds more, it is rewritten (temp file + os.replace) when loaded."""

    def __init__(self, filename: str | os.PathLike, limit: int = HISTORY_ENTRIES):
        super().__init__(str(filename))
        self.limit = limit

    def load_history_strings(self) -> Iterable[str]:
        newest_first = list(super().load_history_strings())
        if len(newest_first) > self.limit:
            keep = list(reversed(newest_first[:self.limit]))
            tmp = f"{self.filename}.tmp"
            with open(tmp, "wb") as f:
                for entry in keep:
                    f.write(b"\n# kept\n")
                    for line in entry.split("\n"):
                        f.write(f"+{line}\n".encode("utf-8", errors="replace"))
            os.replace(tmp, self.filename)
            newest_first = newest_first[:self.limit]
        return newest_first


class CommandCompleter(Completer):
    """Completes the token under the cursor from the dispatcher's completion sources."""

    def __init__(self, dispatcher: Dispatcher):
        self.dispatcher = dispatcher

    def get_completions(self, document, complete_event):
        text = document.text_before_cursor
        try:
            tokens = shlex.split(text)
        except ValueError:  # inside an open quote: complete the raw word
            tokens = text.split()
        if text and not text[-1].isspace() and tokens:
            done, partial = tokens[:-1], tokens[-1]
        else:
            done, partial = tokens, ""
        try:
            candidates = self.dispatcher.completions(done, partial)
        except Exception:
            return
        seen = set()
        for cand in candidates:
            if cand in seen or not cand.startswith(partial):
                continue
            seen.add(cand)
            shown = shlex.quote(cand) if any(c.isspace() for c in cand) else cand
            yield Completion(shown, start_position=-len(document.get_word_before_cursor(WORD=True)))


class Repl:
    """The prompt loop over a Dispatcher.

    ``input``/``output``: prompt_toolkit Input/Output (tests pass a pipe input and
    DummyOutput).  ``history``: a History, a path, or None for the XDG state file
    (falls back to memory, with a notice, where that cannot be written).
    ``print_fn(text, ok)``: where replies go (default: the prompt's output)."""

    def __init__(self, dispatcher: Dispatcher, *, input=None, output=None, history: History | str | Path | None = None,
                 print_fn: Callable[[str, bool], None] | None = None, refresh_s: float = TOOLBAR_REFRESH_S):
        self.dispatcher = dispatcher
        self.session = dispatcher.session
        self.refresh_s = refresh_s
        self.notes: list[str] = []
        if not isinstance(history, History):
            path = Path(history) if history is not None else history_path()
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                with open(path, "ab"):
                    pass
                history = BoundedFileHistory(path)
            except OSError as exc:
                self.notes.append(f"history is not saved: {path}: {exc.strerror or exc}")
                history = InMemoryHistory()
        self.history = history
        self.prompt_session = PromptSession(history=history, completer=CommandCompleter(dispatcher),
                                            complete_while_typing=False, input=input, output=output,
                                            bottom_toolbar=self.toolbar, enable_suspend=False)
        self._print = print_fn or self._print_to_output
        self.replies: int = 0

    # -- output ------------------------------------------------------------------
    def _print_to_output(self, text: str, ok: bool) -> None:
        out = self.prompt_session.output
        if ok:
            print_formatted_text(text, output=out)
        else:
            print_formatted_text(FormattedText([("ansired", f"error: {text}")]), output=out)

    def say(self, text: str, ok: bool = True) -> None:
        try:
            self._print(text, ok)
        except Exception:
            pass

    # -- prompt and toolbar --------------------------------------------------------
    def prompt_text(self) -> str:
        s = self.session
        try:
            marker = "*" if s.modified else ""
            return f"auralis-rt [{s.preset.name}{marker}]> "
        except Exception:
            return "auralis-rt> "

    def toolbar_text(self) -> str:
        """The toolbar line: live meters when they are on (never raises)."""
        s = self.session
        try:
            if s.server_gone:
                return f"the audio server went away ({s.server_gone}); quit to exit"
            if not s.meters_on:
                return "meter on: live meters here  |  help: commands  |  Tab completes  |  Ctrl-D quits"
            return meter_line(s.meters(take=True), s.engine_status())
        except Exception as exc:
            return f"meters unavailable: {type(exc).__name__}: {exc}"

    def toolbar(self):
        return self.toolbar_text()

    # -- the loop ------------------------------------------------------------------
    def _drain_notices(self) -> None:
        while self.notes:
            self.say(self.notes.pop(0))
        while self.session.notices:
            try:
                self.say(self.session.notices.popleft())
            except IndexError:
                break

    def handle(self, line: str) -> Reply | None:
        """Run one typed line (blank lines are skipped) and print the reply."""
        if not line.strip():
            return None
        reply = self.dispatcher.execute(line, source="repl")
        self.replies += 1
        if reply.text:
            self.say(reply.text, reply.ok)
        return reply

    def run(self) -> int:
        """Prompt until Ctrl-D, ``quit`` or a stop request; returns 0."""
        while not self.session.stop_requested.is_set():
            try:
                if self._step():
                    break
            except KeyboardInterrupt:
                # Ctrl-C while no prompt is up (the terminal is in cooked mode then, so it
                # arrives as SIGINT): what was running is interrupted, the REPL goes on.
                self.say("interrupted", False)
        self._drain_notices()
        return 0

    def _watch_notices(self) -> None:
        """While the prompt is up, print notices that arrive (a new track, a skipped file,
        a sample-rate change) above it within NOTICE_POLL_S, not only at the next command."""
        app = self.prompt_session.app

        async def watch() -> None:
            while True:
                await asyncio.sleep(NOTICE_POLL_S)
                if self.notes or self.session.notices:
                    await run_in_terminal(self._drain_notices)

        app.create_background_task(watch())

    def _step(self) -> bool:
        """One prompt and its command; True when the REPL should end."""
        self._drain_notices()
        try:
            line = self.prompt_session.prompt(
                self.prompt_text(), refresh_interval=self.refresh_s if self.session.meters_on else 0,
                pre_run=self._watch_notices)
        except KeyboardInterrupt:  # Ctrl-C at the prompt: the line is dropped
            return False
        except EOFError:  # Ctrl-D on an empty line
            return True
        except Exception as exc:  # a prompt_toolkit failure: say it and prompt again
            self.say(f"prompt: {type(exc).__name__}: {exc}", False)
            return False
        reply = self.handle(line)
        return reply is not None and reply.quit
