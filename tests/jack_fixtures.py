"""Fixtures for tests that need a real JACK server (jackd, dummy driver).

Imported by tests/conftest.py.  Every server gets a unique name, period 256,
rate 48000, and is stopped when its scope ends (and at exit, by the
PrivateJackServer atexit hook, if a test run is interrupted).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from engine.backends.jackd import PrivateJackServer

JACK_RATE = 48000
JACK_PERIOD = 256
CSRC = Path(__file__).resolve().parent / "csrc"

TEST_PROCESS_CDEF = """
typedef struct tp_gain_delay tp_gain_delay;
tp_gain_delay *tp_gain_delay_create(uint32_t channels, uint32_t delay, float gain);
void tp_gain_delay_set_gain(tp_gain_delay *g, float gain);
void tp_gain_delay_destroy(tp_gain_delay *g);
uint32_t tp_gain_delay_process(void *ctx, const float *const *in, float *const *out, uint32_t frames);
typedef struct tp_spin tp_spin;
tp_spin *tp_spin_create(uint32_t channels);
void tp_spin_set(tp_spin *s, uint64_t spin_ns, uint64_t spin_once_ns);
uint32_t tp_spin_process(void *ctx, const float *const *in, float *const *out, uint32_t frames);
uint32_t tp_bad_process(void *ctx, const float *const *in, float *const *out, uint32_t frames);
"""


def _need_jackd() -> None:
    if shutil.which("jackd") is None or shutil.which("jack_wait") is None:
        pytest.skip("jackd / jack_wait not installed (apt-get install --no-install-recommends jackd2)")


def build_shared(source: Path, target: Path, *extra: str) -> Path:
    """gcc -shared -fPIC a test-only C file."""
    cmd = ["gcc", "-O2", "-std=gnu11", "-Wall", "-shared", "-fPIC", "-o", str(target), str(source), *extra]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stderr}"
    return target


@pytest.fixture(scope="module")
def jack_server():
    """A private jackd shared by one test module."""
    _need_jackd()
    with PrivateJackServer(rate=JACK_RATE, period=JACK_PERIOD) as server:
        yield server


@pytest.fixture
def fresh_jack_server():
    """A private jackd for one test (e.g. one the test kills)."""
    _need_jackd()
    with PrivateJackServer(rate=JACK_RATE, period=JACK_PERIOD) as server:
        yield server


@pytest.fixture(scope="session")
def test_process_lib_path(tmp_path_factory) -> Path:
    """tests/csrc/jack_test_process.c built: gain-with-delay, spin, and a bad process fn."""
    return build_shared(CSRC / "jack_test_process.c", tmp_path_factory.mktemp("tp") / "libjack_test_process.so",
                        "-pthread")


def load_test_process_lib(path):
    from cffi import FFI

    ffi = FFI()
    ffi.cdef(TEST_PROCESS_CDEF)
    return ffi, ffi.dlopen(str(path))


@pytest.fixture(scope="session")
def test_process_lib(test_process_lib_path):
    """(ffi, lib) of the test-only process functions."""
    return load_test_process_lib(test_process_lib_path)


@pytest.fixture(scope="session")
def rtcheck_library(tmp_path_factory) -> Path:
    """Path of the LD_PRELOAD real-time checker (tests/csrc/rtcheck.c)."""
    return build_shared(CSRC / "rtcheck.c", tmp_path_factory.mktemp("rtcheck") / "librtcheck.so", "-ldl", "-pthread")
