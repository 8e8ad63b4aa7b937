"""`auralis-rt repl` and `auralis-rt host` as a user runs them: commands on stdin, a
--script file, and the interactive REPL on a pseudo-terminal (host on a private jackd,
left with Ctrl-D: the host is closed and its server stopped)."""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.control_rig import write_probe_preset

ROOT = Path(__file__).resolve().parent.parent
needs_jackd = pytest.mark.skipif(not shutil.which("jackd"), reason="jackd is not installed")


def command(*args):
    # This checkout's engine (an `auralis-rt` on PATH may be another installation).
    return [sys.executable, "-m", "engine", *args]


@pytest.fixture
def env(tmp_path):
    e = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_STATE_HOME=str(tmp_path / "state"))
    e.pop("JACK_DEFAULT_SERVER", None)
    return e


def run(args, stdin: str, env, timeout=120):
    return subprocess.run(command(*args), input=stdin, capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=ROOT)


def test_repl_reads_commands_from_stdin_and_saves_a_preset(tmp_path, env):
    probe = write_probe_preset(tmp_path)
    r = run(["repl", "--preset", str(probe)],
            "# set up\nset comp.ratio 3:1 comp.threshold_db -18dB\n\nbypass limiter\npreset save mine\nget comp.ratio\n",
            env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "comp.ratio = 3:1 (was 4:1), comp.threshold_db = -18 dBFS (was -6 dBFS)",
        "limiter: bypassed",
        f"saved preset mine to {tmp_path / 'config' / 'auralis-rt' / 'presets' / 'mine.json'}",
        "comp.ratio = 3:1  [1, 1000]",
    ]
    saved = json.loads((tmp_path / "config" / "auralis-rt" / "presets" / "mine.json").read_text())
    comp = next(n for n in saved["chain"] if n["name"] == "comp")
    assert comp["params"]["ratio"] == 3.0 and comp["params"]["threshold_db"] == -18.0
    assert next(n for n in saved["chain"] if n["name"] == "limiter")["bypass"] is True
    # The saved preset is found by name next time.
    r = run(["repl", "--preset", "mine"], "get comp.threshold_db limiter.bypass\n", env)
    assert r.stdout.splitlines()[0].startswith("comp.threshold_db = -18 dBFS")
    assert r.stdout.splitlines()[1].startswith("limiter.bypass = on")


def test_a_script_stops_at_its_first_failing_line_with_its_number(tmp_path, env):
    script = tmp_path / "setup.txt"
    script.write_text("set comp.ratio 2:1\n-set comp.ratio 40dB\nset comp.ratio 3:1\nset comp.attack_ms 3 dB\n"
                      "set comp.ratio 5:1\n")
    r = run(["repl", "--preset", str(write_probe_preset(tmp_path)), "--script", str(script)], "get comp.ratio\n", env)
    assert r.returncode == 1
    assert r.stderr.splitlines() == [
        f"{script}:2: comp.ratio: '40dB' is in dB; comp.ratio takes a ratio like 4:1 (or a plain number)",
        f"{script}:4: comp.attack_ms: '3dB' is in dB; comp.attack_ms takes ms or s",
    ]
    assert "comp.ratio = 3:1 (was 2:1)" in r.stdout and "5:1" not in r.stdout
    missing = run(["repl", "--script", str(tmp_path / "nope.txt")], "", env)
    assert missing.returncode == 2
    assert missing.stderr.strip() == f"auralis-rt repl: --script {tmp_path / 'nope.txt'}: cannot be read " \
                                     f"(No such file or directory)"


def test_repl_survives_a_hostile_stream_on_stdin(tmp_path, env):
    lines = ["-" + line for line in ("☃", "set comp.ratio nan", "set comp.ratio 1e999", "x" * 5000, "set 'open",
                                     "set comp.ratio \u202e4", "preset load ../../etc/passwd")]
    raw = ("\n".join(lines) + "\n").encode() + b"-set comp.ratio \xff\xfe\nget comp.ratio\n"
    r = subprocess.run(command("repl", "--preset", str(write_probe_preset(tmp_path))), input=raw,
                       capture_output=True, timeout=120, env=env, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().startswith("comp.ratio = 4:1")
    assert len(r.stderr.decode().splitlines()) == len(lines) + 1  # one line per refused command


@needs_jackd
def test_host_runs_stdin_commands_then_stops_its_private_server(tmp_path, env):
    status = tmp_path / "status.json"
    r = run(["host", "--preset", str(write_probe_preset(tmp_path)), "--status-json", str(status)],
            "set input.gain_db -3\nstatus\nmeter\nquit\nset input.gain_db -9\n", env)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    name = re.search(r"private JACK server '([^']+)'", out).group(1)
    assert "input.gain_db = -3 dB (was 0 dB)" in out and "input.gain_db = -9" not in out
    assert re.search(r"engine: jack client 'auralis-rt' on server '" + re.escape(name) + "', 48000 Hz x 256", out)
    assert re.search(r"M -inf LUFS  S -inf LUFS  TP -inf dBTP  GR comp 0\.0 limiter 0\.0 dB  corr [+-]\d\.\d\d  "
                     r"DSP [\d.]+ %  xruns \d+  lat 72 \(1\.50 ms\)", out), out
    assert json.loads(status.read_text())["latency_frames"] == 72
    assert subprocess.run(["pgrep", "-f", f"jackd -n {name}"], capture_output=True).returncode == 1


@needs_jackd
def test_host_osc_port_and_a_failing_script(tmp_path, env):
    script = tmp_path / "s.txt"
    script.write_text("set comp.ratio 2:1\nset comp.ratio 0:1\n")
    r = run(["host", "--preset", str(write_probe_preset(tmp_path)), "--script", str(script), "--osc-port", "0",
             "--no-repl", "--duration", "30", "--quiet"], "", env)
    assert r.returncode == 1
    assert re.search(r"^OSC: listening on udp://127\.0\.0\.1:\d+$", r.stdout, re.M)
    assert r.stderr.strip() == f"{script}:2: comp.ratio = 0.0 is outside [1, 1000]"


def _pump(fd, seen: bytearray, timeout_s: float) -> bool:
    """Read what the terminal receives for up to ``timeout_s``; False once it is closed.
    Cursor-position requests are answered as a terminal does (prompt_toolkit shows the
    bottom toolbar only once it knows where the prompt is)."""
    ready, _, _ = select.select([fd], [], [], timeout_s)
    if not ready:
        return True
    try:
        data = os.read(fd, 65536)
    except OSError:
        return False
    seen += data
    for _ in range(data.count(b"\x1b[6n")):
        os.write(fd, b"\x1b[1;1R")
    return True


def _screen_text(seen: bytearray) -> str:
    """What the terminal shows, roughly: cursor-forward moves over blank cells become
    spaces, other escape sequences (colours, modes) go."""
    text = re.sub(r"\x1b\[(\d*)C", lambda m: " " * int(m.group(1) or 1), seen.decode("utf-8", "replace"))
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


def _read_until(fd, pattern: str, timeout_s: float, seen: bytearray) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = _screen_text(seen)
        if re.search(pattern, text):
            return text
        if not _pump(fd, seen, 0.1):
            break
    raise AssertionError(f"{pattern!r} not seen in:\n{_screen_text(seen)[-3000:]}")


@needs_jackd
def test_host_repl_on_a_terminal_then_ctrl_d_closes_the_host_and_its_server(tmp_path, env):
    import pty

    master, slave = pty.openpty()
    env = dict(env, TERM="xterm", COLUMNS="160", LINES="40")
    proc = subprocess.Popen(command("host", "--preset", str(write_probe_preset(tmp_path))), stdin=slave,
                            stdout=slave, stderr=slave, env=env, cwd=ROOT, start_new_session=True)
    os.close(slave)
    seen = bytearray()
    try:
        text = _read_until(master, r"auralis-rt \[probe\]>", 60, seen)
        name = re.search(r"private JACK server '([^']+)'", text).group(1)
        assert "(help lists the commands, Ctrl-D quits)" in text

        def command_then_prompt(keys: bytes, shows: str) -> None:
            # Keys go in while a prompt is up (between prompts the terminal is in cooked
            # mode, where Ctrl-C and Ctrl-D mean SIGINT and end-of-file, not keys).
            os.write(master, keys)
            _read_until(master, shows + r"[^>]*\n[^\n]*auralis-rt \[probe\*?\]>", 20, seen)
            time.sleep(0.2)

        command_then_prompt(b"set input.gain_db -3dB\r", r"input\.gain_db = -3 dB \(was 0 dB\)")
        os.write(master, b"meter on\r")
        _read_until(master, r"M -inf LUFS\s+S -inf LUFS\s+TP -inf dBTP", 20, seen)  # the toolbar, drawn live
        time.sleep(0.2)
        command_then_prompt(b"set comp.ratio 1e999\r", r"error: comp\.ratio: '1e999' is too large")
        os.write(master, b"set input.gain_db -9")
        time.sleep(0.2)
        os.write(master, b"\x03")  # Ctrl-C at the prompt: the typed line is dropped, nothing ends
        time.sleep(0.2)
        command_then_prompt(b"get input.gain_db\r", r"\ninput\.gain_db = -3 dB")
        os.write(master, b"\x04")  # Ctrl-D
        deadline = time.monotonic() + 30
        while proc.poll() is None:  # keep reading, as a terminal does, until the host has exited
            assert time.monotonic() < deadline, f"the host did not exit after Ctrl-D:\n{_screen_text(seen)[-2000:]}"
            _pump(master, seen, 0.1)
        assert proc.returncode == 0, seen.decode("utf-8", "replace")[-2000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        os.close(master)
    deadline = time.monotonic() + 10
    while subprocess.run(["pgrep", "-f", f"jackd -n {name}"], capture_output=True).returncode == 0:
        assert time.monotonic() < deadline, f"private server {name} still running after Ctrl-D"
        time.sleep(0.1)
    history = (tmp_path / "state" / "auralis-rt" / "history").read_text()
    assert "+set input.gain_db -3dB" in history and "+meter on" in history
