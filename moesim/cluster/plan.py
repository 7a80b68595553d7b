"""ClusterPlan: the devices, switches and directed links of a TopologySpec.

The solver sees a link table (capacity in bytes/s, latency in s, tier code per link). ECMP
sets of parallel equal-cost links (a leaf's uplinks to every spine, every spine's downlink
to one leaf) are one link group of the summed capacity: with even splitting each member
carries 1/k of the group's load and has 1/k of its capacity, so they saturate together and
the group is exact for the fluid model. The networkx graph keeps every switch and cable.

Link id layout (D devices, Q NICs, G leaf groups), in order:
nvlink up/down per device (2D), NIC up/down (2Q), leaf-to-spine and spine-to-leaf groups (2G),
ICI per chip, axis and direction, DCN up/down per device (2D).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from moesim.errors import InfeasibleError
from moesim.specs.hardware import (
    DcnSpec,
    FatTreeSpec,
    NVSwitchDomainSpec,
    TopologySpec,
    TorusSpec,
)
from moesim.units import GBIT_PER_S, US

if TYPE_CHECKING:
    import networkx as nx

TIER_NVLINK, TIER_NIC, TIER_FABRIC, TIER_ICI, TIER_DCN = 0, 1, 2, 3, 4
TIER_NAMES = ("nvlink", "nic", "fabric", "ici", "dcn")
SWITCH_PORT_LAT_S = 0.6 * US  # InfiniBand HDR switch port latency (MLE-net; NDR not published)


@dataclass(eq=False)
class ClusterPlan:
    """A built cluster: link table, device-to-domain map and cached device-pair paths.

    Compared and hashed by identity (its arrays are not hashable); a session keeps one per
    (topology, size).
    """

    topology: TopologySpec
    num_devices: int
    devices_per_domain: int
    capacity_bytes_per_s: np.ndarray
    latency_s: np.ndarray
    link_tier: np.ndarray
    offsets: dict[str, int]
    fat_tree: FatTreeSpec | None = None
    torus: TorusSpec | None = None
    dcn: DcnSpec | None = None
    _paths: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    # --- structure -----------------------------------------------------------------------
    @property
    def num_links(self) -> int:
        return int(self.capacity_bytes_per_s.shape[0])

    @property
    def num_domains(self) -> int:
        return -(-self.num_devices // self.devices_per_domain)

    def domain_of(self, device: int) -> int:
        """Index of the scale-up domain (node, rack or torus slice) holding ``device``."""
        return int(device) // self.devices_per_domain

    @property
    def nics_per_domain(self) -> int:
        return self.fat_tree.nics_per_domain if self.fat_tree else 0

    def nic_local(self, local: np.ndarray | int) -> np.ndarray:
        """Which NIC of its domain a device (by local index) sends through natively."""
        m, k = self.devices_per_domain, max(self.nics_per_domain, 1)
        return np.asarray(local) * k // m

    @property
    def num_leaf_groups(self) -> int:
        ft = self.fat_tree
        if ft is None:
            return 0
        rails = ft.nics_per_domain if ft.rail_optimized else 1
        return self.num_sus * rails

    @property
    def num_sus(self) -> int:
        ft = self.fat_tree
        return -(-self.num_domains // ft.domains_per_leaf_group) if ft else 0

    @functools.cached_property
    def link_names(self) -> list[str]:
        """A readable name per link id (for reports of the busiest links)."""
        return _link_names(self)

    @functools.cached_property
    def graph(self) -> nx.DiGraph:
        """Devices, switches, NICs and cables; edges carry capacity (bytes/s), latency (s), link id."""
        from moesim.cluster.graph import build_graph

        return build_graph(self)

    def path(self, src: int, dst: int) -> tuple[np.ndarray, np.ndarray]:
        """Link ids and rate fractions of the route ``src -> dst`` (cached)."""
        key = (int(src), int(dst))
        hit = self._paths.get(key)
        if hit is None:
            from moesim.cluster.routing import route

            hit = route(self, key[0], key[1])
            self._paths[key] = hit
        return hit

    def path_latency_s(self, src: int, dst: int) -> float:
        """One-way latency (s) of the route: the sum over its links, ECMP shares weighted."""
        links, coeff = self.path(src, dst)
        return float((self.latency_s[links] * coeff).sum())


def _link_names(c: ClusterPlan) -> list[str]:
    names = [""] * c.num_links
    o = c.offsets
    for d in range(c.num_devices if "nvl_up" in o else 0):
        names[o["nvl_up"] + d] = f"nvlink:up:d{d}"
        names[o["nvl_down"] + d] = f"nvlink:down:d{d}"
    if c.fat_tree is not None:
        q = c.num_domains * c.nics_per_domain
        for i in range(q):
            names[o["nic_up"] + i] = f"nic:up:n{i // c.nics_per_domain}.{i % c.nics_per_domain}"
            names[o["nic_down"] + i] = f"nic:down:n{i // c.nics_per_domain}.{i % c.nics_per_domain}"
        for g in range(c.num_leaf_groups):
            names[o["leaf_up"] + g] = f"fabric:leaf-to-spine:g{g}"
            names[o["spine_down"] + g] = f"fabric:spine-to-leaf:g{g}"
    if c.torus is not None:
        nax = len(c.torus.dims)
        for i in range(c.num_devices * 2 * nax):
            chip, rest = divmod(i, 2 * nax)
            ax, dr = divmod(rest, 2)
            names[o["ici"] + i] = f"ici:c{chip}:axis{ax}{'+-'[dr]}"
    if c.dcn is not None:
        for d in range(c.num_devices):
            names[o["dcn_up"] + d] = f"dcn:up:d{d}"
            names[o["dcn_down"] + d] = f"dcn:down:d{d}"
    return names


def _tiers(topology: TopologySpec) -> tuple[Any, FatTreeSpec | None, DcnSpec | None]:
    ft = next((t for t in topology.tiers if isinstance(t, FatTreeSpec)), None)
    dcn = next((t for t in topology.tiers if isinstance(t, DcnSpec)), None)
    return topology.tiers[0], ft, dcn


def _build(topology: TopologySpec, num_devices: int) -> ClusterPlan:
    scale_up, ft, dcn = _tiers(topology)
    m = scale_up.size
    num_domains = -(-num_devices // m)
    caps: list[np.ndarray] = []
    lats: list[np.ndarray] = []
    tiers: list[np.ndarray] = []
    offsets: dict[str, int] = {}

    def add(name: str, n: int, cap: float, lat: float, tier: int) -> None:
        offsets[name] = sum(a.shape[0] for a in caps)
        caps.append(np.full(n, float(cap)))
        lats.append(np.full(n, float(lat)))
        tiers.append(np.full(n, tier, dtype=np.int8))

    torus = scale_up if isinstance(scale_up, TorusSpec) else None
    if isinstance(scale_up, NVSwitchDomainSpec):
        # One hop each way through the NVSwitch plane; the spec's latency is per direction.
        half = scale_up.latency_us * US / 2.0
        add("nvl_up", num_devices, scale_up.device_bytes_per_s, half, TIER_NVLINK)
        add("nvl_down", num_devices, scale_up.device_bytes_per_s, half, TIER_NVLINK)
    if ft is not None:
        q = num_domains * ft.nics_per_domain
        # The spec's latency is the one-way NIC + leaf budget; a route through the spine
        # crosses two more switch ports, 0.6 us each (HDR port latency, MLE-net).
        add("nic_up", q, ft.nic_bytes_per_s, ft.latency_us * US, TIER_NIC)
        add("nic_down", q, ft.nic_bytes_per_s, 0.0, TIER_NIC)
        rails = ft.nics_per_domain if ft.rail_optimized else 1
        sus = -(-num_domains // ft.domains_per_leaf_group)
        nic_per_group = ft.domains_per_leaf_group * ft.nics_per_domain / rails
        group_cap = nic_per_group * ft.nic_bytes_per_s / ft.oversubscription
        add("leaf_up", sus * rails, group_cap, SWITCH_PORT_LAT_S, TIER_FABRIC)
        add("spine_down", sus * rails, group_cap, SWITCH_PORT_LAT_S, TIER_FABRIC)
    if torus is not None:
        add("ici", num_devices * 2 * len(torus.dims), torus.direction_bytes_per_s,
            torus.latency_us * US, TIER_ICI)
    if dcn is not None:
        per_dev = dcn.per_device_gbit_per_s * GBIT_PER_S
        add("dcn_up", num_devices, per_dev, dcn.latency_us * US / 2.0, TIER_DCN)
        add("dcn_down", num_devices, per_dev, dcn.latency_us * US / 2.0, TIER_DCN)
    return ClusterPlan(topology=topology, num_devices=num_devices, devices_per_domain=m,
                       capacity_bytes_per_s=np.concatenate(caps), latency_s=np.concatenate(lats),
                       link_tier=np.concatenate(tiers), offsets=offsets, fat_tree=ft,
                       torus=torus, dcn=dcn)


def build_cluster(topology: TopologySpec, num_devices: int | None = None) -> ClusterPlan:
    """The cluster of the first ``num_devices`` devices of ``topology`` (all by default), built
    anew on each call (the engine keeps one per session: moesim.engine.session)."""
    total = topology.num_devices
    n = total if num_devices is None else int(num_devices)
    if n < 1 or n > total:
        raise InfeasibleError(
            f"num_devices={n} does not fit topology {topology.name!r} with {total} devices; "
            f"valid: 1..{total}", reason="cluster_too_small")
    scale_up = topology.tiers[0]
    if isinstance(scale_up, TorusSpec) and n % scale_up.size and n > scale_up.size:
        raise InfeasibleError(
            f"num_devices={n} must be a multiple of the torus slice size {scale_up.size} "
            f"(dims {list(scale_up.dims)}) on {topology.name!r}", reason="partial_slice")
    if isinstance(scale_up, TorusSpec) and n < scale_up.size:
        n = scale_up.size  # a partial slice still has the whole torus wiring
    return _build(topology, n)


def torus_coords(dims: tuple[int, ...], chip: int) -> tuple[int, ...]:
    """Coordinates of ``chip`` (row-major, last axis fastest)."""
    out = []
    for d in reversed(dims):
        chip, r = divmod(chip, d)
        out.append(r)
    return tuple(reversed(out))


def torus_index(dims: tuple[int, ...], coords: tuple[int, ...] | list[int]) -> int:
    return int(np.ravel_multi_index(tuple(coords), dims))


__all__ = ["ClusterPlan", "build_cluster", "torus_coords", "torus_index", "TIER_NAMES"]
