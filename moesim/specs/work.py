"""The work a scenario implies, estimated at load, and the caps that keep one run bounded.

Field bounds (:mod:`moesim.specs.bounds`) stop values no real system has; these caps stop
combinations of real-sized values that would take minutes or gigabytes to simulate. Three
quantities drive a run's time and memory (measured on a 2-core x86-64 VM, see
docs/specs.md, "Limits"):

* layer passes: micro-batches per pipeline x layers. Every pass is about 35 to 70 simulated
  op intervals (Mixtral 33, DeepSeek-V3 70); the DES runs about 0.55 M intervals per second
  and holds about 40 bytes per interval, the analytic fidelity about 6 M per second.
* routing cells: the numbers routing draws and the engine keeps, per MoE layer: draws x EP x
  EP traffic matrices, micro-batches x (experts + EP) per-rank counts, and, when counts are
  drawn per expert (a capacity factor, balanced load or expert choice), draws x EP x experts;
  plus 1,024 per draw for its fixed cost (about 0.2 ms). Each costs about 130 to 200 ns to
  draw and price and 14 to 56 bytes to hold (the DES keeps distinct-token and per-node copies
  of the traffic).
* placement work: with redundant experts, greedy EPLB packing visits every copy and scans
  every slot, per MoE layer: layers x (experts + 2 x redundant) x (slots + 16,384), about
  0.5 ns per unit.

The caps are set so that the largest accepted run stays under about 30 s and 2 GiB on that
VM, while DeepSeek-V3 on 65,536 GPUs, EP 256 over its 61 layers, or a 1M-token context pass.
"""

from __future__ import annotations

from dataclasses import dataclass

from moesim.errors import SpecError

# Routing draws per layer: routing.step.DEFAULT_DRAWS_PER_LAYER (kept equal by a test; specs
# cannot import the routing package, which is a layer above).
DEFAULT_DRAWS = 8

MAX_LAYER_PASSES = 1 << 18  # ~18 M op intervals: ~33 s and ~0.8 GB of DES, ~3 s analytic
MAX_ROUTING_CELLS = 1 << 25  # ~33.5 M numbers: ~7 s of routing, at most ~1.9 GB in the DES
MAX_PLACEMENT_WORK = 1 << 34  # ~8.5 s of greedy placement
# One draw of one layer costs about 0.2 ms before its size counts (numpy calls, the urn, the
# placement split), as much as ~1,000 cells: a fuzzed `routing --draws 1000000000` over 4,096
# micro-batches made 131,072 small draws and took 70 s.
DRAW_OVERHEAD_CELLS = 1024


@dataclass(frozen=True)
class WorkEstimate:
    """What one step of a scenario costs to simulate, in the units of the caps above."""

    micro_batches: int
    layers: int
    moe_layers: int
    ep: int
    slots: int  # experts + redundant copies
    draws: int
    per_expert: bool
    redundant: int

    @property
    def layer_passes(self) -> int:
        return self.micro_batches * self.layers

    @property
    def traffic_cells(self) -> int:
        return self.moe_layers * self.draws * (self.ep * self.ep + DRAW_OVERHEAD_CELLS)

    @property
    def count_cells(self) -> int:
        return self.moe_layers * self.micro_batches * (self.slots + self.ep)

    @property
    def per_expert_cells(self) -> int:
        return self.moe_layers * self.draws * self.ep * self.slots if self.per_expert else 0

    @property
    def routing_cells(self) -> int:
        return self.traffic_cells + self.count_cells + self.per_expert_cells

    @property
    def placement_work(self) -> int:
        if not self.redundant:
            return 0
        return self.moe_layers * (self.slots + self.redundant) * (self.slots + 16384)


def estimate(micro_batches: int, layers: int, moe_layers: int, ep: int, experts: int,
             redundant: int, per_expert: bool, draws: int | None = None) -> WorkEstimate:
    """The work of one step; ``draws`` per layer default to routing's (at most micro-batches)."""
    d = min(micro_batches, draws or DEFAULT_DRAWS)
    return WorkEstimate(micro_batches, layers, moe_layers if experts else 0, ep,
                        experts + redundant, d, per_expert, redundant)


def check_work(w: WorkEstimate, *, knobs: str = "") -> None:
    """Raise SpecError naming the cap that ``w`` exceeds and what lowers it.

    ``knobs``: extra advice (the routing command's --micro-batches and --draws)."""
    extra = f"; or {knobs}" if knobs else ""
    if w.layer_passes > MAX_LAYER_PASSES:
        raise SpecError(
            f"workload: {w.micro_batches:,} micro-batches per pipeline x {w.layers:,} layers = "
            f"{w.layer_passes:,} layer passes per step, more than {MAX_LAYER_PASSES:,} (about "
            "30 s of simulation); lower workload.global_batch_size or raise "
            f"parallelism.micro_batch_size{extra}", field="workload.global_batch_size")
    if w.routing_cells > MAX_ROUTING_CELLS:
        per_expert = f" + {w.draws:,} x {w.ep} x {w.slots:,} per-expert" if w.per_expert else ""
        knob = ("parallelism.expert_parallel_degree, model.num_experts or "
                "workload.global_batch_size")
        raise SpecError(
            f"routing would draw {w.routing_cells:,} numbers (limit {MAX_ROUTING_CELLS:,}, about "
            f"10 s and 2 GB): {w.moe_layers:,} MoE layers x ({w.draws:,} draws x ({w.ep}^2 + "
            f"{DRAW_OVERHEAD_CELLS:,}) + {w.micro_batches:,} micro-batches x "
            f"{w.slots + w.ep:,} counts{per_expert}); lower "
            + (f"{knobs.removeprefix('lower ')}, or {knob}" if knobs else knob),
            field="parallelism.expert_parallel_degree")
    if w.placement_work > MAX_PLACEMENT_WORK:
        raise SpecError(
            f"routing.num_redundant_experts={w.redundant:,}: greedy placement of "
            f"{w.slots:,} expert copies over {w.moe_layers:,} MoE layers would take about "
            f"{w.placement_work * 0.5e-9:,.0f} s (more than {MAX_PLACEMENT_WORK * 0.5e-9:.0f} s); "
            "use fewer redundant experts", field="routing.num_redundant_experts")
