"""The calibration tables shipped in ``calibration/`` and the accelerators they belong to.

Converted from aiconfigurator-core 0.12.0 (NVIDIA, Apache-2.0) by
``moesim calibrate import-aiconfigurator``; see docs/compute.md for what each holds.
"""

from __future__ import annotations

from pathlib import Path

from moesim import shipped
from moesim.compute.calibration import CalibrationTable, load_calibration
from moesim.specs.hardware import AcceleratorSpec

# AcceleratorSpec.name (topologies/*.yaml) -> shipped table file name.
SHIPPED_TABLES: dict[str, str] = {
    "A100-SXM-80GB": "aic-a100-sxm.json",
    "H100-SXM": "aic-h100-sxm.json",
    "H200-SXM": "aic-h200-sxm.json",
    "B200": "aic-b200-sxm.json",
    "GB200": "aic-gb200.json",
    "GB300": "aic-gb300.json",
}


def calibration_dir() -> Path:
    """The shipped ``calibration/`` folder: the checkout's, or the wheel's copy inside the
    package (moesim.shipped)."""
    return shipped.shipped_dir("calibration")


def default_table_for(accelerator_name: str) -> Path | None:
    """The shipped measured table of ``accelerator_name``, or None (no table for it)."""
    name = SHIPPED_TABLES.get(accelerator_name)
    if name is None:
        return None
    path = calibration_dir() / name
    return path if path.is_file() else None


def table_path_for(accelerator: AcceleratorSpec, calibration: str | None) -> Path | None:
    """The table a scenario prices with: its own ``calibration`` path, None for "none" (the
    roofline), else the accelerator's shipped table (or that of the accelerator whose kernels
    it shares, ``kernels_measured_as``)."""
    if calibration == "none":
        return None
    if calibration is not None:
        return Path(calibration)
    own = default_table_for(accelerator.name)
    if own is None and accelerator.kernels_measured_as:
        own = default_table_for(accelerator.kernels_measured_as)
    return own


class TableCache:
    """Loaded calibration tables by path and modification time (a table file is parsed once
    per process that holds the cache, not once per scenario of a sweep)."""

    def __init__(self) -> None:
        self._tables: dict[tuple[str, int], CalibrationTable] = {}

    def load(self, path: Path) -> CalibrationTable:
        key = (str(path), path.stat().st_mtime_ns if path.is_file() else 0)
        hit = self._tables.get(key)
        if hit is None:
            hit = self._tables[key] = load_calibration(path)
        return hit
