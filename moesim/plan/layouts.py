"""Every layout a planner considers for a model on N devices, and the cheap reasons to drop one.

A layout is the parallel degrees (TP, CP, PP, virtual stages, EP, ETP), the micro-batch
size and the memory options (recomputation, ZeRO stage / FSDP, all-to-all algorithm).
Structure is enumerated first and checked with ``check_scenario`` on a ``model_copy`` of
the base scenario (no YAML); only valid structures are expanded into their options.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

from moesim.errors import SpecError
from moesim.specs.checks import check_scenario, divisors
from moesim.specs.parallelism import (
    DeepEPAllToAllSpec,
    DirectAllToAllSpec,
    HierarchicalAllToAllSpec,
    InterleavedScheduleSpec,
    OneFOneBScheduleSpec,
    ParallelismSpec,
)
from moesim.specs.scenario import ScenarioSpec

_A2A = {"direct": DirectAllToAllSpec, "hierarchical": HierarchicalAllToAllSpec,
        "deepep": DeepEPAllToAllSpec}

# Memory options from the least to the most step time they cost, within one ZeRO setting:
# recomputing selected activations (Megatron "selective": attention core) is cheaper than
# recomputing whole layers (Korthikanti et al. 2022, "Reducing Activation Recomputation").
RECOMPUTE_ORDER = ("none", "selective", "full")


@dataclass(frozen=True)
class SearchSpaceSpec:
    """Which values each layout axis may take (degrees are further cut to divisors)."""

    max_tensor_parallel: int = 16
    max_context_parallel: int = 4
    max_pipeline_parallel: int = 16
    virtual_stages: tuple[int, ...] = (1, 2, 4)
    # ETP 1 (MoE parallel folding) or ETP = TP (Megatron's default); True: every divisor.
    every_expert_tensor_parallel: bool = False
    micro_batch_sizes: tuple[int, ...] = (1, 2)
    recompute: tuple[str, ...] = RECOMPUTE_ORDER
    zero: tuple[tuple[int, bool], ...] = ((1, False), (3, True))  # (zero_stage, fsdp)
    all_to_all: tuple[str, ...] = ("direct", "hierarchical", "deepep")


@dataclass(frozen=True)
class Layout:
    """One candidate layout; ``label`` is how tables print it."""

    tp: int
    cp: int
    pp: int
    vpp: int
    ep: int
    etp: int
    mbs: int
    recompute: str = "none"
    zero_stage: int = 1
    fsdp: bool = False
    all_to_all: str = "direct"

    @property
    def label(self) -> str:
        z = "fsdp" if self.fsdp else f"zero{self.zero_stage}"
        vpp = f" VPP{self.vpp}" if self.vpp > 1 else ""
        return (f"TP{self.tp} CP{self.cp} PP{self.pp}{vpp} EP{self.ep} ETP{self.etp} "
                f"MBS{self.mbs} rc={self.recompute} {z} a2a={self.all_to_all}")

    def degrees(self) -> dict[str, int | str | bool]:
        return {"tp": self.tp, "cp": self.cp, "pp": self.pp, "vpp": self.vpp, "ep": self.ep,
                "etp": self.etp, "mbs": self.mbs, "recompute": self.recompute,
                "zero_stage": self.zero_stage, "fsdp": self.fsdp, "all_to_all": self.all_to_all}


def from_parallelism(par: ParallelismSpec) -> Layout:
    """The layout a scenario ships with (its parallelism spec as a :class:`Layout`)."""
    return Layout(tp=par.tensor_parallel_degree, cp=par.context_parallel_degree,
                  pp=par.pipeline_parallel_degree, vpp=par.num_virtual_stages,
                  ep=par.expert_parallel_degree, etp=par.expert_tensor_parallel_degree,
                  mbs=par.micro_batch_size, recompute=par.recompute,
                  zero_stage=3 if par.fsdp else par.zero_stage, fsdp=par.fsdp,
                  all_to_all=par.all_to_all.kind)


def balanced_split(num_layers: int, chunks: int) -> tuple[int, ...] | None:
    """Layers per chunk as even as possible (earlier chunks take the remainder); None if even."""
    if num_layers % chunks == 0:
        return None
    q, r = divmod(num_layers, chunks)
    return tuple(q + 1 if i < r else q for i in range(chunks))


def to_parallelism(base: ParallelismSpec, lay: Layout, num_layers: int) -> ParallelismSpec:
    """The base scenario's parallelism with this layout's degrees and options."""
    if lay.vpp > 1:
        schedule = InterleavedScheduleSpec(num_virtual_stages=lay.vpp)
    elif isinstance(base.pipeline_schedule, InterleavedScheduleSpec):
        schedule = OneFOneBScheduleSpec()
    else:
        schedule = base.pipeline_schedule
    a2a = base.all_to_all if base.all_to_all.kind == lay.all_to_all else _A2A[lay.all_to_all]()
    return base.model_copy(update={
        "tensor_parallel_degree": lay.tp, "context_parallel_degree": lay.cp,
        "pipeline_parallel_degree": lay.pp, "pipeline_schedule": schedule,
        "pipeline_layer_split": balanced_split(num_layers, lay.pp * lay.vpp),
        "expert_parallel_degree": lay.ep, "expert_tensor_parallel_degree": lay.etp,
        "micro_batch_size": lay.mbs, "recompute": lay.recompute, "zero_stage": lay.zero_stage,
        "fsdp": lay.fsdp, "all_to_all": a2a,
        "sequence_parallel": True if lay.tp > 1 else base.sequence_parallel,
    })


def with_layout(base: ScenarioSpec, lay: Layout) -> ScenarioSpec:
    """The base scenario (already sized to its devices) running ``lay``."""
    par = to_parallelism(base.parallelism, lay, base.model_spec.num_layers)
    return base.model_copy(update={"parallelism": par})


def structures(s: ScenarioSpec, space: SearchSpaceSpec) -> Iterator[Layout]:
    """Every (TP, CP, PP, VPP, EP, ETP, MBS) whose degrees divide the device count."""
    n, model = s.devices, s.model_spec
    ds = divisors(n)
    slots = model.num_experts + s.routing.num_redundant_experts
    eps = [d for d in divisors(slots) if d <= n] if model.is_moe else [1]
    for tp in (d for d in ds if d <= space.max_tensor_parallel):
        for cp in (d for d in ds if d <= space.max_context_parallel and tp * d <= n):
            for pp in (d for d in ds if d <= space.max_pipeline_parallel):
                if n % (tp * cp * pp):
                    continue
                for vpp in (v for v in space.virtual_stages if pp > 1 or v == 1):
                    if pp * vpp > model.num_layers:
                        continue
                    for ep in eps:
                        for etp in _etps(tp, ds, space, model.is_moe):
                            for mbs in space.micro_batch_sizes:
                                yield Layout(tp, cp, pp, vpp, ep, etp, mbs)


def with_shipped(s: ScenarioSpec, layouts: list[Layout]) -> list[Layout]:
    """``layouts`` plus the scenario's own structure when the search space leaves it out
    (Mixtral's reference VPP 8, say), so a search always weighs the shipped layout."""
    own = from_parallelism(s.parallelism)
    mine = Layout(own.tp, own.cp, own.pp, own.vpp, own.ep, own.etp, own.mbs)
    return layouts if mine in set(layouts) else [*layouts, mine]


def _etps(tp: int, ds: list[int], space: SearchSpaceSpec, moe: bool) -> list[int]:
    if not moe:
        return [1]
    if space.every_expert_tensor_parallel:
        return [d for d in ds if d <= space.max_tensor_parallel]
    return sorted({1, tp})


def structural_reason(s: ScenarioSpec, lay: Layout) -> str | None:
    """Why a structure is excluded before any cost is asked, or None if it is valid."""
    try:
        check_scenario(with_layout(s, lay))
    except SpecError as exc:
        return f"invalid: {exc.field or 'spec'}"
    domain = s.topology_spec.devices_per_domain
    if lay.tp > domain:
        return "tensor parallel crosses the scale-up domain"
    if lay.etp > domain:
        return "expert tensor parallel crosses the scale-up domain"
    return None


def memory_options(space: SearchSpaceSpec) -> list[tuple[int, bool, str]]:
    """(zero_stage, fsdp, recompute) in the order a search tries them (cheapest first)."""
    order = sorted(space.recompute, key=RECOMPUTE_ORDER.index)
    return [(z, f, rc) for z, f in space.zero for rc in order]


def all_to_all_options(s: ScenarioSpec, lay: Layout, space: SearchSpaceSpec) -> list[str]:
    """Algorithms worth comparing: one when the EP group stays inside one scale-up domain.

    Expert ranks are laid out ETP-innermost, then EP (Megatron MoE parallel folding), so an
    EP group spans ep x etp consecutive ranks; inside one NVSwitch domain every algorithm
    is a single hop and they coincide, so only the first listed is kept (also without EP).
    """
    if lay.ep == 1 or lay.ep * lay.etp <= s.topology_spec.devices_per_domain:
        return list(space.all_to_all[:1])
    return list(space.all_to_all)


def expand(lay: Layout, zero_stage: int, fsdp: bool, recompute: str, a2a: str) -> Layout:
    return replace(lay, zero_stage=zero_stage, fsdp=fsdp, recompute=recompute, all_to_all=a2a)
