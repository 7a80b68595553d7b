"""DualPipe (DeepSeek-V3 section 3.2.1) as a documented approximation, shared by both fidelities.

Rank ``s`` holds chunk ``s`` and its mirror ``PP - 1 - s``; the m micro-batches alternate
between them. In the steady state each forward chunk is paired with a backward chunk and the
pair's all-to-alls hide under the other chunk's compute, so a pair takes the larger of its
compute and its communication. Communication kernels occupy SMs while they run (DeepEP on
``num_sms`` of the accelerator's SMs; DeepSeek-V3 section 3.2.2: 20 of 132 H800 SMs), so
compute overlapped with them advances at (1 - f), f = comm SMs / SMs: a pair of compute W
and communication C takes W + f C when W >= (1 - f) C, else max(C, W / (1 - f)).
The warm-up and cool-down bubble is the closed form (PP/2 - 1)(F&B + B - 3W) of DeepSeek-V3
Table 2, from the simulated chunk times. Both fidelities run exactly this arithmetic; the
DES adds the gradient buckets and the optimizer as events.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from moesim.engine.timeline import ChunkPlan, Ledger, PhasePlan, add_summary
from moesim.program.builder import StepProgram


@dataclass(frozen=True)
class DualPipeTerms:
    """Per-micro-batch pair times [m] and the mean F&B, B (input + weight) and W (seconds)."""

    pairs: np.ndarray
    f_and_b: float
    b: float
    w: float
    compute: np.ndarray  # [m] compute-stream work of each pair at full speed
    comm: np.ndarray  # [m] communication of each pair

    def total(self, pp: int) -> float:
        """Steady pairs plus the bubble (seconds)."""
        return float(self.pairs.sum()) + dualpipe_bubble(pp, self.f_and_b, self.b, self.w)


def comm_sm_fraction(program: StepProgram, sms: int | None) -> float:
    """Fraction of the SMs overlapped all-to-all kernels take (0 without a DeepEP SM budget)."""
    a2a = program.context.parallelism.all_to_all
    n = getattr(a2a, "num_sms", None)
    if not sms or not n or not program.moe_layers:
        return 0.0
    return min(0.9, n / sms)


def _split(plan: PhasePlan) -> tuple[np.ndarray, np.ndarray]:
    """(compute-stream work, communication) of a phase per micro-batch (seconds)."""
    sm = plan.summary
    comm = np.zeros_like(sm.total)
    for v in sm.exposed.values():
        comm = comm + v
    return sm.total - comm, comm


def overlapped_pair(work: np.ndarray, comm: np.ndarray, f: float) -> np.ndarray:
    """Duration of compute ``work`` overlapped with ``comm`` that holds a fraction f of SMs."""
    if f <= 0:
        return np.maximum(work, comm)
    slow = np.maximum(comm, work / (1.0 - f))
    return np.where(work >= (1.0 - f) * comm, work + f * comm, slow)


def dualpipe_terms(plans: dict[tuple[int, int], ChunkPlan], s: int, pp: int, m: int,
                   f: float = 0.0) -> DualPipeTerms:
    """The pair times of rank ``s`` and its mean chunk times (see module docstring)."""
    chunks = [s, pp - 1 - s]
    work, comm = np.zeros(m), np.zeros(m)
    b_t, w_t = np.zeros(m), np.zeros(m)
    for j, c in enumerate(chunks):
        p = plans[(s, c)]
        idx = np.arange(j, m, 2)
        for ph in (p.forward, p.backward_input, p.backward_weight):
            if ph.steps:
                a, b = _split(ph)
                work[idx] += a[idx]
                comm[idx] += b[idx]
        if p.backward_input.steps:
            b_t[idx] = p.backward_input.summary.total[idx]
        if p.backward_weight.steps:
            w_t[idx] = p.backward_weight.summary.total[idx]
    pairs = overlapped_pair(work, comm, f)
    w = float(w_t.mean()) if m else 0.0
    b = float(b_t.mean()) + w  # DeepSeek's "B" is the full backward (input + weight)
    return DualPipeTerms(pairs, float(pairs.mean()) if m else 0.0, b, w, work, comm)


def dualpipe_bubble(pp: int, f_and_b: float, b: float, w: float) -> float:
    """DualPipe bubble (PP/2 - 1)(F&B + B - 3W), DeepSeek-V3 Table 2 (seconds)."""
    return max(0.0, (pp / 2 - 1) * (f_and_b + b - 3 * w))


def dualpipe_ledger(plans: dict[tuple[int, int], ChunkPlan], s: int, pp: int,
                    terms: DualPipeTerms, ledger: Ledger) -> None:
    """Fold rank ``s``'s pairs into ``ledger``: compute by kind, the exposed remainder by kind.

    Communication beyond the pairs' compute is exposed, shared over the kinds by their
    share of the communication; SM-contention slowdown counts as exposed communication too.
    """
    scratch = Ledger(ledger.rank_class)
    for j, c in enumerate((s, pp - 1 - s)):
        p = plans[(s, c)]
        for ph in (p.forward, p.backward_input, p.backward_weight):
            add_summary(ph, scratch, slice(j, None, 2))
    for k, v in scratch.compute.items():
        ledger.compute[k] += v
    ledger.imbalance += scratch.imbalance
    comm = sum(scratch.exposed.values())
    exposed = max(0.0, float(terms.pairs.sum() - terms.compute.sum()))
    for k, v in scratch.exposed.items():
        ledger.exposed[k] += exposed * v / comm if comm > 0 else 0.0
    if comm <= 0 and exposed > 0:
        ledger.exposed["sm_contention"] += exposed
    ledger.ops += scratch.ops
