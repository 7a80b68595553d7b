"""moesim's Python API: what the command line does, as functions (``import moesim``).

Each function is a thin wrapper over the layer that owns the work (``moesim.specs`` loads,
``moesim.engine`` simulates, ``moesim.plan`` searches, ``moesim.report`` writes files); user
mistakes raise :class:`~moesim.errors.SpecError`, impossible layouts
:class:`~moesim.errors.InfeasibleError`. Everything returned is SI (seconds, bytes, FLOP/s).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from moesim.engine import Simulation
from moesim.engine.session import EngineSession
from moesim.plan.search import plan
from moesim.report import write_report as _write_report
from moesim.results.provenance import provenance
from moesim.results.schema import SimulationResult
from moesim.specs import loader
from moesim.specs.hf import HF_PREFIX, import_model
from moesim.specs.model import MoEModelSpec
from moesim.specs.overrides import scenario_with_sets, set_strings
from moesim.specs.scenario import ScenarioSpec

Sets = Mapping[str, Any] | Iterable[str]
Fidelity = Literal["des", "analytic"]

__all__ = ["load_model", "load_scenario", "plan", "simulate", "write_report"]


def load_scenario(path: str | Path, sets: Sets | None = None) -> ScenarioSpec:
    """Load a scenario YAML with its topology and model resolved and checked.

    ``sets`` overrides fields as ``--set`` does: ``{"parallelism.expert_parallel_degree": 16}``
    or ``["parallelism.expert_parallel_degree=16"]``; ``model.*`` and ``topology.*`` paths go
    into the files the scenario names."""
    return loader.load_scenario(path, set_strings(sets))


def load_model(path: str | Path) -> MoEModelSpec:
    """A model: moesim's model YAML, or (``hf:PATH``, a ``.json`` file) a Hugging Face
    config.json or Megatron arguments converted by :func:`moesim.specs.hf.import_model`."""
    text = str(path)
    if text.startswith(HF_PREFIX):
        return import_model(text.removeprefix(HF_PREFIX)).spec
    if Path(text).suffix.lower() in (".json", ".sh", ".args", ".txt"):
        return import_model(text).spec
    return loader.load_model(text)


def simulate(scenario: ScenarioSpec | str | Path, *, fidelity: Fidelity = "des",
             sets: Sets | None = None, session: EngineSession | None = None) -> SimulationResult:
    """Simulate one training step: step time, tokens/s, TFLOP/s per device, MFU, the
    breakdown, memory per rank class, routing and link use.

    ``scenario`` is a loaded spec or a YAML path; ``sets`` override fields of either, as
    in :func:`load_scenario`. ``fidelity`` "des" runs the event simulation, "analytic" the
    closed form (about 100x faster, for sweeps). ``result.to_dataframe()`` gives one row;
    ``result.provenance`` records the resolved scenario, moesim's version and the table.
    ``session``: a :class:`moesim.engine.session.EngineSession` that several calls share
    (programs, kernel models and prices reused across a notebook's what-ifs; a fresh one per
    call by default)."""
    spec = scenario_with_sets(scenario, sets)
    result = Simulation(spec, fidelity=fidelity, session=session).run()
    given = "" if isinstance(scenario, ScenarioSpec) else str(scenario)
    return result.model_copy(update={"provenance": provenance(
        spec, fidelity, scenario_file=given, overrides=set_strings(sets))})


def write_report(result: SimulationResult, out_dir: str | Path) -> dict[str, Path]:
    """Write result.json, summary.csv, trace.json and report.html (with plotly.min.js beside
    it) into ``out_dir``; returns the paths by kind."""
    return _write_report(result, Path(out_dir))
