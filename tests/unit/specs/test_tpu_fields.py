"""The TPU torus fields act: ICI links per chip set the bandwidth per axis direction, a slice is
whole hosts, and a model's position limit bounds the training sequence."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from moesim.cluster import build_cluster
from moesim.cluster.synthetic import tpu_slice
from moesim.errors import SpecError
from moesim.network import all_to_all_v_time, collective_time
from moesim.specs.hardware import TorusSpec
from moesim.specs.loader import load_scenario
from moesim.units import MIB


def _slice(links: int | None) -> object:
    topo = tpu_slice((4, 4))
    torus = topo.tiers[0].model_copy(update={"links_per_chip": links})
    return topo.model_copy(update={"tiers": (torus,)})


def test_links_share_the_axis_directions():
    # 2D torus: 4 axis directions; 8 links give each direction 2 links.
    assert TorusSpec(dims=(4, 4), link_gbyte_per_s=45.0).links_per_direction == 1
    t = TorusSpec(dims=(4, 4), link_gbyte_per_s=45.0, links_per_chip=8)
    assert t.links_per_direction == 2
    assert t.direction_bytes_per_s == pytest.approx(2 * 45e9)


def test_links_per_chip_must_split_evenly():
    with pytest.raises(ValidationError, match="not a multiple of 6"):
        TorusSpec(dims=(4, 4, 4), link_gbyte_per_s=45.0, links_per_chip=4)


def test_twice_the_links_halve_a_bandwidth_bound_all_to_all():
    # 256 MiB per rank pair on a 4x4 torus: the time is bytes over the busiest ICI direction's
    # capacity plus fixed latencies; doubling every direction's links halves the first term.
    n = 16
    traffic = np.full((n, n), 256 * MIB)
    group = [list(range(n))]
    one = all_to_all_v_time(build_cluster(_slice(None)), group, traffic)
    two = all_to_all_v_time(build_cluster(_slice(8)), group, traffic)
    lat = all_to_all_v_time(build_cluster(_slice(None)), group, np.full((n, n), 1.0))
    assert (two.time_s - lat.time_s) == pytest.approx((one.time_s - lat.time_s) / 2, rel=1e-3)
    # the same for a ring all-reduce over one axis
    ar1 = collective_time(build_cluster(_slice(None)), "all_reduce", [[0, 1, 2, 3]], 1024 * MIB)
    ar2 = collective_time(build_cluster(_slice(8)), "all_reduce", [[0, 1, 2, 3]], 1024 * MIB)
    assert ar2.time_s < 0.55 * ar1.time_s


def test_a_slice_is_whole_hosts():
    with pytest.raises(ValidationError, match="not whole hosts of chips_per_host=8"):
        TorusSpec(dims=(2, 2), link_gbyte_per_s=45.0, chips_per_host=8)
    assert TorusSpec(dims=(4, 2), link_gbyte_per_s=45.0, chips_per_host=8).size == 8


def test_sequence_longer_than_the_model_positions_is_one_error(root):
    with pytest.raises(SpecError, match="max_position_embeddings=32768") as exc:
        load_scenario(root / "scenarios" / "default.yaml", ["workload.sequence_length=65536"])
    assert exc.value.field == "workload.sequence_length"
