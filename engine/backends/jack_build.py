"""cffi (API mode) builder for the JACK host glue, ``engine.backends._jack_rt``.

A separate extension from ``rt_kernels._rt`` because it links libjack
(``-ljack``): the kernels stay usable on machines without JACK.  Every
``csrc/*.c`` here is compiled, by the same builder as the kernels
(rt_kernels/build_ffi.py: cffi markers, -O3, never -ffast-math).  Linked with
``-z now`` so no symbol is bound lazily (through the dynamic linker) on the
audio thread's first cycle.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent


def _shared_builder():
    # Loaded by path: importing rt_kernels.build_ffi would run rt_kernels/__init__,
    # which needs the extension that is not built yet.
    path = HERE.parent.parent / "rt_kernels" / "build_ffi.py"
    spec = importlib.util.spec_from_file_location("_auralis_build_ffi", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_build = _shared_builder()


def make_builder(absolute_paths: bool = False) -> FFI:
    return _build.make_ffi("engine.backends._jack_rt", HERE / "csrc", absolute_paths=absolute_paths,
                           libraries=("jack", "m", "pthread"), link_args=("-Wl,-z,now",))


ffibuilder = make_builder()


if __name__ == "__main__":
    print(_build.build_in_place(make_builder, HERE, "_jack_rt"))
