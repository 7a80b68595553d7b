"""Goodput against published records: Llama 3 405B's interruptions and effective training
time, DeepSeek-V3's pre-training GPU-hours (docs/goodput.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from moesim.goodput import estimate_goodput, goodput_for
from moesim.plan.capacity import plan_capacity
from moesim.specs.loader import load_scenario

ROOT = Path(__file__).resolve().parents[2]
# Llama 3 405B pre-training as the paper ran it (arXiv:2407.21783 Table 4: 16,384 H100, TP8 PP16
# DP128, sequence 8,192); the layout only decides who writes the checkpoint.
LLAMA3_SETS = ["model=models/llama-3.1-405b.yaml", "topology.tiers.1.num_domains=2048",
               "num_devices=16384", "parallelism.pipeline_parallel_degree=16",
               "parallelism.tensor_parallel_degree=8", "parallelism.expert_parallel_degree=1",
               "parallelism.pipeline_schedule={kind: interleaved_1f1b, num_virtual_stages: 1}",
               "parallelism.pipeline_layer_split=[7,8,8,8,8,8,8,8,8,8,8,8,8,8,8,7]",
               "workload.global_batch_size=2048", "workload.sequence_length=8192"]


def test_llama3_interruptions_and_effective_training_time() -> None:
    s = load_scenario(ROOT / "scenarios" / "default.yaml", LLAMA3_SETS)
    assert s.devices == 16384 and 405e9 < s.model_spec.total_params < 406e9
    # Any throughput: the effective-time fraction of a long run does not depend on it.
    r = estimate_goodput(s, goodput_for(s), 15.6e12, 2.7e6)
    # Published: 466 interruptions in the 54-day snapshot (8.63 per day) and "higher than 90%"
    # effective training time (§3.3.4). Acceptance: within 20% and within 5 points.
    assert r.interruptions_per_day == pytest.approx(466 / 54, rel=0.20)
    assert abs(r.efficiency - 0.90) <= 0.05
    assert r.efficiency > 0.90  # on the published side of 90%


def test_dsv3_pretraining_gpu_hours_at_2048_h800() -> None:
    # DeepSeek-V3 Technical Report (arXiv:2412.19437) Table 1: pre-training on 14.8T tokens
    # took 2,664K H800 GPU-hours on 2,048 H800 (180K per trillion tokens).
    s = load_scenario(ROOT / "scenarios" / "deepseek-v3-2048xh800.yaml")
    res = plan_capacity(s, 14.8e12, 60, devices=2048, keep_layout=True, goodput=goodput_for(s))
    assert res.devices == 2048 and res.goodput is not None
    gpu_hours = 2048 * res.train_days * 24
    assert gpu_hours == pytest.approx(2.664e6, rel=0.10)
    assert res.ideal_days < res.train_days
    # At DeepSeek's own $2/GPU-hour (the topology's price) the cost is the GPU-hours x 2.
    assert res.cost_usd == pytest.approx(2.0 * gpu_hours)
