"""Published layouts: what fits and what does not, and parameter counts from the model files."""

from __future__ import annotations

import numpy as np
import pytest
from memory_cases import DSV3, MIXTRAL, QWEN3, ROOT, mixtral

from moesim.errors import InfeasibleError
from moesim.memory import ensure_fits, estimate_memory, rank_params
from moesim.specs.loader import load_model, load_scenario
from moesim.units import GB, GIB


@pytest.mark.parametrize("file,total,active", [
    ("mixtral-8x7b.yaml", 46.7e9, 12.9e9),  # Mixtral paper, arXiv:2401.04088
    ("deepseek-v3.yaml", 671e9, None),  # DSV3 report (no MTP module); active: below
    ("qwen3-235b-a22b.yaml", 235e9, 22e9),  # Qwen3 report / HF model card
])
def test_parameter_counts_within_1_percent(file, total, active):
    m = load_model(ROOT / "scenarios/models" / file)
    assert m.total_params == pytest.approx(total, rel=0.01)
    if active is not None:
        assert m.active_params == pytest.approx(active, rel=0.01)


def test_deepseek_v3_active_count_rounds_to_37b():
    # "37B activated" has two significant digits; DSV3 leaves the input-embedding lookup out
    # (with it: 37.55B), so the count without it must lie in [36.5B, 37.5B).
    m = load_model(ROOT / "scenarios/models/deepseek-v3.yaml")
    assert 36.5e9 <= m.active_params - m.vocab_size * m.hidden_size < 37.5e9


def test_sharded_counts_add_up_to_the_model():
    # Summing every distinct rank's share recovers the model: dense parts of all PP ranks
    # (TP1) plus EP8 ranks' experts; MTP is absent for Mixtral.
    s = load_scenario(MIXTRAL)
    ranks = [rank_params(s, r) for r in range(4)]
    dense = sum(p.dense for p in ranks)
    expert = 8 * sum(p.expert for p in ranks)
    assert dense + expert == s.model_spec.total_params


def test_deepseek_v3_expert_shard_by_hand():
    # DSV3 PP16 DualPipe EP64: rank 1 holds stages 1 and 14 (4 + 4 MoE layers); each MoE
    # layer keeps 256 / 64 = 4 experts of 3 * 7168 * 2048 = 44,040,192 parameters.
    s = load_scenario(DSV3)
    assert rank_params(s, 1).expert == 8 * 4 * 44_040_192


def test_deepseek_v3_fits_on_h800():
    # DSV3 trained this layout on 80 GB H800 (DSV3 §3.2): ZeRO-1, DualPipe, selective recompute.
    r = estimate_memory(load_scenario(DSV3))
    assert r.fits, [(c.rank_class, c.memory.peak_bytes / GB) for c in r.rank_classes]
    assert r.peak_bytes > 40 * GB  # not trivially empty: 2 x params and PP + 1 micro-batches
    ensure_fits(r)


def test_mixtral_reference_mapping_fits_on_h100():
    # Megatron-Core's reference mapping for Mixtral 8x7B: TP1 EP8 PP4 VPP8 on 80 GB H100.
    r = estimate_memory(load_scenario(MIXTRAL))
    assert r.fits
    assert r.most_loaded == "pp0"  # stage 0 keeps the most interleaved chunks alive
    assert 30 * GB < r.peak_bytes < 80 * GB


def test_qwen3_235b_without_fsdp_does_not_fit_and_names_the_term():
    # EP8, no PP, ZeRO-1 only: per GPU 227B / 8 experts + 8B dense parameters with 2-byte
    # weights and 4-byte gradients unsharded (~216 GB) -- gradients are the largest term.
    s = load_scenario(QWEN3, ["parallelism.fsdp=false", "parallelism.zero_stage=1"])
    r = estimate_memory(s)
    assert not r.fits and r.overflow_term == "gradients"
    with pytest.raises(InfeasibleError) as exc:
        ensure_fits(r)
    assert exc.value.reason == "memory"
    msg = str(exc.value)
    assert msg.startswith("pp0: ") and "> 79.65 GiB HBM" in msg and "gradients" in msg
    assert "\n" not in msg


def test_qwen3_235b_with_fsdp_fits():
    assert estimate_memory(load_scenario(QWEN3)).fits


def test_breakdown_sums_to_peak_and_headroom():
    r = estimate_memory(mixtral())
    for rc in r.rank_classes:
        m = rc.memory
        assert sum(m.breakdown_bytes.values()) == pytest.approx(m.peak_bytes)
        # 81559 MiB = 79.65 GiB, the H100's capacity as nvidia-smi reports it.
        assert m.headroom_bytes == pytest.approx(79.65 * GIB - m.peak_bytes)
    assert sum(rc.multiplicity for rc in r.rank_classes) == 64


def test_imbalanced_routing_adds_a_hot_rank_class():
    # Every micro-batch routes twice its share to EP rank 3 of every MoE layer, the rest
    # share what is left; the hot rank stores more expert activations than the typical one.
    s = mixtral()
    even = 4096 * 2  # source tokens x top_k, per EP rank and micro-batch
    recv = np.full((32, s.num_micro_batches, 8), even * 6 / 7)
    recv[:, :, 3] = 2 * even
    r = estimate_memory(s, recv_tokens=recv)
    hot = [c for c in r.rank_classes if "hot" in c.rank_class]
    assert len(hot) == 1 and hot[0].rank_class.endswith("hot-ep3")
    assert r.most_loaded == hot[0].rank_class
    base = estimate_memory(s)
    assert r.peak_bytes > base.peak_bytes
    assert sum(c.multiplicity for c in r.rank_classes) == 64


def test_capacity_padding_stores_capacity_tokens():
    # CF 1.5 with padding: every expert rank processes 1.5x its balanced share
    # (experts_per_rank x EP x ceil(4096 * 2 * 1.5 / 8)) whatever the routing.
    s = mixtral("routing.capacity_factor=1.5", "routing.pad_to_capacity=true")
    base = estimate_memory(mixtral()).by_name("pp0").memory.breakdown_bytes["activations"]
    padded = estimate_memory(s).by_name("pp0").memory.breakdown_bytes["activations"]
    assert padded > base
