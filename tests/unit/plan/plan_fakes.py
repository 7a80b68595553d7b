"""A closed-form stand-in for the engine and the memory model, for testing the plan machinery.

Not a cost model: its numbers only need to be deterministic, derivable by hand and to react
to the layout, so tests can check the search, the sweep and the executors independently of
the real engine. Import as ``plan_fakes:evaluate`` / ``plan_fakes:memory``.
"""

from __future__ import annotations

import os
import time
from typing import Any

from moesim.plan.evaluate import MemoryVerdict
from moesim.specs.scenario import ScenarioSpec

ACT = {"none": 1.0, "selective": 0.5, "full": 0.1}


def step_time_s(s: ScenarioSpec) -> float:
    """6 x active params x tokens at half of BF16 peak, plus 5% per extra TP rank and a bubble."""
    p = s.parallelism
    tokens = s.workload.tokens_per_step
    flops = 6.0 * s.model_spec.active_params * tokens
    compute = flops / (s.devices * s.topology_spec.accelerator.peak_flops("bf16") * 0.5)
    bubble = (p.pipeline_parallel_degree - 1) / (s.num_micro_batches * p.num_virtual_stages)
    return compute * (1.0 + 0.05 * (p.tensor_parallel_degree - 1)) * (1.0 + bubble)


RESERVE_BYTES = 4 * 1024**3  # a fixed framework reserve (CUDA context, buffers)


def peak_bytes(s: ScenarioSpec) -> float:
    """bf16 weights + fp32 grads over the model-parallel degrees, Adam sharded over DP, plus
    a fixed reserve."""
    p, m = s.parallelism, s.model_spec
    dense = m.total_params - m.num_moe_layers * m.num_experts * m.expert_params
    expert = m.total_params - dense
    w = (dense / (p.tensor_parallel_degree * p.pipeline_parallel_degree)
         + expert / (p.expert_parallel_degree * p.expert_tensor_parallel_degree
                     * p.pipeline_parallel_degree))
    dp = s.data_parallel_degree
    states = w * (2.0 + 4.0) + w * 12.0 / dp
    if p.fsdp:
        states = w * 18.0 / dp
    act = (p.micro_batch_size * s.workload.sequence_length * m.hidden_size * 34.0
           * m.num_layers / p.pipeline_parallel_degree / p.tensor_parallel_degree
           / p.context_parallel_degree) * ACT[p.recompute]
    return states + act + RESERVE_BYTES


def memory(s: ScenarioSpec) -> MemoryVerdict:
    cap = s.topology_spec.accelerator.hbm_bytes
    peak = peak_bytes(s)
    return MemoryVerdict(fits=peak <= cap, peak_bytes=peak, capacity_bytes=cap)


def evaluate(s: ScenarioSpec, fidelity: str) -> dict[str, Any]:
    delay = float(os.environ.get("PLAN_FAKES_SLEEP_S", "0"))  # lets CLI tests kill midway
    if delay:
        time.sleep(delay)
    t = step_time_s(s) * (1.02 if fidelity == "des" else 1.0)
    tokens = s.workload.tokens_per_step
    mem = memory(s)
    return {"step_time_s": t, "tokens_per_s": tokens / t,
            "tokens_per_s_per_device": tokens / t / s.devices, "fits_memory": mem.fits,
            "peak_bytes": mem.peak_bytes, "headroom_bytes": mem.headroom_bytes}


def broken(s: ScenarioSpec, fidelity: str) -> dict[str, Any]:
    """Raises an unexpected error for EP 4 (a bug in a cost model), else evaluates."""
    if s.parallelism.expert_parallel_degree == 4:
        raise ZeroDivisionError("float division by zero")
    return evaluate(s, fidelity)
