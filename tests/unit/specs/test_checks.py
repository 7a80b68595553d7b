"""Cross-field checks: each rule rejects a layout that breaks it, with a message that fixes it."""

import pytest

from moesim.errors import SpecError
from moesim.specs import load_scenario
from moesim.specs.checks import divisors

SCENARIOS = ["default", "mixtral-8x7b-64xh100", "mixtral-8x22b-128xh100", "qwen3-30b-a3b-16xh100",
             "qwen3-30b-a3b-8xh100", "qwen3-235b-a22b-256xh100", "deepseek-v3-2048xh800",
             "switch-base-128-16xtpuv3"]


def _load(root, name, *sets):
    return load_scenario(root / f"scenarios/{name}.yaml", sets)


@pytest.mark.parametrize("name", SCENARIOS)
def test_shipped_scenarios_are_consistent(root, name):
    s = _load(root, name)
    p = s.parallelism
    # Degrees multiply to the device count: TP x CP x PP x DP = devices.
    assert (p.tensor_parallel_degree * p.context_parallel_degree * p.pipeline_parallel_degree
            * s.data_parallel_degree) == s.devices
    assert s.model_spec.num_experts % p.expert_parallel_degree == 0
    assert s.num_micro_batches * p.micro_batch_size * s.data_parallel_degree == (
        s.workload.global_batch_size)


def test_published_layout_numbers(root):
    # DSV3: 2048 / PP16 = DP128; 15360 / 128 = 120 micro-batches; 256 / EP64 = 4 experts per rank;
    # EDP = 2048 / 16 / 64 = 2.
    s = _load(root, "deepseek-v3-2048xh800")
    assert (s.data_parallel_degree, s.num_micro_batches, s.experts_per_rank) == (128, 120, 4)
    assert s.expert_data_parallel_degree == 2
    # Automodel Qwen3-30B on 8 GPUs: 512 / (4 x 8) = 16 accumulation steps (published case).
    assert _load(root, "qwen3-30b-a3b-8xh100").num_micro_batches == 16
    # Mixtral 8x22B: 128 / (TP4 x PP8) = DP4; EDP = (TP4 x DP4) / EP2 = 8.
    s = _load(root, "mixtral-8x22b-128xh100")
    assert (s.data_parallel_degree, s.expert_data_parallel_degree) == (4, 8)


@pytest.mark.parametrize("sets,needle", [
    (("parallelism.expert_parallel_degree=6",),
     "parallelism.expert_parallel_degree=6 must divide model.num_experts=256; "
     "valid: 1, 2, 4, 8, 16, 32, 64, 128, 256"),
    (("parallelism.tensor_parallel_degree=3",), "must divide num_devices=2048"),
    (("num_devices=4096",), "num_devices=4096 exceeds the 2048 devices"),
    (("parallelism.tensor_parallel_degree=256", "parallelism.pipeline_parallel_degree=1"),
     "tensor_parallel_degree=256 must divide model.attention.num_heads=128"),
    (("parallelism.pipeline_layer_split=null",),
     "pipeline x virtual stages = 16 x 1 = 16 must divide model.num_layers=61"),
    (("parallelism.pipeline_layer_split=[4, 4]",), "must have 16 entries"),
    (("workload.global_batch_size=15000",), "must be a multiple of micro_batch_size x data_parallel"),
    (("workload.global_batch_size=128",), "DualPipe needs an even"),
    (("parallelism.expert_parallel_degree=256",), "MoE parallel folding"),
    (("parallelism.expert_tensor_parallel_degree=2", "model.expert_ffn_hidden_size=2049"),
     "expert_tensor_parallel_degree=2 must divide model.expert_ffn_hidden_size=2049"),
])
def test_dsv3_breakages(root, sets, needle):
    with pytest.raises(SpecError) as info:
        _load(root, "deepseek-v3-2048xh800", *sets)
    assert needle in str(info.value)
    assert str(info.value).startswith(str(root / "scenarios/deepseek-v3-2048xh800.yaml"))


def test_kv_heads_and_interleave(root):
    # Mixtral 8x22B: TP16 divides its 48 heads but not its 8 KV heads.
    with pytest.raises(SpecError, match="num_kv_heads=8"):
        _load(root, "mixtral-8x22b-128xh100", "parallelism.tensor_parallel_degree=16",
              "parallelism.pipeline_parallel_degree=1", "parallelism.pipeline_schedule={kind: 1f1b}")
    # GBS 48 over DP4 gives 12 micro-batches, not a multiple of PP8 (interleaved 1F1B).
    with pytest.raises(SpecError, match="multiple of parallelism.pipeline_parallel_degree=8"):
        _load(root, "mixtral-8x22b-128xh100", "workload.global_batch_size=48")


def test_fp8_needs_fp8_units(root):
    with pytest.raises(SpecError, match="has no FP8 units"):
        _load(root, "switch-base-128-16xtpuv3", "workload.dtype=fp8")


def test_dense_model_refuses_ep(root):
    with pytest.raises(SpecError, match="has no experts"):
        _load(root, "default", "model=models/llama-3-8b.yaml")


def test_divisors():
    assert divisors(256) == [1, 2, 4, 8, 16, 32, 64, 128, 256]
    assert divisors(61) == [1, 61]
    assert divisors(36) == [1, 2, 3, 4, 6, 9, 12, 18, 36]
