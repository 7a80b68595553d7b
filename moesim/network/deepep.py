"""DeepEP's kernels under DeepEP's own benchmarks: normal-mode traffic and reported bandwidth, and
the low-latency kernels' time (see ``deepep_low_latency``, below the normal-mode functions).

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
from moesim.errors import SpecError
from moesim.network import efficiency as eff
from moesim.network.alltoall import all_to_all_v_time
from moesim.specs.hardware import NVSwitchDomainSpec
from moesim.units import US


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


# --- the SMs' bound on the normal kernels ---------------------------------------------------
# DeepEP's normal kernels move every token copy with the SMs they are given (``num_sms``):
# the measured tables (calibration/aic-*.json, DeepEP normal series, hidden 7168, top-8 of
# 256 experts, 4 to 24 SMs) show the time falling as 1 / num_sms until a link saturates:
# one node of B200, 4 -> 24 SMs, 131072 tokens per rank: dispatch 71.9 -> 13.4 ms (16.0-17.8
# GB/s of token copies per SM); two H100 nodes, 4 -> 24 SMs: 115 -> 22 ms; four H100 nodes
# stop falling at 12 SMs (the NICs), eight at 4. So a kernel takes at least
# (bytes its busiest rank sends, itself included) / (num_sms x the rate per SM), the rate
# being the table's own: the median over the SM-bound series (one node for a group inside a
# scale-up domain, two nodes across domains) of bytes sent per rank / (time x SMs), both
# phases, from 4096 tokens per rank up (``sm_rates``).
SM_RATE_MIN_TOKENS = 4096
# Without a table, or a table without such series: the H100 SXM table's figures (aic-h100-sxm
# .json; ``sm_rates`` of that table gives them, tests/unit/network/test_deepep_sms.py). A table
# with a one-node series only takes its intra-domain rate times the H100 ratio inter / intra.
H100_SM_RATE_INTRA = 16.60e9      # bytes/s per SM: the 1-node series (20 SMs)
H100_SM_RATE_INTER = 10.34e9      # the 2-node series (4..24 SMs)


@dataclass(frozen=True)
class SmRates:
    """Bytes per second one SM moves in DeepEP's normal kernels, inside and across domains."""

    intra: float
    inter: float
    source: str   # "measured" (the table's series) or "default" (the H100 figures)


def _series_rate(series: list, nodes: int) -> float | None:
    """Median bytes/s per SM of the normal-mode series measured on ``nodes`` nodes."""
    rates = []
    for s in series:
        if s.kind != "normal" or s.num_nodes != nodes or not s.num_sms:
            continue
        for i, tokens in enumerate(s.num_tokens):
            if tokens < SM_RATE_MIN_TOKENS:
                continue
            for phase, times in (("dispatch", s.dispatch_us), ("combine", s.combine_us)):
                tr = deepep_traffic(8 * nodes, num_tokens=tokens, hidden=s.hidden_size,
                                    num_topk=s.top_k, num_experts=s.num_experts,
                                    token_bytes=token_bytes(s.hidden_size, phase))
                sent = float(tr.traffic_bytes.sum(axis=1).max())
                rates.append(sent / (float(times[i]) * US * s.num_sms))
    return float(np.median(rates)) if rates else None


def sm_rates(table: object | None) -> SmRates:
    """Per-SM rates of DeepEP's normal kernels from a calibration table's DeepEP series (its
    ``deepep_series``), or the H100 figures."""
    series = list(getattr(table, "deepep_series", ()) or ())
    intra, inter = _series_rate(series, 1), _series_rate(series, 2)
    if intra is None:
        return SmRates(H100_SM_RATE_INTRA, H100_SM_RATE_INTER, "default")
    if inter is None:
        inter = intra * H100_SM_RATE_INTER / H100_SM_RATE_INTRA
    return SmRates(intra, inter, "measured")


def token_bytes(hidden: int, phase: str, dtype: str | None = None) -> float:
    """Bytes of one token's hidden state: FP8 with a float32 scale per 128, or BF16.

    ``dtype`` None is DeepEP's benchmark setting: FP8 dispatch, BF16 combine.
    """
    d = dtype or ("fp8" if phase == "dispatch" else "bf16")
    return hidden * (1 + 4 / 128) if d == "fp8" else hidden * 2.0


def deepep_reported_bandwidth(cluster: ClusterPlan, num_ranks: int, *, phase: str = "dispatch",
                              fidelity: str = "flow", dtype: str | None = None,
                              **routing: int) -> float:
    """DeepEP's reported bandwidth (bytes/s) for dispatch (FP8) or combine (BF16).

    Combine moves the transpose of dispatch's traffic in BF16; by symmetry of the expected
    traffic its time is dispatch's at 2 / (1 + 4/128) times the bytes. ``dtype`` overrides
    the token dtype (``token_bytes``).
    """
    hidden = routing.get("hidden", 7168)
    tb = token_bytes(hidden, phase, dtype)
    tr = deepep_traffic(num_ranks, token_bytes=tb, **routing)
    groups = [list(range(num_ranks))]
    traffic = tr.traffic_bytes if phase == "dispatch" else tr.traffic_bytes.T
    nodes = tr.node_bytes if tr.internode else None
    res = all_to_all_v_time(cluster, groups, traffic, algorithm="deepep", fidelity=fidelity,
                            node_traffic_bytes=nodes)
    return tr.reported_bytes / res.time_s


# --- low-latency kernels ------------------------------------------------------------------------
# DeepEP V1's low-latency (decode) kernels, as deepseek-ai/DeepEP documents and tests them
# (docs/legacy.md "Low-latency kernels with pure RDMA"; tests/legacy/test_low_latency.py):
# - a token is sent once per selected expert, each (token, expert) pair its own message: the
#   receive buffer is laid out per local expert, so there is no per-node deduplication and no
#   NVLink forwarding (unlike the normal kernels above);
# - messages to other nodes go over the sender's own NIC by RDMA; since DeepEP PR 173 (June 2025,
#   "low-latency kernels now leverage NVLink as much as possible") peers in the same NVLink
#   domain are written over NVLink (``nvlink=False``: the pre-June kernels, every peer by RDMA);
# - the benchmark counts dispatch bytes as (hidden + hidden / 128 x 4 + 16) per selection (FP8
#   data, one float32 scale per 128, a 16-byte header) and combine bytes as hidden x 2 (BF16),
#   and reports that count over the kernel time as its "RDMA bandwidth".
# With top-k over experts spread evenly over P ranks, R of them in one NVLink domain, a rank's
# T x k messages split in expectation into 1/P to itself (no link), (R - 1)/P over NVLink and
# (P - R)/P over RDMA. Time = a fixed part (launch, count signalling, completion wait and, for
# combine, the weighted reduction) + the slower of the NVLink and RDMA legs, each at its line
# rate times DeepEP's efficiency (tier_efficiency("deepep"): NVLINK_P2P_EFF, and
# DEEPEP_RDMA_EFF fitted to the normal kernels' EP32/EP64 points, not to these).
# The two fixed parts are FITTED (``fit_low_latency_fixed``: weighted least squares of the
# relative error) to the EP8, EP32, EP64 and EP256 dispatch and combine latencies of the DeepEP
# table (deepep-v1-lowlatency-h800; 4 points per constant); EP16 and EP128 are held out.
# Leave-one-out over the 8 fitted points: mean |error| 2.4%, worst +5.1% (EP8 combine);
# docs/validation.md lists each.
LL_DISPATCH_FIXED_S = 25.95 * US
LL_COMBINE_FIXED_S = 19.60 * US
LL_HEADER_BYTES = 16          # per dispatch message (tests/legacy/test_low_latency.py)


@dataclass(frozen=True)
class LowLatencyTime:
    """One low-latency kernel: seconds, and the bytes of DeepEP's accounting (per rank)."""

    time_s: float
    reported_bytes: float     # selections x message bytes, as DeepEP's benchmark counts them
    nvlink_bytes: float
    rdma_bytes: float

    @property
    def reported_bandwidth(self) -> float:
        """DeepEP's "RDMA bandwidth" column: reported bytes over the kernel time (bytes/s)."""
        return self.reported_bytes / self.time_s


def low_latency_legs(num_ranks: int, *, phase: str, ranks_per_node: int, num_tokens: int = 128,
                     hidden: int = 7168, num_topk: int = 8, dtype: str | None = None,
                     nvlink: bool = True) -> tuple[float, float, float]:
    """(reported, NVLink, RDMA) bytes one rank sends in a low-latency dispatch or combine."""
    per_msg = token_bytes(hidden, phase, dtype) + (LL_HEADER_BYTES if phase == "dispatch" else 0)
    total = float(num_tokens * num_topk) * per_msg
    same = min(ranks_per_node, num_ranks)
    if nvlink:
        return total, total * (same - 1) / num_ranks, total * (num_ranks - same) / num_ranks
    return total, 0.0, total * (num_ranks - 1) / num_ranks


def low_latency_leg_times(cluster: ClusterPlan, nvl_bytes: float, rdma_bytes: float) -> float:
    """Seconds of the slower leg: NVLink and RDMA at their line rates times DeepEP's efficiency."""
    topo = cluster.topology
    nvl_eff, nic_eff = eff.tier_efficiency("deepep")[:2]
    scale_up = topo.tiers[0]
    if not isinstance(scale_up, NVSwitchDomainSpec):
        raise SpecError(f"DeepEP low-latency kernels run on NVSwitch domains; tiers.0.kind="
                        f"{scale_up.kind!r}", field="topology")
    t_nvl = nvl_bytes / (scale_up.device_bytes_per_s * nvl_eff) if nvl_bytes > 0 else 0.0
    t_rdma = 0.0
    if rdma_bytes > 0:
        ft = cluster.fat_tree
        if ft is None:
            raise SpecError("DeepEP low-latency RDMA legs need a fat_tree tier (NICs) in the "
                            "topology", field="topology")
        per_device_nic = ft.nic_bytes_per_s * ft.nics_per_domain / topo.devices_per_domain
        t_rdma = rdma_bytes / (per_device_nic * nic_eff)
    return max(t_nvl, t_rdma)


def deepep_low_latency(cluster: ClusterPlan, num_ranks: int, *, phase: str = "dispatch",
                       ranks_per_node: int = 8, num_tokens: int = 128, hidden: int = 7168,
                       num_topk: int = 8, dtype: str | None = None, nvlink: bool = True,
                       fixed_s: float | None = None) -> LowLatencyTime:
    """Time of DeepEP's low-latency dispatch or combine of ``num_tokens`` per rank at EP size.

    ``fixed_s`` None uses the fitted fixed part of the phase (LL_DISPATCH_FIXED_S or
    LL_COMBINE_FIXED_S). Units: bytes, seconds.
    """
    reported, nvl, rdma = low_latency_legs(num_ranks, phase=phase, ranks_per_node=ranks_per_node,
                                           num_tokens=num_tokens, hidden=hidden,
                                           num_topk=num_topk, dtype=dtype, nvlink=nvlink)
    if fixed_s is None:
        fixed_s = LL_DISPATCH_FIXED_S if phase == "dispatch" else LL_COMBINE_FIXED_S
    t = fixed_s + low_latency_leg_times(cluster, nvl, rdma)
    return LowLatencyTime(t, reported, nvl, rdma)


def fit_low_latency_fixed(variable_s: list[float], measured_s: list[float]) -> float:
    """The fixed part a minimizing sum(((a + v_i) - t_i) / t_i)^2: relative least squares.

    ``variable_s``: the leg time moesim predicts for each point (``low_latency_leg_times``);
    ``measured_s``: the published latency. Closed form: a = sum((t - v) / t^2) / sum(1 / t^2).
    """
    v = np.asarray(variable_s, dtype=float)
    t = np.asarray(measured_s, dtype=float)
    return float(((t - v) / t**2).sum() / (1.0 / t**2).sum())
