from __future__ import annotations

from pathlib import Path

import pytest

from moesim.specs.loader import load_scenario

ROOT = Path(__file__).resolve().parents[3]
MIXTRAL = ROOT / "scenarios" / "mixtral-8x7b-64xh100.yaml"


def scenario(*sets: str):
    """The Mixtral scenario with overrides (balanced routing unless overridden)."""
    return load_scenario(MIXTRAL, ("routing.load.kind=balanced",) + sets)


@pytest.fixture
def make_scenario():
    return scenario
