"""Shipped topologies: sizes, per-device bandwidths and bisections derived by hand."""

import math

import pytest

from moesim.specs import load_topology
from moesim.specs.describe import as_gbyte_per_s, tier_summaries


def _topo(root, name, overrides=None):
    return load_topology(root / f"topologies/{name}.yaml", overrides)


def _per_device(topo):
    return [round(as_gbyte_per_s(s.per_device_bytes_per_s), 6) for s in tier_summaries(topo)]


def test_at_least_ten_systems(root):
    assert len(list((root / "topologies").glob("*.yaml"))) >= 10


@pytest.mark.parametrize("name,devices,per_device", [
    # NVLink per GPU per direction; NIC Gb/s / 8 = GB/s per GPU (one NIC per GPU).
    ("dgx-a100-superpod", 140 * 8, [300, 200 / 8]),
    ("dgx-h100-superpod", 128 * 8, [450, 400 / 8]),
    ("h800-deepseek-2048", 2048, [160, 400 / 8]),
    ("dgx-h200-superpod", 32 * 8, [450, 50]),
    ("dgx-b200-superpod", 128 * 8, [900, 50]),
    ("gb200-nvl72-superpod", 8 * 72, [900, 50]),
])
def test_gpu_systems(root, name, devices, per_device):
    t = _topo(root, name)
    assert t.num_devices == devices
    assert _per_device(t) == per_device


def test_gb200_rack_egress(root):
    # SB-gpus: NVL72 rack egress 72 x 400 Gb/s = 3.6 TB/s; bisection of 8 racks = 4 x 3.6 TB/s.
    s = tier_summaries(_topo(root, "gb200-nvl72-superpod"))[1]
    assert as_gbyte_per_s(s.bisection_bytes_per_s) == pytest.approx(4 * 3600)


@pytest.mark.parametrize("name,dims,per_device,bisection", [
    # A chip drives 2 links per wrapped axis; bisection = other axes' product x 2 wrap links.
    ("tpu-v3-pod", (32, 32), 4 * 100, 32 * 2 * 100),           # GCP-v3 quotes 6.4 TB/s
    ("tpu-v4-pod", (16, 16, 16), 6 * 45, 256 * 2 * 45),        # GCP-v4 quotes 24 TB/s
    ("tpu-v5e-256", (16, 16), 4 * 50, 16 * 2 * 50),            # GCP-v5e quotes 1.6 TB/s
    ("tpu-v5p-pod", (16, 20, 28), 6 * 100, 16 * 20 * 2 * 100),  # cut across the 28 axis
])
def test_tpu_tori(root, name, dims, per_device, bisection):
    t = _topo(root, name)
    assert t.scale_up.dims == dims
    assert t.devices_per_domain == math.prod(dims)
    s = tier_summaries(t)[0]
    assert as_gbyte_per_s(s.per_device_bytes_per_s) == pytest.approx(per_device)
    assert as_gbyte_per_s(s.bisection_bytes_per_s) == pytest.approx(bisection)


def test_tpu_v3_pod_is_whole_hosts_of_chips(root):
    t = _topo(root, "tpu-v3-pod")
    assert t.num_devices == 1024 and t.scale_up.chips_per_host == 8
    assert t.scale_up.links_per_chip == 4 and t.scale_up.links_per_direction == 1


def test_sizes_are_overridable(root):
    # topology_overrides use dotted paths: 16 nodes of the SuperPOD, a 4x4 v3 slice, 4 v5e pods.
    assert _topo(root, "dgx-h100-superpod", {"tiers.1.num_domains": 16}).num_devices == 128
    assert _topo(root, "tpu-v3-pod", {"tiers.0.dims": [4, 4]}).num_devices == 16
    assert _topo(root, "tpu-v5e-256", {"tiers.1.num_slices": 4}).num_devices == 1024


def test_cube_dims_must_divide(root):
    from moesim.errors import SpecError

    with pytest.raises(SpecError, match="cube_dims"):
        _topo(root, "tpu-v4-pod", {"tiers.0.dims": [6, 16, 16]})


def test_a_rail_leaf_must_have_the_ports_it_serves() -> None:
    # DGX H100 SuperPOD: 32 nodes per scalable unit, one NIC of each under a rail leaf, 32
    # uplinks at 1:1 = 64 ports, exactly a Quantum-2's 64; at 2:1 oversubscription 32 + 16.
    from pydantic import ValidationError

    from moesim.specs.hardware import FatTreeSpec

    base = {"num_domains": 128, "nics_per_domain": 8, "nic_gbit_per_s": 400}
    FatTreeSpec(**base, domains_per_leaf_group=32, leaf_radix=64)
    FatTreeSpec(**base, domains_per_leaf_group=32, leaf_radix=48, oversubscription=2.0)
    with pytest.raises(ValidationError, match="64 ports"):
        FatTreeSpec(**base, domains_per_leaf_group=32, leaf_radix=63)
    # one scalable unit has no uplinks; a fat tree that is not rail-optimized spreads NICs
    FatTreeSpec(**{**base, "num_domains": 32}, domains_per_leaf_group=32, leaf_radix=32)
    FatTreeSpec(**base, domains_per_leaf_group=32, leaf_radix=8, rail_optimized=False)
