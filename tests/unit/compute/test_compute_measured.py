"""Kernel model on hand-built schema-v2 tables: exact grid points, monotone interpolation,
the grouped ratio, attention backward, memory curves, accessors, and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from moesim.compute import KernelCostModel, load_calibration, save_calibration
from moesim.compute.attention import backward_ratio
from moesim.compute.calibration import CalibrationTable
from moesim.compute.families import (
    AttentionSeries,
    CollectiveCurve,
    DeepEPSeries,
    GemmGrid,
    MemoryCurve,
    MoESeries,
    Provenance,
)
from moesim.errors import SpecError

M, N, K = (1, 32, 128, 1024), (512, 1024, 2048), (512, 1024, 2048)
PROV = Provenance(source="aiconfigurator-core", device_name="test-gpu")


def gemm_s(m: float, n: float, k: float) -> float:
    """The synthetic device: a 10 us floor plus 1e14 FLOP/s."""
    return 1e-5 + 2.0 * m * n * k / 1e14


def grid(dtype: str = "bf16", hole: bool = False) -> GemmGrid:
    t = [gemm_s(m, n, k) * 1e6 for m in M for n in N for k in K]
    if hole:
        t[len(t) // 2] = None
    return GemmGrid(dtype=dtype, m=M, n=N, k=K, time_us=tuple(t))


# Memory at exactly 1e12 B/s over 1 kB .. 1 TB (a power law, so log-log is exact).
MEMORY = MemoryCurve(kind="fp8_cast", bytes_rule="test", size_bytes=(1e3, 1e12),
                     time_us=(1e-3, 1e6))
H, F, E, TOPK = 1024, 512, 4, 2


def overhead_s(assignments: int) -> float:
    # permute + unpermute 2 x A x h x 2 B each, activation (2 + 1) x A x f x 2 B, at 1e12 B/s.
    return (4 * assignments * H * 2 + 3 * assignments * F * 2) / 1e12


def dense_s(rows: int) -> float:
    return E * (gemm_s(rows, 2 * F, H) + gemm_s(rows, H, F))


def moe_series() -> MoESeries:
    # 64 tokens x top-2 over 4 experts = 32 rows each, at ratio 0.8; 256 tokens: 128 rows, 0.6.
    t64 = 0.8 * dense_s(32) + overhead_s(128)
    t256 = 0.6 * dense_s(128) + overhead_s(512)
    return MoESeries(dtype="bf16", hidden_size=H, inter_size=F, num_experts=E, top_k=TOPK,
                     num_tokens=(64, 256), time_us=(t64 * 1e6, t256 * 1e6))


def attention_series() -> AttentionSeries:
    return AttentionSeries(phase="context", attn_dtype="bf16", kv_cache_dtype="bf16",
                           num_heads=8, num_kv_heads=2, head_dim=128, batch=(1, 2),
                           seq=(1024, 4096), time_us=(100.0, 1200.0, 190.0, 2300.0))


def table(**kw) -> CalibrationTable:
    base = dict(name="v2-test", provenance=PROV, gemm_grids=(grid(),), memory_curves=(MEMORY,),
                moe_series=(moe_series(),), attention_series=(attention_series(),))
    base.update(kw)
    return CalibrationTable(**base)


def test_grid_points_are_exact_and_measured(h100):
    model = KernelCostModel(h100, "bf16", table())
    for m, n, k in [(1, 512, 512), (128, 2048, 1024), (1024, 1024, 2048)]:
        t = model.gemm(m, n, k)
        assert t.time_s == pytest.approx(gemm_s(m, n, k), rel=1e-12)
        assert t.source == "measured"
    # Above the grid: time in proportion to size, and the answer is derived.
    t = model.gemm(4096, 2048, 2048)
    assert t.time_s == pytest.approx(4 * gemm_s(1024, 2048, 2048), rel=1e-12)
    assert t.source == "derived"


def test_interpolation_is_monotone_across_a_hole(h100):
    model = KernelCostModel(h100, "bf16", table(gemm_grids=(grid(hole=True),)))
    ms = np.geomspace(1, 4096, 60)
    for n, k in [(512, 512), (1024, 1024), (700, 1500)]:
        t = model._gemm_lookup(ms, n, k)  # type: ignore[misc]
        assert (np.diff(t) >= -1e-18).all()
    ks = np.geomspace(512, 2048, 40)
    t = np.array([model.gemm(128, 1024, int(k)).time_s for k in ks])
    assert (np.diff(t) >= -1e-18).all()


def test_grouped_ratio_matches_hand_computation(h100):
    model = KernelCostModel(h100, "bf16", table())
    curve = model.grouped_ratio()
    assert curve is not None and curve.num_series == 1
    assert list(curve.rows) == [32.0, 128.0]
    np.testing.assert_allclose(curve.ratio, [0.8, 0.6], rtol=1e-9)
    # r is log-linear between bins and held at the end values outside.
    assert float(curve(np.array(64.0))) == pytest.approx(np.sqrt(0.8 * 0.6), rel=1e-9)
    assert float(curve(np.array(1.0))) == pytest.approx(0.8, rel=1e-9)
    assert float(curve(np.array(1e5))) == pytest.approx(0.6, rel=1e-9)
    # Four experts of 32 rows at (n, k) = (1024, 1024): 4 dense GEMMs x 0.8, but never less
    # than one dense GEMM of all 128 rows (the same FLOPs against one weight).
    t = model.grouped_gemm([32, 32, 32, 32], 1024, 1024)
    want = max(4 * gemm_s(32, 1024, 1024) * 0.8, gemm_s(128, 1024, 1024))
    assert t.time_s == pytest.approx(want, rel=1e-9)
    assert t.source == "derived"
    # Experts without tokens cost nothing; the ratio uses rows per active expert (32).
    many = model.grouped_gemm_many(np.array([[32, 0, 32, 0], [0, 0, 0, 0]]), 1024, 1024)
    want = max(2 * gemm_s(32, 1024, 1024) * 0.8, gemm_s(64, 1024, 1024))
    assert many[0] == pytest.approx(want, rel=1e-9)
    assert many[1] == 0.0
    # Weight gradient: each expert's (k x t) @ (t x n) is the dense GEMM (k, n, t).
    wg = model.grouped_gemm_many(np.array([[512, 512, 512, 512]]), 2048, 1024, wgrad=True)
    want = max(4 * gemm_s(1024, 2048, 512) * 0.6, gemm_s(1024, 2048, 2048))
    assert wg[0] == pytest.approx(want, rel=1e-9)


def test_attention_forward_measured_and_backward_cited_ratio(h100):
    model = KernelCostModel(h100, "bf16", table())
    fwd = model.attention(1, 1024, 1024, 8, 2, 128)
    assert fwd.source == "measured" and fwd.time_s == pytest.approx(100e-6, rel=1e-12)
    bwd = model.attention(1, 1024, 1024, 8, 2, 128, backward=True)
    # FlashAttention-3, head dim 128, H100: 2.5 x 565 / 424 at 1K; 2.5 x 638 / 542 at 4K.
    assert bwd.source == "derived"
    assert bwd.time_s == pytest.approx(100e-6 * 2.5 * 565 / 424, rel=1e-12)
    assert model.attention(2, 4096, 4096, 8, 2, 128, backward=True).time_s == pytest.approx(
        2300e-6 * 2.5 * 638 / 542, rel=1e-12)
    assert backward_ratio(100) == pytest.approx(2.5 * 565 / 424)  # held below 1K
    # A sliding window with no windowed series: full time x the attended fraction.
    w = model.attention(1, 4096, 4096, 8, 2, 128, window=1024)
    frac = (1024 * 4096 - 1024 * 1023 / 2) / (4096 * 4097 / 2)
    assert w.source == "derived" and w.time_s == pytest.approx(1200e-6 * frac, rel=1e-12)
    # Non-causal: twice the causal kernel's FLOPs and time.
    assert model.attention(1, 1024, 1024, 8, 2, 128, causal=False).time_s == pytest.approx(
        200e-6, rel=1e-12)


def test_attention_without_series_is_roofline(h100):
    model = KernelCostModel(h100, "bf16", table(attention_series=()))
    assert model.attention(1, 1024, 1024, 8, 2, 128).source == "roofline"


def test_memory_op_from_measured_curve(h100):
    model = KernelCostModel(h100, "bf16", table())
    t = model.memory_op(4e9, "permute")
    assert t.source == "derived" and t.time_s == pytest.approx(4e9 / 1e12, rel=1e-9)
    assert KernelCostModel(h100, "bf16", table(memory_curves=())).memory_op(4e9).source == \
        "roofline"


def test_mxfp8_uses_the_block_fp8_grid_as_derived(h100):
    model = KernelCostModel(h100, "mxfp8", table(gemm_grids=(grid(), grid("fp8_block"))))
    t = model.gemm(128, 1024, 1024)
    assert t.source == "derived"
    assert t.time_s == pytest.approx(gemm_s(128, 1024, 1024), rel=1e-12)


def test_collective_and_deepep_accessors():
    curve = CollectiveCurve(op="all_reduce", num_gpus=8, size_bytes=(1e6, 1e8),
                            time_us=(20.0, 500.0))
    ep = DeepEPSeries(kind="normal", num_nodes=1, hidden_size=7168, top_k=8, num_experts=256,
                      num_sms=24, num_tokens=(128, 4096), dispatch_us=(50.0, 500.0),
                      combine_us=(80.0, 960.0))
    t = table(collective_curves=(curve,), deepep_series=(ep,))
    assert t.collective_time("all_reduce", 8, 1e6) == pytest.approx(20e-6, rel=1e-12)
    # Log-log halfway: sqrt(20 x 500) us at sqrt(1e6 x 1e8) bytes.
    assert t.collective_time("all_reduce", 8, 1e7) == pytest.approx(1e-4, rel=1e-9)
    assert t.collective_time("all_reduce", 8, 2e8) is None  # above the measured sizes
    assert t.collective_time("all_reduce", 4, 1e6) is None  # GPU count not measured
    assert t.collective_time("all_gather", 8, 1e6) is None
    d, c = t.deepep_time("normal", 1, 7168, 4096, 8, 256)  # type: ignore[misc]
    assert (d, c) == (pytest.approx(500e-6), pytest.approx(960e-6))
    assert t.deepep_time("normal", 2, 7168, 4096, 8, 256) is None
    assert t.deepep_time("normal", 1, 7168, 8192, 8, 256) is None


def _one_line(exc: SpecError, path: str) -> str:
    text = str(exc)
    assert "\n" not in text and path in text
    return text


def test_dtype_and_accelerator_mismatch_name_the_file(h100, tmp_path):
    path = tmp_path / "t.json"
    save_calibration(table(), path)
    loaded = load_calibration(path)
    with pytest.raises(SpecError) as err:
        KernelCostModel(h100, "fp8", loaded)
    assert "has no fp8 GEMMs (it has bf16)" in _one_line(err.value, str(path))
    save_calibration(table(accelerator="B200"), path)
    with pytest.raises(SpecError) as err:
        KernelCostModel(h100, "bf16", load_calibration(path))
    assert "attached to 'B200'" in _one_line(err.value, str(path))


def test_newer_schema_and_corrupt_json_are_one_line(tmp_path):
    newer = tmp_path / "newer.json"
    data = json.loads(json.dumps(table().model_dump(mode="json")))
    data["schema_version"] = 3
    newer.write_text(json.dumps(data))
    with pytest.raises(SpecError) as err:
        load_calibration(newer)
    assert "schema_version=3 is newer" in _one_line(err.value, str(newer))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SpecError) as err:
        load_calibration(bad)
    assert "not a JSON calibration table" in _one_line(err.value, str(bad))
    data["schema_version"] = 2
    data["gemm_grids"][0]["time_us"] = data["gemm_grids"][0]["time_us"][:-1]
    short = tmp_path / "short.json"
    short.write_text(json.dumps(data))
    with pytest.raises(SpecError) as err:
        load_calibration(short)
    assert "gemm_grids.0" in _one_line(err.value, str(short))


def test_v2_round_trip_is_compact_and_equal(tmp_path):
    path = tmp_path / "t.json"
    t = table()
    save_calibration(t, path)
    assert "\n" not in path.read_text().rstrip("\n")
    assert load_calibration(path) == t  # the file it came from is not part of equality


def test_v1_cpu_table_still_loads_and_prices(shipped):
    from moesim.compute.fit import accelerator_from_table

    assert shipped.schema_version == 1 and shipped.dtype == "fp32"
    model = KernelCostModel(accelerator_from_table(shipped), "fp32", shipped)
    p = shipped.gemm[0]
    t = model.gemm(p.m, p.n, p.k)
    assert t.source == "measured"
    assert t.time_s == pytest.approx(p.timing.value(shipped.statistic), rel=1e-12)
