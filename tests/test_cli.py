"""The installed `auralis-rt` console script."""

import subprocess
import sys
from pathlib import Path

import engine
from tests.conftest import cli_command


def run(*args):
    return subprocess.run(cli_command(*args), capture_output=True, text=True, timeout=60)


def test_console_script_is_installed():
    script = Path(sys.executable).with_name("auralis-rt")
    assert script.is_file(), f"pip install should put the auralis-rt script next to {sys.executable}"


def test_version():
    r = run("--version")
    assert r.returncode == 0
    assert r.stdout.strip() == f"auralis-rt {engine.__version__}"
    assert engine.__version__ != "0+unknown"


def test_help_lists_commands():
    r = run("--help")
    assert r.returncode == 0
    assert "usage: auralis-rt" in r.stdout and "info" in r.stdout


def test_info_reports_the_c_extension():
    r = run("info")
    assert r.returncode == 0, r.stderr
    assert "C extension:" in r.stdout and "_rt" in r.stdout
    assert "peaking, low_shelf, high_shelf, low_pass, high_pass, band_pass, notch, all_pass" in r.stdout


def test_unknown_command_is_a_usage_error():
    r = run("frobnicate")
    assert r.returncode == 2
    assert "invalid choice: 'frobnicate'" in r.stderr


def test_startup_does_not_load_scipy():
    # scipy takes ~1 s to import; only the offline linear-phase EQ needs it.
    code = "import sys, engine.cli, engine.mastering, graph; print('scipy' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"
