"""What ``moesim profile`` measures: the shape grids, per device and mode (no torch here).

The GPU grid covers the GEMM shapes of the shipped models (attention projections with
n up to (heads + 2 kv) x head_dim, expert FFNs with n up to 2 x 14336 for Mixtral's gated
FFN, LM heads with n up to the vocabulary, 32000 for Mixtral and 129280 for DeepSeek-V3)
as powers of two, skipping single kernels above ``max_gemm_flops``; the interpolator fills
skipped cells from the nearest measured one (moesim/compute/interp.py). The CPU grids are
the same kind of grid scaled to what two cores time in minutes (``--quick``: seconds).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np


@dataclass(frozen=True)
class GroupedCase:
    """An expert grouped GEMM: ``num_experts`` uneven groups summing to ``total_tokens``."""

    num_experts: int
    total_tokens: int
    n: int
    k: int

    def tokens(self, seed: int = 0, align: int = 16) -> tuple[int, ...]:
        """Deterministic uneven token counts (Dirichlet(2) shares), multiples of ``align``.

        ``align`` is the row alignment torch._grouped_mm asks of its group offsets on GPU.
        """
        rng = np.random.default_rng(seed)
        shares = rng.dirichlet(np.full(self.num_experts, 2.0))
        units = self.total_tokens // align
        counts = rng.multinomial(units, shares) * align
        return tuple(int(c) for c in counts)


@dataclass(frozen=True)
class AttentionCase:
    """One scaled_dot_product_attention shape (self-attention: seq_q = seq_kv = seq)."""

    batch: int
    seq: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    causal: bool = True
    backward: bool = False


MEMORY_KINDS = ("elementwise", "permute", "unpermute", "norm", "activation", "optimizer")
COLLECTIVE_OPS = ("all_reduce", "all_gather", "reduce_scatter", "all_to_all")


@dataclass(frozen=True)
class ProfileGrid:
    """Everything one profile run measures, and how (warm-up, repeats, sample length)."""

    gemm_m: tuple[int, ...]
    gemm_n: tuple[int, ...]
    gemm_k: tuple[int, ...]
    grouped: tuple[GroupedCase, ...]
    attention: tuple[AttentionCase, ...]
    memory_bytes: tuple[int, ...]
    memory_kinds: tuple[str, ...] = MEMORY_KINDS
    collective_bytes: tuple[int, ...] = ()
    collective_ops: tuple[str, ...] = COLLECTIVE_OPS
    collective_world_size: int = 2
    max_gemm_flops: float = 2.0**44
    warmup: int = 2
    repeats: int = 7
    min_sample_s: float = 0.005
    threads: int | None = None  # torch intra-op threads; None: torch's default

    def gemm_shapes(self) -> list[tuple[int, int, int]]:
        """(m, n, k) of the grid, skipping kernels above ``max_gemm_flops``."""
        return [(m, n, k) for m in self.gemm_m for n in self.gemm_n for k in self.gemm_k
                if 2.0 * m * n * k <= self.max_gemm_flops]

    def smaller(self, **changes: object) -> ProfileGrid:
        """A copy with some fields replaced (tests use a tiny grid)."""
        return replace(self, **changes)  # type: ignore[arg-type]


def _attention_sweep(seqs: tuple[int, ...], tokens: int, heads: int, kv: int, dim: int,
                     *, causal: tuple[bool, ...], backward_max_seq: int) -> tuple[AttentionCase, ...]:
    out = []
    for s in seqs:
        b = max(1, tokens // s)
        for c in causal:
            out.append(AttentionCase(b, s, heads, kv, dim, causal=c))
            if s <= backward_max_seq:
                out.append(AttentionCase(b, s, heads, kv, dim, causal=c, backward=True))
    return tuple(out)


def _pow2(lo: int, hi: int) -> tuple[int, ...]:
    return tuple(2**e for e in range(lo, hi + 1))


def gpu_grid(quick: bool) -> ProfileGrid:
    """GEMMs to 16K x 128K x 16K, attention 1K..32K with GQA 32/8 x 128 (Mixtral per TP 1)."""
    if quick:
        return ProfileGrid(
            gemm_m=_pow2(8, 14)[::2], gemm_n=_pow2(8, 16)[::2], gemm_k=_pow2(8, 14)[::2],
            grouped=(GroupedCase(8, 8192, 4096, 4096),),
            attention=_attention_sweep((1024, 4096, 16384), 32768, 32, 8, 128,
                                       causal=(True,), backward_max_seq=32768),
            memory_bytes=_pow2(20, 30)[::2], collective_bytes=_pow2(16, 30)[::2],
            warmup=3, repeats=5, min_sample_s=0.002)
    return ProfileGrid(
        gemm_m=_pow2(7, 14), gemm_n=_pow2(8, 17), gemm_k=_pow2(8, 15),
        grouped=tuple(GroupedCase(e, t, n, k) for e, t, n, k in (
            (8, 8192, 28672, 4096), (8, 8192, 4096, 14336), (32, 32768, 4096, 7168),
            (32, 32768, 7168, 2048), (64, 16384, 4096, 7168), (256, 65536, 4096, 7168))),
        attention=_attention_sweep((1024, 2048, 4096, 8192, 16384, 32768), 32768, 32, 8, 128,
                                   causal=(True, False), backward_max_seq=32768),
        memory_bytes=_pow2(16, 32), collective_bytes=_pow2(12, 32)[::2],
        warmup=5, repeats=20, min_sample_s=0.005)


def cpu_grid(quick: bool) -> ProfileGrid:
    """The CPU grid: GEMMs to 2048 x 8192 x 2048, attention to 2K tokens, 2 gloo ranks.

    One torch thread: on a shared machine, OpenMP threads time-sliced against other work
    stall at their barriers (a 2-thread GEMM ran up to 30x slower under load here), while
    one thread slows only in proportion to the load.
    """
    if quick:
        return ProfileGrid(
            gemm_m=(32, 256, 2048), gemm_n=(256, 2048, 16384), gemm_k=(256, 2048),
            grouped=(GroupedCase(8, 2048, 1024, 1024),),
            attention=_attention_sweep((256, 1024), 1024, 8, 2, 128,
                                       causal=(True,), backward_max_seq=256),
            memory_bytes=(2**16, 2**20, 2**24), collective_bytes=(2**14, 2**20),
            warmup=1, repeats=3, min_sample_s=0.002, threads=1)
    return ProfileGrid(
        gemm_m=_pow2(4, 11), gemm_n=_pow2(8, 13), gemm_k=_pow2(8, 11),
        grouped=(GroupedCase(8, 4096, 2048, 1024), GroupedCase(8, 4096, 1024, 2048),
                 GroupedCase(16, 4096, 1024, 1024), GroupedCase(4, 2048, 4096, 1024)),
        attention=_attention_sweep((256, 512, 1024, 2048), 2048, 8, 2, 128,
                                   causal=(True, False), backward_max_seq=1024),
        memory_bytes=_pow2(14, 26), collective_bytes=_pow2(12, 24)[::2],
        warmup=1, repeats=9, min_sample_s=0.001, threads=1)


def default_grid(device: str, quick: bool) -> ProfileGrid:
    """The grid ``moesim profile`` uses for ``device`` ("cuda" or "cpu")."""
    return gpu_grid(quick) if device == "cuda" else cpu_grid(quick)
