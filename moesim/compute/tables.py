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


def measured_collective(table: CalibrationTable | None, accelerator: AcceleratorSpec, op: str,
                        num_gpus: int, size_bytes: float,
                        model_s: float | None = None) -> tuple[float, str] | None:
    """(seconds, source) of an NCCL collective on ``num_gpus`` GPUs of one scale-up domain
    from the accelerator's own measured curves, or None (no table, a table of another
    accelerator, an unmeasured op or GPU count, or a size below the curve).

    Inside the measured sizes: log-log interpolation ("measured"). Above the largest (512 MiB
    in the converted tables) the largest size's bus bandwidth is held, time growing with
    size ("derived": large collectives are bandwidth-bound, nccl-tests' busbw flattens).
    Where the network model (``model_s``) says the bandwidth keeps rising (NVLS systems:
    8x B200 723 GB/s at 1 GiB, 846 at 16 GiB), the bus bandwidth saturates towards the
    model's, B(S) = B_model S / (S + S0), S0 fixed so that B(S_top) is the measured value:
    time (S + S0) / B_model."""
    if table is None or table.accelerator != accelerator.name or num_gpus < 2:
        return None
    t = table.collective_time(op, num_gpus, size_bytes)
    if t is not None:
        return t, "measured"
    curves = [c for c in table.collective_curves if c.op == op and c.num_gpus == num_gpus
              and c.dtype in ("fp16", "bf16")]
    if not curves:
        return None
    c = curves[0]
    top = max(range(len(c.size_bytes)), key=lambda i: c.size_bytes[i])
    if size_bytes <= c.size_bytes[top] or c.time_us[top] is None:
        return None
    t_top, s_top = c.time_us[top] * 1e-6, c.size_bytes[top]
    held = t_top * size_bytes / s_top
    if model_s is None or model_s >= held:
        return held, "derived"
    rate = size_bytes / model_s  # the model's bytes per second at this size
    s0 = s_top * (rate * t_top / s_top - 1.0)  # B_model / b_top - 1 > 0 here
    return (size_bytes + s0) / rate, "derived"


# Tables loaded in this process (a sweep parses each file once); code that wants its own
# passes a TableCache instead.
DEFAULT_TABLES = TableCache()
