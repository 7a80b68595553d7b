"""JSON Schemas of the spec files, for editors and for checking shipped files."""

from __future__ import annotations

from typing import Any

from moesim.specs.hardware import TopologySpec
from moesim.specs.model import MoEModelSpec
from moesim.specs.scenario import ScenarioSpec
from moesim.specs.sweep import SweepSpec

SCHEMA_MODELS = {"topology": TopologySpec, "model": MoEModelSpec, "scenario": ScenarioSpec,
                 "sweep": SweepSpec}


def all_schemas() -> dict[str, dict[str, Any]]:
    out = {}
    for name, cls in SCHEMA_MODELS.items():
        sch = cls.model_json_schema()
        sch["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        sch["title"] = f"moesim {name}"
        out[name] = sch
    return out
