"""Cluster graph, routes and link table on cited topologies."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from moesim.cluster import build_cluster
from moesim.cluster.synthetic import gpu_cluster, tpu_slice
from moesim.errors import InfeasibleError
from moesim.units import GBIT_PER_S, GBYTE_PER_S


def test_link_table_of_a_two_su_h100_pod() -> None:
    c = build_cluster(gpu_cluster("H100", 64))
    # 512 GPUs: 2 x 512 NVLink, 2 x 512 NIC, 2 SUs x 8 rails x 2 directions of leaf groups.
    assert c.num_links == 2 * 512 + 2 * 512 + 2 * 16
    assert c.domain_of(17) == 2
    o = c.offsets
    assert c.capacity_bytes_per_s[o["nvl_up"]] == 450 * GBYTE_PER_S
    assert c.capacity_bytes_per_s[o["nic_up"]] == 400 * GBIT_PER_S
    # A leaf group of one rail in a 32-node SU: 32 NICs x 50 GB/s of uplinks (full bisection).
    assert c.capacity_bytes_per_s[o["leaf_up"]] == pytest.approx(32 * 50e9)


def test_routes_intra_node_same_rail_and_cross_rail() -> None:
    c = build_cluster(gpu_cluster("H100", 64))
    o = c.offsets
    links, _ = c.path(0, 5)
    assert links.tolist() == [o["nvl_up"] + 0, o["nvl_down"] + 5]
    # Same rail, same SU: NIC up, NIC down, no spine.
    links, _ = c.path(3, 8 + 3)
    assert links.tolist() == [o["nic_up"] + 3, o["nic_down"] + 8 + 3]
    # Cross rail and cross SU (node 40 is in SU 1): NVLink to the rail-2 GPU, then rail 2.
    links, _ = c.path(0, 8 * 40 + 2)
    assert links.tolist() == [o["nvl_up"], o["nvl_down"] + 2, o["nic_up"] + 2,
                              o["leaf_up"] + 2, o["spine_down"] + 8 + 2, o["nic_down"] + 322]
    assert c.path(4, 4)[0].size == 0


def test_graph_holds_switches_and_matches_route_hops() -> None:
    c = build_cluster(gpu_cluster("H100", 64))
    g = c.graph
    kinds = nx.get_node_attributes(g, "kind")
    assert sum(1 for k in kinds.values() if k == "leaf") == 16
    assert sum(1 for k in kinds.values() if k == "spine") >= 1
    # GPU -> NVSwitch -> GPU: 2 hops, as the route's 2 links.
    assert nx.shortest_path_length(g, ("device", 0), ("device", 5)) == 2
    # Leaf-to-spine edges of one group split its capacity evenly (ECMP).
    caps = [d["capacity"] for _, _, d in g.out_edges(("leaf", 0), data=True)
            if d["link"] == c.offsets["leaf_up"]]
    assert sum(caps) == pytest.approx(c.capacity_bytes_per_s[c.offsets["leaf_up"]])


def test_torus_dimension_order_with_wrap_and_tie_split() -> None:
    c = build_cluster(tpu_slice((4, 4)))
    # Chip 0 (0,0) to chip 1 (0,1): one hop on axis 1.
    links, coeff = c.path(0, 1)
    assert links.size == 1 and coeff.tolist() == [1.0]
    # (0,0) -> (0,3): wrap makes it one hop backwards.
    links, _ = c.path(0, 3)
    assert links.size == 1
    # (0,0) -> (2,0): two hops either way on a ring of 4: split half over both directions.
    links, coeff = c.path(0, 8)
    assert links.size == 4 and coeff.tolist() == [0.5] * 4
    # Every route's hop count (weighted) equals the torus distance: |1| + |2| = 3.
    links, coeff = c.path(0, 4 * 1 + 2 + 0)
    assert float(coeff.sum()) == pytest.approx(1 + 2)


def test_partial_and_oversized_clusters() -> None:
    topo = gpu_cluster("H100", 4)
    assert build_cluster(topo, 12).num_domains == 2
    a, b = build_cluster(topo), build_cluster(topo)  # built anew; equal links
    assert a is not b and np.array_equal(a.capacity_bytes_per_s, b.capacity_bytes_per_s)
    with pytest.raises(InfeasibleError):
        build_cluster(topo, 64)
    assert np.all(build_cluster(topo).capacity_bytes_per_s > 0)
