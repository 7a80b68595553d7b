"""Memory screening for the layout search: drop what cannot fit before any timing is asked.

Structures that differ only in micro-batch size share a *group*. For each group and ZeRO
setting the funnel is, cheapest first:

1. **Lower bound.** ``Backend.memory_bound`` (the model states of the fullest pipeline rank
   plus the framework reserve, from ``moesim.memory`` helpers) does not depend on the
   micro-batch size or on recomputation. Over the device's memory, the whole group is out
   without one ``estimate_memory`` call.
2. **Least recomputation that fits.** For the smallest micro-batch, ``estimate_memory`` is
   asked for none, selective, full in turn, up to the first that fits (the later ones are
   dominated: more recomputation only adds step time).
3. **Larger micro-batches** start at the recomputation the smaller one needed, and are out
   at once where the smaller one fit with no setting.

Step 3 uses one property of the memory model: peak memory does not fall when the
micro-batch grows. A test checks it, and that the screen keeps exactly the layouts an
exhaustive search keeps.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

from moesim.errors import InfeasibleError, SpecError
from moesim.plan.evaluate import Backend, MemoryVerdict
from moesim.plan.layouts import (
    Layout,
    SearchSpaceSpec,
    all_to_all_options,
    expand,
    memory_options,
    structural_reason,
    with_layout,
)
from moesim.specs.scenario import ScenarioSpec

REASON_MEMORY = "does not fit in memory"
REASON_DOMINATED = "dominated: less recomputation already fits"

Fitting = list[tuple[Layout, MemoryVerdict]]
Group = tuple[Layout, ...]  # one structure at every micro-batch size, ascending


def group_key(lay: Layout) -> Layout:
    """The structure without its micro-batch size (what the lower bound depends on)."""
    return replace(lay, mbs=0)


def groups(layouts: list[Layout]) -> list[Group]:
    """Structures grouped by :func:`group_key`, groups in first-seen order, mbs ascending."""
    out: dict[Layout, list[Layout]] = {}
    for lay in layouts:
        out.setdefault(group_key(lay), []).append(lay)
    return [tuple(sorted(g, key=lambda x: x.mbs)) for g in out.values()]


@dataclass(frozen=True)
class ScreenTask:
    """Groups of structures to check and size against memory (picklable, for executors)."""

    backend: Backend
    base: ScenarioSpec
    space: SearchSpaceSpec
    groups: tuple[Group, ...]


@dataclass
class _Tally:
    """What one task found: layouts considered, those that fit, excluded counts, calls."""

    considered: int = 0
    fitting: Fitting = field(default_factory=list)
    excluded: Counter[str] = field(default_factory=Counter)
    memory_calls: int = 0


def run_screen(task: ScreenTask) -> tuple[int, Fitting, Counter[str], int]:
    """(layouts considered, those that fit, excluded counts, estimate_memory calls)."""
    tally = _Tally()
    n_opts = len(memory_options(task.space))
    for group in task.groups:
        n_a2a = len(all_to_all_options(task.base, group[0], task.space))
        tally.considered += n_opts * n_a2a * len(group)
        valid = []
        for lay in group:
            reason = structural_reason(task.base, lay)
            if reason is None:
                valid.append(lay)
            else:
                tally.excluded[reason] += n_opts * n_a2a
        if valid:
            _screen_group(task, tuple(valid), tally)
    return tally.considered, tally.fitting, tally.excluded, tally.memory_calls


def _reason(backend: Backend, sc: ScenarioSpec) -> MemoryVerdict | str:
    try:
        return backend.check_memory(sc)
    except SpecError as exc:
        return f"invalid: {exc.field or 'spec'}"
    except InfeasibleError as exc:
        return REASON_MEMORY if exc.reason == "memory" else f"infeasible: {exc.reason}"


def _screen_group(task: ScreenTask, group: Group, tally: _Tally) -> None:
    base, space, backend = task.base, task.space, task.backend
    a2as = all_to_all_options(base, group[0], space)
    opts = memory_options(space)
    capacity = base.topology_spec.accelerator.hbm_bytes
    for zero_stage, fsdp in space.zero:
        rcs = [rc for z, f, rc in opts if (z, f) == (zero_stage, fsdp)]
        if not rcs:
            continue
        n_out = len(a2as) * len(rcs)
        probe = with_layout(base, expand(group[0], zero_stage, fsdp, rcs[-1], a2as[0]))
        bound = backend.memory_bound(probe)
        if bound is not None and bound > capacity:
            tally.excluded[REASON_MEMORY] += n_out * len(group)
            continue
        start = 0
        for lay in group:
            if start >= len(rcs):  # a smaller micro-batch fit with no setting
                tally.excluded[REASON_MEMORY] += n_out
                continue
            found = _least_recompute(task, lay, zero_stage, fsdp, rcs, start, tally)
            if isinstance(found, str):
                tally.excluded[found] += n_out
                start = len(rcs) if found == REASON_MEMORY else start
                continue
            i, verdict = found
            tally.excluded[REASON_MEMORY] += len(a2as) * i
            tally.excluded[REASON_DOMINATED] += len(a2as) * (len(rcs) - i - 1)
            tally.fitting += [(expand(lay, zero_stage, fsdp, rcs[i], a), verdict) for a in a2as]
            start = i


def _least_recompute(task: ScreenTask, lay: Layout, zero_stage: int, fsdp: bool,
                     rcs: list[str], start: int,
                     tally: _Tally) -> tuple[int, MemoryVerdict] | str:
    """(index into ``rcs`` of the least recomputation that fits, its verdict), or a reason.

    ``start``: settings before it are known not to fit (a smaller micro-batch needed them).
    Probed in order from the least recomputation: past the lower bound most layouts fit
    with none, so this takes one call for most of them.
    """
    a2a = all_to_all_options(task.base, lay, task.space)[0]
    reason = REASON_MEMORY
    for i in range(start, len(rcs)):
        tally.memory_calls += 1
        sc = with_layout(task.base, expand(lay, zero_stage, fsdp, rcs[i], a2a))
        v = _reason(task.backend, sc)
        if isinstance(v, str):
            reason = v
        elif v.fits:
            return i, v
    return reason
