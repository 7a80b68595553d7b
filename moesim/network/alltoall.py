"""All-to-all(-v) on a ClusterPlan: direct, hierarchical (Tutel 2DH) and DeepEP style.

``traffic_bytes[i, j]`` is what group-rank i sends to group-rank j (the diagonal stays local).

- direct: every pair at once (NCCL p2p all-to-all). A cross-rail pair on a rail-optimized
  fat tree is two pipelined legs, NVLink to the same-rail GPU then that rail's NIC (PXN);
  legs with the same links merge, so the flow count is (NVLink pairs + same-rail NIC pairs).
- hierarchical: phase 1 intra-domain all-to-all to the member on the destination's position,
  phase 2 inter-domain all-to-all among same-position members (Tutel-2DH).
- deepep: one IB copy per destination domain to the same-rail peer (``node_traffic_bytes``,
  deduplicated per token by the caller; the sum over the domain's ranks by default), fanned
  out over NVLink by that peer, both legs pipelined in one phase (DSV3, DeepEP).

The analytic fidelity is the closed-form bottleneck of the same legs: per-link bytes over
effective capacity, maximized over links. Units: bytes, seconds, bytes/s.
"""

from __future__ import annotations

import numpy as np

from moesim.cluster.plan import ClusterPlan
from moesim.errors import InfeasibleError, SpecError
from moesim.network import efficiency as eff
from moesim.network.collectives import CollectiveResult, check_groups, make_result
from moesim.network.flows import (
    concat_flows,
    effective_capacity,
    flows_from_pairs,
    link_bytes_by_name,
    solve_phase,
)
from moesim.network.maxmin import FlowSet
from moesim.network.rings import by_domain

A2A_ALGORITHMS = ("direct", "hierarchical", "deepep")


def _traffic(groups: list[list[int]], traffic: np.ndarray) -> np.ndarray:
    t = np.asarray(traffic, dtype=float)
    n = len(groups[0])
    if t.ndim == 2 and t.shape == (n, n):
        t = np.broadcast_to(t, (len(groups), n, n))
    if t.shape != (len(groups), n, n):
        raise SpecError(f"traffic_bytes has shape {t.shape}; expected ({n}, {n}) or "
                        f"({len(groups)}, {n}, {n})")
    if (t < 0).any():
        raise SpecError("traffic_bytes must be >= 0")
    return t


def _pairs(cluster: ClusterPlan, dev: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, ...]:
    src = np.broadcast_to(dev[:, :, None], t.shape).ravel()
    dst = np.broadcast_to(dev[:, None, :], t.shape).ravel()
    b = t.ravel()
    keep = (b > 0) & (src != dst)
    return src[keep], dst[keep], b[keep]


def direct_flows(cluster: ClusterPlan, dev: np.ndarray, t: np.ndarray) -> FlowSet:
    """Aggregated legs of a direct all-to-all-v among the device groups ``dev`` (g x n)."""
    ft = cluster.fat_tree
    if "nvl_up" not in cluster.offsets or (ft is None and cluster.dcn is not None):
        return flows_from_pairs(cluster, *_pairs(cluster, dev, t))
    parts = [_group_legs(cluster, g, t[i]) for i, g in enumerate(dev)]
    return concat_flows([f for legs in parts for f in legs])


def _class_sum(t: np.ndarray, rows: np.ndarray | None, nrows: int, cols: np.ndarray,
               ncols: int) -> np.ndarray:
    """Sum of ``t[i, j]`` into ``[rows[i], cols[j]]`` (rows None: keep the rows)."""
    if rows is not None:
        out = np.zeros((nrows, t.shape[1]))
        if np.all(np.diff(rows) >= 0):
            present, starts = np.unique(rows, return_index=True)
            out[present] = np.add.reduceat(t, starts, axis=0)
        else:
            np.add.at(out, rows, t)
        t = out
    if ncols <= 64:  # one-hot product: a BLAS pass instead of a column permutation
        return t @ np.eye(ncols)[cols]
    res = np.zeros((t.shape[0], ncols))
    order = np.argsort(cols, kind="stable")
    present, starts = np.unique(cols[order], return_index=True)
    res[:, present] = np.add.reduceat(t[:, order], starts, axis=1)
    return res


def _group_legs(cluster: ClusterPlan, g: np.ndarray, t: np.ndarray) -> list[FlowSet]:
    """NVLink legs (source, local index of the NVLink destination) and NIC legs of one group."""
    ft, m = cluster.fat_tree, cluster.devices_per_domain
    n = g.shape[0]
    a, loc = g // m, g % m
    doms = [np.flatnonzero(a == b) for b in np.unique(a)]
    nv = np.zeros((n, m))
    inter = t.copy() if len(doms) > 1 else t
    eye = np.eye(m)
    for rows in doms:
        block = t[np.ix_(rows, rows)].copy()
        block[np.arange(rows.size), np.arange(rows.size)] = 0.0
        nv[rows] += block @ eye[loc[rows]]
        if len(doms) > 1:
            inter[np.ix_(rows, rows)] = 0.0
    legs = []
    if ft is not None and len(doms) > 1:
        if np.unique(a // ft.num_domains).size > 1:
            raise InfeasibleError("a direct all-to-all across several fat trees joined by DCN "
                                  "is not modelled; split the group per fabric",
                                  reason="algorithm")
        k = cluster.nics_per_domain
        rail = cluster.nic_local(loc)
        nd = cluster.num_domains
        if ft.rail_optimized:
            proxy_loc = -(-np.arange(k) * m // k)
            fwd = _class_sum(inter, None, n, proxy_loc[rail], m)
            fwd[rail[:, None] == cluster.nic_local(np.arange(m))[None, :]] = 0.0
            nv += fwd
            nic = _class_sum(inter, a, nd, a * k + rail, nd * k)     # [src domain, dst NIC]
            src_dom, dst_q = np.nonzero(nic)
            qs = src_dom * k + dst_q % k
        else:
            nic = _class_sum(inter, a * k + rail, nd * k, a * k + rail, nd * k)
            qs, dst_q = np.nonzero(nic)
        legs += _nic_legs(cluster, qs, dst_q, nic[qs // k if ft.rail_optimized else qs, dst_q])
    src, dloc = np.nonzero(nv)
    legs.append(_nvlink_legs(cluster, g[src], a[src] * m + dloc, nv[src, dloc]))
    return legs


def _fixed(links: np.ndarray, sizes: np.ndarray) -> FlowSet:
    f, w = links.shape
    return FlowSet(np.arange(0, f * w + 1, w, dtype=np.int64), links.ravel(), np.ones(f * w),
                   sizes, np.zeros(f), sizes.copy())


def _nvlink_legs(cluster: ClusterPlan, s: np.ndarray, d: np.ndarray, b: np.ndarray) -> FlowSet:
    # Legs that share a path need no merging: with size weighting they act as one flow.
    o = cluster.offsets
    return _fixed(np.stack([o["nvl_up"] + s, o["nvl_down"] + d], axis=1), b)


def _nic_legs(cluster: ClusterPlan, qs: np.ndarray, qd: np.ndarray,
              b: np.ndarray) -> list[FlowSet]:
    ft, o = cluster.fat_tree, cluster.offsets
    assert ft is not None
    k = cluster.nics_per_domain
    a, z, sizes = qs, qd, b
    rails = k if ft.rail_optimized else 1
    ga = (a // k // ft.domains_per_leaf_group) * rails + (a % k if ft.rail_optimized else 0)
    gz = (z // k // ft.domains_per_leaf_group) * rails + (z % k if ft.rail_optimized else 0)
    up = ga != gz
    four = np.stack([o["nic_up"] + a[up], o["leaf_up"] + ga[up], o["spine_down"] + gz[up],
                     o["nic_down"] + z[up]], axis=1)
    two = np.stack([o["nic_up"] + a[~up], o["nic_down"] + z[~up]], axis=1)
    return [_fixed(four, sizes[up]), _fixed(two, sizes[~up])]


def _positions(cluster: ClusterPlan, group: list[int]) -> tuple[np.ndarray, np.ndarray, list[list[int]]]:
    doms = by_domain(cluster, group)
    if len({len(x) for x in doms}) != 1:
        raise InfeasibleError("hierarchical and deepep all-to-all need the same number of ranks "
                              "in every domain of the group", reason="algorithm")
    where = {d: (a, p) for a, dom in enumerate(doms) for p, d in enumerate(dom)}
    dom_idx = np.array([where[d][0] for d in group])
    pos = np.array([where[d][1] for d in group])
    return dom_idx, pos, doms


def hierarchical_phases(cluster: ClusterPlan, dev: np.ndarray, t: np.ndarray) -> list[FlowSet]:
    """Tutel 2DH: intra-domain stage to the destination's position, then same-position stage."""
    p1: list[tuple[np.ndarray, ...]] = []
    p2: list[tuple[np.ndarray, ...]] = []
    for gi, group in enumerate(dev.tolist()):
        a, p, doms = _positions(cluster, group)
        u, k = len(doms[0]), len(doms)
        pos_1h = np.eye(u)[p]
        dom_1h = np.eye(k)[a]
        stage1 = t[gi] @ pos_1h                      # [r, j]: bytes r sends to position j
        dst1 = np.array([[doms[a[r]][j] for j in range(u)] for r in range(len(group))])
        p1.append((np.repeat(np.array(group), u), dst1.ravel(), stage1.ravel()))
        stage2 = dom_1h.T @ t[gi]                    # [domain, r']: bytes into r' from domain
        src2 = np.array([[doms[x][p[r]] for r in range(len(group))] for x in range(k)])
        p2.append((src2.ravel(), np.tile(np.array(group), k), stage2.ravel()))
    cat = np.concatenate
    return [flows_from_pairs(cluster, *(cat(x) for x in zip(*ph, strict=True))) for ph in (p1, p2)]


def deepep_flows(cluster: ClusterPlan, dev: np.ndarray, t: np.ndarray,
                 node_traffic: np.ndarray | None) -> FlowSet:
    """IB legs to the same-rail peer of each destination domain plus NVLink fan-out legs."""
    src, dst, size = [], [], []
    for gi, group in enumerate(dev.tolist()):
        a, p, doms = _positions(cluster, group)
        k = len(doms)
        g = np.array(group)
        n = len(group)
        per_dom = t[gi] @ np.eye(k)[a]                # [r, domain] without deduplication
        ib = per_dom
        if node_traffic is not None:
            nt = np.asarray(node_traffic, dtype=float).reshape(-1, n, k)
            ib = nt[gi if nt.shape[0] > 1 else 0]
        for r in range(n):
            for x in range(k):
                if x != a[r] and ib[r, x] > 0:
                    src.append(g[r])
                    dst.append(doms[x][p[r]])
                    size.append(ib[r, x])
        fwd = np.array([[doms[a[j]][p[r]] if a[j] != a[r] else g[r] for j in range(n)]
                        for r in range(n)])
        src += fwd.ravel().tolist()
        dst += np.tile(g, n).tolist()
        size += t[gi].ravel().tolist()
    return flows_from_pairs(cluster, np.array(src), np.array(dst), np.array(size))


# NCCL runs an all-to-all as one p2p round per peer (the send/receive pairs of
# ncclP2pSchedule, src/init.cc) and its kernels take the rounds in device work batches of at
# most NCCL_MAX_DEV_WORK_P2P_PER_BATCH = 8 p2p operations (src/include/device.h): the latency
# grows with the number of peers in steps of eight.
P2P_PER_BATCH = 8


def p2p_batches(num_peers: int) -> int:
    """Device work batches NCCL needs for ``num_peers`` p2p peers (at least one)."""
    return max(1, -(-num_peers // P2P_PER_BATCH))


def _latency(cluster: ClusterPlan, group: list[int], algorithm: str) -> float:
    """Launch plus per-batch step latency of each phase (NCCL hwLatencies, efficiency.py)."""
    doms = by_domain(cluster, group)
    n, k = len(group), len(doms)
    x_nvl, x_net = eff.step_extra(cluster.topology)
    net, nvl = eff.step(eff.RING_NET_STEP_S, x_net), eff.step(eff.RING_NVLINK_STEP_S, x_nvl)
    if algorithm == "hierarchical":  # intra-domain phase, then among same-position peers
        phases = [(len(doms[0]) - 1, nvl), (k - 1, net if k > 1 else nvl)]
    elif algorithm == "deepep":  # one kernel that writes to every peer from its own warps
        phases = [(1, net if k > 1 else nvl)]
    else:
        phases = [(n - 1, net if k > 1 else nvl)]
    return sum(eff.NCCL_BASE_LAT_S + p2p_batches(peers) * step for peers, step in phases)


def _bottleneck(cluster: ClusterPlan, flows: FlowSet, kind: str) -> tuple[float, np.ndarray]:
    load = np.bincount(flows.links, weights=flows.coeff * flows.size_bytes[flows.entry_flow],
                       minlength=cluster.num_links)
    return float((load / effective_capacity(cluster, kind)).max()), load


def all_to_all_v_time(cluster: ClusterPlan, groups: list[list[int]], traffic_bytes: np.ndarray, *,
                      algorithm: str = "direct", fidelity: str = "flow",
                      node_traffic_bytes: np.ndarray | None = None,
                      sm_bytes_per_s: float | None = None) -> CollectiveResult:
    """Time of an all-to-all-v run by every group at once; sizes per group-rank pair (bytes).

    algbw counts the bytes the busiest rank sends (its row sum, diagonal included, as
    nccl-tests counts ``size``). ``sm_bytes_per_s``: what the SMs a DeepEP kernel holds move
    per second (num_sms x moesim.network.deepep.sm_rates); the links' time is at least that
    row sum over it (the SM-bound regime of the measured DeepEP series).
    """
    if algorithm not in A2A_ALGORITHMS:
        raise SpecError(f"algorithm={algorithm!r} is not an all-to-all algorithm; valid: "
                        f"{', '.join(A2A_ALGORITHMS)}")
    check_groups(cluster, groups)
    t = _traffic(groups, traffic_bytes)
    dev = np.array(groups, dtype=np.int64)
    n = dev.shape[1]
    per_rank = float(t.sum(axis=2).max()) if t.size else 0.0
    if n == 1 or per_rank <= 0:
        return make_result("all_to_all", n, per_rank, 0.0, algorithm)
    if algorithm == "direct":
        phases, kind = [direct_flows(cluster, dev, t)], "p2p"
    elif algorithm == "hierarchical":
        phases, kind = hierarchical_phases(cluster, dev, t), "p2p"
    else:
        phases, kind = [deepep_flows(cluster, dev, t, node_traffic_bytes)], "deepep"
    total, load = 0.0, np.zeros(cluster.num_links)
    for fl in phases:
        if fidelity == "analytic":
            dt, lb = _bottleneck(cluster, fl, kind)
        else:
            res = solve_phase(cluster, fl, kind)
            dt, lb = res.time_s, res.link_bytes
        total += dt
        load += lb
    if algorithm == "deepep" and sm_bytes_per_s:
        total = max(total, per_rank / sm_bytes_per_s)
    total += _latency(cluster, groups[0], algorithm)
    return make_result("all_to_all", n, per_rank, total, algorithm,
                       link_bytes_by_name(cluster, load) if fidelity == "flow" else None)
