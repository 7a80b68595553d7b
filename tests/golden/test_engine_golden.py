"""Golden results: scenario -> the headline numbers of its simulated step.

The expected files in tests/golden/expected/ were written by this engine. A change to any
of them must say why in its commit message (a cost-model change, a program change, a new
physical effect): regenerate with ``MOESIM_UPDATE_GOLDEN=1 python -m pytest tests/golden``
and review the diff. Equal inputs give byte-identical results (DESIGN.md), so the match is
exact up to float formatting (relative 1e-9).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from moesim.engine import Simulation
from moesim.results.schema import SimulationResult
from moesim.specs.loader import load_scenario

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = Path(__file__).resolve().parent / "expected"
CASES = [("mixtral-8x7b-64xh100", "des"), ("qwen3-30b-a3b-8xh100", "analytic"),
         ("default", "des")]
NOTE = ("written by moesim's engine; a change to this file must say why in its commit "
        "(tests/golden/test_engine_golden.py)")


def headline(r: SimulationResult) -> dict[str, Any]:
    """The numbers a planner reads off a step (and that a report shows first)."""
    b = r.breakdown
    return {
        "_note": NOTE, "scenario": r.scenario, "fidelity": r.fidelity,
        "step_time_s": r.step_time_s, "tokens_per_s": r.tokens_per_s,
        "tokens_per_s_per_device": r.tokens_per_s_per_device,
        "model_tflops_per_device": r.model_tflops_per_device, "mfu": r.mfu,
        "fits_memory": r.fits_memory, "most_loaded_rank_class": r.most_loaded_rank_class,
        "peak_memory_bytes": max((m.memory.peak_bytes for m in r.memory), default=0.0),
        "compute_s": b.compute_s, "exposed_communication_s": b.exposed_communication_s,
        "pipeline_bubble_s": b.pipeline_bubble_s, "imbalance_wait_s": b.imbalance_wait_s,
        "optimizer_s": b.optimizer_s, "drop_fraction": r.routing.drop_fraction,
    }


def _close(actual: Any, expected: Any, path: str) -> None:
    if isinstance(expected, dict):
        assert set(actual) == set(expected), f"{path}: keys {sorted(actual)} != {sorted(expected)}"
        for k in expected:
            _close(actual[k], expected[k], f"{path}.{k}")
    elif isinstance(expected, float) and not isinstance(expected, bool):
        assert actual == pytest.approx(expected, rel=1e-9, abs=1e-15), path
    else:
        assert actual == expected, path


@pytest.mark.parametrize(("name", "fidelity"), CASES, ids=[f"{n}-{f}" for n, f in CASES])
def test_golden(name: str, fidelity: str) -> None:
    sc = load_scenario(ROOT / "scenarios" / f"{name}.yaml")
    got = headline(Simulation(sc, fidelity=fidelity).run())  # type: ignore[arg-type]
    path = EXPECTED / f"{name}-{fidelity}.json"
    if os.environ.get("MOESIM_UPDATE_GOLDEN") == "1":
        path.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    expected = json.loads(path.read_text())
    _close(json.loads(json.dumps(got)), expected, name)
