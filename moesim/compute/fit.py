"""What a calibration table says: efficiency curves, coverage of scenarios, a CPU accelerator.

- :func:`fit_efficiency`: achieved fraction of peak vs FLOPs per kernel, fitted to
  e(F) = e_max · F / (F + F_half) by least squares (grid over F_half, e_max closed form).
- coverage of scenarios lives in :mod:`moesim.compute.coverage` (by the kernel model's
  own sources).
- :func:`accelerator_from_table`: a topology-free AcceleratorSpec for the device the table
  was measured on, described by its own measured maxima (see docs/compute.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from moesim.compute.calibration import CalibrationTable
from moesim.compute.interp import LogGrid
from moesim.errors import SpecError
from moesim.specs.hardware import AcceleratorSpec
from moesim.units import GBYTE_PER_S, TFLOPS, US


@dataclass(frozen=True)
class EfficiencyFit:
    """e(F) = e_max · F / (F + half_flops); ``points`` are (FLOPs, achieved fraction)."""

    e_max: float
    half_flops: float
    points: tuple[tuple[float, float], ...]

    def __call__(self, flops: float | np.ndarray) -> np.ndarray:
        f = np.asarray(flops, dtype=np.float64)
        return self.e_max * f / (f + self.half_flops)


def fit_efficiency(flops: np.ndarray, fraction: np.ndarray) -> EfficiencyFit:
    """Least-squares fit of the saturating curve to (FLOPs, fraction-of-peak) samples."""
    f = np.asarray(flops, dtype=np.float64)
    y = np.asarray(fraction, dtype=np.float64)
    best = (np.inf, 1.0, 1.0)
    for half in np.logspace(np.log10(f.min()) - 3, np.log10(f.max()) + 1, 400):
        g = f / (f + half)
        e = float((y * g).sum() / (g * g).sum())
        err = float(((y - e * g) ** 2).sum())
        if err < best[0]:
            best = (err, e, float(half))
    pts = tuple((float(a), float(b)) for a, b in sorted(zip(f, y, strict=True)))
    return EfficiencyFit(e_max=best[1], half_flops=best[2], points=pts)


def accelerator_from_table(table: CalibrationTable) -> AcceleratorSpec:
    """A topology-free AcceleratorSpec for the table's device, from its own measurements.

    Peak FLOP/s = the fastest measured GEMM (so gemm_efficiency = 1.0: the peak is already
    achieved), HBM bandwidth = the largest measured elementwise op's (hbm_efficiency = 1.0),
    launch overhead = the shortest measured memory op. Memory capacity from the environment.
    """
    env = table.environment
    if env is None:
        raise SpecError(f"{table.source_path or table.name}: a converted table has no device of "
                        "its own; attach it to an accelerator of topologies/")
    peak = max((p.flops / p.timing.value(table.statistic) for p in table.gemm), default=1e9)
    elem = [p for p in table.memory if p.kind == "elementwise"] or list(table.memory)
    # The largest streaming op: smaller ones run from cache and overstate memory bandwidth.
    big = max(elem, key=lambda p: p.bytes_moved, default=None)
    bw = big.bytes_moved / big.timing.value(table.statistic) if big else 1e9
    launch = min((p.timing.value(table.statistic) for p in table.memory), default=0.0)
    tflops = peak / TFLOPS
    return AcceleratorSpec(
        name=table.accelerator or env.device_name, vendor="nvidia" if env.device_kind == "cuda"
        else "other", bf16_dense_tflops=tflops, fp32_dense_tflops=tflops,
        hbm_capacity_gib=env.memory_gb or 1.0, hbm_gbyte_per_s=bw / GBYTE_PER_S,
        gemm_efficiency=1.0, hbm_efficiency=1.0, kernel_launch_us=launch / US,
        num_sms=env.num_sms)


def heldout_gemm_errors(table: CalibrationTable, planes: list[tuple[str, int]]
                        ) -> dict[tuple[str, int], np.ndarray]:
    """Drop each grid plane (axis "m", "n" or "k" = value) in turn, predict it from the rest.

    Returns |predicted / measured - 1| for every dropped GEMM, per plane.
    """
    pts = [p for p in table.gemm if p.batch == 1]
    sizes = np.array([[p.m, p.n, p.k] for p in pts], dtype=np.float64)
    times = np.array([p.timing.value(table.statistic) for p in pts])
    out = {}
    for axis, value in planes:
        drop = sizes[:, "mnk".index(axis)] == value
        if not drop.any() or drop.all():
            raise ValueError(f"{axis}={value} is not a droppable plane of {table.name}")
        grid = LogGrid.from_points(sizes[~drop], times[~drop])
        pred = grid(sizes[drop, 0], sizes[drop, 1], sizes[drop, 2])
        out[(axis, value)] = np.abs(pred / times[drop] - 1.0)
    return out
