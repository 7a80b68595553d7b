"""Sweep files: a base scenario and axes over dotted field paths (grid or zip)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from moesim.errors import SpecError
from moesim.specs.base import FrozenSpec


class SweepAxisSpec(FrozenSpec):
    """One swept field: a dotted path (as for ``--set``) and its values."""

    path: str
    values: tuple[Any, ...] = Field(min_length=1)


class SweepSpec(FrozenSpec):
    name: str
    base: str = Field(description="path of the base scenario, relative to the sweep file")
    mode: Literal["grid", "zip"] = "grid"
    axes: tuple[SweepAxisSpec, ...] = Field(min_length=1)
    fidelity: Literal["analytic", "des"] = "analytic"
    fixed: dict[str, Any] = Field(default_factory=dict, description="--set applied to every point")

    @model_validator(mode="after")
    def _check(self) -> SweepSpec:
        if self.mode == "zip" and len({len(a.values) for a in self.axes}) > 1:
            raise ValueError("mode='zip' needs every axis to have the same number of values")
        return self

    def points(self) -> list[dict[str, Any]]:
        """Every point as {path: value}, in a fixed order."""
        paths = [a.path for a in self.axes]
        if self.mode == "zip":
            combos = zip(*(a.values for a in self.axes), strict=True)
        else:
            combos = itertools.product(*(a.values for a in self.axes))
        return [dict(self.fixed) | dict(zip(paths, c, strict=True)) for c in combos]


# Points one sweep may hold: 100,000 is 100x the largest shipped sweep (1,000 points) and about
# 3 hours of analytic points on a 2-core VM; split a larger study into several sweeps.
MAX_SWEEP_POINTS = 100_000


def load_sweep(path: str | Path, *, data: Any = None) -> SweepSpec:
    """Load and check a sweep file: its base exists, it has at most MAX_SWEEP_POINTS points,
    and no two points are the same."""
    from moesim.specs.loader import is_file, read_yaml, validate_as

    if data is None:
        data = read_yaml(path)
    spec = validate_as(SweepSpec, data, file=str(path))
    base = Path(path).parent / spec.base
    if not is_file(base):
        shown = repr(spec.base) if len(spec.base) <= 80 else repr("..." + spec.base[-77:])
        raise SpecError(f"base={shown}: referenced file not found; give a path relative "
                        "to the sweep file", file=str(path), field="base")
    _check_points(spec, str(path))
    return spec


def _check_points(spec: SweepSpec, path: str) -> None:
    if spec.mode == "zip":
        n = len(spec.axes[0].values)
    else:
        n = 1
        for a in spec.axes:
            n *= len(a.values)
    if n > MAX_SWEEP_POINTS:
        sizes = " x ".join(str(len(a.values)) for a in spec.axes)
        raise SpecError(f"axes: {sizes} = {n:,} points, more than {MAX_SWEEP_POINTS:,} (about 3 "
                        "hours of analytic points on 2 cores); split the sweep or drop values",
                        file=path, field="axes")
    for i, a in enumerate(spec.axes):
        seen: dict[str, int] = {}
        for j, v in enumerate(a.values):
            key = json.dumps(v, sort_keys=True, default=str)
            if key in seen and spec.mode == "grid":
                raise SpecError(f"axes.{i}.values: entries {seen[key]} and {j} are equal, so "
                                "points would repeat; remove one", file=path,
                                field=f"axes.{i}.values")
            seen.setdefault(key, j)
    if spec.mode == "zip":
        seen_points: dict[str, int] = {}
        for j, point in enumerate(spec.points()):
            key = json.dumps(point, sort_keys=True, default=str)
            if key in seen_points:
                raise SpecError(f"points {seen_points[key]} and {j} of the zip are equal; "
                                "remove one", file=path, field="axes")
            seen_points[key] = j
