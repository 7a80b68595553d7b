"""The aiconfigurator-core importer's rules on small hand-built tables (needs pandas), the
CLI without the package, and the shipped-table lookup."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from moesim.cli.main import app
from moesim.compute import aiconfigurator as aic
from moesim.compute.tables import SHIPPED_TABLES, default_table_for

pd = pytest.importorskip("pandas")


def test_version_order():
    order = ["0.5.6", "0.5.6.post2", "0.5.14", "1.2.0", "1.3.0rc10", "1.3.0rc20", "1.3.0",
             "2.23", "2.27.3", "2.29.2"]
    assert sorted(reversed(order), key=aic.version_key) == order


def _nccl(gpus: list[int], sizes: int) -> dict[str, object]:
    rows = [dict(op_name="all_reduce", nccl_dtype="half", num_gpus=g, message_size=2**i,
                 latency=0.01) for g in gpus for i in range(sizes)]
    return {"nccl_perf": pd.DataFrame(rows)}


def test_choose_prefers_scale_then_span_then_trtllm_then_newest():
    c = aic.Candidate
    few_gpus = c("nccl", "nccl", "2.29.2", _nccl([2, 4], 30), {})
    many_gpus = c("nccl", "nccl", "2.23", _nccl([2, 4, 8], 10), {})
    assert aic.choose([few_gpus, many_gpus]) is many_gpus  # more GPU counts beats more sizes
    old = c("nccl", "nccl", "2.27.3", _nccl([2, 4, 8], 10), {})
    assert aic.choose([old, many_gpus]) is old  # equal coverage: the newer version
    frames = {"gemm_perf": pd.DataFrame([dict(gemm_dtype="bfloat16", m=m, n=64, k=64,
                                              latency=0.01, kernel_source="x")
                                         for m in (1, 2)])}
    tied = [c("gemm", "vllm", "9.0", frames, {}), c("gemm", "trtllm", "1.0", frames, {}),
            c("gemm", "sglang", "9.0", frames, {})]
    assert aic.choose(tied).framework == "trtllm"
    assert aic.choose(tied[::2]).framework == "sglang"  # then alphabetically


def test_nccl_sizes_are_element_counts_times_element_bytes():
    from moesim.compute.aic_convert import convert_nccl

    df = pd.DataFrame([
        dict(op_name="alltoall", nccl_dtype="half", num_gpus=8, message_size=1024, latency=0.02),
        dict(op_name="alltoall", nccl_dtype="half", num_gpus=8, message_size=2048, latency=0.04),
        dict(op_name="alltoall", nccl_dtype="int8", num_gpus=8, message_size=1024, latency=0.01),
    ])
    curves, kept = convert_nccl({"nccl_perf": df})
    by_dtype = {cv.dtype: cv for cv in curves}
    assert by_dtype["fp16"].op == "all_to_all"
    assert by_dtype["fp16"].size_bytes == (2048.0, 4096.0)  # 2 B per half element
    assert by_dtype["fp16"].time_us == (20.0, 40.0)  # milliseconds -> microseconds
    assert by_dtype["int8"].size_bytes == (1024.0,)
    assert kept == {"nccl_perf": 3}


def _gemm_rows(dtype: str, fn) -> list[dict[str, object]]:
    return [dict(gemm_dtype=dtype, m=m, n=n, k=k, latency=fn(m, n, k), kernel_source="src")
            for m in (16, 256) for n in (128, 1024) for k in (128, 1024)]


def test_fp8_gemm_times_lose_the_measured_input_quantization():
    from moesim.compute.aic_convert import convert_gemm

    def pure(m, n, k):  # ms: a 2 us launch floor plus the GEMM's compute
        return 0.002 + 2 * m * n * k / 1e12

    def fp8(m, n, k):  # the FP8 GEMM alone: the same floor, twice the rate
        return 0.002 + m * n * k / 1e12

    def quant(m, k):
        return 0.001 + m * k / 1e9

    def block_quant(m, k):
        return 2 * quant(m, k)

    df = pd.DataFrame(_gemm_rows("bfloat16", pure)
                      + _gemm_rows("fp8", lambda m, n, k: fp8(m, n, k) + quant(m, k))
                      + _gemm_rows("fp8_block",
                                   lambda m, n, k: fp8(m, n, k) + block_quant(m, k)))
    # AIC splits the dynamic quantization into the scale (amax) and the cast.
    qk = [dict(m=m, k=k, latency=quant(m, k) / 2) for m in (16, 256) for k in (128, 1024)]
    quant_frames = {"scale_matrix_perf": pd.DataFrame(qk), "computescale_perf": pd.DataFrame(qk)}
    grids, notes = convert_gemm(df, quant_frames)
    by = {g.dtype: g for g in grids}
    assert by["bf16"].input_quantization == "none"
    assert by["fp8"].input_quantization == "subtracted"
    t = by["fp8"].times_s()  # [m, n, k]
    assert t[1, 1, 1] * 1e3 == pytest.approx(fp8(256, 1024, 1024), rel=1e-3)
    # Block: its quantization estimated at n = 128 from the fp8 GEMM alone there.
    b = by["fp8_block"].times_s()
    assert b[1, 1, 1] * 1e3 == pytest.approx(fp8(256, 1024, 1024), rel=1e-3)
    assert b[0, 1, 0] * 1e3 == pytest.approx(fp8(16, 1024, 128), rel=1e-3)
    assert by["fp8_block"].input_quantization == "subtracted"
    assert any(n.startswith("gemm fp8:") for n in notes)


def test_moe_keeps_balanced_series_and_marks_gating():
    from moesim.compute.aic_convert import convert_moe

    rows = [dict(moe_dtype="bfloat16", kernel_source=src, hidden_size=1024, inter_size=512,
                 num_experts=8, topk=2, moe_tp_size=1, moe_ep_size=1, distribution=dist,
                 num_tokens=t, latency=0.1 * t)
            for src in ("moe_torch_flow_cutlass", "moe_torch_flow_nongated")
            for dist in ("balanced", "power_law_1.2") for t in (16, 32)]
    rows.append(dict(rows[0], moe_dtype="int4_wo"))
    series, kept = convert_moe({"moe_perf": pd.DataFrame(rows)})
    assert kept == {"moe_perf": 4}
    assert [s.gated for s in series] == [True, False]
    assert series[0].num_tokens == (16, 32) and series[0].time_us == (1600.0, 3200.0)


def test_import_without_the_package_is_one_line_exit_2(monkeypatch, tmp_path):
    monkeypatch.setattr(aic.importlib.util, "find_spec", lambda name: None)
    res = CliRunner().invoke(app, ["calibrate", "import-aiconfigurator", "--system",
                                   "h100_sxm", "--out", str(tmp_path / "x.json")])
    assert res.exit_code == 2
    line = res.output.strip()
    assert "\n" not in line and "moesim[aiconfigurator]" in line
    assert not (tmp_path / "x.json").exists()


def test_default_tables_for_topology_accelerators():
    for name, file in SHIPPED_TABLES.items():
        path = default_table_for(name)
        assert path is not None and path.name == file
    assert default_table_for("H800-SXM") is None
    assert default_table_for("TPU-v5p") is None
    assert np.all([aic.SYSTEM_ACCELERATOR[s] in SHIPPED_TABLES for s in aic.SYSTEM_ACCELERATOR])
