"""Expert placement: which EP rank holds which routed experts, with optional replicas.

Default: contiguous blocks, expert ``e`` on rank ``e // (E / EP)`` (Megatron's layout).
With ``num_redundant`` extra slots, hot experts get replicas the way DeepSeek's EPLB balances
(EPLB README, MoE mechanics reference section 7): give each extra slot to the expert with the highest
load per replica, then pack the physical copies onto ranks heaviest first, each to the least
loaded rank that still has a free slot. A logical expert's tokens are split evenly over its
replicas (:func:`split_to_slots`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from moesim.errors import SpecError


@dataclass(frozen=True)
class ExpertPlacement:
    """Physical expert slots per EP rank. ``slot_expert[r, i]`` is a logical expert id."""

    num_experts: int
    ep: int
    slot_expert: np.ndarray  # [EP, slots_per_rank] int64
    slot_replica: np.ndarray  # [EP, slots_per_rank] replica index of that copy (0-based)
    num_replicas: np.ndarray  # [E] copies of each logical expert (>= 1)

    @property
    def slots_per_rank(self) -> int:
        return int(self.slot_expert.shape[1])

    @property
    def num_redundant(self) -> int:
        return int(self.slot_expert.size - self.num_experts)

    def experts_on_rank(self, rank: int) -> list[int]:
        """Logical experts rank ``rank`` holds a copy of."""
        return [int(x) for x in self.slot_expert[rank]]

    def ranks_of_expert(self, expert: int) -> list[int]:
        """EP ranks that hold a copy of logical expert ``expert``."""
        return [int(r) for r in np.flatnonzero((self.slot_expert == expert).any(axis=1))]

    @cached_property
    def merge(self) -> np.ndarray:
        """[EP, E]: share of logical expert e's copies that rank r serves (even over replicas)."""
        m = np.zeros((self.ep, self.num_experts))
        ranks = np.repeat(np.arange(self.ep), self.slots_per_rank)
        ex = self.slot_expert.ravel()
        np.add.at(m, (ranks, ex), 1.0 / self.num_replicas[ex])
        return m

    def rank_loads(self, loads: np.ndarray) -> np.ndarray:
        """Expected load per rank [EP] when expert e has load ``loads[e]`` split over replicas."""
        per_copy = loads[self.slot_expert] / self.num_replicas[self.slot_expert]
        return per_copy.sum(axis=1)


def place_experts(num_experts: int, ep: int, loads: np.ndarray | None = None,
                  num_redundant: int = 0) -> ExpertPlacement:
    """Place ``num_experts`` logical experts plus ``num_redundant`` replicas on ``ep`` ranks.

    ``loads``: expected tokens (or shares) per logical expert, used to pick and pack replicas;
    without it, or without redundancy, placement is contiguous. Slots must divide evenly.
    """
    slots = num_experts + num_redundant
    if ep < 1 or slots % ep:
        raise SpecError(f"parallelism.expert_parallel_degree={ep} must divide num_experts + "
                        f"num_redundant_experts = {slots}",
                        field="parallelism.expert_parallel_degree")
    if num_redundant > num_experts:
        raise SpecError(f"routing.num_redundant_experts={num_redundant} exceeds "
                        f"num_experts={num_experts}", field="routing.num_redundant_experts")
    per_rank = slots // ep
    if num_redundant == 0:
        slot_expert = np.arange(num_experts, dtype=np.int64).reshape(ep, per_rank)
        return ExpertPlacement(num_experts, ep, slot_expert, np.zeros_like(slot_expert),
                               np.ones(num_experts, dtype=np.int64))
    w = np.full(num_experts, 1.0) if loads is None else np.asarray(loads, dtype=np.float64)
    if w.shape != (num_experts,):
        raise SpecError(f"place_experts: loads must have {num_experts} entries, got {w.shape}")
    replicas = _replicate(w, num_redundant)
    return _pack(w, replicas, ep, per_rank)


def _replicate(loads: np.ndarray, extra: int) -> np.ndarray:
    """Greedy: each extra copy goes to the expert with the highest load per copy (ties: lowest id)."""
    replicas = np.ones(loads.size, dtype=np.int64)
    for _ in range(extra):
        per_copy = loads / replicas
        # A copy per rank at most matters little; the cap is that each expert has <= EP copies,
        # which greedy never reaches while extra <= num_experts.
        replicas[int(np.argmax(per_copy))] += 1
    return replicas


def _pack(loads: np.ndarray, replicas: np.ndarray, ep: int, per_rank: int) -> ExpertPlacement:
    """Heaviest copy first onto the least-loaded rank with a free slot and no copy of it yet."""
    experts = np.repeat(np.arange(loads.size), replicas)
    rep_idx = np.concatenate([np.arange(n) for n in replicas])
    per_copy = loads[experts] / replicas[experts]
    order = np.lexsort((experts, -per_copy))  # heaviest first, ties by expert id
    rank_load = np.zeros(ep)
    fill = np.zeros(ep, dtype=np.int64)
    slot_expert = np.full((ep, per_rank), -1, dtype=np.int64)
    slot_replica = np.zeros((ep, per_rank), dtype=np.int64)
    for c in order:
        ex = experts[c]
        ok = (fill < per_rank) & ~(slot_expert == ex).any(axis=1)
        if not ok.any():
            ok = fill < per_rank
        cand = np.flatnonzero(ok)
        r = int(cand[np.argmin(rank_load[cand])])
        slot_expert[r, fill[r]] = ex
        slot_replica[r, fill[r]] = rep_idx[c]
        fill[r] += 1
        rank_load[r] += per_copy[c]
    return ExpertPlacement(loads.size, ep, slot_expert, slot_replica, replicas)


def split_to_slots(counts: np.ndarray, placement: ExpertPlacement) -> np.ndarray:
    """Copies per (source, physical slot) [S, EP, slots] from copies per (source, expert) [S, E].

    Each source splits its copies for an expert as evenly as possible over the replicas; the
    remainder goes to replicas chosen by rotating with the source rank, so totals stay even.
    """
    s = counts.shape[0]
    ex = placement.slot_expert  # [EP, P]
    nrep = placement.num_replicas[ex]  # [EP, P]
    c = counts[:, ex]  # [S, EP, P]
    base, rem = np.divmod(c, nrep[None])
    src = np.arange(s)[:, None, None]
    extra = ((placement.slot_replica[None] - src) % nrep[None]) < rem
    return base + extra
