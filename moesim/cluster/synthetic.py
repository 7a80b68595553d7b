"""TopologySpecs built from cited numbers, for tests and benchmarks that must not depend on
the YAML files under topologies/ (hardware reference tables 1-3; every value below is cited there)."""

from __future__ import annotations

from moesim.specs.hardware import (
    AcceleratorSpec,
    FatTreeSpec,
    NVSwitchDomainSpec,
    TopologySpec,
    TorusSpec,
)

# (BF16 dense TFLOP/s, HBM GB, HBM GB/s, NVLink GB/s per direction, NVLS) per GPU: hardware reference
# table 1 and section 2 (MLE-acc, SB-gpus); H800 NVLink is DeepSeek's 160 GB/s (DSV3,
# DeepEP-legacy).
GPUS = {
    "A100": (312.0, 80.0, 2000.0, 300.0, False),
    "H100": (989.4, 80.0, 3350.0, 450.0, True),
    "H200": (989.4, 141.0, 4800.0, 450.0, True),
    "H800": (989.4, 80.0, 3350.0, 160.0, False),
}


def gpu_cluster(gpu: str, num_nodes: int, *, nic_gbit_per_s: float = 400.0,
                nodes_per_su: int = 32, rail_optimized: bool = True,
                oversubscription: float = 1.0) -> TopologySpec:
    """``num_nodes`` 8-GPU NVSwitch nodes, one NIC per GPU (NDR 400G default, MLE-net), on a
    rail-optimized fat tree of 32-node scalable units (SB-gpus, NV-RA)."""
    tflops, hbm, hbm_bw, nvl, nvls = GPUS[gpu]
    acc = AcceleratorSpec(name=gpu, bf16_dense_tflops=tflops, hbm_capacity_gib=hbm,
                          hbm_gbyte_per_s=hbm_bw)
    tiers: list = [NVSwitchDomainSpec(num_devices=8, link_gbyte_per_s=nvl,
                                      in_switch_reduction=nvls)]
    if num_nodes > 1:
        tiers.append(FatTreeSpec(num_domains=num_nodes, nics_per_domain=8,
                                 nic_gbit_per_s=nic_gbit_per_s, rail_optimized=rail_optimized,
                                 domains_per_leaf_group=nodes_per_su,
                                 oversubscription=oversubscription))
    return TopologySpec(name=f"{gpu.lower()}-{num_nodes}n", accelerator=acc, tiers=tuple(tiers))


def tpu_slice(dims: tuple[int, ...] = (4, 4), link_gbyte_per_s: float = 45.0) -> TopologySpec:
    """A TPU v5e-like 2D torus slice: 197 TFLOP/s, 16 GB at 819 GB/s, 45 GB/s per ICI link and
    direction (hardware reference table 4 and per-link list; GCP-v5e, SB-tpus)."""
    acc = AcceleratorSpec(name="tpu-v5e", vendor="google", bf16_dense_tflops=197.0,
                          hbm_capacity_gib=16.0, hbm_gbyte_per_s=819.0)
    return TopologySpec(name="tpu-slice", accelerator=acc,
                        tiers=(TorusSpec(dims=dims, link_gbyte_per_s=link_gbyte_per_s),))
