"""The REPL driven like a user: prompt_toolkit's pipe input (keys, Tab, Ctrl-C, Ctrl-D)
and DummyOutput, on its own thread, against a running engine (tests/control_rig.py)."""

from __future__ import annotations

import queue
import re
import threading
import time

import pytest
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from engine.control.repl import BoundedFileHistory, Repl, history_path
from tests.control_rig import Rig, TONE_DBFS, rig, sine_rms_db, write_probe_preset  # noqa: F401 (rig: fixture)
from tests.test_control_commands import HOSTILE


class Driven:
    """A Repl on a thread; ``type(text)`` sends keys, ``reply()`` waits for the next printed reply."""

    def __init__(self, rig: Rig, history):
        self.replies: queue.Queue = queue.Queue()
        self._pipe_cm = create_pipe_input()
        self.pipe = self._pipe_cm.__enter__()
        self.repl = Repl(rig.dispatcher, input=self.pipe, output=DummyOutput(), history=history,
                         print_fn=lambda text, ok: self.replies.put((ok, text)), refresh_s=0.05)
        self.exit_code = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        self.exit_code = self.repl.run()

    def type(self, text: str) -> None:
        self.pipe.send_text(text)

    def line(self, text: str, timeout_s: float = 10.0) -> tuple[bool, str]:
        # Completion runs asynchronously: after a Tab, give it a moment before the next keys.
        for i, part in enumerate(text.split("\t")):
            if i:
                self.type("\t")
                time.sleep(0.15)
            self.type(part)
        self.type("\r")
        return self.reply(timeout_s)

    def reply(self, timeout_s: float = 10.0) -> tuple[bool, str]:
        return self.replies.get(timeout=timeout_s)

    def close(self) -> None:
        if self.thread.is_alive():
            self.type("\x04")  # Ctrl-D
            self.thread.join(10)
        self._pipe_cm.__exit__(None, None, None)


@pytest.fixture
def repl(rig):
    d = Driven(rig, history=None)  # the XDG state file (under tmp_path)
    yield d
    d.close()


def momentary_lufs(toolbar: str) -> float:
    return float(re.search(r"M (-?[\d.]+|-inf) LUFS", toolbar).group(1))


def test_set_in_the_repl_changes_the_audio_and_the_toolbar_shows_it(rig, repl):
    assert repl.line("meter on") == (True, "meters on (the toolbar under the prompt)")
    rig.settle(0.5)  # the momentary window is 400 ms
    before_level, before_lufs = rig.level_db(), momentary_lufs(repl.repl.toolbar_text())
    # A -20 dBFS sine on both channels reads -20 LUFS (997 Hz; 937.5 Hz within 0.1 dB).
    assert before_lufs == pytest.approx(TONE_DBFS, abs=0.15)
    assert repl.line("set input.gain_db -6dB") == (True, "input.gain_db = -6 dB (was 0 dB)")
    rig.settle(0.5)
    assert rig.level_db() - before_level == pytest.approx(-6.0, abs=0.01)
    toolbar = repl.repl.toolbar_text()
    assert momentary_lufs(toolbar) - before_lufs == pytest.approx(-6.0, abs=0.05)
    assert re.search(r"GR comp 0\.0 limiter 0\.0 dB  corr \+1\.00  DSP [\d.]+ %  xruns -  lat 72 \(1\.50 ms\)",
                     toolbar), toolbar
    # The compressor's gain reduction appears in the toolbar as it happens.
    repl.line("set comp.threshold_db -39dB")  # RMS -29 dBFS now: 10 dB over at 4:1
    rig.settle(0.5)
    assert float(re.search(r"GR comp ([\d.]+)", repl.repl.toolbar_text()).group(1)) == pytest.approx(7.5, abs=0.3)
    assert repl.line("undo")[0] and repl.line("undo")[0]
    assert rig.session.value("input.gain_db") == 0.0
    rig.settle(0.6)  # the compressor's 50 ms release
    assert rig.level_db() == pytest.approx(sine_rms_db(TONE_DBFS), abs=0.01)


def test_tab_completes_commands_nodes_parameters_and_values(rig, repl):
    assert repl.line("se\t comp.thr\t -30\t") == (True, "comp.threshold_db = -30 dBFS (was -6 dBFS)")
    assert repl.line("set comp.det\t p\t") == (True, "comp.detector = peak (was rms)")
    assert repl.line("bypass li\t")[1] == "limiter: bypassed"
    assert repl.line("preset lo\t tra\t")[1].startswith("preset transparent:")


def test_completer_candidates(rig):
    from prompt_toolkit.document import Document

    from engine.control.repl import CommandCompleter

    c = CommandCompleter(rig.dispatcher)

    def words(text):
        return [x.text for x in c.get_completions(Document(text), None)]

    assert words("u") == ["undo"]
    assert words("set comp.r") == ["comp.ratio", "comp.release_ms", "comp.rms_ms"]
    assert words("set comp.link ") == ["max", "mean", "none"]
    assert words("set comp.ratio 4:1 limiter.a") == ["limiter.auto_release"]
    assert words("set limiter.auto_release ") == ["on", "off"]
    assert words("preset load w") == ["warm"]
    assert words("ab store ") == ["a", "b"]
    assert "input" in words("enable ") and "meter" not in words("enable ")
    assert words("connect ") == []  # no JACK client here: nothing to offer, nothing raised
    assert words("nosuch ") == [] and words("set 'unclosed") == []


def test_hostile_input_never_ends_the_repl_and_applies_nothing(rig, repl):
    before = rig.session.values()
    answered = 0
    for line in HOSTILE:
        if not line.strip() or "\x1b" in line or "\x00" in line or "\ud800" in line:
            continue  # keys or not encodable: handled by the dispatcher tests
        ok, text = repl.line(line)
        answered += 1
        assert not ok and text, line
    assert answered > 60
    repl.type("\x03")  # Ctrl-C on an empty line: nothing happens
    repl.type("set input.gain_db -9\x03")  # Ctrl-C clears a typed line: not run
    assert repl.line("get input.gain_db")[1].startswith("input.gain_db = 0 dB  [-120, 48] dB")
    assert rig.session.values() == before
    assert repl.thread.is_alive()


def test_an_exception_inside_a_command_or_the_toolbar_does_not_end_the_repl(rig, repl, monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("sensor on fire")

    monkeypatch.setattr(rig.session, "meters", broken)
    assert repl.line("meter") == (False, "internal error: RuntimeError: sensor on fire")
    assert repl.line("meter on")[0]
    assert repl.repl.toolbar_text() == "meters unavailable: RuntimeError: sensor on fire"
    time.sleep(0.2)  # a few toolbar refreshes with the broken meter
    assert repl.line("status")[0]


def test_ctrl_d_and_quit_leave_cleanly(rig):
    d = Driven(rig, history=None)
    d.type("\x04")
    d.thread.join(10)
    assert not d.thread.is_alive() and d.exit_code == 0
    d.close()
    d = Driven(rig, history=None)
    assert d.line("quit") == (True, "bye")
    d.thread.join(10)
    assert not d.thread.is_alive() and d.exit_code == 0
    assert rig.session.stop_requested.is_set()
    d.close()


def test_history_is_kept_across_sessions_in_the_xdg_state_dir(rig, tmp_path):
    path = history_path()
    assert path == tmp_path / "state" / "auralis-rt" / "history"
    d = Driven(rig, history=None)
    d.line("set comp.ratio 3:1")
    d.line("get comp")
    d.close()
    again = Driven(rig, history=None)
    strings = list(again.repl.history.load_history_strings())
    assert strings[:2] == ["get comp", "set comp.ratio 3:1"]  # newest first
    again.type("\x10\x10\r")  # Up, Up, Enter: the older line runs again
    assert again.reply() == (True, "no change: comp.ratio is already 3:1")
    again.close()


def test_history_file_is_bounded(tmp_path):
    path = tmp_path / "history"
    h = BoundedFileHistory(path, limit=5)
    for i in range(12):
        h.store_string(f"set input.gain_db -{i}")
    kept = list(BoundedFileHistory(path, limit=5).load_history_strings())
    assert kept == [f"set input.gain_db -{i}" for i in (11, 10, 9, 8, 7)]
    assert list(BoundedFileHistory(path, limit=5).load_history_strings()) == kept  # the file itself was trimmed


def test_unwritable_history_falls_back_to_memory_with_a_note(rig, tmp_path):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("")
    d = Driven(rig, history=blocker / "history")
    assert d.reply()[1].startswith(f"history is not saved: {blocker / 'history'}")
    assert d.line("status")[0]
    d.close()


def test_file_names_complete_for_queue_add_and_preset_paths(rig, tmp_path, monkeypatch):
    from prompt_toolkit.document import Document

    from engine.control.repl import CommandCompleter

    (tmp_path / "music").mkdir()
    (tmp_path / "music" / "a song.flac").write_text("")
    (tmp_path / "music" / "b.wav").write_text("")
    c = CommandCompleter(rig.dispatcher)
    monkeypatch.chdir(tmp_path)
    assert [x.text for x in c.get_completions(Document("preset load ./pro"), None)] == ["./probe.json"]
    assert [x.text for x in c.get_completions(Document("preset load mu"), None)] == []  # names, not files
    # queue add needs a player: the command itself is refused, and completion of its
    # files goes through the same source.
    from engine.control.commands import complete_path

    assert complete_path("music/") == ["music/a song.flac", "music/b.wav"]
    assert complete_path(f"{tmp_path}/mu") == [f"{tmp_path}/music/"]


def test_a_notice_shows_above_the_prompt_without_waiting_for_a_command(repl, rig):
    """A new track or a skipped file (session notices, from other threads) is printed while
    the prompt waits for input, not only when the next command is typed."""
    assert repl.line("status")[0]
    deadline = time.monotonic() + 5.0    # wait until the prompt is up again, nothing typed
    while not repl.repl.prompt_session.app.is_running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert repl.repl.prompt_session.app.is_running
    rig.session.notices.append("track 2/2 next.flac")
    assert repl.reply(timeout_s=5.0) == (True, "track 2/2 next.flac")
