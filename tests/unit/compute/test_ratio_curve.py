"""The grouped-GEMM ratio curve priced in one vectorized pass equals the point-by-point
rule of docs/compute.md (each point's dense GEMMs and memory-bound ops, summed in order)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from moesim.compute import KernelCostModel
from moesim.compute.calibration import load_calibration
from moesim.compute.families import times_s
from moesim.compute.measured import (
    QUANTIZED,
    GemmLookup,
    RatioCurve,
    balanced_tokens,
    moe_overhead_bytes,
    ratio_curve,
)

ROOT = Path(__file__).resolve().parents[3]
H100 = ROOT / "calibration" / "aic-h100-sxm.json"


def reference_curve(series, gemm: GemmLookup, model: KernelCostModel,
                    dtype: str) -> RatioCurve | None:
    """The rule one point at a time (the loop the vectorized pass replaced)."""
    rpa, ratio, used = [], [], 0
    for s in series:
        if s.moe_tp_degree != 1 or s.moe_ep_degree != 1:
            continue
        used += 1
        gate, f, h = (2 if s.gated else 1), s.inter_size, s.hidden_size
        for tokens, t in zip(s.num_tokens, times_s(s.time_us), strict=True):
            a = tokens * s.top_k
            q, hi, lo = balanced_tokens(a, s.num_experts)
            dense = 0.0
            for rows, count in ((q + 1, hi), (q, lo)):
                if rows > 0 and count > 0:
                    dense += count * float(gemm(rows, gate * f, h) + gemm(rows, h, f))
            over = sum(model.memory_op(b, kind).time_s for b, kind in
                       moe_overhead_bytes(a, h, f, gate, dtype in QUANTIZED))
            rpa.append(a / min(a, s.num_experts))
            ratio.append(max(t - over, 0.1 * t) / dense)
    if not rpa:
        return None
    x, y = np.log2(np.array(rpa)), np.array(ratio)
    bins = np.round(x).astype(int)
    centres = np.unique(bins)
    med = np.array([np.median(y[bins == b]) for b in centres])
    return RatioCurve(rows=2.0 ** centres.astype(np.float64), ratio=med, num_series=used,
                      dtype=dtype)


@pytest.fixture(scope="module")
def h100_table():
    return load_calibration(H100)


@pytest.mark.parametrize("dtype", ["bf16", "fp8", "fp8_block"])
def test_vectorized_curve_is_the_point_rule_bit_for_bit(h100_table, h100, dtype):
    model = KernelCostModel(h100, dtype, h100_table)
    lookup = GemmLookup(h100_table.gemm_grid(dtype))
    # every EP1/TP1 series of the dtype and a few others (skipped by both)
    series = [s for s in h100_table.moe_series if s.dtype == dtype][:12]
    want = reference_curve(series, lookup, model, dtype)
    got = ratio_curve(series, lookup, model._memory_many, dtype)
    assert want is not None and got is not None
    assert got.num_series == want.num_series and got.dtype == want.dtype
    assert got.rows.tobytes() == want.rows.tobytes()
    assert got.ratio.tobytes() == want.ratio.tobytes()


def test_no_ep1_tp1_series_gives_no_curve(h100_table, h100):
    model = KernelCostModel(h100, "bf16", h100_table)
    lookup = GemmLookup(h100_table.gemm_grid("bf16"))
    others = [s for s in h100_table.moe_series if s.moe_ep_degree > 1][:3]
    assert others
    assert ratio_curve(others, lookup, model._memory_many, "bf16") is None
    assert ratio_curve([], lookup, model._memory_many, "bf16") is None
