"""DeepEP normal-mode traffic under DeepEP's own benchmark routing, and its reported bandwidth.

DeepEP's internode test draws random expert scores, keeps the top ``num_topk_groups`` nodes
per token (node-limited routing, groups = nodes) and the top-k experts inside them; its
intranode test has no node limit. This module gives the expected traffic of that routing:
``traffic[i, j]`` (bytes rank i sends to rank j, diagonal = local) and ``node[i, b]`` (bytes
rank i sends to node b, one copy per token and node, own node included).

DeepEP reports (tests/test_internode.py, tests/test_intranode.py of deepseek-ai/DeepEP):
- internode "RDMA" bandwidth = tokens x (distinct nodes a token reaches, own node included)
  x bytes per token / time; this counts the local node's copy too, which is why it can
  exceed the NIC rate;
- intranode "NVL" bandwidth = bytes a rank receives (from every rank, itself included) / time.
FP8 dispatch carries hidden x (1 + 4/128) bytes per token (1 byte per element plus one
float32 scale per 128), BF16 combine hidden x 2 (DeepEP's ``fp8_factor``).
Units: bytes, seconds, bytes/s.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb

import numpy as np

from moesim.cluster.plan import ClusterPlan
from moesim.network.alltoall import all_to_all_v_time


@dataclass(frozen=True)
class DeepEPTraffic:
    traffic_bytes: np.ndarray
    node_bytes: np.ndarray
    reported_bytes: float   # per rank: RDMA logical bytes (internode) or NVL recv bytes
    internode: bool


def _miss(pool: int, owned: int, k: int) -> float:
    """P(none of k experts drawn without replacement from ``pool`` falls in ``owned``)."""
    return comb(pool - owned, k) / comb(pool, k)


def deepep_traffic(num_ranks: int, *, ranks_per_node: int = 8, num_tokens: int = 4096,
                   hidden: int = 7168, num_topk: int = 8, num_experts: int = 256,
                   num_topk_groups: int = 4, token_bytes: float | None = None) -> DeepEPTraffic:
    """Expected dispatch traffic of DeepEP's benchmark at ``num_ranks`` (FP8 by default)."""
    per_token = hidden * (1 + 4 / 128) if token_bytes is None else float(token_bytes)
    nodes = max(1, num_ranks // ranks_per_node)
    internode = nodes > 1
    chosen = min(num_topk_groups, nodes) if internode else 1
    per_node, per_rank = num_experts // nodes, num_experts // num_ranks
    pool = chosen * per_node if internode else num_experts
    p_node_chosen = chosen / nodes if internode else 1.0
    p_rank = p_node_chosen * (1 - _miss(pool, per_rank, num_topk))
    p_node = p_node_chosen * (1 - _miss(pool, per_node, num_topk)) if internode else 1.0
    traffic = np.full((num_ranks, num_ranks), num_tokens * p_rank * per_token)
    node = np.full((num_ranks, nodes), num_tokens * p_node * per_token)
    reported = float(node[0].sum()) if internode else float(traffic[:, 0].sum())
    return DeepEPTraffic(traffic, node, reported, internode)


def deepep_reported_bandwidth(cluster: ClusterPlan, num_ranks: int, *, phase: str = "dispatch",
                              fidelity: str = "flow", **routing: int) -> float:
    """DeepEP's reported bandwidth (bytes/s) for dispatch (FP8) or combine (BF16).

    Combine moves the transpose of dispatch's traffic in BF16; by symmetry of the expected
    traffic its time is dispatch's at 2 / (1 + 4/128) times the bytes.
    """
    hidden = routing.get("hidden", 7168)
    tb = hidden * (1 + 4 / 128) if phase == "dispatch" else hidden * 2.0
    tr = deepep_traffic(num_ranks, token_bytes=tb, **routing)
    groups = [list(range(num_ranks))]
    traffic = tr.traffic_bytes if phase == "dispatch" else tr.traffic_bytes.T
    nodes = tr.node_bytes if tr.internode else None
    res = all_to_all_v_time(cluster, groups, traffic, algorithm="deepep", fidelity=fidelity,
                            node_traffic_bytes=nodes)
    return tr.reported_bytes / res.time_s
