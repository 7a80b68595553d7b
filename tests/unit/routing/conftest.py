"""Scenarios for the routing tests, built from the shipped Mixtral 8x7B scenario with overrides.

The base file is Mixtral 8x7B on 64 H100 (8 per node), TP1 EP8 PP4, MBS 1, seq 4096, top-2 of
8 experts, dropless, balanced; tests change only what they need through ``--set`` paths.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from moesim.specs.loader import load_scenario
from moesim.specs.scenario import ScenarioSpec

BASE = Path(__file__).resolve().parents[3] / "scenarios" / "mixtral-8x7b-64xh100.yaml"

# EP64 over 8 nodes of 8 GPUs needs 64 experts and PP1 (EP x ETP must divide TP x CP x DP).
EP64 = ["model.num_experts=64", "parallelism.expert_parallel_degree=64",
        "parallelism.pipeline_parallel_degree=1", "parallelism.pipeline_schedule={kind: 1f1b}"]


@pytest.fixture
def scenario() -> Callable[..., ScenarioSpec]:
    def make(*sets: str) -> ScenarioSpec:
        return load_scenario(BASE, list(sets))

    return make
