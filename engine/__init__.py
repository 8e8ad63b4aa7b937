"""The running system: backends, player, mastering, control, worker, CLI."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("auralis-rt")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
