from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from plan_paths import MIXTRAL

from moesim.plan.layouts import (
    Layout,
    SearchSpaceSpec,
    all_to_all_options,
    balanced_split,
    structural_reason,
    structures,
    with_layout,
)
from moesim.specs.checks import check_scenario
from moesim.specs.loader import load_scenario


@given(st.integers(1, 200), st.integers(1, 64))
def test_balanced_split_sums_and_differs_by_at_most_one(layers: int, chunks: int) -> None:
    split = balanced_split(layers, chunks)
    if layers % chunks == 0:
        assert split is None
    else:
        assert split is not None and len(split) == chunks and sum(split) == layers
        assert max(split) - min(split) == 1


def test_balanced_split_qwen3() -> None:
    # Qwen3-235B has 94 layers: 8 stages get 12,12,12,12,12,12,11,11 (94 = 6 x 12 + 2 x 11).
    assert balanced_split(94, 8) == (12, 12, 12, 12, 12, 12, 11, 11)


def test_structures_count_on_mixtral_64() -> None:
    s = load_scenario(MIXTRAL)
    space = SearchSpaceSpec()
    got = list(structures(s, space))
    # Divisors of 64: 1,2,4,8,16,32,64. TP <= 16 (5), CP <= 4 (3), PP <= 16 (5) with
    # TP x CP x PP | 64; VPP in {1} for PP 1 else {1,2,4} with PP x VPP <= 32 layers;
    # EP | 8 (4); ETP in {1, TP}; MBS in {1, 2}. Counted by hand below.
    n = 0
    for tp in (1, 2, 4, 8, 16):
        for cp in (1, 2, 4):
            for pp in (1, 2, 4, 8, 16):
                if tp * cp * pp > 64:
                    continue
                vpps = [1] if pp == 1 else [v for v in (1, 2, 4) if pp * v <= 32]
                n += len(vpps) * 4 * len({1, tp}) * 2
    assert len(got) == n


def test_valid_structures_pass_the_spec_checks() -> None:
    s = load_scenario(MIXTRAL)
    for lay in list(structures(s, SearchSpaceSpec()))[::37]:
        if structural_reason(s, lay) is None:
            check_scenario(with_layout(s, lay))  # must not raise


def test_reasons() -> None:
    s = load_scenario(MIXTRAL)
    # Mixtral has 8 KV heads: TP 16 fails the spec check before the domain rule.
    assert structural_reason(s, Layout(16, 1, 1, 1, 1, 1, 1)).startswith("invalid: ")
    assert structural_reason(s, Layout(1, 1, 1, 1, 3, 1, 1)) == (
        "invalid: parallelism.expert_parallel_degree")
    assert structural_reason(s, Layout(1, 1, 4, 2, 8, 1, 1)) is None


def test_tp_across_the_nvlink_domain_is_excluded() -> None:
    s = load_scenario(MIXTRAL, sets=["model.attention.num_kv_heads=32"])
    assert structural_reason(s, Layout(16, 1, 1, 1, 1, 1, 1)) == (
        "tensor parallel crosses the scale-up domain")


def test_all_to_all_choices_only_across_domains() -> None:
    s = load_scenario(MIXTRAL)  # 8 GPUs per NVSwitch domain
    space = SearchSpaceSpec()
    assert all_to_all_options(s, Layout(1, 1, 1, 1, 8, 1, 1), space) == ["direct"]
    assert all_to_all_options(s, Layout(2, 1, 1, 1, 8, 2, 1), space) == [
        "direct", "hierarchical", "deepep"]


def test_with_layout_sets_the_schedule_and_split() -> None:
    s = load_scenario(MIXTRAL)
    sc = with_layout(s, Layout(1, 1, 4, 2, 8, 1, 1, recompute="full", fsdp=True, zero_stage=3))
    p = sc.parallelism
    assert p.pipeline_schedule.kind == "interleaved_1f1b" and p.num_virtual_stages == 2
    assert p.pipeline_layer_split is None and p.recompute == "full" and p.fsdp
    flat = with_layout(s, Layout(1, 1, 1, 1, 8, 1, 1))
    assert flat.parallelism.pipeline_schedule.kind == "1f1b"
