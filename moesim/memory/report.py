"""Per rank class peak memory of a scenario, whether it fits, and the InfeasibleError path."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from moesim.errors import InfeasibleError
from moesim.memory.activations import ActivationContext, context_for
from moesim.memory.rank import RecvModel, hottest_ep_rank, rank_breakdown
from moesim.results.schema import MemoryRankResult, RankClassMemoryResult
from moesim.specs.base import FrozenSpec
from moesim.specs.scenario import ScenarioSpec
from moesim.units import GIB

# What to try when a term overflows (the tail of the InfeasibleError line).
ADVICE = {
    "weights_dense": "add tensor or pipeline parallelism, or shard weights (fsdp / zero_stage 3)",
    "weights_expert": "add expert (or expert-tensor) parallelism, or shard weights (fsdp)",
    "gradients": "shard them (zero_stage 2+ / fsdp) or add tensor / pipeline / expert parallelism",
    "optimizer_states": "shard it (zero_stage 1+ / fsdp) or add expert parallelism",
    "activations": "recompute (selective / full), lower micro_batch_size, or add TP+SP / CP",
    "recompute_working_set": "lower micro_batch_size or add tensor / context parallelism",
    "a2a_buffers": "lower micro_batch_size, set a capacity_factor, or add expert parallelism",
    "comm_buckets": "lower the ZeRO stage or add pipeline parallelism",
    "optimizer_step_temporaries": "keep gradients in fp32 or shard the optimizer over more ranks",
    "framework_reserve": "use fewer parallel groups",
    "allocator_fragmentation": "set PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True",
}


class MemoryReport(FrozenSpec):
    """Peak bytes per rank class, and the verdict. All sizes in bytes."""

    rank_classes: list[RankClassMemoryResult]
    fits: bool
    most_loaded: str
    peak_bytes: float
    overflow_term: str = ""
    capacity_bytes: float
    routing_load: str = Field(default="balanced routing (every EP rank gets the mean)",
                              description="the routing load the expert terms assume")

    def by_name(self, name: str) -> RankClassMemoryResult:
        """The rank class called ``name`` (e.g. 'pp0', 'pp3/hot-ep')."""
        for rc in self.rank_classes:
            if rc.rank_class == name:
                return rc
        raise KeyError(name)


def _result(name: str, multiplicity: int, breakdown: dict[str, float],
            capacity: float) -> RankClassMemoryResult:
    peak = float(sum(breakdown.values()))
    mem = MemoryRankResult(breakdown_bytes={k: float(v) for k, v in breakdown.items()},
                           peak_bytes=peak, capacity_bytes=capacity,
                           headroom_bytes=capacity - peak, fits=peak <= capacity)
    return RankClassMemoryResult(rank_class=name, multiplicity=multiplicity, memory=mem)


def _check_recv(s: ScenarioSpec, recv: np.ndarray) -> np.ndarray:
    arr = np.asarray(recv, dtype=float)
    want = (s.model_spec.num_moe_layers, s.parallelism.expert_parallel_degree)
    assert arr.ndim == 3 and arr.shape[0] == want[0] and arr.shape[2] == want[1], (
        f"recv_tokens must be [L_moe={want[0]}, M, EP={want[1]}], got {arr.shape}")
    return arr


def estimate_memory(s: ScenarioSpec, *, recv_tokens: np.ndarray | None = None,
                    flash_attention: bool = True) -> MemoryReport:
    """Peak device memory of every pipeline stage (and its hottest EP rank when routing is
    imbalanced). ``recv_tokens``: routed token copies per EP rank, [L_moe, M, EP]; None:
    balanced routing (source tokens x top_k per rank, padded to capacity where set)."""
    ctx = context_for(s, flash_attention=flash_attention)
    capacity = s.topology_spec.accelerator.hbm_bytes
    pp, ep = s.parallelism.pipeline_parallel_degree, s.parallelism.expert_parallel_degree
    per_stage = s.devices // pp
    recv = None if recv_tokens is None else _check_recv(s, recv_tokens)
    typical = RecvModel(s, ctx, recv)
    classes = [_result(f"pp{r}", per_stage, rank_breakdown(s, r, typical), capacity)
               for r in range(pp)]
    if recv is not None and ep > 1 and s.model_spec.is_moe:
        hot = _hottest(s, ctx, recv, capacity)
        if hot is not None and hot.memory.peak_bytes > classes[_stage(hot)].memory.peak_bytes:
            i = _stage(hot)
            n_hot = max(1, per_stage // ep)
            base = classes[i]
            classes[i] = base.model_copy(update={"multiplicity": max(1, per_stage - n_hot)})
            classes.insert(i + 1, hot.model_copy(update={"multiplicity": n_hot}))
    worst = max(classes, key=lambda rc: rc.memory.peak_bytes)
    fits = all(rc.memory.fits for rc in classes)
    overflow = "" if fits else max(worst.memory.breakdown_bytes.items(), key=lambda kv: kv[1])[0]
    return MemoryReport(rank_classes=classes, fits=fits, most_loaded=worst.rank_class,
                        peak_bytes=worst.memory.peak_bytes, overflow_term=overflow,
                        capacity_bytes=capacity)


def _stage(rc: RankClassMemoryResult) -> int:
    return int(rc.rank_class.split("/")[0].removeprefix("pp"))


def _hottest(s: ScenarioSpec, ctx: ActivationContext, recv: np.ndarray,
             capacity: float) -> RankClassMemoryResult | None:
    """The EP rank with the largest peak over all stages, as class 'pp<i>/hot-ep<r>'."""
    best: RankClassMemoryResult | None = None
    for stage in range(s.parallelism.pipeline_parallel_degree):
        r = hottest_ep_rank(s, stage, RecvModel(s, ctx, recv))
        b = rank_breakdown(s, stage, RecvModel(s, ctx, recv, ep_rank=r))
        rc = _result(f"pp{stage}/hot-ep{r}", 1, b, capacity)
        if best is None or rc.memory.peak_bytes > best.memory.peak_bytes:
            best = rc
    return best


def _gb(x: float) -> str:
    return f"{x / GIB:.2f} GiB"


def _gb_pair(a: float, b: float) -> tuple[str, str]:
    """Two sizes in GiB with enough decimals to tell them apart (never "80.0 > 80.0")."""
    for digits in (2, 3, 4, 6):
        x, y = f"{a / GIB:.{digits}f} GiB", f"{b / GIB:.{digits}f} GiB"
        if x != y:
            return x, y
    return f"{a:.0f} bytes", f"{b:.0f} bytes"


def ensure_fits(report: MemoryReport) -> None:
    """Raise InfeasibleError(reason="memory") naming the rank class, peak vs capacity and the
    largest term of the most loaded class, when some class does not fit."""
    if report.fits:
        return
    rc = report.by_name(report.most_loaded)
    term = report.overflow_term
    size = rc.memory.breakdown_bytes.get(term, 0.0)
    peak, cap = _gb_pair(rc.memory.peak_bytes, report.capacity_bytes)
    raise InfeasibleError(
        f"{rc.rank_class}: {peak} > {cap} HBM; "
        f"largest term {term} {_gb(size)}: {ADVICE.get(term, 'change the layout')}",
        reason="memory")
