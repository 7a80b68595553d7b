"""One serving instance: its DP-attention ranks, their queues and KV caches, and the
continuous-batching scheduler that forms each iteration.

An instance runs iterations in lockstep over its ranks (every MoE layer is one EP group, so
a rank with less work waits for the busiest one, as SGLang's DP attention does). Before each
iteration every rank, independently:

1. admits waiting requests first come, first served while its KV cache holds their
   reservation (prompt plus output on a decoding role, the prompt on a prefill role: no
   request is preempted) and it runs fewer than ``max_batch_requests``;
2. decodes one token (1 + draft tokens with speculative decoding) for every running request
   whose prompt is in its cache;
3. fills the rest of its ``max_batch_tokens`` budget with prompt chunks, oldest request
   first, each at most ``chunked_prefill_tokens`` (Sarathi-Serve's and vLLM's chunked prefill
   with decode-first budgets).

The iteration is priced on the busiest rank (moesim.serving.pricing). Decode state lives in
numpy arrays over fixed slots (ranks x max_batch_requests), so an iteration costs a few array
operations however many requests decode; prompt chunks are few per rank and kept in lists.
With speculative decoding a step emits the expected number of tokens (accepted drafts plus
one), accumulated per request, so a request's TPOT is the step time over that expectation.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from moesim.program.serving import AttentionWork
from moesim.serving.pricing import IterationPrice, RankLoad, RolePricer
from moesim.specs.serving import RoleSpec

EPS = 1e-9


@dataclass
class IterationPlan:
    """What one iteration does: decode slots, prompt chunks (rank, request, tokens), and its
    price."""

    decode_slots: np.ndarray
    chunks: list[tuple[int, int, int]]
    load: RankLoad
    price: IterationPrice
    prefill_tokens: int
    decode_tokens: int


class RoleStats:
    """Per-role accumulators over every iteration of its instances."""

    def __init__(self) -> None:
        self.iterations = 0
        self.busy_s = 0.0
        self.first_start_s = np.inf
        self.last_end_s = 0.0
        self.prefill_tokens = 0
        self.decode_tokens = 0.0
        self.decode_seqs = 0
        self.by_kind_s: dict[str, float] = {}
        self.iteration_s: list[float] = []
        self.peak_kv_tokens = 0
        self.peak_running = 0

    def add(self, start: float, plan: IterationPlan, decode_tokens: float) -> None:
        t = plan.price.time_s
        self.iterations += 1
        self.busy_s += t
        self.first_start_s = min(self.first_start_s, start)
        self.last_end_s = max(self.last_end_s, start + t)
        self.prefill_tokens += plan.prefill_tokens
        self.decode_tokens += decode_tokens
        self.decode_seqs += int(plan.decode_slots.shape[0])
        for k, v in plan.price.by_kind_s.items():
            self.by_kind_s[k] = self.by_kind_s.get(k, 0.0) + v
        self.iteration_s.append(t)


class Instance:
    """The ranks, queues, KV caches and decode slots of one instance (module docstring).

    ``mode``: "aggregated" (prefill and decode), "prefill" (hands requests on after their
    first token) or "decode" (takes requests whose prompt is cached elsewhere)."""

    def __init__(self, role_name: str, index: int, role: RoleSpec, pricer: RolePricer,
                 kv_tokens: int, mode: str, requests_in: np.ndarray,
                 requests_out: np.ndarray, stats: RoleStats) -> None:
        self.role_name, self.index, self.role, self.pricer = role_name, index, role, pricer
        self.mode = mode
        self.ranks = role.attention_dp_degree
        self.batch = role.max_batch_requests
        self.kv_cap = kv_tokens
        self.inp, self.out = requests_in, requests_out
        self.stats = stats
        r, b = self.ranks, self.batch
        self.kv_used = np.zeros(r, dtype=np.int64)
        self.running = np.zeros(r, dtype=np.int64)
        self.waiting: list[deque[int]] = [deque() for _ in range(r)]
        self.prefilling: list[list[list[int]]] = [[] for _ in range(r)]  # [req, done, slot]
        self.queued_tokens = np.zeros(r, dtype=np.int64)
        self.slot_req = np.full(r * b, -1, dtype=np.int64)
        self.slot_active = np.zeros(r * b, dtype=bool)
        self.slot_ctx = np.zeros(r * b, dtype=np.float64)
        self.slot_left = np.zeros(r * b, dtype=np.float64)
        self.slot_rank = np.repeat(np.arange(r, dtype=np.int64), b)
        self.free_slots = [list(range((i + 1) * b - 1, i * b - 1, -1)) for i in range(r)]
        spec = role.speculative
        self.step_tokens = spec.tokens_per_step if spec is not None else 1.0
        self.queries = 1 + (spec.num_draft_tokens if spec is not None else 0)
        self.chunk_cap = role.chunked_prefill_tokens or role.max_batch_tokens
        self.busy = False
        self.wake: object | None = None
        # Callbacks set by the simulation.
        self.on_first_token: Callable[[int, float], None] = lambda req, t: None
        self.on_prefilled: Callable[[Instance, int, int, float], None] = lambda *a: None
        self.on_finished: Callable[[int, float], None] = lambda req, t: None
        self.on_admitted: Callable[[Instance, int, int, int], None] = lambda *a: None

    # --- load, for the router ------------------------------------------------------------------
    def outstanding(self, rank: int | None = None) -> float:
        """Tokens reserved plus tokens waiting (the router's join-shortest-queue measure)."""
        if rank is None:
            return float(self.kv_used.sum() + self.queued_tokens.sum())
        return float(self.kv_used[rank] + self.queued_tokens[rank])

    def least_loaded_rank(self) -> int:
        return int(np.argmin(self.kv_used + self.queued_tokens))

    def reservation(self, req: int) -> int:
        if self.mode == "prefill":
            return int(self.inp[req])
        return int(self.inp[req] + self.out[req])

    # --- entering ------------------------------------------------------------------------------
    def enqueue(self, req: int, rank: int) -> None:
        """``req`` waits on ``rank`` (a new prompt, or a prompt cached elsewhere for decode)."""
        self.waiting[rank].append(req)
        self.queued_tokens[rank] += self.reservation(req)
        self.admit(rank)

    def admit(self, rank: int) -> None:
        """Admit waiting requests of ``rank`` while its KV cache and batch allow."""
        q = self.waiting[rank]
        while q:
            req = q[0]
            need = self.reservation(req)
            if self.kv_used[rank] + need > self.kv_cap or self.running[rank] >= self.batch:
                break
            q.popleft()
            self.queued_tokens[rank] -= need
            self.kv_used[rank] += need
            self.running[rank] += 1
            slot = self.free_slots[rank].pop()
            self.slot_req[slot] = req
            if self.mode == "decode":
                self.on_admitted(self, req, rank, slot)  # the KV transfer starts now
            else:
                self.prefilling[rank].append([req, 0, slot])
        self.stats.peak_kv_tokens = max(self.stats.peak_kv_tokens, int(self.kv_used[rank]))
        self.stats.peak_running = max(self.stats.peak_running, int(self.running[rank]))
        self.poke()

    def activate(self, slot: int, context: int, left: float) -> None:
        """Slot ``slot`` decodes from now on: ``context`` tokens cached, ``left`` to generate."""
        self.slot_active[slot] = True
        self.slot_ctx[slot] = context
        self.slot_left[slot] = left
        self.poke()

    def poke(self) -> None:
        w = self.wake
        if w is not None and not w.triggered:  # type: ignore[attr-defined]
            w.succeed()  # type: ignore[attr-defined]

    # --- one iteration ---------------------------------------------------------------------
    def plan(self) -> IterationPlan | None:
        """The next iteration, or None when no rank has work."""
        active = np.flatnonzero(self.slot_active)
        r = self.ranks
        dec_count = np.bincount(self.slot_rank[active], minlength=r)
        dec_ctx = np.bincount(self.slot_rank[active], weights=self.slot_ctx[active], minlength=r)
        tokens = dec_count * self.queries
        budget = self.role.max_batch_tokens - tokens
        chunks: list[tuple[int, int, int]] = []
        per_rank_chunks: dict[int, list[tuple[int, int, int]]] = {}
        pf_tokens = np.zeros(r, dtype=np.int64)
        for rank in range(r):
            items = self.prefilling[rank]
            if not items:
                continue
            left = int(budget[rank])
            mine = []
            for item in items:
                if left <= 0:
                    break
                req, done, _ = item
                take = min(int(self.inp[req]) - done, left, self.chunk_cap)
                if take <= 0:
                    continue
                mine.append((req, take, done))
                chunks.append((rank, req, take))
                left -= take
                pf_tokens[rank] += take
            if mine:
                per_rank_chunks[rank] = mine
        total = tokens + pf_tokens
        if not total.any():
            return None
        busiest = int(np.lexsort((dec_ctx, total))[-1])
        mine = per_rank_chunks.get(busiest, [])
        n = int(dec_count[busiest])
        finishing = sum(1 for req, take, done in mine if done + take >= int(self.inp[req]))
        spec = self.role.speculative is not None and n > 0
        work = AttentionWork(
            decode_batch=n, decode_queries=self.queries,
            decode_context=int(round(dec_ctx[busiest] / n)) if n else 0,
            chunks=tuple((1, take, done + take) for _, take, done in mine))
        load = RankLoad(tokens=int(total[busiest]), attention=work,
                        logits_rows=n * self.queries + finishing,
                        draft_batch=n if spec else 0,
                        draft_context=work.decode_context if spec else 0)
        return IterationPlan(active, chunks, load, self.pricer.price(load),
                             int(pf_tokens.sum()), int(tokens.sum()))

    def complete(self, plan: IterationPlan, start: float, end: float) -> None:
        """Apply ``plan``'s progress at time ``end``."""
        slots = plan.decode_slots
        emitted = 0.0
        if slots.size:
            first = self.slot_left[slots] >= self.out[self.slot_req[slots]] - EPS
            for s in slots[first]:  # a prompt cached elsewhere: this is its first token
                self.on_first_token(int(self.slot_req[s]), end)
            step = np.minimum(self.step_tokens, self.slot_left[slots])
            emitted = float(step.sum())
            self.slot_left[slots] -= step
            self.slot_ctx[slots] += step
            done = slots[self.slot_left[slots] <= EPS]
            for s in done:
                self._release_slot(int(s), end)
        self.stats.add(start, plan, emitted)
        for rank, req, take in plan.chunks:
            items = self.prefilling[rank]
            for i, item in enumerate(items):
                if item[0] == req:
                    item[1] += take
                    if item[1] >= int(self.inp[req]):
                        items.pop(i)
                        self._prefilled(rank, req, item[2], end)
                    break
        for rank in range(self.ranks):
            if self.waiting[rank]:
                self.admit(rank)

    def _prefilled(self, rank: int, req: int, slot: int, t: float) -> None:
        self.on_first_token(req, t)
        left = float(self.out[req]) - 1.0
        if self.mode == "aggregated" and left > 0:
            self.activate(slot, int(self.inp[req]) + 1, left)
            return
        if self.mode == "aggregated":
            self._release_slot(slot, t)
            return
        self.on_prefilled(self, rank, slot, t)  # the prefill role hands it on

    def release(self, slot: int, t: float, *, finished: bool) -> None:
        """Free ``slot`` and its KV reservation (after a KV transfer, or at the end)."""
        req = int(self.slot_req[slot])
        rank = int(self.slot_rank[slot])
        self.kv_used[rank] -= self.reservation(req)
        self.running[rank] -= 1
        self.slot_req[slot] = -1
        self.slot_active[slot] = False
        self.free_slots[rank].append(slot)
        if finished:
            self.on_finished(req, t)
        if self.waiting[rank]:
            self.admit(rank)

    def _release_slot(self, slot: int, t: float) -> None:
        self.release(slot, t, finished=True)
