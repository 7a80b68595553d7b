"""aiconfigurator-core tables -> moesim families: the conversion of each family's rows.

Semantics established from the data (docs/compute.md has the evidence and check numbers):

- ``latency`` is milliseconds per call. H100 bf16 GEMM 8192^3 (trtllm 1.3.0rc20) = 1.405 ms
  = 782 TFLOP/s.
- GEMM ``fp8`` times include the dynamic per-tensor quantization of the activation input:
  at n = 128 the fp8 time equals the same framework's ``computescale`` + ``scale_matrix``
  (quantize tables, same (m, k)) plus an FP8 read of A. That quantization is subtracted
  here, because moesim prices the FP8 cast as its own memory-bound op. ``fp8_block`` and
  ``nvfp4`` times include their own (unmeasured) activation quantization; it is estimated
  per (m, k) as the quantized time minus the per-tensor FP8 GEMM alone at the skinniest
  common n (>= 128, where both GEMMs are bound by the same read of A) and subtracted.
- MoE ``num_tokens`` is the token count of the EP x TP group before top-k; ``latency`` is one
  rank's whole routed-expert FFN (num_experts / EP experts, each TP-split; gate/up,
  activation, down). Only ``balanced`` routing is kept.
- context attention is the causal prefill forward (FLOPs 2 b s^2 h d); generation is one
  decode step over ``isl + step`` cached tokens.
- NCCL ``message_size`` counts elements of ``nccl_dtype``: half at N elements takes the time
  of int8 at 2N elements, so bytes = count x element size (2 for half, 1 for int8).
- DeepEP ``*_us`` columns are microseconds per call; dispatch = transmit + notify.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from moesim.compute.families import (
    AttentionSeries,
    CollectiveCurve,
    DeepEPSeries,
    GemmGrid,
    MemoryCurve,
    MLASeries,
    MoESeries,
)
from moesim.compute.interp import LogGrid

SIGNIFICANT = 4  # digits kept of every time (measurement noise is larger than 1e-4)
GEMM_DTYPES = {"bfloat16": "bf16", "float16": "fp16", "fp8": "fp8", "fp8_block": "fp8_block",
               "nvfp4": "nvfp4"}
MOE_DTYPES = {"bfloat16": "bf16", "fp8": "fp8", "fp8_block": "fp8_block", "nvfp4": "nvfp4"}
ATTN_DTYPES = {"bfloat16": "bf16", "float16": "fp16", "fp8": "fp8"}
NCCL_DTYPES = {"half": ("fp16", 2), "int8": ("int8", 1)}  # moesim name, bytes per element
NCCL_OPS = {"all_reduce": "all_reduce", "all_gather": "all_gather",
            "reduce_scatter": "reduce_scatter", "alltoall": "all_to_all"}
QUANT_MIN_N = 128  # skinniest n used to estimate a block-scaled GEMM's input quantization
CONVERTED = {"gemm_perf", "moe_perf", "context_attention_perf", "generation_attention_perf",
             "context_mla_perf", "generation_mla_perf", "nccl_perf",
             "wideep_deepep_normal_perf", "wideep_deepep_ll_perf", "scale_matrix_perf",
             "computescale_perf"}

RULES = (
    "latency: milliseconds per call, stored as microseconds rounded to 4 significant digits",
    "duplicate measurements of one key: the median",
    "gemm: one grid per dtype over the distinct m, n, k it measured; unmeasured cells null",
    "moe: balanced routing only; num_tokens = EP x TP group tokens before top-k; time = one "
    "rank's routed-expert FFN; gated = kernel source not 'nongated'",
    "attention: context = causal prefill forward over seq = isl; generation = one decode "
    "step over seq = isl + step cached tokens; window 0 = full",
    "mla: DeepSeek geometry (qk 128 + 64 rope, v 128, kv_lora 512), heads per device",
    "nccl: size_bytes = message_size (elements) x element size (half 2, int8 1)",
    "deepep: microseconds; dispatch = transmit + notify, combine = transmit + notify; "
    "num_tokens per rank",
    "memory: fp8_cast = quantize/scale_matrix, 3 B per element (read BF16, write FP8); "
    "fp8_amax = quantize/computescale, 2 B per element (read BF16); median per byte count",
)


def sig(values: np.ndarray) -> list[float | None]:
    """Round to SIGNIFICANT digits; NaN -> None."""
    return [None if not np.isfinite(v) else float(f"{v:.{SIGNIFICANT}g}") for v in values]


def _us(ms: Any) -> np.ndarray:
    return np.asarray(ms, dtype=np.float64) * 1e3


# --- spans (for choosing a framework/version) ----------------------------------------------
def gemm_span(frames: dict[str, Any]) -> tuple[int, int]:
    """Dtypes x the cells of the table's m x n x k axes (holes inside are interpolated)."""
    df = frames["gemm_perf"]
    df = df[df["gemm_dtype"].isin(list(GEMM_DTYPES))]
    cells = df["m"].nunique() * df["n"].nunique() * df["k"].nunique()
    return 0, int(df["gemm_dtype"].nunique() * cells)


def _balanced(df: Any) -> Any:
    return df[(df["distribution"] == "balanced") & df["moe_dtype"].isin(list(MOE_DTYPES))]


MOE_KEY = ["moe_dtype", "kernel_source", "hidden_size", "inter_size", "num_experts", "topk",
           "moe_tp_size", "moe_ep_size"]


def moe_span(frames: dict[str, Any]) -> tuple[int, int]:
    df = _balanced(frames["moe_perf"])
    return 0, int(df.groupby(MOE_KEY)["num_tokens"].nunique().sum()) if len(df) else 0


ATTN_KEY = ["attn_dtype", "kv_cache_dtype", "num_heads", "num_key_value_heads", "head_dim",
            "window_size", "kernel_source"]
MLA_KEY = ["mla_dtype", "kv_cache_dtype", "num_heads"]


def _grid_span(df: Any, key: list[str], a: str, b: str) -> int:
    if not len(df):
        return 0
    g = df.groupby(key)
    return int((g[a].nunique() * g[b].nunique()).sum())


def _with_seq(df: Any, phase: str) -> Any:
    df = df.copy()
    df["seq"] = df["isl"] + (df["step"] if phase == "generation" else 0)
    return df


def attention_span(frames: dict[str, Any]) -> tuple[int, int]:
    total = 0
    for stem, phase in (("context_attention_perf", "context"),
                        ("generation_attention_perf", "generation")):
        if stem in frames:
            df = _attn_rows(frames[stem])
            total += _grid_span(_with_seq(df, phase), ATTN_KEY, "batch_size", "seq")
    return 0, total


def mla_span(frames: dict[str, Any]) -> tuple[int, int]:
    total = 0
    for stem, phase in (("context_mla_perf", "context"), ("generation_mla_perf", "generation")):
        if stem in frames:
            total += _grid_span(_with_seq(frames[stem], phase), MLA_KEY, "batch_size", "seq")
    return 0, total


def nccl_span(frames: dict[str, Any]) -> tuple[int, int]:
    df = frames["nccl_perf"]
    span = df.groupby(["op_name", "nccl_dtype", "num_gpus"])["message_size"].nunique().sum()
    return int(df["num_gpus"].astype(int).nunique()), int(span)


def deepep_span(frames: dict[str, Any]) -> tuple[int, int]:
    nodes = set()
    for df in frames.values():
        nodes |= set(int(x) for x in df["node_num"].unique())
    return len(nodes), int(sum(len(df) for df in frames.values()))


# --- GEMM ------------------------------------------------------------------------------
def _cube(df: Any) -> tuple[list[int], list[int], list[int], np.ndarray]:
    """(m, n, k axes, latency ms as [m, n, k] with NaN) of one dtype's rows (median of dups)."""
    t = df.groupby(["m", "n", "k"])["latency"].median()
    m, n, k = (sorted(int(x) for x in t.index.get_level_values(i).unique()) for i in range(3))
    cube = np.full((len(m), len(n), len(k)), np.nan)
    im = np.searchsorted(m, t.index.get_level_values(0).to_numpy())
    iN = np.searchsorted(n, t.index.get_level_values(1).to_numpy())
    ik = np.searchsorted(k, t.index.get_level_values(2).to_numpy())
    cube[im, iN, ik] = t.to_numpy()
    return m, n, k, cube


def _plane(points: Any, m: list[int], k: list[int]) -> np.ndarray:
    """A (m, k) quantity from measured rows (columns m, k, value), on the given axes [m, k].

    Exact at measured cells; other cells from log-space interpolation of the positive ones
    (zero where none is positive: the framework reports no separate cost)."""
    t = points.groupby(["m", "k"])["value"].median()
    pos = t[t > 0]
    mm, kk = np.meshgrid(np.asarray(m, float), np.asarray(k, float), indexing="ij")
    if not len(pos):
        return np.zeros(mm.shape)
    sizes = np.stack([pos.index.get_level_values(0), pos.index.get_level_values(1)], axis=1)
    out = LogGrid.from_points(sizes.astype(float), pos.to_numpy())(mm, kk)
    exact = {(int(a), int(b)): float(v) for (a, b), v in t.items()}
    for i, a in enumerate(m):
        for j, b in enumerate(k):
            if (a, b) in exact:
                out[i, j] = max(exact[(a, b)], 0.0)
    return out


def convert_gemm(df: Any, quant: dict[str, Any]) -> tuple[list[GemmGrid], list[str]]:
    """One grid per moesim dtype; FP8-family grids with the input quantization taken out."""
    cubes = {GEMM_DTYPES[d]: (_cube(df[df["gemm_dtype"] == d]),
                              sorted(df.loc[df["gemm_dtype"] == d, "kernel_source"].unique()))
             for d in sorted(df["gemm_dtype"].unique()) if d in GEMM_DTYPES}
    floor = min(np.nanmin(c[3]) for c, _ in cubes.values())  # the table's launch floor, ms
    notes, pure, modes = [], {}, {}
    if "fp8" in cubes and quant:
        m, n, k, cube = cubes["fp8"][0]
        q = np.zeros((len(m), len(k)))
        for stem in ("computescale_perf", "scale_matrix_perf"):
            if stem in quant:
                rows = quant[stem].rename(columns={"latency": "value"})
                q += _plane(rows, m, k)
        raw = cube - q[:, None, :]
        pure["fp8"] = np.where(np.isfinite(cube), np.maximum(raw, floor), np.nan)
        modes["fp8"] = "subtracted"
        notes.append(f"gemm fp8: minus computescale + scale_matrix at (m, k); "
                     f"{int((raw < floor).sum())} cells held at the launch floor "
                     f"{floor * 1e3:.4g} us")
    for d in ("fp8_block", "nvfp4"):
        if d in cubes and "fp8" in pure:
            pure[d], note = _minus_estimated_quant(d, cubes[d][0], cubes["fp8"][0], pure["fp8"],
                                                   floor)
            modes[d] = "subtracted" if note else "included"
            notes.append(note or f"gemm {d}: input quantization included (no common n)")
    grids = []
    for d, ((m, n, k, cube), sources) in cubes.items():
        mode = modes.get(d, "none" if d in ("bf16", "fp16") else "included")
        grids.append(GemmGrid(dtype=d, kernel_source="+".join(sources), input_quantization=mode,
                              m=tuple(m), n=tuple(n), k=tuple(k),
                              time_us=tuple(sig(_us(pure.get(d, cube)).ravel()))))
    return grids, notes


def _minus_estimated_quant(d: str, cube_d: tuple[Any, ...], cube_f: tuple[Any, ...],
                           pure_f: np.ndarray, floor: float) -> tuple[np.ndarray, str]:
    m, n, k, t = cube_d
    mf, nf, kf, _ = cube_f
    common = [x for x in n if x >= QUANT_MIN_N and x in nf]
    if not common or not set(m) <= set(mf) or not set(k) <= set(kf):
        return t, ""
    n0 = common[0]
    im = [mf.index(x) for x in m]
    ik = [kf.index(x) for x in k]
    q = t[:, n.index(n0), :] - pure_f[np.ix_(im, [nf.index(n0)], ik)][:, 0, :]
    ok = np.isfinite(q)
    if not ok.any():
        return t, ""
    import pandas as pd

    mm, kk = np.meshgrid(np.asarray(m), np.asarray(k), indexing="ij")
    rows = pd.DataFrame({"m": mm[ok], "k": kk[ok], "value": q[ok]})
    plane = _plane(rows, m, k)
    raw = t - plane[:, None, :]
    out = np.where(np.isfinite(t), np.maximum(raw, floor), np.nan)
    return out, (f"gemm {d}: minus its input quantization, estimated per (m, k) as the "
                 f"{d} time minus the fp8 GEMM alone at n = {n0}; "
                 f"{int((raw < floor).sum())} cells held at the launch floor")


def convert_memory(quant: dict[str, Any]) -> list[MemoryCurve]:
    out = []
    for stem, kind, per_elem, rule in (
            ("scale_matrix_perf", "fp8_cast", 3.0, "3 B per element: read BF16, write FP8"),
            ("computescale_perf", "fp8_amax", 2.0, "2 B per element: read BF16 (amax)")):
        if stem not in quant:
            continue
        df = quant[stem]
        df = df[df["latency"] > 0]
        if not len(df):
            continue
        t = (df.assign(b=per_elem * df["m"] * df["k"]).groupby("b")["latency"].median())
        out.append(MemoryCurve(kind=kind, bytes_rule=rule,
                               size_bytes=tuple(float(x) for x in t.index),
                               time_us=tuple(sig(_us(t.to_numpy())))))
    return out


# --- series families ---------------------------------------------------------------------
def convert_moe(frames: dict[str, Any]) -> tuple[list[MoESeries], dict[str, int]]:
    df = _balanced(frames["moe_perf"])
    out = []
    for key, g in df.groupby(MOE_KEY, sort=True):
        dt, src, h, f, e, k, tp, ep = key
        t = g.groupby("num_tokens")["latency"].median()
        out.append(MoESeries(dtype=MOE_DTYPES[dt], hidden_size=int(h), inter_size=int(f),
                             num_experts=int(e), top_k=int(k), moe_tp_degree=int(tp),
                             moe_ep_degree=int(ep), gated="nongated" not in str(src),
                             kernel_source=str(src),
                             num_tokens=tuple(int(x) for x in t.index),
                             time_us=tuple(sig(_us(t.to_numpy())))))
    return out, {"moe_perf": len(df)}


def _attn_rows(df: Any) -> Any:
    defaults = {"window_size": 0, "kernel_source": "", "step": 0}
    missing = {c: v for c, v in defaults.items() if c not in df.columns}
    if missing:
        df = df.assign(**missing)
    sel = df["attn_dtype"].isin(list(ATTN_DTYPES)) & df["kv_cache_dtype"].isin(list(ATTN_DTYPES))
    if "beam_width" in df.columns:
        sel &= df["beam_width"] == 1
    return df[sel]


def _table2d(g: Any, a: str, b: str) -> tuple[list[int], list[int], list[float | None]]:
    t = g.groupby([a, b])["latency"].median()
    xa = sorted(int(x) for x in t.index.get_level_values(0).unique())
    xb = sorted(int(x) for x in t.index.get_level_values(1).unique())
    grid = np.full((len(xa), len(xb)), np.nan)
    grid[np.searchsorted(xa, t.index.get_level_values(0).to_numpy()),
         np.searchsorted(xb, t.index.get_level_values(1).to_numpy())] = t.to_numpy()
    return xa, xb, sig(_us(grid).ravel())


def convert_attention(frames: dict[str, Any]) -> tuple[list[AttentionSeries], dict[str, int]]:
    out, kept = [], {}
    for stem, phase in (("context_attention_perf", "context"),
                        ("generation_attention_perf", "generation")):
        if stem not in frames:
            continue
        df = _with_seq(_attn_rows(frames[stem]), phase)
        kept[stem] = len(df)
        for key, g in df.groupby(ATTN_KEY, sort=True):
            adt, kvdt, h, kv, d, w, src = key
            batch, seq, times = _table2d(g, "batch_size", "seq")
            out.append(AttentionSeries(phase=phase, attn_dtype=ATTN_DTYPES[adt],
                                       kv_cache_dtype=ATTN_DTYPES[kvdt], num_heads=int(h),
                                       num_kv_heads=int(kv), head_dim=int(d), window=int(w),
                                       kernel_source=str(src), batch=tuple(batch),
                                       seq=tuple(seq), time_us=tuple(times)))
    return out, kept


def convert_mla(frames: dict[str, Any]) -> tuple[list[MLASeries], dict[str, int]]:
    out, kept = [], {}
    for stem, phase in (("context_mla_perf", "context"), ("generation_mla_perf", "generation")):
        if stem not in frames:
            continue
        df = frames[stem]
        df = _with_seq(df[df["mla_dtype"].isin(list(ATTN_DTYPES))
                          & df["kv_cache_dtype"].isin(list(ATTN_DTYPES))], phase)
        kept[stem] = len(df)
        for (dt, kvdt, h), g in df.groupby(MLA_KEY, sort=True):
            batch, seq, times = _table2d(g, "batch_size", "seq")
            out.append(MLASeries(phase=phase, dtype=ATTN_DTYPES[dt],
                                 kv_cache_dtype=ATTN_DTYPES[kvdt], num_heads=int(h),
                                 batch=tuple(batch), seq=tuple(seq), time_us=tuple(times)))
    return out, kept


def convert_nccl(frames: dict[str, Any]) -> tuple[list[CollectiveCurve], dict[str, int]]:
    df = frames["nccl_perf"]
    df = df[df["op_name"].isin(list(NCCL_OPS)) & df["nccl_dtype"].isin(list(NCCL_DTYPES))]
    out = []
    for (op, dt, gpus), g in df.groupby(["op_name", "nccl_dtype", "num_gpus"], sort=True):
        name, elem = NCCL_DTYPES[dt]
        t = g.groupby("message_size")["latency"].median()
        out.append(CollectiveCurve(op=NCCL_OPS[op], num_gpus=int(gpus), dtype=name,
                                   size_bytes=tuple(float(x) * elem for x in t.index),
                                   time_us=tuple(sig(_us(t.to_numpy())))))
    out.sort(key=lambda c: (c.op, c.num_gpus, c.dtype))
    return out, {"nccl_perf": len(df)}


def convert_deepep(frames: dict[str, Any]) -> tuple[list[DeepEPSeries], dict[str, int]]:
    out, kept = [], {}
    for stem, kind in (("wideep_deepep_normal_perf", "normal"),
                       ("wideep_deepep_ll_perf", "low_latency")):
        if stem not in frames:
            continue
        df = frames[stem].copy()
        kept[stem] = len(df)
        if kind == "normal":
            df["d"] = df["dispatch_transmit_us"] + df["dispatch_notify_us"]
            df["c"] = df["combine_transmit_us"] + df["combine_notify_us"]
            df["sms"] = df["dispatch_sms"]
        else:
            df["d"], df["c"], df["sms"] = df["dispatch_avg_t_us"], df["combine_avg_t_us"], 0
        key = ["node_num", "hidden_size", "num_topk", "num_experts", "sms"]
        for (nodes, h, k, e, sms), g in df.groupby(key, sort=True):
            t = g.groupby("num_token")[["d", "c"]].median()
            out.append(DeepEPSeries(kind=kind, num_nodes=int(nodes), hidden_size=int(h),
                                    top_k=int(k), num_experts=int(e),
                                    num_sms=int(sms) or None,
                                    num_tokens=tuple(int(x) for x in t.index),
                                    dispatch_us=tuple(sig(t["d"].to_numpy())),
                                    combine_us=tuple(sig(t["c"].to_numpy()))))
    return out, kept


def left_out(system_dir: Path) -> list[str]:
    """What the system has that the table does not carry, and why (deterministic)."""
    stems = sorted({f"{p.relative_to(system_dir).parts[0]}/{p.stem}"
                    for p in system_dir.rglob("*.parquet") if p.stem not in CONVERTED})
    out = [
        "moe power_law_* distributions: moesim's routing model supplies expert loads itself",
        "weight-only and mixed 4-bit/8-bit inference dtypes (int4_wo, int8_wo, sq, "
        "w4a16_mxfp4, w4a8_mxfp4_mxfp8, w4afp8): no moesim workload computes in them",
        "tables of other frameworks and versions than the one chosen per family",
    ]
    if stems:
        out.append("op tables without a moesim op (framework-specific module, fused, "
                   "sparse or linear attention and custom communication kernels): "
                   + ", ".join(stems))
    return out
