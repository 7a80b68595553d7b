"""Roofline kernel times: the path used when no calibration table is attached.

time = max(FLOP / (peak x efficiency), bytes / (HBM bandwidth x hbm_efficiency)) + launch.

The GEMM efficiency is the accelerator's best-case measured fraction of peak
(``AcceleratorSpec.gemm_efficiency``: maximum achievable matmul FLOP/s over peak, e.g. H100
BF16 794.5 / 989 = 80.3%, hardware reference section 1, MLE-acc) times the tile and wave
quantization losses that NVIDIA's "Matrix Multiplication Background User's Guide"
(DU-09799-001, sections 2.3 and 3) describes: cuBLAS computes the output in fixed-size tiles
(128x128 is its typical tile), each tile is one thread block on one SM, so a ragged shape
pays for whole tiles and a tile count just above a multiple of the SM count pays for a
whole extra wave. Accelerators without ``num_sms`` (TPUs, CPUs) get no quantization term.

Attention follows FlashAttention: FLOPs 4·b·s_q·s_kv·h·d forward (half of it when causal),
2.5x that backward (five matmuls instead of two; FlashAttention-2 paper, arXiv:2307.08691,
section 4.1 FLOP count), at an efficiency that grows with sequence length; see
:func:`attention_efficiency`. All inputs are SI: seconds, bytes, FLOP.
"""

from __future__ import annotations

import numpy as np

from moesim.specs.hardware import AcceleratorSpec
from moesim.units import US, dtype_bytes

# cuBLAS's typical output tile (NVIDIA Matrix Multiplication Background User's Guide,
# DU-09799-001, section 2.3: 256x128 and 128x128 tiles are the most efficient; we use the
# smaller one, which is what mid-sized training GEMMs get).
TILE_M = 128
TILE_N = 128
# The k-slice one split-K work unit handles at least (CUTLASS mainloop tiles are 32-128 deep;
# we do not split below 128, so a unit keeps a full pipeline).
TILE_K = 128

# FlashAttention-3 forward, BF16, head dim 128, on H100 (pytorch/benchmark commit ff65cb67,
# "Fix dimension order for FlashAttention-3", flash_v3 TFLOP/s at batch x seq = 16K tokens):
# 430 at s=512, 517 at 1K, 566 at 2K, 590 at 4K, 614 at 8K, 621 at 16K. Fitted here (two
# points, checked on the other four within 2%) to tflops(s) = 629 · s / (s + 237): the
# asymptote 629 / 989.4 = 0.636 of the BF16 dense peak, half of it reached at s = 237.
ATTENTION_PEAK_FRACTION = 629.0 / 989.4
ATTENTION_HALF_SEQ = 237.0
# Causal forward runs at 0.89 of the non-causal FLOP rate and backward at 0.74 of forward
# (FlashAttention-2 on RTX 4090, head dim 128, seq 2K: 151.2 / 169.3 causal vs not, 124.6 /
# 169.3 backward vs forward; apache/tvm tl_doc/flash_perf.md).
ATTENTION_CAUSAL_FACTOR = 151.19 / 169.28
ATTENTION_BACKWARD_FACTOR = 124.57 / 169.28
# FLOPs of the attention backward per forward FLOP: 5 matmuls vs 2 (FlashAttention-2 §4.1).
ATTENTION_BACKWARD_FLOP_RATIO = 2.5


def launch_s(acc: AcceleratorSpec) -> float:
    """Per-kernel launch overhead in seconds (``kernel_launch_us``)."""
    return acc.kernel_launch_us * US


def quantization_utilization(tokens: np.ndarray, n: int, k: int,
                             num_sms: int | None) -> np.ndarray:
    """Useful fraction of the paid tile-wave work for grouped GEMMs, vectorized.

    ``tokens`` is [..., E] (output rows of each group); returns [...] in (0, 1]. The output
    is cut into tiles = sum_e ceil(t_e / TILE_M) · ceil(n / TILE_N) blocks. When there are
    fewer tiles than SMs the k dimension is split across blocks (split-K, as cuBLAS and
    CUTLASS do for skinny GEMMs) by split = min(floor(num_sms / tiles), k / TILE_K), so work
    units = tiles x split, waves = ceil(units / num_sms), and
    utilization = sum(t_e) · n · split / (waves · num_sms · TILE_M · TILE_N).
    """
    t = np.asarray(tokens, dtype=np.float64)
    if num_sms is None:
        return np.ones(t.shape[:-1])
    tiles = np.ceil(t / TILE_M).sum(axis=-1) * np.ceil(n / TILE_N)
    split = np.clip(np.floor(num_sms / np.maximum(tiles, 1.0)), 1.0, max(1.0, k // TILE_K))
    waves = np.ceil(tiles * split / num_sms)
    paid = waves * num_sms * TILE_M * TILE_N
    useful = t.sum(axis=-1) * n * split
    return np.where(paid > 0, np.minimum(useful / np.maximum(paid, 1.0), 1.0), 1.0)


def grouped_gemm_roofline_many(acc: AcceleratorSpec, dtype: str, tokens: np.ndarray,
                               n: int, k: int) -> np.ndarray:
    """Seconds for each row of ``tokens`` [R, E]: one grouped kernel, expert e is t_e x k @ k x n.

    Compute: 2·sum(t)·n·k / (peak x gemm_efficiency x tile/wave utilization). Memory: the
    activations in and out plus the weights of every expert with tokens, once. One launch.
    A row with no tokens costs nothing.
    """
    t = np.asarray(tokens, dtype=np.float64)
    rows = t.sum(axis=-1)
    flops = 2.0 * rows * n * k
    util = quantization_utilization(t, n, k, acc.num_sms)
    rate = acc.peak_flops(dtype) * acc.gemm_efficiency_for(dtype)
    with np.errstate(invalid="ignore", divide="ignore"):
        compute = np.where(rows > 0, flops / (rate * np.maximum(util, 1e-12)), 0.0)
    b = dtype_bytes(dtype)
    active = (t > 0).sum(axis=-1)
    moved = b * (rows * k + active * k * n + rows * n)
    memory = moved / (acc.hbm_bytes_per_s * acc.hbm_efficiency)
    return np.where(rows > 0, np.maximum(compute, memory) + launch_s(acc), 0.0)


def gemm_bytes(m: int, n: int, k: int, batch: int, dtype: str) -> float:
    """Bytes a GEMM reads and writes once: A (m x k), B (k x n), C (m x n), per batch entry."""
    return dtype_bytes(dtype) * batch * (m * k + k * n + m * n)


def gemm_roofline(acc: AcceleratorSpec, dtype: str, m: int, n: int, k: int,
                  batch: int = 1) -> float:
    """Seconds for a (batched) GEMM m x k @ k x n on ``acc`` by the roofline above."""
    # A batched GEMM is a grouped GEMM of ``batch`` equal groups: same tiles, same bytes.
    rows = np.full((1, batch), float(m))
    return float(grouped_gemm_roofline_many(acc, dtype, rows, n, k)[0])


def attention_flops(batch: int, seq_q: int, seq_kv: int, num_heads: int, head_dim: int,
                    *, causal: bool, backward: bool) -> float:
    """FLOPs of FlashAttention: 4·b·s_q·s_kv·h·d forward, halved when causal, x2.5 backward."""
    f = 4.0 * batch * seq_q * seq_kv * num_heads * head_dim
    if causal:
        f *= 0.5
    if backward:
        f *= ATTENTION_BACKWARD_FLOP_RATIO
    return f


def attention_efficiency(seq_kv: int, *, causal: bool, backward: bool) -> float:
    """Fraction of the dense peak a FlashAttention kernel reaches at ``seq_kv`` (see module)."""
    e = ATTENTION_PEAK_FRACTION * seq_kv / (seq_kv + ATTENTION_HALF_SEQ)
    if causal:
        e *= ATTENTION_CAUSAL_FACTOR
    if backward:
        e *= ATTENTION_BACKWARD_FACTOR
    return e


def attention_bytes(batch: int, seq_q: int, seq_kv: int, num_heads: int, num_kv_heads: int,
                    head_dim: int, dtype: str, *, backward: bool) -> float:
    """HBM bytes of a fused attention: Q, O (s_q) and K, V (s_kv) once; x2 backward (grads)."""
    elems = batch * head_dim * (2 * seq_q * num_heads + 2 * seq_kv * num_kv_heads)
    return dtype_bytes(dtype) * elems * (2.0 if backward else 1.0)


def memory_roofline(acc: AcceleratorSpec, bytes_moved: float) -> float:
    """Seconds to stream ``bytes_moved`` through HBM at hbm_efficiency, plus one launch."""
    return bytes_moved / (acc.hbm_bytes_per_s * acc.hbm_efficiency) + launch_s(acc)
