"""Model-state bytes per parameter and their ZeRO sharding (ZeRO, arXiv:1910.02054 §3.1)."""

from __future__ import annotations

import pytest
from memory_cases import mixtral

from moesim.memory import bytes_per_param, model_state_bytes, rank_params
from moesim.memory.params import RankParams, shard_groups


def test_mixed_precision_adam_is_16_bytes_per_param():
    # bf16 weights 2 + bf16 grads 2 + fp32 master 4 + Adam m 4 + v 4 = 16 (ZeRO's 2 + 2 + 12).
    per = bytes_per_param(mixtral("workload.grad_dtype=bf16"))
    assert (per.weights, per.gradients, per.optimizer) == (2, 2, 12)
    assert per.total == 16


def test_fp32_gradient_accumulation_is_18_bytes_per_param():
    # Megatron's default keeps fp32 main gradients: 2 + 4 + 12 = 18.
    assert bytes_per_param(mixtral()).total == 18


def test_deepseek_v3_states_are_14_bytes_per_param():
    # DSV3 §3.3.3: bf16 weights 2, fp32 grads 4, fp32 master 4, bf16 moments 2 + 2 = 14.
    s = mixtral("workload.optimizer_state_dtype=bf16")
    assert bytes_per_param(s).total == 14


@pytest.mark.parametrize("stage", [0, 1, 2, 3])
def test_zero_stages_divide_the_right_states(stage):
    # Mixtral 64 GPUs, TP1 PP4 EP8: DP = 64 / 4 = 16 for dense weights, EDP = 16 / 8 = 2 for
    # experts. One dense and one expert parameter: ZeRO-1 divides the 12 optimizer bytes,
    # ZeRO-2 also the 4 gradient bytes, ZeRO-3 also the 2 weight bytes, by 16 resp. 2.
    s = mixtral("workload.grad_dtype=fp32", f"parallelism.zero_stage={stage}")
    assert shard_groups(s) == (16, 2)
    st = model_state_bytes(s, RankParams(dense=1.0, expert=1.0))

    def div(group: int, from_stage: int) -> float:
        return 1 / group if stage >= from_stage else 1.0

    assert st["optimizer_states"] == pytest.approx(12 * (div(16, 1) + div(2, 1)))
    assert st["gradients"] == pytest.approx(4 * (div(16, 2) + div(2, 2)))
    assert st["weights_dense"] == pytest.approx(2 * div(16, 3))
    assert st["weights_expert"] == pytest.approx(2 * div(2, 3))


def test_fsdp_acts_as_zero_3():
    a = model_state_bytes(mixtral("parallelism.fsdp=true"), RankParams(3.0, 5.0))
    b = model_state_bytes(mixtral("parallelism.zero_stage=3"), RankParams(3.0, 5.0))
    assert a == b


def test_mixtral_pp0_parameters_by_hand():
    # Mixtral 32 layers over PP4 x VPP8 = 32 chunks of one layer; rank 0 holds layers
    # 0, 4, ..., 28 (8 layers) and the embedding. Per layer: attention 4096*(4096 + 2*1024)
    # + 4096*4096 = 41,943,040; norms 8,192; router 4096*8 = 32,768; one expert of EP8:
    # 3*4096*14336 = 176,160,768. Embedding 32000*4096 = 131,072,000.
    p = rank_params(mixtral(), 0)
    assert p.dense == 8 * (41_943_040 + 8_192 + 32_768) + 131_072_000
    assert p.expert == 8 * 176_160_768
    # rank 3 holds the last chunk: LM head 131,072,000 + final norm 4096 instead of the embedding
    p3 = rank_params(mixtral(), 3)
    assert p3.dense == p.dense + 4096


def test_tensor_parallel_splits_all_but_norms_and_router():
    # TP2 (with SP): attention and embedding halve; norms and router stay whole.
    p = rank_params(mixtral("parallelism.tensor_parallel_degree=2"), 0)
    assert p.dense == 8 * (41_943_040 / 2 + 8_192 + 32_768) + 131_072_000 / 2
