"""`auralis-rt play` driven by commands: stdin when it is not a terminal, --script, the
same command layer as the host's REPL (the REPL itself: tests/test_control_repl.py)."""

import re
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import cli_command

pytestmark = pytest.mark.skipif(not shutil.which("jackd"), reason="jackd is not installed")
RATE = 48000


def clean_env():
    import os

    env = dict(os.environ)
    env.pop("JACK_DEFAULT_SERVER", None)
    return env


def song(path, seconds, seed):
    rng = np.random.default_rng(seed)
    sf.write(path, (0.2 * rng.standard_normal((int(seconds * RATE), 2))).astype(np.float32), RATE, subtype="FLOAT")
    return str(path)


def test_play_takes_commands_from_stdin_then_plays_the_queue_out(tmp_path):
    a, b, c = song(tmp_path / "a.wav", 3.0, 1), song(tmp_path / "b.wav", 0.5, 2), song(tmp_path / "c.wav", 0.5, 3)
    commands = "\n".join(["sleep 0.3", "status", "set loudness.gain_db -3dB", "get loudness.gain_db",
                          "-set loudness.gain_db 99", "queue", "next", "sleep 0.2", "queue repeat off"]) + "\n"
    r = subprocess.run(cli_command("play", a, b, "--preset", "transparent", "--quiet"), input=commands,
                       capture_output=True, text=True, timeout=120, env=clean_env())
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "player: playing" in out                               # status sees the player
    assert re.search(r"loudness\.gain_db = -3(\.0+)? dB", out)       # the set landed and get reads it back
    assert "99" in r.stderr and "outside" in r.stderr             # refused with the range, one line
    assert "1/2 a.wav" in out and "2/2 b.wav" in out              # queue listing
    tracks = [line for line in out.splitlines() if line.startswith("track ")]
    assert tracks == [f"track 1/2 {a} (0:03.0)", f"track 2/2 {b} (0:00.5)"]   # `next` cut a short
    assert out.splitlines()[-1].startswith("done: 2 track(s) played, 0 error(s)")
    # --no-repl ignores stdin: the queue plays out, both tracks whole
    r = subprocess.run(cli_command("play", b, c, "--preset", "transparent", "--quiet", "--no-repl"),
                       input="next\nnext\n", capture_output=True, text=True, timeout=120, env=clean_env())
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1].startswith("done: 2 track(s) played")


def test_play_script_stops_at_its_first_failing_line(tmp_path):
    a = song(tmp_path / "a.wav", 0.5, 1)
    script = tmp_path / "cmds.txt"
    script.write_text("status\nseek 0.1\nfrobnicate\nstatus\n")
    r = subprocess.run(cli_command("play", a, "--preset", "transparent", "--quiet", "--script", str(script)),
                       input="", capture_output=True, text=True, timeout=120, env=clean_env())
    assert r.returncode == 1
    assert re.search(rf"{re.escape(str(script))}:3: .*frobnicate", r.stderr)
    assert r.stdout.splitlines()[-1].startswith("done: ")
