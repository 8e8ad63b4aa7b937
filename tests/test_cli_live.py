"""`auralis-rt demo`, `host` and `devices` as a user runs them, against real jackd servers
(the commands run in child processes: libjack binds a process to one server)."""

import json
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

from tests.conftest import cli_command

pytestmark = pytest.mark.skipif(not shutil.which("jackd"), reason="jackd is not installed")


def command(*args):
    return cli_command(*args)


def clean_env():
    env = dict(os.environ)
    env.pop("JACK_DEFAULT_SERVER", None)
    return env


def private_servers_of(pid: int) -> list[str]:
    out = subprocess.run(["pgrep", "-af", f"jackd -n auralis-{pid}-"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "pgrep" not in line]


def test_demo_prints_meters_and_leaves_no_server():
    r = subprocess.run(command("demo", "--seconds", "3"), capture_output=True, text=True, timeout=120,
                       env=clean_env())
    assert r.returncode == 0, r.stderr
    meter_lines = [line for line in r.stdout.splitlines() if "LUFS" in line and "dsp" in line]
    assert len(meter_lines) >= 2, r.stdout
    # The demo's synthesized music is audible at the output: a finite momentary loudness.
    assert any(re.search(r"M\s+-\d+\.\d LUFS", line) for line in meter_lines), meter_lines
    assert "started a private JACK server" in r.stdout and r.stdout.strip().splitlines()[-1].startswith("done:")
    name = re.search(r"private JACK server '([^']+)'", r.stdout).group(1)
    assert subprocess.run(["pgrep", "-f", f"jackd -n {name}"], capture_output=True).returncode == 1


def test_host_no_repl_writes_status_json(tmp_path):
    status = tmp_path / "status.json"
    r = subprocess.run(command("host", "--no-repl", "--duration", "2", "--status-json", str(status), "--quiet",
                               "--preset", "gentle"), capture_output=True, text=True, timeout=120, env=clean_env())
    assert r.returncode == 0, r.stderr
    data = json.loads(status.read_text())
    assert {"xruns", "dsp_load", "callback_us_p99", "latency_frames", "sample_rate", "period"} <= set(data)
    assert data["sample_rate"] == 48000 and data["period"] == 256 and data["callbacks"] > 100
    assert data["latency_frames"] > 0  # the true-peak limiter's lookahead
    name = re.search(r"private JACK server '([^']+)'", r.stdout).group(1)
    assert subprocess.run(["pgrep", "-f", f"jackd -n {name}"], capture_output=True).returncode == 1


def test_host_stops_its_private_server_on_ctrl_c(tmp_path):
    proc = subprocess.Popen(command("host", "--no-repl", "--quiet"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=clean_env())
    try:
        line = proc.stdout.readline()
        name = re.search(r"private JACK server '([^']+)'", line).group(1)
        assert proc.stdout.readline().startswith("auralis-rt host: jack")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    deadline = time.monotonic() + 10
    while subprocess.run(["pgrep", "-f", f"jackd -n {name}"], capture_output=True).returncode == 0:
        assert time.monotonic() < deadline, f"private server {name} still running after Ctrl-C"
        time.sleep(0.1)


def test_host_joins_a_running_server_with_names_and_connections(jack_server, tmp_path):
    status = tmp_path / "s.json"
    proc = subprocess.Popen(command("host", "--backend", "jack", "--jack-server", jack_server.name, "--name", "mon",
                                    "--connect-out", "system:playback_1,system:playback_2", "--no-repl",
                                    "--duration", "6", "--status-json", str(status), "--quiet"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().startswith("auralis-rt host: jack, server")
        listing = subprocess.run(command("devices", "--jack-server", jack_server.name, "--json"),
                                 capture_output=True, text=True, timeout=60)
        ports = {p["name"]: p for p in json.loads(listing.stdout)["jack"]}
        assert {"mon:in_1", "mon:in_2", "mon:out_1", "mon:out_2"} <= set(ports)
        assert ports["mon:in_1"]["direction"] == "input" and ports["system:playback_1"]["physical"]
        lsp = subprocess.run(["jack_lsp", "-s", jack_server.name, "-c", "mon:out_1"], capture_output=True,
                             text=True, env=dict(os.environ, JACK_NO_START_SERVER="1")).stdout
        assert "system:playback_1" in lsp
        assert proc.wait(timeout=60) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert json.loads(status.read_text())["sample_rate"] == 48000


def test_host_refuses_a_missing_named_server():
    r = subprocess.run(command("host", "--backend", "jack", "--jack-server", "no-such-server", "--no-repl",
                               "--duration", "1"), capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        "auralis-rt host: JACK: no server 'no-such-server' is running (start jackd, or use --backend auto for a private one)"]


def test_host_refuses_a_bad_preset_before_touching_audio(tmp_path):
    r = subprocess.run(command("host", "--no-repl", "--duration", "1", "--preset", "nosuch"),
                       capture_output=True, text=True, timeout=60, env=clean_env())
    assert r.returncode == 2
    assert "preset nosuch: no such preset" in r.stderr
