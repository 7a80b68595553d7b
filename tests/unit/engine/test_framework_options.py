"""The framework options a published run sets, each against a hand-derived number or a
property the mechanism must have (moesim/engine/overlap.py, timeline.py fuse_overlaps,
program/builder.py, program/schedule.py)."""

from __future__ import annotations

import numpy as np
import pytest
from engine_scenarios import ROOT

from moesim.engine import LinearCostProvider, Simulation
from moesim.engine.costs import attention_flops
from moesim.engine.overlap import NCCL_CHANNELS, ep_fraction, nccl_fraction, overlapped_pair
from moesim.memory import estimate_memory
from moesim.memory.overheads import deepep_buffer_bytes
from moesim.program import build_program
from moesim.program.builder import recomputed_by
from moesim.program.ops import AttentionShape
from moesim.program.schedule import interleaved, one_f_one_b, paired_actions
from moesim.specs.loader import load_model, load_scenario

MIXTRAL = ROOT / "scenarios" / "mixtral-8x7b-64xh100.yaml"
DSV3 = ROOT / "scenarios" / "deepseek-v3-2048xh800.yaml"
SMALL = ("model.num_layers=8", "workload.global_batch_size=64",
         "parallelism.pipeline_parallel_degree=1", "parallelism.pipeline_schedule={kind: 1f1b}")


def run(path, *sets, fidelity="analytic", costs=None):  # noqa: ANN001, ANN201
    sc = load_scenario(path, SMALL + sets)
    return Simulation(sc, fidelity=fidelity, costs=costs, include_memory=False).run()


def exposed(r, kind: str) -> float:  # noqa: ANN001
    return r.breakdown.exposed_communication_s.get(kind, 0.0)


def test_sm_fractions_come_from_the_kernels_ctas() -> None:
    # NCCL: one CTA per channel, 16 on Hopper (nccl#892); DeepEP: its num_sms.
    assert nccl_fraction(132) == pytest.approx(NCCL_CHANNELS / 132)
    sc = load_scenario(DSV3)
    assert ep_fraction(sc.parallelism, 132) == pytest.approx(20 / 132)
    assert nccl_fraction(None) == 0.0


def test_paired_schedule_keeps_every_action_once_and_pairs_independent_ones() -> None:
    for acts in (one_f_one_b(0, 4, 8, extra_warmup=1), one_f_one_b(0, 1, 6, extra_warmup=1),
                 interleaved(1, 4, 8, 2, extra_warmup=1)):
        groups = paired_actions(acts)
        assert [a for g in groups for a in g] == acts
        for g in groups:
            if len(g) == 2:
                assert {a.phase for a in g} == {"F", "B"}
                assert (g[0].micro_batch, g[0].virtual) != (g[1].micro_batch, g[1].virtual)
    # PP 1: F0, then (F_i+1, B_i) pairs, then the last backward (Megatron combined_1f1b).
    groups = paired_actions(one_f_one_b(0, 1, 4, extra_warmup=1))
    assert [len(g) for g in groups] == [1, 2, 2, 2, 1]


def test_a2a_1f1b_overlap_hides_ep_communication() -> None:
    sets = ("routing.load.kind=balanced", "workload.global_batch_size=512")  # 8 micro-batches
    plain = run(MIXTRAL, *sets, fidelity="des")
    paired = run(MIXTRAL, *sets, "parallelism.overlap_moe_expert_parallel_comm=true",
                 fidelity="des")
    assert exposed(paired, "ep_dispatch") < 0.5 * exposed(plain, "ep_dispatch")
    assert paired.step_time_s < plain.step_time_s


def test_tp_comm_overlap_merges_collectives_into_gemms() -> None:
    sets = ("parallelism.tensor_parallel_degree=2", "routing.load.kind=balanced")
    plain = run(MIXTRAL, *sets)
    overlap = run(MIXTRAL, *sets, "parallelism.tp_comm_overlap=true")
    assert exposed(overlap, "tp") < exposed(plain, "tp")
    assert overlap.step_time_s <= plain.step_time_s


def test_overlapped_pair_hand_values() -> None:
    f = NCCL_CHANNELS / 132
    # compute longer than what the comm leaves: work + f comm
    assert overlapped_pair(np.array([10.0]), np.array([2.0]), f)[0] == pytest.approx(10 + 2 * f)
    # comm longer: the comm's length
    assert overlapped_pair(np.array([1.0]), np.array([5.0]), f)[0] == pytest.approx(5.0)


def test_ring_cp_hides_the_kv_exchange_all_gather_does_not() -> None:
    sets = ("parallelism.context_parallel_degree=2", "routing.load.kind=balanced")
    ring = run(MIXTRAL, *sets, "parallelism.cp_comm_type=p2p")
    gather = run(MIXTRAL, *sets, "parallelism.cp_comm_type=all_gather")
    assert exposed(ring, "cp") < exposed(gather, "cp")


def test_ulysses_attention_runs_full_sequence_on_a_head_slice() -> None:
    sc = load_scenario(MIXTRAL, SMALL + ("parallelism.context_parallel_degree=2",
                                         "parallelism.cp_comm_type=a2a"))
    core = next(o.shape for o in build_program(sc).chunks[0].forward
                if isinstance(o.shape, AttentionShape))
    # 32 heads, 8 KV heads over CP 2; the whole 4096-token sequence on both sides.
    assert (core.seq_q, core.seq_kv, core.num_heads, core.num_kv_heads) == (4096, 4096, 16, 4)


def test_sliding_window_attention_flops() -> None:
    # Causal window w over s keys: sum_i min(i+1, w) = w s - w (w - 1) / 2 of s (s + 1) / 2.
    full = AttentionShape(1, 4096, 4096, 8, 8, 64, causal=True)
    win = AttentionShape(1, 4096, 4096, 8, 8, 64, causal=True, window=128)
    s, w = 4096, 128
    frac = (w * s - w * (w - 1) / 2) / (s * (s + 1) / 2)
    assert attention_flops(win) == pytest.approx(attention_flops(full) * frac)
    gpt = load_model(ROOT / "scenarios" / "models" / "gpt-oss-120b.yaml")
    assert [gpt.attention_window(i) for i in range(4)] == [128, None, 128, None]


def test_mtp_module_runs_on_the_last_chunk() -> None:
    sc = load_scenario(DSV3)
    prog = build_program(sc)
    last = prog.chunks[-1]
    names = [o.name for o in last.forward]
    assert "mtp0.eh_proj" in names and "mtp0.lm_head" in names
    assert any(n.startswith(f"L{sc.model_spec.num_layers}.moe.experts_fc1") for n in names)
    assert not any(n.startswith("mtp") for c in prog.chunks[:-1] for n in
                   (o.name for o in c.forward))
    assert any(b.name == f"L{sc.model_spec.num_layers}.dp_grad" for b in last.grad_sync)


def test_recompute_modules_select_their_ops() -> None:
    assert recomputed_by("mlp", "L0.mlp.fc1") and not recomputed_by("mlp", "L0.mlp.norm")
    assert recomputed_by("moe", "L5.moe.dispatch") and not recomputed_by("moe", "L5.moe.norm")
    assert recomputed_by("mla_up_proj", "L5.attn.kv_up.fp8_cast")
    assert recomputed_by("shared_experts", "L5.moe.shared.fc2")
    base = ("parallelism.recompute=selective",)
    sc = load_scenario(DSV3, base + ("parallelism.recompute_modules=[mlp]",))
    rec = build_program(sc).chunks[0].recompute
    assert rec and all(".mlp." in o.name for o in rec)  # the dense layers' MLPs only
    none = estimate_memory(load_scenario(DSV3, base + ("parallelism.recompute_modules=[core_attn]",)))
    mlp = estimate_memory(load_scenario(DSV3, base + ("parallelism.recompute_modules=[core_attn, mlp]",)))
    assert mlp.rank_classes[0].memory.breakdown_bytes["activations"] < \
        none.rank_classes[0].memory.breakdown_bytes["activations"]


def test_stage_without_layers_still_runs_its_embedding() -> None:
    sc = load_scenario(MIXTRAL, ("parallelism.pipeline_schedule={kind: 1f1b}",
                                 "parallelism.pipeline_layer_split=[0, 11, 11, 10]"))
    prog = build_program(sc)
    assert prog.chunks[0].layers == () and [o.name for o in prog.chunks[0].forward] == [
        "embedding"]
    r = Simulation(sc, fidelity="des", costs=LinearCostProvider(), include_memory=False).run()
    assert r.step_time_s > 0


def test_deepep_buffers_by_hand() -> None:
    # DSV3 EP64, 20 SMs: 10 channels; NVLink: 8 peers x 288 tokens; RDMA: 8 nodes x 128 x 2.
    sc = load_scenario(DSV3)
    per_token = 7168 * 2 + 8 + 128 * 12 + 128 * 4
    nvl = 10 * 8 * ((2 * 8 + 3) * 4 + 288 * per_token)
    rdma = 10 * 8 * 2 * ((8 * 2 + 2) * 4 + 128 * (per_token + 16))
    assert deepep_buffer_bytes(sc) == pytest.approx(nvl + rdma)
    assert deepep_buffer_bytes(load_scenario(MIXTRAL)) == 0.0  # NCCL all-to-all


def test_hbm_capacity_is_the_drivers_gib() -> None:
    acc = load_scenario(MIXTRAL).topology_spec.accelerator
    assert acc.hbm_bytes == pytest.approx(81559 * 2**20, rel=1e-4)  # nvidia-smi's H100 total
