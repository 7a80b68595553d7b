"""Field bounds and the work cap: absurd values and combinations are refused at load with a
message that says which limit and why; real extremes (64k devices, 1M-token contexts, EP 256)
still validate."""

from __future__ import annotations

import pytest

from moesim.errors import SpecError
from moesim.routing.step import DEFAULT_DRAWS_PER_LAYER
from moesim.specs import bounds, work
from moesim.specs.checks import scenario_work
from moesim.specs.loader import load_scenario

DEFAULT = "scenarios/default.yaml"
DSV3 = "scenarios/deepseek-v3-2048xh800.yaml"


def _error(root, name: str, *sets: str) -> str:
    with pytest.raises(SpecError) as info:
        load_scenario(root / name, sets)
    msg = str(info.value)
    assert "\n" not in msg and len(msg) < 500 and msg.startswith(str(root / name)), msg
    return msg


@pytest.mark.parametrize("setting, expect", [
    ("seed=-1", "greater than or equal to 0"),
    ("routing.seed=-5", "greater than or equal to 0"),
    ("model.attention.head_dim=1.0e+30", "model.attention.head_dim=1e+30"),
    ("model.attention.head_dim=100000", "less than or equal to 16384 (64x the widest head"),
    ("routing.capacity_factor=1e18", "less than or equal to 1048576"),
    ("topology.accelerator.hbm_capacity_gib=1e308", "few hundred GiB of HBM"),
    ("workload.global_batch_size=80000000", "1000x DeepSeek-V3"),
    ("model.num_layers=9007199254740993", "deepest published transformers"),
    ("parallelism.moe_overlap_chunks=1000000", "overlap saves"),
    ("topology.tiers.1.latency_us=1e9", "no fabric hop takes a second"),
    ("num_devices=1.0e+300", "num_devices=1e+300"),
    ("num_devices=300000", "largest cluster built"),
    ("topology.tiers.1.nic_gbit_per_s=nan", "finite number"),
    ("topology.tiers.1.num_domains=1000000", "at most 2^18 devices"),
])
def test_field_bounds(root, setting, expect):
    assert expect in _error(root, DEFAULT, setting)


def test_every_bounded_field_has_a_reason():
    import pydantic

    from moesim.specs.hardware import TopologySpec
    from moesim.specs.scenario import ScenarioSpec

    seen: set[str] = set()
    todo: list[type[pydantic.BaseModel]] = [ScenarioSpec, TopologySpec]
    checked = 0
    while todo:
        cls = todo.pop()
        if cls.__name__ in seen:
            continue
        seen.add(cls.__name__)
        for name, field in cls.model_fields.items():
            if any(type(m).__name__ == "Le" and m.le > 1 for m in field.metadata):
                assert bounds.reason(name), f"{cls.__name__}.{name} has a bound but no reason"
                checked += 1
            for a in _models(field.annotation):
                todo.append(a)
    assert checked > 50


def _models(tp):
    import typing

    import pydantic
    args = typing.get_args(tp)
    if not args:
        return [tp] if isinstance(tp, type) and issubclass(tp, pydantic.BaseModel) else []
    return [m for a in args for m in _models(a)]


def test_dualpipe_needs_two_micro_batches_per_stage(root):
    msg = _error(root, DSV3, "workload.global_batch_size=2048")  # 16 micro-batches, PP16
    assert "at least 2 x pipeline_parallel_degree = 32 micro-batches" in msg


def test_capacity_factor_above_experts_over_k(root):
    msg = _error(root, DEFAULT, "routing.capacity_factor=5")  # Mixtral: 8 experts, top-2
    assert "exceeds num_experts / top_k = 4" in msg
    load_scenario(root / DEFAULT, ["routing.capacity_factor=4"])


def test_work_caps_name_the_limit_and_the_knob(root):
    msg = _error(root, DEFAULT, "workload.global_batch_size=1048576")
    assert "layer passes per step, more than 262,144" in msg and "global_batch_size" in msg
    msg = _error(root, DEFAULT, "model.num_experts=1000000")
    assert "routing would draw" in msg and "expert_parallel_degree" in msg
    msg = _error(root, DEFAULT, "model.num_experts=16384", "routing.num_redundant_experts=16384")
    assert "greedy placement" in msg and "fewer redundant experts" in msg


def test_real_extremes_validate(root):
    # DeepSeek-V3 on 65,536 GPUs (8192 nodes), DP 4096.
    load_scenario(root / DSV3, ["topology.tiers.1.num_domains=8192", "num_devices=65536",
                                "workload.global_batch_size=131072"])
    # A 1M-token context with CP 16.
    load_scenario(root / DEFAULT, ["workload.sequence_length=1048576",
                                   "model.max_position_embeddings=1048576",
                                   "parallelism.context_parallel_degree=16",
                                   "workload.global_batch_size=16"])
    # EP 256 over DeepSeek-V3's 61 layers, 8 routing draws per layer.
    s = load_scenario(root / DSV3, [
        "parallelism.expert_parallel_degree=256", "parallelism.pipeline_layer_split=null",
        "parallelism.pipeline_parallel_degree=1", "parallelism.pipeline_schedule.kind=1f1b",
        "workload.global_batch_size=16384"])
    assert scenario_work(s).routing_cells < work.MAX_ROUTING_CELLS


def test_draws_match_routing():
    assert work.DEFAULT_DRAWS == DEFAULT_DRAWS_PER_LAYER


def test_shipped_scenarios_are_far_from_the_caps(root):
    for f in sorted((root / "scenarios").glob("*.yaml")):
        w = scenario_work(load_scenario(f))
        assert w.layer_passes < work.MAX_LAYER_PASSES / 20, f
        assert w.routing_cells < work.MAX_ROUTING_CELLS / 4, f


def test_many_small_draws_count(root):
    from moesim.specs.work import check_work

    s = load_scenario(root / DEFAULT, ["workload.global_batch_size=65536"])  # 4096 micro-batches
    with pytest.raises(SpecError, match="lower --micro-batches or --draws"):
        check_work(scenario_work(s, None, 10**9), knobs="lower --micro-batches or --draws")
    check_work(scenario_work(s, None, 64), knobs="lower --micro-batches or --draws")


def test_hierarchical_all_to_all_needs_even_domains(root):
    msg = _error(root, DSV3, "topology.tiers.0.num_devices=24", "topology.tiers.1.num_domains=86")
    assert "spread evenly over the 24-device scale-up domains" in msg and "24 + 24 + 16" in msg
    load_scenario(root / DSV3, ["topology.tiers.0.num_devices=16",
                                "topology.tiers.1.num_domains=128"])
