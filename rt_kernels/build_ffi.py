"""cffi (API mode) builders for the project's C extensions.

A C folder is compiled into one extension: every ``*.c`` in it, with the
declarations cffi sees taken from each header between the markers
``/* cffi:begin */`` and ``/* cffi:end */``, so an interface is written once, in
its header.  Adding a kernel means adding ``csrc/<name>.c`` and ``csrc/<name>.h``;
nothing here changes.  This file builds ``rt_kernels._rt``; the JACK glue
(engine/backends/jack_build.py) uses the same functions for ``_jack_rt``.

Flags: -O3, never -ffast-math (NaN/Inf checks must keep working).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Callable

from cffi import FFI

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
_MARKED = re.compile(r"/\* cffi:begin \*/(.*?)/\* cffi:end \*/", re.S)

# -O3 and IEEE semantics. -fno-math-errno only stops libm from setting errno; it
# keeps NaN/Inf behaviour (unlike -ffast-math, which is forbidden here).
COMPILE_ARGS = ["-O3", "-std=gnu11", "-fno-math-errno", "-Wall", "-Wextra", "-Wno-unused-parameter"]


def cdef_text(csrc: Path) -> str:
    parts = []
    for header in sorted(csrc.glob("*.h")):
        for block in _MARKED.findall(header.read_text()):
            parts.append(f"/* {header.name} */\n{block}")
    return "\n".join(parts)


def make_ffi(module: str, csrc: Path, *, absolute_paths: bool = False, libraries: tuple[str, ...] = ("m",),
             link_args: tuple[str, ...] = ()) -> FFI:
    """An FFI for `module` built from every C file in `csrc`."""
    ffi = FFI()
    ffi.cdef(cdef_text(csrc))
    includes = "\n".join(f'#include "{h.name}"' for h in sorted(csrc.glob("*.h")))
    # setuptools wants paths relative to the project root; cffi's own compile()
    # runs in a temporary directory and needs absolute ones.
    sources = [str(s) if absolute_paths else os.path.relpath(s, ROOT) for s in sorted(csrc.glob("*.c"))]
    ffi.set_source(module, includes, sources=sources, include_dirs=[str(csrc)], extra_compile_args=COMPILE_ARGS,
                   extra_link_args=list(link_args), libraries=list(libraries))
    return ffi


def build_in_place(make: Callable[..., FFI], target_dir: Path, stem: str) -> Path:
    """Developer shortcut: compile next to the package (`pip install -e .` does the same).
    Builds of other names (e.g. pip's <stem>.abi3.so) are removed so none can shadow it."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(make(absolute_paths=True).compile(tmpdir=tmp, verbose="-v" in sys.argv))
        for old in target_dir.glob(f"{stem}.*.so"):
            old.unlink()
        target = target_dir / out.name
        out.replace(target)
        return target


def make_builder(absolute_paths: bool = False) -> FFI:
    return make_ffi("rt_kernels._rt", HERE / "csrc", absolute_paths=absolute_paths)


ffibuilder = make_builder()


if __name__ == "__main__":
    print(build_in_place(make_builder, HERE, "_rt"))
