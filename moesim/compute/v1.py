"""Lookups of a schema-v1 table's point lists (``moesim profile`` output).

GEMMs: log(time) interpolated multilinearly over (log m, log n, log k) of the measured
points; grouped GEMMs: the median over grouped measurements of measured time / sum of the
experts' interpolated dense GEMMs scales the sum; attention: achieved FLOP/s interpolated in
log seq_kv per (causal, backward), nearest head dim; memory ops: log time over log bytes per
kind (unknown kinds use ``elementwise``). See docs/compute.md.
"""

from __future__ import annotations

import numpy as np

from moesim.compute import roofline as rf
from moesim.compute.attention import backward_ratio
from moesim.compute.calibration import CalibrationTable
from moesim.compute.interp import LogGrid, interp_1d_log
from moesim.compute.measured import DERIVED, MEASURED


class V1Lookups:
    """The v1 point lists of one table, ready to answer (seconds, source)."""

    def __init__(self, table: CalibrationTable) -> None:
        self.table = table
        pts = [p for p in table.gemm if p.batch == 1]
        sizes = np.array([[p.m, p.n, p.k] for p in pts], dtype=np.float64)
        self.grid = LogGrid.from_points(sizes, np.array([p.timing.value(table.statistic)
                                                         for p in pts]))
        self.ratio = _grouped_ratio(table, self.grid)
        self.memory_grids = _memory_grids(table)
        self.curves = _attention_curves(table)

    def gemm(self, m: int, n: int, k: int) -> tuple[float, str]:
        src = MEASURED if self.grid.contains(m, n, k) else DERIVED
        return float(self.grid(m, n, k)), src

    def grouped(self, tokens: np.ndarray, n: float, k: float) -> np.ndarray:
        """Sum of the experts' dense-GEMM times x the measured ratio; no tokens, no cost."""
        per = self.grid(np.maximum(tokens, 1.0), n, k)
        return np.where(tokens > 0, per, 0.0).sum(axis=-1) * self.ratio

    def memory(self, bytes_moved: float, kind: str) -> float | None:
        grid = self.memory_grids.get(kind) or self.memory_grids.get("elementwise")
        return None if grid is None else float(grid(bytes_moved))

    def attention(self, flops: float, seq_kv: int, head_dim: int, causal: bool,
                  backward: bool) -> tuple[float, str] | None:
        """Measured FLOP/s at seq_kv (nearest head dim); an unmeasured backward is the
        measured forward x the FlashAttention-3 backward ratio (derived)."""
        rate = self._rate(seq_kv, head_dim, causal, backward)
        if rate is not None:
            return flops / rate, MEASURED
        if backward:
            fwd = self._rate(seq_kv, head_dim, causal, False)
            if fwd is not None:
                return flops / rf.ATTENTION_BACKWARD_FLOP_RATIO / fwd * backward_ratio(
                    seq_kv), DERIVED
        return None

    def _rate(self, seq_kv: int, head_dim: int, causal: bool, backward: bool) -> float | None:
        dims = [d for (c, bw, d) in self.curves if c == causal and bw == backward]
        if not dims:
            return None
        best = min(dims, key=lambda d: abs(np.log(d / head_dim)))
        xs, ys = self.curves[(causal, backward, best)]
        return float(interp_1d_log(np.array(seq_kv), xs, ys))


def _grouped_ratio(table: CalibrationTable, grid: LogGrid) -> float:
    """Median over grouped measurements of measured time / sum of per-expert GEMM times.

    Below 1 where a grouped kernel beats separate launches, above where it pads; 1.0 when
    nothing was measured.
    """
    if not table.grouped_gemm:
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
        rates.setdefault(key, {}).setdefault(p.seq_kv, []).append(
            f / p.timing.value(table.statistic))
    out = {}
    for key, by_seq in rates.items():
        xs = np.array(sorted(by_seq), dtype=np.float64)
        out[key] = (xs, np.array([float(np.median(by_seq[int(x)])) for x in xs]))
    return out
