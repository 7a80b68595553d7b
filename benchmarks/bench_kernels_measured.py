"""Measured-table accuracy against published kernel and collective figures.

Run: python benchmarks/bench_kernels_measured.py

Prints, from the shipped tables converted from aiconfigurator-core (calibration/aic-*.json):

1. the semantics checks the importer relies on (GEMM 8192^3, the Mixtral MoE series, the
   attention and MLA FLOP rates, NCCL element counts);
2. GEMMs against maximum-achievable-matmul (MAMF) figures at their stated best shapes and
   against DeepGEMM's FP8 block-scaled figures on H800 (priced with the H100 table: the H800
   has the H100 SXM's SMs and tensor-core rates, hardware reference section 1), grouped points
   through ``grouped_gemm_many`` with equal groups;
3. intra-node all-reduce bus bandwidth from the measured NCCL curves against published sweeps.

It is a benchmark, not a test: nothing is tuned to these points, except that the H200 and
B200 sweeps, timed one ``torch.distributed`` call per trial, add the fitted host cost of that
call (moesim.network.efficiency.TORCH_ONE_CALL_S, fitted to six of their points:
benchmarks/fit_torch_call_overhead.py). A size above the largest
measured message (512 MiB) has no measured answer; the extrapolation shown there holds the
largest measured size's bus bandwidth and is marked derived.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from moesim.compute import KernelCostModel, load_calibration
from moesim.compute.calibration import CalibrationTable
from moesim.network.efficiency import TORCH_ONE_CALL_S
from moesim.specs.loader import load_topology
from moesim.units import parse_size

ROOT = Path(__file__).resolve().parent.parent
CAL = ROOT / "calibration"
TOPOLOGY = {"A100": "dgx-a100-superpod.yaml", "H100": "dgx-h100-superpod.yaml",
            "H200": "dgx-h200-superpod.yaml", "B200": "dgx-b200-superpod.yaml",
            "GB200": "gb200-nvl72-superpod.yaml"}
TABLE = {"A100": "aic-a100-sxm.json", "H100": "aic-h100-sxm.json", "H200": "aic-h200-sxm.json",
         "B200": "aic-b200-sxm.json", "GB200": "aic-gb200.json"}

# Maximum achievable matmul TFLOP/s at the best shape found (stas00/ml-engineering,
# compute/accelerator/README.md, "Maximum Achievable Matmul FLOPS comparison table").
MAMF = [("mamf-a100-bf16", "A100", "bf16", (1024, 10240, 5120), 271.2),
        ("mamf-h100-bf16", "H100", "bf16", (2048, 2048, 13312), 794.5),
        ("mamf-h100-fp8", "H100", "fp8", (1024, 9216, 14336), 1402.6),
        ("mamf-b200-bf16", "B200", "bf16", (1792, 16128, 3072), 1745.0),
        ("mamf-gb200-bf16", "GB200", "bf16", (4096, 9728, 2048), 1822.0)]
# DeepGEMM FP8 1x128/128x128 TFLOP/s on H800 (deepseek-ai/DeepGEMM README.md, Performance,
# commit 327ec92, 2025-04-09): dense (M, N, K); grouped (groups, M per group, N, K).
DEEPGEMM_DENSE = [((64, 2112, 7168), 206), ((128, 7168, 16384), 645),
                  ((4096, 7168, 16384), 1520), ((4096, 4096, 7168), 1410),
                  ((4096, 32768, 512), 775)]
DEEPGEMM_GROUPED = [("contiguous", (4, 8192, 4096, 7168), 1346),
                    ("contiguous", (8, 4096, 7168, 2048), 1214),
                    ("masked", (1, 1024, 4096, 7168), 1233),
                    ("masked", (4, 256, 7168, 2048), 815)]
# 8x B200 one node, all-reduce busbw (stas00/ml-engineering network/README.md, published
# case mleng-b200-1node-vs-4node-allreduce: 1 node @1MiB / 64MiB / 1GiB / 16GiB).
B200_ALLREDUCE = [("1MiB", 36.06), ("64MiB", 400.60), ("1GiB", 723.34), ("16GiB", 845.67)]
BUS_FACTOR = {"all_reduce": lambda n: 2 * (n - 1) / n, "all_gather": lambda n: (n - 1) / n,
              "reduce_scatter": lambda n: (n - 1) / n}


def model(system: str, dtype: str) -> KernelCostModel:
    acc = load_topology(ROOT / "topologies" / TOPOLOGY[system]).accelerator
    return KernelCostModel(acc, dtype, load_calibration(CAL / TABLE[system]))


def row(label: str, published: float, predicted: float, source: str, errs: list[float]) -> None:
    err = predicted / published - 1
    errs.append(abs(err))
    print(f"  {label:<44} published {published:8.1f}  predicted {predicted:8.1f}  "
          f"{err:+7.1%}  {source}")


def checks() -> None:
    print("semantics checks (from the shipped tables)")
    h100 = load_calibration(CAL / TABLE["H100"])
    g = model("H100", "bf16").gemm(8192, 8192, 8192)
    print(f"  H100 bf16 GEMM 8192^3: {g.time_s * 1e3:.4g} ms = {g.flops / g.time_s / 1e12:.0f} "
          "TFLOP/s")
    for s in h100.moe_series:
        if (s.dtype, s.hidden_size, s.inter_size, s.num_experts, s.top_k) == (
                "bf16", 4096, 14336, 8, 2) and s.moe_tp_degree * s.moe_ep_degree <= 8 and (
                s.moe_tp_degree == 1 or s.moe_ep_degree == 1):
            t = s.time_us[s.num_tokens.index(4096)] * 1e-6  # type: ignore[operator]
            flops = 6 * 4096 * 4096 * 14336 * 2 / (s.moe_tp_degree * s.moe_ep_degree)
            print(f"  Mixtral MoE 4096 tokens TP{s.moe_tp_degree} EP{s.moe_ep_degree}: "
                  f"{t * 1e3:.4g} ms = {flops / t / 1e12:.0f} TFLOP/s at 6 h f k per token")
    for s in h100.attention_series:
        if (s.phase, s.attn_dtype, s.kv_cache_dtype, s.num_heads, s.num_kv_heads, s.head_dim,
                s.window) == ("context", "bf16", "bf16", 32, 8, 128, 0):
            t = s.time_us[s.seq.index(16384)] * 1e-6  # type: ignore[operator]  # batch 1
            print(f"  context attention b1 s16K h32/8 d128: {t * 1e3:.4g} ms = "
                  f"{2 * 16384**2 * 32 * 128 / t / 1e12:.0f} TFLOP/s at causal 2 b s^2 h d")
    d192 = next(s for s in h100.attention_series if (
        s.phase, s.attn_dtype, s.kv_cache_dtype, s.num_heads, s.head_dim, s.window) == (
        "context", "bf16", "bf16", 64, 192, 0))
    t192 = d192.time_us[d192.seq.index(16384)] * 1e-6  # type: ignore[operator]
    r192 = 2 * 16384**2 * 64 * 192 / t192 / 1e12
    for s in h100.mla_series:
        if (s.phase, s.kv_cache_dtype, s.num_heads) == ("context", "bf16", 128):
            t = s.time_us[s.seq.index(16384)] * 1e-6  # type: ignore[operator]
            rate = [16384**2 * 128 * d / t / 1e12 for d in (320, 384, 1088)]
            print(f"  MLA context b1 s16K 128 heads: {rate[0]:.0f} TFLOP/s counted as qk 192 + "
                  f"v 128; v 192 would need {rate[1]:.0f} (head-dim-192 attention of the same "
                  f"table: {r192:.0f}), the absorbed form (576 + 512) {rate[2]:.0f}, above "
                  "the 989 peak")
    half = next(c for c in h100.collective_curves if (c.op, c.num_gpus, c.dtype) ==
                ("all_gather", 8, "fp16"))
    i8 = next(c for c in h100.collective_curves if (c.op, c.num_gpus, c.dtype) ==
              ("all_gather", 8, "int8"))
    b = half.size_bytes[-1]
    print(f"  NCCL all_gather 8 GPUs at {b / 2**20:.0f} MiB: half {h100.collective_time('all_gather', 8, b, 'fp16') * 1e3:.4g} ms, "  # type: ignore[operator]
          f"int8 {h100.collective_time('all_gather', 8, b, 'int8') * 1e3:.4g} ms "  # type: ignore[operator]
          f"(equal bytes, equal time: message_size counts elements; int8 max {i8.size_bytes[-1] / 2**20:.0f} MiB)")


def gemms() -> list[float]:
    errs: list[float] = []
    print("GEMMs: TFLOP/s")
    for case, system, dtype, (m, n, k), pub in MAMF:
        kt = model(system, dtype).gemm(m, n, k)
        row(f"{case} {m}x{n}x{k}", pub, kt.flops / kt.time_s / 1e12, kt.source, errs)
    fp8b = model("H100", "fp8_block")
    for (m, n, k), pub in DEEPGEMM_DENSE:
        kt = fp8b.gemm(m, n, k)
        row(f"deepgemm-fp8-h800 dense {m}x{n}x{k}", pub, kt.flops / kt.time_s / 1e12,
            kt.source, errs)
    for layout, (groups, rows, n, k), pub in DEEPGEMM_GROUPED:
        t = float(fp8b.grouped_gemm_many(np.full((1, groups), float(rows)), n, k)[0])
        row(f"deepgemm-fp8-h800 {layout} {groups}x{rows} N{n} K{k}", pub,
            2 * groups * rows * n * k / t / 1e12, "derived", errs)
    print(f"  mean |error| over {len(errs)} points: {np.mean(errs):.1%} (MAMF {np.mean(errs[:5]):.1%}, "
          f"DeepGEMM dense {np.mean(errs[5:10]):.1%}, grouped {np.mean(errs[10:]):.1%})")
    return errs


def busbw(table: CalibrationTable, op: str, n: int, size: float) -> tuple[float, str] | None:
    t = table.collective_time(op, n, size)
    if t is not None:
        return size / t * BUS_FACTOR[op](n) / 1e9, "measured"
    curves = [c for c in table.collective_curves if c.op == op and c.num_gpus == n
              and c.dtype == "fp16"]
    if not curves or size < curves[0].size_bytes[0]:
        return None
    top = curves[0].size_bytes[-1]
    t_top = table.collective_time(op, n, top, "fp16")
    assert t_top is not None
    return top / t_top * BUS_FACTOR[op](n) / 1e9, f"derived (held from {top / 2**20:.0f} MiB)"


def published_points(name: str) -> list[tuple[str, str, int, float, float, bool]]:
    """(label, op, GPUs, bytes, published busbw, timed one torch.distributed call per trial)."""
    data = yaml.safe_load((ROOT / "scenarios" / "published" / name).read_text())
    out = []
    for p in data["points"]:
        if "ring" in p["label"] or "nvls-off" in p["label"]:
            continue  # NVLS disabled by hand; the measured curves use NCCL's defaults
        one_call = p.get("timing", data.get("timing", "nccl-tests")) == "torch-one-call"
        out.append((p["label"], p["op"], int(p["ranks"]), parse_size(p["size_bytes"]),
                    float(p["measured"][0]["value"]), one_call))
    return out


def collectives() -> None:
    print("NCCL intra-node bus bandwidth, GB/s (sizes from 1 MiB)")
    cases = [("A100", published_points("mleng-a100-8gpu-allreduce-sweep.yaml")),
             ("H200", published_points("mleng-h200-8gpu-allreduce-sweep.yaml")),
             ("B200", [(f"all_reduce 1 node {s}", "all_reduce", 8, parse_size(s), v, True)
                       for s, v in B200_ALLREDUCE])]
    inside: list[float] = []
    beyond: list[float] = []
    for system, points in cases:
        table = load_calibration(CAL / TABLE[system])
        for label, op, n, size, pub, one_call in points:
            if size < 2**20:
                continue
            hit = busbw(table, op, n, size)
            if hit is not None and one_call:  # the call's host cost is inside the time
                t = size * BUS_FACTOR[op](n) / (hit[0] * 1e9) + TORCH_ONE_CALL_S
                hit = (size * BUS_FACTOR[op](n) / t / 1e9, hit[1] + " + one call")
            if hit is None:
                print(f"  {system} {label:<40} published {pub:7.1f}  not measured "
                      f"({n} GPUs)")
                continue
            row(f"{system} {label}", pub, hit[0], hit[1],
                inside if hit[1].startswith("measured") else beyond)
    print(f"  inside the measured sizes: {len(inside)} points, max |error| "
          f"{max(inside):.1%}, mean {np.mean(inside):.1%}; {sum(e <= 0.15 for e in inside)} "
          "within 15%")
    if beyond:
        print(f"  above 512 MiB (held bus bandwidth): {len(beyond)} points, max |error| "
              f"{max(beyond):.1%}, mean {np.mean(beyond):.1%}")


def ratio_curves() -> None:
    print("grouped-GEMM ratio r(rows per active expert), EP1 TP1 balanced MoE series")
    for system in ("A100", "H100", "H200", "B200", "GB200"):
        table = load_calibration(CAL / TABLE[system])
        for dtype in table.gemm_dtypes():
            curve = model(system, dtype).grouped_ratio()
            if curve is None:
                continue
            cells = " ".join(f"{int(r)}:{v:.2f}" for r, v in zip(curve.rows, curve.ratio,
                                                                  strict=True))
            print(f"  {system:<5} {dtype:<9} ({curve.num_series:2d} series) {cells}")


if __name__ == "__main__":
    checks()
    gemms()
    collectives()
    ratio_curves()
