"""The kernel cost model: how long one GEMM, grouped GEMM, attention or memory op takes.

With a calibration table attached (one that has the model's dtype, and the same accelerator
if the table names one), times come from the table's measurements; otherwise from the
roofline of :mod:`moesim.compute.roofline`. Every result says where it came from in
``source``: "measured" (interpolated inside measured shapes), "derived" (computed from
measurements by a stated rule: the grouped-GEMM ratio, the attention backward ratio, a
scaling, an extrapolation) or "roofline". docs/compute.md lists which op takes which path.

Backward passes: a linear layer's backward is two GEMMs, dgrad (m x n @ n x k -> m x k) and
wgrad (k x m @ m x n -> k x n); the engine calls :meth:`KernelCostModel.gemm` for each, and
:meth:`KernelCostModel.grouped_gemm_many` with the backward shapes of the experts' GEMMs.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from moesim.compute import roofline as rf
from moesim.compute import v1
from moesim.compute.attention import AttentionLookup, attended_fraction, backward_ratio
from moesim.compute.calibration import CalibrationTable
from moesim.compute.measured import (
    DERIVED,
    DTYPE_FAMILY,
    MEASURED,
    QUANTIZED,
    ROOFLINE,
    GemmLookup,
    MemoryLookup,
    RatioCurve,
    lower_curve,
    pick_memory_curve,
    ratio_curve,
)
from moesim.errors import SpecError
from moesim.specs.hardware import AcceleratorSpec
from moesim.units import dtype_bytes

DTYPES = tuple(DTYPE_FAMILY)
# Roofline dtype of each model dtype: block-scaled and MX FP8 run on the FP8 tensor cores;
# NVFP4 is priced at the FP8 rate where the spec gives no FP4 peak (conservative).
ROOFLINE_DTYPE = {"fp8_block": "fp8", "mxfp8": "fp8", "nvfp4": "fp8"}


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
        if dtype not in DTYPES:
            raise SpecError(f"dtype={dtype!r} is not a compute dtype; valid: "
                            f"{', '.join(DTYPES)}")
        self.accelerator = accelerator
        self.dtype = dtype
        self.calibration = calibration
        self.rdtype = ROOFLINE_DTYPE.get(dtype, dtype)
        self._v1: v1.V1Lookups | None = None
        self._gemm_lookup: GemmLookup | None = None
        self._memory: MemoryLookup | None = None
        self._attention: dict[str, AttentionLookup] = {}
        self._ratio: RatioCurve | None | bool = False  # False: not built yet
        if calibration is not None:
            _check_accelerator(accelerator, calibration)
            self._attach(calibration)
        self._gemm = lru_cache(maxsize=65536)(self._gemm_uncached)

    def _attach(self, table: CalibrationTable) -> None:
        family, derived = DTYPE_FAMILY[self.dtype]
        grid = table.gemm_grid(family)
        if table.gemm and table.dtype == self.dtype:
            self._v1 = v1.V1Lookups(table)
        elif grid is not None:
            self._gemm_lookup = GemmLookup(grid, derived=derived)
        elif table.gemm or table.gemm_grids:
            have = ", ".join(table.gemm_dtypes())
            where = table.source_path or f"calibration {table.name!r}"
            raise SpecError(f"{where}: has no {self.dtype} GEMMs (it has {have}); the workload "
                            f"computes in {self.dtype}: import or profile a table with "
                            f"{self.dtype}, or drop the calibration")
        curve = pick_memory_curve(table.memory_curves)
        if curve is not None:
            self._memory = MemoryLookup(curve)

    # --- GEMMs ---------------------------------------------------------------------------
    def gemm(self, m: int, n: int, k: int, *, batch: int = 1) -> KernelTime:
        """A (batched) GEMM m x k @ k x n; seconds, memoized by shape."""
        return self._gemm(int(m), int(n), int(k), int(batch))

    def _gemm_uncached(self, m: int, n: int, k: int, batch: int) -> KernelTime:
        flops = 2.0 * batch * m * n * k
        moved = rf.gemm_bytes(m, n, k, batch, self.rdtype)
        if min(m, n, k, batch) <= 0:
            return KernelTime(0.0, 0.0, 0.0, self.source)
        # A batched GEMM is ``batch`` GEMMs' work in one launch; the tables are per GEMM.
        if self._gemm_lookup is not None:
            t = float(self._gemm_lookup(m, n, k)) * batch
            return KernelTime(t, flops, moved, self._gemm_lookup.source(m, n, k))
        if self._v1 is not None:
            t, src = self._v1.gemm(m, n, k)
            return KernelTime(t * batch, flops, moved, src)
        t = rf.gemm_roofline(self.accelerator, self.rdtype, m, n, k, batch)
        return KernelTime(t, flops, moved, ROOFLINE)

    def grouped_gemm(self, tokens_per_expert: np.ndarray | list[int], n: int,
                     k: int) -> KernelTime:
        """Experts' GEMMs in one call: expert i is tokens_i x k @ k x n; seconds."""
        t = np.asarray(tokens_per_expert, dtype=np.float64).reshape(1, -1)
        rows = float(t.sum())
        flops = 2.0 * rows * n * k
        moved = dtype_bytes(self.rdtype) * (rows * k + float((t > 0).sum()) * k * n + rows * n)
        time = float(self.grouped_gemm_many(t, n, k)[0])
        source = DERIVED if self._gemm_lookup is not None or self._v1 is not None else ROOFLINE
        return KernelTime(time, flops, moved, source)

    def grouped_gemm_many(self, tokens: np.ndarray, n: int, k: int, *,
                          wgrad: bool = False) -> np.ndarray:
        """Seconds of one grouped GEMM per row of ``tokens`` [R, E] (numpy only; hot path).

        Measured tables: the sum over experts with tokens of the dense GEMM (t_e, n, k),
        times the grouped ratio r(rows per active expert) measured from the MoE series.
        ``wgrad=True`` prices each expert's weight gradient, (k x t_e) @ (t_e x n): the dense
        GEMM (k, n, t_e), same FLOPs, the tokens as the reduction dimension (the roofline
        path prices it as the forward shape).
        """
        t = np.asarray(tokens, dtype=np.float64)
        if t.ndim == 1:
            t = t.reshape(1, -1)
        if self._gemm_lookup is not None:
            active = t > 0
            if wgrad:
                per = self._gemm_lookup.along(2, np.maximum(t, 1.0), float(k), float(n))
            else:
                per = self._gemm_lookup.rows(np.maximum(t, 1.0), float(n), float(k))
            dense = np.where(active, per, 0.0).sum(axis=-1)
            curve = self.grouped_ratio()
            if curve is None:
                return dense
            total = t.sum(axis=-1)
            rows = total / np.maximum(active.sum(axis=-1), 1)
            grouped = dense * curve(np.maximum(rows, 1.0))
            # No grouped kernel beats one dense GEMM of all its rows against one weight (the
            # same FLOPs with the most reuse): the measured ratio runs below 1 where the MoE
            # kernel fuses what moesim prices beside it, but never below that bound.
            if wgrad:
                one = self._gemm_lookup.along(2, np.maximum(total, 1.0), float(k), float(n))
            else:
                one = self._gemm_lookup.rows(np.maximum(total, 1.0), float(n), float(k))
            return np.where(total > 0, np.maximum(grouped, one), 0.0)
        if self._v1 is not None:
            return self._v1.grouped(t, float(n), float(k))
        return rf.grouped_gemm_roofline_many(self.accelerator, self.rdtype, t, n, k)

    def grouped_ratio(self) -> RatioCurve | None:
        """The measured grouped-GEMM ratio curve of this dtype (None: the table has no EP1/TP1
        MoE series of this dtype or of bf16). Memoized on the model.

        Block-scaled FP8 takes the lower of its own curve and the per-tensor FP8 one at each
        row count: a grouped kernel's overhead over dense GEMMs is its scheduling, not the
        scaling granularity, and the one block-scaled MoE kernel the H100 table measured
        (TRT-LLM's CUTLASS fp8_block MoE) runs slower than the BF16 MoE (Mixtral shape,
        4096 tokens: 4.06 vs 3.63 ms), while DeepGEMM's grouped block-scaled FP8 GEMMs reach
        1214-1346 TFLOP/s on the same chip (published case deepgemm-fp8-h800)."""
        if self._ratio is False:
            self._ratio = None
            table = self.calibration
            if table is not None and self._gemm_lookup is not None:
                family = self._gemm_lookup.dtype
                self._ratio = self._curve(table, family, self._gemm_lookup)
                if family == "fp8_block" and table.gemm_grid("fp8") is not None:
                    tensorwise = self._curve(table, "fp8", GemmLookup(table.gemm_grid("fp8")))  # type: ignore[arg-type]
                    self._ratio = lower_curve(self._ratio, tensorwise)
                if self._ratio is None and family != "bf16" and table.gemm_grid("bf16"):
                    bf16 = GemmLookup(table.gemm_grid("bf16"))  # type: ignore[arg-type]
                    self._ratio = self._curve(table, "bf16", bf16)
        return self._ratio  # type: ignore[return-value]

    def _curve(self, table: CalibrationTable, family: str,
               lookup: GemmLookup) -> RatioCurve | None:
        series = [s for s in table.moe_series if s.dtype == family]
        return ratio_curve(series, lookup, self._memory_many, family)

    # --- attention ---------------------------------------------------------------------------
    def attention(self, batch: int, seq_q: int, seq_kv: int, num_heads: int,
                  num_kv_heads: int, head_dim: int, *, causal: bool = True,
                  backward: bool = False, window: int | None = None,
                  head_dim_v: int | None = None, kv_cache_dtype: str | None = None
                  ) -> KernelTime:
        """Fused (FlashAttention-style) attention, forward or backward; seconds.

        ``window``: sliding-window size (None: full); ``head_dim_v``: value head dim when it
        differs from the query/key one (MLA: 192 / 128); ``kv_cache_dtype``: for decode.
        """
        dv = head_dim if head_dim_v is None else head_dim_v
        flops = rf.attention_flops(batch, seq_q, seq_kv, num_heads, (head_dim + dv) / 2.0,
                                   causal=causal, backward=backward)
        if window and window < seq_kv and causal:
            flops *= attended_fraction(seq_kv, window)
        moved = rf.attention_bytes(batch, seq_q, seq_kv, num_heads, num_kv_heads, head_dim,
                                   self.rdtype, backward=backward)
        fwd = self._measured_attention(batch, seq_q, seq_kv, num_heads, num_kv_heads,
                                       head_dim, causal, window, head_dim_v, kv_cache_dtype)
        if fwd is not None:
            t, src = fwd
            if backward:
                t, src = t * backward_ratio(seq_kv), DERIVED
            return KernelTime(t, flops, moved, src)
        if self._v1 is not None:
            hit = self._v1.attention(flops, seq_kv, head_dim, causal, backward)
            if hit is not None:
                return KernelTime(hit[0], flops, moved, hit[1])
        acc = self.accelerator
        eff = rf.attention_efficiency(seq_kv, causal=causal, backward=backward)
        compute = flops / (acc.peak_flops(self.rdtype) * eff)
        memory = moved / (acc.hbm_bytes_per_s * acc.hbm_efficiency)
        return KernelTime(max(compute, memory) + rf.launch_s(acc), flops, moved, ROOFLINE)

    def _measured_attention(self, batch: int, seq_q: int, seq_kv: int, h: int, kv: int,
                            d: int, causal: bool, window: int | None, dv: int | None,
                            kv_dtype: str | None) -> tuple[float, str] | None:
        table = self.calibration
        if table is None or not (table.attention_series or table.mla_series):
            return None
        adtype = "fp8" if self.dtype in QUANTIZED else "bf16"
        key = f"{adtype}/{kv_dtype or adtype}"
        if key not in self._attention:
            self._attention[key] = AttentionLookup(table.attention_series, table.mla_series,
                                                   adtype, kv_dtype or adtype)
        hit = self._attention[key].forward(batch, seq_q, seq_kv, h, kv, d, causal=causal,
                                           window=window, head_dim_v=dv)
        if hit is None and adtype != "bf16":  # no FP8 attention measured: the BF16 kernel
            return self._bf16_attention(batch, seq_q, seq_kv, h, kv, d, causal, window, dv)
        return hit

    def _bf16_attention(self, *args: object) -> tuple[float, str] | None:
        table = self.calibration
        assert table is not None
        lookup = self._attention.setdefault(
            "bf16/bf16", AttentionLookup(table.attention_series, table.mla_series, "bf16",
                                         "bf16"))
        b, sq, skv, h, kv, d, causal, window, dv = args
        hit = lookup.forward(b, sq, skv, h, kv, d, causal=causal, window=window,  # type: ignore[arg-type]
                             head_dim_v=dv)
        return None if hit is None else (hit[0], DERIVED)

    # --- memory-bound ops ------------------------------------------------------------------
    def memory_op(self, bytes_moved: float, kind: str = "elementwise") -> KernelTime:
        """A memory-bound op that reads plus writes ``bytes_moved`` bytes; seconds."""
        if bytes_moved <= 0:
            return KernelTime(0.0, 0.0, 0.0, self.source)
        if self._v1 is not None:
            hit = self._v1.memory(bytes_moved, kind)
            if hit is not None:
                return KernelTime(hit, 0.0, bytes_moved, MEASURED)
        if self._memory is not None:
            return KernelTime(self._memory(bytes_moved), 0.0, bytes_moved, DERIVED)
        return KernelTime(rf.memory_roofline(self.accelerator, bytes_moved), 0.0, bytes_moved,
                          ROOFLINE)

    def _memory_many(self, bytes_moved: np.ndarray, kind: str) -> np.ndarray:
        """``memory_op(b, kind).time_s`` for every b of an array (the measured curve priced in
        one call; other paths one size at a time)."""
        b = np.asarray(bytes_moved, dtype=np.float64)
        if self._v1 is None and self._memory is not None:
            return np.where(b > 0, self._memory.grid(np.where(b > 0, b, 1.0)), 0.0)
        return np.array([self.memory_op(float(x), kind).time_s for x in b.reshape(-1)],
                        dtype=np.float64).reshape(b.shape)

    def memory_op_many(self, bytes_moved: np.ndarray, kind: str = "elementwise"
                       ) -> tuple[np.ndarray, str] | None:
        """(seconds per entry, source) of memory-bound ops of positive ``bytes_moved`` [N]
        in one pass when one path prices them all (the measured curve, "derived"); None
        otherwise (a v1 table's per-kind curves, the roofline)."""
        b = np.asarray(bytes_moved, dtype=np.float64)
        if self._v1 is not None or self._memory is None or b.size == 0 or not bool((b > 0).all()):
            return None
        return self._memory_many(b, kind), DERIVED

    @property
    def source(self) -> str:
        """The path GEMMs take: "measured" when a table has this dtype, else "roofline"."""
        if self._gemm_lookup is not None:
            return DERIVED if self._gemm_lookup.derived else MEASURED
        return MEASURED if self._v1 is not None else ROOFLINE


def _check_accelerator(acc: AcceleratorSpec, table: CalibrationTable) -> None:
    if table.accelerator is not None and table.accelerator not in (acc.name,
                                                                   acc.kernels_measured_as):
        where = table.source_path or f"calibration {table.name!r}"
        raise SpecError(f"{where}: the table is attached to {table.accelerator!r}, not "
                        f"{acc.name!r}; use a table of {acc.name} or attach one with "
                        f"`moesim calibrate coverage TABLE --accelerator {acc.name} --out PATH`")
