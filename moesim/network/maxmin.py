"""Fluid flow model: max-min fair sharing of link capacities, by progressive filling.

A flow set is a sparse flow-link incidence in CSR form: flow ``f`` uses links
``links[indptr[f]:indptr[f+1]]`` with coefficients ``coeff`` (the fraction of the flow's
rate that crosses that link: 1 on a single path, 1/k on each of k ECMP or torus paths).

Rates follow weighted max-min fairness: every active flow's normalized rate ``rate/weight``
rises together until a link saturates; the flows on saturated links freeze; the rest keep
rising (progressive filling). With unit weights this is plain max-min fairness. Rates are
recomputed whenever a flow starts or ends. Everything is numpy over the incidence; the
filling loop runs once per distinct bottleneck level, not once per flow.

Units: bytes, seconds, bytes/s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_LEVEL_TOL = 1e-9  # levels this close (relative) saturate together: float noise, not a model


@dataclass(frozen=True)
class FlowSet:
    """Flows over a link table; ``size_bytes``, ``start_s`` and ``weight`` have one entry a flow."""

    indptr: np.ndarray
    links: np.ndarray
    coeff: np.ndarray
    size_bytes: np.ndarray
    start_s: np.ndarray
    weight: np.ndarray

    @property
    def num_flows(self) -> int:
        return int(self.size_bytes.shape[0])

    @property
    def entry_flow(self) -> np.ndarray:
        """Flow index of every incidence entry."""
        return np.repeat(np.arange(self.num_flows), np.diff(self.indptr))


def make_flow_set(paths: list[list[int]] | list[np.ndarray], size_bytes: np.ndarray | list[float],
                  start_s: np.ndarray | list[float] | None = None,
                  weight: np.ndarray | list[float] | None = None,
                  coeffs: list[np.ndarray] | None = None) -> FlowSet:
    """Build a :class:`FlowSet` from one list of link ids per flow (coefficient 1 unless given)."""
    sizes = np.asarray(size_bytes, dtype=float)
    lens = np.array([len(p) for p in paths], dtype=np.int64)
    indptr = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    links = (np.concatenate([np.asarray(p, dtype=np.int64) for p in paths])
             if len(paths) and lens.sum() else np.zeros(0, dtype=np.int64))
    if coeffs is None:
        coeff = np.ones(links.shape[0])
    else:
        coeff = np.concatenate([np.asarray(c, dtype=float) for c in coeffs])
    start = np.zeros_like(sizes) if start_s is None else np.asarray(start_s, dtype=float)
    w = np.ones_like(sizes) if weight is None else np.asarray(weight, dtype=float)
    return FlowSet(indptr, links, coeff, sizes, start, w)


@dataclass(frozen=True)
class MaxMinResult:
    """Completion time of every flow (s), the rates of the first allocation (bytes/s), link bytes."""

    completion_s: np.ndarray
    first_rate_bytes_per_s: np.ndarray
    link_bytes: np.ndarray
    num_events: int

    @property
    def makespan_s(self) -> float:
        return float(self.completion_s.max()) if self.completion_s.size else 0.0


def max_min_rates(flows: FlowSet, capacity_bytes_per_s: np.ndarray,
                  active: np.ndarray | None = None) -> np.ndarray:
    """Weighted max-min fair rates (bytes/s) of the ``active`` flows; inactive flows get 0.

    A flow that crosses no link (source equals destination) gets ``inf``.
    """
    cap = np.asarray(capacity_bytes_per_s, dtype=float)
    nflow = flows.num_flows
    act = np.ones(nflow, dtype=bool) if active is None else np.asarray(active, dtype=bool)
    ent = flows.entry_flow
    rate = np.zeros(nflow)
    has_links = np.diff(flows.indptr) > 0
    rate[act & ~has_links] = np.inf
    unfrozen = act & has_links
    used = np.zeros(cap.shape[0])
    wc = flows.coeff * flows.weight[ent]
    while unfrozen.any():
        ue = unfrozen[ent]
        demand = np.bincount(flows.links, weights=wc * ue, minlength=cap.shape[0])
        on = demand > 0
        level = np.full(cap.shape[0], np.inf)
        level[on] = np.maximum(cap[on] - used[on], 0.0) / demand[on]
        t_star = level.min()
        saturated = level <= t_star * (1.0 + _LEVEL_TOL)
        hit = np.bincount(ent, weights=(saturated[flows.links] & ue).astype(float),
                          minlength=nflow) > 0
        newly = unfrozen & hit
        rate[newly] = flows.weight[newly] * t_star
        ne = newly[ent]
        used += np.bincount(flows.links, weights=flows.coeff * rate[ent] * ne,
                            minlength=cap.shape[0])
        unfrozen &= ~newly
    return rate


def solve_max_min(flows: FlowSet, capacity_bytes_per_s: np.ndarray, *, rel_tol: float = 1e-9,
                  max_events: int = 100_000, weighting: str = "fixed") -> MaxMinResult:
    """Completion times (s) of ``flows`` under max-min sharing, recomputed at every start/end.

    Flows whose finish, at the current rates, falls within ``rel_tol`` (relative) of the next
    event finish at that event: ``rel_tol`` bounds the relative timing error and the number of
    events. After ``max_events`` the remaining flows finish at their last rates.

    ``weighting="remaining"`` re-weights every flow by its remaining bytes at each event (a
    collective pacing its chunks). When all flows start together this finishes the last flow
    at exactly max over links of bytes / capacity: no schedule can do better, the first
    allocation's lowest level already meets it, and re-weighting by remaining bytes never
    lowers the lowest level. That case is solved in one pass over the incidence.
    """
    if weighting == "remaining" and np.all(flows.start_s == flows.start_s[:1]):
        return _single_allocation(flows, capacity_bytes_per_s)
    cap = np.asarray(capacity_bytes_per_s, dtype=float)
    nflow = flows.num_flows
    remaining = flows.size_bytes.astype(float).copy()
    done = np.zeros(nflow, dtype=bool)
    completion = np.full(nflow, np.nan)
    first_rate = np.zeros(nflow)
    started = np.zeros(nflow, dtype=bool)
    t, events = 0.0, 0
    starts = flows.start_s
    while not done.all():
        newly_started = ~started & (starts <= t * (1.0 + 1e-15) + 1e-300)
        started |= newly_started
        active = started & ~done
        zero = active & (remaining <= 0)
        completion[zero], done[zero] = t, True
        active &= ~zero
        if not active.any():
            t = float(starts[~started].min())
            continue
        if weighting == "remaining":
            flows = FlowSet(flows.indptr, flows.links, flows.coeff, flows.size_bytes,
                            flows.start_s, np.maximum(remaining, 0.0))
        rate = max_min_rates(flows, cap, active)
        first_rate[newly_started] = rate[newly_started]
        with np.errstate(divide="ignore", invalid="ignore"):
            to_finish = np.where(active, remaining / rate, np.inf)
        dt_end = float(to_finish.min())
        pending = ~started
        dt_arrive = float(starts[pending].min() - t) if pending.any() else np.inf
        events += 1
        if events >= max_events:
            fin = active
            completion[fin] = t + to_finish[fin]
            done |= fin
            continue
        dt = min(dt_end, dt_arrive)
        fin = active & (to_finish <= dt_end * (1.0 + rel_tol)) if dt_end <= dt_arrive else \
            np.zeros(nflow, dtype=bool)
        ra = rate[active]
        finite = np.isfinite(ra)
        step = remaining[active].copy()
        step[finite] = ra[finite] * dt
        remaining[active] -= step
        t += dt
        completion[fin], done[fin], remaining[fin] = t, True, 0.0
    link_bytes = np.bincount(flows.links, weights=flows.coeff * flows.size_bytes[flows.entry_flow],
                             minlength=cap.shape[0])
    return MaxMinResult(completion, first_rate, link_bytes, events)


def _single_allocation(flows: FlowSet, capacity_bytes_per_s: np.ndarray) -> MaxMinResult:
    """Remaining-weighted sharing, common start: the first progressive-filling level is
    min over links of capacity / bytes, so the makespan is max over links of bytes / capacity.
    Each flow is reported at the drain time of its most loaded link (its own bottleneck)."""
    cap = np.asarray(capacity_bytes_per_s, dtype=float)
    ent = flows.entry_flow
    link_bytes = np.bincount(flows.links, weights=flows.coeff * flows.size_bytes[ent],
                             minlength=cap.shape[0])
    drain = link_bytes / cap
    per_entry = drain[flows.links]
    dur = np.zeros(flows.num_flows)
    has = np.diff(flows.indptr) > 0
    if per_entry.size:
        dur[has] = np.maximum.reduceat(per_entry, flows.indptr[:-1][has])
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(dur > 0, flows.size_bytes / dur, np.inf)
    return MaxMinResult(flows.start_s + dur, rate, link_bytes, 1)
