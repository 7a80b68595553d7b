"""The shipped aiconfigurator-core tables are what the importer makes of the installed package.

Regenerates every shipped table from aiconfigurator-core and compares it with the committed
file byte for byte; skips (with the reason) where the package is not installed or is
another version than the one the tables were converted from.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from moesim.compute.aiconfigurator import SYSTEM_ACCELERATOR, import_system, package_version
from moesim.compute.calibration import calibration_json, load_calibration
from moesim.compute.tables import SHIPPED_TABLES

ROOT = Path(__file__).resolve().parents[3]
VERSION = "0.12.0"  # the version the committed tables were converted from (pyproject extra)

if importlib.util.find_spec("aiconfigurator_core") is None:
    pytest.skip("aiconfigurator-core is not installed (pip install 'moesim[aiconfigurator]', "
                "Python >= 3.11)", allow_module_level=True)
if package_version() != VERSION:
    pytest.skip(f"aiconfigurator-core {package_version()} installed; the shipped tables are "
                f"from {VERSION}", allow_module_level=True)
pytest.importorskip("pandas")
pytest.importorskip("pyarrow")


@pytest.mark.parametrize("system", sorted(SYSTEM_ACCELERATOR))
def test_shipped_table_regenerates_identically(system):
    accelerator = SYSTEM_ACCELERATOR[system]
    path = ROOT / "calibration" / SHIPPED_TABLES[accelerator]
    text = calibration_json(import_system(system))
    assert text == path.read_text(encoding="utf-8"), (
        f"{path.name} differs from a fresh import; run `moesim calibrate import-aiconfigurator "
        f"--system {system}` and commit the result")
    table = load_calibration(path)
    assert table.accelerator == accelerator
    assert path.stat().st_size < 5e6
    assert table.provenance is not None and table.provenance.package_version == VERSION
