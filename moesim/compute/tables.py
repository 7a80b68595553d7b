"""The calibration tables shipped in ``calibration/`` and the accelerators they belong to.

Converted from aiconfigurator-core 0.12.0 (NVIDIA, Apache-2.0) by
``moesim calibrate import-aiconfigurator``; see docs/compute.md for what each holds.
"""

from __future__ import annotations

from pathlib import Path

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
    """The repository's ``calibration/`` folder (beside the ``moesim`` package)."""
    return Path(__file__).resolve().parents[2] / "calibration"


def default_table_for(accelerator_name: str) -> Path | None:
    """The shipped measured table of ``accelerator_name``, or None (no table, or a copy of
    moesim installed without the repository's calibration folder)."""
    name = SHIPPED_TABLES.get(accelerator_name)
    if name is None:
        return None
    path = calibration_dir() / name
    return path if path.is_file() else None
