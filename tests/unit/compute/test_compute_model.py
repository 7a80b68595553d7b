"""KernelCostModel with a calibration table: sources, exactness, grouped GEMMs, errors."""

from __future__ import annotations

import numpy as np
import pytest

from moesim.compute import CalibrationTable, KernelCostModel
from moesim.compute.calibration import (
    AttentionPoint,
    EnvironmentRecord,
    GemmPoint,
    GroupedGemmPoint,
    MemoryOpPoint,
    TimingStats,
)
from moesim.errors import SpecError

ENV = EnvironmentRecord(device_kind="cpu", device_name="test-cpu", device_count=1,
                        torch_version="0", date="2025-01-01T00:00:00+00:00")


def _stats(t: float) -> TimingStats:
    return TimingStats(median_s=t, p10_s=t * 0.95, p90_s=t * 1.05, num_repeats=5)


def _gemm_time(m: int, n: int, k: int) -> float:
    # A synthetic device: 10 us floor plus 1e11 FLOP/s.
    return 1e-5 + 2.0 * m * n * k / 1e11


def _table(**kw) -> CalibrationTable:
    gemm = tuple(GemmPoint(m=m, n=n, k=k, timing=_stats(_gemm_time(m, n, k)))
                 for m in (16, 128, 1024) for n in (256, 2048) for k in (256, 2048))
    # Grouped: 4 experts measured at 0.8 x the sum of their dense GEMMs.
    tokens = (16, 128, 128, 1024)
    dense = sum(_gemm_time(t, 2048, 256) for t in tokens)
    grouped = (GroupedGemmPoint(tokens_per_expert=tokens, n=2048, k=256, method="grouped_mm",
                                timing=_stats(0.8 * dense)),)
    memory = tuple(MemoryOpPoint(kind="elementwise", bytes_moved=b, timing=_stats(1e-6 + b / 1e10))
                   for b in (1e4, 1e6, 1e8))
    attention = (AttentionPoint(batch=1, seq_q=1024, seq_kv=1024, num_heads=8, num_kv_heads=2,
                                head_dim=128, timing=_stats(4e-3)),)
    base = dict(name="synthetic", dtype="fp32", environment=ENV, gemm=gemm,
                grouped_gemm=grouped, memory=memory, attention=attention)
    base.update(kw)
    return CalibrationTable(**base)


def test_calibrated_gemm_exact_and_sourced(h100):
    model = KernelCostModel(h100, "fp32", _table())
    t = model.gemm(128, 2048, 256)
    assert t.source == "measured"
    assert t.time_s == pytest.approx(_gemm_time(128, 2048, 256), rel=1e-12)
    assert t.flops == 2 * 128 * 2048 * 256
    # Batched: batch x the single-GEMM time.
    assert model.gemm(128, 2048, 256, batch=3).time_s == pytest.approx(3 * t.time_s, rel=1e-12)


def test_gemm_is_memoized(h100):
    model = KernelCostModel(h100, "bf16")
    a = model.gemm(4096, 4096, 4096)
    assert model.gemm(4096, 4096, 4096) is a


def test_grouped_gemm_uses_measured_ratio(h100):
    model = KernelCostModel(h100, "fp32", _table())
    tokens = [16, 0, 1024]
    expect = 0.8 * (_gemm_time(16, 2048, 256) + _gemm_time(1024, 2048, 256))
    t = model.grouped_gemm(tokens, 2048, 256)
    assert t.time_s == pytest.approx(expect, rel=1e-9)
    assert t.source == "derived"  # the measured ratio applied to interpolated GEMMs


@pytest.mark.parametrize("calibrated", [False, True])
def test_grouped_many_matches_single_rows(h100, calibrated):
    model = KernelCostModel(h100, "fp32", _table() if calibrated else None)
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 3000, size=(5, 8))
    tokens[2] = 0
    many = model.grouped_gemm_many(tokens, 2048, 1024)
    assert many.shape == (5,)
    assert many[2] == 0.0
    for r in range(5):
        assert many[r] == pytest.approx(model.grouped_gemm(tokens[r], 2048, 1024).time_s)


def test_roofline_grouped_single_expert_equals_gemm(h100):
    model = KernelCostModel(h100, "bf16")
    assert model.grouped_gemm([3000], 4096, 7168).time_s == pytest.approx(
        model.gemm(3000, 4096, 7168).time_s, rel=1e-12)


def test_memory_and_attention_from_table(h100):
    model = KernelCostModel(h100, "fp32", _table())
    assert model.memory_op(1e6).time_s == pytest.approx(1e-6 + 1e6 / 1e10, rel=1e-12)
    # Unmeasured kinds fall back to the elementwise curve.
    assert model.memory_op(1e6, "norm").source == "measured"
    a = model.attention(1, 1024, 1024, 8, 2, 128)
    assert a.source == "measured" and a.time_s == pytest.approx(4e-3, rel=1e-12)
    # Backward was not measured: the measured forward x the FlashAttention-3 ratio at 1K,
    # 2.5 x 565 / 424 = 3.3314 (moesim/compute/attention.py).
    b = model.attention(1, 1024, 1024, 8, 2, 128, backward=True)
    assert b.source == "derived"
    assert b.time_s == pytest.approx(4e-3 * 2.5 * 565 / 424, rel=1e-12)
    # Head dim 64 against the measured 128 only: the nearest one (still measured FLOP/s).
    assert model.attention(1, 1024, 1024, 8, 2, 64).source == "measured"


def test_dtype_and_accelerator_mismatch_are_spec_errors(h100):
    with pytest.raises(SpecError, match="fp32"):
        KernelCostModel(h100, "bf16", _table())
    with pytest.raises(SpecError, match="attached to 'B200'"):
        KernelCostModel(h100, "fp32", _table(accelerator="B200"))
    with pytest.raises(SpecError, match="dtype"):
        KernelCostModel(h100, "int4")


def test_v1_table_outside_its_grid_is_derived(h100):
    model = KernelCostModel(h100, "fp32", _table())
    # m = 4096 lies above the measured m (16..1024): extrapolated, so derived.
    assert model.gemm(4096, 2048, 256).source == "derived"
    assert model.source == "measured"
