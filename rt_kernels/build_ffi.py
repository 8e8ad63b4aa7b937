"""cffi (API mode) builder for the C kernels.

Every ``csrc/*.c`` file is compiled into one extension, ``rt_kernels._rt``.  The
declarations cffi sees are taken from each header between the markers
``/* cffi:begin */`` and ``/* cffi:end */``, so a kernel's interface is written
once, in its header.  Adding a kernel means adding ``csrc/<name>.c`` and
``csrc/<name>.h``; nothing here changes.

Flags: -O3, never -ffast-math (NaN/Inf checks must keep working).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
CSRC = HERE / "csrc"
_MARKED = re.compile(r"/\* cffi:begin \*/(.*?)/\* cffi:end \*/", re.S)

# -O3 and IEEE semantics. -fno-math-errno only stops libm from setting errno; it
# keeps NaN/Inf behaviour (unlike -ffast-math, which is forbidden here).
COMPILE_ARGS = ["-O3", "-std=gnu11", "-fno-math-errno", "-Wall", "-Wextra", "-Wno-unused-parameter"]


def _headers() -> list[Path]:
    return sorted(CSRC.glob("*.h"))


def _sources() -> list[Path]:
    return sorted(CSRC.glob("*.c"))


def cdef_text() -> str:
    parts = []
    for header in _headers():
        for block in _MARKED.findall(header.read_text()):
            parts.append(f"/* {header.name} */\n{block}")
    return "\n".join(parts)


def make_builder(absolute_paths: bool = False) -> FFI:
    ffi = FFI()
    ffi.cdef(cdef_text())
    includes = "\n".join(f'#include "{h.name}"' for h in _headers())
    # setuptools wants paths relative to the project root; cffi's own compile()
    # runs in a temporary directory and needs absolute ones.
    root = HERE.parent
    sources = [str(s) if absolute_paths else os.path.relpath(s, root) for s in _sources()]
    ffi.set_source(
        "rt_kernels._rt",
        includes,
        sources=sources,
        include_dirs=[str(CSRC)],
        extra_compile_args=COMPILE_ARGS,
        libraries=["m"],
    )
    return ffi


ffibuilder = make_builder()


if __name__ == "__main__":
    # Developer shortcut: build the extension in place, next to this file.
    # (`pip install -e .` does the same as part of the install.)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = make_builder(absolute_paths=True).compile(tmpdir=tmp, verbose="-v" in sys.argv)
        # Remove builds of other names (e.g. pip's _rt.abi3.so) so no stale
        # extension can shadow this one.
        for old in HERE.glob("_rt.*.so"):
            old.unlink()
        target = HERE / Path(out).name
        Path(out).replace(target)
        print(target)
