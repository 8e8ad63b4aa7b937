"""C kernels (compiled with cffi in API mode) behind a facade that validates every call.

Blocks are planar float32 arrays shaped (channels, frames).  See README.md in
this folder for the kernel convention.
"""

from rt_kernels.channels import mono_to_stereo, ms_decode, ms_encode, stereo_to_mono
from rt_kernels.dynamics import Compressor, SoftClipper
from rt_kernels.filters import FILTER_TYPES, BiquadCascade, Section
from rt_kernels.kernel import Kernel
from rt_kernels.levels import Crossfade, DcBlocker, Gain, Mix, db_to_linear, linear_to_db
from rt_kernels.limiter import Limiter
from rt_kernels.loudness import LoudnessMeter, LoudnessValues
from rt_kernels.meters import LevelMeter
from rt_kernels.psy_eq import BandAnalyzer, PsychoacousticEQ, adaptive_gains_db, analyze_bands
from rt_kernels.stereo import CorrelationMeter, StereoWidth
from rt_kernels.true_peak import TruePeakMeter

__all__ = [
    "FILTER_TYPES", "BiquadCascade", "Section", "Kernel", "Gain", "Mix", "Crossfade", "DcBlocker",
    "LevelMeter", "PsychoacousticEQ", "BandAnalyzer", "analyze_bands", "adaptive_gains_db", "StereoWidth",
    "CorrelationMeter", "LoudnessMeter", "LoudnessValues", "Compressor", "SoftClipper", "Limiter", "TruePeakMeter", "mono_to_stereo", "stereo_to_mono", "ms_encode", "ms_decode", "db_to_linear", "linear_to_db",
]
