"""Flow phases of ring, NVLS, tree, hierarchical and torus ring-per-axis collectives.

Each builder returns ``(phases, latency_s)``: a list of ``(src, dst, bytes, protocol)``
phases run one after the other (flows inside a phase run together) and the latency term
(NCCL's tuning model on GPUs, per-hop ICI latency on TPUs). Sizes follow nccl-tests: the
full vector for all-reduce, the gathered output for all-gather, the input for
reduce-scatter. Units: bytes, seconds.
"""

from __future__ import annotations

import math

import numpy as np

from moesim.cluster.plan import ClusterPlan, torus_coords
from moesim.network import efficiency as eff
from moesim.units import US

Phase = tuple[np.ndarray, np.ndarray, np.ndarray, str]


def ring_volume(op: str, n: int) -> float:
    """Bytes each rank sends in a ring collective, per byte of nccl-tests size."""
    return 2.0 * (n - 1) / n if op == "all_reduce" else (n - 1) / n


def by_domain(cluster: ClusterPlan, group: list[int]) -> list[list[int]]:
    """Members of ``group`` per domain, domains in order of first appearance."""
    out: dict[int, list[int]] = {}
    for d in group:
        out.setdefault(cluster.domain_of(d), []).append(d)
    return list(out.values())


def _phase(edges: list[tuple[int, int, float]], protocol: str) -> Phase:
    arr = np.array(edges, dtype=float).reshape(-1, 3)
    return arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64), arr[:, 2], protocol


def ring_edges(cluster: ClusterPlan, group: list[int], volume: float) -> list[tuple[int, int, float]]:
    """Multi-channel ring: one ring per member position, each entering every domain on its own
    rail, so the channels spread over the domain's NICs (NCCL builds one ring per NIC)."""
    doms = by_domain(cluster, group)
    u = len(doms[0])
    if len(doms) == 1 or any(len(d) != u for d in doms):
        order = [d for dom in doms for d in dom]
        n = len(order)
        return [(order[i], order[(i + 1) % n], volume) for i in range(n)]
    edges = []
    for c in range(u):
        order = [d for dom in doms for d in dom[c:] + dom[:c]]
        n = len(order)
        edges += [(order[i], order[(i + 1) % n], volume / u) for i in range(n)]
    return edges


def ring_latency(op: str, n: int, num_domains: int,
                 extra: tuple[float, float] = (0.0, 0.0)) -> float:
    """NCCL ring latency: base + intra steps x NVLink step + inter steps x NET step (NCCL-tune);
    ``extra``: the tiers' excess hop latency per NVLink and NET step (efficiency.step_extra)."""
    steps = 2 * (n - 1) if op == "all_reduce" else n - 1
    inter = (2 if op == "all_reduce" else 1) * (num_domains - 1)
    return (eff.NCCL_BASE_LAT_S + (steps - inter) * eff.step(eff.RING_NVLINK_STEP_S, extra[0])
            + inter * eff.step(eff.RING_NET_STEP_S, extra[1]))


def ring(cluster: ClusterPlan, op: str, groups: list[list[int]], size: float) -> tuple[list[Phase], float]:
    n = len(groups[0])
    edges = [e for g in groups for e in ring_edges(cluster, g, ring_volume(op, n) * size)]
    k = len(by_domain(cluster, groups[0]))
    return [_phase(edges, "ring")], ring_latency(op, n, k, eff.step_extra(cluster.topology))


def nvls(cluster: ClusterPlan, op: str, groups: list[list[int]], size: float) -> tuple[list[Phase], float]:
    """NVLink SHARP all-reduce: every GPU pushes S into the switch and pulls S back."""
    edges = [(d, d, size) for g in groups for d in g]
    src = np.array([e[0] for e in edges], dtype=np.int64)
    lat = eff.NCCL_BASE_LAT_S + eff.step(eff.NVLS_LAT_S, eff.step_extra(cluster.topology)[0])
    return [(src, src, np.full(len(edges), size), "nvls")], lat


def tree(cluster: ClusterPlan, op: str, groups: list[list[int]], size: float) -> tuple[list[Phase], float]:
    """NCCL tree all-reduce: intra-domain chains and an inter-domain double binary tree,
    pipelined; each tree carries half the vector, one channel per member position."""
    edges: list[tuple[int, int, float]] = []
    for g in groups:
        doms = by_domain(cluster, g)
        u, k = len(doms[0]), len(doms)
        for dom in doms:
            for a, b in zip(dom[:-1], dom[1:], strict=True):
                edges += [(a, b, size), (b, a, size)]
        # Double binary tree: the second tree is the first on the reversed order, so a domain
        # that is interior in one tree is a leaf in the other (NCCL's mirrored tree).
        for order in (doms, doms[::-1]):
            for i in range(1, k):
                child, parent = order[i], order[(i - 1) // 2]
                for p in range(u):
                    part = size / 2.0 / u
                    edges += [(child[p], parent[p], part), (parent[p], child[p], part)]
    doms0 = by_domain(cluster, groups[0])
    u, k = len(doms0[0]), len(doms0)
    nvl, net = eff.step_extra(cluster.topology)
    lat = eff.NCCL_BASE_LAT_S + 2 * ((u - 1) * eff.step(eff.TREE_NVLINK_STEP_S, nvl)
                                     + math.log2(max(k, 1)) * eff.step(eff.TREE_NET_STEP_S, net))
    return [_phase(edges, "tree")], lat


def _sub_groups(cluster: ClusterPlan, groups: list[list[int]]) -> tuple[list[list[int]], list[list[int]]]:
    """Intra-domain groups and same-position inter-domain groups of every group."""
    intra, inter = [], []
    for g in groups:
        doms = by_domain(cluster, g)
        intra += doms
        inter += [[dom[p] for dom in doms] for p in range(len(doms[0]))]
    return intra, inter


def hierarchical(cluster: ClusterPlan, op: str, groups: list[list[int]],
                 size: float) -> tuple[list[Phase], float]:
    """Intra-domain reduce-scatter, inter-domain collective on the shard, intra all-gather."""
    intra, inter = _sub_groups(cluster, groups)
    u, k = len(intra[0]), len(inter[0])
    shard = size / u
    plan: list[tuple[str, list[list[int]], float]]
    if op == "all_reduce":
        plan = [("reduce_scatter", intra, size), ("all_reduce", inter, shard),
                ("all_gather", intra, size)]
    elif op == "all_gather":
        plan = [("all_gather", inter, shard), ("all_gather", intra, size)]
    else:
        plan = [("reduce_scatter", intra, size), ("reduce_scatter", inter, shard)]
    phases, lat = [], 0.0
    for sub_op, sub, sz in plan:
        ph, la = ring(cluster, sub_op, sub, sz)
        phases += ph
        lat += la if sub is intra else ring_latency(sub_op, k, k, eff.step_extra(cluster.topology))
    return phases, lat


def torus_ring(cluster: ClusterPlan, op: str, groups: list[list[int]],
               size: float) -> tuple[list[Phase], float]:
    """Ring per torus axis (SB-sharding): RS axis by axis, AG in reverse; a ring that covers a
    wrapping axis runs both directions with half the data each."""
    t = cluster.torus
    assert t is not None
    dims = tuple(t.dims)
    m = cluster.devices_per_domain
    coords = {d: torus_coords(dims, d % m) for g in groups for d in g}
    g0 = groups[0]
    axes = [a for a in range(len(dims)) if len({coords[d][a] for d in g0}) > 1]
    n = len(g0)
    lens = {a: len({coords[d][a] for d in g0}) for a in axes}
    steps: list[tuple[int, float]] = []  # (axis, bytes per rank in that phase)
    if op in ("reduce_scatter", "all_reduce"):
        cur = size
        for a in axes:
            steps.append((a, cur * (lens[a] - 1) / lens[a]))
            cur /= lens[a]
    if op in ("all_gather", "all_reduce"):
        cur = size / n
        for a in reversed(axes):
            steps.append((a, cur * (lens[a] - 1)))
            cur *= lens[a]
    phases, lat = [], 0.0
    for a, vol in steps:
        bidi = t.wraps[a] and lens[a] == dims[a]
        edges: list[tuple[int, int, float]] = []
        for g in groups:
            lines: dict[tuple[int, ...], list[int]] = {}
            for d in g:
                key = coords[d][:a] + coords[d][a + 1:] + (d // m,)
                lines.setdefault(key, []).append(d)
            for line in lines.values():
                line.sort(key=lambda d: coords[d][a])
                L = len(line)
                for i in range(L):
                    nxt, prv = line[(i + 1) % L], line[(i - 1) % L]
                    if bidi:
                        edges += [(line[i], nxt, vol / 2), (line[i], prv, vol / 2)]
                    else:
                        edges.append((line[i], nxt, vol))
        phases.append(_phase(edges, "ring"))
        hops = math.ceil((lens[a] - 1) / 2) if bidi else lens[a] - 1
        lat += hops * t.latency_us * US
    return phases, lat


BUILDERS = {"ring": ring, "nvls": nvls, "tree": tree, "hierarchical": hierarchical,
            "torus_ring": torus_ring}
