"""Rank placement and process groups (Megatron order).

Attention side, innermost first: TP, CP, DP, PP. MoE side (Megatron parallel folding, per
pipeline stage): ETP, EP, EDP. Under the default placement rank ``r`` runs on device ``r``,
so TP groups sit inside one NVLink domain and DP/EP groups stride across domains.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from moesim.constants import PLACEMENTS  # defined there so the CLI needs no numpy for it
from moesim.errors import InfeasibleError, SpecError
from moesim.specs.parallelism import ParallelismSpec


@dataclass(frozen=True)
class ProcessGroups:
    """Every process group of a layout, as lists of global ranks."""

    tp: list[list[int]]
    cp: list[list[int]]
    ep: list[list[int]]
    etp: list[list[int]]
    dp: list[list[int]]
    edp: list[list[int]]
    pp: list[list[int]]


def _groups(grid: np.ndarray, axis: int) -> list[list[int]]:
    """Groups that vary along ``axis`` of a rank grid, in row-major order of the others."""
    moved = np.moveaxis(grid, axis, -1)
    return [list(map(int, row)) for row in moved.reshape(-1, grid.shape[axis])]


def process_groups(parallelism: ParallelismSpec, num_devices: int) -> ProcessGroups:
    """Groups of ``parallelism`` on ``num_devices`` ranks (rank r on device r by default)."""
    p = parallelism
    tp, cp, pp = p.tensor_parallel_degree, p.context_parallel_degree, p.pipeline_parallel_degree
    if num_devices % (tp * cp * pp):
        raise SpecError(f"TP x CP x PP = {tp * cp * pp} must divide num_devices={num_devices}",
                        field="parallelism")
    dp = num_devices // (tp * cp * pp)
    per_stage = num_devices // pp
    etp, ep = p.expert_tensor_parallel_degree, p.expert_parallel_degree
    if per_stage % (etp * ep):
        raise SpecError(f"ETP x EP = {etp * ep} must divide the {per_stage} ranks of a pipeline "
                        "stage", field="parallelism.expert_parallel_degree")
    edp = per_stage // (etp * ep)
    # grid[pp, dp, cp, tp] = rank (TP fastest)
    attn = np.arange(num_devices).reshape(pp, dp, cp, tp)
    moe = np.arange(num_devices).reshape(pp, edp, ep, etp)
    return ProcessGroups(
        tp=_groups(attn, 3), cp=_groups(attn, 2), dp=_groups(attn, 1), pp=_groups(attn, 0),
        etp=_groups(moe, 3), ep=_groups(moe, 2), edp=_groups(moe, 1))


def place_ranks(num_ranks: int, devices_per_domain: int, num_devices: int,
                placement: str = "packed") -> list[int]:
    """Device of each rank: ``packed`` (rank r on device r) or ``spread`` (round-robin domains)."""
    if placement not in PLACEMENTS:
        raise SpecError(f"placement={placement!r} is not known; valid: {', '.join(PLACEMENTS)}")
    if num_ranks > num_devices:
        raise InfeasibleError(f"{num_ranks} ranks do not fit on {num_devices} devices",
                              reason="cluster_too_small")
    if placement == "packed":
        return list(range(num_ranks))
    domains = -(-num_devices // devices_per_domain)
    used = min(domains, num_ranks)
    return [(r % used) * devices_per_domain + r // used for r in range(num_ranks)]
