"""The kernel cost model: GEMM, grouped GEMM, attention and memory-op times on a device.

``KernelCostModel`` answers from a calibration table when one is attached (log-space
interpolation of measurements, and rules derived from them) and from a roofline otherwise;
``default_table_for`` names the shipped measured table of an accelerator. See
docs/compute.md.
"""

from __future__ import annotations

from moesim.compute.calibration import (
    SCHEMA_VERSION,
    CalibrationTable,
    load_calibration,
    save_calibration,
)
from moesim.compute.model import KernelCostModel, KernelTime
from moesim.compute.tables import SHIPPED_TABLES, default_table_for

__all__ = [
    "SCHEMA_VERSION",
    "CalibrationTable",
    "KernelCostModel",
    "KernelTime",
    "SHIPPED_TABLES",
    "default_table_for",
    "load_calibration",
    "save_calibration",
]
