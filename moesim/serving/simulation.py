"""The request-level discrete-event simulation of one serving scenario, on simpy.

Events are requests and iterations, never tokens: a request arrives (the arrival process),
is routed to an instance and a DP-attention rank (join the shortest queue: the fewest tokens
reserved and waiting), waits for admission, is prefilled in chunks by the instance's
iterations, and decodes one step per iteration until its output is complete. Each instance is
one simpy process that plans an iteration (moesim.serving.instance), holds the simulated
clock for its price (moesim.serving.pricing) and applies its progress; an idle instance
sleeps until a request reaches it.

Prefill/decode disaggregation: when a prompt is prefilled, the request is routed to a decode
rank (the fewest tokens reserved and waiting); once that rank has reserved its KV cache, the
prompt's KV cache moves from the prefill device to the decode device over the fabric
(moesim.network.send_time on the cluster's links: NVLink inside a node, NICs and switches
across), each device's NIC carrying one transfer at a time (first come, first served), and
the prefill rank frees its cache when the transfer ends. With attention TP, each device of
the TP group sends its share at once (MLA: one copy of the latent, which every TP rank holds).

``workload.isolate`` runs one phase with the other unlimited, as published serving
benchmarks do: ``prefill`` ends requests at their first token; ``decode`` starts them in a
decode rank's queue with their prompt cached (no prefill, no transfer).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import simpy

from moesim.cluster import build_cluster
from moesim.errors import InfeasibleError
from moesim.memory.serving import ServingMemory, kv_bytes_per_token, role_memory
from moesim.network import send_time
from moesim.results.serving import (
    MAX_REQUEST_ROWS,
    MAX_TIMELINE,
    IterationRecord,
    RequestTable,
    RoleResult,
    ServingMemoryResult,
    ServingResult,
    goodput,
    mean_in_system,
    summarize,
)
from moesim.serving.instance import Instance, IterationPlan, RoleStats
from moesim.serving.pricing import RolePricer
from moesim.serving.requests import RequestSet, generate_requests
from moesim.specs.scenario import ScenarioSpec
from moesim.specs.serving import (
    AggregatedDeploymentSpec,
    RoleSpec,
    ServingWorkloadSpec,
)


@dataclass
class _Role:
    name: str
    spec: RoleSpec
    memory: ServingMemory
    pricer: RolePricer
    stats: RoleStats
    instances: list[Instance]
    first_device: int


class ServingSimulation:
    """One serving run: ``ServingSimulation(scenario).run()`` returns a ServingResult."""

    def __init__(self, scenario: ScenarioSpec) -> None:
        wl = scenario.workload
        assert isinstance(wl, ServingWorkloadSpec) and scenario.deployment is not None
        self.scenario, self.workload, self.deployment = scenario, wl, scenario.deployment
        self.requests: RequestSet = generate_requests(wl, scenario.seed)
        n = len(self.requests)
        self.first_token = np.full(n, np.nan)
        self.finish = np.full(n, np.nan)
        self.env = simpy.Environment()
        self.timeline: list[IterationRecord] = []
        self.roles: dict[str, _Role] = {}
        self.aggregated = isinstance(self.deployment, AggregatedDeploymentSpec)
        device = 0
        for name, spec in self.deployment.roles.items():
            if not self._serves(name):
                continue
            self.roles[name] = self._build_role(name, spec, device)
            device += spec.num_devices
        self._check_fits()
        self._held: dict[int, tuple[Instance, int]] = {}  # request -> prefill slot held
        self._nics: dict[int, simpy.Resource] = {}
        self._links: dict[tuple[int, int], tuple[float, float]] = {}
        self._cluster = None
        self.transfer_s = np.zeros(n)

    # --- construction ----------------------------------------------------------------------
    def _serves(self, name: str) -> bool:
        iso = self.workload.isolate
        return not ((iso == "prefill" and name == "decode")
                    or (iso == "decode" and name == "prefill"))

    def _build_role(self, name: str, spec: RoleSpec, first_device: int) -> _Role:
        memory = role_memory(self.scenario, name, spec)
        pricer = RolePricer(self.scenario, name, spec)
        stats = RoleStats()
        mode = name if not self.aggregated else "aggregated"
        r = self.requests
        insts = [Instance(name, i, spec, pricer, memory.kv_tokens, mode, r.input_tokens,
                          r.output_tokens, stats) for i in range(spec.num_instances)]
        role = _Role(name, spec, memory, pricer, stats, insts, first_device)
        for inst in insts:
            inst.on_first_token = self._first_token
            inst.on_finished = self._finished
            inst.on_prefilled = self._prefilled
            inst.on_admitted = self._admitted
        return role

    def _check_fits(self) -> None:
        r = self.requests
        for role in self.roles.values():
            need = r.input_tokens if role.name == "prefill" else r.input_tokens + r.output_tokens
            worst = int(need.max()) if len(r) else 0
            if worst > role.memory.kv_tokens:
                where = "deployment.role" if role.name == "aggregated" else f"deployment.{role.name}"
                raise InfeasibleError(
                    f"{where}: the KV cache holds {role.memory.kv_tokens:,} tokens per "
                    f"DP-attention rank, fewer than the longest request's {worst:,}; raise "
                    "memory_fraction, expert_parallel_degree or attention_tp_degree, or "
                    "shorten the requests", reason="memory")

    # --- request flow ------------------------------------------------------------------------
    def _entry(self) -> _Role:
        if self.aggregated:
            return self.roles["aggregated"]
        return self.roles["decode" if self.workload.isolate == "decode" else "prefill"]

    @staticmethod
    def _route(role: _Role) -> tuple[Instance, int]:
        inst = min(role.instances, key=lambda i: (i.outstanding(), i.index))
        return inst, inst.least_loaded_rank()

    def _arrivals(self):  # noqa: ANN202 - a simpy process
        t = self.requests.arrival_s
        entry = self._entry()
        for req in range(len(self.requests)):
            if t[req] > self.env.now:
                yield self.env.timeout(float(t[req]) - self.env.now)
            inst, rank = self._route(entry)
            inst.enqueue(req, rank)

    def _first_token(self, req: int, t: float) -> None:
        if math.isnan(self.first_token[req]):
            self.first_token[req] = t

    def _finished(self, req: int, t: float) -> None:
        self.finish[req] = t

    def _prefilled(self, inst: Instance, rank: int, slot: int, t: float) -> None:
        """A prefill rank finished ``slot``'s prompt: end it, or hand it to a decode rank."""
        req = int(inst.slot_req[slot])
        if self.workload.isolate == "prefill" or self.requests.output_tokens[req] <= 1:
            inst.release(slot, t, finished=True)
            return
        self._held[req] = (inst, slot)
        dec, drank = self._route(self.roles["decode"])
        dec.enqueue(req, drank)

    def _admitted(self, inst: Instance, req: int, rank: int, slot: int) -> None:
        """A decode rank reserved ``req``'s cache: move the KV (or, isolated, start now)."""
        if req not in self._held:  # isolate=decode: the prompt is already cached here
            inst.activate(slot, int(self.requests.input_tokens[req]),
                          float(self.requests.output_tokens[req]))
            return
        self.env.process(self._transfer(req, inst, rank, slot))

    def _transfer(self, req: int, dec: Instance, drank: int, dslot: int):  # noqa: ANN202
        src_inst, src_slot = self._held.pop(req)
        prefill = self.roles["prefill"]
        decode = self.roles["decode"]
        src = self._device(prefill, src_inst, int(src_inst.slot_rank[src_slot]))
        dst = self._device(decode, dec, drank)
        start = self.env.now
        nbytes = self._kv_bytes(int(self.requests.input_tokens[req]))
        with self._nic(src).request() as a:
            yield a
            with self._nic(dst).request() as b:
                yield b
                yield self.env.timeout(self._send_s(src, dst, nbytes))
        self.transfer_s[req] = self.env.now - start
        src_inst.release(src_slot, self.env.now, finished=False)
        dec.activate(dslot, int(self.requests.input_tokens[req]) + 1,
                     float(self.requests.output_tokens[req]) - 1.0)

    def _kv_bytes(self, tokens: int) -> float:
        """Bytes one device of the prefill rank sends for a prompt of ``tokens``."""
        p = self.roles["prefill"].spec
        per = kv_bytes_per_token(self.scenario.model_spec, self.workload.kv_cache_dtype,
                                 p.attention_tp_degree)
        return per * tokens

    def _device(self, role: _Role, inst: Instance, rank: int) -> int:
        spec = role.spec
        return role.first_device + inst.index * spec.devices_per_instance + (
            rank * spec.attention_tp_degree)

    def _nic(self, device: int) -> simpy.Resource:
        res = self._nics.get(device)
        if res is None:
            res = self._nics[device] = simpy.Resource(self.env, capacity=1)
        return res

    def _send_s(self, src: int, dst: int, nbytes: float) -> float:
        """send_time is latency + bytes / bottleneck: measured at two sizes once per pair."""
        key = (src, dst)
        hit = self._links.get(key)
        if hit is None:
            if self._cluster is None:
                self._cluster = build_cluster(self.scenario.topology_spec, self.scenario.devices)
            one = send_time(self._cluster, src, dst, 1e9)
            two = send_time(self._cluster, src, dst, 2e9)
            per_byte = (two - one) / 1e9
            hit = self._links[key] = (one - 1e9 * per_byte, per_byte)
        return hit[0] + hit[1] * nbytes

    # --- instances -------------------------------------------------------------------------
    def _instance(self, inst: Instance):  # noqa: ANN202 - a simpy process
        env = self.env
        while True:
            plan = inst.plan()
            if plan is None:
                inst.wake = env.event()
                yield inst.wake
                inst.wake = None
                continue
            start = env.now
            yield env.timeout(plan.price.time_s)
            inst.complete(plan, start, env.now)
            self._record(inst, plan, start)

    def _record(self, inst: Instance, plan: IterationPlan, start: float) -> None:
        if len(self.timeline) < MAX_TIMELINE:
            self.timeline.append(IterationRecord(
                role=inst.role_name, instance=inst.index, start_s=start,
                duration_s=plan.price.time_s, prefill_tokens=plan.prefill_tokens,
                decode_tokens=plan.decode_tokens))

    def run(self) -> ServingResult:
        """Simulate until every request has finished."""
        for role in self.roles.values():
            for inst in role.instances:
                self.env.process(self._instance(inst))
        self.env.process(self._arrivals())
        self.env.run()
        done = np.isfinite(self.finish)
        if not done.all():  # every request fits one rank's cache (checked): a bug if not
            raise AssertionError(f"{int((~done).sum())} requests never finished")
        return self._result()

    # --- the result ----------------------------------------------------------------------------
    def _result(self) -> ServingResult:
        r, wl = self.requests, self.workload
        first, finish = self.first_token, self.finish
        ttft = first - r.arrival_s
        out = r.output_tokens.astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            tpot = np.where(out > 1, (finish - first) / (out - 1), np.nan)
        e2e = finish - r.arrival_s
        span = float(finish.max() - r.arrival_s.min())
        per_domain = self.scenario.topology_spec.devices_per_domain
        devices = sum(role.spec.num_devices for role in self.roles.values())
        nodes = devices / per_domain
        inp = float(r.input_tokens.sum()) if wl.isolate != "decode" else 0.0
        gen = float(out.sum()) if wl.isolate != "prefill" else float(len(r))
        slo = wl.slo
        attain = good = None
        if slo is not None:
            attain, good = goodput(ttft, tpot if wl.isolate != "prefill" else np.full_like(
                tpot, np.nan), slo.ttft_ms * 1e-3, slo.tpot_ms * 1e-3, span)
            if r.offered_rate_per_s > 0:  # the served share of the arrival rate
                good = attain * r.offered_rate_per_s
        keep = min(len(r), MAX_REQUEST_ROWS)
        notes = self._notes(keep)
        return ServingResult(
            scenario=self.scenario.name, description=self.scenario.description,
            deployment=self.deployment.kind, isolate=wl.isolate, num_devices=devices,
            num_nodes=nodes, num_requests=len(r), completed=int(np.isfinite(finish).sum()),
            duration_s=span, offered_rate_per_s=r.offered_rate_per_s,
            ttft=summarize(ttft), tpot=summarize(tpot if wl.isolate != "prefill" else
                                                 np.array([])),
            e2e=summarize(e2e),
            input_tokens_per_s=inp / span if span > 0 else 0.0,
            output_tokens_per_s=gen / span if span > 0 else 0.0,
            input_tokens_per_s_per_node=inp / span / nodes if span > 0 else 0.0,
            output_tokens_per_s_per_node=gen / span / nodes if span > 0 else 0.0,
            slo_ttft_s=slo.ttft_ms * 1e-3 if slo else None,
            slo_tpot_s=slo.tpot_ms * 1e-3 if slo else None,
            slo_attainment=attain, goodput_requests_per_s=good,
            mean_in_system=mean_in_system(r.arrival_s, finish),
            roles=[self._role_result(role) for role in self.roles.values()],
            requests=RequestTable(
                arrival_s=r.arrival_s[:keep].tolist(), first_token_s=first[:keep].tolist(),
                finish_s=finish[:keep].tolist(), input_tokens=r.input_tokens[:keep].tolist(),
                output_tokens=r.output_tokens[:keep].tolist()),
            timeline=self.timeline, notes=notes)

    def _notes(self, kept: int) -> list[str]:
        notes = []
        if kept < len(self.requests):
            notes.append(f"requests table: the first {kept:,} of {len(self.requests):,} requests")
        if len(self.timeline) >= MAX_TIMELINE:
            notes.append(f"timeline: the first {MAX_TIMELINE:,} iterations")
        if self.workload.isolate != "none":
            other = "decode" if self.workload.isolate == "prefill" else "prefill"
            notes.append(f"isolate={self.workload.isolate}: {other} is not simulated "
                         "(assumed unlimited, as the published benchmarks measure it)")
        if "prefill" in self.roles and "decode" in self.roles:
            t = self.transfer_s[self.transfer_s > 0]
            if t.size:
                notes.append(f"KV transfer prefill -> decode: mean {t.mean() * 1e3:.2f} ms, "
                             f"max {t.max() * 1e3:.2f} ms per request")
        return notes

    def _role_result(self, role: _Role) -> RoleResult:
        s, spec, mem = role.stats, role.spec, role.memory
        per_domain = self.scenario.topology_spec.devices_per_domain
        nodes = spec.num_devices / per_domain
        window = max(0.0, s.last_end_s - s.first_start_s) if s.iterations else 0.0
        r = self.requests
        mean_req = int(round(float((r.input_tokens + (0 if role.name == "prefill"
                                                      else r.output_tokens)).mean())))
        layout: dict[str, int | str | bool] = {
            "attention_tp_degree": spec.attention_tp_degree,
            "attention_dp_degree": spec.attention_dp_degree,
            "expert_parallel_degree": spec.ep,
            "num_redundant_experts": spec.num_redundant_experts,
            "dispatcher": spec.dispatcher, "two_batch_overlap": spec.two_batch_overlap,
            "cuda_graph": spec.cuda_graph, "max_batch_requests": spec.max_batch_requests,
            "max_batch_tokens": spec.max_batch_tokens}
        return RoleResult(
            role=role.name, num_instances=spec.num_instances,
            devices_per_instance=spec.devices_per_instance, num_devices=spec.num_devices,
            num_nodes=nodes, layout=layout, iterations=s.iterations, busy_s=s.busy_s,
            window_s=window,
            utilization=s.busy_s / (window * spec.num_instances) if window > 0 else 0.0,
            prefill_tokens=s.prefill_tokens, decode_tokens=s.decode_tokens,
            input_tokens_per_s_per_node=s.prefill_tokens / window / nodes if window else 0.0,
            output_tokens_per_s_per_node=s.decode_tokens / window / nodes if window else 0.0,
            mean_decode_batch_per_rank=(s.decode_seqs / s.iterations / spec.attention_dp_degree
                                        if s.iterations else 0.0),
            iteration=summarize(np.asarray(s.iteration_s)),
            breakdown_s={k: v / s.iterations for k, v in sorted(s.by_kind_s.items())}
            if s.iterations else {},
            memory=ServingMemoryResult(
                capacity_bytes=mem.capacity_bytes, weights_bytes=mem.weights_bytes,
                kv_bytes_per_token=mem.kv_bytes_per_token, kv_pool_bytes=mem.kv_pool_bytes,
                kv_tokens_per_rank=mem.kv_tokens, workspace_bytes=mem.workspace_bytes,
                reserve_bytes=mem.reserve_bytes, peak_bytes=mem.peak_bytes,
                max_sequences_per_rank=mem.kv_tokens // max(1, mean_req)),
            peak_kv_tokens_per_rank=s.peak_kv_tokens, peak_running_per_rank=s.peak_running,
            cost_sources=dict(sorted(role.pricer.sources.items())))


def simulate_serving(scenario: ScenarioSpec) -> ServingResult:
    """Simulate a serving scenario (see :class:`ServingSimulation`)."""
    return ServingSimulation(scenario).run()
