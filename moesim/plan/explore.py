"""Which fitting layouts get an analytic evaluation when there are more than the budget allows.

Up to ``budget`` layouts every one is evaluated. Beyond it, a deterministic local search
over the layout lattice: an evenly spread third of the budget seeds it, then the best
layouts found so far have their neighbours (layouts that differ in one axis: one degree,
the micro-batch size, a memory option or the all-to-all algorithm) evaluated, until the
budget is spent or no best layout has an unevaluated neighbour. Every number still comes
from the engine; this only decides which layouts it is asked about.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import fields

from moesim.plan.layouts import Layout

Score = Callable[[list[Layout]], dict[Layout, float | None]]  # None: excluded by the engine

_AXES = [f.name for f in fields(Layout)]


_VALUES = operator.attrgetter(*_AXES)


class Neighbours:
    """Layouts of a fixed set that differ from a given one in exactly one axis."""

    def __init__(self, layouts: list[Layout]) -> None:
        self._index: dict[tuple[int, tuple[object, ...]], list[Layout]] = {}
        for lay in layouts:
            t = _VALUES(lay)
            for i in range(len(_AXES)):
                self._index.setdefault((i, t[:i] + t[i + 1:]), []).append(lay)

    def of(self, lay: Layout) -> list[Layout]:
        out: list[Layout] = []
        t = _VALUES(lay)
        for i in range(len(_AXES)):
            out += [x for x in self._index[(i, t[:i] + t[i + 1:])] if x != lay]
        return out


def explore(layouts: list[Layout], budget: int, score: Score, beam: int = 4,
            first: list[Layout] | tuple[Layout, ...] = ()) -> dict[Layout, float | None]:
    """Scores (higher is better) of the layouts evaluated within ``budget`` calls.

    ``first``: layouts of ``layouts`` that are always among the seeds (the shipped layout).
    """
    if len(layouts) <= budget:
        return score(layouts)
    ordered = sorted(layouts, key=lambda x: x.label)
    n_seed = max(1, budget // 3)
    step = len(ordered) / n_seed
    seeds = list(dict.fromkeys([*first, *(ordered[int(i * step)] for i in range(n_seed))]))
    seen = score(seeds[:max(n_seed, len(first))])
    near = Neighbours(ordered)
    while len(seen) < budget:
        best = sorted((lay for lay, s in seen.items() if s is not None),
                      key=lambda x: (-(seen[x] or 0.0), x.label))
        todo: list[Layout] = []
        expanded = 0
        for lay in best:
            new = [x for x in near.of(lay) if x not in seen and x not in todo]
            todo += new
            expanded += bool(new)
            if expanded >= beam:
                break
        if not todo:
            break
        seen |= score(todo[: budget - len(seen)])
    return seen
