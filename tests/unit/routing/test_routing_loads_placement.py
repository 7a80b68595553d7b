"""Load models, placement and determinism, against hand-derived values."""

from __future__ import annotations

import json

import numpy as np
import pytest

from moesim.errors import SpecError
from moesim.routing import draw_step_routing, inclusion_probabilities, place_experts
from moesim.routing.loads import layer_popularity, read_histogram, zipf_popularity
from moesim.routing.placement import split_to_slots
from moesim.specs.routing import DirichletLoadSpec, ZipfLoadSpec


def test_zipf_popularity_closed_form() -> None:
    # 1/i over 4 ranks: weights 1, 1/2, 1/3, 1/4, sum 25/12 -> 12/25, 6/25, 4/25, 3/25.
    assert np.allclose(zipf_popularity(4, 1.0), [12 / 25, 6 / 25, 4 / 25, 3 / 25])
    assert np.allclose(zipf_popularity(5, 0.0), 0.2)


def test_inclusion_probabilities_water_fill() -> None:
    # k=2: 2 x 0.7 = 1.4 is capped at 1; the remaining 1 splits evenly over three 0.1 experts.
    pi = inclusion_probabilities(np.array([0.7, 0.1, 0.1, 0.1]), 2)
    assert np.allclose(pi, [1.0, 1 / 3, 1 / 3, 1 / 3])
    assert np.allclose(inclusion_probabilities(np.full(8, 1 / 8), 2), 0.25)


def test_per_layer_hot_expert_permutation_is_seeded() -> None:
    z = ZipfLoadSpec(exponent=1.0)
    a, b = layer_popularity(z, 16, 0, seed=1), layer_popularity(z, 16, 1, seed=1)
    assert not np.array_equal(a, b) and np.allclose(np.sort(a), np.sort(b))
    assert np.array_equal(a, layer_popularity(z, 16, 0, seed=1))
    d = layer_popularity(DirichletLoadSpec(concentration=0.5), 16, 3, seed=7)
    assert d.sum() == pytest.approx(1.0) and (d > 0).all()


def test_histogram_file(tmp_path) -> None:
    f = tmp_path / "h.json"
    f.write_text(json.dumps([[1, 1, 2], [3, 0, 1]]))
    assert np.allclose(read_histogram(f, 3), [[0.25, 0.25, 0.5], [0.75, 0.0, 0.25]])
    with pytest.raises(SpecError, match="layer x 4 experts"):
        read_histogram(f, 4)


def test_contiguous_placement() -> None:
    p = place_experts(8, 4)
    assert [p.experts_on_rank(r) for r in range(4)] == [[0, 1], [2, 3], [4, 5], [6, 7]]
    with pytest.raises(SpecError, match="must divide"):
        place_experts(8, 3)


def test_redundant_experts_balance_hot_ones() -> None:
    # Loads 3,3,1,...,1 (12 in total) on 4 ranks: contiguous ranks carry 6,2,2,2. Four extra
    # slots go greedily to experts 0,1,0,1 (3 copies of load 1 each): every copy then weighs 1
    # and packing 12 unit copies onto 4 ranks of 3 slots gives 3 per rank.
    loads = np.array([3, 3, 1, 1, 1, 1, 1, 1], dtype=float)
    assert list(place_experts(8, 4).rank_loads(loads)) == [6, 2, 2, 2]
    p = place_experts(8, 4, loads, num_redundant=4)
    assert list(p.num_replicas) == [3, 3, 1, 1, 1, 1, 1, 1]
    assert np.allclose(p.rank_loads(loads), 3.0)
    assert len(p.ranks_of_expert(0)) == 3


def test_split_to_slots_conserves_and_evens() -> None:
    p = place_experts(8, 4, np.array([3, 3, 1, 1, 1, 1, 1, 1.0]), num_redundant=4)
    counts = np.random.default_rng(0).integers(0, 100, size=(5, 8))
    slots = split_to_slots(counts, p)
    back = np.zeros_like(counts)
    for r in range(4):
        for i, e in enumerate(p.slot_expert[r]):
            back[:, e] += slots[:, r, i]
    assert np.array_equal(back, counts)
    for e in (0, 1):
        where = p.slot_expert == e
        per = slots[:, where]
        assert (per.max(axis=1) - per.min(axis=1) <= 1).all()


def test_same_seed_same_arrays_different_seed_differs(scenario) -> None:
    sets = ("routing.load={kind: multinomial}",)
    a = draw_step_routing(scenario(*sets), num_micro_batches=4)
    b = draw_step_routing(scenario(*sets), num_micro_batches=4)
    c = draw_step_routing(scenario(*sets, "seed=1"), num_micro_batches=4)
    d = draw_step_routing(scenario(*sets, "routing.seed=5"), num_micro_batches=4)
    for name in ("recv_tokens", "traffic_tokens", "tokens_per_expert", "distinct_tokens"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.recv_tokens, c.recv_tokens)
    assert not np.array_equal(a.recv_tokens, d.recv_tokens)


def test_micro_batches_cycle_through_draws(scenario) -> None:
    s = scenario("routing.load={kind: multinomial}")
    r = draw_step_routing(s, num_micro_batches=10, num_draws_per_layer=4)
    assert r.traffic_tokens.shape[1] == 4 and list(r.micro_batch_draw) == [0, 1, 2, 3] * 2 + [0, 1]
    assert np.array_equal(r.recv_tokens[:, 5], r.recv_tokens[:, 1])
    assert not np.array_equal(r.recv_tokens[:, 0], r.recv_tokens[:, 1])
    assert np.array_equal(r.traffic(3, 6), r.traffic_tokens[3, 2])
    assert np.array_equal(r.traffic(3, 6).sum(axis=0), r.recv_tokens[3, 6])


def test_replication_lowers_max_load_under_zipf(scenario) -> None:
    base = ("routing.load={kind: zipf, exponent: 1.0}",)
    plain = draw_step_routing(scenario(*base), num_micro_batches=4)
    rep = draw_step_routing(scenario(*base, "routing.num_redundant_experts=8"),
                            num_micro_batches=4)
    assert rep.max_over_mean() < plain.max_over_mean()
    assert plain.max_over_mean() > 1.5  # hottest of 8 Zipf experts: 2 x 0.368 x 8 / 2 ~ 2.9
