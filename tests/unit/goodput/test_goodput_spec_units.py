"""Every float field of the goodput specs carries its unit in its name (DESIGN.md)."""

from __future__ import annotations

import typing

from pydantic import BaseModel

from moesim.specs.goodput import GoodputDefaultsSpec, GoodputSpec

UNITS = ("_s", "_gbyte_per_s", "_w", "_per_unit_hour")
DIMENSIONLESS = {"pue",  # facility over IT power
                 "jitter_sigma", "straggler_probability", "straggler_slowdown"}  # shape, share


def _models(root: type[BaseModel]) -> set[type[BaseModel]]:
    seen, todo = set(), [root]
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.add(cls)
        for f in cls.model_fields.values():
            todo += [a for a in _leaves(f.annotation) if isinstance(a, type)
                     and issubclass(a, BaseModel)]
    return seen


def _leaves(tp: object) -> list[object]:
    args = typing.get_args(tp)
    return [tp] if not args else [x for a in args for x in _leaves(a)]


def test_goodput_float_fields_have_units() -> None:
    models = _models(GoodputSpec) | _models(GoodputDefaultsSpec)
    assert len(models) >= 7
    bad = [f"{c.__name__}.{n}" for c in models for n, f in c.model_fields.items()
           if float in _leaves(f.annotation) and not (n.endswith(UNITS) or n in DIMENSIONLESS)]
    assert not bad, bad
