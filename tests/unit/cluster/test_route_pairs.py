"""Routes of many pairs at once (routing.route_pairs) equal the per-pair routes (route)."""

from __future__ import annotations

import numpy as np
import pytest

from moesim.cluster import build_cluster
from moesim.cluster.routing import route, route_pairs
from moesim.cluster.synthetic import gpu_cluster, tpu_slice
from moesim.specs.hardware import DcnSpec, FatTreeSpec, NVSwitchDomainSpec, TopologySpec


def _fat_tree_dcn() -> TopologySpec:
    acc = gpu_cluster("H100", 2).accelerator
    return TopologySpec(name="two-fabrics", accelerator=acc, tiers=(
        NVSwitchDomainSpec(num_devices=4, link_gbyte_per_s=450),
        FatTreeSpec(num_domains=4, nics_per_domain=2, nic_gbit_per_s=400,
                    domains_per_leaf_group=2),
        DcnSpec(num_slices=2, per_device_gbit_per_s=100)))


CLUSTERS = {
    "ro-3su": build_cluster(gpu_cluster("H100", 6, nodes_per_su=2)),
    "flat-3su": build_cluster(gpu_cluster("H100", 6, nodes_per_su=2, rail_optimized=False,
                                          oversubscription=2.0)),
    "partial": build_cluster(gpu_cluster("H100", 4), 28),
    "fat-tree+dcn": build_cluster(_fat_tree_dcn()),
    "torus": build_cluster(tpu_slice((4, 4))),
    "one-node": build_cluster(gpu_cluster("H100", 1)),
}


@pytest.mark.parametrize("name", list(CLUSTERS))
def test_route_pairs_equal_route(name: str) -> None:
    c = CLUSTERS[name]
    n = c.num_devices
    src, dst = (x.ravel() for x in np.meshgrid(np.arange(n), np.arange(n), indexing="ij"))
    order = np.random.default_rng(0).permutation(src.size)  # any order of pairs
    src, dst = src[order], dst[order]
    indptr, links, coeff = route_pairs(c, src, dst)
    assert indptr.shape == (src.size + 1,) and indptr[-1] == links.size == coeff.size
    for f, (s, d) in enumerate(zip(src.tolist(), dst.tolist(), strict=True)):
        want_links, want_coeff = route(c, s, d)
        np.testing.assert_array_equal(links[indptr[f]:indptr[f + 1]], want_links)
        np.testing.assert_array_equal(coeff[indptr[f]:indptr[f + 1]], want_coeff)
