"""The running system: backends, player, mastering, control, worker, CLI."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("auralis-rt")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"


def __getattr__(name: str):
    """engine.render / engine.master / engine.measure, imported on first use so that
    `auralis-rt --version` does not load the DSP stack."""
    if name in ("render", "master", "measure", "measure_file", "MasterReport", "Measurement"):
        from engine import mastering

        return getattr(mastering, name)
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
