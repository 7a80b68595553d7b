"""Sweep files: a base scenario and axes over dotted field paths (grid or zip)."""

from __future__ import annotations

import itertools
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


def load_sweep(path: str | Path) -> SweepSpec:
    from moesim.specs.loader import read_yaml, validate_as

    spec = validate_as(SweepSpec, read_yaml(path), file=str(path))
    base = Path(path).parent / spec.base
    if not base.is_file():
        raise SpecError(f"base={spec.base!r}: referenced file not found; give a path relative "
                        "to the sweep file", file=str(path), field="base")
    return spec
