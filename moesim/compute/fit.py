"""What a calibration table says: efficiency curves, coverage of scenarios, a CPU accelerator.

- :func:`fit_efficiency`: achieved fraction of peak vs FLOPs per kernel, fitted to
  e(F) = e_max · F / (F + F_half) by least squares (grid over F_half, e_max closed form).
- :func:`coverage`: for each op family, how many of the shapes a scenario needs lie inside
  the measured range (interpolated) and how far the others lie outside (extrapolated).
- :func:`accelerator_from_table`: a topology-free AcceleratorSpec for the device the table
  was measured on, described by its own measured maxima (see docs/compute.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from moesim.compute.calibration import CalibrationTable
from moesim.compute.interp import LogGrid
from moesim.compute.shapes import ScenarioShapes
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


def gemm_efficiency(table: CalibrationTable, peak_flops: float) -> EfficiencyFit:
    """Achieved fraction of ``peak_flops`` (FLOP/s) of every measured GEMM, fitted."""
    f = np.array([p.flops for p in table.gemm])
    rate = np.array([p.flops / p.timing.value(table.statistic) for p in table.gemm])
    return fit_efficiency(f, rate / peak_flops)


@dataclass(frozen=True)
class FamilyCoverage:
    """How a table covers one op family's needed shapes."""

    family: str
    needed: int
    inside: int
    worst_label: str = ""
    worst_factor: float = 1.0  # how far outside the measured range, as a size ratio

    @property
    def fraction(self) -> float:
        return self.inside / self.needed if self.needed else 1.0


def _outside(value: float, lo: float, hi: float) -> float:
    """Size ratio by which ``value`` lies outside [lo, hi] (1.0 inside)."""
    return max(lo / value, value / hi, 1.0)


def _family(name: str, items: list[tuple[str, list[tuple[float, float, float]]]]) -> FamilyCoverage:
    """items: (label, [(value, lo, hi) per dimension])."""
    inside, worst, label = 0, 1.0, ""
    for lab, dims in items:
        factor = max((_outside(v, lo, hi) for v, lo, hi in dims), default=1.0)
        if factor <= 1.0 + 1e-9:
            inside += 1
        elif factor > worst:
            worst, label = factor, lab
    return FamilyCoverage(name, len(items), inside, label, worst)


def _bounds(values: list[float]) -> tuple[float, float]:
    return (min(values), max(values)) if values else (np.inf, -np.inf)


def coverage(table: CalibrationTable, shapes: ScenarioShapes) -> list[FamilyCoverage]:
    """Per op family (gemm, grouped_gemm, attention, memory), the shapes inside the table."""
    gm = [_bounds([float(getattr(p, a)) for p in table.gemm]) for a in ("m", "n", "k")]
    gemm = [(g.label, [(g.m, *gm[0]), (g.n, *gm[1]), (g.k, *gm[2])]) for g in shapes.gemm]
    experts = [g for g in shapes.gemm if g.label.startswith("expert_")]
    grouped = []
    if experts:
        gt = _bounds([float(t) for p in table.grouped_gemm for t in p.tokens_per_expert if t])
        gn = _bounds([float(p.n) for p in table.grouped_gemm])
        gk = _bounds([float(p.k) for p in table.grouped_gemm])
        grouped = [(g.label, [(g.m, *gt), (g.n, *gn), (g.k, *gk)]) for g in experts]
    at = [_bounds([float(getattr(p, a)) for p in table.attention])
          for a in ("seq_kv", "head_dim")]
    attention = [(f"seq {a.seq}", [(a.seq, *at[0]), (a.head_dim, *at[1])])
                 for a in shapes.attention]
    memory = []
    for kind, nbytes in shapes.memory_bytes:
        mb = _bounds([p.bytes_moved for p in table.memory if p.kind == kind])
        memory.append((kind, [(nbytes, *mb)]))
    return [_family("gemm", gemm), _family("grouped_gemm", grouped),
            _family("attention", attention), _family("memory", memory)]


def accelerator_from_table(table: CalibrationTable) -> AcceleratorSpec:
    """A topology-free AcceleratorSpec for the table's device, from its own measurements.

    Peak FLOP/s = the fastest measured GEMM (so gemm_efficiency = 1.0: the peak is already
    achieved), HBM bandwidth = the largest measured elementwise op's (hbm_efficiency = 1.0),
    launch overhead = the shortest measured memory op. Memory capacity from the environment.
    """
    env = table.environment
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
        hbm_capacity_gb=env.memory_gb or 1.0, hbm_gbyte_per_s=bw / GBYTE_PER_S,
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
