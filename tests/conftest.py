import sys
from pathlib import Path

import numpy as np
import pytest

BLOCK_SIZES = (1, 7, 64, 65, 4096)
FLT_MIN = np.finfo(np.float32).tiny  # smallest normal float32


@pytest.fixture
def rng():
    return np.random.default_rng(20261124)


def in_blocks(process, block: np.ndarray, size: int) -> np.ndarray:
    """Run a one-input process() over a planar block in pieces of `size` frames."""
    pieces = [process(np.ascontiguousarray(block[:, i:i + size])) for i in range(0, block.shape[1], size)]
    return np.concatenate(pieces, axis=1)


def subnormal_count(values: np.ndarray) -> int:
    """How many values are non-zero but below the smallest normal float32."""
    a = np.abs(np.asarray(values, dtype=np.float64))
    return int(np.count_nonzero((a > 0) & (a < FLT_MIN)))


def cli_command(*args: str) -> list[str]:
    """`auralis-rt ARGS` from the environment running the tests: the console script next
    to this interpreter (never another install that happens to be first on PATH), or
    `python -m engine` when the package is not installed as a script."""
    script = Path(sys.executable).with_name("auralis-rt")
    return [str(script), *args] if script.is_file() else [sys.executable, "-m", "engine", *args]


def noise(rng, channels: int, frames: int, level: float = 0.25) -> np.ndarray:
    return (level * rng.standard_normal((channels, frames))).astype(np.float32)


# JACK fixtures (real jackd, dummy driver): jack_server, fresh_jack_server,
# test_process_lib(_path), rtcheck_library.
from tests.jack_fixtures import (  # noqa: E402,F401
    fresh_jack_server, jack_server, rtcheck_library, test_process_lib, test_process_lib_path)
