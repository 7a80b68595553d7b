"""Collective and point-to-point times on a ClusterPlan: flow model or closed form.

``collective_time`` runs every group of a collective at once (they contend on shared links)
and returns the slowest group's time with nccl-tests algorithm and bus bandwidths:
busbw = algbw x 2(n-1)/n for all-reduce and (n-1)/n for all-gather, reduce-scatter and
all-to-all (NCCL-tests-perf). Results are memoized on (cluster, op, groups, size, ...).
Units: bytes, seconds, bytes/s.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from moesim.cluster.plan import ClusterPlan
from moesim.constants import OPS  # defined there so the CLI needs no numpy for it
from moesim.errors import InfeasibleError, SpecError
from moesim.network import efficiency as eff
from moesim.network.flows import (
    concat_flows,
    flows_from_pairs,
    flows_from_paths,
    link_bytes_by_name,
    solve_phase,
)
from moesim.network.rings import BUILDERS, Phase, by_domain

FIDELITIES = ("flow", "analytic")
ALGORITHMS = {
    "all_reduce": ("ring", "nvls", "tree", "hierarchical", "torus_ring"),
    "all_gather": ("ring", "hierarchical", "torus_ring"),
    "reduce_scatter": ("ring", "hierarchical", "torus_ring"),
    "all_to_all": ("direct", "hierarchical", "deepep"),
    "send": ("p2p",),
}


@dataclass(frozen=True)
class CollectiveResult:
    """Time (s), nccl-tests algbw and busbw (bytes/s), the algorithm, and bytes per link."""

    time_s: float
    algbw_bytes_per_s: float
    busbw_bytes_per_s: float
    algorithm: str
    link_bytes: dict[str, float] | None = field(default=None, compare=False, repr=False)


def bus_factor(op: str, n: int) -> float:
    """nccl-tests busbw / algbw for ``op`` on ``n`` ranks."""
    if op == "all_reduce":
        return 2.0 * (n - 1) / n
    if op in ("all_gather", "reduce_scatter", "all_to_all"):
        return (n - 1) / n
    return 1.0


def make_result(op: str, n: int, size: float, time_s: float, algorithm: str,
                link_bytes: dict[str, float] | None = None) -> CollectiveResult:
    algbw = size / time_s if time_s > 0 else float("inf")
    return CollectiveResult(time_s, algbw, algbw * bus_factor(op, n), algorithm, link_bytes)


def check_groups(cluster: ClusterPlan, groups: list[list[int]]) -> None:
    if not groups or not groups[0]:
        raise SpecError("groups must hold at least one non-empty group of ranks")
    n = len(groups[0])
    for g in groups:
        if len(g) != n:
            raise SpecError(f"all groups of one collective must have the same size; got {n} "
                            f"and {len(g)}")
        for r in g:
            if not 0 <= int(r) < cluster.num_devices:
                raise InfeasibleError(f"rank {r} is outside the cluster of {cluster.num_devices}"
                                      " devices", reason="cluster_too_small")


def applicable(cluster: ClusterPlan, op: str, group: list[int]) -> list[str]:
    """Algorithms that can run ``op`` on ``group`` here."""
    doms = by_domain(cluster, group)
    uniform = len({len(d) for d in doms}) == 1
    if cluster.torus is not None and len(doms) == 1:
        return ["torus_ring"] if op != "all_to_all" else ["direct"]
    out = ["ring"]
    if op == "all_reduce":
        tier = cluster.topology.tiers[0]
        if len(doms) == 1 and getattr(tier, "in_switch_reduction", False):
            out.append("nvls")
        if len(doms) > 1 and uniform:
            out.append("tree")
    if len(doms) > 1 and uniform and len(doms[0]) > 1:
        out.append("hierarchical")
    return out


def pick_algorithm(cluster: ClusterPlan, op: str, group: list[int], size: float) -> str:
    """What NCCL would pick: the fastest by its cost model; NVLS only at >= 6 GPUs."""
    choices = applicable(cluster, op, group)
    if "nvls" in choices and len(group) < eff.NVLS_MIN_GPUS:
        choices.remove("nvls")
    if len(choices) == 1:
        return choices[0]
    from moesim.network.analytic import analytic_time

    return min(choices, key=lambda a: analytic_time(cluster, op, [group], size, a))


def run_phases(cluster: ClusterPlan, phases: list[Phase]) -> tuple[float, np.ndarray]:
    """Sum of phase makespans (s) and total bytes per link."""
    total, load = 0.0, np.zeros(cluster.num_links)
    for src, dst, size, protocol in phases:
        if protocol == "nvls":
            o = cluster.offsets
            paths = [(np.array([o["nvl_up"] + d, o["nvl_down"] + d]), np.ones(2)) for d in src]
            flows = flows_from_paths(paths, size)
        else:
            flows = flows_from_pairs(cluster, src, dst, size)
        res = solve_phase(cluster, concat_flows([flows]), protocol)
        total += res.time_s
        load += res.link_bytes
    return total, load


def collective_time(cluster: ClusterPlan, op: str, groups: list[list[int]], size_bytes: float, *,
                    algorithm: str | None = None, fidelity: str = "flow") -> CollectiveResult:
    """Time of ``op`` over every group at once; ``size_bytes`` per rank as nccl-tests counts it."""
    if op not in OPS:
        raise SpecError(f"op={op!r} is not known; valid: {', '.join(OPS)}")
    if fidelity not in FIDELITIES:
        raise SpecError(f"fidelity={fidelity!r} is not known; valid: {', '.join(FIDELITIES)}")
    check_groups(cluster, groups)
    gl = [[int(r) for r in g] for g in groups]
    size = float(size_bytes)
    n = len(gl[0])
    if op == "send":
        times = [send_time(cluster, g[0], g[-1], size) for g in gl]
        return make_result(op, 2, size, max(times), "p2p")
    if op == "all_to_all":
        from moesim.network.alltoall import all_to_all_v_time

        traffic = np.full((n, n), size / n)
        res = all_to_all_v_time(cluster, gl, traffic, algorithm=algorithm or "direct",
                                fidelity=fidelity)
        return make_result(op, n, size, res.time_s, res.algorithm, res.link_bytes)
    if n == 1 or size <= 0:
        return make_result(op, n, size, 0.0, algorithm or "none")
    algo = algorithm or pick_algorithm(cluster, op, gl[0], size)
    valid = applicable(cluster, op, gl[0])
    if algo not in valid:
        raise InfeasibleError(f"algorithm={algo!r} cannot run {op} on this group of {n} ranks; "
                              f"valid here: {', '.join(valid)}", reason="algorithm")
    if fidelity == "analytic":
        from moesim.network.analytic import analytic_time

        return make_result(op, n, size, analytic_time(cluster, op, gl, size, algo), algo)
    phases, latency = BUILDERS[algo](cluster, op, gl, size)
    t, load = run_phases(cluster, phases)
    return make_result(op, n, size, t + latency, algo, link_bytes_by_name(cluster, load))


def send_time(cluster: ClusterPlan, src: int, dst: int, size_bytes: float) -> float:
    """Seconds to send ``size_bytes`` from device ``src`` to ``dst`` alone (pipeline p2p):
    path latency plus bytes over the narrowest link at NVLink/NIC p2p efficiency."""
    check_groups(cluster, [[src, dst]])
    if src == dst or size_bytes <= 0:
        return 0.0
    from moesim.network.flows import effective_capacity

    links, coeff = cluster.path(src, dst)
    cap = effective_capacity(cluster, "p2p")[links] / coeff
    return cluster.path_latency_s(src, dst) + float(size_bytes) / float(cap.min())
