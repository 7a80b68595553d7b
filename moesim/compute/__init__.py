"""The kernel cost model: GEMM, grouped GEMM, attention and memory-op times on a device.

``KernelCostModel`` answers from a calibration table when one is attached (log-space
interpolation of measurements) and from a roofline otherwise; see docs/compute.md.
"""

from __future__ import annotations

from moesim.compute.calibration import (
    SCHEMA_VERSION,
    CalibrationTable,
    load_calibration,
    save_calibration,
)
from moesim.compute.model import KernelCostModel, KernelTime

__all__ = [
    "SCHEMA_VERSION",
    "CalibrationTable",
    "KernelCostModel",
    "KernelTime",
    "load_calibration",
    "save_calibration",
]
