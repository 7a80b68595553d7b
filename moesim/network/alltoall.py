"""All-to-all(-v) on a ClusterPlan: direct, hierarchical (Tutel 2DH) and DeepEP style.

``traffic_bytes[i, j]`` is what group-rank i sends to group-rank j (the diagonal stays local).

- direct: every pair at once (NCCL p2p all-to-all). A cross-rail pair on a rail-optimized
  fat tree is two pipelined legs, NVLink to the same-rail GPU then that rail's NIC (PXN).
  All pairs start together and share links by remaining bytes, so the phase ends at the
  busiest link's drain time (flows.phase_from_loads): on NVSwitch domains and fat trees the
  link loads are summed straight from the matrix, one row block at a time
  (moesim.network.direct); on tori and DCN every pair is a flow over its route.
- hierarchical: phase 1 intra-domain all-to-all to the member on the destination's position,
  phase 2 inter-domain all-to-all among same-position members (Tutel-2DH).
- deepep: one IB copy per destination domain to the same-rail peer (``node_traffic_bytes``,
  deduplicated per token by the caller; the sum over the domain's ranks by default), fanned
  out over NVLink by that peer, both legs pipelined in one phase (DSV3, DeepEP).

The analytic fidelity is the closed-form bottleneck of the same legs: per-link bytes over
effective capacity, maximized over links. Units: bytes, seconds, bytes/s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from moesim.cluster.plan import ClusterPlan
from moesim.errors import InfeasibleError, SpecError
from moesim.network import efficiency as eff
from moesim.network.collectives import CollectiveResult, check_groups, make_result
from moesim.network.direct import DirectLoads, block_rows, supports_direct_loads
from moesim.network.flows import (
    effective_capacity,
    flows_from_pairs,
    link_bytes_by_name,
    phase_from_loads,
    solve_phase,
)
from moesim.network.maxmin import FlowSet
from moesim.network.rings import by_domain

A2A_ALGORITHMS = ("direct", "hierarchical", "deepep")

# A traffic matrix, or its rows: ``rows(start, stop)`` or an iterator of row blocks.
TrafficSource = np.ndarray | Callable[[int, int], np.ndarray] | Iterator[np.ndarray]


def _traffic(groups: list[list[int]], traffic: np.ndarray) -> np.ndarray:
    t = np.asarray(traffic, dtype=float)
    n = len(groups[0])
    if t.ndim == 2 and t.shape == (n, n):
        t = np.broadcast_to(t, (len(groups), n, n))
    _check_shape(t.shape, len(groups), n)
    if (t < 0).any():
        raise SpecError("traffic_bytes must be >= 0")
    return t


def _check_shape(shape: tuple[int, ...], g: int, n: int) -> None:
    if shape != (n, n) and shape != (g, n, n):
        raise SpecError(f"traffic_bytes has shape {shape}; expected ({n}, {n}) or "
                        f"({g}, {n}, {n})")


def _streamed(traffic: Any) -> bool:
    return callable(traffic) or isinstance(traffic, Iterator)


def row_blocks(traffic: TrafficSource, num_groups: int, n: int) -> Iterator[np.ndarray]:
    """The rows of ``traffic`` in order, as blocks of shape (R, n) (one matrix for every group)
    or (num_groups, R, n); a dense matrix is cut into views, never copied."""
    step = block_rows(n)
    if callable(traffic):
        src: Iterable[Any] = (traffic(s, min(n, s + step)) for s in range(0, n, step))
    elif isinstance(traffic, Iterator):
        src = traffic
    else:
        t = np.asarray(traffic)
        _check_shape(t.shape, num_groups, n)
        src = (t[..., s:s + step, :] for s in range(0, n, step))
    done = 0
    for item in src:
        blk = np.asarray(item)
        if not ((blk.ndim == 2 and blk.shape[1] == n)
                or (blk.ndim == 3 and blk.shape[0] == num_groups and blk.shape[2] == n)):
            raise SpecError(f"a row block of traffic_bytes has shape {blk.shape}; expected "
                            f"(rows, {n}) or ({num_groups}, rows, {n})")
        done += blk.shape[-2]
        if done > n:
            raise SpecError(f"the row blocks of traffic_bytes hold more than {n} rows")
        yield blk
    if done != n:
        raise SpecError(f"the row blocks of traffic_bytes hold {done} rows; expected {n}")


def _dense(traffic: TrafficSource, num_groups: int, n: int) -> Any:
    """The whole matrix of a streamed ``traffic`` (the algorithms that need it at once)."""
    if not _streamed(traffic):
        return traffic
    blocks = list(row_blocks(traffic, num_groups, n))
    if all(b.ndim == 2 for b in blocks):
        return np.concatenate(blocks, axis=0)
    return np.concatenate([np.broadcast_to(b, (num_groups,) + b.shape[-2:]) for b in blocks],
                          axis=1)


def _pairs(cluster: ClusterPlan, dev: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, ...]:
    src = np.broadcast_to(dev[:, :, None], t.shape).ravel()
    dst = np.broadcast_to(dev[:, None, :], t.shape).ravel()
    b = t.ravel()
    keep = (b > 0) & (src != dst)
    return src[keep], dst[keep], b[keep]


def direct_flows(cluster: ClusterPlan, dev: np.ndarray, t: np.ndarray) -> FlowSet:
    """One flow per device pair of a direct all-to-all-v among ``dev`` (g x n) over its route:
    the general form, for clusters whose loads ``DirectLoads`` does not sum (tori, DCN)."""
    return flows_from_pairs(cluster, *_pairs(cluster, dev, t))


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


def all_to_all_v_time(cluster: ClusterPlan, groups: list[list[int]],
                      traffic_bytes: TrafficSource, *, algorithm: str = "direct",
                      fidelity: str = "flow", node_traffic_bytes: np.ndarray | None = None,
                      sm_bytes_per_s: float | None = None) -> CollectiveResult:
    """Time of an all-to-all-v run by every group at once; sizes per group-rank pair (bytes).

    ``traffic_bytes``: the (n, n) matrix of every group or a (groups, n, n) stack, of any real
    dtype (float32 is read as it is, summed in float64); or, for a matrix too large to hold,
    its rows in order: a callable ``rows(start, stop)`` returning rows ``start:stop`` as a
    (stop - start, n) or (groups, stop - start, n) array (called once per row block, blocks in
    order), or an iterator of such row blocks of any heights adding up to n (a list of blocks:
    pass ``iter(blocks)``). A direct all-to-all on NVSwitch domains, alone or on a fat tree,
    reads the matrix one row block at a time with memory independent of its size
    (moesim.network.direct); the other algorithms and topologies assemble it first.

    algbw counts the bytes the busiest rank sends (its row sum, diagonal included, as
    nccl-tests counts ``size``). ``sm_bytes_per_s``: what the SMs a DeepEP kernel holds move
    per second (num_sms x moesim.network.deepep.sm_rates); the links' time is at least that
    row sum over it (the SM-bound regime of the measured DeepEP series).
    """
    if algorithm not in A2A_ALGORITHMS:
        raise SpecError(f"algorithm={algorithm!r} is not an all-to-all algorithm; valid: "
                        f"{', '.join(A2A_ALGORITHMS)}")
    check_groups(cluster, groups)
    dev = np.array(groups, dtype=np.int64)
    n = dev.shape[1]
    if algorithm == "direct" and n > 1 and supports_direct_loads(cluster):
        acc = DirectLoads(cluster, dev)
        for block in row_blocks(traffic_bytes, len(groups), n):
            acc.add_rows(block)
        per_rank = acc.max_row_sum
        if per_rank <= 0:
            return make_result("all_to_all", n, per_rank, 0.0, algorithm)
        # Flows that start together under remaining-bytes sharing: the phase ends at the
        # busiest link's drain time (flows.phase_from_loads), the flow and analytic times alike.
        res = phase_from_loads(cluster, acc.link_bytes(), "p2p")
        total, load = res.time_s, res.link_bytes
    else:
        t = _traffic(groups, _dense(traffic_bytes, len(groups), n))
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
