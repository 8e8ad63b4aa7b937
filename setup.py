# setuptools reads `cffi_modules` only from setup(); everything else lives in pyproject.toml.
from setuptools import setup

setup(cffi_modules=["rt_kernels/build_ffi.py:ffibuilder", "engine/backends/jack_build.py:ffibuilder"])
