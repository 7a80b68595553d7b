"""Process groups in Megatron order (TP innermost, then CP, DP, PP; MoE: ETP, EP, EDP)."""

from __future__ import annotations

import pytest

from moesim.cluster import place_ranks, process_groups
from moesim.errors import SpecError
from moesim.specs.parallelism import ParallelismSpec


def test_attention_and_moe_groups() -> None:
    p = ParallelismSpec(tensor_parallel_degree=2, pipeline_parallel_degree=2,
                        expert_parallel_degree=4)
    g = process_groups(p, 16)
    assert g.tp[:2] == [[0, 1], [2, 3]]
    assert g.dp[0] == [0, 2, 4, 6] and len(g.dp) == 4
    assert g.pp[0] == [0, 8]
    assert g.ep[:3] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    assert g.edp[0] == [0, 4]
    assert g.etp[0] == [0]
    # Every rank is in exactly one group of each kind.
    for kind in ("tp", "cp", "dp", "pp", "ep", "etp", "edp"):
        flat = sorted(r for grp in getattr(g, kind) for r in grp)
        assert flat == list(range(16))


def test_indivisible_layout_is_a_spec_error() -> None:
    with pytest.raises(SpecError):
        process_groups(ParallelismSpec(tensor_parallel_degree=3), 16)


def test_spread_placement_round_robins_domains() -> None:
    assert place_ranks(4, 8, 32, "packed") == [0, 1, 2, 3]
    assert place_ranks(4, 8, 32, "spread") == [0, 8, 16, 24]
    with pytest.raises(SpecError):
        place_ranks(4, 8, 32, "diagonal")
