"""Timing compute kernels with torch: dense GEMMs, expert grouped GEMMs, attention, memory ops."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moesim.compute.calibration import (
    AttentionPoint,
    GemmPoint,
    GroupedGemmPoint,
    MemoryOpPoint,
)
from moesim.profiling.grids import AttentionCase, ProfileGrid
from moesim.profiling.timing import import_torch, prepare, sample, stats, time_op, torch_dtype

Progress = Callable[[str], None]


def _timer(grid: ProfileGrid, device: str) -> Callable[[Callable[[], Any]], Any]:
    def run(fn: Callable[[], Any]) -> Any:
        return time_op(fn, device, warmup=grid.warmup, repeats=grid.repeats,
                       min_sample_s=grid.min_sample_s)
    return run


def _matmul_fn(torch: Any, a: Any, b: Any, dtype: str) -> Callable[[], Any]:
    """a @ b, or the FP8 scaled matmul (b column-major, unit scales) for dtype fp8."""
    if dtype != "fp8":
        return lambda: torch.matmul(a, b)
    one = torch.ones((), device=a.device, dtype=torch.float32)
    bt = b.t().contiguous().t()
    return lambda: torch._scaled_mm(a, bt, scale_a=one, scale_b=one, out_dtype=torch.bfloat16)


def _rand(torch: Any, shape: tuple[int, ...], device: str, dtype: str) -> Any:
    if dtype == "fp8":
        return torch.randn(shape, device=device).to(torch_dtype("fp8"))
    return torch.randn(shape, device=device, dtype=torch_dtype(dtype))


def profile_gemms(grid: ProfileGrid, device: str, dtype: str,
                  progress: Progress) -> list[GemmPoint]:
    """Time every (m, n, k) of the grid, in rounds.

    Round r takes the r-th sample of every shape, so a change of background load during the
    run spreads over all shapes instead of biasing the ones timed during it (this machine's
    CPU is shared); the median over rounds is recorded.
    """
    torch = import_torch()
    shapes = grid.gemm_shapes()
    calls: dict[tuple[int, int, int], int] = {}
    samples: dict[tuple[int, int, int], list[float]] = {s: [] for s in shapes}
    for r in range(grid.repeats):
        for m, n, k in shapes:
            a = _rand(torch, (m, k), device, dtype)
            b = _rand(torch, (k, n), device, dtype)
            fn = _matmul_fn(torch, a, b, dtype)
            if r == 0:
                calls[(m, n, k)] = prepare(fn, device, warmup=grid.warmup,
                                           min_sample_s=grid.min_sample_s)
            c = calls[(m, n, k)]
            samples[(m, n, k)].append(sample(fn, device, c) / c)
            del a, b, fn
    progress(f"gemm: {len(shapes)} shapes x {grid.repeats} rounds")
    return [GemmPoint(m=m, n=n, k=k, timing=stats(samples[(m, n, k)], calls[(m, n, k)]))
            for m, n, k in shapes]


def _grouped_fn(torch: Any, x: Any, w: Any, tokens: tuple[int, ...]) -> tuple[str, Any]:
    """The fastest available grouped matmul and its name: torch._grouped_mm, else a loop."""
    offs = torch.tensor(tokens, device=x.device).cumsum(0).to(torch.int32)
    if hasattr(torch, "_grouped_mm"):
        def grouped() -> Any:
            return torch._grouped_mm(x, w, offs=offs)
        try:
            grouped()
            return "grouped_mm", grouped
        except (RuntimeError, TypeError, NotImplementedError):
            pass
    bounds = [0, *offs.tolist()]

    def loop() -> Any:
        return [x[bounds[i]:bounds[i + 1]] @ w[i] for i in range(len(tokens)) if tokens[i]]
    return "loop", loop


def profile_grouped(grid: ProfileGrid, device: str, dtype: str,
                    progress: Progress) -> list[GroupedGemmPoint]:
    """Time expert grouped GEMMs with uneven token counts (recording the method used)."""
    torch = import_torch()
    timer = _timer(grid, device)
    mm_dtype = "bf16" if dtype == "fp8" else dtype  # grouped FP8 needs scales per group
    out = []
    for i, case in enumerate(grid.grouped):
        tokens = case.tokens(seed=i)
        x = _rand(torch, (sum(tokens), case.k), device, mm_dtype)
        w = _rand(torch, (case.num_experts, case.k, case.n), device, mm_dtype)
        method, fn = _grouped_fn(torch, x, w, tokens)
        out.append(GroupedGemmPoint(tokens_per_expert=tokens, n=case.n, k=case.k,
                                    method=method, timing=timer(fn)))  # type: ignore[arg-type]
    progress(f"grouped gemm: {len(out)} cases ({', '.join(sorted({p.method for p in out}))})")
    return out


def _attention_fn(torch: Any, case: AttentionCase, device: str, dtype: str) -> Callable[[], Any]:
    f = torch.nn.functional
    att_dtype = "bf16" if dtype == "fp8" else dtype  # SDPA has no FP8 path
    q = _rand(torch, (case.batch, case.num_heads, case.seq, case.head_dim), device, att_dtype)
    kv_shape = (case.batch, case.num_kv_heads, case.seq, case.head_dim)
    k = _rand(torch, kv_shape, device, att_dtype)
    v = _rand(torch, kv_shape, device, att_dtype)
    gqa = case.num_kv_heads != case.num_heads

    def fwd() -> Any:
        return f.scaled_dot_product_attention(q, k, v, is_causal=case.causal, enable_gqa=gqa)
    if not case.backward:
        return fwd
    for t in (q, k, v):
        t.requires_grad_(True)
    o = fwd()
    grad = torch.ones_like(o)

    def bwd() -> Any:
        # Re-running the graph's backward only: the forward output is kept alive.
        return torch.autograd.grad(o, (q, k, v), grad, retain_graph=True)
    return bwd


def profile_attention(grid: ProfileGrid, device: str, dtype: str,
                      progress: Progress) -> list[AttentionPoint]:
    """Time causal / full scaled_dot_product_attention forward and backward with GQA."""
    torch = import_torch()
    timer = _timer(grid, device)
    out = []
    for case in grid.attention:
        stats = timer(_attention_fn(torch, case, device, dtype))
        out.append(AttentionPoint(batch=case.batch, seq_q=case.seq, seq_kv=case.seq,
                                  num_heads=case.num_heads, num_kv_heads=case.num_kv_heads,
                                  head_dim=case.head_dim, causal=case.causal,
                                  backward=case.backward, timing=stats))
    progress(f"attention: {len(out)} shapes")
    return out


def _memory_fn(torch: Any, kind: str, nbytes: int, device: str,
               dtype: str) -> tuple[float, Callable[[], Any]]:
    """(bytes read + written, fn) for a memory op sized to move about ``nbytes``."""
    el_dtype = "bf16" if dtype == "fp8" else dtype
    b = 4 if el_dtype == "fp32" else 2
    hidden = 1024
    if kind == "optimizer":  # Adam on fp32 params: read p, g, m, v; write p, m, v
        n = max(1, nbytes // 28)
        p = torch.zeros(n, device=device, requires_grad=True)
        p.grad = torch.randn(n, device=device)
        opt = torch.optim.Adam([p], lr=1e-4, foreach=False)
        return 28.0 * n, opt.step
    rows = max(1, nbytes // (2 * b * hidden))
    x = _rand(torch, (rows, hidden), device, el_dtype)
    if kind == "elementwise":  # read x, write y
        y = torch.empty_like(x)
        return 2.0 * b * x.numel(), lambda: torch.mul(x, 2.0, out=y)
    if kind == "norm":  # RMSNorm: read x, write y (the weight is negligible)
        w = torch.ones(hidden, device=device, dtype=x.dtype)
        return 2.0 * b * x.numel(), lambda: torch.nn.functional.rms_norm(x, (hidden,), w)
    if kind == "activation":  # SwiGLU: read gate and up, write silu(gate) * up
        half = x[:, : hidden // 2]
        up = x[:, hidden // 2:]
        return 1.5 * b * x.numel(), lambda: torch.nn.functional.silu(half) * up
    idx = torch.randperm(rows, device=device)
    if kind == "permute":  # gather tokens into expert order: read + write every row
        return 2.0 * b * x.numel(), lambda: x.index_select(0, idx)
    out = torch.zeros_like(x)  # unpermute: scatter-add rows back into token order
    return 3.0 * b * x.numel(), lambda: out.index_add_(0, idx, x)


def profile_memory(grid: ProfileGrid, device: str, dtype: str,
                   progress: Progress) -> list[MemoryOpPoint]:
    """Time permute/unpermute, norms, activations, elementwise and the Adam update."""
    torch = import_torch()
    timer = _timer(grid, device)
    out = []
    for kind in grid.memory_kinds:
        for nbytes in grid.memory_bytes:
            moved, fn = _memory_fn(torch, kind, nbytes, device, dtype)
            out.append(MemoryOpPoint(kind=kind, bytes_moved=moved,  # type: ignore[arg-type]
                                     timing=timer(fn)))
    progress(f"memory ops: {len(out)} points")
    return out
