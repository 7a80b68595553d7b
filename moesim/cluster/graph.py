"""The networkx view of a ClusterPlan: every GPU/chip, NVSwitch, NIC, leaf and spine switch.

Edges are directed, with ``capacity`` (bytes/s), ``latency`` (s) and ``link`` (the id of the
solver link or ECMP link group the cable belongs to) and ``share`` (its fraction of that
group). Built on first use of ``ClusterPlan.graph``; the solver itself uses the link table.
"""

from __future__ import annotations

import math

import networkx as nx

from moesim.cluster.plan import ClusterPlan, torus_coords, torus_index


def build_graph(c: ClusterPlan) -> nx.DiGraph:
    """The device/switch graph of ``c`` (directed, one edge per cable direction)."""
    g = nx.DiGraph(name=c.topology.name)
    for d in range(c.num_devices):
        g.add_node(("device", d), kind="device", domain=c.domain_of(d))
    if "nvl_up" in c.offsets:
        _add_nvswitch(c, g)
    if c.fat_tree is not None:
        _add_fat_tree(c, g)
    if c.torus is not None:
        _add_torus(c, g)
    if c.dcn is not None:
        g.add_node(("dcn",), kind="dcn")
        for d in range(c.num_devices):
            _edge(g, c, ("device", d), ("dcn",), c.offsets["dcn_up"] + d, 1.0)
            _edge(g, c, ("dcn",), ("device", d), c.offsets["dcn_down"] + d, 1.0)
    return g


def _edge(g: nx.DiGraph, c: ClusterPlan, u: tuple, v: tuple, link: int, share: float) -> None:
    g.add_edge(u, v, link=link, share=share,
               capacity=float(c.capacity_bytes_per_s[link]) * share,
               latency=float(c.latency_s[link]))


def _add_nvswitch(c: ClusterPlan, g: nx.DiGraph) -> None:
    tier = c.topology.tiers[0]
    s = tier.num_switches  # type: ignore[union-attr]
    for d in range(c.num_devices):
        dom = c.domain_of(d)
        for k in range(s):
            sw = ("nvswitch", dom, k)
            g.add_node(sw, kind="nvswitch")
            _edge(g, c, ("device", d), sw, c.offsets["nvl_up"] + d, 1.0 / s)
            _edge(g, c, sw, ("device", d), c.offsets["nvl_down"] + d, 1.0 / s)


def _add_fat_tree(c: ClusterPlan, g: nx.DiGraph) -> None:
    ft = c.fat_tree
    assert ft is not None
    m, k = c.devices_per_domain, c.nics_per_domain
    rails = k if ft.rail_optimized else 1
    for dom in range(c.num_domains):
        for r in range(k):
            nic = ("nic", dom, r)
            g.add_node(nic, kind="nic")
            leaf = ("leaf", (dom // ft.domains_per_leaf_group) * rails + (r if rails > 1 else 0))
            g.add_node(leaf, kind="leaf")
            q = dom * k + r
            _edge(g, c, nic, leaf, c.offsets["nic_up"] + q, 1.0)
            _edge(g, c, leaf, nic, c.offsets["nic_down"] + q, 1.0)
        for local in range(m):
            d = dom * m + local
            if d >= c.num_devices:
                break
            nic = ("nic", dom, int(c.nic_local(local)))
            g.add_edge(("device", d), nic, capacity=float("inf"), latency=0.0, share=1.0,
                       link=-1)
            g.add_edge(nic, ("device", d), capacity=float("inf"), latency=0.0, share=1.0,
                       link=-1)
    if c.num_leaf_groups <= 1:
        return
    ports = ft.domains_per_leaf_group * k / rails / ft.oversubscription
    num_spines = max(1, math.ceil(c.num_leaf_groups * ports / ft.spine_radix))
    for s in range(num_spines):
        g.add_node(("spine", s), kind="spine")
    for grp in range(c.num_leaf_groups):
        for s in range(num_spines):
            _edge(g, c, ("leaf", grp), ("spine", s), c.offsets["leaf_up"] + grp, 1 / num_spines)
            _edge(g, c, ("spine", s), ("leaf", grp), c.offsets["spine_down"] + grp,
                  1 / num_spines)


def _add_torus(c: ClusterPlan, g: nx.DiGraph) -> None:
    from moesim.cluster.routing import ici_link

    t = c.torus
    assert t is not None
    dims = tuple(t.dims)
    m = c.devices_per_domain
    for d in range(c.num_devices):
        base, local = divmod(d, m)
        pos = torus_coords(dims, local)
        for axis, n in enumerate(dims):
            for direction, step in ((0, 1), (1, -1)):
                nxt = list(pos)
                nxt[axis] += step
                if not 0 <= nxt[axis] < n:
                    if not t.wraps[axis]:
                        continue
                    nxt[axis] %= n
                if tuple(nxt) == pos:
                    continue
                peer = base * m + torus_index(dims, nxt)
                _edge(g, c, ("device", d), ("device", peer), ici_link(c, d, axis, direction), 1.0)
