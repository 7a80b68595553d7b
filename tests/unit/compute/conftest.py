from __future__ import annotations

from pathlib import Path

import pytest

from moesim.compute.calibration import CalibrationTable, load_calibration
from moesim.specs.hardware import AcceleratorSpec

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = ROOT / "calibration" / "cpu-x86-fp32.json"


@pytest.fixture
def h100() -> AcceleratorSpec:
    """H100 SXM as topologies/dgx-h100-superpod.yaml describes it (hardware reference §1)."""
    return AcceleratorSpec(name="H100-SXM", bf16_dense_tflops=989.4, fp8_dense_tflops=1978.9,
                           hbm_capacity_gib=80, hbm_gbyte_per_s=3350, gemm_efficiency=0.803,
                           fp8_gemm_efficiency=0.709, hbm_efficiency=0.85,
                           kernel_launch_us=4.0, num_sms=132)


@pytest.fixture(scope="session")
def shipped() -> CalibrationTable:
    return load_calibration(SHIPPED)
