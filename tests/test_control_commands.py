"""The command layer against a running engine (an Executor driven by a real-time paced
thread, fed a -20 dBFS 937.5 Hz tone): what a command does is measured in the output."""

from __future__ import annotations

import math
import threading

import pytest

from engine.control.commands import Dispatcher
from engine.control.script import run_script
from tests.control_rig import Rig, TONE_DBFS, rig, sine_rms_db, write_probe_preset  # noqa: F401 (rig: fixture)


def param_blocks(rig) -> int:
    return rig.executor.telemetry().param_blocks


def test_set_changes_the_output_level_by_the_value_in_db(rig):
    before = rig.level_db()
    assert before == pytest.approx(sine_rms_db(TONE_DBFS), abs=0.01)
    reply = rig.run("set input.gain_db -6 dB")
    assert reply.value == {"input.gain_db": -6.0}
    assert reply.text == "input.gain_db = -6 dB (was 0 dB)"
    rig.settle(0.1)  # the gain ramp is 5 ms; the level is measured over the last 50 ms
    assert rig.level_db() - before == pytest.approx(-6.0, abs=0.01)


def test_compressor_threshold_and_ratio_give_the_static_curve_and_the_meter_shows_it(rig):
    before = rig.level_db()
    # The tone's RMS is -23 dBFS: 10 dB over a -33 dBFS threshold at 4:1 -> 7.5 dB of gain reduction.
    rig.run("set comp.threshold_db -33dB comp.ratio 4:1")
    rig.settle(0.4)
    assert rig.level_db() - before == pytest.approx(-7.5, abs=0.3)
    gr = rig.session.meters().gain_reduction_db["comp"]
    assert gr == pytest.approx(7.5, abs=0.3)
    assert "GR comp 7." in rig.run("meter").text


def test_undo_restores_the_exact_previous_values_and_redo_reapplies(rig):
    start = rig.session.values()
    rig.run("set comp.threshold_db -17.123456789 comp.attack_ms 0.0125s")
    rig.run("set input.gain_db -3.3333333333333335")
    rig.run("bypass comp")
    assert rig.session.value("comp.attack_ms") == 12.5
    assert rig.run("undo 3").value["comp.threshold_db"] == start["comp.threshold_db"]
    assert rig.session.values() == start  # bit for bit, every parameter
    rig.run("redo 2")
    assert rig.session.value("comp.threshold_db") == -17.123456789
    assert rig.session.value("input.gain_db") == -3.3333333333333335
    assert rig.session.value("comp.bypass") == 0.0
    assert rig.run("redo 2").value == {"comp.bypass": 1.0}  # only one step was left to redo
    assert not rig.dispatcher.execute("redo").ok
    rig.settle(0.1)
    assert rig.level_db() == pytest.approx(sine_rms_db(TONE_DBFS) - 3.3333333333333335, abs=0.01)


def test_ab_switches_every_parameter_in_one_snapshot(rig):
    rig.run("ab store a")
    rig.run("set input.gain_db -12 comp.ratio 8:1 comp.detector peak")
    rig.run("ab store b")
    a, b = rig.session.slots["a"], rig.session.slots["b"]
    rig.settle(0.1)
    level_b = rig.level_db()
    blocks = param_blocks(rig)
    reply = rig.run("ab a")
    assert reply.value == {k: a[k] for k in ("input.gain_db", "comp.ratio", "comp.detector")}
    rig.settle(0.1)
    assert param_blocks(rig) == blocks + 1  # three parameters, one snapshot
    assert rig.session.values() == a
    assert rig.level_db() - level_b == pytest.approx(12.0, abs=0.01)
    rig.run("ab")  # toggles to B
    assert rig.session.values() == b
    rig.run("undo")  # an A/B switch is a change like any other
    assert rig.session.values() == a


def test_preset_saved_and_reloaded_reproduces_every_parameter_exactly(rig, tmp_path):
    rig.run("set input.gain_db -1.7 comp.threshold_db -21.37 comp.ratio 3.3:1 comp.knee_db 4.5 "
            "comp.attack_ms 3.3ms comp.release_ms 0.333s comp.makeup_db 1.1 comp.auto_makeup on "
            "comp.link mean comp.detector peak comp.rms_ms 7.7 limiter.ceiling_db -2.35 limiter.release_ms 77 "
            "limiter.auto_release on intensity 83%")
    rig.run("bypass comp")
    saved = rig.session.values()
    path = rig.run("preset save mine").value
    assert path.startswith(str(tmp_path / "config"))
    rig.run("preset load warm")  # another chain altogether
    assert "eq.band_01_db" in rig.session.values()
    rig.run("preset load mine")
    assert rig.session.values() == saved
    probe_path = str(tmp_path / "probe.json")
    assert not rig.dispatcher.execute("preset save mine").ok  # exists: refused, nothing written
    assert rig.run("preset save mine --force").ok
    assert "mine" in rig.run("preset list").value
    diff = rig.run(f"preset diff {probe_path}").value  # by path: probe is not in the user directory
    assert ("comp.ratio", 4.0, 3.3) in diff and ("intensity", 1.0, 0.83) in diff


HOSTILE = [
    "", "   ", "\t", "# only a comment", "\x00", "set comp.ratio 4\x1b[2J", "set\u200bcomp.ratio 4", "\ud800",
    "sét comp.ratio 4", "☃", "set comp.ratio ４", "set compré.ratio 4", "SET", "nosuch command",
    "set", "set comp.ratio", "set comp.ratio nan", "set comp.ratio NaN", "set comp.ratio inf", "set comp.ratio -inf",
    "set comp.ratio 1e999", "set comp.ratio 1e308", "set comp.ratio -1e308", "set comp.ratio 4:0", "set comp.ratio 0:1",
    "set comp.ratio 4:1:1", "set comp.ratio 4dB", "set comp.ratio 1_000", "set comp.threshold_db 10ms",
    "set comp.threshold_db -10 Hz", "set comp.threshold_db -10 parsecs", "set comp.threshold_db 21",
    "set comp.ratio 2 comp.threshold_db 10ms",  # the first would be fine: nothing is applied
    "set comp.ratio=2 comp.attack_ms=-1", "set input.gain_db 49", "set intensity 2", "set intensity 101%",
    "set comp.detector 7", "set comp.detector loud", "set comp.auto_makeup 0.5",
    "set limiter.lookahead_ms 2", "set comp.bypass maybe", "set nosuch.param 1", "set comp.nosuch 1",
    "set .ratio 1", "set comp. 1", "set comp 1", "get nosuch", "get comp.nosuch", "bypass", "bypass nosuch",
    "bypass meter", "enable comp.ratio", "undo 0", "undo -1", "undo 99999", "undo x", "redo", "ab", "ab c",
    "ab store", "ab store c", "ab a", "preset load", "preset load nosuch", "preset load ../../etc/passwd",
    "preset load /dev/null", "preset save", "preset save ../evil", "preset save NotAName", "preset frob",
    "meter maybe", "ports", "connect a b", "play", "seek 10", "queue", "sleep -1", "sleep 1e9", "sleep nan",
    "help nosuch", "set 'unclosed", 'set "comp.ratio 4', "x" * 5000, "set comp.ratio " + "9" * 400,
]


def test_hostile_lines_are_refused_in_one_line_and_change_nothing(rig):
    before = rig.session.values()
    blocks_before = param_blocks(rig)
    in_flight = rig.executor.in_flight
    for line in HOSTILE:
        reply = rig.dispatcher.execute(line)
        assert not reply.ok, f"{line!r} was accepted: {reply.text}"
        assert reply.text and "\n" not in reply.text, (line, reply.text)
    assert rig.session.values() == before
    rig.settle(0.05)
    assert param_blocks(rig) == blocks_before
    assert rig.executor.in_flight <= in_flight
    # The engine still takes a valid command afterwards.
    assert rig.run("set comp.ratio 2:1").value == {"comp.ratio": 2.0}


@pytest.mark.parametrize("line, message", [
    ("set comp.threshold_db 10ms", "comp.threshold_db: '10ms' is in ms; comp.threshold_db takes dBFS"),
    ("set comp.attack_ms -3dB", "comp.attack_ms: '-3dB' is in dB; comp.attack_ms takes ms or s"),
    ("set comp.threshold_db 30", "comp.threshold_db = 30.0 is outside [-100, 20] dBFS"),
    ("set comp.ratio 1e308", "comp.ratio = 1e+308 is outside [1, 1000]"),
    ("set comp.ratio nan", "comp.ratio: 'nan' is not a finite number"),
    ("set comp.ratio 1e999", "comp.ratio: '1e999' is too large"),
    ("set comp.detector loud", "comp.detector: 'loud' is not one of peak, rms"),
    ("set intensity 101%", "intensity = 1.01 is outside [0, 1]"),
    ("set limiter.lookahead_ms 2", "limiter (limiter) has no parameter 'lookahead_ms' (it has: ceiling_db, "
                                   "release_ms, auto_release, bypass); lookahead_ms is fixed when the chain is "
                                   "built (preset)"),
    ("sét comp.ratio 4", "unknown command 'sét'; did you mean set? (help lists the commands)"),
    ("set comp.ratio \x00", "the line contains the control character U+0000"),
    ("", "empty command line (help lists the commands)"),
])
def test_refusals_name_the_value_and_what_is_allowed(rig, line, message):
    reply = rig.dispatcher.execute(line)
    assert (reply.ok, reply.text) == (False, message)


def test_ten_thousand_script_lines_at_full_speed(rig):
    """A script flooding valid and invalid changes: every valid one applied in order,
    every invalid one refused with its line number, the engine keeps running."""
    lines, expected_failures = [], []
    for i in range(10_000):
        if i % 5 == 4:
            lines.append(f"-set input.gain_db {100 + i}dB")  # out of range: refused, the script goes on
            expected_failures.append(i + 1)
        else:
            lines.append(f"set input.gain_db -{(i % 40) / 4:g}")
    lines.append("set input.gain_db -6")
    errors, outputs = [], []
    blocks = rig.blocks
    result = run_script(rig.dispatcher, lines, "flood.txt", out=outputs.append, err=errors.append)
    assert result.ok and result.commands == 10_001 and result.failures == 2000
    assert [int(e.split(":")[1]) for e in errors] == expected_failures
    assert errors[0].startswith("flood.txt:5: input.gain_db")
    assert rig.session.value("input.gain_db") == -6.0
    assert rig.blocks > blocks  # the audio side ran meanwhile
    rig.settle(0.1)
    assert rig.level_db() == pytest.approx(sine_rms_db(TONE_DBFS) - 6.0, abs=0.01)


def test_script_stops_at_the_first_failing_line(rig):
    errors = []
    result = run_script(rig.dispatcher, ["set input.gain_db -1", "", "# comment", "set input.gain_db 99",
                                         "set input.gain_db -2"], "s.txt", out=lambda t: None, err=errors.append)
    assert (result.ok, result.failed_line) == (False, 4)
    assert errors == ["s.txt:4: input.gain_db = 99.0 is outside [-120, 48] dB"]
    assert rig.session.value("input.gain_db") == -1.0


def test_two_threads_share_the_dispatcher_without_tearing_undo(rig):
    """The OSC thread and the REPL call execute concurrently: every change lands, and
    undoing all of them gives back the start exactly."""
    start = rig.session.values()
    errors = []

    def worker(key, values):
        for v in values:
            reply = rig.dispatcher.execute(f"set {key} {v}", source="osc")
            if not reply.ok:
                errors.append(reply.text)

    threads = [threading.Thread(target=worker, args=("input.gain_db", [-(i % 30) - 1 for i in range(300)])),
               threading.Thread(target=worker, args=("comp.ratio", [2 + (i % 7) for i in range(300)]))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert rig.session.value("input.gain_db") == -(299 % 30) - 1
    assert rig.session.value("comp.ratio") == 2 + 299 % 7
    n = len(rig.session.undo_stack)
    assert n == 600  # every change differed from the one before it: each is one undo step
    rig.session.undo(n)
    assert rig.session.values() == start


def test_dispatcher_never_raises_even_when_a_command_breaks(rig, monkeypatch):
    def broken(*a, **k):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(rig.session, "meters", broken)
    reply = rig.dispatcher.execute("meter")
    assert (reply.ok, reply.text) == (False, "internal error: ZeroDivisionError: boom")
    assert rig.dispatcher.execute("status").ok
    assert Dispatcher(rig.session).execute(12345).ok is False  # not even text


def test_quit_and_sleep_are_not_available_over_osc(rig):
    assert rig.dispatcher.execute("quit", source="osc").text == "quit is not available from osc"
    assert not rig.session.stop_requested.is_set()
    assert rig.dispatcher.execute("sleep 1", source="osc").ok is False
    assert rig.dispatcher.execute("quit").quit


def test_graph_lists_the_chain_with_latency_and_values(rig):
    reply = rig.run("graph")
    names = [n["name"] for n in reply.value]
    assert names == ["input", "comp", "limiter", "meter", "correlation"]
    lim = reply.value[2]
    assert lim["latency_frames"] == round(1.5e-3 * 48000) == rig.executor.latency_frames
    assert "total latency 72 frames (1.50 ms)" in reply.text
    rig.run("bypass comp")
    assert rig.run("graph").value[1]["bypass"] is True
    assert math.isclose(rig.run("get comp.ratio").value, 4.0)
