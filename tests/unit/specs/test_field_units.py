"""Every float field of every spec carries its unit in its name (DESIGN.md), or is dimensionless."""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel

from moesim.specs.hardware import TopologySpec
from moesim.specs.model import MoEModelSpec
from moesim.specs.scenario import ScenarioSpec
from moesim.specs.sweep import SweepSpec

# DESIGN.md "Units live in field names".
UNIT_SUFFIXES = ("_gib", "_gb", "_gbyte_per_s", "_gbit_per_s", "_tflops", "_s", "_ms", "_us",
                 "_ns", "_bytes")
# Dimensionless ratios and shape parameters; each entry says why it has no unit.
DIMENSIONLESS = {
    "gemm_efficiency", "fp8_gemm_efficiency", "hbm_efficiency",  # fractions of peak
    "oversubscription",  # leaf down:up ratio
    "capacity_factor", "exponent", "concentration",  # routing shape parameters
    "price_per_device_hour",  # USD per device-hour (currency, not a physical unit)
    "value",  # MeasuredSpec.value: its unit is the sibling field `units`
    "cv", "time_scale",  # serving: a coefficient of variation, a stretch factor of a trace
    "acceptance_rate", "memory_fraction",  # serving: a probability, a share of HBM
    "mean_tokens",  # serving: a count of tokens (a mean, so a float)
}


def _models(root: type[BaseModel]) -> set[type[BaseModel]]:
    seen: set[type[BaseModel]] = set()
    todo = [root]
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.add(cls)
        for field in cls.model_fields.values():
            todo.extend(_nested_models(field.annotation))
    return seen


def _leaves(tp: Any) -> list[Any]:
    args = typing.get_args(tp)
    if not args:
        return [tp]
    out: list[Any] = []
    for a in args:
        out.extend(_leaves(a))
    return out


def _nested_models(tp: Any) -> list[type[BaseModel]]:
    return [a for a in _leaves(tp) if isinstance(a, type) and issubclass(a, BaseModel)]


def _is_float(tp: Any) -> bool:
    return float in _leaves(tp)


def test_every_float_field_has_a_unit():
    models = set()
    for root in (ScenarioSpec, TopologySpec, MoEModelSpec, SweepSpec):
        models |= _models(root)
    assert len(models) > 20  # the walk reaches the nested tiers, schedules, loads, ...
    bad = []
    for cls in models:
        for name, field in cls.model_fields.items():
            if _is_float(field.annotation) and not (
                    name.endswith(UNIT_SUFFIXES) or name in DIMENSIONLESS):
                bad.append(f"{cls.__name__}.{name}")
    assert not bad, f"float fields without a unit suffix: {bad}"


def test_the_walk_would_catch_a_bare_name():
    class BadSpec(BaseModel):
        bandwidth: float

    class HolderSpec(BaseModel):
        inner: tuple[BadSpec, ...] | None = None

    found = [f"{c.__name__}.{n}" for c in _models(HolderSpec) for n, f in c.model_fields.items()
             if _is_float(f.annotation) and not n.endswith(UNIT_SUFFIXES)]
    assert found == ["BadSpec.bandwidth"]


def test_no_field_says_gbps_or_bandwidth():
    for root in (ScenarioSpec, TopologySpec, MoEModelSpec, SweepSpec):
        for cls in _models(root):
            for name in cls.model_fields:
                assert "gbps" not in name and not name.endswith("bandwidth"), (cls, name)
