"""cffi (API mode) builder for the JACK host glue, ``engine.backends._jack_rt``.

A separate extension from ``rt_kernels._rt`` because it links libjack
(``-ljack``): the kernels stay usable on machines without JACK.  Every
``csrc/*.c`` here is compiled; the declarations cffi sees are taken from each
header between ``/* cffi:begin */`` and ``/* cffi:end */`` (the same
convention as rt_kernels/build_ffi.py).

Flags: -O3, never -ffast-math.  Linked with ``-z now`` so no symbol is bound
lazily (through the dynamic linker) on the audio thread's first cycle.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
CSRC = HERE / "csrc"
ROOT = HERE.parent.parent
_MARKED = re.compile(r"/\* cffi:begin \*/(.*?)/\* cffi:end \*/", re.S)

COMPILE_ARGS = ["-O3", "-std=gnu11", "-fno-math-errno", "-Wall", "-Wextra", "-Wno-unused-parameter"]
LINK_ARGS = ["-Wl,-z,now"]


def cdef_text() -> str:
    parts = []
    for header in sorted(CSRC.glob("*.h")):
        for block in _MARKED.findall(header.read_text()):
            parts.append(f"/* {header.name} */\n{block}")
    return "\n".join(parts)


def make_builder(absolute_paths: bool = False) -> FFI:
    ffi = FFI()
    ffi.cdef(cdef_text())
    includes = "\n".join(f'#include "{h.name}"' for h in sorted(CSRC.glob("*.h")))
    sources = [str(s) if absolute_paths else os.path.relpath(s, ROOT) for s in sorted(CSRC.glob("*.c"))]
    ffi.set_source(
        "engine.backends._jack_rt",
        includes,
        sources=sources,
        include_dirs=[str(CSRC)],
        extra_compile_args=COMPILE_ARGS,
        extra_link_args=LINK_ARGS,
        libraries=["jack", "m", "pthread"],
    )
    return ffi


ffibuilder = make_builder()


if __name__ == "__main__":
    # Developer shortcut: build in place (`pip install -e .` does the same).
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = make_builder(absolute_paths=True).compile(tmpdir=tmp, verbose="-v" in sys.argv)
        for old in HERE.glob("_jack_rt.*.so"):
            old.unlink()
        target = HERE / Path(out).name
        Path(out).replace(target)
        print(target)
