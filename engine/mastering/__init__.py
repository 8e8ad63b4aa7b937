"""Offline mastering: analysis -> adaptive parameters -> the chain through the C executor."""

from engine.mastering.measure import Measurement, measure, measure_file
from engine.mastering.render import DEFAULT_PRESET, MasterReport, master, render

__all__ = ["Measurement", "measure", "measure_file", "MasterReport", "master", "render", "DEFAULT_PRESET"]
