"""The kernel cost model: how long one GEMM, grouped GEMM, attention or memory op takes.

With a calibration table attached (same dtype, and the same accelerator if the table names
one), times come from log-space interpolation of the measurements; otherwise from the
roofline of :mod:`moesim.compute.roofline`. Every result names its path in ``source``.

Backward passes: a linear layer's backward is two GEMMs, dgrad (m x n @ n x k -> m x k) and
wgrad (k x m @ m x n -> k x n); the engine calls :meth:`KernelCostModel.gemm` for each.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from moesim.compute import roofline as rf
from moesim.compute.calibration import CalibrationTable
from moesim.compute.interp import LogGrid, interp_1d_log
from moesim.errors import SpecError
from moesim.specs.hardware import AcceleratorSpec
from moesim.units import dtype_bytes

CALIBRATION = "calibration"
ROOFLINE = "roofline"


@dataclass(frozen=True)
class KernelTime:
    """One kernel's predicted time (seconds), its FLOPs and bytes, and which path gave it."""

    time_s: float
    flops: float
    bytes: float
    source: str


class KernelCostModel:
    """Kernel times on one accelerator in one dtype, from a calibration table or the roofline."""

    def __init__(self, accelerator: AcceleratorSpec, dtype: str,
                 calibration: CalibrationTable | None = None) -> None:
        if dtype not in ("bf16", "fp16", "fp8", "fp32", "tf32"):
            raise SpecError(f"dtype={dtype!r} is not a compute dtype; valid: bf16, fp16, fp8, fp32")
        if calibration is not None:
            _check_match(accelerator, dtype, calibration)
        self.accelerator = accelerator
        self.dtype = dtype
        self.calibration = calibration
        self._gemm_grid = _gemm_grid(calibration) if calibration else None
        self._grouped_ratio = _grouped_ratio(calibration, self._gemm_grid)
        self._memory_grids = _memory_grids(calibration) if calibration else {}
        self._attention_curves: dict[tuple[bool, bool, int], tuple[np.ndarray, np.ndarray]] = (
            _attention_curves(calibration) if calibration else {})
        self._gemm = lru_cache(maxsize=65536)(self._gemm_uncached)

    # --- GEMMs ---------------------------------------------------------------------------
    def gemm(self, m: int, n: int, k: int, *, batch: int = 1) -> KernelTime:
        """A (batched) GEMM m x k @ k x n; seconds, memoized by shape."""
        return self._gemm(int(m), int(n), int(k), int(batch))

    def _gemm_uncached(self, m: int, n: int, k: int, batch: int) -> KernelTime:
        flops = 2.0 * batch * m * n * k
        moved = rf.gemm_bytes(m, n, k, batch, self.dtype)
        if min(m, n, k, batch) <= 0:
            return KernelTime(0.0, 0.0, 0.0, self.source)
        if self._gemm_grid is not None:
            # A batched GEMM is ``batch`` GEMMs' work in one launch; the grid is per GEMM.
            t = float(self._gemm_grid(m, n, k)) * batch
            return KernelTime(t, flops, moved, CALIBRATION)
        t = rf.gemm_roofline(self.accelerator, self.dtype, m, n, k, batch)
        return KernelTime(t, flops, moved, ROOFLINE)

    def grouped_gemm(self, tokens_per_expert: np.ndarray | list[int], n: int,
                     k: int) -> KernelTime:
        """Experts' GEMMs in one call: expert i is tokens_i x k @ k x n; seconds."""
        t = np.asarray(tokens_per_expert, dtype=np.float64).reshape(1, -1)
        rows = float(t.sum())
        flops = 2.0 * rows * n * k
        moved = dtype_bytes(self.dtype) * (rows * k + float((t > 0).sum()) * k * n + rows * n)
        time = float(self.grouped_gemm_many(t, n, k)[0])
        return KernelTime(time, flops, moved, self.source)

    def grouped_gemm_many(self, tokens: np.ndarray, n: int, k: int) -> np.ndarray:
        """Seconds of one grouped GEMM per row of ``tokens`` [R, E] (numpy only; hot path)."""
        t = np.asarray(tokens, dtype=np.float64)
        if t.ndim == 1:
            t = t.reshape(1, -1)
        if self._gemm_grid is None:
            return rf.grouped_gemm_roofline_many(self.accelerator, self.dtype, t, n, k)
        # Calibrated: sum of the experts' dense-GEMM times, times the measured ratio of a
        # grouped call to that sum (see _grouped_ratio); experts without tokens cost nothing.
        safe = np.maximum(t, 1.0)
        per = self._gemm_grid(safe, float(n), float(k))
        return np.where(t > 0, per, 0.0).sum(axis=-1) * self._grouped_ratio

    # --- attention and memory ops -----------------------------------------------------------
    def attention(self, batch: int, seq_q: int, seq_kv: int, num_heads: int,
                  num_kv_heads: int, head_dim: int, *, causal: bool = True,
                  backward: bool = False) -> KernelTime:
        """Fused (FlashAttention-style) attention, forward or backward; seconds."""
        flops = rf.attention_flops(batch, seq_q, seq_kv, num_heads, head_dim,
                                   causal=causal, backward=backward)
        moved = rf.attention_bytes(batch, seq_q, seq_kv, num_heads, num_kv_heads, head_dim,
                                   self.dtype, backward=backward)
        rate = self._attention_rate(seq_kv, head_dim, causal, backward)
        if rate is not None:
            return KernelTime(flops / rate, flops, moved, CALIBRATION)
        acc = self.accelerator
        eff = rf.attention_efficiency(seq_kv, causal=causal, backward=backward)
        compute = flops / (acc.peak_flops(self.dtype) * eff)
        memory = moved / (acc.hbm_bytes_per_s * acc.hbm_efficiency)
        return KernelTime(max(compute, memory) + rf.launch_s(acc), flops, moved, ROOFLINE)

    def _attention_rate(self, seq_kv: int, head_dim: int, causal: bool,
                        backward: bool) -> float | None:
        """Measured FLOP/s interpolated over seq_kv (nearest head_dim); None if unmeasured."""
        dims = [d for (c, bw, d) in self._attention_curves if c == causal and bw == backward]
        if not dims:
            return None
        best = min(dims, key=lambda d: abs(np.log(d / head_dim)))
        xs, ys = self._attention_curves[(causal, backward, best)]
        return float(interp_1d_log(np.array(seq_kv), xs, ys))

    def memory_op(self, bytes_moved: float, kind: str = "elementwise") -> KernelTime:
        """A memory-bound op that reads plus writes ``bytes_moved`` bytes; seconds."""
        if bytes_moved <= 0:
            return KernelTime(0.0, 0.0, 0.0, self.source)
        grid = self._memory_grids.get(kind) or self._memory_grids.get("elementwise")
        if grid is not None:
            return KernelTime(float(grid(bytes_moved)), 0.0, bytes_moved, CALIBRATION)
        return KernelTime(rf.memory_roofline(self.accelerator, bytes_moved), 0.0, bytes_moved,
                          ROOFLINE)

    @property
    def source(self) -> str:
        """The path GEMMs take: "calibration" when a table is attached, else "roofline"."""
        return CALIBRATION if self._gemm_grid is not None else ROOFLINE


def _check_match(acc: AcceleratorSpec, dtype: str, table: CalibrationTable) -> None:
    if table.dtype != dtype:
        raise SpecError(f"calibration {table.name!r} was measured in {table.dtype} but the "
                        f"workload computes in {dtype}; profile with --dtype {dtype} or drop "
                        "the calibration")
    if table.accelerator is not None and table.accelerator != acc.name:
        raise SpecError(f"calibration {table.name!r} is attached to {table.accelerator!r}, not "
                        f"{acc.name!r}; attach it with `moesim calibrate TABLE --accelerator "
                        f"{acc.name}`")


def _gemm_grid(table: CalibrationTable) -> LogGrid | None:
    pts = [p for p in table.gemm if p.batch == 1]
    if not pts:
        return None
    sizes = np.array([[p.m, p.n, p.k] for p in pts], dtype=np.float64)
    return LogGrid.from_points(sizes, np.array([p.timing.value(table.statistic) for p in pts]))


def _grouped_ratio(table: CalibrationTable | None, grid: LogGrid | None) -> float:
    """Median over grouped measurements of measured time / sum of per-expert GEMM times.

    Below 1 where a grouped kernel beats separate launches, above where it pads; 1.0 when
    nothing was measured.
    """
    if table is None or grid is None or not table.grouped_gemm:
        return 1.0
    ratios = []
    for p in table.grouped_gemm:
        t = np.array([x for x in p.tokens_per_expert if x > 0], dtype=np.float64)
        dense = float(grid(t, float(p.n), float(p.k)).sum())
        ratios.append(p.timing.value(table.statistic) / dense)
    return float(np.median(ratios))


def _memory_grids(table: CalibrationTable) -> dict[str, LogGrid]:
    """One time-vs-bytes curve per memory-op kind."""
    out = {}
    for kind in sorted({p.kind for p in table.memory}):
        pts = [p for p in table.memory if p.kind == kind]
        out[kind] = LogGrid.from_points(np.array([[p.bytes_moved] for p in pts]),
                                        np.array([p.timing.value(table.statistic) for p in pts]))
    return out


def _attention_curves(table: CalibrationTable
                      ) -> dict[tuple[bool, bool, int], tuple[np.ndarray, np.ndarray]]:
    """Achieved FLOP/s vs seq_kv per (causal, backward, head_dim); medians per seq_kv."""
    rates: dict[tuple[bool, bool, int], dict[int, list[float]]] = {}
    for p in table.attention:
        f = rf.attention_flops(p.batch, p.seq_q, p.seq_kv, p.num_heads, p.head_dim,
                               causal=p.causal, backward=p.backward)
        key = (p.causal, p.backward, p.head_dim)
        rates.setdefault(key, {}).setdefault(p.seq_kv, []).append(f / p.timing.value(table.statistic))
    out = {}
    for key, by_seq in rates.items():
        xs = np.array(sorted(by_seq), dtype=np.float64)
        out[key] = (xs, np.array([float(np.median(by_seq[int(x)])) for x in xs]))
    return out
